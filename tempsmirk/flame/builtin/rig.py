"""The built-in head's rig: skinning weights, joints, pose correctives and eyelid fields.

Five joints as in FLAME (global, neck, jaw, left eye, right eye; :data:`KINTREE_TABLE`).
The jaw carries the lower lip, chin and under-chin; the neck blends into the global joint
down the neck; each eyeball follows its own joint rigidly. The pose correctives
(``posedirs``) are small random smooth fields local to each joint's region, and the
eyelid fields close each upper lid onto the lower one (SMIRK's eyelid parameters).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tempsmirk.flame.builtin.fields import normalise, random_smooth_field, smoothstep
from tempsmirk.flame.builtin.layout import EYE_RADIUS, LID_DOWN, LID_GAP, LID_UP, N_COLS, N_POSE, Z_AXIS
from tempsmirk.flame.builtin.regions import Regions
from tempsmirk.flame.builtin.skin import EyeballIds, Skin, lid_falloff, lid_profile

__all__ = ["KINTREE_TABLE", "jaw_weight", "skinning_weights", "joint_regressor", "pose_correctives",
           "eyelid_fields"]

# FLAME's joint tree: parents (first row) of joints 0..4 (second row).
KINTREE_TABLE = np.array([[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)


def jaw_weight(skin: Skin, reg: Regions) -> np.ndarray:
    """How much each skin vertex follows the jaw: the lower lip, chin and under-chin, fading to the neck."""
    ref = skin.ref
    below = reg.lower_mouth  # the lower lip's side of the mouth slit, the inner mouth's lower half
    front = smoothstep((ref[:, 2] - (Z_AXIS - 0.02)) / 0.06)
    not_neck = smoothstep((ref[:, 1] + 0.14) / 0.045)
    return below * front * not_neck


def skinning_weights(skin: Skin, jaw: np.ndarray, eyeballs: EyeballIds, V: int) -> np.ndarray:
    """(V, 5) linear-blend-skinning weights, each row summing to 1.

    Skin: the jaw weight ``jaw`` (V_skin,) (:func:`jaw_weight`) on the jaw, the rest shared
    between the neck and the global joint by height; each eyeball wholly on its eye joint.
    """
    n_skin = skin.positions.shape[0]
    neck_blend = smoothstep((skin.ref[:, 1] + 0.16) / 0.07)
    weights = np.zeros((V, 5))
    weights[:n_skin, 2] = jaw
    weights[:n_skin, 1] = (1 - jaw) * neck_blend
    weights[:n_skin, 0] = (1 - jaw) * (1 - neck_blend)
    weights[eyeballs[0], 3] = 1.0
    weights[eyeballs[1], 4] = 1.0
    return weights


def joint_regressor(skin: Skin, ball_ids: EyeballIds, V: int) -> sp.csc_matrix:
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


def pose_correctives(rng: np.random.Generator, v: np.ndarray, skin: Skin, jaw: np.ndarray,
                     ball_ids: EyeballIds) -> np.ndarray:
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
                field = random_smooth_field(rng, v, 25.0, n_waves=3) * w[:, None]
            else:  # a constant shift keeps the eyeball rigid
                field = w[:, None] * rng.normal(size=3)[None]
            out[:, :, 9 * j + k] = normalise(field, amp)
    return out


def eyelid_fields(skin: Skin, V: int) -> dict[str, np.ndarray]:
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
        fall = lid_falloff(ref)
        upper = np.zeros(pos.shape[0], bool)
        upper[gid[: skin.r_eye + 1].ravel()] = True
        upper[skin.pole] = False
        upper &= sign * ref[:, 0] > 0
        drop = (LID_UP + LID_DOWN) * lid_profile(s) * fall * upper
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
