"""Data test fixtures: one built-in head per session, one torch thread per test."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: the CI machine's 2 cores are shared; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def head():
    from tempsmirk.flame import FLAME

    return FLAME.builtin(seed=0)
