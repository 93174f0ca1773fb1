"""Training test fixtures: a tiny config and one torch thread."""

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


@pytest.fixture
def tiny_overrides():
    """32 px, batch 2, 4 steps, no VGG: a few seconds per run on a CPU."""
    return ["train.steps=4", "train.batch_size=2", "data.synthetic.image_size=32",
            "data.synthetic.n_items=6", "loss.perceptual=0", "train.log_every=1",
            "train.image_every=2", "train.checkpoint_every=2", "train.device=cpu"]
