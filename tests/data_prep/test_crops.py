"""``python -m data_prep.crops`` over a folder: crops beside the landmarks, a faceless video reported,
finished videos skipped."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.crops import main
from tempsmirk.video.io import probe_video, write_video
from tempsmirk.video.landmarks import load_landmarks


@pytest.mark.needs_shared_data
def test_crops_cli_over_a_folder(tmp_path, face_frames, capsys):
    from data_prep.landmarks import main as landmarks_main

    src = tmp_path / "videos"
    write_video(src / "face.mp4", face_frames[:6], fps=24000 / 1001)
    write_video(src / "noface.mp4", np.zeros((3, 32, 32, 3), np.uint8), fps=25)
    out = tmp_path / "out"
    assert landmarks_main([str(src), "--out", str(out), "--quiet"]) == 0
    assert main([str(src), "--out", str(out), "--quiet"]) == 1
    text = capsys.readouterr().out
    assert "1 done" in text and "noface.mp4" in text and "no frame has a face" in text
    assert probe_video(out / "face" / "crops.mp4").header_frames == 6
    assert load_landmarks(out / "face" / "landmarks.npz").num_frames == 6
    assert main([str(src / "face.mp4"), "--out", str(out), "--quiet"]) == 0  # already done
    assert "1 skipped" in capsys.readouterr().out
