"""Differentiable rendering in pure PyTorch (chapter 2).

- :mod:`tempsmirk.render.camera` — the SMIRK orthographic camera and **the** coordinate conventions.
- :func:`rasterize` / :class:`Fragments` / :func:`interpolate` (and the covered-pixels-only
  :func:`rasterize_sparse` / :class:`SparseFragments`) — exact hard rasterisation with
  barycentrics differentiable w.r.t. vertices.
- :mod:`tempsmirk.render.shading` — vertex normals and SMIRK's five directional lights.
- :func:`render_mesh` / :class:`Rendering` — the whole SMIRK renderer.
"""

from tempsmirk.render.camera import (
    ProjectedPoints,
    normalised_to_pixels,
    orthographic,
    pixels_to_normalised,
    project_points,
    to_pixel_space,
)
from tempsmirk.render.rasterizer import Fragments, SparseFragments, interpolate, rasterize, rasterize_sparse
from tempsmirk.render.renderer import Rendering, faces_in_region, render_mesh
from tempsmirk.render.shading import (
    SMIRK_ALBEDO,
    SMIRK_LIGHT_INTENSITY,
    directional_shading,
    face_normals,
    smirk_light_directions,
    vertex_normals,
)

__all__ = [
    "Fragments",
    "ProjectedPoints",
    "Rendering",
    "SparseFragments",
    "SMIRK_ALBEDO",
    "SMIRK_LIGHT_INTENSITY",
    "directional_shading",
    "face_normals",
    "faces_in_region",
    "interpolate",
    "normalised_to_pixels",
    "orthographic",
    "pixels_to_normalised",
    "project_points",
    "rasterize",
    "rasterize_sparse",
    "render_mesh",
    "smirk_light_directions",
    "to_pixel_space",
    "vertex_normals",
]
