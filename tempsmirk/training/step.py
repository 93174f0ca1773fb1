"""One SMIRK training step's losses, as one function (chapter 3 dissects it).

Shapes: B batch, H W image size. The reconstruction path:

1. encode the image -> FLAME parameters -> mesh and landmarks;
2. landmark losses (17 jaw-contour points of the 68, the 105 MediaPipe points) and regularisers;
3. render the face region, mask the input (:func:`tempsmirk.smirk.masking.mask_face`), and let the
   generator redraw the image from rendering + masked image: L1 (+ VGG perceptual);
4. the augmented cycle (:func:`tempsmirk.smirk.cycle.cycle_path`).

Which network learns from these losses is decided by the caller (the :class:`Trainer` freezes
one of the two each step); this function only computes them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

import torch
from torch import Tensor, nn

from tempsmirk.data.types import FaceBatch
from tempsmirk.losses import (
    LossWeights,
    PerceptualLoss,
    expression_reg,
    jaw_contour,
    jaw_reg,
    landmark_loss,
    reconstruction_loss,
    shape_reg,
)
from tempsmirk.render import project_points, render_mesh
from tempsmirk.smirk.cycle import CycleConfig, CycleOutput, cycle_path
from tempsmirk.smirk.encoder import EncoderOutput
from tempsmirk.smirk.masking import MaskedInput, MaskingConfig, mask_face

__all__ = ["LossTerms", "StepOutput", "smirk_step", "generator_needed"]


def generator_needed(weights: LossWeights, cycle: CycleConfig, perceptual: Optional[PerceptualLoss] = None) -> bool:
    """Whether any weighted loss uses the generator (False in encoder pretraining)."""
    vgg = perceptual is not None and perceptual.enabled and weights.perceptual > 0
    return bool(weights.reconstruction > 0 or vgg or (cycle.enabled and weights.cycle > 0))


@dataclass(frozen=True)
class LossTerms:
    """Every loss of a step, unweighted (each a () tensor), and the weighted ``total``."""

    landmarks_fan: Tensor
    landmarks_mp: Tensor
    expression_reg: Tensor
    jaw_reg: Tensor
    shape_reg: Tensor
    reconstruction: Tensor
    perceptual: Tensor
    cycle: Tensor
    total: Tensor

    def as_floats(self) -> dict[str, float]:
        """Python floats by name (for logs and tables)."""
        return {f.name: float(getattr(self, f.name).detach()) for f in fields(self)}

    def non_finite(self) -> list[str]:
        """Names of the terms that are NaN or infinite."""
        return [f.name for f in fields(self) if not torch.isfinite(getattr(self, f.name).detach()).all()]


@dataclass(frozen=True)
class StepOutput:
    """What a step computed.

    losses: :class:`LossTerms`.
    params: the encoder's predictions for the batch.
    rendering: (B, 3, H, W) face-region shading of the predicted mesh.
    masked: the generator's masked input (:class:`MaskedInput`).
    generated: (B, 3, H, W) the generator's reconstruction; None when no loss needs it
        (encoder pretraining: landmarks and regularisers only).
    cycle: the cycle path's outputs, or None when it is off.
    """

    losses: LossTerms
    params: EncoderOutput
    rendering: Tensor
    masked: MaskedInput
    generated: Optional[Tensor]
    cycle: Optional[CycleOutput]


def smirk_step(encoder: nn.Module, generator: nn.Module, flame: nn.Module, batch: FaceBatch,
               weights: LossWeights, masking: MaskingConfig, cycle: CycleConfig, face_mask: Tensor,
               face_weights: Tensor, templates: Tensor, rng: torch.Generator,
               perceptual: Optional[PerceptualLoss] = None, shape_trains: bool = False) -> StepOutput:
    """SMIRK's losses for one batch of single frames. Explained in chapter 3.

    Args:
        encoder, generator, flame: the models (on the batch's device).
        batch: a frame :class:`FaceBatch` (images (B, 3, H, W), landmarks normalised).
        weights: loss weights; masking, cycle: their config sections.
        face_mask: (F,) bool faces rendered (FLAME's face region).
        face_weights: (F,) sampling weights (:func:`~tempsmirk.smirk.masking.face_sampling_weights`).
        templates: (K, E) expression templates for the cycle.
        rng: CPU ``torch.Generator`` for masking and cycle draws.
        perceptual: VGG loss module, or None (off).
        shape_trains: add the shape regulariser (only when the shape branch trains).
    """
    image = batch.image
    size = image.shape[-1]
    p = encoder(image)
    out = flame(shape=p.shape, expression=p.expression, global_pose=p.global_pose,
                jaw_pose=p.jaw_pose, eyelids=p.eyelids)
    lmk68 = project_points(out.landmarks68, p.cam, size).normalised
    lmk_mp = project_points(out.landmarks_mp, p.cam, size).normalised
    valid = batch.landmarks_valid
    l_fan = landmark_loss(jaw_contour(lmk68), jaw_contour(batch.landmarks68), valid)
    l_mp = landmark_loss(lmk_mp, batch.landmarks_mp, valid)
    l_exp, l_jaw = expression_reg(p.expression), jaw_reg(p.jaw_pose)
    l_shape = shape_reg(p.shape) if shape_trains else l_exp.new_zeros(())

    rendering = render_mesh(out.vertices, flame.faces, p.cam, size, face_mask=face_mask)
    # The hull comes from the *detected* landmarks: where the face really is in the image.
    hull_points = torch.cat([batch.landmarks68, batch.landmarks_mp], dim=1)
    masked = mask_face(image, hull_points, rendering, flame.faces, face_weights, masking, rng)
    zero = l_fan.new_zeros(())
    generated, l_rec, l_vgg, l_cyc, cyc = None, zero, zero, zero, None
    if generator_needed(weights, cycle, perceptual):
        generated = generator(torch.cat([rendering.image, masked.image], dim=1))
        l_rec = reconstruction_loss(generated, image)
        if perceptual is not None and weights.perceptual:
            l_vgg = perceptual(generated, image)
    if cycle.enabled and weights.cycle:
        cyc = cycle_path(encoder, generator, flame, image, p, masked.hull, rendering.mask,
                         masked.samples, face_mask, templates, cycle, masking.n_patches,
                         masking.patch_size, rng)
        l_cyc = cyc.loss

    w = weights
    total = (w.landmarks_fan * l_fan + w.landmarks_mp * l_mp + w.expression_reg * l_exp
             + w.jaw_reg * l_jaw + w.shape_reg * l_shape + w.reconstruction * l_rec
             + w.perceptual * l_vgg + w.cycle * l_cyc)
    terms = LossTerms(landmarks_fan=l_fan, landmarks_mp=l_mp, expression_reg=l_exp, jaw_reg=l_jaw,
                      shape_reg=l_shape, reconstruction=l_rec, perceptual=l_vgg, cycle=l_cyc,
                      total=total)
    return StepOutput(losses=terms, params=p, rendering=rendering.image, masked=masked,
                      generated=generated, cycle=cyc)
