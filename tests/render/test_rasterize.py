"""The rasteriser against a brute-force z-buffer, its chunking, tie-breaking, culling and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tempsmirk.render import interpolate, rasterize
from tempsmirk.render.rasterizer import rasterize_sparse


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed,size", [(0, 24), (1, (20, 28))])
def test_matches_brute_force(brute, scene, dtype, seed, size):
    gen = torch.Generator().manual_seed(seed)
    h, w = (size, size) if isinstance(size, int) else size
    verts, faces = scene(gen, 2, 40, max(h, w))
    frags = rasterize(verts.to(dtype), faces, (h, w))
    p2f, clear, bary, zbuf = brute(verts.double().numpy(), faces.numpy(), h, w)
    assert clear.mean() > 0.85, "scene too ambiguous to test anything"
    assert (p2f[clear] >= 0).mean() > 0.4, "scene too empty to test anything"
    got = frags.pix_to_face.numpy()
    np.testing.assert_array_equal(got[clear], p2f[clear])
    hit = clear & (p2f >= 0)
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    np.testing.assert_allclose(frags.bary.double().numpy()[hit], bary[hit], atol=tol * 10)
    np.testing.assert_allclose(frags.zbuf.double().numpy()[hit], zbuf[hit], atol=tol * 10)
    assert torch.isinf(frags.zbuf[frags.pix_to_face < 0]).all()
    assert (frags.bary[frags.pix_to_face < 0] == 0).all()


def test_chunking_does_not_change_the_result(brute):
    """A huge triangle behind many small ones, with budgets smaller than one face's box."""
    gen = torch.Generator().manual_seed(3)
    big = torch.tensor([[-5e3, -5e3, 1.0], [5e3, -5e3, 1.5], [0.0, 5e3, 1.2]])
    small = torch.rand(60, 3, 3, generator=gen)
    small[..., :2] = small[..., :2] * 30 - 5
    small[..., :2] = small[:, :1, :2] + (small[..., :2] - small[:, :1, :2]) * 0.25  # a few px each
    small[..., 2] = small[..., 2] * 2 - 0.5  # some in front of the big one, some behind
    verts = torch.cat([small.reshape(-1, 3), big])[None].repeat(3, 1, 1)
    verts[1, :, :2] += 1.3  # make the batch elements differ
    verts[2, :, 2] = -verts[2, :, 2]
    faces = torch.arange(verts.shape[1]).view(-1, 3)
    ref = rasterize(verts, faces, 24)
    for budget in (1, 97, 500, 10_000):
        got = rasterize(verts, faces, 24, max_candidates=budget)
        assert torch.equal(got.pix_to_face, ref.pix_to_face)
        assert torch.equal(got.bary, ref.bary)
    p2f, clear, _, _ = brute(verts.double().numpy(), faces.numpy(), 24, 24)
    np.testing.assert_array_equal(ref.pix_to_face.numpy()[clear], p2f[clear])
    assert (ref.pix_to_face == 60).any() and (ref.pix_to_face < 60).any()


def test_equal_depths_go_to_the_lowest_face_index():
    tri = torch.tensor([[1.0, 1.0, 0.5], [15.0, 2.0, 0.5], [3.0, 14.0, 0.5]])
    verts = torch.cat([tri, tri, tri])[None]
    faces = torch.tensor([[6, 7, 8], [0, 1, 2], [3, 4, 5]])  # three copies, face 0 listed first
    p2f = rasterize(verts, faces, 16).pix_to_face
    assert (p2f >= 0).sum() > 50
    assert set(p2f.unique().tolist()) == {-1, 0}


def test_backface_culling_drops_clockwise_faces():
    ccw = torch.tensor([[2.0, 2.0, 0.0], [2.0, 12.0, 0.0], [12.0, 2.0, 0.0]])  # negative area: front
    cw = ccw[[0, 2, 1]] + torch.tensor([0.0, 0.0, -1.0])  # back face, nearer
    verts = torch.cat([ccw, cw])[None]
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    assert set(rasterize(verts, faces, 16).pix_to_face.unique().tolist()) == {-1, 1}
    assert set(rasterize(verts, faces, 16, cull_backfaces=True).pix_to_face.unique().tolist()) == {-1, 0}


def test_non_finite_and_off_screen_faces_draw_nothing():
    verts = torch.tensor([[[1.0, 1.0, 0.0], [9.0, 1.0, 0.0], [1.0, 9.0, float("nan")],
                           [20.0, 20.0, 0.0], [30.0, 20.0, 0.0], [20.0, 30.0, 0.0],
                           [-1.0, -1.0, 0.0], [float("inf"), 1.0, 0.0], [1.0, 5.0, 0.0]]])
    faces = torch.arange(9).view(3, 3)
    assert (rasterize(verts, faces, 10).pix_to_face == -1).all()


def test_sparse_and_dense_agree():
    gen = torch.Generator().manual_seed(5)
    verts = torch.rand(2, 30, 3, generator=gen) * 16
    faces = torch.randint(0, 30, (25, 3), generator=gen)
    dense = rasterize(verts, faces, 16)
    sparse = rasterize_sparse(verts, faces, 16)
    assert torch.equal(sparse.pixels, dense.pix_to_face.flatten().ge(0).nonzero().squeeze(1))
    assert torch.equal(sparse.dense().bary, dense.bary)
    attrs = torch.rand(2, 30, 4, generator=gen)
    img = interpolate(attrs, faces, dense)
    assert torch.allclose(sparse.scatter(sparse.interpolate(attrs)), img)


def _grad_scene():
    # Fixed float64 scene whose pixel centres are all far (> 1e-2 px) from every edge,
    # so finite differences never change visibility.
    verts = torch.tensor([[[1.38, 0.96, 0.2], [9.42, 1.91, 0.4], [2.59, 10.85, 0.1],
                           [5.26, 4.44, -0.3], [11.63, 7.16, -0.2], [6.29, 10.9, -0.4],
                           [10.11, 10.52, -0.5]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [4, 6, 5]])
    return verts, faces


def test_grad_scene_is_unambiguous(brute):
    verts, faces = _grad_scene()
    _, clear, _, _ = brute(verts.numpy(), faces.numpy(), 12, 12, eps=1e-2)
    assert clear.all()


def test_gradcheck_interpolated_attributes():
    verts, faces = _grad_scene()
    attrs = torch.rand(1, 7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def f(v, a):
        frags = rasterize(v, faces, 12)
        return interpolate(a, faces, frags), frags.zbuf.nan_to_num(posinf=0.0)

    assert torch.autograd.gradcheck(f, (verts.requires_grad_(), attrs.requires_grad_()))


def test_bary_gradient_is_not_zero():
    verts, faces = _grad_scene()
    verts.requires_grad_()
    rasterize(verts, faces, 12).bary[..., 0].sum().backward()
    assert verts.grad.abs().sum() > 0


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(B, V, 3\)"):
        rasterize(torch.zeros(4, 3), torch.zeros(1, 3, dtype=torch.long), 8)
    with pytest.raises(ValueError, match=r"\(F, 3\)"):
        rasterize(torch.zeros(1, 4, 3), torch.zeros(3, dtype=torch.long), 8)


def test_vectorised_reference_agrees_with_the_loop(brute, brute_vectorised, scene):
    verts, faces = scene(torch.Generator().manual_seed(2), 1, 24, 16)
    p_loop, c_loop, _, _ = brute(verts.double().numpy(), faces.numpy(), 16, 16)
    p_vec, c_vec = brute_vectorised(verts.double().numpy(), faces.numpy(), 16, 16)
    assert np.array_equal(c_loop, c_vec) and np.array_equal(p_loop[c_loop], p_vec[c_vec])


@pytest.mark.needs_shared_data
def test_real_flame_topology_matches_brute_force(ringnet_dir, brute_vectorised):
    from tempsmirk.meshio import read_ply
    from tempsmirk.render import to_pixel_space

    v, f = read_ply(ringnet_dir / "FLAME_sample.ply")
    c, s = np.cos(0.4), np.sin(0.4)  # a 3/4 view: cheek over ear, nose over cheek
    v = v @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
    cam = torch.tensor([[7.0, 0.0, 0.02], [9.0, 0.03, 0.0]], dtype=torch.float64)
    screen = to_pixel_space(torch.from_numpy(v)[None].expand(2, -1, -1), cam, 40)
    got = rasterize(screen.float(), torch.from_numpy(f), 40).pix_to_face.numpy()
    p2f, clear = brute_vectorised(screen.numpy(), f, 40, 40)
    assert clear.mean() > 0.8 and (p2f[clear] >= 0).mean() > 0.5
    np.testing.assert_array_equal(got[clear], p2f[clear])


def test_boxes_above_a_million_pixels():
    """Boxes of more than 2**20 pixels take the float64 offset path; placement must stay exact."""
    size = 1030
    big = torch.tensor([[-10.0, -10.0, 1.0], [3000.0, -10.0, 1.0], [-10.0, 3000.0, 1.0]])
    small = torch.tensor([[1017.3, 1016.2, 0.0], [1028.7, 1019.1, 0.0], [1019.4, 1029.6, 0.0]])
    verts = torch.cat([big, small])[None]
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    p2f = rasterize(verts, faces, size, max_candidates=1 << 22).pix_to_face[0]
    assert (p2f >= 0).all()
    crop = rasterize((small - torch.tensor([1014.0, 1014.0, 0.0]))[None], faces[:1], 16).pix_to_face[0]
    assert torch.equal(p2f[1014:, 1014:] == 1, crop == 0) and (crop == 0).sum() > 30
