"""Clip augmentation: rotation in the image transforms, once-per-clip vs per-frame draws, and the
synthetic ground truth that follows the augmented frames (against independent references:
scipy's rotations, a written-out projection, a re-rendering)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from tempsmirk.data import ClipAugmentation, SyntheticConfig, SyntheticFaces
from tempsmirk.data.augmentation import augment_frames, draw_clip_transform, roll_global_pose
from tempsmirk.data.synthetic import item_seed, render_faces, sample_appearance
from tempsmirk.data.transforms import zoom_shift_images, zoom_shift_points

T = 5
N = 64


def _dot_image(x: float, y: float) -> torch.Tensor:
    """A (1, 3, N, N) black image with a 3×3 white dot centred on normalised point (x, y)."""
    img = torch.zeros(1, 3, N, N)
    px, py = round((x + 1) * N / 2 - 0.5), round((y + 1) * N / 2 - 0.5)
    img[..., py - 1:py + 2, px - 1:px + 2] = 1
    return img


def _centroid(img: torch.Tensor) -> tuple[float, float]:
    """Normalised (x, y) of the bright blob of a (3, N, N) image."""
    grey = img.sum(0)
    w = (grey > 0.3 * grey.max()) * grey
    ys, xs = torch.meshgrid(torch.arange(N), torch.arange(N), indexing="ij")
    cx, cy = float((w * xs).sum() / w.sum()), float((w * ys).sum() / w.sum())
    return (cx + 0.5) * 2 / N - 1, (cy + 0.5) * 2 / N - 1


@pytest.mark.parametrize("deg", [0.0, 25.0, -40.0])
def test_rotated_image_content_lands_on_the_rotated_point(deg):
    """The image and point versions of k·R(θ)·x + d agree; R written out, clockwise on screen."""
    x = torch.tensor([[[0.3, -0.2]]])
    k, d, th = torch.tensor([1.1]), torch.tensor([[0.05, -0.1]]), torch.tensor([math.radians(deg)])
    c, s = math.cos(th.item()), math.sin(th.item())
    expected = (1.1 * (c * 0.3 - s * -0.2) + 0.05, 1.1 * (s * 0.3 + c * -0.2) - 0.1)
    got = zoom_shift_points(x, k, d, angle=th)[0, 0]
    assert np.allclose(got.tolist(), expected, atol=1e-6)
    moved = zoom_shift_images(_dot_image(0.3, -0.2), k, d, padding_mode="zeros", angle=th)[0]
    assert np.allclose(_centroid(moved), expected, atol=0.02)
    if deg > 0:  # +x rotates towards +y, which is down on screen: clockwise
        assert zoom_shift_points(torch.tensor([[[1.0, 0.0]]]), torch.ones(1), torch.zeros(1, 2), th)[0, 0, 1] > 0
    # No angle and a zero angle are the same move.
    img = torch.rand(1, 3, N, N, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(zoom_shift_images(img, k, d), zoom_shift_images(img, k, d, angle=torch.zeros(1)))
    with pytest.raises(ValueError, match="square"):
        zoom_shift_images(torch.zeros(1, 3, 8, 16), k, d, angle=th)


def test_draws_once_per_clip_or_per_frame():
    aug = ClipAugmentation(rotation=10.0)
    clip = draw_clip_transform(aug, T, torch.Generator().manual_seed(1))
    frame = draw_clip_transform(dataclasses.replace(aug, per_frame=True), T, torch.Generator().manual_seed(1))
    for f in dataclasses.fields(clip):
        a, b = getattr(clip, f.name), getattr(frame, f.name)
        assert a.shape[0] == b.shape[0] == T
        assert (a == a[:1]).all(), f.name  # one draw, every frame
        assert not torch.allclose(b[1:], b[:1].expand_as(b[1:])), f.name  # a draw per frame
    # Per frame or per clip, each value lies in its configured range (the same distribution per frame).
    many = draw_clip_transform(dataclasses.replace(aug, per_frame=True), 4000, torch.Generator().manual_seed(2))
    assert many.zoom.min() >= 0.85 and many.zoom.max() <= 1.15 and many.shift.abs().max() <= 0.08
    assert many.angle.abs().max() <= math.radians(10) and many.angle.abs().max() > math.radians(9.9)
    assert torch.equal(draw_clip_transform(aug, T, torch.Generator().manual_seed(1)).zoom, clip.zoom)
    with pytest.raises(ValueError, match="zoom_min"):
        ClipAugmentation(zoom_min=1.2, zoom_max=1.1)
    with pytest.raises(ValueError, match="rotation"):
        ClipAugmentation(rotation=-1.0)


def test_roll_global_pose_matches_scipy():
    rng = np.random.default_rng(0)
    pose = np.concatenate([rng.normal(size=(6, 3)) * 0.4, [[0, 0, 0], [0, 0, 3.1]]])  # incl. identity, ~π
    angle = np.concatenate([rng.uniform(-0.5, 0.5, 6), [0.3, 0.2]])
    got = roll_global_pose(torch.tensor(pose), torch.tensor(angle)).numpy()
    want = [Rotation.from_rotvec([0, 0, a]) * Rotation.from_rotvec(p) for p, a in zip(pose, angle)]
    np.testing.assert_allclose(Rotation.from_rotvec(got).as_matrix(), np.stack([w.as_matrix() for w in want]),
                               atol=1e-9)


def _project(head, p):
    """Independent projection (render.camera): x_n = s(x + tx), y_n = −s(y + ty), y flipped."""
    out = head(shape=p.shape, expression=p.expression, global_pose=p.global_pose, jaw_pose=p.jaw_pose,
               eyelids=p.eyelids)
    s, tx, ty = p.cam[:, :1], p.cam[:, 1:2], p.cam[:, 2:]
    return torch.stack([s * (out.landmarks_mp[..., 0] + tx), -s * (out.landmarks_mp[..., 1] + ty)], -1)


BASE = SyntheticConfig(image_size=N, n_items=2, clip_length=T, keyframe_every=4, seed=3, eyelid_max=0.0,
                       augment=True, augmentation=ClipAugmentation(rotation=20.0, zoom_min=0.8, zoom_max=1.2,
                                                                   shift=0.1))


@pytest.mark.parametrize("per_frame", [False, True])
def test_synthetic_ground_truth_follows_the_augmented_frames(head, per_frame):
    cfg = dataclasses.replace(BASE, augmentation=dataclasses.replace(BASE.augmentation, per_frame=per_frame))
    aug = SyntheticFaces(head, cfg)[0]
    plain = SyntheticFaces(head, dataclasses.replace(cfg, augment=False))[0]
    # Shape, expression, jaw, eyelids untouched; camera and head pose moved.
    for name in ("shape", "expression", "eyelids", "jaw_pose"):
        assert torch.equal(getattr(aug.params, name), getattr(plain.params, name)), name
    assert not torch.allclose(aug.params.cam, plain.params.cam)
    # The moved parameters render the moved landmarks (eyelids 0: exact up to float error).
    torch.testing.assert_close(aug.landmarks_mp, _project(head, aug.params), atol=2e-4, rtol=0)
    torch.testing.assert_close(plain.landmarks_mp, _project(head, plain.params), atol=2e-4, rtol=0)
    # The image is the plain clip under the item's transform.
    g = torch.Generator().manual_seed(item_seed(item_seed(cfg.seed, 0), 1))
    tf = draw_clip_transform(cfg.augmentation, T, g)
    image, (lmk,) = augment_frames(plain.image, (plain.landmarks_mp,), tf, padding_mode="reflection")
    torch.testing.assert_close(aug.image, image)
    torch.testing.assert_close(aug.landmarks_mp, lmk)
    # The head turned about the camera axis by −θ (FLAME's y-up frame): R_aug·R_plainᵀ = R_z(−θ).
    for a, b, th in zip(plain.params.global_pose.double().numpy(), aug.params.global_pose.double().numpy(),
                        tf.angle.double().numpy()):
        turn = Rotation.from_rotvec(b) * Rotation.from_rotvec(a).inv()
        np.testing.assert_allclose(turn.as_rotvec(), [0, 0, -th], atol=1e-5)
    spread = float(aug.params.cam[:, 0].std() / aug.params.cam[:, 0].mean())
    plain_spread = float(plain.params.cam[:, 0].std() / plain.params.cam[:, 0].mean())
    assert (spread > plain_spread + 0.02) == per_frame  # per-frame zoom jitters the camera scale


def test_rerendered_augmented_ground_truth_matches_the_augmented_image(head):
    """Render the augmented ground truth: a cheek patch looks like the augmented frame's."""
    geometric = dataclasses.replace(BASE.augmentation, brightness=0.0, contrast=0.0, saturation=0.0)
    cfg = dataclasses.replace(BASE, augmentation=geometric)  # the re-rendering has no colour change
    aug = SyntheticFaces(head, cfg)[1]
    plain = SyntheticFaces(head, dataclasses.replace(cfg, augment=False))[1]
    appearance = sample_appearance(head, N, torch.Generator().manual_seed(item_seed(cfg.seed, 1)))
    rerendered, lmk68, _ = render_faces(head, aug.params, torch.zeros(T, 6), appearance, N)
    torch.testing.assert_close(lmk68, aug.landmarks68, atol=2e-4, rtol=0)
    centre = ((aug.landmarks68[:, 30] + 1) * N / 2).round().long()  # nose tip, pixels
    win = lambda img, c: img[:, c[1] - 5:c[1] + 5, c[0] - 9:c[0] - 3]  # noqa: E731
    err_moved = torch.stack([(win(aug.image[t], centre[t]) - win(rerendered[t], centre[t])).abs().mean()
                             for t in range(T)])
    err_plain = torch.stack([(win(plain.image[t], centre[t]) - win(rerendered[t], centre[t])).abs().mean()
                             for t in range(T)])
    assert err_moved.mean() < 0.5 * err_plain.mean()


def test_augment_params_eyelid_bound(head):
    """With eyelids closed, the moved ground truth is off only by the unrotated eyelid field."""
    cfg = dataclasses.replace(BASE, eyelid_max=1.0)
    aug = SyntheticFaces(head, cfg)[0]
    err = (aug.landmarks_mp - _project(head, aug.params)).norm(dim=-1).max()
    s = aug.params.cam[:, 0].max()
    bound = 2 * math.sin(math.radians(20) / 2) * head.eyelid_dirs.norm(dim=-1).max() * s
    assert err <= bound + 2e-4
