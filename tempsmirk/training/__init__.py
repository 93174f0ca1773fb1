"""Training SMIRK (chapter 3): :func:`first_path` and :func:`smirk_step` compute an iteration's
losses, :class:`Trainer` runs SMIRK's two-pass iterations with logs and resumable checkpoints; :func:`demo_checkpoint`
trains (once, cached) the synthetic-data encoder the later chapters use; :func:`clip_step` and
:mod:`~tempsmirk.training.experiment` add the temporal losses and the experiment of chapter 5."""

from tempsmirk.training.demo import DEMO_IMAGE_SIZE, DEMO_PROFILES, demo_checkpoint, demo_config
from tempsmirk.training.experiment import (Condition, EvalSpec, ExperimentSpec, finetune_config, run_experiment,
                                           summary_table, verdict)
from tempsmirk.training.step import LossTerms, StepOutput, clip_step, first_path, smirk_step
from tempsmirk.flame import load_flame  # defined in tempsmirk.flame.assets; kept importable from here
from tempsmirk.training.trainer import CHECKPOINT_FORMAT, StepBatches, Trainer, TrainingDiverged, image_grid

__all__ = ["CHECKPOINT_FORMAT", "DEMO_IMAGE_SIZE", "DEMO_PROFILES", "Condition", "EvalSpec", "ExperimentSpec",
           "LossTerms", "StepBatches", "StepOutput", "Trainer", "TrainingDiverged", "clip_step", "demo_checkpoint", "first_path",
           "demo_config", "finetune_config", "image_grid", "load_flame", "run_experiment", "smirk_step",
           "summary_table", "verdict"]
