"""What each step towards EMOCA's emotion-evaluation protocol does to the table (issue 16).

    .venv/bin/python tests/benchmarks/emotion_protocol.py --per-class 100 --val-per-class 50 --seeds 5

Writes (or reuses) a synthetic AffectNet with AffectNet's training class mix, encodes it with
the untrained encoder and the demo SMIRK checkpoint under each crop rule, and trains the emotion
MLP under cumulative protocol steps, starting from the protocol this project used before:

0. before: CSV-box crops, natural class mix, correlation terms weighted 2 (six terms of weight
   1), fixed weights, a check per epoch, patience 10, at most 80 epochs (the chapter's small MLP);
1. + EMOCA's class-balanced sampler;  2. + EMOCA's loss weights;  3. + the shake;
4. + EMOCA's model selection (every 0.2 epoch, patience 10 checks, at most 50 epochs);
5. + SMIRK's crops (MediaPipe box x 1.4), the default on AffectNet;  and, each on top of step 4
   or 5 alone: EMOCA's crops, shape + expression + jaw inputs, and unstandardised inputs
   (EMOCA feeds the raw parameters).

The oracle row (the true parameters) does not depend on the crops: it shows what the MLP-side
steps do when the parameters carry the emotion. The mean row is the trivial answer (training
mean valence/arousal, the most frequent training class). Prints mean ± std over the MLP seeds
per row, plus the mean recall of the three rarest classes (where balanced batches should help).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from functools import partial

import numpy as np
import torch

from tempsmirk.evaluation import (
    EmotionLossConfig,
    EmotionMLPConfig,
    EmotionPrediction,
    SyntheticAffectNetConfig,
    emotion_metrics,
    encoder_parameters,
    evaluate_parameters,
    ground_truth_params,
    index_targets,
    load_ground_truth,
    prepare_index,
    untrained_checkpoint,
    write_synthetic_affectnet,
)
from tempsmirk.training import DEMO_IMAGE_SIZE, demo_checkpoint

COLUMNS = ("v_ccc", "v_rmse", "a_ccc", "a_rmse", "e_acc", "v_sagr", "a_sagr")
RARE = (4, 5, 7)  # Fear, Disgust, Contempt: about 1-2 % of AffectNet's training images each


def steps(small: EmotionMLPConfig) -> list[tuple[str, str, EmotionMLPConfig]]:
    """(name, crop rule, MLP config) per protocol step, cumulative as the module docstring says."""
    before = replace(small, sampler="natural", val_check_interval=1.0, patience=10, max_epochs=80,
                     loss=EmotionLossConfig(va_pcc=2.0, va_ccc=2.0, va_scheme="none"))
    balanced = replace(before, sampler="balanced")
    weights = replace(balanced, loss=EmotionLossConfig(va_scheme="none"))
    shake = replace(weights, loss=EmotionLossConfig())
    selection = replace(shake, val_check_interval=0.2, patience=10, max_epochs=50)
    shape = replace(selection, inputs=["shape", "expression", "jaw_pose"])
    raw = replace(selection, standardize=False)
    return [("0 before", "csv_box", before), ("1 + balanced sampler", "csv_box", balanced),
            ("2 + EMOCA loss weights", "csv_box", weights), ("3 + shake", "csv_box", shake),
            ("4 + EMOCA model selection", "csv_box", selection), ("5 + SMIRK crops", "smirk", selection),
            ("4 + EMOCA crops", "emoca", selection), ("5 + shape input", "smirk", shape),
            ("4 + unstandardised inputs", "csv_box", raw)]


def _rare_recall(confusion: torch.Tensor) -> float:
    """Mean recall of the :data:`RARE` classes from a (K, K) confusion matrix (rows: true)."""
    c = confusion.double()
    return float(torch.stack([c[k, k] / c[k].sum().clamp_min(1) for k in RARE]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=100, help="training images per class (mean)")
    parser.add_argument("--val-per-class", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=5, help="MLP seeds per row")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=256, help="MLP width (the chapter's small MLP)")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--sources", default="oracle,untrained,demo")
    args = parser.parse_args()
    torch.set_num_threads(1)
    size = DEMO_IMAGE_SIZE
    cfg = SyntheticAffectNetConfig(n_train_per_class=args.per_class, n_val_per_class=args.val_per_class,
                                   image_size=size, seed=args.data_seed)
    t0 = time.perf_counter()
    root = write_synthetic_affectnet(None, cfg, progress=False)
    gt = partial(ground_truth_params, load_ground_truth(root))
    print(f"data: {root} ({time.perf_counter() - t0:.0f} s)")
    checkpoints = {"untrained": untrained_checkpoint(0), "demo": demo_checkpoint("small", seed=0)}
    small = EmotionMLPConfig(hidden=args.hidden, n_hidden=args.layers, lr=args.lr)
    splits: dict[str, tuple] = {}
    cache: dict[tuple[str, str], tuple] = {}

    def split(rule: str):
        if rule not in splits:
            index = prepare_index(root, crop_size=size, rule=rule, progress=False)
            splits[rule] = (index.select("train"), index.select("validation"))
        return splits[rule]

    def parameters(source: str, rule: str):
        rule = "csv_box" if source == "oracle" else rule  # the truth does not depend on crops
        if (source, rule) not in cache:
            train, test = split(rule)
            if source == "oracle":
                cache[source, rule] = (gt(train.source_paths), gt(test.source_paths))
            else:
                cache[source, rule] = tuple(encoder_parameters(checkpoints[source], part, size, progress=False)
                                            for part in (train, test))
        return split(rule), cache[source, rule]

    print("| source | step | " + " | ".join(COLUMNS) + " | rare recall | kept epoch | time |")
    print("|---" * (len(COLUMNS) + 5) + "|")
    train, test = split("csv_box")
    t_train, t_test = index_targets(train), index_targets(test)
    n = len(t_test)
    majority = torch.zeros(n, 8)
    majority[:, int(torch.bincount(t_train.expression).argmax())] = 1
    mean = EmotionPrediction(t_train.valence.mean().expand(n), t_train.arousal.mean().expand(n), majority)
    m = emotion_metrics(mean, t_test)
    print("| mean | - | " + " | ".join(f"{getattr(m, c):.3f}" for c in COLUMNS) + " | 0.000 | - | - |")
    for source in args.sources.split(","):
        for name, rule, mlp in steps(small):
            if source == "oracle" and rule != "csv_box" and mlp.inputs == small.inputs:
                continue  # crops do not move the oracle
            (train, test), (p_train, p_test) = parameters(source, rule)
            t1 = time.perf_counter()
            results = [evaluate_parameters(source, p_train, index_targets(train), p_test, index_targets(test),
                                           mlp, seed=s) for s in range(args.seeds)]
            values = np.array([[getattr(r.metrics, c) for c in COLUMNS] + [_rare_recall(r.confusion)]
                               for r in results])
            cells = " | ".join(f"{m:.3f} ± {d:.3f}" for m, d in zip(values.mean(0), values.std(0)))
            kept = np.mean([r.history.best_epoch for r in results])
            print(f"| {source} | {name} | {cells} | {kept:.1f} | {time.perf_counter() - t1:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
