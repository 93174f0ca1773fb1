"""The built-in head: a procedural stand-in with FLAME's interface (chapter 1).

Nothing licensed ships with the project, so every chapter runs on this head when
no FLAME file is given. It is **not FLAME and not a face scan**: a smooth head
built from a few ellipsoids, with a nose, brows, lips, ears and two eyeballs,
written in exactly FLAME's file layout so the same loaders, layers and notebooks
work on either (see the guide, section 2, for the layout).

Coordinates follow FLAME: metres, +y up, +z out of the face (towards a frontal
camera), +x the subject's left. The head spans about x ±0.087 (ears), y −0.20
(neck cut) to +0.135 and z −0.126 to +0.081 (nose tip), like FLAME's template.

Construction, in brief:

- The skin is one grid: rows run from the crown down to the neck cut, columns
  around the head (column 0 is the face's midline; column ``c`` mirrors to
  ``-c``, so the template is exactly left/right symmetric). Each grid vertex is
  where a ray from the head's vertical axis meets a smooth implicit head
  (cranium, mid face, jaw, neck); facial features are then displaced along
  the rays.
- The mouth and both eyes are *slits* along one grid row: the vertices of the
  slit are duplicated, the upper side keeps the originals, the lower side uses
  the copies. The mouth is closed at rest and backed by a small inner cavity, so
  the jaw opens it; the eyes are opened into almond shapes at rest and show the
  eyeballs (separate spheres) behind them, each held in a socket sac joining the
  lid edges behind the eyeball. The skin is closed except for the neck cut.
- Bases are smooth displacement fields: 300 identity components (named global
  variations, then random smooth fields of decaying size) and 100 expression
  components, confined to the face: 30 named local actions
  (:data:`EXPRESSION_NAMES`: smile, frown, brow raise, ...), designed to be
  linearly independent, then 70 random local bumps of decaying size, each made
  orthogonal to all components before it. So, as with FLAME's PCA basis, the
  expression coefficients are identifiable from the geometry (the basis is well
  conditioned; the tests bound it). Eyeballs follow identity rigidly and never
  deform with expression.

``seed`` draws only the random parts of the bases (identity and expression
fill-in fields, pose correctives); the template, topology, skinning, landmarks,
eyelids and masks do not depend on it.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from tempsmirk.atomic import atomic_write_bytes

__all__ = [
    "HeadAssets", "HeadFiles", "builtin_head", "EXPRESSION_NAMES",
    "IBUG_MIRROR", "MEDIAPIPE_INDICES", "MEDIAPIPE_MIRROR",
]

# --------------------------------------------------------------------------- constants

N_COLS = 72                       # grid columns around the head (even: column 0 and N/2 are on the midline)
N_CAP_ROWS = 16                   # rows on the crown cap (rays fanning from the head centre)
Y_CAP = 0.060                     # height of the crown cap's centre; rows below are horizontal
Z_AXIS = -0.025                   # the vertical axis the rays start from
Y_EYE = 0.019                     # row of the eye slits
Y_MOUTH = -0.044                  # row of the mouth slit
EYE_X = (0.0195, 0.0425)           # wanted inner / outer eye corner |x|
MOUTH_X = 0.0235                  # wanted mouth corner |x|
EYE_RADIUS = 0.0125               # eyeball radius
LID_GAP = 0.0006                  # skin kept this far outside the eyeball
LID_UP, LID_DOWN = 0.0052, 0.0038  # how far the upper / lower lid open at rest
LID_FALLOFF = 0.008               # vertical reach of the lid opening
CAVITY_RINGS = 6                  # rings of the inner mouth from upper to lower lip
N_SHAPE, N_EXPR, N_POSE = 300, 100, 36

# iBUG 68 mirror partner (i <-> IBUG_MIRROR[i] under x -> -x).
IBUG_MIRROR = np.array(
    list(range(16, -1, -1))                        # jaw contour 0..16
    + list(range(26, 16, -1))                      # brows 17..26
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]         # nose 27..35
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes 36..47
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips 48..59
    + [64, 63, 62, 61, 60, 67, 66, 65],            # inner lips 60..67
    dtype=np.int64,
)

# MediaPipe FaceMesh contours used by the FLAME-MediaPipe embedding, each listed in
# order along the contour, subject's right (-x) first. MediaPipe's LEFT is the
# subject's left (+x).
_MP_LIPS_OUTER_UPPER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
_MP_LIPS_OUTER_LOWER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
_MP_LIPS_INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
_MP_LIPS_INNER_LOWER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
# eyes: outer corner -> inner corner
_MP_RIGHT_EYE_UPPER = [33, 246, 161, 160, 159, 158, 157, 173, 133]
_MP_RIGHT_EYE_LOWER = [33, 7, 163, 144, 145, 153, 154, 155, 133]
_MP_LEFT_EYE_UPPER = [263, 466, 388, 387, 386, 385, 384, 398, 362]
_MP_LEFT_EYE_LOWER = [263, 249, 390, 373, 374, 380, 381, 382, 362]
# brows: outer end -> inner end
_MP_RIGHT_BROW_UPPER = [70, 63, 105, 66, 107]
_MP_RIGHT_BROW_LOWER = [46, 53, 52, 65, 55]
_MP_LEFT_BROW_UPPER = [300, 293, 334, 296, 336]
_MP_LEFT_BROW_LOWER = [276, 283, 282, 295, 285]
# nose: midline top -> tip -> below, then the right (-x) and left (+x) nostril points
_MP_NOSE_MIDLINE = [168, 6, 197, 195, 5, 4, 2]
_MP_NOSE_RIGHT = [129, 98, 97]
_MP_NOSE_LEFT = [358, 327, 326]

MEDIAPIPE_INDICES = np.array(sorted(set(
    _MP_LIPS_OUTER_UPPER + _MP_LIPS_OUTER_LOWER + _MP_LIPS_INNER_UPPER + _MP_LIPS_INNER_LOWER
    + _MP_RIGHT_EYE_UPPER + _MP_RIGHT_EYE_LOWER + _MP_LEFT_EYE_UPPER + _MP_LEFT_EYE_LOWER
    + _MP_RIGHT_BROW_UPPER + _MP_RIGHT_BROW_LOWER + _MP_LEFT_BROW_UPPER + _MP_LEFT_BROW_LOWER
    + _MP_NOSE_MIDLINE + _MP_NOSE_RIGHT + _MP_NOSE_LEFT)), dtype=np.int64)


def _mp_mirror_pairs() -> dict[int, int]:
    pairs: dict[int, int] = {}
    for chain in (_MP_LIPS_OUTER_UPPER, _MP_LIPS_OUTER_LOWER, _MP_LIPS_INNER_UPPER, _MP_LIPS_INNER_LOWER):
        for a, b in zip(chain, chain[::-1]):
            pairs[a] = b
    for right, left in ((_MP_RIGHT_EYE_UPPER, _MP_LEFT_EYE_UPPER), (_MP_RIGHT_EYE_LOWER, _MP_LEFT_EYE_LOWER),
                        (_MP_RIGHT_BROW_UPPER, _MP_LEFT_BROW_UPPER), (_MP_RIGHT_BROW_LOWER, _MP_LEFT_BROW_LOWER),
                        (_MP_NOSE_RIGHT, _MP_NOSE_LEFT)):
        for a, b in zip(right, left):
            pairs[a], pairs[b] = b, a
    for a in _MP_NOSE_MIDLINE:
        pairs[a] = a
    return pairs


# Position k of MEDIAPIPE_INDICES mirrors to position MEDIAPIPE_MIRROR[k].
MEDIAPIPE_MIRROR = np.array(
    [int(np.searchsorted(MEDIAPIPE_INDICES, _mp_mirror_pairs()[int(i)])) for i in MEDIAPIPE_INDICES],
    dtype=np.int64,
)

MASK_NAMES = ("face", "eye_region", "left_eye_region", "right_eye_region", "left_eyeball", "right_eyeball",
              "lips", "nose", "forehead", "scalp", "neck", "boundary", "left_ear", "right_ear")


# --------------------------------------------------------------------------- public data


@dataclass(frozen=True)
class HeadFiles:
    """Where :meth:`HeadAssets.save` wrote each file (FLAME's and SMIRK's file names)."""

    model: Path                 # generic_model.pkl
    static_landmarks: Path      # flame_static_embedding.pkl
    dynamic_landmarks: Path     # flame_dynamic_embedding.npy
    mediapipe_landmarks: Path   # mediapipe_landmark_embedding.npz
    l_eyelid: Path              # l_eyelid.npy
    r_eyelid: Path              # r_eyelid.npy
    masks: Path                 # FLAME_masks.pkl

    @property
    def directory(self) -> Path:
        return self.model.parent


@dataclass(frozen=True)
class HeadAssets:
    """A head model and its landmark embeddings, in FLAME's in-memory file layout.

    Attributes:
        model: FLAME pickle contents: ``v_template`` (V, 3) float64, ``f`` (F, 3) uint32,
            ``shapedirs`` (V, 3, 400) float64 (300 identity then 100 expression),
            ``posedirs`` (V, 3, 36) float64, ``J_regressor`` scipy CSC (5, V),
            ``weights`` (V, 5) float64, ``kintree_table`` (2, 5) int64, plus ``J`` (5, 3).
        static_landmarks: ``lmk_face_idx`` (51,) uint32, ``lmk_b_coords`` (51, 3) — iBUG 17..67.
        dynamic_landmarks: ``lmk_face_idx`` / ``lmk_b_coords``: lists of 79 (17,) / (17, 3)
            arrays — iBUG 0..16 for yaw 0..39° (rows 0..39) and −1..−39° (rows 40..78).
        mediapipe_landmarks: ``lmk_face_idx`` (105,), ``lmk_b_coords`` (105, 3),
            ``landmark_indices`` (105,) into MediaPipe's 478 (ascending).
        eyelids: ``l_eyelid`` / ``r_eyelid`` (V, 3): weight 1 closes that upper lid.
        masks: region name -> (K,) int64 vertex indices (``FLAME_masks.pkl`` keys).
    """

    model: dict
    static_landmarks: dict
    dynamic_landmarks: dict
    mediapipe_landmarks: dict
    eyelids: dict
    masks: dict

    def save(self, directory: str | os.PathLike) -> HeadFiles:
        """Write every asset into ``directory`` in the real files' formats (each atomically)."""
        d = Path(directory)
        files = HeadFiles(
            model=d / "generic_model.pkl",
            static_landmarks=d / "flame_static_embedding.pkl",
            dynamic_landmarks=d / "flame_dynamic_embedding.npy",
            mediapipe_landmarks=d / "mediapipe_landmark_embedding.npz",
            l_eyelid=d / "l_eyelid.npy",
            r_eyelid=d / "r_eyelid.npy",
            masks=d / "FLAME_masks.pkl",
        )
        atomic_write_bytes(files.model, pickle.dumps(self.model, protocol=2))
        atomic_write_bytes(files.static_landmarks, pickle.dumps(self.static_landmarks, protocol=2))
        # FLAME's dynamic embedding is np.save of a 0-d object array holding the dict.
        holder = np.empty((), dtype=object)
        holder[()] = self.dynamic_landmarks
        atomic_write_bytes(files.dynamic_landmarks, _npy_bytes(holder, allow_pickle=True))
        buf = io.BytesIO()
        np.savez(buf, **self.mediapipe_landmarks)
        atomic_write_bytes(files.mediapipe_landmarks, buf.getvalue())
        atomic_write_bytes(files.l_eyelid, _npy_bytes(self.eyelids["l_eyelid"]))
        atomic_write_bytes(files.r_eyelid, _npy_bytes(self.eyelids["r_eyelid"]))
        atomic_write_bytes(files.masks, pickle.dumps(self.masks, protocol=2))
        return files


def _npy_bytes(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


# --------------------------------------------------------------------------- small helpers


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _gauss(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def _ellipsoid(p: np.ndarray, c: tuple, a: tuple) -> np.ndarray:
    """Approximate signed distance to an ellipsoid (exact on the surface, bounded elsewhere)."""
    q = (p - np.asarray(c)) / np.asarray(a)
    k0 = np.linalg.norm(q, axis=-1)
    k1 = np.linalg.norm(q / np.asarray(a), axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth minimum (a rounded union of two implicit shapes)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def _head_sdf(p: np.ndarray) -> np.ndarray:
    """The base head as an implicit function: (..., 3) -> (...), negative inside."""
    cranium = _ellipsoid(p, (0.0, 0.028, -0.034), (0.077, 0.107, 0.092))
    midface = _ellipsoid(p, (0.0, -0.008, -0.002), (0.066, 0.052, 0.058))
    jaw = _ellipsoid(p, (0.0, -0.052, -0.006), (0.058, 0.050, 0.054))
    rxz = np.sqrt((p[..., 0] / 0.052) ** 2 + ((p[..., 2] + 0.032) / 0.056) ** 2)
    neck = np.maximum((rxz - 1.0) * 0.052, p[..., 1] + 0.030)
    d = _smin(cranium, midface, 0.02)
    d = _smin(d, jaw, 0.015)
    return _smin(d, neck, 0.02)


def _ray_hit(origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Distance along each ray to the first crossing of the head surface: (N,3),(N,3) -> (N,)."""
    ts = np.linspace(0.0, 0.3, 121)
    vals = _head_sdf(origin[:, None] + ts[None, :, None] * direction[:, None])
    first = np.argmax(vals > 0, axis=1)
    lo, hi = ts[first - 1], ts[first]
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        inside = _head_sdf(origin + mid[:, None] * direction) < 0
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    return 0.5 * (lo + hi)


def _features(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Facial relief added along the rays (metres), from positions on the base head."""
    ax = np.abs(x)
    # nose: a ridge growing from the nasion to the tip, a rounded underside, two alae
    y_top, y_tip, y_base = 0.024, -0.008, -0.021
    above = np.clip((y_top - y) / (y_top - y_tip), 0.0, 1.0) ** 1.4
    below = np.sqrt(np.clip(1.0 - ((y_tip - y) / (y_tip - y_base)) ** 2, 0.0, 1.0))
    profile = np.where(y >= y_tip, 0.0025 + 0.0195 * above, 0.022 * below)
    profile = np.where(y > y_top + 0.004, 0.0, profile * _smoothstep((y_top + 0.004 - y) / 0.006))
    half_w = 0.0065 + 0.0075 * np.clip((y_top - y) / (y_top - y_base), 0.0, 1.2)
    u = np.clip(ax / half_w, 0.0, 1.0)
    nose = profile * (1.0 - u * u) ** 2
    nose += 0.0045 * _gauss(ax, y, 0.0125, -0.0155, 0.0045, 0.0045)
    # eye sockets (the lids are re-inflated over the eyeballs later), brow ridge, cheekbones
    socket = -0.007 * _gauss(ax, y, 0.031, 0.018, 0.014, 0.010)
    brow = 0.004 * np.exp(-0.5 * ((y - 0.041) / 0.007) ** 2) * np.clip(1 - (x / 0.066) ** 2, 0, 1) ** 2
    cheek = 0.005 * _gauss(ax, y, 0.045, -0.008, 0.015, 0.014)
    # lips, the philtrum ridge and chin
    # lips: two cushions meeting at the slit, thinning towards the corners
    t = np.sqrt(np.clip(1.0 - (x / 0.027) ** 2, 0.0, 1.0))
    upper_lip = np.exp(-0.5 * ((y - (Y_MOUTH + 0.0028 * t)) / (0.0015 + 0.0032 * t)) ** 2)
    lower_lip = np.exp(-0.5 * ((y - (Y_MOUTH - 0.0035 * t)) / (0.0015 + 0.0038 * t)) ** 2)
    lips = 0.0065 * t ** 0.8 * (upper_lip + lower_lip)
    fold = -0.003 * _gauss(ax, y, 0.0, Y_MOUTH - 0.015, 0.016, 0.004)
    chin = 0.011 * _gauss(ax, y, 0.0, -0.082, 0.016, 0.011)
    face = nose + socket + brow + cheek + lips + fold + chin
    # only the front of the head carries facial relief
    front = _smoothstep((z - (Z_AXIS + 0.01)) / 0.04)
    # ears: simple flaps on the sides, well behind the jaw contour
    ear = 0.014 * np.exp(-0.5 * ((y - 0.002) / 0.016) ** 2 - 0.5 * ((z + 0.052) / 0.009) ** 2) \
        * _smoothstep((ax - 0.045) / 0.02)
    return face * front + ear


def _random_smooth_field(rng: np.random.Generator, p: np.ndarray, freq: float, n_waves: int = 6) -> np.ndarray:
    """A smooth random vector field on points p (N,3): a sum of plane waves of wavenumber ~freq."""
    out = np.zeros_like(p)
    for _ in range(n_waves):
        w = rng.normal(size=3)
        w *= freq * rng.uniform(0.7, 1.3) / np.linalg.norm(w)
        a = rng.normal(size=3)
        out += np.cos(p @ w + rng.uniform(0, 2 * np.pi))[:, None] * a[None, :]
    return out


def _normalise(field: np.ndarray, amplitude: float) -> np.ndarray:
    peak = np.linalg.norm(field, axis=-1).max()
    return field * (amplitude / max(peak, 1e-12))


# --------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class _Skin:
    """The skin grid before eyeballs are added (internal)."""

    positions: np.ndarray       # (V_skin, 3) template positions
    ref: np.ndarray             # (V_skin, 3) positions before the eyes were opened (region maths)
    faces: np.ndarray           # (F_skin, 3)
    cell_faces: np.ndarray      # (R-1, N, 2) face ids of each grid cell
    gid: np.ndarray             # (R, N) vertex id of each grid node (upper side at slits)
    top_ids: np.ndarray         # (R, N) vertex ids used as a cell's top row (lower side at slits)
    row_y: np.ndarray           # (R,) ref height of each horizontal row (nan on the crown cap)
    col_phi: np.ndarray         # (N,) column angle about +y, 0 = front, +x side positive
    directions: np.ndarray      # (V_skin, 3) ray direction of each skin vertex
    r_eye: int
    r_mouth: int
    eye_cols: tuple[int, int]   # left eye inner / outer corner columns (right eye: negated)
    mouth_col: int              # left mouth corner column (right: negated)
    mouth_dup: np.ndarray       # (2m-1,) lower-lip copies for columns -m+1..m-1
    eye_dup: np.ndarray         # (2, k-1) lower-lid copies (left, right) for interior columns
    cavity: np.ndarray          # (CAVITY_RINGS-1, 2m-1) inner mouth vertices
    sacs: np.ndarray            # (2, rings, k-1) eye socket vertices behind the eyeballs (left, right)
    pole: int
    eye_centres: np.ndarray     # (2, 3) left, right


def _column_angles() -> np.ndarray:
    """(N,) column angles about +y; column c and -c are mirror images."""
    u = 2 * np.pi * np.arange(N_COLS) / N_COLS
    u = np.where(u > np.pi, u - 2 * np.pi, u)
    return u - 0.45 * np.sin(u)  # denser towards the face


def _row_levels() -> np.ndarray:
    """Heights of the horizontal rows, with exact rows at the eyes and the mouth."""
    parts = [np.linspace(Y_CAP, Y_EYE, 12)[1:], np.linspace(Y_EYE, Y_MOUTH, 19)[1:],
             np.linspace(Y_MOUTH, -0.105, 18)[1:], np.linspace(-0.105, -0.20, 8)[1:]]
    return np.concatenate(parts)


def _lid_falloff(ref: np.ndarray) -> np.ndarray:
    """How much of a lid's motion reaches a vertex: 1 at the eye slit, 0 beyond 2.5 falloffs or off the face."""
    dy = ref[:, 1] - Y_EYE
    fall = np.exp(-((dy / LID_FALLOFF) ** 2)) * (np.abs(dy) < 2.5 * LID_FALLOFF)
    return fall * (ref[:, 2] > 0.0)  # the back of the head has the same x and y as the eyes


def _lid_profile(s: np.ndarray) -> np.ndarray:
    """Lid opening along the slit: 0 at the corners (s = 0, 1), 1 in the middle."""
    inside = (s > 0) & (s < 1)
    return np.where(inside, np.sin(np.pi * np.clip(s, 0, 1)) ** 0.8, 0.0)


def _build_skin() -> _Skin:
    """The skin: ray-cast grid, facial relief, slits, opened eyes, inner mouth and eye sockets."""
    N = N_COLS
    phi = _column_angles()
    alphas = np.pi / 2 * np.arange(1, N_CAP_ROWS + 1) / N_CAP_ROWS
    ys = _row_levels()
    R = N_CAP_ROWS + ys.size
    row_y = np.concatenate([np.full(N_CAP_ROWS, np.nan), ys])
    row_y[N_CAP_ROWS - 1] = Y_CAP
    # rays: a fan on the crown cap, horizontal below it
    sa = np.concatenate([np.sin(alphas), np.ones(ys.size)])
    ca = np.concatenate([np.cos(alphas), np.zeros(ys.size)])
    oy = np.concatenate([np.full(N_CAP_ROWS, Y_CAP), ys])
    d = np.stack([sa[:, None] * np.sin(phi)[None], np.broadcast_to(ca[:, None], (R, N)),
                  sa[:, None] * np.cos(phi)[None]], -1)
    o = np.stack([np.zeros((R, N)), np.broadcast_to(oy[:, None], (R, N)), np.full((R, N), Z_AXIS)], -1)
    t = _ray_hit(o.reshape(-1, 3), d.reshape(-1, 3)).reshape(R, N)
    base = o + t[..., None] * d
    grid = base + _features(base[..., 0], base[..., 1], base[..., 2])[..., None] * d
    top = np.array([0.0, Y_CAP, Z_AXIS]) + _ray_hit(np.array([[0.0, Y_CAP, Z_AXIS]]), np.array([[0.0, 1.0, 0.0]]))[0] \
        * np.array([0.0, 1.0, 0.0])

    r_eye = N_CAP_ROWS + int(np.argmin(np.abs(ys - Y_EYE)))
    r_mouth = N_CAP_ROWS + int(np.argmin(np.abs(ys - Y_MOUTH)))
    front = N // 4  # search the face side only (the back of the head has the same |x| too)
    x_eye, x_mouth = grid[r_eye, :front, 0], grid[r_mouth, :front, 0]
    j_in, j_out = (int(np.argmin(np.abs(x_eye - e))) for e in EYE_X)
    j_m = int(np.argmin(np.abs(x_mouth - MOUTH_X)))

    # vertex ids: grid, pole, slit copies (mouth, left eye, right eye), inner mouth
    gid = np.arange(R * N).reshape(R, N)
    pole = R * N
    nxt = pole + 1
    mouth_cols = np.arange(-j_m + 1, j_m)
    mouth_dup = nxt + np.arange(mouth_cols.size)
    nxt += mouth_cols.size
    eye_cols_l = np.arange(j_in + 1, j_out)
    eye_dup = nxt + np.arange(2 * eye_cols_l.size).reshape(2, -1)
    nxt += 2 * eye_cols_l.size
    cavity = nxt + np.arange((CAVITY_RINGS - 1) * mouth_cols.size).reshape(CAVITY_RINGS - 1, -1)
    nxt += cavity.size
    n_skin = nxt

    top_ids = gid.copy()
    top_ids[r_mouth, mouth_cols % N] = mouth_dup
    top_ids[r_eye, eye_cols_l] = eye_dup[0]
    top_ids[r_eye, (-eye_cols_l) % N] = eye_dup[1]

    pos = np.zeros((n_skin, 3))
    dirs = np.zeros((n_skin, 3))
    pos[gid.ravel()] = grid.reshape(-1, 3)
    dirs[gid.ravel()] = d.reshape(-1, 3)
    pos[pole], dirs[pole] = top, (0.0, 1.0, 0.0)
    for ids, cols, row in ((mouth_dup, mouth_cols, r_mouth), (eye_dup[0], eye_cols_l, r_eye),
                           (eye_dup[1], -eye_cols_l, r_eye)):
        pos[ids], dirs[ids] = grid[row, cols % N], d[row, cols % N]
    # inner mouth: a lens-shaped pocket behind the lips, from the upper to the lower lip edge
    lip = grid[r_mouth, mouth_cols % N]
    x_corner = grid[r_mouth, j_m, 0]
    taper = np.sqrt(np.clip(1.0 - (lip[:, 0] / x_corner) ** 2, 0.0, 1.0))
    for k in range(1, CAVITY_RINGS):
        th = np.pi * k / CAVITY_RINGS
        back = -d[r_mouth, mouth_cols % N] * (0.022 * taper * np.sin(th))[:, None]
        up = np.array([0.0, 1.0, 0.0]) * (0.006 * taper * np.sin(2 * th))[:, None]
        pos[cavity[k - 1]] = lip + back + up
        dirs[cavity[k - 1]] = d[r_mouth, mouth_cols % N]
    ref = pos.copy()

    # open the eyes: lift the upper side, lower the lower side, fading away from the slit
    upper = np.zeros(n_skin, bool)
    upper[gid[:r_eye].ravel()] = True
    upper[gid[r_eye]] = True
    upper[pole] = True
    movable = np.zeros(n_skin, bool)  # grid and lid copies; not the inner mouth
    movable[gid.ravel()] = True
    movable[eye_dup.ravel()] = True
    x_in, x_out = abs(grid[r_eye, j_in, 0]), abs(grid[r_eye, j_out, 0])
    fall = _lid_falloff(ref) * movable
    for sign in (1, -1):
        s = (sign * ref[:, 0] - x_in) / (x_out - x_in)
        pos[:, 1] += np.where(upper, LID_UP, -LID_DOWN) * _lid_profile(s) * fall

    # eyeball centres: as far forward as the lid edges allow (lids stay LID_GAP outside)
    centres = np.zeros((2, 3))
    R_out = EYE_RADIUS + LID_GAP
    cols = np.arange(j_in, j_out + 1)
    for e, sign in enumerate((1, -1)):
        edge = np.concatenate([gid[r_eye, (sign * cols) % N], eye_dup[e]])
        c = np.array([0.5 * (grid[r_eye, j_in, 0] + grid[r_eye, j_out, 0]) * sign, Y_EYE + 0.0004, 0.0])
        dx2 = (pos[edge, 0] - c[0]) ** 2 + (pos[edge, 1] - c[1]) ** 2
        ok = dx2 < R_out ** 2
        c[2] = np.min(pos[edge[ok], 2] - np.sqrt(R_out ** 2 - dx2[ok]))
        centres[e] = c
        # lids drape over the eyeball: push skin that would cut into it outwards along its ray
        rel = pos - c
        inside = np.linalg.norm(rel, axis=1) < R_out
        inside[cavity.ravel()] = False
        b = np.einsum("ij,ij->i", dirs[inside], rel[inside])
        cc = np.einsum("ij,ij->i", rel[inside], rel[inside]) - R_out ** 2
        pos[inside] += (-b + np.sqrt(b * b - cc))[:, None] * dirs[inside]

    # faces: grid cells (diagonals mirrored across the midline), crown fan, inner mouth
    r0 = np.arange(R - 1)[:, None]
    c0 = np.arange(N)[None, :]
    c1 = (c0 + 1) % N
    A, B = top_ids[r0, c0], top_ids[r0, c1]
    C, D = gid[r0 + 1, c0], gid[r0 + 1, c1]
    main = np.broadcast_to(c0 < N // 2, A.shape)
    t1 = np.where(main[..., None], np.stack([A, C, D], -1), np.stack([A, C, B], -1))
    t2 = np.where(main[..., None], np.stack([A, D, B], -1), np.stack([B, C, D], -1))
    cell_faces = np.arange(2 * (R - 1) * N).reshape(R - 1, N, 2)
    faces = [np.stack([t1, t2], 2).reshape(-1, 3)]
    faces.append(np.stack([np.full(N, pole), gid[0, c0[0]], gid[0, c1[0]]], -1))
    # the mouth pocket continues the upper lip downwards into the lower lip copies
    inner = [gid[r_mouth, mouth_cols % N]] + list(cavity) + [mouth_dup]
    faces.append(_pocket_faces(np.arange(-j_m, j_m + 1), gid[r_mouth, (-j_m) % N], gid[r_mouth, j_m], inner))
    # eye sockets: a sac behind each eyeball joins the upper lid edge to the lower one, so
    # the skin is closed there and an oblique view never looks into the head
    sacs = []
    nxt = n_skin
    pos, dirs = list(pos), list(dirs)
    for e, sign in enumerate((1, -1)):
        cols_e = sign * eye_cols_l
        up_ids, lo_ids = gid[r_eye, cols_e % N], eye_dup[e]
        ring = _eye_sac(np.asarray(pos)[up_ids], np.asarray(pos)[lo_ids], centres[e])
        ids = nxt + np.arange(ring.shape[0] * ring.shape[1]).reshape(ring.shape[:2])
        nxt += ids.size
        pos += list(ring.reshape(-1, 3))
        dirs += list(np.repeat(d[r_eye, cols_e % N][None], ring.shape[0], 0).reshape(-1, 3))
        rings = [up_ids] + list(ids) + [lo_ids]
        corner_a, corner_b = gid[r_eye, (sign * j_in) % N], gid[r_eye, (sign * j_out) % N]
        if sign < 0:  # walk the columns in increasing order, as the grid does
            rings = [r[::-1] for r in rings]
            corner_a, corner_b = corner_b, corner_a
        c_lo = min(sign * j_in, sign * j_out)
        faces.append(_pocket_faces(np.arange(c_lo, c_lo + j_out - j_in + 1), corner_a, corner_b, rings))
        sacs.append(ids)
    pos, dirs = np.array(pos), np.array(dirs)
    ref = np.concatenate([ref, pos[n_skin:]])
    faces = np.concatenate(faces).astype(np.int64)
    return _Skin(pos, ref, faces, cell_faces, gid, top_ids, row_y, phi, dirs, r_eye, r_mouth, (j_in, j_out),
                 j_m, mouth_dup, eye_dup, cavity, np.stack(sacs), pole, centres)


def _pocket_faces(cols: np.ndarray, corner_a: int, corner_b: int, rings: list) -> np.ndarray:
    """Triangles of a pocket hanging from a slit, oriented like the grid cells it continues.

    ``cols``: the slit's signed columns from corner a to corner b (increasing); ``rings``:
    vertex ids of the interior columns, from the upper edge (first) to the lower copies (last).
    """
    ring_ids = np.array([np.concatenate([[corner_a], r, [corner_b]]) for r in rings])
    tris = []
    for k in range(ring_ids.shape[0] - 1):
        for i, c in enumerate(cols[:-1]):
            a, b, cc, dd = ring_ids[k, i], ring_ids[k, i + 1], ring_ids[k + 1, i], ring_ids[k + 1, i + 1]
            pair = [(a, cc, dd), (a, dd, b)] if c >= 0 else [(a, cc, b), (b, cc, dd)]
            tris += [t for t in pair if len(set(t)) == 3]
    return np.array(tris)


def _eye_sac(upper: np.ndarray, lower: np.ndarray, centre: np.ndarray, n_rings: int = 8) -> np.ndarray:
    """Inner rings of an eye socket, (n_rings-1, K, 3): from the upper lid edge round the back of the
    eyeball to the lower lid edge, between the eyeball and the skin (radius LID_GAP/2 outside it)."""
    u, l = upper - centre, lower - centre
    ru, rl = np.linalg.norm(u, axis=1), np.linalg.norm(l, axis=1)
    back = np.array([0.0, 0.0, -1.0])
    out = []
    for k in range(1, n_rings):
        th = np.pi * k / n_rings
        d = np.cos(th / 2) ** 2 * u / ru[:, None] + np.sin(th / 2) ** 2 * l / rl[:, None] + 1.5 * np.sin(th) * back
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        w = np.sin(th) ** 0.5
        r = (1 - w) * (np.cos(th / 2) ** 2 * ru + np.sin(th / 2) ** 2 * rl) + w * (EYE_RADIUS + 0.5 * LID_GAP)
        out.append(centre + d * r[:, None])
    return np.array(out)


def _eyeball(centre: np.ndarray, n_lat: int = 10, n_lon: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A UV sphere with its pole looking forward (+z): (Ve, 3) vertices, (Fe, 3) outward faces."""
    th = np.pi * np.arange(1, n_lat) / n_lat
    lam = 2 * np.pi * np.arange(n_lon) / n_lon
    ring = np.stack([np.sin(th)[:, None] * np.cos(lam)[None], np.sin(th)[:, None] * np.sin(lam)[None],
                     np.broadcast_to(np.cos(th)[:, None], (th.size, n_lon))], -1).reshape(-1, 3)
    v = np.concatenate([[[0, 0, 1.0]], ring, [[0, 0, -1.0]]]) * EYE_RADIUS + centre
    ids = 1 + np.arange((n_lat - 1) * n_lon).reshape(n_lat - 1, n_lon)
    l0, l1 = np.arange(n_lon), (np.arange(n_lon) + 1) % n_lon
    back = len(v) - 1
    f = [np.stack([np.zeros(n_lon, int), ids[0, l0], ids[0, l1]], -1)]
    for k in range(n_lat - 2):
        f += [np.stack([ids[k, l0], ids[k + 1, l0], ids[k + 1, l1]], -1),
              np.stack([ids[k, l0], ids[k + 1, l1], ids[k, l1]], -1)]
    f.append(np.stack([ids[-1, l0], np.full(n_lon, back), ids[-1, l1]], -1))
    return v, np.concatenate(f)


# --------------------------------------------------------------------------- landmark placement


@dataclass(frozen=True)
class _Locator:
    """Turns grid parameters (fractional row, signed fractional column) into (face, barycentrics)."""

    skin: _Skin

    def at(self, row_f: float, col_f: float, side: str = "lower") -> tuple[int, np.ndarray]:
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

    def front(self, x: float, y: float, side: str = "lower") -> tuple[int, np.ndarray]:
        row_f = self.row_of(y)
        return self.at(row_f, self.col_of(row_f, x), side)


def _curve(x: np.ndarray, half_width: float, height: float) -> np.ndarray:
    return height * np.sqrt(np.clip(1.0 - (x / half_width) ** 2, 0.0, 1.0))


def _place_landmarks(skin: _Skin) -> tuple[dict, dict, dict]:
    """Static (iBUG 17..67), dynamic (iBUG 0..16 per yaw) and MediaPipe embeddings."""
    loc = _Locator(skin)
    N = N_COLS
    j_in, j_out = skin.eye_cols
    j_m = skin.mouth_col
    rm, re = float(skin.r_mouth), float(skin.r_eye)
    x_corner = skin.ref[skin.gid[skin.r_mouth, j_m], 0]
    x_outer = x_corner + 0.0012
    up_h, lo_h = 0.0055, 0.006

    def eye(s: float, sign: int, side: str):  # s: 0 inner corner .. 1 outer corner
        return loc.at(re, sign * (j_in + s * (j_out - j_in)), side)

    def mouth_inner(x: float, side: str):
        return loc.at(rm, loc.col_of(rm, x), side)

    def mouth_outer(x: float, upper: bool):
        y = Y_MOUTH + (_curve(np.array(x), x_outer, up_h) if upper else -_curve(np.array(x), x_outer, lo_h))
        return loc.front(x, float(y), "upper" if upper else "lower")

    pts: dict[int, tuple[int, np.ndarray]] = {}
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
    mp: dict[int, tuple[int, np.ndarray]] = {}
    xs = np.linspace(-1.0, 1.0, 11)
    for k, i in enumerate(_MP_LIPS_OUTER_UPPER):
        mp[i] = pts[48] if k == 0 else pts[54] if k == 10 else mouth_outer(xs[k] * x_outer, True)
    for k, i in enumerate(_MP_LIPS_OUTER_LOWER):
        mp[i] = pts[48] if k == 0 else pts[54] if k == 10 else mouth_outer(xs[k] * x_outer, False)
    for k, i in enumerate(_MP_LIPS_INNER_UPPER):
        mp[i] = loc.at(rm, xs[k] * j_m, "upper")
    for k, i in enumerate(_MP_LIPS_INNER_LOWER):
        mp[i] = loc.at(rm, xs[k] * j_m, "lower" if 0 < k < 10 else "upper")
    ss = np.linspace(1.0, 0.0, 9)
    for chain, sign, side in ((_MP_RIGHT_EYE_UPPER, -1, "upper"), (_MP_RIGHT_EYE_LOWER, -1, "lower"),
                              (_MP_LEFT_EYE_UPPER, 1, "upper"), (_MP_LEFT_EYE_LOWER, 1, "lower")):
        for k, i in enumerate(chain):
            mp[i] = eye(ss[k], sign, "upper" if k in (0, 8) else side)
    bx = np.array([b[0] for b in brow])[::-1]
    by = np.array([b[1] for b in brow])[::-1]
    for chain, sign, dy in ((_MP_RIGHT_BROW_UPPER, -1, 0.002), (_MP_RIGHT_BROW_LOWER, -1, -0.003),
                            (_MP_LEFT_BROW_UPPER, 1, 0.002), (_MP_LEFT_BROW_LOWER, 1, -0.003)):
        for k, i in enumerate(chain):
            mp[i] = loc.front(sign * bx[k], by[k] + dy)
    for i, y in zip(_MP_NOSE_MIDLINE, (0.030, 0.018, 0.008, 0.0, -0.005, -0.0085, -0.0245)):
        mp[i] = loc.front(0.0, y)
    for right, left, (x, y) in zip(_MP_NOSE_RIGHT, _MP_NOSE_LEFT, ((0.0145, -0.0165), (0.0085, -0.021),
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

    def contour(yaw_deg: float) -> list[tuple[int, np.ndarray]]:
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


# --------------------------------------------------------------------------- regions


@dataclass(frozen=True)
class _Regions:
    """Smooth region weights on the skin vertices (internal)."""

    lower_mouth: np.ndarray     # 1 on the lower lip side of the mouth, 0 on the upper, smooth beside it
    upper_eye: np.ndarray       # (2, V_skin): 1 on the upper-lid side of each eye
    face_weight: np.ndarray     # smooth weight, 0 outside the face mask
    phi: np.ndarray             # column angle of each skin vertex


def _side_weight(ref: np.ndarray, y_line: float, x_lo: float, x_hi: float, nudge: np.ndarray) -> np.ndarray:
    """0 above a slit line and 1 below it, sharp between the slit's corners, smooth beyond them.

    ``nudge`` moves the two copies of a slit vertex off the line (+ upper, − lower).
    """
    x = np.abs(ref[:, 0])
    beyond = np.maximum(x_lo - x, 0.0) + np.maximum(x - x_hi, 0.0)
    h = 0.001 + np.minimum(0.6 * beyond, 0.012)
    # keep the top of the blend at the slit so nothing above it is affected
    centre = y_line - 0.5 * (h - 0.001)
    return _smoothstep(0.5 + (centre - (ref[:, 1] + nudge)) / h)


def _regions(skin: _Skin) -> _Regions:
    n = skin.positions.shape[0]
    ref = skin.ref
    gid = skin.gid
    j_in, j_out = skin.eye_cols
    j_m = skin.mouth_col
    nudge_m = np.zeros(n)
    inner_cols = np.arange(-j_m + 1, j_m) % N_COLS
    nudge_m[gid[skin.r_mouth, inner_cols]] = 0.0005
    nudge_m[skin.mouth_dup] = -0.0005
    lower = _side_weight(ref, Y_MOUTH, 0.0, ref[gid[skin.r_mouth, j_m], 0], nudge_m)
    lower[skin.cavity[: (CAVITY_RINGS - 1) // 2].ravel()] = 0.0
    lower[skin.cavity[(CAVITY_RINGS - 1) // 2 + 1:].ravel()] = 1.0
    if (CAVITY_RINGS - 1) % 2 == 1:
        lower[skin.cavity[(CAVITY_RINGS - 1) // 2].ravel()] = 0.5
    x_in, x_out = ref[gid[skin.r_eye, j_in], 0], ref[gid[skin.r_eye, j_out], 0]
    upper_eye = np.zeros((2, n))
    eye_inner = np.arange(j_in + 1, j_out)
    for e, sign in enumerate((1, -1)):
        nudge = np.zeros(n)
        nudge[gid[skin.r_eye, (sign * eye_inner) % N_COLS]] = 0.0005
        nudge[skin.eye_dup[e]] = -0.0005
        side = np.where(sign * ref[:, 0] > 0, 1.0 - _side_weight(ref, Y_EYE, x_in, x_out, nudge), 0.0)
        # only meaningful near that eye
        near = _gauss(sign * ref[:, 0], ref[:, 1], 0.5 * (x_in + x_out), Y_EYE, 0.03, 0.03)
        upper_eye[e] = np.where(near > 1e-3, side, 0.0)
    phi = np.arctan2(ref[:, 0], ref[:, 2] - Z_AXIS)
    y = ref[:, 1]
    face_weight = (_smoothstep((np.radians(88) - np.abs(phi)) / np.radians(25))
                   * _smoothstep((0.075 - y) / 0.02) * _smoothstep((y + 0.097) / 0.015))
    ear = np.abs(ref[:, 0]) > 0.06
    ear &= np.abs(ref[:, 1] - 0.002) < 0.04
    ear &= ref[:, 2] < -0.035
    face_weight[ear] = 0.0
    return _Regions(lower, upper_eye, face_weight, phi)


def _masks(skin: _Skin, reg: _Regions, eyeballs: tuple[np.ndarray, np.ndarray]) -> dict:
    """Vertex regions with FLAME_masks.pkl's names (ears: the simple flaps on the sides)."""
    n_skin = skin.positions.shape[0]
    ref, gid = skin.ref, skin.gid
    x, y, z = ref[:, 0], ref[:, 1], ref[:, 2]
    phi = reg.phi
    skin_ids = np.arange(n_skin)
    face = reg.face_weight > 0
    face[skin.cavity.ravel()] = True
    j_in, j_out = skin.eye_cols
    ecx = 0.5 * (ref[gid[skin.r_eye, j_in], 0] + ref[gid[skin.r_eye, j_out], 0])
    left_eye = face & (_gauss(x, y, ecx, Y_EYE, 0.022, 0.016) > 0.25)
    right_eye = face & (_gauss(x, y, -ecx, Y_EYE, 0.022, 0.016) > 0.25)
    lips = (face & (np.abs(x) < ref[gid[skin.r_mouth, skin.mouth_col], 0] + 0.006)
            & (y < Y_MOUTH + 0.009) & (y > Y_MOUTH - 0.011) & (z > 0.0))
    lips[skin.cavity.ravel()] = True
    nose = face & (np.abs(x) < 0.02) & (y < 0.028) & (y > -0.029) & (np.abs(phi) < np.radians(30))
    nose &= ~lips
    forehead = face & (y > 0.046)
    ear_region = (np.abs(x) > 0.06) & (np.abs(y - 0.002) < 0.04) & (z < -0.035)
    neck = ~face & ((y < -0.097) | ((np.abs(phi) > np.radians(90)) & (y < -0.03)))
    scalp = ~face & ~neck & ~ear_region
    neck[skin.pole] = False
    boundary = np.zeros(n_skin, bool)
    boundary[gid[-1]] = True
    def ids(m: np.ndarray) -> np.ndarray:
        return skin_ids[m].astype(np.int64)
    return {
        "face": ids(face), "eye_region": ids(left_eye | right_eye), "left_eye_region": ids(left_eye),
        "right_eye_region": ids(right_eye), "left_eyeball": eyeballs[0].astype(np.int64),
        "right_eyeball": eyeballs[1].astype(np.int64), "lips": ids(lips), "nose": ids(nose),
        "forehead": ids(forehead), "scalp": ids(scalp), "neck": ids(neck), "boundary": ids(boundary),
        "left_ear": ids(ear_region & (x > 0)), "right_ear": ids(ear_region & (x < 0)),
    }


# --------------------------------------------------------------------------- bases


def _identity_basis(rng: np.random.Generator, v: np.ndarray, eyeballs: tuple, eye_edges: tuple) -> np.ndarray:
    """(V, 3, 300) identity components: named global variations, then random smooth fields."""
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    zero = np.zeros_like(x)
    front = _smoothstep((z - Z_AXIS) / 0.05)
    lower_face = _smoothstep((0.0 - y) / 0.05) * _smoothstep((y + 0.17) / 0.07)
    nose_w = np.exp(-0.5 * ((x / 0.014) ** 2 + ((y + 0.002) / 0.016) ** 2)) * front
    brow_w = np.exp(-0.5 * ((y - 0.042) / 0.01) ** 2) * front
    cheek_w = (_gauss(np.abs(x), y, 0.045, -0.02, 0.016, 0.02)) * front
    chin_w = _gauss(x, y, 0.0, -0.08, 0.02, 0.015) * front
    lips_w = _gauss(x, y, 0.0, Y_MOUTH, 0.02, 0.008) * front
    eye_w = _gauss(np.abs(x), y, 0.031, Y_EYE, 0.018, 0.014) * front
    ear_w = np.exp(-0.5 * (((y - 0.002) / 0.025) ** 2 + ((z + 0.052) / 0.015) ** 2)) * _smoothstep(np.abs(x) / 0.04)
    side = np.tanh(x / 0.01)  # a smooth sign: fields that push the two sides apart stay smooth at the midline
    back_w = _smoothstep((Z_AXIS - z) / 0.08) * _smoothstep((y + 0.03) / 0.04)
    neck_w = _smoothstep((-0.09 - y) / 0.04)
    named = [
        (np.stack([x, zero, zero], -1), 0.005),                                  # head width
        (np.stack([zero, y - 0.0, zero], -1), 0.005),                            # head height
        (np.stack([zero, zero, z - Z_AXIS], -1), 0.005),                         # head depth
        (np.stack([x * lower_face, zero, zero], -1), 0.004),                     # jaw width
        (np.stack([zero, np.minimum(y - Y_EYE, 0) * lower_face, zero], -1), 0.004),  # face length
        (np.stack([x * nose_w, (y + 0.002) * nose_w, zero], -1), 0.003),         # nose size
        (np.stack([zero, zero, nose_w], -1), 0.003),                             # nose projection
        (np.stack([zero, zero, np.maximum(y - 0.03, 0) * front], -1), 0.004),    # forehead slope
        (np.stack([side * cheek_w, zero, 0.5 * cheek_w], -1), 0.003),      # cheek fullness
        (np.stack([zero, -0.3 * chin_w, chin_w], -1), 0.003),                    # chin projection
        (np.stack([zero, 0.3 * brow_w, brow_w], -1), 0.0025),                    # brow ridge
        (np.stack([side * eye_w, zero, zero], -1), 0.002),                 # eye spacing
        (np.stack([zero, zero, lips_w], -1), 0.002),                             # lip fullness
        (np.stack([zero, zero, -back_w], -1), 0.004),                            # back of the skull
        (np.stack([x * neck_w, zero, (z - Z_AXIS) * neck_w], -1), 0.004),        # neck thickness
        (np.stack([side * ear_w, 0.3 * ear_w, zero], -1), 0.002),          # ear size
    ]
    comps = [_normalise(f, a) for f, a in named]
    for k in range(len(named), N_SHAPE):
        rank = k - len(named)
        freq = 12.0 + 50.0 * rank / N_SHAPE
        amp = 0.0035 / (1.0 + rank / 12.0) ** 0.8
        comps.append(_normalise(_random_smooth_field(rng, v, freq), amp))
    basis = np.stack(comps, -1)
    # eyeballs move rigidly with the lids around them
    for ball, edge in zip(eyeballs, eye_edges):
        basis[ball] = basis[edge].mean(0, keepdims=True)
    return basis


# Names of the built-in head's named expression components, in column order (columns 300.. of
# shapedirs). "Lopsided" components are left/right differences (positive: the subject's left side
# up, the right side down); adding them to their symmetric partner gives a one-sided action.
EXPRESSION_NAMES = (
    "lower lip down", "upper lip raise", "smile", "lopsided smile", "cheek raise",
    "frown", "pucker", "stretch", "lip press", "cheek puff",
    "inner brow raise", "outer brow raise", "lopsided brow raise", "eye crinkle", "brow furrow",
    "nose wrinkle", "squint left", "squint right", "widen left", "widen right",
    "chin raise", "dimpler", "mouth left", "jaw clench", "nasolabial deepen",
    "nostril flare", "nose tip down", "nose bridge pull", "lopsided sneer", "forehead raise",
)
MIN_BUMP_RESIDUAL = 0.5  # a random bump keeps at least this fraction of its norm after orthogonalisation


def _named_expressions(vs: np.ndarray, reg: _Regions, mouth_corner: float,
                       eye_x: float) -> list[tuple[str, np.ndarray, float]]:
    """The named expression actions: (name, (V_skin, 3) field, peak amplitude in metres).

    Each action is a smooth blob (or a pair of mirrored blobs) moving in one direction, loosely
    after a facial muscle. They are designed to be linearly independent of each other, so that
    their coefficients can be recovered from the geometry (the tests bound the conditioning):

    - no action is the negative or the sum of others: left/right pairs appear either as two
      one-sided actions (squint, widen) or as a symmetric action plus a *lopsided* one (the left
      side minus the right side), never as a symmetric action plus both sides;
    - actions that share a region move it in different directions or with a different profile
      (the frown pulls below the corners, the stretch beside them; the lip press thins the lips
      instead of moving them as the lip raisers do; the brow furrow pulls the brows together,
      the brow raises lift them).
    """
    x, y = vs[:, 0], vs[:, 1]
    one = np.ones_like(x)
    zero = np.zeros_like(x)
    # The mouth and eye slits: fields near a slit are restricted to one side of it (``up`` /
    # ``low``, ``ue_*``) so the two lips and the two lids can move apart.
    low = reg.lower_mouth
    up = 1.0 - low
    ue_l, ue_r = reg.upper_eye
    side_l, side_r = _smoothstep(x / 0.01 + 0.5), _smoothstep(-x / 0.01 + 0.5)
    g = _gauss
    ax = np.abs(x)
    sx = np.sign(x)
    mc = mouth_corner
    dy_mouth = y - Y_MOUTH
    # mouth
    corner_l, corner_r = g(x, y, mc, Y_MOUTH, 0.010, 0.010), g(x, y, -mc, Y_MOUTH, 0.010, 0.010)
    corners = corner_l + corner_r
    below_corners = g(ax, y, mc + 0.003, Y_MOUTH - 0.009, 0.009, 0.010)   # depressor of the corner
    beside_corners = g(ax, y, mc + 0.007, Y_MOUTH, 0.009, 0.008)          # cheek just beside the corner
    lips = g(x, y, 0.0, Y_MOUTH, 0.020, 0.008)
    upper_lip = g(x, y, 0.0, Y_MOUTH + 0.006, 0.020, 0.006) * up
    lower_lip = g(x, y, 0.0, Y_MOUTH - 0.007, 0.020, 0.007) * low
    red_lips = g(x, y, 0.0, Y_MOUTH + 0.003, 0.018, 0.003) * up + g(x, y, 0.0, Y_MOUTH - 0.003, 0.018, 0.003) * low
    around_lips = g(x, y, 0.0, Y_MOUTH + 0.012, 0.018, 0.004) + g(x, y, 0.0, Y_MOUTH - 0.013, 0.018, 0.004)
    nasolabial = g(ax, y, 0.021, Y_MOUTH + 0.014, 0.006, 0.007) * up
    chin = g(x, y, 0.0, -0.075, 0.02, 0.015) * low
    masseter = g(ax, y, 0.052, -0.062, 0.010, 0.014)
    # cheeks
    cheek_l, cheek_r = g(x, y, 0.045, -0.03, 0.016, 0.016), g(x, y, -0.045, -0.03, 0.016, 0.016)
    cheeks = cheek_l + cheek_r
    cheekbones = g(ax, y, 0.037, -0.004, 0.013, 0.008)
    # brows and forehead
    brow_in_l, brow_in_r = g(x, y, 0.015, 0.040, 0.010, 0.008), g(x, y, -0.015, 0.040, 0.010, 0.008)
    brow_out_l, brow_out_r = g(x, y, 0.045, 0.040, 0.012, 0.008), g(x, y, -0.045, 0.040, 0.012, 0.008)
    corrugator = g(ax, y, 0.018, 0.037, 0.009, 0.007)
    forehead = g(x, y, 0.0, 0.056, 0.030, 0.008)
    # eyes
    lower_lid_l = g(x, y, eye_x, Y_EYE - 0.006, 0.012, 0.006) * (1 - ue_l) * side_l
    lower_lid_r = g(x, y, -eye_x, Y_EYE - 0.006, 0.012, 0.006) * (1 - ue_r) * side_r
    upper_lid_l = g(x, y, eye_x, Y_EYE + 0.006, 0.012, 0.007) * ue_l * side_l
    upper_lid_r = g(x, y, -eye_x, Y_EYE + 0.006, 0.012, 0.007) * ue_r * side_r
    eye_corners_out = g(ax, y, 0.052, Y_EYE, 0.006, 0.009)
    # nose
    nose_side = g(ax, y, 0.012, 0.004, 0.008, 0.010)
    sneer_l, sneer_r = g(x, y, 0.012, -0.006, 0.007, 0.012), g(x, y, -0.012, -0.006, 0.007, 0.012)
    ala = g(ax, y, 0.0135, -0.016, 0.006, 0.006)
    nose_tip = g(x, y, 0.0, -0.012, 0.007, 0.007)
    glabella = g(x, y, 0.0, 0.030, 0.008, 0.007)

    def vec(a, b, c):
        return np.stack([a * one, b * one, c * one], -1)

    smile_l = vec(0.5 * corner_l, corner_l + 0.3 * cheek_l, -0.4 * corner_l)
    smile_r = vec(-0.5 * corner_r, corner_r + 0.3 * cheek_r, -0.4 * corner_r)
    named = [
        ("lower lip down", vec(zero, -lower_lip - 0.3 * chin, 0.3 * lower_lip), 0.005),
        ("upper lip raise", vec(zero, upper_lip, 0.3 * upper_lip), 0.004),
        # corners up, out and back, lifting the cheeks
        ("smile", smile_l + smile_r, 0.005),
        ("lopsided smile", smile_l - smile_r, 0.005),
        # the cheekbones lift towards the eyes (the Duchenne marker of a real smile)
        ("cheek raise", vec(zero, cheekbones, 0.3 * cheekbones), 0.003),
        # pulled down and slightly out from below the corners
        ("frown", vec(0.3 * sx * below_corners, -below_corners, -0.2 * below_corners), 0.004),
        ("pucker", vec(-x / 0.02 * lips, zero, lips), 0.005),
        # the cheek beside the corners pulled sideways
        ("stretch", vec(sx * beside_corners, -0.2 * beside_corners, -0.3 * beside_corners), 0.005),
        # lips thinned towards the slit (gently: the lips must not fold over) and rolled in, the skin
        # around them bunching forward
        ("lip press", vec(zero, -0.5 * dy_mouth / 0.008 * lips, -0.6 * red_lips + 0.6 * around_lips), 0.003),
        ("cheek puff", vec(sx * cheeks, zero, 0.6 * cheeks), 0.004),
        ("inner brow raise", vec(zero, brow_in_l + brow_in_r, zero), 0.005),
        ("outer brow raise", vec(zero, brow_out_l + brow_out_r, zero), 0.005),
        ("lopsided brow raise", vec(zero, brow_in_l + brow_out_l - brow_in_r - brow_out_r, zero), 0.004),
        # crow's feet: the skin beside the outer eye corners drawn in
        ("eye crinkle", vec(-sx * eye_corners_out, 0.3 * eye_corners_out, zero), 0.0025),
        # the inner brows pulled together and down, bunching forward
        ("brow furrow", vec(-sx * corrugator, -0.7 * corrugator, 0.3 * corrugator), 0.004),
        ("nose wrinkle", vec(zero, nose_side, 0.2 * nose_side), 0.003),
        ("squint left", vec(zero, lower_lid_l + 0.3 * cheek_l, zero), 0.003),
        ("squint right", vec(zero, lower_lid_r + 0.3 * cheek_r, zero), 0.003),
        ("widen left", vec(zero, upper_lid_l, 0.2 * upper_lid_l), 0.003),
        ("widen right", vec(zero, upper_lid_r, 0.2 * upper_lid_r), 0.003),
        # the chin boss up and the lower lip pushed out
        ("chin raise", vec(zero, chin + 0.3 * lower_lip, 0.6 * lower_lip), 0.004),
        # the cheek beside the corners pressed in (the dimple)
        ("dimpler", vec(-0.3 * sx * beside_corners, zero, -beside_corners), 0.003),
        ("mouth left", vec(lips + corners, zero, zero), 0.004),
        # the masseters bulge at the jaw angles
        ("jaw clench", vec(sx * masseter, zero, 0.3 * masseter), 0.003),
        ("nasolabial deepen", vec(0.3 * sx * nasolabial, nasolabial, 0.3 * nasolabial), 0.003),
        ("nostril flare", vec(sx * ala, zero, zero), 0.002),
        ("nose tip down", vec(zero, -nose_tip, zero), 0.0025),
        # the skin between the brows pulled down (procerus)
        ("nose bridge pull", vec(zero, -glabella, 0.3 * glabella), 0.003),
        ("lopsided sneer", vec(zero, sneer_l - sneer_r, zero), 0.003),
        ("forehead raise", vec(zero, forehead, zero), 0.003),
    ]
    assert tuple(name for name, _, _ in named) == EXPRESSION_NAMES
    return named


def _local_bump(rng: np.random.Generator, vs: np.ndarray, centres: np.ndarray, reg: _Regions,
                eye_x: float) -> np.ndarray:
    """A random Gaussian bump (V_skin, 3) around a random face point, moving in a random direction."""
    x = vs[:, 0]
    c = centres[rng.integers(centres.shape[0])]
    radius = rng.uniform(0.008, 0.018)
    bump = np.exp(-0.5 * np.sum((vs - c) ** 2, axis=1) / radius ** 2)
    # keep bumps on one side of a slit so lips and lids can move apart
    if abs(c[1] - Y_MOUTH) < 0.02 and abs(c[0]) < 0.04:
        bump *= (1.0 - reg.lower_mouth) if c[1] > Y_MOUTH else reg.lower_mouth
    for e, sign in enumerate((1, -1)):
        if abs(c[1] - Y_EYE) < 0.02 and abs(sign * c[0] - eye_x) < 0.025:
            ue = reg.upper_eye[e]
            bump *= ue if c[1] > Y_EYE else (1.0 - ue) * (sign * x > 0)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    return bump[:, None] * direction[None]


def _expression_basis(rng: np.random.Generator, v: np.ndarray, n_skin: int, reg: _Regions,
                      mouth_corner: float, eye_x: float) -> np.ndarray:
    """(V, 3, 100) expression components: the named actions, then independent random local bumps.

    Columns 0..29 are the named actions (:data:`EXPRESSION_NAMES`, :func:`_named_expressions`),
    exactly as designed. Columns 30..99 are random Gaussian bumps on the face of decaying
    amplitude, each made orthogonal (in the plain vertex-displacement inner product) to every
    column before it, then rescaled to its peak amplitude; a bump that loses more than half of
    its norm to the earlier columns is drawn again, so each stays a local bump. Like FLAME's PCA
    basis, this makes the coefficients identifiable from the geometry: the bumps are orthogonal
    to each other and to the named block, so the conditioning of any leading set of columns is
    that of the (seed-independent) named block together with the bumps' norms.

    Every component is faded out by the face weight before it is normalised, so nothing outside
    the face moves and each reaches exactly its peak amplitude; eyeballs never move.
    """
    vs = v[:n_skin]
    fade = reg.face_weight[:, None]
    comps = [_normalise(field * fade, amplitude)
             for _, field, amplitude in _named_expressions(vs, reg, mouth_corner, eye_x)]
    # Orthogonalise on the face's vertices only: everything else is exactly zero, and stays so.
    on_face = reg.face_weight > 0
    q, _ = np.linalg.qr(np.stack([c[on_face].ravel() for c in comps], 1))  # orthonormal, so far
    centres = vs[reg.face_weight > 0.8]
    n_named = len(comps)
    for rank in range(N_EXPR - n_named):
        for _ in range(1000):
            bump = (_local_bump(rng, vs, centres, reg, eye_x) * fade)[on_face].ravel()
            residual = bump - q @ (q.T @ bump)
            residual -= q @ (q.T @ residual)  # a second pass removes what rounding left
            if np.linalg.norm(residual) >= MIN_BUMP_RESIDUAL * np.linalg.norm(bump):
                break
        else:  # pragma: no cover - the face has room for far more than 100 components
            raise RuntimeError("could not draw an independent expression bump")
        q = np.concatenate([q, residual[:, None] / np.linalg.norm(residual)], 1)
        comp = np.zeros((n_skin, 3))
        comp[on_face] = residual.reshape(-1, 3)
        comps.append(_normalise(comp, 0.003 / (1.0 + rank / 25.0)))
    full = np.zeros((v.shape[0], 3, N_EXPR))
    full[:n_skin] = np.stack(comps, -1)
    return full


# --------------------------------------------------------------------------- the builder


def builtin_head(seed: int = 0) -> HeadAssets:
    """Build the procedural stand-in head (not FLAME) in FLAME's file layout.

    Args:
        seed: draws the random parts of the bases; everything else is fixed.
    Returns:
        :class:`HeadAssets` — 5407 vertices and 10732 faces (skin with an open neck cut, an
        inner mouth and eye sockets, plus two eyeball spheres), 300 identity and 100 expression
        components, 5 joints as in FLAME (global, neck, jaw, left eye, right eye).
        Ears are simple flaps (``left_ear`` / ``right_ear`` masks).
    """
    rng = np.random.default_rng(seed)
    skin = _build_skin()
    n_skin = skin.positions.shape[0]
    balls, ball_faces, ball_ids = [], [], []
    offset = n_skin
    for e in range(2):
        bv, bf = _eyeball(skin.eye_centres[0])
        if e == 1:  # the right eye mirrors the left one, vertex for vertex
            bv = bv * np.array([-1.0, 1.0, 1.0])
            bf = bf[:, ::-1]
        balls.append(bv)
        ball_faces.append(bf + offset)
        ball_ids.append(np.arange(offset, offset + bv.shape[0]))
        offset += bv.shape[0]
    v = np.concatenate([skin.positions] + balls)
    faces = np.concatenate([skin.faces] + ball_faces)
    V = v.shape[0]
    reg = _regions(skin)
    j_in, j_out = skin.eye_cols
    eye_cols = np.arange(j_in, j_out + 1)
    eye_edges = tuple(np.concatenate([skin.gid[skin.r_eye, (sign * eye_cols) % N_COLS], skin.eye_dup[e]])
                      for e, sign in enumerate((1, -1)))

    # --- skinning weights and joints
    jaw = _jaw_weight(skin, reg)
    neck_blend = _smoothstep((skin.ref[:, 1] + 0.16) / 0.07)
    weights = np.zeros((V, 5))
    weights[:n_skin, 2] = jaw
    weights[:n_skin, 1] = (1 - jaw) * neck_blend
    weights[:n_skin, 0] = (1 - jaw) * (1 - neck_blend)
    weights[ball_ids[0], 3] = 1.0
    weights[ball_ids[1], 4] = 1.0
    J_regressor = _joint_regressor(skin, ball_ids, V)

    # --- bases
    shape = _identity_basis(rng, v, tuple(ball_ids), eye_edges)
    mouth_corner = skin.ref[skin.gid[skin.r_mouth, skin.mouth_col], 0]
    eye_x = float(skin.eye_centres[0, 0])
    expression = _expression_basis(rng, v, n_skin, reg, mouth_corner, eye_x)
    posedirs = _pose_correctives(rng, v, skin, jaw, ball_ids)

    model = {
        "v_template": v.astype(np.float64),
        "f": faces.astype(np.uint32),
        "shapedirs": np.concatenate([shape, expression], -1).astype(np.float64),
        "posedirs": posedirs,
        "J_regressor": J_regressor,
        "weights": weights,
        "kintree_table": np.array([[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "J": np.asarray(J_regressor @ v),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    static, dynamic, mediapipe = _place_landmarks(skin)
    eyelids = _eyelids(skin, V)
    masks = _masks(skin, reg, tuple(ball_ids))
    return HeadAssets(model, static, dynamic, mediapipe, eyelids, masks)


def _jaw_weight(skin: _Skin, reg: _Regions) -> np.ndarray:
    """How much each skin vertex follows the jaw: the lower lip, chin and under-chin, fading to the neck."""
    ref = skin.ref
    n = ref.shape[0]
    nudge = np.zeros(n)
    inner = np.arange(-skin.mouth_col + 1, skin.mouth_col) % N_COLS
    nudge[skin.gid[skin.r_mouth, inner]] = 0.0005
    nudge[skin.mouth_dup] = -0.0005
    below = _side_weight(ref, Y_MOUTH, 0.0, ref[skin.gid[skin.r_mouth, skin.mouth_col], 0], nudge)
    below = np.where(np.isin(np.arange(n), skin.cavity.ravel()), reg.lower_mouth, below)
    front = _smoothstep((ref[:, 2] - (Z_AXIS - 0.02)) / 0.06)
    not_neck = _smoothstep((ref[:, 1] + 0.14) / 0.045)
    return below * front * not_neck


def _joint_regressor(skin: _Skin, ball_ids: list, V: int) -> sp.csc_matrix:
    """(5, V) rows averaging a few vertices: two neck rings, the jaw hinges beside the ears, the eyeballs."""
    gid, row_y = skin.gid, skin.row_y
    rows, cols, vals = [], [], []

    def ring(y: float) -> np.ndarray:
        return gid[int(np.nanargmin(np.abs(row_y - y)))]

    def add(j: int, ids: np.ndarray) -> None:
        rows.extend([j] * len(ids))
        cols.extend(int(i) for i in ids)
        vals.extend([1.0 / len(ids)] * len(ids))

    add(0, ring(-0.15))
    add(1, ring(-0.105))
    # jaw hinge: where the side of the head meets z ~ -0.02 at y ~ -0.012, both sides
    hinge_row = ring(-0.012)
    zs = skin.positions[hinge_row[: N_COLS // 2 + 1], 2]
    j = int(np.argmin(np.abs(zs + 0.02)))
    add(2, np.array([hinge_row[j], hinge_row[(-j) % N_COLS]]))
    add(3, ball_ids[0])
    add(4, ball_ids[1])
    return sp.csc_matrix((vals, (rows, cols)), shape=(5, V))


def _pose_correctives(rng: np.random.Generator, v: np.ndarray, skin: _Skin, jaw: np.ndarray,
                      ball_ids: list) -> np.ndarray:
    """(V, 3, 36) small smooth corrective fields, each local to its joint's region.

    Columns 9j..9j+8 answer joint j+1's (R − I) entries (neck, jaw, left eye, right eye).
    Eye correctives are tiny constant shifts of that eyeball only (a twentieth of a
    millimetre), so turning the eyes moves nothing else and keeps the eyeballs rigid.
    """
    n_skin = skin.positions.shape[0]
    V = v.shape[0]
    neck_w = np.zeros(V)
    neck_w[:n_skin] = np.exp(-0.5 * ((skin.ref[:, 1] + 0.10) / 0.025) ** 2)
    jaw_w = np.zeros(V)
    jaw_w[:n_skin] = jaw
    out = np.zeros((V, 3, N_POSE))
    regions = [(neck_w, 0.0006), (jaw_w, 0.0006)]
    for e in range(2):
        w = np.zeros(V)
        w[ball_ids[e]] = 1.0
        regions.append((w, 0.00005))
    for j, (w, amp) in enumerate(regions):
        for k in range(9):
            if j < 2:
                field = _random_smooth_field(rng, v, 25.0, n_waves=3) * w[:, None]
            else:  # a constant shift keeps the eyeball rigid
                field = w[:, None] * rng.normal(size=3)[None]
            out[:, :, 9 * j + k] = _normalise(field, amp)
    return out


def _eyelids(skin: _Skin, V: int) -> dict:
    """Upper-lid closing fields: weight 1 brings the upper lid edge onto the lower one.

    Each upper-side vertex moves down by the rest opening there (fading away from the
    slit like the opening itself) and is kept outside the eyeball.
    """
    ref, pos, gid = skin.ref, skin.positions, skin.gid
    j_in, j_out = skin.eye_cols
    out = {}
    R_out = EYE_RADIUS + LID_GAP
    for e, (sign, key) in enumerate(((1, "l_eyelid"), (-1, "r_eyelid"))):
        x_in, x_out = abs(ref[gid[skin.r_eye, j_in], 0]), abs(ref[gid[skin.r_eye, j_out], 0])
        s = (sign * ref[:, 0] - x_in) / (x_out - x_in)
        fall = _lid_falloff(ref)
        upper = np.zeros(pos.shape[0], bool)
        upper[gid[: skin.r_eye + 1].ravel()] = True
        upper[skin.pole] = False
        upper &= sign * ref[:, 0] > 0
        drop = (LID_UP + LID_DOWN) * _lid_profile(s) * fall * upper
        target = pos - drop[:, None] * np.array([0.0, 1.0, 0.0])
        c = skin.eye_centres[e]
        rel = target - c
        dist = np.linalg.norm(rel, axis=1)
        push = (dist < R_out) & (drop > 0)
        target[push] = c + rel[push] * (R_out / dist[push])[:, None]
        field = np.zeros((V, 3))
        field[: pos.shape[0]] = np.where((drop > 0)[:, None], target - pos, 0.0)
        out[key] = field
    return out
