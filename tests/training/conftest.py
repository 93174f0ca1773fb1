"""Training test fixtures: a tiny config."""

from __future__ import annotations

import pytest


@pytest.fixture
def tiny_overrides():
    """32 px, batch 2, 4 steps, no VGG: a few seconds per run on a CPU."""
    return ["train.steps=4", "train.batch_size=2", "data.synthetic.image_size=32",
            "data.synthetic.n_items=6", "loss.weights.perceptual=0", "train.log_every=1",
            "train.image_every=2", "train.checkpoint_every=2", "train.device=cpu"]
