"""The evaluation pipeline: images -> FLAME parameters -> emotion MLP -> the paper's Table 2.

Explained in chapter 6. Shapes: N images, E expression coefficients, K classes.

Real AffectNet and the synthetic stand-in take the identical path:

1. **index** -- :func:`prepare_index`: an AffectNet root (``training.csv`` / ``validation.csv``
   and images) is cropped by :func:`data_prep.affectnet.prepare_affectnet` into a crops folder
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
4. **table** -- :func:`results_table` / :func:`write_report`: V-CCC, V-RMSE, A-CCC, A-RMSE, E-ACC
   (and EMOCA's SAGR), one row per encoder, all over the whole test set, plus confusion matrices,
   valence/arousal scatter plots and the protocol (:func:`protocol_table`).

On the synthetic set an **oracle** row feeds the ground-truth parameters to step 3: the best any
encoder could do with this MLP (the annotation noise keeps it below a perfect score).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from data_prep.affectnet import (CROP_RULES, DEFAULT_RULE, RULE_SCALES, AffectNetIndex, CropSettings,
                                 prepare_affectnet, read_index)
from tempsmirk.atomic import atomic_write_bytes
from tempsmirk.evaluation.emotion import (EmotionMLP, EmotionMLPConfig, TrainingHistory, emotion_inputs,
                                          predict_emotion, train_emotion_mlp)
from tempsmirk.evaluation.metrics import (EMOTION_CLASSES, TABLE_COLUMNS, EmotionMetrics,
                                          EmotionPrediction, EmotionTargets, confusion_matrix,
                                          emotion_metrics)
from tempsmirk.paths import cache_dir
from tempsmirk.smirk.encoder import EncoderOutput, SmirkEncoder
from tempsmirk.viz import Table, table

__all__ = [
    "TRAIN_SPLIT",
    "TEST_SPLIT",
    "EvaluationConfig",
    "EncoderResult",
    "prepare_index",
    "subset_index",
    "protocol_table",
    "index_fingerprint",
    "file_digest",
    "index_targets",
    "encode_images",
    "encoder_parameters",
    "evaluate_parameters",
    "evaluate_encoders",
    "untrained_checkpoint",
    "results_table",
    "write_report",
]

PathLike = Union[str, os.PathLike]
TRAIN_SPLIT = "train"          # data_prep.affectnet: rows from training.csv
TEST_SPLIT = "validation"      # rows from validation.csv (the paper's test set)
_PARAM_FIELDS = ("global_pose", "cam", "shape", "expression", "eyelids", "jaw_pose")


@dataclass
class EvaluationConfig:
    """Settings of one evaluation run.

    image_size: the encoders' input side (official SMIRK 224; the demo checkpoint
        ``tempsmirk.training.DEMO_IMAGE_SIZE``); crops are resized to it.
    crop_rule, crop_scale: how :func:`prepare_index` frames the faces
        (:data:`data_prep.affectnet.CROP_RULES`; scale None = the rule's own).
    crop_size: side of the crops :func:`prepare_index` writes (data_prep's default 224).
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


def _fingerprint_files(paths: Sequence[Path]) -> str:
    """Hash of file names, sizes and modification times (not contents: cheap for 300k files)."""
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p) if os.path.exists(p) else None
        h.update(f"{Path(p).resolve()}|{st.st_size if st else -1}|{st.st_mtime_ns if st else -1}\n".encode())
    return h.hexdigest()


def prepare_index(root: PathLike, crops_dir: Optional[PathLike] = None, crop_size: int = 224,
                  rule: Optional[str] = None, scale: Optional[float] = None,
                  progress: bool = True) -> AffectNetIndex:
    """The crops index for an AffectNet root (or a folder already holding ``index.csv``).

    A root with ``training.csv`` / ``validation.csv`` is cropped with
    :func:`data_prep.affectnet.prepare_affectnet` under ``rule`` (None: SMIRK's) into
    ``crops_dir`` (default: a cache folder keyed by the root's CSVs, the rule, its scale and
    ``crop_size``); an existing complete folder there is reused. A prepared folder is read as
    is; a ``rule`` (or ``scale``) given with it must be the one its crops were made with, and it
    must record its rule (``crop_settings.json``, written by ``data_prep.affectnet``).

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
        key = _fingerprint_files([c for c in csvs if c.is_file()])[:12]
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
    h = hashlib.sha256(_fingerprint_files(index.crop_paths).encode())
    for arr in (index.expression, index.valence, index.arousal):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def file_digest(path: PathLike, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's contents (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


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
        from data_prep.video import read_image

        img = torch.from_numpy(read_image(self.paths[i])).permute(2, 0, 1).float() / 255.0
        if img.shape[1:] != (self.size, self.size):
            img = F.interpolate(img[None], size=(self.size, self.size), mode="bilinear",
                                align_corners=False, antialias=True)[0].clamp(0, 1)
        return img


@torch.no_grad()
def encode_images(encoder: SmirkEncoder, paths: Sequence[Path], image_size: int, batch_size: int = 32,
                  num_workers: int = 0, progress: bool = True) -> EncoderOutput:
    """Run ``encoder`` (in eval mode, on its device) over image files. -> (N, ...) on the CPU."""
    device = next(encoder.parameters()).device
    encoder.eval()
    loader = DataLoader(_Crops(paths, image_size), batch_size=batch_size, num_workers=num_workers)
    outs = [encoder(batch.to(device)).to("cpu")
            for batch in tqdm(loader, desc="encoding", unit="batch", disable=not progress, leave=False)]
    return EncoderOutput.cat(outs)


def _save_params(path: Path, params: EncoderOutput) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{name: getattr(params, name).numpy() for name in _PARAM_FIELDS})
    atomic_write_bytes(path, buf.getvalue())


def _load_params(path: Path) -> EncoderOutput:
    with np.load(path, allow_pickle=False) as z:
        return EncoderOutput(**{name: torch.from_numpy(z[name]) for name in _PARAM_FIELDS})


def encoder_parameters(checkpoint: PathLike, index: AffectNetIndex, image_size: int,
                       cache: Optional[PathLike] = None, device: str | torch.device = "cpu",
                       batch_size: int = 32, num_workers: int = 0, n_exp: int = 50, n_shape: int = 300,
                       progress: bool = True) -> EncoderOutput:
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


def evaluate_parameters(name: str, train_params: EncoderOutput, train_targets: EmotionTargets,
                        test_params: EncoderOutput, test_targets: EmotionTargets,
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
                      ground_truth: Optional[Callable[[Sequence[str]], EncoderOutput]] = None,
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
    sources: list[tuple[str, Callable[[AffectNetIndex], EncoderOutput]]] = []
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


_EXTRA_COLUMNS = ("V-SAGR", "A-SAGR")


def results_table(results: Sequence[EncoderResult], style: str = "markdown",
                  digits: int = 4) -> Union[str, Table]:
    """The paper's Table 2 layout plus EMOCA's SAGR: one row per encoder; ``style`` ``"markdown"``,
    ``"csv"`` (which adds the PCCs, N and the epoch of the kept MLP weights) or ``"table"`` (a
    :class:`tempsmirk.viz.Table`: an HTML table in a notebook)."""
    if style == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(("encoder",) + TABLE_COLUMNS + _EXTRA_COLUMNS + ("V-PCC", "A-PCC", "N", "MLP epoch"))
        for r in results:
            m = r.metrics
            writer.writerow((r.name, *(f"{v:.6f}" for v in m.row()), f"{m.v_sagr:.6f}", f"{m.a_sagr:.6f}",
                             f"{m.v_pcc:.6f}", f"{m.a_pcc:.6f}", m.n, f"{r.history.best_epoch:.2f}"))
        return buf.getvalue()
    if style not in ("markdown", "table"):
        raise ValueError(f"style is 'markdown', 'csv' or 'table', got {style!r}")
    columns = [c + a for c, a in zip(TABLE_COLUMNS + _EXTRA_COLUMNS, ("↑", "↓", "↑", "↓", "↑", "↑", "↑"))]
    rows = {r.name: (*r.metrics.row(), r.metrics.v_sagr, r.metrics.a_sagr) for r in results}
    view = table(rows, columns, formats={c: f".{digits}f" for c in columns}, index="encoder")
    return view if style == "table" else view.to_markdown()


def protocol_table(cfg: EvaluationConfig, crop: Optional[CropSettings] = None,
                   style: str = "markdown") -> Union[str, Table]:
    """How the table was measured, beside EMOCA's protocol: markdown, or with ``style="table"`` a
    :class:`tempsmirk.viz.Table` (an HTML table in a notebook). Explained in chapter 6.

    ``crop``: the crops' settings (``index.crop``); None takes ``cfg``'s rule.
    """
    if style not in ("markdown", "table"):
        raise ValueError(f"style is 'markdown' or 'table', got {style!r}")
    m, loss = cfg.mlp, cfg.mlp.loss
    if crop is None:
        crop = CropSettings(cfg.crop_rule, cfg.crop_scale or RULE_SCALES[cfg.crop_rule], cfg.crop_size)
    dims = {"expression": cfg.n_exp, "jaw_pose": 3, "shape": cfg.n_shape, "eyelids": 2, "global_pose": 3}
    inputs = " + ".join(f"{name} ({dims.get(name, '?')})" for name in m.inputs)
    sampler = {"balanced": "class-balanced: 1 / class count, with replacement",
               "natural": "natural class mix (shuffled)"}[m.sampler]
    weights = f"{loss.expression_nll:g}·NLL + {loss.v_mse:g}·MSE_v + {loss.a_mse:g}·MSE_a + " \
              f"{loss.va_pcc:g}·(1 − PCC̄) + {loss.va_ccc:g}·(1 − CCC̄)"
    scheme = {"shake": "shake (V/A weights ~ U(0, 1), sum 1, per step)", "norm": "V/A weights / their sum",
              "none": "fixed weights"}[loss.va_scheme]
    rows = [
        ("crops", f"{crop.describe()}, resized to {cfg.image_size} px",
         "FAN 68-landmark box × 1.1 × 1.25, 224 px"),
        ("MLP input", inputs + (", standardised" if m.standardize else ""),
         "expression (50) + jaw (3); released models add shape (100)"),
        ("MLP", f"{m.n_hidden} × {m.hidden}, BatchNorm, LeakyReLU({m.negative_slope:g})",
         "4 × 2048, BatchNorm, LeakyReLU(0.2)"),
        ("batches", f"{sampler}, {m.batch_size} per batch", "balanced_expr, 64 per batch"),
        ("loss", f"{weights}; {scheme}",
         "1·NLL + 1·MSE_v + 1·MSE_a + 1·(1 − PCC̄) + 1·(1 − CCC̄); shake"),
        ("optimiser", f"Adam {m.lr:g}", "Adam 1e-4"),
        ("model selection", f"{m.holdout_fraction:.0%} of training held out, checked every "
                            f"{m.val_check_interval:g} epoch, patience {m.patience} checks, ≤ {m.max_epochs} "
                            f"epochs, best weights reloaded",
         "EmoNet's held-out part of training, every 0.2 epoch, patience 10, ≤ 50 epochs, best reloaded"),
        ("test scores", "whole validation set at once", "per batch of 64 (Lightning test step)"),
    ]
    view = table({a: (b, c) for a, b, c in rows}, ["this table", "EMOCA"], index="setting")
    return view if style == "table" else view.to_markdown()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "encoder"


def write_report(results: Sequence[EncoderResult], out_dir: PathLike, cfg: Optional[EvaluationConfig] = None,
                 crop: Optional[CropSettings] = None) -> tuple[Path, ...]:
    """Write ``table.csv``, ``table.md``, ``metrics.json``, ``config.json`` (with ``cfg``) and per
    encoder ``<name>.png`` (confusion matrix + valence/arousal scatter) into ``out_dir``,
    atomically. With ``cfg``, ``table.md`` also states the protocol (:func:`protocol_table`;
    ``crop`` = the index's crop settings). Returns the paths."""
    import matplotlib.pyplot as plt

    from tempsmirk.evaluation.plots import result_figure

    out = Path(out_dir)
    written = []
    markdown = results_table(results, "markdown")
    if cfg is not None:
        markdown += "\nProtocol:\n\n" + protocol_table(cfg, crop)
        settings = {"evaluation": asdict(cfg), "crop": asdict(crop) if crop is not None else None}
        atomic_write_bytes(out / "config.json", json.dumps(settings, indent=1).encode("utf-8"))
        written.append(out / "config.json")
    for name, text in (("table.csv", results_table(results, "csv")), ("table.md", markdown)):
        atomic_write_bytes(out / name, text.encode("utf-8"))
        written.append(out / name)
    payload = [{"encoder": r.name, **{k: getattr(r.metrics, k) for k in
                                      ("v_ccc", "v_rmse", "a_ccc", "a_rmse", "e_acc", "v_pcc", "a_pcc",
                                       "v_sagr", "a_sagr", "n")},
                "confusion": r.confusion.tolist(), "classes": list(EMOTION_CLASSES),
                "best_epoch": r.history.best_epoch, "stop_reason": r.history.stop_reason,
                "check_epoch": list(r.history.epoch), "train_loss": list(r.history.train_loss),
                "holdout_loss": list(r.history.holdout_loss)}
               for r in results]
    atomic_write_bytes(out / "metrics.json", json.dumps(payload, indent=1).encode("utf-8"))
    written.append(out / "metrics.json")
    used: set[str] = set()
    for r in results:
        slug = _slug(r.name)
        while slug in used:  # two names with one file name: number them
            slug += "_"
        used.add(slug)
        fig = result_figure(r)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        atomic_write_bytes(out / f"{slug}.png", buf.getvalue())
        written.append(out / f"{slug}.png")
    return tuple(written)
