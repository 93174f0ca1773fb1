from __future__ import annotations

import json

import numpy as np
import pytest

from data_prep.affectnet import (
    CSV_COLUMNS,
    box_crop_affine,
    main,
    parse_annotations,
    prepare_affectnet,
    read_index,
)
from data_prep.crops import transform_points
from data_prep.video import read_image, write_image

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
    assert main([str(affectnet_root), "--out", str(out), "--quiet"]) == 1  # data problems -> 1
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

    # Re-running reuses the crops (resume) and gives the same index.
    mtime = index.crop_paths[0].stat().st_mtime_ns
    prepare_affectnet(affectnet_root, out, show_progress=False)
    assert index.crop_paths[0].stat().st_mtime_ns == mtime
    assert read_index(out).source_paths == index.source_paths


def test_bad_inputs_fail_at_the_boundary(tmp_path):
    (tmp_path / "training.csv").write_text("path,x,y\n1,2,3\n")
    with pytest.raises(ValueError, match="expected the header"):
        parse_annotations(tmp_path / "training.csv")
    with pytest.raises(FileNotFoundError, match="no training.csv or validation.csv"):
        prepare_affectnet(tmp_path / "nothing", tmp_path / "out")
    with pytest.raises(ValueError, match="run 'python -m data_prep.affectnet"):
        read_index(tmp_path / "nope")
