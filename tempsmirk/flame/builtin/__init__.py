"""The built-in head: a procedural stand-in with FLAME's interface (chapter 1).

Nothing licensed ships with the project, so every chapter runs on this head when
no FLAME file is given. It is **not FLAME and not a face scan**: a smooth head
built from a few ellipsoids, with a nose, brows, lips, ears and two eyeballs,
written in exactly FLAME's file layout so the same loaders, layers and notebooks
work on either (see the guide, section 2, for the layout).

``seed`` draws only the random parts of the bases (identity and expression
fill-in fields, pose correctives); the template, topology, skinning, landmarks,
eyelids and masks do not depend on it.

What this package exports is its interface: :func:`builtin_head`, :class:`HeadAssets`
(with :meth:`HeadAssets.save`), :class:`HeadFiles` and the index tables. Its modules, in
the order the head is built:

- :mod:`.layout` — the grid's size, where the features sit, the basis sizes; coordinates.
- :mod:`.fields` — smooth scalar and vector fields (steps, bumps, random waves).
- :mod:`.surface` — the implicit head and the facial relief.
- :mod:`.skin` — the skin mesh: ray-cast grid, mouth and eye slits, sockets, eyeballs.
- :mod:`.regions` — smooth region weights and the named vertex masks.
- :mod:`.landmarks` — iBUG 68 (static and yaw-dependent contour) and MediaPipe placement.
- :mod:`.bases` — 300 identity and 100 expression components.
- :mod:`.rig` — skinning weights, joints, pose correctives, eyelid fields.
- :mod:`.tables` — what the landmark, mask and expression indices mean.
- :mod:`.assets` — the in-memory file layout and writing the real files.
- :mod:`.head` — :func:`builtin_head`, which puts them together.
"""

from tempsmirk.flame.builtin.assets import HeadAssets, HeadFiles
from tempsmirk.flame.builtin.head import builtin_head
from tempsmirk.flame.builtin.tables import (
                                            EXPRESSION_NAMES,
                                            IBUG_MIRROR,
                                            MASK_NAMES,
                                            MEDIAPIPE_INDICES,
                                            MEDIAPIPE_MIRROR,
)

__all__ = [
    "HeadAssets", "HeadFiles", "builtin_head", "EXPRESSION_NAMES",
    "IBUG_MIRROR", "MEDIAPIPE_INDICES", "MEDIAPIPE_MIRROR", "MASK_NAMES",
]
