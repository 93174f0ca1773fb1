"""Landmarks on the mesh: barycentric interpolation and the yaw-dependent jaw contour.

Explained in chapter 1. Shapes: B batch, V vertices, F faces, L landmarks.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from tempsmirk.flame.lbs import batch_rodrigues

__all__ = ["vertices2landmarks", "rotation_yaw", "contour_row", "MAX_CONTOUR_YAW"]

MAX_CONTOUR_YAW = 39  # degrees; the dynamic embedding has one row per whole degree


def vertices2landmarks(vertices: Tensor, faces: Tensor, face_idx: Tensor, bary: Tensor) -> Tensor:
    """Points given as (triangle, barycentric coordinates) on a posed mesh.

    Args:
        vertices: (B, V, 3).
        faces: (F, 3) long.
        face_idx: (L,) or (B, L) long triangle per landmark.
        bary: (L, 3) or (B, L, 3) barycentric weights.
    Returns:
        (B, L, 3) landmark positions.
    """
    B = vertices.shape[0]
    tri = faces[face_idx]  # (L, 3) or (B, L, 3) vertex ids
    if tri.dim() == 2:
        tri = tri.expand(B, -1, -1)
    batch = torch.arange(B, device=vertices.device)[:, None, None]
    corners = vertices[batch, tri]  # (B, L, 3 corners, 3 xyz)
    if bary.dim() == 2:
        bary = bary.expand(B, -1, -1)
    return torch.einsum("blk,blkc->blc", bary.to(vertices.dtype), corners)


def rotation_yaw(full_pose: Tensor, chain: tuple[int, ...] = (1, 0)) -> Tensor:
    """Head yaw in degrees from the neck→root rotation chain, as RingNet/DECA compute it.

    Args:
        full_pose: (B, 3·J) axis-angle, root first.
        chain: joint ids from the neck up to the root (FLAME: neck 1, global 0).
    Returns:
        (B,) yaw ``atan2(−R[2,0], ‖R[0:2,0]‖)`` of ``R = R_root ··· R_neck``.
    """
    B = full_pose.shape[0]
    aa = full_pose.view(B, -1, 3)[:, list(chain)]
    rots = batch_rodrigues(aa.reshape(-1, 3)).view(B, len(chain), 3, 3)
    rel = rots[:, 0]
    for i in range(1, len(chain)):
        rel = rots[:, i] @ rel
    sy = torch.sqrt(rel[:, 0, 0] ** 2 + rel[:, 1, 0] ** 2)
    return torch.atan2(-rel[:, 2, 0], sy) * (180.0 / math.pi)


def contour_row(yaw_degrees: Tensor) -> Tensor:
    """Row of the 79-row dynamic embedding for a yaw: (B,) float -> (B,) long.

    Yaw is rounded to whole degrees (half to even, as ``torch.round``) and clamped
    to ±39. Row r holds yaw r for r in 0..39 and yaw −(r − 39) for r in 40..78 —
    the layout of FLAME's ``flame_dynamic_embedding.npy``.
    """
    angle = torch.round(torch.clamp(yaw_degrees, max=MAX_CONTOUR_YAW)).long()
    neg = torch.where(angle < -MAX_CONTOUR_YAW, torch.full_like(angle, 2 * MAX_CONTOUR_YAW),
                      MAX_CONTOUR_YAW - angle)
    return torch.where(angle < 0, neg, angle)
