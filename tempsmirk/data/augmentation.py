"""Training augmentation (chapters 3 and 5; README, "Training data"): SMIRK's pipeline for face
images, and the crop, rotation and colour augmentation of clips, drawn once per clip or per frame.

Shapes: n images, T frames, H = W image size, L landmarks. Landmarks are normalised image
coordinates (x right, y down, [-1, 1] over the image; :mod:`tempsmirk.render.camera`). Both pipelines
move images and landmarks with the same operations (:mod:`tempsmirk.data.transforms`): one
similarity matrix per image, :func:`~tempsmirk.data.transforms.warp_images` for the pixels and
:func:`~tempsmirk.data.transforms.transform_points` for the landmarks.

**SMIRK's pipeline** (:class:`FaceAugmentationConfig`, :func:`draw_augmentation`,
:func:`augment_faces`; the face corpora of :class:`~tempsmirk.data.FaceSource`). SMIRK
(``datasets/base_dataset.py``) augments each face crop with an albumentations 1.3 pipeline, in this
order and with these probabilities (albumentations' defaults where SMIRK gives none):

============================  ====  ============================================================
operation                     p     parameters
============================  ====  ============================================================
RandomBrightnessContrast      0.5   x·α + β, α ∈ 1 ± 0.2, β ∈ ±0.2 (drawn together)
RandomGamma                   0.5   x^γ, γ ∈ [0.8, 1.2]
ColorJitter                   0.25  brightness, contrast, saturation ∈ 1 ± 0.05, hue ± 0.05 turn,
                                    in a random order
CLAHE                         0.255 clip limit ∈ [1, 4], 8 × 8 tiles, on the L channel of Lab
RGBShift                      0.25  per-channel shift ∈ ±20/255
Blur                          0.1   box filter, size ∈ {3, 5, 7}
GaussNoise                    0.5   σ = √v / 255, v ∈ [10, 50], per pixel and channel
ShiftScaleRotate              0.9   shift ± 0.05 of the size, scale 1 ± 0.1, rotation ± 10°,
                                    black border; the landmarks move with the image
============================  ====  ============================================================

albumentations needs ``opencv-python-headless``, which clashes with MediaPipe's
``opencv-contrib-python`` (guide §3), so the operations here are kornia's (``kornia.enhance``,
``kornia.filters``, ``kornia.color``) and torch's resampling. Its ``kornia.augmentation`` modules
are not used: they draw from torch's global generator (we draw from a ``torch.Generator``, so an
item's augmentation is a pure function of its seed and ``--resume`` is exact) and they compute
every operation for every image and select afterwards (an ``AugmentationSequential`` of this
pipeline took 23 ms of CPU per 224 px image here, this module 6 ms).

Where we differ from albumentations: float images throughout (no 8-bit rounding between steps),
kornia's CLAHE (OpenCV's clip rule, a half-pixel different tile phase; tested against OpenCV),
the colour jitter's HSV formulas (kornia's, not OpenCV's), and the rotation centre at the
pixel-grid centre. For clips one draw is shared by all T frames (noise σ included; the noise
itself is drawn per frame).

**Clip augmentation** (:class:`ClipAugmentation`, :func:`draw_clip_transform`,
:func:`augment_frames`; :class:`~tempsmirk.data.MeadClips` and synthetic clips). SMIRK augments
every training image with a fresh draw. The fork that produced the paper's Table 2 reads a clip
frame by frame through that same code, so each of the 32 frames of a training clip gets its *own*
crop, rotation and colour. That adds frame-to-frame jitter to the input — and, for the rotation, to
the head pose the landmarks supervise — which the temporal loss then fights. Here one draw serves
the whole clip by default (the clip looks like a video filmed differently, not like a shaking
one); ``per_frame=True`` draws every frame independently, the fork's way. Both draw from the same
distribution per frame; chapter 5 measures the difference.

It is a pipeline of its own, not SMIRK's with a repeated draw, for three reasons: its zoom stands
in for SMIRK's crop-scale draw, which MEAD's crops (cut once at 1.4 by ``data_prep``) cannot redo;
on synthetic clips :func:`augment_params` moves the ground truth exactly with the image (the
camera follows zoom and shift, the global head pose takes the in-plane rotation), which SMIRK's
photometric steps have no counterpart for; and its brightness, contrast and saturation
(:func:`~tempsmirk.data.transforms.colour_jitter`: the channel mean as grey, one clamp at the end)
are the settings ``data.mead.augmentation`` / ``data.synthetic.augmentation`` and chapter 5's
measurement use, where SMIRK's ColorJitter step (torchvision's luma grey, a clamp after each step)
would give other pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Callable, Sequence

import torch
from torch import Tensor

from tempsmirk.data.transforms import colour_jitter, similarity, transform_points, warp_images
from tempsmirk.flame.params import FlameParams

__all__ = ["FaceAugmentationConfig", "AugmentationDraw", "draw_augmentation", "augment_colour", "ssr_matrices",
           "augment_faces", "ClipAugmentation", "ClipTransform", "draw_clip_transform", "augment_frames",
           "augment_params", "roll_global_pose"]


# ----------------------------------------------------------------------------- SMIRK's pipeline


@dataclass
class FaceAugmentationConfig:
    """Probabilities and ranges of SMIRK's augmentation (defaults: SMIRK's, module docstring).

    Probabilities: ``p_*`` (0 switches an operation off). Ranges: ``brightness``/``contrast``
    (α ∈ 1 ± contrast, β ∈ ± brightness), ``gamma_min``/``gamma_max``, ``jitter`` (brightness,
    contrast, saturation and hue of the colour jitter), ``clahe_clip_max`` (clip limit ∈ [1, max]),
    ``clahe_tiles``, ``rgb_shift`` (in [0, 1] units), ``blur_max`` (largest odd box size),
    ``noise_var_min``/``noise_var_max`` (variance in 8-bit units²), ``shift`` (fraction of the
    size), ``scale`` (1 ± scale), ``rotate`` (degrees).
    """

    p_brightness_contrast: float = 0.5
    p_gamma: float = 0.5
    p_jitter: float = 0.25
    p_clahe: float = 0.255
    p_rgb_shift: float = 0.25
    p_blur: float = 0.1
    p_noise: float = 0.5
    p_affine: float = 0.9
    brightness: float = 0.2
    contrast: float = 0.2
    gamma_min: float = 0.8
    gamma_max: float = 1.2
    jitter: float = 0.05
    clahe_clip_max: float = 4.0
    clahe_tiles: int = 8
    rgb_shift: float = 20 / 255
    blur_max: int = 7
    noise_var_min: float = 10.0
    noise_var_max: float = 50.0
    shift: float = 0.05
    scale: float = 0.1
    rotate: float = 10.0

    def __post_init__(self) -> None:
        bad = [f.name for f in fields(self) if f.name.startswith("p_") and not 0 <= getattr(self, f.name) <= 1]
        if bad:
            raise ValueError(f"augmentation probabilities (data.mix.augmentation.p_*) must lie in [0, 1]; check {bad}")
        if self.blur_max < 3 or self.blur_max % 2 == 0:
            raise ValueError(f"data.mix.augmentation.blur_max must be an odd size >= 3; got {self.blur_max}")


@dataclass(frozen=True)
class AugmentationDraw:
    """The augmentation of n images: for each operation a (n,) bool ``on`` mask and its parameters.

    contrast, brightness: (n,) α, β. gamma: (n,). jitter: (n, 4) brightness, contrast, saturation
    factors and hue (turns); jitter_order: (n, 4) a permutation of 0..3. clahe_clip: (n,).
    rgb: (n, 3). blur: (n,) odd box sizes. noise_std: (n,) in [0, 1] units. angle: (n,) degrees,
    scale: (n,), shift: (n, 2) fractions of the size.
    """

    bc_on: Tensor
    contrast: Tensor
    brightness: Tensor
    gamma_on: Tensor
    gamma: Tensor
    jitter_on: Tensor
    jitter: Tensor
    jitter_order: Tensor
    clahe_on: Tensor
    clahe_clip: Tensor
    rgb_on: Tensor
    rgb: Tensor
    blur_on: Tensor
    blur: Tensor
    noise_on: Tensor
    noise_std: Tensor
    affine_on: Tensor
    angle: Tensor
    scale: Tensor
    shift: Tensor

    def repeat(self, t: int) -> "AugmentationDraw":
        """A draw of one image shared by t images (the frames of a clip)."""
        return AugmentationDraw(**{f.name: getattr(self, f.name).expand(t, *getattr(self, f.name).shape[1:])
                                   for f in fields(self)})


def draw_augmentation(cfg: FaceAugmentationConfig, n: int, generator: torch.Generator) -> AugmentationDraw:
    """Draw the augmentation of n images. Every parameter is always drawn, in a fixed order, so
    switching one operation off does not change the others' realisation."""
    g = generator

    def u(lo: float, hi: float, *shape: int) -> Tensor:
        return lo + (hi - lo) * torch.rand((n, *shape), generator=g)

    def on(p: float) -> Tensor:
        return torch.rand(n, generator=g) < p

    j = cfg.jitter
    blur_sizes = torch.arange(3, cfg.blur_max + 1, 2)
    return AugmentationDraw(
        bc_on=on(cfg.p_brightness_contrast), contrast=u(1 - cfg.contrast, 1 + cfg.contrast),
        brightness=u(-cfg.brightness, cfg.brightness),
        gamma_on=on(cfg.p_gamma), gamma=u(cfg.gamma_min, cfg.gamma_max),
        jitter_on=on(cfg.p_jitter),
        jitter=torch.cat([u(1 - j, 1 + j, 3), u(-j, j, 1)], dim=1),
        jitter_order=torch.argsort(torch.rand(n, 4, generator=g), dim=1),
        clahe_on=on(cfg.p_clahe), clahe_clip=u(1.0, cfg.clahe_clip_max),
        rgb_on=on(cfg.p_rgb_shift), rgb=u(-cfg.rgb_shift, cfg.rgb_shift, 3),
        blur_on=on(cfg.p_blur),
        blur=blur_sizes[torch.randint(len(blur_sizes), (n,), generator=g)],
        noise_on=on(cfg.p_noise), noise_std=u(cfg.noise_var_min, cfg.noise_var_max).sqrt() / 255,
        affine_on=on(cfg.p_affine), angle=u(-cfg.rotate, cfg.rotate), scale=u(1 - cfg.scale, 1 + cfg.scale),
        shift=u(-cfg.shift, cfg.shift, 2),
    )


def _where(mask: Tensor, image: Tensor, fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """``fn(image[k], k)`` for the images k selected by ``mask``; the others unchanged."""
    k = mask.nonzero().flatten()
    if k.numel() == 0:
        return image
    out = image.clone()
    out[k] = fn(image[k], k)
    return out


def _jitter(x: Tensor, factors: Tensor, order: Tensor) -> Tensor:
    """torchvision's colour jitter (kornia's functions) on one image (1, 3, H, W)."""
    import kornia.enhance as KE

    steps = (lambda y, f: KE.adjust_brightness_accumulative(y, f),
             lambda y, f: KE.adjust_contrast_with_mean_subtraction(y, f),
             lambda y, f: KE.adjust_saturation_with_gray_subtraction(y, f),
             lambda y, f: KE.adjust_hue(y, f * 2 * math.pi))
    for i in order.tolist():
        x = steps[i](x, factors[i:i + 1])
    return x.clamp(0, 1)


def _clahe_luminance(x: Tensor, clip: Tensor, tiles: int) -> Tensor:
    """CLAHE on the L channel of Lab, as albumentations does for RGB: (k, 3, H, W), clip (k,)."""
    import kornia.color as KC
    import kornia.enhance as KE

    lab = KC.rgb_to_lab(x.clamp(0, 1))
    light = (lab[:, :1] / 100).clamp(0, 1)
    eq = torch.cat([KE.equalize_clahe(light[i:i + 1], float(clip[i]), (tiles, tiles)) for i in range(len(x))])
    return KC.lab_to_rgb(torch.cat([eq * 100, lab[:, 1:]], dim=1), clip=True)


def augment_colour(image: Tensor, draw: AugmentationDraw, cfg: FaceAugmentationConfig,
                   generator: torch.Generator) -> Tensor:
    """SMIRK's photometric steps, in its order, on (n, 3, H, W) images in [0, 1] -> (n, 3, H, W).

    generator: draws the noise fields (the last draw, so its size does not shift other draws).
    """
    import kornia.enhance as KE
    import kornia.filters as KF

    d = draw
    x = image
    x = _where(d.bc_on, x, lambda y, k: KE.adjust_brightness(
        KE.adjust_contrast(y, d.contrast[k].to(y), clip_output=False), d.brightness[k].to(y)))
    x = _where(d.gamma_on, x, lambda y, k: KE.adjust_gamma(y.clamp(0, 1), d.gamma[k].to(y)))
    x = _where(d.jitter_on, x, lambda y, k: torch.cat(
        [_jitter(y[i:i + 1], d.jitter[kk].to(y), d.jitter_order[kk]) for i, kk in enumerate(k.tolist())]))
    x = _where(d.clahe_on, x, lambda y, k: _clahe_luminance(y, d.clahe_clip[k], cfg.clahe_tiles))
    x = _where(d.rgb_on, x, lambda y, k: KE.shift_rgb(y, *d.rgb[k].to(y).unbind(1)))

    def blur(y: Tensor, k: Tensor) -> Tensor:
        out = y.clone()
        for size in d.blur[k].unique().tolist():
            sel = (d.blur[k] == size).nonzero().flatten()
            out[sel] = KF.box_blur(y[sel], (size, size), border_type="reflect")
        return out

    x = _where(d.blur_on, x, blur)
    k = d.noise_on.nonzero().flatten()
    if k.numel():
        noise = torch.randn((k.numel(), *x.shape[1:]), generator=generator).to(x)
        x = x.clone()
        x[k] = (x[k] + noise * d.noise_std[k].to(x)[:, None, None, None]).clamp(0, 1)
    return x


def ssr_matrices(draw: AugmentationDraw) -> Tensor:
    """ShiftScaleRotate as (n, 2, 3) maps of normalised coordinates (identity where ``affine_on``
    is False): x' = s·R(−θ)·x + 2·d (:func:`~tempsmirk.data.transforms.similarity`; the image spans
    2 normalised units, so a shift of d of the size is 2d). Positive θ turns the content
    counter-clockwise on screen (y points down), as OpenCV's ``getRotationMatrix2D`` does."""
    m = similarity(draw.scale.float(), 2 * draw.shift.float(), -torch.deg2rad(draw.angle.float()))
    eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand_as(m)
    return torch.where(draw.affine_on[:, None, None], m, eye)


def augment_faces(image: Tensor, points: Tensor, draw: AugmentationDraw, cfg: FaceAugmentationConfig,
                  generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """The whole pipeline: colour steps, then ShiftScaleRotate of the image and its landmarks.

    image: (n, 3, H, W) in [0, 1]; points: (n, L, 2) normalised (all landmark sets concatenated).
    Returns (image, points) transformed alike.
    """
    image = augment_colour(image, draw, cfg, generator)
    m = ssr_matrices(draw)
    image = _where(draw.affine_on, image, lambda y, k: warp_images(y, m[k]).clamp(0, 1))
    return image, transform_points(points, m)


# ----------------------------------------------------------------------------- clips


@dataclass
class ClipAugmentation:
    """Crop, rotation and colour augmentation of a clip (``data.mead.augmentation``,
    ``data.synthetic.augmentation``).

    zoom_min, zoom_max: relative zoom k (uniform; 1 = as cropped, < 1 shows more background;
        SMIRK's crop scales 1.2–1.8 against data_prep's 1.4 give about 0.78–1.17).
    shift: |dx|, |dy| bound of the shift, normalised units (the image spans [-1, 1]).
    rotation: |θ| bound of the in-plane rotation, degrees (SMIRK's: 10).
    brightness, contrast, saturation: each factor uniform in [1 − v, 1 + v].
    per_frame: draw every frame independently (the fork behind Table 2 does) instead of once per
        clip (default; module docstring).
    """

    zoom_min: float = 0.85
    zoom_max: float = 1.15
    shift: float = 0.08
    rotation: float = 10.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    per_frame: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.zoom_min <= self.zoom_max:
            raise ValueError(f"augmentation: need 0 < zoom_min <= zoom_max; got {self.zoom_min}, {self.zoom_max}")
        bounds = dict(shift=self.shift, rotation=self.rotation, brightness=self.brightness,
                      contrast=self.contrast, saturation=self.saturation)
        bad = {k: v for k, v in bounds.items() if not (v >= 0 and math.isfinite(v))}
        if bad or self.rotation > 180 or max(self.brightness, self.contrast, self.saturation) > 1:
            raise ValueError(f"augmentation: shift, rotation (<= 180 degrees) and the colour bounds "
                             f"(<= 1) must be finite and >= 0; got {bounds}")


@dataclass(frozen=True)
class ClipTransform:
    """The augmentation of one clip's T frames: zoom (T,) k; angle (T,) θ in radians; shift
    (T, 2) d; brightness, contrast, saturation (T,) factors. Equal across frames unless drawn
    per frame."""

    zoom: Tensor
    angle: Tensor
    shift: Tensor
    brightness: Tensor
    contrast: Tensor
    saturation: Tensor


def draw_clip_transform(aug: ClipAugmentation, t: int, generator: torch.Generator) -> ClipTransform:
    """Draw the augmentation of a T-frame clip from ``generator``: one draw repeated over the
    frames, or T independent draws with ``aug.per_frame``. Every value is uniform in its range
    (:class:`ClipAugmentation`), so one frame's distribution is the same either way."""
    n = t if aug.per_frame else 1
    g = generator
    u = lambda lo, hi, *shape: lo + (hi - lo) * torch.rand(n, *shape, generator=g)  # noqa: E731
    rot = math.radians(aug.rotation)
    draws = dict(zoom=u(aug.zoom_min, aug.zoom_max), angle=u(-rot, rot), shift=u(-aug.shift, aug.shift, 2),
                 brightness=u(1 - aug.brightness, 1 + aug.brightness),
                 contrast=u(1 - aug.contrast, 1 + aug.contrast),
                 saturation=u(1 - aug.saturation, 1 + aug.saturation))
    return ClipTransform(**{k: v.expand(t, *v.shape[1:]).clone() for k, v in draws.items()})


def augment_frames(image: Tensor, points: Sequence[Tensor], tf: ClipTransform,
                   padding_mode: str = "zeros") -> tuple[Tensor, tuple[Tensor, ...]]:
    """Apply a clip's transform to its frames and landmarks.

    image: (T, 3, H, W) in [0, 1], square; points: landmark sets, each (T, L, 2) normalised
    image coordinates; padding_mode: what fills pixels from outside the frame (``"zeros"``, as
    SMIRK's crops; ``"reflection"``; ``"border"``). Returns the image (T, 3, H, W) clamped to
    [0, 1] and the moved landmark sets.
    """
    m = similarity(tf.zoom.to(image), tf.shift.to(image), tf.angle)
    image = colour_jitter(warp_images(image, m, padding_mode), tf.brightness, tf.contrast, tf.saturation)
    return image, tuple(transform_points(p, m) for p in points)


def _quaternion(axis_angle: Tensor) -> Tensor:
    """(n, 3) axis-angle -> (n, 4) unit quaternions (w, x, y, z)."""
    angle = axis_angle.norm(dim=-1, keepdim=True)
    half = angle / 2
    # sin(θ/2)/θ, with its series where θ is tiny (no division by zero, smooth gradient).
    k = torch.where(angle > 1e-6, torch.sin(half) / angle.clamp_min(1e-6), 0.5 - angle ** 2 / 48)
    return torch.cat([torch.cos(half), axis_angle * k], dim=-1)


def _axis_angle(q: Tensor) -> Tensor:
    """(n, 4) unit quaternions -> (n, 3) axis-angle with angle in [0, π]."""
    q = torch.where(q[:, :1] < 0, -q, q)
    w, v = q[:, :1], q[:, 1:]
    s = v.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(s, w)
    k = torch.where(s > 1e-6, angle / s.clamp_min(1e-6), 2 / w.clamp_min(1e-6))
    return v * k


def roll_global_pose(global_pose: Tensor, angle: Tensor) -> Tensor:
    """R_z(angle)·R(global_pose) as axis-angle: the head turned by ``angle`` (radians,
    counter-clockwise seen from the camera in FLAME's y-up frame) about the camera's axis.

    global_pose: (n, 3) axis-angle; angle: (n,). Returns (n, 3). Composed with quaternions, so
    it is exact for any rotation (angles up to π)."""
    qg = _quaternion(global_pose)
    half = angle.to(global_pose)[:, None] / 2
    w1, z1 = torch.cos(half), torch.sin(half)  # q_z = (cos, 0, 0, sin)
    w2, x2, y2, z2 = qg.unbind(-1)
    w2, x2, y2, z2 = w2[:, None], x2[:, None], y2[:, None], z2[:, None]
    q = torch.cat([w1 * w2 - z1 * z2, w1 * x2 - z1 * y2, w1 * y2 + z1 * x2, w1 * z2 + z1 * w2], dim=-1)
    return _axis_angle(q)


def augment_params(params: FlameParams, root_joint: Tensor, tf: ClipTransform) -> FlameParams:
    """The ground truth that renders exactly the augmented frames (synthetic clips).

    params: (T, ...) fields, the parameters that rendered the frames; root_joint: (T, 3) FLAME's
    global joint J₀ (the pivot of the global pose; ``flame(...).joints[:, 0]``); tf: the frames'
    transform. With F = diag(1, −1) (image y down, FLAME y up), the image move x -> k·R(θ)·x + d
    of a projection x = s·F·(v_xy + t) is, in FLAME's frame, a rotation by −θ about the camera
    axis and a new camera: the global pose becomes R_z(−θ)·R_g and

        s' = k·s,    t' = R(−θ)·t + (R_z(−θ)·J₀ − J₀)_xy + F·d / (k·s)

    (the middle term because the head turns about J₀, not about the origin). Exact for every
    vertex the global pose moves; FLAME adds the eyelid displacement after skinning, unrotated,
    so an eyelid point is off by at most 2·sin(θ/2)·|displacement|. Returns (T, ...) fields with
    ``cam`` and ``global_pose`` replaced.
    """
    k, th, d = tf.zoom.to(params.cam), tf.angle.to(params.cam), tf.shift.to(params.cam)
    s, t = params.cam[:, 0], params.cam[:, 1:]
    c, sn = torch.cos(th), torch.sin(th)
    rot = lambda x: torch.stack([c * x[:, 0] + sn * x[:, 1], -sn * x[:, 0] + c * x[:, 1]], -1)  # noqa: E731  R(−θ)
    j = root_joint.to(params.cam)[:, :2]
    s_new = k * s
    t_new = rot(t) + (rot(j) - j) + torch.stack([d[:, 0], -d[:, 1]], -1) / s_new[:, None]
    return replace(params, cam=torch.cat([s_new[:, None], t_new], -1),
                   global_pose=roll_global_pose(params.global_pose, -th))
