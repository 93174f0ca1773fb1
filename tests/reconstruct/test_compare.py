"""Comparing reconstructions: landmarks back in the frame, the metrics, the table."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from tempsmirk.fitting import LandmarkFlame
from tempsmirk.flame.params import FlameParams
from tempsmirk.reconstruct.compare import (
    MetricsTable,
    Track,
    crop_scale_px,
    identity_errors,
    landmarks_in_frame,
    track_metrics,
)
from tempsmirk.render import project_points
from tempsmirk.video.crops import crop_affine, landmarks_to_crop


def a_track(flame, t: int = 6) -> Track:
    g = torch.Generator().manual_seed(0)
    params = FlameParams(global_pose=torch.randn(t, 3, generator=g) * 0.1,
                         cam=torch.tensor([[7.0, 0.002, -0.004]]).repeat(t, 1) + torch.randn(t, 3, generator=g) * 1e-3,
                         shape=torch.zeros(t, flame.n_shape), expression=torch.randn(t, flame.n_exp, generator=g) * 0.3,
                         eyelids=torch.rand(t, 2, generator=g), jaw_pose=torch.rand(t, 3, generator=g) * 0.05)
    centre = np.stack([np.linspace(300, 320, t), np.linspace(170, 180, t)], 1)
    return Track(params, crop_affine(centre, np.linspace(180, 200, t), 64), 64)


def test_landmarks_in_frame_go_back_into_the_crop(flame):
    """data_prep's own frame -> crop mapping takes them back to the projection in the crop."""
    model = LandmarkFlame(flame)
    track = a_track(flame)
    px = landmarks_in_frame(model, track)  # (T, L, 2) frame pixels
    back = landmarks_to_crop(np.concatenate([px, np.zeros_like(px[..., :1])], -1), track.affine, track.crop_size)
    p = track.params
    with torch.no_grad():
        want = project_points(flame(shape=p.shape, expression=p.expression, global_pose=p.global_pose,
                                    jaw_pose=p.jaw_pose, eyelids=p.eyelids).landmarks_mp, p.cam).normalised
    np.testing.assert_allclose(back[..., :2], want.numpy(), atol=1e-5)


def test_track_metrics_against_exact_detections(flame):
    """Detections that are the track's own points: zero error, and the acceleration of those points
    (scaled to a 224-px crop of SMIRK's box) computed here with a loop."""
    model = LandmarkFlame(flame)
    track = a_track(flame)
    px = landmarks_in_frame(model, track)
    det = np.full((6, 478, 3), np.nan)
    det[..., :] = 0.0
    det[:, :, :2] = px.mean(1, keepdims=True)  # the other points at the centre: the box is the MediaPipe points'
    det[:, model.mp_indices.numpy(), :2] = px
    found = np.ones(6, bool)
    row = track_metrics(model, flame, track, det, found)
    assert abs(row["landmark_error_px"]) < 1e-6
    k = crop_scale_px(det, found)
    loop = np.mean([np.linalg.norm((px[t - 1] - 2 * px[t] + px[t + 1]) * k, axis=-1).mean() for t in range(1, 5)])
    assert abs(row["landmark_accel_px"] - loop) < 1e-9
    assert {"vertex_accel_mm", "expression_accel"} <= set(row)


def test_identity_and_motion_errors(flame):
    p = a_track(flame).params
    assert identity_errors(flame, p, p) == {"identity_error_mm": 0.0, "motion_error_mm": 0.0}
    other = replace(p, shape=p.shape + 0.5)
    e = identity_errors(flame, other, p)
    assert e["identity_error_mm"] > 0.1 and e["motion_error_mm"] < 1e-4  # the identity only


def test_metrics_table_shows_units():
    table = MetricsTable({"a": {"landmark_error_px": 1.23456, "seconds": 3.0, "vertex_error_mm": float("nan")},
                          "b": {"landmark_error_px": 2.0}})
    html = table._repr_html_()
    assert "<table" in html and "<small>px</small>" in html and ">1.23</td>" in html
    assert ">—</td>" in html  # b has no time
    assert "vertex error" not in html  # a column nobody measured is left out
    assert "landmark error vs MediaPipe (px)" in str(table) and repr(table) == str(table)
