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
from pathlib import Path
from typing import Mapping, Optional, Union

from torch import Tensor

from tempsmirk.smirk.encoder import N_EXTRA_EXP, SmirkEncoder
from tempsmirk.smirk.generator import SmirkGenerator
from tempsmirk.weightsio import CheckpointError, atomic_torch_save, read_weights_file

__all__ = [
    "ENCODER_PREFIX",
    "GENERATOR_PREFIX",
    "MODEL_KEY",
    "CheckpointError",
    "smirk_state_dict",
    "smirk_sizes",
    "checkpoint_sizes",
    "read_smirk_state",
    "load_smirk_state",
    "load_smirk_checkpoint",
    "save_smirk_checkpoint",
]

PathLike = Union[str, os.PathLike]
ENCODER_PREFIX = "smirk_encoder."
GENERATOR_PREFIX = "smirk_generator."
MODEL_KEY = "model"  # where our training checkpoints keep the flat weights
_SHOW = 12  # keys listed per category in an error message
_EXPRESSION_HEAD = ENCODER_PREFIX + "expression_encoder.expression_layers.0.weight"
_SHAPE_HEAD = ENCODER_PREFIX + "shape_encoder.shape_layers.0.weight"


def _listing(label: str, items: list[str]) -> str:
    if not items:
        return ""
    more = f" … and {len(items) - _SHOW} more" if len(items) > _SHOW else ""
    return f"\n  {label} ({len(items)}): " + ", ".join(items[:_SHOW]) + more


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


def _has_prefix(d: Mapping) -> bool:
    return any(isinstance(k, str) and k.startswith((ENCODER_PREFIX, GENERATOR_PREFIX)) for k in d)


def _flat(obj: Mapping) -> Optional[dict]:
    """The flat ``smirk_*`` dict in a loaded file: top level, or under ``"model"``; None if neither."""
    if _has_prefix(obj):
        return dict(obj)
    if isinstance(obj.get(MODEL_KEY), Mapping) and _has_prefix(obj[MODEL_KEY]):
        return dict(obj[MODEL_KEY])
    return None


def read_smirk_state(path: PathLike) -> dict[str, Tensor]:
    """The flat official-layout weights of a SMIRK checkpoint file (official, ours, or a training
    checkpoint's ``"model"``), read safely (:func:`~tempsmirk.weightsio.read_weights_file`).

    Raises FileNotFoundError, or :class:`CheckpointError` saying what the file looks like instead.
    """
    obj = read_weights_file(path, "SMIRK checkpoint")
    flat = _flat(obj)
    if flat is not None:
        return flat
    nested = [k for k, v in obj.items() if isinstance(v, Mapping) and _has_prefix(v)]
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


def smirk_sizes(state: Mapping[str, Tensor]) -> tuple[Optional[int], Optional[int]]:
    """(E, S): the expression and shape coefficients a flat SMIRK state predicts, read from the
    heads' shapes; None for a head the state lacks."""
    exp, shape = state.get(_EXPRESSION_HEAD), state.get(_SHAPE_HEAD)
    return (None if exp is None else int(exp.shape[0]) - N_EXTRA_EXP,
            None if shape is None else int(shape.shape[0]))


def checkpoint_sizes(path: PathLike) -> tuple[int, int]:
    """(E, S) a SMIRK checkpoint file predicts (:func:`smirk_sizes`; memory-mapped, without
    loading the weights); (50, 300) when they cannot be read (the strict loader then says what
    is wrong)."""
    try:
        flat = _flat(read_weights_file(path, mmap=True))
    except Exception:  # noqa: BLE001 - any unreadable file is reported by the strict loader
        return 50, 300
    e, s = smirk_sizes(flat or {})
    return (e, s) if e is not None and s is not None else (50, 300)


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
        n_exp, n_shape = smirk_sizes(state)
        if n_exp is not None and n_exp != encoder.n_exp:
            hint += (f"\n  The checkpoint predicts {n_exp} expression coefficients; build the "
                     f"encoder with n_exp={n_exp}.")
        if n_shape is not None and n_shape != encoder.n_shape:
            hint += (f"\n  The checkpoint predicts {n_shape} shape coefficients; build the "
                     f"encoder with n_shape={n_shape}.")
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
    state = read_smirk_state(path)
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
