"""SMIRK's losses as pure functions, plus their reference weights (chapter 3).

- :mod:`tempsmirk.losses.landmarks` — :func:`landmark_loss`, :func:`jaw_contour`,
  :func:`select_mediapipe`.
- :mod:`tempsmirk.losses.regularizers` — :func:`expression_reg`, :func:`jaw_reg`,
  :func:`shape_reg`, :func:`cycle_loss`.
- :mod:`tempsmirk.losses.perceptual` — :func:`reconstruction_loss` (L1) and
  :class:`PerceptualLoss` (VGG16 from a local weights file; off without one).
- :mod:`tempsmirk.losses.emotion` — :class:`EmotionLoss` (EMOCA's ResNet-50 emotion features,
  L2, from a local checkpoint).
- :class:`LossWeights` — the weights of the guide for core training and pretraining.
"""

from __future__ import annotations

from dataclasses import dataclass

from tempsmirk.losses.emotion import EmotionLoss
from tempsmirk.losses.landmarks import N_CONTOUR, jaw_contour, landmark_loss, select_mediapipe
from tempsmirk.losses.perceptual import PerceptualLoss, reconstruction_loss
from tempsmirk.losses.regularizers import cycle_loss, expression_reg, jaw_reg, shape_reg

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
]


@dataclass(frozen=True)
class LossWeights:
    """Weights of SMIRK's losses; the defaults are core training's (SMIRK's
    ``configs/config_train.yaml``). Explained in chapter 3.

    landmarks_fan: jaw-contour landmark MSE (17 FAN points).
    landmarks_mp: MediaPipe landmark MSE (105 points).
    reconstruction: L1 between generated and input image.
    perceptual: VGG16 perceptual loss (only counts when a VGG weights file is given).
    emotion: emotion-feature loss (:class:`EmotionLoss`; needs EMOCA's emotion network). 0 in the
        public core config; 1.0 trained the released SMIRK_em1.
    expression_reg, jaw_reg: pull expression / jaw towards neutral.
    shape_reg: pull shape towards the mean; applied only while the shape branch trains.
    cycle: augmented-cycle loss (:func:`cycle_loss`), the weight of the second path.

    :meth:`pretraining` (``configs/config_pretrain.yaml``) has no generator in the loop, so every
    loss that needs a generated image (reconstruction, perceptual, emotion, cycle) is 0 there.
    """

    landmarks_fan: float = 100.0
    landmarks_mp: float = 100.0
    reconstruction: float = 10.0
    perceptual: float = 10.0
    emotion: float = 0.0
    expression_reg: float = 1e-3
    jaw_reg: float = 1e-2
    shape_reg: float = 100.0
    cycle: float = 1.0

    @classmethod
    def core(cls) -> "LossWeights":
        """Core training (encoder + generator + cycle)."""
        return cls()

    @classmethod
    def pretraining(cls) -> "LossWeights":
        """Encoder pretraining on landmarks and regularisers alone (SMIRK adds MICA's shape
        supervision, weight 10, which is not implemented here: README differences)."""
        return cls(reconstruction=0.0, perceptual=0.0, emotion=0.0, expression_reg=1e-2,
                   jaw_reg=0.0, shape_reg=0.0, cycle=0.0)
