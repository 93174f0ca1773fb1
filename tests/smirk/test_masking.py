"""Masking and pixel sampling against brute-force references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import Delaunay

from tempsmirk.render import render_mesh
from tempsmirk.smirk.masking import (
    MaskingConfig,
    convex_hull,
    dilate,
    face_sampling_weights,
    hull_mask,
    mask_face,
    paint_samples,
    patch_dropout,
    sample_face_pixels,
    scaled_pixels,
)


@pytest.fixture(scope="module")
def head():
    from tempsmirk.flame import FLAME

    return FLAME.builtin(seed=0)


@pytest.fixture(scope="module")
def scene(head):
    """Two posed heads rendered (face region only) at 64 px, with a textured image."""
    g = torch.Generator().manual_seed(0)
    out = head(expression=torch.randn(2, head.n_exp, generator=g) * 0.5,
               global_pose=torch.tensor([[0.0, 0.3, 0.0], [0.1, -0.2, 0.0]]))
    cam = torch.tensor([[7.0, 0.0, 0.0], [6.5, 0.01, -0.01]])
    r = render_mesh(out.vertices, head.faces, cam, 64, face_mask=head.region_faces("face"))
    image = torch.rand(2, 3, 64, 64, generator=g) * 0.5 + 0.25
    lmk = torch.cat([out.landmarks68, out.landmarks_mp], dim=1)
    from tempsmirk.render import project_points

    return image, project_points(lmk, cam, 64).normalised, r


def test_hull_mask_matches_scipy():
    g = torch.Generator().manual_seed(1)
    pts = torch.rand(2, 30, 2, generator=g) * 1.2 - 0.6
    mask = hull_mask(pts, 40)
    c = (np.arange(40) + 0.5) / 20 - 1  # pixel centres in normalised coordinates
    xx, yy = np.meshgrid(c, c)
    for i in range(2):
        inside = Delaunay(pts[i].numpy()).find_simplex(np.stack([xx.ravel(), yy.ravel()], 1)) >= 0
        got = mask[i, 0].numpy().ravel() > 0.5
        assert (got != inside).sum() <= 2  # only pixel centres on the hull's edge may differ
    hull = convex_hull(pts[0])
    assert hull.shape[0] >= 3 and set(map(tuple, hull.tolist())) <= set(map(tuple, pts[0].tolist()))


def test_dilate_is_distance_threshold():
    g = torch.Generator().manual_seed(2)
    mask = (torch.rand(1, 1, 24, 24, generator=g) > 0.97).float()
    got = dilate(mask, 3)[0, 0]
    on = mask[0, 0].nonzero().float()
    yx = torch.stack(torch.meshgrid(torch.arange(24.0), torch.arange(24.0), indexing="ij"), -1).view(-1, 2)
    expected = (torch.cdist(yx, on).min(1).values <= 3).view(24, 24).float()
    assert torch.equal(got, expected)
    assert scaled_pixels(10, 224) == 10 and scaled_pixels(10, 64) == 3 and scaled_pixels(11, 32) == 2


def test_face_weights_follow_regions(head):
    w = face_sampling_weights(head)
    face, lips = head.region_faces("face"), head.region_faces("lips")
    assert (w[~face] == 0).all() and (w[lips] == 3).all() and (w[face & ~lips] >= 1).all()


def test_samples_lie_on_visible_face(head, scene):
    image, _, r = scene
    g = torch.Generator().manual_seed(3)
    s = sample_face_pixels(image, r, head.faces, face_sampling_weights(head), 0.01, 0.05, g)
    n = round(0.01 * 64 * 64)
    assert s.face.shape == (2, n) and s.bary.shape == (2, n, 3) and s.colour.shape == (2, n, 3)
    assert torch.allclose(s.bary.sum(-1), torch.ones(2, n)) and (s.bary >= 0).all()
    assert s.valid.float().mean() > 0.7
    assert (face_sampling_weights(head)[s.face] > 0).all()
    colours, painted = paint_samples(s, r.screen_vertices, head.faces, 64)
    assert (painted <= r.mask).all()  # painted only where the face was drawn
    # Painted colours are the image's, up to the N(1, 0.05) jitter.
    ratio = colours.sum(1, keepdim=True)[painted > 0] / (image.sum(1, keepdim=True)[painted > 0])
    assert (ratio - 1).abs().max() < 0.3 and (ratio - 1).abs().mean() < 0.1
    again = sample_face_pixels(image, r, head.faces, face_sampling_weights(head), 0.01, 0.05,
                               torch.Generator().manual_seed(3))
    assert torch.equal(again.face, s.face) and torch.equal(again.colour, s.colour)


def test_samples_move_with_the_mesh(head, scene):
    image, _, r = scene
    s = sample_face_pixels(image, r, head.faces, face_sampling_weights(head), 0.02, 0.0,
                           torch.Generator().manual_seed(4))
    _, before = paint_samples(s, r.screen_vertices, head.faces, 64)
    shifted = r.screen_vertices + torch.tensor([3.0, 0.0, 0.0])  # 3 px to the right
    _, after = paint_samples(s, shifted, head.faces, 64)
    assert after.sum() > 0
    assert torch.equal(after[..., 3:], before[..., :-3])


def test_patch_dropout_removes_squares():
    mask = torch.ones(3, 1, 40, 40)
    out = patch_dropout(mask, 1, 5, torch.Generator().manual_seed(5))
    holes = (1 - out).sum(dim=(1, 2, 3))
    assert (holes <= 25).all() and (holes >= 9).all()  # 5×5, clipped at most to 3×3 at a corner
    for i in range(3):
        ys, xs = (out[i, 0] == 0).nonzero(as_tuple=True)
        assert ys.max() - ys.min() < 5 and xs.max() - xs.min() < 5
    assert torch.equal(patch_dropout(mask, 0, 5, torch.Generator()), mask)


def test_mask_face_hides_the_rendered_face(head, scene):
    image, lmk, r = scene
    m = mask_face(image, lmk, r, head.faces, face_sampling_weights(head), MaskingConfig(),
                  torch.Generator().manual_seed(6))
    assert (m.keep * r.mask).sum() == 0 and (m.keep <= m.hull).all()
    keep = (m.keep > 0) & (m.painted == 0)
    assert torch.equal(m.image.expand_as(image)[keep.expand_as(image)], image[keep.expand_as(image)])
    hidden = (m.keep == 0) & (m.painted == 0)
    assert (m.image * hidden).abs().sum() == 0
    # The dilated hull reaches beyond the landmarks but not to the image corners.
    assert m.hull[:, :, 0, 0].sum() == 0 and (m.hull > 0).any()
    assert 0 < m.painted.sum() <= 2 * round(0.01 * 64 * 64)
