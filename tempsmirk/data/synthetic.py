"""Synthetic faces with known FLAME parameters: what every chapter trains on by default.

Explained in chapter 3. Shapes: B batch, T frames, V vertices, H W image size, S shape and E
expression coefficients. Landmarks are normalised image coordinates (x right, y down, [-1, 1]),
see :mod:`tempsmirk.render.camera`.

Each item renders a FLAME head (the built-in head by default, or any :class:`~tempsmirk.flame.FLAME`)
whole, eyes included, with SMIRK's camera and renderer:

- **identity, expression, pose** — shape and expression coefficients drawn from N(0, std²) on
  the first components, head yaw/pitch/roll uniform within limits, jaw opening and eyelid
  closure uniform, small sideways jaw, eye rotation, camera scale and shift;
- **appearance** — a per-vertex albedo: a skin tone, smooth low-frequency variation over the head
  (random cosine waves in template coordinates), tinted lips, hair on the scalp, white eyeballs
  with a coloured iris;
- **lighting** — 1–4 directional lights from the camera's hemisphere with random intensity;
- **background** — smooth colour noise (a coarse random grid, bicubically upsampled) plus a
  linear gradient.

Item ``i`` is a pure function of ``(seed, i)``: its random numbers come from a
``torch.Generator`` seeded with :func:`item_seed`. In clip mode (``clip_length > 0``) an item is a
T-frame clip with one identity, appearance, lighting and background; pose, expression, jaw,
eyelids and camera follow smooth trajectories through random keyframes.

**Per-frame nuisances** (:class:`FrameNuisance`, the ``nuisance`` section; all off by default) add
what a real video has and a clean rendering lacks, drawn independently for every frame: crop
jitter (the face shifts and zooms in the image; the ground-truth camera follows it exactly),
pixel noise and lighting flicker. They are drawn after everything else from the item's
generator, so the clip's smooth ground-truth motion does not change when they are switched on
(chapter 5 trains against them).

**Training augmentation** (``augment``, the ``augmentation`` section; off by default) is what a
trainer adds on top of a video: crop, rotation and colour (:mod:`tempsmirk.data.augmentation`),
drawn once per clip unless ``augmentation.per_frame``, from a generator of its own (switching it
on changes nothing else). The ground truth follows: the camera takes zoom and shift, the global
head pose the in-plane rotation (:func:`~tempsmirk.data.augmentation.augment_params`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from tempsmirk.data.augmentation import ClipAugmentation, augment_frames, augment_params, draw_clip_transform
from tempsmirk.data.transforms import zoom_shift_images, zoom_shift_points
from tempsmirk.data.types import FaceSample
from tempsmirk.flame.params import FlameParams
from tempsmirk.render import project_points, render_mesh

__all__ = ["SyntheticConfig", "FrameNuisance", "SyntheticFaces", "Appearance", "item_seed", "sample_params",
           "sample_clip",
           "sample_appearance", "render_faces", "smooth_trajectory", "apply_nuisance"]


@dataclass
class FrameNuisance:
    """Per-frame disturbances of a rendered clip (the ``data.synthetic.nuisance`` section); 0 = off.

    crop_shift: std of the per-frame shift of the image content, normalised image units (the
        image spans [-1, 1], so 0.02 is 1 % of the side).
    crop_scale: std of the per-frame relative zoom k = 1 + N(0, crop_scale²).
    pixel_noise: std of additive Gaussian noise per pixel and channel (image in [0, 1]).
    flicker: std of a per-frame brightness gain 1 + N(0, flicker²) (exposure / lighting flicker).
    """

    crop_shift: float = 0.0
    crop_scale: float = 0.0
    pixel_noise: float = 0.0
    flicker: float = 0.0

    @property
    def enabled(self) -> bool:
        return any(v > 0 for v in (self.crop_shift, self.crop_scale, self.pixel_noise, self.flicker))


@dataclass
class SyntheticConfig:
    """How synthetic faces are drawn (the ``data.synthetic`` config section). Angles in degrees.

    image_size: H = W in pixels (divisible by 16 for the generator).
    n_items: dataset length (items are generated on the fly, never stored).
    clip_length: 0 for single images, T > 1 for T-frame clips.
    keyframe_every: frames between trajectory keyframes in clip mode.
    clip_motion: in clip mode keyframe k is ``(1 - m) * first + m * fresh draw``: how far a clip
        wanders from its first frame (0 = frozen, 1 = independent keyframes).
    seed: item i is drawn from a generator seeded with ``item_seed(seed, i)``.
    shape_std, shape_components: N(0, shape_std²) on the first components, 0 after.
    expression_std, expression_components: likewise for expression.
    yaw, pitch, roll: head rotation drawn uniformly in ±limit.
    jaw_open: opening drawn uniformly in [0, jaw_open] radians.
    eyelid_max: closure drawn uniformly in [0, eyelid_max].
    scale_min, scale_max: camera scale s; shift: |tx|, |ty| bound (FLAME units).
    nuisance: :class:`FrameNuisance`, per-frame disturbances (off by default).
    augment: apply the training ``augmentation`` (module docstring; off by default).
    augmentation: :class:`~tempsmirk.data.augmentation.ClipAugmentation`, drawn once per clip
        unless its ``per_frame``.
    """

    image_size: int = 224
    n_items: int = 10000
    clip_length: int = 0
    keyframe_every: int = 8
    clip_motion: float = 0.35
    seed: int = 0
    shape_std: float = 1.0
    shape_components: int = 20
    expression_std: float = 0.8
    expression_components: int = 20
    yaw: float = 30.0
    pitch: float = 15.0
    roll: float = 8.0
    jaw_open: float = 0.3
    eyelid_max: float = 0.8
    scale_min: float = 6.0
    scale_max: float = 7.5
    shift: float = 0.01
    nuisance: FrameNuisance = field(default_factory=FrameNuisance)
    augment: bool = False
    augmentation: ClipAugmentation = field(default_factory=ClipAugmentation)


def item_seed(seed: int, index: int) -> int:
    """Seed of item ``index``'s generator: distinct for every (seed, index) pair in practice."""
    return (int(seed) * 0x9E3779B1 + int(index) * 0x85EBCA77 + 0x165667B1) % (2 ** 63)


def _uniform(g: Tensor | torch.Generator, shape, lo: float, hi: float) -> Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=g)


def sample_params(cfg: SyntheticConfig, n: int, n_shape: int, n_exp: int,
                  generator: torch.Generator) -> tuple[FlameParams, Tensor]:
    """Draw n parameter sets. Returns (params with (n, ...) fields, eye_pose (n, 6))."""
    g = generator
    shape = torch.zeros(n, n_shape)
    k = min(cfg.shape_components, n_shape)
    shape[:, :k] = torch.randn(n, k, generator=g) * cfg.shape_std
    expression = torch.zeros(n, n_exp)
    k = min(cfg.expression_components, n_exp)
    expression[:, :k] = torch.randn(n, k, generator=g) * cfg.expression_std
    limits = torch.tensor([cfg.pitch, cfg.yaw, cfg.roll]) * (math.pi / 180)  # axis-angle x, y, z
    global_pose = (torch.rand(n, 3, generator=g) * 2 - 1) * limits
    jaw = torch.stack([_uniform(g, n, 0.0, cfg.jaw_open),
                       _uniform(g, n, -0.05, 0.05), _uniform(g, n, -0.05, 0.05)], dim=1)
    eyelids = _uniform(g, (n, 2), 0.0, cfg.eyelid_max)
    # Both eyes look the same way (pitch, yaw), as real gaze does.
    gaze = (torch.rand(n, 2, generator=g) * 2 - 1) * 0.25
    eye = torch.cat([gaze, torch.zeros(n, 1)], dim=1)
    cam = torch.stack([_uniform(g, n, cfg.scale_min, cfg.scale_max),
                       _uniform(g, n, -cfg.shift, cfg.shift),
                       _uniform(g, n, -cfg.shift, cfg.shift)], dim=1)
    params = FlameParams(global_pose=global_pose, cam=cam, shape=shape, expression=expression,
                         eyelids=eyelids, jaw_pose=jaw)
    return params, torch.cat([eye, eye], dim=1)


def sample_clip(cfg: SyntheticConfig, n_shape: int, n_exp: int,
                generator: torch.Generator) -> tuple[FlameParams, Tensor]:
    """One clip's parameters, ``cfg.clip_length`` = T frames: one identity, and pose, camera,
    expression, jaw, eyelids and gaze moving smoothly through random keyframes every
    ``cfg.keyframe_every`` frames that stay near the first (``cfg.clip_motion``).
    Returns (params with (T, ...) fields, eye_pose (T, 6))."""
    t = cfg.clip_length
    if t < 1:
        raise ValueError(f"sample_clip needs clip_length >= 1; got {t}")
    n_keys = max(2, math.ceil((t - 1) / max(cfg.keyframe_every, 1)) + 1)
    keys, eye_keys = sample_params(cfg, n_keys, n_shape, n_exp, generator)
    m = cfg.clip_motion
    keys = keys.map(lambda x: (1 - m) * x[:1] + m * x)  # stay near the first keyframe
    eye_keys = (1 - m) * eye_keys[:1] + m * eye_keys
    params = keys.map(lambda x: smooth_trajectory(x, t))
    params = FlameParams(global_pose=params.global_pose, cam=params.cam,
                         shape=keys.shape[:1].expand(t, -1).clone(),  # one identity per clip
                         expression=params.expression, eyelids=params.eyelids, jaw_pose=params.jaw_pose)
    return params, smooth_trajectory(eye_keys, t)


def smooth_trajectory(keys: Tensor, length: int) -> Tensor:
    """Cosine interpolation through keyframes spread evenly over ``length`` frames.

    keys: (K, ...) with K >= 2 -> (length, ...). Continuous with zero velocity at every keyframe,
    so the result has no kinks.
    """
    k = keys.shape[0]
    t = torch.linspace(0, k - 1, length)
    i0 = t.floor().long().clamp(max=k - 2)
    w = (1 - torch.cos(math.pi * (t - i0))) / 2
    w = w.view(length, *([1] * (keys.dim() - 1)))
    return keys[i0] * (1 - w) + keys[i0 + 1] * w


@dataclass(frozen=True)
class Appearance:
    """Everything about a rendering that is not geometry.

    albedo: (V, 3) per-vertex colour in [0, 1].
    light_directions: (K, 3) unit vectors towards the lights (FLAME frame).
    light_intensity: per-light intensity.
    background: (3, H, W) in [0, 1].
    """

    albedo: Tensor
    light_directions: Tensor
    light_intensity: float
    background: Tensor


def _region(flame, name: str) -> Tensor:
    mask = torch.zeros(flame.n_vertices, dtype=torch.bool)
    if name in flame.masks:
        mask[torch.as_tensor(flame.masks[name], dtype=torch.long)] = True
    return mask


def sample_appearance(flame, image_size: int, generator: torch.Generator) -> Appearance:
    """Draw an albedo, lights and a background for ``flame`` (uses its region masks if any)."""
    g = generator
    v = flame.v_template.detach().cpu().float()  # (V, 3)
    # Skin: a tone between light and dark, slightly tinted, times smooth variation.
    light, dark = torch.tensor([0.93, 0.78, 0.68]), torch.tensor([0.42, 0.28, 0.20])
    tone = torch.rand((), generator=g)
    skin = light * (1 - tone) + dark * tone
    skin = skin * _uniform(g, 3, 0.92, 1.08)
    freq = torch.randn(6, 3, generator=g) * 25.0  # cycles per metre ~ a few waves over a head
    phase = torch.rand(6, generator=g) * 2 * math.pi
    amp = _uniform(g, (6, 3), 0.0, 0.04)
    wave = torch.cos(v @ freq.T + phase) @ amp  # (V, 3)
    albedo = (skin + wave).expand(v.shape[0], 3).clone()
    lips = _region(flame, "lips")
    albedo[lips] = albedo[lips] * torch.tensor([1.0, 0.72, 0.72]) * _uniform(g, (), 0.85, 1.0)
    if torch.rand((), generator=g) < 0.8:  # hair on the scalp, otherwise bald
        hair = torch.tensor([0.35, 0.22, 0.12]) * _uniform(g, 3, 0.2, 1.6)
        albedo[_region(flame, "scalp")] = hair.clamp(0, 1)
    iris = torch.tensor([0.35, 0.22, 0.10]) if torch.rand((), generator=g) < 0.6 \
        else torch.tensor([0.25, 0.40, 0.55])
    for side in ("left_eyeball", "right_eyeball"):
        ball = _region(flame, side)
        if not ball.any():
            continue
        albedo[ball] = torch.tensor([0.92, 0.90, 0.88])
        pts = v[ball]
        # The iris is the cap of the eyeball facing forward (+z).
        front = pts[:, 2] - pts[:, 2].min()
        cap = front > 0.75 * front.max()
        idx = ball.nonzero().squeeze(1)
        albedo[idx[cap]] = iris
        albedo[idx[front > 0.93 * front.max()]] = 0.05
    albedo = albedo.clamp(0, 1)

    n_lights = int(torch.randint(1, 5, (), generator=g))
    d = torch.randn(n_lights, 3, generator=g) * torch.tensor([0.8, 0.8, 0.3])
    d[:, 2] = d[:, 2].abs() + 0.6  # from the camera's side
    dirs = F.normalize(d, dim=1)
    intensity = float(_uniform(g, (), 1.1, 1.7))

    grid = int(torch.randint(2, 6, (), generator=g))
    coarse = torch.rand(1, 3, grid, grid, generator=g)
    # Desaturate towards each cell's grey: walls and rooms, not rainbows.
    coarse = coarse.mean(1, keepdim=True) + 0.5 * (coarse - coarse.mean(1, keepdim=True))
    bg = F.interpolate(coarse, size=(image_size, image_size), mode="bicubic", align_corners=True)[0]
    ramp = torch.linspace(-1, 1, image_size)
    angle = float(torch.rand((), generator=g)) * 2 * math.pi
    grad = math.cos(angle) * ramp[None, :] + math.sin(angle) * ramp[:, None]  # (H, W)
    bg = bg + grad * _uniform(g, (3, 1, 1), -0.2, 0.2)
    return Appearance(albedo=albedo, light_directions=dirs, light_intensity=intensity,
                      background=bg.clamp(0, 1))


def render_faces(flame, params: FlameParams, eye_pose: Tensor, appearance: Appearance,
                 image_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Render n heads with one appearance, composited over its background.

    Args:
        flame: the FLAME layer (its device is used).
        params: (n, ...) fields; eye_pose: (n, 6).
        appearance: shared by the n frames.
        image_size: H = W.
    Returns:
        image (n, 3, H, W) in [0, 1], landmarks68 (n, 68, 2), landmarks_mp (n, 105, 2)
        (normalised image coordinates; on the CPU).
    """
    device = flame.v_template.device
    p = params.to(device)
    out = flame.forward_params(p, eye_pose=eye_pose.to(device))
    n = p.batch_size
    with torch.no_grad():
        r = render_mesh(out.vertices, flame.faces, p.cam, image_size,
                        albedo=appearance.albedo.to(device).expand(n, -1, 3),
                        light_directions=appearance.light_directions.to(device),
                        light_intensity=appearance.light_intensity)
    bg = appearance.background.to(device)
    image = r.image * r.mask + bg * (1 - r.mask)
    lmk68 = project_points(out.landmarks68, p.cam, image_size).normalised
    lmk_mp = project_points(out.landmarks_mp, p.cam, image_size).normalised
    return image.detach().cpu(), lmk68.detach().cpu(), lmk_mp.detach().cpu()


def apply_nuisance(image: Tensor, landmarks68: Tensor, landmarks_mp: Tensor, cam: Tensor,
                   nuisance: FrameNuisance, generator: torch.Generator
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Disturb n rendered frames independently: crop jitter, then flicker, then pixel noise.

    Args:
        image: (n, 3, H, W) in [0, 1]; landmarks68 (n, 68, 2), landmarks_mp (n, 105, 2)
            normalised image coordinates; cam: (n, 3) the frames' cameras (s, tx, ty).
        nuisance: the standard deviations (:class:`FrameNuisance`).
        generator: CPU generator; all draws are made whenever any nuisance is on, so switching
            one off does not change the others' realisation.
    Returns:
        image, landmarks68, landmarks_mp, cam — the image content moved by the per-frame crop
        (x' = k·x + d, border pixels reflected), landmarks moved alike, and the camera that
        renders the head exactly there: s' = k·s, tx' = tx + dx/(k·s), ty' = ty − dy/(k·s)
        (y points down in the image, up in FLAME; :mod:`tempsmirk.render.camera`).
    """
    g = generator
    n = image.shape[0]
    shift = torch.randn(n, 2, generator=g) * nuisance.crop_shift
    zoom = (1 + torch.randn(n, generator=g) * nuisance.crop_scale).clamp(min=0.5)  # guards silly stds
    gain = 1 + torch.randn(n, generator=g) * nuisance.flicker
    noise = torch.randn(image.shape, generator=g) * nuisance.pixel_noise
    moved = zoom_shift_images(image, zoom, shift)
    image = (moved * gain.to(image)[:, None, None, None] + noise.to(image)).clamp(0, 1)
    s = cam[:, 0] * zoom.to(cam)
    cam = torch.stack([s, cam[:, 1] + shift[:, 0].to(cam) / s, cam[:, 2] - shift[:, 1].to(cam) / s], dim=1)
    return (image, zoom_shift_points(landmarks68, zoom, shift), zoom_shift_points(landmarks_mp, zoom, shift),
            cam)


class SyntheticFaces(Dataset):
    """Rendered heads with ground-truth parameters: a ``Dataset`` of :class:`FaceSample`.

    Explained in chapter 3. Use with ``DataLoader(..., collate_fn=collate_faces)``.

    Args:
        flame: a :class:`~tempsmirk.flame.FLAME` with 68 and MediaPipe landmark embeddings
            (the built-in head has both). Rendering runs on its device.
        cfg: :class:`SyntheticConfig`.
    """

    def __init__(self, flame, cfg: Optional[SyntheticConfig] = None) -> None:
        cfg = cfg or SyntheticConfig()
        if not (flame.has_landmarks68 and flame.has_mediapipe):
            raise ValueError("SyntheticFaces needs a FLAME with the 68-point (static + dynamic) and "
                             "the MediaPipe landmark embeddings; load them with FLAME.from_files")
        if cfg.image_size < 32 or cfg.image_size % 16:
            raise ValueError(f"data.synthetic.image_size must be >= 32 and divisible by 16 (the "
                             f"generator pools four times); got {cfg.image_size}")
        if cfg.clip_length == 1 or cfg.clip_length < 0:
            raise ValueError(f"clip_length is 0 (single images) or T >= 2; got {cfg.clip_length}")
        self.flame = flame
        self.cfg = cfg

    def __len__(self) -> int:
        return self.cfg.n_items

    def _augment(self, image: Tensor, lmk68: Tensor, lmk_mp: Tensor, params: FlameParams, index: int
                 ) -> tuple[Tensor, Tensor, Tensor, FlameParams]:
        """The training augmentation of n frames (module docstring), ground truth moved along."""
        g = torch.Generator().manual_seed(item_seed(item_seed(self.cfg.seed, index), 1))  # its own stream
        tf = draw_clip_transform(self.cfg.augmentation, image.shape[0], g)
        image, (lmk68, lmk_mp) = augment_frames(image, (lmk68, lmk_mp), tf, padding_mode="reflection")
        device = self.flame.v_template.device
        with torch.no_grad():  # J₀, the global pose's pivot, from the rest shape and expression
            root = self.flame(shape=params.shape.to(device), expression=params.expression.to(device)).joints[:, 0]
        return image, lmk68, lmk_mp, augment_params(params, root.cpu(), tf)

    def __getitem__(self, index: int) -> FaceSample:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        cfg = self.cfg
        g = torch.Generator().manual_seed(item_seed(cfg.seed, index))
        n_shape, n_exp = self.flame.n_shape, self.flame.n_exp
        appearance = sample_appearance(self.flame, cfg.image_size, g)
        if cfg.clip_length == 0:
            params, eye = sample_params(cfg, 1, n_shape, n_exp, g)
        else:
            params, eye = sample_clip(cfg, n_shape, n_exp, g)
        image, lmk68, lmk_mp = render_faces(self.flame, params, eye, appearance, cfg.image_size)
        if cfg.nuisance.enabled:
            image, lmk68, lmk_mp, cam = apply_nuisance(image, lmk68, lmk_mp, params.cam, cfg.nuisance, g)
            params = replace(params, cam=cam)
        if cfg.augment:
            image, lmk68, lmk_mp, params = self._augment(image, lmk68, lmk_mp, params, index)
        if cfg.clip_length == 0:
            return FaceSample(image=image[0], landmarks68=lmk68[0], landmarks_mp=lmk_mp[0],
                              landmarks_valid=torch.tensor(True), params=params[0], index=index)
        return FaceSample(image=image, landmarks68=lmk68, landmarks_mp=lmk_mp,
                          landmarks_valid=torch.ones(cfg.clip_length, dtype=torch.bool),
                          params=params, index=index)
