"""Inference-time filters against independent references: a looped scalar One-Euro filter and a
local polynomial fit per frame (np.polyfit) for Savitzky–Golay."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tempsmirk.flame.params import FlameParams
from tempsmirk.reconstruct.smoothing import OneEuro, SavitzkyGolay, make_smoothing, one_euro, savgol, smooth_params


def one_euro_scalar(xs, fps, min_cutoff, beta, d_cutoff):
    """The filter as written in Casiez et al. (2012), one float at a time."""
    def alpha(cutoff):
        te = 1.0 / fps
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / te)

    out, x_prev, dx_prev = [], None, 0.0
    for x in xs:
        if x_prev is None:
            x_prev = x
            out.append(x)
            continue
        dx = (x - x_prev) * fps
        dx_hat = alpha(d_cutoff) * dx + (1 - alpha(d_cutoff)) * dx_prev
        a = alpha(min_cutoff + beta * abs(dx_hat))
        x_hat = a * x + (1 - a) * x_prev
        out.append(x_hat)
        x_prev, dx_prev = x_hat, dx_hat
    return np.array(out)


def savgol_reference(x, window, order):
    """Least-squares polynomial per frame: centred windows inside, the first/last window at the ends."""
    t, half = len(x), window // 2
    out = np.empty_like(x)
    for i in range(t):
        lo = min(max(i - half, 0), t - window)
        seg = np.arange(lo, lo + window)
        out[i] = np.polyval(np.polyfit(seg - i, x[seg], order), 0.0)
    return out


@pytest.fixture
def noisy():
    rng = np.random.default_rng(0)
    t = np.arange(60) / 25.0
    clean = np.stack([np.sin(2 * np.pi * 0.4 * t), 0.3 * t, np.cos(2 * np.pi * 0.2 * t) * 2], axis=1)
    return clean, clean + rng.normal(0, 0.05, clean.shape)


def test_one_euro_matches_scalar_reference(noisy):
    _, x = noisy
    got = one_euro(x, 25.0, min_cutoff=1.2, beta=0.7, d_cutoff=1.5)
    want = np.stack([one_euro_scalar(x[:, d], 25.0, 1.2, 0.7, 1.5) for d in range(x.shape[1])], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_savgol_matches_local_polynomial_fit(noisy):
    _, x = noisy
    for window, order in ((9, 2), (7, 3), (5, 1)):
        got = savgol(x, window, order)
        want = np.stack([savgol_reference(x[:, d], window, order) for d in range(x.shape[1])], axis=1)
        np.testing.assert_allclose(got, want, atol=1e-9)


def test_filters_keep_what_they_should():
    t = np.arange(40, dtype=np.float64)
    const = np.full((40, 2), 3.5)
    linear = np.stack([0.1 * t - 1, -0.02 * t], axis=1)
    quadratic = np.stack([0.01 * t ** 2 - 0.3 * t, 0.5 * t], axis=1)
    np.testing.assert_allclose(one_euro(const, 30.0, 0.5, 0.1), const, atol=1e-12)
    np.testing.assert_allclose(savgol(const, 9, 2), const, atol=1e-10)
    np.testing.assert_allclose(savgol(linear, 9, 1), linear, atol=1e-10)  # ends included
    np.testing.assert_allclose(savgol(quadratic, 11, 2), quadratic, atol=1e-9)
    # One-Euro is causal: a ramp lags behind, so it must NOT pass unchanged (the test can fail).
    assert np.abs(one_euro(linear, 30.0, 0.5, 0.0) - linear).max() > 1e-3


def test_filters_reduce_noise(noisy):
    clean, x = noisy
    noise = np.var(x - clean)
    assert np.var(savgol(x, 9, 2) - clean) < 0.5 * noise
    still = 1.0 + np.random.default_rng(1).normal(0, 0.05, (200, 4))
    assert np.var(one_euro(still, 25.0, 1.0, 0.0)[20:]) < 0.3 * np.var(still)
    # Frame-to-frame jitter (second differences) drops on a moving track too.
    accel = lambda y: np.abs(np.diff(y, n=2, axis=0)).mean()  # noqa: E731
    assert accel(one_euro(x, 25.0, 1.0, 0.5)) < 0.5 * accel(x)


def test_types_and_short_clips():
    x = torch.randn(5, 3, dtype=torch.float32)
    y = savgol(x, 9, 2)  # window shortened to 5
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and y.shape == x.shape
    np.testing.assert_allclose(y.numpy(), savgol_reference(x.double().numpy(), 5, 2), atol=1e-5)
    short = torch.randn(2, 3)
    assert torch.equal(savgol(short, 9, 2), short)  # too short to fit a quadratic: unchanged
    assert isinstance(one_euro(x.numpy(), 25.0), np.ndarray)
    with pytest.raises(ValueError):
        savgol(x, 8, 2)
    with pytest.raises(ValueError):
        make_smoothing("kalman")
    with pytest.raises(ValueError):
        make_smoothing("savgol", window=5, order=5)
    with pytest.raises(ValueError):
        OneEuro(min_cutoff=0.0)
    assert make_smoothing("none") is None
    assert make_smoothing("one_euro", beta=0.2) == OneEuro(1.0, 0.2, 1.0)


def test_smooth_params_filters_every_field_and_clamps():
    g = torch.Generator().manual_seed(0)
    t = 30
    p = FlameParams(global_pose=torch.randn(t, 3, generator=g) * 0.1, cam=torch.randn(t, 3, generator=g),
                    shape=torch.randn(t, 4, generator=g), expression=torch.randn(t, 5, generator=g),
                    eyelids=torch.rand(t, 2, generator=g).round(),  # 0/1 steps: a fit overshoots
                    jaw_pose=torch.cat([torch.rand(t, 1, generator=g).round() * 0.3,
                                          torch.full((t, 2), 0.2)], dim=1))
    assert smooth_params(p, None, 25.0) is p
    s = smooth_params(p, SavitzkyGolay(window=7, order=3), 25.0)
    np.testing.assert_allclose(s.expression.numpy(), savgol(p.expression.numpy(), 7, 3), atol=1e-5)
    np.testing.assert_allclose(s.cam.numpy(), savgol(p.cam.numpy(), 7, 3), atol=1e-5)
    assert s.eyelids.min() >= 0 and s.eyelids.max() <= 1 and s.jaw_pose[:, 0].min() >= 0
    assert s.jaw_pose[:, 1:].abs().max() <= 0.2 + 1e-7
    e = smooth_params(p, OneEuro(min_cutoff=1.0, beta=0.0), float("nan"))  # NaN fps -> 25
    np.testing.assert_allclose(e.shape.numpy(), one_euro(p.shape.numpy(), 25.0, 1.0, 0.0), atol=1e-5)
