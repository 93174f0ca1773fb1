"""A closed-form start for fitting: head rotation and SMIRK camera from 2D landmarks (chapter 7).

Shapes: T frames, L landmarks. Landmarks are normalised image coordinates (x right, y down,
[-1, 1] over the crop), the frame of :mod:`tempsmirk.render.camera`.

The SMIRK camera is orthographic, ``x_n = s (x + tx)``, ``y_n = s (y + ty)`` (y up), and FLAME's
root rotation R turns the head about the root joint J0, so a rest-pose landmark X lands at::

    (x_n, y_n) = s [R (X − J0) + J0]_xy + s t

Centred on their means, detections u and model points X are related by the 2 × 3 matrix
``M = s R_xy``: M comes from linear least squares, its two rows are made orthonormal by the
polar decomposition (SVD, ``R_xy = U Vᵀ``, s the mean singular value), the third row of R is
their cross product, and t follows from the means. This is the classical scaled-orthographic
("affine camera, then nearest similarity") estimate: exact for noiseless rigid points, and close
enough for the fit to refine otherwise.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["matrix_to_axis_angle", "rigid_from_landmarks"]


def matrix_to_axis_angle(rot: Tensor) -> Tensor:
    """Rotation matrices to axis-angle vectors: (N, 3, 3) -> (N, 3), angles in [0, π].

    Through the unit quaternion, choosing the best-conditioned of its four components first
    (Shepperd's method), so it is accurate near 0 and near π. Inverse of
    :func:`tempsmirk.flame.lbs.batch_rodrigues`.
    """
    m = rot
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    diag = torch.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], dim=1)  # picks w, x, y or z first
    choice = diag.argmax(dim=1)
    # 4·q_k·q for each choice k (rows: w, x, y, z largest), from the matrix's symmetric and skew parts.
    cand = torch.stack([
        torch.stack([1 + tr, m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]], 1),
        torch.stack([m[:, 2, 1] - m[:, 1, 2], 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2], m[:, 0, 1] + m[:, 1, 0],
                     m[:, 0, 2] + m[:, 2, 0]], 1),
        torch.stack([m[:, 0, 2] - m[:, 2, 0], m[:, 0, 1] + m[:, 1, 0], 1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2],
                     m[:, 1, 2] + m[:, 2, 1]], 1),
        torch.stack([m[:, 1, 0] - m[:, 0, 1], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1],
                     1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], 1),
    ], dim=1)  # (N, 4, 4)
    q = cand[torch.arange(m.shape[0], device=m.device), choice]
    q = q / q.norm(dim=1, keepdim=True)
    q = torch.where(q[:, :1] < 0, -q, q)  # w >= 0: the angle lies in [0, π]
    vec = q[:, 1:]
    sin_half = vec.norm(dim=1, keepdim=True)
    angle = 2 * torch.atan2(sin_half, q[:, :1])
    # angle / sin(angle/2) -> 2 as the angle -> 0.
    scale = torch.where(sin_half > 1e-12, angle / sin_half.clamp(min=1e-12), torch.full_like(angle, 2.0))
    return vec * scale


def rigid_from_landmarks(points: Tensor, root: Tensor, targets: Tensor, valid: Tensor,
                         ridge: float = 1e-9) -> tuple[Tensor, Tensor]:
    """Head rotation and SMIRK camera that best map model points onto 2D detections (module docstring).

    Args:
        points: (L, 3) or (T, L, 3) rest-pose model points (FLAME units), e.g. the MediaPipe
            landmarks of the template.
        root: (3,) or (T, 3) the root joint J0 the rotation turns about.
        targets: (T, L, 2) detections, normalised image coordinates (y down).
        valid: (T, L) bool or weights; frames with fewer than 4 valid points get the identity
            rotation and the camera that matches the points' centre and spread.
        ridge: Tikhonov weight on the 3 × 3 normal equations (relative to their trace), for point
            sets that are nearly planar.
    Returns:
        global_pose (T, 3) axis-angle, cam (T, 3) ``(s, tx, ty)``.
    """
    t = targets.shape[0]
    dtype = torch.float64  # a tiny solve per frame: do it in double
    x = points.to(dtype).expand(t, -1, -1) if points.dim() == 2 else points.to(dtype)
    j0 = root.to(dtype).expand(t, 3) if root.dim() == 1 else root.to(dtype)
    u = targets[..., :2].to(dtype) * torch.tensor([1.0, -1.0], dtype=dtype, device=targets.device)  # y up
    w = valid.to(dtype)
    w = torch.where(torch.isfinite(u).all(-1), w, torch.zeros_like(w))
    u = torch.nan_to_num(u)
    n = w.sum(1, keepdim=True).clamp(min=1e-12)  # (T, 1)
    x_mean = (w[..., None] * x).sum(1) / n
    u_mean = (w[..., None] * u).sum(1) / n
    xc, uc = x - x_mean[:, None], u - u_mean[:, None]
    a = torch.einsum("tl,tli,tlj->tij", w, xc, xc)  # (T, 3, 3)
    eye = torch.eye(3, dtype=dtype, device=a.device)
    few = (w > 0).sum(1) < 4  # too few points for a rotation (handled below)
    a = a + ridge * a.diagonal(dim1=1, dim2=2).sum(-1)[:, None, None] * eye
    a = torch.where(few[:, None, None], eye, a)
    b = torch.einsum("tl,tli,tlj->tij", w, uc, xc)  # (T, 2, 3)
    m = torch.linalg.solve(a, b.transpose(1, 2)).transpose(1, 2)  # (T, 2, 3), M = B A⁻¹
    uu, sv, vh = torch.linalg.svd(m, full_matrices=False)  # (T,2,2), (T,2), (T,2,3)
    rows = uu @ vh  # (T, 2, 3) orthonormal rows
    rot = torch.cat([rows, torch.linalg.cross(rows[:, 0], rows[:, 1])[:, None]], dim=1)
    s = sv.mean(1)
    # Too few points for a rotation: identity, and the scale of the points' spread.
    if bool(few.any()):
        spread = (uc.pow(2).sum(-1) * w).sum(1).sqrt() / (xc[..., :2].pow(2).sum(-1) * w).sum(1).sqrt().clamp(min=1e-12)
        rot = torch.where(few[:, None, None], eye.expand(t, 3, 3), rot)
        s = torch.where(few, spread, s)
    s = s.clamp(min=1e-6)
    posed_mean = torch.einsum("tij,tj->ti", rot, x_mean - j0) + j0
    shift = u_mean / s[:, None] - posed_mean[:, :2]
    cam = torch.cat([s[:, None], shift], dim=1)
    return matrix_to_axis_angle(rot).to(targets.dtype), cam.to(targets.dtype)
