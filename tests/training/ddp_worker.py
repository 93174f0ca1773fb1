"""One data-parallel training process for tests/training/test_distributed.py, started by torchrun:

    torchrun --standalone --nproc_per_node 2 tests/training/ddp_worker.py \
        OUT UNTIL NAN_RANK NAN_STEP CONFIG key=value ...

Trains ``Trainer(load_config(CONFIG, overrides))`` up to step UNTIL (-1: ``train.steps``; resumes
when the run folder holds a checkpoint), then writes ``OUT/rank{R}.pt``: this rank's encoder and
generator state, the step, the Adam step count of every encoder parameter, and the error message
if training stopped. NAN_RANK >= 0 makes that rank's reconstruction loss NaN at step NAN_STEP.
On ranks other than 0 every file writer of the trainer raises, so a write there fails the run.
"""

from __future__ import annotations

import os
import sys

import torch

import tempsmirk.training.trainer as trainer_module
from tempsmirk.config import load_config
from tempsmirk.training import Trainer, TrainingDiverged


def _refuse(name):
    def write(*args, **kwargs):
        raise AssertionError(f"rank {os.environ['RANK']} called {name}: only rank 0 writes")
    return write


def main(out: str, until: int, nan_rank: int, nan_step: int, config: str, overrides: list[str]) -> None:
    rank = int(os.environ["RANK"])
    if rank != 0:
        for name in ("atomic_torch_save", "atomic_write_bytes", "save_config", "save_smirk_checkpoint", "open"):
            setattr(trainer_module, name, _refuse(name))
    cfg = load_config(config, overrides)
    resume = os.path.exists(os.path.join(cfg.run.dir, "checkpoints", "last.pt"))
    trainer = Trainer(cfg, resume=resume, progress=False)
    if rank == nan_rank:
        original = trainer_module.first_path

        def first_path(*args, **kwargs):
            out = original(*args, **kwargs)
            if trainer.step == nan_step:
                losses = out.losses
                out = type(out)(**{**out.__dict__, "losses": type(losses)(
                    **{**losses.__dict__, "reconstruction": losses.reconstruction * float("nan"),
                       "total": losses.total * float("nan")})})
            return out

        trainer_module.first_path = first_path
    error = ""
    try:
        trainer.train(None if until < 0 else until)
    except TrainingDiverged as exc:
        error = str(exc)
    adam = {name: int(trainer.opt_encoder.state[p]["step"]) if p in trainer.opt_encoder.state else 0
            for name, p in trainer.encoder.named_parameters()}
    torch.save({"encoder": trainer.encoder.state_dict(), "generator": trainer.generator.state_dict(),
                "step": trainer.step, "adam_steps": adam, "error": error}, os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6:])
