"""Smooth scalar and vector fields on points: the building blocks of the relief, regions and bases.

Pure NumPy; the random field draws from the ``rng`` it is given.
"""

from __future__ import annotations

import numpy as np

__all__ = ["smoothstep", "gauss", "random_smooth_field", "normalise"]


def smoothstep(t: np.ndarray) -> np.ndarray:
    """0 below t = 0, 1 above t = 1, a cubic step in between (same shape as ``t``)."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def gauss(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    """An axis-aligned 2-D Gaussian bump of height 1 at (cx, cy), widths (sx, sy), over points (x, y)."""
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def random_smooth_field(rng: np.random.Generator, p: np.ndarray, freq: float, n_waves: int = 6) -> np.ndarray:
    """A smooth random vector field on points p (N,3): a sum of plane waves of wavenumber ~freq."""
    out = np.zeros_like(p)
    for _ in range(n_waves):
        w = rng.normal(size=3)
        w *= freq * rng.uniform(0.7, 1.3) / np.linalg.norm(w)
        a = rng.normal(size=3)
        out += np.cos(p @ w + rng.uniform(0, 2 * np.pi))[:, None] * a[None, :]
    return out


def normalise(field: np.ndarray, amplitude: float) -> np.ndarray:
    """``field`` (N, 3) rescaled so its longest vector has length ``amplitude``."""
    peak = np.linalg.norm(field, axis=-1).max()
    return field * (amplitude / max(peak, 1e-12))
