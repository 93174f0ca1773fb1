"""Session fixtures for data_prep tests: the shared real video, processed once.

Fixture videos and images are generated in temporary folders; where they need a
face they reuse frames of the shared video (such tests are ``needs_shared_data``).
"""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest

from data_prep.crops import crop_video
from data_prep.landmarks import FaceLandmarks, extract_video
from data_prep.video import iter_frames, read_frames
from tempsmirk.paths import shared_data


@pytest.fixture(scope="session")
def real_video(shared_dir):
    return shared_data("video", "pexels_woman_emotions.mp4")


@pytest.fixture(scope="session")
def real_landmarks(real_video) -> FaceLandmarks:
    """All 472 frames through FaceMesh once per session (a few seconds)."""
    return extract_video(real_video, show_progress=False)


@pytest.fixture(scope="session")
def real_crops(real_video, real_landmarks, tmp_path_factory):
    out = tmp_path_factory.mktemp("real_crops")
    return out, crop_video(real_video, real_landmarks, out, show_progress=False)


@pytest.fixture(scope="session")
def face_frames(real_video) -> np.ndarray:
    """The first 24 frames of the shared video, (24, 360, 640, 3) uint8 RGB."""
    return np.stack(list(islice(iter_frames(real_video), 24)))


@pytest.fixture(scope="session")
def real_crop_frames(real_crops) -> np.ndarray:
    out, _ = real_crops
    return read_frames(out / "crops.mp4")
