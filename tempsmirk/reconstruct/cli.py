"""``python -m tempsmirk reconstruct VIDEO [--checkpoint CKPT] [--fit] --out DIR``: a video in, FLAME
parameters, an overlay video and (optionally) meshes out. Explained in chapter 7.

With ``--checkpoint`` alone the SMIRK encoder predicts every frame; with ``--fit`` alone FLAME is
fitted to MediaPipe's landmarks with the temporal terms (no network weights needed); with both,
the encoder's prediction is the fit's starting point.

Writes ``DIR/<stem>/params.npz`` (one row per frame; see :mod:`tempsmirk.reconstruct.export`),
``DIR/<stem>/overlay.mp4`` (input | mesh over input | generator output when the checkpoint has a
generator) and, with ``--meshes obj|ply``, ``DIR/<stem>/meshes/NNNNNN.obj``.

Exit codes: 0 done; 2 unusable input (unreadable video, a checkpoint that is not in the SMIRK
layout, a FLAME file that does not load, bad options); 1 no face found in any frame.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tempsmirk.cli_help import ExamplesHelpFormatter
from tempsmirk.fitting.config import FitConfig
from tempsmirk.reconstruct.smoothing import METHODS, OneEuro, SavitzkyGolay, make_smoothing

__all__ = ["register", "run"]

_EURO, _SG = OneEuro(), SavitzkyGolay()


_FIT = FitConfig()

#: The end of ``reconstruct --help``: the built-in head, then real assets.
EXAMPLES = """\
examples:
  # no assets: the built-in head fitted to MediaPipe's landmarks, temporal terms on
  python -m tempsmirk reconstruct face.mp4 --fit --out out/
  # an official SMIRK checkpoint and FLAME (SMIRK's assets/), filtered, with meshes
  python -m tempsmirk reconstruct face.mp4 --checkpoint SMIRK_em1.pt \\
      --flame smirk/assets --out out/ --smooth one_euro --meshes obj
  # the encoder's prediction refined by the fit, on a GPU
  python -m tempsmirk reconstruct face.mp4 --checkpoint SMIRK_em1.pt \\
      --flame smirk/assets --fit --device cuda --out out/"""


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``reconstruct`` command to an ``argparse`` subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "reconstruct", help="video -> FLAME parameters, overlay video, meshes (chapter 7)",
        description="Reconstruct every frame of a video: MediaPipe landmarks, smoothed face crops, then a "
                    "SMIRK encoder (--checkpoint), FLAME fitted to the landmarks with the temporal losses "
                    "(--fit), or the encoder refined by fitting (both). Writes DIR/<stem>/params.npz and "
                    "overlay.mp4.",
        epilog=EXAMPLES, formatter_class=ExamplesHelpFormatter)
    p.add_argument("video", type=Path, help="input video (anything PyAV decodes: mp4, mov, mkv, ...)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="SMIRK checkpoint (official layout or ours); optional with --fit")
    p.add_argument("--flame", type=Path, default=None,
                   help="FLAME model file or asset folder (SMIRK's assets/, DECA's data/; README 'Real "
                        "assets'); default: built-in head")
    p.add_argument("--out", type=Path, required=True, help="output folder DIR (results go to DIR/<stem>/)")
    p.add_argument("--size", type=int, default=224,
                   help="encoder input size N in pixels (official checkpoints: 224; the book's demo: 64)")
    p.add_argument("--scale", type=float, default=None,
                   help="crop box size relative to the landmarks' box (default 1.4, as SMIRK's demo)")
    p.add_argument("--batch-size", type=int, default=16, help="frames per encoder/render call")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--smooth", choices=METHODS, default="none",
                   help="inference-time filter on the parameters (a baseline for temporal training)")
    p.add_argument("--min-cutoff", type=float, default=_EURO.min_cutoff, help="One-Euro: cutoff (Hz) at rest")
    p.add_argument("--beta", type=float, default=_EURO.beta, help="One-Euro: cutoff increase with speed")
    p.add_argument("--d-cutoff", type=float, default=_EURO.d_cutoff, help="One-Euro: speed cutoff (Hz)")
    p.add_argument("--window", type=int, default=_SG.window, help="Savitzky-Golay: odd window (frames)")
    p.add_argument("--order", type=int, default=_SG.order, help="Savitzky-Golay: polynomial degree")
    fit = p.add_argument_group("fitting (--fit)")
    fit.add_argument("--fit", action="store_true",
                     help="fit FLAME to the MediaPipe landmarks with the temporal terms (from the encoder's "
                          "prediction when --checkpoint is given, else from a closed-form pose)")
    fit.add_argument("--fit-iterations", type=int, default=_FIT.iterations, help="optimiser steps per window")
    fit.add_argument("--lambda-smooth", type=float, default=_FIT.smooth,
                     help="weight of the smoothness term (eq. 3); 0 fits every frame on its own")
    fit.add_argument("--lambda-id", type=float, default=_FIT.identity,
                     help="weight of the identity term (eq. 4), with --per-frame-shape")
    fit.add_argument("--per-frame-shape", action="store_true",
                     help="one shape per frame tied by the identity term, instead of one per video")
    fit.add_argument("--fit-window", type=int, default=_FIT.window,
                     help="frames fitted together (longer videos go in overlapping windows)")
    fit.add_argument("--fit-overlap", type=int, default=_FIT.overlap,
                     help="frames shared by consecutive windows (cross-faded)")
    p.add_argument("--meshes", choices=("obj", "ply"), default=None, help="also write one mesh per frame")
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay.mp4")
    p.add_argument("--no-generator", action="store_true",
                   help="leave the generator panel out of the overlay (faster)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def _error(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code (messages, not tracebacks, for bad input)."""
    import torch

    from tempsmirk.reconstruct.pipeline import FlameModelError, NoFaceError, load_models, reconstruct_video
    from tempsmirk.smirk.checkpoint import CheckpointError
    from tempsmirk.video.crops import DEFAULT_SCALE
    from tempsmirk.video.io import VideoDecodeError, probe_video

    try:
        smoothing = make_smoothing(args.smooth, args.min_cutoff, args.beta, args.d_cutoff, args.window, args.order)
    except ValueError as exc:
        return _error(str(exc))
    if args.checkpoint is None and not args.fit:
        return _error("give --checkpoint CKPT (the SMIRK encoder), --fit (FLAME fitted to the landmarks), or both")
    fit = None
    if args.fit:
        from dataclasses import replace

        try:
            fit = replace(_FIT, iterations=args.fit_iterations, smooth=args.lambda_smooth, identity=args.lambda_id,
                          per_frame_shape=args.per_frame_shape, window=args.fit_window, overlap=args.fit_overlap)
        except ValueError as exc:
            return _error(f"fitting options: {exc}")
    if args.size < 32 or args.batch_size < 1:
        return _error(f"--size must be >= 32 and --batch-size >= 1; got {args.size} and {args.batch_size}")
    try:
        device = torch.device(args.device)
    except RuntimeError as exc:
        return _error(f"--device {args.device!r} is not a torch device ({exc}); expected e.g. cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        return _error("--device cuda was asked for but no CUDA device is available; use --device cpu")
    if not args.video.is_file():
        return _error(f"video {args.video} does not exist; expected a video file")
    try:
        probe_video(args.video)  # fail fast, before loading models
        encoder, generator, flame = load_models(args.checkpoint, args.flame, not args.no_generator, device,
                                                require=("mediapipe",) if fit is not None else ())
        result = reconstruct_video(
            args.video, encoder, flame, args.out, generator=generator, crop_size=args.size,
            scale=DEFAULT_SCALE if args.scale is None else args.scale, batch_size=args.batch_size,
            smoothing=smoothing, fit=fit, overlay=not args.no_overlay, meshes=args.meshes, progress=not args.quiet)
    except (VideoDecodeError, CheckpointError, FlameModelError, FileNotFoundError) as exc:
        return _error(str(exc))
    except NoFaceError as exc:
        return _error(str(exc), 1)
    v = result.video
    print(f"{args.video.name}: {v.num_frames} frames, face found in {int(v.found.sum())}; parameters from "
          f"{v.source}; wrote {result.folder} ({result.times.frames / result.times.total:.1f} frames/s)")
    if result.fit is not None:
        print(f"landmark reprojection error after fitting: {float(result.fit.error_px.nanmean()):.2f} px "
              "(mean over frames with a face, at a 224-px crop)")
    return 0
