from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from data_prep.landmarks import (
    NUM_LANDMARKS,
    FaceLandmarks,
    extract_video,
    load_landmarks,
    main,
    plan_jobs,
    save_landmarks,
)
from data_prep.video import iter_frames, write_image, write_video
from tempsmirk.paths import repo_root


def _flat_video(path, t=5):
    """Faceless frames (flat grey levels; random noise sometimes fools FaceMesh)."""
    write_video(path, np.stack([np.full((32, 32, 3), 40 * i, np.uint8) for i in range(t)]), fps=25)


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


def test_folder_with_corrupt_videos_reports_continues_and_resumes(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _flat_video(src / "good.mp4", t=5)
    data = (src / "good.mp4").read_bytes()
    (src / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (src / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    (src / "notes.txt").write_text("not a video")
    out = tmp_path / "out"

    assert main([str(src), "--out", str(out), "--quiet"]) == 1
    report = capsys.readouterr().out
    assert "1 done, 0 skipped (already done), 2 failed" in report
    assert "truncated.mp4" in report and "garbage.mp4" in report
    lm = load_landmarks(out / "good" / "landmarks.npz")
    assert lm.num_frames == 5 and not lm.found.any()  # flat frames hold no face; every frame is kept
    assert not (out / "truncated").exists() and not (out / "garbage").exists()

    # A second run skips what is done and still reports the failures.
    assert main([str(src), "--out", str(out), "--quiet"]) == 1
    assert "0 done, 1 skipped (already done), 2 failed" in capsys.readouterr().out


def test_truncated_video_prefix_only_on_request(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    # Noise frames make every packet sizeable, so a cut at 60% keeps whole frames.
    frames = np.random.default_rng(0).integers(0, 256, (30, 64, 64, 3), dtype=np.uint8)
    write_video(src / "cut.mp4", frames, fps=25)
    full = (src / "cut.mp4").read_bytes()
    # The index sits at the front (faststart): a file cut in its tail still opens.
    (src / "cut.mp4").write_bytes(full[: int(0.6 * len(full))])
    out = tmp_path / "out"
    assert main([str(src), "--out", str(out), "--quiet"]) == 1
    assert "truncated" in capsys.readouterr().out
    assert not (out / "cut").exists()
    assert main([str(src), "--out", str(out), "--quiet", "--accept-short"]) == 0
    assert "but the header says 30" in capsys.readouterr().out
    assert 0 < load_landmarks(out / "cut" / "landmarks.npz").num_frames < 30


def test_cli_exit_codes_in_a_subprocess(tmp_path):
    _flat_video(tmp_path / "clip.mp4", t=3)
    run = lambda *a: subprocess.run([sys.executable, "-m", "data_prep.landmarks", *a, "--quiet"],  # noqa: E731
                                    cwd=repo_root(), capture_output=True, text=True, timeout=120)
    ok = run(str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "out"))
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "out" / "clip" / "landmarks.npz").is_file()
    missing = run(str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "out"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


@pytest.mark.needs_shared_data
def test_image_folder_gives_one_file_with_names(tmp_path, face_frames, capsys):
    src = tmp_path / "faces"
    src.mkdir()
    write_image(src / "a_face.png", face_frames[0])
    write_image(src / "b_blank.png", np.zeros((40, 60, 3), np.uint8))
    write_image(src / "c_face.jpg", face_frames[10][::2, ::2])
    (src / "d_broken.jpg").write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "out"
    assert main([str(src), "--out", str(out), "--quiet"]) == 1  # the broken image is a failure
    assert "d_broken.jpg" in capsys.readouterr().out
    lm = load_landmarks(out / "faces" / "landmarks.npz")
    assert lm.names == ("a_face.png", "b_blank.png", "c_face.jpg", "d_broken.jpg")
    assert lm.found.tolist() == [True, False, True, False]
    assert lm.sizes.tolist() == [[640, 360], [60, 40], [320, 180], [0, 0]]
    assert lm.size == (0, 0) and np.isnan(lm.fps)
    # Same face at half resolution: landmarks scale with the image.
    ratio = np.nanmedian(lm.landmarks[0, :, :2] / np.where(lm.landmarks[2, :, :2] == 0, np.nan,
                                                            lm.landmarks[2, :, :2]))
    assert 1.5 < ratio < 2.5


def test_plan_jobs_refuses_ambiguous_or_empty_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plan_jobs(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no videos"):
        plan_jobs(tmp_path / "empty", tmp_path / "out")
    both = tmp_path / "both"
    both.mkdir()
    (both / "a.mp4").write_bytes(b"")
    (both / "a.avi").write_bytes(b"")
    with pytest.raises(ValueError, match="rename"):
        plan_jobs(both, tmp_path / "out")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match="not a video"):
        plan_jobs(tmp_path / "x.txt", tmp_path / "out")


def test_native_stderr_filter_drops_noise_and_keeps_the_rest():
    # A child process writes straight to fd 2, as MediaPipe's C++ side does.
    code = (
        "import os\n"
        "from data_prep.landmarks import MEDIAPIPE_NOISE, native_stderr_filtered\n"
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
        "from data_prep.landmarks import detect_frames\n"
        "from data_prep.video import iter_frames\n"
        f"frames = itertools.islice(iter_frames({str(real_video)!r}), 3)\n"
        "_, found, _ = detect_frames(frames, tracking=True)\n"
        "print(int(found.sum()))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=repo_root(), check=True)
    assert res.stdout.strip() == "3"
    assert res.stderr.strip() == "", res.stderr
