"""The config system: schema defaults, YAML + overrides, typos fail, round trip."""

from __future__ import annotations

import pytest

from tempsmirk.config import Config, ConfigError, config_from_yaml, config_to_yaml, load_config, save_config
from tempsmirk.losses import LossWeights
from tempsmirk.paths import repo_root

EXAMPLE = repo_root() / "tempsmirk" / "configs" / "smirk_synthetic_small.yaml"


def test_defaults_follow_the_guide():
    cfg = load_config(None, ["run.dir=/tmp/x"])
    assert isinstance(cfg, Config)
    assert cfg.loss.weights == LossWeights.core()
    assert cfg.optim.encoder_lr_scale == 0.25 and cfg.optim.generator_betas == [0.5, 0.999]
    assert cfg.optim.final_lr_scale == 0.01 and cfg.optim.generator_clip == 0.1
    assert cfg.loss.masking.hull_radius == 10 and cfg.loss.masking.patch_size == 11
    assert (cfg.loss.masking.dropout, cfg.loss.masking.cycle_dropout) == (0.01, 0.005)


def test_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  steps: 7\n  batch_size: 3\nrun:\n  dir: /tmp/a\n")
    cfg = load_config(path, ["train.steps=9", "loss.masking.dropout=0.02"])
    assert (cfg.train.steps, cfg.train.batch_size, cfg.run.dir) == (9, 3, "/tmp/a")
    assert cfg.loss.masking.dropout == 0.02


@pytest.mark.parametrize("text, overrides, match", [
    ("train:\n  stepz: 3\n", ["run.dir=a"], "stepz"),
    ("", ["run.dir=a", "optim.lr=fast"], "optim.lr"),
    ("", ["run.dir=a", "data.synthetic.imagesize=64"], "imagesize"),
    ("", [], "run.dir"),
    ("", ["train.steps"], "key=value"),
])
def test_mistakes_fail_with_the_key_named(tmp_path, text, overrides, match):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path, overrides)


def test_round_trip_and_example(tmp_path):
    cfg = load_config(EXAMPLE, [f"run.dir={tmp_path}"])
    assert cfg.data.synthetic.image_size == 64 and cfg.loss.weights.perceptual == 0
    saved = save_config(cfg, tmp_path / "config.yaml")
    assert load_config(saved) == cfg == config_from_yaml(config_to_yaml(cfg))
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "absent.yaml")


def test_weight_sections_merge_from_files_and_old_keys_say_where_they_moved(tmp_path):
    """The loss and temporal weights are frozen dataclasses nested in the config: a file and an
    override both merge into them (OmegaConf marks a frozen section read-only, and before 2.4
    refuses merges into it, so every schema node is made writable), and keys of the flat layout
    they replaced fail with their new place named."""
    from omegaconf import OmegaConf

    from tempsmirk.config import _schema, _sections
    from tempsmirk.temporal import TemporalWeights

    schema = _schema(Config)
    assert not [key for key, node in _sections(schema) if OmegaConf.is_readonly(node)]
    path = tmp_path / "c.yaml"
    path.write_text("loss:\n  weights:\n    cycle: 0.0\ntemporal:\n  weights:\n    identity: 2.0\n")
    cfg = load_config(path, ["run.dir=x", "loss.weights.perceptual=0", "temporal.weights.reduction=sum"])
    assert cfg.loss.weights == LossWeights(perceptual=0.0, cycle=0.0)
    assert cfg.temporal.weights == TemporalWeights(identity=2.0, reduction="sum")
    for old, new in (("loss.perceptual=0", "loss.weights.perceptual"), ("loss.cycle=0", "loss.weights.cycle"),
                     ("loss.cycle_path.enabled=false", "loss.weights.cycle"),
                     ("temporal.identity=1", "temporal.weights.identity")):
        with pytest.raises(ConfigError, match=f"is now {new}"):
            load_config(None, ["run.dir=x", old])
