"""SMIRK's losses as pure functions, plus their reference weights (chapter 3).

- :mod:`tempsmirk.losses.landmarks` — :func:`landmark_loss`, :func:`jaw_contour`,
  :func:`select_mediapipe`.
- :mod:`tempsmirk.losses.regularizers` — :func:`expression_reg`, :func:`jaw_reg`,
  :func:`shape_reg`, :func:`cycle_loss`.
- :mod:`tempsmirk.losses.perceptual` — :func:`reconstruction_loss` (L1) and
  :class:`PerceptualLoss` (VGG16 from a local weights file; off without one).
- :mod:`tempsmirk.losses.emotion` — :class:`EmotionLoss` (EMOCA's ResNet-50 emotion features,
  L2, from a local checkpoint).
- :mod:`tempsmirk.losses.weights` — :class:`LossWeights` (SMIRK's core-training weights, the
  ``loss.weights`` config section) and :func:`weighted_sum` (terms × weights by name).
"""

from __future__ import annotations

from tempsmirk.losses.emotion import EmotionLoss
from tempsmirk.losses.landmarks import N_CONTOUR, jaw_contour, landmark_loss, select_mediapipe
from tempsmirk.losses.perceptual import PerceptualLoss, reconstruction_loss
from tempsmirk.losses.regularizers import cycle_loss, expression_reg, jaw_reg, shape_reg
from tempsmirk.losses.weights import LossWeights, weighted_sum

__all__ = [
    "EmotionLoss",
    "LossWeights",
    "N_CONTOUR",
    "PerceptualLoss",
    "cycle_loss",
    "expression_reg",
    "jaw_reg",
    "jaw_contour",
    "landmark_loss",
    "reconstruction_loss",
    "select_mediapipe",
    "shape_reg",
    "weighted_sum",
]
