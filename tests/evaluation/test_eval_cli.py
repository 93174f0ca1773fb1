"""``python -m tempsmirk evaluate`` through its register/run pair."""

from __future__ import annotations

import argparse

import pytest

from tempsmirk.evaluation.cli import parse_checkpoints, register


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
