"""AffectNet: every drop reason counted, crops and index written and resumed, the crop rules by hand
(and the command line that runs them)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_prep.affectnet import main
from tempsmirk.data.affectnet import (
    CSV_COLUMNS,
    box_crop_affine,
    crop_path,
    emoca_crop_affine,
    parse_annotations,
    prepare_affectnet,
    read_index,
)
from tempsmirk.video.crops import transform_points
from tempsmirk.video.io import read_image, write_image

BOX = (40.0, 30.0, 80.0, 80.0)  # x, y, w, h in every fixture image
LMK = ";".join(f"{v:.1f}" for v in np.linspace(40, 120, 136))


def _row(path, code, v=0.5, a=0.3, box=BOX, lmk=LMK):
    return ",".join([path, *(str(b) for b in box), lmk, str(code), str(v), str(a)])


def _image() -> np.ndarray:
    """A 160x200 image: grey background, a red face box, a green dot at the box centre."""
    img = np.full((160, 200, 3), 90, np.uint8)
    x, y, w, h = (int(b) for b in BOX)
    img[y:y + h, x:x + w] = (220, 30, 30)
    img[y + h // 2 - 2:y + h // 2 + 2, x + w // 2 - 2:x + w // 2 + 2] = (30, 220, 30)
    return img


@pytest.fixture
def affectnet_root(tmp_path):
    """A tiny AffectNet: every code 0-10, invalid V/A, broken rows, a missing and a broken image."""
    root = tmp_path / "affectnet"
    images = root / "Manually_Annotated_Images"
    lines = [",".join(CSV_COLUMNS)]
    for code in range(11):  # lines 2..12
        name = f"1/code{code}.jpg"
        write_image(images / name, _image())
        lines.append(_row(name, code, *((-2, -2) if code == 10 else (0.5, 0.3))))
    write_image(images / "2/badva1.jpg", _image())
    write_image(images / "2/badva2.jpg", _image())
    lines.append(_row("2/badva1.jpg", 1, v=-2))              # line 13: invalid valence marker
    lines.append(_row("2/badva2.jpg", 2, a=1.5))             # line 14: arousal out of range
    lines.append("3/short.jpg,1,2,3")                        # line 15: too few fields
    lines.append(_row("3/x.jpg", 1, box=("abc", 1, 2, 3)))   # line 16: box not numeric
    lines.append(_row("3/y.jpg", 1, lmk="1;2;3"))            # line 17: 3 landmark numbers
    lines.append(_row("3/z.jpg", "happy"))                   # line 18: code not a number
    lines.append(_row("3/w.jpg", 11))                        # line 19: code out of range
    lines.append(_row("3/v.jpg", 1, box=(1, 2, -5, 10)))     # line 20: negative width
    lines.append("")                                         # line 21: blank, not a row
    lines.append(_row("4/missing.jpg", 3))                   # line 22: image absent
    (images / "4").mkdir(parents=True)
    (images / "4/broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    lines.append(_row("4/broken.jpg", 4))                    # line 23: image does not decode
    (root / "training.csv").write_text("\n".join(lines) + "\n")
    (root / "validation.csv").write_text("\n".join([",".join(CSV_COLUMNS), _row("1/code5.jpg", 5, -0.25, 0.75)]) + "\n")
    return root


def test_parse_counts_every_drop_reason_exactly(affectnet_root):
    rows, report = parse_annotations(affectnet_root / "training.csv")
    assert report.total == 21
    assert [r.expression for r in rows] == [0, 1, 2, 3, 4, 5, 6, 7, 3, 4]  # codes 0-7 + missing + broken
    assert report.dropped_code == {8: 1, 9: 1, 10: 1}
    assert report.invalid_va == 2
    assert [m.line for m in report.malformed] == [15, 16, 17, 18, 19, 20]
    reasons = " | ".join(m.reason for m in report.malformed)
    for text in ("expected 9 fields, found 4", "not four numbers", "3 numbers, expected 136",
                 "not numbers", "not an integer in 0-10", "positive width"):
        assert text in reasons
    assert rows[0].line == 2 and rows[-1].line == 23
    assert rows[0].landmarks.shape == (68, 2)
    assert report.total == (report.kept + sum(report.dropped_code.values()) + report.invalid_va
                            + len(report.malformed))


def test_prepare_writes_crops_index_and_report(affectnet_root, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(affectnet_root), "--out", str(out), "--rule", "csv_box", "--quiet"]) == 1  # data problems -> 1
    text = capsys.readouterr().out
    assert "4/missing.jpg" in text and "line 15" in text and "No-Face (10): 1" in text

    index = read_index(out)
    assert len(index) == 9
    train, val = index.select("train"), index.select("validation")
    assert sorted(train.expression.tolist()) == list(range(8))
    assert val.expression.tolist() == [5] and val.valence.tolist() == [-0.25]
    assert val.arousal.tolist() == [0.75] and val.source_paths == ("1/code5.jpg",)
    assert train.source_lines.tolist() == list(range(2, 10))

    report = json.loads((out / "report.json").read_text())
    tr = next(r for r in report if r["csv"] == "training.csv")
    assert tr["kept"] == 8 and tr["missing_images"] == ["4/missing.jpg"]
    assert tr["unreadable_images"] == ["4/broken.jpg"]
    assert tr["dropped_code"] == {"8": 1, "9": 1, "10": 1} and tr["invalid_va"] == 2
    assert [m["line"] for m in tr["malformed"]] == [15, 16, 17, 18, 19, 20]
    assert tr["crop"] == {"rule": "csv_box", "scale": 1.25, "size": 224}
    assert tr["crop_methods"] == {"csv_box": 8} and tr["crop_fallback"] == []
    assert index.crop_paths[0] == out / "crops/train/1/code0.jpg.jpg"

    crop = read_image(index.crop_paths[0])
    assert crop.shape == (224, 224, 3)
    # Box (side 80, scale 1.25 -> 100 px) fills the central 80% of the crop; its centre
    # dot lands at the crop centre. JPEG blurs edges, so sample away from them.
    assert crop[108:116, 108:116, 1].mean() > 150  # green dot at the centre
    assert crop[40, 40, 0] > 150 and crop[40, 40, 1] < 100  # inside the red box
    assert crop[8, 8, 0] < 120  # outside the box: grey background
    a = box_crop_affine(BOX, 1.25, 224)
    corner = transform_points(np.array([[40.0, 30.0]]), a)[0]
    assert np.allclose(corner, [(224 - 1) / 2 - 0.8 * 112] * 2, atol=1e-6)

    # Re-running reuses the crops (resume) and gives the same index; another rule is refused.
    mtime = index.crop_paths[0].stat().st_mtime_ns
    prepare_affectnet(affectnet_root, out, rule="csv_box", show_progress=False)
    assert index.crop_paths[0].stat().st_mtime_ns == mtime
    assert read_index(out).source_paths == index.source_paths
    with pytest.raises(ValueError, match="made with csv_box"):
        prepare_affectnet(affectnet_root, out, rule="emoca", show_progress=False)


def test_resume_after_an_interrupted_run_recrops_only_what_is_not_logged(affectnet_root, tmp_path):
    out = tmp_path / "out"
    prepare_affectnet(affectnet_root, out, rule="csv_box", show_progress=False)
    # Simulate a crash: no index yet, the log lost its last line and one crop file is gone.
    (out / "index.csv").unlink()
    log = (out / "crop_log.csv").read_text().splitlines()
    (out / "crop_log.csv").write_text("\n".join(log[:-1]) + "\n" + log[-1][:5])  # torn last line
    gone = out / crop_path("train", "1/code2.jpg")
    gone.unlink()
    kept = out / crop_path("train", "1/code0.jpg")
    mtime = kept.stat().st_mtime_ns
    index, reports = prepare_affectnet(affectnet_root, out, rule="csv_box", show_progress=False)
    assert gone.is_file() and kept.stat().st_mtime_ns == mtime
    assert len(index) == 9 and sum(sum(r.crop_methods.values()) for r in reports) == 9


def test_emoca_crop_box_by_hand():
    # 68 points spanning x 40..120, y 30..100: w 80, h 70. EMOCA (bbox2point kpt68, scale 1.25):
    # side = int((80 + 70) / 2 * 1.1 * 1.25) = int(103.125) = 103, centre (80, 65); the corners
    # (28.5, 13.5) and (131.5, 116.5) go to the centres of crop pixels 0 and 223.
    g = np.random.default_rng(0)
    lmk = np.column_stack([g.uniform(40, 120, 68), g.uniform(30, 100, 68)])
    lmk[:4] = [[40, 50], [120, 60], [70, 30], [90, 100]]
    a = emoca_crop_affine(lmk, 1.25, 224)
    corners = transform_points(np.array([[80 - 51.5, 65 - 51.5], [80 + 51.5, 65 + 51.5], [80, 65]]), a)
    np.testing.assert_allclose(corners, [[0, 0], [223, 223], [111.5, 111.5]], atol=1e-9)
    assert a[0, 0] == pytest.approx(223 / 103) and a[0, 1] == 0 and a[1, 0] == 0
    with pytest.raises(ValueError, match="no crop box"):
        emoca_crop_affine(np.full((68, 2), 5.0))


def test_rules_crop_the_fixture_as_computed(affectnet_root, tmp_path):
    # EMOCA's rule on a face whose 68 landmarks are given: the landmark box's centre is the
    # crop's centre. Landmarks around the green dot (box centre 80, 70), 60 x 40 px.
    lmk = np.column_stack([np.linspace(50, 110, 68), np.linspace(50, 90, 68)])
    root = tmp_path / "a"
    images = root / "Manually_Annotated_Images"
    write_image(images / "5/a.jpg", _image())
    shifted = np.roll(_image(), (0, 40), axis=(0, 1))  # the same picture, 40 px to the right
    write_image(images / "5/a.png", shifted)
    text = ";".join(f"{v:.2f}" for v in lmk.reshape(-1))
    (root / "validation.csv").write_text("\n".join([",".join(CSV_COLUMNS), _row("5/a.jpg", 1, lmk=text),
                                                     _row("5/a.png", 2, lmk=text)]) + "\n")
    index, reports = prepare_affectnet(root, tmp_path / "emoca", rule="emoca", show_progress=False)
    # Two sources differing only in extension get two crops (issue: they shared one path).
    assert [p.name for p in index.crop_paths] == ["a.jpg.jpg", "a.png.jpg"]
    a_jpg, a_png = (read_image(p) for p in index.crop_paths)
    assert a_jpg[108:116, 108:116, 1].mean() > 150  # the green dot at the crop centre
    assert a_png[108:116, 108:116, 1].mean() < 100  # the shifted picture: no dot there
    assert reports[0].crop_methods == {"landmarks68": 2} and not reports[0].crop_fallback
    # SMIRK's rule on pictures without a face: MediaPipe finds none, the 68 points' box x 1.4
    # is used instead and every such image is listed.
    index, reports = prepare_affectnet(root, tmp_path / "smirk", show_progress=False)
    assert index.crop.rule == "smirk" and reports[0].crop_methods == {"landmarks68": 2}
    assert reports[0].crop_fallback == ("5/a.jpg", "5/a.png")
    assert "crops by the fallback box: 2" in reports[0].summary()


def test_bad_inputs_fail_at_the_boundary(tmp_path):
    (tmp_path / "training.csv").write_text("path,x,y\n1,2,3\n")
    with pytest.raises(ValueError, match="expected the header"):
        parse_annotations(tmp_path / "training.csv")
    with pytest.raises(FileNotFoundError, match="no training.csv or validation.csv"):
        prepare_affectnet(tmp_path / "nothing", tmp_path / "out")
    with pytest.raises(ValueError, match="run 'python -m data_prep.affectnet"):
        read_index(tmp_path / "nope")
