"""Clip training: the temporal terms in the step, the total of eq. (5), the trainer in clip mode."""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import fields

import pytest
import torch
from torch import nn

from tempsmirk.config import LossConfig, load_config
from tempsmirk.data import FaceBatch, SyntheticConfig, SyntheticFaces, collate_faces
from tempsmirk.flame import load_flame
from tempsmirk.flame.params import FlameParams
from tempsmirk.losses import LossWeights
from tempsmirk.smirk import SmirkEncoder, SmirkGenerator
from tempsmirk.temporal import TemporalWeights, temporal_loss
from tempsmirk.training import Trainer, smirk_step, step_context
from tempsmirk.training.step import clip_step

T = 4
CLIP = ["data.synthetic.clip_length=4", "data.synthetic.keyframe_every=3", "data.synthetic.nuisance.pixel_noise=0.02",
        "data.synthetic.nuisance.crop_shift=0.02"]


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    flame = load_flame(None, 300, 50)
    data = SyntheticFaces(flame, SyntheticConfig(image_size=32, n_items=2, clip_length=T, keyframe_every=3))
    batch = collate_faces([data[0], data[1]])
    return dict(batch=batch, ctx=step_context(flame, LossConfig(weights=LossWeights(perceptual=0))))


def _step(fn, encoder, generator, parts, batch, weights, seed=3, temporal=None, **kw):
    ctx = dataclasses.replace(parts["ctx"], weights=weights)
    if temporal is not None:
        ctx = dataclasses.replace(ctx, temporal=temporal)
    return fn(encoder, generator, batch, ctx, torch.Generator().manual_seed(seed), **kw)


def _scratch_temporal(flat: FlameParams, b: int, t: int, w: TemporalWeights) -> dict:
    """Eqs. (3)-(4) written out on flattened clip-major frames, one clip and one step at a time;
    each step's norm summed over the dimensions (as printed) or averaged (the fork's means)."""
    red = (lambda x: x.sum()) if w.reduction == "sum" else (lambda x: x.mean())  # noqa: E731

    def smooth(x):
        return torch.stack([torch.stack([red((x[i * t + k + 1] - x[i * t + k]).abs()) for k in range(t - 1)]).mean()
                            for i in range(b)]).mean()

    def ident(x):
        return torch.stack(
            [
                torch.stack([red((x[i * t + k] - x[i * t : (i + 1) * t].mean(0)).pow(2)) for k in range(t)]).mean()
                for i in range(b)
            ]
        ).mean()

    terms = dict(
        expression=smooth(flat.expression),
        jaw=smooth(flat.jaw_pose),
        pose=smooth(flat.global_pose),
        eyelids=smooth(flat.eyelids),
        identity=ident(flat.shape),
    )
    terms["total"] = sum(getattr(w, k) * v for k, v in terms.items())
    return terms


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_clip_step_adds_the_weighted_temporal_terms(parts, reduction):
    """Temporal terms = eqs. (3)-(4) on the regrouped predictions; total = SMIRK total + Σ w·term."""
    torch.manual_seed(1)
    enc, gen = SmirkEncoder().train(), SmirkGenerator().train()
    w = TemporalWeights(expression=0.3, jaw=0.2, pose=0.7, eyelids=0.11, identity=5.0, reduction=reduction)
    lw = LossWeights.core()
    batch = parts["batch"]
    out = _step(clip_step, enc, gen, parts, batch, lw, temporal=w)
    ref = _step(smirk_step, enc, gen, parts, batch.frames(), lw)  # the same frames, the same draws
    assert out.params.expression.shape == (2 * T, 50) and out.rendering.shape[0] == 2 * T
    scratch = _scratch_temporal(ref.params, 2, T, w)
    for name, value in out.temporal.as_floats().items():
        assert value == pytest.approx(float(scratch[name].detach()), rel=1e-5, abs=1e-7), name
    assert float(out.temporal.total.detach()) > 0
    torch.testing.assert_close(out.losses.total, ref.losses.total + scratch["total"], rtol=1e-6, atol=1e-6)
    for f in fields(out.losses):
        if f.name != "total":
            torch.testing.assert_close(getattr(out.losses, f.name), getattr(ref.losses, f.name))
    with pytest.raises(ValueError, match="clip batch"):
        _step(clip_step, enc, gen, parts, batch.frames(), lw)


class _ClipConstant(nn.Module):
    """An 'encoder' whose every output is the image mean: constant over frames of a still clip."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, img):
        m = img.mean(dim=(1, 2, 3))[:, None] * self.w
        col = lambda d: m.expand(-1, d)  # noqa: E731
        return FlameParams(
            global_pose=col(3) * 0.1,
            cam=torch.cat([col(1) * 0 + 7, col(2) * 0], 1),
            shape=col(300),
            expression=col(50),
            eyelids=col(2) * 0.5,
            jaw_pose=col(3) * 0.1,
        )


def test_differences_never_cross_clip_boundaries(parts):
    """Two still clips with different constant predictions: zero smoothness and identity loss,
    although the frames regrouped as one clip would jump at the boundary."""
    b0 = parts["batch"]
    image = torch.stack([torch.full_like(b0.image[0], 0.2), torch.full_like(b0.image[1], 0.8)])
    batch = FaceBatch(
        image=image,
        landmarks68=b0.landmarks68,
        landmarks_mp=b0.landmarks_mp,
        landmarks_valid=b0.landmarks_valid,
        params=None,
        index=b0.index,
    )
    lw = LossWeights(reconstruction=0.0, perceptual=0.0, cycle=0.0)
    out = _step(clip_step, _ClipConstant(), SmirkGenerator(), parts, batch, lw, temporal=TemporalWeights())
    assert all(v == 0 for v in out.temporal.as_floats().values())
    one = FlameParams(**{f.name: getattr(out.params, f.name)[None] for f in fields(FlameParams)})  # (1, 2T, ...)
    assert float(temporal_loss(one).expression.detach()) > 0  # the control: one long clip does jump


def _trainer(tmp_path, name, tiny_overrides, extra=()):
    cfg = load_config(None, tiny_overrides + CLIP + [f"run.dir={tmp_path / name}", *extra])
    return Trainer(cfg, progress=False)


def _params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_zero_weights_clip_run_equals_frame_run(tmp_path, tiny_overrides):
    """With the temporal terms at weight 0 a clip batch trains exactly like its frames."""
    a = _trainer(tmp_path, "a", tiny_overrides, ["temporal.enabled=false"])
    b = _trainer(tmp_path, "b", tiny_overrides, ["temporal.enabled=false"])
    batches = [collate_faces([a.dataset[i], a.dataset[i + 1]]) for i in (0, 2)]
    for batch in batches:  # a generator step, then an encoder step
        out_a, out_b = a.train_step(batch), b.train_step(batch.frames())
        assert out_a.temporal is not None and out_b.temporal is None
        terms = out_a.temporal.as_floats()
        assert terms["expression"] > 0 and terms["total"] == 0
    for x, y in ((a.encoder, b.encoder), (a.generator, b.generator)):
        pa, pb = _params(x), _params(y)
        for k in pa:
            torch.testing.assert_close(pa[k], pb[k], atol=1e-6, rtol=0, msg=k)


def test_temporal_clip_run_logs_terms_and_resumes_exactly(tmp_path, tiny_overrides):
    extra = [
        "temporal.enabled=true",
        "temporal.weights.identity=2.0",
        "loss.weights.reconstruction=0",
        "loss.weights.cycle=0",
    ]
    a = _trainer(tmp_path, "a", tiny_overrides, extra)
    assert a.clip_length == T
    a.train(until=2)
    b = Trainer(a.cfg, resume=True, progress=False)
    b.train()
    c = _trainer(tmp_path, "c", tiny_overrides, extra)
    c.train()
    sb, sc = b.state(), c.state()
    for k in sc["model"]:
        torch.testing.assert_close(sb["model"][k], sc["model"][k], atol=1e-6, rtol=0, msg=k)
    with open(tmp_path / "a" / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4] and {r["trained"] for r in rows} == {"encoder"}
    w = a.cfg.temporal.weights
    for r in rows:
        weighted = sum(
            getattr(w, k) * float(r[f"temporal_{k}"]) for k in ("expression", "jaw", "pose", "eyelids", "identity")
        )
        assert float(r["temporal_total"]) == pytest.approx(weighted, rel=1e-5)
        assert float(r["temporal_total"]) > 0


def test_clip_mode_checks_and_fine_tuning_start(tmp_path, tiny_overrides):
    from tempsmirk.smirk import save_smirk_checkpoint

    with pytest.raises(ValueError, match="temporal.enabled needs clip data"):
        Trainer(
            load_config(None, tiny_overrides + [f"run.dir={tmp_path / 'x'}", "temporal.enabled=true"]), progress=False
        )
    assert _trainer(tmp_path, "y", tiny_overrides, ["train.batch_size=1"]).clip_length == T  # one clip is fine
    torch.manual_seed(7)
    enc, gen = SmirkEncoder(), SmirkGenerator()
    with torch.no_grad():
        enc.expression_encoder.expression_layers[0].weight.normal_()  # not what a fresh encoder holds
    path = save_smirk_checkpoint(tmp_path / "start.pt", enc, gen)
    t = _trainer(tmp_path, "z", tiny_overrides, [f"model.init_checkpoint={path}", "temporal.enabled=true"])
    got, want = t.encoder.state_dict(), enc.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)


class _OneFrameClips(torch.utils.data.Dataset):
    """Clips of T = 1 frame (items with a (1, 3, H, W) image)."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        s = self.data[i]
        return dataclasses.replace(
            s,
            image=s.image[:1],
            landmarks68=s.landmarks68[:1],
            landmarks_mp=s.landmarks_mp[:1],
            landmarks_valid=s.landmarks_valid[:1],
            params=s.params[:1],
        )


def test_batchnorm_needs_two_frames_not_two_clips(tmp_path, tiny_overrides):
    """One clip of T >= 2 frames trains; a batch of a single frame (one clip of T = 1) is refused."""
    cfg = load_config(None, tiny_overrides + CLIP + [f"run.dir={tmp_path / 'one'}", "train.batch_size=1"])
    one_frame = _OneFrameClips(SyntheticFaces(load_flame(None, 300, 50), cfg.data.synthetic))
    with pytest.raises(ValueError, match=r"at least 2 frames per batch.*batch_size=1 clip\(s\) of T=1"):
        Trainer(cfg, dataset=one_frame, progress=False)
    ok = load_config(None, tiny_overrides + CLIP + [f"run.dir={tmp_path / 'two'}", "train.batch_size=2"])
    assert Trainer(ok, dataset=one_frame, progress=False).clip_length == 1  # two one-frame clips: 2 frames


@pytest.mark.parametrize("profile", ["small", "full", "fork"])
def test_finetuning_profiles_refuse_to_start_without_a_checkpoint(tmp_path, profile):
    from tempsmirk.training.experiment import finetune_config

    cfg = finetune_config(profile, [f"run.dir={tmp_path}"])
    assert cfg.model.init_required and cfg.model.init_checkpoint is None
    with pytest.raises(ValueError, match="model.init_checkpoint=PATH"):
        Trainer(cfg, progress=False)
    assert not any(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.slow
def test_fork_profile_trains_one_32_frame_clip_per_step(tmp_path):
    """The fork's shape: one clip of 32 frames per step; BatchNorm sees those 32 frames, and the
    logged temporal terms are the fork's element means, weighted with its weights."""
    from tempsmirk.smirk import save_smirk_checkpoint
    from tempsmirk.training.experiment import finetune_config

    start = save_smirk_checkpoint(tmp_path / "start.pt", SmirkEncoder(), SmirkGenerator())
    cfg = finetune_config(
        "fork",
        [
            "data.source=synthetic",
            "data.synthetic.image_size=32",
            "data.synthetic.n_items=2",
            "data.num_workers=0",
            "train.device=cpu",
            "train.steps=1",
            "train.log_every=1",
            "train.image_every=0",
            "train.checkpoint_every=0",
            f"run.dir={tmp_path / 'fork'}",
            f"model.init_checkpoint={start}",
        ],
    )
    with pytest.warns(UserWarning):  # no local VGG16 weights: the perceptual loss is off (it says so)
        t = Trainer(cfg, progress=False)
    assert t.clip_length == 32 and cfg.train.batch_size == 1 and t.trainable_branches == ("pose", "shape", "expression")
    seen = []
    bn = next(m for m in t.encoder.modules() if isinstance(m, nn.BatchNorm2d))
    bn.register_forward_hook(lambda m, inp, out: seen.append((inp[0].shape[0], m.training)))
    t.train()
    # Path 1 (the temporal terms' pass) sees the 32 frames in train mode; the cycle's pass of
    # iteration 0 re-encodes them with the encoder frozen, hence in eval mode (SMIRK's step2).
    assert seen[0] == (32, True) and all(n == 32 for n, _ in seen)
    assert len(seen) == 1 or seen[1] == (32, False)
    with open(tmp_path / "fork" / "log.csv") as fh:
        row = next(csv.DictReader(fh))
    w = cfg.temporal.weights
    assert (w.expression, w.jaw, w.pose, w.eyelids, w.identity, w.reduction) == (0.1, 0.05, 0.1, 0.05, 0.05, "mean")
    weighted = sum(
        getattr(w, k) * float(row[f"temporal_{k}"]) for k in ("expression", "jaw", "pose", "eyelids", "identity")
    )
    assert float(row["temporal_total"]) == pytest.approx(weighted, rel=1e-5) and weighted > 0
