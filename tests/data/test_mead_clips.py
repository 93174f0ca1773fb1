"""MEAD clips from data_prep outputs: windows, landmark selection, per-clip (or per-frame)
augmentation, errors."""

from __future__ import annotations

import dataclasses
from itertools import islice

import numpy as np
import pytest
import torch

from tempsmirk.data import MeadClips, MeadConfig
from tempsmirk.data.clips import MP_TO_IBUG68
from tempsmirk.data.mead import MeadClip, write_manifest
from tempsmirk.video.crops import CropBoxes, VideoCrops, save_video_crops
from tempsmirk.video.io import write_video

N = 64  # crop side of the fake clips
MP = torch.tensor([1, 5, 9, 33, 61, 100, 200, 291, 300, 400])  # stand-in landmark_indices
DOT = 5  # MediaPipe index drawn as a white dot (MP[1]); it moves right by 2 px per frame


def _dot_xy(t: int) -> tuple[float, float]:
    """Normalised position of the dot in frame t: on pixel (row 24, column 16 + 2t)'s centre."""
    return (16 + 2 * t + 0.5) * 2 / N - 1, (24 + 0.5) * 2 / N - 1


def _dot_pixel(image: torch.Tensor) -> tuple[float, float]:
    """(x, y) pixel coordinates (centres at integers) of the bright dot: its intensity centroid."""
    grey = image.sum(0)
    w = (grey > 0.5 * grey.max()) * grey
    ys, xs = torch.meshgrid(torch.arange(grey.shape[0]), torch.arange(grey.shape[1]), indexing="ij")
    return float((w * xs).sum() / w.sum()), float((w * ys).sum() / w.sum())


def _fake_clip(folder, frames: int, missing=()):
    """crops.mp4 (a white dot on black at landmark DOT) + crops.npz like data_prep writes."""
    rng = np.random.default_rng(0)
    lm = rng.uniform(-0.7, 0.7, size=(frames, 478, 3)).astype(np.float32)
    lm[:] = lm[:1]  # a still face ...
    video = np.zeros((frames, N, N, 3), np.uint8)
    for t in range(frames):
        x, y = _dot_xy(t)  # ... except the dot, which moves linearly
        lm[t, DOT, :2] = (x, y)
        px, py = round((x + 1) * N / 2 - 0.5), round((y + 1) * N / 2 - 0.5)
        video[t, py - 1:py + 2, px - 1:px + 2] = 255
    found = np.ones(frames, bool)
    found[list(missing)] = False
    lm[~found] = np.nan
    folder.mkdir(parents=True, exist_ok=True)
    write_video(folder / "crops.mp4", video, fps=25)
    boxes = CropBoxes(np.zeros((frames, 2)), np.ones(frames), found)
    save_video_crops(folder / "crops.npz", VideoCrops(np.zeros((frames, 2, 3)), lm, found, boxes, 25.0, N, 1.4))
    return lm


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A data_prep.mead output folder: two prepared train clips (10 and 7 frames), one clip
    listed but never prepared, one too short, and one test clip."""
    root = tmp_path_factory.mktemp("mead_out")
    clips = [MeadClip("M003", "front", "happy", 1, "001", "train", "M003/video/front/happy/level_1/001.mp4", 10),
             MeadClip("M003", "front", "sad", 1, "002", "train", "x.mp4", 7),
             MeadClip("M007", "front", "sad", 2, "003", "train", "y.mp4", 9),
             MeadClip("M007", "front", "sad", 2, "004", "train", "z.mp4", 3),
             MeadClip("M005", "front", "angry", 3, "001", "test", "w.mp4", 8)]
    write_manifest(root / "manifest.csv", clips)
    lms = {}
    for c, missing in ((clips[0], (3, 4)), (clips[1], ()), (clips[3], ()), (clips[4], ())):
        lms[c.key] = _fake_clip(root / "clips" / c.key, c.frames, missing)
    return root, clips, lms


def test_windows_shapes_and_landmark_selection(prepared):
    root, clips, lms = prepared
    data = MeadClips(MeadConfig(root=str(root), clip_length=4, image_size=N, augment=False), MP)
    # 10 frames -> starts 0, 4; 7 frames -> start 0; never-prepared and too-short clips left out.
    assert [(w.key, w.start) for w in data.windows] == [(clips[0].key, 0), (clips[0].key, 4), (clips[1].key, 0)]
    assert (data.not_prepared, data.too_short) == (1, 1)
    s = data[1]
    assert s.image.shape == (4, 3, N, N) and s.params is None and s.index == 1
    assert s.landmarks68.shape == (4, 68, 2) and s.landmarks_mp.shape == (4, len(MP), 2)
    lm = lms[clips[0].key]
    torch.testing.assert_close(s.landmarks_mp[1:], torch.from_numpy(lm[5:8][:, MP.numpy(), :2]))
    torch.testing.assert_close(s.landmarks68[1:], torch.from_numpy(lm[5:8][:, list(MP_TO_IBUG68), :2]))
    # Frames 3 and 4 had no face: invalid, and their landmarks interpolated (the dot moves linearly).
    first = data[0]
    assert first.landmarks_valid.tolist() == [True, True, True, False]
    assert s.landmarks_valid.tolist() == [False, True, True, True] and data[2].landmarks_valid.all()
    torch.testing.assert_close(first.landmarks_mp[3, 1], torch.tensor(_dot_xy(3)), atol=1e-5, rtol=0)
    assert torch.isfinite(first.landmarks68).all()
    # The image is the crop: the dot is where its landmark says.
    for t in range(4):
        expected = ((first.landmarks_mp[t, 1] + 1) * N / 2 - 0.5).tolist()
        assert np.allclose(_dot_pixel(first.image[t]), expected, atol=0.3)
    stride = MeadClips(MeadConfig(root=str(root), clip_length=4, stride=3, image_size=32, augment=False), MP)
    assert [w.start for w in stride.windows] == [0, 3, 6, 0, 3] and stride[0].image.shape == (4, 3, 32, 32)


@pytest.mark.parametrize("per_frame", [False, True])
def test_augmentation_is_drawn_once_per_clip_or_per_frame_and_moves_landmarks(prepared, per_frame):
    root, clips, _ = prepared
    cfg = MeadConfig(root=str(root), clip_length=4, image_size=N)
    cfg = dataclasses.replace(cfg, augmentation=dataclasses.replace(cfg.augmentation, per_frame=per_frame))
    assert cfg.augmentation.rotation > 0  # the default includes SMIRK's in-plane rotation
    plain = MeadClips(dataclasses.replace(cfg, augment=False), MP)
    aug = MeadClips(cfg, MP)
    fits = []
    for i in (0, 1):
        a, p = aug[i], plain[i]
        # Fit x' = A x + b per frame (a similarity: zoom, rotation, shift): one (A, b) per clip,
        # or one per frame.
        x, y = p.landmarks_mp.double(), a.landmarks_mp.double()  # (4, L, 2)
        x1 = torch.cat([x, torch.ones_like(x[..., :1])], -1)  # (4, L, 3)
        per_frame_fit = torch.linalg.lstsq(x1, y).solution  # (4, 3, 2)
        torch.testing.assert_close(x1 @ per_frame_fit, y, atol=1e-5, rtol=0)  # an exact affine move
        same = torch.allclose(per_frame_fit, per_frame_fit[:1].expand_as(per_frame_fit), atol=1e-5)
        assert same != per_frame
        lin = per_frame_fit[:, :2]
        assert torch.allclose(lin[:, 0, 0], lin[:, 1, 1], atol=1e-5)  # rotation + zoom, no shear
        fits.append(per_frame_fit[0])
        # The dot follows its augmented landmark.
        for t in range(4):
            expected = ((a.landmarks_mp[t, 1] + 1) * N / 2 - 0.5).tolist()
            assert np.allclose(_dot_pixel(a.image[t]), expected, atol=0.5)
    assert not torch.allclose(fits[0], fits[1])  # each clip its own draw
    again = MeadClips(cfg, MP)[1]
    assert torch.equal(again.image, aug[1].image)  # item i is a pure function of (seed, i)


def test_a_clip_without_any_face_gives_zero_landmarks_all_invalid(tmp_path):
    """Nothing to fill from (tempsmirk.video.gaps raises there): MeadClips gives zeros, all invalid."""
    clip = MeadClip("M003", "front", "happy", 1, "001", "train", "a.mp4", 5)
    write_manifest(tmp_path / "manifest.csv", [clip])
    _fake_clip(tmp_path / "clips" / clip.key, 5, missing=range(5))
    s = MeadClips(MeadConfig(root=str(tmp_path), clip_length=4, image_size=N, augment=False), MP)[0]
    assert not s.landmarks_valid.any()
    assert (s.landmarks_mp == 0).all() and (s.landmarks68 == 0).all() and (s.hull_points == 0).all()


def test_errors_say_what_to_do(prepared, tmp_path):
    root, _, _ = prepared
    with pytest.raises(FileNotFoundError, match="data_prep.mead"):
        MeadClips(MeadConfig(root=str(tmp_path)), MP)
    with pytest.raises(ValueError, match="no clip of split 'val'"):
        MeadClips(MeadConfig(root=str(root), split="val"), MP)
    with pytest.raises(ValueError, match="no usable 'train' clip.*shorter than T=12"):
        MeadClips(MeadConfig(root=str(root), clip_length=12), MP)
    with pytest.raises(ValueError, match="root is not set"):
        MeadClips(MeadConfig(), MP)


@pytest.mark.needs_shared_data
def test_real_face_clip_through_data_prep(shared_dir, tmp_path):
    """A real face through data_prep.mead, then MeadClips: landmarks land on the face, and the
    MediaPipe -> iBUG-68 map puts the 68 points in anatomical order."""
    from data_prep.mead import main
    from tempsmirk.flame import FLAME
    from tempsmirk.video.io import iter_frames

    frames = np.stack(list(islice(iter_frames(shared_dir / "data" / "video" / "pexels_woman_emotions.mp4"), 8)))
    write_video(tmp_path / "mead" / "M003/video/front/happy/level_1/001.mp4", frames, fps=24)
    assert main([str(tmp_path / "mead"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    data = MeadClips(MeadConfig(root=str(tmp_path / "out"), clip_length=4, image_size=64),
                     FLAME.builtin(seed=0).mp_indices)
    s = data[0]
    assert len(data) == 2 and s.image.shape == (4, 3, 64, 64) and s.landmarks_valid.all()
    assert s.landmarks_mp.abs().max() < 1 and s.landmarks68.abs().max() < 1
    p = s.landmarks68[0]
    x, y = p[:, 0], p[:, 1]
    assert x[0] < x[8] < x[16] and y[8] > y[[0, 16]].max()  # jaw from the image's left, chin lowest
    assert x[36] < x[39] < x[42] < x[45] and x[48] < x[54]  # eye corners, mouth corners
    assert y[19] < y[36] < y[30] < y[51] < y[57] < y[8]  # brow, eye, nose tip, lips, chin
