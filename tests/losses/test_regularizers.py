"""Regularisers, cycle loss and loss weights against hand-written formulas."""

from __future__ import annotations

import dataclasses
import types

import pytest
import torch

from tempsmirk.losses import LossWeights, cycle_loss, expression_reg, jaw_reg, reconstruction_loss, shape_reg


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def mean_sq_loop(x, ref=None):
    total = 0.0
    for b in range(x.shape[0]):
        for k in range(x.shape[1]):
            d = float(x[b, k]) - (float(ref[b, k]) if ref is not None else 0.0)
            total += d * d
    return total / x.numel()


@pytest.mark.parametrize("fn,dim", [(expression_reg, 50), (jaw_reg, 3), (shape_reg, 300)])
def test_regularisers_are_mean_squares(fn, dim):
    x, ref = rand(4, dim, seed=dim), rand(4, dim, seed=dim + 1)
    assert fn(x).item() == pytest.approx(mean_sq_loop(x), rel=1e-5)
    assert fn(x, ref).item() == pytest.approx(mean_sq_loop(x, ref), rel=1e-5)
    with pytest.raises(ValueError, match="reference"):
        fn(x, ref[:2])


def params(seed, b=6, e=50):
    return types.SimpleNamespace(expression=rand(b, e, seed=seed), jaw_pose=rand(b, 3, seed=seed + 1),
                                 eyelids=rand(b, 2, seed=seed + 2).sigmoid(), shape=rand(b, 300, seed=seed + 3))


def test_cycle_loss_formula():
    p, t = params(0), params(10)
    expect = mean_sq_loop(p.expression, t.expression) + 10 * mean_sq_loop(p.jaw_pose, t.jaw_pose) \
        + 10 * mean_sq_loop(p.eyelids, t.eyelids)
    assert cycle_loss(p, t).item() == pytest.approx(expect, rel=1e-5)
    with_shape = expect + 1.0 * mean_sq_loop(p.shape, t.shape)
    assert cycle_loss(p, t, shape_weight=1.0).item() == pytest.approx(with_shape, rel=1e-5)
    assert cycle_loss(t, t).item() == 0.0


def test_cycle_loss_accepts_encoder_outputs_and_sends_gradients_to_pred_only():
    from tempsmirk.flame.params import FlameParams

    def out(seed, grad):
        n = params(seed, b=3, e=10)
        fields = dict(global_pose=rand(3, 3, seed=seed + 5), cam=rand(3, 3, seed=seed + 6), shape=n.shape,
                      expression=n.expression, eyelids=n.eyelids, jaw_pose=n.jaw_pose)
        return FlameParams(**{k: v.clone().requires_grad_(grad) for k, v in fields.items()})

    pred, target = out(0, True), out(20, False)
    cycle_loss(pred, target).backward()
    assert pred.expression.grad.abs().sum() > 0 and pred.jaw_pose.grad.abs().sum() > 0
    assert pred.eyelids.grad.abs().sum() > 0 and pred.shape.grad is None


def test_reconstruction_loss_is_mean_abs():
    a, b = rand(2, 3, 4, 5, seed=1), rand(2, 3, 4, 5, seed=2)
    expect = sum(abs(float(x) - float(y)) for x, y in zip(a.flatten(), b.flatten())) / a.numel()
    assert reconstruction_loss(a, b).item() == pytest.approx(expect, rel=1e-5)


def test_loss_weight_presets():
    """The reference configs' numbers: config_train.yaml (core) and config_pretrain.yaml."""
    from tempsmirk.config import load_config
    from tempsmirk.paths import repo_root

    preset = repo_root() / "tempsmirk" / "configs" / "smirk_pretrain.yaml"
    core, pre = LossWeights.core(), load_config(preset, ["run.dir=unset"]).loss.weights
    assert core == LossWeights()
    assert (core.landmarks_fan, core.landmarks_mp, core.reconstruction, core.perceptual) == (100, 100, 10, 10)
    assert (core.expression_reg, core.jaw_reg, core.shape_reg, core.cycle, core.emotion) == (1e-3, 1e-2, 100, 1, 0)
    assert (pre.landmarks_fan, pre.landmarks_mp, pre.reconstruction, pre.perceptual) == (100, 100, 0, 0)
    assert (pre.expression_reg, pre.jaw_reg, pre.shape_reg, pre.cycle, pre.emotion) == (1e-2, 0, 0, 0, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        core.cycle = 2.0
    assert dataclasses.replace(core, cycle=0.5).cycle == 0.5


def test_cycle_loss_gradcheck_float64():
    g = torch.Generator().manual_seed(3)
    t = types.SimpleNamespace(expression=torch.randn(2, 5, generator=g, dtype=torch.float64),
                              jaw_pose=torch.randn(2, 3, generator=g, dtype=torch.float64),
                              eyelids=torch.rand(2, 2, generator=g, dtype=torch.float64),
                              shape=torch.randn(2, 4, generator=g, dtype=torch.float64))
    inputs = tuple(torch.randn(*getattr(t, k).shape, generator=g, dtype=torch.float64).requires_grad_(True)
                   for k in ("expression", "jaw_pose", "eyelids", "shape"))

    def f(e, j, l, s):
        p = types.SimpleNamespace(expression=e, jaw_pose=j, eyelids=l, shape=s)
        return cycle_loss(p, t, shape_weight=0.5) + expression_reg(e) + jaw_reg(j) + shape_reg(s)

    assert torch.autograd.gradcheck(f, inputs)
