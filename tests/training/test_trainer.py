"""Trainer: alternation, exact resume, NaN stop, run folder contents, CLI."""

from __future__ import annotations

import csv

import pytest
import torch

from tempsmirk.config import load_config
from tempsmirk.smirk import load_smirk_checkpoint
from tempsmirk.training import StepBatches, Trainer, TrainingDiverged


def _params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_step_batches_are_a_function_of_the_step():
    whole = list(StepBatches(5, 3, seed=1, start=0, end=6))
    assert list(StepBatches(5, 3, seed=1, start=2, end=6)) == whole[2:]
    flat = sum(whole, [])
    assert sorted(flat[:5]) == list(range(5)) and sorted(flat[5:10]) == list(range(5))  # epochs


def test_alternation_and_exact_resume(tmp_path, tiny_overrides):
    cfg_a = load_config(None, tiny_overrides + [f"run.dir={tmp_path / 'a'}"])
    a = Trainer(cfg_a, progress=False)
    o = cfg_a.optim
    assert a.opt_encoder.param_groups[0]["lr"] == pytest.approx(0.25 * o.lr)
    assert a.opt_generator.param_groups[0]["betas"] == (0.5, 0.999)
    enc0, gen0 = _params(a.encoder), _params(a.generator)
    a.train(until=1)  # step 0: the generator learns, the encoder waits
    enc1, gen1 = _params(a.encoder), _params(a.generator)
    assert _same(enc0, enc1) and not _same(gen0, gen1)
    a.train(until=2)  # step 1: the encoder learns
    assert not _same(enc1, _params(a.encoder)) and _same(gen1, _params(a.generator))
    ckpt = torch.load(a.checkpoint_path, weights_only=True)
    assert ckpt["step"] == 2 and isinstance(ckpt["rng"]["cycle"], torch.Tensor)

    b = Trainer(cfg_a, resume=True, progress=False)
    assert b.step == 2
    b.train()
    c = Trainer(load_config(None, tiny_overrides + [f"run.dir={tmp_path / 'c'}"]), progress=False)
    c.train()
    sb, sc = b.state(), c.state()
    assert sb["step"] == sc["step"] == 4
    for k in sc["model"]:
        torch.testing.assert_close(sb["model"][k], sc["model"][k], atol=1e-6, rtol=0, msg=k)
    for k, v in sc["optimizers"]["generator"]["state"].items():
        torch.testing.assert_close(sb["optimizers"]["generator"]["state"][k]["exp_avg"], v["exp_avg"], atol=1e-6, rtol=0)
    assert sb["schedulers"]["encoder"]["last_epoch"] == 4
    # Cosine to 1 % of the learning rate at the last step.
    assert b.opt_generator.param_groups[0]["lr"] == pytest.approx(0.01 * cfg_a.optim.lr)

    run = tmp_path / "a"
    assert load_config(run / "config.yaml") == cfg_a
    with open(run / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert [r["trained"] for r in rows] == ["generator", "encoder"] * 2
    assert sorted(p.name for p in (run / "images").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    enc, gen = load_smirk_checkpoint(run / "smirk.pt")
    assert gen is not None and torch.equal(enc.state_dict()["pose_encoder.pose_cam_layers.0.bias"],
                                           b.encoder.state_dict()["pose_encoder.pose_cam_layers.0.bias"])
    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(cfg_a, progress=False)


class _Poisonable(torch.utils.data.Dataset):
    """Wraps a dataset; after ``poison = True`` every image is NaN."""

    def __init__(self, inner):
        self.inner, self.poison = inner, False

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        from dataclasses import replace

        s = self.inner[i]
        return replace(s, image=torch.full_like(s.image, float("nan"))) if self.poison else s


def test_nan_stops_and_keeps_last_checkpoint(tmp_path, tiny_overrides):
    from tempsmirk.data import SyntheticFaces
    from tempsmirk.training import load_flame

    cfg = load_config(None, tiny_overrides + [f"run.dir={tmp_path}", "train.checkpoint_every=1"])
    data = _Poisonable(SyntheticFaces(load_flame(None, 300, 50), cfg.data.synthetic))
    t = Trainer(cfg, dataset=data, progress=False)
    t.train(until=2)
    good = t.checkpoint_path.read_bytes()
    data.poison = True
    with pytest.raises(TrainingDiverged, match=r"step 2: non-finite loss .*last good checkpoint"):
        t.train()
    assert t.checkpoint_path.read_bytes() == good
    assert torch.load(t.checkpoint_path, weights_only=True)["step"] == 2


def test_cli_train(tmp_path, tiny_overrides, capsys):
    from tempsmirk.__main__ import main
    from tempsmirk.paths import repo_root

    example = repo_root() / "tempsmirk" / "configs" / "smirk_synthetic_small.yaml"
    args = ["train", "--config", str(example), f"run.dir={tmp_path}"] + tiny_overrides + ["train.steps=1"]
    assert main(args) == 0
    assert (tmp_path / "checkpoints" / "last.pt").exists() and (tmp_path / "config.yaml").exists()
    assert main(args) == 2 and "--resume" in capsys.readouterr().err
    assert main(["train", "--config", str(example), "run.dir=x", "train.stepz=1"]) == 2
    assert "stepz" in capsys.readouterr().err


def test_pretraining_weights_train_the_encoder_every_step(tmp_path, tiny_overrides):
    """Without a loss that needs the generator (SMIRK's encoder pretraining), no step is wasted
    on it: the encoder learns on every step and the generator never changes."""
    cfg = load_config(None, tiny_overrides + [f"run.dir={tmp_path}", "loss.reconstruction=0",
                                              "loss.cycle=0", "train.steps=2"])
    t = Trainer(cfg, progress=False)
    enc0, gen0 = _params(t.encoder), _params(t.generator)
    out = t.train_step(next(iter(t.loader(0, 1))))
    assert out.generated is None and out.cycle is None
    assert out.rendering is None and out.masked is None  # nothing needed a rendering
    assert not _same(enc0, _params(t.encoder)) and _same(gen0, _params(t.generator))
    assert t.trains_encoder(0) and t.trains_encoder(1)


def test_lr_factor_warmup_then_cosine():
    import math

    from tempsmirk.training.trainer import lr_factor

    f = lr_factor(10, 0, 0.01)
    assert f(0) == 1.0 and f(10) == pytest.approx(0.01) and f(5) == pytest.approx(0.505)
    g = lr_factor(10, 4, 0.1)
    assert [g(i) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert g(7) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert all(g(i) >= g(i + 1) for i in range(4, 12))
