"""The EmotionVA MLP: shapes, loss terms against formulas, re-weighting, early stopping."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from tempsmirk.evaluation.emotion import (EmotionLossConfig, EmotionMLP, EmotionMLPConfig, emotion_inputs,
                                          emotion_losses, predict_emotion, train_emotion_mlp)
from tempsmirk.evaluation.metrics import EmotionPrediction, EmotionTargets
from tempsmirk.smirk.encoder import EncoderOutput


def _params(n: int, n_exp: int = 50) -> EncoderOutput:
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return EncoderOutput(global_pose=r(n, 3), cam=r(n, 3), shape=r(n, 300), expression=r(n, n_exp),
                         eyelids=r(n, 2), jaw_pose=r(n, 3))


def test_default_architecture_and_shapes():
    cfg = EmotionMLPConfig()
    x = emotion_inputs(_params(6), cfg.inputs)
    assert x.shape == (6, 53)  # expression 50 + jaw 3
    model = EmotionMLP(53, cfg)
    linears = [m for m in model.layers if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [2048] * 4 + [10]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in model.layers) == 4
    acts = [m for m in model.layers if isinstance(m, torch.nn.LeakyReLU)]
    assert len(acts) == 4 and all(a.negative_slope == 0.2 for a in acts)
    out = model(x)
    assert out.logits.shape == (6, 8) and out.valence.shape == (6,) and out.arousal.shape == (6,)


def test_inputs_are_configurable():
    p = _params(4)
    x = emotion_inputs(p, ["jaw_pose", "eyelids", "expression"])
    assert torch.equal(x, torch.cat([p.jaw_pose, p.eyelids, p.expression], 1))
    with pytest.raises(ValueError, match="cam"):
        emotion_inputs(p, ["cam"])


def test_loss_terms_match_formulas():
    g = torch.Generator().manual_seed(2)
    n = 32
    pred = EmotionPrediction(torch.randn(n, generator=g), torch.randn(n, generator=g),
                             torch.randn(n, 8, generator=g))
    tgt = EmotionTargets(torch.rand(n, generator=g) * 2 - 1, torch.rand(n, generator=g) * 2 - 1,
                         torch.randint(0, 8, (n,), generator=g))
    cfg = EmotionLossConfig(expression_nll=2.0, v_mse=0.5, a_mse=0.25, v_pcc=3.0, a_pcc=0.0,
                            v_ccc=1.5, a_ccc=0.7)
    losses = emotion_losses(pred, tgt, cfg)
    nll = F.cross_entropy(pred.logits, tgt.expression)
    assert float(losses.expression_nll) == pytest.approx(float(nll), rel=1e-5)

    def corr(p, t, concordance):
        p, t = p.double(), t.double()
        cov = ((p - p.mean()) * (t - t.mean())).mean()
        if concordance:
            return 2 * cov / (p.var(unbiased=False) + t.var(unbiased=False) + (p.mean() - t.mean()) ** 2)
        return cov / (p.std(unbiased=False) * t.std(unbiased=False))

    v, a, tv, ta = pred.valence, pred.arousal, tgt.valence, tgt.arousal
    expect = {"v_mse": ((v - tv) ** 2).mean(), "a_mse": ((a - ta) ** 2).mean(),
              "v_pcc": 1 - corr(v, tv, False), "a_pcc": 1 - corr(a, ta, False),
              "v_ccc": 1 - corr(v, tv, True), "a_ccc": 1 - corr(a, ta, True)}
    for name, value in expect.items():
        assert float(getattr(losses, name)) == pytest.approx(float(value), rel=1e-4), name
    total = 2.0 * losses.expression_nll + sum(getattr(cfg, k) * getattr(losses, k) for k in expect)
    assert float(losses.total) == pytest.approx(float(total), rel=1e-5)

    # Re-weighting: random weights with the same sum; no generator = the configured weights.
    shaken = dataclasses.replace(cfg, reweight=True)
    assert float(emotion_losses(pred, tgt, shaken).total) == pytest.approx(float(losses.total), rel=1e-6)
    t1 = float(emotion_losses(pred, tgt, shaken, torch.Generator().manual_seed(0)).total)
    t2 = float(emotion_losses(pred, tgt, shaken, torch.Generator().manual_seed(1)).total)
    assert t1 != pytest.approx(float(losses.total), rel=1e-3) and t1 != pytest.approx(t2, rel=1e-3)
    # With every V/A term equal to 1 the total cannot depend on how the fixed sum is split.
    same = emotion_losses(EmotionPrediction(pred.valence, pred.valence, pred.logits),
                          EmotionTargets(tgt.valence, tgt.valence, tgt.expression),
                          EmotionLossConfig(v_mse=1, a_mse=1, v_pcc=0, a_pcc=0, v_ccc=0, a_ccc=0,
                                            reweight=True), torch.Generator().manual_seed(5))
    assert float(same.total) == pytest.approx(float(same.expression_nll + 2 * same.v_mse), rel=1e-5)


def test_training_learns_a_separable_problem():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(160) % 8
    x = F.one_hot(labels, 8).float() * 2 + 0.3 * torch.randn(160, 8, generator=g)
    va = torch.linspace(-0.8, 0.8, 8)[labels]
    cfg = EmotionMLPConfig(hidden=32, n_hidden=2, lr=1e-2, batch_size=32, max_epochs=60, patience=8)
    model, hist = train_emotion_mlp(x, EmotionTargets(va, -va, labels), cfg, torch.Generator().manual_seed(0))
    pred = predict_emotion(model, x)
    assert (pred.expression == labels).float().mean() > 0.95
    assert hist.holdout_loss[hist.best_epoch] == min(hist.holdout_loss)
    assert hist.holdout_loss[-1] < hist.holdout_loss[0]


def test_early_stopping_stops_and_restores_best_weights():
    # Pure-noise targets: the held-out loss stops improving early while training keeps fitting.
    g = torch.Generator().manual_seed(0)
    n = 96
    x = torch.randn(n, 6, generator=g)
    tgt = EmotionTargets(torch.rand(n, generator=g) * 2 - 1, torch.rand(n, generator=g) * 2 - 1,
                         torch.randint(0, 8, (n,), generator=g))
    hx = torch.randn(40, 6, generator=g)
    ht = EmotionTargets(torch.rand(40, generator=g) * 2 - 1, torch.rand(40, generator=g) * 2 - 1,
                        torch.randint(0, 8, (40,), generator=g))
    cfg = EmotionMLPConfig(hidden=128, n_hidden=2, lr=1e-2, batch_size=32, max_epochs=200, patience=5)
    model, hist = train_emotion_mlp(x, tgt, cfg, torch.Generator().manual_seed(0), holdout=(hx, ht))
    assert hist.stopped_early
    assert len(hist.holdout_loss) == hist.best_epoch + 1 + cfg.patience < cfg.max_epochs
    assert min(hist.holdout_loss[hist.best_epoch + 1:]) >= hist.holdout_loss[hist.best_epoch]
    # The returned weights are the best epoch's: their held-out loss is the recorded minimum.
    restored = float(emotion_losses(predict_emotion(model, hx), ht, cfg.loss).total)
    assert restored == pytest.approx(hist.holdout_loss[hist.best_epoch], rel=1e-5)
    assert restored < hist.holdout_loss[-1]


def test_training_is_reproducible_with_a_seed():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(64, 5, generator=g)
    t = EmotionTargets(torch.rand(64, generator=g), torch.rand(64, generator=g),
                       torch.randint(0, 8, (64,), generator=g))
    cfg = EmotionMLPConfig(hidden=16, n_hidden=1, max_epochs=3, batch_size=16)
    a, _ = train_emotion_mlp(x, t, cfg, torch.Generator().manual_seed(7))
    b, _ = train_emotion_mlp(x, t, cfg, torch.Generator().manual_seed(7))
    c, _ = train_emotion_mlp(x, t, cfg, torch.Generator().manual_seed(8))
    assert torch.equal(predict_emotion(a, x).logits, predict_emotion(b, x).logits)
    assert not torch.equal(predict_emotion(a, x).logits, predict_emotion(c, x).logits)
