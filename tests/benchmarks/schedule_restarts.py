"""What SMIRK's per-epoch schedule restart costs: one cosine vs restarts with a rebuilt generator Adam.

    .venv/bin/python tests/benchmarks/schedule_restarts.py [--epochs 3] [--epoch-length 30] [--size 64]

SMIRK's ``train.py`` calls ``configure_optimizers`` at every epoch: both cosine schedules restart
from the full learning rate, and the generator's Adam is built anew (its ``hasattr`` check names
an attribute that never exists), so its moment estimates start from zero each epoch. This script
trains the same synthetic run twice from the same seed — (a) one cosine over all iterations (what
the Trainer does), (b) SMIRK's restarts and rebuilds at every epoch boundary — and prints the
reconstruction L1 and landmark losses per epoch, and the L1 right after each boundary.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch

from tempsmirk.config import load_config
from tempsmirk.training import Trainer
from tempsmirk.training.trainer import lr_factor


def run(restart: bool, epochs: int, length: int, size: int, seed: int) -> list[dict]:
    cfg = load_config(
        None,
        [
            f"run.dir={tempfile.mkdtemp(prefix='sched_')}",
            f"train.steps={epochs * length}",
            "train.batch_size=8",
            f"data.synthetic.image_size={size}",
            "data.synthetic.n_items=4096",
            "loss.weights.perceptual=0",
            "loss.weights.shape_reg=0.01",
            "train.log_every=0",
            "train.image_every=0",
            "train.checkpoint_every=0",
            "train.device=cpu",
            f"run.seed={seed}",
        ],
    )
    t = Trainer(cfg, progress=False)
    o = cfg.optim
    rows = []
    for i, batch in enumerate(t.loader(0, epochs * length)):
        if restart and i % length == 0:
            # SMIRK's configure_optimizers: a new generator Adam, both cosines over one epoch.
            t.opt_generator = torch.optim.Adam(t.generator.parameters(), lr=o.lr, betas=tuple(o.generator_betas))
            for g in t.opt_encoder.param_groups:
                g["lr"] = g["initial_lr"] = o.lr * o.encoder_lr_scale
            f = lr_factor(length, 0, o.final_lr_scale)
            t.sched_encoder = torch.optim.lr_scheduler.LambdaLR(t.opt_encoder, f)
            t.sched_generator = torch.optim.lr_scheduler.LambdaLR(t.opt_generator, f)
        out = t.train_step(batch)
        rows.append(out.losses.as_floats())
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--epoch-length", type=int, default=30)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    e, n = args.epochs, args.epoch_length
    runs = {name: run(name == "restarts", e, n, args.size, args.seed) for name in ("one cosine", "restarts")}
    print(f"{e} epochs x {n} iterations, batch 8, {args.size} px, seed {args.seed} (synthetic faces)")
    print(
        f"{'schedule':<12}"
        + "".join(f"{'L1 ep' + str(k + 1):>10}{'lmk ep' + str(k + 1):>10}" for k in range(e))
        + f"{'L1 after restarts':>20}"
    )
    for name, rows in runs.items():
        l1 = np.array([r["reconstruction"] for r in rows]).reshape(e, n)
        lmk = np.array([r["landmarks_mp"] + r["landmarks_fan"] for r in rows]).reshape(e, n)
        after = l1[1:, :5].mean() if e > 1 else float("nan")
        print(
            f"{name:<12}"
            + "".join(f"{l1[k].mean():>10.4f}{lmk[k].mean():>10.4f}" for k in range(e))
            + f"{after:>20.4f}"
        )


if __name__ == "__main__":
    main()
