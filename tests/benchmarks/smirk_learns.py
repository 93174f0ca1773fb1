"""Evidence that SMIRK training learns: expression and pose error against ground truth, before
and after a short CPU run on synthetic faces (issue 4).

    .venv/bin/python tests/benchmarks/smirk_learns.py --steps 400 --out /tmp/smirk_learns optim.lr=4e-3

Trains with tempsmirk/configs/smirk_synthetic_small.yaml (64 px, batch 8) and evaluates the
untrained and the trained encoder on held-out synthetic faces (another data seed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from tempsmirk.config import load_config
from tempsmirk.data import SyntheticFaces, collate_faces
from tempsmirk.paths import repo_root
from tempsmirk.training import Trainer, load_flame


@torch.no_grad()
def errors(encoder, loader) -> dict[str, float]:
    """Mean errors over a loader: expression RMSE (coefficients), pose and jaw in degrees."""
    encoder.eval()
    exp_sq, pose_abs, jaw_abs, lid_abs, n = 0.0, 0.0, 0.0, 0.0, 0
    for batch in loader:
        p, gt = encoder(batch.image), batch.params
        exp_sq += float((p.expression - gt.expression).pow(2).mean(1).sum())
        pose_abs += float((p.global_pose - gt.global_pose).abs().mean(1).sum())
        jaw_abs += float((p.jaw_pose - gt.jaw_pose).abs().mean(1).sum())
        lid_abs += float((p.eyelids - gt.eyelids).abs().mean(1).sum())
        n += batch.batch_size
    deg = 180 / torch.pi
    return {"expression_rmse": (exp_sq / n) ** 0.5, "pose_deg": pose_abs / n * deg,
            "jaw_deg": jaw_abs / n * deg, "eyelid_abs": lid_abs / n}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", default="/tmp/smirk_learns")
    ap.add_argument("--eval-items", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("overrides", nargs="*", help="extra config overrides, e.g. optim.lr=4e-3")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(repo_root() / "tempsmirk" / "configs" / "smirk_synthetic_small.yaml",
                      [f"run.dir={args.out}", f"train.steps={args.steps}", *args.overrides])
    if (Path(args.out) / "checkpoints" / "last.pt").exists():
        raise SystemExit(f"{args.out} already holds a run; pick another --out")
    trainer = Trainer(cfg)
    held_out = SyntheticFaces(load_flame(None, cfg.model.n_shape, cfg.model.n_exp),
                              type(cfg.data.synthetic)(**{**vars(cfg.data.synthetic), "seed": 12345,
                                                          "n_items": args.eval_items}))
    loader = DataLoader(held_out, batch_size=16, collate_fn=collate_faces)
    before = errors(trainer.encoder, loader)
    zero = {"expression_rmse": float(torch.stack([held_out[i].params.expression for i in range(len(held_out))]).pow(2).mean().sqrt())}
    tic = time.perf_counter()
    trainer.train()
    minutes = (time.perf_counter() - tic) / 60
    after = errors(trainer.encoder, loader)
    print(f"overrides: {args.overrides}")
    print(f"{args.steps} steps at {cfg.data.synthetic.image_size} px, batch {cfg.train.batch_size}, "
          f"{minutes:.1f} min on CPU; {len(held_out)} held-out faces")
    print(f"{'metric':<18}{'untrained':>12}{'trained':>12}")
    for k in before:
        print(f"{k:<18}{before[k]:>12.4f}{after[k]:>12.4f}")
    print(f"(expression RMSE of predicting all zeros: {zero['expression_rmse']:.4f})")


if __name__ == "__main__":
    main()
