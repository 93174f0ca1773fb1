"""The temporal-vs-non-temporal experiment: same batches per seed, cached runs, table, verdict."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tempsmirk.config import ConfigError, config_from_yaml
from tempsmirk.smirk import SmirkEncoder, SmirkGenerator, load_smirk_checkpoint, save_smirk_checkpoint
from tempsmirk.temporal import JitterReport
from tempsmirk.training import Trainer
from tempsmirk.training.experiment import (
    AUGMENTATION_CONDITIONS,
    Condition,
    EvalSpec,
    ExperimentResult,
    ExperimentSpec,
    RunResult,
    eval_clips,
    finetune_config,
    predict_clips,
    run_experiment,
    with_augmentation,
)
from tempsmirk.training.report import summary_table, verdict

TINY = ["data.synthetic.image_size=32", "data.synthetic.clip_length=4", "data.synthetic.n_items=8",
        "train.steps=2", "train.log_every=1", "train.device=cpu"]
SPEC = ExperimentSpec(seeds=(0, 1), single_seed=(Condition("λ × 50", 50.0),), eval=EvalSpec(n_clips=2, clip_length=4))


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    torch.manual_seed(0)
    return save_smirk_checkpoint(tmp_path_factory.mktemp("start") / "smirk.pt", SmirkEncoder(), SmirkGenerator())


def test_experiment_runs_pairs_caches_and_tabulates(tmp_path, start, monkeypatch):
    cfg = finetune_config("small", TINY)
    res = run_experiment(cfg, start, SPEC, root=tmp_path, progress=False)
    assert res.conditions == ("non-temporal", "temporal", "λ × 50")
    assert [(r.condition, r.seed) for r in res.runs] == [("non-temporal", 0), ("temporal", 0), ("non-temporal", 1),
                                                          ("temporal", 1), ("λ × 50", 0)]
    assert res.clips.images.shape == (2, 4, 3, 32, 32) and res.truth.vertex_error_mm == 0
    assert res.average.vertex_accel_mm < 1e-6 < res.average.vertex_error_mm  # the average face: still, and wrong
    runs = {(r.condition, r.seed): r for r in res.runs}
    # Same seed, same starting weights, same batch: the first step's SMIRK losses agree between
    # conditions; another seed draws other clips.
    first = lambda r, k: r.log[k][0]  # noqa: E731
    for k in ("landmarks_mp", "landmarks_fan", "temporal_expression"):
        assert first(runs["non-temporal", 0], k) == first(runs["temporal", 0], k) == first(runs["λ × 50", 0], k)
    assert first(runs["non-temporal", 0], "landmarks_mp") != first(runs["non-temporal", 1], "landmarks_mp")
    assert (runs["non-temporal", 0].log["temporal_total"] == 0).all() and (
        runs["temporal", 0].log["temporal_total"] > 0
    ).all()
    ratio = runs["λ × 50", 0].log["temporal_total"][0] / runs["temporal", 0].log["temporal_total"][0]
    assert ratio == pytest.approx(50, rel=1e-4)
    assert not torch.equal(runs["non-temporal", 0].predictions.expression, runs["temporal", 0].predictions.expression)
    # The stored encoder is the one that made the stored predictions.
    enc, gen = load_smirk_checkpoint(runs["temporal", 1].weights)
    assert gen is None and not (runs["temporal", 1].weights.parent / "run" / "smirk.pt").exists()
    torch.testing.assert_close(
        predict_clips(enc, res.clips.images).expression, runs["temporal", 1].predictions.expression
    )

    # Cached: a second call trains nothing and returns the same numbers.
    monkeypatch.setattr(Trainer, "train", lambda self, until=None: pytest.fail("a cached run trained again"))
    again = run_experiment(cfg, start, SPEC, root=tmp_path, progress=False)
    assert [r.report for r in again.runs] == [r.report for r in res.runs] and again.start.report == res.start.report
    assert torch.equal(again.runs[1].predictions.shape, res.runs[1].predictions.shape)

    table = summary_table(res)
    assert table.rows == (
        "ground truth",
        "average face, every frame",
        "start (no fine-tuning)",
        "non-temporal",
        "temporal",
        "λ × 50",
    )
    assert table.n == (1, 1, 1, 2, 2, 1)
    j = table.metrics.index("vertex_accel_mm")
    v = [runs["temporal", s].report.vertex_accel_mm for s in (0, 1)]
    assert table.mean[4, j] == pytest.approx(np.mean(v)) and table.std[4, j] == pytest.approx(np.std(v, ddof=1))
    assert np.isnan(table.std[5, j]) and "±" in str(table) and "<table>" in table._repr_html_()


def _report(jitter: float, error: float) -> JitterReport:
    zero = {f.name: 0.0 for f in dataclasses.fields(JitterReport)}
    return JitterReport(**{**zero, "vertex_accel_mm": jitter, "vertex_error_mm": error})


def _result(pairs, truth=None) -> ExperimentResult:
    """pairs: (condition, seed, jitter, error); truth: the true motion's jitter, or None."""
    mk = lambda c, s, j, e: RunResult(c, 1.0, s, _report(j, e), None, None, 0.0)  # noqa: E731
    return ExperimentResult(
        mk("start", -1, 1, 1), tuple(mk(*p) for p in pairs), None if truth is None else _report(truth, 0.0), None
    )


def test_verdict_words_follow_the_numbers():
    better = _result(
        [
            ("non-temporal", 0, 2.0, 1.0),
            ("temporal", 0, 1.0, 1.1),
            ("non-temporal", 1, 2.0, 1.0),
            ("temporal", 1, 1.5, 1.1),
        ]
    )
    s = verdict(better)
    assert s.startswith("Temporal training reduced jitter") and "-0.75 (-38 %)" in s and "at a cost" in s
    mixed = _result(
        [
            ("non-temporal", 0, 2.0, 1.0),
            ("temporal", 0, 1.0, 0.9),
            ("non-temporal", 1, 2.0, 1.0),
            ("temporal", 1, 2.5, 0.9),
        ]
    )
    s = verdict(mixed)
    assert "reduced on average (not in every seed)" in s and "lower in 1 of 2" in s and "with no cost" in s
    worse = _result([("non-temporal", 0, 1.0, 1.0), ("temporal", 0, 2.0, 1.0)])
    assert "did not reduce" in verdict(worse)
    # A single-seed condition is compared with the baseline's run of the same seed.
    big = _result([("non-temporal", 0, 2.0, 1.0), ("non-temporal", 1, 9.0, 1.0), ("big", 0, 0.5, 3.0)])
    assert "2 → 0.5" in verdict(big, treatment="big") and "1 → 3" in verdict(big, treatment="big")
    truth = [("non-temporal", 0, 2.0, 1.0), ("temporal", 0, 0.5, 1.5)]
    assert "0.5× the true motion's own — smoother than the truth" in verdict(_result(truth, truth=1.0))
    assert "2.5× the true motion's own — still above it" in verdict(_result(truth, truth=0.2))


def test_augmentation_arms_differ_only_in_the_draw(tmp_path, start):
    """Per-clip vs per-frame augmentation: the same clips, seeds and temporal weights; only
    ``per_frame`` differs between the runs' configs; the held-out clips are never augmented."""
    fork = finetune_config("fork")
    cfg = with_augmentation(finetune_config("small", TINY), fork.data.mead.augmentation)
    assert cfg.data.synthetic.augment and cfg.data.synthetic.augmentation.rotation == 10
    spec = ExperimentSpec(
        seeds=(0,), conditions=AUGMENTATION_CONDITIONS, single_seed=(), eval=EvalSpec(n_clips=2, clip_length=4)
    )
    res = run_experiment(cfg, start, spec, root=tmp_path, progress=False)
    clip, frame = res.of("per-clip augmentation")[0], res.of("per-frame augmentation")[0]
    configs = [config_from_yaml((r.weights.parent / "run" / "config.yaml").read_text()) for r in (clip, frame)]
    assert [c.data.synthetic.augmentation.per_frame for c in configs] == [False, True]
    assert [c.data.mead.augmentation.per_frame for c in configs] == [False, True]
    same = lambda c: dataclasses.replace(c, run=None, data=dataclasses.replace(c.data, synthetic=None, mead=None))  # noqa: E731
    assert same(configs[0]) == same(configs[1]) and configs[0].temporal.enabled
    assert clip.log["temporal_total"][0] != frame.log["temporal_total"][0]  # the frames differ, not the clips' order
    plain = eval_clips(finetune_config("small", TINY), spec.eval, load_flame_for(cfg))
    assert torch.equal(plain.images, res.clips.images)  # evaluation ignores the training augmentation
    bad = dataclasses.replace(
        spec, conditions=(Condition("typo", 1.0, ("data.synthetic.augmentaton.per_frame=true",)),)
    )
    with pytest.raises(ConfigError, match="augmentaton"):
        run_experiment(cfg, start, bad, root=tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()  # nothing ran
    with pytest.raises(ValueError, match="key=value"):
        Condition("x", 1.0, ("per_frame",))


def load_flame_for(cfg):
    from tempsmirk.flame import load_flame

    return load_flame(cfg.model.flame_path, cfg.model.n_shape, cfg.model.n_exp)
