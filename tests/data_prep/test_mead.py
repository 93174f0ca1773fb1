from __future__ import annotations

import json

import numpy as np
import pytest

from data_prep.mead import SMIRK_MEAD_SPLIT, SubjectSplit, build_manifest, main, prepare_mead
from tempsmirk.data.mead import clip_output_dir, read_manifest, write_manifest
from tempsmirk.video.crops import load_video_crops
from tempsmirk.video.io import write_video
from tempsmirk.video.landmarks import load_landmarks

# (relative path, frames): one subject per default split plus one in none of them.
CLIPS = {
    "M003/video/front/angry/level_1/001.mp4": 4,
    "M003/video/front/angry/level_1/002.mp4": 3,
    "M003/video/left_30/happy/level_3/001.mp4": 5,
    "M013/video/front/neutral/level_1/001.mp4": 2,
    "M005/video/front/sad/level_2/007.mp4": 6,
    "X999/video/front/sad/level_2/001.mp4": 3,
}


def _make_mead(root, corrupt=True):
    for rel, t in CLIPS.items():
        # Flat frames (no face can be found in them; random noise sometimes fools FaceMesh).
        frames = np.stack([np.full((32, 32, 3), 30 * i, np.uint8) for i in range(t)])
        write_video(root / rel, frames, fps=30)
    (root / "M003/video/front/readme.txt").write_text("stray")
    (root / "M003/video/front/angry/level_x").mkdir(parents=True)
    (root / "M003/video/front/angry/level_x/003.mp4").write_bytes(b"")
    (root / "M003/audio").mkdir()  # MEAD's audio folder is not part of the video manifest
    if corrupt:
        (root / "M005/video/front/sad/level_2/008.mp4").write_bytes(b"\x00" * 500)
    return root


def test_manifest_lists_clips_with_splits_and_frame_counts(tmp_path):
    root = _make_mead(tmp_path / "mead")
    m = build_manifest(root, show_progress=False)
    by_path = {c.path: c for c in m.clips}
    assert set(by_path) == set(CLIPS) | {"M005/video/front/sad/level_2/008.mp4"}
    for rel, t in CLIPS.items():
        assert by_path[rel].frames == t
    assert by_path["M005/video/front/sad/level_2/008.mp4"].frames == -1
    c = by_path["M003/video/left_30/happy/level_3/001.mp4"]
    assert (c.subject, c.view, c.emotion, c.level, c.clip, c.split) == ("M003", "left_30", "happy", 3, "001", "train")
    assert {c.subject: c.split for c in m.clips} == {"M003": "train", "M013": "val", "M005": "test",
                                                    "X999": "unassigned"}
    assert set(m.unexpected) == {"M003/video/front/readme.txt", "M003/video/front/angry/level_x/003.mp4"}
    front = build_manifest(root, views=("front",), show_progress=False)
    assert all(c.view == "front" for c in front.clips) and len(front.clips) == len(m.clips) - 1

    custom = build_manifest(root, SubjectSplit(train=("X999",), val=(), test=("M003",)), show_progress=False)
    assert {c.subject: c.split for c in custom.clips}["X999"] == "train"
    assert len(custom.split("test")) == 3

    write_manifest(tmp_path / "manifest.csv", m.clips)
    assert read_manifest(tmp_path / "manifest.csv") == m.clips


def test_default_split_is_disjoint_and_sized_like_smirk():
    s = SMIRK_MEAD_SPLIT
    assert (len(s.train), len(s.val), len(s.test)) == (37, 5, 5)
    with pytest.raises(ValueError, match="both 'train' and 'test'"):
        SubjectSplit(train=("M003",), val=(), test=("M003",))


def test_split_json_and_cli_manifest_only(tmp_path, capsys):
    root = _make_mead(tmp_path / "mead", corrupt=False)
    (tmp_path / "split.json").write_text(json.dumps({"train": ["M003", "M013"], "test": ["X999"]}))
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out), "--split-json", str(tmp_path / "split.json"),
                 "--manifest-only", "--quiet"]) == 0
    clips = read_manifest(out / "manifest.csv")
    assert {c.subject: c.split for c in clips} == {"M003": "train", "M013": "train", "M005": "unassigned",
                                                  "X999": "test"}
    assert "outside the MEAD layout" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text(json.dumps({"training": ["M003"]}))
    assert main([str(root), "--out", str(out), "--split-json", str(tmp_path / "bad.json"), "--quiet"]) == 2
    assert main([str(tmp_path / "empty"), "--out", str(out), "--quiet"]) == 2


def test_prepare_runs_landmarks_over_the_manifest_and_resumes(tmp_path):
    root = _make_mead(tmp_path / "mead")
    clips = build_manifest(root, show_progress=False).clips
    out = tmp_path / "out"
    outcomes = prepare_mead(root, out, clips, crops=False, show_progress=False)
    status = {o.item.path: o.status for o in outcomes}
    assert status.pop("M005/video/front/sad/level_2/008.mp4") == "failed"
    assert set(status.values()) == {"done"}
    for c in clips:
        if c.frames > 0:
            lm = load_landmarks(clip_output_dir(out, c) / "landmarks.npz")
            assert lm.num_frames == c.frames and not lm.found.any()  # flat frames: no face, rows kept
    again = prepare_mead(root, out, clips, crops=False, show_progress=False)
    assert sum(o.status == "skipped" for o in again) == len(clips) - 1
    # With crops, a clip without any face is reported, not silently dropped.
    with_crops = prepare_mead(root, out, clips[:1], crops=True, show_progress=False)
    assert with_crops[0].status == "failed" and "no frame has a face" in with_crops[0].message


@pytest.mark.needs_shared_data
def test_prepare_crops_a_face_clip(tmp_path, face_frames, capsys):
    root = tmp_path / "mead"
    write_video(root / "W009/video/front/happy/level_2/001.mp4", face_frames[:8], fps=30)
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out), "--quiet"]) == 0
    assert "1 train" in capsys.readouterr().out
    folder = out / "clips" / "W009/front/happy/level_2/001"
    crops = load_video_crops(folder)
    assert crops.num_frames == 8 and crops.found.all()
    assert np.abs(crops.landmarks[..., :2].mean(axis=1)).max() < 0.15
    assert (folder / "crops.mp4").is_file() and (folder / "landmarks.npz").is_file()
