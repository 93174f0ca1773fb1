"""Command line: ``python -m tempsmirk <command> ...``.

Commands:
    train        train SMIRK from a config file (chapters 3 and 5); with ``pretrain.steps`` > 0
                 supervised pretraining on synthetic ground truth runs first:
                 ``python -m tempsmirk train --config FILE [--resume] [key=value ...]``
    evaluate     compare encoders on AffectNet (or its synthetic stand-in) by CCC, RMSE and
                 accuracy (chapter 6; :mod:`tempsmirk.evaluation.cli`)
    reconstruct  video -> FLAME parameters, meshes and an overlay video (chapter 7;
                 :mod:`tempsmirk.reconstruct.cli`)

Each command's module is imported only when the parser is built, and heavy imports (torch
models, MediaPipe) happen only inside the command that needs them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from tempsmirk.cli_help import ExamplesHelpFormatter

__all__ = ["main"]


def _train_command(args: argparse.Namespace, resume: bool) -> str:
    """The command line that runs this training again (with ``--resume``: continues it)."""
    import os
    import shlex

    from tempsmirk.training.distributed import from_environment

    info = from_environment()
    if info.enabled:
        per_node = os.environ.get("LOCAL_WORLD_SIZE", str(info.world_size))
        head = ["torchrun", f"--nproc_per_node={per_node}"]
        if int(per_node) != info.world_size:  # several machines: their own rendezvous options
            head.append("[your --nnodes/--rdzv options]")
        head += ["-m", "tempsmirk", "train"]
    else:
        head = [sys.executable, "-m", "tempsmirk", "train"]
    rest = ["--config", args.config] + (["--resume"] if resume else []) + list(args.overrides)
    return " ".join(shlex.quote(h) if not h.startswith("[") else h for h in head) + " " + shlex.join(rest)


def _train(args: argparse.Namespace) -> int:
    from tempsmirk.config import ConfigError, load_config
    from tempsmirk.training import Trainer, TrainingDiverged, TrainingInterrupted
    from tempsmirk.training.distributed import from_environment, teardown

    main_rank = from_environment().is_main
    try:
        cfg = load_config(args.config, args.overrides)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if cfg.pretrain.steps > 0:  # supervised pretraining first, then SMIRK's objective (if any)
            from tempsmirk.training.pretrain import train_stages

            final = train_stages(cfg, resume=args.resume)
            print(f"trained; SMIRK checkpoint {final}")
            return 0
        trainer = Trainer(cfg, resume=args.resume)
        run_dir = trainer.train()
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:  # every rank stops; rank 0 says why
        if main_rank:
            print(f"error: {exc}", file=sys.stderr)
        return 3
    except TrainingInterrupted as exc:
        if main_rank:
            again = exc.checkpoint_step is not None
            print(f"{exc}\n{'Resume' if again else 'Start again'} with:\n  {_train_command(args, again)}",
                  file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        if main_rank:
            print(f"Interrupted before training started; nothing was trained. Start again with:\n  "
                  f"{_train_command(args, args.resume)}", file=sys.stderr)
        return 130
    finally:
        teardown()
    if main_rank:
        print(f"trained {trainer.step} steps; run folder {run_dir}")
    return 0


#: The end of ``train --help``: the built-in head, resuming, and a real SMIRK checkpoint.
TRAIN_EXAMPLES = """\
examples:
  # SMIRK on synthetic faces of the built-in head (no assets; a CPU is enough)
  python -m tempsmirk train --config tempsmirk/configs/smirk_synthetic_small.yaml \\
      run.dir=runs/demo
  # continue that run exactly where it stopped (after Ctrl-C or a crash)
  python -m tempsmirk train --config tempsmirk/configs/smirk_synthetic_small.yaml \\
      run.dir=runs/demo --resume
  # temporal fine-tuning of a real SMIRK checkpoint with a real FLAME (GPU)
  python -m tempsmirk train --config tempsmirk/configs/temporal_finetune_full.yaml \\
      model.init_checkpoint=SMIRK_em1.pt model.flame_path=smirk/assets \\
      run.dir=runs/temporal"""

#: The end of ``python -m tempsmirk --help``: one line per command.
EXAMPLES = """\
examples (each command's --help has more):
  python -m tempsmirk train --config tempsmirk/configs/smirk_synthetic_small.yaml \\
      run.dir=runs/demo
  python -m tempsmirk reconstruct face.mp4 --fit --out out/
  python -m tempsmirk evaluate --synthetic --per-class 100 --image-size 64 \\
      --out results/"""


def build_parser() -> argparse.ArgumentParser:
    fmt = ExamplesHelpFormatter
    parser = argparse.ArgumentParser(prog="python -m tempsmirk",
                                     description="tempsmirk: temporally consistent FLAME reconstruction",
                                     epilog=EXAMPLES, formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train SMIRK (chapters 3 and 5)",
                           description="Train SMIRK. Overrides are dotted keys of tempsmirk.config.Config, "
                                       "e.g. run.dir=runs/a train.steps=200 data.synthetic.image_size=64.",
                           epilog=TRAIN_EXAMPLES, formatter_class=fmt)
    train.add_argument("--config", required=True, help="YAML config file (see tempsmirk/configs/)")
    train.add_argument("--resume", action="store_true",
                       help="continue from RUN_DIR/checkpoints/last.pt (same result as an uninterrupted run)")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    train.set_defaults(func=_train)
    from tempsmirk.evaluation.cli import register as register_evaluate
    from tempsmirk.reconstruct.cli import register as register_reconstruct

    register_evaluate(sub)
    register_reconstruct(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
