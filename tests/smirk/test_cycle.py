"""The augmented cycle against the reference's ``step2``: its distributions written out here as
numbers (group sizes, scales, clamps, noise levels), the template bank, one pass with gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.integrate import trapezoid

import tempsmirk.smirk.cycle as cycle_mod
from tempsmirk.flame.params import FlameParams
from tempsmirk.smirk.cycle import (
    AUGMENTATIONS,
    ExpressionTemplates,
    augment_params,
    builtin_templates,
    load_templates,
)

E = 50


def _params(b: int, e: int = E, seed: int = 0) -> FlameParams:
    g = torch.Generator().manual_seed(seed)
    return FlameParams(global_pose=torch.randn(b, 3, generator=g) * 0.1,
                       cam=torch.tensor([[7.0, 0.0, 0.0]]).repeat(b, 1),
                       shape=torch.randn(b, 300, generator=g) * 0.3,
                       expression=torch.randn(b, e, generator=g),
                       eyelids=torch.rand(b, 2, generator=g),
                       jaw_pose=torch.rand(b, 3, generator=g) * torch.tensor([0.3, 0.1, 0.1]))


def _constant(b: int, expression: float = 0.0, jaw=(0.2, 0.0, 0.0), lids: float = 0.5) -> FlameParams:
    p = _params(b)
    return FlameParams(global_pose=p.global_pose, cam=p.cam, shape=p.shape,
                       expression=torch.full((b, E), expression), eyelids=torch.full((b, 2), lids),
                       jaw_pose=torch.tensor(jaw).repeat(b, 1))


def _uniform(x: torch.Tensor, lo: float, hi: float) -> float:
    """KS p-value of x against U(lo, hi)."""
    return stats.kstest(x.numpy().ravel(), stats.uniform(lo, hi - lo).cdf).pvalue


def test_groups_are_smirks_random_quarters():
    """gids = randperm(B) cut at B//4, 2B//4, 3B//4: sizes as the reference's, random members."""
    for b in (1, 2, 3, 5, 8, 9, 33):
        a = augment_params(_params(b), builtin_templates(E), torch.Generator().manual_seed(b))
        sizes = torch.bincount(a.kind, minlength=4).tolist()
        assert sizes == [b // 4, 2 * b // 4 - b // 4, 3 * b // 4 - 2 * b // 4, b - 3 * b // 4], b
    kinds = [augment_params(_params(8), builtin_templates(E), torch.Generator().manual_seed(s)).kind
             for s in range(5)]
    assert len({tuple(k.tolist()) for k in kinds}) > 1 and len(AUGMENTATIONS) == 4


def test_perturbation_distribution(monkeypatch):
    """Group 0 without the extra noise: half the coefficients (Bernoulli ½) get N(0, σ²) with
    σ = 1 + 2U, then clamp ±4. The share clamped is ∫₀¹ 2(1 − Φ(4 / (1 + 2u))) du."""
    monkeypatch.setattr(cycle_mod, "NOISE_STD_MAX", 0.0)
    b = 4000
    a = augment_params(_constant(b), builtin_templates(E), torch.Generator().manual_seed(1))
    x = a.params.expression[a.kind == 0]
    touched = x != 0
    assert float(touched.float().mean()) == pytest.approx(0.5, abs=0.01)
    assert float(x.abs().max()) == 4.0
    u = np.linspace(0, 1, 20001)
    clamped = trapezoid(2 * stats.norm.sf(4 / (1 + 2 * u)), u)  # = 0.0588
    assert float((x.abs() == 4).float().sum() / touched.sum()) == pytest.approx(clamped, abs=0.006)
    # Unclamped values: with a = 4/σ, E[x²; |x| < 4] = E_σ[σ²((2Φ(a) − 1) − 2aφ(a))].
    xs = x[touched & (x.abs() < 4)]
    sig = 1 + 2 * u
    a = 4 / sig
    second = (trapezoid(sig ** 2 * (2 * stats.norm.cdf(a) - 1 - 2 * a * stats.norm.pdf(a)), u)
              / trapezoid(2 * stats.norm.cdf(a) - 1, u))
    assert float(xs.pow(2).mean()) == pytest.approx(second, rel=0.04)


def test_extra_noise_distribution():
    """Every edit adds 0.2U·n: in the zero group the expression is that noise alone, so each row's
    standard deviation is U(0, 0.2) (up to the sampling error of 50 coefficients)."""
    b = 4000
    a = augment_params(_constant(b, expression=3.0), builtin_templates(E), torch.Generator().manual_seed(2))
    zero = a.kind == 3
    rows = a.params.expression[zero]
    rms = rows.pow(2).mean(1).sqrt()
    assert float(rms.max()) < 0.2 * 1.45 and float(rms.mean()) == pytest.approx(0.1, abs=0.005)
    assert float(rms.median()) == pytest.approx(0.1, abs=0.01)
    assert (a.params.jaw_pose[zero] == 0).all()
    assert _uniform(a.params.eyelids[zero], 0.0, 1.0) > 1e-3  # eyelids U(0, 1) in the zero group


def test_permutation_within_the_group(monkeypatch):
    """Without the extra noise group 1 takes the ψ of a member of the same group, times
    U(0.25, 1.5). Rows are powers of 7 along one direction, so each output names its source."""
    monkeypatch.setattr(cycle_mod, "NOISE_STD_MAX", 0.0)
    b = 40
    direction = torch.nn.functional.normalize(torch.randn(E, generator=torch.Generator().manual_seed(4)), dim=0)
    values = 7.0 ** torch.arange(b, dtype=torch.float64)
    base = _params(b, seed=3)
    base = FlameParams(**{**base.__dict__, "expression": (values[:, None] * direction.double()).float()})
    scales = []
    for seed in range(100):
        a = augment_params(base, builtin_templates(E), torch.Generator().manual_seed(seed))
        members = (a.kind == 1).nonzero().squeeze(1)
        coef = (a.params.expression[members].double() @ direction.double())
        for c in coef.tolist():
            ratio = c / values
            j = ((ratio >= 0.25 - 1e-6) & (ratio <= 1.5 + 1e-6)).nonzero().squeeze(1)
            assert len(j) == 1 and int(j) in members.tolist()  # a source in the same group
            scales.append(float(ratio[j]))
    assert len(scales) == 1000 and _uniform(torch.tensor(scales), 0.25, 1.5) > 1e-3


def test_templates_are_drawn_per_group_and_scaled(monkeypatch):
    """Group 2: a template group uniformly, then a row of it, times U(0.25, 1.5)."""
    monkeypatch.setattr(cycle_mod, "NOISE_STD_MAX", 0.0)
    one, nine = torch.randn(1, E), torch.randn(9, E)
    rows = torch.cat([one, nine])
    bank = ExpressionTemplates(rows, torch.tensor([0] + [1] * 9))
    a = augment_params(_params(2000), bank, torch.Generator().manual_seed(5))
    tmpl = a.params.expression[a.kind == 2]
    cos = tmpl @ rows.T / tmpl.norm(dim=1, keepdim=True) / rows.norm(dim=1)
    which = cos.argmax(1)
    assert torch.allclose(cos.max(1).values, torch.ones(len(tmpl)), atol=1e-5)
    assert float((which == 0).float().mean()) == pytest.approx(0.5, abs=0.06)  # group-uniform, not row-uniform
    assert _uniform(tmpl.norm(dim=1) / rows.norm(dim=1)[which], 0.25, 1.5) > 1e-3


def test_jaw_and_eyelid_jitter():
    """Jaw: with probability ½ add N(0, 0.2²)·(1, 0.1, 0.1), then clamp the opening to [0, 0.5];
    eyelids: + U(−0.25, 0.25), clamp [0, 1]. Written-out expectations for a jaw opening of 0.2:
    P(clamped at 0) = ½Φ(−1) = 0.079, P(clamped at 0.5) = ½(1 − Φ(1.5)) = 0.033."""
    b = 8000
    a = augment_params(_constant(b), builtin_templates(E), torch.Generator().manual_seed(6))
    keep = a.kind != 3
    jaw, lids = a.params.jaw_pose[keep], a.params.eyelids[keep]
    still = (jaw == torch.tensor([0.2, 0.0, 0.0])).all(1)
    assert float(still.float().mean()) == pytest.approx(0.5, abs=0.02)
    moved = jaw[~still]
    assert float(moved[:, 1:].std()) == pytest.approx(0.02, rel=0.05)
    assert float(moved[:, 0].min()) == 0.0 and float(moved[:, 0].max()) == 0.5
    assert float((jaw[:, 0] == 0).float().mean()) == pytest.approx(0.5 * stats.norm.cdf(-1), abs=0.01)
    assert float((jaw[:, 0] == 0.5).float().mean()) == pytest.approx(0.5 * stats.norm.sf(1.5), abs=0.008)
    inner = moved[(moved[:, 0] > 0) & (moved[:, 0] < 0.5), 0]
    assert float(inner.mean()) == pytest.approx(0.2 + 0.2 * (stats.norm.pdf(-1) - stats.norm.pdf(1.5))
                                                / (stats.norm.cdf(1.5) - stats.norm.cdf(-1)), abs=0.01)
    assert _uniform(lids, 0.25, 0.75) > 1e-3
    edge = augment_params(_constant(b, lids=0.9), builtin_templates(E), torch.Generator().manual_seed(7))
    top = edge.params.eyelids[edge.kind != 3]
    assert float(top.max()) == 1.0 and float((top == 1).float().mean()) == pytest.approx(0.3, abs=0.02)
    for name in ("shape", "global_pose", "cam"):
        assert torch.equal(getattr(a.params, name), getattr(_constant(b), name))


def test_builtin_templates_documented_layout():
    bank = builtin_templates(50, n_components=10, amplitude=2.0)
    t = bank.expression
    assert t.shape == (30, 50) and bank.n_groups == 1
    torch.testing.assert_close(t[:10], 2 * torch.eye(50)[:10])
    torch.testing.assert_close(t[10:20], -2 * torch.eye(50)[:10])
    torch.testing.assert_close(t[20:].norm(dim=1), torch.full((10,), 2.0))
    assert (t[20:] != 0).sum(1).eq(2).all() and (t[:, 10:] == 0).all()
    assert torch.equal(t, builtin_templates(50, 10, 2.0).expression)


def test_load_templates_formats(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "t.npy", arr)
    np.savez(tmp_path / "t.npz", expression=arr, other=arr)
    torch.save({"expression": torch.from_numpy(arr)}, tmp_path / "t.pt")
    for name in ("t.npy", "t.npz", "t.pt"):
        t = load_templates(tmp_path / name, 6).expression
        assert t.shape == (3, 6) and torch.equal(t[:, :4], torch.from_numpy(arr)) and (t[:, 4:] == 0).all()
    assert load_templates(tmp_path / "t.npy", 2).expression.shape == (3, 2)
    with pytest.raises(FileNotFoundError, match="templates"):
        load_templates(tmp_path / "missing.npy", 6)
    np.save(tmp_path / "bad.npy", np.zeros(5, dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(K, E\)"):
        load_templates(tmp_path / "bad.npy", 6)


def test_load_templates_smirks_famos_folder(tmp_path):
    """SMIRK's layout: <subject>/<class>/*.npy, each an np.save'd dict whose 'expression' is
    (1, 100); only its twelve classes count, .mp4 files beside them are skipped."""
    rng = np.random.default_rng(0)
    root = tmp_path / "expression_templates_famos"
    made = {}
    for subject, classes in (("FaMoS_subject_001", ("high_smile", "kissing")),
                             ("FaMoS_subject_002", ("jaw", "not_a_smirk_class"))):
        for cls in classes:
            (root / subject / cls).mkdir(parents=True)
            (root / subject / f"{cls}.mp4").write_bytes(b"\x00")
            rows = rng.normal(size=(3, 100)).astype(np.float32)
            for i, row in enumerate(rows):
                params = {"expression": row[None], "pose": rng.normal(size=(1, 15)).astype(np.float32),
                          "shape": rng.normal(size=(1, 300)).astype(np.float32)}
                np.save(root / subject / cls / f"{i:05d}.npy", params, allow_pickle=True)
            made[(subject, cls)] = rows
    bank = load_templates(root, 50)
    assert bank.n_groups == 3 and bank.expression.shape == (9, 50)
    expected = np.concatenate([made[k][:, :50] for k in sorted(made) if k[1] != "not_a_smirk_class"])
    assert np.allclose(np.sort(bank.expression.numpy(), 0), np.sort(expected, 0))
    assert load_templates(root, 120).expression[:, 100:].abs().sum() == 0
    with pytest.raises(ValueError, match="FaMoS"):
        load_templates(tmp_path / "expression_templates_famos" / "FaMoS_subject_002" / "jaw", 50)


@pytest.fixture(scope="module")
def scene():
    from tempsmirk.flame import FLAME
    from tempsmirk.render import project_points, render_mesh
    from tempsmirk.smirk.masking import (
        MaskingConfig,
        face_hull_points,
        face_sampling_weights,
        mask_face,
    )

    flame = FLAME.builtin(0)
    p = _params(4, seed=3)
    out = flame(shape=p.shape, expression=p.expression, global_pose=p.global_pose,
                jaw_pose=p.jaw_pose, eyelids=p.eyelids)
    face = flame.region_faces("face")
    r = render_mesh(out.vertices, flame.faces, p.cam, 32, face_mask=face)
    image = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    hull = face_hull_points(project_points(out.landmarks68, p.cam, 32).normalised,
                            project_points(out.landmarks_mp, p.cam, 32).normalised)
    weights = face_sampling_weights(flame)
    m = mask_face(image, hull, r, flame.faces, weights, MaskingConfig(), torch.Generator().manual_seed(0))
    return dict(flame=flame, p=p, face=face, r=r, image=image, m=m, weights=weights)


def _cycle(s, encoder, generator, generator_trains, seed=1):
    from tempsmirk.config import LossConfig
    from tempsmirk.losses import LossWeights
    from tempsmirk.training import cycle_path, step_context

    # The context's face mask, sampling weights, templates (builtin_templates(E)) and masking are
    # the scene's.
    ctx = step_context(s["flame"], LossConfig(weights=LossWeights(perceptual=0)))
    return cycle_path(encoder, generator, s["image"], s["p"], s["m"].hidden, s["r"].screen_vertices, ctx,
                      torch.Generator().manual_seed(seed), generator_trains)


def test_cycle_path_hides_the_face_and_moves_fresh_points(scene):
    from tempsmirk.smirk import SmirkEncoder, SmirkGenerator

    torch.manual_seed(0)
    c = _cycle(scene, SmirkEncoder().eval(), SmirkGenerator().eval(), True)
    edited = (c.rendering.sum(1, keepdim=True) > 0).float()
    visible = (1 - scene["m"].hidden) * (1 - edited)
    # The background as it is, except where a moved point landed just off the rasterised edge.
    changed = ((c.masked != scene["image"]).any(1, keepdim=True) & visible.bool()).float()
    near = torch.nn.functional.max_pool2d(torch.maximum(edited, scene["m"].hidden), 3, 1, 1)
    assert changed.sum() <= 0.01 * visible.sum() and (changed <= near).all()
    # Hidden: the hull and the *edited* face; inside, only the moved points (some were dropped).
    inside = c.masked * (1 - visible)
    painted = inside.abs().sum(1) > 0
    assert 0 < int(painted.sum()) <= 4 * int(0.01 * 32 * 32)
    # Fresh points: another draw than the reconstruction path's.
    assert not torch.equal(c.masked * (1 - visible), scene["m"].image * (1 - visible))


def test_cycle_path_gradients_follow_who_trains(scene):
    from tempsmirk.losses import cycle_loss
    from tempsmirk.smirk import SmirkEncoder, SmirkGenerator

    torch.manual_seed(0)
    encoder, generator = SmirkEncoder(), SmirkGenerator()
    # Even iterations: the encoder is frozen, the generator learns through it (shape term on).
    encoder.requires_grad_(False)
    c = _cycle(scene, encoder, generator, True)
    assert torch.isfinite(c.loss) and c.loss.requires_grad
    torch.testing.assert_close(c.loss, cycle_loss(c.reencoded, c.augmented.params, shape_weight=1.0))
    c.loss.backward()
    assert all(q.grad is None for q in encoder.parameters())
    assert sum(q.grad.abs().sum() for q in generator.parameters() if q.grad is not None) > 0
    # Odd iterations: the generated image is detached, only the encoder learns; no shape term.
    encoder.requires_grad_(True)
    generator.zero_grad(set_to_none=True)
    c = _cycle(scene, encoder, generator, False)
    torch.testing.assert_close(c.loss, cycle_loss(c.reencoded, c.augmented.params, shape_weight=0.0))
    c.loss.backward()
    assert all(q.grad is None for q in generator.parameters())
    assert sum(q.grad.abs().sum() for q in encoder.parameters() if q.grad is not None) > 0
