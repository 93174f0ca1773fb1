"""The SMIRK camera against its formula, and the orientation conventions it promises."""

from __future__ import annotations

import torch

from tempsmirk.render import (
    normalised_to_pixels,
    pixels_to_normalised,
    project_points,
    rasterize,
    render_mesh,
    to_pixel_space,
)


def test_projection_matches_the_formula():
    gen = torch.Generator().manual_seed(0)
    pts = torch.randn(3, 7, 3, generator=gen, dtype=torch.float64) * 0.1
    cam = torch.tensor([[7.0, 0.01, -0.02], [9.0, -0.03, 0.0], [5.5, 0.0, 0.04]], dtype=torch.float64)
    h, w = 48, 64
    proj = project_points(pts, cam, (h, w))
    for b in range(3):
        s, tx, ty = cam[b].tolist()
        for n in range(7):
            x, y, z = pts[b, n].tolist()
            xn, yn = s * (x + tx), s * (y + ty)
            assert abs(proj.normalised[b, n, 0] - xn) < 1e-12
            assert abs(proj.normalised[b, n, 1] + yn) < 1e-12  # image y points down
            assert abs(proj.pixels[b, n, 0] - (xn + 1) * w / 2) < 1e-9
            assert abs(proj.pixels[b, n, 1] - (1 - yn) * h / 2) < 1e-9
            assert abs(proj.depth[b, n] + s * z) < 1e-12  # +z towards the camera = closer
    screen = to_pixel_space(pts, cam, (h, w))
    assert torch.allclose(screen[..., :2], proj.pixels) and torch.allclose(screen[..., 2], proj.depth)
    assert torch.allclose(pixels_to_normalised(normalised_to_pixels(proj.normalised, (h, w)), (h, w)), proj.normalised)


def test_image_corners():
    corners = torch.tensor([[-1.0, -1.0], [1.0, 1.0]])
    assert torch.equal(normalised_to_pixels(corners, (10, 20)), torch.tensor([[0.0, 0.0], [20.0, 10.0]]))


def test_up_is_up_and_front_faces_have_negative_screen_area():
    # A triangle in the FLAME frame, wound counter-clockwise seen from +z (the camera), in the upper right.
    tri = torch.tensor([[[0.2, 0.3, 0.0], [0.6, 0.3, 0.0], [0.4, 0.7, 0.0]]])
    cam = torch.tensor([[1.0, 0.0, 0.0]])
    p = to_pixel_space(tri, cam, 32)[0]
    assert (p[:, 0] > 16).all() and (p[:, 1] < 16).all()
    area = (p[1, 0] - p[0, 0]) * (p[2, 1] - p[0, 1]) - (p[2, 0] - p[0, 0]) * (p[1, 1] - p[0, 1])
    assert area < 0
    faces = torch.tensor([[0, 1, 2]])
    assert (rasterize(p[None], faces, 32, cull_backfaces=True).pix_to_face == 0).any()
    # Nearer along +z means smaller depth: the raised copy wins.
    two = torch.cat([tri, tri + torch.tensor([0.0, 0.0, 0.1])], dim=1)
    r = render_mesh(two, torch.tensor([[0, 1, 2], [3, 4, 5]]), cam, 32)
    assert set(r.fragments.pix_to_face.unique().tolist()) == {-1, 1}


def test_flame_landmarks_land_on_the_rendered_face():
    """Rendering and landmark projection share one camera: the 51 inner landmarks (brows, eyes,
    nose, mouth) and the MediaPipe points must fall on pixels the head covers."""
    from tempsmirk.flame import FLAME

    flame = FLAME.builtin(seed=0)
    out = flame(global_pose=torch.tensor([[0.1, -0.3, 0.0], [-0.1, 0.4, 0.1]]))
    cam = torch.tensor([[7.0, 0.0, 0.0], [8.0, 0.02, -0.03]])
    mask = render_mesh(out.vertices, flame.faces, cam, 96).mask[:, 0]
    for points, n in ((out.landmarks68[:, 17:], 51), (out.landmarks_mp, 105)):
        uv = project_points(points, cam, 96).pixels
        assert uv.shape == (2, n, 2)
        col, row = uv[..., 0].long().clamp(0, 95), uv[..., 1].long().clamp(0, 95)
        on_face = mask[torch.arange(2)[:, None], row, col]
        assert on_face.mean() > 0.97
    # Brows (17-26 in iBUG order) sit above the mouth (48-67) in the image: y points down.
    brows, mouth = project_points(out.landmarks68[:, 17:27], cam, 96), project_points(out.landmarks68[:, 48:], cam, 96)
    assert (brows.pixels[..., 1].mean(1) < mouth.pixels[..., 1].mean(1)).all()
