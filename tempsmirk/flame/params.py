"""FLAME parameters as one type: what an encoder predicts, a fit optimises, a dataset knows as
ground truth and a video's parameter file holds (explained in chapters 1 and 3).

Shapes: B batch (any leading axes: (B, T, ...) for clips), S shape and E expression coefficients.
:meth:`tempsmirk.flame.FLAME.forward_params` runs FLAME on a :class:`FlameParams`; the camera is
the orthographic one of :mod:`tempsmirk.render.camera`, which FLAME does not use.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Iterable, Mapping

import torch
from torch import Tensor

__all__ = ["FlameParams", "PARAM_FIELDS"]


@dataclass(frozen=True)
class FlameParams:
    """FLAME parameters of a batch (all float, same device and dtype).

    global_pose: (B, 3) axis-angle of the head (FLAME's root joint).
    cam: (B, 3) orthographic camera (s, tx, ty), see :mod:`tempsmirk.render.camera`.
    shape: (B, S) identity coefficients.
    expression: (B, E) expression coefficients.
    eyelids: (B, 2) eyelid closure (left, right) in [0, 1].
    jaw_pose: (B, 3) axis-angle; SMIRK's encoder keeps the opening (x) >= 0 and the other two
        axes within ±0.2.

    Clips carry a (B, T) pair of leading axes instead of B (:func:`tempsmirk.temporal.clip_params`).
    """

    global_pose: Tensor
    cam: Tensor
    shape: Tensor
    expression: Tensor
    eyelids: Tensor
    jaw_pose: Tensor

    @property
    def batch_size(self) -> int:
        return self.global_pose.shape[0]

    def map(self, fn: Callable[[Tensor], Tensor]) -> "FlameParams":
        """``fn`` applied to every field."""
        return FlameParams(**{name: fn(getattr(self, name)) for name in PARAM_FIELDS})

    def detach(self) -> "FlameParams":
        """Every tensor detached (the cycle path starts from detached parameters)."""
        return self.map(lambda t: t.detach())

    def clone(self) -> "FlameParams":
        return self.map(lambda t: t.clone())

    def to(self, *args, **kwargs) -> "FlameParams":
        """``Tensor.to`` applied to every field."""
        return self.map(lambda t: t.to(*args, **kwargs))

    def __getitem__(self, index) -> "FlameParams":
        """Select along the batch: ``p[idx]`` with a slice, an index tensor or a bool mask."""
        return self.map(lambda t: t[index])

    def as_dict(self) -> dict[str, Tensor]:
        """The fields by name, in :data:`PARAM_FIELDS` order."""
        return {name: getattr(self, name) for name in PARAM_FIELDS}

    @staticmethod
    def from_dict(arrays: Mapping[str, object]) -> "FlameParams":
        """From a mapping with every field (tensors or arrays; extra keys are ignored)."""
        return FlameParams(**{name: torch.as_tensor(arrays[name]) for name in PARAM_FIELDS})

    @staticmethod
    def cat(params: Iterable["FlameParams"]) -> "FlameParams":
        """Concatenate along the batch."""
        params = list(params)
        return FlameParams(**{name: torch.cat([getattr(p, name) for p in params]) for name in PARAM_FIELDS})

    @staticmethod
    def stack(params: Iterable["FlameParams"]) -> "FlameParams":
        """Stack along a new leading axis (e.g. dataset items into a batch)."""
        params = list(params)
        return FlameParams(**{name: torch.stack([getattr(p, name) for p in params]) for name in PARAM_FIELDS})


#: The parameter fields, in :class:`FlameParams` order (the order of saved parameter files).
PARAM_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(FlameParams))
