"""Training SMIRK (chapter 3): :func:`smirk_step` computes one step's losses, :class:`Trainer`
runs the alternating optimisation with logs and resumable checkpoints; :func:`demo_checkpoint`
trains (once, cached) the synthetic-data encoder the later chapters use."""

from tempsmirk.training.demo import DEMO_IMAGE_SIZE, DEMO_PROFILES, demo_checkpoint, demo_config
from tempsmirk.training.step import LossTerms, StepOutput, smirk_step
from tempsmirk.training.trainer import CHECKPOINT_FORMAT, StepBatches, Trainer, TrainingDiverged, image_grid, load_flame

__all__ = ["CHECKPOINT_FORMAT", "DEMO_IMAGE_SIZE", "DEMO_PROFILES", "demo_checkpoint", "demo_config", "LossTerms", "StepBatches", "StepOutput", "Trainer", "TrainingDiverged",
           "image_grid", "load_flame", "smirk_step"]
