"""``python -m tempsmirk evaluate``: the paper's Table 2 from the command line (chapter 6).

Examples::

    python -m tempsmirk evaluate --affectnet AFFECTNET_ROOT \\
        --checkpoint non-temporal=smirk.pt --checkpoint temporal=temporal.pt --out results/
    python -m tempsmirk evaluate --synthetic --image-size 64 --checkpoint demo=demo.pt --out results/

``--affectnet`` takes an AffectNet root (``training.csv``, ``validation.csv`` and the images) or a
folder already prepared by ``python -m data_prep.affectnet`` (holding ``index.csv``).
``--synthetic`` writes the synthetic AffectNet-format set (cached) and evaluates on it. Where the
data has ground-truth parameters (``ground_truth.npz``, synthetic only) an oracle row is added.
Outputs in ``--out``: ``table.csv``, ``table.md``, ``metrics.json`` and one PNG per encoder.
Exit codes: 0 done, 2 bad input (the message says what to change).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

__all__ = ["register", "run", "parse_checkpoints"]


def parse_checkpoints(items: list[str]) -> dict[str, Path]:
    """``NAME=PATH`` strings -> {name: path}, in order.

    Raises:
        ValueError: a malformed item, a repeated name or a path that is not a file.
    """
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ValueError(f"--checkpoint expects NAME=PATH (e.g. temporal=runs/t/smirk.pt); got {item!r}")
        if name in out:
            raise ValueError(f"--checkpoint name {name!r} is given twice; give each encoder its own name")
        if not Path(path).is_file():
            raise ValueError(f"--checkpoint {name}: file {path} does not exist; give the path of a "
                             f"SMIRK-layout checkpoint")
        out[name] = Path(path)
    return out


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``evaluate`` command to an ``add_subparsers()`` object."""
    p = subparsers.add_parser(
        "evaluate", help="emotion evaluation of FLAME encoders (chapter 6)",
        description="Train the EmotionVA MLP on each encoder's FLAME parameters (AffectNet training "
                    "split) and report V-CCC, V-RMSE, A-CCC, A-RMSE and E-ACC on the validation split.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--affectnet", type=Path, metavar="ROOT",
                        help="AffectNet root (training.csv, validation.csv, images) or a prepared "
                             "folder holding index.csv")
    source.add_argument("--synthetic", action="store_true",
                        help="use the synthetic AffectNet-format set (generated once, cached)")
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                   help="an encoder to compare (repeatable; table order)")
    p.add_argument("--image-size", type=int, default=224,
                   help="the encoders' input size; crops are resized to it (official SMIRK: 224)")
    p.add_argument("--crop-size", type=int, default=224, help="side of the prepared crops")
    p.add_argument("--crops", type=Path, default=None, help="folder for the crops (default: a cache folder)")
    p.add_argument("--ground-truth", type=Path, default=None,
                   help="ground_truth.npz for the oracle row (default: ROOT/ground_truth.npz if present)")
    p.add_argument("--no-oracle", action="store_true", help="leave out the oracle row")
    p.add_argument("--cache", type=Path, default=None, help="parameter cache folder")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-train", type=int, default=None, help="encode at most N training images")
    p.add_argument("--per-class", type=int, default=500, help="--synthetic: training images per class")
    p.add_argument("--hidden", type=int, default=2048, help="MLP width")
    p.add_argument("--lr", type=float, default=1e-4, help="MLP learning rate (Adam)")
    p.add_argument("--max-epochs", type=int, default=100)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the evaluation for parsed arguments; returns the exit code."""
    import torch

    from tempsmirk.evaluation.emotion import EmotionMLPConfig
    from tempsmirk.evaluation.pipeline import (EvaluationConfig, evaluate_encoders, prepare_index,
                                               results_table, write_report)
    from tempsmirk.evaluation.synthetic_affectnet import (GROUND_TRUTH_FILE, SyntheticAffectNetConfig,
                                                          ground_truth_params, load_ground_truth,
                                                          write_synthetic_affectnet)

    def fail(message: str) -> int:
        print(f"error: {message}", file=sys.stderr)
        return 2

    progress = not args.quiet
    try:
        checkpoints = parse_checkpoints(args.checkpoint)
    except ValueError as exc:
        return fail(str(exc))
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        return fail(f"--device {args.device}: no CUDA device is available here; use --device cpu")
    if args.image_size < 32 or args.crop_size < 32:
        return fail(f"--image-size and --crop-size must be at least 32; got {args.image_size}, "
                    f"{args.crop_size}")
    crop_size = args.crop_size
    try:
        if args.synthetic:
            cfg = SyntheticAffectNetConfig(n_train_per_class=args.per_class,
                                           n_val_per_class=max(2, args.per_class // 5),
                                           image_size=args.image_size, seed=args.seed)
            root = write_synthetic_affectnet(None, cfg, progress=progress)
            crop_size = args.image_size
        else:
            root = args.affectnet
        index = prepare_index(root, args.crops, crop_size, progress=progress)
        gt_file = args.ground_truth or (root / GROUND_TRUTH_FILE)
        ground_truth = None
        if not args.no_oracle and (args.ground_truth is not None or gt_file.is_file()):
            ground_truth = partial(ground_truth_params, load_ground_truth(gt_file))
        if not checkpoints and ground_truth is None:
            return fail("nothing to evaluate: give at least one --checkpoint NAME=PATH (ground-truth "
                        "parameters for an oracle row exist only for --synthetic)")
        mlp = EmotionMLPConfig(hidden=args.hidden, lr=args.lr, max_epochs=args.max_epochs,
                               patience=args.patience)
        ecfg = EvaluationConfig(image_size=args.image_size, crop_size=crop_size,
                                max_train_images=args.max_train, mlp=mlp)
        results = evaluate_encoders(index, checkpoints, ecfg, ground_truth, cache=args.cache,
                                    device=args.device, seed=args.seed, progress=progress)
        write_report(results, args.out)
    except (FileNotFoundError, ValueError) as exc:  # CheckpointError is a ValueError
        return fail(str(exc))
    print(results_table(results))
    print(f"report written to {args.out}")
    return 0


def main(argv=None) -> int:
    """Stand-alone entry (the project's CLI registers :func:`register` instead)."""
    parser = argparse.ArgumentParser(prog="python -m tempsmirk")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
