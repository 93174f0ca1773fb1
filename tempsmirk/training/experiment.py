"""Fine-tuning experiments measured on held-out clips: chapter 5's temporal vs non-temporal runs,
and augmentation drawn once per clip vs per frame.

From one starting SMIRK checkpoint and with the same budget — the same steps, the same clip
batches (data order is a function of the seed and the step, :class:`StepBatches`), the same
masking draws — fine-tune once per :class:`Condition` and seed; conditions differ only in the
factor on the temporal weights (0 = the non-temporal baseline, whose temporal terms are still
logged) and in the config overrides they name (e.g. :data:`AUGMENTATION_CONDITIONS`: the
augmentation drawn per clip or per frame). Every run is then evaluated on the same held-out
clips (never augmented) with :func:`tempsmirk.temporal.jitter_report`: per-frame parameter and
vertex error next to acceleration error, jitter and identity variance. Real clips (MEAD) have no
ground truth, so only jitter and identity variance are reported for them. The table and the
verdict in words are :mod:`tempsmirk.training.report`'s.

Runs are **cached**: each finished run's result is stored under
``cache_dir("experiments", <hash>)``, the hash covering the resolved run config, the starting
checkpoint's bytes, the evaluation clips and :data:`EXPERIMENT_VERSION`. A repeated call trains
nothing; an interrupted run resumes from its last checkpoint. The experiment drives the
:class:`~tempsmirk.training.Trainer`, so like the trainer it takes the whole config (as the
template of every run).

Shapes: B clips, T frames.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from tempsmirk.atomic import atomic_path
from tempsmirk.cachekey import cache_key, file_digest, fingerprint
from tempsmirk.config import Config, ConfigError, apply_overrides, config_to_yaml, load_config
from tempsmirk.data.augmentation import ClipAugmentation
from tempsmirk.data.clips import MeadClips
from tempsmirk.data.synthetic import SyntheticFaces
from tempsmirk.data.types import collate_faces
from tempsmirk.flame.params import FlameParams
from tempsmirk.paths import cache_dir, repo_root
from tempsmirk.smirk.checkpoint import load_smirk_checkpoint, save_smirk_checkpoint
from tempsmirk.smirk.encoder import SmirkEncoder
from tempsmirk.temporal import JitterReport, clip_params, jitter_report, pose_normalised_vertices

__all__ = ["EXPERIMENT_VERSION", "FINETUNE_PROFILES", "AUGMENTATION_CONDITIONS", "Condition", "EvalSpec",
           "ExperimentSpec", "with_augmentation", "EvalClips", "TrainingLog", "RunResult", "ExperimentResult",
           "metric_value", "finetune_config", "eval_clips", "predict_clips", "evaluate", "run_condition",
           "run_experiment"]

#: Bumped when what a cached result means changes (evaluation, metrics, training code semantics).
EXPERIMENT_VERSION = 2
#: Fine-tuning profiles: ``small`` runs on a CPU in CI; ``full`` is the GPU profile; ``fork`` the
#: settings of the code behind the paper's Table 2 (chapter 5).
FINETUNE_PROFILES = {"small": "temporal_finetune_small.yaml", "full": "temporal_finetune_full.yaml",
                     "fork": "temporal_finetune_fork.yaml"}

@dataclass(frozen=True)
class Condition:
    """One arm of the experiment: a name, the factor on the config's temporal weights (0 =
    non-temporal: the terms are logged, not added) and ``key=value`` config overrides of its own
    (e.g. ``data.synthetic.augmentation.per_frame=true``)."""

    name: str
    scale: float
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (self.scale >= 0 and math.isfinite(self.scale)):
            raise ValueError(f"Condition {self.name!r}: scale must be finite and >= 0; got {self.scale}")
        bad = [o for o in self.overrides if "=" not in o]
        if isinstance(self.overrides, str) or bad:
            raise ValueError(f"Condition {self.name!r}: overrides must be a tuple of key=value strings; "
                             f"got {self.overrides!r}")


def _per_frame(on: bool) -> tuple[str, ...]:
    return tuple(f"data.{src}.augmentation.per_frame={str(on).lower()}" for src in ("synthetic", "mead"))


#: The augmentation arms of chapter 5: the temporal recipe with the training augmentation drawn once
#: per clip (ours) or anew for every frame (the code behind the paper's Table 2).
AUGMENTATION_CONDITIONS = (Condition("per-clip augmentation", 1.0, _per_frame(False)),
                           Condition("per-frame augmentation", 1.0, _per_frame(True)))


def with_augmentation(cfg: Config, augmentation: ClipAugmentation) -> Config:
    """``cfg`` with the training augmentation ``augmentation`` switched on for both data sources
    (synthetic and MEAD clips)."""
    data = replace(cfg.data, synthetic=replace(cfg.data.synthetic, augment=True, augmentation=augmentation),
                   mead=replace(cfg.data.mead, augment=True, augmentation=augmentation))
    return replace(cfg, data=data)


@dataclass(frozen=True)
class EvalSpec:
    """The held-out clips every run is evaluated on.

    n_clips, clip_length: B clips of T frames (T >= 4 for the jerk metric).
    seed: synthetic data seed of the held-out clips (their item seeds differ from the
        training items'); for MEAD, windows are spread evenly over ``split``.
    split: the MEAD split evaluated (real data only).
    """

    n_clips: int = 6
    clip_length: int = 16
    seed: int = 10_001
    split: str = "test"


@dataclass(frozen=True)
class ExperimentSpec:
    """What to run: every condition in ``conditions`` for every seed, and every condition in
    ``single_seed`` (e.g. a too-large λ) for the first seed only."""

    seeds: tuple[int, ...] = (0, 1, 2)
    conditions: tuple[Condition, ...] = (Condition("non-temporal", 0.0), Condition("temporal", 1.0))
    single_seed: tuple[Condition, ...] = (Condition("temporal, λ × 100", 100.0),)
    eval: EvalSpec = field(default_factory=EvalSpec)


def finetune_config(profile: str = "small", overrides: Sequence[str] = ()) -> Config:
    """The fine-tuning config of a profile (:data:`FINETUNE_PROFILES`, files in
    ``tempsmirk/configs``) with ``overrides``; ``run.dir`` is a placeholder (runs set their own)."""
    if profile not in FINETUNE_PROFILES:
        raise ValueError(f"profile must be one of {sorted(FINETUNE_PROFILES)}; got {profile!r}")
    path = repo_root() / "tempsmirk" / "configs" / FINETUNE_PROFILES[profile]
    return load_config(path, ["run.dir=unset", *overrides])


# ---------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class EvalClips:
    """Held-out clips: images (B, T, 3, H, W) in [0, 1]; target (B, T, ...) ground-truth
    parameters and target_vertices (B, T, V, 3) their pose-normalised vertices, or None (real
    data); source: a short description."""

    images: Tensor
    target: Optional[FlameParams]
    target_vertices: Optional[Tensor]
    source: str

    @property
    def fingerprint(self) -> str:
        """A hash of the images and targets (part of every cache key)."""
        targets = [] if self.target is None else list(self.target.as_dict().values())
        return fingerprint(self.source, self.images, *targets)


def eval_clips(cfg: Config, spec: EvalSpec, flame) -> EvalClips:
    """The held-out clips for ``cfg.data.source``: synthetic clips drawn like the training clips
    (same sizes, ranges and nuisances; no training augmentation) from ``spec.seed``, or MEAD
    windows of ``spec.split`` without augmentation."""
    t = spec.clip_length
    if cfg.data.source == "mead":
        mead = replace(cfg.data.mead, split=spec.split, augment=False, clip_length=t, stride=t)
        data = MeadClips(mead, flame.mp_indices.cpu())
        pick = np.unique(np.linspace(0, len(data) - 1, spec.n_clips).round().astype(int))
        batch = collate_faces([data[int(i)] for i in pick])
        return EvalClips(batch.image, None, None, f"{len(pick)} MEAD {spec.split} windows of {t} frames")
    syn = replace(cfg.data.synthetic, seed=spec.seed, clip_length=t, n_items=spec.n_clips, augment=False)
    data = SyntheticFaces(flame, syn)
    batch = collate_faces([data[i] for i in range(spec.n_clips)])
    with torch.no_grad():
        vertices = pose_normalised_vertices(flame, batch.params.to(flame.v_template.device)).cpu()
    return EvalClips(batch.image, batch.params, vertices,
                     f"{spec.n_clips} held-out synthetic clips of {t} frames (seed {spec.seed})")


@torch.no_grad()
def predict_clips(encoder: SmirkEncoder, images: Tensor, chunk: int = 64) -> FlameParams:
    """Encode (B, T, 3, H, W) clips frame by frame in eval mode (``chunk`` frames at a time):
    -> (B, T, ...) fields on the CPU."""
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    b, t = images.shape[:2]
    frames = images.reshape(b * t, *images.shape[2:])
    out = FlameParams.cat(encoder(frames[i:i + chunk].to(device)).to("cpu") for i in range(0, b * t, chunk))
    encoder.train(was_training)
    return clip_params(out, t)


def evaluate(encoder: SmirkEncoder, flame, clips: EvalClips) -> tuple[JitterReport, FlameParams]:
    """Predict the clips and summarise them (with the ground truth where there is one)."""
    pred = predict_clips(encoder, clips.images)
    device = flame.v_template.device
    target = None if clips.target is None else clips.target.to(device)
    tv = None if clips.target_vertices is None else clips.target_vertices.to(device)
    return jitter_report(pred.to(device), flame, target, tv), pred


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class TrainingLog:
    """A run's ``log.csv`` as a table: columns and (N, C) float values (the ``trained`` column
    dropped). ``log["total"]`` is one column as an (N,) array."""

    columns: tuple[str, ...]
    values: np.ndarray

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.columns:
            raise KeyError(f"no column {name!r} in the training log; it has {list(self.columns)}")
        return self.values[:, self.columns.index(name)]

    @staticmethod
    def read(path: Path) -> "TrainingLog":
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        cols = tuple(c for c in (rows[0].keys() if rows else ()) if c != "trained")
        return TrainingLog(cols, np.array([[float(r[c]) for c in cols] for r in rows], dtype=np.float64))


@dataclass(frozen=True)
class RunResult:
    """One evaluated encoder.

    condition, scale: its :class:`Condition` (``"start"`` and NaN for the starting checkpoint).
    seed: the training seed (-1 for the start). report: :class:`JitterReport` on the held-out
    clips. predictions: (B, T, ...) its parameters for them. log: the training log (None for the
    start). seconds: wall-clock training time when it ran (0 for the start). weights: the
    fine-tuned encoder (a SMIRK-layout file without the generator, for
    :func:`~tempsmirk.smirk.load_smirk_checkpoint`), or the starting checkpoint for the start.
    """

    condition: str
    scale: float
    seed: int
    report: JitterReport
    predictions: FlameParams
    log: Optional[TrainingLog]
    seconds: float
    weights: Optional[Path] = None

    def _state(self) -> dict:
        return {"condition": self.condition, "scale": self.scale, "seed": self.seed, "report": asdict(self.report),
                "predictions": self.predictions.as_dict(),
                "log_columns": list(self.log.columns) if self.log is not None else None,
                "log_values": torch.from_numpy(self.log.values) if self.log is not None else None,
                "seconds": self.seconds, "weights": None if self.weights is None else str(self.weights)}

    @staticmethod
    def _from_state(s: dict) -> "RunResult":
        log = None if s["log_columns"] is None else TrainingLog(tuple(s["log_columns"]), s["log_values"].numpy())
        return RunResult(s["condition"], float(s["scale"]), int(s["seed"]), JitterReport(**s["report"]),
                         FlameParams.from_dict(s["predictions"]), log, float(s["seconds"]),
                         None if s["weights"] is None else Path(s["weights"]))

    def save(self, path: Path) -> None:
        """Write atomically (a ``torch.load(weights_only=True)``-readable dict)."""
        with atomic_path(path) as tmp:
            torch.save(self._state(), tmp)

    @staticmethod
    def load(path: Path) -> "RunResult":
        return RunResult._from_state(torch.load(path, map_location="cpu", weights_only=True))


@dataclass(frozen=True)
class ExperimentResult:
    """Everything :func:`run_experiment` measured.

    start: the starting checkpoint on the held-out clips. runs: every fine-tuned run.
    truth: the ground truth's own jitter report (None for real data). average: the report of a
    model that answers the clips' average parameters for every frame — no jitter, no
    information: where over-smoothing leads (None for real data). clips: the held-out clips.
    """

    start: RunResult
    runs: tuple[RunResult, ...]
    truth: Optional[JitterReport]
    clips: EvalClips
    average: Optional[JitterReport] = None

    @property
    def conditions(self) -> tuple[str, ...]:
        """Condition names in the order they ran."""
        return tuple(dict.fromkeys(r.condition for r in self.runs))

    def of(self, condition: str) -> tuple[RunResult, ...]:
        """The runs of one condition (one per seed)."""
        runs = tuple(r for r in self.runs if r.condition == condition)
        if not runs:
            raise KeyError(f"no runs of condition {condition!r}; have {self.conditions}")
        return runs

    def values(self, condition: str, metric: str, seeds: Optional[Sequence[int]] = None) -> np.ndarray:
        """(seeds,) values of one metric in run order, or for the given ``seeds`` in their order
        (NaN where not measured)."""
        runs = {r.seed: r for r in self.of(condition)}
        order = list(runs) if seeds is None else list(seeds)
        missing = [s for s in order if s not in runs]
        if missing:
            raise KeyError(f"condition {condition!r} has no run for seed(s) {missing}; it has {list(runs)}")
        return np.array([metric_value(runs[s].report, metric) for s in order])


def metric_value(report: JitterReport, name: str) -> float:
    """One field of a :class:`~tempsmirk.temporal.JitterReport` as a float (NaN where it was not
    measured)."""
    v = getattr(report, name)
    return float("nan") if v is None else float(v)


# ---------------------------------------------------------------------------- running
def _key(*parts: str) -> str:
    return cache_key(f"v{EXPERIMENT_VERSION}", *parts)


def _run_config(cfg: Config, condition: Condition, seed: int, checkpoint: str) -> Config:
    on = condition.scale > 0
    t = cfg.temporal
    temporal = replace(t, enabled=on, weights=t.weights.scaled(condition.scale) if on else t.weights)
    out = replace(cfg, temporal=temporal, run=replace(cfg.run, seed=seed, dir="unset"),
                  model=replace(cfg.model, init_checkpoint=checkpoint))
    if not condition.overrides:
        return out
    try:
        return apply_overrides(out, condition.overrides)
    except ConfigError as exc:
        raise ConfigError(f"Condition {condition.name!r}: overrides {list(condition.overrides)} do not fit "
                          f"the config ({exc})") from None


def run_condition(cfg: Config, checkpoint: Union[str, Path], condition: Condition, seed: int, flame,
                  clips: EvalClips, root: Optional[Path] = None, progress: bool = False) -> RunResult:
    """Fine-tune from ``checkpoint`` under one condition and seed, evaluate on ``clips``; cached.

    The cache folder (under ``root``, default ``cache_dir("experiments")``) is named by a hash of
    the run's resolved config (the checkpoint by content), the clips and
    :data:`EXPERIMENT_VERSION`; it holds the run folder (config, log), ``result.pt`` and
    ``encoder.pt`` (the fine-tuned encoder; the generator and optimiser states are dropped).
    """
    from tempsmirk.training.trainer import Trainer

    checkpoint = Path(checkpoint)
    run_cfg = _run_config(cfg, condition, seed, str(checkpoint))
    hashed = replace(run_cfg, model=replace(run_cfg.model, init_checkpoint=f"sha256:{file_digest(checkpoint)}"))
    key = _key(config_to_yaml(hashed), clips.fingerprint)
    folder = (Path(root) if root is not None else cache_dir("experiments")) / f"{condition.scale:g}-seed{seed}-{key}"
    result = folder / "result.pt"
    if result.is_file():
        return replace(RunResult.load(result), condition=condition.name)
    run_cfg = replace(run_cfg, run=replace(run_cfg.run, dir=str(folder / "run")))
    trainer = Trainer(run_cfg, resume=(folder / "run" / "checkpoints" / "last.pt").is_file(), progress=progress)
    tic = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - tic
    report, pred = evaluate(trainer.encoder, flame, clips)
    weights = save_smirk_checkpoint(folder / "encoder.pt", trainer.encoder)
    out = RunResult(condition.name, condition.scale, seed, report, pred,
                    TrainingLog.read(folder / "run" / "log.csv"), seconds, weights)
    out.save(result)
    # The generator (most of the bytes) and the optimiser states are not needed after the run.
    (folder / "run" / "checkpoints" / "last.pt").unlink(missing_ok=True)
    (folder / "run" / "smirk.pt").unlink(missing_ok=True)
    return out


def _start(checkpoint: Path, cfg: Config, flame, clips: EvalClips, root: Optional[Path]) -> RunResult:
    key = _key("start", file_digest(checkpoint), str(cfg.model.n_exp), str(cfg.model.n_shape),
               clips.fingerprint, str(cfg.model.flame_path))
    path = (Path(root) if root is not None else cache_dir("experiments")) / f"start-{key}" / "result.pt"
    if path.is_file():
        return RunResult.load(path)
    encoder, _ = load_smirk_checkpoint(checkpoint, cfg.model.n_exp, cfg.model.n_shape, with_generator=False)
    report, pred = evaluate(encoder.to(flame.v_template.device), flame, clips)
    out = RunResult("start", float("nan"), -1, report, pred, None, 0.0, checkpoint)
    out.save(path)
    return out


def run_experiment(cfg: Config, checkpoint: Union[str, Path], spec: ExperimentSpec = ExperimentSpec(),
                   root: Optional[Path] = None, progress: bool = True) -> ExperimentResult:
    """Run (or load from the cache) every condition × seed of ``spec`` from ``checkpoint``.

    Args:
        cfg: the fine-tuning config every run starts from (e.g. :func:`finetune_config`); its
            ``temporal`` weights are scaled per condition and the condition's overrides applied,
            ``run.seed`` and ``run.dir`` set per run.
        checkpoint: the starting SMIRK checkpoint (same for every run).
        spec: conditions, seeds and held-out clips (:class:`ExperimentSpec`).
        root: cache folder (default ``cache_dir("experiments")``).
        progress: a progress bar over the runs.
    Explained in chapter 5.
    """
    from tempsmirk.flame import load_flame

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"starting checkpoint {checkpoint} does not exist; pass a SMIRK "
                                f"checkpoint (e.g. tempsmirk.training.demo_checkpoint())")
    if not spec.seeds:
        raise ValueError("ExperimentSpec.seeds is empty; give at least one seed")
    device = torch.device(cfg.train.device if cfg.train.device != "auto"
                          else ("cuda" if torch.cuda.is_available() else "cpu"))
    todo = [(c, s) for s in spec.seeds for c in spec.conditions] + [(c, spec.seeds[0]) for c in spec.single_seed]
    for c in dict.fromkeys(c for c, _ in todo):  # a bad override fails before anything trains
        _run_config(cfg, c, spec.seeds[0], str(checkpoint))
    flame = load_flame(cfg.model.flame_path, cfg.model.n_shape, cfg.model.n_exp).to(device)
    clips = eval_clips(cfg, spec.eval, flame)
    start = _start(checkpoint, cfg, flame, clips, root)
    runs = []
    for c, s in tqdm(todo, desc="experiment", unit="run", disable=not progress):
        runs.append(run_condition(cfg, checkpoint, c, s, flame, clips, root))
    truth = average = None
    if clips.target is not None:
        target, tv = clips.target.to(device), clips.target_vertices.to(device)
        truth = jitter_report(target, flame, target, tv)
        average = jitter_report(target.map(lambda x: x.mean((0, 1), keepdim=True).expand_as(x)), flame, target, tv)
    return ExperimentResult(start, tuple(runs), truth, clips, average)
