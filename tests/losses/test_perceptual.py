"""VGG16 perceptual loss: off without weights, and with a local weights file equal to a
functional VGG written from the layer list (conv 3×3 + ReLU, 2×2 max-pool)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tempsmirk.losses import PerceptualLoss
from tempsmirk.weightsio import CheckpointError

# VGG16's first ten convolutions (features.N indices) and the ReLU after which each level ends.
CONVS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256),
         (14, 256, 256), (17, 256, 512), (19, 512, 512), (21, 512, 512)]
LEVEL_ENDS = {2: "relu1_2", 7: "relu2_2", 14: "relu3_3", 21: "relu4_3"}
POOL_AFTER = {2, 7, 14}


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A torchvision/timm-style vgg16 state dict with random weights and a classifier entry."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for idx, cin, cout in CONVS:
        state[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (2 / (9 * cin)) ** 0.5
        state[f"features.{idx}.bias"] = torch.randn(cout, generator=g) * 0.01
    state["classifier.6.weight"] = torch.zeros(10, 4)  # ignored
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pth"
    torch.save(state, path)
    return path, state


def reference_loss(state, pred, target, resize=None):
    def feats(x):
        x = (x * 0.5 + 0.5 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) \
            / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        if resize:
            x = F.interpolate(x, size=(resize, resize), mode="bilinear", align_corners=False)
        out = []
        for idx, _, _ in CONVS:
            x = F.relu(F.conv2d(x, state[f"features.{idx}.weight"], state[f"features.{idx}.bias"], padding=1))
            if idx in LEVEL_ENDS:
                out.append(x)
            if idx in POOL_AFTER:
                x = F.max_pool2d(x, 2)
        return out

    return sum((a - b).abs().mean() for a, b in zip(feats(pred), feats(target)))


def test_disabled_without_weights_warns_and_returns_zero():
    with pytest.warns(UserWarning, match="perceptual loss is OFF"):
        loss = PerceptualLoss()
    assert loss.enabled is False
    x = torch.rand(2, 3, 32, 32)
    value = loss(x, torch.rand(2, 3, 32, 32))
    assert value.shape == () and value.item() == 0.0


def test_matches_functional_vgg(vgg_file):
    path, state = vgg_file
    loss = PerceptualLoss(path, resize=None)
    assert loss.enabled
    g = torch.Generator().manual_seed(1)
    pred = torch.rand(2, 3, 32, 32, generator=g).requires_grad_(True)
    target = torch.rand(2, 3, 32, 32, generator=g)
    value = loss(pred, target)
    with torch.no_grad():
        expect = reference_loss(state, pred, target)
    torch.testing.assert_close(value, expect, rtol=1e-4, atol=1e-6)
    value.backward()
    assert pred.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss.parameters())
    assert loss(target, target).item() == 0.0


def test_resize_and_eval_mode(vgg_file):
    path, state = vgg_file
    loss = PerceptualLoss(path, resize=40).train()
    assert not loss.vgg.training
    g = torch.Generator().manual_seed(2)
    pred, target = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(loss(pred, target), reference_loss(state, pred, target, resize=40),
                                   rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        loss(pred, target[:, :2])


def test_wrong_weights_file(tmp_path, vgg_file):
    _, state = vgg_file
    bad = {k: v for k, v in state.items() if k != "features.12.weight"}
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="features.12.weight"):
        PerceptualLoss(tmp_path / "bad.pth")
