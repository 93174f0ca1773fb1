"""End-to-end speed of ``python -m tempsmirk reconstruct`` on the shared video (a script, not a test).

    .venv/bin/python tests/benchmarks/bench_reconstruct.py [--size 224] [--batch-size 16]
        [--device cpu] [--generator] [--frames N]

Runs :func:`tempsmirk.reconstruct.reconstruct_video` on ``video/pexels_woman_emotions.mp4`` from the
shared data folder (see :mod:`tempsmirk.paths`) with a freshly initialised encoder (speed does not
depend on the weights) at ``--size`` px, writing params.npz and overlay.mp4 to a temporary folder,
and prints frames per second for every stage (decode / landmarks / crop / encode / FLAME / render /
compose / write; generator with ``--generator``) and end to end with and without writing. The
video (about 330 MB decoded) is kept in memory after its first decoding, so ``decode`` is one
pass. Goal (issue 8): >= 15 frames/s end to end without writing at 224 px on the 2-core CPU
machine. With CUDA, try ``--device cuda --batch-size 256``. The load average is printed before
and after, since the machine is shared.

On a machine shared with other jobs, run with ``--threads 1`` or with ``OMP_WAIT_POLICY=PASSIVE``
in the environment: OpenMP's threads otherwise spin while waiting for each other, and with the
cores taken by other processes the encoder and renderer ran about five times slower here.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from itertools import islice
from pathlib import Path

import torch

from tempsmirk.flame import load_flame
from tempsmirk.paths import shared_data
from tempsmirk.reconstruct import prepare_encoder, reconstruct_video
from tempsmirk.smirk import SmirkEncoder, SmirkGenerator
from tempsmirk.video.io import iter_frames, probe_video, write_video

VIDEO = ("video", "pexels_woman_emotions.mp4")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="encoder input size")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--generator", action="store_true", help="include the generator panel")
    parser.add_argument("--frames", type=int, default=0, help="use only the first N frames (0 = all)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = parser.parse_args(argv)
    try:
        video = shared_data(*VIDEO)
    except FileNotFoundError as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    encoder = prepare_encoder(SmirkEncoder(), device)
    generator = SmirkGenerator().to(device).eval() if args.generator else None
    flame = load_flame(None, encoder.n_shape, encoder.n_exp).to(device)
    info = probe_video(video)
    with tempfile.TemporaryDirectory() as tmp:
        if args.frames:
            clip = Path(tmp) / video.name
            write_video(clip, islice(iter_frames(video), args.frames), info.fps)
            video = clip
        print(f"video: {video.name}, {info.width}x{info.height}, {info.fps:.3f} fps; crops {args.size} px, "
              f"batch {args.batch_size}, device {device}, torch threads {torch.get_num_threads()}, "
              f"generator {'on' if generator is not None else 'off'}")
        print(f"load average before: {load_average()} ({os.cpu_count()} CPUs)")
        # Warm-up on a few frames (first-call allocations, MediaPipe start-up, CUDA kernels).
        warm = Path(tmp) / "warm.mp4"
        write_video(warm, islice(iter_frames(video), 8), info.fps)
        reconstruct_video(warm, encoder, flame, Path(tmp) / "out", generator=generator, crop_size=args.size,
                          batch_size=args.batch_size, progress=False)
        rec = reconstruct_video(video, encoder, flame, Path(tmp) / "out", generator=generator,
                                crop_size=args.size, batch_size=args.batch_size, progress=False)
    print(f"load average after:  {load_average()}")
    print(f"{rec.times.frames} frames, face found in {int(rec.video.found.sum())}")
    print(rec.times.table())
    goal = rec.times.frames / rec.times.without_write
    print(f"goal >= 15 frames/s without writing: {'met' if goal >= 15 else 'NOT met'} ({goal:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
