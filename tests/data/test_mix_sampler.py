"""The mixing batch sampler: composition = percentages, a pure function of (seed, step), rank shares."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from tempsmirk.data.mix import REFERENCE_MIX, Draw, MixedBatches, batch_counts

SMIRK_P = [p for p in REFERENCE_MIX.values() if p > 0]  # LRS3, MEAD, FFHQ, CelebA, MEAD sides
SIZES = [50, 20, 70, 40, 30]


def smirk_counts(p, b):
    """SMIRK's MixedDatasetBatchSampler: floor every share but the first, which takes the rest."""
    per = [math.floor(x * b) for x in p]
    per[0] = b - sum(per[1:])
    return per


def test_counts_equal_the_percentages_when_they_are_whole():
    g = torch.Generator().manual_seed(0)
    for b, expected in [(10, [2, 1, 3, 3, 1]), (20, [4, 2, 6, 6, 2]), (40, [8, 4, 12, 12, 4])]:
        for _ in range(20):
            assert batch_counts(SMIRK_P, b, g) == expected
        assert smirk_counts(SMIRK_P, b) == expected  # SMIRK agrees here


def test_counts_stay_within_one_of_the_percentages_and_average_to_them():
    g = torch.Generator().manual_seed(1)
    b, steps = 32, 4000
    total = torch.zeros(len(SMIRK_P))
    for _ in range(steps):
        c = batch_counts(SMIRK_P, b, g)
        assert sum(c) == b
        for ci, p in zip(c, SMIRK_P):
            assert math.floor(p * b) <= ci <= math.ceil(p * b)
        total += torch.tensor(c, dtype=torch.float)
    mean = total / steps
    expected = torch.tensor(SMIRK_P) * b
    assert (mean - expected).abs().max() < 0.03, mean
    # SMIRK's rule gives LRS3 8 of 32 (25 %) every batch; ours averages 6.4 (20 %).
    assert smirk_counts(SMIRK_P, 32)[0] == 8


def test_batches_are_a_pure_function_of_seed_and_step():
    straight = list(MixedBatches(SIZES, SMIRK_P, 32, seed=3, start=0, end=12))
    resumed = list(MixedBatches(SIZES, SMIRK_P, 32, seed=3, start=7, end=12))
    assert resumed == straight[7:]
    other = list(MixedBatches(SIZES, SMIRK_P, 32, seed=4, start=0, end=12))
    assert other != straight
    for batch in straight:
        assert len(batch) == 32 and all(isinstance(d, Draw) for d in batch)
        assert len({d.seed for d in batch}) == 32  # every slot its own visit seed
        assert all(0 <= d.index < SIZES[d.source] for d in batch)


def test_each_source_is_read_in_passes_without_repeats():
    sizes, p, b = [12, 30], [0.25, 0.75], 8  # 2 and 6 slots per step
    draws = [d for batch in MixedBatches(sizes, p, b, seed=0, start=0, end=30) for d in batch]
    for src, n in enumerate(sizes):
        seen = [d.index for d in draws if d.source == src]
        for k in range(len(seen) // n):
            assert sorted(seen[k * n:(k + 1) * n]) == list(range(n))  # one full pass, each item once


def test_batch_composition_follows_the_counts():
    sampler = MixedBatches(SIZES, SMIRK_P, 20, seed=5, start=0, end=10)
    for batch in sampler:
        assert [Counter(d.source for d in batch)[i] for i in range(5)] == [4, 2, 6, 6, 2]


def test_data_parallel_ranks_share_each_global_batch():
    world = 4
    full = MixedBatches(SIZES, SMIRK_P, 32, seed=2, start=0, end=6)
    ranks = [list(MixedBatches(SIZES, SMIRK_P, 32, seed=2, start=0, end=6, rank=r, world_size=world))
             for r in range(world)]
    for step, batch in enumerate(full):
        shares = [ranks[r][step] for r in range(world)]
        assert sorted(d.seed for s in shares for d in s) == sorted(d.seed for d in batch)
        assert all(len(s) == 8 for s in shares)
        for s in shares:  # each rank's 8 hold about the mix: FFHQ and CelebA (9.6 of 32) 2-3 each
            c = Counter(d.source for d in s)
            assert 2 <= c[2] <= 3 and 2 <= c[3] <= 3


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="sum to 1"):
        MixedBatches([5, 5], [0.5, 0.6], 8, 0, 0, 1)
    with pytest.raises(ValueError, match="size >= 1"):
        MixedBatches([5, 0], [0.5, 0.5], 8, 0, 0, 1)
    with pytest.raises(ValueError, match="world_size"):
        MixedBatches([5, 5], [0.5, 0.5], 8, 0, 0, 1, rank=2, world_size=2)
