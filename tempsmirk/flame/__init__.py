"""FLAME: the parametric head model (chapter 1).

- :class:`FLAME` — the layer; :meth:`FLAME.from_files` loads real files safely.
- :mod:`tempsmirk.flame.lbs` — pure skinning functions.
- :mod:`tempsmirk.flame.landmarks` — barycentric landmarks and the dynamic contour.
- :mod:`tempsmirk.flame.io` — restricted unpickler and validated loaders.
- :func:`builtin_head` — the procedural stand-in head in FLAME's file layout.
"""

from tempsmirk.flame.io import FlameFileError, UnsafePickleError
from tempsmirk.flame.model import FLAME, FlameOutput


def __getattr__(name: str):
    # The built-in head module is large; import it on first use.
    if name in ("builtin_head", "HeadAssets", "HeadFiles"):
        from tempsmirk.flame import builtin

        return getattr(builtin, name)
    raise AttributeError(f"module 'tempsmirk.flame' has no attribute {name!r}")


__all__ = ["FLAME", "FlameOutput", "FlameFileError", "UnsafePickleError", "builtin_head", "HeadAssets", "HeadFiles"]
