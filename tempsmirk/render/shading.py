"""Normals and SMIRK's directional shading (explained in chapter 2).

Normals and light directions live in the FLAME frame (y up, z towards the camera); see
:mod:`tempsmirk.render.camera`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "SMIRK_ALBEDO",
    "SMIRK_LIGHT_INTENSITY",
    "smirk_light_directions",
    "face_normals",
    "vertex_normals",
    "directional_shading",
]

SMIRK_ALBEDO = 180.0 / 255.0
SMIRK_LIGHT_INTENSITY = 1.7


def smirk_light_directions(dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """SMIRK's five unit light directions (±1, ±1, 1)/√3 and (0, 0, 1). Returns (5, 3)."""
    d = torch.tensor([[-1, 1, 1], [1, 1, 1], [-1, -1, 1], [1, -1, 1], [0, 0, 1]], dtype=dtype, device=device)
    return d / d.norm(dim=1, keepdim=True)


def face_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Unnormalised face normals ``(v1 - v0) x (v2 - v0)``, length = twice the area.

    Args:
        vertices: (B, V, 3) float.
        faces: (F, 3) int64.
    Returns:
        (B, F, 3).
    """
    tri = vertices[:, faces]
    return torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)


def vertex_normals(vertices: Tensor, faces: Tensor, eps: float = 1e-12) -> Tensor:
    """Area-weighted unit vertex normals (sum of adjacent face normals, then normalised).

    Args:
        vertices: (B, V, 3) float.
        faces: (F, 3) int64.
    Returns:
        (B, V, 3); isolated vertices get a zero vector.
    """
    b, v, _ = vertices.shape
    fn = face_normals(vertices, faces)  # (B, F, 3), already area-weighted
    idx = (faces.reshape(1, -1) + v * torch.arange(b, device=vertices.device)[:, None]).reshape(-1)
    fn3 = fn[:, :, None, :].expand(-1, -1, 3, -1).reshape(-1, 3)
    acc = vertices.new_zeros(b * v, 3).index_add(0, idx, fn3)
    return F.normalize(acc, dim=-1, eps=eps).view(b, v, 3)


def directional_shading(
    normals: Tensor,
    directions: Tensor | None = None,
    intensity: float = SMIRK_LIGHT_INTENSITY,
) -> Tensor:
    """Mean over lights of ``clamp(n · l, 0, 1) * intensity`` (SMIRK, guide section 2).

    Args:
        normals: (..., 3) unit normals.
        directions: (K, 3) unit directions towards the lights; SMIRK's five by default.
        intensity: light intensity, the same for every light.
    Returns:
        (...,) shading factor, to be multiplied by the albedo.
    """
    if directions is None:
        directions = smirk_light_directions(normals.dtype, normals.device)
    return (normals @ directions.to(normals).T).clamp(0.0, 1.0).mean(-1) * intensity

