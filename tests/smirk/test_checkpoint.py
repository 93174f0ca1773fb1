"""Checkpoints: our modules reproduce the official layout (940 keys), official-layout files load
strictly into the right tensors, our files round-trip, bad files fail with named keys, and
pickles that are not weights-only are refused without running anything."""

from __future__ import annotations

import hashlib
import os
import pickle

import pytest
import torch

from tempsmirk.smirk import (
    CheckpointError,
    SmirkEncoder,
    SmirkGenerator,
    load_smirk_checkpoint,
    save_smirk_checkpoint,
    smirk_state_dict,
)

# sha256 of the "key:shape:dtype" lines of ../shared/reference/smirk_checkpoint_layout.json, per
# prefix, in file order: checks the layout even where the shared folder is absent.
LAYOUT_SHA256 = {
    "smirk_encoder.": "7f4d5ebaf4cd47608838aec01a61c0f8dd3823f0224a870e6fb742b4ecb933dd",
    "smirk_generator.": "138ddff96feeab4fe8975f332a84ceb0041ef55bf376ba11e1eb7273241dafa2",
}
ENC_HEAD = "smirk_encoder.expression_encoder.expression_layers.0.weight"


@pytest.fixture(scope="module")
def modules(encoder):
    torch.manual_seed(0)
    return encoder, SmirkGenerator().eval()


def layout_digest(state: dict, prefix: str) -> str:
    lines = [f"{k}:{','.join(map(str, v.shape))}:{v.dtype}" for k, v in state.items() if k.startswith(prefix)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_layout_digest(modules):
    state = smirk_state_dict(*modules)
    assert len(state) == 940
    for prefix, digest in LAYOUT_SHA256.items():
        assert layout_digest(state, prefix) == digest, prefix


@pytest.mark.needs_shared_data
def test_layout_matches_reference_file(modules, smirk_layout):
    state = smirk_state_dict(*modules)
    assert list(state) == list(smirk_layout)  # same keys, same order
    wrong = [k for k, (shape, dtype) in smirk_layout.items()
             if tuple(state[k].shape) != shape or state[k].dtype != dtype]
    assert wrong == []
    # Parameters and buffers, counted on the modules, match the file's split.
    buffer_suffixes = (".running_mean", ".running_var", ".num_batches_tracked")
    n_buffers = sum(k.endswith(buffer_suffixes) for k in smirk_layout)
    n_param_values = sum(torch.Size(s).numel() for k, (s, _) in smirk_layout.items()
                         if not k.endswith(buffer_suffixes))
    enc, gen = modules
    assert sum(len(list(m.named_buffers())) for m in modules) == n_buffers
    assert sum(p.numel() for m in modules for p in m.parameters()) == n_param_values
    assert sum(len(list(m.parameters())) for m in modules) == len(smirk_layout) - n_buffers


@pytest.mark.needs_shared_data
def test_official_layout_loads_every_tensor(layout_checkpoint, layout_state):
    enc, gen = load_smirk_checkpoint(layout_checkpoint)
    assert gen is not None and not enc.training and not gen.training
    for prefix, module in (("smirk_encoder.", enc), ("smirk_generator.", gen)):
        loaded = module.state_dict()
        expect = {k[len(prefix):]: v for k, v in layout_state.items() if k.startswith(prefix)}
        assert loaded.keys() == expect.keys()
        assert all(torch.equal(loaded[k], expect[k]) for k in expect), prefix
    enc_only, none = load_smirk_checkpoint(layout_checkpoint, with_generator=False)
    assert none is None and torch.equal(enc_only.pose_encoder.encoder.conv_stem.weight,
                                        enc.pose_encoder.encoder.conv_stem.weight)
    # Spot checks through the attribute paths the code uses.
    torch.testing.assert_close(enc.pose_encoder.pose_cam_layers[0].bias,
                               layout_state["smirk_encoder.pose_encoder.pose_cam_layers.0.bias"])
    torch.testing.assert_close(gen.resnet_blocks[4].conv_block[5].weight,
                               layout_state["smirk_generator.resnet_blocks.4.conv_block.5.weight"])


@pytest.mark.needs_shared_data
def test_encoder_only_and_training_wrapper(tmp_path, layout_state):
    enc_only = {k: v for k, v in layout_state.items() if k.startswith("smirk_encoder.")}
    torch.save(enc_only, tmp_path / "enc.pt")
    enc, gen = load_smirk_checkpoint(tmp_path / "enc.pt")
    assert gen is None
    assert torch.equal(enc.shape_encoder.shape_layers[0].weight,
                       layout_state["smirk_encoder.shape_encoder.shape_layers.0.weight"])
    torch.save({"model": enc_only, "step": 7, "optimizer": {"state": {}, "param_groups": []}},
               tmp_path / "train.pt")
    enc2, gen2 = load_smirk_checkpoint(tmp_path / "train.pt")
    assert gen2 is None and torch.equal(enc2.shape_encoder.shape_layers[0].weight,
                                        enc.shape_encoder.shape_layers[0].weight)


def _save(tmp_path, name, state):
    path = tmp_path / name
    torch.save(state, path)
    return path


@pytest.mark.needs_shared_data
def test_strict_errors_name_the_keys(tmp_path, layout_state):
    enc_only = {k: v for k, v in layout_state.items() if k.startswith("smirk_encoder.")}
    gone = "smirk_encoder.pose_encoder.encoder.blocks.3.1.bn2.running_var"
    missing = {k: v for k, v in enc_only.items() if k != gone}
    with pytest.raises(CheckpointError, match="missing") as err:
        load_smirk_checkpoint(_save(tmp_path, "missing.pt", missing))
    assert err.value.missing == [gone] and gone in str(err.value)

    extra = dict(enc_only, **{"smirk_encoder.pose_encoder.extra_layer.weight": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="unexpected") as err:
        load_smirk_checkpoint(_save(tmp_path, "extra.pt", extra))
    assert err.value.unexpected == ["smirk_encoder.pose_encoder.extra_layer.weight"]
    assert "smirk_encoder.pose_encoder.extra_layer.weight" in str(err.value)

    bent = "smirk_encoder.shape_encoder.encoder.conv_stem.weight"
    wrong = dict(enc_only, **{bent: torch.zeros(16, 3, 5, 5)})
    with pytest.raises(CheckpointError, match="shape mismatch") as err:
        load_smirk_checkpoint(_save(tmp_path, "wrong.pt", wrong))
    assert len(err.value.mismatched) == 1 and bent in str(err.value) and "(16, 3, 3, 3)" in str(err.value)

    partial_gen = dict(enc_only, **{"smirk_generator.conv.bias": torch.zeros(3)})
    with pytest.raises(CheckpointError) as err:
        load_smirk_checkpoint(_save(tmp_path, "partial.pt", partial_gen))
    assert len(err.value.missing) == 177  # every other generator key is named


@pytest.mark.needs_shared_data
def test_other_formats_get_a_hint(tmp_path, layout_state):
    bare = {k[len("smirk_encoder."):]: v for k, v in layout_state.items() if k.startswith("smirk_encoder.")}
    with pytest.raises(CheckpointError, match="bare SmirkEncoder state dict"):
        load_smirk_checkpoint(_save(tmp_path, "bare.pt", bare))
    with pytest.raises(CheckpointError, match="under the key 'state_dict'"):
        load_smirk_checkpoint(_save(tmp_path, "nested.pt", {"state_dict": layout_state, "epoch": 3}))
    with pytest.raises(CheckpointError, match="expected a dict"):
        load_smirk_checkpoint(_save(tmp_path, "list.pt", [torch.zeros(1)]))
    with pytest.raises(FileNotFoundError):
        load_smirk_checkpoint(tmp_path / "absent.pt")


def test_n_exp_mismatch_hint_and_encoder_round_trip(tmp_path):
    torch.manual_seed(5)
    enc = SmirkEncoder(n_exp=10).eval()
    path = save_smirk_checkpoint(tmp_path / "sub" / "enc10.pt", enc)
    with pytest.raises(CheckpointError, match="n_exp=10"):
        load_smirk_checkpoint(path)
    enc2, gen2 = load_smirk_checkpoint(path, n_exp=10)
    assert gen2 is None
    img = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = enc(img), enc2(img)
    torch.testing.assert_close(a.expression, b.expression, rtol=0, atol=0)
    torch.testing.assert_close(a.cam, b.cam, rtol=0, atol=0)


def test_round_trip_full(tmp_path, modules):
    enc, gen = modules
    path = tmp_path / "ours.pt"
    save_smirk_checkpoint(path, enc, gen)
    raw = torch.load(path, map_location="cpu", weights_only=True)  # what the official code reads
    state = smirk_state_dict(enc, gen)
    assert list(raw) == list(state) and all(torch.equal(raw[k], state[k]) for k in state)
    enc2, gen2 = load_smirk_checkpoint(path)
    for a, b in ((enc, enc2), (gen, gen2)):
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert [p.name for p in tmp_path.iterdir()] == ["ours.pt"]  # no temporary file left


def test_save_is_atomic(tmp_path, modules, monkeypatch):
    enc, _ = modules
    path = tmp_path / "enc.pt"
    save_smirk_checkpoint(path, enc)
    before = path.read_bytes()

    def failing_save(obj, fh, *a, **k):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_smirk_checkpoint(path, enc)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc.pt"]


class _Payload:
    """Unpickling this would create a folder: proof of code execution if it ever appears."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (str(self.target),))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_refuses_pickles_that_are_not_weights_only(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        torch.save({ENC_HEAD: torch.zeros(1), "payload": _Payload(marker)}, fh)
    with pytest.raises(CheckpointError, match="not a weights-only file"):
        load_smirk_checkpoint(path)
    assert not marker.exists()
    plain = tmp_path / "plain.pkl"  # a raw pickle, not even a torch file
    plain.write_bytes(pickle.dumps({"x": _Payload(marker)}))
    with pytest.raises(CheckpointError):
        load_smirk_checkpoint(plain)
    assert not marker.exists()


def test_a_file_that_is_not_torch_says_so(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x20ftypisom" + bytes(64))
    with pytest.raises(CheckpointError, match="not a torch weights file"):
        load_smirk_checkpoint(video)


@pytest.mark.gpu
def test_cuda_modules_save_as_cpu_checkpoint(tmp_path):
    torch.manual_seed(6)
    enc, gen = SmirkEncoder(n_exp=10).cuda().eval(), SmirkGenerator().cuda().eval()
    with torch.no_grad():
        out = enc(torch.rand(2, 3, 64, 64, device="cuda"))
        img = gen(torch.rand(2, 6, 64, 64, device="cuda"))
    assert out.cam.is_cuda and img.shape == (2, 3, 64, 64)
    path = save_smirk_checkpoint(tmp_path / "gpu.pt", enc, gen)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert all(v.device.type == "cpu" for v in raw.values())
    enc2, gen2 = load_smirk_checkpoint(path, n_exp=10)
    with torch.no_grad():
        out2 = enc2.cuda()(torch.zeros(1, 3, 64, 64, device="cuda"))
        out1 = enc(torch.zeros(1, 3, 64, 64, device="cuda"))
    torch.testing.assert_close(out1.expression, out2.expression)
