"""SMIRK's losses of one training iteration, as functions (chapter 3 dissects them).

Shapes: B batch, T frames, H W image size, V vertices. One iteration of SMIRK (the reference's
``SmirkTrainer.step``) has two passes, each with its own backward and optimiser steps (the
:class:`~tempsmirk.training.Trainer` runs them):

1. **the reconstruction path** (:func:`first_path`, the reference's ``step1``): encode the image
   -> FLAME parameters -> mesh and landmarks; landmark losses (17 jaw-contour points of the 68,
   the 105 MediaPipe points) and regularisers; render the face, hide the face in the input
   (:func:`tempsmirk.smirk.masking.mask_face`) and let the generator redraw the image from
   rendering + masked image: L1, VGG perceptual, and the emotion-feature loss (a second
   generator pass with the generator frozen and in eval mode, so that loss trains only the
   encoder). Both networks step on it.
2. **the augmented cycle** (:func:`cycle_path`, the reference's ``step2``), after that update:
   the parameters edited (:func:`tempsmirk.smirk.cycle.augment_params`), the edited face
   generated and read back.

Both take the iteration's fixed :class:`~tempsmirk.training.context.StepContext` (FLAME, face
mask, sampling weights, templates, loss weights, masking, temporal weights, loss modules).

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
from tempsmirk.flame.params import FlameParams
from tempsmirk.losses import (
    LossWeights,
    cycle_loss,
    expression_reg,
    jaw_contour,
    jaw_reg,
    landmark_loss,
    reconstruction_loss,
    shape_reg,
    weighted_sum,
)
from tempsmirk.render import project_points, render_mesh
from tempsmirk.smirk.cycle import Augmented, augment_params
from tempsmirk.smirk.masking import (
    MaskedInput,
    face_hull_points,
    mask_face,
    mask_image,
    point_pixels,
    sample_points,
    scaled_pixels,
    transfer_pixels,
)
from tempsmirk.temporal import TemporalTerms, clip_params, temporal_loss
from tempsmirk.training.context import StepContext

__all__ = ["LossTerms", "CycleOutput", "StepOutput", "first_path", "cycle_path", "smirk_step", "clip_step",
           "frozen_eval"]


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
class CycleOutput:
    """Everything the cycle path made (for the loss and for pictures).

    loss: () :func:`~tempsmirk.losses.cycle_loss` of re-encoded vs edited parameters.
    augmented: the edits.
    rendering: (B, 3, H, W) shading of the edited mesh.
    masked: (B, 3, H, W) the generator's masked input: face hidden, fresh points moved to the
        edited mesh.
    generated: (B, 3, H, W) the generator's image of the edited face.
    reencoded: :class:`~tempsmirk.flame.FlameParams` read back from ``generated``.
    """

    loss: Tensor
    augmented: Augmented
    rendering: Tensor
    masked: Tensor
    generated: Tensor
    reencoded: FlameParams


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
    params: FlameParams
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


def first_path(encoder: nn.Module, generator: nn.Module, batch: FaceBatch, ctx: StepContext,
               rng: torch.Generator, shape_trains: bool = False, expression_trains: bool = True,
               render: bool = True) -> StepOutput:
    """SMIRK's reconstruction path (the reference's ``step1``). Explained in chapter 3.

    Args:
        encoder, generator: the networks (on the batch's device).
        batch: a frame :class:`FaceBatch` ((B, 3, H, W) images, landmarks normalised) or a clip
            batch ((B, T, 3, H, W)), whose temporal terms are weighted by ``ctx.temporal``.
        ctx: the iteration's :class:`~tempsmirk.training.context.StepContext`.
        rng: CPU ``torch.Generator`` for the masking draws.
        shape_trains, expression_trains: add the shape / expression and jaw regularisers, as
            SMIRK adds each only while its branch trains.
        render: render and mask even when no loss of this path needs the generator (for the
            cycle path, which samples on this rendering, and for pictures). ``False`` skips both
            when nothing needs them (about 40 % of an encoder-only step on a CPU); ``rendering``
            and ``masked`` are then None.
    Returns:
        :class:`StepOutput` without ``cycle``; ``losses.total`` is this path's weighted sum.
    """
    t = 0
    if batch.is_clip:
        t = batch.image.shape[1]
        batch = batch.frames()
    weights, flame = ctx.weights, ctx.flame
    if weights.emotion > 0 and ctx.emotion is None:
        raise ValueError(f"the emotion-feature loss has weight {weights.emotion} but no emotion network "
                         f"was given; set model.emotion_path to EMOCA's ResNet-50 emotion checkpoint or "
                         f"loss.weights.emotion=0")
    image = batch.image
    size = image.shape[-1]
    p = encoder(image)
    out = flame.forward_params(p)
    lmk68 = project_points(out.landmarks68, p.cam, size).normalised
    lmk_mp = project_points(out.landmarks_mp, p.cam, size).normalised
    valid = batch.landmarks_valid
    l_fan = landmark_loss(jaw_contour(lmk68), jaw_contour(batch.landmarks68), batch.fan_valid)
    l_mp = landmark_loss(lmk_mp, batch.landmarks_mp, valid)
    zero = l_fan.new_zeros(())
    l_exp, l_jaw = (expression_reg(p.expression), jaw_reg(p.jaw_pose)) if expression_trains else (zero, zero)
    l_shape = shape_reg(p.shape) if shape_trains else zero

    # The generator's losses of this path (the cycle's rendering is asked for with ``render``).
    needed = ctx.generator_needed(cycle=False)
    rendering = masked = None
    if render or needed:
        rendering = render_mesh(out.vertices, flame.faces, p.cam, size, face_mask=ctx.face_mask)
        # The hull comes from the *detected* landmarks: where the face really is in the image.
        hull = batch.hull_points if batch.hull_points is not None else face_hull_points(
            batch.landmarks68, batch.landmarks_mp)
        masked = mask_face(image, hull, rendering, flame.faces, ctx.face_weights, ctx.masking, rng)
    generated, l_rec, l_vgg, l_emo = None, zero, zero, zero
    if needed:
        gen_input = torch.cat([rendering.image, masked.image], dim=1)
        generated = generator(gen_input)
        l_rec = reconstruction_loss(generated, image)
        if ctx.perceptual is not None and weights.perceptual:
            l_vgg = ctx.perceptual(generated, image)
        if weights.emotion > 0:
            # Only the encoder learns from this term: the generator is frozen and in eval mode.
            with frozen_eval(generator):
                l_emo = ctx.emotion(generator(gen_input), image)

    terms = dict(landmarks_fan=l_fan, landmarks_mp=l_mp, expression_reg=l_exp, jaw_reg=l_jaw,
                 shape_reg=l_shape, reconstruction=l_rec, perceptual=l_vgg, emotion=l_emo)
    total = weighted_sum(weights, terms)
    temporal_terms = None
    if t:
        temporal_terms = temporal_loss(clip_params(p, t), ctx.temporal)
        total = total + temporal_terms.total
    losses = LossTerms(**terms, cycle=zero, total=total)
    return StepOutput(losses=losses, params=p, rendering=None if rendering is None else rendering.image,
                      masked=masked, generated=generated, temporal=temporal_terms,
                      screen_vertices=None if rendering is None else rendering.screen_vertices.detach())


def cycle_path(encoder: nn.Module, generator: nn.Module, image: Tensor, params: FlameParams, hidden: Tensor,
               screen_vertices: Tensor, ctx: StepContext, rng: torch.Generator,
               generator_trains: bool) -> CycleOutput:
    """One augmented-cycle pass, SMIRK's ``step2`` (:mod:`tempsmirk.smirk.cycle` describes the
    edits and their numbers). Explained in chapter 3.

    Which network learns is the caller's business (the :class:`~tempsmirk.training.Trainer`
    freezes the encoder on even iterations and the generator on odd ones); ``generator_trains``
    says which case this is: when False the generated image is detached (only the encoder's
    reading is trained) and the shape term is left out, as in SMIRK.

    Args:
        encoder, generator: the networks.
        image: (B, 3, H, W) the input images.
        params: (B, ...) encoder outputs of ``image`` (detached here).
        hidden: (B, 1, H, W) the dilated landmark hull (``MaskedInput.hidden``).
        screen_vertices: (B, V, 3) pixel-space vertices of ``params``' mesh (the reconstruction
            path's rendering): fresh points are sampled on it.
        ctx: the iteration's :class:`~tempsmirk.training.context.StepContext` (FLAME, face mask,
            sampling weights, templates, masking: ``cycle_dropout`` used).
        rng: CPU ``torch.Generator``.
    """
    flame, masking = ctx.flame, ctx.masking
    size = image.shape[-1]
    aug = augment_params(params, ctx.templates, rng)
    a = aug.params
    with torch.no_grad():
        out = flame.forward_params(a)
        rendering = render_mesh(out.vertices, flame.faces, a.cam, size, face_mask=ctx.face_mask)
    n = max(1, int(masking.sample_fraction * size * size))
    points = sample_points(screen_vertices, flame.faces, ctx.face_weights, n, size, rng)
    source = point_pixels(points, screen_vertices, flame.faces, size)
    target = point_pixels(points, rendering.screen_vertices, flame.faces, size)
    extra = transfer_pixels(image, source, target, points.valid)
    masked, _, _ = mask_image(image, hidden, extra, rendering.mask, masking.colour_jitter, masking.cycle_dropout,
                              scaled_pixels(masking.patch_size, size), rng)
    generated = generator(torch.cat([rendering.image, masked], dim=1).detach())
    if not generator_trains:
        generated = generated.detach()
    reencoded = encoder(generated)
    loss = cycle_loss(reencoded, a, shape_weight=1.0 if generator_trains else 0.0)
    return CycleOutput(loss=loss, augmented=aug, rendering=rendering.image, masked=masked,
                       generated=generated, reencoded=reencoded)


def smirk_step(encoder: nn.Module, generator: nn.Module, batch: FaceBatch, ctx: StepContext, rng: torch.Generator,
               shape_trains: bool = False, render: bool = True, cycle_trains_generator: bool = True) -> StepOutput:
    """Both passes' losses for a batch of single frames at the current weights. Chapter 3.

    :func:`first_path`, then (when ``ctx.weights.cycle`` > 0) :func:`cycle_path` on the same
    weights — in training the cycle runs after the first path's update. ``cycle_trains_generator``:
    even iterations (True) the generator learns in the cycle; odd (False) the encoder does.
    ``losses.total`` includes ``weights.cycle · cycle``.
    """
    out = first_path(encoder, generator, batch, ctx, rng, shape_trains, render=render or ctx.cycle_on)
    return _with_cycle(out, encoder, generator, batch.frames(), ctx, rng, cycle_trains_generator)


def clip_step(encoder: nn.Module, generator: nn.Module, batch: FaceBatch, ctx: StepContext, rng: torch.Generator,
              shape_trains: bool = False, render: bool = False, cycle_trains_generator: bool = True) -> StepOutput:
    """:func:`smirk_step` for a clip batch: SMIRK's losses on every frame plus the temporal terms
    weighted by ``ctx.temporal`` (eq. 5; all zero: the non-temporal baseline, whose terms are
    still computed for the log). Explained in chapter 5.

    ``batch`` is a clip :class:`FaceBatch` ((B, T, 3, H, W) images); ``render`` as in
    :func:`first_path` (default False: clip training on a CPU is long enough without renderings
    nobody looks at). Returns a :class:`StepOutput` with (B·T, ...) ``params`` and images,
    ``temporal`` set, and ``losses.total`` = SMIRK total + ``temporal.total``.
    """
    if not batch.is_clip:
        raise ValueError(f"clip_step needs a clip batch with (B, T, 3, H, W) images; got "
                         f"{tuple(batch.image.shape)}. Use smirk_step for single frames")
    out = first_path(encoder, generator, batch, ctx, rng, shape_trains, render=render or ctx.cycle_on)
    return _with_cycle(out, encoder, generator, batch.frames(), ctx, rng, cycle_trains_generator)


def _with_cycle(out: StepOutput, encoder: nn.Module, generator: nn.Module, frames: FaceBatch, ctx: StepContext,
                rng: torch.Generator, generator_trains: bool) -> StepOutput:
    if not ctx.cycle_on:
        return out
    cyc = cycle_path(encoder, generator, frames.image, out.params, out.masked.hidden, out.screen_vertices, ctx,
                     rng, generator_trains)
    return out.with_cycle(cyc, ctx.weights)
