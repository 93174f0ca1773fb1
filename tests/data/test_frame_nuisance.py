"""Per-frame nuisances of synthetic clips: off by default, per-frame, ground truth stays smooth."""

from __future__ import annotations

import dataclasses

import torch

from tempsmirk.data import FrameNuisance, SyntheticConfig, SyntheticFaces
from tempsmirk.data.synthetic import item_seed, render_faces, sample_appearance

T = 6
BASE = SyntheticConfig(image_size=32, n_items=2, clip_length=T, keyframe_every=5, seed=5)


def _with(**nuisance) -> SyntheticConfig:
    return dataclasses.replace(BASE, nuisance=FrameNuisance(**nuisance))


def test_off_by_default_and_zero_is_off(head):
    assert not FrameNuisance().enabled and FrameNuisance(flicker=0.1).enabled
    a, b = SyntheticFaces(head, BASE)[1], SyntheticFaces(head, _with())[1]
    assert torch.equal(a.image, b.image) and torch.equal(a.params.cam, b.params.cam)


def test_crop_jitter_moves_landmarks_and_camera_consistently(head):
    clean = SyntheticFaces(head, BASE)[0]
    noisy = SyntheticFaces(head, _with(crop_shift=0.05, crop_scale=0.05))[0]
    # The ground-truth motion is untouched; only the camera follows the crop.
    for name in ("global_pose", "shape", "expression", "eyelids", "jaw_pose"):
        assert torch.equal(getattr(clean.params, name), getattr(noisy.params, name)), name
    assert not torch.allclose(clean.params.cam, noisy.params.cam)
    # Independent projection with the new camera: x_n = s(x + tx), y_n = -s(y + ty).
    p = noisy.params
    out = head(shape=p.shape, expression=p.expression, global_pose=p.global_pose, jaw_pose=p.jaw_pose,
               eyelids=p.eyelids)
    s, tx, ty = p.cam[:, :1], p.cam[:, 1:2], p.cam[:, 2:]
    expected = torch.stack([s * (out.landmarks_mp[..., 0] + tx), -s * (out.landmarks_mp[..., 1] + ty)], -1)
    torch.testing.assert_close(noisy.landmarks_mp, expected, atol=2e-4, rtol=0)
    # Per frame, independently: the landmark centroid jumps around, unlike the clean clip's.
    acc = lambda x: (x[2:] - 2 * x[1:-1] + x[:-2]).norm(dim=-1).mean()  # noqa: E731
    c_clean, c_noisy = clean.landmarks68.mean(1), noisy.landmarks68.mean(1)
    assert acc(c_noisy) > 3 * acc(c_clean)


def test_warped_frame_matches_a_rendering_with_the_jittered_camera(head):
    """The image moved by the crop shows what rendering with the returned camera shows."""
    cfg = dataclasses.replace(_with(crop_shift=0.06, crop_scale=0.06), image_size=64)
    noisy, clean = (
        SyntheticFaces(head, cfg)[0],
        SyntheticFaces(head, dataclasses.replace(cfg, nuisance=FrameNuisance()))[0],
    )
    g = torch.Generator().manual_seed(item_seed(cfg.seed, 0))
    appearance = sample_appearance(head, 64, g)
    eye = torch.zeros(T, 6)
    # Eye pose is not stored in params; the comparison masks the eyes out via the face region only.
    rerendered, _, _ = render_faces(head, noisy.params, eye, appearance, 64)
    centre = ((noisy.landmarks68[:, 30] + 1) * 32).round().long()  # nose tip, pixels
    win = lambda img, c: img[:, c[1] - 6 : c[1] + 6, c[0] - 10 : c[0] - 2]  # a cheek patch beside the nose  # noqa: E731
    err_moved = torch.stack(
        [(win(noisy.image[t], centre[t]) - win(rerendered[t], centre[t])).abs().mean() for t in range(T)]
    )
    err_still = torch.stack(
        [(win(clean.image[t], centre[t]) - win(rerendered[t], centre[t])).abs().mean() for t in range(T)]
    )
    assert err_moved.mean() < 0.5 * err_still.mean()


def test_noise_and_flicker_change_frames_independently(head):
    clean = SyntheticFaces(head, BASE)[0]
    flick = SyntheticFaces(head, _with(flicker=0.1))[0]
    inside = (clean.image > 0.05) & (clean.image < 0.6)  # far from clamping at either end
    ratio = torch.stack([(flick.image[t] / clean.image[t])[inside[t]].median() for t in range(T)])
    assert ratio.std() > 0.02  # each frame its own gain
    for t in range(T):  # ... applied to the whole frame
        torch.testing.assert_close(
            (flick.image[t] / clean.image[t])[inside[t]],
            torch.full_like(clean.image[t][inside[t]], float(ratio[t])),
            atol=1e-4,
            rtol=0,
        )
    noisy = SyntheticFaces(head, _with(pixel_noise=0.03))[0]
    assert torch.equal(noisy.landmarks68, clean.landmarks68) and torch.equal(noisy.params.cam, clean.params.cam)
    resid = (noisy.image - clean.image)[inside]
    assert 0.025 < resid.std() < 0.035
    d = noisy.image - clean.image
    assert not torch.allclose(d[0], d[1], atol=1e-3)  # fresh noise in every frame
