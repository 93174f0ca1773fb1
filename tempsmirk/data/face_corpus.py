"""A face corpus as data_prep describes it: ``corpus.json`` plus ``manifest.csv`` (README, "Training data").

``python -m data_prep.faces manifest KIND ROOT --out DIR`` scans a dataset once and writes, in DIR:

- ``corpus.json`` — :class:`CorpusInfo`: the kind (:data:`CORPUS_KINDS`), whether its files are
  images or videos, whether an item is a subject (CelebA: one image of the identity is drawn per
  visit), and the absolute dataset, MediaPipe and FAN roots;
- ``manifest.csv`` — one :class:`CorpusRow` per media file, with columns :data:`MANIFEST_COLUMNS`:
  ``path`` (relative to the dataset root), ``subject``, ``split``, ``frames`` (1 for an image),
  ``face_frames`` (frames with a MediaPipe face), ``fan_frames`` (frames with a FAN face; -1 = no
  usable FAN file) and ``status`` (``ok``, or why the file is left out — every file found is listed,
  none is dropped silently).

Datasets (:class:`~tempsmirk.data.faces.FaceSource`) read only these two files to know what
exists; the landmark files themselves are read per item (:mod:`tempsmirk.data.landmark_files`).
This module only reads and writes the description; the scan lives in :mod:`data_prep.faces`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence

from tempsmirk.atomic import atomic_write_bytes
from tempsmirk.data.tables import read_table, write_table

__all__ = ["CorpusKind", "CORPUS_KINDS", "CorpusInfo", "CorpusRow", "MANIFEST_COLUMNS", "CORPUS_FORMAT",
           "write_corpus", "read_corpus"]

CORPUS_FORMAT = "tempsmirk.face_corpus/1"
CORPUS_FILE = "corpus.json"
MANIFEST_FILE = "manifest.csv"
MANIFEST_COLUMNS = ("path", "subject", "split", "frames", "face_frames", "fan_frames", "status")


@dataclass(frozen=True)
class CorpusKind:
    """How SMIRK reads one dataset.

    media: ``images`` or ``videos``. by_subject: an item is a subject and each visit draws one of
    its files (SMIRK's CelebA); otherwise an item is a file (a video: each visit draws a frame).
    fan: SMIRK has FAN files for it (MEAD's side views have none: their FAN term is off).
    """

    media: Literal["images", "videos"]
    by_subject: bool
    fan: bool


#: The datasets of SMIRK's ``configs/config_train.yaml`` (BUPT: paths only, no dataset code there).
CORPUS_KINDS = {
    "ffhq": CorpusKind("images", by_subject=False, fan=True),
    "celeba": CorpusKind("images", by_subject=True, fan=True),
    "bupt": CorpusKind("images", by_subject=False, fan=True),
    "lrs3": CorpusKind("videos", by_subject=False, fan=True),
    "mead": CorpusKind("videos", by_subject=False, fan=True),
    "mead_sides": CorpusKind("videos", by_subject=False, fan=False),
}


@dataclass(frozen=True)
class CorpusInfo:
    """``corpus.json``: what the manifest describes and where the files are (absolute paths;
    ``fan_root`` None = no FAN files)."""

    kind: str
    media: Literal["images", "videos"]
    by_subject: bool
    root: str
    mediapipe_root: str
    fan_root: Optional[str]
    format: str = CORPUS_FORMAT


@dataclass(frozen=True)
class CorpusRow:
    """One media file of the manifest (columns :data:`MANIFEST_COLUMNS`)."""

    path: str
    subject: str
    split: str
    frames: int
    face_frames: int
    fan_frames: int
    status: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def write_corpus(out_dir: str | os.PathLike, info: CorpusInfo, rows: Sequence[CorpusRow]) -> Path:
    """Write ``corpus.json`` and ``manifest.csv`` into ``out_dir``, each atomically."""
    out = Path(out_dir)
    write_table(out / MANIFEST_FILE, MANIFEST_COLUMNS,
                ([r.path, r.subject, r.split, r.frames, r.face_frames, r.fan_frames, r.status] for r in rows))
    atomic_write_bytes(out / CORPUS_FILE, (json.dumps(asdict(info), indent=2) + "\n").encode("utf-8"))
    return out


def read_corpus(corpus_dir: str | os.PathLike) -> tuple[CorpusInfo, tuple[CorpusRow, ...]]:
    """Read what :func:`write_corpus` wrote. Raises FileNotFoundError / ValueError saying what to run."""
    d = Path(corpus_dir)
    info_path, manifest = d / CORPUS_FILE, d / MANIFEST_FILE
    if not info_path.is_file() or not manifest.is_file():
        raise FileNotFoundError(f"{d} holds no {CORPUS_FILE} + {MANIFEST_FILE}; expected the folder "
                                f"written by: python -m data_prep.faces manifest KIND ROOT --out {d}")
    try:
        raw = json.loads(info_path.read_text(encoding="utf-8"))
        info = CorpusInfo(**raw)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{info_path}: not a corpus description ({exc}); re-create it with "
                         f"data_prep.faces manifest") from None
    if info.format != CORPUS_FORMAT or info.kind not in CORPUS_KINDS:
        raise ValueError(f"{info_path}: format {info.format!r}, kind {info.kind!r}; expected format "
                         f"{CORPUS_FORMAT!r} and a kind in {sorted(CORPUS_KINDS)}. Re-create it")
    return info, read_table(manifest, MANIFEST_COLUMNS, _corpus_row, "data_prep.faces manifest")


def _corpus_row(fields: list[str]) -> CorpusRow:
    p, s, sp, n, nf, nfan, st = fields
    return CorpusRow(p, s, sp, int(n), int(nf), int(nfan), st)
