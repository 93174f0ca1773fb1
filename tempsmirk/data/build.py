"""The training data a config asks for: one call for the trainer (chapter 3).

:func:`build_dataset` turns the ``data`` section into a :class:`TrainingData`: the dataset, and
for SMIRK's mix (``data.source=mix``) the batch sampler that fills every batch by the sources'
percentages. For the other sources the trainer keeps its own step-indexed order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from torch.utils.data import DataLoader, Dataset, Sampler

from tempsmirk.data.clips import MeadConfig
from tempsmirk.data.mix import FaceMix, FaceMixConfig, MixedBatches
from tempsmirk.data.synthetic import SyntheticConfig
from tempsmirk.data.types import collate_faces

__all__ = ["DataConfig", "TrainingData", "build_dataset", "SOURCES"]

SOURCES = ("synthetic", "mead", "mix")


@dataclass
class DataConfig:
    """source: ``"synthetic"`` (rendered faces, ``synthetic``; clips when its ``clip_length`` > 0),
    ``"mead"`` (real clips prepared by data_prep, ``mead``; chapter 5) or ``"mix"`` (SMIRK's
    training corpora — LRS3, MEAD, FFHQ, CelebA, MEAD side views, BUPT — by percentage per batch,
    ``mix``; README "Training data"). ``tempsmirk.data.build_dataset`` builds any of them.
    num_workers: DataLoader worker processes (0 = load in the training process; README "Training
    data" measures how many the mix needs)."""

    source: str = "synthetic"
    num_workers: int = 0
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    mead: MeadConfig = field(default_factory=MeadConfig)
    mix: FaceMixConfig = field(default_factory=FaceMixConfig)


def _ignore_interrupt(worker_id: int) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass(frozen=True)
class TrainingData:
    """A dataset of :class:`~tempsmirk.data.FaceSample` and how to batch it."""

    dataset: Dataset
    num_workers: int = 0

    def batch_sampler(self, batch_size: int, seed: int, start: int, end: int, rank: int = 0,
                      world_size: int = 1) -> Optional[Sampler]:
        """The mix's :class:`~tempsmirk.data.mix.MixedBatches` for steps ``start .. end - 1`` (a pure
        function of ``(seed, step)``; ``rank``/``world_size`` give a data-parallel process its
        share of each global batch), or None where the caller's own step order applies."""
        if isinstance(self.dataset, FaceMix):
            return MixedBatches(self.dataset.sizes, self.dataset.percentages, batch_size, seed, start, end,
                                rank, world_size)
        return None

    def loader(self, batch_sampler: Sampler) -> DataLoader:
        """A DataLoader of :class:`~tempsmirk.data.FaceBatch` over ``batch_sampler``'s batches. Its
        worker processes ignore Ctrl-C: the training process decides when to stop (and stops them)."""
        return DataLoader(self.dataset, batch_sampler=batch_sampler, collate_fn=collate_faces,
                          num_workers=self.num_workers, persistent_workers=False,
                          worker_init_fn=_ignore_interrupt if self.num_workers else None)


def build_dataset(cfg: DataConfig, flame) -> TrainingData:
    """The dataset of ``cfg.source``: ``synthetic`` (rendered with ``flame``, which must stay on the
    CPU for worker processes), ``mead`` (clips, :class:`~tempsmirk.data.MeadClips`) or ``mix``
    (SMIRK's corpora, :class:`~tempsmirk.data.mix.FaceMix`). ``flame`` gives the MediaPipe
    embedding's ``mp_indices`` to the real-data sources."""
    if cfg.source == "synthetic":
        from tempsmirk.data.synthetic import SyntheticFaces

        dataset: Dataset = SyntheticFaces(flame, cfg.synthetic)
    elif cfg.source == "mead":
        from tempsmirk.data.clips import MeadClips

        dataset = MeadClips(cfg.mead, flame.mp_indices.cpu())
    elif cfg.source == "mix":
        dataset = FaceMix(cfg.mix, flame.mp_indices.cpu())
    else:
        raise ValueError(f"data.source={cfg.source!r}; expected one of {SOURCES}")
    return TrainingData(dataset, cfg.num_workers)
