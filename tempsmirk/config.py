"""The project's one configuration system: nested dataclasses, YAML files, ``key=value`` overrides.

Explained in chapter 3. :func:`load_config` merges a YAML file and dotted overrides onto the
:class:`Config` schema with OmegaConf structured configs, so a misspelt key or a wrong type fails
with the key named; :func:`save_config` writes the resolved config beside every run. Library
functions take one section (e.g. ``cfg.loss.masking``), never the whole tree.

Sections: ``data``, ``model``, ``loss``, ``optim``, ``train``, ``run``, ``temporal`` (chapter 5).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional, Sequence, Union

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tempsmirk.data.build import DataConfig
from tempsmirk.losses import LossWeights
from tempsmirk.meshio import atomic_write_bytes
from tempsmirk.smirk.cycle import CycleConfig
from tempsmirk.smirk.masking import MaskingConfig
from tempsmirk.temporal import TemporalWeights

__all__ = ["Config", "DataConfig", "ModelConfig", "LossConfig", "OptimConfig", "TrainConfig",
           "RunConfig", "TemporalConfig", "ConfigError", "load_config", "apply_overrides", "save_config",
           "config_to_yaml", "config_from_yaml"]

PathLike = Union[str, os.PathLike]


class ConfigError(ValueError):
    """A config file or override does not fit the schema."""


@dataclass
class ModelConfig:
    """flame_path: FLAME model file or asset folder, e.g. SMIRK's ``assets/`` (None = built-in head;
    :func:`tempsmirk.flame.load_flame`). n_exp, n_shape: coefficients predicted. frozen: encoder branches that do not
    train (SMIRK freezes ``shape`` when starting from a pretrained encoder). init_checkpoint:
    SMIRK-layout weights to start from. init_required: the run fine-tunes a trained SMIRK, so
    training refuses to start without ``init_checkpoint`` (set by the fine-tuning presets).
    vgg_path: local VGG16 weights for the perceptual loss. emotion_path: EMOCA's ResNet-50 emotion
    checkpoint for the emotion loss."""

    flame_path: Optional[str] = None
    n_exp: int = 50
    n_shape: int = 300
    frozen: list[str] = field(default_factory=list)
    init_checkpoint: Optional[str] = None
    init_required: bool = False
    vgg_path: Optional[str] = None
    emotion_path: Optional[str] = None


@dataclass
class LossConfig:
    """weights: :class:`~tempsmirk.losses.LossWeights` (defaults: SMIRK's core training,
    documented there; ``weights.cycle`` = 0 switches the cycle pass off). masking: what the
    generator sees (:class:`~tempsmirk.smirk.masking.MaskingConfig`). cycle_path: the augmented
    cycle's templates (:class:`~tempsmirk.smirk.cycle.CycleConfig`)."""

    weights: LossWeights = field(default_factory=LossWeights)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    cycle_path: CycleConfig = field(default_factory=CycleConfig)


@dataclass
class OptimConfig:
    """Two Adam optimisers, both stepping on every iteration's first pass; the encoder's learning
    rate is ``encoder_lr_scale · lr``. One cosine decay to ``final_lr_scale · lr`` over
    ``train.steps`` iterations, after an optional linear warm-up of ``warmup_steps`` (0 in SMIRK,
    which starts from pretrained backbones; from scratch, a warm-up keeps Adam's first large
    steps from saturating the clamped eyelid and jaw outputs). The generator's gradient of the
    cycle pass is clipped to norm ``generator_clip`` (SMIRK: 0.1; None or 0 = off)."""

    lr: float = 1e-3
    encoder_lr_scale: float = 0.25
    encoder_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    generator_betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    final_lr_scale: float = 0.01
    warmup_steps: int = 0
    generator_clip: Optional[float] = 0.1


@dataclass
class TrainConfig:
    """steps: training iterations (the cosine schedule spans them). Each iteration is SMIRK's
    two passes: the reconstruction path updates both networks, then the cycle path updates the
    generator on even iterations and the encoder on odd ones. amp: mixed precision, used only on
    CUDA. device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``. Intervals are in
    iterations (0 = never, except that a checkpoint is always written at the end)."""

    steps: int = 1000
    batch_size: int = 32
    amp: bool = True
    device: str = "auto"
    log_every: int = 10
    image_every: int = 200
    checkpoint_every: int = 500


@dataclass
class RunConfig:
    """dir: the run folder (config, checkpoints, log.csv, images); required. seed: global seed
    (data order, masking and cycle draws). deterministic: ask torch for deterministic kernels."""

    dir: str = MISSING
    seed: int = 0
    deterministic: bool = False


@dataclass
class TemporalConfig:
    """The temporal terms of eq. (5), added to the SMIRK loss on clip batches (chapter 5).

    enabled: add them (off by default: single-image SMIRK training is unchanged; on clip data the
        terms are still computed and logged, with weight 0 — the non-temporal baseline).
    weights: :class:`~tempsmirk.temporal.TemporalWeights` — the smoothness (eq. 3) weight per
        parameter group (``pose`` = the global head pose), the identity (eq. 4) weight, and the
        ``reduction`` they are meant for: ``mean`` — each term an element mean over its parameter
        dimensions, as in the code that produced the paper's Table 2, for which the reference
        weights were tuned; or ``sum`` — eqs. (3)–(4) as printed, D times stronger at the same
        weights (50× expression, 300× identity). See :mod:`tempsmirk.temporal`.
    Defaults: the paper's reference weights with the reduction they were tuned for.
    """

    enabled: bool = False
    weights: TemporalWeights = field(default_factory=TemporalWeights)

    def active_weights(self) -> TemporalWeights:
        """The weights added to the loss: ``weights`` when enabled, all zero (same reduction)
        otherwise."""
        return self.weights if self.enabled else self.weights.scaled(0.0)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)


#: Keys of earlier versions of this schema -> where they live now (named in the error for them).
_MOVED = {**{f"loss.{f.name}": f"loss.weights.{f.name}" for f in fields(LossWeights)},
          **{f"temporal.{f.name}": f"temporal.weights.{f.name}" for f in fields(TemporalWeights)},
          "loss.cycle_path.enabled": "loss.weights.cycle (0 switches the cycle off)"}


def _sections(node: DictConfig, prefix: str = ""):
    """(dotted key, node) of every section (DictConfig) below ``node``, depth first."""
    for key in node:
        child = OmegaConf.select(node, str(key), throw_on_missing=False)
        if isinstance(child, DictConfig):
            yield from _sections(child, f"{prefix}{key}.")
            yield f"{prefix}{key}", child


def _schema(base) -> DictConfig:
    """``base`` (the :class:`Config` class or an instance) as a structured config whose every
    section accepts a merge: a frozen dataclass section (the loss and temporal weights) is
    read-only in OmegaConf, and OmegaConf before 2.4 refuses to merge a file into it."""
    schema = OmegaConf.structured(base)
    OmegaConf.set_readonly(schema, None)
    for _, section in _sections(schema):
        OmegaConf.set_readonly(section, None)
    return schema


def _merge(sources: Sequence, base=Config) -> Config:
    try:
        merged = OmegaConf.merge(_schema(base), *sources)
        missing = sorted(OmegaConf.missing_keys(merged))
        if missing:
            raise ConfigError(f"config: no value for required key(s) {missing}; set them in the file "
                              f"or on the command line, e.g. run.dir=/path/to/run")
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        moved = f" ({key} is now {_MOVED[key]})" if key in _MOVED else ""
        raise ConfigError(f"config: {exc}.{moved} Keys and types are those of tempsmirk.config.Config "
                          f"(see the example under tempsmirk/configs/).") from None
    try:
        return OmegaConf.to_object(merged)
    except ValueError as exc:  # a section's own check (__post_init__) refused a value
        where = next((key for key, section in _sections(merged) if _refuses(section)), "config")
        raise ConfigError(f"{where}: {exc}") from None


def _refuses(section: DictConfig) -> bool:
    try:
        OmegaConf.to_object(section)
    except ValueError:
        return True
    return False


def load_config(path: Optional[PathLike] = None, overrides: Sequence[str] = ()) -> Config:
    """Schema defaults <- YAML file (optional) <- ``key=value`` overrides. Raises :class:`ConfigError`
    naming the offending key for unknown keys, wrong types or a missing ``run.dir``."""
    sources = []
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist; see tempsmirk/configs/ for examples")
        try:
            sources.append(OmegaConf.load(path))
        except Exception as exc:  # YAML syntax errors come in several classes
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"overrides must look like key=value (e.g. train.steps=100); got {bad}")
    try:
        sources.append(OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"overrides {list(overrides)}: {exc}") from None
    return _merge(sources)


def apply_overrides(cfg: Config, overrides: Sequence[str]) -> Config:
    """``cfg`` with ``key=value`` overrides applied, validated as :func:`load_config` validates."""
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"overrides must look like key=value (e.g. train.steps=100); got {bad}")
    try:
        source = OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"overrides {list(overrides)}: {exc}") from None
    return _merge([source], base=cfg)


def config_to_yaml(cfg: Config) -> str:
    """The resolved config as YAML (every key, defaults included)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def config_from_yaml(text: str) -> Config:
    """Inverse of :func:`config_to_yaml` (validated against the schema)."""
    return _merge([OmegaConf.create(text)])


def save_config(cfg: Config, path: PathLike) -> Path:
    """Write the resolved config as YAML, atomically. Returns the path."""
    path = Path(path)
    atomic_write_bytes(path, config_to_yaml(cfg).encode())
    return path
