"""Speed of landmark fitting and of ``reconstruct --fit`` on the shared video (issue 18; a script,
not a test).

    .venv/bin/python tests/benchmarks/bench_fit.py [--frames N] [--iterations 100] [--threads 1]
        [--device cpu] [--skip-end-to-end]

Prints, for ``video/pexels_woman_emotions.mp4`` (472 frames, 640 x 360):

1. one fitting step for a 256-frame window: FLAME at the landmarks only
   (:class:`~tempsmirk.fitting.LandmarkFlame`, forward + backward) against the full FLAME layer
   (forward + backward, landmarks from the whole mesh), and against FLAME's own skinning
   functions run on the same few hundred vertices (the direct way, without folding the landmarks
   into the bases; the vertices alone, landmarks not even formed);
2. the fit alone (:func:`tempsmirk.fitting.track`, default settings: identity stage, then
   windows with the temporal terms) on the video's MediaPipe landmarks: frames per second, per
   stage (goal >= 100 frames/s);
3. ``reconstruct --fit`` end to end (no checkpoint), with and without the overlay video: the
   per-stage tables and frames per second (goal >= 20).

The load average is printed before and after: the machine may be shared, and timings taken on a
busy machine are slower than the code. The fit runs on one thread, so its CPU time (also printed)
is what it costs when it has a core to itself.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from itertools import islice
from pathlib import Path

import torch

from tempsmirk.fitting import FitConfig, LandmarkFlame, track
from tempsmirk.flame import FLAME
from tempsmirk.flame.lbs import batch_rodrigues, blend_shapes, pose_features, rigid_transforms, skin
from tempsmirk.paths import shared_data
from tempsmirk.reconstruct import reconstruct_video
from tempsmirk.reconstruct.pipeline import crop_transforms, fit_targets
from tempsmirk.video.io import iter_frames, probe_video, write_video
from tempsmirk.video.landmarks import detect_frames

VIDEO = ("video", "pexels_woman_emotions.mp4")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def best_of(fn, repeat: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def step_costs(flame: FLAME, frames: int) -> None:
    model = LandmarkFlame(flame)
    g = torch.Generator().manual_seed(0)
    p = {"shape": torch.randn(1, flame.n_shape, generator=g) * 0.5,
         "expression": torch.randn(frames, flame.n_exp, generator=g) * 0.5,
         "global_pose": torch.randn(frames, 3, generator=g) * 0.2,
         "jaw_pose": torch.rand(frames, 3, generator=g) * 0.1, "eyelids": torch.rand(frames, 2, generator=g)}
    leaves = {k: v.clone().requires_grad_() for k, v in p.items()}

    def sparse():
        out = model(**leaves, inner=False)
        (out.mediapipe.sum() + out.contour.sum()).backward()

    def full():
        q = dict(leaves, shape=leaves["shape"].expand(frames, -1))
        out = flame(**q)
        (out.landmarks_mp.sum() + out.landmarks68[:, :17].sum()).backward()

    ids = model.vertex_ids
    n_pose = flame.posedirs.shape[0]
    sub = {"v": flame.v_template[ids], "dirs": flame.shapedirs[ids], "w": flame.lbs_weights[ids],
           "pd": flame.posedirs.view(n_pose, -1, 3)[:, ids].reshape(n_pose, -1)}

    def vertex_lbs():  # the direct way: FLAME's skinning functions on the kept vertices only
        coeffs = torch.cat([leaves["shape"].expand(frames, -1), leaves["expression"]], 1)
        v_shaped = sub["v"] + blend_shapes(coeffs, sub["dirs"])
        joints = model.j_template + torch.einsum("jck,bk->bjc", model.j_dirs, coeffs)  # J_reg v_shaped, linear
        pose = torch.cat([leaves["global_pose"], torch.zeros(frames, 3), leaves["jaw_pose"],
                          torch.zeros(frames, 6)], 1)
        rot = batch_rodrigues(pose.reshape(-1, 3)).view(frames, -1, 3, 3)
        v_posed = v_shaped + (pose_features(rot) @ sub["pd"]).view(frames, -1, 3)
        _, transforms = rigid_transforms(rot, joints, flame.parents)
        v_posed = skin(v_posed, sub["w"], transforms)
        v_posed.sum().backward()

    t_sparse, t_full, t_vertex = best_of(sparse), best_of(full, 2), best_of(vertex_lbs, 3)
    print(f"one step ({frames} frames, forward + backward): landmark-space FLAME {1e3 * t_sparse:.1f} ms, "
          f"per-vertex skinning of its {model.n_vertices} vertices {1e3 * t_vertex:.1f} ms, "
          f"full FLAME ({flame.n_vertices} vertices) {1e3 * t_full:.1f} ms "
          f"({t_full / t_sparse:.0f}x the landmark-space step)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=0, help="use only the first N frames (0 = all)")
    parser.add_argument("--iterations", type=int, default=FitConfig().iterations, help="Adam steps per window")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-end-to-end", action="store_true")
    args = parser.parse_args(argv)
    try:
        video = shared_data(*VIDEO)
    except FileNotFoundError as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return 0
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    flame = FLAME.builtin().to(device)
    config = replace(FitConfig(), iterations=args.iterations)
    print(f"load average before: {load_average()} ({os.cpu_count()} CPUs); torch threads {torch.get_num_threads()}, "
          f"device {device}")
    step_costs(flame, 256)

    info = probe_video(video)
    frames = islice(iter_frames(video), args.frames or None)
    t0 = time.perf_counter()
    landmarks, found, _ = detect_frames(frames, tracking=True)
    t_lmk = time.perf_counter() - t0
    t = len(found)
    affine = crop_transforms(landmarks, found, info.fps, 224)
    targets = fit_targets(landmarks, found, affine, 224, flame)
    model = LandmarkFlame(flame)
    print(f"{video.name}: {t} frames (decode + MediaPipe {t / t_lmk:.1f} frames/s)")
    best = cpu_best = float("inf")
    for run in range(3):  # the first run includes one-off allocations
        t0, c0 = time.perf_counter(), time.process_time()
        result = track(model, targets, config)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        best, cpu_best = min(best, total), min(cpu_best, cpu)
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items())
        print(f"fit alone, run {run + 1}: {total:.2f} s = {t / total:.0f} frames/s wall, {cpu:.2f} s = "
              f"{t / cpu:.0f} frames/s of CPU time ({stages}; {config.iterations} steps per window of "
              f"{config.window}); reprojection error {float(result.error_px.nanmean()):.2f} px")
    print(f"goal >= 100 frames/s for the fit alone: {'met' if t / best >= 100 else 'NOT met'} on the wall "
          f"clock ({t / best:.0f}, best run); {t / cpu_best:.0f} frames/s per CPU second (one thread)")

    if not args.skip_end_to_end:
        with tempfile.TemporaryDirectory() as tmp:
            if args.frames:
                clip = Path(tmp) / video.name
                write_video(clip, islice(iter_frames(video), args.frames), info.fps)
                video = clip
            for overlay in (True, False):
                rec = reconstruct_video(video, None, flame, Path(tmp) / "out", fit=config, overlay=overlay,
                                        progress=False)
                print(f"reconstruct --fit{'' if overlay else ' --no-overlay'}, end to end:")
                print(rec.times.table())
                fps = rec.times.frames / rec.times.total
                print(f"goal >= 20 frames/s end to end: {'met' if fps >= 20 else 'NOT met'} ({fps:.1f})")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
