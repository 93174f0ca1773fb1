"""Face corpora as SMIRK reads them, on stand-ins made from the shared real video (face_corpora.py):
SMIRK's crop rule, FAN where present, landmarks that stay on the face (re-detected), clips,
bad files reported and replaced, identical batches with worker processes."""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings

import numpy as np
import pytest
import torch
from face_corpora import FAN_GAP, FAN_SHIFT, NO_FAN_IMAGE, fan_points
from torch.utils.data import DataLoader

from tempsmirk.data.augmentation import FaceAugmentationConfig
from tempsmirk.data.clips import MP_TO_IBUG68
from tempsmirk.data.face_corpus import read_corpus
from tempsmirk.data.faces import FaceCropConfig, FaceDataWarning, FaceSource
from tempsmirk.data.mix import FaceMix, FaceMixConfig, MixedBatches, MixSource
from tempsmirk.data.types import collate_faces

pytestmark = pytest.mark.needs_shared_data

TEST = FaceCropConfig(augment=False)


def source(corpus, head, cfg=TEST, **kw) -> FaceSource:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FaceDataWarning)
        return FaceSource(corpus, head.mp_indices, cfg, **kw)


def smirk_crop(mp_px: np.ndarray, scale: float):
    """SMIRK's crop_face, written out: centre of the MediaPipe box, side int(scale·(w + h)/2)."""
    lo, hi = mp_px[:, :2].min(0), mp_px[:, :2].max(0)
    return (lo + hi) / 2, float(int((hi - lo).sum() / 2 * scale))


def redetect(image: torch.Tensor, indices) -> np.ndarray | None:
    """MediaPipe on a (3, H, W) crop: the selected points, normalised, or None."""
    from tempsmirk.video.landmarks import FaceMesh

    frame = (image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    with FaceMesh(tracking=False) as mesh:
        pts = mesh(frame)
    if pts is None:
        return None
    return pts[np.asarray(indices), :2] / frame.shape[1] * 2 - 1


def test_manifests_list_every_file_with_its_landmarks(face_corpora):
    info, rows = read_corpus(face_corpora.ffhq_corpus)
    assert info.kind == "ffhq" and info.media == "images" and info.fan_root.endswith("ffhq_fan")
    assert [r.path for r in rows] == ["00000.png", "00040.png", "00080.png", "00120.png"]
    assert all(r.ok and r.face_frames == 1 and r.split == "train" for r in rows)
    assert [r.fan_frames for r in rows] == [1, 0, 1, 1]  # 00040's FAN file says "no face"
    info, rows = read_corpus(face_corpora.lrs3_corpus)
    assert {(r.path, r.split, r.subject) for r in rows} == {
        ("trainval/spkA/00000.mp4", "train", "spkA"), ("trainval/spkB/00001.mp4", "train", "spkB"),
        ("test/spkC/00002.mp4", "test", "spkC")}
    for r in rows:
        assert r.frames == 24 and r.face_frames == 24
        assert r.fan_frames == 24 - sum(1 for t in range(24) if t % FAN_GAP == 2)


def test_test_crop_is_smirks_and_the_image_agrees_with_the_landmarks(face_corpora, head):
    src = source(face_corpora.ffhq_corpus, head)
    mp = np.load(face_corpora.root / "ffhq_mp" / "00080.npy")
    s = src[2]
    centre, size = smirk_crop(mp, 1.6)
    expected = (mp[head.mp_indices.numpy(), :2] - centre) * 2 / size
    np.testing.assert_allclose(s.landmarks_mp.numpy(), expected, atol=1e-5)
    assert s.image.shape == (3, 224, 224) and bool(s.landmarks_valid)
    again = redetect(s.image, head.mp_indices.numpy())
    assert again is not None
    err_px = np.linalg.norm(again - s.landmarks_mp.numpy(), axis=1).mean() * 112
    assert err_px < 2.0, err_px


def test_augmented_crops_keep_the_landmarks_on_the_face(face_corpora, head):
    cfg = FaceCropConfig(augmentation=FaceAugmentationConfig(p_affine=1.0))
    src = source(face_corpora.ffhq_corpus, head, cfg)
    errors = []
    for seed in range(4):
        s = src[(seed % len(src), 100 + seed)]
        again = redetect(s.image, head.mp_indices.numpy())
        assert again is not None, seed
        errors.append(np.linalg.norm(again - s.landmarks_mp.numpy(), axis=1).mean() * 112)
    assert max(errors) < 3.0, errors  # pixels at 224, MediaPipe re-detected on the augmented crop
    print("re-detection error (px at 224):", [round(e, 2) for e in errors])


def test_fan_points_are_used_where_the_file_has_them(face_corpora, head):
    with pytest.warns(FaceDataWarning, match="1 of 4 files have no FAN landmarks"):
        src = FaceSource(face_corpora.ffhq_corpus, head.mp_indices, TEST)
    for i, name in enumerate(["00000", "00040"]):
        mp = np.load(face_corpora.root / "ffhq_mp" / f"{name}.npy")
        centre, size = smirk_crop(mp, 1.6)
        s = src[i]
        mp68 = (mp[list(MP_TO_IBUG68), :2] - centre) * 2 / size
        if name == NO_FAN_IMAGE:  # FAN found no face: MediaPipe's 68, still supervising
            np.testing.assert_allclose(s.landmarks68.numpy(), mp68, atol=1e-5)
        else:  # FAN's points, which the stand-in shifted right by FAN_SHIFT pixels
            np.testing.assert_allclose(s.landmarks68.numpy(), (fan_points(mp) - centre) * 2 / size, atol=1e-5)
            assert np.allclose(s.landmarks68[:, 0].numpy() - mp68[:, 0], FAN_SHIFT * 2 / size, atol=1e-5)
        assert bool(s.landmarks68_valid)
    strict = source(face_corpora.ffhq_corpus, head, fan_fallback=False)
    assert [bool(strict[i].landmarks68_valid) for i in range(4)] == [True, False, True, True]


def test_video_items_use_face_frames_and_interpolate_missing_fan_frames(face_corpora, head):
    src = source(face_corpora.lrs3_corpus, head)
    assert len(src) == 2  # the train split: spkA, spkB
    s = src[0]  # test mode: the middle frame, 12, whose FAN entry is None (12 % 5 == 2)
    mp = np.load(face_corpora.lrs3 / "trainval/spkA/00000.npy")
    centre, size = smirk_crop(mp[12], 1.6)
    fan_between = (fan_points(mp[11]) + fan_points(mp[13])) / 2  # SMIRK's linear interpolation
    np.testing.assert_allclose(s.landmarks68.numpy(), (fan_between - centre) * 2 / size, atol=1e-4)
    assert s.image.shape == (3, 224, 224)
    again = redetect(s.image, head.mp_indices.numpy())
    assert np.linalg.norm(again - s.landmarks_mp.numpy(), axis=1).mean() * 112 < 2.5
    test_split = source(face_corpora.lrs3_corpus, head, split="test")
    assert len(test_split) == 1


def _fit_rotation(src_pts: np.ndarray, dst_pts: np.ndarray) -> tuple[float, float]:
    """Least-squares similarity src -> dst: (angle in degrees, residual RMS)."""
    a, b = src_pts - src_pts.mean(0), dst_pts - dst_pts.mean(0)
    za, zb = a[:, 0] + 1j * a[:, 1], b[:, 0] + 1j * b[:, 1]
    k = (np.conj(za) @ zb) / (np.conj(za) @ za)
    return float(np.degrees(np.angle(k))), float(np.sqrt(np.mean(np.abs(zb - k * za) ** 2)))


def test_clips_draw_crop_scale_and_augmentation_once(face_corpora, head):
    cfg = FaceCropConfig(clip_length=8, augmentation=FaceAugmentationConfig(p_affine=1.0))
    src = source(face_corpora.lrs3_corpus, head, cfg)
    mp = np.load(face_corpora.lrs3 / "trainval/spkA/00000.npy")[:, head.mp_indices.numpy(), :2]
    angles = set()
    for seed in range(3):
        s = src[(0, seed)]
        assert s.image.shape == (8, 3, 224, 224) and s.landmarks_mp.shape == (8, 105, 2)
        # find the window: the start whose raw points map onto the sample by similarities
        fits = []
        for start in range(24 - 8 + 1):
            per = [_fit_rotation(mp[start + t], s.landmarks_mp[t].numpy()) for t in range(8)]
            fits.append((max(r for _, r in per), [a for a, _ in per]))
        resid, frame_angles = min(fits, key=lambda f: f[0])
        assert resid < 1e-4
        assert max(frame_angles) - min(frame_angles) < 1e-3  # one rotation for the whole clip
        angles.add(round(frame_angles[0], 2))
    assert len(angles) == 3  # ... drawn anew per clip


def test_unreadable_items_are_reported_and_replaced(face_corpora, head, tmp_path):
    root = tmp_path / "ffhq"
    shutil.copytree(face_corpora.ffhq, root)
    corpus = tmp_path / "corpus"
    shutil.copytree(face_corpora.ffhq_corpus, corpus)
    info = json.loads((corpus / "corpus.json").read_text())
    (corpus / "corpus.json").write_text(json.dumps({**info, "root": str(root)}))
    (root / "00080.png").write_bytes(b"\x89PNG garbage")  # corrupted after the manifest was made
    src = source(corpus, head)
    with pytest.warns(FaceDataWarning, match=r"ffhq item 2 skipped: .*00080\.png: not a readable image"):
        s = src.get(2, seed=5)
    assert s.index == 2 and s.image.shape == (3, 224, 224)  # another item stands in for it
    for p in root.glob("*.png"):
        p.write_bytes(b"")
    with pytest.warns(FaceDataWarning), pytest.raises(RuntimeError, match="could not be read"):
        src.get(0, seed=1)


def test_the_mix_gives_identical_batches_with_worker_processes(face_corpora, head):
    cfg = FaceMixConfig(image_size=64, sources={"ffhq": MixSource(str(face_corpora.ffhq_corpus), 0.5),
                                                "lrs3": MixSource(str(face_corpora.lrs3_corpus), 0.5)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FaceDataWarning)
        mix = FaceMix(cfg, head.mp_indices)

    def batches(workers):
        sampler = MixedBatches(mix.sizes, mix.percentages, 4, seed=0, start=3, end=5)
        return list(DataLoader(mix, batch_sampler=sampler, collate_fn=collate_faces, num_workers=workers))

    a, b = batches(0), batches(2)
    for x, y in zip(a, b):
        torch.testing.assert_close(x.image, y.image)
        torch.testing.assert_close(x.landmarks68, y.landmarks68)
        assert x.index.tolist() == y.index.tolist()
        assert sum(i < 4 for i in x.index.tolist()) == 2  # 2 FFHQ (global 0..3) + 2 LRS3 per batch
    assert x.landmarks68_valid is not None and x.landmarks68_valid.all()
    with pytest.raises(ValueError, match="percentage but no dir"):
        FaceMix(dataclasses.replace(cfg, sources={"ffhq": MixSource(None, 1.0)}), head.mp_indices)
