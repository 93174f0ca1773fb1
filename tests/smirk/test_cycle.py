"""The augmented cycle: the four edits, the template bank, one full pass with gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tempsmirk.smirk.cycle import (
    AUGMENTATIONS,
    CycleConfig,
    augment_params,
    builtin_templates,
    cycle_path,
    load_templates,
)
from tempsmirk.smirk.encoder import EncoderOutput


def _params(b: int, e: int = 50, seed: int = 0) -> EncoderOutput:
    g = torch.Generator().manual_seed(seed)
    return EncoderOutput(global_pose=torch.randn(b, 3, generator=g) * 0.1,
                         cam=torch.tensor([[7.0, 0.0, 0.0]]).repeat(b, 1),
                         shape=torch.randn(b, 300, generator=g) * 0.3,
                         expression=torch.randn(b, e, generator=g),
                         eyelids=torch.rand(b, 2, generator=g),
                         jaw_pose=torch.rand(b, 3, generator=g) * torch.tensor([0.3, 0.1, 0.1]))


def test_quarters_get_their_edit():
    p = _params(8)
    templates = builtin_templates(50)
    a = augment_params(p, templates, CycleConfig(jaw_jitter=0.0, eyelid_jitter=0.0),
                       torch.Generator().manual_seed(1))
    assert a.kind.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and len(AUGMENTATIONS) == 4
    e = a.params.expression
    assert not torch.equal(e[:2], p.expression[:2])  # perturbed
    assert ((e[:2] - p.expression[:2]).std() - 0.5).abs() < 0.25
    for i in (2, 3):  # permuted: a whole row (expression, jaw, eyelids) of some batch element
        j = [k for k in range(8) if torch.equal(p.expression[k], e[i])]
        assert j and torch.equal(a.params.jaw_pose[i], p.jaw_pose[j[0]])
    for i in (4, 5):
        assert any(torch.equal(e[i], t) for t in templates)
    assert (e[6:] == 0).all()
    for name in ("shape", "global_pose", "cam"):
        assert torch.equal(getattr(a.params, name), getattr(p, name))


def test_jitter_keeps_encoder_ranges():
    p = _params(16)
    a = augment_params(p, builtin_templates(50), CycleConfig(jaw_jitter=1.0, eyelid_jitter=1.0),
                       torch.Generator().manual_seed(2))
    assert (a.params.jaw_pose[:, 0] >= 0).all() and (a.params.jaw_pose[:, 1:].abs() <= 0.2).all()
    assert ((a.params.eyelids >= 0) & (a.params.eyelids <= 1)).all()
    assert not torch.equal(a.params.eyelids, p.eyelids)
    b = augment_params(p, builtin_templates(50), CycleConfig(jaw_jitter=1.0, eyelid_jitter=1.0),
                       torch.Generator().manual_seed(2))
    assert torch.equal(a.params.expression, b.params.expression)


def test_builtin_templates_documented_layout():
    t = builtin_templates(50, n_components=10, amplitude=2.0)
    assert t.shape == (30, 50)
    torch.testing.assert_close(t[:10], 2 * torch.eye(50)[:10])
    torch.testing.assert_close(t[10:20], -2 * torch.eye(50)[:10])
    torch.testing.assert_close(t[20:].norm(dim=1), torch.full((10,), 2.0))
    assert (t[20:] != 0).sum(1).eq(2).all() and (t[:, 10:] == 0).all()
    assert torch.equal(t, builtin_templates(50, 10, 2.0))


def test_load_templates_formats(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "t.npy", arr)
    np.savez(tmp_path / "t.npz", expression=arr, other=arr)
    torch.save({"expression": torch.from_numpy(arr)}, tmp_path / "t.pt")
    for name in ("t.npy", "t.npz", "t.pt"):
        t = load_templates(tmp_path / name, 6)
        assert t.shape == (3, 6) and torch.equal(t[:, :4], torch.from_numpy(arr)) and (t[:, 4:] == 0).all()
    assert load_templates(tmp_path / "t.npy", 2).shape == (3, 2)
    with pytest.raises(FileNotFoundError, match="templates"):
        load_templates(tmp_path / "missing.npy", 6)
    np.save(tmp_path / "bad.npy", np.zeros(5, dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(K, E\)"):
        load_templates(tmp_path / "bad.npy", 6)


def test_cycle_path_trains_the_generator_through_a_frozen_encoder():
    from tempsmirk.flame import FLAME
    from tempsmirk.render import render_mesh
    from tempsmirk.smirk import SmirkEncoder, SmirkGenerator
    from tempsmirk.smirk.masking import MaskingConfig, face_sampling_weights, mask_face

    torch.manual_seed(0)
    flame = FLAME.builtin(0)
    encoder, generator = SmirkEncoder().freeze(), SmirkGenerator()
    p = _params(4, seed=3)
    out = flame(shape=p.shape, expression=p.expression, global_pose=p.global_pose,
                jaw_pose=p.jaw_pose, eyelids=p.eyelids)
    face = flame.region_faces("face")
    r = render_mesh(out.vertices, flame.faces, p.cam, 32, face_mask=face)
    image = torch.rand(4, 3, 32, 32)
    from tempsmirk.render import project_points

    lmk = project_points(out.landmarks_mp, p.cam, 32).normalised
    rng = torch.Generator().manual_seed(0)
    m = mask_face(image, lmk, r, flame.faces, face_sampling_weights(flame), MaskingConfig(), rng)
    c = cycle_path(encoder, generator, flame, image, p, m.hull, r.mask, m.samples, face,
                   builtin_templates(50), CycleConfig(), 2, 11, rng)
    assert c.generated.shape == (4, 3, 32, 32) and torch.isfinite(c.loss)
    assert c.loss.requires_grad
    c.loss.backward()
    assert all(q.grad is None for q in encoder.parameters())
    assert sum(q.grad.abs().sum() for q in generator.parameters() if q.grad is not None) > 0
    # The edited expression, not the original, is what the cycle asks back.
    assert torch.equal(c.augmented.params.expression[3], torch.zeros(50))
