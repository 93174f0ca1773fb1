"""Chapter 4's plot helpers: the trade-off plot, track plots and the λ explorer widget."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import tempsmirk.temporal  # noqa: E402
from tempsmirk.viz import plot_tracks, plot_tradeoff, smoothing_explorer  # noqa: E402


def test_plot_tradeoff_draws_points_and_truth_line():
    fig, ax = plt.subplots()
    plot_tradeoff(ax, [3.0, 1.0, 0.1], torch.tensor([2.0, 1.0, 4.0]), ["a", "b", "c"], truth_jitter=0.5)
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_xdata(), [3.0, 1.0, 0.1])
    np.testing.assert_allclose(line.get_ydata(), [2.0, 1.0, 4.0])
    assert [t.get_text() for t in ax.texts] == ["a", "b", "c"]
    assert np.allclose(ax.lines[1].get_xdata(), 0.5)  # the truth's jitter, dashed
    assert ax.get_xscale() == "log"
    plt.close(fig)


def test_plot_tracks_one_line_per_track():
    fig, ax = plt.subplots()
    plot_tracks(ax, {"truth": torch.arange(5.0), "noisy": np.ones(5)}, styles={"truth": dict(color="k")})
    assert [l.get_label() for l in ax.lines] == ["truth", "noisy"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.arange(5.0))
    plt.close(fig)


def test_smoothing_explorer_computes_only_on_change(monkeypatch):
    calls = []
    real = tempsmirk.temporal.denoise_tracks
    monkeypatch.setattr(tempsmirk.temporal, "denoise_tracks",
                        lambda y, w, steps: calls.append((tuple(y.shape), w.tolist())) or real(y, w, steps))
    clean = torch.linspace(0, 1, 8)[:, None].repeat(1, 2)
    noisy = clean + 0.1 * torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    box = smoothing_explorer(clean, noisy, ["a", "b"], steps=20)
    slider = box.children[1]
    assert not calls  # nothing computed before the slider moves
    slider.value = 0.1
    assert len(calls) == 1 and calls[0][0] == (1, 8, 2)
    assert calls[0][1] == [pytest.approx(slider.value)]
    plt.close("all")
