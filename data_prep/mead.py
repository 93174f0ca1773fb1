"""MEAD: clip manifest with subject splits, then landmarks and crops over it.

Command line::

    python -m data_prep.mead ROOT --out DIR [--views front] [--split-json FILE] [--manifest-only]

MEAD's video layout is ``<subject>/video/<view>/<emotion>/level_<n>/<clip>.mp4``,
e.g. ``M003/video/front/angry/level_1/001.mp4``. :func:`build_manifest` walks it and
lists each clip (:class:`~tempsmirk.data.mead.MeadClip`) with its frame count; files that do
not fit the layout are returned separately so they can be reported, never silently ignored.
``DIR/manifest.csv`` and the per-clip folders are described in :mod:`tempsmirk.data.mead`.

**Splits** are by subject, so no identity appears in two splits.
:data:`SMIRK_MEAD_SPLIT` is the default: the subject lists SMIRK's released MEAD
dataset code uses (37 train, 5 val, 5 test subjects; "the split used in the paper,
randomly selected"). Our paper builds on SMIRK and states no split of its own, so
this is the closest reference split. Subjects in none of its lists get the split
``unassigned`` (and are counted in the summary). Pass a :class:`SubjectSplit` (or
``--split-json`` with ``{"train": [...], "val": [...], "test": [...]}``) to change it.

Per clip, :func:`prepare_mead` writes ``DIR/clips/<subject>/<view>/<emotion>/level_<n>/<clip>/``
with ``landmarks.npz`` (:mod:`tempsmirk.video.landmarks`) and ``crops.mp4`` + ``crops.npz``
(:mod:`tempsmirk.video.crops`). Finished outputs are skipped on a re-run; a clip that
cannot be decoded, or shows no face at all, is reported and the rest continue.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import av
from tqdm.auto import tqdm

from data_prep.runs import Outcome, summary
from tempsmirk.cli_help import ExamplesHelpFormatter
from tempsmirk.data.mead import MeadClip, clip_output_dir, write_manifest
from tempsmirk.video.crops import CROPS_FILE, DEFAULT_SCALE, DEFAULT_SIGMA_SECONDS, DEFAULT_SIZE, crop_video
from tempsmirk.video.io import VideoDecodeError, is_video
from tempsmirk.video.landmarks import LANDMARKS_FILE, extract_video, load_landmarks, save_landmarks

__all__ = [
    "SubjectSplit",
    "SMIRK_MEAD_SPLIT",
    "Manifest",
    "count_frames",
    "build_manifest",
    "prepare_mead",
    "main",
]

_LEVEL = re.compile(r"level_(\d+)$")


@dataclass(frozen=True)
class SubjectSplit:
    """Subject ids per split; a subject may appear in one list only."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for name in ("train", "val", "test"):
            for s in getattr(self, name):
                if s in seen:
                    raise ValueError(f"subject {s} is in both '{seen[s]}' and '{name}'; "
                                     "expected each subject in one split only")
                seen[s] = name

    def split_of(self, subject: str) -> str:
        """'train', 'val', 'test', or 'unassigned'."""
        for name in ("train", "val", "test"):
            if subject in getattr(self, name):
                return name
        return "unassigned"

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "SubjectSplit":
        """Read ``{"train": [...], "val": [...], "test": [...]}`` (missing keys = empty)."""
        try:
            data = json.loads(Path(path).read_text())
            extra = set(data) - {"train", "val", "test"}
            if extra:
                raise ValueError(f"unknown keys {sorted(extra)}")
            return cls(*(tuple(str(s) for s in data.get(k, ())) for k in ("train", "val", "test")))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"split file {path}: {exc}; expected JSON like "
                             '{"train": ["M003"], "val": ["M013"], "test": ["M005"]}') from exc


# Subject lists from SMIRK's MEAD dataset code (see the module docstring).
SMIRK_MEAD_SPLIT = SubjectSplit(
    train=("M003", "M007", "M009", "M011", "M012", "M019", "M024", "M025", "M026", "M027",
           "M029", "M030", "M031", "M032", "M033", "M034", "M035", "M037", "M039", "M040",
           "M041", "W009", "W011", "W014", "W015", "W016", "W019", "W021", "W023", "W024",
           "W025", "W026", "W035", "W036", "W037", "W038", "W040"),
    val=("M013", "M023", "M042", "W018", "W028"),
    test=("M005", "M022", "M028", "W029", "W033"),
)


@dataclass(frozen=True)
class Manifest:
    """Clips found plus the files under ``<subject>/video`` that do not fit the layout."""

    clips: tuple[MeadClip, ...]
    unexpected: tuple[str, ...]

    def split(self, name: str) -> tuple[MeadClip, ...]:
        return tuple(c for c in self.clips if c.split == name)


def count_frames(path: str | os.PathLike) -> int:
    """Number of video frames by demuxing packets (fast; no decoding). -1 if unreadable.

    Equals the decoded count for intact files; data_prep.landmarks records the
    decoded count, which is the one to trust for a damaged file.
    """
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return sum(1 for p in container.demux(stream) if p.size > 0)
    except (av.error.FFmpegError, OSError, IndexError):
        return -1


def build_manifest(root: str | os.PathLike, split: SubjectSplit = SMIRK_MEAD_SPLIT,
                   views: Sequence[str] | None = None, show_progress: bool = True) -> Manifest:
    """Walk a MEAD root and list its clips (sorted by their ``key``).

    Args:
        views: keep only these camera views (e.g. ``("front",)``); None keeps all.
    Raises:
        FileNotFoundError: ``root`` has no ``<subject>/video`` folder at all.
    """
    root = Path(root)
    subject_dirs = sorted(p for p in root.iterdir() if (p / "video").is_dir()) if root.is_dir() else []
    if not subject_dirs:
        raise FileNotFoundError(f"no '<subject>/video' folders in {root}; expected MEAD's layout "
                                "<subject>/video/<view>/<emotion>/level_<n>/<clip>.mp4")
    found: list[tuple[Path, tuple[str, str, str, int, str]]] = []
    unexpected: list[str] = []
    for sdir in subject_dirs:
        for f in sorted((sdir / "video").rglob("*")):
            if not f.is_file() or f.name.startswith("."):
                continue
            rel = f.relative_to(root)
            parts = rel.parts  # subject, video, view, emotion, level_n, clip.ext
            level = _LEVEL.match(parts[4]) if len(parts) == 6 else None
            if level is None or not is_video(f):
                unexpected.append(rel.as_posix())
                continue
            if views is not None and parts[2] not in views:
                continue
            found.append((f, (parts[0], parts[2], parts[3], int(level.group(1)), f.stem)))
    clips = []
    for f, (subject, view, emotion, level, clip) in tqdm(found, desc="manifest", unit="clip",
                                                          disable=not show_progress):
        clips.append(MeadClip(subject, view, emotion, level, clip, split.split_of(subject),
                              f.relative_to(root).as_posix(), count_frames(f)))
    clips.sort(key=lambda c: c.key)
    return Manifest(tuple(clips), tuple(unexpected))


def prepare_mead(root: str | os.PathLike, out_dir: str | os.PathLike,
                 clips: Sequence[MeadClip], crops: bool = True, scale: float = DEFAULT_SCALE,
                 out_size: int = DEFAULT_SIZE, sigma_seconds: float = DEFAULT_SIGMA_SECONDS,
                 show_progress: bool = True) -> tuple[Outcome[MeadClip], ...]:
    """Landmarks (and crops) for each clip, resuming where outputs exist; never raises
    for a bad clip (it becomes a failed :class:`~data_prep.runs.Outcome`)."""
    root = Path(root)
    outcomes = []
    for clip in tqdm(clips, desc="MEAD clips", unit="clip", disable=not show_progress):
        folder = clip_output_dir(out_dir, clip)
        video = root / clip.path
        lm_path = folder / LANDMARKS_FILE
        done_lm = lm_path.exists()
        if done_lm and (not crops or (folder / CROPS_FILE).exists()):
            outcomes.append(Outcome(clip, "skipped"))
            continue
        try:
            lm = load_landmarks(lm_path) if done_lm else extract_video(video, show_progress=False)
            if not done_lm:
                save_landmarks(lm_path, lm)
            if crops:
                crop_video(video, lm, folder, scale, out_size, sigma_seconds, show_progress=False)
        except (VideoDecodeError, ValueError) as exc:
            outcomes.append(Outcome(clip, "failed", str(exc)))
            continue
        outcomes.append(Outcome(clip, "done", "", lm.num_frames, int(lm.found.sum())))
    return tuple(outcomes)


def _summary(manifest: Manifest, outcomes: Sequence[Outcome[MeadClip]]) -> str:
    counts = {s: len(manifest.split(s)) for s in ("train", "val", "test", "unassigned")}
    lines = ["MEAD manifest: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + " clips"]
    unreadable = [c for c in manifest.clips if c.frames < 0]
    if unreadable:
        lines.append(f"  {len(unreadable)} clip(s) unreadable when counting frames")
    if manifest.unexpected:
        lines.append(f"  {len(manifest.unexpected)} file(s) outside the MEAD layout, ignored:")
        lines += [f"    {u}" for u in manifest.unexpected[:20]]
    if outcomes:
        lines += summary("clips", outcomes, lambda clip: clip.path, processed=None)
    return "\n".join(lines)


#: The end of ``--help``.
EXAMPLES = """\
examples:
  # the manifest only (clips, frame counts, subject splits), to check the layout first
  python -m data_prep.mead MEAD_ROOT --out prepared/mead --manifest-only
  # landmarks and crops of the frontal clips of SMIRK's train and val subjects
  python -m data_prep.mead MEAD_ROOT --out prepared/mead --views front \\
      --splits train val"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of :func:`main`."""
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.mead",
        description="MEAD manifest (DIR/manifest.csv) with subject splits, then landmarks and "
                    "crops per clip under DIR/clips/.",
        epilog=EXAMPLES, formatter_class=ExamplesHelpFormatter)
    parser.add_argument("root", type=Path, help="MEAD root holding <subject>/video/...")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--views", nargs="+", default=None, help="camera views to keep (default all)")
    parser.add_argument("--split-json", type=Path, default=None,
                        help='JSON {"train": [...], "val": [...], "test": [...]} (default: SMIRK\'s split)')
    parser.add_argument("--splits", nargs="+", default=None,
                        help="process only clips of these splits (e.g. train val)")
    parser.add_argument("--manifest-only", action="store_true", help="write the manifest and stop")
    parser.add_argument("--no-crops", action="store_true", help="landmarks only")
    parser.add_argument("--quiet", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        split = SubjectSplit.from_json(args.split_json) if args.split_json else SMIRK_MEAD_SPLIT
        manifest = build_manifest(args.root, split, args.views, show_progress=not args.quiet)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_manifest(args.out / "manifest.csv", manifest.clips)
    outcomes: tuple[Outcome[MeadClip], ...] = ()
    if not args.manifest_only:
        todo = [c for c in manifest.clips if args.splits is None or c.split in args.splits]
        outcomes = prepare_mead(args.root, args.out, todo, crops=not args.no_crops,
                                show_progress=not args.quiet)
    print(_summary(manifest, outcomes))
    bad = any(o.status == "failed" for o in outcomes) or any(c.frames < 0 for c in manifest.clips)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
