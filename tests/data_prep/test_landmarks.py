"""``python -m data_prep.landmarks``: folders of videos and images, failures reported, resumable."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from data_prep.landmarks import main, plan_jobs
from tempsmirk.paths import repo_root
from tempsmirk.video.io import write_image, write_video
from tempsmirk.video.landmarks import load_landmarks


def _flat_video(path, t=5):
    """Faceless frames (flat grey levels; random noise sometimes fools FaceMesh)."""
    write_video(path, np.stack([np.full((32, 32, 3), 40 * i, np.uint8) for i in range(t)]), fps=25)


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
