"""SMIRK checkpoints in the official flat layout, loaded strictly and safely.

Explained in chapter 3.

The official checkpoint is one flat dict: ``smirk_encoder.<encoder key>`` for every tensor of
:class:`~tempsmirk.smirk.encoder.SmirkEncoder` (762 keys) and ``smirk_generator.<generator key>``
for every tensor of :class:`~tempsmirk.smirk.generator.SmirkGenerator` (178 keys). We write the
same layout, so our checkpoints load in the official code and theirs load here. Training
checkpoints (written by the trainer) may wrap that flat dict as ``{"model": flat, ...}`` beside
optimiser and schedule state; :func:`load_smirk_checkpoint` accepts both.

Files are read with ``torch.load(..., weights_only=True)`` only: a pickle can run code, so a file
naming any Python object beyond tensors and plain containers is refused.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Mapping, Optional, Union

import torch
from torch import Tensor

from tempsmirk.atomic import atomic_path
from tempsmirk.smirk.encoder import SmirkEncoder
from tempsmirk.smirk.generator import SmirkGenerator

__all__ = [
    "ENCODER_PREFIX",
    "GENERATOR_PREFIX",
    "MODEL_KEY",
    "CheckpointError",
    "read_weights_file",
    "smirk_state_dict",
    "load_smirk_state",
    "load_smirk_checkpoint",
    "save_smirk_checkpoint",
    "atomic_torch_save",
]

PathLike = Union[str, os.PathLike]
ENCODER_PREFIX = "smirk_encoder."
GENERATOR_PREFIX = "smirk_generator."
MODEL_KEY = "model"  # where our training checkpoints keep the flat weights
_SHOW = 12  # keys listed per category in an error message


class CheckpointError(ValueError):
    """A weights file that does not fit. The attributes hold the complete lists
    (``missing``, ``unexpected``, ``mismatched``); the message shows the first few."""

    def __init__(self, message: str, missing=(), unexpected=(), mismatched=()) -> None:
        super().__init__(message)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)


def _listing(label: str, items: list[str]) -> str:
    if not items:
        return ""
    more = f" … and {len(items) - _SHOW} more" if len(items) > _SHOW else ""
    return f"\n  {label} ({len(items)}): " + ", ".join(items[:_SHOW]) + more


def read_weights_file(path: PathLike) -> dict:
    """Read a weights file safely: ``.safetensors`` via safetensors, anything else via
    ``torch.load(map_location="cpu", weights_only=True)``. Returns the stored object (a dict).

    Raises FileNotFoundError for a missing path and :class:`CheckpointError` for a file that is
    not weights-only (it names Python objects) or is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist; give the path of a local "
                                f"file (nothing is downloaded)")
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
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path}: refused — it is not a weights-only file (it names Python objects, and "
            f"unpickling those could run code). Re-save just the tensors from a trusted "
            f"environment: torch.save(model.state_dict(), path). Details: {err}") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable torch weights file ({err})") from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return dict(obj)


def load_weights_into(module: torch.nn.Module, state: Mapping[str, Tensor], source: str, expected: str) -> None:
    """Load every tensor ``module`` has from ``state``, strictly; extra entries are ignored.

    Raises :class:`CheckpointError` naming ``source``, what was ``expected``, and which keys are
    missing or have another shape.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    mismatched = [f"{k}: expected {tuple(v.shape)}, file has {tuple(state[k].shape)}"
                  for k, v in own.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or mismatched:
        raise CheckpointError(
            f"{source}: not {expected}: {len(missing)} of {len(own)} tensors missing "
            f"(first: {missing[:5]}), {len(mismatched)} with another shape {mismatched[:5]}",
            missing=missing, mismatched=mismatched)
    module.load_state_dict({k: state[k] for k in own}, strict=True)


def smirk_state_dict(encoder: SmirkEncoder, generator: Optional[SmirkGenerator] = None) -> dict[str, Tensor]:
    """The flat official layout: ``smirk_encoder.*`` then (if given) ``smirk_generator.*``."""
    state = {ENCODER_PREFIX + k: v for k, v in encoder.state_dict().items()}
    if generator is not None:
        state.update({GENERATOR_PREFIX + k: v for k, v in generator.state_dict().items()})
    return state


def _format_hint(keys: list[str]) -> str:
    """A guess at what a dict without our prefixes is, for the error message."""
    sample = keys[:200]
    if any(k.startswith(("pose_encoder.", "shape_encoder.", "expression_encoder.")) for k in sample):
        return (" It looks like a bare SmirkEncoder state dict (no 'smirk_encoder.' prefix): "
                "load it with encoder.load_state_dict(state) or save it with "
                "save_smirk_checkpoint.")
    if any(k.startswith("module.") for k in sample):
        return " Keys start with 'module.' (a DataParallel wrapper): strip that prefix first."
    if any(k.startswith(("encoder1.", "resnet_blocks.")) for k in sample):
        return " It looks like a bare SmirkGenerator state dict (no 'smirk_generator.' prefix)."
    if any(k.startswith(("conv_stem.", "blocks.", "features.")) for k in sample):
        return (" It looks like a backbone's weights: pass it to SmirkEncoder(backbone_weights=...) "
                "or PerceptualLoss instead.")
    return ""


def _flat_weights(obj: Mapping, path: PathLike) -> dict[str, Tensor]:
    """Find the flat ``smirk_*`` dict in a loaded file: top level, or under ``"model"``."""
    def has_prefix(d: Mapping) -> bool:
        return any(isinstance(k, str) and k.startswith((ENCODER_PREFIX, GENERATOR_PREFIX)) for k in d)

    if has_prefix(obj):
        return dict(obj)
    if isinstance(obj.get(MODEL_KEY), Mapping) and has_prefix(obj[MODEL_KEY]):
        return dict(obj[MODEL_KEY])
    nested = [k for k, v in obj.items() if isinstance(v, Mapping) and has_prefix(v)]
    keys = [str(k) for k in obj]
    if nested:
        hint = (f" The weights sit under the key {nested[0]!r}: re-save them flat with "
                f"torch.save(ckpt[{nested[0]!r}], path), or under {MODEL_KEY!r}.")
    else:
        hint = _format_hint(keys)
    raise CheckpointError(
        f"{path}: not a SMIRK checkpoint. Expected a flat dict with keys "
        f"'{ENCODER_PREFIX}…' (and optionally '{GENERATOR_PREFIX}…'), or such a dict under "
        f"{MODEL_KEY!r}; found {len(keys)} top-level keys, e.g. {keys[:5]}.{hint}")


def load_smirk_state(encoder: SmirkEncoder, generator: Optional[SmirkGenerator],
                     state: Mapping[str, Tensor], source: str = "checkpoint") -> None:
    """Copy a flat official-layout state into existing modules, strictly.

    Every encoder key must be present; generator keys must be all present (when ``generator``
    is given) or, with ``generator=None``, absent. Shapes must match exactly. Raises
    :class:`CheckpointError` naming missing, unexpected and mismatched keys.
    """
    expected = smirk_state_dict(encoder, generator)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f"{k}: expected {tuple(v.shape)}, found {tuple(state[k].shape)}"
                  for k, v in expected.items()
                  if k in state and tuple(getattr(state[k], "shape", ())) != tuple(v.shape)]
    if missing or unexpected or mismatched:
        hint = ""
        head = ENCODER_PREFIX + "expression_encoder.expression_layers.0.weight"
        if head in state and head in expected and state[head].shape != expected[head].shape:
            hint += (f"\n  The checkpoint predicts {state[head].shape[0] - 5} expression "
                     f"coefficients; build the encoder with n_exp={state[head].shape[0] - 5}.")
        shape_head = ENCODER_PREFIX + "shape_encoder.shape_layers.0.weight"
        if shape_head in state and shape_head in expected and state[shape_head].shape != expected[shape_head].shape:
            hint += (f"\n  The checkpoint predicts {state[shape_head].shape[0]} shape "
                     f"coefficients; build the encoder with n_shape={state[shape_head].shape[0]}.")
        if generator is None and any(k.startswith(GENERATOR_PREFIX) for k in unexpected):
            hint += "\n  The file holds generator weights: pass a SmirkGenerator to load them."
        raise CheckpointError(
            f"{source}: does not match the SMIRK layout (strict load)."
            + _listing("missing", missing) + _listing("unexpected", unexpected)
            + _listing("shape mismatch", mismatched) + hint,
            missing=missing, unexpected=unexpected, mismatched=mismatched)
    enc = {k[len(ENCODER_PREFIX):]: v for k, v in state.items() if k.startswith(ENCODER_PREFIX)}
    encoder.load_state_dict(enc, strict=True)
    if generator is not None:
        gen = {k[len(GENERATOR_PREFIX):]: v for k, v in state.items() if k.startswith(GENERATOR_PREFIX)}
        generator.load_state_dict(gen, strict=True)


def load_smirk_checkpoint(path: PathLike, n_exp: int = 50, n_shape: int = 300,
                          with_generator: bool = True
                          ) -> tuple[SmirkEncoder, Optional[SmirkGenerator]]:
    """Build the encoder (and generator) from a SMIRK checkpoint. Explained in chapter 3.

    Accepts the official flat layout, our own files (same layout) and our training checkpoints
    (the flat dict under ``"model"``). A file with only ``smirk_encoder.*`` keys gives
    ``generator=None``; so does ``with_generator=False`` (inference needs only the encoder), which
    skips the file's generator tensors. Loading is strict (see :func:`load_smirk_state`); modules
    are returned on the CPU in eval mode (call ``.to(device)`` / ``.train()`` as needed).
    """
    state = _flat_weights(read_weights_file(path), path)
    if not with_generator:
        state = {k: v for k, v in state.items() if not k.startswith(GENERATOR_PREFIX)}
    encoder = SmirkEncoder(n_exp=n_exp, n_shape=n_shape)
    generator = SmirkGenerator() if any(k.startswith(GENERATOR_PREFIX) for k in state) else None
    load_smirk_state(encoder, generator, state, source=str(path))
    encoder.eval()
    if generator is not None:
        generator.eval()
    return encoder, generator


def save_smirk_checkpoint(path: PathLike, encoder: SmirkEncoder,
                          generator: Optional[SmirkGenerator] = None) -> Path:
    """Write encoder (and generator) weights in the official flat layout, atomically.

    The tensors are saved as contiguous CPU copies; the file appears under its name only when
    complete (temporary file in the same folder + ``os.replace``). Returns the path.
    """
    path = Path(path)
    state = {k: v.detach().to("cpu", copy=True).contiguous()
             for k, v in smirk_state_dict(encoder, generator).items()}
    atomic_torch_save(state, path)
    return path


def atomic_torch_save(obj, path: PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place, so a crash
    never leaves a truncated file under the final name."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
