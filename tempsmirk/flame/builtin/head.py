"""Assembles the built-in head from its parts: :func:`builtin_head`."""

from __future__ import annotations

import numpy as np

from tempsmirk.flame.builtin.assets import HeadAssets
from tempsmirk.flame.builtin.bases import expression_basis, identity_basis
from tempsmirk.flame.builtin.landmarks import place_landmarks
from tempsmirk.flame.builtin.regions import region_masks, skin_regions
from tempsmirk.flame.builtin.rig import (
    KINTREE_TABLE,
    eyelid_fields,
    jaw_weight,
    joint_regressor,
    pose_correctives,
    skinning_weights,
)
from tempsmirk.flame.builtin.skin import build_skin, lid_edges, with_eyeballs

__all__ = ["builtin_head"]


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
    skin = build_skin()
    v, faces, eyeballs = with_eyeballs(skin)
    V = v.shape[0]
    reg = skin_regions(skin)

    # rig
    jaw = jaw_weight(skin, reg)
    weights = skinning_weights(skin, jaw, eyeballs, V)
    J_regressor = joint_regressor(skin, eyeballs, V)

    # bases (the rng's draws, in this order)
    shape = identity_basis(rng, v, eyeballs, lid_edges(skin))
    mouth_corner = skin.ref[skin.gid[skin.r_mouth, skin.mouth_col], 0]
    eye_x = float(skin.eye_centres[0, 0])
    expression = expression_basis(rng, v, skin.positions.shape[0], reg, mouth_corner, eye_x)
    posedirs = pose_correctives(rng, v, skin, jaw, eyeballs)

    model = {
        "v_template": v.astype(np.float64),
        "f": faces.astype(np.uint32),
        "shapedirs": np.concatenate([shape, expression], -1).astype(np.float64),
        "posedirs": posedirs,
        "J_regressor": J_regressor,
        "weights": weights,
        "kintree_table": KINTREE_TABLE.copy(),
        "J": np.asarray(J_regressor @ v),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    static, dynamic, mediapipe = place_landmarks(skin)
    eyelids = eyelid_fields(skin, V)
    masks = region_masks(skin, reg, eyeballs)
    return HeadAssets(model, static, dynamic, mediapipe, eyelids, masks)
