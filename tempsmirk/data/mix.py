"""SMIRK's training mix: several face corpora, a fixed share of every batch each (README, "Training data").

SMIRK (``datasets/data_utils.py``, ``mixed_dataset_sampler.py``, ``configs/config_train.yaml``)
concatenates LRS3, MEAD (front), FFHQ, CelebA and MEAD's side views and fills every batch of 32
with 20 / 10 / 30 / 30 / 10 % of them (BUPT has paths in its config but no dataset code;
it is here with 0 %). :class:`FaceMix` is that concatenation and :class:`MixedBatches` the batch
sampler, with three differences (README's list):

- **counts**: SMIRK floors each share of the batch and gives the remainder to the first dataset
  (LRS3 gets 8 of 32 = 25 % instead of 6.4); here every batch holds ``floor(p·B)`` or
  ``ceil(p·B)`` of each source, the extra slots going to sources with probability equal to their
  fractional share, so the expected count is exactly ``p·B`` (:func:`batch_counts`);
- **order**: SMIRK draws items with replacement from NumPy's global generator; here each source
  is read through seeded permutations (every item once per pass) and batch k is a pure function of
  ``(seed, k)``, so ``--resume`` continues with exactly the batches a straight run would see;
- **visits**: a batch slot carries its own seed (:class:`Draw`), so an item gets a new frame,
  crop and augmentation on every visit, independent of workers, batch position and world size.

For data-parallel training each rank takes slots ``rank::world_size`` of every global batch
(:class:`MixedBatches` ``rank`` / ``world_size``).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Dict, Iterator, Optional, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from tempsmirk.data.faces import FaceCropConfig, FaceSource
from tempsmirk.data.synthetic import item_seed
from tempsmirk.data.types import FaceSample

__all__ = ["MixSource", "FaceMixConfig", "REFERENCE_MIX", "Draw", "FaceMix", "batch_counts", "MixedBatches"]


@dataclass
class MixSource:
    """One corpus of the mix.

    dir: the folder ``python -m data_prep.faces manifest ...`` wrote (None: not available).
    percentage: its share of every batch (shares are normalised to sum to 1; 0 leaves it out).
    split: the manifest split to train on.
    fan_fallback: items without FAN points use MediaPipe's 68 (warned); False switches their FAN
        term off instead (SMIRK's MEAD side views).
    """

    dir: Optional[str] = None
    percentage: float = 0.0
    split: str = "train"
    fan_fallback: bool = True


#: SMIRK's ``config_train.yaml`` percentages.
REFERENCE_MIX = {"lrs3": 0.2, "mead": 0.1, "ffhq": 0.3, "celeba": 0.3, "mead_sides": 0.1, "bupt": 0.0}


def _reference_sources() -> Dict[str, MixSource]:
    return {name: MixSource(percentage=p, fan_fallback=name != "mead_sides") for name, p in REFERENCE_MIX.items()}


@dataclass
class FaceMixConfig(FaceCropConfig):
    """The ``data.mix`` section: :class:`FaceCropConfig` (crops and augmentation, shared by all
    sources) plus ``sources``, one :class:`MixSource` per corpus, by name (defaults: SMIRK's six
    with its percentages and no folders — set ``dir`` for each source you have and
    ``percentage: 0`` for the others)."""

    sources: Dict[str, MixSource] = field(default_factory=_reference_sources)


@dataclass(frozen=True)
class Draw:
    """What :class:`MixedBatches` yields per batch slot: item ``index`` of source ``source``,
    visited with ``seed`` (frame, crop, augmentation)."""

    source: int
    index: int
    seed: int


class FaceMix(Dataset):
    """The sources of a :class:`FaceMixConfig` with a share > 0, concatenated.

    Args:
        cfg: :class:`FaceMixConfig`.
        landmark_indices: (105,) ``FLAME.mp_indices``.

    ``mix[draw]`` for a :class:`Draw`; ``mix[i]`` for a global index (sources in order, as
    ``ConcatDataset``; seeded by ``item_seed(cfg.seed, i)``). A sample's ``index`` is its global index.
    """

    def __init__(self, cfg: FaceMixConfig, landmark_indices: Tensor) -> None:
        chosen = [(n, s) for n, s in cfg.sources.items() if s.percentage > 0]
        negative = [n for n, s in cfg.sources.items() if s.percentage < 0]
        if negative or not chosen:
            raise ValueError(f"data.mix.sources: percentages must be >= 0 with at least one > 0; got "
                             f"{ {n: s.percentage for n, s in cfg.sources.items()} }")
        missing = [n for n, s in chosen if not s.dir]
        if missing:
            raise ValueError(f"data.mix.sources {missing} have a percentage but no dir. Prepare them with "
                             f"'python -m data_prep.faces manifest KIND ROOT --out DIR' and set "
                             f"data.mix.sources.<name>.dir=DIR, or set their percentage to 0")
        self.cfg = cfg
        self.names = tuple(n for n, _ in chosen)
        self.sources = tuple(FaceSource(s.dir, landmark_indices, cfg, split=s.split, fan_fallback=s.fan_fallback,
                                        name=n) for n, s in chosen)
        total = sum(s.percentage for _, s in chosen)
        #: Normalised shares, one per source.
        self.percentages = tuple(s.percentage / total for _, s in chosen)
        self.offsets = [0]
        for s in self.sources:
            self.offsets.append(self.offsets[-1] + len(s))

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(s) for s in self.sources)

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, key) -> FaceSample:
        if isinstance(key, Draw):
            src = self.sources[key.source]
            return src.get(key.index, key.seed, label=self.offsets[key.source] + key.index)
        index = int(key)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        k = bisect.bisect_right(self.offsets, index) - 1
        return self.sources[k].get(index - self.offsets[k], item_seed(self.cfg.seed, index), label=index)


def batch_counts(percentages: Sequence[float], batch_size: int, generator: torch.Generator) -> list[int]:
    """How many of a batch's ``batch_size`` slots each source fills: ``floor(p·B)`` plus one for the
    sources hit by systematic sampling of the fractional parts (each gets its extra slot with
    probability equal to its fractional part; the counts always sum to B)."""
    quota = [p * batch_size for p in percentages]
    counts = [math.floor(q + 1e-9) for q in quota]
    extra = batch_size - sum(counts)
    if extra:
        frac = [max(q - c, 0.0) for q, c in zip(quota, counts)]
        total = sum(frac)
        edges = [0.0]
        for f in frac:
            edges.append(edges[-1] + f * extra / total)
        edges[-1] = float(extra)
        # The points u, u + 1, ..., u + extra - 1 on [0, extra): each source's interval (shorter
        # than 1) holds at most one, with probability equal to its length.
        u = float(torch.rand((), generator=generator))
        for i in range(len(counts)):
            counts[i] += math.floor(edges[i + 1] - u) - math.floor(edges[i] - u)
    return counts


class MixedBatches(Sampler[list[Draw]]):
    """Batches of :class:`Draw` for steps ``start .. end - 1``, a pure function of ``(seed, step)``.

    Args:
        sizes: items per source (``FaceMix.sizes``); percentages: their shares (sum 1).
        batch_size: the global batch B (all ranks together).
        seed: the run seed. start, end: the steps to yield.
        rank, world_size: this process takes slots ``rank::world_size`` of each global batch.

    Source i's slots of step k read positions ``k·ceil(p_i·B) + j`` of its sequence of seeded
    permutations (one per pass over the source), so consecutive steps read fresh items.
    """

    def __init__(self, sizes: Sequence[int], percentages: Sequence[float], batch_size: int, seed: int,
                 start: int, end: int, rank: int = 0, world_size: int = 1) -> None:
        if len(sizes) != len(percentages) or not sizes or min(sizes) < 1:
            raise ValueError(f"need one size >= 1 per percentage; got sizes {list(sizes)}, "
                             f"percentages {list(percentages)}")
        if abs(sum(percentages) - 1) > 1e-6 or min(percentages) < 0:
            raise ValueError(f"percentages must be >= 0 and sum to 1; got {list(percentages)}")
        if batch_size < world_size or not 0 <= rank < world_size:
            raise ValueError(f"need batch_size >= world_size > rank >= 0; got {batch_size}, {world_size}, {rank}")
        self.sizes, self.p = tuple(sizes), tuple(percentages)
        self.b, self.seed, self.start, self.end = batch_size, seed, start, end
        self.rank, self.world = rank, world_size
        self.stride = [math.ceil(p * batch_size) for p in percentages]

    def __len__(self) -> int:
        return max(0, self.end - self.start)

    def global_batch(self, step: int) -> list[Draw]:
        """All B draws of a step (every rank computes the same list), source by source, so that
        each rank's share ``rank::world_size`` holds floor or ceil of ``count / world_size`` of
        every source."""
        step_seed = item_seed(self.seed, step)
        counts = batch_counts(self.p, self.b, torch.Generator().manual_seed(step_seed))
        draws = []
        for i, n in enumerate(counts):
            for j in range(n):
                epoch, k = divmod(step * self.stride[i] + j, self.sizes[i])
                draws.append(Draw(i, int(self._permutation(i, epoch)[k]), item_seed(step_seed, 1000 * i + j + 1)))
        return draws

    def _permutation(self, source: int, epoch: int) -> Tensor:
        """The seeded order of ``source``'s items in pass ``epoch`` (the latest pass per source cached)."""
        cache = self.__dict__.setdefault("_perms", {})
        if source not in cache or cache[source][0] != epoch:
            g = torch.Generator().manual_seed(item_seed(item_seed(self.seed, -1 - source), epoch))
            cache[source] = (epoch, torch.randperm(self.sizes[source], generator=g))
        return cache[source][1]

    def __iter__(self) -> Iterator[list[Draw]]:
        for step in range(self.start, self.end):
            yield self.global_batch(step)[self.rank::self.world]
