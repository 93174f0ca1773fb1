"""SMIRK's face crop: where the image shows a point is where points_to_crop puts it, at every scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tempsmirk.data.faces import crop_boxes, crop_faces, points_to_crop, smooth_boxes

S = 224


def blobs(h: int, w: int, centres: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian dots at (K, 2) pixel-centre coordinates on black: (h, w, 3) uint8."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    img = sum(np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2)) for x, y in centres)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)[..., None].repeat(3, axis=2)


def centroid(image: torch.Tensor, guess: np.ndarray, radius: int = 9) -> np.ndarray:
    grey = image.mean(0).numpy().astype(np.float64)
    x0, y0 = int(round(guess[0])) - radius, int(round(guess[1])) - radius
    win = grey[max(y0, 0):y0 + 2 * radius + 1, max(x0, 0):x0 + 2 * radius + 1]
    ys, xs = np.mgrid[max(y0, 0):max(y0, 0) + win.shape[0], max(x0, 0):max(x0, 0) + win.shape[1]]
    return np.array([(win * xs).sum() / win.sum(), (win * ys).sum() / win.sum()])


@pytest.mark.parametrize("size, centre", [
    (150.0, (450.0, 360.0)),   # enlarged (fewer source pixels than output pixels)
    (300.0, (450.0, 360.0)),   # plain resampling
    (500.0, (450.0, 360.0)),   # area-reduced by 2 first
    (700.0, (450.0, 360.0)),   # by 3
    (500.0, (120.0, 100.0)),   # partly outside the frame
])
def test_points_land_where_the_crop_shows_them(size, centre):
    h, w = 720, 900
    c = np.array(centre)
    offsets = np.array([[-0.3, -0.25], [0.2, -0.3], [0.05, 0.1], [-0.25, 0.3], [0.3, 0.28]])
    dots = c + offsets * size  # pixel-centre coordinates
    inside = (dots[:, 0] > 3) & (dots[:, 1] > 3)
    frame = blobs(h, w, dots[inside], sigma=0.025 * size)
    cen, sz = torch.tensor([centre]), torch.tensor([size])
    image = crop_faces([frame], cen, sz, S)[0]
    # landmarks use pixel edges (pixel i covers [i, i + 1)): a dot at centre index d is at d + 0.5
    expect = points_to_crop(torch.from_numpy(dots[inside] + 0.5)[None].float(), cen, sz)[0].numpy()
    expect_px = (expect + 1) / 2 * S - 0.5
    found = np.array([centroid(image, e) for e in expect_px])
    assert np.abs(found - expect_px).max() < 0.2, (found, expect_px)


@pytest.mark.parametrize("size", [200.0, 460.0, 690.0])
def test_flat_frames_stay_flat_and_outside_is_black(size):
    frame = np.full((720, 900, 3), 128, np.uint8)
    inside = crop_faces([frame], torch.tensor([[450.0, 360.0]]), torch.tensor([size]), S)[0]
    torch.testing.assert_close(inside, torch.full_like(inside, 128 / 255), atol=1e-5, rtol=0)
    corner = crop_faces([frame], torch.tensor([[10.0, 10.0]]), torch.tensor([size]), S)[0]
    assert float(corner[:, :40, :40].max()) == 0.0 and float(corner[:, -40:, -40:].min()) > 0.49


def test_crop_box_is_smirks_rule_and_clip_boxes_are_smoothed():
    pts = torch.tensor([[[10.0, 20.0], [110.0, 60.0], [50.0, 220.0]]])  # box 100 x 200
    centre, size = crop_boxes(pts, torch.tensor([1.5]))
    assert centre.tolist() == [[60.0, 120.0]] and size.tolist() == [225.0]  # int(1.5 · 150)
    c = torch.tensor([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    sc, ss = smooth_boxes(c, torch.full((5,), 100.0), radius=2)
    assert torch.allclose(sc[:, 0], torch.tensor([2.0, 2.0, 2.0, 2.0, 2.0]))  # a one-frame jump spread out
    assert torch.allclose(ss, torch.full((5,), 100.0))
