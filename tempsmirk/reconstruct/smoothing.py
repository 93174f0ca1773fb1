"""Inference-time smoothing of per-frame FLAME parameters: the baseline temporal training must beat.

Explained in chapter 7. Shapes: T frames, D parameter dimensions (every column filtered
independently, all columns at once).

Two classic filters, both applied after the encoder has run on every frame:

- :func:`one_euro` — the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012): a first-order
  low-pass whose cutoff rises with the signal's speed, ``cutoff = min_cutoff + beta·|ẋ|``, so slow
  drifts are smoothed hard and fast motion follows with little lag. It is *causal* (frame t sees
  only frames <= t), the choice for live video; it lags a steady ramp by a little.
- :func:`savgol` — the Savitzky–Golay filter: a least-squares polynomial of degree ``order`` fitted
  to a centred window of ``window`` frames, evaluated at the centre. Zero-phase (no lag) and exact
  for polynomials up to ``order``, including at the clip's ends (the end windows are fitted once and
  evaluated at every end frame); it needs the whole clip, so it is an offline filter.

Neither filter knows that a smooth track can still be wrong: chapter 7 measures jitter *and*
per-frame error against ground truth for both, so that over-smoothing cannot pass as accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, TypeVar, Union

import numpy as np
import torch
from torch import Tensor

from tempsmirk.flame.params import PARAM_FIELDS, FlameParams
from tempsmirk.smirk.encoder import JAW_SIDE_LIMIT

__all__ = ["METHODS", "OneEuro", "SavitzkyGolay", "Smoothing", "make_smoothing", "describe", "one_euro",
           "savgol", "smooth_params"]

METHODS = ("none", "one_euro", "savgol")
Track = TypeVar("Track", np.ndarray, Tensor)


def _to_numpy(x: Track) -> np.ndarray:
    a = x.detach().cpu().double().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"expected a (T, D) track; got shape {a.shape}")
    return a


def _like(y: np.ndarray, x: Track) -> Track:
    """``y`` in the container, dtype and device of ``x``."""
    if isinstance(x, Tensor):
        return torch.as_tensor(y, dtype=x.dtype, device=x.device)
    x = np.asarray(x)
    return y.astype(x.dtype) if np.issubdtype(x.dtype, np.floating) else y


def _alpha(cutoff: np.ndarray | float, fps: float) -> np.ndarray | float:
    """Smoothing factor of an exponential filter with the given cutoff (Hz) at ``fps``."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * fps)


def one_euro(x: Track, fps: float, min_cutoff: float = 1.0, beta: float = 0.5,
             d_cutoff: float = 1.0) -> Track:
    """One-Euro filter over time, each column on its own: x (T, D) -> (T, D), same type.

    Args:
        x: (T, D) track (NumPy array or tensor; computed in float64).
        fps: frame rate (the filter's cutoffs are in Hz).
        min_cutoff: cutoff (Hz) for a still signal; lower = smoother, more lag.
        beta: how fast the cutoff rises with speed (per unit of x per second); 0 = a fixed
            low-pass at ``min_cutoff``.
        d_cutoff: cutoff (Hz) of the low-pass on the speed estimate.
    The first frame passes unchanged; a constant track stays constant. Explained in chapter 7.
    """
    if not (fps > 0 and min_cutoff > 0 and d_cutoff > 0 and beta >= 0):
        raise ValueError(f"one_euro needs fps, min_cutoff, d_cutoff > 0 and beta >= 0; got fps={fps}, "
                         f"min_cutoff={min_cutoff}, d_cutoff={d_cutoff}, beta={beta}")
    a = _to_numpy(x)
    out = np.empty_like(a)
    if a.shape[0] == 0:
        return _like(out, x)
    a_d = _alpha(d_cutoff, fps)
    prev, speed = a[0].copy(), np.zeros(a.shape[1])
    out[0] = prev
    # A recursive filter: frame t needs the filtered frame t-1, so time is a loop (D is vectorised).
    for t in range(1, a.shape[0]):
        speed = a_d * (a[t] - prev) * fps + (1.0 - a_d) * speed
        k = _alpha(min_cutoff + beta * np.abs(speed), fps)
        prev = k * a[t] + (1.0 - k) * prev
        out[t] = prev
    return _like(out, x)


def savgol(x: Track, window: int = 9, order: int = 2) -> Track:
    """Savitzky–Golay filter over time, each column on its own: x (T, D) -> (T, D), same type.

    Args:
        x: (T, D) track.
        window: odd window length in frames (shortened to the largest odd length <= T for a
            short clip).
        order: polynomial degree, < window.
    A polynomial track of degree <= ``order`` passes unchanged; a clip too short to fit the
    polynomial (T <= order) is returned unchanged. Explained in chapter 7.
    """
    if window < 1 or window % 2 == 0 or order < 0 or order >= window:
        raise ValueError(f"savgol needs an odd window > order >= 0; got window={window}, order={order}")
    from scipy.signal import (
        savgol_filter,  # SciPy's signal module takes seconds to import
    )

    a = _to_numpy(x)
    t = a.shape[0]
    w = min(window, t if t % 2 else t - 1)
    if w <= order:
        return _like(a.copy(), x)
    return _like(savgol_filter(a, w, order, axis=0, mode="interp"), x)


@dataclass(frozen=True)
class OneEuro:
    """The One-Euro filter's settings (:func:`one_euro`): cutoffs in Hz, ``beta`` per unit per second."""

    min_cutoff: float = 1.0
    beta: float = 0.5
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if not (self.min_cutoff > 0 and self.d_cutoff > 0 and self.beta >= 0):
            raise ValueError(f"One-Euro needs min_cutoff, d_cutoff > 0 and beta >= 0; got {self}")

    def __call__(self, x: Track, fps: float) -> Track:
        return one_euro(x, fps, self.min_cutoff, self.beta, self.d_cutoff)

    def describe(self) -> str:
        return f"one_euro(min_cutoff={self.min_cutoff:g}, beta={self.beta:g}, d_cutoff={self.d_cutoff:g})"


@dataclass(frozen=True)
class SavitzkyGolay:
    """The Savitzky–Golay filter's settings (:func:`savgol`): odd window in frames, degree."""

    window: int = 9
    order: int = 2

    def __post_init__(self) -> None:
        if self.window % 2 == 0 or not 0 <= self.order < self.window:
            raise ValueError(f"Savitzky–Golay needs an odd window > order >= 0; got window={self.window}, "
                             f"order={self.order}")

    def __call__(self, x: Track, fps: float) -> Track:
        return savgol(x, self.window, self.order)

    def describe(self) -> str:
        return f"savgol(window={self.window}, order={self.order})"


Smoothing = Union[OneEuro, SavitzkyGolay]


def make_smoothing(method: str, min_cutoff: float = 1.0, beta: float = 0.5, d_cutoff: float = 1.0,
                   window: int = 9, order: int = 2) -> Optional[Smoothing]:
    """The filter named by ``method`` (one of :data:`METHODS`) with its settings; None for ``"none"``."""
    if method not in METHODS:
        raise ValueError(f"smoothing method must be one of {METHODS}; got {method!r}")
    if method == "one_euro":
        return OneEuro(min_cutoff, beta, d_cutoff)
    return SavitzkyGolay(window, order) if method == "savgol" else None


def describe(smoothing: Optional[Smoothing]) -> str:
    """A short label, e.g. ``savgol(window=9, order=2)``; ``"none"`` for None."""
    return "none" if smoothing is None else smoothing.describe()


def smooth_params(params: FlameParams, smoothing: Optional[Smoothing], fps: float) -> FlameParams:
    """Filter every parameter track of one video: (T, ...) fields -> (T, ...) fields.

    All fields are concatenated into one (T, D) track and filtered together (each column on its
    own), then split back. Afterwards eyelids are clamped to [0, 1], the jaw opening to >= 0 and
    the jaw's side axes to ±``JAW_SIDE_LIMIT``, the ranges the encoder itself produces (a polynomial
    fit can overshoot them). Axis-angle poses are filtered per component, which is accurate for
    the small frame-to-frame rotations of a face video. Explained in chapter 7.

    Args:
        smoothing: :class:`OneEuro`, :class:`SavitzkyGolay`, or None (``params`` returned as is).
        fps: frame rate (One-Euro's cutoffs are in Hz); NaN or <= 0 is read as 25.
    """
    if smoothing is None:
        return params
    names = list(PARAM_FIELDS)
    tracks = [getattr(params, n) for n in names]
    flat = smoothing(torch.cat(tracks, dim=1), fps if math.isfinite(fps) and fps > 0 else 25.0)
    parts = dict(zip(names, torch.split(flat, [t.shape[1] for t in tracks], dim=1)))
    jaw = parts["jaw_pose"]
    parts["jaw_pose"] = torch.cat([jaw[:, :1].clamp(min=0.0),
                                   jaw[:, 1:].clamp(-JAW_SIDE_LIMIT, JAW_SIDE_LIMIT)], dim=1)
    parts["eyelids"] = parts["eyelids"].clamp(0.0, 1.0)
    return FlameParams(**parts)
