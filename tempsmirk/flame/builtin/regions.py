"""Regions of the built-in head: smooth weights that confine its motion, and the named vertex masks.

:class:`Regions` holds the smooth weights the bases and the rig are built with (which side
of each slit a vertex is on, how much of the face it belongs to); :func:`region_masks`
gives the vertex sets of ``FLAME_masks.pkl`` (:data:`.tables.MASK_NAMES`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tempsmirk.flame.builtin.fields import gauss, smoothstep
from tempsmirk.flame.builtin.layout import CAVITY_RINGS, N_COLS, Y_EYE, Y_MOUTH, Z_AXIS
from tempsmirk.flame.builtin.skin import EyeballIds, Skin
from tempsmirk.flame.builtin.tables import MASK_NAMES

__all__ = ["Regions", "skin_regions", "side_weight", "region_masks"]


@dataclass(frozen=True)
class Regions:
    """Smooth region weights on the skin vertices, each (V_skin,) unless noted."""

    lower_mouth: np.ndarray     # 1 on the lower lip side of the mouth, 0 on the upper, smooth beside it
    upper_eye: np.ndarray       # (2, V_skin): 1 on the upper-lid side of each eye
    face_weight: np.ndarray     # smooth weight, 0 outside the face mask
    phi: np.ndarray             # column angle of each skin vertex


def side_weight(ref: np.ndarray, y_line: float, x_lo: float, x_hi: float, nudge: np.ndarray) -> np.ndarray:
    """0 above a slit line and 1 below it, sharp between the slit's corners, smooth beyond them.

    ``nudge`` moves the two copies of a slit vertex off the line (+ upper, − lower).
    """
    x = np.abs(ref[:, 0])
    beyond = np.maximum(x_lo - x, 0.0) + np.maximum(x - x_hi, 0.0)
    h = 0.001 + np.minimum(0.6 * beyond, 0.012)
    # keep the top of the blend at the slit so nothing above it is affected
    centre = y_line - 0.5 * (h - 0.001)
    return smoothstep(0.5 + (centre - (ref[:, 1] + nudge)) / h)


def _ear_flaps(ref: np.ndarray) -> np.ndarray:
    """(V_skin,) bool: the ear flaps on both sides of the head, by reference position."""
    return (np.abs(ref[:, 0]) > 0.06) & (np.abs(ref[:, 1] - 0.002) < 0.04) & (ref[:, 2] < -0.035)


def skin_regions(skin: Skin) -> Regions:
    """The smooth weights of :class:`Regions`, from the skin's reference positions and slits."""
    n = skin.positions.shape[0]
    ref = skin.ref
    gid = skin.gid
    j_in, j_out = skin.eye_cols
    j_m = skin.mouth_col
    nudge_m = np.zeros(n)
    inner_cols = np.arange(-j_m + 1, j_m) % N_COLS
    nudge_m[gid[skin.r_mouth, inner_cols]] = 0.0005
    nudge_m[skin.mouth_dup] = -0.0005
    lower = side_weight(ref, Y_MOUTH, 0.0, ref[gid[skin.r_mouth, j_m], 0], nudge_m)
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
        side = np.where(sign * ref[:, 0] > 0, 1.0 - side_weight(ref, Y_EYE, x_in, x_out, nudge), 0.0)
        # only meaningful near that eye
        near = gauss(sign * ref[:, 0], ref[:, 1], 0.5 * (x_in + x_out), Y_EYE, 0.03, 0.03)
        upper_eye[e] = np.where(near > 1e-3, side, 0.0)
    phi = np.arctan2(ref[:, 0], ref[:, 2] - Z_AXIS)
    y = ref[:, 1]
    face_weight = (smoothstep((np.radians(88) - np.abs(phi)) / np.radians(25))
                   * smoothstep((0.075 - y) / 0.02) * smoothstep((y + 0.097) / 0.015))
    face_weight[_ear_flaps(ref)] = 0.0
    return Regions(lower, upper_eye, face_weight, phi)


def region_masks(skin: Skin, reg: Regions, eyeballs: EyeballIds) -> dict[str, np.ndarray]:
    """Vertex regions with FLAME_masks.pkl's names (ears: the simple flaps on the sides): name -> (K,) int64."""
    n_skin = skin.positions.shape[0]
    ref, gid = skin.ref, skin.gid
    x, y, z = ref[:, 0], ref[:, 1], ref[:, 2]
    phi = reg.phi
    skin_ids = np.arange(n_skin)
    face = reg.face_weight > 0
    face[skin.cavity.ravel()] = True
    j_in, j_out = skin.eye_cols
    ecx = 0.5 * (ref[gid[skin.r_eye, j_in], 0] + ref[gid[skin.r_eye, j_out], 0])
    left_eye = face & (gauss(x, y, ecx, Y_EYE, 0.022, 0.016) > 0.25)
    right_eye = face & (gauss(x, y, -ecx, Y_EYE, 0.022, 0.016) > 0.25)
    lips = (face & (np.abs(x) < ref[gid[skin.r_mouth, skin.mouth_col], 0] + 0.006)
            & (y < Y_MOUTH + 0.009) & (y > Y_MOUTH - 0.011) & (z > 0.0))
    lips[skin.cavity.ravel()] = True
    nose = face & (np.abs(x) < 0.02) & (y < 0.028) & (y > -0.029) & (np.abs(phi) < np.radians(30))
    nose &= ~lips
    forehead = face & (y > 0.046)
    ear_region = _ear_flaps(ref)
    neck = ~face & ((y < -0.097) | ((np.abs(phi) > np.radians(90)) & (y < -0.03)))
    scalp = ~face & ~neck & ~ear_region
    neck[skin.pole] = False
    boundary = np.zeros(n_skin, bool)
    boundary[gid[-1]] = True

    def ids(m: np.ndarray) -> np.ndarray:
        return skin_ids[m].astype(np.int64)

    masks = {
        "face": ids(face), "eye_region": ids(left_eye | right_eye), "left_eye_region": ids(left_eye),
        "right_eye_region": ids(right_eye), "left_eyeball": eyeballs[0].astype(np.int64),
        "right_eyeball": eyeballs[1].astype(np.int64), "lips": ids(lips), "nose": ids(nose),
        "forehead": ids(forehead), "scalp": ids(scalp), "neck": ids(neck), "boundary": ids(boundary),
        "left_ear": ids(ear_region & (x > 0)), "right_ear": ids(ear_region & (x < 0)),
    }
    assert tuple(masks) == MASK_NAMES
    return masks
