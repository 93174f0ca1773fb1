"""Shared fixtures and marker handling.

Markers: ``slow``, ``gpu`` (skipped without CUDA), ``needs_shared_data`` (skipped
with a reason where ../shared is absent; in CI it is present, so they run).
"""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest
import torch

from tempsmirk.paths import shared_data, shared_root


def pytest_collection_modifyitems(config, items):
    shared = shared_root()
    has_cuda = torch.cuda.is_available()
    for item in items:
        if "needs_shared_data" in item.keywords and shared is None:
            item.add_marker(pytest.mark.skip(
                reason="needs ../shared/data beside the checkout (or $TEMPSMIRK_SHARED); absent here"))
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device; none is available"))


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op torch thread per test, restored afterwards: the tests' tensors are small and
    the CI machine has 2 cores, where oversubscribed threads made them several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_dir():
    root = shared_root()
    if root is None:
        pytest.skip("needs ../shared/data beside the checkout (or $TEMPSMIRK_SHARED); absent here")
    return root


@pytest.fixture(scope="session")
def ringnet_dir(shared_dir):
    return shared_dir / "data" / "ringnet"


# ----------------------------------------------------------------------------- the shared real video
# Used by the video front end's tests (tests/video) and the command lines' (tests/data_prep); processed
# once per session. Tests that need a face reuse frames of this video (they are needs_shared_data).


@pytest.fixture(scope="session")
def real_video(shared_dir):
    return shared_data("video", "pexels_woman_emotions.mp4")


@pytest.fixture(scope="session")
def real_landmarks(real_video):
    """All 472 frames through FaceMesh once per session (a few seconds): FaceLandmarks."""
    from tempsmirk.video.landmarks import extract_video

    return extract_video(real_video, show_progress=False)


@pytest.fixture(scope="session")
def real_crops(real_video, real_landmarks, tmp_path_factory):
    from tempsmirk.video.crops import crop_video

    out = tmp_path_factory.mktemp("real_crops")
    return out, crop_video(real_video, real_landmarks, out, show_progress=False)


@pytest.fixture(scope="session")
def face_frames(real_video):
    """The first 24 frames of the shared video, (24, 360, 640, 3) uint8 RGB."""
    from tempsmirk.video.io import iter_frames

    return np.stack(list(islice(iter_frames(real_video), 24)))


@pytest.fixture(scope="session")
def real_crop_frames(real_crops):
    from tempsmirk.video.io import read_frames

    out, _ = real_crops
    return read_frames(out / "crops.mp4")
