"""SMIRK's losses of one training iteration, as functions (chapter 3 dissects them).

Shapes: B batch, T frames, H W image size. One iteration of SMIRK (the reference's
``SmirkTrainer.step``) has two passes, each with its own backward and optimiser steps (the
:class:`~tempsmirk.training.Trainer` runs them):

1. **the reconstruction path** (:func:`first_path`): encode the image -> FLAME parameters ->
   mesh and landmarks; landmark losses (17 jaw-contour points of the 68, the 105 MediaPipe
   points) and regularisers; render the face, hide the face in the input
   (:func:`tempsmirk.smirk.masking.mask_face`) and let the generator redraw the image from
   rendering + masked image: L1, VGG perceptual, and the emotion-feature loss (a second
   generator pass with the generator frozen and in eval mode, so that loss trains only the
   encoder). Both networks step on it.
2. **the augmented cycle** (:func:`tempsmirk.smirk.cycle.cycle_path`), after that update.

A clip batch (B clips × T frames, chapter 5) is flattened clip-major to B·T frames, and the
encoder output is regrouped into (B, T, ...) clips for :func:`tempsmirk.temporal.temporal_loss`,
whose weighted terms join the reconstruction path's total — on every iteration, as the paper's
fork adds them to its first path — and no difference is ever taken across two clips.

:func:`smirk_step` and :func:`clip_step` compute both passes' losses at the *current* weights
(no update in between): what one iteration optimises, for inspection and tests.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Optional

import torch
from torch import Tensor, nn

from tempsmirk.data.types import FaceBatch
from tempsmirk.losses import (
    EmotionLoss,
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
from tempsmirk.smirk.cycle import CycleConfig, CycleOutput, ExpressionTemplates, cycle_path
from tempsmirk.smirk.encoder import EncoderOutput
from tempsmirk.smirk.masking import MaskedInput, MaskingConfig, face_hull_points, mask_face
from tempsmirk.temporal import TemporalTerms, TemporalWeights, clip_params, temporal_loss

__all__ = ["LossTerms", "StepOutput", "first_path", "smirk_step", "clip_step", "generator_needed",
           "frozen_eval"]


def generator_needed(weights: LossWeights, cycle: CycleConfig, perceptual: Optional[PerceptualLoss] = None) -> bool:
    """Whether any weighted loss uses the generator (False in encoder pretraining)."""
    vgg = perceptual is not None and perceptual.enabled and weights.perceptual > 0
    return bool(weights.reconstruction > 0 or vgg or weights.emotion > 0 or (cycle.enabled and weights.cycle > 0))


class frozen_eval:
    """Context manager: a module in eval mode with ``requires_grad`` off, both restored after
    (SMIRK's ``freeze_module`` / ``unfreeze_module`` around a pass)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __enter__(self) -> nn.Module:
        self._training = [m.training for m in self.module.modules()]
        self._grad = [p.requires_grad for p in self.module.parameters()]
        self.module.eval().requires_grad_(False)
        return self.module

    def __exit__(self, *exc) -> None:
        for m, t in zip(self.module.modules(), self._training):
            m.training = t
        for p, g in zip(self.module.parameters(), self._grad):
            p.requires_grad_(g)


@dataclass(frozen=True)
class LossTerms:
    """Every loss of an iteration, unweighted (each a () tensor), and the weighted ``total``.

    ``total`` is what the reconstruction path backpropagates (plus the temporal terms of a clip
    batch), plus ``weights.cycle · cycle`` when the cycle was computed; the Trainer backpropagates
    the cycle in its own pass.
    """

    landmarks_fan: Tensor
    landmarks_mp: Tensor
    expression_reg: Tensor
    jaw_reg: Tensor
    shape_reg: Tensor
    reconstruction: Tensor
    perceptual: Tensor
    emotion: Tensor
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
    """What an iteration computed.

    losses: :class:`LossTerms`.
    params: the encoder's predictions for the batch (B·T rows for clips).
    rendering: (B, 3, H, W) face-region shading of the predicted mesh; None when nothing needed
        a rendering (``render=False``).
    masked: the generator's masked input (:class:`MaskedInput`); None when it did not render.
    screen_vertices: (B, V, 3) the predicted mesh in pixels (what the cycle samples on); None
        when it did not render.
    generated: (B, 3, H, W) the generator's reconstruction; None when no loss needs it
        (encoder pretraining: landmarks and regularisers only).
    cycle: the cycle path's outputs, or None when it did not run.
    temporal: the temporal terms of a clip batch (their weighted ``total`` is included in
        ``losses.total``), None for single frames.
    """

    losses: LossTerms
    params: EncoderOutput
    rendering: Optional[Tensor]
    masked: Optional[MaskedInput]
    generated: Optional[Tensor]
    cycle: Optional[CycleOutput] = None
    temporal: Optional[TemporalTerms] = None
    screen_vertices: Optional[Tensor] = None

    def with_cycle(self, cycle: CycleOutput, weights: LossWeights) -> "StepOutput":
        """This output with a cycle pass's loss added (``losses.cycle`` and the total)."""
        losses = replace(self.losses, cycle=cycle.loss, total=self.losses.total + weights.cycle * cycle.loss)
        return replace(self, losses=losses, cycle=cycle)


def first_path(encoder: nn.Module, generator: nn.Module, flame: nn.Module, batch: FaceBatch,
               weights: LossWeights, masking: MaskingConfig, face_mask: Optional[Tensor], face_weights: Tensor,
               rng: torch.Generator, perceptual: Optional[PerceptualLoss] = None,
               emotion: Optional[EmotionLoss] = None, shape_trains: bool = False, expression_trains: bool = True,
               render: bool = True, temporal: Optional[TemporalWeights] = None) -> StepOutput:
    """SMIRK's reconstruction path (the reference's ``step1``). Explained in chapter 3.

    Args:
        encoder, generator, flame: the models (on the batch's device).
        batch: a frame :class:`FaceBatch` ((B, 3, H, W) images, landmarks normalised) or a clip
            batch ((B, T, 3, H, W), with ``temporal``).
        weights: loss weights; masking: its config section.
        face_mask: (F,) bool faces rendered (FLAME's face region); None draws all.
        face_weights: (F,) sampling weights (:func:`~tempsmirk.smirk.masking.face_sampling_weights`).
        rng: CPU ``torch.Generator`` for the masking draws.
        perceptual: VGG loss module, or None (off).
        emotion: the emotion-feature loss module; required when ``weights.emotion`` > 0.
        shape_trains, expression_trains: add the shape / expression and jaw regularisers, as
            SMIRK adds each only while its branch trains.
        render: render and mask even when no loss of this path needs the generator (for the
            cycle path, which samples on this rendering, and for pictures). ``False`` skips both
            when nothing needs them (about 40 % of an encoder-only step on a CPU); ``rendering``
            and ``masked`` are then None.
        temporal: the weights of eqs. (3)–(4) for a clip batch (all zero: the non-temporal
            baseline, whose terms are still computed for the log); must be None for frames.
    Returns:
        :class:`StepOutput` without ``cycle``; ``losses.total`` is this path's weighted sum.
    """
    t = 0
    if batch.is_clip:
        t = batch.image.shape[1]
        batch = batch.frames()
    elif temporal is not None:
        raise ValueError("temporal weights need a clip batch with (B, T, 3, H, W) images; got "
                         f"{tuple(batch.image.shape)}")
    if weights.emotion > 0 and emotion is None:
        raise ValueError(f"the emotion-feature loss has weight {weights.emotion} but no emotion network "
                         f"was given; set model.emotion_path to EMOCA's ResNet-50 emotion checkpoint or "
                         f"loss.emotion=0")
    image = batch.image
    size = image.shape[-1]
    p = encoder(image)
    out = flame(shape=p.shape, expression=p.expression, global_pose=p.global_pose,
                jaw_pose=p.jaw_pose, eyelids=p.eyelids)
    lmk68 = project_points(out.landmarks68, p.cam, size).normalised
    lmk_mp = project_points(out.landmarks_mp, p.cam, size).normalised
    valid = batch.landmarks_valid
    l_fan = landmark_loss(jaw_contour(lmk68), jaw_contour(batch.landmarks68), batch.fan_valid)
    l_mp = landmark_loss(lmk_mp, batch.landmarks_mp, valid)
    zero = l_fan.new_zeros(())
    l_exp, l_jaw = (expression_reg(p.expression), jaw_reg(p.jaw_pose)) if expression_trains else (zero, zero)
    l_shape = shape_reg(p.shape) if shape_trains else zero

    # The generator's losses of this path (the cycle's rendering is asked for with ``render``).
    needed = generator_needed(weights, CycleConfig(enabled=False), perceptual)
    rendering = masked = None
    if render or needed:
        rendering = render_mesh(out.vertices, flame.faces, p.cam, size, face_mask=face_mask)
        # The hull comes from the *detected* landmarks: where the face really is in the image.
        hull = batch.hull_points if batch.hull_points is not None else face_hull_points(
            batch.landmarks68, batch.landmarks_mp)
        masked = mask_face(image, hull, rendering, flame.faces, face_weights, masking, rng)
    generated, l_rec, l_vgg, l_emo = None, zero, zero, zero
    if needed:
        gen_input = torch.cat([rendering.image, masked.image], dim=1)
        generated = generator(gen_input)
        l_rec = reconstruction_loss(generated, image)
        if perceptual is not None and weights.perceptual:
            l_vgg = perceptual(generated, image)
        if weights.emotion > 0:
            # Only the encoder learns from this term: the generator is frozen and in eval mode.
            with frozen_eval(generator):
                l_emo = emotion(generator(gen_input), image)

    w = weights
    total = (w.landmarks_fan * l_fan + w.landmarks_mp * l_mp + w.expression_reg * l_exp
             + w.jaw_reg * l_jaw + w.shape_reg * l_shape + w.reconstruction * l_rec
             + w.perceptual * l_vgg + w.emotion * l_emo)
    terms = None
    if t:
        terms = temporal_loss(clip_params(p, t), temporal if temporal is not None else TemporalWeights())
        total = total + terms.total
    losses = LossTerms(landmarks_fan=l_fan, landmarks_mp=l_mp, expression_reg=l_exp, jaw_reg=l_jaw,
                       shape_reg=l_shape, reconstruction=l_rec, perceptual=l_vgg, emotion=l_emo,
                       cycle=zero, total=total)
    return StepOutput(losses=losses, params=p, rendering=None if rendering is None else rendering.image,
                      masked=masked, generated=generated, temporal=terms,
                      screen_vertices=None if rendering is None else rendering.screen_vertices.detach())


def smirk_step(encoder: nn.Module, generator: nn.Module, flame: nn.Module, batch: FaceBatch,
               weights: LossWeights, masking: MaskingConfig, cycle: CycleConfig, face_mask: Optional[Tensor],
               face_weights: Tensor, templates: ExpressionTemplates, rng: torch.Generator,
               perceptual: Optional[PerceptualLoss] = None, shape_trains: bool = False,
               render: bool = True, emotion: Optional[EmotionLoss] = None,
               cycle_trains_generator: bool = True) -> StepOutput:
    """Both passes' losses for a batch of single frames at the current weights. Chapter 3.

    :func:`first_path`, then (when ``cycle.enabled`` and ``weights.cycle``) the cycle path on the
    same weights — in training the cycle runs after the first path's update. The arguments are
    those of :func:`first_path` plus ``cycle`` (its config), ``templates`` (the bank) and
    ``cycle_trains_generator`` (even iterations: True, the generator learns in the cycle; odd:
    False, the encoder does). ``losses.total`` includes ``weights.cycle · cycle``.
    """
    out = first_path(encoder, generator, flame, batch, weights, masking, face_mask, face_weights, rng,
                     perceptual, emotion, shape_trains, render=render or (cycle.enabled and weights.cycle > 0))
    return _with_cycle(out, encoder, generator, flame, batch.frames(), weights, masking, cycle, face_mask,
                       face_weights, templates, rng, cycle_trains_generator)


def clip_step(encoder: nn.Module, generator: nn.Module, flame: nn.Module, batch: FaceBatch,
              weights: LossWeights, masking: MaskingConfig, cycle: CycleConfig, face_mask: Optional[Tensor],
              face_weights: Tensor, templates: ExpressionTemplates, rng: torch.Generator,
              perceptual: Optional[PerceptualLoss] = None, shape_trains: bool = False,
              temporal: TemporalWeights = TemporalWeights(), render: bool = False,
              emotion: Optional[EmotionLoss] = None, cycle_trains_generator: bool = True) -> StepOutput:
    """:func:`smirk_step` for a clip batch: SMIRK's losses on every frame plus the weighted
    temporal terms (eq. 5). Explained in chapter 5.

    ``batch`` is a clip :class:`FaceBatch` ((B, T, 3, H, W) images); ``temporal`` the weights of
    eqs. (3)–(4) (all zero: the non-temporal baseline, whose terms are still computed for the
    log); ``render`` as in :func:`first_path` (default False: clip training on a CPU is long
    enough without renderings nobody looks at). Returns a :class:`StepOutput` with (B·T, ...)
    ``params`` and images, ``temporal`` set, and ``losses.total`` = SMIRK total +
    ``temporal.total``.
    """
    if not batch.is_clip:
        raise ValueError(f"clip_step needs a clip batch with (B, T, 3, H, W) images; got "
                         f"{tuple(batch.image.shape)}. Use smirk_step for single frames")
    out = first_path(encoder, generator, flame, batch, weights, masking, face_mask, face_weights, rng,
                     perceptual, emotion, shape_trains, render=render or (cycle.enabled and weights.cycle > 0),
                     temporal=temporal)
    return _with_cycle(out, encoder, generator, flame, batch.frames(), weights, masking, cycle, face_mask,
                       face_weights, templates, rng, cycle_trains_generator)


def _with_cycle(out: StepOutput, encoder, generator, flame, frames: FaceBatch, weights: LossWeights,
                masking: MaskingConfig, cycle: CycleConfig, face_mask, face_weights, templates, rng,
                generator_trains: bool) -> StepOutput:
    if not (cycle.enabled and weights.cycle > 0):
        return out
    cyc = cycle_path(encoder, generator, flame, frames.image, out.params, out.masked.hidden, out.screen_vertices,
                     face_mask, face_weights, templates, masking, rng, generator_trains)
    return out.with_cycle(cyc, weights)
