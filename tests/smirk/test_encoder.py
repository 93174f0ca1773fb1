"""SMIRK encoder: heads against hand-written formulas, SMIRK's initialisation, gradients,
freezing, backbone weights from local files."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from tempsmirk.flame.params import FlameParams
from tempsmirk.smirk import SmirkEncoder
from tempsmirk.smirk.encoder import ExpressionBranch, PoseBranch
from tempsmirk.weightsio import CheckpointError

H = 64


def images(b: int, seed: int = 0, size: int = H) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


def pooled(backbone, img):
    """Reference pooling: last feature map through F.adaptive_avg_pool2d, as SMIRK does."""
    return F.adaptive_avg_pool2d(backbone(img)[-1], (1, 1)).flatten(1)


def test_output_fields_shapes(encoder):
    with torch.no_grad():
        out = encoder(images(3))
    assert isinstance(out, FlameParams)
    expect = dict(global_pose=(3, 3), cam=(3, 3), shape=(3, 300), expression=(3, 50),
                  eyelids=(3, 2), jaw_pose=(3, 3))
    assert {f.name: tuple(getattr(out, f.name).shape) for f in dataclasses.fields(out)} == expect
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.cam = out.cam


def test_initialisation_matches_smirk(encoder):
    with torch.no_grad():
        a, b = encoder(images(2, seed=1)), encoder(torch.zeros(1, 3, H, H))
    for out in (a, b):
        assert torch.equal(out.cam[:, 0], torch.full_like(out.cam[:, 0], 7.0))  # any input
        assert out.cam[:, 1:].abs().max() < 1e-2 and out.global_pose.abs().max() < 1e-2
        assert torch.equal(out.shape, torch.zeros_like(out.shape))
    pose = encoder.pose_encoder.pose_cam_layers[0]
    bound = 0.001 / pose.in_features ** 0.5  # default Linear init is U(±1/√fan_in), then ×0.001
    assert pose.weight.abs().max() <= bound and torch.all(pose.weight[3] == 0) and pose.bias[3] == 7
    rest = torch.cat([pose.bias[:3], pose.bias[4:]])
    assert rest.abs().max() <= bound
    exp = encoder.expression_encoder.expression_layers[0]
    assert exp.weight.abs().max() <= 0.1 / exp.in_features ** 0.5
    assert exp.weight.abs().max() > 0.01 / exp.in_features ** 0.5  # scaled, not zeroed


@pytest.mark.parametrize("seed", range(4))
def test_clamped_outputs_start_alive(seed):
    """Jaw opening (ReLU) and eyelids (clamp) start inside their ranges for every image, so they
    receive gradient from the first step. With SMIRK's plain ×0.1 init the jaw ReLU is dead for
    all inputs on torch seed 0 (random pooled features are nearly all positive)."""
    torch.manual_seed(seed)
    branch = ExpressionBranch(n_exp=50).eval()
    with torch.no_grad():
        _, eyelids, jaw = branch(images(16, seed=seed))
    assert (jaw[:, 0] > 0).all() and ((eyelids > 0) & (eyelids < 1)).all()
    img = images(4, seed=seed).requires_grad_(True)
    _, eyelids, jaw = branch.train()(img)
    (jaw[:, 0].sum() + eyelids.sum()).backward()
    assert branch.expression_layers[0].weight.grad[50:53].abs().sum(1).gt(0).all()


def test_heads_against_formula():
    """Raw head outputs split and activated by hand vs the branches' forward."""
    torch.manual_seed(1)
    branch = ExpressionBranch(n_exp=10).eval()
    head = branch.expression_layers[0]
    img = images(4, seed=2)
    with torch.no_grad():
        # Centre each output over the batch and spread it (std 2) so every clamp is exercised:
        # four centred values always include one below and one above the centre.
        head.weight.normal_()
        raw0 = pooled(branch.encoder, img) @ head.weight.T
        k = 2.0 / (raw0 - raw0.mean(0)).std()
        head.weight.mul_(k)
        head.bias.copy_(-raw0.mean(0) * k)
        expression, eyelids, jaw = branch(img)
        raw = pooled(branch.encoder, img) @ head.weight.T + head.bias
    for b in range(4):
        r = raw[b]
        torch.testing.assert_close(expression[b], r[:10])
        for k in range(2):
            torch.testing.assert_close(eyelids[b, k], r[10 + k].clamp(0, 1))
        torch.testing.assert_close(jaw[b, 0], torch.maximum(r[12], torch.zeros(())))
        for k in range(2):
            torch.testing.assert_close(jaw[b, 1 + k], r[13 + k].clamp(-0.2, 0.2))
    # The test inputs do exercise every clamp.
    assert (raw[:, 10:12] < 0).any() and (raw[:, 10:12] > 1).any()
    assert (raw[:, 12] < 0).any() and (raw[:, 13:15].abs() > 0.2).any()
    assert eyelids.min() >= 0 and eyelids.max() <= 1 and jaw[:, 0].min() >= 0
    assert jaw[:, 1:].abs().max() <= 0.2

    pose = PoseBranch().eval()
    with torch.no_grad():
        gp, cam = pose(img)
        raw = pooled(pose.encoder, img) @ pose.pose_cam_layers[0].weight.T + pose.pose_cam_layers[0].bias
    torch.testing.assert_close(gp, raw[:, :3])
    torch.testing.assert_close(cam, raw[:, 3:])


def test_batch_independent_in_eval(encoder):
    """No batch size baked in: a batch gives what its images give one at a time."""
    img = images(3, seed=3)
    with torch.no_grad():
        whole = encoder(img)
        parts = FlameParams.cat(encoder(img[i:i + 1]) for i in range(3))
    for f in dataclasses.fields(whole):
        torch.testing.assert_close(getattr(whole, f.name), getattr(parts, f.name), rtol=1e-4, atol=1e-5)


def test_gradients_reach_every_branch_and_the_image():
    torch.manual_seed(2)
    enc = SmirkEncoder(n_exp=10).train()
    assert enc.frozen_branches == ()
    with torch.no_grad():  # the zero-initialised shape head would block its backbone's gradient
        enc.shape_encoder.shape_layers[0].weight.normal_(0, 0.01)
    img = images(2, seed=4).requires_grad_(True)
    out = enc(img)
    loss = sum(getattr(out, f.name).square().sum() for f in dataclasses.fields(out))
    loss.backward()
    for name in ("pose", "shape", "expression"):
        branch = enc.branch(name)
        grads = [p.grad for p in branch.encoder.parameters()]
        assert all(g is not None for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, name
        head = next(m for m in branch.children() if isinstance(m, torch.nn.Sequential))
        assert head[0].weight.grad.abs().sum() > 0, name
    assert img.grad.abs().sum() > 0


def test_freeze_stops_parameter_grads_not_input_grads():
    enc = SmirkEncoder(n_exp=10, frozen=("shape",))
    assert enc.frozen_branches == ("shape",)
    assert not any(p.requires_grad for p in enc.shape_encoder.parameters())
    assert all(p.requires_grad for p in enc.pose_encoder.parameters())
    enc.freeze()
    assert enc.frozen_branches == ("pose", "shape", "expression")
    img = images(2, seed=5).requires_grad_(True)
    out = enc.eval()(img)
    (out.expression.sum() + out.cam.sum()).backward()
    assert img.grad.abs().sum() > 0  # the cycle path trains the generator through a frozen encoder
    assert all(p.grad is None for p in enc.parameters())
    enc.unfreeze("expression")
    assert enc.frozen_branches == ("pose", "shape")
    with pytest.raises(ValueError, match="unknown encoder branch"):
        enc.freeze("jaw")


def test_input_validation(encoder):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        encoder(torch.rand(3, H, H))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        encoder(torch.rand(1, H, H, 3))
    with pytest.raises(ValueError, match="at least 32"):
        encoder(torch.rand(1, 3, 16, 16))


def test_backbone_weights_from_local_files(tmp_path):
    torch.manual_seed(3)
    donor = SmirkEncoder(n_exp=10)
    with torch.no_grad():
        for p in donor.parameters():
            p.add_(0.01)  # differ from any fresh init
    pose_sd = dict(donor.pose_encoder.encoder.state_dict())
    # A timm classification state dict carries a head the features-only backbone lacks.
    pose_sd["conv_head.weight"] = torch.zeros(1024, 576, 1, 1)
    pose_sd["classifier.weight"] = torch.zeros(1000, 1024)
    torch.save(pose_sd, tmp_path / "pose.pth")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in donor.expression_encoder.encoder.state_dict().items()},
              str(tmp_path / "exp.safetensors"))
    enc = SmirkEncoder(n_exp=10, backbone_weights={"pose": tmp_path / "pose.pth",
                                                    "expression": tmp_path / "exp.safetensors"})
    for name in ("pose", "expression"):
        mine, theirs = enc.branch(name).encoder.state_dict(), donor.branch(name).encoder.state_dict()
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs), name
    # Heads keep SMIRK's init (backbone files hold no head).
    assert enc.pose_encoder.pose_cam_layers[0].bias[3] == 7
    # The shape branch was not given a file and differs from the donor.
    assert not torch.equal(enc.shape_encoder.encoder.conv_stem.weight, donor.shape_encoder.encoder.conv_stem.weight)

    with pytest.raises(CheckpointError, match="conv_stem|shape") as err:  # large-net weights into the small net
        SmirkEncoder(n_exp=10, backbone_weights={"pose": tmp_path / "exp.safetensors"})
    assert err.value.missing or err.value.mismatched
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        SmirkEncoder(n_exp=10, backbone_weights={"shape": tmp_path / "absent.pth"})
    with pytest.raises(ValueError, match="unknown encoder branch"):
        SmirkEncoder(n_exp=10, backbone_weights={"eyes": tmp_path / "pose.pth"})


def test_encoder_output_helpers(encoder):
    with torch.no_grad():
        out = encoder(images(4, seed=6))
    assert out.batch_size == 4
    sub = out[torch.tensor([2, 0])]
    torch.testing.assert_close(sub.expression, out.expression[[2, 0]])
    both = FlameParams.cat([out[:1], out[1:]])
    assert all(torch.equal(getattr(both, f.name), getattr(out, f.name)) for f in dataclasses.fields(out))
    leaf = torch.ones(2, 3, requires_grad=True) * 2
    o = FlameParams(leaf, leaf, leaf, leaf, leaf[:, :2], leaf)
    assert not any(getattr(o.detach(), f.name).requires_grad for f in dataclasses.fields(o))
    assert o.to(torch.float64).cam.dtype == torch.float64
