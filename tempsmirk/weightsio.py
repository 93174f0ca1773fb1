"""Weights files: read safely, load strictly into a module, write atomically.

Every network's weights pass through here — SMIRK checkpoints (:mod:`tempsmirk.smirk.checkpoint`),
backbone and VGG16 weights, EMOCA's emotion network — so each rule is written once:

- **Reading runs no code.** :func:`read_weights_file` reads ``.safetensors`` with safetensors and
  anything else with ``torch.load(weights_only=True)``: a pickle that names Python objects is
  refused. Lightning checkpoints pickle their callbacks and hyper-parameters beside the tensors;
  for those a caller names the packages whose objects may be there (``stub_packages``), and
  :class:`CheckpointUnpickler` turns them into inert stubs (nothing of theirs is imported or
  called) while refusing every other global.
- **Loading is strict.** :func:`load_weights_into` wants every tensor of the module, with its
  shape, and names what is missing or different (:class:`CheckpointError`).
- **Writing is atomic.** :func:`atomic_torch_save` writes beside the target and renames, so a
  crash never leaves a truncated checkpoint under the final name.
"""

from __future__ import annotations

import io
import os
import pickle
import types
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import torch
from torch import Tensor, nn

from tempsmirk.atomic import atomic_path

__all__ = ["CheckpointError", "CheckpointUnpickler", "read_weights_file", "load_weights_into",
           "atomic_torch_save"]

PathLike = Union[str, os.PathLike]


class CheckpointError(ValueError):
    """A weights file that does not fit. The attributes hold the complete lists
    (``missing``, ``unexpected``, ``mismatched``); the message shows the first few."""

    def __init__(self, message: str, missing=(), unexpected=(), mismatched=()) -> None:
        super().__init__(message)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)


# ----------------------------------------------------------------------------- restricted unpickling
_TORCH_ALLOWED = {
    ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"), ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"), ("torch", "Size"), ("torch", "device"),
    ("collections", "OrderedDict"), ("collections", "defaultdict"), ("copyreg", "_reconstructor"),
    ("_codecs", "encode"),
} | {("builtins", t) for t in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "str",
                               "bytes", "bytearray", "bool", "slice", "object")}


class _Stub:
    """An inert stand-in for a pickled object of a foreign class: keeps its state, runs nothing."""

    def __new__(cls, *args: Any, **kwargs: Any) -> "_Stub":
        obj = object.__new__(cls)
        obj.__dict__["_args"] = args
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state

    # Pickled dict and list subclasses (e.g. Lightning's AttributeDict) add their items this way.
    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__.setdefault("_items", {})[key] = value

    def append(self, value: Any) -> None:
        self.__dict__.setdefault("_list", []).append(value)

    def extend(self, values: Any) -> None:
        self.__dict__.setdefault("_list", []).extend(values)


class CheckpointUnpickler(pickle.Unpickler):
    """Unpickler for torch checkpoints that resolves tensor-rebuilding globals, maps classes of the
    packages in ``stub_packages`` (a class attribute: torch subclasses the unpickler it is given)
    to inert stubs and refuses every other global (before importing it)."""

    stub_packages: tuple[str, ...] = ()
    _stubs: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str) -> Any:
        import _compat_pickle

        # Protocol-2 pickles spell builtins the Python 2 way (__builtin__, copy_reg).
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if (module, name) in _TORCH_ALLOWED:
            return getattr(__import__(module, fromlist=[name]), name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module.split(".")[0] in self.stub_packages:
            key = (module, name)
            if key not in self._stubs:
                self._stubs[key] = type(name, (_Stub,), {"__module__": f"stub.{module}"})
            return self._stubs[key]
        raise pickle.UnpicklingError(
            f"refusing to load a checkpoint that references '{module}.{name}': only tensors and "
            f"inert objects of {list(self.stub_packages)} are allowed. Nothing was executed; if the "
            f"file is genuine, re-save its state dict from a trusted environment: "
            f"torch.save(ckpt['state_dict'], path)")


def _pickle_module(stub_packages: Sequence[str]) -> types.SimpleNamespace:
    """What ``torch.load(pickle_module=...)`` needs, built on :class:`CheckpointUnpickler`."""
    unpickler = type("StubbingUnpickler", (CheckpointUnpickler,), {"stub_packages": tuple(stub_packages)})
    return types.SimpleNamespace(Unpickler=unpickler, load=lambda f, **kw: unpickler(f, **kw).load(),
                                 loads=lambda b, **kw: unpickler(io.BytesIO(b), **kw).load(),
                                 __name__="tempsmirk.weightsio.restricted_pickle")


# ----------------------------------------------------------------------------- reading and loading
def read_weights_file(path: PathLike, what: str = "weights file", stub_packages: Sequence[str] = (),
                      mmap: bool = False) -> dict:
    """Read a weights file safely: ``.safetensors`` via safetensors, anything else via
    ``torch.load(map_location="cpu", weights_only=True)``. Returns the stored object (a dict).

    Args:
        path: a local file (nothing is downloaded).
        what: what the file should be, for the messages (e.g. "EMOCA's emotion checkpoint").
        stub_packages: top-level packages whose pickled objects may sit beside the tensors (a
            Lightning checkpoint's callbacks and hyper-parameters): when the weights-only read
            refuses the file, it is read again with :class:`CheckpointUnpickler`, which turns
            those objects into inert stubs and refuses anything else.
        mmap: memory-map the tensors instead of reading them (cheap peeks at large files).
    Raises:
        FileNotFoundError for a missing path and :class:`CheckpointError` for a file that is not
        weights-only (it names Python objects) or is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist; give the path of a local file "
                                f"(nothing is downloaded)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    with open(path, "rb") as fh:
        head = fh.read(4)
    # torch.save writes a zip archive (legacy: a pickle, protocol byte 0x80); anything else (a
    # video passed by mistake, a text file) is not a weights file at all, not an unsafe one.
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
        raise CheckpointError(f"{path}: not a torch weights file (neither a torch.save zip archive "
                              f"nor a pickle; it starts with {head!r}). Give the path of a .pt/.pth "
                              f"checkpoint or a .safetensors file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        if not stub_packages:
            raise CheckpointError(
                f"{path}: refused — it is not a weights-only file (it names Python objects, and "
                f"unpickling those could run code). Re-save just the tensors from a trusted "
                f"environment: torch.save(model.state_dict(), path). Details: {err}") from None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False,
                             pickle_module=_pickle_module(stub_packages))
        except pickle.UnpicklingError as err2:
            raise CheckpointError(f"{path}: {err2}") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable torch weights file ({err})") from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return dict(obj)


def load_weights_into(module: nn.Module, state: Mapping[str, Tensor], source: str, expected: str,
                      optional: Sequence[str] = ()) -> None:
    """Load every tensor ``module`` has from ``state``, strictly; extra entries are ignored.

    ``optional``: name endings (e.g. ``"num_batches_tracked"``) whose tensors may be absent; the
    module keeps its own there. Raises :class:`CheckpointError` naming ``source``, what was
    ``expected``, and which keys are missing or have another shape.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith(tuple(optional))]
    mismatched = [f"{k}: expected {tuple(v.shape)}, file has {tuple(state[k].shape)}"
                  for k, v in own.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or mismatched:
        raise CheckpointError(
            f"{source}: not {expected}: {len(missing)} of {len(own)} tensors missing "
            f"(first: {missing[:5]}), {len(mismatched)} with another shape {mismatched[:5]}",
            missing=missing, mismatched=mismatched)
    module.load_state_dict({k: state.get(k, v) for k, v in own.items()}, strict=True)


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place, so a crash
    never leaves a truncated file under the final name."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
