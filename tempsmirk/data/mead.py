"""MEAD as ``data_prep.mead`` describes it: ``manifest.csv`` and the per-clip folders (chapter 5).

``python -m data_prep.mead ROOT --out DIR`` walks MEAD's layout
(``<subject>/video/<view>/<emotion>/level_<n>/<clip>.mp4``) and writes, in DIR:

- ``manifest.csv`` — one :class:`MeadClip` per clip, columns :data:`MANIFEST_COLUMNS` (``split`` by
  subject; ``frames`` from demuxing, -1 for a file that could not be read);
- ``clips/<subject>/<view>/<emotion>/level_<n>/<clip>/`` (:func:`clip_output_dir`) per clip, holding
  ``landmarks.npz`` (:mod:`tempsmirk.video.landmarks`) and ``crops.mp4`` + ``crops.npz``
  (:mod:`tempsmirk.video.crops`).

:class:`~tempsmirk.data.MeadClips` reads only these to train. This module only reads and writes the
description; the walk and the subject splits live in :mod:`data_prep.mead`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tempsmirk.data.tables import read_table, write_table

__all__ = ["MANIFEST_FILE", "MANIFEST_COLUMNS", "MeadClip", "write_manifest", "read_manifest", "clip_output_dir"]

MANIFEST_FILE = "manifest.csv"
MANIFEST_COLUMNS = ("subject", "view", "emotion", "level", "clip", "split", "path", "frames")


@dataclass(frozen=True)
class MeadClip:
    """One MEAD clip.

    Attributes:
        path: relative to the MEAD root, POSIX separators.
        frames: frame count from demuxing (packets, no decode); -1 if the file could
            not be read (it is still listed, so it gets reported later).
    """

    subject: str
    view: str
    emotion: str
    level: int
    clip: str
    split: str
    path: str
    frames: int

    @property
    def key(self) -> str:
        """``subject/view/emotion/level_n/clip``, unique per clip."""
        return f"{self.subject}/{self.view}/{self.emotion}/level_{self.level}/{self.clip}"


def write_manifest(path: str | os.PathLike, clips: Sequence[MeadClip]) -> None:
    """Write the manifest CSV (columns :data:`MANIFEST_COLUMNS`) atomically."""
    write_table(path, MANIFEST_COLUMNS,
                ([c.subject, c.view, c.emotion, c.level, c.clip, c.split, c.path, c.frames] for c in clips))


def read_manifest(path: str | os.PathLike) -> tuple[MeadClip, ...]:
    """Read a manifest CSV written by :func:`write_manifest`.

    Raises:
        FileNotFoundError: there is none (the message says what to run).
        ValueError: another header or a broken row (with its line number).
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist; expected a data_prep.mead output folder "
                                f"(run: python -m data_prep.mead MEAD_ROOT --out {Path(path).parent})")
    return read_table(path, MANIFEST_COLUMNS, _clip, "data_prep.mead")


def _clip(fields: list[str]) -> MeadClip:
    s, v, e, lv, c, sp, p, n = fields
    return MeadClip(s, v, e, int(lv), c, sp, p, int(n))


def clip_output_dir(out_dir: str | os.PathLike, clip: MeadClip) -> Path:
    """``out_dir/clips/<subject>/<view>/<emotion>/level_<n>/<clip>``."""
    return Path(out_dir) / "clips" / clip.key
