"""The EmotionVA MLP: shapes, EMOCA's loss written out, the shake, the sampler, model selection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tempsmirk.evaluation.emotion import (
    EmotionLossConfig,
    EmotionMLP,
    EmotionMLPConfig,
    emotion_inputs,
    emotion_losses,
    holdout_loss,
    predict_emotion,
    sample_epoch,
    train_emotion_mlp,
    va_term_weights,
)
from tempsmirk.evaluation.metrics import EmotionPrediction, EmotionTargets
from tempsmirk.flame.params import FlameParams


def _params(n: int, n_exp: int = 50) -> FlameParams:
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return FlameParams(global_pose=r(n, 3), cam=r(n, 3), shape=r(n, 300), expression=r(n, n_exp),
                       eyelids=r(n, 2), jaw_pose=r(n, 3))


def _batch(n: int, seed: int = 2) -> tuple[EmotionPrediction, EmotionTargets]:
    g = torch.Generator().manual_seed(seed)
    pred = EmotionPrediction(torch.randn(n, generator=g), torch.randn(n, generator=g),
                             torch.randn(n, 8, generator=g))
    tgt = EmotionTargets(torch.rand(n, generator=g) * 2 - 1, torch.rand(n, generator=g) * 2 - 1,
                         torch.randint(0, 8, (n,), generator=g))
    return pred, tgt


def _np_terms(pred: EmotionPrediction, tgt: EmotionTargets) -> dict[str, float]:
    """NLL, MSEs, PCCs and CCCs in float64 NumPy, from their textbook definitions."""
    logits = pred.logits.double().numpy()
    logp = logits - logits.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    labels = tgt.expression.numpy()
    out = {"nll": float(-logp[np.arange(len(labels)), labels].mean())}
    for k, p, t in (("v", pred.valence, tgt.valence), ("a", pred.arousal, tgt.arousal)):
        p, t = p.double().numpy(), t.double().numpy()
        cov = ((p - p.mean()) * (t - t.mean())).mean()
        out[f"{k}_mse"] = float(((p - t) ** 2).mean())
        out[f"{k}_pcc"] = float(cov / (p.std() * t.std()))
        out[f"{k}_ccc"] = float(2 * cov / (p.var() + t.var() + (p.mean() - t.mean()) ** 2))
    return out


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
    # EMOCA's emoca_coarse training config.
    assert (cfg.lr, cfg.batch_size, cfg.sampler, cfg.max_epochs, cfg.val_check_interval, cfg.patience) == \
        (1e-4, 64, "balanced", 50, 0.2, 10)
    loss = cfg.loss
    assert (loss.expression_nll, loss.v_mse, loss.a_mse, loss.va_pcc, loss.va_ccc, loss.va_scheme) == \
        (1.0, 1.0, 1.0, 1.0, 1.0, "shake")


def test_inputs_are_configurable():
    p = _params(4)
    x = emotion_inputs(p, ["jaw_pose", "eyelids", "expression"])
    assert torch.equal(x, torch.cat([p.jaw_pose, p.eyelids, p.expression], 1))
    # EMOCA's released models: shape + expression + jaw, in that order.
    x = emotion_inputs(p, ["shape", "expression", "jaw_pose"])
    assert x.shape == (4, 353) and torch.equal(x[:, :300], p.shape) and torch.equal(x[:, 350:], p.jaw_pose)
    with pytest.raises(ValueError, match="cam"):
        emotion_inputs(p, ["cam"])
    with pytest.raises(ValueError, match="sampler"):
        EmotionMLPConfig(sampler="uniform")
    with pytest.raises(ValueError, match="va_scheme"):
        EmotionMLPConfig(loss=EmotionLossConfig(va_scheme="shaken"))


def test_loss_is_emoca_written_out():
    pred, tgt = _batch(32)
    r = _np_terms(pred, tgt)
    # EMOCA: nll + v_mse + a_mse + va_lpcc + va_lccc, each weight 1, va_l* = 1 - mean correlation.
    emoca = (r["nll"] + r["v_mse"] + r["a_mse"] + 0.5 * (1 - r["v_pcc"]) + 0.5 * (1 - r["a_pcc"])
             + 0.5 * (1 - r["v_ccc"]) + 0.5 * (1 - r["a_ccc"]))
    losses = emotion_losses(pred, tgt, EmotionLossConfig())  # no generator: validation weights
    assert float(losses.total) == pytest.approx(emoca, rel=1e-5)
    assert float(losses.expression_nll) == pytest.approx(r["nll"], rel=1e-5)
    assert float(losses.va_pcc) == pytest.approx(1 - (r["v_pcc"] + r["a_pcc"]) / 2, rel=1e-5)
    assert float(losses.va_ccc) == pytest.approx(1 - (r["v_ccc"] + r["a_ccc"]) / 2, rel=1e-5)
    # Other weights scale their own terms; "norm" divides the V/A weights by their sum.
    cfg = EmotionLossConfig(expression_nll=2.0, v_mse=0.5, a_mse=0.0, va_pcc=3.0, va_ccc=1.5, va_scheme="none")
    want = 2 * r["nll"] + 0.5 * r["v_mse"] + 3 * (1 - (r["v_pcc"] + r["a_pcc"]) / 2) \
        + 1.5 * (1 - (r["v_ccc"] + r["a_ccc"]) / 2)
    assert float(emotion_losses(pred, tgt, cfg).total) == pytest.approx(want, rel=1e-5)
    normed = EmotionLossConfig(v_mse=1, a_mse=1, va_pcc=1, va_ccc=1, va_scheme="norm")
    want = r["nll"] + (r["v_mse"] + r["a_mse"] + 1 - (r["v_pcc"] + r["a_pcc"]) / 2
                       + 1 - (r["v_ccc"] + r["a_ccc"]) / 2) / 4
    assert float(emotion_losses(pred, tgt, normed).total) == pytest.approx(want, rel=1e-5)


def test_shake_draws_four_uniform_weights_that_sum_to_one():
    cfg = EmotionLossConfig()
    assert va_term_weights(cfg).tolist() == [1.0, 1.0, 1.0, 1.0]  # validation: fixed
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([va_term_weights(cfg, g) for _ in range(4000)]).double().numpy()
    assert np.allclose(draws.sum(1), 1.0) and (draws >= 0).all()
    # EMOCA draws np.random.rand(1) per term and divides by the total: the same law by Monte Carlo.
    ref = np.random.default_rng(0).random((200000, 4))
    ref /= ref.sum(1, keepdims=True)
    for stat in (np.mean, np.std, lambda a, axis: np.quantile(a, 0.9, axis=axis)):
        np.testing.assert_allclose(stat(draws, axis=0), stat(ref, axis=0), atol=0.01)
    # A switched-off term stays off; the others still sum to 1.
    off = va_term_weights(EmotionLossConfig(a_mse=0.0), torch.Generator().manual_seed(1))
    assert off[1] == 0 and float(off.sum()) == pytest.approx(1.0)
    # A training step's total is the NLL (weight 1, never shaken) plus the drawn weights' terms.
    pred, tgt = _batch(40, seed=5)
    r = _np_terms(pred, tgt)
    w = va_term_weights(cfg, torch.Generator().manual_seed(9)).double().numpy()
    shaken = emotion_losses(pred, tgt, cfg, torch.Generator().manual_seed(9))
    want = r["nll"] + w[0] * r["v_mse"] + w[1] * r["a_mse"] + w[2] * (1 - (r["v_pcc"] + r["a_pcc"]) / 2) \
        + w[3] * (1 - (r["v_ccc"] + r["a_ccc"]) / 2)
    assert float(shaken.total) == pytest.approx(want, rel=1e-5)


def test_balanced_sampler_draws_every_class_equally_often():
    counts = [600, 60, 12, 6, 240, 120, 36, 126]  # skewed like AffectNet
    labels = torch.repeat_interleave(torch.arange(8), torch.tensor(counts))
    n = len(labels)
    g = torch.Generator().manual_seed(0)
    draws = torch.cat([sample_epoch(labels, "balanced", g) for _ in range(40)])
    assert draws.shape == (40 * n,)
    freq = np.bincount(labels[draws].numpy(), minlength=8) / len(draws)
    # Weights 1 / class count give each class probability 1/8: check within 4 binomial stds.
    assert np.all(np.abs(freq - 1 / 8) < 4 * math.sqrt(1 / 8 * 7 / 8 / len(draws)))
    one = sample_epoch(labels, "balanced", g)
    assert len(one) == n and len(torch.unique(one)) < n  # with replacement: repeats
    # Natural: each sample once, classes as often as in the data.
    perm = sample_epoch(labels, "natural", g)
    assert torch.equal(perm.sort().values, torch.arange(n))
    with pytest.raises(ValueError, match="sampler"):
        sample_epoch(labels, "uniform", g)


def test_holdout_loss_is_the_batch_size_weighted_mean():
    pred, tgt = _batch(65, seed=4)  # batches of 32, 32 and 1
    cfg = EmotionLossConfig()

    class Fixed(EmotionMLP):
        def forward(self, x):
            return pred[x[:, 0].long()]

    model = Fixed(1, EmotionMLPConfig(hidden=4, n_hidden=1))
    parts = []
    for s in (slice(0, 32), slice(32, 64)):
        r = _np_terms(pred[s], tgt[s])
        parts.append((32, r["nll"] + r["v_mse"] + r["a_mse"] + 1 - (r["v_pcc"] + r["a_pcc"]) / 2
                      + 1 - (r["v_ccc"] + r["a_ccc"]) / 2))
    p64, t64 = pred[64:65], tgt[64:65]
    one = float(F.cross_entropy(p64.logits, t64.expression) + F.mse_loss(p64.valence, t64.valence)
                + F.mse_loss(p64.arousal, t64.arousal))  # no correlations for a batch of one
    want = (sum(n * v for n, v in parts) + one) / 65
    got = holdout_loss(model, torch.arange(65.0)[:, None], tgt, cfg, batch_size=32)
    assert got == pytest.approx(want, rel=1e-5)


def test_training_learns_a_separable_problem():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(160) % 8
    x = F.one_hot(labels, 8).float() * 2 + 0.3 * torch.randn(160, 8, generator=g)
    va = torch.linspace(-0.8, 0.8, 8)[labels]
    cfg = EmotionMLPConfig(hidden=32, n_hidden=2, lr=1e-2, batch_size=32, max_epochs=30, patience=8)
    model, hist = train_emotion_mlp(x, EmotionTargets(va, -va, labels), cfg, torch.Generator().manual_seed(0))
    pred = predict_emotion(model, x)
    assert (pred.expression == labels).float().mean() > 0.95
    assert hist.holdout_loss[hist.best_check] == min(hist.holdout_loss)
    assert hist.holdout_loss[-1] < hist.holdout_loss[0]


def test_model_selection_is_emocas():
    # Pure-noise targets: the held-out loss stops improving early while training keeps fitting.
    g = torch.Generator().manual_seed(0)
    n = 320
    x = torch.randn(n, 6, generator=g)
    tgt = EmotionTargets(torch.rand(n, generator=g) * 2 - 1, torch.rand(n, generator=g) * 2 - 1,
                         torch.randint(0, 8, (n,), generator=g))
    hx = torch.randn(40, 6, generator=g)
    ht = EmotionTargets(torch.rand(40, generator=g) * 2 - 1, torch.rand(40, generator=g) * 2 - 1,
                        torch.randint(0, 8, (40,), generator=g))
    cfg = EmotionMLPConfig(hidden=128, n_hidden=2, lr=1e-2, batch_size=32, max_epochs=50, patience=5)
    model, hist = train_emotion_mlp(x, tgt, cfg, torch.Generator().manual_seed(0), holdout=(hx, ht))
    # 10 batches per epoch, a check every int(10 * 0.2) = 2 batches: at 0.2, 0.4, ... epochs.
    np.testing.assert_allclose(hist.epoch, 0.2 * np.arange(1, len(hist.epoch) + 1), atol=1e-9)
    assert hist.stop_reason == "patience" and hist.stopped_early
    assert len(hist.holdout_loss) == hist.best_check + 1 + cfg.patience
    assert min(hist.holdout_loss[hist.best_check + 1:]) >= hist.holdout_loss[hist.best_check]
    # The returned weights are the best check's: their held-out loss is the recorded minimum.
    restored = holdout_loss(model, hx, ht, cfg.loss, cfg.batch_size)
    assert restored == pytest.approx(hist.holdout_loss[hist.best_check], rel=1e-5)
    assert restored < hist.holdout_loss[-1]
    # Without improvement stops, the run ends at max_epochs.
    short = EmotionMLPConfig(hidden=8, n_hidden=1, batch_size=32, max_epochs=2, patience=100)
    _, h2 = train_emotion_mlp(x, tgt, short, torch.Generator().manual_seed(0), holdout=(hx, ht))
    assert h2.stop_reason == "max_epochs" and len(h2.epoch) == 10 and h2.epoch[-1] == pytest.approx(2.0)


def test_a_holdout_that_is_never_finite_is_an_error():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 4, generator=g)
    t = EmotionTargets(torch.rand(64, generator=g), torch.rand(64, generator=g),
                       torch.randint(0, 8, (64,), generator=g))
    nan = EmotionTargets(torch.full((8,), float("nan")), torch.zeros(8), torch.zeros(8, dtype=torch.long))
    cfg = EmotionMLPConfig(hidden=8, n_hidden=1, batch_size=16, max_epochs=3)
    with pytest.raises(ValueError, match="not finite at any"):
        train_emotion_mlp(x, t, cfg, torch.Generator().manual_seed(0), holdout=(x[:8], nan))
    x[3, 1] = float("nan")
    with pytest.raises(ValueError, match="1 of 64 .* NaN"):
        train_emotion_mlp(x, t, cfg)


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
