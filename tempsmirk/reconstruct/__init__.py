"""From video to meshes (chapter 7): ``python -m tempsmirk reconstruct VIDEO [--checkpoint CKPT] [--fit] --out DIR``.

- :mod:`tempsmirk.reconstruct.pipeline` — the stages (landmarks, crops, encoder, filling frames
  without a face, fitting with :mod:`tempsmirk.fitting`) and :func:`reconstruct_video`, which runs
  them and times each.
- :mod:`tempsmirk.reconstruct.compare` — methods compared on one video: landmark error against
  MediaPipe, jitter, and errors against the truth where it is known.
- :mod:`tempsmirk.reconstruct.smoothing` — inference-time filters (One-Euro, Savitzky–Golay): the
  baseline temporal training is measured against.
- :mod:`tempsmirk.reconstruct.overlay` — the crop's camera in frame pixels, render windows, panels.
- :mod:`tempsmirk.reconstruct.export` — ``params.npz`` and per-frame meshes, written atomically.
- :mod:`tempsmirk.reconstruct.viewer` — the overlay video inline and a mesh slider for notebooks.
- :mod:`tempsmirk.reconstruct.cli` — the command (``register`` / ``run``).

Names below are imported from their modules on first use, so that building the command line
(which imports :mod:`tempsmirk.reconstruct.cli`) does not load OpenCV, MediaPipe or SciPy.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "compare": ("MetricsTable", "Track", "encoder_track", "fit_track", "frame_track", "track_metrics",
                "truth_metrics"),
    "export": ("MESH_DIR", "OVERLAY_FILE", "PARAMS_FILE", "VideoParams", "load_params", "save_params"),
    "overlay": ("blend_windows", "compose_panels", "frame_camera", "paste_windows", "render_windows",
                "window_camera"),
    "pipeline": ("STAGES", "FlameModelError", "NoFaceError", "Reconstruction", "StageTimes", "crop_frames",
                 "crop_transforms", "encode_crops", "fit_targets", "load_models", "prepare_encoder",
                 "reconstruct_video"),
    "smoothing": ("METHODS", "OneEuro", "SavitzkyGolay", "Smoothing", "make_smoothing", "one_euro", "savgol",
                  "smooth_params"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'tempsmirk.reconstruct' has no attribute {name!r}")
    return getattr(importlib.import_module(f"tempsmirk.reconstruct.{_WHERE[name]}"), name)


def __dir__() -> list[str]:
    return __all__
