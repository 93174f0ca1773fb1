"""Synthetic faces: determinism, ground truth consistent with an independent projection, clips."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.data import DataLoader

from tempsmirk.data import FaceBatch, SyntheticConfig, SyntheticFaces, collate_faces, smooth_trajectory


def test_item_is_deterministic_and_seed_dependent(head):
    cfg = SyntheticConfig(image_size=32, n_items=4, seed=3)
    a, b = SyntheticFaces(head, cfg)[1], SyntheticFaces(head, cfg)[1]
    assert torch.equal(a.image, b.image) and torch.equal(a.params.expression, b.params.expression)
    other = SyntheticFaces(head, dataclasses.replace(cfg, seed=4))[1]
    assert not torch.equal(a.image, other.image)
    assert not torch.equal(a.image, SyntheticFaces(head, cfg)[2].image)


def test_sample_fields_and_ranges(head):
    s = SyntheticFaces(head, SyntheticConfig(image_size=48, n_items=2))[0]
    assert s.image.shape == (3, 48, 48) and 0 <= s.image.min() and s.image.max() <= 1
    assert s.landmarks68.shape == (68, 2) and s.landmarks_mp.shape == (105, 2)
    assert s.landmarks_valid.dtype == torch.bool and bool(s.landmarks_valid)
    p = s.params
    assert p.expression.shape == (head.n_exp,) and p.shape.shape == (head.n_shape,)
    assert p.jaw_pose[0] >= 0 and ((p.eyelids >= 0) & (p.eyelids <= 1)).all()


def test_landmarks_match_an_independent_projection(head):
    """The stored landmarks are FLAME's landmarks under x_n = s(x + t), y flipped to point down."""
    s = SyntheticFaces(head, SyntheticConfig(image_size=32, n_items=1, seed=1))[0]
    p = s.params
    out = head(shape=p.shape[None], expression=p.expression[None], global_pose=p.global_pose[None],
               jaw_pose=p.jaw_pose[None], eyelids=p.eyelids[None])
    scale, tx, ty = p.cam.tolist()
    for pts3, pts2 in ((out.landmarks68[0], s.landmarks68), (out.landmarks_mp[0], s.landmarks_mp)):
        expected = torch.stack([scale * (pts3[:, 0] + tx), -scale * (pts3[:, 1] + ty)], dim=1)
        torch.testing.assert_close(pts2, expected, atol=1e-4, rtol=0)
    assert s.landmarks68.abs().max() < 1  # the face is inside the image


def test_face_pixels_differ_from_background(head):
    """Where the landmarks say the face is, the image is the rendered head, not the background."""
    cfg = SyntheticConfig(image_size=64, n_items=1, seed=2)
    s = SyntheticFaces(head, cfg)[0]
    from tempsmirk.data.synthetic import item_seed, sample_appearance

    bg = sample_appearance(head, 64, torch.Generator().manual_seed(item_seed(2, 0))).background
    nose = ((s.landmarks68[30] + 1) * 32).long()  # iBUG 30 = nose tip
    assert (s.image[:, nose[1], nose[0]] - bg[:, nose[1], nose[0]]).abs().sum() > 1e-3
    assert torch.allclose(s.image[:, 0, 0], bg[:, 0, 0])  # a corner is background


def test_clip_mode_fixed_identity_smooth_motion(head):
    t = 12
    cfg = SyntheticConfig(image_size=32, n_items=2, clip_length=t, keyframe_every=6)
    clip = SyntheticFaces(head, cfg)[0]
    assert clip.image.shape == (t, 3, 32, 32) and clip.landmarks68.shape == (t, 68, 2)
    assert clip.landmarks_valid.shape == (t,)
    assert torch.equal(clip.params.shape, clip.params.shape[:1].expand(t, -1))
    e = clip.params.expression
    step = (e[1:] - e[:-1]).norm(dim=1)
    assert 0 < step.max() < 1.0  # moves, but little per frame (an independent draw moves ~5)
    accel = (e[2:] - 2 * e[1:-1] + e[:-2]).norm(dim=1)
    assert accel.max() < step.max()  # smooth: acceleration smaller than velocity


def test_smooth_trajectory_passes_through_keys():
    keys = torch.tensor([[0.0], [1.0], [-1.0]])
    traj = smooth_trajectory(keys, 9)  # keys land on frames 0, 4, 8
    torch.testing.assert_close(traj[[0, 4, 8]], keys)
    assert ((traj[1:4] > 0) & (traj[1:4] < 1)).all()


def test_collate_and_loader(head):
    ds = SyntheticFaces(head, SyntheticConfig(image_size=32, n_items=3))
    batch = next(iter(DataLoader(ds, batch_size=3, collate_fn=collate_faces)))
    assert isinstance(batch, FaceBatch) and batch.batch_size == 3
    assert batch.image.shape == (3, 3, 32, 32) and batch.landmarks_valid.shape == (3,)
    assert batch.params.expression.shape == (3, head.n_exp) and batch.index.tolist() == [0, 1, 2]
    assert torch.equal(batch.image[1], ds[1].image)
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch.image = batch.image


def test_clip_batch_flattens_to_frames(head):
    ds = SyntheticFaces(head, SyntheticConfig(image_size=32, n_items=2, clip_length=3))
    batch = collate_faces([ds[0], ds[1]])
    assert batch.is_clip and batch.image.shape == (2, 3, 3, 32, 32)
    frames = batch.frames()
    assert frames.image.shape == (6, 3, 32, 32) and frames.params.cam.shape == (6, 3)
    assert frames.index.tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(frames.image[4], ds[1].image[1])


def test_real_data_without_params_and_errors(head):
    from tempsmirk.data import FaceSample

    real = FaceSample(image=torch.zeros(3, 32, 32), landmarks68=torch.zeros(68, 2),
                      landmarks_mp=torch.zeros(105, 2), landmarks_valid=torch.tensor(False),
                      params=None, index=0)
    assert collate_faces([real, real]).params is None
    with pytest.raises(ValueError, match="mix"):
        collate_faces([real, SyntheticFaces(head, SyntheticConfig(image_size=32, n_items=1))[0]])
    with pytest.raises(ValueError, match="divisible by 16"):
        SyntheticFaces(head, SyntheticConfig(image_size=40))
