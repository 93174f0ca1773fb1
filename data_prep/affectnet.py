"""AffectNet: parse the annotation CSVs with a drop report, crop faces, write an index.

Command line::

    python -m data_prep.affectnet ROOT --out DIR [--images IMAGES] [--scale 1.25] [--size 224]

``ROOT`` holds ``training.csv`` and ``validation.csv`` (either may be absent, not both);
images are looked up under ``--images``, by default ``ROOT/Manually_Annotated_Images``
when that folder exists, else ``ROOT``. The CSV layout is in the guide (section 2):
``subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks``
(136 ';'-separated numbers), ``expression``, ``valence``, ``arousal``.

Each data row falls into exactly one class, checked in this order:

1. *malformed* -- wrong number of fields, a number that does not parse, landmarks
   not 136 numbers, a non-positive box (reported with its file line number; the
   header is line 1);
2. *dropped by code* -- expression 8 (None), 9 (Uncertain), 10 (No-Face); any other
   code outside 0-10 counts as malformed;
3. *invalid V/A* -- valence or arousal equal to -2 (AffectNet's marker) or outside [-1, 1];
4. *missing image* -- the image file does not exist (listed), or *unreadable image*
   -- it exists but does not decode (listed);
5. *kept* -- cropped.

Outputs in DIR:

- ``crops/<split>/<subDirectory_filePath>`` -- the 224 px crops (JPEG quality 95),
  where ``split`` is ``train`` (from training.csv) or ``validation`` (from
  validation.csv; the guide uses it as the test set).
- ``index.csv`` -- one row per crop; columns :data:`INDEX_COLUMNS`: ``crop_path``
  (relative to DIR), ``expression`` (0-7), ``valence``, ``arousal``, ``split``,
  ``source_path`` (the CSV's subDirectory_filePath), ``source_line``. Read it with
  :func:`read_index`.
- ``report.json`` -- the drop counts and lists (:class:`AffectNetReport` per CSV).

Crops: the CSV's face box, centre kept, side = mean(width, height) * 1.25, warped to
224 px (same rule and conventions as :mod:`data_prep.crops`). Existing crops are
reused on a re-run.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from tempsmirk.atomic import atomic_write_bytes

from data_prep.crops import crop_affine, warp_crop
from data_prep.video import ImageReadError, read_image, write_image

__all__ = [
    "EXPRESSIONS",
    "CSV_COLUMNS",
    "INDEX_COLUMNS",
    "SPLITS",
    "AffectNetRow",
    "MalformedRow",
    "AffectNetReport",
    "AffectNetIndex",
    "parse_annotations",
    "check_images",
    "box_crop_affine",
    "prepare_affectnet",
    "write_index",
    "read_index",
    "main",
]

EXPRESSIONS = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")
DROPPED_CODES = {8: "None", 9: "Uncertain", 10: "No-Face"}
CSV_COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
               "facial_landmarks", "expression", "valence", "arousal")
INDEX_COLUMNS = ("crop_path", "expression", "valence", "arousal", "split", "source_path",
                 "source_line")
SPLITS = {"training.csv": "train", "validation.csv": "validation"}
DEFAULT_SCALE = 1.25
DEFAULT_SIZE = 224
INVALID_VA = -2.0


@dataclass(frozen=True)
class AffectNetRow:
    """One usable annotation.

    Attributes:
        line: line number in the CSV (header = 1).
        path: subDirectory_filePath (relative to the images folder).
        box: (x, y, width, height) face box, image pixels.
        landmarks: (68, 2) float64 image pixels.
        expression: 0-7 (:data:`EXPRESSIONS`).
        valence, arousal: in [-1, 1].
    """

    line: int
    path: str
    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    expression: int
    valence: float
    arousal: float


@dataclass(frozen=True)
class MalformedRow:
    line: int
    reason: str


@dataclass(frozen=True)
class AffectNetReport:
    """What happened to every data row of one CSV (each row counted once).

    ``total == kept + sum(dropped_code.values()) + invalid_va + len(malformed)
    + len(missing_images) + len(unreadable_images)``.
    """

    csv: str
    total: int
    kept: int
    dropped_code: dict[int, int] = field(default_factory=dict)  # code -> rows
    invalid_va: int = 0
    malformed: tuple[MalformedRow, ...] = ()
    missing_images: tuple[str, ...] = ()
    unreadable_images: tuple[str, ...] = ()

    def summary(self) -> str:
        codes = ", ".join(f"{DROPPED_CODES[c]} ({c}): {n}" for c, n in sorted(self.dropped_code.items()))
        lines = [
            f"{self.csv}: {self.total} rows, {self.kept} kept",
            f"  dropped by expression code: {codes or 'none'}",
            f"  invalid valence/arousal: {self.invalid_va}",
            f"  malformed rows: {len(self.malformed)}",
        ]
        lines += [f"    line {m.line}: {m.reason}" for m in self.malformed[:20]]
        if len(self.malformed) > 20:
            lines.append(f"    ... and {len(self.malformed) - 20} more (see report.json)")
        lines.append(f"  missing images: {len(self.missing_images)}")
        lines += [f"    {p}" for p in self.missing_images[:20]]
        if len(self.missing_images) > 20:
            lines.append(f"    ... and {len(self.missing_images) - 20} more (see report.json)")
        if self.unreadable_images:
            lines.append(f"  unreadable images: {len(self.unreadable_images)}")
            lines += [f"    {p}" for p in self.unreadable_images[:20]]
        return "\n".join(lines)


def _parse_row(fields: list[str]) -> AffectNetRow | str:
    """A row (without its line number) or the reason it is malformed."""
    if len(fields) != len(CSV_COLUMNS):
        return f"expected {len(CSV_COLUMNS)} fields, found {len(fields)}"
    path = fields[0].strip()
    if not path:
        return "empty subDirectory_filePath"
    try:
        box = tuple(float(v) for v in fields[1:5])
    except ValueError:
        return f"face box {fields[1:5]} is not four numbers"
    if not all(math.isfinite(v) for v in box) or box[2] <= 0 or box[3] <= 0:
        return f"face box {box} needs finite values and positive width and height"
    try:
        lmk = np.array([float(v) for v in fields[5].strip().strip(";").split(";")], dtype=np.float64)
    except ValueError:
        return "facial_landmarks holds a value that is not a number"
    if lmk.size != 136:
        return f"facial_landmarks has {lmk.size} numbers, expected 136"
    try:
        code_f = float(fields[6])
        valence, arousal = float(fields[7]), float(fields[8])
    except ValueError:
        return f"expression/valence/arousal {fields[6:9]} are not numbers"
    if not code_f.is_integer() or not 0 <= code_f <= 10:
        return f"expression code {fields[6].strip()!r} is not an integer in 0-10"
    return AffectNetRow(0, path, box, lmk.reshape(68, 2), int(code_f), valence, arousal)  # type: ignore[arg-type]


def _valid_va(v: float) -> bool:
    return math.isfinite(v) and v != INVALID_VA and -1.0 <= v <= 1.0


def parse_annotations(csv_path: str | Path) -> tuple[tuple[AffectNetRow, ...], AffectNetReport]:
    """Read one AffectNet CSV; keep codes 0-7 with valid valence/arousal.

    Images are not checked here (see :func:`check_images`); the report's image
    lists are empty.

    Raises:
        FileNotFoundError: the CSV does not exist.
        ValueError: the header is not AffectNet's (the message shows both).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"AffectNet annotation file {csv_path} does not exist; expected "
                                "training.csv / validation.csv from the AffectNet release")
    kept: list[AffectNetRow] = []
    dropped: dict[int, int] = {}
    malformed: list[MalformedRow] = []
    invalid_va = total = 0
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != CSV_COLUMNS:
            raise ValueError(f"{csv_path}: expected the header {','.join(CSV_COLUMNS)}; found "
                             f"{','.join(header) if header else 'an empty file'}. Pass AffectNet's "
                             "training.csv / validation.csv unchanged")
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue  # blank lines are not rows
            total += 1
            line = reader.line_num
            parsed = _parse_row(fields)
            if isinstance(parsed, str):
                malformed.append(MalformedRow(line, parsed))
            elif parsed.expression in DROPPED_CODES:
                dropped[parsed.expression] = dropped.get(parsed.expression, 0) + 1
            elif not (_valid_va(parsed.valence) and _valid_va(parsed.arousal)):
                invalid_va += 1
            else:
                kept.append(AffectNetRow(line, parsed.path, parsed.box, parsed.landmarks,
                                         parsed.expression, parsed.valence, parsed.arousal))
    report = AffectNetReport(csv_path.name, total, len(kept), dict(sorted(dropped.items())),
                             invalid_va, tuple(malformed))
    return tuple(kept), report


def check_images(rows: Sequence[AffectNetRow], images_dir: str | Path, report: AffectNetReport
                 ) -> tuple[tuple[AffectNetRow, ...], AffectNetReport]:
    """Drop rows whose image file is missing; the report lists them (kept count updated)."""
    images_dir = Path(images_dir)
    present = tuple(r for r in rows if (images_dir / r.path).is_file())
    missing = tuple(r.path for r in rows if not (images_dir / r.path).is_file())
    return present, AffectNetReport(report.csv, report.total, len(present), report.dropped_code,
                                    report.invalid_va, report.malformed,
                                    report.missing_images + missing, report.unreadable_images)


def box_crop_affine(box: tuple[float, float, float, float], scale: float = DEFAULT_SCALE,
                    out_size: int = DEFAULT_SIZE) -> np.ndarray:
    """(2, 3) image-to-crop affine for an (x, y, w, h) box: centre kept, side mean(w, h) * scale."""
    x, y, w, h = box
    return crop_affine(np.array([x + w / 2.0, y + h / 2.0]), np.float64((w + h) / 2.0 * scale),
                       out_size)


@dataclass(frozen=True)
class AffectNetIndex:
    """The crops index (``index.csv``) as arrays.

    Attributes:
        crop_paths: N absolute crop paths.
        expression: (N,) int64 in 0-7.
        valence, arousal: (N,) float32 in [-1, 1].
        split: N split names (``train`` / ``validation``).
        source_paths: N original subDirectory_filePath values.
        source_lines: (N,) int64 CSV line numbers.
    """

    crop_paths: tuple[Path, ...]
    expression: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    split: tuple[str, ...]
    source_paths: tuple[str, ...]
    source_lines: np.ndarray

    def __len__(self) -> int:
        return len(self.crop_paths)

    def select(self, split: str) -> "AffectNetIndex":
        """The rows of one split."""
        keep = np.array([s == split for s in self.split], dtype=bool)
        idx = np.flatnonzero(keep)
        return AffectNetIndex(tuple(self.crop_paths[i] for i in idx), self.expression[keep],
                              self.valence[keep], self.arousal[keep],
                              tuple(self.split[i] for i in idx),
                              tuple(self.source_paths[i] for i in idx), self.source_lines[keep])


def write_index(path: str | Path, rows: Sequence[tuple[str, AffectNetRow, str]]) -> None:
    """Write ``index.csv`` atomically from (crop path relative to its folder, row, split)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    for crop, r, split in rows:
        writer.writerow([crop, r.expression, f"{r.valence:.6g}", f"{r.arousal:.6g}", split,
                         r.path, r.line])
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def read_index(path: str | Path) -> AffectNetIndex:
    """Read ``index.csv`` (or the folder holding it) written by :func:`prepare_affectnet`.

    Raises:
        ValueError: missing file, wrong columns or unparsable values (with line number).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "index.csv"
    if not path.is_file():
        raise ValueError(f"AffectNet index {path} does not exist; run "
                         "'python -m data_prep.affectnet ROOT --out DIR' first")
    crops, expr, val, aro, split, src, lines = [], [], [], [], [], [], []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = tuple(next(reader, ()))
        if header != INDEX_COLUMNS:
            raise ValueError(f"{path}: expected columns {','.join(INDEX_COLUMNS)}; found "
                             f"{','.join(header)}. Re-create it with data_prep.affectnet")
        for fields in reader:
            try:
                crop, e, v, a, s, source, line = fields
                expr.append(int(e))
                val.append(float(v))
                aro.append(float(a))
                lines.append(int(line))
            except ValueError as exc:
                raise ValueError(f"{path} line {reader.line_num}: {exc}; expected "
                                 f"{len(INDEX_COLUMNS)} fields ({','.join(INDEX_COLUMNS)})") from exc
            crops.append(path.parent / crop)
            split.append(s)
            src.append(source)
    return AffectNetIndex(tuple(crops), np.array(expr, np.int64), np.array(val, np.float32),
                          np.array(aro, np.float32), tuple(split), tuple(src),
                          np.array(lines, np.int64))


def prepare_affectnet(root: str | Path, out_dir: str | Path, images_dir: str | Path | None = None,
                      scale: float = DEFAULT_SCALE, out_size: int = DEFAULT_SIZE,
                      show_progress: bool = True) -> tuple[AffectNetIndex, tuple[AffectNetReport, ...]]:
    """Parse the CSVs under ``root``, crop kept faces into ``out_dir``, write the index and report.

    Returns:
        the written index, and one report per CSV found.
    Raises:
        FileNotFoundError: neither training.csv nor validation.csv is in ``root``.
    """
    root, out_dir = Path(root), Path(out_dir)
    if images_dir is None:
        default = root / "Manually_Annotated_Images"
        images_dir = default if default.is_dir() else root
    images_dir = Path(images_dir)
    csvs = [(root / name, split) for name, split in SPLITS.items() if (root / name).is_file()]
    if not csvs:
        raise FileNotFoundError(f"no training.csv or validation.csv in {root}; expected AffectNet's "
                                "annotation files there")
    entries: list[tuple[str, AffectNetRow, str]] = []
    reports = []
    for csv_path, split in csvs:
        rows, report = parse_annotations(csv_path)
        rows, report = check_images(rows, images_dir, report)
        unreadable: list[str] = []
        for r in tqdm(rows, desc=f"crops ({split})", unit="image", disable=not show_progress):
            rel = Path("crops", split, r.path).with_suffix(".jpg").as_posix()
            target = out_dir / rel
            if not target.exists():  # resume: crops already written are reused
                try:
                    image = read_image(images_dir / r.path)
                except ImageReadError:
                    unreadable.append(r.path)
                    continue
                write_image(target, warp_crop(image, box_crop_affine(r.box, scale, out_size), out_size))
            entries.append((rel, r, split))
        report = AffectNetReport(report.csv, report.total, report.kept - len(unreadable),
                                 report.dropped_code, report.invalid_va, report.malformed,
                                 report.missing_images, tuple(unreadable))
        reports.append(report)
    write_index(out_dir / "index.csv", entries)
    payload = [asdict(r) | {"dropped_code": {str(k): v for k, v in r.dropped_code.items()}}
               for r in reports]
    atomic_write_bytes(out_dir / "report.json", json.dumps(payload, indent=1).encode("utf-8"))
    return read_index(out_dir / "index.csv"), tuple(reports)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.affectnet",
        description="Crop AffectNet faces (codes 0-7 with valid valence/arousal) and write "
                    "DIR/index.csv plus a report of everything dropped.")
    parser.add_argument("root", type=Path, help="folder holding training.csv / validation.csv")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--images", type=Path, default=None,
                        help="images folder (default ROOT/Manually_Annotated_Images, else ROOT)")
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE)
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        index, reports = prepare_affectnet(args.root, args.out, args.images, args.scale, args.size,
                                           show_progress=not args.quiet)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for r in reports:
        print(r.summary())
    print(f"index: {len(index)} crops in {args.out / 'index.csv'}")
    # Missing/unreadable images or broken rows are data problems the user should see.
    bad = any(r.malformed or r.missing_images or r.unreadable_images for r in reports)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
