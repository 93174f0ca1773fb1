"""AffectNet: parse the annotation CSVs with a drop report, crop faces, write an index (chapter 6).

:func:`prepare_affectnet` does it all (``python -m data_prep.affectnet ROOT --out DIR`` runs it
from the command line, and :func:`tempsmirk.evaluation.pipeline.prepare_index` on first use);
:func:`read_index` reads the result. ``ROOT`` holds ``training.csv`` and ``validation.csv``
(either may be absent, not both); images are looked up under ``images_dir`` (``--images``), by
default ``ROOT/Manually_Annotated_Images`` when that folder exists, else ``ROOT``. The CSV layout
is in the guide (section 2):
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

**Crop rules** (:data:`CROP_RULES`; the encoder should see faces framed as in its training):

- ``"smirk"`` (default) -- SMIRK's: MediaPipe FaceMesh on the whole image (static mode,
  :func:`tempsmirk.video.landmarks.detect_frames`, as ``reconstruct`` runs it), the 478 points'
  bounding box, side = mean(width, height) x 1.4 (:func:`tempsmirk.video.crops.boxes_from_landmarks`,
  the box ``reconstruct`` crops video frames with). Where MediaPipe finds no face, the same box
  rule is applied to the CSV's 68 landmarks instead; such images are counted and listed in the
  report (``crop_fallback``);
- ``"emoca"`` -- EMOCA's (``FaceDataModuleBase`` with ``bbox2point(type="kpt68")`` and
  ``bbpoint_warp``): the 68 landmarks' bounding box, side = int(mean(width, height) x 1.1 x
  1.25) (truncated to whole pixels, as EMOCA does), its corners mapped onto the centres of the
  crop's corner pixels (:func:`emoca_crop_affine`). EMOCA runs FAN inside the CSV box for its
  68 points; we use the 68 points the CSV ships (the README lists this difference). A landmark
  set with no extent falls back to the CSV box (counted);
- ``"csv_box"`` -- the CSV's face box, centre kept, side = mean(width, height) x 1.25
  (:func:`box_crop_affine`).

``scale`` (``--scale``) replaces the rule's factor (1.4, 1.25 -- EMOCA's 1.1 stays -- and 1.25). All crops
are warped bilinearly to ``out_size`` (``--size``) pixels with the conventions of :mod:`tempsmirk.video.crops`.

Outputs in DIR:

- ``crops/<split>/<subDirectory_filePath>.jpg`` -- the crops (JPEG quality 95), where
  ``split`` is ``train`` (from training.csv) or ``validation`` (from validation.csv; the
  guide uses it as the test set). ``.jpg`` is appended to the whole source name, so
  ``a.png`` and ``a.jpg`` get different crops;
- ``index.csv`` -- one row per crop; columns :data:`INDEX_COLUMNS`: ``crop_path``
  (relative to DIR), ``expression`` (0-7), ``valence``, ``arousal``, ``split``,
  ``source_path`` (the CSV's subDirectory_filePath), ``source_line``. Read it with
  :func:`read_index`. Written last: its presence means the folder is complete;
- ``crop_settings.json`` -- rule, scale and size; a folder made with other settings is
  refused rather than mixed;
- ``crop_log.csv`` -- one line per crop written (crop path, how its box was found), appended
  as crops are written, so an interrupted run resumes where it stopped and still reports
  every fallback;
- ``report.json`` -- the drop counts and lists (:class:`AffectNetReport` per CSV).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from tempsmirk.atomic import atomic_write_bytes
from tempsmirk.data.tables import read_table, write_table
from tempsmirk.video.crops import DEFAULT_SCALE as SMIRK_SCALE
from tempsmirk.video.crops import DEFAULT_SIZE, boxes_from_landmarks, crop_affine, warp_crop
from tempsmirk.video.io import ImageReadError, read_image, write_image

__all__ = [
    "EXPRESSIONS",
    "CSV_COLUMNS",
    "INDEX_COLUMNS",
    "SPLITS",
    "AffectNetRow",
    "MalformedRow",
    "AffectNetReport",
    "AffectNetIndex",
    "CropSettings",
    "read_crop_settings",
    "parse_annotations",
    "check_images",
    "CROP_RULES",
    "RULE_SCALES",
    "box_crop_affine",
    "emoca_crop_affine",
    "landmark_box_affine",
    "crop_affines",
    "crop_path",
    "prepare_affectnet",
    "write_index",
    "read_index",
]

EXPRESSIONS = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")
DROPPED_CODES = {8: "None", 9: "Uncertain", 10: "No-Face"}
CSV_COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
               "facial_landmarks", "expression", "valence", "arousal")
INDEX_COLUMNS = ("crop_path", "expression", "valence", "arousal", "split", "source_path",
                 "source_line")
SPLITS = {"training.csv": "train", "validation.csv": "validation"}
INVALID_VA = -2.0
#: How a face is framed (module docstring). The default is the rule SMIRK's encoders were trained with.
CROP_RULES = ("smirk", "emoca", "csv_box")
DEFAULT_RULE = "smirk"
#: Each rule's box scale: SMIRK's 1.4 (tempsmirk.video.crops), EMOCA's ``scale`` 1.25 (on top of its
#: fixed 1.1 for 68-landmark boxes), and 1.25 for the CSV box.
RULE_SCALES = {"smirk": SMIRK_SCALE, "emoca": 1.25, "csv_box": 1.25}
EMOCA_KPT68_FACTOR = 1.1  # EMOCA's bbox2point(type="kpt68"): landmark boxes are enlarged by 1.1 first
CROP_SETTINGS = "crop_settings.json"
CROP_LOG = "crop_log.csv"
_CHUNK = 128  # images read, detected and cropped together (bounded memory)


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
    crop_methods: dict[str, int] = field(default_factory=dict)  # how boxes were found -> crops
    crop_fallback: tuple[str, ...] = ()  # images whose rule fell back (module docstring)

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
        if self.crop_methods:
            methods = ", ".join(f"{m}: {n}" for m, n in sorted(self.crop_methods.items()))
            lines.append(f"  crop boxes from {methods}")
        if self.crop_fallback:
            lines.append(f"  crops by the fallback box: {len(self.crop_fallback)}")
            lines += [f"    {p}" for p in self.crop_fallback[:20]]
            if len(self.crop_fallback) > 20:
                lines.append(f"    ... and {len(self.crop_fallback) - 20} more (see report.json)")
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
    return present, replace(report, kept=len(present), missing_images=report.missing_images + missing)


def box_crop_affine(box: tuple[float, float, float, float], scale: float = RULE_SCALES["csv_box"],
                    out_size: int = DEFAULT_SIZE) -> np.ndarray:
    """(2, 3) image-to-crop affine for an (x, y, w, h) box: centre kept, side mean(w, h) * scale."""
    x, y, w, h = box
    return crop_affine(np.array([x + w / 2.0, y + h / 2.0]), np.float64((w + h) / 2.0 * scale),
                       out_size)


def emoca_crop_affine(landmarks: np.ndarray, scale: float = RULE_SCALES["emoca"],
                      out_size: int = DEFAULT_SIZE) -> np.ndarray:
    """EMOCA's crop for 68 landmarks: (68, 2) image pixels -> (2, 3) image-to-crop affine.

    Box = the landmarks' min/max; centre = its centre; side s = int(mean(width, height) x 1.1 x
    ``scale``) (EMOCA truncates to whole pixels); the square's corners c +- s/2 go to the centres
    of the crop's corner pixels 0 and N - 1 (EMOCA's similarity transform), i.e.
    u = (N - 1) / s * (x - c_x) + (N - 1) / 2.

    Raises:
        ValueError: the landmarks span less than a pixel (no box to crop).
    """
    xy = np.asarray(landmarks, dtype=np.float64)[:, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    side = int((hi - lo).sum() / 2.0 * EMOCA_KPT68_FACTOR * scale)
    if side < 1:
        raise ValueError(f"68 landmarks spanning {hi - lo} px give no crop box; expected a face's "
                         f"landmarks")
    k = (out_size - 1) / side
    center = (lo + hi) / 2.0
    a = np.zeros((2, 3))
    a[0, 0] = a[1, 1] = k
    a[:, 2] = (out_size - 1) / 2.0 - k * center
    return a


def landmark_box_affine(landmarks: np.ndarray, scale: float = SMIRK_SCALE,
                        out_size: int = DEFAULT_SIZE) -> np.ndarray:
    """SMIRK's box (:func:`tempsmirk.video.crops.boxes_from_landmarks`) around any landmark set:
    (L, 2+) image pixels -> (2, 3) image-to-crop affine."""
    boxes = boxes_from_landmarks(np.asarray(landmarks)[None], np.array([True]), scale)
    return crop_affine(boxes.center[0], boxes.size[0], out_size)


def crop_affines(rule: str, rows: Sequence[AffectNetRow], images: Sequence[np.ndarray],
                 scale: float, out_size: int = DEFAULT_SIZE) -> tuple[np.ndarray, tuple[str, ...]]:
    """The crop of each image under a rule (module docstring).

    Args:
        rule: one of :data:`CROP_RULES`.
        rows, images: B annotations and their (H, W, 3) uint8 RGB images.
        scale: the rule's box scale (:data:`RULE_SCALES`).
    Returns:
        (B, 2, 3) image-to-crop affines, and for each image how its box was found:
        ``"mediapipe"``, ``"landmarks68"`` or ``"csv_box"``.
    """
    if rule not in CROP_RULES:
        raise ValueError(f"crop rule must be one of {CROP_RULES}; got {rule!r}")
    affines = np.zeros((len(rows), 2, 3))
    methods: list[str] = []
    if rule == "smirk" and len(rows):
        from tempsmirk.video.landmarks import detect_frames

        landmarks, found, _ = detect_frames(images, tracking=False)
        boxes = boxes_from_landmarks(landmarks, found, scale)
        for i, r in enumerate(rows):
            if found[i]:
                affines[i] = crop_affine(boxes.center[i], boxes.size[i], out_size)
                methods.append("mediapipe")
            else:  # no MediaPipe face: SMIRK's box on the annotation's 68 points
                affines[i] = landmark_box_affine(r.landmarks, scale, out_size)
                methods.append("landmarks68")
        return affines, tuple(methods)
    for i, r in enumerate(rows):
        if rule == "emoca":
            try:
                affines[i] = emoca_crop_affine(r.landmarks, scale, out_size)
                methods.append("landmarks68")
                continue
            except ValueError:
                scale_box = RULE_SCALES["csv_box"]
        else:
            scale_box = scale
        affines[i] = box_crop_affine(r.box, scale_box, out_size)
        methods.append("csv_box")
    return affines, tuple(methods)


#: Per rule, the method that is the rule itself (anything else is a fallback).
_PRIMARY = {"smirk": "mediapipe", "emoca": "landmarks68", "csv_box": "csv_box"}


def crop_path(split: str, source: str) -> str:
    """A crop's path relative to the output folder: ``crops/<split>/<source>.jpg``.

    ``.jpg`` is appended to the whole source name (not swapped for its suffix), so two sources
    that differ only in extension never share a crop.
    """
    return Path("crops", split, source + ".jpg").as_posix()


@dataclass(frozen=True)
class CropSettings:
    """How a crops folder was made (``crop_settings.json``): rule (:data:`CROP_RULES`), box scale
    and crop side in pixels."""

    rule: str
    scale: float
    size: int

    def describe(self) -> str:
        """One line for tables and logs."""
        how = {"smirk": "MediaPipe box", "emoca": "68-landmark box x 1.1", "csv_box": "CSV face box"}
        return f"{self.rule}: {how.get(self.rule, self.rule)} x {self.scale:g}, {self.size} px"


def read_crop_settings(folder: str | Path) -> CropSettings | None:
    """The :class:`CropSettings` of a crops folder, or None when it has none (or an unreadable one)."""
    path = Path(folder) / CROP_SETTINGS
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return CropSettings(str(d["rule"]), float(d["scale"]), int(d["size"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
        crop: how the crops were made (None for a folder without ``crop_settings.json``).
    """

    crop_paths: tuple[Path, ...]
    expression: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    split: tuple[str, ...]
    source_paths: tuple[str, ...]
    source_lines: np.ndarray
    crop: CropSettings | None = None

    def __len__(self) -> int:
        return len(self.crop_paths)

    def subset(self, rows: Sequence[int] | np.ndarray) -> "AffectNetIndex":
        """The given rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        return AffectNetIndex(tuple(self.crop_paths[i] for i in rows), self.expression[rows],
                              self.valence[rows], self.arousal[rows], tuple(self.split[i] for i in rows),
                              tuple(self.source_paths[i] for i in rows), self.source_lines[rows], self.crop)

    def select(self, split: str) -> "AffectNetIndex":
        """The rows of one split."""
        return self.subset(np.flatnonzero(np.array([s == split for s in self.split], dtype=bool)))


def write_index(path: str | Path, rows: Sequence[tuple[str, AffectNetRow, str]]) -> None:
    """Write ``index.csv`` atomically from (crop path relative to its folder, row, split)."""
    write_table(path, INDEX_COLUMNS, ([crop, r.expression, f"{r.valence:.6g}", f"{r.arousal:.6g}", split,
                                       r.path, r.line] for crop, r, split in rows))


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
    rows = read_table(path, INDEX_COLUMNS, _index_row, "data_prep.affectnet")
    crop, expr, val, aro, split, src, line = zip(*rows) if rows else ((),) * 7
    return AffectNetIndex(tuple(path.parent / c for c in crop), np.array(expr, np.int64),
                          np.array(val, np.float32), np.array(aro, np.float32), tuple(split), tuple(src),
                          np.array(line, np.int64), read_crop_settings(path.parent))


def _index_row(fields: list[str]) -> tuple[str, int, float, float, str, str, int]:
    crop, e, v, a, s, source, line = fields
    return crop, int(e), float(v), float(a), s, source, int(line)


_METHODS = ("mediapipe", "landmarks68", "csv_box")


def _read_crop_log(path: Path) -> dict[str, str]:
    """crop path -> box method, from ``crop_log.csv`` (a torn last line is ignored)."""
    done: dict[str, str] = {}
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as fh:
            for fields in csv.reader(fh):
                if len(fields) == 2 and fields[1] in _METHODS:
                    done[fields[0]] = fields[1]
    return done


def _claim_folder(out_dir: Path, settings: CropSettings) -> None:
    """Record the settings in ``out_dir``, or refuse a folder made with other settings."""
    old = read_crop_settings(out_dir)
    if old is None and ((out_dir / CROP_LOG).exists() or (out_dir / "index.csv").exists()):
        raise ValueError(f"{out_dir} holds crops without {CROP_SETTINGS} (made by an older version), so "
                         f"their crop rule is unknown; give another output folder or delete that one")
    if old is not None and old != settings:
        raise ValueError(f"{out_dir} holds crops made with {old.describe()}; these settings are "
                         f"{settings.describe()}. Give another output folder (or delete that one)")
    if old is None:
        atomic_write_bytes(out_dir / CROP_SETTINGS, json.dumps(asdict(settings)).encode("utf-8"))


def prepare_affectnet(root: str | Path, out_dir: str | Path, images_dir: str | Path | None = None,
                      rule: str = DEFAULT_RULE, scale: float | None = None, out_size: int = DEFAULT_SIZE,
                      show_progress: bool = True) -> tuple[AffectNetIndex, tuple[AffectNetReport, ...]]:
    """Parse the CSVs under ``root``, crop kept faces into ``out_dir``, write the index and report.

    Args:
        rule: one of :data:`CROP_RULES` (module docstring); scale: its box scale (None: the
            rule's, :data:`RULE_SCALES`); out_size: crop side in pixels.
    Returns:
        the written index, and one report per CSV found.
    Raises:
        FileNotFoundError: neither training.csv nor validation.csv is in ``root``.
        ValueError: an unknown rule, or ``out_dir`` holds crops made with other settings.
    """
    if rule not in CROP_RULES:
        raise ValueError(f"crop rule must be one of {CROP_RULES}; got {rule!r}")
    settings = CropSettings(rule, float(scale if scale is not None else RULE_SCALES[rule]), int(out_size))
    if settings.scale <= 0 or settings.size < 1:
        raise ValueError(f"crop scale and size must be positive; got {settings.scale}, {settings.size}")
    root, out_dir = Path(root), Path(out_dir)
    if images_dir is None:
        default = root / "Manually_Annotated_Images"
        images_dir = default if default.is_dir() else root
    images_dir = Path(images_dir)
    csvs = [(root / name, split) for name, split in SPLITS.items() if (root / name).is_file()]
    if not csvs:
        raise FileNotFoundError(f"no training.csv or validation.csv in {root}; expected AffectNet's "
                                "annotation files there")
    out_dir.mkdir(parents=True, exist_ok=True)
    _claim_folder(out_dir, settings)
    done = _read_crop_log(out_dir / CROP_LOG)
    entries: list[tuple[str, AffectNetRow, str]] = []
    reports = []
    with open(out_dir / CROP_LOG, "a", newline="", encoding="utf-8") as log_fh:
        log = csv.writer(log_fh, lineterminator="\n")
        for csv_path, split in csvs:
            rows, report = parse_annotations(csv_path)
            rows, report = check_images(rows, images_dir, report)
            # Resume: a crop counts as done when its file exists and the log says how it was made.
            todo = [r for r in rows if not (crop_path(split, r.path) in done
                                            and (out_dir / crop_path(split, r.path)).is_file())]
            unreadable: list[str] = []
            bar = tqdm(total=len(rows), initial=len(rows) - len(todo), desc=f"crops ({split})",
                       unit="image", disable=not show_progress)
            for start in range(0, len(todo), _CHUNK):
                chunk, images = [], []
                for r in todo[start:start + _CHUNK]:
                    try:
                        images.append(read_image(images_dir / r.path))
                        chunk.append(r)
                    except ImageReadError:
                        unreadable.append(r.path)
                affines, methods = crop_affines(rule, chunk, images, settings.scale, out_size)
                for r, image, affine, method in zip(chunk, images, affines, methods):
                    rel = crop_path(split, r.path)
                    write_image(out_dir / rel, warp_crop(image, affine, out_size))
                    log.writerow((rel, method))
                    done[rel] = method
                log_fh.flush()
                bar.update(len(todo[start:start + _CHUNK]))
            bar.close()
            bad = set(unreadable)
            kept = [r for r in rows if r.path not in bad]
            entries += [(crop_path(split, r.path), r, split) for r in kept]
            methods_of = [done[crop_path(split, r.path)] for r in kept]
            counts = {m: methods_of.count(m) for m in _METHODS if m in methods_of}
            fallback = tuple(r.path for r, m in zip(kept, methods_of) if m != _PRIMARY[rule])
            reports.append(replace(report, kept=len(kept), unreadable_images=tuple(unreadable),
                                   crop_methods=counts, crop_fallback=fallback))
    write_index(out_dir / "index.csv", entries)
    payload = [asdict(r) | {"dropped_code": {str(k): v for k, v in r.dropped_code.items()},
                            "crop": asdict(settings)}
               for r in reports]
    atomic_write_bytes(out_dir / "report.json", json.dumps(payload, indent=1).encode("utf-8"))
    return read_index(out_dir / "index.csv"), tuple(reports)
