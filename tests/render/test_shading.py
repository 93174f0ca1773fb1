"""Normals and SMIRK's five-light shading against direct formulas."""

from __future__ import annotations

import math

import pytest
import torch

from tempsmirk.render import (
    SMIRK_ALBEDO,
    directional_shading,
    render_mesh,
    smirk_light_directions,
    vertex_normals,
)

LIGHTS = [(-1, 1, 1), (1, 1, 1), (-1, -1, 1), (1, -1, 1), (0, 0, 1)]


def _unit(v):
    n = math.sqrt(sum(c * c for c in v))
    return [c / n for c in v]


def _smirk_value(normal):
    """Guide §2 written out: albedo 180/255 x mean over lights of clamp(n.l, 0, 1) x 1.7."""
    dots = [sum(a * b for a, b in zip(normal, _unit(l))) for l in LIGHTS]
    return 180 / 255 * sum(min(max(d, 0.0), 1.0) for d in dots) / len(LIGHTS) * 1.7


def test_vertex_normals_match_a_loop():
    gen = torch.Generator().manual_seed(0)
    verts = torch.randn(2, 12, 3, generator=gen, dtype=torch.float64)
    faces = torch.randint(0, 12, (20, 3), generator=gen)
    got = vertex_normals(verts, faces)
    for b in range(2):
        acc = torch.zeros(12, 3, dtype=torch.float64)
        for a, c, d in faces.tolist():
            n = torch.linalg.cross(verts[b, c] - verts[b, a], verts[b, d] - verts[b, a])
            for k in (a, c, d):
                acc[k] += n
        norm = acc.norm(dim=1, keepdim=True)
        ref = torch.where(norm > 0, acc / norm.clamp(min=1e-300), acc)
        assert torch.allclose(got[b], ref, atol=1e-12)


def test_light_directions():
    d = smirk_light_directions(torch.float64)
    assert torch.allclose(d, torch.tensor([_unit(l) for l in LIGHTS], dtype=torch.float64))


@pytest.mark.parametrize("normal", LIGHTS + [(0.3, -0.2, 1.0), (0, 0, -1), (1, 0, 0)])
def test_flat_plane_facing_a_direction(normal):
    """A square perpendicular to ``normal`` renders at exactly the formula's grey level."""
    n = torch.tensor(_unit(normal), dtype=torch.float64)
    # Two in-plane axes, ordered so that the square is wound counter-clockwise around n.
    helper = torch.tensor([0.0, 1.0, 0.0] if abs(n[1]) < 0.9 else [1.0, 0.0, 0.0], dtype=torch.float64)
    e1 = torch.linalg.cross(helper, n)
    e1 = e1 / e1.norm()
    e2 = torch.linalg.cross(n, e1)
    corners = torch.stack([-e1 - e2, e1 - e2, e1 + e2, -e1 + e2]) * 0.5
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    assert torch.allclose(vertex_normals(corners[None], faces)[0], n.expand(4, 3))
    r = render_mesh(corners[None], faces, torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64), 16)
    covered = r.mask[0, 0] > 0
    if abs(n[2]) < 1e-9:  # seen edge-on: nothing to check but that it is thin
        assert covered.sum() <= 16
        return
    assert covered.sum() > 10
    expected = _smirk_value(n.tolist())
    assert torch.allclose(r.image[0][:, covered], torch.full_like(r.image[0][:, covered], expected), atol=1e-12)
    assert (r.image[0][:, ~covered] == 0).all()


def test_frontal_value():
    assert abs(_smirk_value([0, 0, 1]) - SMIRK_ALBEDO * (4 / math.sqrt(3) + 1) / 5 * 1.7) < 1e-12
    n = torch.tensor([[0.0, 0.0, 1.0]])
    assert torch.allclose(directional_shading(n) * SMIRK_ALBEDO, torch.tensor([_smirk_value([0, 0, 1])]))
