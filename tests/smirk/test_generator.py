"""SMIRK generator against a functional re-implementation written from the architecture
description (guide §2), driven only by the state dict."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tempsmirk.smirk import SmirkGenerator


def reference_unet(sd: dict[str, torch.Tensor], x: torch.Tensor, n_res: int = 5) -> torch.Tensor:
    """U-Net in eval mode with plain functional ops; weights looked up by official key names."""

    def bn(h, p):
        return F.batch_norm(h, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"],
                            sd[p + ".bias"], training=False, eps=1e-5)

    def stage(h, mod, name):
        for i in (1, 2):
            h = F.conv2d(h, sd[f"{mod}.{name}conv{i}.weight"], padding=1)
            h = F.relu(bn(h, f"{mod}.{name}norm{i}"))
        return h

    e1 = stage(x, "encoder1", "enc1")
    e2 = stage(F.max_pool2d(e1, 2), "encoder2", "enc2")
    e3 = stage(F.max_pool2d(e2, 2), "encoder3", "enc3")
    e4 = stage(F.max_pool2d(e3, 2), "encoder4", "enc4")
    h = stage(F.max_pool2d(e4, 2), "bottleneck", "bottleneck")
    for r in range(n_res):
        p = f"resnet_blocks.{r}.conv_block"
        y = F.conv2d(F.pad(h, (1, 1, 1, 1), mode="reflect"), sd[p + ".1.weight"])
        y = F.relu(bn(y, p + ".2"))
        y = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="reflect"), sd[p + ".5.weight"])
        h = h + bn(y, p + ".6")
    for lvl, skip in ((4, e4), (3, e3), (2, e2), (1, e1)):
        up = F.conv_transpose2d(h, sd[f"upconv{lvl}.weight"], sd[f"upconv{lvl}.bias"], stride=2)
        h = stage(torch.cat([up, skip], 1), f"decoder{lvl}", f"dec{lvl}")
    return torch.sigmoid(F.conv2d(h, sd["conv.weight"], sd["conv.bias"]))


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    g = SmirkGenerator()
    with torch.no_grad():  # non-trivial BatchNorm statistics so eval mode is really tested
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return g.eval()


def test_matches_functional_reference(generator):
    x = torch.rand(2, 6, 32, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = generator(x)
        ref = reference_unet(generator.state_dict(), x)
    assert out.shape == (2, 3, 32, 48)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    assert out.min() >= 0 and out.max() <= 1
    assert out.std() > 1e-3  # not a constant image


def test_train_mode_shape_range_and_gradients():
    torch.manual_seed(1)
    g = SmirkGenerator().train()
    x = torch.rand(2, 6, 64, 64).requires_grad_(True)
    out = g(x)
    assert out.shape == (2, 3, 64, 64) and out.min() >= 0 and out.max() <= 1
    out.mean().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in g.parameters())


def test_input_validation(generator):
    with pytest.raises(ValueError, match=r"\(B, 6, H, W\)"):
        generator(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="divisible by 16"):
        generator(torch.rand(1, 6, 40, 32))


def test_parameter_and_buffer_counts(generator):
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in generator.modules())
    assert n_bn == 9 * 2 + 5 * 2  # 9 double-conv stages, 5 residual blocks with 2 norms each
    # 178 official generator keys = parameters + 3 buffers per BatchNorm.
    assert len(generator.state_dict()) == 178
    assert len(list(generator.named_buffers())) == 3 * n_bn
