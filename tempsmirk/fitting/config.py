"""The fit's settings (chapter 7), apart from the fitting code so the command line can read its
defaults without importing torch models or SciPy."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["FitConfig"]


@dataclass
class FitConfig:
    """Settings of the fit (module docstring). Weights are relative to a squared pixel error at 224 px.

    iterations: Adam steps per window. lr: step-size multiplier of every group's base step.
    landmarks_mp, contour: weights of the MediaPipe and jaw-contour data terms.
    expression_reg, shape_reg, jaw_reg: prior weights.
    smooth: λ_smooth, multiplying the group weights below; 0 fits frames independently.
    smooth_expression, smooth_jaw, smooth_pose, smooth_eyelids: eq. (3) per group (radians for
        the rotations), relative weights tuned for fitting (chapter 7), not the training weights
        of :class:`~tempsmirk.temporal.TemporalWeights`: the landmarks pin the jaw and the head
        pose far more tightly than most expression coefficients, so those need heavier weights.
    smooth_camera: eq. (3) on the camera (log scale, image shift ``s·t``), ours (module docstring).
    identity: λ_id, eq. (4) on per-frame shapes (``per_frame_shape``); unused for one shape per clip.
    per_frame_shape: one shape per frame tied by L_id, instead of one per clip.
    window, overlap: frames per window and frames shared by consecutive windows (:func:`track`).
    identity_frames, identity_iterations: the identity stage of :func:`track` — how many frames,
        spread over the video, and how many steps (0 frames: keep the initial shape).
    """

    iterations: int = 100
    lr: float = 1.0
    landmarks_mp: float = 1.0
    contour: float = 0.5
    expression_reg: float = 2.0
    shape_reg: float = 20.0
    jaw_reg: float = 1.0
    smooth: float = 10.0
    smooth_expression: float = 0.1
    smooth_jaw: float = 1.0
    smooth_pose: float = 1.0
    smooth_eyelids: float = 0.1
    smooth_camera: float = 1.0
    identity: float = 0.05
    per_frame_shape: bool = False
    window: int = 256
    overlap: int = 32
    identity_frames: int = 48
    identity_iterations: int = 150

    def __post_init__(self) -> None:
        if self.iterations < 0 or self.window < 2 or not 0 <= self.overlap < self.window:
            raise ValueError(f"need iterations >= 0, window >= 2 and 0 <= overlap < window; got "
                             f"iterations={self.iterations}, window={self.window}, overlap={self.overlap}")
        weights = {k: getattr(self, k) for k in ("lr", "landmarks_mp", "contour", "expression_reg", "shape_reg",
                                                 "jaw_reg", "smooth", "smooth_expression", "smooth_jaw", "smooth_pose",
                                                 "smooth_eyelids", "smooth_camera", "identity")}
        bad = {k: v for k, v in weights.items() if not (math.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"fit weights must be finite and >= 0; got {bad}")
