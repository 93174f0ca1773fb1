"""Throughput of SMIRK's training data per DataLoader worker, at 224 px with the full augmentation.

Run: ``python tests/benchmarks/bench_face_data.py [--seconds 5] [--batch 32] [--step 0.1]``
(one intra-op thread, as in a worker process). Builds the stand-in corpora of
``tests/data/face_corpora.py`` from the shared video (FFHQ-like 256 px PNGs, LRS3-like clips),
then times, per item, best of repeated runs:

- the parts: image decode, landmark files, crop, augmentation (SMIRK's probabilities; and every
  operation on, the worst case);
- whole items: an FFHQ image and an LRS3 frame, test crop (no augmentation) and training crop
  with the full augmentation, and the reference mix of image and video sources;

and prints images/s per worker and the workers a ``--batch``-image step of ``--step`` seconds needs.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from face_corpora import build_face_corpora  # noqa: E402

from tempsmirk.data.augmentation import FaceAugmentationConfig, augment_faces, draw_augmentation  # noqa: E402
from tempsmirk.data.faces import FaceCropConfig, FaceDataWarning, FaceSource, crop_boxes, crop_faces  # noqa: E402
from tempsmirk.data.landmark_files import read_fan_image, read_mediapipe_image  # noqa: E402
from tempsmirk.flame import FLAME  # noqa: E402
from tempsmirk.paths import shared_data  # noqa: E402
from tempsmirk.video.io import read_image  # noqa: E402


def rate(fn, seconds: float, repeats: int = 3) -> tuple[float, float]:
    """Calls per second of ``fn(i)``, best of ``repeats`` runs of about ``seconds / repeats`` each:
    (per second of CPU time of this process, per second of wall-clock time). On a machine shared
    with other jobs the first is what a worker process with a core of its own achieves."""
    fn(0)
    best_cpu = best_wall = 0.0
    for _ in range(repeats):
        n, w0, c0 = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - w0 < seconds / repeats:
            fn(n)
            n += 1
        best_cpu = max(best_cpu, n / max(time.process_time() - c0, 1e-9))
        best_wall = max(best_wall, n / (time.perf_counter() - w0))
    return best_cpu, best_wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="time per measurement")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--step", type=float, default=0.1, help="seconds per training step")
    args = parser.parse_args(argv)
    try:
        video = shared_data("video", "pexels_woman_emotions.mp4")
    except FileNotFoundError as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return 0
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", FaceDataWarning)
    corpora = build_face_corpora(Path(tempfile.mkdtemp(prefix="bench_face_data_")), video)
    idx = FLAME.builtin(seed=0).mp_indices
    train, test = FaceCropConfig(), FaceCropConfig(augment=False)
    everything = dataclasses.replace(train, augmentation=FaceAugmentationConfig(
        **{f.name: 1.0 for f in dataclasses.fields(FaceAugmentationConfig) if f.name.startswith("p_")}))
    ffhq = {k: FaceSource(corpora.ffhq_corpus, idx, c) for k, c in [("test", test), ("train", train),
                                                                     ("all", everything)]}
    lrs3 = {k: FaceSource(corpora.lrs3_corpus, idx, c) for k, c in [("test", test), ("train", train)]}

    png = corpora.ffhq / "00000.png"
    mp_file = corpora.root / "ffhq_mp" / "00000.npy"
    fan_file = corpora.root / "ffhq_fan" / "00000.npy"
    frame = read_image(png)
    mp = torch.from_numpy(read_mediapipe_image(mp_file)[None, :, :2])
    centre, size = crop_boxes(mp, torch.tensor([1.5]))
    crop = crop_faces([frame], centre, size, 224)
    points = torch.zeros(1, 173, 2)

    def augment(cfg):
        def run(i):
            g = torch.Generator().manual_seed(i)
            augment_faces(crop, points, draw_augmentation(cfg, 1, g), cfg, g)
        return run

    s = args.seconds
    parts = [
        ("decode a 256 px PNG", rate(lambda i: read_image(png), s)),
        ("MediaPipe + FAN files", rate(lambda i: (read_mediapipe_image(mp_file), read_fan_image(fan_file)), s)),
        ("crop to 224 px", rate(lambda i: crop_faces([frame], centre, size, 224), s)),
        ("augment, SMIRK's probabilities", rate(augment(train.augmentation), s)),
        ("augment, every operation", rate(augment(everything.augmentation), s)),
    ]
    items = [
        ("FFHQ image, test crop", rate(lambda i: ffhq["test"].sample(i % 4, i), s)),
        ("FFHQ image, train crop + augmentation", rate(lambda i: ffhq["train"].sample(i % 4, i), s)),
        ("FFHQ image, every augmentation on", rate(lambda i: ffhq["all"].sample(i % 4, i), s)),
        ("LRS3 frame, test crop", rate(lambda i: lrs3["test"].sample(i % 2, i), s)),
        ("LRS3 frame, train crop + augmentation", rate(lambda i: lrs3["train"].sample(i % 2, i), s)),
    ]
    (c_img, w_img), (c_vid, w_vid) = items[1][1], items[4][1]
    # SMIRK's mix: 60 % images (FFHQ, CelebA), 40 % video frames (LRS3, MEAD, MEAD sides).
    items.append(("SMIRK's mix (60 % images, 40 % frames)",
                  (1 / (0.6 / c_img + 0.4 / c_vid), 1 / (0.6 / w_img + 0.4 / w_vid))))
    need = args.batch / args.step
    print(f"one worker = one process, 1 thread; torch {torch.__version__}; best of 3 runs of {s / 3:.1f} s. "
          f"'cpu': per second of the process's CPU time (a worker with a core of its own); 'wall': per "
          f"second of wall-clock time on this machine now")
    print("\n| part | per s (cpu) | ms (cpu) | per s (wall) |\n|---|---:|---:|---:|")
    for name, (c, w) in parts:
        print(f"| {name} | {c:8.1f} | {1e3 / c:6.2f} | {w:8.1f} |")
    print(f"\n| item at 224 px | images/s per worker (cpu) | workers for {args.batch} images per {args.step} s "
          f"| images/s (wall) |")
    print("|---|---:|---:|---:|")
    for name, (c, w) in items:
        print(f"| {name} | {c:8.1f} | {math.ceil(need / c)} | {w:8.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
