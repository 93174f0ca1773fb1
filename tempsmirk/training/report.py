"""The fine-tuning experiments' report: a table of mean ± spread per condition and a verdict in
words (chapter 5).

:mod:`tempsmirk.training.experiment` runs the conditions and returns an
:class:`~tempsmirk.training.experiment.ExperimentResult`; this module only presents it:
:func:`summary_table` (a :class:`ResultTable`, shown as text or HTML) with the metrics' labels
(:data:`METRICS`), and :func:`verdict`, a sentence computed from the runs paired by seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from tempsmirk.training.experiment import ExperimentResult, metric_value

__all__ = ["METRICS", "ResultTable", "summary_table", "verdict"]

#: Table columns: JitterReport field -> label (units). Per-frame error first, then jitter.
METRICS = {
    "expression_rmse": "ψ error",
    "jaw_error_deg": "jaw error (°)",
    "pose_error_deg": "pose error (°)",
    "vertex_error_mm": "vertex error (mm)",
    "vertex_accel_error_mm": "vertex accel. error (mm/f²)",
    "expression_accel_error": "ψ accel. error",
    "vertex_accel_mm": "vertex jitter (mm/f²)",
    "expression_accel": "ψ jitter",
    "shape_variance": "identity variance",
}


@dataclass(frozen=True)
class ResultTable:
    """Mean and spread (sample standard deviation over seeds; NaN with one seed) per condition.

    metrics: JitterReport field names; labels: their column labels. rows: condition names;
    n: seeds per row; mean, std: (rows, metrics) arrays.
    """

    metrics: tuple[str, ...]
    labels: tuple[str, ...]
    rows: tuple[str, ...]
    n: tuple[int, ...]
    mean: np.ndarray
    std: np.ndarray

    def cell(self, i: int, j: int) -> str:
        m, s = self.mean[i, j], self.std[i, j]
        if not np.isfinite(m):
            return "—"
        return f"{m:.4g}" + (f" ± {s:.2g}" if np.isfinite(s) else "")

    def __str__(self) -> str:
        head = ["condition", "seeds", *self.labels]
        body = [[r, str(n), *(self.cell(i, j) for j in range(len(self.metrics)))]
                for i, (r, n) in enumerate(zip(self.rows, self.n))]
        width = [max(len(x[k]) for x in [head, *body]) for k in range(len(head))]
        fmt = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, width))  # noqa: E731
        return "\n".join([fmt(head), *map(fmt, body)])

    def _repr_html_(self) -> str:
        th = "".join(f"<th>{x}</th>" for x in ["condition", "seeds", *self.labels])
        trs = "".join("<tr>" + f"<td>{r}</td><td>{n}</td>" + "".join(f"<td>{self.cell(i, j)}</td>"
                                                                 for j in range(len(self.metrics))) + "</tr>"
                      for i, (r, n) in enumerate(zip(self.rows, self.n)))
        return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def summary_table(result: ExperimentResult, metrics: Optional[Sequence[str]] = None) -> ResultTable:
    """Mean ± spread over seeds per condition, with the starting checkpoint (and the ground
    truth's own jitter, where there is one) as reference rows. ``metrics``: JitterReport fields
    (default: those of :data:`METRICS` that were measured)."""
    if metrics is None:
        metrics = [m for m in METRICS if getattr(result.start.report, m) is not None]
    rows, n, mean, std = [], [], [], []
    refs = [("ground truth", result.truth)] if result.truth is not None else []
    refs += [("average face, every frame", result.average)] if result.average is not None else []
    for name, rep in refs + [("start (no fine-tuning)", result.start.report)]:
        rows.append(name)
        n.append(1)
        mean.append([metric_value(rep, m) for m in metrics])
        std.append([float("nan")] * len(metrics))
    for c in result.conditions:
        v = np.array([[metric_value(r.report, m) for m in metrics] for r in result.of(c)])
        rows.append(c)
        n.append(len(v))
        mean.append(v.mean(0))
        std.append(v.std(0, ddof=1) if len(v) > 1 else np.full(len(metrics), np.nan))
    return ResultTable(tuple(metrics), tuple(METRICS.get(m, m) for m in metrics), tuple(rows), tuple(n),
                       np.array(mean, dtype=float), np.array(std, dtype=float))


def _change(new: np.ndarray, old: np.ndarray) -> str:
    d = float(np.mean(new) - np.mean(old))
    rel = 100 * d / float(np.mean(old)) if np.mean(old) else float("nan")
    return f"{d:+.3g} ({rel:+.0f} %)"


def verdict(result: ExperimentResult, treatment: str = "temporal", baseline: str = "non-temporal",
            jitter: str = "vertex_accel_mm", error: str = "vertex_error_mm") -> str:
    """A plain sentence on whether ``treatment`` reduced jitter against ``baseline`` and at what
    cost in per-frame error, computed from the results paired by seed (same seed = same batches;
    the baseline's other seeds are left out).

    "reduced" needs a lower mean *and* a lower value in every seed; "reduced on average" a lower
    mean only. With a ground truth, the treatment's jitter is also put against the true motion's
    own (below it, real motion is being removed); without one, the cost is reported as identity
    variance instead.
    """
    seeds = [r.seed for r in result.of(treatment)]
    a, b = result.values(treatment, jitter), result.values(baseline, jitter, seeds)
    lower = int((a < b).sum())
    if a.mean() < b.mean() and lower == len(a):
        word = "reduced"
    elif a.mean() < b.mean():
        word = "reduced on average (not in every seed)"
    else:
        word = "did not reduce"
    label = METRICS.get(jitter, jitter)
    s = (f"{treatment[:1].upper() + treatment[1:]} training {word} jitter: {label} {np.mean(b):.4g} → "
         f"{np.mean(a):.4g}, {_change(a, b)} over {len(a)} seed(s), lower in {lower} of {len(a)}")
    e_a, e_b = result.values(treatment, error), result.values(baseline, error, seeds)
    if np.isfinite(e_a).all() and np.isfinite(e_b).all():
        worse = e_a.mean() > e_b.mean()
        s += (f"; {'at a cost' if worse else 'with no cost'} in per-frame accuracy: {METRICS.get(error, error)} "
              f"{np.mean(e_b):.4g} → {np.mean(e_a):.4g}, {_change(e_a, e_b)}.")
        true = metric_value(result.truth, jitter) if result.truth is not None else float("nan")
        if true > 0:
            ratio = float(np.mean(a)) / true
            s += (f" Its jitter is {ratio:.3g}× the true motion's own"
                  + (" — smoother than the truth: real motion is being removed." if ratio < 1 else
                     " — still above it: what was removed was not (all) real motion."))
    else:
        v_a, v_b = result.values(treatment, "shape_variance"), result.values(baseline, "shape_variance", seeds)
        s += (f"; identity variance {np.mean(v_b):.4g} → {np.mean(v_a):.4g} ({_change(v_a, v_b)}). "
              f"Without ground truth the per-frame cost cannot be measured.")
    return s
