"""Fixtures for the fitting tests: the built-in head, and synthetic clips whose landmarks are
projected off the full FLAME mesh (:func:`project_targets`, not the sparse evaluator under test),
with noise added."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from tempsmirk.data.synthetic import SyntheticConfig, sample_clip
from tempsmirk.fitting import FitTargets, LandmarkFlame, project_targets
from tempsmirk.flame import FLAME
from tempsmirk.flame.params import FlameParams


@dataclass(frozen=True)
class Clip:
    """truth: (T, ...) parameters; clean: targets without noise; noisy: with noise."""

    truth: FlameParams
    clean: FitTargets
    noisy: FitTargets


@pytest.fixture(scope="session")
def flame() -> FLAME:
    return FLAME.builtin(seed=0)


@pytest.fixture(scope="session")
def model(flame) -> LandmarkFlame:
    return LandmarkFlame(flame)


def make_clip(flame: FLAME, frames: int, noise_px: float, seed: int = 0) -> Clip:
    """A clip of smooth synthetic motion (:func:`sample_clip`) and its MediaPipe and contour points
    projected with the full FLAME layer, plus i.i.d. Gaussian noise of ``noise_px`` pixels (at 224
    px) per coordinate."""
    cfg = SyntheticConfig(clip_length=frames, keyframe_every=12)
    g = torch.Generator().manual_seed(seed)
    truth, _ = sample_clip(cfg, flame.n_shape, flame.n_exp, g)
    return Clip(truth, project_targets(flame, truth), project_targets(flame, truth, noise_px, g))


@pytest.fixture(scope="session")
def make_clip_of(flame):
    """``make_clip_of(frames, noise_px, seed=0)`` -> :class:`Clip` on the built-in head (a fixture,
    not an import: test folders each have a conftest module)."""
    return lambda frames, noise_px, seed=0: make_clip(flame, frames, noise_px, seed)
