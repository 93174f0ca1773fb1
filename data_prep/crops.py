"""Square face crops for videos whose landmarks ``data_prep.landmarks`` wrote.

Command line (after ``data_prep.landmarks``)::

    python -m data_prep.crops INPUT --out DIR

writes ``DIR/<stem>/crops.mp4`` (224 px, H.264) and ``DIR/<stem>/crops.npz``
(:class:`~tempsmirk.video.crops.VideoCrops`) next to each video's ``landmarks.npz``. The crop
rule, its coordinate conventions and the temporal smoothing of the box are
:mod:`tempsmirk.video.crops`'s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from tempsmirk.cli_help import ExamplesHelpFormatter
from tempsmirk.video.crops import CROPS_FILE, DEFAULT_SCALE, DEFAULT_SIGMA_SECONDS, DEFAULT_SIZE, crop_video
from tempsmirk.video.io import VideoDecodeError, is_video
from tempsmirk.video.landmarks import LANDMARKS_FILE, load_landmarks

__all__ = ["main"]


#: The end of ``--help``.
EXAMPLES = """\
examples:
  # after: python -m data_prep.landmarks face.mp4 --out prepared/
  python -m data_prep.crops face.mp4 --out prepared/
  # a folder of videos, crops redone at SMIRK's test-time scale
  python -m data_prep.crops videos/ --out prepared/ --scale 1.6 --overwrite"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of :func:`main`."""
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.crops",
        description="224 px face crops for videos whose landmarks data_prep.landmarks wrote to DIR.",
        epilog=EXAMPLES, formatter_class=ExamplesHelpFormatter)
    parser.add_argument("input", type=Path, help="a video or a folder of videos")
    parser.add_argument("--out", type=Path, required=True,
                        help="the DIR given to data_prep.landmarks (crops go beside landmarks.npz)")
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE)
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE)
    parser.add_argument("--sigma-seconds", type=float, default=DEFAULT_SIGMA_SECONDS)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.input.is_dir():
        videos = sorted(p for p in args.input.iterdir() if p.is_file() and is_video(p))
    elif args.input.is_file():
        videos = [args.input]
    else:
        print(f"error: input {args.input} does not exist; expected a video or a folder of videos",
              file=sys.stderr)
        return 2
    done = skipped = 0
    failures: list[str] = []
    for video in tqdm(videos, desc="crops", unit="file", disable=args.quiet or len(videos) < 2):
        folder = args.out / video.stem
        if (folder / CROPS_FILE).exists() and not args.overwrite:
            skipped += 1
            continue
        try:
            lm = load_landmarks(folder / LANDMARKS_FILE)
        except ValueError as exc:
            failures.append(f"{video}: {exc}")
            continue
        try:
            crop_video(video, lm, folder, args.scale, args.size, args.sigma_seconds,
                       show_progress=not args.quiet)
        except (ValueError, VideoDecodeError) as exc:
            failures.append(f"{video}: {exc}")
            continue
        done += 1
    print(f"crops: {done} done, {skipped} skipped (already done), {len(failures)} failed")
    for f in failures:
        print(f"  FAILED {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
