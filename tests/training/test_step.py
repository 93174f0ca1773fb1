"""The reconstruction path's losses: the emotion pass (generator frozen, eval mode), the masked
input the generator gets, and smirk_step = first path + cycle."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from tempsmirk.config import LossConfig
from tempsmirk.data import SyntheticConfig, SyntheticFaces, collate_faces
from tempsmirk.flame import load_flame
from tempsmirk.losses import EmotionLoss, LossWeights
from tempsmirk.losses.emotion import EmotionFeatures
from tempsmirk.smirk import SmirkEncoder, SmirkGenerator
from tempsmirk.smirk.masking import face_hull_points, hull_mask, scaled_pixels
from tempsmirk.training import clip_step, first_path, smirk_step, step_context


@pytest.fixture(scope="module")
def parts():
    flame = load_flame(None, 300, 50)
    data = SyntheticFaces(flame, SyntheticConfig(image_size=32, n_items=2))
    torch.manual_seed(0)
    return dict(ctx=step_context(flame, LossConfig(weights=LossWeights(perceptual=0))),
                batch=collate_faces([data[0], data[1]]), enc=SmirkEncoder().train(), gen=SmirkGenerator().train())


def _first(parts, weights, seed=0, emotion=None, **kw):
    ctx = replace(parts["ctx"], weights=weights, emotion=emotion)
    return first_path(parts["enc"], parts["gen"], parts["batch"], ctx, torch.Generator().manual_seed(seed), **kw)


def test_emotion_pass_trains_the_encoder_only(parts):
    torch.manual_seed(1)
    emotion = EmotionLoss(EmotionFeatures())
    enc, gen = parts["enc"], parts["gen"]
    modes = []
    hook = gen.register_forward_pre_hook(lambda m, x: modes.append((m.training, next(m.parameters()).requires_grad)))
    weights = LossWeights(landmarks_fan=0, landmarks_mp=0, reconstruction=0, perceptual=0, expression_reg=0,
                          jaw_reg=0, emotion=1.0, cycle=0)
    try:
        out = _first(parts, weights, emotion=emotion)
    finally:
        hook.remove()
    assert modes == [(True, True), (False, False)]  # reconstruction pass, then the frozen eval pass
    assert gen.training and all(p.requires_grad for p in gen.parameters())  # restored
    with torch.no_grad():
        gen.eval()
        again = gen(torch.cat([out.rendering, out.masked.image], 1))
        gen.train()
        expected = emotion(again, parts["batch"].image)
    torch.testing.assert_close(out.losses.emotion.detach(), expected)
    torch.testing.assert_close(out.losses.total, out.losses.emotion)
    enc.zero_grad(set_to_none=True)
    gen.zero_grad(set_to_none=True)
    out.losses.total.backward()
    assert all(p.grad is None or not p.grad.any() for p in gen.parameters())  # 0 · L1 gives zeros
    assert sum(p.grad.abs().sum() for p in enc.parameters() if p.grad is not None) > 0
    with pytest.raises(ValueError, match="emotion network"):
        _first(parts, weights)


def test_generator_input_hides_the_face(parts):
    """The generator sees the background and a few face points; the face itself is hidden."""
    out = _first(parts, LossWeights(perceptual=0, cycle=0))
    b = parts["batch"]
    hidden = hull_mask(face_hull_points(b.landmarks68, b.landmarks_mp), 32, scaled_pixels(10, 32))
    assert torch.equal(out.masked.hidden, hidden)
    visible = out.masked.keep.bool().expand_as(b.image)
    assert torch.equal(out.masked.image[visible], b.image[visible])
    face = (hidden > 0) & (out.masked.painted == 0)
    assert (out.masked.image * face).abs().sum() == 0 and out.masked.keep.mean() > 0.3
    # Where a dataset gives MediaPipe's 478 points, their hull is the one hidden.
    from dataclasses import replace

    square = torch.tensor([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]).expand(2, 4, 2)
    given = first_path(parts["enc"], parts["gen"], replace(b, hull_points=square),
                       replace(parts["ctx"], weights=LossWeights(perceptual=0, cycle=0)),
                       torch.Generator().manual_seed(0))
    assert torch.equal(given.masked.hidden, hull_mask(square, 32, scaled_pixels(10, 32)))


def test_smirk_step_is_first_path_plus_cycle(parts):
    w = LossWeights(perceptual=0)
    first = _first(parts, w, seed=3)
    ctx = replace(parts["ctx"], weights=w)
    both = smirk_step(parts["enc"], parts["gen"], parts["batch"], ctx, torch.Generator().manual_seed(3))
    for name in ("landmarks_fan", "landmarks_mp", "reconstruction", "expression_reg"):
        torch.testing.assert_close(getattr(both.losses, name), getattr(first.losses, name))
    assert float(first.losses.cycle) == 0 and both.cycle is not None
    torch.testing.assert_close(both.losses.total, first.losses.total + w.cycle * both.losses.cycle,
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="clip batch"):  # temporal weighting asks for clips
        clip_step(parts["enc"], parts["gen"], parts["batch"], ctx, torch.Generator().manual_seed(3))


def test_hull_points_travel_with_the_batch(parts):
    """Datasets with MediaPipe's 478 points hand them over per sample; collate, frames() and to()
    keep them, and mixing samples with and without them is refused."""
    from dataclasses import replace

    from tempsmirk.data import FaceBatch

    b = parts["batch"]
    s0 = replace(_sample(b, 0), hull_points=torch.rand(478, 2))
    s1 = replace(_sample(b, 1), hull_points=torch.rand(478, 2))
    batch = collate_faces([s0, s1])
    assert isinstance(batch, FaceBatch) and torch.equal(batch.hull_points[1], s1.hull_points)
    assert torch.equal(batch.to("cpu").hull_points, batch.hull_points)
    clip = replace(batch, image=batch.image[:, None].expand(2, 3, *batch.image.shape[1:]),
                   landmarks68=batch.landmarks68[:, None].expand(2, 3, 68, 2),
                   landmarks_mp=batch.landmarks_mp[:, None].expand(2, 3, 105, 2),
                   landmarks_valid=batch.landmarks_valid[:, None].expand(2, 3),
                   hull_points=batch.hull_points[:, None].expand(2, 3, 478, 2), params=None)
    assert clip.frames().hull_points.shape == (6, 478, 2)
    with pytest.raises(ValueError, match="hull_points"):
        collate_faces([s0, _sample(b, 1)])


def _sample(batch, i):
    from tempsmirk.data import FaceSample

    return FaceSample(image=batch.image[i], landmarks68=batch.landmarks68[i], landmarks_mp=batch.landmarks_mp[i],
                      landmarks_valid=batch.landmarks_valid[i], params=None, index=i)
