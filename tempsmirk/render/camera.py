"""The SMIRK orthographic camera and the coordinate conventions of the renderer.

Explained in chapter 2. Every other module in :mod:`tempsmirk.render` links here.

Coordinate frames
-----------------
**FLAME / world** (metres): x to the subject's left, which is the viewer's right; y up; z out of the
face, towards the camera. Meshes are wound counter-clockwise seen from outside.

**Camera** ``cam = (s, tx, ty)`` per batch element, orthographic, as in SMIRK::

    x_n = s * (x + tx)
    y_n = s * (y + ty)
    z_n = s * z

``(x_n, y_n)`` in [-1, 1] spans the image; we call this *normalised* space, and this is where SMIRK's
landmark losses live, **after** flipping y to point down (image convention), see below.

**Normalised image coordinates** (what :func:`project_points` returns as ``normalised``): x right,
y down, (-1, -1) the top-left corner of the top-left pixel and (1, 1) the bottom-right corner of the
bottom-right pixel: ``(u_n, v_n) = (x_n, -y_n)``.

**Pixels** (what :func:`tempsmirk.render.rasterize` consumes): x right, y down, the centre of pixel
(row i, col j) at ``(j + 0.5, i + 0.5)``; an image of width W spans x in [0, W]::

    u = (u_n + 1) * W / 2,     v = (v_n + 1) * H / 2,     depth = -z_n

Depth is ``-z_n`` because FLAME's +z points towards the camera while the rasteriser keeps the
*smallest* depth. The whole map (x, y, z) -> (u, v, depth) has positive determinant for s > 0, so it
keeps handedness: outward normals of the FLAME mesh stay outward, and a face that the camera sees has
negative signed area ``(v1 - v0) x (v2 - v0)`` in pixel coordinates (x right, y down).

Normals and lights are expressed in the FLAME frame (the camera only scales and translates, which
does not change directions), so the frontal light (0, 0, 1) shines from the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "ProjectedPoints",
    "orthographic",
    "normalised_to_pixels",
    "pixels_to_normalised",
    "project_points",
    "to_pixel_space",
    "image_hw",
]


def image_hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """``image_size`` as ``(H, W)``; an int means a square image."""
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


def orthographic(points: Tensor, cam: Tensor) -> Tensor:
    """Apply the SMIRK camera: ``(s(x + tx), s(y + ty), s z)``.

    Args:
        points: (B, N, 3) float, FLAME frame.
        cam: (B, 3) float, ``(s, tx, ty)``.
    Returns:
        (B, N, 3) in normalised camera space (y up, z towards the camera).
    """
    s = cam[:, None, 0:1]
    t = torch.cat([cam[:, 1:3], torch.zeros_like(cam[:, :1])], dim=1)[:, None, :]
    return s * (points + t)


def normalised_to_pixels(uv_n: Tensor, image_size: int | tuple[int, int]) -> Tensor:
    """Normalised image coordinates (x right, y down, [-1, 1]) -> pixels. (..., 2) -> (..., 2)."""
    h, w = image_hw(image_size)
    scale = uv_n.new_tensor([w / 2.0, h / 2.0])
    return (uv_n + 1.0) * scale


def pixels_to_normalised(uv: Tensor, image_size: int | tuple[int, int]) -> Tensor:
    """Inverse of :func:`normalised_to_pixels`. (..., 2) -> (..., 2)."""
    h, w = image_hw(image_size)
    scale = uv.new_tensor([w / 2.0, h / 2.0])
    return uv / scale - 1.0


def to_pixel_space(points: Tensor, cam: Tensor, image_size: int | tuple[int, int]) -> Tensor:
    """FLAME-frame points -> rasteriser space ``(u, v, depth)`` (pixels; smaller depth is closer).

    Args:
        points: (B, N, 3) float, FLAME units.
        cam: (B, 3) float, ``(s, tx, ty)``.
    Returns:
        (B, N, 3): pixel x, pixel y, depth ``-s z``.
    """
    p = orthographic(points, cam)
    uv_n = torch.stack([p[..., 0], -p[..., 1]], dim=-1)
    return torch.cat([normalised_to_pixels(uv_n, image_size), -p[..., 2:3]], dim=-1)


@dataclass(frozen=True)
class ProjectedPoints:
    """Points seen by the camera (see the module docstring for the frames).

    pixels: (B, L, 2) pixel coordinates, x right, y down.
    normalised: (B, L, 2) in [-1, 1] over the image, x right, y down (SMIRK's landmark space).
    depth: (B, L) ``-s z``, smaller is closer.
    """

    pixels: Tensor
    normalised: Tensor
    depth: Tensor


def project_points(points: Tensor, cam: Tensor, image_size: int | tuple[int, int] = 224) -> ProjectedPoints:
    """Project 3D points (e.g. the 68 or the 105 MediaPipe landmarks) with the SMIRK camera.

    Args:
        points: (B, L, 3) float, FLAME units.
        cam: (B, 3) float, ``(s, tx, ty)``.
        image_size: H = W int, or (H, W).
    """
    p = orthographic(points, cam)
    uv_n = torch.stack([p[..., 0], -p[..., 1]], dim=-1)
    return ProjectedPoints(
        pixels=normalised_to_pixels(uv_n, image_size), normalised=uv_n, depth=-p[..., 2]
    )
