"""Data test fixtures: one built-in head per session; stand-in face corpora from the shared video."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def head():
    from tempsmirk.flame import FLAME

    return FLAME.builtin(seed=0)


@pytest.fixture(scope="session")
def face_corpora(shared_dir, tmp_path_factory):
    """FFHQ- and LRS3-like corpora with MediaPipe and FAN files (``face_corpora.py``; ~3 s)."""
    from face_corpora import build_face_corpora

    return build_face_corpora(tmp_path_factory.mktemp("face_corpora"),
                              shared_dir / "data" / "video" / "pexels_woman_emotions.mp4")
