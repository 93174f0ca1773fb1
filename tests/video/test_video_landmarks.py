"""MediaPipe landmarks of video frames: every frame keeps its row, the file round-trips, and
MediaPipe's native start-up noise is filtered."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tempsmirk.paths import repo_root
from tempsmirk.video.io import iter_frames, write_video
from tempsmirk.video.landmarks import NUM_LANDMARKS, FaceLandmarks, extract_video, load_landmarks, save_landmarks


@pytest.mark.needs_shared_data
def test_real_video_every_decoded_frame_has_a_row(real_video, real_landmarks):
    lm = real_landmarks
    decoded = sum(1 for _ in iter_frames(real_video))
    assert decoded == 472
    assert lm.num_frames == decoded
    assert lm.landmarks.shape == (472, NUM_LANDMARKS, 3) and lm.landmarks.dtype == np.float32
    assert lm.found.mean() >= 0.9
    assert lm.size == (640, 360)
    assert lm.fps == pytest.approx(24000 / 1001, rel=1e-6)
    pts = lm.landmarks[lm.found]
    # x, y are pixels inside the frame; the face spans a sizeable part of it.
    assert np.nanmin(pts[..., 0]) > -20 and np.nanmax(pts[..., 0]) < 660
    assert np.nanmin(pts[..., 1]) > -20 and np.nanmax(pts[..., 1]) < 380
    width = pts[..., 0].max(axis=1) - pts[..., 0].min(axis=1)
    assert 50 < np.median(width) < 640
    # z is scaled to pixels: its spread is a fraction of the face width, not of 1.
    z_spread = pts[..., 2].max(axis=1) - pts[..., 2].min(axis=1)
    assert 0.2 * np.median(width) < np.median(z_spread) < 2 * np.median(width)
    assert np.isnan(lm.landmarks[~lm.found]).all()


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    lm = FaceLandmarks(rng.normal(size=(3, NUM_LANDMARKS, 3)).astype(np.float32),
                       np.array([True, False, True]), 29.97, np.tile([64, 48], (3, 1)), ("a", "b", "c"))
    save_landmarks(tmp_path / "x" / "landmarks.npz", lm)
    back = load_landmarks(tmp_path / "x" / "landmarks.npz")
    assert np.array_equal(back.landmarks, lm.landmarks) and np.array_equal(back.found, lm.found)
    assert back.fps == pytest.approx(29.97) and back.size == (64, 48) and back.names == lm.names
    with np.load(tmp_path / "x" / "landmarks.npz") as z:
        assert set(z.files) >= {"landmarks", "found", "fps", "size"}
    with pytest.raises(ValueError, match="shape|must be"):
        FaceLandmarks(np.zeros((2, 5, 3), np.float32), np.zeros(2, bool), 25.0, np.zeros((2, 2), np.int64))


@pytest.mark.needs_shared_data
def test_blank_frames_keep_their_index_and_are_flagged(tmp_path, face_frames, real_landmarks):
    frames = face_frames[:14].copy()
    assert real_landmarks.found[:14].all(), "the fixture assumes a face in the first 14 frames"
    blank = np.arange(5, 9)
    frames[blank] = 0
    path = tmp_path / "blanks.mp4"
    write_video(path, frames, fps=24000 / 1001)
    lm = extract_video(path, show_progress=False)
    assert lm.num_frames == 14
    expected = np.ones(14, bool)
    expected[blank] = False
    assert np.array_equal(lm.found, expected)
    # Frames after the gap are aligned with the originals (nothing shifted by the gap).
    after = np.nanmean(np.abs(lm.landmarks[9:14, :, :2] - real_landmarks.landmarks[9:14, :, :2]))
    assert after < 10.0


def test_native_stderr_filter_drops_noise_and_keeps_the_rest():
    # A child process writes straight to fd 2, as MediaPipe's C++ side does.
    code = (
        "import os\n"
        "from tempsmirk.video.landmarks import MEDIAPIPE_NOISE, native_stderr_filtered\n"
        "with native_stderr_filtered(MEDIAPIPE_NOISE):\n"
        "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
        "    os.write(2, b'W0000 00:00:1796508473.537552    6191 inference_feedback_manager.cc:114]"
        " Feedback manager requires a model\\n')\n"
        "    os.write(2, b'E0000 00:00:1.0 12 calculator_graph.cc:887] real failure\\n')\n"
        "os.write(2, b'after\\n')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=repo_root(), check=True)
    assert "TensorFlow Lite" not in res.stderr and "Feedback manager" not in res.stderr
    assert "real failure" in res.stderr and res.stderr.rstrip().endswith("after")


@pytest.mark.needs_shared_data
def test_facemesh_prints_no_startup_noise(real_video):
    # Frames decoded lazily between detector calls, as extract_video does: the graph's own
    # threads log while the caller decodes, outside any single call.
    code = (
        "import itertools\n"
        "from tempsmirk.video.landmarks import detect_frames\n"
        "from tempsmirk.video.io import iter_frames\n"
        f"frames = itertools.islice(iter_frames({str(real_video)!r}), 3)\n"
        "_, found, _ = detect_frames(frames, tracking=True)\n"
        "print(int(found.sum()))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=repo_root(), check=True)
    assert res.stdout.strip() == "3"
    assert res.stderr.strip() == "", res.stderr
