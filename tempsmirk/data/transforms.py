"""Image-space transforms shared by synthetic nuisances and real-clip augmentation (chapter 5).

Shapes: n images, H W image size, L landmarks. Coordinates are normalised image coordinates
(x right, y down, (-1, -1) the top-left corner of the top-left pixel), as defined in
:mod:`tempsmirk.render.camera`; a zoom ``k`` and shift ``d`` move a point x to ``k·x + d``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["zoom_shift_images", "zoom_shift_points", "colour_jitter"]


def zoom_shift_images(image: Tensor, zoom: Tensor, shift: Tensor, padding_mode: str = "reflection") -> Tensor:
    """Move image content so that the point x lands on ``k·x + d``, resampling bilinearly.

    image: (n, C, H, W); zoom: (n,) k > 0; shift: (n, 2) d (normalised units). padding_mode: what
    fills pixels that come from outside the input (``"reflection"``, ``"border"`` or ``"zeros"``).
    Returns (n, C, H, W).
    """
    n, c, h, w = image.shape
    # Output point u shows input point (u - d) / k.
    theta = torch.zeros(n, 2, 3, dtype=image.dtype, device=image.device)
    inv = 1 / zoom.to(image)
    theta[:, 0, 0] = inv
    theta[:, 1, 1] = inv
    theta[:, :, 2] = -shift.to(image) * inv[:, None]
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def zoom_shift_points(points: Tensor, zoom: Tensor, shift: Tensor) -> Tensor:
    """The same move for points: (n, L, 2) -> ``k·x + d``, with zoom (n,) and shift (n, 2)."""
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
