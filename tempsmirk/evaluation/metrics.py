"""Emotion metrics: CCC, PCC, RMSE, accuracy (the paper's eqs. 6-8) and SAGR (as EMOCA reports).

Explained in chapter 6. Shapes: N samples, K expression classes (8 for AffectNet).

All statistics are population statistics, exactly as the equations are written with expectations
(``E[.]``, no N - 1): for predictions ``p`` and targets ``y``

- RMSE = sqrt(E[(y - p)^2])                                   (eq. 6)
- CCC  = 2 cov(y, p) / (var(y) + var(p) + (mean(y) - mean(p))^2)  (eq. 7; 2 s_y s_p PCC = 2 cov)
- PCC  = cov(y, p) / (s_y s_p)                                (eq. 8)
- SAGR = E[sign(y) == sign(p)], the sign agreement (EmoNet's and EMOCA's; sign(0) = 0, so a 0
  agrees only with a 0)

PCC ignores a shift or a scale of the predictions; CCC punishes both, which is why the paper (and
EMOCA, SMIRK) rank valence/arousal by CCC. Where a correlation is undefined (a constant input) it
is reported as 0, "no linear agreement". The functions are differentiable, so the emotion MLP's
losses (``1 - PCC``, ``1 - CCC``) use them directly (:mod:`tempsmirk.evaluation.emotion`).

**Whole-set scores.** :func:`emotion_metrics` computes every score over the whole test set at once
(the expectations of eqs. 6-8 over the set, as EmoNet's evaluation does). EMOCA's Lightning test
step instead logs the metrics of each batch of 64; a mean of per-batch CCCs is not the CCC of the
set (each batch's own means and variances enter it), so we report the whole-set value.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "EMOTION_CLASSES",
    "TABLE_COLUMNS",
    "EmotionTargets",
    "EmotionPrediction",
    "EmotionMetrics",
    "pcc",
    "ccc",
    "rmse",
    "accuracy",
    "sagr",
    "confusion_matrix",
    "emotion_metrics",
]

# AffectNet's codes 0-7 (guide section 2); the paper's Table 1 numbers them 1-8.
EMOTION_CLASSES = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")
# The paper's Table 2 columns.
TABLE_COLUMNS = ("V-CCC", "V-RMSE", "A-CCC", "A-RMSE", "E-ACC")
_EPS = 1e-12


def _pair(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    if pred.dim() != 1 or target.dim() != 1 or pred.shape != target.shape:
        raise ValueError(f"expected two 1-D tensors of one length (N,), got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    if pred.shape[0] < 2:
        raise ValueError("correlations need at least 2 samples")
    dtype = torch.promote_types(torch.promote_types(pred.dtype, target.dtype), torch.float32)
    return pred.to(dtype), target.to(dtype)


def _moments(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Population means, variances and covariance of (pred, target)."""
    mp, mt = pred.mean(), target.mean()
    dp, dt = pred - mp, target - mt
    return mp, mt, (dp * dp).mean(), (dt * dt).mean(), (dp * dt).mean()


def pcc(pred: Tensor, target: Tensor) -> Tensor:
    """Pearson correlation (eq. 8). pred, target: (N,) -> () in [-1, 1]; 0 if either is constant."""
    pred, target = _pair(pred, target)
    _, _, vp, vt, cov = _moments(pred, target)
    return cov / (vp * vt).sqrt().clamp_min(_EPS)


def ccc(pred: Tensor, target: Tensor) -> Tensor:
    """Concordance correlation (eq. 7). pred, target: (N,) -> () in [-1, 1].

    1 only for ``pred == target``; a perfectly correlated but shifted or scaled prediction scores
    below 1 (unlike :func:`pcc`).
    """
    pred, target = _pair(pred, target)
    mp, mt, vp, vt, cov = _moments(pred, target)
    return 2 * cov / (vp + vt + (mp - mt) ** 2).clamp_min(_EPS)


def rmse(pred: Tensor, target: Tensor) -> Tensor:
    """Root mean square error (eq. 6). pred, target: (N,) -> ()."""
    if pred.shape != target.shape or pred.dim() != 1:
        raise ValueError(f"expected two 1-D tensors of one length (N,), got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    return ((pred.float() - target.float()) ** 2).mean().sqrt()


def sagr(pred: Tensor, target: Tensor) -> Tensor:
    """Sign agreement: the fraction of samples where ``sign(pred) == sign(target)``.

    pred, target: (N,) -> () in [0, 1]. ``torch.sign`` maps 0 to 0, as EMOCA's ``SAGR_torch`` does.
    """
    if pred.shape != target.shape or pred.dim() != 1:
        raise ValueError(f"expected two 1-D tensors of one length (N,), got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    return (torch.sign(pred) == torch.sign(target)).float().mean()


def accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    """Fraction of samples whose highest logit is the label. logits: (N, K); labels: (N,) int -> ()."""
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (N, K) and labels (N,), got {tuple(logits.shape)} and "
                         f"{tuple(labels.shape)}")
    return (logits.argmax(dim=1) == labels).float().mean()


def confusion_matrix(labels: Tensor, predicted: Tensor, n_classes: int = len(EMOTION_CLASSES)) -> Tensor:
    """Counts (K, K) int64: row = true class, column = predicted class. labels, predicted: (N,) int."""
    if labels.shape != predicted.shape or labels.dim() != 1:
        raise ValueError(f"expected two (N,) label tensors, got {tuple(labels.shape)} and "
                         f"{tuple(predicted.shape)}")
    flat = labels.long() * n_classes + predicted.long()
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


@dataclass(frozen=True)
class EmotionTargets:
    """Ground truth for N images (AffectNet's annotation).

    valence, arousal: (N,) float in [-1, 1]; expression: (N,) int64 class in 0..K-1.
    """

    valence: Tensor
    arousal: Tensor
    expression: Tensor

    def __len__(self) -> int:
        return self.valence.shape[0]

    def __getitem__(self, index) -> "EmotionTargets":
        return EmotionTargets(self.valence[index], self.arousal[index], self.expression[index])

    def to(self, device) -> "EmotionTargets":
        return EmotionTargets(self.valence.to(device), self.arousal.to(device), self.expression.to(device))


@dataclass(frozen=True)
class EmotionPrediction:
    """What the emotion MLP predicts for N inputs.

    valence, arousal: (N,) float; logits: (N, K) unnormalised class scores.
    """

    valence: Tensor
    arousal: Tensor
    logits: Tensor

    def __len__(self) -> int:
        return self.valence.shape[0]

    def __getitem__(self, index) -> "EmotionPrediction":
        return EmotionPrediction(self.valence[index], self.arousal[index], self.logits[index])

    @property
    def expression(self) -> Tensor:
        """(N,) int64: the predicted class."""
        return self.logits.argmax(dim=1)

    def detach(self) -> "EmotionPrediction":
        return EmotionPrediction(self.valence.detach(), self.arousal.detach(), self.logits.detach())

    def cpu(self) -> "EmotionPrediction":
        return EmotionPrediction(self.valence.cpu(), self.arousal.cpu(), self.logits.cpu())


@dataclass(frozen=True)
class EmotionMetrics:
    """One row of the paper's Table 2, plus the Pearson correlations and EMOCA's SAGR.

    v_ccc, v_rmse, a_ccc, a_rmse: valence/arousal CCC and RMSE; e_acc: expression accuracy;
    v_pcc, a_pcc: Pearson correlations; v_sagr, a_sagr: sign agreements; n: samples scored.
    All over the whole set (module docstring).
    """

    v_ccc: float
    v_rmse: float
    a_ccc: float
    a_rmse: float
    e_acc: float
    v_pcc: float
    a_pcc: float
    v_sagr: float
    a_sagr: float
    n: int

    def row(self) -> tuple[float, float, float, float, float]:
        """The values under :data:`TABLE_COLUMNS`."""
        return (self.v_ccc, self.v_rmse, self.a_ccc, self.a_rmse, self.e_acc)


def emotion_metrics(prediction: EmotionPrediction, target: EmotionTargets) -> EmotionMetrics:
    """Score predictions against targets, all N samples at once (module docstring)."""
    p, t = prediction.detach().cpu(), target.to("cpu")
    return EmotionMetrics(
        v_ccc=float(ccc(p.valence, t.valence)), v_rmse=float(rmse(p.valence, t.valence)),
        a_ccc=float(ccc(p.arousal, t.arousal)), a_rmse=float(rmse(p.arousal, t.arousal)),
        e_acc=float(accuracy(p.logits, t.expression)),
        v_pcc=float(pcc(p.valence, t.valence)), a_pcc=float(pcc(p.arousal, t.arousal)),
        v_sagr=float(sagr(p.valence, t.valence)), a_sagr=float(sagr(p.arousal, t.arousal)),
        n=len(t))
