"""Fitting FLAME to landmarks over time: test-time optimisation with the temporal losses (chapter 7).

- :mod:`tempsmirk.fitting.sparse` — :class:`LandmarkFlame`, FLAME evaluated only at its landmarks.
- :mod:`tempsmirk.fitting.init` — a closed-form head rotation and camera from 2D landmarks.
- :mod:`tempsmirk.fitting.fit` — :func:`fit_clip` (one window) and :func:`track` (a video, in
  stages and overlapping windows), with :class:`FitTargets` and :class:`FitResult`.
- :mod:`tempsmirk.fitting.config` — :class:`FitConfig`, the settings.

Names below are imported from their modules on first use, so that the command line can read
:class:`FitConfig`'s defaults without loading the FLAME layer.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "config": ("FitConfig",),
    "fit": ("PX", "FitResult", "FitTargets", "fit_clip", "initial_params", "project_targets", "reprojection_error",
            "track"),
    "init": ("matrix_to_axis_angle", "rigid_from_landmarks"),
    "sparse": ("LandmarkFlame", "SparseLandmarks", "landmark_matrix"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'tempsmirk.fitting' has no attribute {name!r}")
    return getattr(importlib.import_module(f"tempsmirk.fitting.{_WHERE[name]}"), name)


def __dir__() -> list[str]:
    return __all__
