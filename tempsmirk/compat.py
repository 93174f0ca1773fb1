"""Import-time compatibility shims. Import this module before ``timm``.

torchvision's CPU-less wheel on a CPU-only torch
------------------------------------------------
The torchvision release that matches our torch pin is published as a CUDA build
only. On a CPU torch its C++ extension (``torchvision._C``) fails to load, which
torchvision tolerates, but ``torchvision._meta_registrations`` then registers
fake kernels for ``torchvision::nms`` / ``torchvision::qnms`` unconditionally and
the import dies with ``RuntimeError: operator torchvision::nms does not exist``.
``timm`` imports torchvision, so the whole encoder stack would be unusable.

:func:`ensure_torchvision` imports torchvision normally; only if that fails in
exactly this way does it declare the two operator schemas (no kernels), drop the
half-imported modules and import again. Nothing we use calls those operators:
we never touch ``torchvision.ops`` / ``torchvision.io`` (they need the missing
extension); VGG comes from timm.
"""

from __future__ import annotations

import sys

import torch

__all__ = ["ensure_torchvision", "torchvision_patched"]

# Kept alive for the process lifetime: dropping the Library object would
# unregister the schemas again.
_SCHEMA_LIBRARY: torch.library.Library | None = None

_MISSING_OPS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}


def torchvision_patched() -> bool:
    """True when :func:`ensure_torchvision` had to declare the missing schemas."""
    return _SCHEMA_LIBRARY is not None


def _forget_torchvision() -> None:
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]


def ensure_torchvision():
    """Import and return ``torchvision``, working around a missing C++ extension.

    Idempotent and cheap after the first call. Raises the original error for
    any other import failure (a genuinely broken install should stay loud).
    """
    global _SCHEMA_LIBRARY
    if "torchvision" in sys.modules and hasattr(sys.modules["torchvision"], "__version__"):
        return sys.modules["torchvision"]
    try:
        import torchvision

        return torchvision
    except RuntimeError as err:
        if "torchvision::" not in str(err) or "does not exist" not in str(err):
            raise
        _forget_torchvision()
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for name, schema in _MISSING_OPS.items():
        if not torch._C._dispatch_has_kernel(f"torchvision::{name}") and not _op_exists(name):
            lib.define(schema)
    _SCHEMA_LIBRARY = lib
    import torchvision

    return torchvision


def _op_exists(name: str) -> bool:
    try:
        getattr(torch.ops.torchvision, name)
        return True
    except (AttributeError, RuntimeError):
        return False

