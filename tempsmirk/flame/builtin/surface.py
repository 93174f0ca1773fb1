"""The implicit head the skin is cast onto: a smooth base shape and the facial relief on it.

:func:`head_sdf` is the base head (cranium, mid face, jaw and neck ellipsoids, smoothly
united); :func:`ray_hit` finds where the skin grid's rays meet it; :func:`facial_relief`
is the nose, brows, lips, chin and ears, added along the rays afterwards (:mod:`.skin`).
"""

from __future__ import annotations

import numpy as np

from tempsmirk.flame.builtin.fields import gauss, smoothstep
from tempsmirk.flame.builtin.layout import Y_MOUTH, Z_AXIS

__all__ = ["head_sdf", "ray_hit", "facial_relief"]


def _ellipsoid(p: np.ndarray, c: tuple[float, float, float], a: tuple[float, float, float]) -> np.ndarray:
    """Approximate signed distance to an ellipsoid (exact on the surface, bounded elsewhere)."""
    q = (p - np.asarray(c)) / np.asarray(a)
    k0 = np.linalg.norm(q, axis=-1)
    k1 = np.linalg.norm(q / np.asarray(a), axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth minimum (a rounded union of two implicit shapes)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def head_sdf(p: np.ndarray) -> np.ndarray:
    """The base head as an implicit function: (..., 3) -> (...), negative inside."""
    cranium = _ellipsoid(p, (0.0, 0.028, -0.034), (0.077, 0.107, 0.092))
    midface = _ellipsoid(p, (0.0, -0.008, -0.002), (0.066, 0.052, 0.058))
    jaw = _ellipsoid(p, (0.0, -0.052, -0.006), (0.058, 0.050, 0.054))
    rxz = np.sqrt((p[..., 0] / 0.052) ** 2 + ((p[..., 2] + 0.032) / 0.056) ** 2)
    neck = np.maximum((rxz - 1.0) * 0.052, p[..., 1] + 0.030)
    d = _smin(cranium, midface, 0.02)
    d = _smin(d, jaw, 0.015)
    return _smin(d, neck, 0.02)


def ray_hit(origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Distance along each ray to the first crossing of the head surface: (N,3),(N,3) -> (N,)."""
    ts = np.linspace(0.0, 0.3, 121)
    vals = head_sdf(origin[:, None] + ts[None, :, None] * direction[:, None])
    first = np.argmax(vals > 0, axis=1)
    lo, hi = ts[first - 1], ts[first]
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        inside = head_sdf(origin + mid[:, None] * direction) < 0
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    return 0.5 * (lo + hi)


def facial_relief(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Facial relief added along the rays (metres), from positions on the base head."""
    ax = np.abs(x)
    # nose: a ridge growing from the nasion to the tip, a rounded underside, two alae
    y_top, y_tip, y_base = 0.024, -0.008, -0.021
    above = np.clip((y_top - y) / (y_top - y_tip), 0.0, 1.0) ** 1.4
    below = np.sqrt(np.clip(1.0 - ((y_tip - y) / (y_tip - y_base)) ** 2, 0.0, 1.0))
    profile = np.where(y >= y_tip, 0.0025 + 0.0195 * above, 0.022 * below)
    profile = np.where(y > y_top + 0.004, 0.0, profile * smoothstep((y_top + 0.004 - y) / 0.006))
    half_w = 0.0065 + 0.0075 * np.clip((y_top - y) / (y_top - y_base), 0.0, 1.2)
    u = np.clip(ax / half_w, 0.0, 1.0)
    nose = profile * (1.0 - u * u) ** 2
    nose += 0.0045 * gauss(ax, y, 0.0125, -0.0155, 0.0045, 0.0045)
    # eye sockets (the lids are re-inflated over the eyeballs later), brow ridge, cheekbones
    socket = -0.007 * gauss(ax, y, 0.031, 0.018, 0.014, 0.010)
    brow = 0.004 * np.exp(-0.5 * ((y - 0.041) / 0.007) ** 2) * np.clip(1 - (x / 0.066) ** 2, 0, 1) ** 2
    cheek = 0.005 * gauss(ax, y, 0.045, -0.008, 0.015, 0.014)
    # lips, the philtrum ridge and chin
    # lips: two cushions meeting at the slit, thinning towards the corners
    t = np.sqrt(np.clip(1.0 - (x / 0.027) ** 2, 0.0, 1.0))
    upper_lip = np.exp(-0.5 * ((y - (Y_MOUTH + 0.0028 * t)) / (0.0015 + 0.0032 * t)) ** 2)
    lower_lip = np.exp(-0.5 * ((y - (Y_MOUTH - 0.0035 * t)) / (0.0015 + 0.0038 * t)) ** 2)
    lips = 0.0065 * t ** 0.8 * (upper_lip + lower_lip)
    fold = -0.003 * gauss(ax, y, 0.0, Y_MOUTH - 0.015, 0.016, 0.004)
    chin = 0.011 * gauss(ax, y, 0.0, -0.082, 0.016, 0.011)
    face = nose + socket + brow + cheek + lips + fold + chin
    # only the front of the head carries facial relief
    front = smoothstep((z - (Z_AXIS + 0.01)) / 0.04)
    # ears: simple flaps on the sides, well behind the jaw contour
    ear = 0.014 * np.exp(-0.5 * ((y - 0.002) / 0.016) ** 2 - 0.5 * ((z + 0.052) / 0.009) ** 2) \
        * smoothstep((ax - 0.045) / 0.02)
    return face * front + ear
