"""CSV tables: a round trip, another header refused, a broken row named by its line (the MEAD manifest
as the example)."""

from __future__ import annotations

import pytest

from tempsmirk.data.mead import MANIFEST_COLUMNS, MeadClip, read_manifest, write_manifest
from tempsmirk.data.tables import read_table, write_table

CLIPS = (MeadClip("M003", "front", "angry", 1, "001", "train", "M003/video/front/angry/level_1/001.mp4", 30),
         MeadClip("W009", "left_30", "happy", 3, "002", "unassigned", "W009/video/x, y.mp4", -1))


def test_round_trip_keeps_every_value_and_quotes_commas(tmp_path):
    write_manifest(tmp_path / "manifest.csv", CLIPS)
    assert read_manifest(tmp_path / "manifest.csv") == CLIPS
    lines = (tmp_path / "manifest.csv").read_text().splitlines()
    assert lines[0] == ",".join(MANIFEST_COLUMNS) and '"W009/video/x, y.mp4"' in lines[2]
    write_table(tmp_path / "t.csv", ("a", "b"), [])
    assert read_table(tmp_path / "t.csv", ("a", "b"), tuple, "x") == ()


def test_another_header_or_a_broken_row_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "manifest.csv").write_text("subject,view\nM003,front\n")
    with pytest.raises(ValueError, match="expected columns subject,view,emotion.*Re-create it with data_prep.mead"):
        read_manifest(tmp_path / "manifest.csv")
    write_manifest(tmp_path / "manifest.csv", CLIPS)
    text = (tmp_path / "manifest.csv").read_text().replace(",30\n", ",thirty\n")
    (tmp_path / "manifest.csv").write_text(text)
    with pytest.raises(ValueError, match=r"manifest.csv line 2: .*thirty.*; expected 8 fields"):
        read_manifest(tmp_path / "manifest.csv")
    with pytest.raises(FileNotFoundError, match="python -m data_prep.mead"):
        read_manifest(tmp_path / "elsewhere" / "manifest.csv")
