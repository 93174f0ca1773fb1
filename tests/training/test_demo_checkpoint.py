"""demo_checkpoint: trains once per recipe, then returns the cached SMIRK-layout file."""

from __future__ import annotations

import csv

import pytest
import torch

from tempsmirk.smirk import SmirkEncoder, SmirkGenerator, load_smirk_checkpoint
from tempsmirk.training import demo as demo_module
from tempsmirk.training import demo_checkpoint, demo_config

TINY = ("pretrain.steps=2", "pretrain.n_items=16", "pretrain.group_size=4", "pretrain.batch_size=4",
        "pretrain.eval_items=4", "pretrain.eval_every=1", "pretrain.render_workers=0", "data.synthetic.image_size=32")


@pytest.fixture
def tiny_profiles(monkeypatch, tmp_path):
    monkeypatch.setenv("TEMPSMIRK_CACHE", str(tmp_path / "cache"))  # rendered faces go here
    monkeypatch.setattr(demo_module, "DEMO_PROFILES", {"small": TINY, "full": (*TINY, "pretrain.steps=3")})


def test_trains_once_and_reuses(tmp_path, tiny_profiles):
    path = demo_checkpoint("small", root=tmp_path)
    assert path.is_file() and path.name == "smirk.pt"
    encoder, generator = load_smirk_checkpoint(path)
    assert isinstance(encoder, SmirkEncoder) and isinstance(generator, SmirkGenerator)
    # The trained weights differ from a fresh initialisation (training happened).
    fresh = SmirkEncoder()
    key = "pose_encoder.pose_cam_layers.0.weight"
    assert not torch.equal(encoder.state_dict()[key], fresh.state_dict()[key])
    # The learning curve is kept beside it: held-out figures after every step here.
    with open(path.parent / "pretrain" / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == ["1", "2"] and all(r["pose_ratio"] for r in rows)

    stamp = path.stat().st_mtime_ns
    assert demo_checkpoint("small", root=tmp_path) == path
    assert path.stat().st_mtime_ns == stamp  # cached, not retrained


def test_recipe_change_gets_its_own_folder(tmp_path, tiny_profiles):
    small = demo_checkpoint("small", root=tmp_path)
    other_seed = demo_checkpoint("small", seed=1, root=tmp_path)
    assert small.parent != other_seed.parent
    assert demo_config("full").pretrain.steps == 3


def test_smirk_stage_starts_from_the_pretrained_encoder(tmp_path, monkeypatch, tiny_profiles):
    """With train.steps > 0 the SMIRK objective runs after pretraining, from its encoder."""
    monkeypatch.setattr(demo_module, "DEMO_PROFILES", {"small": (*TINY, "train.steps=2", "train.batch_size=2"),
                                                       "full": TINY})
    path = demo_checkpoint("small", root=tmp_path)
    run = path.parent
    assert (run / "pretrained.pt").is_file() and (run / "smirk" / "smirk.pt").is_file()
    cfg = (run / "smirk" / "config.yaml").read_text()
    assert str(run / "pretrained.pt") in cfg  # model.init_checkpoint


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="profile must be one of"):
        demo_config("huge")


def test_data_overrides_carry_the_demo_faces_to_another_config():
    """Chapter 5's clips drawn with demo_data_overrides have the demo's size, framing and
    ranges, field by field, and keep their own clip settings."""
    from tempsmirk.training import demo_data_overrides, finetune_config
    from tempsmirk.training.demo import DEMO_FACE_FIELDS

    demo = demo_config("small").data.synthetic
    plain = finetune_config("small").data.synthetic
    clips = finetune_config("small", list(demo_data_overrides("small"))).data.synthetic
    assert any(getattr(plain, f) != getattr(demo, f) for f in DEMO_FACE_FIELDS)  # the test can fail
    for f in DEMO_FACE_FIELDS:
        assert getattr(clips, f) == getattr(demo, f), f
    assert clips.clip_length == plain.clip_length and clips.seed == plain.seed
