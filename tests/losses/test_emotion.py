"""The emotion-feature loss: EMOCA's ResNet-50 as SMIRK builds it, read from a checkpoint written
the way EMOCA writes it (a Lightning checkpoint), checked against torchvision's ResNet-50."""

from __future__ import annotations

import pickle
import sys
import types

import pytest
import torch
from omegaconf import OmegaConf

from tempsmirk.losses.emotion import EmotionFeatures, EmotionLoss, read_emotion_state
from tempsmirk.weightsio import CheckpointError


def _lightning_checkpoint(path, backbone: dict) -> None:
    """EMOCA's emotion checkpoint as SMIRK reads it: ``state_dict`` with ``backbone.*`` (its fc
    8631 × 2048, from the VGGFace2 ResNet) and the emotion head ``linear``, plus Lightning's
    bookkeeping, which pickles a callback class and an OmegaConf config."""
    mod = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")

    class ModelCheckpoint:  # stands in for Lightning's class: pickled by reference
        pass

    ModelCheckpoint.__module__, ModelCheckpoint.__qualname__ = mod.__name__, "ModelCheckpoint"
    mod.ModelCheckpoint = ModelCheckpoint
    names = ["pytorch_lightning", "pytorch_lightning.callbacks", mod.__name__]
    saved = {n: sys.modules.get(n) for n in names}
    for n in names[:-1]:
        sys.modules[n] = types.ModuleType(n)
    sys.modules[mod.__name__] = mod
    try:
        state = {f"backbone.{k}": v for k, v in backbone.items()}
        state["backbone.fc.weight"] = torch.zeros(8631, 2048)
        state["backbone.fc.bias"] = torch.zeros(8631)
        state["linear.weight"], state["linear.bias"] = torch.randn(10, 2048), torch.randn(10)
        config = OmegaConf.create({"model": {"backbone": "resnet50", "n_expression": 8}, "data": {"n_expression": 8}})
        torch.save({"epoch": 1, "global_step": 1234, "pytorch-lightning_version": "1.4.9", "state_dict": state,
                    "callbacks": {ModelCheckpoint: {"best_model_score": torch.tensor(1.276),
                                                    "best_model_path": "deca-epoch=01.ckpt"}},
                    "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-4}]}], "lr_schedulers": [],
                    "hyper_parameters": {"config": config}}, path)
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


@pytest.fixture(scope="module")
def emoca_file(tmp_path_factory):
    """Randomly initialised weights (BatchNorm statistics too) saved in EMOCA's layout."""
    torch.manual_seed(0)
    net = EmotionFeatures()
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if "running_var" in name:
                t.uniform_(0.5, 1.5)
            elif "running_mean" in name or name.endswith("bn3.weight") or ".bias" in name:
                t.normal_(0, 0.1)
    path = tmp_path_factory.mktemp("emoca") / "dataloader_idx_0=1.27607644.ckpt"
    _lightning_checkpoint(path, net.state_dict())
    return path, net.state_dict()


def test_reads_emocas_checkpoint_without_running_it(emoca_file):
    path, state = emoca_file
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)  # Lightning's extras are not weights-only
    got = read_emotion_state(path)
    assert set(got) == set(state) and all(torch.equal(got[k], state[k]) for k in state)


def test_features_match_torchvisions_resnet50(emoca_file):
    """SMIRK's emoca_specific ResNet-50 is torchvision's layout: same weights, same features."""
    from tempsmirk.compat import ensure_torchvision

    ensure_torchvision()
    import torchvision

    path, state = emoca_file
    loss = EmotionLoss.from_file(path)
    ref = torchvision.models.resnet50(weights=None)
    missing, unexpected = ref.load_state_dict(state, strict=False)
    assert set(missing) == {"fc.weight", "fc.bias"} and not unexpected
    ref.fc = torch.nn.Identity()
    ref.eval()
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    y = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        fx, fy = ref(x), ref(y)
        expected = (fx - fy).pow(2).mean(1).mean()  # SMIRK: metric='l2', use_mean=False, then .mean()
        torch.testing.assert_close(loss(x, y), expected, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(loss.features(x[:1]), fx[:1], rtol=1e-4, atol=1e-5)
    # Frozen, always in eval mode, gradients reach the generated image only.
    loss.train()
    assert not loss.features.training and not any(p.requires_grad for p in loss.parameters())
    small = torch.rand(1, 3, 64, 64, requires_grad=True)
    loss(small, torch.rand(1, 3, 64, 64)).backward()  # other sizes are resized to 224
    assert small.grad.abs().sum() > 0


def test_refuses_code_and_names_what_is_missing(tmp_path, emoca_file):
    class Boom:
        def __reduce__(self):
            import os
            return (os.system, ("echo owned > " + str(tmp_path / "owned"),))

    torch.save({"state_dict": {}, "x": Boom()}, tmp_path / "evil.ckpt")
    with pytest.raises(CheckpointError, match="posix.system|os.system"):
        read_emotion_state(tmp_path / "evil.ckpt")
    assert not (tmp_path / "owned").exists()
    _, state = emoca_file
    partial = {f"backbone.{k}": v for k, v in state.items() if not k.startswith("layer4")}
    torch.save({"state_dict": partial}, tmp_path / "partial.ckpt")
    with pytest.raises(CheckpointError, match="layer4"):
        EmotionLoss.from_file(tmp_path / "partial.ckpt")
    with pytest.raises(FileNotFoundError, match="emotion"):
        EmotionLoss.from_file(tmp_path / "absent.ckpt")
    # A bare backbone state dict (e.g. re-saved from a trusted environment) loads too.
    torch.save(state, tmp_path / "bare.pt")
    assert set(read_emotion_state(tmp_path / "bare.pt")) == set(state)
