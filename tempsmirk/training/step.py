"""One SMIRK training step's losses, as one function (chapter 3 dissects it).

Shapes: B batch, H W image size. The reconstruction path:

1. encode the image -> FLAME parameters -> mesh and landmarks;
2. landmark losses (17 jaw-contour points of the 68, the 105 MediaPipe points) and regularisers;
3. render the face region, mask the input (:func:`tempsmirk.smirk.masking.mask_face`), and let the
   generator redraw the image from rendering + masked image: L1 (+ VGG perceptual);
4. the augmented cycle (:func:`tempsmirk.smirk.cycle.cycle_path`).

:func:`clip_step` does the same for a batch of B clips × T frames and adds the temporal terms of
eq. (5) (chapter 5): the frames are flattened clip-major, :func:`smirk_step` runs on all B·T of
them at once, and the encoder output is regrouped into (B, T, ...) clips for
:func:`tempsmirk.temporal.temporal_loss`, so no difference is ever taken across two clips.

Which network learns from these losses is decided by the caller (the :class:`Trainer` freezes
one of the two each step); this function only computes them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
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
from tempsmirk.temporal import TemporalTerms, TemporalWeights, clip_params, temporal_loss

__all__ = ["LossTerms", "StepOutput", "smirk_step", "clip_step", "generator_needed"]


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
    rendering: (B, 3, H, W) face-region shading of the predicted mesh; None when the step did
        not render (``render=False``: nothing needed the generator).
    masked: the generator's masked input (:class:`MaskedInput`); None when it did not render.
    generated: (B, 3, H, W) the generator's reconstruction; None when no loss needs it
        (encoder pretraining: landmarks and regularisers only).
    cycle: the cycle path's outputs, or None when it is off.
    temporal: the temporal terms of a clip batch (:func:`clip_step`; their weighted ``total`` is
        included in ``losses.total``), None for single frames.
    """

    losses: LossTerms
    params: EncoderOutput
    rendering: Optional[Tensor]
    masked: Optional[MaskedInput]
    generated: Optional[Tensor]
    cycle: Optional[CycleOutput]
    temporal: Optional[TemporalTerms] = None


def smirk_step(encoder: nn.Module, generator: nn.Module, flame: nn.Module, batch: FaceBatch,
               weights: LossWeights, masking: MaskingConfig, cycle: CycleConfig, face_mask: Tensor,
               face_weights: Tensor, templates: Tensor, rng: torch.Generator,
               perceptual: Optional[PerceptualLoss] = None, shape_trains: bool = False,
               render: bool = True) -> StepOutput:
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
        render: render and mask even when no loss needs the generator (for pictures of the
            step). ``False`` skips both when nothing needs them (about 40 % of an encoder-only
            step on a CPU); ``rendering`` and ``masked`` are then None.
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

    needed = generator_needed(weights, cycle, perceptual)
    rendering = masked = None
    if render or needed:
        rendering = render_mesh(out.vertices, flame.faces, p.cam, size, face_mask=face_mask)
        # The hull comes from the *detected* landmarks: where the face really is in the image.
        hull_points = torch.cat([batch.landmarks68, batch.landmarks_mp], dim=1)
        masked = mask_face(image, hull_points, rendering, flame.faces, face_weights, masking, rng)
    zero = l_fan.new_zeros(())
    generated, l_rec, l_vgg, l_cyc, cyc = None, zero, zero, zero, None
    if needed:
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
    return StepOutput(losses=terms, params=p, rendering=None if rendering is None else rendering.image,
                      masked=masked, generated=generated, cycle=cyc)


def clip_step(encoder: nn.Module, generator: nn.Module, flame: nn.Module, batch: FaceBatch,
              weights: LossWeights, masking: MaskingConfig, cycle: CycleConfig, face_mask: Tensor,
              face_weights: Tensor, templates: Tensor, rng: torch.Generator,
              perceptual: Optional[PerceptualLoss] = None, shape_trains: bool = False,
              temporal: TemporalWeights = TemporalWeights(), render: bool = False) -> StepOutput:
    """SMIRK's losses on every frame of a clip batch plus the weighted temporal terms (eq. 5).

    Explained in chapter 5. ``batch`` is a clip :class:`FaceBatch` ((B, T, 3, H, W) images);
    the other arguments are those of :func:`smirk_step`, plus ``temporal``, the weights of
    eqs. (3)–(4) (all zero: the non-temporal baseline, whose terms are still computed for the
    log), and ``render`` as in :func:`smirk_step` (default False here: clip training on a CPU
    is long enough without renderings nobody looks at). The frames go through
    :func:`smirk_step` flattened clip-major to (B·T, ...) — BatchNorm sees all B clips together —
    and the encoder output is regrouped to (B, T, ...) for the temporal losses. Returns a
    :class:`StepOutput` with (B·T, ...) ``params`` and images, ``temporal`` set, and
    ``losses.total`` = SMIRK total + ``temporal.total``.
    """
    if not batch.is_clip:
        raise ValueError(f"clip_step needs a clip batch with (B, T, 3, H, W) images; got "
                         f"{tuple(batch.image.shape)}. Use smirk_step for single frames")
    t = batch.image.shape[1]
    out = smirk_step(encoder, generator, flame, batch.frames(), weights, masking, cycle, face_mask,
                     face_weights, templates, rng, perceptual, shape_trains, render)
    terms = temporal_loss(clip_params(out.params, t), temporal)
    return replace(out, losses=replace(out.losses, total=out.losses.total + terms.total), temporal=terms)
