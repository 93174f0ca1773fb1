"""Training SMIRK (chapter 3): :func:`first_path` and :func:`cycle_path` are an iteration's two
passes and :func:`smirk_step` both of them, each taking the iteration's fixed
:class:`StepContext` (:func:`step_context`); :class:`Trainer` runs SMIRK's two-pass iterations
with logs and resumable checkpoints; :mod:`~tempsmirk.training.pretrain` pretrains the encoder on
synthetic ground truth; :func:`demo_checkpoint` trains (once, cached) the synthetic-data encoder
the later chapters use; :func:`clip_step` and
:mod:`~tempsmirk.training.experiment` add the temporal losses and the experiment of chapter 5
(reported by :mod:`~tempsmirk.training.report`)."""

from tempsmirk.training.context import StepContext, step_context
from tempsmirk.training.demo import (
                                     DEMO_IMAGE_SIZE,
                                     DEMO_PROFILES,
                                     DEMO_TARGETS,
                                     demo_checkpoint,
                                     demo_config,
                                     demo_data_overrides,
)
from tempsmirk.training.experiment import Condition, EvalSpec, ExperimentSpec, finetune_config, run_experiment
from tempsmirk.training.report import summary_table, verdict
from tempsmirk.training.step import CycleOutput, LossTerms, StepOutput, clip_step, cycle_path, first_path, smirk_step
from tempsmirk.training.trainer import (
                                     CHECKPOINT_FORMAT,
                                     StepBatches,
                                     Trainer,
                                     TrainingDiverged,
                                     TrainingInterrupted,
                                     image_grid,
)

__all__ = ["CHECKPOINT_FORMAT", "DEMO_IMAGE_SIZE", "DEMO_PROFILES", "DEMO_TARGETS", "Condition",
           "CycleOutput", "EvalSpec", "ExperimentSpec", "LossTerms", "StepBatches", "StepContext",
           "StepOutput", "Trainer", "TrainingDiverged", "TrainingInterrupted", "clip_step",
           "cycle_path", "demo_checkpoint", "demo_config", "demo_data_overrides",
           "finetune_config", "first_path", "image_grid", "run_experiment", "smirk_step",
           "step_context", "summary_table", "verdict"]
