"""Frames without a face: filling their values from the frames with one (chapter 7).

MediaPipe misses a face now and then (a turn, a hand, motion blur). Everything measured per frame —
crop boxes, landmarks, FLAME parameters — then has a gap at that frame, and the frame keeps its
index (its ``found`` flag is False). :func:`fill_gaps` is the one rule that fills such gaps, for
every kind of per-frame value: **linear interpolation in time** between the nearest frames with a
face, the first (last) found value **held** before the first (after the last) found frame, and the
found frames' own values kept exactly. Callers keep the ``found`` flags: a filled frame is still a
frame without a face.

**No frame has a face**: there is nothing to fill from, and :func:`fill_gaps` raises
:class:`NoFaceError` (a ``ValueError``) rather than inventing values. A caller for which an all-empty
clip is not an error says so where it calls (e.g. :class:`~tempsmirk.data.MeadClips` gives such a
clip zero landmarks, every frame flagged invalid).

Axis-angle poses are interpolated per component, which is close to the geodesic path for the small
rotations between frames a few apart.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, TypeVar, Union

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["NoFaceError", "fill_gaps"]

Filled = TypeVar("Filled")


class NoFaceError(ValueError):
    """No frame shows a face that MediaPipe detects, so there is nothing to fill gaps from."""


def _weights(found: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every frame t: the found frames ``lo`` <= t <= ``hi`` around it and the weight w of
    ``hi`` (value = (1 - w)·x[lo] + w·x[hi]); a found frame is its own ``lo`` and ``hi``."""
    t = found.shape[0]
    known = np.flatnonzero(found)
    if known.size == 0:
        raise NoFaceError(f"no frame has a face (none of {t}), so there is nothing to fill the frames "
                          "without one from; expected a face in at least one frame (check that the "
                          "video shows a face MediaPipe detects)")
    idx = np.arange(t)
    pos = np.searchsorted(known, idx)  # first found frame >= t
    # Before the first (after the last) found frame both neighbours are that frame: held.
    hi = known[np.minimum(pos, known.size - 1)]
    lo = known[np.maximum(pos - 1, 0)]
    w = np.where(hi > lo, (idx - lo) / np.maximum(hi - lo, 1), 0.0)
    # A found frame reads only its own row, so its value comes back exactly.
    return np.where(found, idx, lo), np.where(found, idx, hi), np.where(found, 1.0, w)


def _fill(x: Union[np.ndarray, "Tensor"], lo: np.ndarray, hi: np.ndarray, w: np.ndarray):
    if isinstance(x, np.ndarray):
        ww = w.reshape(-1, *([1] * (x.ndim - 1)))
        return (x[lo] * (1.0 - ww) + x[hi] * ww).astype(x.dtype, copy=False)
    import torch

    ww = torch.from_numpy(w).to(device=x.device, dtype=torch.float64).view(-1, *([1] * (x.dim() - 1)))
    lo_t, hi_t = torch.from_numpy(lo).to(x.device), torch.from_numpy(hi).to(x.device)
    return (x[lo_t].double() * (1.0 - ww) + x[hi_t].double() * ww).to(x.dtype)


def fill_gaps(values: Filled, found: Union[np.ndarray, "Tensor"]) -> Filled:
    """Fill the frames without a face by linear interpolation in time (module docstring).

    Args:
        values: per-frame values, frames first: a (T, ...) numpy array or torch tensor, or a
            dataclass whose fields all are (T, ...) arrays or tensors (e.g. FLAME parameters). Rows
            of frames without a face may hold anything (NaN included); they are not read.
        found: (T,) bool, the frame has a face (numpy or torch, any device).
    Returns:
        the same type, shapes, dtypes and devices; found rows unchanged, the others filled
        (computed in float64).
    Raises:
        NoFaceError: no frame has a face.
        ValueError: ``found`` is not (T,) for the values' T.
    """
    found = np.asarray(found.cpu() if hasattr(found, "cpu") else found, dtype=bool)
    if dataclasses.is_dataclass(values) and not isinstance(values, type):
        names = [f.name for f in dataclasses.fields(values)]
        for name in names:
            _check(getattr(values, name), found, name)
        lo, hi, w = _weights(found)
        return dataclasses.replace(values, **{n: _fill(getattr(values, n), lo, hi, w) for n in names})
    _check(values, found, "values")
    return _fill(values, *_weights(found))


def _check(x, found: np.ndarray, name: str) -> None:
    if found.ndim != 1 or x.shape[0] != found.shape[0]:
        raise ValueError(f"fill_gaps: {name} has {x.shape[0]} frames but found is {tuple(found.shape)}; "
                         "expected one found flag per frame")
