"""FLAME: the parametric head model (chapter 1).

- :class:`FLAME` — the layer; :meth:`FLAME.from_files` loads real files safely.
- :class:`FlameParams` — the parameters (shape, expression, poses, eyelids, camera) as one type;
  :meth:`FLAME.forward_params` runs FLAME on them.
- :func:`load_flame` — a user's model file or asset folder (or the built-in head) as a
  :class:`FLAME`; :func:`resolve_flame_assets` finds the files (:mod:`tempsmirk.flame.assets`).
- :mod:`tempsmirk.flame.lbs` — pure skinning functions.
- :mod:`tempsmirk.flame.landmarks` — barycentric landmarks and the dynamic contour.
- :mod:`tempsmirk.flame.io` — restricted unpickler and validated loaders.
- :func:`builtin_head` — the procedural stand-in head in FLAME's file layout.
"""

from tempsmirk.flame.assets import FlameAssets, MissingAssetWarning, load_flame, resolve_flame_assets
from tempsmirk.flame.builtin import HeadAssets, HeadFiles, builtin_head
from tempsmirk.flame.io import FlameFileError, UnsafePickleError
from tempsmirk.flame.model import FLAME, FlameOutput
from tempsmirk.flame.params import PARAM_FIELDS, FlameParams

__all__ = ["FLAME", "FlameOutput", "FlameParams", "PARAM_FIELDS", "FlameFileError",
           "UnsafePickleError", "builtin_head", "HeadAssets", "HeadFiles", "FlameAssets",
           "MissingAssetWarning", "load_flame", "resolve_flame_assets"]
