"""SMIRK's loss weights, and the weighted sum of named loss terms (chapter 3).

:class:`LossWeights` is the ``loss.weights`` section of the config (:mod:`tempsmirk.config`); its
defaults are SMIRK's core training (``configs/config_train.yaml`` of the reference). The presets
under ``tempsmirk/configs`` set the other stages (``smirk_pretrain.yaml``: the reference's
``config_pretrain.yaml``). :func:`weighted_sum` adds loss terms with the weight of the same name,
for these weights and for the temporal ones (:class:`tempsmirk.temporal.TemporalWeights`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from torch import Tensor

__all__ = ["LossWeights", "weighted_sum"]


@dataclass(frozen=True)
class LossWeights:
    """Weights of SMIRK's losses; the defaults are core training's (SMIRK's
    ``configs/config_train.yaml``). Explained in chapter 3.

    landmarks_fan: jaw-contour landmark MSE (17 FAN points).
    landmarks_mp: MediaPipe landmark MSE (105 points).
    reconstruction: L1 between generated and input image.
    perceptual: VGG16 perceptual loss (only counts when a VGG weights file is given).
    emotion: emotion-feature loss (:class:`~tempsmirk.losses.EmotionLoss`; needs EMOCA's emotion
        network). 0 in the public core config; 1.0 trained the released SMIRK_em1.
    expression_reg, jaw_reg: pull expression / jaw towards neutral.
    shape_reg: pull shape towards the mean; applied only while the shape branch trains.
    cycle: augmented-cycle loss (:func:`~tempsmirk.losses.cycle_loss`), the weight of the second
        path; 0 switches the cycle off (encoder pretraining: ``smirk_pretrain.yaml``, where every
        loss that needs a generated image is 0).
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
        """Core training (encoder + generator + cycle): the defaults."""
        return cls()


def weighted_sum(weights: object, terms: Mapping[str, Tensor]) -> Tensor:
    """Σ weight · term over ``terms``, each term weighted by the field of ``weights`` with its name,
    added in the order of ``terms``. Raises ValueError for a term without a weight."""
    unknown = [name for name in terms if not hasattr(weights, name)]
    if unknown or not terms:
        raise ValueError(f"weighted_sum: no weight for the term(s) {unknown} in {type(weights).__name__}"
                         if unknown else "weighted_sum needs at least one term")
    total = None
    for name, value in terms.items():
        part = getattr(weights, name) * value
        total = part if total is None else total + part
    return total
