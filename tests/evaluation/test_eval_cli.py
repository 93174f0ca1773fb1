"""``python -m tempsmirk evaluate`` through its register/run pair."""

from __future__ import annotations

import argparse
import json

import pytest

from tempsmirk.evaluation.cli import parse_checkpoints, parse_inputs, register


def _run(argv):
    parser = argparse.ArgumentParser(prog="python -m tempsmirk")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["evaluate", *argv])
    return args.func(args)


def test_missing_index_is_a_clear_error(tmp_path, capsys):
    assert _run(["--affectnet", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "index.csv" in err and "training.csv" in err


def test_missing_checkpoint_is_a_clear_error(tiny_affectnet, tmp_path, capsys):
    code = _run(["--affectnet", str(tiny_affectnet), "--checkpoint", f"temporal={tmp_path / 'x.pt'}",
                 "--out", str(tmp_path / "o")])
    assert code == 2
    assert "temporal" in capsys.readouterr().err


def test_checkpoint_arguments(tmp_path, untrained_ckpt):
    assert parse_checkpoints([f"a={untrained_ckpt}", f"b = {untrained_ckpt}"]) == {"a": untrained_ckpt,
                                                                                   "b": untrained_ckpt}
    good = f"a={untrained_ckpt}"
    for bad in ([str(untrained_ckpt)], [f"={untrained_ckpt}"], [good, good]):
        with pytest.raises(ValueError, match="NAME=PATH|twice"):
            parse_checkpoints(bad)


def test_nothing_to_compare(tiny_index, tmp_path, capsys):
    root = tiny_index.crop_paths[0].parents[3]  # a prepared folder: index.csv, no ground truth
    assert _run(["--affectnet", str(root), "--out", str(tmp_path / "o")]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err


def test_help_ends_with_an_emoca_faithful_command(capsys):
    with pytest.raises(SystemExit):
        _run(["--help"])
    text = capsys.readouterr().out.rstrip()
    tail = text[text.index("EMOCA's protocol"):]
    for flag in ("--sampler balanced", "--w-nll 1 --w-v-mse 1 --w-a-mse 1 --w-va-pcc 1 --w-va-ccc 1",
                 "--va-scheme shake", "--val-interval 0.2 --patience 10 --max-epochs 50", "--lr 1e-4",
                 "--batch-size 64", "--hidden 2048 --layers 4", "--inputs expression,jaw_pose",
                 "--crop-rule smirk"):
        assert flag in tail, flag
    assert text.endswith("--max-epochs 50 --holdout 0.1 --out results/")  # the last example
    # Every flag in the example parses, and to EMOCA's values (the defaults).
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    example = tail[tail.index("python -m tempsmirk evaluate"):tail.index("--out results/")].replace("\\", " ")
    args = parser.parse_args(["evaluate", *example.split()[4:], "--out", "x"])
    from tempsmirk.evaluation.cli import _mlp_config
    from tempsmirk.evaluation.emotion import EmotionMLPConfig

    assert _mlp_config(args) == EmotionMLPConfig()


def test_inputs_argument():
    assert parse_inputs("shape, expression,jaw_pose") == ["shape", "expression", "jaw_pose"]
    for bad in ("", "cam", "expression,expression"):
        with pytest.raises(ValueError, match="--inputs"):
            parse_inputs(bad)


def test_protocol_options_reach_the_run(tiny_affectnet, tiny_index, untrained_ckpt, tmp_path, capsys):
    root = tiny_index.crop_paths[0].parents[3]
    out = tmp_path / "report"
    code = _run(["--affectnet", str(root), "--no-oracle", "--checkpoint", f"u={untrained_ckpt}",
                 "--image-size", "32", "--hidden", "16", "--layers", "1", "--sampler", "natural",
                 "--inputs", "shape,expression,jaw_pose", "--w-va-pcc", "2", "--va-scheme", "none",
                 "--val-interval", "1", "--patience", "3", "--max-epochs", "2", "--batch-size", "16",
                 "--cache", str(tmp_path / "cache"), "--out", str(out), "--quiet"])
    assert code == 0
    cfg = json.loads((out / "config.json").read_text())
    mlp = cfg["evaluation"]["mlp"]
    assert (mlp["sampler"], mlp["inputs"], mlp["hidden"], mlp["n_hidden"], mlp["val_check_interval"]) == \
        ("natural", ["shape", "expression", "jaw_pose"], 16, 1, 1.0)
    assert mlp["loss"]["va_pcc"] == 2 and mlp["loss"]["va_scheme"] == "none"
    assert cfg["crop"]["rule"] == "csv_box"  # auto: the prepared folder's own rule
    printed = capsys.readouterr().out
    assert "shape (300) + expression (50) + jaw_pose (3)" in printed and "natural class mix" in printed
    assert _run(["--affectnet", str(root), "--crop-rule", "emoca", "--checkpoint", f"u={untrained_ckpt}",
                 "--out", str(out)]) == 2
    assert "not with rule 'emoca'" in capsys.readouterr().err


def test_runs_on_a_prepared_index(tiny_affectnet, tiny_index, untrained_ckpt, tmp_path, capsys):
    root = tiny_index.crop_paths[0].parents[3]
    out = tmp_path / "report"
    code = _run(["--affectnet", str(root), "--ground-truth", str(tiny_affectnet / "ground_truth.npz"),
                 "--checkpoint", f"untrained={untrained_ckpt}", "--image-size", "32", "--hidden", "32",
                 "--max-epochs", "3", "--cache", str(tmp_path / "cache"), "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| oracle (ground truth) |" in printed and "| untrained |" in printed
    assert (out / "table.md").is_file() and (out / "untrained.png").is_file()
