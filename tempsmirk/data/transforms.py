"""Image-space transforms shared by synthetic nuisances and real-clip augmentation (chapter 5).

Shapes: n images, H W image size, L landmarks. Coordinates are normalised image coordinates
(x right, y down, (-1, -1) the top-left corner of the top-left pixel), as defined in
:mod:`tempsmirk.render.camera`; a zoom ``k``, shift ``d`` and optional rotation ``θ`` move a point x
to ``k·R(θ)·x + d`` with ``R(θ) = [[cos θ, −sin θ], [sin θ, cos θ]]`` — in these y-down
coordinates a positive θ turns the content clockwise on screen, about the image centre.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["zoom_shift_images", "zoom_shift_points", "colour_jitter"]


def _rotation(angle: Tensor) -> Tensor:
    """R(θ) for (n,) angles: (n, 2, 2)."""
    c, s = angle.cos(), angle.sin()
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def zoom_shift_images(image: Tensor, zoom: Tensor, shift: Tensor, padding_mode: str = "reflection",
                      angle: Optional[Tensor] = None) -> Tensor:
    """Move image content so that the point x lands on ``k·R(θ)·x + d``, resampling bilinearly.

    image: (n, C, H, W); zoom: (n,) k > 0; shift: (n, 2) d (normalised units); angle: (n,) θ in
    radians (None = no rotation; a rotation needs square images, where normalised units are the
    same along x and y). padding_mode: what fills pixels that come from outside the input
    (``"reflection"``, ``"border"`` or ``"zeros"``). Returns (n, C, H, W).
    """
    n, c, h, w = image.shape
    # Output point u shows input point R(θ)ᵀ(u − d) / k.
    theta = torch.zeros(n, 2, 3, dtype=image.dtype, device=image.device)
    inv = 1 / zoom.to(image)
    if angle is None:
        lin = torch.eye(2, dtype=image.dtype, device=image.device).expand(n, 2, 2) * inv[:, None, None]
    else:
        if h != w:
            raise ValueError(f"zoom_shift_images: a rotation needs square images; got H={h}, W={w}")
        lin = _rotation(angle.to(image)).transpose(1, 2) * inv[:, None, None]
    theta[:, :, :2] = lin
    theta[:, :, 2] = -(lin @ shift.to(image)[:, :, None])[..., 0]
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def zoom_shift_points(points: Tensor, zoom: Tensor, shift: Tensor, angle: Optional[Tensor] = None) -> Tensor:
    """The same move for points: (n, L, 2) -> ``k·R(θ)·x + d``, with zoom (n,), shift (n, 2) and
    angle (n,) radians or None."""
    if angle is not None:
        points = points @ _rotation(angle.to(points)).transpose(1, 2)
    return points * zoom.to(points)[:, None, None] + shift.to(points)[:, None, :]


def colour_jitter(image: Tensor, brightness: Tensor, contrast: Tensor, saturation: Tensor) -> Tensor:
    """Photometric change of (n, 3, H, W) images in [0, 1], one setting per image (each (n,)).

    brightness multiplies; contrast scales about each image's mean grey; saturation scales about
    each pixel's grey. 1 leaves the image unchanged. Result clamped to [0, 1].
    """
    col = lambda v: v.to(image)[:, None, None, None]  # noqa: E731
    out = image * col(brightness)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = mean + (out - mean) * col(contrast)
    grey = out.mean(dim=1, keepdim=True)
    out = grey + (out - grey) * col(saturation)
    return out.clamp(0, 1)
