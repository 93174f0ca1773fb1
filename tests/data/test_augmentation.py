"""Training augmentation. SMIRK's pipeline: each step against an independent formula (OpenCV for
CLAHE, the box blur and the rotation, as albumentations computes them), landmarks against the
transformed image, the draws' statistics. Clips: rotation in the image transforms, once-per-clip vs
per-frame draws, and the synthetic ground truth that follows the augmented frames (against
independent references: scipy's rotations, a written-out projection, a re-rendering)."""

from __future__ import annotations

import colorsys
import dataclasses
import math

import cv2
import kornia.enhance
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from tempsmirk.data import ClipAugmentation, SyntheticConfig, SyntheticFaces
from tempsmirk.data.augmentation import (
    FaceAugmentationConfig,
    augment_colour,
    augment_faces,
    augment_frames,
    draw_augmentation,
    draw_clip_transform,
    roll_global_pose,
    ssr_matrices,
)
from tempsmirk.data.synthetic import item_seed, render_faces, sample_appearance
from tempsmirk.data.transforms import warp_images, zoom_shift_images, zoom_shift_points

# ----------------------------------------------------------------------------- SMIRK's pipeline

OFF = {f.name: 0.0 for f in dataclasses.fields(FaceAugmentationConfig) if f.name.startswith("p_")}


def only(**on) -> FaceAugmentationConfig:
    """A config with every operation off except ``on`` (probabilities)."""
    return FaceAugmentationConfig(**{**OFF, **on})


def smooth_image(n=1, size=64, seed=0) -> torch.Tensor:
    """Images with structure at several scales, values inside (0, 1)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 6, 6, generator=g)
    img = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)
    img = img + 0.15 * torch.rand(n, 3, size, size, generator=g)
    return img.clamp(0.02, 0.98)


def blob_image(centres_px: np.ndarray, size: int, sigma: float = 1.6) -> torch.Tensor:
    """Gaussian dots at (K, 2) pixel-centre coordinates (x, y), on black: (1, 3, size, size)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    img = sum(np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2)) for x, y in centres_px)
    return torch.from_numpy(np.clip(img, 0, 1)).float().expand(1, 3, size, size).clone()


def blob_centroids(image: torch.Tensor, guesses_px: np.ndarray, radius: int = 5) -> np.ndarray:
    """Intensity centroid of each dot, in a window around its guessed position."""
    grey = image[0].mean(0).numpy().astype(np.float64)
    out = []
    for gx, gy in guesses_px:
        x0, y0 = int(round(gx)) - radius, int(round(gy)) - radius
        win = grey[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1]
        ys, xs = np.mgrid[y0:y0 + win.shape[0], x0:x0 + win.shape[1]]
        out.append(((win * xs).sum() / win.sum(), (win * ys).sum() / win.sum()))
    return np.array(out)


def test_shift_scale_rotate_moves_landmarks_with_the_image():
    size = 96
    centres = np.array([[30.0, 35.0], [62.0, 33.0], [47.0, 52.0], [36.0, 68.0], [59.0, 67.0]])
    image = blob_image(centres, size)
    points = torch.from_numpy((centres + 0.5) / size * 2 - 1).float()[None]  # normalised
    cfg = only(p_affine=1.0)
    worst = 0.0
    for seed in range(6):
        g = torch.Generator().manual_seed(seed)
        draw = draw_augmentation(cfg, 1, g)
        out, moved = augment_faces(image, points, draw, cfg, g)
        expect_px = ((moved[0].numpy() + 1) / 2 * size - 0.5)
        found = blob_centroids(out, expect_px)
        worst = max(worst, float(np.abs(found - expect_px).max()))
        # the draw really moved them (a test that cannot fail would pass with an identity warp)
        assert np.abs(expect_px - centres).max() > 1.0
    assert worst < 0.15, worst


def test_rotation_sense_and_shift_scale_match_opencv():
    """One draw through ssr_matrices equals OpenCV's getRotationMatrix2D + shift (albumentations)."""
    size = 64
    cfg = only(p_affine=1.0)
    draw = draw_augmentation(cfg, 1, torch.Generator().manual_seed(3))
    m = ssr_matrices(draw)[0].numpy().astype(np.float64)
    angle, scale = float(draw.angle[0]), float(draw.scale[0])
    dx, dy = draw.shift[0].tolist()
    centre = ((size - 1) / 2, (size - 1) / 2)
    cv = cv2.getRotationMatrix2D(centre, angle, scale)
    cv[0, 2] += dx * size
    cv[1, 2] += dy * size
    pts_px = np.array([[5.0, 9.0], [40.0, 20.0], [60.0, 61.0]])
    ours = ((np.c_[(pts_px + 0.5) / size * 2 - 1, np.ones(3)] @ m.T) + 1) / 2 * size - 0.5
    theirs = np.c_[pts_px, np.ones(3)] @ cv.T
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_clahe_matches_opencv_on_the_lab_lightness():
    """albumentations' CLAHE: cv2 Lab, createCLAHE(clip, 8x8) on L, back to RGB."""
    image = smooth_image(size=128, seed=1) ** 2  # a dark image: CLAHE has work to do
    clip = 3.0
    cfg = only(p_clahe=1.0)
    draw = dataclasses.replace(draw_augmentation(cfg, 1, torch.Generator().manual_seed(0)),
                               clahe_clip=torch.tensor([clip]))
    ours = augment_colour(image, draw, cfg, torch.Generator())[0].permute(1, 2, 0).numpy() * 255
    rgb8 = (image[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    lab = cv2.cvtColor(rgb8, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = cv2.createCLAHE(clipLimit=clip, tileGridSize=(8, 8)).apply(lab[:, :, 0])
    theirs = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB).astype(np.float64)
    change = np.abs(theirs - rgb8).mean()
    diff = np.abs(ours - theirs).mean()
    assert change > 15, change  # CLAHE changes this image a lot ...
    # ... and ours the same way, up to kornia's tile phase and OpenCV's 8-bit Lab (about 12 %),
    assert diff < 0.15 * change, (diff, change)
    # while CLAHE per RGB channel (kornia's RandomClahe) is as far off as doing nothing.
    per_channel = kornia.enhance.equalize_clahe(image, clip, (8, 8))[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(per_channel - theirs).mean() > 0.5 * change


def test_box_blur_matches_opencv():
    image = smooth_image(seed=2)
    cfg = only(p_blur=1.0)
    for k in (3, 5, 7):
        draw = dataclasses.replace(draw_augmentation(cfg, 1, torch.Generator()), blur=torch.tensor([k]))
        ours = augment_colour(image, draw, cfg, torch.Generator())[0].permute(1, 2, 0).numpy()
        theirs = cv2.blur(image[0].permute(1, 2, 0).numpy(), (k, k))  # BORDER_REFLECT_101, as albumentations
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_pointwise_steps_follow_albumentations_formulas():
    x = smooth_image(n=1, seed=3)
    d = draw_augmentation(FaceAugmentationConfig(), 1, torch.Generator().manual_seed(4))
    a, b, gam, rgb = float(d.contrast[0]), float(d.brightness[0]), float(d.gamma[0]), d.rgb[0]
    masks = ("bc_on", "gamma_on", "jitter_on", "clahe_on", "rgb_on", "blur_on", "noise_on", "affine_on")
    for on, expected in [("bc_on", (x * a + b).clamp(0, 1)), ("gamma_on", x ** gam),
                         ("rgb_on", (x + rgb.view(1, 3, 1, 1)).clamp(0, 1))]:
        draw = dataclasses.replace(d, **{m: torch.tensor([m == on]) for m in masks})
        out = augment_colour(x, draw, FaceAugmentationConfig(), torch.Generator())
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
        assert float((out - x).abs().max()) > 1e-3  # the step did something


def _jitter_reference(rgb: np.ndarray, factors, order) -> np.ndarray:
    """torchvision's colour jitter written out per pixel (colorsys for the hue), clamped per step."""
    out = rgb.astype(np.float64).copy()
    grey = lambda im: im @ np.array([0.299, 0.587, 0.114])  # noqa: E731
    for i in order:
        f = factors[i]
        if i == 0:
            out = out * f
        elif i == 1:
            out = (out - grey(out).mean()) * f + grey(out).mean()
        elif i == 2:
            out = (out - grey(out)[..., None]) * f + grey(out)[..., None]
        else:
            flat = [colorsys.rgb_to_hsv(*p) for p in out.reshape(-1, 3)]
            out = np.array([colorsys.hsv_to_rgb((h + f) % 1.0, s, v) for h, s, v in flat]).reshape(out.shape)
        out = np.clip(out, 0, 1)
    return out


def test_colour_jitter_matches_torchvision_formulas_in_the_drawn_order():
    x = smooth_image(size=8, seed=5)
    cfg = only(p_jitter=1.0)
    for seed in range(3):
        draw = draw_augmentation(dataclasses.replace(cfg, jitter=0.3), 1, torch.Generator().manual_seed(seed))
        ours = augment_colour(x, draw, cfg, torch.Generator())[0].permute(1, 2, 0).numpy()
        ref = _jitter_reference(x[0].permute(1, 2, 0).numpy(), draw.jitter[0].tolist(), draw.jitter_order[0].tolist())
        np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_noise_has_the_drawn_standard_deviation():
    x = torch.full((1, 3, 128, 128), 0.5)
    cfg = only(p_noise=1.0)
    draw = draw_augmentation(cfg, 1, torch.Generator().manual_seed(0))
    out = augment_colour(x, draw, cfg, torch.Generator().manual_seed(1))
    sigma = float(draw.noise_std[0])
    assert math.sqrt(10) / 255 <= sigma <= math.sqrt(50) / 255
    assert abs(float((out - x).std()) / sigma - 1) < 0.03


def test_draw_statistics_are_smirks():
    cfg = FaceAugmentationConfig()
    d = draw_augmentation(cfg, 20000, torch.Generator().manual_seed(0))
    for name, p in [("bc_on", 0.5), ("gamma_on", 0.5), ("jitter_on", 0.25), ("clahe_on", 0.255),
                    ("rgb_on", 0.25), ("blur_on", 0.1), ("noise_on", 0.5), ("affine_on", 0.9)]:
        assert abs(float(getattr(d, name).float().mean()) - p) < 0.015, name
    assert float(d.contrast.min()) >= 0.8 and float(d.contrast.max()) <= 1.2
    assert float(d.gamma.min()) >= 0.8 and float(d.gamma.max()) <= 1.2
    assert float(d.angle.abs().max()) <= 10 and float(d.shift.abs().max()) <= 0.05
    assert float((d.scale - 1).abs().max()) <= 0.1 and float(d.rgb.abs().max()) <= 20 / 255
    assert set(d.blur.tolist()) == {3, 5, 7}
    assert (d.jitter_order.sort(dim=1).values == torch.arange(4)).all()
    assert 1.0 <= float(d.clahe_clip.min()) and float(d.clahe_clip.max()) <= 4.0


def test_draws_are_seeded_and_independent_of_switched_off_steps():
    a = draw_augmentation(FaceAugmentationConfig(), 4, torch.Generator().manual_seed(7))
    b = draw_augmentation(FaceAugmentationConfig(), 4, torch.Generator().manual_seed(7))
    c = draw_augmentation(FaceAugmentationConfig(p_gamma=0.0, p_blur=0.0), 4, torch.Generator().manual_seed(7))
    for f in dataclasses.fields(a):
        torch.testing.assert_close(getattr(a, f.name), getattr(b, f.name))
        if f.name not in ("gamma_on", "blur_on"):
            torch.testing.assert_close(getattr(a, f.name), getattr(c, f.name))
    assert not c.gamma_on.any() and not c.blur_on.any()


def test_a_clip_shares_one_draw():
    frames = smooth_image(seed=6).expand(4, 3, 64, 64).clone()
    points = torch.rand(1, 10, 2).expand(4, 10, 2) * 1.6 - 0.8
    cfg = dataclasses.replace(FaceAugmentationConfig(), p_noise=0.0)
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        draw = draw_augmentation(cfg, 1, g).repeat(4)
        out, moved = augment_faces(frames, points, draw, cfg, g)
        torch.testing.assert_close(out, out[:1].expand_as(out))
        torch.testing.assert_close(moved, moved[:1].expand_as(moved))


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="probabilities"):
        FaceAugmentationConfig(p_gamma=1.5)
    with pytest.raises(ValueError, match="odd"):
        FaceAugmentationConfig(blur_max=4)
    with pytest.raises(ValueError, match="square"):
        warp_images(torch.zeros(1, 3, 8, 10), torch.eye(2, 3)[None])


# ----------------------------------------------------------------------------- clips

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
