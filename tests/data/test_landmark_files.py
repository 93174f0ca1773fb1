"""Landmark files in SMIRK's layout: MediaPipe (ours and SMIRK's), FAN written as its scripts write it."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from tempsmirk.data.landmark_files import (
    LandmarkFileError,
    landmark_path,
    read_fan_image,
    read_fan_video,
    read_mediapipe_image,
    read_mediapipe_video,
    write_mediapipe_image,
    write_mediapipe_video,
)


def _mp(seed=0, t=None):
    rng = np.random.default_rng(seed)
    shape = (478, 3) if t is None else (t, 478, 3)
    return rng.uniform(0, 200, size=shape).astype(np.float32)


def test_landmark_path_mirrors_the_media_layout(tmp_path):
    assert landmark_path(tmp_path, "trainval/spk/00001.mp4", ".pkl") == tmp_path / "trainval/spk/00001.pkl"
    assert landmark_path(tmp_path, "000001.jpg", ".npy") == tmp_path / "000001.npy"


def test_mediapipe_image_files(tmp_path):
    pts = _mp()
    write_mediapipe_image(tmp_path / "a.npy", pts)
    np.testing.assert_array_equal(read_mediapipe_image(tmp_path / "a.npy"), pts)
    write_mediapipe_image(tmp_path / "none.npy", None)
    assert np.load(tmp_path / "none.npy").shape == (0, 478, 3)
    assert read_mediapipe_image(tmp_path / "none.npy") is None
    # SMIRK's own files: np.save of a float64 (478, 3) array.
    np.save(tmp_path / "smirk.npy", pts.astype(np.float64))
    np.testing.assert_allclose(read_mediapipe_image(tmp_path / "smirk.npy"), pts)


@pytest.mark.parametrize("content, message", [
    (np.zeros((68, 3), np.float32), "shape"),
    (np.full((478, 3), np.nan, np.float32), "NaN"),
])
def test_mediapipe_image_errors_name_the_file(tmp_path, content, message):
    np.save(tmp_path / "bad.npy", content)
    with pytest.raises(LandmarkFileError, match=message) as err:
        read_mediapipe_image(tmp_path / "bad.npy")
    assert "bad.npy" in str(err.value)
    with pytest.raises(LandmarkFileError, match="no such"):
        read_mediapipe_image(tmp_path / "missing.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(LandmarkFileError, match="junk.npy"):
        read_mediapipe_image(tmp_path / "junk.npy")


def test_mediapipe_video_files_keep_one_row_per_frame(tmp_path):
    pts = _mp(t=6)
    pts[2] = np.nan  # no face in frame 2
    write_mediapipe_video(tmp_path / "v.npy", pts)
    back = read_mediapipe_video(tmp_path / "v.npy", frames=6)
    np.testing.assert_array_equal(np.isnan(back).all(axis=(1, 2)), [0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(read_mediapipe_video(tmp_path / "v.npy", mmap=True)[3], pts[3])
    # SMIRK's script stacks only frames with a face: 5 rows for 6 frames cannot be aligned.
    np.save(tmp_path / "smirk.npy", pts[[0, 1, 3, 4, 5]].astype(np.float64))
    with pytest.raises(LandmarkFileError, match="5 rows of landmarks for a video of 6 frames"):
        read_mediapipe_video(tmp_path / "smirk.npy", frames=6)


def test_fan_image_files_as_smirk_writes_them(tmp_path):
    faces = np.random.default_rng(1).uniform(0, 256, size=(2, 68, 2)).astype(np.float32)
    np.save(tmp_path / "two.npy", faces)  # FANPredictor's landmarks for two detected faces
    np.testing.assert_array_equal(read_fan_image(tmp_path / "two.npy"), faces[0])  # SMIRK: the first
    np.save(tmp_path / "none.npy", np.empty((0, 68, 2), np.float32))  # what FAN returns for no face
    assert read_fan_image(tmp_path / "none.npy") is None
    np.save(tmp_path / "saved_none.npy", None, allow_pickle=True)  # the size == 1 case SMIRK checks
    assert read_fan_image(tmp_path / "saved_none.npy") is None
    np.save(tmp_path / "bad.npy", np.zeros((1, 5, 2), np.float32))
    with pytest.raises(LandmarkFileError, match=r"\(n, 68, 2\)"):
        read_fan_image(tmp_path / "bad.npy")


def test_fan_video_pickles_as_smirk_reads_them(tmp_path):
    rng = np.random.default_rng(2)
    entries = [rng.uniform(0, 224, size=(68, 2)).astype(np.float32) if t != 1 else None for t in range(4)]
    with open(tmp_path / "clip.pkl", "wb") as fh:
        pickle.dump(entries, fh)
    pts = read_fan_video(tmp_path / "clip.pkl", frames=4)
    assert pts.shape == (4, 68, 2)
    assert np.isnan(pts[1]).all()
    np.testing.assert_array_equal(pts[3], entries[3])
    with pytest.raises(LandmarkFileError, match="4 entries for a video of 5 frames"):
        read_fan_video(tmp_path / "clip.pkl", frames=5)
    (tmp_path / "cut.pkl").write_bytes((tmp_path / "clip.pkl").read_bytes()[:50])
    with pytest.raises(LandmarkFileError, match="cut.pkl"):
        read_fan_video(tmp_path / "cut.pkl")


class _Payload:
    def __reduce__(self):
        return os.system, ("touch PWNED",)


def test_fan_pickles_that_could_run_code_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump([np.zeros((68, 2), np.float32), _Payload()], fh)
    with pytest.raises(LandmarkFileError, match="refused"):
        read_fan_video(tmp_path / "evil.pkl")
    np.save(tmp_path / "evil.npy", np.array([_Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(LandmarkFileError, match="refused"):
        read_fan_image(tmp_path / "evil.npy")
    assert not (tmp_path / "PWNED").exists()
