"""Fixtures for the reconstruction tests: a tiny synthetic face video and freshly initialised
SMIRK checkpoints (never trained: only shapes, files and geometry are tested here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from tempsmirk.data import SyntheticConfig, SyntheticFaces
from tempsmirk.flame import FLAME
from tempsmirk.smirk import SmirkEncoder, SmirkGenerator, save_smirk_checkpoint
from tempsmirk.video.io import write_video


@dataclass(frozen=True)
class ClipSpec:
    """The tiny test video: frames, side in pixels (MediaPipe finds the built-in head at 128 px),
    the crop size used on it, and the index of its one black frame (no face)."""

    frames: int = 10
    size: int = 128
    crop: int = 64
    blank: int = 4


SPEC = ClipSpec()


@pytest.fixture(scope="session")
def spec() -> ClipSpec:
    return SPEC


@pytest.fixture(scope="session")
def flame():
    return FLAME.builtin(seed=0)


@pytest.fixture(scope="session")
def clip_frames(flame) -> np.ndarray:
    """(T, 128, 128, 3) uint8 synthetic head frames, frame ``SPEC.blank`` black."""
    sample = SyntheticFaces(flame, SyntheticConfig(image_size=SPEC.size, clip_length=SPEC.frames,
                                                   n_items=1, seed=3))[0]
    frames = (sample.image.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    frames[SPEC.blank] = 0
    return frames


@pytest.fixture(scope="session")
def clip_video(clip_frames, tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_video(path, clip_frames, 24.0)
    return path


@pytest.fixture(scope="session")
def models():
    torch.manual_seed(0)
    return SmirkEncoder(), SmirkGenerator()


@pytest.fixture(scope="session")
def encoder_checkpoint(models, tmp_path_factory):
    """Encoder only (small file; the overlay then has two panels)."""
    return save_smirk_checkpoint(tmp_path_factory.mktemp("ckpt") / "encoder.pt", models[0])


@pytest.fixture(scope="session")
def full_checkpoint(models, tmp_path_factory):
    """Encoder and generator (the overlay gets the generator panel)."""
    return save_smirk_checkpoint(tmp_path_factory.mktemp("ckpt") / "smirk.pt", *models)
