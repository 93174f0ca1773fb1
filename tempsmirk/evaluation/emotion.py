"""The EmotionVA MLP: FLAME expression parameters -> valence, arousal and 8 expression classes.

Explained in chapter 6. Shapes: N samples, D input features, K classes, E expression coefficients.

We cannot read valence and arousal off FLAME parameters directly, so the paper (section 4.2, after
EMOCA) trains a small network on them and judges an encoder by how well that network does: the
more emotion the parameters carry, the better the scores. The network and its training follow
EMOCA (guide section 2):

- **input**: the chosen :class:`~tempsmirk.smirk.encoder.EncoderOutput` fields concatenated,
  by default expression (E) + jaw pose (3); standardised with the training set's mean and std
  (our addition: with BatchNorm after the first layer it changes little, without it it matters);
- **body**: ``n_hidden`` x (Linear -> BatchNorm1d -> LeakyReLU(0.2)), 2048 wide;
- **output**: K class logits, valence, arousal (no activation);
- **loss**: NLL of the log-softmax over classes, plus for valence and arousal each of MSE,
  ``1 - PCC`` and ``1 - CCC`` (:mod:`tempsmirk.evaluation.metrics`), each with its weight;
  optionally (``reweight``, EMOCA's "shake" scheme) the V/A weights are redrawn at random every
  training step, keeping their sum, so no single V/A term dominates;
- **training**: Adam 1e-4, batch 64; a held-out part of the training split decides when to stop
  (no improvement of its loss for ``patience`` epochs) and which epoch's weights are kept.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from tempsmirk.evaluation.metrics import EMOTION_CLASSES, EmotionPrediction, EmotionTargets, ccc, pcc
from tempsmirk.smirk.encoder import EncoderOutput

__all__ = [
    "INPUT_FIELDS",
    "EmotionLossConfig",
    "EmotionMLPConfig",
    "EmotionLosses",
    "EmotionMLP",
    "TrainingHistory",
    "emotion_inputs",
    "emotion_losses",
    "train_emotion_mlp",
    "predict_emotion",
]

# EncoderOutput fields the MLP may read (``cam`` says where the face is, not how it looks).
INPUT_FIELDS = ("expression", "jaw_pose", "eyelids", "global_pose", "shape")
_VA_TERMS = ("v_mse", "a_mse", "v_pcc", "a_pcc", "v_ccc", "a_ccc")


@dataclass
class EmotionLossConfig:
    """Weights of the loss terms (0 switches a term off).

    expression_nll: NLL of the class log-probabilities.
    v_mse, a_mse / v_pcc, a_pcc / v_ccc, a_ccc: valence/arousal MSE, 1 - PCC, 1 - CCC.
    reweight: EMOCA's "shake": every training step draws the six V/A weights at random
        (uniform, times the configured weight), rescaled to keep the configured sum.
    """

    expression_nll: float = 1.0
    v_mse: float = 1.0
    a_mse: float = 1.0
    v_pcc: float = 1.0
    a_pcc: float = 1.0
    v_ccc: float = 1.0
    a_ccc: float = 1.0
    reweight: bool = False


@dataclass
class EmotionMLPConfig:
    """The EmotionVA MLP and its training (defaults from EMOCA, guide section 2).

    hidden, n_hidden: width and number of hidden layers.
    negative_slope: LeakyReLU slope. batch_norm: BatchNorm1d after each hidden Linear.
    n_classes: expression classes (8 for AffectNet).
    inputs: :data:`INPUT_FIELDS` to concatenate, in this order.
    lr, batch_size: Adam learning rate and minibatch size.
    max_epochs: upper bound on epochs.
    loss: :class:`EmotionLossConfig`.
    patience: epochs without improvement of the held-out loss (by more than ``min_delta``) before
        stopping.
    holdout_fraction: part of the training split held out for early stopping.
    """

    hidden: int = 2048
    n_hidden: int = 4
    negative_slope: float = 0.2
    batch_norm: bool = True
    n_classes: int = len(EMOTION_CLASSES)
    inputs: list[str] = field(default_factory=lambda: ["expression", "jaw_pose"])
    lr: float = 1e-4
    batch_size: int = 64
    max_epochs: int = 100
    loss: EmotionLossConfig = field(default_factory=EmotionLossConfig)
    patience: int = 10
    min_delta: float = 0.0
    holdout_fraction: float = 0.1


def emotion_inputs(params: EncoderOutput, inputs: Sequence[str]) -> Tensor:
    """The MLP's input: the named fields of ``params`` concatenated. -> (N, D) float."""
    unknown = [name for name in inputs if name not in INPUT_FIELDS]
    if unknown or not inputs:
        raise ValueError(f"emotion MLP inputs must be a non-empty selection of {INPUT_FIELDS}; "
                         f"got {list(inputs)}")
    return torch.cat([getattr(params, name).float() for name in inputs], dim=1)


class EmotionMLP(nn.Module):
    """Features (N, D) -> :class:`EmotionPrediction`. Explained in chapter 6.

    ``input_mean`` / ``input_std`` (buffers, (D,)) standardise the input; set them from the
    training features with :meth:`fit_normalisation` (identity until then).
    """

    def __init__(self, in_features: int, cfg: Optional[EmotionMLPConfig] = None) -> None:
        super().__init__()
        cfg = cfg or EmotionMLPConfig()
        self.n_classes = cfg.n_classes
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(cfg.n_hidden):
            layers.append(nn.Linear(width, cfg.hidden))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm1d(cfg.hidden))
            layers.append(nn.LeakyReLU(cfg.negative_slope))
            width = cfg.hidden
        layers.append(nn.Linear(width, cfg.n_classes + 2))
        self.layers = nn.Sequential(*layers)
        self.register_buffer("input_mean", torch.zeros(in_features))
        self.register_buffer("input_std", torch.ones(in_features))

    @torch.no_grad()
    def fit_normalisation(self, x: Tensor) -> None:
        """Standardise with the mean and std of ``x`` (N, D); constant features keep std 1."""
        self.input_mean.copy_(x.mean(0))
        std = x.std(0, unbiased=False)
        self.input_std.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))

    def forward(self, x: Tensor) -> EmotionPrediction:
        out = self.layers((x - self.input_mean) / self.input_std)
        k = self.n_classes
        return EmotionPrediction(valence=out[:, k], arousal=out[:, k + 1], logits=out[:, :k])


@dataclass(frozen=True)
class EmotionLosses:
    """The loss terms (unweighted, () tensors) and their weighted sum ``total``.

    ``v_pcc`` etc. hold ``1 - PCC`` / ``1 - CCC`` (the quantities minimised).
    """

    expression_nll: Tensor
    v_mse: Tensor
    a_mse: Tensor
    v_pcc: Tensor
    a_pcc: Tensor
    v_ccc: Tensor
    a_ccc: Tensor
    total: Tensor

    def as_floats(self) -> dict[str, float]:
        """For logs and printing only."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


def _va_weights(cfg: EmotionLossConfig, generator: Optional[torch.Generator]) -> Tensor:
    """The six V/A term weights (order :data:`_VA_TERMS`), redrawn when ``reweight`` is on."""
    w = torch.tensor([getattr(cfg, name) for name in _VA_TERMS], dtype=torch.float32)
    if cfg.reweight and generator is not None and w.sum() > 0:
        shaken = w * torch.rand(len(w), generator=generator)
        w = shaken * (w.sum() / shaken.sum().clamp_min(1e-12))
    return w


def emotion_losses(pred: EmotionPrediction, target: EmotionTargets, cfg: EmotionLossConfig,
                   generator: Optional[torch.Generator] = None) -> EmotionLosses:
    """The MLP's loss over one batch (correlations are batch statistics, N >= 2).

    ``generator`` (CPU) enables the random V/A re-weighting when ``cfg.reweight`` is set; pass
    None for a deterministic loss (validation, early stopping).
    """
    nll = F.nll_loss(F.log_softmax(pred.logits, dim=1), target.expression)
    v, a = pred.valence, pred.arousal
    terms = (F.mse_loss(v, target.valence), F.mse_loss(a, target.arousal),
             1 - pcc(v, target.valence), 1 - pcc(a, target.arousal),
             1 - ccc(v, target.valence), 1 - ccc(a, target.arousal))
    w = _va_weights(cfg, generator).to(nll.device)
    total = cfg.expression_nll * nll + sum(wi * t for wi, t in zip(w, terms))
    return EmotionLosses(nll, *terms, total=total)


@dataclass(frozen=True)
class TrainingHistory:
    """How a training went.

    train_loss, holdout_loss: per epoch, mean training loss and held-out loss.
    best_epoch: the epoch (0-based) whose weights were kept. stopped_early: True if patience ran
    out before ``max_epochs``.
    """

    train_loss: tuple[float, ...]
    holdout_loss: tuple[float, ...]
    best_epoch: int
    stopped_early: bool


@torch.no_grad()
def predict_emotion(model: EmotionMLP, x: Tensor, batch_size: int = 4096) -> EmotionPrediction:
    """The model's predictions for x (N, D) in eval mode (BatchNorm uses its running statistics)."""
    was_training = model.training
    model.eval()
    parts = [model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]
    model.train(was_training)
    return EmotionPrediction(torch.cat([p.valence for p in parts]), torch.cat([p.arousal for p in parts]),
                             torch.cat([p.logits for p in parts]))


def _holdout_split(n: int, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random (train, holdout) index split; the holdout gets at least 2 samples."""
    n_hold = max(2, int(round(n * fraction)))
    if n - n_hold < 2:
        raise ValueError(f"the emotion MLP needs at least 4 training samples (2 to train, 2 to decide "
                         f"when to stop); got {n}")
    perm = torch.randperm(n, generator=generator)
    return perm[n_hold:], perm[:n_hold]


def train_emotion_mlp(x: Tensor, targets: EmotionTargets, cfg: Optional[EmotionMLPConfig] = None,
                      generator: Optional[torch.Generator] = None,
                      holdout: Optional[tuple[Tensor, EmotionTargets]] = None,
                      progress: bool = False) -> tuple[EmotionMLP, TrainingHistory]:
    """Train an :class:`EmotionMLP` on x (N, D) with early stopping. Explained in chapter 6.

    Args:
        x, targets: training features and labels (on the device to train on).
        cfg: :class:`EmotionMLPConfig`.
        generator: CPU generator for the initial weights, the holdout split, the batch order and the
            loss re-weighting (a fixed seed gives a fixed result on a given device).
        holdout: features and labels that decide when to stop; None carves
            ``cfg.holdout_fraction`` out of ``x``.
        progress: show a progress bar over epochs.
    Returns:
        the model with the weights of its best held-out epoch (in eval mode), and its history.
    """
    cfg = cfg or EmotionMLPConfig()
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    if holdout is None:
        keep, hold = _holdout_split(x.shape[0], cfg.holdout_fraction, g)
        x, targets, holdout = x[keep.to(x.device)], targets[keep.to(x.device)], \
            (x[hold.to(x.device)], targets[hold.to(x.device)])
    x_hold, t_hold = holdout
    fork = torch.random.fork_rng(devices=[])
    with fork:  # initial weights drawn from our generator, not the global stream
        torch.manual_seed(int(torch.randint(0, 2 ** 62, (), generator=g)))
        model = EmotionMLP(x.shape[1], cfg)
    model = model.to(x.device)
    model.fit_normalisation(x)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    n = x.shape[0]
    b = min(cfg.batch_size, n)
    best, best_state, best_epoch, wait = float("inf"), copy.deepcopy(model.state_dict()), -1, 0
    train_hist: list[float] = []
    hold_hist: list[float] = []
    stopped = False
    bar = tqdm(range(cfg.max_epochs), desc="emotion MLP", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=g).to(x.device)
        # A last batch of one sample would break BatchNorm (and the correlations): fold it in.
        starts = list(range(0, n - b + 1, b)) or [0]
        losses = []
        for k, s in enumerate(starts):
            idx = order[s:] if k == len(starts) - 1 else order[s:s + b]
            loss = emotion_losses(model(x[idx]), targets[idx], cfg.loss, g).total
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            h = float(emotion_losses(predict_emotion(model, x_hold), t_hold, cfg.loss).total)
        train_hist.append(sum(losses) / len(losses))
        hold_hist.append(h)
        bar.set_postfix(train=f"{train_hist[-1]:.3f}", holdout=f"{h:.3f}")
        if h < best - cfg.min_delta:
            best, best_state, best_epoch, wait = h, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            wait += 1
            if wait >= cfg.patience:
                stopped = True
                break
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    return model, TrainingHistory(tuple(train_hist), tuple(hold_hist), best_epoch, stopped)
