"""The data interface shared by synthetic and real face datasets (chapter 3).

Shapes: B batch, T frames, H W image size, L landmarks, S shape and E expression coefficients.
Landmarks are normalised image coordinates in [-1, 1], x right, y down, as defined in
:mod:`tempsmirk.render.camera` (the frame SMIRK's landmark losses use).

A dataset item is a :class:`FaceSample`; :func:`collate_faces` stacks items into a
:class:`FaceBatch`. In clip mode every tensor has an extra leading T axis (one clip per item).
Real data (``data_prep`` crops and MediaPipe/FAN landmarks) fills the same fields and leaves
``params`` as ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence

import torch
from torch import Tensor

from tempsmirk.flame.params import FlameParams

__all__ = ["FaceSample", "FaceBatch", "collate_faces"]


@dataclass(frozen=True)
class FaceSample:
    """One image (or one clip) with its landmarks.

    image: (3, H, W) RGB in [0, 1]; (T, 3, H, W) for a clip.
    landmarks68: (68, 2) iBUG landmarks, normalised image coordinates; (T, 68, 2) for a clip.
    landmarks_mp: (105, 2) MediaPipe points matched to FLAME (the embedding's order); (T, 105, 2).
    landmarks_valid: () bool, whether the landmarks may supervise; (T,) for a clip.
    params: ground-truth FLAME parameters (a :class:`~tempsmirk.flame.FlameParams` without the batch axis,
        e.g. ``expression`` (E,) or (T, E)) for synthetic data; None for real data.
    index: the dataset index this sample came from.
    landmarks68_valid: () bool ((T,) for a clip), whether ``landmarks68`` may supervise the 68-point
        (FAN) term; None means as ``landmarks_valid``. False where a real image has no FAN points
        and they are not to be replaced by MediaPipe's (SMIRK's MEAD side views).
    hull_points: (L', 2) points whose convex hull is the face, forehead included — MediaPipe's
        478 for real data; (T, L', 2) for a clip. None: the masking builds the hull from the
        landmarks (:func:`tempsmirk.smirk.masking.face_hull_points`).
    """

    image: Tensor
    landmarks68: Tensor
    landmarks_mp: Tensor
    landmarks_valid: Tensor
    params: Optional[FlameParams]
    index: int
    landmarks68_valid: Optional[Tensor] = None
    hull_points: Optional[Tensor] = None


@dataclass(frozen=True)
class FaceBatch:
    """A batch of :class:`FaceSample`: every field gains a leading B axis.

    image: (B, 3, H, W) or (B, T, 3, H, W).
    landmarks68: (B, 68, 2) or (B, T, 68, 2).
    landmarks_mp: (B, 105, 2) or (B, T, 105, 2).
    landmarks_valid: (B,) or (B, T) bool.
    params: :class:`~tempsmirk.flame.FlameParams` with (B, ...) or (B, T, ...) fields, or None.
    index: (B,) int64 dataset indices.
    landmarks68_valid: (B,) or (B, T) bool, or None (= ``landmarks_valid``); see :class:`FaceSample`.
    hull_points: (B, L', 2) or (B, T, L', 2), or None (see :class:`FaceSample`).
    """

    image: Tensor
    landmarks68: Tensor
    landmarks_mp: Tensor
    landmarks_valid: Tensor
    params: Optional[FlameParams]
    index: Tensor
    landmarks68_valid: Optional[Tensor] = None
    hull_points: Optional[Tensor] = None

    @property
    def batch_size(self) -> int:
        return self.image.shape[0]

    @property
    def is_clip(self) -> bool:
        return self.image.dim() == 5

    @property
    def fan_valid(self) -> Tensor:
        """(B,) or (B, T) bool: where the 68-point (FAN) term may use ``landmarks68``."""
        return self.landmarks_valid if self.landmarks68_valid is None else self.landmarks68_valid & self.landmarks_valid

    def to(self, device: torch.device | str) -> "FaceBatch":
        """Every tensor moved to ``device``."""
        return FaceBatch(
            image=self.image.to(device), landmarks68=self.landmarks68.to(device),
            landmarks_mp=self.landmarks_mp.to(device), landmarks_valid=self.landmarks_valid.to(device),
            params=None if self.params is None else self.params.to(device), index=self.index.to(device),
            landmarks68_valid=None if self.landmarks68_valid is None else self.landmarks68_valid.to(device),
            hull_points=None if self.hull_points is None else self.hull_points.to(device))

    def frames(self) -> "FaceBatch":
        """A clip batch flattened to single frames (B·T, ...); a frame batch unchanged."""
        if not self.is_clip:
            return self
        b, t = self.image.shape[:2]
        flat = lambda x: x.reshape(b * t, *x.shape[2:])  # noqa: E731
        params = None
        if self.params is not None:
            params = self.params.map(flat)
        return replace(self, image=flat(self.image), landmarks68=flat(self.landmarks68),
                       landmarks_mp=flat(self.landmarks_mp), landmarks_valid=flat(self.landmarks_valid),
                       params=params, index=self.index.repeat_interleave(t),
                       landmarks68_valid=None if self.landmarks68_valid is None else flat(self.landmarks68_valid),
                       hull_points=None if self.hull_points is None else flat(self.hull_points))


def collate_faces(samples: Sequence[FaceSample]) -> FaceBatch:
    """Stack samples into a :class:`FaceBatch` (the ``collate_fn`` for a ``DataLoader``).

    Either every sample has ground-truth ``params`` or none has; the same for ``hull_points``.
    """
    if not samples:
        raise ValueError("collate_faces needs at least one sample")
    has_params = [s.params is not None for s in samples]
    if any(has_params) and not all(has_params):
        raise ValueError("collate_faces: some samples have ground-truth params and some do not; "
                         "do not mix synthetic and real data in one batch")
    params = None
    if all(has_params):
        params = FlameParams.stack(s.params for s in samples)
    valid = [torch.as_tensor(s.landmarks_valid, dtype=torch.bool) for s in samples]
    fan_valid = None
    if any(s.landmarks68_valid is not None for s in samples):
        fan_valid = torch.stack([v if s.landmarks68_valid is None
                                 else torch.as_tensor(s.landmarks68_valid, dtype=torch.bool)
                                 for s, v in zip(samples, valid)])
    has_hull = [s.hull_points is not None for s in samples]
    if any(has_hull) and not all(has_hull):
        raise ValueError("collate_faces: some samples have hull_points and some do not; do not mix "
                         "datasets with and without MediaPipe's 478 points in one batch")
    return FaceBatch(
        image=torch.stack([s.image for s in samples]),
        landmarks68=torch.stack([s.landmarks68 for s in samples]),
        landmarks_mp=torch.stack([s.landmarks_mp for s in samples]),
        landmarks_valid=torch.stack(valid),
        params=params,
        index=torch.tensor([s.index for s in samples], dtype=torch.long),
        landmarks68_valid=fan_valid,
        hull_points=torch.stack([s.hull_points for s in samples]) if all(has_hull) else None,
    )
