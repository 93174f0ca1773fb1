"""Shared fixtures and marker handling.

Markers: ``slow``, ``gpu`` (skipped without CUDA), ``needs_shared_data`` (skipped
with a reason where ../shared is absent; in CI it is present, so they run).
"""

from __future__ import annotations

import pytest
import torch

from tempsmirk.paths import shared_root


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
