"""SMIRK's image augmentation, with kornia's operations and our seeded draws (README, "Training data").

Shapes: n images, H = W image size, L landmarks. Landmarks are normalised image coordinates
(x right, y down, [-1, 1] over the image; :mod:`tempsmirk.render.camera`).

SMIRK (``datasets/base_dataset.py``) augments each face crop with an albumentations 1.3 pipeline,
in this order and with these probabilities (albumentations' defaults where SMIRK gives none):

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
``kornia.filters``, ``kornia.color``, ``kornia.geometry``). Its ``kornia.augmentation`` modules
are not used: they draw from torch's global generator (we draw from a ``torch.Generator``, so an
item's augmentation is a pure function of its seed and ``--resume`` is exact) and they compute
every operation for every image and select afterwards (an ``AugmentationSequential`` of this
pipeline took 23 ms of CPU per 224 px image here, this module 6 ms).

Where we differ from albumentations: float images throughout (no 8-bit rounding between steps),
kornia's CLAHE (OpenCV's clip rule, a half-pixel different tile phase; tested against OpenCV),
the colour jitter's HSV formulas (kornia's, not OpenCV's), and the rotation centre at the
pixel-grid centre. For clips one draw is shared by all T frames (noise σ included; the noise
itself is drawn per frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Callable

import torch
from torch import Tensor

__all__ = ["FaceAugmentationConfig", "AugmentationDraw", "draw_augmentation", "augment_colour",
           "ssr_matrices", "warp_images", "transform_points", "augment_faces"]


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
    is False): x' = s·R(θ)·x + 2·d (the image spans 2 normalised units, so a shift of d of the size
    is 2d). Positive θ turns the content counter-clockwise on screen (y points down), as OpenCV's
    ``getRotationMatrix2D`` does."""
    t = torch.deg2rad(draw.angle.float())
    s = draw.scale.float()
    c, sn = torch.cos(t) * s, torch.sin(t) * s
    m = torch.stack([torch.stack([c, sn, 2 * draw.shift[:, 0].float()], 1),
                     torch.stack([-sn, c, 2 * draw.shift[:, 1].float()], 1)], 1)
    eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand_as(m)
    return torch.where(draw.affine_on[:, None, None], m, eye)


def warp_images(image: Tensor, matrix: Tensor) -> Tensor:
    """Resample (n, C, H, W) images so that normalised point x moves to ``matrix @ [x, 1]``
    (matrix (n, 2, 3)); bilinear, black outside (kornia's ``warp_affine``). H = W."""
    import kornia.geometry.transform as KT

    n, _, h, w = image.shape
    if h != w:
        raise ValueError(f"warp_images expects square images; got {h}x{w}")
    # Normalised x -> pixel-centre index u = (x + 1)·W/2 − 1/2: conjugate the map by that change.
    half = w / 2
    to_px = torch.tensor([[half, 0, half - 0.5], [0, half, half - 0.5], [0, 0, 1.0]])
    from_px = torch.linalg.inv(to_px)
    full = torch.cat([matrix.float(), torch.tensor([[[0, 0, 1.0]]]).expand(n, 1, 3)], dim=1)
    m_px = (to_px @ full @ from_px)[:, :2].to(image)
    return KT.warp_affine(image, m_px, (h, w), mode="bilinear", padding_mode="zeros", align_corners=True)


def transform_points(points: Tensor, matrix: Tensor) -> Tensor:
    """(n, L, 2) normalised points mapped by (n, 2, 3) matrices."""
    m = matrix.to(points)
    return points @ m[:, :, :2].transpose(1, 2) + m[:, None, :, 2]


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
