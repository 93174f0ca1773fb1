"""The evaluation's report: the paper's Table 2, the protocol beside EMOCA's, and the files of a run.

Explained in chapter 6. :mod:`tempsmirk.evaluation.pipeline` runs the encoders and the emotion
MLP and returns one :class:`~tempsmirk.evaluation.pipeline.EncoderResult` per row; this module
only presents them: :func:`results_table` (markdown, CSV or an HTML table), :func:`protocol_table` and
:func:`write_report` (tables, metrics, settings and per-encoder figures from
:mod:`tempsmirk.evaluation.plots`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence, Union

from tempsmirk.atomic import atomic_write_bytes
from tempsmirk.data.affectnet import RULE_SCALES, CropSettings
from tempsmirk.evaluation.metrics import EMOTION_CLASSES, TABLE_COLUMNS
from tempsmirk.evaluation.pipeline import EncoderResult, EvaluationConfig
from tempsmirk.evaluation.plots import result_figure
from tempsmirk.viz import Table, table

__all__ = ["results_table", "protocol_table", "write_report"]

PathLike = Union[str, os.PathLike]

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
