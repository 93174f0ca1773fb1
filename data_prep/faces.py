"""SMIRK's training corpora: MediaPipe over a dataset, then a manifest (README, "Training data").

Command line::

    python -m data_prep.faces mediapipe INPUT --out DIR [--overwrite] [--quiet]
    python -m data_prep.faces manifest KIND ROOT --out DIR [--mediapipe MP_DIR] [--fan FAN_DIR]
                                      [--identities FILE] [--split-json FILE] [--val-fraction 0.2]

**mediapipe** runs MediaPipe FaceMesh (478 points, :class:`tempsmirk.video.landmarks.FaceMesh`; images
in static mode, videos in tracking mode) over every image and video under INPUT and writes one
file per image or video at ``DIR/<path relative to INPUT>.npy``, the layout SMIRK's
``apply_mediapipe_to_dataset.py`` writes (details in :mod:`tempsmirk.data.landmark_files`: (478, 3)
per image, (0, 478, 3) where no face was found; (T, 478, 3) per video with NaN rows for frames
without a face). Outputs that exist are skipped, so an interrupted run resumes; each output is
written atomically. Unreadable files are reported one by one (exit code 1); the rest continue.

**manifest** scans a dataset in one of SMIRK's layouts (KIND, below), reads every landmark file
once, and writes ``DIR/corpus.json`` and ``DIR/manifest.csv`` (:mod:`tempsmirk.data.face_corpus`):
one row per media file with its subject, split, frame count, frames with a face and with FAN
points, and a status — ``ok`` or the reason it is left out. The training datasets read only these.
FAN files (``--fan``) are read in the layout SMIRK's ``apply_fan_to_dataset.py`` writes (users run
FAN themselves); without them the 68 points come from the MediaPipe mesh.

KIND and its layout under ROOT (landmark folders mirror it: ``--mediapipe`` defaults to ROOT,
where SMIRK keeps LRS3's files):

- ``ffhq``: images (SMIRK: FFHQ256's PNGs); each image its own subject; split ``train``;
- ``celeba``: images (``img_align_celeba``); items are identities from ``--identities``
  (CelebA's ``identity_CelebA.txt``: ``000001.jpg 2880`` per line), as SMIRK samples CelebA;
- ``bupt``: images under ``<race>/<identity>/``; the identity folder is the subject;
- ``lrs3``: videos under ``{trainval,test}/<speaker>/`` (SMIRK leaves ``pretrain`` out); ``test`` is
  the test split, the trainval speakers are split into train and val (``--val-fraction``, seeded);
- ``mead``: MEAD's front view, either MEAD's own layout ``<subject>/video/front/<emotion>/level_<n>/``
  or SMIRK's flat folder of ``<subject>_*.mp4``; subjects split as SMIRK does
  (:data:`data_prep.mead.SMIRK_MEAD_SPLIT`, or ``--split-json``);
- ``mead_sides``: MEAD's views ``left_30``, ``left_60``, ``right_30``, ``right_60`` in MEAD's layout,
  or SMIRK's ``videos_{left,right}_{30,60}/`` folders (files named ``*test*`` skipped, as SMIRK does).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from tqdm.auto import tqdm

from data_prep.mead import SMIRK_MEAD_SPLIT, SubjectSplit, build_manifest, count_frames
from data_prep.runs import Outcome, summary
from tempsmirk.cli_help import ExamplesHelpFormatter
from tempsmirk.data.face_corpus import CORPUS_KINDS, CorpusInfo, CorpusRow, write_corpus
from tempsmirk.data.landmark_files import (
    FAN_IMAGE_SUFFIX,
    FAN_VIDEO_SUFFIX,
    MEDIAPIPE_SUFFIX,
    LandmarkFileError,
    landmark_path,
    read_fan_image,
    read_fan_video,
    read_mediapipe_image,
    read_mediapipe_video,
    write_mediapipe_image,
    write_mediapipe_video,
)
from tempsmirk.video.io import ImageReadError, VideoDecodeError, is_image, is_video, read_image
from tempsmirk.video.landmarks import FaceMesh, extract_video

__all__ = ["MediaFile", "media_files", "run_mediapipe", "scan_corpus", "check_landmarks",
           "read_identities", "main", "MEAD_SIDE_VIEWS"]

MEAD_SIDE_VIEWS = ("left_30", "left_60", "right_30", "right_60")
_FLAT_SIDE_FOLDERS = ("videos_left_30", "videos_left_60", "videos_right_30", "videos_right_60")


# ----------------------------------------------------------------------------- mediapipe


def media_files(root: str | Path) -> tuple[Path, ...]:
    """Images and videos under ``root`` (recursively, hidden files and folders left out), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; expected a dataset folder of images or videos")
    out = [p for p in root.rglob("*") if p.is_file() and (is_image(p) or is_video(p))
           and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return tuple(sorted(out))


def run_mediapipe(input_root: str | Path, out_root: str | Path, overwrite: bool = False,
                  show_progress: bool = True) -> tuple[Outcome[str], ...]:
    """MediaPipe's 478 points for every image and video under ``input_root`` (module docstring).

    Never raises for a bad file: it becomes a failed :class:`~data_prep.runs.Outcome` and the rest go on.
    """
    input_root, out_root = Path(input_root), Path(out_root)
    files = media_files(input_root)
    if not files:
        raise ValueError(f"{input_root} holds no images or videos; nothing to do")
    outcomes: list[Outcome[str]] = []
    todo = []
    for f in files:
        rel = f.relative_to(input_root).as_posix()
        out = landmark_path(out_root, rel, MEDIAPIPE_SUFFIX)
        if out.exists() and not overwrite:
            outcomes.append(Outcome(rel, "skipped"))
        else:
            todo.append((f, rel, out))
    mesh: Optional[FaceMesh] = None
    bar = tqdm(todo, desc="MediaPipe", unit="file", disable=not show_progress, dynamic_ncols=True)
    try:
        for f, rel, out in bar:
            if is_image(f):
                try:
                    image = read_image(f)
                except ImageReadError as exc:
                    outcomes.append(Outcome(rel, "failed", str(exc)))
                    continue
                mesh = mesh or FaceMesh(tracking=False)
                pts = mesh(image)
                if pts is not None:
                    pts = pts.copy()
                    pts[:, 2] /= image.shape[1]  # SMIRK's files keep MediaPipe's z unscaled
                write_mediapipe_image(out, pts)
                outcomes.append(Outcome(rel, "done", "" if pts is not None else "no face", 1,
                                                int(pts is not None)))
            else:
                try:
                    lm = extract_video(f, show_progress=False)
                except VideoDecodeError as exc:
                    outcomes.append(Outcome(rel, "failed", str(exc)))
                    continue
                pts = lm.landmarks.copy()
                pts[:, :, 2] /= np.maximum(lm.sizes[:, :1], 1)
                write_mediapipe_video(out, pts)
                found = int(lm.found.sum())
                outcomes.append(Outcome(rel, "done", "" if found else "no face in any frame",
                                                lm.num_frames, found))
    finally:
        bar.close()
        if mesh is not None:
            mesh.close()
    return tuple(sorted(outcomes, key=lambda o: o.item))


def _mediapipe_report(outcomes: Sequence[Outcome[str]]) -> str:
    return "\n".join(summary("MediaPipe", outcomes, processed="images/frames"))


# ----------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class MediaFile:
    """A file of a corpus before its landmarks are checked."""

    path: str  # relative to the root, POSIX
    subject: str
    split: str
    frames: int  # 1 for an image; -1 for a video that could not be read


def read_identities(path: str | Path) -> dict[str, str]:
    """CelebA's ``identity_CelebA.txt``: file name -> identity."""
    out = {}
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FileNotFoundError(f"identity file {path}: {exc}") from None
    for i, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise ValueError(f"{path} line {i}: expected '<file> <identity>' (CelebA's identity_CelebA.txt); "
                             f"found {line!r}")
        out[parts[0]] = parts[1]
    return out


def _lrs3_split(speakers: Sequence[str], val_fraction: float) -> set[str]:
    """The validation speakers: a seeded 20 % of the trainval speakers (SMIRK: sklearn's
    ``train_test_split(test_size=0.2, random_state=42)`` over ``os.listdir`` order)."""
    ordered = sorted(speakers)
    perm = np.random.RandomState(42).permutation(len(ordered))
    return {ordered[i] for i in perm[:int(round(val_fraction * len(ordered)))]}


def scan_corpus(kind: str, root: str | Path, identities: Optional[dict[str, str]] = None,
                split: SubjectSplit = SMIRK_MEAD_SPLIT, val_fraction: float = 0.2,
                show_progress: bool = True) -> tuple[tuple[MediaFile, ...], tuple[str, ...]]:
    """The media files of a corpus in KIND's layout (module docstring), and the files under ROOT that
    do not fit it (reported, not used)."""
    if kind not in CORPUS_KINDS:
        raise ValueError(f"unknown corpus kind {kind!r}; expected one of {sorted(CORPUS_KINDS)}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; expected the {kind} dataset folder")
    media = CORPUS_KINDS[kind].media
    if kind in ("mead", "mead_sides") and any((p / "video").is_dir() for p in root.iterdir() if p.is_dir()):
        views = ("front",) if kind == "mead" else MEAD_SIDE_VIEWS
        m = build_manifest(root, split, views, show_progress=show_progress)
        return (tuple(MediaFile(c.path, c.subject, c.split, c.frames) for c in m.clips), m.unexpected)
    files = media_files(root)
    wanted = [f for f in files if (is_image(f) if media == "images" else is_video(f))]
    unexpected = [f.relative_to(root).as_posix() for f in files if (is_image(f) if media == "videos" else is_video(f))]
    out: list[MediaFile] = []
    val_speakers: set[str] = set()
    if kind == "lrs3":
        speakers = {f.relative_to(root).parts[1] for f in wanted
                    if len(f.relative_to(root).parts) == 3 and f.relative_to(root).parts[0] == "trainval"}
        val_speakers = _lrs3_split(sorted(speakers), val_fraction)
    for f in tqdm(wanted, desc=f"{kind} files", unit="file", disable=not show_progress, dynamic_ncols=True):
        rel = f.relative_to(root)
        relp = rel.as_posix()
        if kind == "ffhq":
            out.append(MediaFile(relp, rel.stem, "train", 1))
        elif kind == "celeba":
            subject = (identities or {}).get(rel.name)
            if identities is not None and subject is None:
                unexpected.append(f"{relp} (not in the identity file)")
                continue
            out.append(MediaFile(relp, subject or rel.stem, "train", 1))
        elif kind == "bupt":
            out.append(MediaFile(relp, rel.parent.name or rel.stem, "train", 1))
        elif kind == "lrs3":
            if len(rel.parts) != 3 or rel.parts[0] not in ("trainval", "test"):
                unexpected.append(f"{relp} (SMIRK reads trainval/<speaker>/<clip> and test/<speaker>/<clip>)")
                continue
            speaker = rel.parts[1]
            sp = "test" if rel.parts[0] == "test" else ("val" if speaker in val_speakers else "train")
            out.append(MediaFile(relp, speaker, sp, count_frames(f)))
        else:  # SMIRK's flat MEAD folders
            if kind == "mead_sides" and (len(rel.parts) != 2 or rel.parts[0] not in _FLAT_SIDE_FOLDERS
                                         or "test" in rel.name):
                unexpected.append(f"{relp} (expected {'|'.join(_FLAT_SIDE_FOLDERS)}/<subject>_*.mp4)")
                continue
            subject = rel.name.split("_")[0]
            out.append(MediaFile(relp, subject, split.split_of(subject), count_frames(f)))
    return tuple(out), tuple(unexpected)


def check_landmarks(files: Sequence[MediaFile], media: str, mediapipe_root: Path, fan_root: Optional[Path],
                    show_progress: bool = True) -> tuple[tuple[CorpusRow, ...], tuple[str, ...]]:
    """Read each file's landmark files once: the manifest rows, and the FAN problems found (an
    unreadable or misaligned FAN file leaves the item usable with MediaPipe's 68 points)."""
    rows, fan_problems = [], []
    for f in tqdm(files, desc="landmark files", unit="file", disable=not show_progress, dynamic_ncols=True):
        status, faces, fan_frames = "ok", 0, -1
        mp_path = landmark_path(mediapipe_root, f.path, MEDIAPIPE_SUFFIX)
        try:
            if f.frames < 0:
                raise LandmarkFileError("the video could not be read")
            if not mp_path.exists():
                raise LandmarkFileError(f"no MediaPipe file {mp_path} (run: python -m data_prep.faces "
                                        f"mediapipe; it reports files it could not read)")
            if media == "images":
                faces = int(read_mediapipe_image(mp_path) is not None)
            else:
                mp = read_mediapipe_video(mp_path, frames=f.frames)
                faces = int(np.isfinite(mp[:, :, :2]).all(axis=(1, 2)).sum())
            if faces == 0:
                raise LandmarkFileError("MediaPipe found no face")
        except LandmarkFileError as exc:
            status = str(exc)
        if fan_root is not None:
            fan_path = landmark_path(fan_root, f.path, FAN_IMAGE_SUFFIX if media == "images" else FAN_VIDEO_SUFFIX)
            if fan_path.exists():
                try:
                    if media == "images":
                        fan_frames = int(read_fan_image(fan_path) is not None)
                    else:
                        fan = read_fan_video(fan_path, frames=f.frames if f.frames >= 0 else None)
                        fan_frames = int(np.isfinite(fan).all(axis=(1, 2)).sum())
                except LandmarkFileError as exc:
                    fan_problems.append(str(exc))
        rows.append(CorpusRow(f.path, f.subject, f.split, max(f.frames, 0), faces, fan_frames, status))
    return tuple(rows), tuple(fan_problems)


def _manifest_report(kind: str, rows: Sequence[CorpusRow], unexpected: Sequence[str],
                     fan_problems: Sequence[str], has_fan: bool, limit: int = 20) -> str:
    ok = [r for r in rows if r.ok]
    splits = sorted({r.split for r in rows})
    lines = [f"{kind}: {len(rows)} files, {len(ok)} usable ("
             + ", ".join(f"{sum(1 for r in ok if r.split == s)} {s}" for s in splits) + ")"]
    if has_fan:
        lines.append(f"  FAN points for {sum(1 for r in ok if r.fan_frames > 0)} of {len(ok)} usable files; "
                     f"the others use MediaPipe's 68")
    else:
        lines.append("  no FAN folder: every file uses MediaPipe's 68 points")
    left = [r for r in rows if not r.ok]
    if left:
        lines.append(f"  {len(left)} file(s) left out (status column of manifest.csv):")
        lines += [f"    {r.path}: {r.status}" for r in left[:limit]]
        if len(left) > limit:
            lines.append(f"    ... and {len(left) - limit} more")
    if fan_problems:
        lines.append(f"  {len(fan_problems)} FAN file(s) unusable (their items use MediaPipe's 68):")
        lines += [f"    {p}" for p in fan_problems[:limit]]
    if unexpected:
        lines.append(f"  {len(unexpected)} file(s) outside the {kind} layout, ignored:")
        lines += [f"    {u}" for u in unexpected[:limit]]
    return "\n".join(lines)


#: The ends of ``--help``: the whole command, ``mediapipe`` and ``manifest``.
MEDIAPIPE_EXAMPLES = """\
examples:
  # one .npy per image (SMIRK's layout) under --out; a re-run skips finished files
  python -m data_prep.faces mediapipe /data/FFHQ256/images --out /data/FFHQ256/mediapipe
  # LRS3: the landmark files beside the videos, as SMIRK keeps them
  python -m data_prep.faces mediapipe /data/LRS3 --out /data/LRS3"""
MANIFEST_EXAMPLES = """\
examples:
  # FFHQ with MediaPipe's and FAN's landmarks
  python -m data_prep.faces manifest ffhq /data/FFHQ256/images \\
      --mediapipe /data/FFHQ256/mediapipe --fan /data/FFHQ256/fan_landmarks \\
      --out corpora/ffhq
  # CelebA, one item per identity
  python -m data_prep.faces manifest celeba /data/CelebA/img_align_celeba \\
      --identities /data/CelebA/identity_CelebA.txt --out corpora/celeba"""
EXAMPLES = """\
examples (each command's --help has more):
  python -m data_prep.faces mediapipe /data/FFHQ256/images --out /data/FFHQ256/mediapipe
  python -m data_prep.faces manifest ffhq /data/FFHQ256/images \\
      --mediapipe /data/FFHQ256/mediapipe --out corpora/ffhq"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of :func:`main` (commands ``mediapipe`` and ``manifest``)."""
    fmt = ExamplesHelpFormatter
    parser = argparse.ArgumentParser(prog="python -m data_prep.faces",
                                     description="SMIRK's training corpora: MediaPipe landmarks, then a manifest.",
                                     epilog=EXAMPLES, formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", required=True)
    mp = sub.add_parser("mediapipe", help="MediaPipe's 478 points for every image and video under INPUT",
                        description="MediaPipe's 478 points for every image and video under INPUT.",
                        epilog=MEDIAPIPE_EXAMPLES, formatter_class=fmt)
    mp.add_argument("input", type=Path)
    mp.add_argument("--out", type=Path, required=True, help="landmark folder (mirrors INPUT)")
    mp.add_argument("--overwrite", action="store_true", help="redo files whose output exists")
    mp.add_argument("--quiet", action="store_true")
    mf = sub.add_parser("manifest", help="scan a corpus and write DIR/corpus.json + DIR/manifest.csv",
                        description="Scan a corpus and write DIR/corpus.json + DIR/manifest.csv "
                                    "(every file, with why it is left out if it is).",
                        epilog=MANIFEST_EXAMPLES, formatter_class=fmt)
    mf.add_argument("kind", choices=sorted(CORPUS_KINDS))
    mf.add_argument("root", type=Path, help="the dataset folder")
    mf.add_argument("--out", type=Path, required=True, help="where corpus.json and manifest.csv go")
    mf.add_argument("--mediapipe", type=Path, default=None, help="MediaPipe landmark folder (default: ROOT)")
    mf.add_argument("--fan", type=Path, default=None, help="FAN landmark folder (SMIRK's layout)")
    mf.add_argument("--identities", type=Path, default=None, help="celeba: identity_CelebA.txt")
    mf.add_argument("--split-json", type=Path, default=None,
                    help='mead, mead_sides: {"train": [...], "val": [...], "test": [...]} (default SMIRK\'s)')
    mf.add_argument("--val-fraction", type=float, default=0.2, help="lrs3: share of trainval speakers for val")
    mf.add_argument("--quiet", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    show = not args.quiet
    try:
        if args.command == "mediapipe":
            outcomes = run_mediapipe(args.input, args.out, args.overwrite, show)
            print(_mediapipe_report(outcomes))
            return 1 if any(o.status == "failed" for o in outcomes) else 0
        kind = CORPUS_KINDS[args.kind]
        if args.kind == "celeba" and args.identities is None:
            print("warning: celeba without --identities: each image is its own subject (SMIRK draws one "
                  "image per identity)", file=sys.stderr)
        identities = read_identities(args.identities) if args.identities else None
        split = SubjectSplit.from_json(args.split_json) if args.split_json else SMIRK_MEAD_SPLIT
        files, unexpected = scan_corpus(args.kind, args.root, identities, split, args.val_fraction, show)
        if not files:
            raise ValueError(f"{args.root} holds no {kind.media} in the {args.kind} layout (module docstring)")
        mp_root = (args.mediapipe or args.root).resolve()
        fan_root = args.fan.resolve() if args.fan else None
        rows, fan_problems = check_landmarks(files, kind.media, mp_root, fan_root, show)
        info = CorpusInfo(kind=args.kind, media=kind.media, by_subject=kind.by_subject and identities is not None,
                          root=str(args.root.resolve()), mediapipe_root=str(mp_root),
                          fan_root=None if fan_root is None else str(fan_root))
        write_corpus(args.out, info, rows)
        print(_manifest_report(args.kind, rows, unexpected, fan_problems, fan_root is not None))
        print(f"wrote {args.out / 'manifest.csv'} and {args.out / 'corpus.json'}")
        return 0 if all(r.ok for r in rows) and not fan_problems else 1
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = " ".join(["python -m data_prep.faces", *(argv if argv is not None else sys.argv[1:])])
        print(f"\ninterrupted; every file written so far is complete and is kept. Resume with:\n  {again}",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
