"""Comparing reconstructions of one video: landmark error and jitter, with per-frame accuracy beside
them (chapter 7, "tracking a real video"; ``tests/benchmarks/fit_accuracy.py``).

Shapes: T frames, L landmarks, H W frame size, N crop side.

A :class:`Track` is one method's answer for a video: per-frame parameters and the crop they were
predicted in (encoders and fits may use different crops). :func:`track_metrics` measures it in the
video's own pixels, so every method is measured the same way:

- **landmark error** — the mean distance between the track's 105 MediaPipe-matched points
  (FLAME at the landmarks, :class:`~tempsmirk.fitting.LandmarkFlame`) and MediaPipe's detections,
  over frames with a face; in **pixels of a 224-px crop** of SMIRK's 1.4 × landmark box (one scale
  per video: 224 over the median box side), so the number reads the same for any video size;
- **landmark acceleration** — the mean ‖x_{t−1} − 2x_t + x_{t+1}‖ of those points, same pixels, over
  steps whose three frames all have a face (MediaPipe's own detections get the same measure: the
  flicker a tracker is fed);
- **parameter jitter** and, where the truth is known (synthetic clips), per-frame errors and
  acceleration errors — :func:`tempsmirk.temporal.jitter_report`, plus the landmark error
  against the truth's own projected points, and the vertex error split into identity and
  motion (:func:`identity_errors`): 2D landmarks pin expression and jaw far better than the
  identity, and a constant answer with the true identity must not win on the identity alone.

:class:`MetricsTable` shows rows of those with units, as an HTML table in notebooks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from tempsmirk.flame.params import FlameParams
from tempsmirk.render.camera import project_points
from tempsmirk.video.crops import DEFAULT_SCALE, boxes_from_landmarks, crop_affine, invert_affine, transform_points
from tempsmirk.viz import Table, table

__all__ = ["Track", "COLUMNS", "MetricsTable", "frame_track", "encoder_track", "fit_track", "landmarks_in_frame",
           "crop_scale_px", "track_metrics", "truth_metrics", "detection_metrics", "identity_errors", "average_track",
           "mesh_overlay"]

EVAL_CROP = 224  # landmark errors are reported in pixels of a crop this size


@dataclass(frozen=True)
class Track:
    """One method's reconstruction of a T-frame video.

    params: (T, ...) fields; ``cam`` is the camera of each frame's N × N crop.
    affine: (T, 2, 3) frame -> crop pixels (:mod:`tempsmirk.video.crops` conventions); crop_size: N.
    seconds: time the method took (NaN when not measured).
    """

    params: FlameParams
    affine: np.ndarray
    crop_size: int
    seconds: float = math.nan


def frame_track(params: FlameParams, frame_size: tuple[int, int]) -> Track:
    """A track whose cameras are for the whole (square) frame, e.g. the ground truth of a synthetic
    clip rendered at W = H: the identity crop."""
    w, h = frame_size
    if w != h:
        raise ValueError(f"frame_track needs square frames; got {w} x {h}")
    t = params.batch_size
    centre = np.full((t, 2), (w - 1) / 2.0)
    return Track(params, crop_affine(centre, np.full(t, float(w)), w), w)


def crop_scale_px(landmarks: np.ndarray, found: np.ndarray) -> float:
    """Pixels of a 224-px crop per frame pixel: 224 over the median side of SMIRK's 1.4 × landmark
    box over frames with a face. landmarks (T, 478, 3) frame pixels."""
    side = boxes_from_landmarks(landmarks, found, DEFAULT_SCALE).size[np.asarray(found, bool)]
    if side.size == 0:
        raise ValueError("no frame has a face: there is no box to measure errors in")
    return EVAL_CROP / float(np.median(side))


def landmarks_in_frame(model, track: Track) -> np.ndarray:
    """The track's MediaPipe-matched points in frame pixels (pixel centres at integers, like the
    detections): (T, L, 2) float64. ``model``: a :class:`~tempsmirk.fitting.LandmarkFlame`."""
    p = track.params.to(model.j_template.device, model.j_template.dtype)
    with torch.no_grad():
        out = model(p.shape, p.expression, p.global_pose, p.jaw_pose, p.eyelids, inner=False)
        uv = project_points(out.mediapipe, p.cam).normalised.double().cpu().numpy()  # (T, L, 2) in [-1, 1]
    crop_px = (uv + 1.0) * (track.crop_size / 2.0) - 0.5  # tempsmirk.video.crops.to_normalized inverted
    return transform_points(crop_px, invert_affine(track.affine))


def _accel_px(points: np.ndarray, found: np.ndarray) -> float:
    """Mean per-point ‖second difference‖ over steps whose three frames are all found: (T, L, 2)."""
    ok = found[:-2] & found[1:-1] & found[2:]
    acc = np.linalg.norm(points[:-2] - 2 * points[1:-1] + points[2:], axis=-1).mean(-1)
    return float(acc[ok].mean()) if ok.any() else math.nan


def detection_metrics(landmarks: np.ndarray, found: np.ndarray, mp_indices: Tensor) -> dict[str, float]:
    """MediaPipe's own row: the acceleration of its detections (error 0 by definition)."""
    scale = crop_scale_px(landmarks, found)
    pts = np.asarray(landmarks, np.float64)[:, np.asarray(mp_indices.cpu()), :2] * scale
    return {"landmark_error_px": 0.0, "landmark_accel_px": _accel_px(pts, np.asarray(found, bool))}


def track_metrics(model, flame, track: Track, landmarks: np.ndarray, found: np.ndarray,
                  truth: Optional[Track] = None) -> dict[str, float]:
    """One row of the comparison (module docstring): landmark error and acceleration against
    MediaPipe's detections (T, 478, 3) frame pixels, and :func:`~tempsmirk.temporal.jitter_report`'s
    parameter metrics (with per-frame errors and ``truth_error_px`` when ``truth`` is given).
    ``model``: :class:`~tempsmirk.fitting.LandmarkFlame`; ``flame``: its FLAME (vertex metrics)."""
    from tempsmirk.temporal import jitter_report

    found = np.asarray(found, bool)
    scale = crop_scale_px(landmarks, found)
    pts = landmarks_in_frame(model, track) * scale
    det = np.asarray(landmarks, np.float64)[:, model.mp_indices.cpu().numpy(), :2] * scale
    row = {"landmark_error_px": float(np.linalg.norm(pts - det, axis=-1)[found].mean()),
           "landmark_accel_px": _accel_px(pts, found)}
    dev = flame.v_template.device
    target = None if truth is None else truth.params.to(dev)[None]
    row.update(jitter_report(track.params.to(dev)[None], flame, target).as_row())
    if truth is not None:
        row["truth_error_px"] = float(np.linalg.norm(pts - landmarks_in_frame(model, truth) * scale, axis=-1).mean())
        row.update(identity_errors(flame, track.params.to(dev), truth.params.to(dev)))
    row["seconds"] = track.seconds
    return row


def encoder_track(rec, smoothing=None) -> Track:
    """The encoder's track from a :class:`~tempsmirk.reconstruct.Reconstruction` (its ``encoded``
    output, else ``raw``), optionally through an inference-time filter
    (:mod:`tempsmirk.reconstruct.smoothing`)."""
    from tempsmirk.reconstruct.smoothing import smooth_params

    params = rec.encoded if rec.encoded is not None else rec.raw
    fps = rec.video.fps if math.isfinite(rec.video.fps) and rec.video.fps > 0 else 25.0
    seconds = rec.times.encode + rec.times.crop
    return Track(smooth_params(params, smoothing, fps), rec.video.crop_affine, rec.video.crop_size, seconds)


@torch.no_grad()
def identity_errors(flame, params: FlameParams, truth: FlameParams) -> dict[str, float]:
    """The vertex error split in two (millimetres, mean over vertices): ``identity_error_mm``, the
    neutral faces of the clip-mean shapes (landmarks barely constrain identity), and
    ``motion_error_mm``, the pose-normalised meshes with the truth's identity put in, i.e. the
    error of expression, jaw and eyelids alone. params, truth: (T, ...) fields."""
    from tempsmirk.temporal import pose_normalised_vertices

    neutral = flame(shape=torch.cat([params.shape.mean(0, keepdim=True), truth.shape.mean(0, keepdim=True)]))
    identity = (neutral.vertices[0] - neutral.vertices[1]).norm(dim=-1).mean()
    ours = pose_normalised_vertices(flame, replace(params, shape=truth.shape)[None])
    motion = (ours - pose_normalised_vertices(flame, truth[None])).norm(dim=-1).mean()
    return {"identity_error_mm": float(identity) * 1e3, "motion_error_mm": float(motion) * 1e3}


def truth_metrics(model, flame, params: FlameParams, truth: FlameParams, clean) -> dict[str, float]:
    """A row against known parameters without a video: :func:`~tempsmirk.temporal.jitter_report`
    with the truth, :func:`identity_errors`, and ``truth_error_px``, the landmark error against
    the truth's own projected points ``clean`` (:func:`tempsmirk.fitting.project_targets`),
    pixels of a 224-px image. params, truth: (T, ...) fields."""
    from tempsmirk.fitting import reprojection_error
    from tempsmirk.temporal import jitter_report

    row = jitter_report(params[None], flame, truth[None]).as_row()
    row.update(identity_errors(flame, params, truth))
    row["truth_error_px"] = float(reprojection_error(model, params, clean).nanmean())
    return row


def average_track(truth: Track) -> Track:
    """The trivial answer: the clip's average parameters (the average face at the average pose and
    camera) for every frame."""
    return replace(truth, params=truth.params.map(lambda x: x.mean(0, keepdim=True).expand_as(x).clone()),
                   seconds=math.nan)


def fit_track(landmarks: np.ndarray, found: np.ndarray, fps: float, flame, config, *, model=None,
              init: Optional[Track] = None, temporal: bool = True, crop_size: int = 224,
              scale: float = DEFAULT_SCALE) -> Track:
    """FLAME fitted to a video's landmarks as ``reconstruct --fit`` does: landmarks (T, 478, 3)
    frame pixels, ``config`` a :class:`~tempsmirk.fitting.FitConfig`. With ``init`` (an encoder's
    track) the fit runs in the encoder's crop and starts from it; otherwise in the command's
    default crop (``crop_size``, ``scale``)."""
    from tempsmirk.fitting import LandmarkFlame, track
    from tempsmirk.reconstruct.pipeline import crop_transforms, fit_targets

    model = LandmarkFlame(flame) if model is None else model
    if init is not None:
        affine, crop_size = init.affine, init.crop_size
    else:
        affine = crop_transforms(landmarks, found, fps, crop_size, scale)
    start = time.perf_counter()
    targets = fit_targets(landmarks, found, affine, crop_size, flame)
    result = track(model, targets, config, None if init is None else init.params, temporal=temporal)
    return Track(result.params.to("cpu", torch.float32), affine, crop_size, time.perf_counter() - start)


# ----------------------------------------------------------------------------- the table
#: Columns of a comparison: key -> (label, unit).
COLUMNS = {
    "landmark_error_px": ("landmark error vs MediaPipe", "px"),
    "truth_error_px": ("landmark error vs truth", "px"),
    "landmark_accel_px": ("landmark acceleration", "px/frame²"),
    "vertex_error_mm": ("vertex error", "mm"),
    "identity_error_mm": ("identity error", "mm"),
    "motion_error_mm": ("expression + jaw error", "mm"),
    "vertex_accel_mm": ("vertex acceleration", "mm/frame²"),
    "vertex_accel_error_mm": ("vertex acceleration error", "mm/frame²"),
    "pose_error_deg": ("head rotation error", "°"),
    "pose_accel_deg": ("head rotation acceleration", "°/frame²"),
    "jaw_error_deg": ("jaw error", "°"),
    "jaw_accel_deg": ("jaw acceleration", "°/frame²"),
    "expression_rmse": ("expression RMSE", "coefficients"),
    "expression_accel": ("expression acceleration", "coefficients/frame²"),
    "expression_accel_error": ("expression acceleration error", "coefficients/frame²"),
    "shape_variance": ("identity variance", "coefficients²"),
    "seconds": ("time", "s"),
}


@dataclass(frozen=True)
class MetricsTable:
    """Rows of :func:`track_metrics` (method name -> metrics) shown with labels and units; columns
    are those of :data:`COLUMNS` that some row has (or ``columns``). Pixels are pixels of a 224-px
    crop; accelerations are per frame². ``note`` is printed under the table. Rendered by
    :func:`tempsmirk.viz.table` (HTML in notebooks, aligned text in a terminal)."""

    rows: Mapping[str, Mapping[str, float]]
    columns: Optional[Sequence[str]] = None
    note: str = ""

    def _columns(self) -> list[str]:
        if self.columns is not None:
            return list(self.columns)
        return [c for c in COLUMNS if any(c in r and r[c] == r[c] for r in self.rows.values())]

    def table(self) -> Table:
        cols = self._columns()
        rows = {name: [r.get(c) for c in cols] for name, r in self.rows.items()}
        return table(rows, [COLUMNS[c][0] for c in cols], units=[COLUMNS[c][1] for c in cols],
                     index="method", note=self.note)

    def __str__(self) -> str:
        return str(self.table())

    __repr__ = __str__  # a notebook's text/plain and a terminal show the table, not the fields

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


# ----------------------------------------------------------------------------- pictures
@torch.no_grad()
def mesh_overlay(frames: np.ndarray, track: Track, flame, index: Sequence[int]) -> np.ndarray:
    """The track's meshes drawn over some of its frames: frames (B, H, W, 3) uint8 (frames ``index``
    of the video) -> (B, H, W, 3) uint8, as the overlay video's middle panel."""
    from tempsmirk.reconstruct.overlay import blend_windows, render_windows

    dev = flame.v_template.device
    p = track.params[torch.as_tensor(list(index))].to(dev)
    out = flame.forward_params(p)
    face = flame.region_faces("face") if "face" in flame.masks else None
    affine = torch.from_numpy(np.asarray(track.affine)[list(index)]).to(dev)
    win = render_windows(out.vertices, flame.faces, p.cam, affine, track.crop_size, frames.shape[1:3], face)
    batch = torch.from_numpy(np.ascontiguousarray(frames)).to(dev)
    return blend_windows(batch, win.rendering.image, win.rendering.mask, win.origin).cpu().numpy()
