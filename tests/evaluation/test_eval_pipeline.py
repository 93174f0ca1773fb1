"""The pipeline: parameter cache, the end-to-end table on a tiny synthetic set, the report."""

from __future__ import annotations

import json
from functools import partial

import pytest
import torch

from tempsmirk.evaluation import pipeline
from tempsmirk.evaluation.metrics import TABLE_COLUMNS
from tempsmirk.evaluation.pipeline import (EvaluationConfig, encoder_parameters, evaluate_encoders,
                                           prepare_index, results_table, subset_index, write_report)
from tempsmirk.evaluation.synthetic_affectnet import ground_truth_params, load_ground_truth


def test_parameters_are_cached_and_reused(tiny_index, untrained_ckpt, tmp_path, monkeypatch):
    calls = []
    real = pipeline.encode_images

    def counting(*args, **kwargs):
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "encode_images", counting)
    idx = subset_index(tiny_index, range(6))
    first = encoder_parameters(untrained_ckpt, idx, 32, cache=tmp_path, progress=False)
    assert calls == [6] and len(list(tmp_path.glob("*.npz"))) == 1
    second = encoder_parameters(untrained_ckpt, idx, 32, cache=tmp_path, progress=False)
    assert calls == [6]  # the encoder did not run again
    assert torch.equal(first.expression, second.expression) and first.expression.shape == (6, 50)
    # Another input size or another set of images is another cache entry.
    encoder_parameters(untrained_ckpt, idx, 48, cache=tmp_path, progress=False)
    shifted = subset_index(tiny_index, range(1, 7))
    encoder_parameters(untrained_ckpt, shifted, 32, cache=tmp_path, progress=False)
    assert calls == [6, 6, 6] and len(list(tmp_path.glob("*.npz"))) == 3
    # The cached values are the encoder's output on the resized crops.
    from tempsmirk.smirk import load_smirk_checkpoint

    enc, _ = load_smirk_checkpoint(untrained_ckpt, with_generator=False)
    direct = pipeline.encode_images(enc, idx.crop_paths[:2], 32, progress=False)
    torch.testing.assert_close(direct.expression, first.expression[:2], rtol=1e-4, atol=1e-5)


def test_missing_checkpoint_is_reported(tiny_index, tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        encoder_parameters(tmp_path / "nope.pt", tiny_index, 32, cache=tmp_path)


def test_prepare_index_errors_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="training.csv"):
        prepare_index(tmp_path)


def test_end_to_end_oracle_beats_chance(tiny_affectnet, tiny_index, untrained_ckpt, small_mlp, tmp_path):
    gt = partial(ground_truth_params, load_ground_truth(tiny_affectnet))
    cfg = EvaluationConfig(image_size=32, mlp=small_mlp)
    results = evaluate_encoders(tiny_index, {"untrained": untrained_ckpt}, cfg, gt, cache=tmp_path,
                                seed=0, progress=False)
    assert [r.name for r in results] == ["oracle (ground truth)", "untrained"]
    oracle, untrained = results
    n_test = sum(s == "validation" for s in tiny_index.split)
    assert oracle.metrics.n == untrained.metrics.n == n_test
    assert int(oracle.confusion.sum()) == n_test
    # Real signal: with the true parameters the MLP is far above chance (1/8) and finds V/A.
    assert oracle.metrics.e_acc > 0.5
    assert oracle.metrics.v_ccc > 0.5 and oracle.metrics.a_ccc > 0.3
    assert oracle.metrics.e_acc > untrained.metrics.e_acc

    table = results_table(results)
    assert all(c in table.splitlines()[0] for c in TABLE_COLUMNS)
    assert f"| oracle (ground truth) | {oracle.metrics.v_ccc:.4f} |" in table
    written = write_report(results, tmp_path / "report")
    names = sorted(p.name for p in written)
    assert names == ["metrics.json", "oracle_ground_truth.png", "table.csv", "table.md", "untrained.png"]
    payload = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert payload[1]["e_acc"] == pytest.approx(untrained.metrics.e_acc)
    csv_lines = (tmp_path / "report" / "table.csv").read_text().splitlines()
    assert csv_lines[0].startswith("encoder,V-CCC,V-RMSE,A-CCC,A-RMSE,E-ACC") and len(csv_lines) == 3


def test_split_requirements(tiny_index, untrained_ckpt, tmp_path):
    train_only = subset_index(tiny_index, [i for i, s in enumerate(tiny_index.split) if s == "train"])
    with pytest.raises(ValueError, match="validation"):
        evaluate_encoders(train_only, {"u": untrained_ckpt}, cache=tmp_path, progress=False)


@pytest.mark.gpu
def test_cuda_matches_cpu(tiny_index, untrained_ckpt, small_mlp):
    from tempsmirk.evaluation.emotion import emotion_inputs, predict_emotion, train_emotion_mlp
    from tempsmirk.evaluation.pipeline import index_targets
    from tempsmirk.smirk import load_smirk_checkpoint

    enc, _ = load_smirk_checkpoint(untrained_ckpt, with_generator=False)
    paths = tiny_index.crop_paths[:8]
    cpu = pipeline.encode_images(enc, paths, 32, progress=False)
    gpu = pipeline.encode_images(enc.to("cuda"), paths, 32, progress=False)
    torch.testing.assert_close(gpu.expression, cpu.expression, rtol=1e-3, atol=1e-4)
    x = emotion_inputs(cpu, small_mlp.inputs).cuda()
    model, hist = train_emotion_mlp(x, index_targets(subset_index(tiny_index, range(8))).to("cuda"),
                                    small_mlp, torch.Generator().manual_seed(0))
    pred = predict_emotion(model, x)
    assert pred.logits.is_cuda and torch.isfinite(pred.logits).all() and len(hist.holdout_loss) >= 1
