"""SyntheticConfig.eyelid_asymmetry: one closure for both eyes, each moved by at most ±a."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from tempsmirk.data.synthetic import SyntheticConfig, sample_params


def _eyelids(cfg: SyntheticConfig, n: int = 2000) -> torch.Tensor:
    params, _ = sample_params(cfg, n, 300, 50, torch.Generator().manual_seed(0))
    return params.eyelids


def test_default_draws_the_eyes_independently():
    lids = _eyelids(SyntheticConfig())
    assert lids.min() >= 0 and lids.max() <= 0.8
    assert abs(float(torch.corrcoef(lids.T)[0, 1])) < 0.1  # independent uniforms


def test_blink_mode_shares_one_closure():
    cfg = replace(SyntheticConfig(), eyelid_max=1.0, eyelid_asymmetry=0.1)
    lids = _eyelids(cfg)
    assert lids.min() >= 0 and lids.max() <= 1
    assert float((lids[:, 0] - lids[:, 1]).abs().max()) <= 0.2 + 1e-6  # |a_l - a_r| <= 2a
    assert float(torch.corrcoef(lids.T)[0, 1]) > 0.85
    # The other parameters are drawn as before (only the eyelid draw changed).
    ref, _ = sample_params(replace(cfg, eyelid_asymmetry=None), 2000, 300, 50, torch.Generator().manual_seed(0))
    got, _ = sample_params(cfg, 2000, 300, 50, torch.Generator().manual_seed(0))
    assert torch.equal(ref.expression, got.expression) and torch.equal(ref.jaw_pose, got.jaw_pose)


def test_negative_asymmetry_is_refused():
    with pytest.raises(ValueError, match="eyelid_asymmetry"):
        _eyelids(replace(SyntheticConfig(), eyelid_asymmetry=-0.1))
