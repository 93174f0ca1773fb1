"""SMIRK test fixtures: the official checkpoint layout and shared model instances."""

from __future__ import annotations

import json

import pytest
import torch

from tempsmirk.paths import shared_root

LAYOUT_NAME = "smirk_checkpoint_layout.json"


@pytest.fixture(scope="session")
def smirk_layout() -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """The official checkpoint's keys (in order) -> (shape, dtype), from ../shared/reference."""
    root = shared_root()
    path = None if root is None else root / "reference" / LAYOUT_NAME
    if path is None or not path.is_file():
        pytest.skip(f"needs ../shared/reference/{LAYOUT_NAME}; absent here")
    raw = json.loads(path.read_text())
    return {k: (tuple(v["shape"]), getattr(torch, v.get("dtype", "torch.float32").split(".")[-1]))
            for k, v in raw.items()}


@pytest.fixture(scope="session")
def layout_state(smirk_layout) -> dict[str, torch.Tensor]:
    """An 'official' checkpoint made from the layout: a distinct random tensor per key."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, (shape, dtype) in smirk_layout.items():
        if dtype == torch.int64:
            state[key] = torch.randint(0, 1000, shape, generator=g, dtype=dtype)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.1
    return state


@pytest.fixture(scope="session")
def layout_checkpoint(tmp_path_factory, layout_state):
    """``layout_state`` saved the way the official code saves it (flat dict, torch.save)."""
    path = tmp_path_factory.mktemp("official") / "smirk_official.pt"
    torch.save(layout_state, path)
    return path


@pytest.fixture(scope="session")
def encoder():
    """A shared, untrained encoder in eval mode. Tests must not modify it."""
    from tempsmirk.smirk import SmirkEncoder

    torch.manual_seed(0)
    return SmirkEncoder().eval()
