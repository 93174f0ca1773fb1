"""The evaluation pipeline: images -> FLAME parameters -> emotion MLP -> the paper's Table 2.

Explained in chapter 6. Shapes: N images, E expression coefficients, K classes.

Real AffectNet and the synthetic stand-in take the identical path:

1. **index** -- :func:`prepare_index`: an AffectNet root (``training.csv`` / ``validation.csv``
   and images) is cropped by :func:`tempsmirk.data.affectnet.prepare_affectnet` into a crops folder
   with ``index.csv`` (or a folder that already holds ``index.csv`` is read as is). The crop rule
   should be the one the evaluated encoders were trained with: SMIRK's (MediaPipe box x 1.4,
   the default) for SMIRK encoders, EMOCA's 68-landmark rule for EMOCA/DECA-style encoders;
2. **parameters** -- :func:`encoder_parameters`: every crop, resized to the encoder's input size,
   goes through a SMIRK encoder checkpoint; the parameters are cached as ``.npz`` per (checkpoint
   file hash, index fingerprint, input size) and reused when present;
3. **MLP** -- :func:`evaluate_parameters`: an :class:`~tempsmirk.evaluation.emotion.EmotionMLP`
   trains on the ``train`` split as EMOCA trains it (class-balanced batches, EMOCA's loss and
   shake, model selection on a held-out part every 0.2 epoch; the same seed for every encoder)
   and predicts the ``validation`` split (AffectNet's official validation set, the paper's test
   set);
4. **table** -- :mod:`tempsmirk.evaluation.report` (``results_table``, ``write_report``): V-CCC,
   V-RMSE, A-CCC, A-RMSE, E-ACC (and EMOCA's SAGR), one row per encoder, all over the whole test
   set, plus confusion matrices, valence/arousal scatter plots and the protocol
   (``protocol_table``). This module runs; that one presents.

On the synthetic set an **oracle** row feeds the ground-truth parameters to step 3: the best any
encoder could do with this MLP (the annotation noise keeps it below a perfect score).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from tempsmirk.atomic import atomic_write_bytes
from tempsmirk.cachekey import file_digest, file_stamps, fingerprint
from tempsmirk.data.affectnet import (
    CROP_RULES,
    DEFAULT_RULE,
    RULE_SCALES,
    AffectNetIndex,
    prepare_affectnet,
    read_index,
)
from tempsmirk.evaluation.emotion import (
    EmotionMLP,
    EmotionMLPConfig,
    TrainingHistory,
    emotion_inputs,
    predict_emotion,
    train_emotion_mlp,
)
from tempsmirk.evaluation.metrics import (
    EmotionMetrics,
    EmotionPrediction,
    EmotionTargets,
    confusion_matrix,
    emotion_metrics,
)
from tempsmirk.flame.params import FlameParams
from tempsmirk.paths import cache_dir
from tempsmirk.smirk.encoder import SmirkEncoder

__all__ = [
    "TRAIN_SPLIT",
    "TEST_SPLIT",
    "EvaluationConfig",
    "EncoderResult",
    "prepare_index",
    "subset_index",
    "index_fingerprint",
    "index_targets",
    "encode_images",
    "encoder_parameters",
    "evaluate_parameters",
    "evaluate_encoders",
    "untrained_checkpoint",
]

PathLike = Union[str, os.PathLike]
TRAIN_SPLIT = "train"          # tempsmirk.data.affectnet: rows from training.csv
TEST_SPLIT = "validation"      # rows from validation.csv (the paper's test set)


@dataclass
class EvaluationConfig:
    """Settings of one evaluation run.

    image_size: the encoders' input side (official SMIRK 224; the demo checkpoint
        ``tempsmirk.training.DEMO_IMAGE_SIZE``); crops are resized to it.
    crop_rule, crop_scale: how :func:`prepare_index` frames the faces
        (:data:`tempsmirk.data.affectnet.CROP_RULES`; scale None = the rule's own).
    crop_size: side of the crops :func:`prepare_index` writes (default 224).
    batch_size, num_workers: encoder batches and image-reading worker processes.
    n_exp, n_shape: coefficients the checkpoints predict.
    max_train_images: encode at most this many training images (a seeded random subset;
        None = all; the full AffectNet training split is ~290k images).
    mlp: :class:`~tempsmirk.evaluation.emotion.EmotionMLPConfig`.
    """

    image_size: int = 224
    crop_rule: str = DEFAULT_RULE
    crop_scale: Optional[float] = None
    crop_size: int = 224
    batch_size: int = 32
    num_workers: int = 0
    n_exp: int = 50
    n_shape: int = 300
    max_train_images: Optional[int] = None
    mlp: EmotionMLPConfig = field(default_factory=EmotionMLPConfig)

    def __post_init__(self) -> None:
        if self.crop_rule not in CROP_RULES:
            raise ValueError(f"crop_rule must be one of {CROP_RULES}; got {self.crop_rule!r}")


@dataclass(frozen=True)
class EncoderResult:
    """One row of the table and what it was computed from (the test split).

    name: the encoder's name. metrics: :class:`EmotionMetrics`. prediction, targets: the MLP's
    predictions and the labels, N test images. confusion: (K, K) counts, row = true class.
    history: the MLP's training history. model: the trained MLP (its selected weights, on the CPU).
    """

    name: str
    metrics: EmotionMetrics
    prediction: EmotionPrediction
    targets: EmotionTargets
    confusion: Tensor
    history: TrainingHistory
    model: Optional[EmotionMLP] = None


def prepare_index(root: PathLike, crops_dir: Optional[PathLike] = None, crop_size: int = 224,
                  rule: Optional[str] = None, scale: Optional[float] = None,
                  progress: bool = True) -> AffectNetIndex:
    """The crops index for an AffectNet root (or a folder already holding ``index.csv``).

    A root with ``training.csv`` / ``validation.csv`` is cropped with
    :func:`tempsmirk.data.affectnet.prepare_affectnet` under ``rule`` (None: SMIRK's) into
    ``crops_dir`` (default: a cache folder keyed by the root's CSVs, the rule, its scale and
    ``crop_size``); an existing complete folder there is reused. A prepared folder is read as
    is; a ``rule`` (or ``scale``) given with it must be the one its crops were made with, and it
    must record its rule (``crop_settings.json``, written by :func:`~tempsmirk.data.affectnet.prepare_affectnet`).

    Raises:
        FileNotFoundError: ``root`` holds neither ``index.csv`` nor the AffectNet CSVs.
        ValueError: an unreadable index, an unknown rule, or crops made with another (or an
            unrecorded) rule.
    """
    root = Path(root)
    if rule is not None and rule not in CROP_RULES:
        raise ValueError(f"crop rule must be one of {CROP_RULES}; got {rule!r}")
    if (root / "index.csv").is_file():
        index = read_index(root)
        made = index.crop
        if made is None:
            raise ValueError(f"{root} holds an index without crop_settings.json (made by an older "
                             f"version), so how its faces were cropped is unknown; re-create it with "
                             f"'python -m data_prep.affectnet AFFECTNET_ROOT --out DIR --rule RULE'")
        if rule is not None and (made.rule != rule or (scale is not None and made.scale != scale)):
            raise ValueError(f"{root} holds crops made with {made.describe()}, not with rule "
                             f"{rule!r}{f' x {scale:g}' if scale is not None else ''}; prepare the AffectNet "
                             f"root with that rule instead (or leave the rule unset to use these crops)")
        return index
    csvs = [root / "training.csv", root / "validation.csv"]
    if not root.is_dir() or not any(c.is_file() for c in csvs):
        raise FileNotFoundError(f"{root} holds neither index.csv (a prepared AffectNet index) nor "
                                f"training.csv / validation.csv (an AffectNet root); give one of those")
    rule = rule or DEFAULT_RULE
    scale = float(scale if scale is not None else RULE_SCALES[rule])
    if crops_dir is None:
        key = file_stamps([c for c in csvs if c.is_file()])[:12]
        crops_dir = cache_dir("evaluation", "crops", f"{key}_{rule}{scale:g}_{crop_size}px")
    crops_dir = Path(crops_dir)
    if (crops_dir / "index.csv").is_file():  # written last by prepare_affectnet: complete
        index = read_index(crops_dir)
        if index.crop is not None and (index.crop.rule, index.crop.scale, index.crop.size) == \
                (rule, scale, crop_size):
            return index
    index, _ = prepare_affectnet(root, crops_dir, rule=rule, scale=scale, out_size=crop_size,
                                 show_progress=progress)
    return index


def subset_index(index: AffectNetIndex, rows: Sequence[int] | Tensor | np.ndarray) -> AffectNetIndex:
    """The given rows of an index, in that order."""
    return index.subset(np.asarray(rows, dtype=np.int64))


def index_fingerprint(index: AffectNetIndex) -> str:
    """Identifies an index's images and labels: crop paths, sizes, modification times, labels."""
    return fingerprint(file_stamps(index.crop_paths), index.expression, index.valence, index.arousal)


def index_targets(index: AffectNetIndex) -> EmotionTargets:
    """The labels of an index as tensors."""
    return EmotionTargets(torch.from_numpy(np.asarray(index.valence, np.float32)),
                          torch.from_numpy(np.asarray(index.arousal, np.float32)),
                          torch.from_numpy(np.asarray(index.expression, np.int64)))


class _Crops(Dataset):
    """Crop files -> (3, S, S) float images in [0, 1], resized to S (antialiased bilinear)."""

    def __init__(self, paths: Sequence[Path], image_size: int) -> None:
        self.paths = list(paths)
        self.size = image_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Tensor:
        from tempsmirk.video.io import read_image

        img = torch.from_numpy(read_image(self.paths[i])).permute(2, 0, 1).float() / 255.0
        if img.shape[1:] != (self.size, self.size):
            img = F.interpolate(img[None], size=(self.size, self.size), mode="bilinear",
                                align_corners=False, antialias=True)[0].clamp(0, 1)
        return img


@torch.no_grad()
def encode_images(encoder: SmirkEncoder, paths: Sequence[Path], image_size: int, batch_size: int = 32,
                  num_workers: int = 0, progress: bool = True) -> FlameParams:
    """Run ``encoder`` (in eval mode, on its device) over image files. -> (N, ...) on the CPU."""
    device = next(encoder.parameters()).device
    encoder.eval()
    loader = DataLoader(_Crops(paths, image_size), batch_size=batch_size, num_workers=num_workers)
    outs = [encoder(batch.to(device)).to("cpu")
            for batch in tqdm(loader, desc="encoding", unit="batch", disable=not progress, leave=False)]
    return FlameParams.cat(outs)


def _save_params(path: Path, params: FlameParams) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{name: t.numpy() for name, t in params.as_dict().items()})
    atomic_write_bytes(path, buf.getvalue())


def _load_params(path: Path) -> FlameParams:
    with np.load(path, allow_pickle=False) as z:
        return FlameParams.from_dict(z)


def encoder_parameters(checkpoint: PathLike, index: AffectNetIndex, image_size: int,
                       cache: Optional[PathLike] = None, device: str | torch.device = "cpu",
                       batch_size: int = 32, num_workers: int = 0, n_exp: int = 50, n_shape: int = 300,
                       progress: bool = True) -> FlameParams:
    """FLAME parameters of every crop of ``index`` under a checkpoint, cached. -> (N, ...) on the CPU.

    The cache file (in ``cache``, default ``cache_dir("evaluation")``) is named by the checkpoint's
    content hash, :func:`index_fingerprint` and ``image_size``; when it exists the encoder is not
    even loaded.

    Raises:
        FileNotFoundError: no checkpoint file. tempsmirk.smirk.CheckpointError: not SMIRK weights.
    """
    from tempsmirk.smirk.checkpoint import load_smirk_checkpoint

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"encoder checkpoint {checkpoint} does not exist; give a SMIRK-layout "
                                f"checkpoint file (official, or written by tempsmirk)")
    folder = Path(cache) if cache is not None else cache_dir("evaluation")
    name = (f"params_{file_digest(checkpoint)[:16]}_{index_fingerprint(index)[:16]}_"
            f"{image_size}px_e{n_exp}.npz")
    path = folder / name
    if path.is_file():
        params = _load_params(path)
        if params.batch_size == len(index):
            return params
    encoder, _ = load_smirk_checkpoint(checkpoint, n_exp=n_exp, n_shape=n_shape, with_generator=False)
    params = encode_images(encoder.to(device), index.crop_paths, image_size, batch_size, num_workers,
                           progress)
    _save_params(path, params)
    return params


def evaluate_parameters(name: str, train_params: FlameParams, train_targets: EmotionTargets,
                        test_params: FlameParams, test_targets: EmotionTargets,
                        cfg: Optional[EmotionMLPConfig] = None, seed: int = 0,
                        device: str | torch.device = "cpu", progress: bool = False) -> EncoderResult:
    """Train the emotion MLP on one encoder's training parameters and score it on the test split.

    The MLP's initial weights, holdout split, batch draws and shake weights depend only on
    ``seed``, so encoders compared with the same seed get the same training procedure.

    Raises:
        ValueError: the MLP could not be trained on these parameters (the message names the encoder).
    """
    cfg = cfg or EmotionMLPConfig()
    x_train = emotion_inputs(train_params, cfg.inputs).to(device)
    x_test = emotion_inputs(test_params, cfg.inputs).to(device)
    try:
        model, history = train_emotion_mlp(x_train, train_targets.to(device), cfg,
                                           torch.Generator().manual_seed(seed), progress=progress)
    except ValueError as exc:
        raise ValueError(f"encoder {name!r}: {exc}") from exc
    pred = predict_emotion(model, x_test).cpu()
    return EncoderResult(name=name, metrics=emotion_metrics(pred, test_targets), prediction=pred,
                         targets=test_targets, confusion=confusion_matrix(test_targets.expression,
                                                                          pred.expression, cfg.n_classes),
                         history=history, model=model.cpu())


def _splits(index: AffectNetIndex, max_train: Optional[int],
            seed: int) -> tuple[AffectNetIndex, AffectNetIndex]:
    train, test = index.select(TRAIN_SPLIT), index.select(TEST_SPLIT)
    if len(train) < 4 or len(test) < 2:
        raise ValueError(f"the index has {len(train)} '{TRAIN_SPLIT}' rows (from training.csv) and "
                         f"{len(test)} '{TEST_SPLIT}' rows (from validation.csv); the evaluation needs "
                         f"at least 4 and 2")
    if max_train is not None and len(train) > max_train:
        rows = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:max_train]
        train = subset_index(train, rows.sort().values.numpy())
    return train, test


def evaluate_encoders(index: AffectNetIndex, checkpoints: Mapping[str, PathLike],
                      cfg: Optional[EvaluationConfig] = None,
                      ground_truth: Optional[Callable[[Sequence[str]], FlameParams]] = None,
                      oracle_name: str = "oracle (ground truth)", cache: Optional[PathLike] = None,
                      device: str | torch.device = "cpu", seed: int = 0,
                      progress: bool = True) -> tuple[EncoderResult, ...]:
    """The whole comparison: one :class:`EncoderResult` per named checkpoint (and the oracle).

    Args:
        index: a crops index with ``train`` and ``validation`` rows (:func:`prepare_index`).
        checkpoints: name -> SMIRK checkpoint path, in table order.
        cfg: :class:`EvaluationConfig`.
        ground_truth: for the oracle row, a function from ``source_paths`` to their true
            parameters (e.g. ``partial(ground_truth_params, load_ground_truth(root))``); None = no
            oracle row.
        cache: parameter cache folder (default ``cache_dir("evaluation")``).
        device: where the encoders and the MLP run.
        seed: the MLP's seed (the same for every row) and the training subset's.
    """
    cfg = cfg or EvaluationConfig()
    train, test = _splits(index, cfg.max_train_images, seed)
    t_train, t_test = index_targets(train), index_targets(test)
    sources: list[tuple[str, Callable[[AffectNetIndex], FlameParams]]] = []
    if ground_truth is not None:
        sources.append((oracle_name, lambda idx: ground_truth(idx.source_paths)))
    for name, path in checkpoints.items():
        sources.append((name, lambda idx, path=path: encoder_parameters(
            path, idx, cfg.image_size, cache, device, cfg.batch_size, cfg.num_workers, cfg.n_exp,
            cfg.n_shape, progress)))
    results = []
    for name, params_of in sources:
        results.append(evaluate_parameters(name, params_of(train), t_train, params_of(test), t_test,
                                           cfg.mlp, seed, device, progress))
    return tuple(results)


def untrained_checkpoint(seed: int = 0, n_exp: int = 50, n_shape: int = 300,
                         directory: Optional[PathLike] = None) -> Path:
    """A freshly initialised SMIRK encoder saved as a checkpoint (a baseline row), cached."""
    from tempsmirk.smirk.checkpoint import save_smirk_checkpoint

    folder = Path(directory) if directory is not None else cache_dir("evaluation", "untrained")
    path = folder / f"untrained_seed{seed}_e{n_exp}_s{n_shape}.pt"
    if not path.is_file():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = SmirkEncoder(n_exp=n_exp, n_shape=n_shape)
        save_smirk_checkpoint(path, encoder)
    return path
