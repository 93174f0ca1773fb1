"""Image-space transforms shared by the augmentation pipelines and the synthetic nuisances (chapter 5).

Shapes: n images, H W image size, L landmarks. Coordinates are normalised image coordinates
(x right, y down, (-1, -1) the top-left corner of the top-left pixel), as defined in
:mod:`tempsmirk.render.camera`. A move of the image content is one (n, 2, 3) matrix M per image:
the point x goes to ``M @ [x, 1]``. :func:`warp_images` resamples images by it and
:func:`transform_points` moves landmarks by it, so image and landmarks always move alike.
:func:`similarity` builds the moves both pipelines draw: a zoom ``k``, shift ``d`` and rotation
``θ`` take x to ``k·R(θ)·x + d`` with ``R(θ) = [[cos θ, −sin θ], [sin θ, cos θ]]`` — in these y-down
coordinates a positive θ turns the content clockwise on screen, about the image centre.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["similarity", "warp_images", "transform_points", "zoom_shift_images", "zoom_shift_points",
           "colour_jitter"]


def similarity(zoom: Tensor, shift: Tensor, angle: Optional[Tensor] = None) -> Tensor:
    """(n, 2, 3) matrices of x -> ``k·R(θ)·x + d``: zoom (n,) k, shift (n, 2) d, angle (n,) θ in
    radians (None = no rotation)."""
    zoom = zoom.to(shift.dtype)
    lin = torch.eye(2, dtype=shift.dtype, device=shift.device).expand(zoom.shape[0], 2, 2)
    if angle is not None:
        c, s = angle.to(shift).cos(), angle.to(shift).sin()
        lin = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    return torch.cat([lin * zoom[:, None, None], shift[:, :, None]], dim=2)


def warp_images(image: Tensor, matrix: Tensor, padding_mode: str = "zeros") -> Tensor:
    """Resample (n, C, H, W) images so that the content at normalised point x moves to
    ``matrix @ [x, 1]`` (matrix (n, 2, 3)); bilinear at pixel centres.

    padding_mode: what fills pixels that come from outside the input (``"zeros"``, black as SMIRK's
    border; ``"reflection"``; ``"border"``). H = W: on square images normalised units are the same
    along x and y, so a rotation stays a rotation. Returns (n, C, H, W).
    """
    n, c, h, w = image.shape
    if h != w:
        raise ValueError(f"warp_images needs square images (a rotation in normalised units is one only "
                         f"there); got H={h}, W={w}")
    m = matrix.to(image)
    # Output point u shows input point A⁻¹(u − b).
    inv = torch.linalg.inv(m[:, :, :2])
    theta = torch.cat([inv, -(inv @ m[:, :, 2:])], dim=2)
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def transform_points(points: Tensor, matrix: Tensor) -> Tensor:
    """(n, L, 2) normalised points moved by (n, 2, 3) matrices: ``matrix @ [x, 1]``."""
    m = matrix.to(points)
    return points @ m[:, :, :2].transpose(1, 2) + m[:, None, :, 2]


def zoom_shift_images(image: Tensor, zoom: Tensor, shift: Tensor, padding_mode: str = "reflection",
                      angle: Optional[Tensor] = None) -> Tensor:
    """:func:`warp_images` by :func:`similarity`: the content at x moves to ``k·R(θ)·x + d``.

    image: (n, C, H, W), H = W; zoom: (n,) k > 0; shift: (n, 2) d (normalised units); angle: (n,) θ
    in radians or None. Returns (n, C, H, W).
    """
    return warp_images(image, similarity(zoom.to(image), shift.to(image), angle), padding_mode)


def zoom_shift_points(points: Tensor, zoom: Tensor, shift: Tensor, angle: Optional[Tensor] = None) -> Tensor:
    """The same move for points: (n, L, 2) -> ``k·R(θ)·x + d``, with zoom (n,), shift (n, 2) and
    angle (n,) radians or None."""
    return transform_points(points, similarity(zoom.to(points), shift.to(points), angle))


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
