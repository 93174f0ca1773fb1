"""The EmotionVA MLP: FLAME parameters -> valence, arousal and 8 expression classes, trained as EMOCA.

Explained in chapter 6. Shapes: N samples, D input features, K classes, E expression coefficients.

We cannot read valence and arousal off FLAME parameters directly, so the paper (section 4.2, after
EMOCA) trains a small network on them and judges an encoder by how well that network does: the
more emotion the parameters carry, the better the scores. Network, loss and training follow
EMOCA's ``EmoDECA`` (repository ``radekd91/emoca``, the released ``emoca_coarse`` training config):

- **input**: the chosen :class:`~tempsmirk.flame.FlameParams` fields concatenated:
  expression (E) + jaw pose (3) by default (EMOCA's base config and the paper's description);
  ``["shape", "expression", "jaw_pose"]`` is what EMOCA's released models read. Standardised with
  the training set's mean and std (``standardize``; our addition, see the README);
- **body**: ``n_hidden`` x (Linear -> BatchNorm1d -> LeakyReLU(0.2)), 2048 wide, no dropout;
- **output**: K class logits (log-softmax), valence, arousal (no activation);
- **loss** (:func:`emotion_losses`), EMOCA's four V/A terms ``v_mse``, ``a_mse``, ``va_lpcc``,
  ``va_lccc`` with weight 1 each plus the classes' NLL::

      NLL + MSE_v + MSE_a + (1 - (PCC_v + PCC_a) / 2) + (1 - (CCC_v + CCC_a) / 2)
    = NLL + MSE_v + MSE_a + 0.5 (1 - PCC_v) + 0.5 (1 - PCC_a) + 0.5 (1 - CCC_v) + 0.5 (1 - CCC_a)

  In training EMOCA's **shake** (``va_scheme="shake"``) replaces the four V/A weights at every
  step by independent U(0, 1) draws normalised to sum 1 (the NLL keeps weight 1); validation
  keeps the configured weights;
- **batches** (:func:`sample_epoch`): EMOCA's ``balanced_expr`` sampler, N draws per epoch with
  replacement, each sample with probability proportional to 1 / (its class's count), batches of
  64 with the incomplete last one dropped; ``sampler="natural"`` shuffles instead (EMOCA's
  ``uniform``);
- **model selection** (:func:`train_emotion_mlp`): Adam 1e-4; a held-out tenth of the training
  split is scored every 0.2 epoch (EMOCA's ``val_check_interval``) with the fixed weights, in
  batches of 64 averaged by size (as Lightning logs EMOCA's ``val_loss_total``); training stops
  after 10 checks without improvement (``EarlyStopping(patience=10)``), when a check is not
  finite (Lightning's ``check_finite``), or after 50 epochs; the best check's weights are reloaded
  (``checkpoint_after_training: best``). A held-out loss that is never finite is an error.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, fields
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from tempsmirk.evaluation.metrics import EMOTION_CLASSES, EmotionPrediction, EmotionTargets, ccc, pcc
from tempsmirk.flame.params import FlameParams

__all__ = [
    "INPUT_FIELDS",
    "SAMPLERS",
    "VA_SCHEMES",
    "VA_TERMS",
    "EmotionLossConfig",
    "EmotionMLPConfig",
    "EmotionLosses",
    "EmotionMLP",
    "TrainingHistory",
    "emotion_inputs",
    "va_term_weights",
    "emotion_losses",
    "sample_epoch",
    "holdout_loss",
    "train_emotion_mlp",
    "predict_emotion",
]

# FlameParams fields the MLP may read (``cam`` says where the face is, not how it looks).
INPUT_FIELDS = ("expression", "jaw_pose", "eyelids", "global_pose", "shape")
#: Batch samplers: EMOCA's ``balanced_expr`` and its ``uniform`` (the data's own class mix).
SAMPLERS = ("balanced", "natural")
#: EMOCA's ``va_loss_scheme`` values: per-step random weights, weights normalised to sum 1, as given.
VA_SCHEMES = ("shake", "norm", "none")
#: The V/A loss terms in EMOCA's order (``v_loss``, ``a_loss``, ``va_loss`` keys).
VA_TERMS = ("v_mse", "a_mse", "va_pcc", "va_ccc")


@dataclass
class EmotionLossConfig:
    """Weights of the loss terms (0 switches a term off); defaults are EMOCA's.

    expression_nll: NLL of the class log-probabilities.
    v_mse, a_mse: valence / arousal MSE.
    va_pcc: ``1 - (PCC_v + PCC_a) / 2`` (EMOCA's ``va_lpcc``).
    va_ccc: ``1 - (CCC_v + CCC_a) / 2`` (EMOCA's ``va_lccc``).
    va_scheme: one of :data:`VA_SCHEMES`. ``"shake"``: every training step replaces the weights
        of the active V/A terms by independent U(0, 1) draws normalised to sum 1 (validation
        keeps the weights above); ``"norm"``: the V/A weights are divided by their sum, in
        training and validation; ``"none"``: the weights as given.
    """

    expression_nll: float = 1.0
    v_mse: float = 1.0
    a_mse: float = 1.0
    va_pcc: float = 1.0
    va_ccc: float = 1.0
    va_scheme: str = "shake"


@dataclass
class EmotionMLPConfig:
    """The EmotionVA MLP and its training (defaults: EMOCA's, module docstring).

    hidden, n_hidden: width and number of hidden layers.
    negative_slope: LeakyReLU slope. batch_norm: BatchNorm1d after each hidden Linear.
    n_classes: expression classes (8 for AffectNet).
    inputs: :data:`INPUT_FIELDS` to concatenate, in this order (EMOCA's order is shape,
        expression, global pose, jaw).
    standardize: standardise the inputs with the training set's mean and std.
    lr, batch_size: Adam learning rate and minibatch size.
    sampler: one of :data:`SAMPLERS`.
    max_epochs: upper bound on epochs.
    val_check_interval: validate every this fraction of an epoch (Lightning's meaning: every
        ``max(1, int(batches_per_epoch * val_check_interval))`` training batches).
    patience: validation checks without improvement (by more than ``min_delta``) before stopping.
    holdout_fraction: part of the training split held out for model selection.
    loss: :class:`EmotionLossConfig`.
    """

    hidden: int = 2048
    n_hidden: int = 4
    negative_slope: float = 0.2
    batch_norm: bool = True
    n_classes: int = len(EMOTION_CLASSES)
    inputs: list[str] = field(default_factory=lambda: ["expression", "jaw_pose"])
    standardize: bool = True
    lr: float = 1e-4
    batch_size: int = 64
    sampler: str = "balanced"
    max_epochs: int = 50
    val_check_interval: float = 0.2
    patience: int = 10
    min_delta: float = 0.0
    holdout_fraction: float = 0.1
    loss: EmotionLossConfig = field(default_factory=EmotionLossConfig)

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}; got {self.sampler!r}")
        if self.loss.va_scheme not in VA_SCHEMES:
            raise ValueError(f"va_scheme must be one of {VA_SCHEMES}; got {self.loss.va_scheme!r}")
        if not 0 < self.val_check_interval <= 1:
            raise ValueError(f"val_check_interval is a fraction of an epoch in (0, 1]; "
                             f"got {self.val_check_interval}")
        if self.patience < 1 or self.max_epochs < 1 or self.batch_size < 2:
            raise ValueError(f"patience and max_epochs must be >= 1 and batch_size >= 2; got "
                             f"{self.patience}, {self.max_epochs}, {self.batch_size}")


def emotion_inputs(params: FlameParams, inputs: Sequence[str]) -> Tensor:
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

    ``va_pcc`` / ``va_ccc`` hold ``1 - (PCC_v + PCC_a) / 2`` and ``1 - (CCC_v + CCC_a) / 2``;
    they are NaN for a batch of one sample, where correlations are undefined (and left out of
    ``total``, as EMOCA's validation leaves them out).
    """

    expression_nll: Tensor
    v_mse: Tensor
    a_mse: Tensor
    va_pcc: Tensor
    va_ccc: Tensor
    total: Tensor

    def as_floats(self) -> dict[str, float]:
        """For logs and printing only."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


def va_term_weights(cfg: EmotionLossConfig, generator: Optional[torch.Generator] = None) -> Tensor:
    """The weights of :data:`VA_TERMS` for one step. -> (4,) float32.

    ``generator`` (CPU) marks a training step: with ``va_scheme="shake"`` the active terms (weight
    not 0) get independent U(0, 1) draws normalised to sum 1. None (validation) keeps the
    configured weights; ``"norm"`` divides them by their sum either way.
    """
    w = torch.tensor([getattr(cfg, name) for name in VA_TERMS], dtype=torch.float32)
    active = w != 0
    if not active.any():
        return w
    if cfg.va_scheme == "shake" and generator is not None:
        w = torch.rand(len(w), generator=generator) * active
        return w / w.sum().clamp_min(1e-12)
    if cfg.va_scheme == "norm":
        return w / w.sum()
    return w


def emotion_losses(pred: EmotionPrediction, target: EmotionTargets, cfg: EmotionLossConfig,
                   generator: Optional[torch.Generator] = None) -> EmotionLosses:
    """The MLP's loss over one batch (module docstring; correlations are batch statistics).

    ``generator`` (CPU): pass the training generator in a training step (it draws the shake
    weights); None gives the fixed validation weights.
    """
    nll = F.nll_loss(F.log_softmax(pred.logits, dim=1), target.expression)
    v, a = pred.valence, pred.arousal
    v_mse, a_mse = F.mse_loss(v, target.valence), F.mse_loss(a, target.arousal)
    if len(target) >= 2:
        va_pcc = 1 - (pcc(v, target.valence) + pcc(a, target.arousal)) / 2
        va_ccc = 1 - (ccc(v, target.valence) + ccc(a, target.arousal)) / 2
    else:
        va_pcc = va_ccc = torch.full((), float("nan"), device=nll.device)
    w = va_term_weights(cfg, generator).to(nll.device)
    total = cfg.expression_nll * nll + w[0] * v_mse + w[1] * a_mse
    if len(target) >= 2:
        total = total + w[2] * va_pcc + w[3] * va_ccc
    return EmotionLosses(nll, v_mse, a_mse, va_pcc, va_ccc, total=total)


def sample_epoch(labels: Tensor, sampler: str, generator: torch.Generator) -> Tensor:
    """One epoch's sample order for class labels (N,) int. -> (N,) int64 indices (CPU).

    ``"balanced"``: N draws with replacement, sample i with probability proportional to
    1 / count(labels[i]), so every class is drawn equally often on average (EMOCA's
    ``make_class_balanced_sampler``: a ``WeightedRandomSampler`` over 1 / class count).
    ``"natural"``: a random permutation (each sample once, classes as often as in the data).
    """
    labels = labels.detach().long().cpu()
    n = labels.shape[0]
    if sampler == "natural":
        return torch.randperm(n, generator=generator)
    if sampler != "balanced":
        raise ValueError(f"sampler must be one of {SAMPLERS}; got {sampler!r}")
    counts = torch.bincount(labels)
    weights = 1.0 / counts[labels].double()
    return torch.multinomial(weights, n, replacement=True, generator=generator)


@dataclass(frozen=True)
class TrainingHistory:
    """How a training went, one entry per validation check.

    epoch: epochs trained at each check (0.2, 0.4, ... with EMOCA's interval).
    train_loss: mean training loss (with that step's shake weights) since the previous check.
    holdout_loss: the held-out loss at the check (fixed weights).
    best_check: index of the check whose weights were kept.
    stop_reason: ``"patience"``, ``"non-finite held-out loss"`` or ``"max_epochs"``.
    """

    epoch: tuple[float, ...]
    train_loss: tuple[float, ...]
    holdout_loss: tuple[float, ...]
    best_check: int
    stop_reason: str

    @property
    def best_epoch(self) -> float:
        """Epochs trained by the kept weights."""
        return self.epoch[self.best_check]

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason != "max_epochs"


@torch.no_grad()
def predict_emotion(model: EmotionMLP, x: Tensor, batch_size: int = 4096) -> EmotionPrediction:
    """The model's predictions for x (N, D) in eval mode (BatchNorm uses its running statistics)."""
    was_training = model.training
    model.eval()
    parts = [model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]
    model.train(was_training)
    return EmotionPrediction(torch.cat([p.valence for p in parts]), torch.cat([p.arousal for p in parts]),
                             torch.cat([p.logits for p in parts]))


@torch.no_grad()
def holdout_loss(model: EmotionMLP, x: Tensor, targets: EmotionTargets, cfg: EmotionLossConfig,
                 batch_size: int = 64) -> float:
    """The validation loss as EMOCA monitors it: fixed weights, computed per batch of
    ``batch_size`` in order and averaged weighted by batch size. x: (N, D)."""
    pred = predict_emotion(model, x)
    total, count = 0.0, 0
    for s in range(0, len(targets), batch_size):
        part = slice(s, s + batch_size)
        n = len(targets[part])
        total += float(emotion_losses(pred[part], targets[part], cfg).total) * n
        count += n
    return total / count


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
    """Train an :class:`EmotionMLP` on x (N, D) with EMOCA's model selection (module docstring).

    Explained in chapter 6.

    Args:
        x, targets: training features and labels (on the device to train on).
        cfg: :class:`EmotionMLPConfig`.
        generator: CPU generator for the initial weights, the holdout split, the batch draws and
            the shake weights (a fixed seed gives a fixed result on a given device).
        holdout: features and labels for model selection; None carves ``cfg.holdout_fraction``
            out of ``x``.
        progress: show a progress bar over epochs.
    Returns:
        the model with the weights of its best validation check (in eval mode), and its history.
    Raises:
        ValueError: non-finite features, too few samples, or a held-out loss that was not finite
            at any check (nothing to select; the weights would be untrained).
    """
    cfg = cfg or EmotionMLPConfig()
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise ValueError(f"{bad} of {x.shape[0]} emotion MLP input rows hold NaN or inf; expected "
                         f"finite encoder parameters (check the encoder and its crops)")
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
    if cfg.standardize:
        model.fit_normalisation(x)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    n = x.shape[0]
    b = min(cfg.batch_size, n)
    n_batches = n // b  # EMOCA's loader drops the incomplete last batch
    every = max(1, int(n_batches * cfg.val_check_interval))
    labels = targets.expression

    best, best_state, best_check = math.inf, None, -1
    monitor_best, wait = math.inf, 0
    epochs: list[float] = []
    train_hist: list[float] = []
    hold_hist: list[float] = []
    running: list[float] = []
    reason = "max_epochs"
    bar = tqdm(range(cfg.max_epochs), desc="emotion MLP", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        order = sample_epoch(labels, cfg.sampler, g).to(x.device)
        for i in range(n_batches):
            idx = order[i * b:(i + 1) * b]
            loss = emotion_losses(model(x[idx]), targets[idx], cfg.loss, g).total
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running.append(loss.item())
            if (i + 1) % every:
                continue
            h = holdout_loss(model, x_hold, t_hold, cfg.loss, b)
            model.train()
            epochs.append(epoch + (i + 1) / n_batches)
            train_hist.append(sum(running) / len(running))
            hold_hist.append(h)
            running = []
            bar.set_postfix(train=f"{train_hist[-1]:.3f}", holdout=f"{h:.3f}")
            if not math.isfinite(h):
                reason = "non-finite held-out loss"
                break
            if h < best:  # ModelCheckpoint(monitor=val_loss_total, mode="min")
                best, best_state, best_check = h, copy.deepcopy(model.state_dict()), len(hold_hist) - 1
            if h < monitor_best - cfg.min_delta:  # EarlyStopping(patience, min_delta)
                monitor_best, wait = h, 0
            else:
                wait += 1
                if wait >= cfg.patience:
                    reason = "patience"
                    break
        if reason != "max_epochs":
            break
    bar.close()
    if best_state is None:
        raise ValueError(f"the emotion MLP's held-out loss was not finite at any of its {len(hold_hist)} "
                         f"validation checks ({hold_hist[:3]}...), so there are no trained weights to "
                         f"keep; expected finite losses: lower the learning rate (now {cfg.lr}) or "
                         f"check the inputs and labels")
    model.load_state_dict(best_state)
    model.eval()
    return model, TrainingHistory(tuple(epochs), tuple(train_hist), tuple(hold_hist), best_check, reason)
