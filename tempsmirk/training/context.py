"""What every pass of a training iteration uses and no iteration changes (chapter 3).

:func:`step_context` builds a :class:`StepContext` once from the FLAME layer and the ``loss`` and
``temporal`` config sections; :func:`~tempsmirk.training.step.first_path`,
:func:`~tempsmirk.training.step.cycle_path`, :func:`~tempsmirk.training.step.smirk_step` and
:func:`~tempsmirk.training.step.clip_step` take it beside the networks, the batch and the random
generator. The :class:`~tempsmirk.training.Trainer` builds one; a test or a chapter that wants
other weights or modules takes ``dataclasses.replace(context, ...)``.

Shapes: F faces of the FLAME mesh, K expression templates, E expression coefficients.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import Tensor

from tempsmirk.config import LossConfig, TemporalConfig
from tempsmirk.flame import FLAME
from tempsmirk.losses import EmotionLoss, LossWeights, PerceptualLoss
from tempsmirk.smirk.cycle import ExpressionTemplates, builtin_templates, load_templates
from tempsmirk.smirk.masking import MaskingConfig, face_sampling_weights, load_triangle_masks
from tempsmirk.temporal import TemporalWeights

__all__ = ["StepContext", "step_context"]

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class StepContext:
    """The fixed context of a training iteration (all on the networks' device).

    flame: the FLAME layer.
    face_mask: (F,) bool, the triangles rendered (FLAME's face region; all of them for a model
        without one); None draws all.
    face_weights: (F,) sampling weight per triangle
        (:func:`~tempsmirk.smirk.masking.face_sampling_weights`).
    templates: the cycle's expression templates (K, E).
    weights: SMIRK's loss weights (``loss.weights``; ``cycle`` = 0: no cycle pass).
    masking: what the generator sees (``loss.masking``).
    temporal: the weights of eqs. (3)–(4) added on clip batches (``temporal``, all zero when the
        section is not enabled: the terms are still computed and logged).
    perceptual: the VGG loss module, or None (off).
    emotion: the emotion-feature loss module; required when ``weights.emotion`` > 0.
    """

    flame: FLAME
    face_mask: Optional[Tensor]
    face_weights: Tensor
    templates: ExpressionTemplates
    weights: LossWeights
    masking: MaskingConfig
    temporal: TemporalWeights
    perceptual: Optional[PerceptualLoss] = None
    emotion: Optional[EmotionLoss] = None

    @property
    def cycle_on(self) -> bool:
        """Whether an iteration has the cycle pass (``weights.cycle`` > 0)."""
        return self.weights.cycle > 0

    def generator_needed(self, cycle: bool = True) -> bool:
        """Whether any weighted loss uses the generator (False in encoder pretraining);
        ``cycle=False`` asks about the reconstruction path's losses alone."""
        w = self.weights
        vgg = self.perceptual is not None and self.perceptual.enabled and w.perceptual > 0
        return bool(w.reconstruction > 0 or vgg or w.emotion > 0 or (cycle and self.cycle_on))


def step_context(flame: FLAME, loss: LossConfig, temporal: Optional[TemporalConfig] = None,
                 vgg_path: Optional[PathLike] = None, emotion_path: Optional[PathLike] = None) -> StepContext:
    """The :class:`StepContext` of a config, on ``flame``'s device.

    Args:
        flame: the FLAME layer (its ``n_exp`` sizes the template bank).
        loss: the ``loss`` section: weights, masking (its ``triangle_masks`` file, if any, gives
            the sampling regions) and the cycle's templates (``cycle_path``).
        temporal: the ``temporal`` section (None: not enabled).
        vgg_path: VGG16 weights for the perceptual loss, built when its weight is not 0 (without
            weights it is off, and says so).
        emotion_path: EMOCA's emotion network, required when the emotion weight is not 0.
    Raises:
        ValueError: an emotion weight without ``emotion_path``.
    """
    device = flame.v_template.device
    weights = loss.weights
    face_mask = (flame.region_faces("face") if "face" in flame.masks
                 else torch.ones(len(flame.faces), dtype=torch.bool, device=device))
    m = loss.masking
    triangles = load_triangle_masks(m.triangle_masks, len(flame.faces)) if m.triangle_masks else None
    face_weights = face_sampling_weights(flame, triangles)
    cyc = loss.cycle_path
    templates = (load_templates(cyc.templates_path, flame.n_exp) if cyc.templates_path
                 else builtin_templates(flame.n_exp, cyc.template_components, cyc.template_amplitude))
    perceptual = PerceptualLoss(vgg_path).to(device) if weights.perceptual else None  # warns when off
    emotion = None
    if weights.emotion:
        if emotion_path is None:
            raise ValueError(f"loss.weights.emotion={weights.emotion} needs EMOCA's ResNet-50 emotion "
                             f"network: set model.emotion_path to its checkpoint (SMIRK: assets/ResNet50/"
                             f"checkpoints/*.ckpt), or loss.weights.emotion=0")
        emotion = EmotionLoss.from_file(emotion_path).to(device)
    return StepContext(
        flame=flame,
        face_mask=face_mask,
        face_weights=face_weights,
        templates=templates.to(device),
        weights=weights,
        masking=m,
        temporal=temporal.active_weights() if temporal is not None else TemporalWeights().scaled(0.0),
        perceptual=perceptual,
        emotion=emotion,
    )
