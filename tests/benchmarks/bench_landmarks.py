"""Landmark extraction speed on the shared video (decode timed apart from FaceMesh).

Run: ``python tests/benchmarks/bench_landmarks.py [--repeats 3]``. Prints frames per
second for PyAV decoding, FaceMesh in tracking mode (video) and static mode (images),
and the end-to-end :func:`tempsmirk.video.landmarks.extract_video`. Best of the repeats.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from tempsmirk.paths import shared_data
from tempsmirk.video.io import iter_frames
from tempsmirk.video.landmarks import FaceMesh, extract_video


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        video = shared_data("video", "pexels_woman_emotions.mp4")
    except FileNotFoundError as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return 0

    t_decode, frames = _best(lambda: list(iter_frames(video)), args.repeats)
    n = len(frames)
    h, w = frames[0].shape[:2]

    def mesh(tracking: bool) -> int:
        with FaceMesh(tracking=tracking) as m:
            return sum(m(f) is not None for f in frames)

    t_track, found_track = _best(lambda: mesh(True), args.repeats)
    t_static, found_static = _best(lambda: mesh(False), args.repeats)
    t_total, lm = _best(lambda: extract_video(video, show_progress=False), args.repeats)

    print(f"video: {video.name}, {n} frames, {w}x{h}")
    print(f"decode (PyAV, RGB):          {n / t_decode:8.1f} frames/s  ({1e3 * t_decode / n:.2f} ms/frame)")
    print(f"FaceMesh tracking (video):   {n / t_track:8.1f} frames/s  ({1e3 * t_track / n:.2f} ms/frame), "
          f"face in {found_track}/{n}")
    print(f"FaceMesh static (images):    {n / t_static:8.1f} frames/s  ({1e3 * t_static / n:.2f} ms/frame), "
          f"face in {found_static}/{n}")
    print(f"extract_video end to end:    {n / t_total:8.1f} frames/s  ({1e3 * t_total / n:.2f} ms/frame), "
          f"face in {int(np.sum(lm.found))}/{lm.num_frames}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
