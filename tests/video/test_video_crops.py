"""Crop geometry: SMIRK's box, affines against looped references, the image path against the point
path, gap filling and smoothing of boxes, and the crops of the shared real video."""

from __future__ import annotations

import numpy as np
import pytest

from tempsmirk.video.crops import (
    DEFAULT_SCALE,
    CropBoxes,
    boxes_from_landmarks,
    contact_sheet,
    crop_affine,
    crop_image,
    fill_missing_boxes,
    invert_affine,
    landmarks_to_crop,
    load_video_crops,
    smooth_boxes,
    transform_points,
    video_boxes,
    warp_crop,
)
from tempsmirk.video.io import write_image


def test_box_rule_is_mean_side_times_scale():
    # One frame: landmarks spanning x 10..50 (w 40), y 20..80 (h 60).
    pts = np.array([[[10, 20, 0], [50, 80, 0], [30, 50, 5]]], float)
    boxes = boxes_from_landmarks(pts, np.array([True]), scale=1.4)
    assert np.allclose(boxes.center, [[30, 50]])
    assert np.allclose(boxes.size, [(40 + 60) / 2 * 1.4])
    missing = boxes_from_landmarks(np.full((1, 3, 3), np.nan), np.array([False]))
    assert np.isnan(missing.size).all() and not missing.found.any()


def test_affine_matches_a_looped_reference_and_inverts():
    center, size, n = np.array([[100.0, 60.0], [7.5, 3.25]]), np.array([80.0, 33.0]), 224
    a = crop_affine(center, size, n)
    pts = np.random.default_rng(0).uniform(-50, 200, (2, 5, 2))
    got = transform_points(pts, a)
    for t in range(2):
        for l in range(5):
            expect = (pts[t, l] - center[t]) * n / size[t] + (n - 1) / 2
            assert np.allclose(got[t, l], expect)
    assert np.allclose(transform_points(got, invert_affine(a)), pts)
    # The box's outer edges are the crop's outer edges: normalised -1 and +1.
    edges = np.array([[[center[0, 0] - size[0] / 2, center[0, 1] + size[0] / 2, 0.0]]])
    norm = landmarks_to_crop(edges, a[:1], n)
    assert np.allclose(norm[0, 0, :2], [-1.0, 1.0], atol=1e-6)


def test_warp_puts_a_marked_pixel_where_the_affine_says():
    # An independent check of the image path against the point path: mark one pixel,
    # crop, and find the mark where transform_points predicts it.
    image = np.zeros((120, 160, 3), np.uint8)
    image[47, 91] = 255
    a = crop_affine(np.array([80.0, 55.0]), np.array(56.0), 224)  # 4x upsampling
    crop = warp_crop(image, a, 224)
    ys, xs = np.nonzero(crop[..., 0] > 0)
    w = crop[ys, xs, 0].astype(float)
    centroid = np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])
    assert np.allclose(centroid, transform_points(np.array([[91.0, 47.0]]), a)[0], atol=0.3)


def test_missing_boxes_are_interpolated_and_held_at_the_ends():
    t = 8
    found = np.array([False, True, True, False, False, True, True, False])
    center = np.stack([np.arange(t) * 10.0, np.full(t, 5.0)], axis=1)
    size = np.arange(t) * 2.0 + 50
    center[~found] = np.nan
    size[~found] = np.nan
    filled = fill_missing_boxes(CropBoxes(center, size, found))
    assert np.allclose(filled.center[1:7, 0], np.arange(1, 7) * 10.0)  # linear inside
    assert filled.center[0, 0] == 10.0 and filled.center[7, 0] == 60.0  # held at the ends
    assert np.array_equal(filled.found, found)  # interpolated frames stay flagged
    with pytest.raises(ValueError, match="no frame has a face"):
        fill_missing_boxes(CropBoxes(np.full((3, 2), np.nan), np.full(3, np.nan), np.zeros(3, bool)))


def test_smoothing_removes_jitter_without_lag():
    rng = np.random.default_rng(0)
    t, fps = 240, 24.0
    time = np.arange(t) / fps
    true = np.stack([200 + 40 * np.sin(2 * np.pi * 0.3 * time), 150 + 0 * time], axis=1)
    noisy = true + rng.normal(0, 2.0, true.shape)
    boxes = CropBoxes(noisy, np.full(t, 300.0) + rng.normal(0, 3.0, t), np.ones(t, bool))
    smooth = smooth_boxes(boxes, fps)
    acc = lambda x: np.abs(x[2:] - 2 * x[1:-1] + x[:-2]).mean()  # noqa: E731
    assert acc(smooth.center) < 0.2 * acc(noisy)
    assert acc(smooth.size) < 0.2 * acc(boxes.size)
    # Zero phase: no systematic lag against the true motion (error has no trend with velocity).
    err = (smooth.center - true)[10:-10, 0]
    vel = np.gradient(true[:, 0])[10:-10]
    assert abs(np.corrcoef(err, vel)[0, 1]) < 0.3
    assert np.abs(err).max() < 4.0
    # A constant box is left alone; sigma 0 disables smoothing.
    const = CropBoxes(np.tile([5.0, 6.0], (10, 1)), np.full(10, 9.0), np.ones(10, bool))
    assert np.allclose(smooth_boxes(const, 25.0).center, const.center)
    assert smooth_boxes(boxes, fps, 0.0) is boxes


@pytest.mark.needs_shared_data
def test_real_video_crops_are_centred_and_steady(real_crops, real_crop_frames, real_landmarks, tmp_path):
    out, crops = real_crops
    assert crops.num_frames == real_landmarks.num_frames == 472
    assert real_crop_frames.shape == (472, 224, 224, 3)
    back = load_video_crops(out)
    assert np.allclose(back.affine, crops.affine) and np.array_equal(back.found, crops.found)
    assert np.array_equal(np.isnan(back.landmarks[:, 0, 0]), ~back.found)

    lm = crops.landmarks[crops.found, :, :2]
    centroid = lm.mean(axis=1)  # (T, 2) per-frame landmark centroid, crop coordinates
    assert np.abs(centroid.mean(axis=0)).max() < 0.05
    assert np.abs(centroid).max() < 0.15  # every frame centred, not only on average
    spread = lm.std(axis=1).mean(axis=0)
    # With scale 1.4 the face fills about 1/1.4 of the crop: std of a filled box
    # (uniform over +-0.71) would be 0.41; landmarks cluster inwards.
    assert np.all((spread > 0.2) & (spread < 0.45))
    assert np.abs(lm).max() < 1.0  # no landmark leaves the crop
    # The crop box adds no jitter: crop-space centroid moves less than the raw box centre.
    raw = boxes_from_landmarks(real_landmarks.landmarks, real_landmarks.found, DEFAULT_SCALE)
    acc = lambda x: np.abs(x[2:] - 2 * x[1:-1] + x[:-2]).mean()  # noqa: E731
    assert acc(crops.boxes.center) < 0.3 * acc(raw.center)
    # The frame is actually the face: the crop centre is brighter-than-black skin, not border.
    assert real_crop_frames[:, 100:124, 100:124].mean() > 60

    idx = np.linspace(0, 471, 24).astype(int)
    sheet = contact_sheet(real_crop_frames[idx], crops.landmarks[idx])
    write_image(tmp_path / "contact_sheet.png", sheet)
    assert sheet.shape == (4 * 224, 6 * 224, 3)
    assert (tmp_path / "contact_sheet.png").stat().st_size > 10_000


@pytest.mark.needs_shared_data
def test_interpolated_boxes_for_blank_frames_stay_flagged(real_landmarks):
    lm = real_landmarks.landmarks[:40].copy()
    found = real_landmarks.found[:40].copy()
    found[10:20] = False
    lm[10:20] = np.nan
    boxes = video_boxes(lm, found, 24.0)
    assert np.isfinite(boxes.center).all() and np.isfinite(boxes.size).all()
    assert np.array_equal(boxes.found, found)
    ref = video_boxes(real_landmarks.landmarks[:40], real_landmarks.found[:40], 24.0)
    # The head barely moves in a 10-frame gap: the interpolated box stays close.
    assert np.abs(boxes.center - ref.center).max() < 0.1 * ref.size.mean()


@pytest.mark.needs_shared_data
def test_crop_image_matches_the_video_path_without_smoothing(face_frames, real_landmarks):
    crop, affine, lm = crop_image(face_frames[3], real_landmarks.landmarks[3])
    assert crop.shape == (224, 224, 3) and lm.shape == (478, 3)
    boxes = boxes_from_landmarks(real_landmarks.landmarks[3:4], real_landmarks.found[3:4])
    assert np.allclose(affine, crop_affine(boxes.center, boxes.size)[0])
    # Unsmoothed, the landmark box is centred exactly: its extremes mirror each other.
    assert np.allclose(lm[:, :2].min(axis=0), -lm[:, :2].max(axis=0), atol=1e-4)
    with pytest.raises(ValueError, match="no face"):
        crop_image(face_frames[3], np.full((478, 3), np.nan))
