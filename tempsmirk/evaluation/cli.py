"""``python -m tempsmirk evaluate``: the paper's Table 2 from the command line (chapter 6).

Examples::

    python -m tempsmirk evaluate --affectnet AFFECTNET_ROOT \\
        --checkpoint non-temporal=smirk.pt --checkpoint temporal=temporal.pt --out results/
    python -m tempsmirk evaluate --synthetic --image-size 64 --checkpoint demo=demo.pt --out results/

``--affectnet`` takes an AffectNet root (``training.csv``, ``validation.csv`` and the images) or a
folder already prepared by ``python -m data_prep.affectnet`` (holding ``index.csv``).
``--synthetic`` writes the synthetic AffectNet-format set (cached) and evaluates on it. Where the
data has ground-truth parameters (``ground_truth.npz``, synthetic only) an oracle row is added.
Every default is EMOCA's protocol (:mod:`tempsmirk.evaluation.emotion`); each option that
departs from it is named. ``--crop-rule auto`` frames the faces as the encoders were trained:
SMIRK's rule on AffectNet, the renders' own framing on the synthetic set, and whatever a
prepared folder was cropped with.
Outputs in ``--out``: ``table.csv``, ``table.md`` (with the protocol), ``metrics.json``,
``config.json`` and one PNG per encoder. Exit codes: 0 done, 2 bad input (the message says what
to change).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from tempsmirk.cli_help import ExamplesHelpFormatter

__all__ = ["register", "run", "parse_checkpoints", "parse_inputs", "EMOCA_EXAMPLE", "EXAMPLES"]

#: The command ``evaluate --help`` ends with: every protocol setting spelt out at EMOCA's value.
EMOCA_EXAMPLE = """\
  python -m tempsmirk evaluate --affectnet AFFECTNET_ROOT \\
      --checkpoint non-temporal=smirk.pt --checkpoint temporal=temporal.pt \\
      --crop-rule smirk --image-size 224 \\
      --inputs expression,jaw_pose --hidden 2048 --layers 4 \\
      --sampler balanced --batch-size 64 --lr 1e-4 \\
      --w-nll 1 --w-v-mse 1 --w-a-mse 1 --w-va-pcc 1 --w-va-ccc 1 --va-scheme shake \\
      --val-interval 0.2 --patience 10 --max-epochs 50 --holdout 0.1 --out results/"""

#: The end of ``evaluate --help``: the synthetic set (no assets), real AffectNet, EMOCA's protocol.
EXAMPLES = f"""\
--crop-rule smirk frames faces as SMIRK's encoders were trained (MediaPipe box x 1.4); use
--crop-rule emoca for encoders trained on EMOCA/DECA crops (68-landmark box x 1.1 x 1.25), and
--inputs shape,expression,jaw_pose for the input of EMOCA's released models.

examples:
  # no assets: the synthetic AffectNet-format set; the oracle row (the true parameters)
  python -m tempsmirk evaluate --synthetic --per-class 100 --image-size 64 \\
      --out results/
  # real AffectNet, two encoders (every other setting at EMOCA's value)
  python -m tempsmirk evaluate --affectnet AFFECTNET_ROOT \\
      --checkpoint non-temporal=smirk.pt --checkpoint temporal=temporal.pt \\
      --out results/
  # the same, EMOCA's protocol spelt out (the defaults; --crop-rule auto is smirk here)
{EMOCA_EXAMPLE}"""


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


def parse_inputs(text: str) -> list[str]:
    """``"shape,expression,jaw_pose"`` -> the MLP's input fields, checked against INPUT_FIELDS."""
    from tempsmirk.evaluation.emotion import INPUT_FIELDS

    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in INPUT_FIELDS]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(f"--inputs expects distinct names from {', '.join(INPUT_FIELDS)} separated by "
                         f"commas (e.g. expression,jaw_pose); got {text!r}")
    return names


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``evaluate`` command to an ``add_subparsers()`` object."""
    from tempsmirk.data.affectnet import CROP_RULES
    from tempsmirk.evaluation.emotion import SAMPLERS, VA_SCHEMES

    p = subparsers.add_parser(
        "evaluate", help="emotion evaluation of FLAME encoders (chapter 6)",
        description="Train the EmotionVA MLP on each encoder's FLAME parameters (AffectNet training "
                    "split) as EMOCA trains it and report V-CCC, V-RMSE, A-CCC, A-RMSE, E-ACC and "
                    "SAGR on the validation split (all over the whole split).",
        epilog=EXAMPLES, formatter_class=ExamplesHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--affectnet", type=Path, metavar="ROOT",
                        help="AffectNet root (training.csv, validation.csv, images) or a prepared "
                             "folder holding index.csv")
    source.add_argument("--synthetic", action="store_true",
                        help="use the synthetic AffectNet-format set (generated once, cached)")
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                   help="an encoder to compare (repeatable; table order)")
    p.add_argument("--out", type=Path, required=True, help="output folder")

    data = p.add_argument_group("images and crops")
    data.add_argument("--image-size", type=int, default=224,
                      help="the encoders' input size; crops are resized to it (official SMIRK: 224)")
    data.add_argument("--crop-rule", choices=("auto",) + CROP_RULES, default="auto",
                      help="smirk: MediaPipe box x 1.4; emoca: 68-landmark box x 1.1 x 1.25; csv_box: "
                           "AffectNet's face box x 1.25; auto: smirk on AffectNet, csv_box (the renders' "
                           "framing) on --synthetic, the folder's own rule for a prepared folder")
    data.add_argument("--crop-scale", type=float, default=None,
                      help="replace the rule's box scale (default: the rule's own)")
    data.add_argument("--crop-size", type=int, default=224, help="side of the prepared crops")
    data.add_argument("--crops", type=Path, default=None, help="folder for the crops (default: a cache folder)")
    data.add_argument("--max-train", type=int, default=None, help="encode at most N training images")
    data.add_argument("--per-class", type=int, default=500,
                      help="--synthetic: training images per class (on average: AffectNet's class mix)")
    data.add_argument("--cache", type=Path, default=None, help="parameter cache folder")
    data.add_argument("--ground-truth", type=Path, default=None,
                      help="ground_truth.npz for the oracle row (default: ROOT/ground_truth.npz if present)")
    data.add_argument("--no-oracle", action="store_true", help="leave out the oracle row")

    mlp = p.add_argument_group("the emotion MLP (defaults: EMOCA's)")
    mlp.add_argument("--inputs", default="expression,jaw_pose",
                     help="parameter fields the MLP reads, comma-separated (EMOCA's released models: "
                          "shape,expression,jaw_pose)")
    mlp.add_argument("--no-standardize", action="store_true",
                     help="feed the parameters unscaled, as EMOCA does (default: standardised)")
    mlp.add_argument("--hidden", type=int, default=2048, help="width of the hidden layers")
    mlp.add_argument("--layers", type=int, default=4, help="number of hidden layers")
    mlp.add_argument("--sampler", choices=SAMPLERS, default="balanced",
                     help="balanced: EMOCA's balanced_expr (1 / class count, with replacement); natural: "
                          "the data's class mix")
    mlp.add_argument("--batch-size", type=int, default=64)
    mlp.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
    mlp.add_argument("--w-nll", type=float, default=1.0, help="weight of the expression NLL")
    mlp.add_argument("--w-v-mse", type=float, default=1.0, help="weight of the valence MSE")
    mlp.add_argument("--w-a-mse", type=float, default=1.0, help="weight of the arousal MSE")
    mlp.add_argument("--w-va-pcc", type=float, default=1.0, help="weight of 1 - (PCC_v + PCC_a) / 2")
    mlp.add_argument("--w-va-ccc", type=float, default=1.0, help="weight of 1 - (CCC_v + CCC_a) / 2")
    mlp.add_argument("--va-scheme", choices=VA_SCHEMES, default="shake",
                     help="shake: per training step the V/A weights are U(0, 1) draws summing to 1; norm: "
                          "weights divided by their sum; none: weights as given")
    mlp.add_argument("--val-interval", type=float, default=0.2,
                     help="validate on the held-out part every this fraction of an epoch")
    mlp.add_argument("--patience", type=int, default=10, help="validation checks without improvement")
    mlp.add_argument("--max-epochs", type=int, default=50)
    mlp.add_argument("--holdout", type=float, default=0.1,
                     help="fraction of the training split held out for model selection")

    run_opts = p.add_argument_group("running")
    run_opts.add_argument("--device", default="cpu")
    run_opts.add_argument("--seed", type=int, default=0)
    run_opts.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def _mlp_config(args: argparse.Namespace):
    from tempsmirk.evaluation.emotion import EmotionLossConfig, EmotionMLPConfig

    loss = EmotionLossConfig(expression_nll=args.w_nll, v_mse=args.w_v_mse, a_mse=args.w_a_mse,
                             va_pcc=args.w_va_pcc, va_ccc=args.w_va_ccc, va_scheme=args.va_scheme)
    return EmotionMLPConfig(hidden=args.hidden, n_hidden=args.layers, inputs=parse_inputs(args.inputs),
                            standardize=not args.no_standardize, lr=args.lr, batch_size=args.batch_size,
                            sampler=args.sampler, max_epochs=args.max_epochs,
                            val_check_interval=args.val_interval, patience=args.patience,
                            holdout_fraction=args.holdout, loss=loss)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation for parsed arguments; returns the exit code."""
    import torch

    from tempsmirk.evaluation.pipeline import EvaluationConfig, evaluate_encoders, prepare_index
    from tempsmirk.evaluation.report import protocol_table, results_table, write_report
    from tempsmirk.evaluation.synthetic_affectnet import (
        GROUND_TRUTH_FILE,
        SYNTHETIC_CROP_RULE,
        SyntheticAffectNetConfig,
        ground_truth_params,
        load_ground_truth,
        write_synthetic_affectnet,
    )

    def fail(message: str) -> int:
        print(f"error: {message}", file=sys.stderr)
        return 2

    progress = not args.quiet
    try:
        checkpoints = parse_checkpoints(args.checkpoint)
        mlp = _mlp_config(args)
    except ValueError as exc:
        return fail(str(exc))
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        return fail(f"--device {args.device}: no CUDA device is available here; use --device cpu")
    if args.image_size < 32 or args.crop_size < 32:
        return fail(f"--image-size and --crop-size must be at least 32; got {args.image_size}, "
                    f"{args.crop_size}")
    if not 0 < args.holdout < 1:
        return fail(f"--holdout is a fraction in (0, 1); got {args.holdout}")
    crop_size = args.crop_size
    rule = None if args.crop_rule == "auto" else args.crop_rule
    try:
        if args.synthetic:
            cfg = SyntheticAffectNetConfig(n_train_per_class=args.per_class,
                                           n_val_per_class=max(2, args.per_class // 5),
                                           image_size=args.image_size, seed=args.seed)
            root = write_synthetic_affectnet(None, cfg, progress=progress)
            crop_size = args.image_size
            rule = rule or SYNTHETIC_CROP_RULE
        else:
            root = args.affectnet
        index = prepare_index(root, args.crops, crop_size, rule, args.crop_scale, progress=progress)
        gt_file = args.ground_truth or (root / GROUND_TRUTH_FILE)
        ground_truth = None
        if not args.no_oracle and (args.ground_truth is not None or gt_file.is_file()):
            ground_truth = partial(ground_truth_params, load_ground_truth(gt_file))
        if not checkpoints and ground_truth is None:
            return fail("nothing to evaluate: give at least one --checkpoint NAME=PATH (ground-truth "
                        "parameters for an oracle row exist only for --synthetic)")
        crop = index.crop  # prepare_index refuses folders that do not record it
        ecfg = EvaluationConfig(image_size=args.image_size, crop_rule=crop.rule, crop_scale=crop.scale,
                                crop_size=crop.size, max_train_images=args.max_train, mlp=mlp)
        results = evaluate_encoders(index, checkpoints, ecfg, ground_truth, cache=args.cache,
                                    device=args.device, seed=args.seed, progress=progress)
        write_report(results, args.out, ecfg, crop)
    except (FileNotFoundError, ValueError) as exc:  # CheckpointError is a ValueError
        return fail(str(exc))
    print(results_table(results))
    print(protocol_table(ecfg, crop))
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
