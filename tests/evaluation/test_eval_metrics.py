"""Metrics (eqs. 6-8) against a NumPy formula and against torchmetrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tempsmirk.evaluation.metrics import (
    EmotionPrediction,
    EmotionTargets,
    accuracy,
    ccc,
    confusion_matrix,
    emotion_metrics,
    pcc,
    rmse,
    sagr,
)


def _torchmetrics():
    from tempsmirk.compat import ensure_torchvision

    ensure_torchvision()  # torchmetrics imports torchvision
    import torchmetrics.functional as tmf

    return tmf


def _np_stats(p, t):
    """The paper's formulas with population moments, in float64 NumPy."""
    p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
    mp, mt = p.mean(), t.mean()
    sp, st = p.std(), t.std()
    r = ((p - mp) * (t - mt)).mean() / (sp * st)
    return r, 2 * sp * st * r / (sp ** 2 + st ** 2 + (mp - mt) ** 2), np.sqrt(((p - t) ** 2).mean())


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    t = torch.rand(500, generator=g) * 2 - 1
    p = 0.7 * t + 0.1 + 0.3 * torch.randn(500, generator=g)
    return p, t


def test_metrics_match_formula(pair):
    p, t = pair
    r, c, e = _np_stats(p.numpy(), t.numpy())
    assert float(pcc(p, t)) == pytest.approx(r, abs=1e-5)
    assert float(ccc(p, t)) == pytest.approx(c, abs=1e-5)
    assert float(rmse(p, t)) == pytest.approx(e, abs=1e-6)


def test_metrics_match_torchmetrics(pair):
    tmf = _torchmetrics()
    p, t = pair
    assert float(pcc(p, t)) == pytest.approx(float(tmf.pearson_corrcoef(p, t)), abs=1e-5)
    assert float(rmse(p, t)) == pytest.approx(float(tmf.mean_squared_error(p, t, squared=False)), abs=1e-6)
    # torchmetrics' CCC uses N - 1 variances; with equal means the N's cancel exactly ...
    q = p - p.mean() + t.mean()
    assert float(ccc(q, t)) == pytest.approx(float(tmf.concordance_corrcoef(q, t)), abs=1e-5)
    # ... otherwise the two differ by O(1/N).
    assert float(ccc(p, t)) == pytest.approx(float(tmf.concordance_corrcoef(p, t)), abs=5e-3)


def test_ccc_punishes_shift_and_scale_pcc_does_not(pair):
    _, t = pair
    assert float(ccc(t, t)) == pytest.approx(1.0, abs=1e-6)
    for moved in (t + 0.5, 2.0 * t, 0.5 * t - 0.2):
        assert float(pcc(moved, t)) == pytest.approx(1.0, abs=1e-5)
        assert float(ccc(moved, t)) < 0.9
    assert float(pcc(-t, t)) == pytest.approx(-1.0, abs=1e-5)


def test_constant_prediction_has_zero_correlation(pair):
    _, t = pair
    const = torch.full_like(t, 0.3)
    assert float(pcc(const, t)) == 0.0
    assert float(ccc(const, t)) == 0.0
    with pytest.raises(ValueError, match="1-D"):
        ccc(t[:, None], t[:, None])


def test_accuracy_and_confusion_against_loops():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(200, 8, generator=g)
    labels = torch.randint(0, 8, (200,), generator=g)
    pred = logits.argmax(1)
    hits = sum(int(pred[i]) == int(labels[i]) for i in range(200))
    assert float(accuracy(logits, labels)) == pytest.approx(hits / 200)
    cm = confusion_matrix(labels, pred)
    loop = np.zeros((8, 8), np.int64)
    for a, b in zip(labels.tolist(), pred.tolist()):
        loop[a, b] += 1
    np.testing.assert_array_equal(cm.numpy(), loop)
    assert int(cm.trace()) == hits


def test_emotion_metrics_row(pair):
    p, t = pair
    labels = torch.arange(500) % 8
    logits = torch.nn.functional.one_hot(labels, 8).float()
    logits[:100] = torch.roll(logits[:100], 1, dims=1)  # first 100 wrong
    m = emotion_metrics(EmotionPrediction(p, -p, logits), EmotionTargets(t, -t, labels))
    assert m.row() == (m.v_ccc, m.v_rmse, m.a_ccc, m.a_rmse, m.e_acc)
    assert m.e_acc == pytest.approx(0.8)
    assert m.v_ccc == pytest.approx(m.a_ccc, abs=1e-6)  # negating both keeps the agreement
    assert m.v_sagr == pytest.approx(float(sagr(p, t))) and m.a_sagr == pytest.approx(m.v_sagr)
    assert m.n == 500


def test_sagr_by_formula():
    # SAGR = (1/N) sum_i [sign(y_i) == sign(p_i)], sign(0) = 0: counted by hand on a known set.
    t = torch.tensor([0.5, -0.2, 0.0, 0.9, -0.7, 0.0, 0.3, -0.1])
    p = torch.tensor([0.1, 0.4, 0.0, 0.2, -0.3, 0.2, -0.3, -0.9])
    # agree: +/+ (0), 0/0 (2), +/+ (3), -/- (4), -/- (7); disagree: 1, 5 (0 vs +), 6
    assert float(sagr(p, t)) == pytest.approx(5 / 8)
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(300, generator=g), torch.randn(300, generator=g)
    loop = sum(int(np.sign(x) == np.sign(y)) for x, y in zip(a.tolist(), b.tolist())) / 300
    assert float(sagr(a, b)) == pytest.approx(loop)
    with pytest.raises(ValueError, match="1-D"):
        sagr(a[:, None], b[:, None])
