"""Plots of an emotion evaluation: confusion matrices, valence/arousal scatter, MLP training curves.

Explained in chapter 6. Matplotlib only (the figures go into files and static book pages).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
from torch import Tensor

from tempsmirk.evaluation.metrics import EMOTION_CLASSES

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from tempsmirk.evaluation.pipeline import EncoderResult

__all__ = ["plot_confusion", "plot_va_scatter", "plot_history", "result_figure", "comparison_figure"]


def plot_confusion(ax: "Axes", confusion: Tensor | np.ndarray, classes: Sequence[str] = EMOTION_CLASSES,
                   title: Optional[str] = None) -> None:
    """Row-normalised confusion matrix (K, K) (row = true class), each cell annotated in percent."""
    counts = np.asarray(confusion, dtype=np.float64)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
    k = len(classes)
    ax.set_xticks(range(k), classes, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{100 * rates[i, j]:.0f}", ha="center", va="center", fontsize=6,
                    color="white" if rates[i, j] > 0.5 else "black")
    if title:
        ax.set_title(title, fontsize=9)


def plot_va_scatter(ax: "Axes", predicted: Tensor | np.ndarray, target: Tensor | np.ndarray,
                    label: str = "valence", title: Optional[str] = None) -> None:
    """Predicted against true values in [-1, 1], with the identity line (where CCC = 1 lies)."""
    p, t = np.asarray(predicted, dtype=np.float64), np.asarray(target, dtype=np.float64)
    ax.scatter(t, p, s=6, alpha=0.5, linewidths=0)
    ax.plot([-1, 1], [-1, 1], color="k", lw=0.8, ls="--")
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")
    ax.set_xlabel(f"true {label}")
    ax.set_ylabel(f"predicted {label}")
    if title:
        ax.set_title(title, fontsize=9)


def plot_history(ax: "Axes", history, label: str = "") -> None:
    """Training and held-out loss at every validation check, with the kept check marked.

    The training loss carries that step's shake weights (their V/A part sums to 1) while the
    held-out loss uses the fixed weights (sum 4 by default), so the two curves sit at different
    levels by construction.
    """
    epochs = np.asarray(history.epoch)
    line = ax.plot(epochs, history.holdout_loss, label=f"{label} held out".strip())[0]
    ax.plot(epochs, history.train_loss, ls=":", color=line.get_color(), label=f"{label} train".strip())
    ax.axvline(history.best_epoch, color=line.get_color(), lw=0.6, alpha=0.6)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")


def result_figure(result: "EncoderResult") -> "Figure":
    """One encoder: confusion matrix, valence scatter, arousal scatter (with the metrics)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    _draw_row(axes, result)
    fig.suptitle(result.name, fontsize=10)
    fig.tight_layout()
    return fig


def _draw_row(axes, result: "EncoderResult") -> None:
    m = result.metrics
    plot_confusion(axes[0], result.confusion, title=f"E-ACC {m.e_acc:.3f}")
    plot_va_scatter(axes[1], result.prediction.valence, result.targets.valence, "valence",
                    f"V-CCC {m.v_ccc:.3f}, V-RMSE {m.v_rmse:.3f}")
    plot_va_scatter(axes[2], result.prediction.arousal, result.targets.arousal, "arousal",
                    f"A-CCC {m.a_ccc:.3f}, A-RMSE {m.a_rmse:.3f}")


def comparison_figure(results: Sequence["EncoderResult"], row_height: float = 3.4) -> "Figure":
    """One row per encoder (confusion, valence, arousal), for a side-by-side comparison."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 3, figsize=(11, row_height * len(results)), squeeze=False)
    for row, r in zip(axes, results):
        _draw_row(row, r)
        row[0].set_ylabel(f"{r.name}\ntrue", fontsize=9)
    fig.tight_layout()
    return fig
