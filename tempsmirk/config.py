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

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tempsmirk.data.clips import MeadConfig
from tempsmirk.data.mix import FaceMixConfig
from tempsmirk.data.synthetic import SyntheticConfig
from tempsmirk.losses import LossWeights
from tempsmirk.meshio import atomic_write_bytes
from tempsmirk.smirk.cycle import CycleConfig
from tempsmirk.smirk.masking import MaskingConfig
from tempsmirk.temporal import REDUCTIONS, TEMPORAL_TERMS, TemporalWeights

__all__ = ["Config", "DataConfig", "ModelConfig", "LossConfig", "OptimConfig", "TrainConfig",
           "RunConfig", "TemporalConfig", "ConfigError", "load_config", "save_config", "config_to_yaml",
           "config_from_yaml"]

PathLike = Union[str, os.PathLike]


class ConfigError(ValueError):
    """A config file or override does not fit the schema."""


@dataclass
class DataConfig:
    """source: ``"synthetic"`` (rendered faces, ``synthetic``; clips when its ``clip_length`` > 0),
    ``"mead"`` (real clips prepared by data_prep, ``mead``; chapter 5) or ``"mix"`` (SMIRK's
    training corpora — LRS3, MEAD, FFHQ, CelebA, MEAD side views, BUPT — by percentage per batch,
    ``mix``; README "Training data"). ``tempsmirk.data.build_dataset`` builds any of them.
    num_workers: DataLoader worker processes (0 = load in the training process; README "Training
    data" measures how many the mix needs)."""

    source: str = "synthetic"
    num_workers: int = 0
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    mead: MeadConfig = field(default_factory=MeadConfig)
    mix: FaceMixConfig = field(default_factory=FaceMixConfig)


@dataclass
class ModelConfig:
    """flame_path: FLAME model file or asset folder, e.g. SMIRK's ``assets/`` (None = built-in head;
    :func:`tempsmirk.flame.load_flame`). n_exp, n_shape: coefficients predicted. frozen: encoder branches that do not
    train (SMIRK freezes ``shape`` when starting from a pretrained encoder). init_checkpoint:
    SMIRK-layout weights to start from. vgg_path: local VGG16 weights for the perceptual loss."""

    flame_path: Optional[str] = None
    n_exp: int = 50
    n_shape: int = 300
    frozen: list[str] = field(default_factory=list)
    init_checkpoint: Optional[str] = None
    vgg_path: Optional[str] = None
    emotion_path: Optional[str] = None


@dataclass
class LossConfig:
    """Loss weights (defaults: core training, :meth:`LossWeights.core`, documented there),
    masking and the cycle. ``cycle`` weighs the second pass of each iteration."""

    landmarks_fan: float = 100.0
    landmarks_mp: float = 100.0
    reconstruction: float = 10.0
    perceptual: float = 10.0
    emotion: float = 0.0
    expression_reg: float = 1e-3
    jaw_reg: float = 1e-2
    shape_reg: float = 100.0
    cycle: float = 1.0
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    cycle_path: CycleConfig = field(default_factory=CycleConfig)

    def weights(self) -> LossWeights:
        """The weights as the losses module's frozen :class:`LossWeights`."""
        return LossWeights(**{f.name: getattr(self, f.name) for f in fields(LossWeights)})


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
    expression, jaw, pose, eyelids: weights of the smoothness loss (eq. 3) per group (pose = the
        global head pose). identity: weight of the identity loss (eq. 4) on the shape.
    reduction: ``mean`` — each term is an element mean over its parameter dimensions, as in the
        code that produced the paper's Table 2, for which the reference weights were tuned; or
        ``sum`` — eqs. (3)–(4) as printed (norms sum over the dimensions), D times stronger at
        the same weights (50× expression, 300× identity). See :mod:`tempsmirk.temporal`.
    Defaults: the paper's reference weights with the reduction they were tuned for.
    """

    enabled: bool = False
    expression: float = 0.1
    jaw: float = 0.05
    pose: float = 0.1
    eyelids: float = 0.05
    identity: float = 0.05
    reduction: str = "mean"

    def __post_init__(self) -> None:
        if self.reduction not in REDUCTIONS:
            raise ConfigError(f"temporal.reduction must be one of {list(REDUCTIONS)} (mean: as the code "
                              f"behind the paper's Table 2; sum: eqs. (3)-(4) as printed); got "
                              f"{self.reduction!r}")

    def weights(self) -> TemporalWeights:
        """The weights added to the loss: the configured ones when enabled, all zero otherwise."""
        return TemporalWeights(**{k: getattr(self, k) if self.enabled else 0.0 for k in TEMPORAL_TERMS},
                               reduction=self.reduction)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)


def _merge(sources: Sequence) -> Config:
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), *sources)
        missing = sorted(OmegaConf.missing_keys(merged))
        if missing:
            raise ConfigError(f"config: no value for required key(s) {missing}; set them in the file "
                              f"or on the command line, e.g. run.dir=/path/to/run")
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"config: {exc}. Keys and types are those of tempsmirk.config.Config "
                          f"(see the example under tempsmirk/configs/).") from None


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
