"""The pipeline: parameter cache, the end-to-end table on a tiny synthetic set, the report."""

from __future__ import annotations

import json
from functools import partial

import pytest
import torch

from tempsmirk.evaluation import pipeline
from tempsmirk.evaluation.metrics import TABLE_COLUMNS
from tempsmirk.evaluation.pipeline import (
    EvaluationConfig,
    encoder_parameters,
    evaluate_encoders,
    prepare_index,
    subset_index,
)
from tempsmirk.evaluation.report import protocol_table, results_table, write_report
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


def test_prepare_index_errors_clearly(tmp_path, tiny_index):
    with pytest.raises(FileNotFoundError, match="training.csv"):
        prepare_index(tmp_path)
    # A prepared folder that does not record its crop rule cannot be measured honestly.
    (tmp_path / "index.csv").write_bytes((tiny_index.crop_paths[0].parents[3] / "index.csv").read_bytes())
    with pytest.raises(ValueError, match="crop_settings.json"):
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
    assert all(c in table.splitlines()[0] for c in TABLE_COLUMNS + ("V-SAGR", "A-SAGR"))
    assert f"| oracle (ground truth) | {oracle.metrics.v_ccc:.4f} |" in table
    view = results_table(results, "table")  # the same table for a notebook (HTML)
    assert view.labels == ("oracle (ground truth)", "untrained") and view.to_markdown() == table
    assert view.cells[1][4] == f"{untrained.metrics.e_acc:.4f}"
    assert oracle.metrics.v_sagr > 0.7  # the oracle's valence mostly has the right sign
    written = write_report(results, tmp_path / "report", cfg, tiny_index.crop)
    names = sorted(p.name for p in written)
    assert names == ["config.json", "metrics.json", "oracle_ground_truth.png", "table.csv", "table.md",
                     "untrained.png"]
    payload = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert payload[1]["e_acc"] == pytest.approx(untrained.metrics.e_acc)
    assert payload[0]["best_epoch"] == oracle.history.best_epoch and payload[0]["stop_reason"]
    csv_lines = (tmp_path / "report" / "table.csv").read_text().splitlines()
    assert csv_lines[0].startswith("encoder,V-CCC,V-RMSE,A-CCC,A-RMSE,E-ACC,V-SAGR,A-SAGR")
    assert len(csv_lines) == 3
    md = (tmp_path / "report" / "table.md").read_text()
    assert "csv_box: CSV face box x 1.25, 32 px" in md and "class-balanced" in md
    config = json.loads((tmp_path / "report" / "config.json").read_text())
    assert config["crop"]["rule"] == "csv_box" and config["evaluation"]["mlp"]["sampler"] == "balanced"


def test_protocol_table_states_every_setting():
    from tempsmirk.evaluation.emotion import EmotionLossConfig, EmotionMLPConfig

    text = protocol_table(EvaluationConfig())
    assert protocol_table(EvaluationConfig(), style="table").to_markdown() == text
    for piece in ("smirk: MediaPipe box x 1.4, 224 px", "expression (50) + jaw_pose (3), standardised",
                  "4 × 2048", "class-balanced", "1·NLL + 1·MSE_v + 1·MSE_a + 1·(1 − PCC̄) + 1·(1 − CCC̄); shake",
                  "Adam 0.0001", "every 0.2 epoch, patience 10 checks, ≤ 50 epochs", "whole validation set"):
        assert piece in text, piece
    other = EvaluationConfig(crop_rule="emoca", mlp=EmotionMLPConfig(
        inputs=["shape", "expression", "jaw_pose"], sampler="natural",
        loss=EmotionLossConfig(va_pcc=2, va_ccc=2, va_scheme="none")))
    text = protocol_table(other)
    for piece in ("emoca: 68-landmark box x 1.1 x 1.25", "shape (300) + expression (50)", "natural class mix",
                  "2·(1 − PCC̄) + 2·(1 − CCC̄); fixed weights"):
        assert piece in text, piece


def test_smirk_crops_come_from_mediapipe_on_the_image(tiny_affectnet, tmp_path):
    import numpy as np

    from tempsmirk.data.affectnet import parse_annotations
    from tempsmirk.video.io import read_image
    from tempsmirk.video.landmarks import detect_frames

    index = prepare_index(tiny_affectnet, tmp_path / "smirk", crop_size=32, rule="smirk", progress=False)
    assert index.crop.rule == "smirk" and index.crop.scale == pytest.approx(1.4)
    report = json.loads((tmp_path / "smirk" / "report.json").read_text())
    val = next(r for r in report if r["csv"] == "validation.csv")
    n = val["kept"]
    assert val["crop_methods"].get("mediapipe", 0) >= 0.8 * n  # MediaPipe finds the rendered faces
    assert sum(val["crop_methods"].values()) == n
    assert len(val["crop_fallback"]) == val["crop_methods"].get("landmarks68", 0)
    # One crop against the box computed by hand from MediaPipe's 478 points on the source image.
    rows, _ = parse_annotations(tiny_affectnet / "validation.csv")
    fallback = set(val["crop_fallback"])
    r = next(r for r in rows if r.path not in fallback)
    image = read_image(tiny_affectnet / "Manually_Annotated_Images" / r.path)
    lm, found, _ = detect_frames([image], tracking=False)
    assert found[0]
    xy = lm[0, :, :2].astype(np.float64)
    center = (xy.min(0) + xy.max(0)) / 2
    side = (xy.max(0) - xy.min(0)).mean() * 1.4
    k = 32 / side  # the crop's outer edges are the box's edges (tempsmirk.video.crops convention)
    i = index.source_paths.index(r.path)
    crop = read_image(index.crop_paths[i]).astype(np.float64)
    u = np.arange(32)
    src_x = (u - 15.5) / k + center[0]
    src_y = (u - 15.5) / k + center[1]
    # Nearest-pixel resampling by hand; the stored crop is bilinear and JPEG, so compare loosely.
    sx = np.clip(np.round(src_x).astype(int), 0, image.shape[1] - 1)
    sy = np.clip(np.round(src_y).astype(int), 0, image.shape[0] - 1)
    inside = ((src_x >= 0) & (src_x <= image.shape[1] - 1))[None, :] & \
        ((src_y >= 0) & (src_y <= image.shape[0] - 1))[:, None]
    by_hand = image[sy][:, sx].astype(np.float64)
    assert np.abs(crop - by_hand)[inside].mean() < 10  # 6-8 here; a 1.25 or 1.6 box gives > 13
    # The rule is recorded: asking for another rule on this folder is refused, not mixed.
    with pytest.raises(ValueError, match="made with smirk"):
        prepare_index(tiny_affectnet, tmp_path / "smirk", crop_size=32, rule="emoca", progress=False)
    with pytest.raises(ValueError, match="not with rule 'emoca'"):
        prepare_index(tmp_path / "smirk", rule="emoca")
    assert prepare_index(tmp_path / "smirk").crop.rule == "smirk"  # a prepared folder, rule unset


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
