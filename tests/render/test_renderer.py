"""render_mesh: face-region drawing, colours, gradients, and CPU/GPU parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tempsmirk.render import faces_in_region, rasterize, render_mesh


def _bumpy_grid(n: int = 6, dtype=torch.float64):
    """A small height field facing the camera: (1, n*n, 3) vertices, 2(n-1)^2 faces wound CCW seen from +z."""
    gen = torch.Generator().manual_seed(0)
    xs = torch.linspace(-0.8, 0.8, n, dtype=dtype)
    y, x = torch.meshgrid(xs, xs, indexing="ij")
    z = 0.15 * torch.rand(n, n, generator=gen, dtype=dtype)
    verts = torch.stack([x, y, z], dim=-1).reshape(1, -1, 3)
    idx = torch.arange(n * n).view(n, n)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    faces = torch.cat([torch.stack([a, b, d], -1).reshape(-1, 3), torch.stack([a, d, c], -1).reshape(-1, 3)])
    return verts, faces


def test_faces_in_region():
    faces = torch.tensor([[0, 1, 2], [1, 2, 3], [3, 4, 5]])
    expected = torch.tensor([True, True, False])
    assert torch.equal(faces_in_region(faces, torch.tensor([0, 1, 2, 3])), expected)
    assert torch.equal(faces_in_region(faces, torch.tensor([1, 1, 1, 1, 0, 0], dtype=torch.bool)), expected)


def test_face_mask_draws_only_masked_faces_and_they_are_not_occluded_by_the_others():
    verts, faces = _bumpy_grid()
    cam = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    mask = torch.zeros(len(faces), dtype=torch.bool)
    mask[::3] = True
    # An undrawn occluder right in front of everything.
    occluder = torch.tensor([[[-2.0, -2.0, 1.0], [2.0, -2.0, 1.0], [0.0, 2.0, 1.0]]], dtype=torch.float64)
    all_verts = torch.cat([verts, occluder], dim=1)
    all_faces = torch.cat([faces, torch.tensor([[36, 37, 38]])])
    all_mask = torch.cat([mask, torch.tensor([False])])
    r = render_mesh(all_verts, all_faces, cam, 32, face_mask=all_mask)
    p2f = r.fragments.pix_to_face
    drawn = p2f[p2f >= 0]
    assert drawn.numel() > 50 and all_mask[drawn].all()
    sub = render_mesh(verts, faces[mask], cam, 32)
    assert torch.equal(r.mask, sub.mask)
    # Same pixels and faces (renumbered) as rendering the sub-mesh alone; colours may differ at the
    # region border, where normals average over faces outside the region.
    assert torch.equal(torch.nonzero(mask).squeeze(1)[sub.fragments.pix_to_face[sub.mask[:, 0] > 0]], drawn)
    assert torch.allclose(r.fragments.bary, sub.fragments.bary)
    with pytest.raises(ValueError, match="faces_in_region"):
        render_mesh(verts, faces, cam, 32, face_mask=torch.tensor([0, 1]))


def test_image_range_background_and_vertex_colours():
    verts, faces = _bumpy_grid()
    cam = torch.tensor([[1.0, 0.0, 0.0], [0.7, 0.1, -0.1]], dtype=torch.float64)
    verts = verts.repeat(2, 1, 1)
    grey = render_mesh(verts, faces, cam, 24)
    assert grey.image.shape == (2, 3, 24, 24) and grey.mask.shape == (2, 1, 24, 24)
    assert (grey.image >= 0).all() and (grey.image <= 1).all()
    assert (grey.image * (1 - grey.mask) == 0).all()
    assert (grey.mask[0] > 0).sum() > (grey.mask[1] > 0).sum()  # smaller scale, smaller face
    assert torch.allclose(grey.normals.norm(dim=1)[grey.mask[:, 0] > 0], torch.ones(1, dtype=torch.float64))
    dark = render_mesh(verts, faces, cam, 24, albedo=torch.full_like(verts, 0.5))
    assert torch.allclose(dark.image * (180 / 255) / 0.5, grey.image)
    red = torch.zeros_like(verts)
    red[..., 0] = 0.5
    coloured = render_mesh(verts, faces, cam, 24, albedo=red)
    assert torch.allclose(coloured.image[:, 0], dark.image[:, 0]) and (coloured.image[:, 1:] == 0).all()


def test_gradcheck_render_mesh():
    verts, faces = _bumpy_grid(4)
    cam = torch.tensor([[0.9, 0.03, -0.02]], dtype=torch.float64)

    def f(v, c):
        return render_mesh(v, faces, c, 10).image

    # Visibility must not flip under finite differences: check the scene is far from edges first.
    screen = render_mesh(verts, faces, cam, 10).screen_vertices
    assert _min_edge_distance(screen[0], faces, 10) > 1e-3
    assert torch.autograd.gradcheck(f, (verts.requires_grad_(), cam.requires_grad_()))


def _min_edge_distance(screen, faces, size):
    px = torch.arange(size, dtype=screen.dtype) + 0.5
    py, px = torch.meshgrid(px, px, indexing="ij")
    p = torch.stack([px.flatten(), py.flatten()], -1)  # (P, 2)
    best = float("inf")
    for tri in screen[faces][..., :2]:
        for k in range(3):
            a, b = tri[k], tri[(k + 1) % 3]
            t = ((p - a) @ (b - a) / ((b - a) @ (b - a))).clamp(0, 1)
            best = min(best, (a + t[:, None] * (b - a) - p).norm(dim=1).min().item())
    return best


@pytest.mark.gpu
def test_cpu_gpu_parity(brute, scene):
    gen = torch.Generator().manual_seed(7)
    verts, faces = scene(gen, 3, 48, 32)
    cpu = rasterize(verts, faces, 32)
    gpu = rasterize(verts.cuda(), faces.cuda(), 32)
    _, clear, _, _ = brute(verts.double().numpy(), faces.numpy(), 32, 32)
    np.testing.assert_array_equal(gpu.pix_to_face.cpu().numpy()[clear], cpu.pix_to_face.numpy()[clear])
    hit = torch.from_numpy(clear) & (cpu.pix_to_face >= 0)
    assert torch.allclose(gpu.bary.cpu()[hit], cpu.bary[hit], atol=1e-5)

    grid, gfaces = _bumpy_grid(12, torch.float32)
    grid = grid.repeat(4, 1, 1).requires_grad_()
    cam = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.1, 0.0], [0.9, 0.0, 0.1], [1.1, -0.05, 0.02]])
    r_cpu = render_mesh(grid, gfaces, cam, 64)
    r_cpu.image.square().sum().backward()
    g_cpu, grid.grad = grid.grad.clone(), None
    r_gpu = render_mesh(grid.cuda(), gfaces.cuda(), cam.cuda(), 64)
    r_gpu.image.square().sum().backward()
    same = r_gpu.fragments.pix_to_face.cpu() == r_cpu.fragments.pix_to_face
    assert same.float().mean() > 0.999
    assert torch.allclose(r_gpu.image.cpu()[same[:, None].expand(-1, 3, -1, -1)],
                          r_cpu.image[same[:, None].expand(-1, 3, -1, -1)], atol=1e-5)
    if same.all():
        assert torch.allclose(grid.grad.cpu(), g_cpu, atol=1e-4, rtol=1e-3)
