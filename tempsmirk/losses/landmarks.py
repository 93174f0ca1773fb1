"""Landmark losses and the landmark subsets SMIRK supervises. Explained in chapter 3.

Shapes: B batch, L landmarks. Coordinates are normalised image coordinates in [-1, 1]
(x right, y down), defined in :mod:`tempsmirk.render.camera`; predicted and detected landmarks
must be in the same frame.

SMIRK supervises two sets:

- the 17 jaw-contour points of the 68 iBUG landmarks (FAN detections; the inner 51 points are
  left to the MediaPipe set), :func:`jaw_contour`;
- 105 of MediaPipe's 478 face-mesh points, the ones FLAME's MediaPipe embedding places on the
  mesh, :func:`select_mediapipe` with the embedding's ``landmark_indices``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

__all__ = ["N_CONTOUR", "jaw_contour", "select_mediapipe", "landmark_loss"]

N_CONTOUR = 17  # iBUG order puts the jaw contour first


def jaw_contour(landmarks68: Tensor) -> Tensor:
    """The jaw contour of iBUG-68 landmarks: (B, 68, D) -> (B, 17, D)."""
    if landmarks68.shape[-2] != 68:
        raise ValueError(f"expected 68 iBUG landmarks on dim -2; got shape {tuple(landmarks68.shape)}")
    return landmarks68[..., :N_CONTOUR, :]


def select_mediapipe(points478: Tensor, landmark_indices: Tensor) -> Tensor:
    """MediaPipe points matched to FLAME: (B, 478, D), (L,) long -> (B, L, D).

    ``landmark_indices`` is the embedding's ``landmark_indices`` (105 entries for FLAME; also the
    ``mp_indices`` buffer of :class:`tempsmirk.flame.FLAME`), in the order of the embedding's
    points, so the result lines up with FLAME's ``landmarks_mp``.
    """
    idx = torch.as_tensor(landmark_indices, dtype=torch.long, device=points478.device)
    if idx.dim() != 1:
        raise ValueError(f"landmark_indices should be 1-D; got shape {tuple(idx.shape)}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= points478.shape[-2]):
        raise ValueError(f"landmark_indices must lie in [0, {points478.shape[-2]}); got "
                         f"[{int(idx.min())}, {int(idx.max())}]")
    return points478.index_select(-2, idx)


def landmark_loss(pred: Tensor, target: Tensor, valid: Optional[Tensor] = None) -> Tensor:
    """Mean squared landmark error, as SMIRK computes it (``F.mse_loss`` over valid points).

    Args:
        pred: (B, L, 2) predicted landmarks, normalised image coordinates.
        target: (B, L, 2) detected landmarks, same frame. Extra trailing coordinates (e.g. a z
            or a confidence as a third column) are ignored: only x, y enter the loss.
        valid: None (every point counts), (B,) per image (SMIRK's ``flag_landmarks_fan``), or
            (B, L) per point; bool, or float weights in [0, 1].
    Returns:
        () the mean over valid points and both coordinates of the squared difference, i.e.
        ``Σ w·((Δx)² + (Δy)²) / (2·Σ w)``; 0 (still attached to ``pred``'s graph) when no point
        is valid.
    """
    if pred.dim() != 3 or pred.shape[:2] != target.shape[:2] or min(pred.shape[-1], target.shape[-1]) < 2:
        raise ValueError(f"landmark_loss expects pred and target of shape (B, L, 2); got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    sq = (pred[..., :2] - target[..., :2].to(pred.dtype)).pow(2).sum(-1)  # (B, L)
    if valid is None:
        return sq.mean() / 2
    w = valid.to(device=sq.device, dtype=sq.dtype)
    if w.dim() == 1:
        w = w[:, None]
    w = w.expand_as(sq)
    total = w.sum()
    if total <= 0:
        return sq.sum() * 0.0
    return (w * sq).sum() / (2 * total)
