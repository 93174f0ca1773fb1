"""Evaluation test fixtures: a tiny synthetic AffectNet, its index, an untrained checkpoint."""

from __future__ import annotations

import pytest
import torch

# 8 training and 4 validation images per class at 32 px: a few seconds to render. Balanced, so
# the end-to-end tests have every class to learn (AffectNet's skew is tested on its counts).
TINY = dict(n_train_per_class=8, n_val_per_class=4, image_size=32, group_size=48,
            dropped_fraction=0.05, seed=3, train_class_mix="balanced")


@pytest.fixture(scope="session")
def tiny_config() -> dict:
    """The tiny set's SyntheticAffectNetConfig fields (a fixture, so tests need not import a
    ``conftest`` module: with several conftests that import is ambiguous)."""
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_affectnet(tmp_path_factory):
    from tempsmirk.evaluation.synthetic_affectnet import SyntheticAffectNetConfig, write_synthetic_affectnet

    root = tmp_path_factory.mktemp("synthetic_affectnet")
    return write_synthetic_affectnet(root, SyntheticAffectNetConfig(**TINY), progress=False)


@pytest.fixture(scope="session")
def tiny_index(tiny_affectnet, tmp_path_factory):
    from tempsmirk.evaluation.pipeline import prepare_index
    from tempsmirk.evaluation.synthetic_affectnet import SYNTHETIC_CROP_RULE

    return prepare_index(tiny_affectnet, tmp_path_factory.mktemp("crops"), crop_size=32,
                         rule=SYNTHETIC_CROP_RULE, progress=False)


@pytest.fixture(scope="session")
def untrained_ckpt(tmp_path_factory):
    from tempsmirk.smirk import SmirkEncoder, save_smirk_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "untrained.pt"
    return save_smirk_checkpoint(path, SmirkEncoder())


@pytest.fixture
def small_mlp():
    from tempsmirk.evaluation.emotion import EmotionMLPConfig

    return EmotionMLPConfig(hidden=64, n_hidden=2, lr=3e-3, batch_size=32, max_epochs=50, patience=12)
