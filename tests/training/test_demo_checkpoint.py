"""demo_checkpoint: trains once per recipe, then returns the cached SMIRK-layout file."""

from __future__ import annotations

import pytest
import torch

from tempsmirk.smirk import SmirkEncoder, SmirkGenerator, load_smirk_checkpoint
from tempsmirk.training import demo as demo_module
from tempsmirk.training import demo_checkpoint, demo_config


@pytest.fixture
def tiny_profiles(monkeypatch):
    monkeypatch.setattr(demo_module, "DEMO_PROFILES", {"small": 2, "full": 3})


def test_trains_once_and_reuses(tmp_path, tiny_profiles):
    path = demo_checkpoint("small", root=tmp_path)
    assert path.is_file() and path.name == "smirk.pt"
    encoder, generator = load_smirk_checkpoint(path)
    assert isinstance(encoder, SmirkEncoder) and isinstance(generator, SmirkGenerator)
    # The trained weights differ from a fresh initialisation (training happened).
    fresh = SmirkEncoder()
    key = "pose_encoder.pose_cam_layers.0.weight"
    assert not torch.equal(encoder.state_dict()[key], fresh.state_dict()[key])

    stamp = path.stat().st_mtime_ns
    assert demo_checkpoint("small", root=tmp_path) == path
    assert path.stat().st_mtime_ns == stamp  # cached, not retrained


def test_recipe_change_gets_its_own_folder(tmp_path, tiny_profiles):
    small = demo_checkpoint("small", root=tmp_path)
    other_seed = demo_checkpoint("small", seed=1, root=tmp_path)
    assert small.parent != other_seed.parent
    assert demo_config("full").train.steps == 3


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="profile must be one of"):
        demo_config("huge")
