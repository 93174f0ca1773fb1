"""Crop, rotation and colour augmentation of training clips, drawn once per clip or per frame.

Explained in chapter 5. Shapes: T frames, H W image size (square), L landmarks. Coordinates are
normalised image coordinates (x right, y down, [-1, 1]; :mod:`tempsmirk.render.camera`); a
:class:`ClipTransform` moves the point x of frame t to ``k_t·R(θ_t)·x + d_t``
(:mod:`tempsmirk.data.transforms`), then changes brightness, contrast and saturation.

**Once per clip or per frame.** SMIRK augments every training image with a fresh draw
(albumentations in its ``datasets/base_dataset.py``: a random crop scale, shift, scale, rotation
up to ±10°, colour changes). The fork that produced the paper's Table 2 reads a clip frame by
frame through that same code, so each of the 32 frames of a training clip gets its *own* crop,
rotation and colour. That adds frame-to-frame jitter to the input — and, for the rotation, to the
head pose the landmarks supervise — which the temporal loss then fights. Here one draw serves
the whole clip by default (the clip looks like a video filmed differently, not like a shaking
one); ``per_frame=True`` draws every frame independently, the fork's way. Both draw from the same
distribution per frame; chapter 5 measures the difference.

Used by :class:`~tempsmirk.data.MeadClips` (``data.mead.augmentation``) and by synthetic clips
(``data.synthetic.augmentation``), where :func:`augment_params` moves the ground truth with the
image: the camera follows zoom and shift, and the global head pose takes the in-plane rotation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import torch
from torch import Tensor

from tempsmirk.data.transforms import colour_jitter, zoom_shift_images, zoom_shift_points
from tempsmirk.flame.params import FlameParams

__all__ = ["ClipAugmentation", "ClipTransform", "draw_clip_transform", "augment_frames", "augment_params",
           "roll_global_pose"]


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
    image = zoom_shift_images(image, tf.zoom, tf.shift, padding_mode=padding_mode, angle=tf.angle)
    image = colour_jitter(image, tf.brightness, tf.contrast, tf.saturation)
    return image, tuple(zoom_shift_points(p, tf.zoom, tf.shift, angle=tf.angle) for p in points)


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
