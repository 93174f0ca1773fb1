"""Data test fixtures: one built-in head per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def head():
    from tempsmirk.flame import FLAME

    return FLAME.builtin(seed=0)
