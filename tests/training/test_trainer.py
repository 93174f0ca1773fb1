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


def _adam_steps(opt, params=None) -> int:
    """How many times an Adam optimiser has updated ``params`` (default: all of its parameters)."""
    params = [p for g in opt.param_groups for p in g["params"]] if params is None else list(params)
    steps = {int(opt.state[p]["step"]) if p in opt.state else 0 for p in params}
    assert len(steps) == 1, steps
    return steps.pop()


def test_two_passes_per_iteration_and_exact_resume(tmp_path, tiny_overrides, monkeypatch):
    """SMIRK's iteration: path 1 steps both optimisers; path 2 steps the generator on even
    iterations (encoder frozen, in eval mode; only there the 0.1 clip) and the encoder on odd ones
    (generator frozen, in eval mode). N + N iterations with --resume equal 2N straight ones."""
    cfg_a = load_config(None, tiny_overrides + [f"run.dir={tmp_path / 'a'}"])
    a = Trainer(cfg_a, progress=False)
    o = cfg_a.optim
    assert a.opt_encoder.param_groups[0]["lr"] == pytest.approx(0.25 * o.lr)
    assert a.opt_generator.param_groups[0]["betas"] == (0.5, 0.999)
    calls, clips = [], []
    a.encoder.register_forward_pre_hook(lambda m, x: calls.append(("encoder", m.training)))
    a.generator.register_forward_pre_hook(lambda m, x: calls.append(("generator", m.training)))
    original = torch.nn.utils.clip_grad_norm_

    def clip(params, max_norm, *args, **kw):
        params = list(params)
        clips.append((max_norm, {id(p) for p in params}))
        return original(params, max_norm, *args, **kw)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    gen_ids = {id(p) for p in a.generator.parameters()}

    expression = list(a.encoder.branch("expression").parameters())  # the cycle reads its outputs
    a.train(until=1)  # iteration 0: path 1 (both), cycle (generator)
    assert (_adam_steps(a.opt_encoder), _adam_steps(a.opt_generator)) == (1, 2)
    assert calls == [("encoder", True), ("generator", True), ("generator", True), ("encoder", False)]
    assert len(clips) == 1 and clips[0] == (0.1, gen_ids)
    calls.clear()
    a.train(until=2)  # iteration 1: path 1 (both), cycle (encoder)
    assert (_adam_steps(a.opt_encoder, expression), _adam_steps(a.opt_generator)) == (3, 3)
    # No cycle term depends on the pose branch: SMIRK's Adam skips it there too.
    assert _adam_steps(a.opt_encoder, a.encoder.branch("pose").parameters()) == 2
    assert calls == [("encoder", True), ("generator", True), ("generator", False), ("encoder", True)]
    assert len(clips) == 1  # no clip when the encoder learns in the cycle
    assert a.encoder.training and a.generator.training  # modes restored after the cycle
    assert all(p.requires_grad for p in a.generator.parameters())
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
    for name in ("encoder", "generator"):
        for k, v in sc["optimizers"][name]["state"].items():
            torch.testing.assert_close(sb["optimizers"][name]["state"][k]["exp_avg"], v["exp_avg"], atol=1e-6, rtol=0)
    assert sb["schedulers"]["encoder"]["last_epoch"] == 4
    # One cosine, down to 1 % of the learning rate at the last iteration (no restarts).
    assert b.opt_generator.param_groups[0]["lr"] == pytest.approx(0.01 * cfg_a.optim.lr)

    run = tmp_path / "a"
    assert load_config(run / "config.yaml") == cfg_a
    with open(run / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert [r["trained"] for r in rows] == ["encoder+generator; cycle: generator",
                                            "encoder+generator; cycle: encoder"] * 2
    assert all(float(r["cycle"]) > 0 for r in rows)
    assert sorted(p.name for p in (run / "images").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    enc, gen = load_smirk_checkpoint(run / "smirk.pt")
    assert gen is not None and torch.equal(enc.state_dict()["pose_encoder.pose_cam_layers.0.bias"],
                                           b.encoder.state_dict()["pose_encoder.pose_cam_layers.0.bias"])
    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(cfg_a, progress=False)


def test_nan_in_the_cycle_stops_before_its_update(tmp_path, tiny_overrides, monkeypatch):
    import dataclasses

    import tempsmirk.training.trainer as trainer_mod

    cfg = load_config(None, tiny_overrides + [f"run.dir={tmp_path}", "train.checkpoint_every=1"])
    t = Trainer(cfg, progress=False)
    t.train(until=1)
    good = t.checkpoint_path.read_bytes()
    real = trainer_mod.cycle_path
    monkeypatch.setattr(trainer_mod, "cycle_path",
                        lambda *a, **k: dataclasses.replace(real(*a, **k), loss=torch.tensor(float("nan"))))
    with pytest.raises(TrainingDiverged, match=r"step 1: non-finite loss in the cycle path"):
        t.train()
    assert t.checkpoint_path.read_bytes() == good and t.step == 1
    # Iteration 1's first path stepped both (encoder 2, generator 3); its cycle stepped nothing.
    expression = t.encoder.branch("expression").parameters()
    assert (_adam_steps(t.opt_encoder, expression), _adam_steps(t.opt_generator)) == (2, 3)
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
    from tempsmirk.flame import load_flame

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
    """Without a loss that needs the generator (SMIRK's encoder pretraining) the generator is not
    in the loop: the encoder learns on every iteration and the generator never changes."""
    cfg = load_config(None, tiny_overrides + [f"run.dir={tmp_path}", "loss.weights.reconstruction=0",
                                              "loss.weights.cycle=0", "train.steps=2"])
    t = Trainer(cfg, progress=False)
    enc0, gen0 = _params(t.encoder), _params(t.generator)
    out = t.train_step(next(iter(t.loader(0, 1))))
    assert out.generated is None and out.cycle is None
    assert out.rendering is None and out.masked is None  # nothing needed a rendering
    assert not _same(enc0, _params(t.encoder)) and _same(gen0, _params(t.generator))
    assert t.trained(0) == t.trained(1) == "encoder"


def test_presets_are_the_reference_configs(tmp_path):
    """smirk_core.yaml = SMIRK's config_train.yaml, smirk_pretrain.yaml = its config_pretrain.yaml
    (their numbers written out here); core trains the expression branch only."""
    from tempsmirk.paths import repo_root

    configs = repo_root() / "tempsmirk" / "configs"
    core = load_config(configs / "smirk_core.yaml", [f"run.dir={tmp_path / 'c'}"])
    pre = load_config(configs / "smirk_pretrain.yaml", [f"run.dir={tmp_path / 'p'}"])
    w = core.loss.weights
    assert (w.landmarks_fan, w.landmarks_mp, w.perceptual, w.reconstruction, w.emotion) == (100, 100, 10, 10, 0)
    assert (w.jaw_reg, w.expression_reg, w.shape_reg, w.cycle) == (1e-2, 1e-3, 100, 1)
    assert (core.optim.lr, core.train.batch_size, core.data.synthetic.image_size) == (1e-3, 32, 224)
    assert sorted(core.model.frozen) == ["pose", "shape"] and core.loss.masking.hull_radius == 10
    assert core.loss.masking.sample_fraction == 0.01 and core.train.steps == 50 * 50000 // 32
    w = pre.loss.weights
    assert (w.landmarks_fan, w.landmarks_mp, w.perceptual, w.reconstruction, w.emotion) == (100, 100, 0, 0, 0)
    assert (w.jaw_reg, w.expression_reg, w.shape_reg, w.cycle) == (0, 1e-2, 0, 0)
    assert (pre.optim.lr, pre.train.batch_size, pre.model.frozen) == (2e-4, 32, [])
    assert pre.train.steps == 300 * 50000 // 32
    small = ["data.synthetic.image_size=32", "data.synthetic.n_items=4", "data.num_workers=0", "train.device=cpu",
             "model.vgg_path=null"]
    with pytest.warns(UserWarning, match="perceptual loss is OFF"):
        t = Trainer(load_config(configs / "smirk_core.yaml", [f"run.dir={tmp_path / 'ct'}"] + small), progress=False)
    expression = {id(p) for p in t.encoder.branch("expression").parameters()}
    assert {id(p) for g in t.opt_encoder.param_groups for p in g["params"]} == expression
    t = Trainer(load_config(configs / "smirk_pretrain.yaml", [f"run.dir={tmp_path / 'pt'}"] + small), progress=False)
    assert not t.uses_generator and not t.cycle_on
    assert len(t.opt_encoder.param_groups[0]["params"]) == len(list(t.encoder.parameters()))


def test_emotion_weight_needs_the_network(tmp_path, tiny_overrides):
    cfg = load_config(None, tiny_overrides + [f"run.dir={tmp_path}", "loss.weights.emotion=1.0"])
    with pytest.raises(ValueError, match="model.emotion_path"):
        Trainer(cfg, progress=False)


def test_temporal_terms_join_the_first_path_every_iteration(tmp_path, tiny_overrides, monkeypatch):
    """Clip batches: the temporal terms are part of what the reconstruction path backpropagates on
    every iteration (the fork adds them to its first path), so they move the encoder on even
    iterations too, where the cycle trains the generator."""
    import tempsmirk.training.trainer as trainer_mod

    clip = ["data.synthetic.clip_length=3", "data.synthetic.n_items=4", "temporal.weights.identity=50.0"]
    seen = []
    real = trainer_mod.first_path

    def spy(*a, **k):
        out = real(*a, **k)
        seen.append(out)
        return out

    monkeypatch.setattr(trainer_mod, "first_path", spy)
    on = Trainer(load_config(None, tiny_overrides + clip + [f"run.dir={tmp_path / 'on'}", "temporal.enabled=true"]),
                 progress=False)
    off = Trainer(load_config(None, tiny_overrides + clip + [f"run.dir={tmp_path / 'off'}"]), progress=False)
    batches = list(on.loader(0, 2))
    for i, batch in enumerate(batches):
        before = _params(on.encoder)
        on.train_step(batch)
        off.train_step(batch)
        out = seen[-2]  # the temporal run's first path
        w = on.context.weights
        smirk = sum(getattr(w, f) * getattr(out.losses, f) for f in ("landmarks_fan", "landmarks_mp", "expression_reg",
                                                                    "jaw_reg", "shape_reg", "reconstruction",
                                                                    "perceptual", "emotion"))
        assert float(out.temporal.total.detach()) > 0
        torch.testing.assert_close(out.losses.total, smirk + out.temporal.total)
        assert not _same(before, _params(on.encoder))
        if i == 0:  # iteration 0 (even): the temporal terms alone make the encoders differ
            assert not _same(_params(on.encoder), _params(off.encoder))
    assert on.trained(0).endswith("cycle: generator")


def test_lr_factor_warmup_then_cosine():
    import math

    from tempsmirk.training.trainer import lr_factor

    f = lr_factor(10, 0, 0.01)
    assert f(0) == 1.0 and f(10) == pytest.approx(0.01) and f(5) == pytest.approx(0.505)
    g = lr_factor(10, 4, 0.1)
    assert [g(i) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert g(7) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert all(g(i) >= g(i + 1) for i in range(4, 12))
