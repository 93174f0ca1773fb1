"""MediaPipe FaceMesh landmarks (478 points) for videos, video folders and image folders.

Command line::

    python -m data_prep.landmarks INPUT --out DIR [--overwrite]

INPUT is a video, a folder of videos, or a folder of images (a folder holding both
gets one entry per video plus one entry for its images). Each video ``v.mp4`` gives
``DIR/v/landmarks.npz``; a folder's images give one ``DIR/<folder name>/landmarks.npz``
with a row per image and the file names.

``landmarks.npz`` holds :class:`~tempsmirk.video.landmarks.FaceLandmarks` (its keys are listed in
:mod:`tempsmirk.video.landmarks`).

T is the number of decoded frames: a frame without a face keeps its index.
Videos use FaceMesh in tracking mode, images in static mode.
Over a folder, entries whose ``landmarks.npz`` exists are skipped (resume); a file
that cannot be decoded, or decodes to fewer frames than its header lists (a
truncated download), is reported and skipped (``--accept-short`` keeps such a
prefix instead); the rest continue, a summary is printed, and the exit code is 1
if anything failed (2 for unusable arguments).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

from tqdm.auto import tqdm

from data_prep.runs import Outcome, summary
from tempsmirk.cli_help import ExamplesHelpFormatter
from tempsmirk.video.io import VideoDecodeError, is_image, is_video, probe_video
from tempsmirk.video.landmarks import LANDMARKS_FILE, extract_images, extract_video, save_landmarks

__all__ = [
    "Job",
    "RunSummary",
    "plan_jobs",
    "run_jobs",
    "main",
]


@dataclass(frozen=True)
class Job:
    """One output to produce: a video, or the images of one folder."""

    kind: Literal["video", "images"]
    sources: tuple[Path, ...]
    out: Path  # the landmarks.npz to write

    @property
    def label(self) -> str:
        return str(self.sources[0]) if self.kind == "video" else f"{self.sources[0].parent}/ (images)"


@dataclass(frozen=True)
class RunSummary:
    outcomes: tuple[Outcome[Job], ...] = field(default_factory=tuple)

    @property
    def failed(self) -> tuple[Outcome[Job], ...]:
        return tuple(o for o in self.outcomes if o.status == "failed")

    @property
    def ok(self) -> bool:
        return not self.failed

    def report(self) -> str:
        """A human-readable summary: counts, frames with a face, warnings, one line per failure."""
        return "\n".join(summary("landmarks", self.outcomes, lambda job: job.label, remarks=True))


def plan_jobs(input_path: str | os.PathLike, out_dir: str | os.PathLike) -> tuple[Job, ...]:
    """Turn INPUT (a video, a folder of videos and/or images) into jobs.

    Raises:
        FileNotFoundError / ValueError: INPUT missing, holding nothing usable, or two
        videos that would write the same ``DIR/<stem>`` (e.g. ``a.mp4`` and ``a.avi``).
    """
    src, out_dir = Path(input_path), Path(out_dir)
    if not src.exists():
        raise FileNotFoundError(f"input {src} does not exist; expected a video, or a folder "
                                "of videos or images")
    if src.is_file():
        if not is_video(src):
            raise ValueError(f"input {src} is a file but not a video (suffix {src.suffix!r}); "
                             "pass a video, or the folder that holds the images")
        return (Job("video", (src,), out_dir / src.stem / LANDMARKS_FILE),)
    files = sorted(p for p in src.iterdir() if p.is_file() and not p.name.startswith("."))
    videos = [p for p in files if is_video(p)]
    images = [p for p in files if is_image(p)]
    if not videos and not images:
        raise ValueError(f"folder {src} holds no videos ({', '.join(('.mp4', '.avi', '.mov'))}, ...) "
                         "and no images (.jpg, .png, ...); nothing to do")
    stems: dict[str, Path] = {}
    jobs = []
    for v in videos:
        if v.stem in stems:
            raise ValueError(f"{stems[v.stem].name} and {v.name} would both write "
                             f"{out_dir / v.stem}; rename one of them")
        stems[v.stem] = v
        jobs.append(Job("video", (v,), out_dir / v.stem / LANDMARKS_FILE))
    if images:
        name = src.resolve().name
        if name in stems:
            raise ValueError(f"the images of {src} and video {stems[name].name} would both write "
                             f"{out_dir / name}; rename the video")
        jobs.append(Job("images", tuple(images), out_dir / name / LANDMARKS_FILE))
    return tuple(jobs)


def _run_one(job: Job, show_progress: bool, strict: bool) -> Outcome[Job]:
    t0 = time.perf_counter()
    if job.kind == "video":
        try:
            lm = extract_video(job.sources[0], show_progress, strict)
        except VideoDecodeError as exc:
            return Outcome(job, "failed", str(exc))
        header = probe_video(job.sources[0]).header_frames
        message = (f"decoded {lm.num_frames} frames but the header says {header}"
                   if header and header != lm.num_frames else "")
        save_landmarks(job.out, lm)
        return Outcome(job, "done", message, lm.num_frames, int(lm.found.sum()),
                       time.perf_counter() - t0)
    lm, errors = extract_images(job.sources, show_progress)
    save_landmarks(job.out, lm)
    if errors:
        # Rows are kept (found=False) so the index stays aligned, but the run failed.
        return Outcome(job, "failed", f"{len(errors)} unreadable image(s): " + "; ".join(errors),
                       lm.num_frames, int(lm.found.sum()), time.perf_counter() - t0)
    return Outcome(job, "done", "", lm.num_frames, int(lm.found.sum()), time.perf_counter() - t0)


def run_jobs(jobs: Sequence[Job], overwrite: bool = False, show_progress: bool = True,
             strict: bool = True) -> RunSummary:
    """Run jobs in order; existing outputs are skipped unless ``overwrite``; never raises
    for a bad input file (it becomes a failed :class:`~data_prep.runs.Outcome`). ``strict``: see
    :func:`extract_video`."""
    outcomes = []
    for job in tqdm(jobs, desc="landmarks", unit="file", disable=not show_progress or len(jobs) < 2):
        if job.out.exists() and not overwrite:
            outcomes.append(Outcome(job, "skipped"))
            continue
        outcomes.append(_run_one(job, show_progress, strict))
    return RunSummary(tuple(outcomes))


#: The end of ``--help``.
EXAMPLES = """\
examples:
  # one video: prepared/face/landmarks.npz
  python -m data_prep.landmarks face.mp4 --out prepared/
  # a folder of videos and images, keeping what decodes of videos that end early
  python -m data_prep.landmarks videos/ --out prepared/ --accept-short"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of :func:`main`."""
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.landmarks",
        description="MediaPipe FaceMesh landmarks (478 points) for a video, a folder of videos, "
                    "or a folder of images. Writes DIR/<stem>/landmarks.npz per video.",
        epilog=EXAMPLES, formatter_class=ExamplesHelpFormatter)
    parser.add_argument("input", type=Path, help="a video, or a folder of videos and/or images")
    parser.add_argument("--out", type=Path, required=True, help="output folder DIR")
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--accept-short", action="store_true",
                        help="keep the decodable frames of a video that ends before its header "
                             "says (reported as a warning) instead of failing it")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        jobs = plan_jobs(args.input, args.out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = run_jobs(jobs, overwrite=args.overwrite, show_progress=not args.quiet,
                       strict=not args.accept_short)
    print(summary.report())
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
