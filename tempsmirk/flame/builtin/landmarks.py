"""Landmark placement on the built-in head: iBUG 68 (static and yaw-dependent contour) and MediaPipe.

Each landmark is a (face, barycentric coordinates) pair on the skin grid, placed by grid
position (fractional row and column) or by reference (x, y) on the face, as FLAME's
embeddings are (guide, section 2): 51 static iBUG points (17..67), 79 rows of the 17 jaw
contour points (yaw 0..39° then −1..−39°; on the yaw-turned silhouette), and the 105
MediaPipe points of :data:`.tables.MEDIAPIPE_INDICES` on the same curves as the iBUG ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tempsmirk.flame.builtin.layout import N_CAP_ROWS, N_COLS, Y_MOUTH
from tempsmirk.flame.builtin.skin import Skin
from tempsmirk.flame.builtin.tables import (
    MEDIAPIPE_INDICES,
    MP_LEFT_BROW_LOWER,
    MP_LEFT_BROW_UPPER,
    MP_LEFT_EYE_LOWER,
    MP_LEFT_EYE_UPPER,
    MP_LIPS_INNER_LOWER,
    MP_LIPS_INNER_UPPER,
    MP_LIPS_OUTER_LOWER,
    MP_LIPS_OUTER_UPPER,
    MP_NOSE_LEFT,
    MP_NOSE_MIDLINE,
    MP_NOSE_RIGHT,
    MP_RIGHT_BROW_LOWER,
    MP_RIGHT_BROW_UPPER,
    MP_RIGHT_EYE_LOWER,
    MP_RIGHT_EYE_UPPER,
)

__all__ = ["place_landmarks"]

SurfacePoint = tuple[int, np.ndarray]
"""A point on the mesh: face id and (3,) barycentric coordinates."""


@dataclass(frozen=True)
class _Locator:
    """Turns grid parameters (fractional row, signed fractional column) into (face, barycentrics)."""

    skin: Skin

    def at(self, row_f: float, col_f: float, side: str = "lower") -> SurfacePoint:
        r = int(np.floor(row_f + 1e-12))
        v = row_f - r
        if side == "upper" and v < 1e-12:
            r, v = r - 1, 1.0
        c_floor = int(np.floor(col_f + 1e-12))
        u = min(max(col_f - c_floor, 0.0), 1.0)
        c = c_floor % N_COLS
        v = min(max(v, 0.0), 1.0)
        cf = self.skin.cell_faces[r, c]
        if c < N_COLS // 2:
            if v >= u:
                return int(cf[0]), np.array([1 - v, v - u, u])
            return int(cf[1]), np.array([1 - u, v, u - v])
        if u + v <= 1:
            return int(cf[0]), np.array([1 - u - v, v, u])
        return int(cf[1]), np.array([1 - v, 1 - u, u + v - 1])

    def row_of(self, y: float) -> float:
        """Fractional row for a reference height in the horizontal part of the grid."""
        ys = self.skin.row_y[N_CAP_ROWS - 1:]
        idx = np.arange(N_CAP_ROWS - 1, N_CAP_ROWS - 1 + ys.size, dtype=float)
        return float(np.interp(-y, -ys, idx))

    def row_points(self, row_f: float, which: str = "ref") -> np.ndarray:
        """(N, 3) positions along a fractional row (linear between the two grid rows)."""
        pts = self.skin.ref if which == "ref" else self.skin.positions
        r = int(np.floor(row_f))
        v = row_f - r
        a = pts[self.skin.gid[r]]
        b = pts[self.skin.gid[min(r + 1, self.skin.gid.shape[0] - 1)]]
        return (1 - v) * a + v * b

    def col_of(self, row_f: float, x: float) -> float:
        """Signed fractional column on the front half where the row passes reference x."""
        pts = self.row_points(row_f)
        cols = np.arange(-N_COLS // 4, N_COLS // 4 + 1)
        xs = pts[cols % N_COLS, 0]
        return float(np.interp(x, xs, cols))

    def front(self, x: float, y: float, side: str = "lower") -> SurfacePoint:
        row_f = self.row_of(y)
        return self.at(row_f, self.col_of(row_f, x), side)


def _curve(x: np.ndarray, half_width: float, height: float) -> np.ndarray:
    """Half an ellipse: ``height`` at x = 0, 0 at |x| >= ``half_width``."""
    return height * np.sqrt(np.clip(1.0 - (x / half_width) ** 2, 0.0, 1.0))


def place_landmarks(skin: Skin) -> tuple[dict[str, np.ndarray], dict[str, list[np.ndarray]], dict[str, np.ndarray]]:
    """Static (iBUG 17..67), dynamic (iBUG 0..16 per yaw) and MediaPipe embeddings."""
    loc = _Locator(skin)
    N = N_COLS
    j_in, j_out = skin.eye_cols
    j_m = skin.mouth_col
    rm, re = float(skin.r_mouth), float(skin.r_eye)
    x_corner = skin.ref[skin.gid[skin.r_mouth, j_m], 0]
    x_outer = x_corner + 0.0012
    up_h, lo_h = 0.0055, 0.006

    def eye(s: float, sign: int, side: str) -> SurfacePoint:  # s: 0 inner corner .. 1 outer corner
        return loc.at(re, sign * (j_in + s * (j_out - j_in)), side)

    def mouth_inner(x: float, side: str) -> SurfacePoint:
        return loc.at(rm, loc.col_of(rm, x), side)

    def mouth_outer(x: float, upper: bool) -> SurfacePoint:
        y = Y_MOUTH + (_curve(np.array(x), x_outer, up_h) if upper else -_curve(np.array(x), x_outer, lo_h))
        return loc.front(x, float(y), "upper" if upper else "lower")

    pts: dict[int, SurfacePoint] = {}
    brow = [(0.0106, 0.0375), (0.0229, 0.0424), (0.0372, 0.0456), (0.0498, 0.0434), (0.0583, 0.0271)]
    for k, (x, y) in enumerate(brow):
        pts[22 + k] = loc.front(x, y)
        pts[21 - k] = loc.front(-x, y)
    for i, y in zip((27, 28, 29, 30), (0.022, 0.009, 0.0003, -0.0085)):
        pts[i] = loc.front(0.0, y)
    for i, (x, y) in zip((31, 32, 33, 34, 35), ((-0.0137, -0.0205), (-0.0072, -0.0225), (0.0, -0.0243),
                                                (0.0072, -0.0225), (0.0137, -0.0205))):
        pts[i] = loc.front(x, y)
    third = 1.0 / 3.0
    pts.update({42: eye(0, 1, "upper"), 43: eye(third, 1, "upper"), 44: eye(2 * third, 1, "upper"),
                45: eye(1, 1, "upper"), 46: eye(2 * third, 1, "lower"), 47: eye(third, 1, "lower")})
    pts.update({39: eye(0, -1, "upper"), 38: eye(third, -1, "upper"), 37: eye(2 * third, -1, "upper"),
                36: eye(1, -1, "upper"), 41: eye(2 * third, -1, "lower"), 40: eye(third, -1, "lower")})
    pts[48], pts[54] = loc.front(-x_outer, Y_MOUTH), loc.front(x_outer, Y_MOUTH)
    for i, x in zip((49, 50, 51, 52, 53), (-0.0157, -0.0058, 0.0, 0.0058, 0.0157)):
        pts[i] = mouth_outer(x, True)
    for i, x in zip((55, 56, 57, 58, 59), (0.0162, 0.0066, 0.0, -0.0066, -0.0162)):
        pts[i] = mouth_outer(x, False)
    pts[60], pts[64] = loc.at(rm, -j_m, "upper"), loc.at(rm, j_m, "upper")
    for i, x in zip((61, 62, 63), (-0.0063, 0.0, 0.0063)):
        pts[i] = mouth_inner(x, "upper")
    for i, x in zip((65, 66, 67), (0.0063, 0.0, -0.0063)):
        pts[i] = mouth_inner(x, "lower")
    static = {
        "lmk_face_idx": np.array([pts[i][0] for i in range(17, 68)], dtype=np.uint32),
        "lmk_b_coords": np.array([pts[i][1] for i in range(17, 68)], dtype=np.float64),
    }

    # MediaPipe points on the same curves as the iBUG ones
    mp: dict[int, SurfacePoint] = {}
    xs = np.linspace(-1.0, 1.0, 11)
    for k, i in enumerate(MP_LIPS_OUTER_UPPER):
        mp[i] = pts[48] if k == 0 else pts[54] if k == 10 else mouth_outer(xs[k] * x_outer, True)
    for k, i in enumerate(MP_LIPS_OUTER_LOWER):
        mp[i] = pts[48] if k == 0 else pts[54] if k == 10 else mouth_outer(xs[k] * x_outer, False)
    for k, i in enumerate(MP_LIPS_INNER_UPPER):
        mp[i] = loc.at(rm, xs[k] * j_m, "upper")
    for k, i in enumerate(MP_LIPS_INNER_LOWER):
        mp[i] = loc.at(rm, xs[k] * j_m, "lower" if 0 < k < 10 else "upper")
    ss = np.linspace(1.0, 0.0, 9)
    for chain, sign, side in ((MP_RIGHT_EYE_UPPER, -1, "upper"), (MP_RIGHT_EYE_LOWER, -1, "lower"),
                              (MP_LEFT_EYE_UPPER, 1, "upper"), (MP_LEFT_EYE_LOWER, 1, "lower")):
        for k, i in enumerate(chain):
            mp[i] = eye(ss[k], sign, "upper" if k in (0, 8) else side)
    bx = np.array([b[0] for b in brow])[::-1]
    by = np.array([b[1] for b in brow])[::-1]
    for chain, sign, dy in ((MP_RIGHT_BROW_UPPER, -1, 0.002), (MP_RIGHT_BROW_LOWER, -1, -0.003),
                            (MP_LEFT_BROW_UPPER, 1, 0.002), (MP_LEFT_BROW_LOWER, 1, -0.003)):
        for k, i in enumerate(chain):
            mp[i] = loc.front(sign * bx[k], by[k] + dy)
    for i, y in zip(MP_NOSE_MIDLINE, (0.030, 0.018, 0.008, 0.0, -0.005, -0.0085, -0.0245)):
        mp[i] = loc.front(0.0, y)
    for right, left, (x, y) in zip(MP_NOSE_RIGHT, MP_NOSE_LEFT, ((0.0145, -0.0165), (0.0085, -0.021),
                                                                   (0.004, -0.023))):
        mp[right], mp[left] = loc.front(-x, y), loc.front(x, y)
    mediapipe = {
        "lmk_face_idx": np.array([mp[int(i)][0] for i in MEDIAPIPE_INDICES], dtype=np.uint32),
        "lmk_b_coords": np.array([mp[int(i)][1] for i in MEDIAPIPE_INDICES], dtype=np.float64),
        "landmark_indices": MEDIAPIPE_INDICES.copy(),
    }

    # jaw contour: frontal silhouette at the top, a jaw-line curve below, sliding with yaw
    contour_y = np.array([0.0185, -0.001, -0.0198, -0.0376, -0.0542, -0.0682, -0.0804, -0.0888, -0.0919])
    ratio = np.array([1.0, 1.0, 1.0, 1.0, 0.92, 0.77, 0.57, 0.29, 0.0])
    rows = [loc.row_of(y) for y in contour_y]
    cols0 = []
    for k, rf in enumerate(rows):
        if k <= 3:  # frontal silhouette of the head side (in front of the ears)
            pts_row = loc.row_points(rf, "pos")
            cand = np.arange(0, N // 4 + 1)
            j = int(cand[np.argmax(pts_row[cand, 0])])
            cols0.append(_refine(pts_row[:, 0], j))
        else:
            cols0.append(None)
    x3 = float(np.interp(cols0[3], np.arange(N), loc.row_points(rows[3], "pos")[:, 0]))
    for k in range(4, 9):
        cols0[k] = loc.col_of(rows[k], ratio[k] * x3)
    cols0 = np.array(cols0)

    def contour(yaw_deg: float) -> list[SurfacePoint]:
        psi = np.radians(abs(yaw_deg))
        sign = 1 if yaw_deg > 0 else -1  # the side turning away from the camera
        out = []
        for k in range(17):
            kk = k if k <= 8 else 16 - k
            s = -1 if k < 8 else 1 if k > 8 else 0
            col = s * cols0[kk]
            if yaw_deg != 0 and s == sign and kk < 8:
                col = sign * _slide(loc.row_points(rows[kk], "pos"), cols0[kk], psi)
            out.append(loc.at(rows[kk], col))
        return out

    yaws = list(range(0, 40)) + [-(r - 39) for r in range(40, 79)]
    rows_lm = [contour(y) for y in yaws]
    dynamic = {
        "lmk_face_idx": [np.array([p[0] for p in r], dtype=np.uint32) for r in rows_lm],
        "lmk_b_coords": [np.array([p[1] for p in r], dtype=np.float64) for r in rows_lm],
    }
    return static, dynamic, mediapipe


def _refine(values: np.ndarray, j: int) -> float:
    """Fractional index of the peak of a sampled curve near sample j (parabola through 3 samples)."""
    a, b, c = values[(j - 1) % N_COLS], values[j], values[(j + 1) % N_COLS]
    den = a - 2 * b + c
    return float(j + (0.5 * (a - c) / den if den < 0 else 0.0))


def _slide(pts_row: np.ndarray, col0: float, psi: float) -> float:
    """Contour column for a head turned by psi: the silhouette seen from the rotated camera.

    Searches the +x front of the row between the midline and the frontal contour
    column for the point furthest along (cos psi, 0, sin psi), i.e. where the surface
    turns away from a camera that sees the head turned by psi towards +x (the −x side
    follows by symmetry).
    """
    cols = np.linspace(0.0, col0, 64)
    x = np.interp(cols, np.arange(N_COLS // 2 + 1), pts_row[: N_COLS // 2 + 1, 0])
    z = np.interp(cols, np.arange(N_COLS // 2 + 1), pts_row[: N_COLS // 2 + 1, 2])
    support = x * np.cos(psi) + z * np.sin(psi)
    return float(cols[int(np.argmax(support))])
