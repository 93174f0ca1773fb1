"""Temporal losses (eqs. 3–4) and jitter metrics against looped and NumPy references, and the
reference configuration against the formula of the code that produced the paper's Table 2."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from tempsmirk.config import ConfigError, TemporalConfig, load_config
from tempsmirk.flame import FLAME
from tempsmirk.flame.params import FlameParams
from tempsmirk.paths import repo_root
from tempsmirk.temporal import (
    REDUCTIONS,
    TEMPORAL_TERMS,
    JitterReport,
    TemporalTerms,
    TemporalWeights,
    acceleration,
    acceleration_error,
    clip_params,
    clips,
    denoise_tracks,
    flatten_clips,
    identity_loss,
    identity_variance,
    jerk,
    jitter_report,
    pose_normalised_vertices,
    rotation_angle_deg,
    smoothness_loss,
    temporal_loss,
)


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def clip_batch(b=2, t=6, n_shape=300, n_exp=50, seed=0, scale=0.1) -> FlameParams:
    """Random (B, T, ...) parameters with small rotations."""
    return FlameParams(global_pose=rand(b, t, 3, seed=seed) * scale, cam=rand(b, t, 3, seed=seed + 1),
                       shape=rand(b, t, n_shape, seed=seed + 2), expression=rand(b, t, n_exp, seed=seed + 3),
                       eyelids=rand(b, t, 2, seed=seed + 4).sigmoid(),
                       jaw_pose=rand(b, t, 3, seed=seed + 5).abs() * scale)


@pytest.fixture(scope="module")
def flame():
    return FLAME.builtin(seed=0, n_shape=300, n_exp=50)


# ---------------------------------------------------------------------------- loop references
def smooth_loop(p) -> float:
    """Eq. (3) literally: per clip 1/(T−1) Σ_t Σ_d |p[t+1, d] − p[t, d]|, then the mean over clips."""
    per_clip = []
    for clip in p.tolist():
        steps = [sum(abs(a - b) for a, b in zip(clip[t + 1], clip[t])) for t in range(len(clip) - 1)]
        per_clip.append(sum(steps) / len(steps))
    return sum(per_clip) / len(per_clip)


def identity_loop(beta) -> float:
    """Eq. (4) literally: per clip 1/T Σ_t Σ_s (β[t, s] − mean_t β[·, s])², then the mean over clips."""
    per_clip = []
    for clip in beta.tolist():
        n, s = len(clip), len(clip[0])
        mean = [sum(clip[t][k] for t in range(n)) / n for k in range(s)]
        per_clip.append(sum(sum((clip[t][k] - mean[k]) ** 2 for k in range(s)) for t in range(n)) / n)
    return sum(per_clip) / len(per_clip)


def fork_temporal(params: dict, w: dict):
    """The fork's ``compute_temporal_losses`` (steveliu2000/3dcv2025_final, src/smirk_trainer.py),
    written out: one clip of T frames is the batch; element means; terms with weight 0 left out."""
    terms, total = {}, 0.0
    for key, name in (("expression_params", "temporal_expression"), ("jaw_params", "temporal_jaw"),
                      ("pose_params", "temporal_pose"), ("eyelid_params", "temporal_eyelid")):
        if w[name] > 0:
            x = params[key]
            terms[name] = (x[1:, ...] - x[:-1, ...]).abs().mean()
            total = total + w[name] * terms[name]
    if w["temporal_identity"] > 0:
        shape = params["shape_params"]
        terms["temporal_identity"] = ((shape - shape.mean(dim=0, keepdim=True)) ** 2).mean()
        total = total + w["temporal_identity"] * terms["temporal_identity"]
    return total, terms


#: The fork's configs/config_train.yaml, train.loss_weights (temporal part).
FORK_WEIGHTS = dict(temporal_expression=0.1, temporal_jaw=0.05, temporal_pose=0.1, temporal_eyelid=0.05,
                    temporal_identity=0.05)
FORK_KEYS = dict(expression_params="expression", jaw_params="jaw_pose", pose_params="global_pose",
                 eyelid_params="eyelids", shape_params="shape")


def _fork_view(flat: FlameParams) -> dict:
    return {k: getattr(flat, v) for k, v in FORK_KEYS.items()}


@pytest.mark.parametrize("source", ["defaults", "fork profile"])
def test_reference_configuration_gives_the_forks_loss(source):
    """One 32-frame clip, the fork's batch: our reference configuration's temporal total and
    terms equal the fork's formula exactly."""
    if source == "defaults":
        cfg = TemporalConfig(enabled=True)
    else:
        cfg = load_config(repo_root() / "tempsmirk" / "configs" / "temporal_finetune_fork.yaml", ["run.dir=x"]).temporal
    flat = flatten_clips(clip_batch(b=1, t=32, seed=21, scale=0.3))  # (32, ...) frames, as the fork's batch
    ours = temporal_loss(clip_params(flat, 32), cfg.active_weights())
    total, terms = fork_temporal(_fork_view(flat), FORK_WEIGHTS)
    assert float(ours.total) == pytest.approx(float(total), rel=1e-6)
    for name, ref in (("expression", "temporal_expression"), ("jaw", "temporal_jaw"), ("pose", "temporal_pose"),
                      ("eyelids", "temporal_eyelid"), ("identity", "temporal_identity")):
        assert float(getattr(ours, name)) == pytest.approx(float(terms[ref]), rel=1e-6), name


def test_several_clips_average_the_forks_per_clip_value():
    """B clips: the mean of the fork's value over the clips (never a difference across clips)."""
    p = clip_batch(b=3, t=8, seed=22)
    ours = temporal_loss(p, TemporalWeights())
    per_clip = [fork_temporal(_fork_view(p[i]), FORK_WEIGHTS)[0] for i in range(3)]
    assert float(ours.total) == pytest.approx(float(sum(per_clip)) / 3, rel=1e-6)


@pytest.mark.parametrize("b,t,d", [(1, 2, 1), (3, 5, 7), (2, 9, 3)])
def test_smoothness_sum_matches_the_printed_equation(b, t, d):
    p = rand(b, t, d, seed=b * 100 + t)
    assert smoothness_loss(p, reduction="sum").item() == pytest.approx(smooth_loop(p), rel=1e-5)
    # "mean" is the printed equation divided by D: the mean over steps and dimensions.
    assert smoothness_loss(p).item() == pytest.approx(smooth_loop(p) / d, rel=1e-5)


@pytest.mark.parametrize("b,t,s", [(1, 2, 1), (3, 5, 7), (2, 9, 4)])
def test_identity_sum_matches_the_printed_equation(b, t, s):
    beta = rand(b, t, s, seed=b * 100 + t)
    assert identity_loss(beta, reduction="sum").item() == pytest.approx(identity_loop(beta), rel=1e-5)
    assert identity_loss(beta).item() == pytest.approx(identity_loop(beta) / s, rel=1e-5)


def test_sum_is_d_times_mean_per_term():
    """At equal weights eqs. (3)-(4) as printed are D times the fork's terms: 50, 3, 3, 2, 300."""
    p = clip_batch(b=2, t=6, seed=23)
    mean = temporal_loss(p, TemporalWeights()).as_floats()
    total = temporal_loss(p, TemporalWeights(reduction="sum")).as_floats()
    for name, d in zip(TEMPORAL_TERMS, (50, 3, 3, 2, 300)):
        assert total[name] == pytest.approx(d * mean[name], rel=1e-5), name


def test_no_differences_across_clips():
    # Two constant clips with different constants: flattened, they would have a jump at the boundary.
    p = torch.stack([torch.full((5, 4), 1.0), torch.full((5, 4), -3.0)])
    for r in REDUCTIONS:
        assert smoothness_loss(p, r).item() == 0.0
        assert identity_loss(p, r).item() == 0.0
    assert acceleration(p).abs().max().item() == 0.0
    assert jerk(p).abs().max().item() == 0.0
    assert identity_variance(p).abs().max().item() == 0.0
    # The same frames grouped as one clip are not smooth (the check above could fail).
    assert smoothness_loss(p.reshape(1, 10, 4)).item() > 0


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_losses_are_means_over_clips(reduction):
    # A clip's loss does not depend on which other clips share the batch (beyond averaging).
    a, b = rand(1, 6, 5, seed=1), rand(1, 6, 5, seed=2) * 3
    both = torch.cat([a, b])
    for fn in (smoothness_loss, identity_loss):
        assert fn(both, reduction).item() == pytest.approx((fn(a, reduction).item() + fn(b, reduction).item()) / 2,
                                                           rel=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_smoothness_gradcheck(reduction):
    # Random float64 values: no two consecutive entries tie, so |·| is differentiable there.
    p = rand(2, 5, 3, seed=3, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: smoothness_loss(x, reduction), (p,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_identity_gradcheck(reduction):
    beta = rand(2, 4, 3, seed=4, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: identity_loss(x, reduction), (beta,))


@pytest.mark.parametrize("fn", [smoothness_loss, identity_loss])
def test_loss_shape_errors(fn):
    with pytest.raises(ValueError, match=r"\(B, T, D\).*clips\("):
        fn(rand(6, 4))
    with pytest.raises(ValueError, match="at least 2 frames; got T=1"):
        fn(rand(3, 1, 4))


# ---------------------------------------------------------------------------- temporal_loss
def test_temporal_loss_terms_and_total():
    p = clip_batch(seed=7)
    for reduction, dims in (("sum", dict(expression=1, jaw=1, pose=1, eyelids=1, identity=1)),
                            ("mean", dict(expression=50, jaw=3, pose=3, eyelids=2, identity=300))):
        w = TemporalWeights(expression=0.3, jaw=0.2, pose=0.5, eyelids=0.7, identity=0.11, reduction=reduction)
        terms = temporal_loss(p, w)
        assert isinstance(terms, TemporalTerms)
        assert terms.expression.item() == pytest.approx(smooth_loop(p.expression) / dims["expression"], rel=1e-5)
        assert terms.jaw.item() == pytest.approx(smooth_loop(p.jaw_pose) / dims["jaw"], rel=1e-5)
        assert terms.pose.item() == pytest.approx(smooth_loop(p.global_pose) / dims["pose"], rel=1e-5)
        assert terms.eyelids.item() == pytest.approx(smooth_loop(p.eyelids) / dims["eyelids"], rel=1e-5)
        assert terms.identity.item() == pytest.approx((identity_loop(p.shape[:, :, :20]) +
                                                       identity_loop(p.shape[:, :, 20:])) / dims["identity"], rel=1e-5)
        f = terms.as_floats()
        expected = sum(getattr(w, k) * f[k] for k in TEMPORAL_TERMS)
        assert f["total"] == pytest.approx(expected, rel=1e-6)
        assert set(f) == {*TEMPORAL_TERMS, "total"}


def test_temporal_loss_ignores_camera_and_backpropagates():
    p = clip_batch(seed=8)
    moved = dataclasses.replace(p, cam=p.cam + rand(*p.cam.shape, seed=99))
    assert temporal_loss(moved).total.item() == temporal_loss(p).total.item()
    expr = p.expression.clone().requires_grad_()
    temporal_loss(dataclasses.replace(p, expression=expr)).total.backward()
    assert expr.grad is not None and expr.grad.abs().sum() > 0


def test_reference_weights_and_validation():
    w = TemporalWeights()
    assert (w.expression, w.jaw, w.pose, w.eyelids, w.identity) == (0.1, 0.05, 0.1, 0.05, 0.05)
    assert w.reduction == "mean" == TemporalConfig().weights.reduction  # the fork's, which the weights were tuned for
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.jaw = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="jaw"):
        TemporalWeights(jaw=-1.0)
    with pytest.raises(ValueError, match="reduction"):
        TemporalWeights(reduction="max")
    with pytest.raises(ValueError, match="reduction"):
        smoothness_loss(rand(1, 3, 2), reduction="none")
    assert w.scaled(10) == TemporalWeights(1.0, 0.5, 1.0, 0.5, 0.5)
    assert TemporalWeights(reduction="sum").scaled(0).reduction == "sum"
    # The config section: off gives zero weights with the configured reduction; typos fail at load.
    sums = TemporalWeights(reduction="sum")
    assert TemporalConfig(weights=sums).active_weights() == TemporalWeights(0, 0, 0, 0, 0, reduction="sum")
    assert TemporalConfig(enabled=True).active_weights() == w
    assert load_config(None, ["run.dir=x", "temporal.weights.reduction=sum"]).temporal.weights.reduction == "sum"
    with pytest.raises(ConfigError, match="temporal.weights: reduction"):
        load_config(None, ["run.dir=x", "temporal.weights.reduction=average"])


def test_clips_regroups_flattened_frames():
    x = torch.arange(24.0).reshape(6, 4)  # 2 clips × 3 frames
    c = clips(x, 3)
    assert c.shape == (2, 3, 4)
    assert torch.equal(c[1, 0], x[3])
    with pytest.raises(ValueError, match="multiple of t"):
        clips(x, 4)
    p = clip_batch(b=2, t=3)
    flat = flatten_clips(p)
    assert flat.expression.shape == (6, 50)
    back = clip_params(flat, 3)
    assert all(torch.equal(getattr(back, f.name), getattr(p, f.name)) for f in dataclasses.fields(p))


# ---------------------------------------------------------------------------- jitter metrics
def np_norm(d, vertices):
    n = np.linalg.norm(d, axis=-1)
    return n.mean(-1) if vertices else n


@pytest.mark.parametrize("shape", [(2, 7, 5), (2, 6, 11, 3)])
def test_jitter_metrics_match_numpy(shape):
    x, y = rand(*shape, seed=11, dtype=torch.float64), rand(*shape, seed=12, dtype=torch.float64)
    xn, yn, v = x.numpy(), y.numpy(), len(shape) == 4
    np.testing.assert_allclose(acceleration(x).numpy(), np_norm(np.diff(xn, n=2, axis=1), v), rtol=1e-12)
    np.testing.assert_allclose(jerk(x).numpy(), np_norm(np.diff(xn, n=3, axis=1), v), rtol=1e-12)
    err = np_norm(np.diff(xn, n=2, axis=1) - np.diff(yn, n=2, axis=1), v)
    np.testing.assert_allclose(acceleration_error(x, y).numpy(), err, rtol=1e-12)
    assert acceleration(x).shape == shape[:1] + (shape[1] - 2,)
    assert jerk(x).shape == shape[:1] + (shape[1] - 3,)


def test_acceleration_formula_by_hand():
    x = torch.tensor([[[0.0], [1.0], [4.0], [9.0], [16.0]]])  # t², second difference 2, third 0
    assert torch.equal(acceleration(x), torch.full((1, 3), 2.0))
    assert torch.equal(jerk(x), torch.zeros(1, 2))
    # A linear drift has no acceleration error, however far off it is.
    drift = x + torch.arange(5.0).view(1, 5, 1) * 3 + 10
    assert acceleration_error(drift, x).abs().max().item() == 0.0


def test_identity_variance_matches_numpy():
    beta = rand(3, 5, 8, seed=13, dtype=torch.float64)
    b = beta.numpy()
    ref = ((b - b.mean(1, keepdims=True)) ** 2).sum(-1).mean(1)
    np.testing.assert_allclose(identity_variance(beta).numpy(), ref, rtol=1e-12)
    assert identity_loss(beta, "sum").item() == pytest.approx(ref.mean(), rel=1e-12)


def test_jitter_shape_errors():
    with pytest.raises(ValueError, match="at least 3 frames; got T=2"):
        acceleration(rand(2, 2, 3))
    with pytest.raises(ValueError, match="at least 4 frames"):
        jerk(rand(2, 3, 3))
    with pytest.raises(ValueError, match=r"\(B, T, V, 3\)"):
        acceleration(rand(2, 5, 4, 2))
    with pytest.raises(ValueError, match="same shape"):
        acceleration_error(rand(2, 5, 3), rand(2, 6, 3))


def test_rotation_angle_matches_scipy():
    a, b = rand(20, 3, seed=14) * 0.8, rand(20, 3, seed=15) * 0.8
    ref = (Rotation.from_rotvec(a.double().numpy()).inv() * Rotation.from_rotvec(b.double().numpy())).magnitude()
    np.testing.assert_allclose(rotation_angle_deg(a, b).numpy(), np.degrees(ref), atol=1e-3)
    small = rotation_angle_deg(torch.zeros(1, 3), torch.tensor([[0.0, 1e-4, 0.0]]))
    assert small.item() == pytest.approx(math.degrees(1e-4), rel=1e-3)


def test_pose_normalised_vertices_ignore_global_pose(flame):
    p = clip_batch(b=2, t=3, seed=20)
    v = pose_normalised_vertices(flame, p)
    assert v.shape == (2, 3, flame.n_vertices, 3)
    turned = dataclasses.replace(p, global_pose=rand(2, 3, 3, seed=21) * 0.5, cam=p.cam * 2)
    torch.testing.assert_close(pose_normalised_vertices(flame, turned), v)
    # Frame (1, 2) is FLAME on that frame's parameters with a zero global rotation.
    one = flame(shape=p.shape[1, 2:3], expression=p.expression[1, 2:3], jaw_pose=p.jaw_pose[1, 2:3],
                eyelids=p.eyelids[1, 2:3]).vertices[0]
    torch.testing.assert_close(v[1, 2], one)
    # and it does move with the expression (the invariance above could fail).
    moved = dataclasses.replace(p, expression=p.expression + 0.5)
    assert (pose_normalised_vertices(flame, moved) - v).abs().max() > 1e-4


def test_jitter_report_per_frame_errors(flame):
    target = clip_batch(b=2, t=5, seed=30)
    noise = clip_batch(b=2, t=5, seed=40, scale=1.0)
    pred = FlameParams(**{f.name: getattr(target, f.name) + 0.02 * getattr(noise, f.name)
                            for f in dataclasses.fields(FlameParams)})
    r = jitter_report(pred, flame, target)
    assert isinstance(r, JitterReport)
    deg = 180 / math.pi
    e = (pred.expression - target.expression).numpy()
    assert r.expression_rmse == pytest.approx(float(np.sqrt((e ** 2).mean())), rel=1e-5)
    for name, field in (("pose_error_deg", "global_pose"), ("jaw_error_deg", "jaw_pose")):
        a = getattr(pred, field).reshape(-1, 3).double().numpy()
        b = getattr(target, field).reshape(-1, 3).double().numpy()
        ref = np.degrees((Rotation.from_rotvec(a).inv() * Rotation.from_rotvec(b)).magnitude()).mean()
        assert getattr(r, name) == pytest.approx(ref, abs=1e-3)
    vp, vt = pose_normalised_vertices(flame, pred), pose_normalised_vertices(flame, target)
    assert r.vertex_error_mm == pytest.approx(float((vp - vt).norm(dim=-1).mean()) * 1000, rel=1e-5)
    assert r.vertex_accel_mm == pytest.approx(float(acceleration(vp).mean()) * 1000, rel=1e-5)
    assert r.vertex_accel_error_mm == pytest.approx(float(acceleration_error(vp, vt).mean()) * 1000, rel=1e-5)
    exp = np.diff(pred.expression.numpy(), n=2, axis=1)
    assert r.expression_accel == pytest.approx(float(np.linalg.norm(exp, axis=-1).mean()), rel=1e-5)
    pose = np.diff(pred.global_pose.numpy(), n=3, axis=1)
    assert r.pose_jerk_deg == pytest.approx(float(np.linalg.norm(pose, axis=-1).mean()) * deg, rel=1e-5)
    assert r.shape_variance == pytest.approx(float(identity_variance(pred.shape).mean()), rel=1e-6)
    row = r.as_row()
    assert len(row) == len(dataclasses.fields(JitterReport))
    assert all(isinstance(v, float) for v in row.values())


def test_jitter_report_without_flame_or_target():
    p = clip_batch(b=1, t=4)
    row = jitter_report(p).as_row()
    assert "expression_accel" in row and "pose_jerk_deg" in row
    assert not any(k.startswith("vertex") or k.endswith("_error_deg") or k == "expression_rmse" for k in row)
    with pytest.raises(ValueError, match="at least 4 frames"):
        jitter_report(clip_batch(b=1, t=3))
    with pytest.raises(ValueError, match="pred.expression"):
        jitter_report(p, target=clip_batch(b=1, t=4, n_exp=10))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_per_clip_losses(reduction):
    p = rand(3, 5, 4, seed=50)
    per_clip = smoothness_loss(p, reduction, per_clip=True)
    d = 1 if reduction == "sum" else 4
    assert per_clip.shape == (3,)
    assert per_clip[1].item() == pytest.approx(smooth_loop(p[1:2]) / d, rel=1e-5)
    assert identity_loss(p, reduction, per_clip=True)[2].item() == pytest.approx(identity_loop(p[2:3]) / d, rel=1e-5)


# ---------------------------------------------------------------------------- denoise_tracks
def test_denoise_two_frames_matches_closed_form():
    # T = 2: minimise ½Σ(q − y)² + λ|q₂ − q₁|. The mean stays; the step shrinks by 2λ (soft threshold).
    y = torch.tensor([[[0.0, 2.0], [1.0, -1.0]]])  # (B=1, T=2, D=2); steps d = (1, -3)
    lams = torch.tensor([0.0, 0.1, 0.3, 0.6, 2.0])
    q = denoise_tracks(y, lams, steps=400)
    assert q.shape == (5, 1, 2, 2)
    for i, lam in enumerate(lams.tolist()):
        for dim, d in enumerate((1.0, -3.0)):
            step = math.copysign(max(abs(d) - 2 * lam, 0.0), d)
            assert float(q[i, 0, 1, dim] - q[i, 0, 0, dim]) == pytest.approx(step, abs=2e-3)
            assert float(q[i, 0, :, dim].mean()) == pytest.approx(float(y[0, :, dim].mean()), abs=2e-3)


def test_denoise_lowers_the_objective_and_keeps_clips_apart():
    y = rand(2, 12, 3, seed=60)
    y[1] += 10  # a far-away second clip must not pull the first
    lam = 0.2
    q = denoise_tracks(y, torch.tensor([lam]))[0]

    def objective(x):
        return ((x - y).pow(2).sum(-1).mean(1) + lam * smoothness_loss(x, "sum", per_clip=True)).sum()

    assert objective(q) < objective(y)
    alone = denoise_tracks(y[:1], torch.tensor([lam]))[0]
    torch.testing.assert_close(alone[0], q[0], atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match=">= 0"):
        denoise_tracks(y, torch.tensor([-1.0]))


def test_jitter_report_accepts_precomputed_target_vertices(flame):
    target, pred = clip_batch(b=1, t=4, seed=70), clip_batch(b=1, t=4, seed=71)
    vt = pose_normalised_vertices(flame, target)
    assert jitter_report(pred, flame, target, vt) == jitter_report(pred, flame, target)
    with pytest.raises(ValueError, match="target_vertices"):
        jitter_report(pred, flame, target, vt[:, :3])
