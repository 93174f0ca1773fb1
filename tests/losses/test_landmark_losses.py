"""Landmark losses against explicit loops and SMIRK's F.mse_loss formulation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tempsmirk.losses import jaw_contour, landmark_loss, select_mediapipe


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1


def loop_loss(pred, target, valid):
    """Σ over valid (b, l) of (Δx² + Δy²), divided by 2 · #valid — written as loops."""
    total, count = 0.0, 0
    for b in range(pred.shape[0]):
        for l in range(pred.shape[1]):
            if valid[b][l]:
                total += float((pred[b, l, 0] - target[b, l, 0]) ** 2 + (pred[b, l, 1] - target[b, l, 1]) ** 2)
                count += 1
    return total / (2 * count) if count else 0.0


def test_matches_loops_for_every_mask_kind():
    pred, target = rand(4, 17, 2, seed=1), rand(4, 17, 2, seed=2)
    everyone = [[True] * 17] * 4
    assert landmark_loss(pred, target).item() == pytest.approx(loop_loss(pred, target, everyone), rel=1e-5)
    per_image = torch.tensor([True, False, True, False])
    expect = loop_loss(pred, target, [[bool(v)] * 17 for v in per_image])
    assert landmark_loss(pred, target, per_image).item() == pytest.approx(expect, rel=1e-5)
    per_point = torch.rand(4, 17, generator=torch.Generator().manual_seed(3)) > 0.4
    expect = loop_loss(pred, target, per_point.tolist())
    assert landmark_loss(pred, target, per_point).item() == pytest.approx(expect, rel=1e-5)


def test_equals_smirk_formulation():
    """SMIRK: F.mse_loss(pred[valid, :17], gt[valid, :17]) on the 68 points."""
    pred68, gt68 = rand(5, 68, 2, seed=4), rand(5, 68, 2, seed=5)
    flags = torch.tensor([True, True, False, True, False])
    smirk = F.mse_loss(pred68[flags, :17], gt68[flags, :17])
    ours = landmark_loss(jaw_contour(pred68), jaw_contour(gt68), flags)
    torch.testing.assert_close(ours, smirk)
    torch.testing.assert_close(landmark_loss(pred68, gt68), F.mse_loss(pred68, gt68))


def test_no_valid_point_gives_attached_zero():
    pred = rand(2, 5, 2, seed=6).requires_grad_(True)
    loss = landmark_loss(pred, rand(2, 5, 2, seed=7), torch.zeros(2, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))


def test_extra_columns_ignored_and_shape_errors():
    pred, target = rand(2, 6, 3, seed=8), rand(2, 6, 2, seed=9)
    torch.testing.assert_close(landmark_loss(pred, target), landmark_loss(pred[..., :2], target))
    with pytest.raises(ValueError, match=r"\(B, L, 2\)"):
        landmark_loss(rand(2, 6, 2), rand(2, 5, 2))
    with pytest.raises(ValueError, match=r"\(B, L, 2\)"):
        landmark_loss(rand(6, 2), rand(6, 2))


def test_gradcheck_float64():
    target = rand(2, 4, 2, seed=10, dtype=torch.float64)
    valid = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.5, 1.0, 0.0, 1.0]], dtype=torch.float64)
    pred = rand(2, 4, 2, seed=11, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: landmark_loss(p, target, valid), (pred,))


def test_subsets_against_loops():
    pts68 = rand(3, 68, 2, seed=12)
    contour = jaw_contour(pts68)
    assert contour.shape == (3, 17, 2)
    assert all(torch.equal(contour[b, i], pts68[b, i]) for b in range(3) for i in range(17))
    with pytest.raises(ValueError, match="68"):
        jaw_contour(rand(3, 51, 2))

    pts478 = rand(2, 478, 2, seed=13)
    idx = torch.randperm(478, generator=torch.Generator().manual_seed(14))[:105].sort().values
    sel = select_mediapipe(pts478, idx)
    assert sel.shape == (2, 105, 2)
    assert all(torch.equal(sel[b, j], pts478[b, int(idx[j])]) for b in range(2) for j in range(105))
    torch.testing.assert_close(select_mediapipe(pts478, idx.numpy()), sel)  # numpy indices from an npz
    with pytest.raises(ValueError, match=r"\[0, 478\)"):
        select_mediapipe(pts478, torch.tensor([0, 478]))
