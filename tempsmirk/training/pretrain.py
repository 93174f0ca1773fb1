"""Supervised pretraining of SMIRK's encoder on synthetic ground truth (chapter 3).

SMIRK trains its encoder in two stages: a pretraining stage that supervises the outputs directly
(landmarks for pose and expression, MICA's identity estimates for shape; the reference's
``configs/config_pretrain.yaml``), then the analysis-by-synthesis objective. On synthetic faces
every parameter is known, so this stage supervises every output of the three branches with
its ground truth. It is what the book's demo checkpoint is trained with
(:func:`tempsmirk.training.demo_checkpoint`). The architecture is SMIRK's, unchanged; the choices
that make it learn within minutes on a CPU (each measured, see the README):

- **pre-rendered faces** (:mod:`tempsmirk.data.rendered`): rendering a face costs about as much
  as a training step on it;
- **standardised heads**: each head output y is trained in the units of its spread in the
  training set, z = (y - mean) / std, through a head parametrised the same way
  (W = std · W', b = mean + std · b'; :class:`StandardisedHeads`, folded back into SMIRK's
  Linear layers at the end). Adam moves every weight by about the learning rate per step
  whatever the gradient's scale, so on the raw head one step moves every output by about the
  same amount: useful for the jaw (spread 0.09 rad), ruinous for the camera shift (0.006);
- **no dead outputs**: the loss is taken on the heads' linear outputs, before the jaw's ReLU and
  the eyelids' clamp (the targets lie inside their ranges, so the activations change nothing at
  the optimum), and the heads start at the training-set mean, i.e. as the mean predictor;
- **components the data never varies** (zero spread: the shape and expression coefficients past
  the ones drawn) are not trained: their weights are zero and they predict exactly 0;
- **a pose helper**: the expression backbone also reads the head pose through an extra Linear
  layer (dropped at the end); locating and orienting the face comes first and helps it find the
  mouth and the eyes.

Shapes: B batch, C pooled backbone channels, S shape and E expression coefficients.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from tempsmirk.config import Config, PretrainConfig
from tempsmirk.data.rendered import RenderedFaces
from tempsmirk.data.synthetic import item_seed
from tempsmirk.data.transforms import colour_jitter
from tempsmirk.flame import FlameParams
from tempsmirk.smirk.checkpoint import atomic_torch_save
from tempsmirk.smirk.encoder import BRANCHES, SmirkEncoder

__all__ = ["training_faces", "held_out_faces", "train_stages", "LearningCurve",
           "read_learning_curve", "errors_table", "constant_prediction", "mean_prediction",
           "HeadValues", "head_values", "head_layer", "pooled_features", "StandardisedHeads",
           "PretrainTerms", "pretrain_loss", "ParameterErrors", "parameter_errors", "predict",
           "Pretrainer", "PRETRAIN_FORMAT", "PRETRAIN_LOG_FIELDS"]

PRETRAIN_FORMAT = "tempsmirk.pretrain/1"
_EPS = 1e-8


@dataclass(frozen=True)
class HeadValues:
    """One tensor per encoder branch, in the order of that branch's Linear head (None: absent).

    pose: (B, 6) global pose (3, axis-angle) then camera (s, tx, ty).
    shape: (B, S) identity coefficients.
    expression: (B, E + 5) expression, eyelids (2), jaw pose (3) — before the ReLU/clamps.
    """

    pose: Optional[Tensor]
    shape: Optional[Tensor]
    expression: Optional[Tensor]

    def of(self, branch: str) -> Optional[Tensor]:
        """The tensor of a branch by name (``"pose"``, ``"shape"`` or ``"expression"``)."""
        return getattr(self, branch)


def head_values(params: FlameParams) -> HeadValues:
    """Parameters laid out as the heads output them: the targets of pretraining."""
    return HeadValues(pose=torch.cat([params.global_pose, params.cam], dim=-1), shape=params.shape,
                      expression=torch.cat([params.expression, params.eyelids, params.jaw_pose], dim=-1))


def head_layer(encoder: SmirkEncoder, branch: str) -> nn.Linear:
    """The Linear head of a branch (the one layer after the pooled backbone features)."""
    module = encoder.branch(branch)
    layers = {"pose": "pose_cam_layers", "shape": "shape_layers", "expression": "expression_layers"}[branch]
    return getattr(module, layers)[0]


def pooled_features(encoder: SmirkEncoder, image: Tensor, branches=BRANCHES) -> HeadValues:
    """(B, 3, H, W) -> the average-pooled last feature map of each named branch's backbone, (B, C)."""
    out = {b: None for b in BRANCHES}
    for b in branches:
        out[b] = encoder.branch(b).encoder(image)[-1].mean(dim=(2, 3))
    return HeadValues(**out)


class StandardisedHeads(nn.Module):
    """The three heads in standardised units, for training (module docstring).

    For branch b with training-set mean m and spread s of its outputs, z = W' f + b' and the
    encoder's head is W = s · W', b = m + s · b'. Outputs with zero spread (``varied`` False)
    are masked: their W', b' never act and the folded head outputs exactly 0 there.

    Args:
        encoder: the encoder whose heads these stand for (its pooled feature sizes are used).
        mean, std: :class:`HeadValues` of (D,) per-output training-set statistics.
        generator: for the initial W' (N(0, (0.01 / √C)²); b' = 0, so training starts from the
            mean predictor).
    """

    def __init__(self, encoder: SmirkEncoder, mean: HeadValues, std: HeadValues,
                 generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        self.weight = nn.ParameterDict()
        self.bias = nn.ParameterDict()
        for b in BRANCHES:
            layer = head_layer(encoder, b)
            s = std.of(b).detach().float().cpu()
            varied = s > _EPS
            self.register_buffer(f"{b}_mean", torch.where(varied, mean.of(b).detach().float().cpu(), 0.0))
            self.register_buffer(f"{b}_std", torch.where(varied, s, 1.0))
            self.register_buffer(f"{b}_varied", varied)
            c = layer.in_features
            w = torch.randn(layer.out_features, c, generator=generator) * (0.01 / math.sqrt(c))
            self.weight[b] = nn.Parameter(w * varied[:, None])
            self.bias[b] = nn.Parameter(torch.zeros(layer.out_features))
        self.to(head_layer(encoder, "pose").weight.device)

    def stats(self, branch: str) -> tuple[Tensor, Tensor, Tensor]:
        """(mean, std, varied) of a branch's outputs, each (D,)."""
        return (getattr(self, f"{branch}_mean"), getattr(self, f"{branch}_std"), getattr(self, f"{branch}_varied"))

    def forward(self, features: HeadValues) -> HeadValues:
        """Pooled features (B, C) per branch -> standardised outputs z (B, D) (None stays None)."""
        out = {}
        for b in BRANCHES:
            f = features.of(b)
            if f is None:
                out[b] = None
                continue
            varied = self.stats(b)[2].to(f.dtype)
            out[b] = F.linear(f, self.weight[b] * varied[:, None], self.bias[b] * varied)
        return HeadValues(**out)

    def standardise(self, values: HeadValues) -> HeadValues:
        """Raw head values -> z = (y - mean) / std (0 where the data does not vary)."""
        out = {}
        for b in BRANCHES:
            y = values.of(b)
            mean, std, varied = self.stats(b)
            out[b] = None if y is None else (y - mean) / std * varied
        return HeadValues(**out)

    @torch.no_grad()
    def fold_into(self, encoder: SmirkEncoder, branches=BRANCHES) -> SmirkEncoder:
        """Write W = s · W', b = m + s · b' into the encoder's heads (the named branches). Returns it."""
        for b in branches:
            mean, std, varied = self.stats(b)
            layer = head_layer(encoder, b)
            v = varied.to(layer.weight.dtype)
            layer.weight.copy_(std[:, None] * self.weight[b] * v[:, None])
            layer.bias.copy_((mean + std * self.bias[b]) * v)
        return encoder


@dataclass(frozen=True)
class PretrainTerms:
    """The loss terms of a step (each a () tensor: mean squared standardised error over the
    outputs the data varies) and their weighted ``total``."""

    pose: Tensor
    cam: Tensor
    shape: Tensor
    expression: Tensor
    eyelids: Tensor
    jaw: Tensor
    jaw_sides: Tensor
    pose_helper: Tensor
    total: Tensor

    def as_floats(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name).detach()) for f in fields(self)}


def _masked_mse(err: Tensor, varied: Tensor) -> Tensor:
    """Mean of (B, D) squared errors over the columns with ``varied`` (D,) set; 0 when none is."""
    if not bool(varied.any()):
        return err.new_zeros(())
    return err[:, varied].mean()


def pretrain_loss(z: HeadValues, target: HeadValues, heads: StandardisedHeads, n_exp: int, cfg: PretrainConfig,
                  helper: Optional[Tensor] = None) -> PretrainTerms:
    """The weighted supervised loss (:class:`PretrainConfig` holds the weights).

    z: predicted standardised outputs; target: standardised ground truth (both :class:`HeadValues`,
    None for branches that do not train); helper: (B, 6) the pose helper's standardised pose and
    camera, or None.
    """
    ref = next(t for t in (z.pose, z.shape, z.expression) if t is not None)
    zero = ref.new_zeros(())
    t = dict(pose=zero, cam=zero, shape=zero, expression=zero, eyelids=zero, jaw=zero, jaw_sides=zero,
             pose_helper=zero)
    if z.pose is not None:
        err, varied = (z.pose - target.pose).pow(2), heads.stats("pose")[2]
        t["pose"], t["cam"] = _masked_mse(err[:, :3], varied[:3]), _masked_mse(err[:, 3:], varied[3:])
    if z.shape is not None:
        t["shape"] = _masked_mse((z.shape - target.shape).pow(2), heads.stats("shape")[2])
    if z.expression is not None:
        err, varied = (z.expression - target.expression).pow(2), heads.stats("expression")[2]
        e = n_exp
        t["expression"] = _masked_mse(err[:, :e], varied[:e])
        t["eyelids"] = _masked_mse(err[:, e:e + 2], varied[e:e + 2])
        t["jaw"] = _masked_mse(err[:, e + 2:e + 3], varied[e + 2:e + 3])
        t["jaw_sides"] = _masked_mse(err[:, e + 3:], varied[e + 3:])
    if helper is not None:
        t["pose_helper"] = _masked_mse((helper - target.pose).pow(2), heads.stats("pose")[2])
    total = sum(getattr(cfg, name) * value for name, value in t.items())
    return PretrainTerms(**t, total=total)


# ---------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class ParameterErrors:
    """How well predictions follow the ground truth on a set of faces (the learning figures).

    pose_deg: mean absolute error of the global pose's three axis-angle components (degrees);
        pose_mean_deg: the same for the dataset-mean predictor (every face answered with the
        set's mean pose); pose_ratio: their ratio (< 1: better than the mean).
    yaw_corr, jaw_corr: Pearson correlation of predicted and true yaw / jaw opening.
    jaw_open_deg: mean absolute jaw-opening error (degrees).
    jaw_r2, eyelid_r2, expression_r2, shape_r2: R² = 1 - SSE/SST, SST around the set's mean
        (0 for the mean predictor, 1 for a perfect one, negative when worse than the mean),
        pooled over both eyelids and over the expression / shape components the set varies.
    expression_rmse: over all E coefficients.
    """

    pose_deg: float
    pose_mean_deg: float
    pose_ratio: float
    yaw_corr: float
    jaw_open_deg: float
    jaw_corr: float
    jaw_r2: float
    expression_r2: float
    expression_rmse: float
    eyelid_r2: float
    shape_r2: float

    def as_floats(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


def _r2(pred: Tensor, gt: Tensor) -> float:
    sst = float((gt - gt.mean(0)).pow(2).sum())
    return 1.0 - float((pred - gt).pow(2).sum()) / sst if sst > 0 else float("nan")


def _corr(a: Tensor, b: Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(a.norm() * b.norm())
    return float(a @ b) / den if den > 0 else 0.0


def parameter_errors(pred: FlameParams, gt: FlameParams) -> ParameterErrors:
    """:class:`ParameterErrors` of predictions against ground truth, both with (N, ...) fields."""
    deg = 180 / math.pi
    pred, gt = pred.to(torch.float64), gt.to(torch.float64)
    pose = float((pred.global_pose - gt.global_pose).abs().mean()) * deg
    pose_mean = float((gt.global_pose.mean(0) - gt.global_pose).abs().mean()) * deg
    exp_k = gt.expression.var(0) > 0
    shape_k = gt.shape.var(0) > 0
    return ParameterErrors(
        pose_deg=pose, pose_mean_deg=pose_mean, pose_ratio=pose / pose_mean if pose_mean > 0 else float("nan"),
        yaw_corr=_corr(pred.global_pose[:, 1], gt.global_pose[:, 1]),
        jaw_open_deg=float((pred.jaw_pose[:, 0] - gt.jaw_pose[:, 0]).abs().mean()) * deg,
        jaw_corr=_corr(pred.jaw_pose[:, 0], gt.jaw_pose[:, 0]),
        jaw_r2=_r2(pred.jaw_pose[:, 0], gt.jaw_pose[:, 0]),
        expression_r2=_r2(pred.expression[:, exp_k], gt.expression[:, exp_k]),
        expression_rmse=float((pred.expression - gt.expression).pow(2).mean().sqrt()),
        eyelid_r2=_r2(pred.eyelids, gt.eyelids),
        shape_r2=_r2(pred.shape[:, shape_k], gt.shape[:, shape_k]))


@torch.no_grad()
def predict(encoder: nn.Module, images: Callable[[Tensor], Tensor] | Tensor, n: Optional[int] = None,
            chunk: int = 128) -> FlameParams:
    """The encoder's predictions (in eval mode; its mode is restored) for N images.

    images: (N, 3, H, W) float in [0, 1], or a function from (n,) indices to such a batch (e.g.
    :meth:`RenderedFaces.float_images`, so uint8 sets are converted a chunk at a time) with ``n``.
    """
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    if isinstance(images, Tensor):
        n, get = images.shape[0], (lambda idx: images[idx])
    else:
        get = images
    outs = [encoder(get(torch.arange(i, min(i + chunk, n))).to(device)) for i in range(0, n, chunk)]
    encoder.train(was_training)
    return FlameParams.cat(outs).to("cpu")


def constant_prediction(gt: FlameParams, value: FlameParams) -> FlameParams:
    """Every item answered with ``value`` (one row with (1, ...) fields)."""
    return FlameParams(**{f.name: getattr(value, f.name).expand_as(getattr(gt, f.name)) for f in fields(gt)})


def mean_prediction(gt: FlameParams) -> FlameParams:
    """The dataset-mean predictor: every item answered with the set's mean parameters (the best
    constant answer; R² 0 and pose ratio 1 by construction)."""
    return constant_prediction(gt, gt.map(lambda x: x.mean(0, keepdim=True)))


#: Columns of :func:`errors_table` (a :class:`ParameterErrors` field each).
TABLE_COLUMNS = ("pose_deg", "pose_ratio", "yaw_corr", "jaw_open_deg", "jaw_r2", "expression_r2", "eyelid_r2",
                 "shape_r2")


def errors_table(rows: dict[str, ParameterErrors], columns=TABLE_COLUMNS, digits: int = 3) -> str:
    """A markdown table: one row per predictor, one column per figure."""
    lines = ["| predictor | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, e in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{getattr(e, c):.{digits}f}" for c in columns) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class LearningCurve:
    """The held-out figures of a pretraining run against its training time (``log.csv``).

    step, minutes: (K,) at the K scored steps; the other fields: (K,) figures of
    :class:`ParameterErrors` of the same name.
    """

    step: np.ndarray
    minutes: np.ndarray
    pose_ratio: np.ndarray
    jaw_r2: np.ndarray
    expression_r2: np.ndarray
    eyelid_r2: np.ndarray
    shape_r2: np.ndarray


def read_learning_curve(log: Path) -> LearningCurve:
    """The scored rows of a :class:`Pretrainer`'s ``log.csv``."""
    log = Path(log)
    if not log.is_file():
        raise FileNotFoundError(f"no pretraining log at {log}; a run of tempsmirk.training.pretrain writes one")
    with open(log, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("pose_ratio")]
    col = lambda k: np.array([float(r[k]) for r in rows])  # noqa: E731
    return LearningCurve(step=col("step").astype(int), minutes=col("minutes"), pose_ratio=col("pose_ratio"),
                         jaw_r2=col("jaw_r2"), expression_r2=col("expression_r2"), eyelid_r2=col("eyelid_r2"),
                         shape_r2=col("shape_r2"))


# ---------------------------------------------------------------------------- training

#: Columns of ``log.csv``: step, training minutes so far, learning rate, loss terms, and the
#: held-out figures on the rows where they were computed (empty otherwise).
PRETRAIN_LOG_FIELDS = (["step", "minutes", "lr"] + [f"loss_{f.name}" for f in fields(PretrainTerms)]
                       + [f.name for f in fields(ParameterErrors)])


def _lr_factor(step: int, steps: int, warmup: int, final: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, steps - warmup))
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t))


def _augment(image: Tensor, cfg: PretrainConfig, g: torch.Generator) -> Tensor:
    """Photometric jitter per image (labels unchanged): brightness, contrast, saturation, noise."""
    n = image.shape[0]
    if cfg.brightness or cfg.contrast or cfg.saturation:
        def draw(r: float) -> Tensor:
            return 1 + r * (torch.rand(n, generator=g) * 2 - 1)
        image = colour_jitter(image, draw(cfg.brightness), draw(cfg.contrast), draw(cfg.saturation))
    if cfg.pixel_noise:
        image = (image + torch.randn(image.shape, generator=g).to(image) * cfg.pixel_noise).clamp(0, 1)
    return image


class Pretrainer:
    """Trains an encoder's branches on ground truth (module docstring); resumable, logged.

    A run folder holds ``last.pt`` (step, encoder, standardised heads, helper, optimiser,
    elapsed minutes; written atomically every ``checkpoint_every`` steps and at the end),
    ``log.csv`` (:data:`PRETRAIN_LOG_FIELDS`: the learning curve). Data order and augmentation
    are pure functions of (seed, step), so a resumed run continues exactly where it stopped.

    Args:
        cfg: :class:`~tempsmirk.config.PretrainConfig`.
        encoder: a :class:`SmirkEncoder` (trained in place; its device is used).
        faces: the training faces (:class:`RenderedFaces`, ground truth included).
        run_dir: the run folder.
        held_out: faces to score every ``cfg.eval_every`` steps (None: no figures).
        seed: data order and augmentation draws.
        resume: continue from ``run_dir/last.pt`` when it exists (without it, an existing state
            is refused rather than overwritten).
        progress: show a progress bar.
    """

    def __init__(self, cfg: PretrainConfig, encoder: SmirkEncoder, faces: RenderedFaces, run_dir: Path,
                 held_out: Optional[RenderedFaces] = None, seed: int = 0, resume: bool = True,
                 progress: bool = True) -> None:
        unknown = [b for b in cfg.branches if b not in BRANCHES]
        if unknown or not cfg.branches:
            raise ValueError(f"pretrain.branches must name at least one of {BRANCHES}; got {cfg.branches}")
        if faces.params.expression.shape[1] != encoder.n_exp or faces.params.shape.shape[1] != encoder.n_shape:
            raise ValueError(f"the faces have {faces.params.expression.shape[1]} expression and "
                             f"{faces.params.shape.shape[1]} shape coefficients; the encoder predicts "
                             f"{encoder.n_exp} and {encoder.n_shape}")
        self.cfg, self.encoder, self.faces, self.held_out = cfg, encoder, faces, held_out
        self.run_dir, self.seed, self.progress = Path(run_dir), seed, progress
        self.branches = tuple(b for b in BRANCHES if b in cfg.branches)
        # The shape head read out of the expression backbone (gradient stopped), which the shape
        # branch receives at the end: an identity estimate at the cost of one Linear layer.
        self.shape_probe = cfg.shape_probe and "shape" not in self.branches and "expression" in self.branches
        self.heads_trained = self.branches + (("shape",) if self.shape_probe else ())
        self.device = next(encoder.parameters()).device
        self.memory = torch.channels_last if cfg.channels_last else torch.contiguous_format
        targets = head_values(faces.params)
        stats = [HeadValues(**{b: fn(targets.of(b)) for b in BRANCHES}) for fn in
                 (lambda t: t.mean(0), lambda t: t.std(0))]
        self.heads = StandardisedHeads(encoder, *stats, generator=torch.Generator().manual_seed(seed))
        self.helper = None
        if cfg.pose_helper and "expression" in self.branches:
            c = head_layer(encoder, "expression").in_features
            self.helper = nn.Linear(c, 6).to(self.device)
            with torch.no_grad():
                self.helper.weight.mul_(0.01)
                self.helper.bias.zero_()
        params = [p for b in self.branches for p in encoder.branch(b).encoder.parameters()]
        params += [self.heads.weight[b] for b in self.heads_trained] + [self.heads.bias[b] for b in self.heads_trained]
        if self.helper is not None:
            params += list(self.helper.parameters())
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.step, self.minutes = 0, 0.0
        self.state_path, self.log_path = self.run_dir / "last.pt", self.run_dir / "log.csv"
        if self.state_path.is_file():
            if not resume:
                raise FileExistsError(f"{self.run_dir} already holds a pretraining state; resume it or choose "
                                      f"another folder")
            self._load()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._init_log()

    # ----------------------------------------------------------------- state
    def state(self) -> dict:
        return {"format": PRETRAIN_FORMAT, "step": self.step, "minutes": self.minutes,
                "encoder": self.encoder.state_dict(), "heads": self.heads.state_dict(),
                "helper": None if self.helper is None else self.helper.state_dict(),
                "optimizer": self.optimizer.state_dict()}

    def _load(self) -> None:
        state = torch.load(self.state_path, map_location=self.device, weights_only=True)
        if not isinstance(state, dict) or state.get("format") != PRETRAIN_FORMAT:
            raise ValueError(f"{self.state_path} is not a pretraining state (format {PRETRAIN_FORMAT!r}); "
                             f"delete it to start the run again")
        self.encoder.load_state_dict(state["encoder"])
        self.heads.load_state_dict(state["heads"])
        if self.helper is not None and state["helper"] is not None:
            self.helper.load_state_dict(state["helper"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.minutes = int(state["step"]), float(state["minutes"])

    def save(self) -> Path:
        atomic_torch_save(self.state(), self.state_path)
        return self.state_path

    def _init_log(self) -> None:
        rows = []
        if self.log_path.is_file():
            with open(self.log_path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= self.step]
        with open(self.log_path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=PRETRAIN_LOG_FIELDS)
            w.writeheader()
            w.writerows(rows)

    def _log(self, terms: PretrainTerms, lr: float, errors: Optional[ParameterErrors]) -> None:
        row = {"step": self.step, "minutes": round(self.minutes, 3), "lr": lr,
               **{f"loss_{k}": round(v, 5) for k, v in terms.as_floats().items()}}
        if errors is not None:
            row.update({k: round(v, 5) for k, v in errors.as_floats().items()})
        with open(self.log_path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=PRETRAIN_LOG_FIELDS).writerow(row)

    # ----------------------------------------------------------------- training
    def folded_encoder(self) -> SmirkEncoder:
        """The encoder with the trained heads folded into SMIRK's Linear layers (and, with the
        shape probe, the expression backbone copied into the shape branch)."""
        if self.shape_probe:
            self.encoder.shape_encoder.encoder.load_state_dict(self.encoder.expression_encoder.encoder.state_dict())
        return self.heads.fold_into(self.encoder, self.heads_trained)

    def evaluate(self) -> Optional[ParameterErrors]:
        """Figures on the held-out faces (None without them)."""
        if self.held_out is None:
            return None
        encoder = self.folded_encoder()
        pred = predict(encoder, lambda idx: self.held_out.float_images(idx).contiguous(memory_format=self.memory),
                       len(self.held_out))
        return parameter_errors(pred, self.held_out.params)

    def train_step(self, index: Tensor) -> PretrainTerms:
        """One optimiser step on the faces ``index`` (B,)."""
        cfg = self.cfg
        g = torch.Generator().manual_seed(item_seed(self.seed, -(10 ** 7) - self.step))
        image = _augment(self.faces.float_images(index), cfg, g)
        image = image.to(self.device).contiguous(memory_format=self.memory)
        truth = head_values(self.faces.params[index])
        target = self.heads.standardise(HeadValues(
            **{b: truth.of(b).to(self.device) if b in self.heads_trained else None for b in BRANCHES}))
        self.encoder.train()
        features = pooled_features(self.encoder, image, self.branches)
        if self.shape_probe:
            features = HeadValues(pose=features.pose, shape=features.expression.detach(),
                                  expression=features.expression)
        z = self.heads(features)
        helper = self.helper(features.expression) if self.helper is not None else None
        terms = pretrain_loss(z, target, self.heads, self.encoder.n_exp, cfg, helper)
        if not torch.isfinite(terms.total):
            raise FloatingPointError(f"pretraining step {self.step}: non-finite loss {terms.as_floats()}; the "
                                     f"last state {self.state_path} is intact. Lower pretrain.lr.")
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        self.optimizer.step()
        return terms

    def train(self, until: Optional[int] = None) -> SmirkEncoder:
        """Train up to step ``until`` (default ``cfg.steps``) from the resumed step; the state is
        saved at the end. Returns the encoder with the heads folded in."""
        from tempsmirk.training.trainer import StepBatches

        cfg = self.cfg
        end = cfg.steps if until is None else min(until, cfg.steps)
        self.encoder.to(memory_format=self.memory)
        batches = StepBatches(len(self.faces), cfg.batch_size, self.seed, self.step, end)
        bar = tqdm(total=end, initial=self.step, desc="pretraining", disable=not self.progress,
                   dynamic_ncols=True)
        try:
            for index in batches:
                tic = time.perf_counter()
                lr = cfg.lr * _lr_factor(self.step, cfg.steps, cfg.warmup_steps, cfg.final_lr_scale)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                terms = self.train_step(torch.as_tensor(index))
                self.step += 1
                self.minutes += (time.perf_counter() - tic) / 60
                last = self.step == cfg.steps
                scored = (cfg.eval_every and self.step % cfg.eval_every == 0) or last
                self._log(terms, lr, self.evaluate() if scored else None)
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and self.step < end:
                    self.save()
                bar.update(1)
                bar.set_postfix(loss=f"{float(terms.total.detach()):.3g}")
        finally:
            bar.close()
        if batches.start < end:
            self.save()
        encoder = self.folded_encoder()
        return encoder.to(memory_format=torch.contiguous_format)


# ---------------------------------------------------------------------------- the stages


def training_faces(cfg: Config, flame=None, progress: bool = False) -> RenderedFaces:
    """The pretraining faces of a config (``data.synthetic``, ``pretrain.n_items`` and
    ``group_size``), rendered once and cached (:func:`~tempsmirk.data.rendered.cached_face_set`)."""
    from tempsmirk.data.rendered import cached_face_set
    from tempsmirk.flame import load_flame

    m, p = cfg.model, cfg.pretrain
    flame = flame if flame is not None else load_flame(m.flame_path, m.n_shape, m.n_exp)
    return cached_face_set(flame, cfg.data.synthetic, p.n_items, p.group_size, p.render_workers, progress=progress)


def held_out_faces(cfg: Config, n_items: Optional[int] = None, flame=None) -> RenderedFaces:
    """Held-out faces of a config: its distribution with data seed ``pretrain.eval_seed`` and one
    appearance per face — :class:`~tempsmirk.data.SyntheticFaces`'s items, stored as uint8."""
    from tempsmirk.data.rendered import cached_face_set
    from tempsmirk.flame import load_flame

    m = cfg.model
    flame = flame if flame is not None else load_flame(m.flame_path, m.n_shape, m.n_exp)
    syn = replace(cfg.data.synthetic, seed=cfg.pretrain.eval_seed, clip_length=0)
    return cached_face_set(flame, syn, n_items or cfg.pretrain.eval_items, group_size=1,
                           workers=cfg.pretrain.render_workers)


def train_stages(cfg: Config, resume: bool = False, progress: bool = True) -> Path:
    """Supervised pretraining (when ``pretrain.steps`` > 0), then SMIRK's objective through
    :class:`~tempsmirk.training.Trainer` from its encoder (when ``train.steps`` > 0), in
    ``run.dir``: ``pretrain/`` (state, ``log.csv``), ``pretrained.pt`` (SMIRK layout, with a
    freshly initialised generator), ``smirk/`` (the Trainer's run folder). Returns the final SMIRK
    checkpoint. Each stage resumes where it stopped with ``resume``; without it a folder that
    already holds a stage's state is refused.
    """
    from tempsmirk.flame import load_flame
    from tempsmirk.seeding import seed_everything
    from tempsmirk.smirk import SmirkGenerator
    from tempsmirk.smirk.checkpoint import save_smirk_checkpoint
    from tempsmirk.training.trainer import Trainer

    run_dir, m = Path(cfg.run.dir), cfg.model
    pre_dir, smirk_dir = run_dir / "pretrain", run_dir / "smirk"
    if not resume:
        for state in (pre_dir / "last.pt", smirk_dir / "checkpoints" / "last.pt"):
            if state.exists():
                raise FileExistsError(f"{run_dir} already holds a training state ({state}); pass --resume to "
                                      f"continue it or choose another run.dir")
    if cfg.pretrain.steps <= 0 and cfg.train.steps <= 0:
        raise ValueError("nothing to train: set pretrain.steps or train.steps > 0")
    start, faces = None, None
    if cfg.pretrain.steps > 0:
        flame = load_flame(m.flame_path, m.n_shape, m.n_exp)
        faces = training_faces(cfg, flame, progress)
        held_out = held_out_faces(cfg, flame=flame)
        seed_everything(cfg.run.seed)
        encoder = SmirkEncoder(n_exp=m.n_exp, n_shape=m.n_shape)
        generator = SmirkGenerator()
        device = torch.device("cuda" if cfg.train.device == "auto" and torch.cuda.is_available()
                              else ("cpu" if cfg.train.device == "auto" else cfg.train.device))
        pre = Pretrainer(cfg.pretrain, encoder.to(device), faces, pre_dir, held_out, seed=cfg.run.seed,
                         resume=True, progress=progress)
        encoder = pre.train().cpu()
        start = run_dir / "pretrained.pt"
        save_smirk_checkpoint(start, encoder, generator)
    if cfg.train.steps > 0:
        model = m if start is None else replace(m, init_checkpoint=str(start))
        smirk_cfg = replace(cfg, model=model, run=replace(cfg.run, dir=str(smirk_dir)))
        trainer = Trainer(smirk_cfg, resume=(smirk_dir / "checkpoints" / "last.pt").is_file(), dataset=faces,
                          progress=progress)
        trainer.train()
        start = smirk_dir / "smirk.pt"
    return start
