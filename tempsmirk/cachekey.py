"""What names a cached artefact: content hashes and the short keys of cache folders.

Every cache in tempsmirk (the demo checkpoint, the experiments' runs, the evaluation's crops and
parameters, the synthetic AffectNet) is a folder or file under :func:`tempsmirk.paths.cache_dir`
named by a key computed here, from everything that produced it: a resolved config as YAML or
JSON, a version number, a checkpoint's bytes (:func:`file_digest`), tensors
(:func:`fingerprint`), or for files too many to read, their names, sizes and modification times
(:func:`file_stamps`). All hashes are SHA-256 in hex.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable, Union

import numpy as np

__all__ = ["fingerprint", "cache_key", "file_digest", "file_stamps"]

PathLike = Union[str, os.PathLike]


def _bytes(part) -> bytes:
    if isinstance(part, str):
        return part.encode()
    if isinstance(part, bytes):
        return part
    if hasattr(part, "detach"):  # a torch tensor, on any device
        part = part.detach().cpu().contiguous().numpy()
    if isinstance(part, np.ndarray):
        return np.ascontiguousarray(part).tobytes()
    raise TypeError(f"fingerprint takes str, bytes, numpy arrays or tensors; got {type(part).__name__}")


def fingerprint(*parts) -> str:
    """SHA-256 (hex) of the parts' bytes, in order: strings as UTF-8, arrays and tensors as their
    raw contiguous values (so dtype and values count; shape only through the byte count). Parts
    are concatenated without a separator: use it for a fixed list of parts, :func:`cache_key` for
    text fields."""
    h = hashlib.sha256()
    for part in parts:
        h.update(_bytes(part))
    return h.hexdigest()


def cache_key(*parts: str, length: int = 16) -> str:
    """The short name of a cache entry: the first ``length`` hex digits of the SHA-256 of
    ``parts`` joined by newlines (e.g. a version, a resolved config as YAML, digests)."""
    return fingerprint("\n".join(parts))[:length]


def file_digest(path: PathLike, chunk: int = 1 << 22) -> str:
    """SHA-256 (hex) of a file's contents, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def file_stamps(paths: Iterable[PathLike]) -> str:
    """SHA-256 (hex) of the files' resolved names, sizes and modification times, not their
    contents: cheap for a few hundred thousand images. A missing file counts as size and time -1."""
    lines = []
    for p in paths:
        st = os.stat(p) if os.path.exists(p) else None
        lines.append(f"{Path(p).resolve()}|{st.st_size if st else -1}|{st.st_mtime_ns if st else -1}\n")
    return fingerprint(*lines)
