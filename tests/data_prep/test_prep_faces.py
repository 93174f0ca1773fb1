"""data_prep.faces: MediaPipe over a dataset (SMIRK's file layout, resumable, failures reported) and
the corpus manifest for each of SMIRK's dataset layouts."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from data_prep.faces import MediaFile, check_landmarks, main, run_mediapipe, scan_corpus
from tempsmirk.data.face_corpus import read_corpus
from tempsmirk.data.landmark_files import read_mediapipe_image, read_mediapipe_video
from tempsmirk.video.io import write_image, write_video


def _flat(h=64, w=64, level=90):
    return np.full((h, w, 3), level, np.uint8)


@pytest.mark.needs_shared_data
def test_mediapipe_over_a_dataset_writes_smirks_layout_and_resumes(face_frames, tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "mp"
    write_image(data / "a" / "face.png", face_frames[0])
    write_image(data / "a" / "blank.jpg", _flat())
    (data / "b").mkdir(parents=True)
    (data / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    clip = np.concatenate([face_frames[:3], np.stack([_flat(360, 640)] * 2)])
    write_video(data / "b" / "clip.mp4", clip, fps=25)

    outcomes = run_mediapipe(data, out, show_progress=False)
    status = {o.item: o.status for o in outcomes}
    assert status == {"a/face.png": "done", "a/blank.jpg": "done", "b/broken.png": "failed",
                      "b/clip.mp4": "done"}
    assert "broken.png" in [o for o in outcomes if o.status == "failed"][0].message
    face = read_mediapipe_image(out / "a" / "face.npy")
    assert face.shape == (478, 3)
    assert 250 < face[:, 0].mean() < 600 and 50 < face[:, 1].mean() < 360  # pixels of the 640x360 frame
    assert np.abs(face[:, 2]).max() < 1.0  # z as MediaPipe gives it, as SMIRK's files keep it
    assert read_mediapipe_image(out / "a" / "blank.npy") is None  # a marker: done, no face
    assert not (out / "b" / "broken.npy").exists()
    video = read_mediapipe_video(out / "b" / "clip.npy", frames=5)
    assert np.isfinite(video[:3]).all() and np.isnan(video[3:]).all()

    # Resume: nothing is redone; a removed output is redone alone.
    (out / "a" / "face.npy").unlink()
    again = {o.item: o.status for o in run_mediapipe(data, out, show_progress=False)}
    assert again == {"a/face.png": "done", "a/blank.jpg": "skipped", "b/broken.png": "failed",
                     "b/clip.mp4": "skipped"}
    assert main(["mediapipe", str(data), "--out", str(out), "--quiet"]) == 1  # the broken file
    assert "FAILED b/broken.png" in capsys.readouterr().out


def _touch_videos(root, paths):
    for p in paths:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / p, np.stack([_flat(16, 16, 10 * i) for i in range(3)]), fps=25)


def test_layouts_of_smirks_datasets(tmp_path):
    lrs3 = tmp_path / "lrs3"
    speakers = [f"spk{i:02d}" for i in range(10)]
    _touch_videos(lrs3, [f"trainval/{s}/00001.mp4" for s in speakers]
                  + ["test/spkT/00001.mp4", "stray.mp4", "pretrain/spk00/00009.mp4"])
    files, unexpected = scan_corpus("lrs3", lrs3, show_progress=False)
    by = {f.path: f for f in files}
    assert by["test/spkT/00001.mp4"].split == "test" and by["test/spkT/00001.mp4"].frames == 3
    assert sorted(f.split for f in files if f.path.startswith("trainval")) == ["train"] * 8 + ["val"] * 2
    assert sorted(u.split(" ")[0] for u in unexpected) == ["pretrain/spk00/00009.mp4", "stray.mp4"]  # as SMIRK

    flat = tmp_path / "mead_flat"
    _touch_videos(flat, ["M003_front_angry_level_1_001.mp4", "M005_front_happy_level_2_003.mp4",
                         "X999_front_angry_level_1_001.mp4"])
    files, _ = scan_corpus("mead", flat, show_progress=False)
    assert {(f.subject, f.split) for f in files} == {("M003", "train"), ("M005", "test"), ("X999", "unassigned")}

    sides = tmp_path / "mead_sides"
    _touch_videos(sides, ["videos_left_30/M003_a.mp4", "videos_right_60/W009_b.mp4",
                          "videos_left_30/M003_test.mp4", "videos_top/M003_c.mp4"])
    files, unexpected = scan_corpus("mead_sides", sides, show_progress=False)
    assert sorted(f.path for f in files) == ["videos_left_30/M003_a.mp4", "videos_right_60/W009_b.mp4"]
    assert len(unexpected) == 2  # the "test" file (SMIRK skips those) and the unknown folder

    raw = tmp_path / "mead_raw"
    _touch_videos(raw, ["M003/video/front/angry/level_1/001.mp4", "M003/video/left_30/angry/level_1/001.mp4"])
    front, _ = scan_corpus("mead", raw, show_progress=False)
    side, _ = scan_corpus("mead_sides", raw, show_progress=False)
    assert [f.path for f in front] == ["M003/video/front/angry/level_1/001.mp4"]
    assert [f.path for f in side] == ["M003/video/left_30/angry/level_1/001.mp4"]

    celeba = tmp_path / "celeba"
    for name in ("000001.jpg", "000002.jpg", "000003.jpg"):
        write_image(celeba / name, _flat(8, 8))
    files, unexpected = scan_corpus("celeba", celeba, identities={"000001.jpg": "7", "000002.jpg": "7"},
                                    show_progress=False)
    assert [(f.path, f.subject) for f in files] == [("000001.jpg", "7"), ("000002.jpg", "7")]
    assert unexpected == ("000003.jpg (not in the identity file)",)

    bupt = tmp_path / "bupt"
    write_image(bupt / "African" / "m.0abc" / "1.jpg", _flat(8, 8))
    files, _ = scan_corpus("bupt", bupt, show_progress=False)
    assert [(f.subject, f.split) for f in files] == [("m.0abc", "train")]


def test_manifest_rows_say_why_a_file_is_left_out(tmp_path):
    mp = tmp_path / "mp"
    fan = tmp_path / "fan"
    good = np.random.default_rng(0).uniform(10, 50, size=(478, 3)).astype(np.float32)
    mp.mkdir()
    fan.mkdir()
    np.save(mp / "ok.npy", good)
    np.save(mp / "noface.npy", np.zeros((0, 478, 3), np.float32))
    np.save(fan / "ok.npy", np.zeros((1, 68, 2), np.float32))

    class Evil:
        def __reduce__(self):
            return print, ("pwned",)

    np.save(mp / "evilfan.npy", good)
    np.save(fan / "evilfan.npy", np.array([Evil()], dtype=object), allow_pickle=True)
    files = [MediaFile(f"{n}.png", n, "train", 1) for n in ("ok", "noface", "missing", "evilfan")]
    rows, fan_problems = check_landmarks(files, "images", mp, fan, show_progress=False)
    by = {r.path: r for r in rows}
    assert by["ok.png"].ok and by["ok.png"].fan_frames == 1
    assert by["noface.png"].status == "MediaPipe found no face"
    assert "no MediaPipe file" in by["missing.png"].status
    assert by["evilfan.png"].ok and by["evilfan.png"].fan_frames == -1  # usable, with MediaPipe's 68
    assert len(fan_problems) == 1 and "refused" in fan_problems[0]

    # A video whose MediaPipe rows do not match its frames (SMIRK's files drop faceless frames).
    np.save(mp / "v.npy", np.repeat(good[None], 4, axis=0))
    with open(fan / "v.pkl", "wb") as fh:
        pickle.dump([good[:68, :2]] * 5, fh)
    rows, fan_problems = check_landmarks([MediaFile("v.mp4", "s", "train", 5)], "videos", mp, fan, False)
    assert "4 rows of landmarks for a video of 5 frames" in rows[0].status
    assert rows[0].fan_frames == 5 and not fan_problems


def test_manifest_command_writes_the_corpus(tmp_path, capsys):
    root, mp = tmp_path / "ffhq", tmp_path / "mp"
    write_image(root / "00001.png", _flat(8, 8))
    write_image(root / "00002.png", _flat(8, 8))
    mp.mkdir()
    np.save(mp / "00001.npy", np.ones((478, 3), np.float32))
    code = main(["manifest", "ffhq", str(root), "--mediapipe", str(mp), "--out", str(tmp_path / "c"), "--quiet"])
    assert code == 1  # one file left out
    report = capsys.readouterr().out
    assert "2 files, 1 usable" in report and "00002.png: no MediaPipe file" in report
    info, rows = read_corpus(tmp_path / "c")
    assert info.fan_root is None and info.mediapipe_root == str(mp.resolve())
    assert json.loads((tmp_path / "c" / "corpus.json").read_text())["kind"] == "ffhq"
    assert [r.ok for r in rows] == [True, False]
    assert main(["manifest", "ffhq", str(tmp_path / "nowhere"), "--out", str(tmp_path / "d"), "--quiet"]) == 2
