"""Training SMIRK (chapter 3): :func:`smirk_step` computes one step's losses, :class:`Trainer`
runs the alternating optimisation with logs and resumable checkpoints."""

from tempsmirk.training.step import LossTerms, StepOutput, smirk_step
from tempsmirk.training.trainer import CHECKPOINT_FORMAT, StepBatches, Trainer, TrainingDiverged, image_grid, load_flame

__all__ = ["CHECKPOINT_FORMAT", "LossTerms", "StepBatches", "StepOutput", "Trainer", "TrainingDiverged",
           "image_grid", "load_flame", "smirk_step"]
