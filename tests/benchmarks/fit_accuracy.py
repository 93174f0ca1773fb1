"""Landmark error and jitter of the encoder, a filter and the fit, on the real video and on a
synthetic clip with ground truth (issue 18; a script, not a test).

    .venv/bin/python tests/benchmarks/fit_accuracy.py [--checkpoint CKPT] [--frames N]
        [--lambdas 0.3,1,3,10,30,100] [--synthetic-frames 96] [--skip-real] [--skip-synthetic]

Rows (both parts): the demo encoder (``demo_checkpoint("small")``, 64-px crops at scale 2.0, or
``--checkpoint`` at 224 px and 1.4), the encoder + One-Euro (default settings), the fit without
temporal terms (λ_smooth = 0), the fit with them (the default λ_smooth), the encoder refined by the
fit, and a sweep of λ_smooth. The real video (``video/pexels_woman_emotions.mp4`` from the shared
data) has no ground truth: landmark error against MediaPipe's detections and jitter, with
MediaPipe's own landmark acceleration as a reference row. The synthetic clip (the built-in head,
rendered, three frames blacked out, through the same MediaPipe detector) adds per-frame errors and
acceleration errors against the truth, with the truth and the average face (the clip's mean
parameters every frame) as reference rows; a third table feeds the fit the truth's own landmarks
plus noise (``--noise`` px), the fit without the detector's bias. Pixels are pixels of a 224-px crop; see
:mod:`tempsmirk.reconstruct.compare`.
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

import numpy as np
import torch

from tempsmirk.data import SyntheticConfig, SyntheticFaces
from tempsmirk.fitting import FitConfig, LandmarkFlame
from tempsmirk.paths import shared_data
from tempsmirk.reconstruct import OneEuro, load_models, reconstruct_video
from tempsmirk.reconstruct.compare import (
    MetricsTable,
    average_track,
    detection_metrics,
    encoder_track,
    fit_track,
    frame_track,
    track_metrics,
)
from tempsmirk.training import DEMO_IMAGE_SIZE, demo_checkpoint
from tempsmirk.video.io import iter_frames, probe_video, write_video

REAL = ("video", "pexels_woman_emotions.mp4")
REAL_COLUMNS = ("landmark_error_px", "landmark_accel_px", "vertex_accel_mm", "pose_accel_deg", "jaw_accel_deg",
                "expression_accel", "seconds")
SYNTH_COLUMNS = ("truth_error_px", "landmark_error_px", "landmark_accel_px", "vertex_error_mm", "identity_error_mm",
                 "motion_error_mm", "vertex_accel_mm", "vertex_accel_error_mm", "pose_error_deg", "jaw_error_deg",
                 "expression_rmse", "seconds")
IDEAL_COLUMNS = ("truth_error_px", "vertex_error_mm", "identity_error_mm", "motion_error_mm", "vertex_accel_mm",
                 "vertex_accel_error_mm", "pose_error_deg", "jaw_error_deg", "expression_rmse",
                 "expression_accel_error", "seconds")


def compare(video: Path, encoder, flame, crop: int, scale: float, lambdas: list[float], work: Path,
            truth=None) -> MetricsTable:
    """All rows for one video (``truth``: a Track for a synthetic clip)."""
    rec = reconstruct_video(video, encoder, flame, work, crop_size=crop, scale=scale, overlay=False, progress=False)
    lm, found, fps = rec.landmarks, rec.video.found, rec.video.fps
    model = LandmarkFlame(flame)
    default = FitConfig()
    enc = encoder_track(rec)
    tracks = {"demo encoder" if crop == DEMO_IMAGE_SIZE else "encoder": enc,
              "encoder + One-Euro": encoder_track(rec, OneEuro()),
              "fit, no temporal terms (λ = 0)": fit_track(lm, found, fps, flame, default, model=model, temporal=False),
              f"fit + temporal terms (λ = {default.smooth:g})": fit_track(lm, found, fps, flame, default, model=model),
              f"encoder + fit (λ = {default.smooth:g})": fit_track(lm, found, fps, flame, default, model=model,
                                                                   init=enc)}
    for lam in lambdas:
        if lam != default.smooth:
            tracks[f"fit, λ = {lam:g}"] = fit_track(lm, found, fps, flame, replace(default, smooth=lam), model=model)
    rows = {}
    if truth is not None:
        rows["ground truth"] = track_metrics(model, flame, truth, lm, found, truth)
        rows["average face, every frame"] = track_metrics(model, flame, average_track(truth), lm, found, truth)
    else:
        rows["MediaPipe's detections"] = detection_metrics(lm, found, model.mp_indices)
    for name, t in tracks.items():
        rows[name] = track_metrics(model, flame, t, lm, found, truth)
    cols = SYNTH_COLUMNS if truth is not None else REAL_COLUMNS
    return MetricsTable(rows, cols, note=f"{rec.video.num_frames} frames, face found in {int(found.sum())}; "
                                         f"times: encoder = crops + network, fit = identity + tracking stages")


def synthetic_clip(flame, frames: int, size: int, folder: Path):
    """A clip of the built-in head as an mp4 (frames 20-22 black) and its truth as a Track."""
    clip = SyntheticFaces(flame, SyntheticConfig(image_size=size, clip_length=frames, n_items=1, seed=0,
                                                 scale_min=4.2, scale_max=4.8, keyframe_every=12))[0]
    images = (clip.image.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    images[20:23] = 0
    path = folder / "synthetic_clip.mp4"
    write_video(path, images, 24.0)
    return path, frame_track(clip.params, (size, size))


def ideal_detections(flame, frames: int, noise_px: float, lambdas: list[float]) -> MetricsTable:
    """The fit alone, fed the truth's own landmarks plus Gaussian noise: what it recovers when
    the detector is not biased (MediaPipe is, on renders of the built-in head: see the synthetic
    table's ground-truth row)."""
    from tempsmirk.data.synthetic import sample_clip
    from tempsmirk.fitting import project_targets, track
    from tempsmirk.reconstruct.compare import truth_metrics

    g = torch.Generator().manual_seed(0)
    truth, _ = sample_clip(SyntheticConfig(clip_length=frames, keyframe_every=12), flame.n_shape, flame.n_exp, g)
    clean, noisy = project_targets(flame, truth), project_targets(flame, truth, noise_px, g)
    model = LandmarkFlame(flame)

    def row(params, seconds=float("nan")):
        return dict(truth_metrics(model, flame, params, truth, clean), seconds=seconds)

    rows = {"ground truth": row(truth), "average face, every frame": row(truth.map(
        lambda x: x.mean(0, keepdim=True).expand_as(x)))}
    default = FitConfig()
    for lam in sorted({0.0, default.smooth, *lambdas}):
        t0 = time.perf_counter()
        fitted = track(model, noisy, replace(default, smooth=lam), temporal=lam > 0).params
        name = "fit, no temporal terms (λ = 0)" if lam == 0 else f"fit, λ = {lam:g}" + (
            " (default)" if lam == default.smooth else "")
        rows[name] = row(fitted, time.perf_counter() - t0)
    return MetricsTable(rows, IDEAL_COLUMNS, note=f"{frames} frames; landmarks = the truth's + {noise_px:g} px "
                                                  "Gaussian noise per coordinate (pixels of a 224-px image)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="SMIRK checkpoint (default: the demo one)")
    parser.add_argument("--frames", type=int, default=0, help="real video: only the first N frames (0 = all)")
    parser.add_argument("--lambdas", default="0.3,1,3,10,30,100", help="λ_smooth sweep")
    parser.add_argument("--synthetic-frames", type=int, default=96)
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--noise", type=float, default=1.0, help="px of noise on the ideal detections")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    lambdas = [float(x) for x in args.lambdas.split(",") if x]
    ckpt = demo_checkpoint("small") if args.checkpoint is None else args.checkpoint
    encoder, _, flame = load_models(ckpt, with_generator=False)
    crop, scale = (DEMO_IMAGE_SIZE, 2.0) if args.checkpoint is None else (224, 1.4)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_real:
            try:
                video = shared_data(*REAL)
            except FileNotFoundError as exc:
                print(f"real video skipped: {exc}", file=sys.stderr)
            else:
                if args.frames:
                    clip = tmp / video.name
                    write_video(clip, islice(iter_frames(video), args.frames), probe_video(video).fps)
                    video = clip
                print(f"\n== {video.name} (real; no ground truth)")
                print(compare(video, encoder, flame, crop, scale, lambdas, tmp / "real"), flush=True)
        if not args.skip_synthetic:
            path, truth = synthetic_clip(flame, args.synthetic_frames, 160, tmp)
            print(f"\n== synthetic clip, {args.synthetic_frames} frames of 160 px (built-in head, ground truth)")
            print(compare(path, encoder, flame, crop, scale, lambdas, tmp / "synthetic", truth), flush=True)
            print(f"\n== synthetic clip, {args.synthetic_frames} frames, the fit fed ideal detections")
            print(ideal_detections(flame, args.synthetic_frames, args.noise, lambdas), flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
