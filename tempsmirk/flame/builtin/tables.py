"""Index tables of the built-in head: what each landmark, region and component index means.

- :data:`IBUG_MIRROR` — the iBUG 68 points' left/right partners.
- :data:`MEDIAPIPE_INDICES` — the 105 MediaPipe FaceMesh points (of 478) the head embeds, and
  :data:`MEDIAPIPE_MIRROR` their partners; the ``MP_*`` contours list them in order along each
  curve (:mod:`.landmarks` places them).
- :data:`MASK_NAMES` — the vertex regions, with ``FLAME_masks.pkl``'s names (:mod:`.regions`).
- :data:`EXPRESSION_NAMES` — the named expression components, in column order (:mod:`.bases`).

Plain data, independent of the seed and of the geometry.
"""

from __future__ import annotations

import numpy as np

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
MP_LIPS_OUTER_UPPER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
MP_LIPS_OUTER_LOWER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
MP_LIPS_INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
MP_LIPS_INNER_LOWER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
# eyes: outer corner -> inner corner
MP_RIGHT_EYE_UPPER = [33, 246, 161, 160, 159, 158, 157, 173, 133]
MP_RIGHT_EYE_LOWER = [33, 7, 163, 144, 145, 153, 154, 155, 133]
MP_LEFT_EYE_UPPER = [263, 466, 388, 387, 386, 385, 384, 398, 362]
MP_LEFT_EYE_LOWER = [263, 249, 390, 373, 374, 380, 381, 382, 362]
# brows: outer end -> inner end
MP_RIGHT_BROW_UPPER = [70, 63, 105, 66, 107]
MP_RIGHT_BROW_LOWER = [46, 53, 52, 65, 55]
MP_LEFT_BROW_UPPER = [300, 293, 334, 296, 336]
MP_LEFT_BROW_LOWER = [276, 283, 282, 295, 285]
# nose: midline top -> tip -> below, then the right (-x) and left (+x) nostril points
MP_NOSE_MIDLINE = [168, 6, 197, 195, 5, 4, 2]
MP_NOSE_RIGHT = [129, 98, 97]
MP_NOSE_LEFT = [358, 327, 326]

MEDIAPIPE_INDICES = np.array(sorted(set(
    MP_LIPS_OUTER_UPPER + MP_LIPS_OUTER_LOWER + MP_LIPS_INNER_UPPER + MP_LIPS_INNER_LOWER
    + MP_RIGHT_EYE_UPPER + MP_RIGHT_EYE_LOWER + MP_LEFT_EYE_UPPER + MP_LEFT_EYE_LOWER
    + MP_RIGHT_BROW_UPPER + MP_RIGHT_BROW_LOWER + MP_LEFT_BROW_UPPER + MP_LEFT_BROW_LOWER
    + MP_NOSE_MIDLINE + MP_NOSE_RIGHT + MP_NOSE_LEFT)), dtype=np.int64)


def _mp_mirror_pairs() -> dict[int, int]:
    pairs: dict[int, int] = {}
    for chain in (MP_LIPS_OUTER_UPPER, MP_LIPS_OUTER_LOWER, MP_LIPS_INNER_UPPER, MP_LIPS_INNER_LOWER):
        for a, b in zip(chain, chain[::-1]):
            pairs[a] = b
    for right, left in ((MP_RIGHT_EYE_UPPER, MP_LEFT_EYE_UPPER), (MP_RIGHT_EYE_LOWER, MP_LEFT_EYE_LOWER),
                        (MP_RIGHT_BROW_UPPER, MP_LEFT_BROW_UPPER), (MP_RIGHT_BROW_LOWER, MP_LEFT_BROW_LOWER),
                        (MP_NOSE_RIGHT, MP_NOSE_LEFT)):
        for a, b in zip(right, left):
            pairs[a], pairs[b] = b, a
    for a in MP_NOSE_MIDLINE:
        pairs[a] = a
    return pairs


# Position k of MEDIAPIPE_INDICES mirrors to position MEDIAPIPE_MIRROR[k].
MEDIAPIPE_MIRROR = np.array(
    [int(np.searchsorted(MEDIAPIPE_INDICES, _mp_mirror_pairs()[int(i)])) for i in MEDIAPIPE_INDICES],
    dtype=np.int64,
)

MASK_NAMES = ("face", "eye_region", "left_eye_region", "right_eye_region", "left_eyeball", "right_eyeball",
              "lips", "nose", "forehead", "scalp", "neck", "boundary", "left_ear", "right_ear")

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
