"""SMIRK's renderer: camera, hard rasterisation, per-pixel normals, five grey lights.

Explained in chapter 2; frames and the camera are defined in :mod:`tempsmirk.render.camera`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor

from tempsmirk.render.camera import to_pixel_space
from tempsmirk.render.rasterizer import Fragments, SparseFragments, rasterize_sparse
from tempsmirk.render.shading import (
    SMIRK_ALBEDO,
    SMIRK_LIGHT_INTENSITY,
    directional_shading,
    vertex_normals,
)

__all__ = ["Rendering", "render_mesh", "faces_in_region"]


@dataclass(frozen=True)
class Rendering:
    """Output of :func:`render_mesh`.

    image: (B, 3, H, W) in [0, 1], black background.
    mask: (B, 1, H, W) float, 1 where a drawn face covers the pixel.
    normals: (B, 3, H, W) unit normals in the FLAME frame (zeros on background).
    sparse: the covered pixels only; ``pix_to_face`` indexes the *full* ``faces`` even when a
        face mask restricted drawing.
    screen_vertices: (B, V, 3) vertices in pixel space (u, v, depth).
    """

    image: Tensor
    mask: Tensor
    normals: Tensor
    sparse: SparseFragments
    screen_vertices: Tensor

    @cached_property
    def fragments(self) -> Fragments:
        """Full-image :class:`Fragments` (built on first use; most callers never need them)."""
        return self.sparse.dense()


def faces_in_region(faces: Tensor, vertex_ids: Tensor) -> Tensor:
    """Faces whose three vertices all belong to a vertex region.

    Args:
        faces: (F, 3) int64.
        vertex_ids: (K,) int64 vertex indices, or (V,) bool.
    Returns:
        (F,) bool.
    """
    if vertex_ids.dtype == torch.bool:
        in_region = vertex_ids.to(faces.device)
    else:
        n = int(max(faces.max().item(), vertex_ids.max().item() if vertex_ids.numel() else 0)) + 1
        in_region = torch.zeros(n, dtype=torch.bool, device=faces.device)
        in_region[vertex_ids.to(faces.device)] = True
    return in_region[faces].all(dim=1)


def render_mesh(
    vertices: Tensor,
    faces: Tensor,
    cam: Tensor,
    image_size: int | tuple[int, int] = 224,
    face_mask: Tensor | None = None,
    *,
    albedo: float | Tensor = SMIRK_ALBEDO,
    light_directions: Tensor | None = None,
    light_intensity: float = SMIRK_LIGHT_INTENSITY,
    max_candidates: int = 1 << 21,
) -> Rendering:
    """Render FLAME meshes the way SMIRK does (guide section 2).

    Args:
        vertices: (B, V, 3) float, FLAME units (metres), FLAME frame.
        faces: (F, 3) int64.
        cam: (B, 3) float, ``(s, tx, ty)``.
        image_size: H = W int, or (H, W).
        face_mask: (F,) bool, faces to draw (others neither draw nor occlude); all when None.
            Build one from a vertex list with :func:`faces_in_region`.
        albedo: a grey level, or (B, V, 3) per-vertex colours interpolated over the faces.
        light_directions: (K, 3) unit directions towards the lights; SMIRK's five by default.
        light_intensity: per-light intensity.
        max_candidates: memory bound passed to :func:`tempsmirk.render.rasterize`.
    Returns:
        :class:`Rendering`; gradients reach ``vertices`` and ``cam`` through barycentrics and normals.
    """
    faces = faces.to(device=vertices.device, dtype=torch.int64)
    screen = to_pixel_space(vertices, cam, image_size)
    if face_mask is None:
        frags = rasterize_sparse(screen, faces, image_size, max_candidates=max_candidates)
    else:
        if face_mask.dtype != torch.bool or face_mask.shape != faces.shape[:1]:
            raise ValueError(
                f"face_mask: expected ({faces.shape[0]},) bool, found {tuple(face_mask.shape)} {face_mask.dtype}; "
                "use faces_in_region(faces, vertex_ids) to build one from vertex indices"
            )
        drawn = face_mask.to(faces.device).nonzero().squeeze(1)
        frags = rasterize_sparse(screen, faces[drawn], image_size, max_candidates=max_candidates)
        p2f = frags.pix_to_face
        frags = replace(frags, pix_to_face=torch.where(p2f >= 0, drawn[p2f.clamp(min=0)], p2f))

    # Everything below works on the N covered pixels only and is scattered into images at the end.
    normals = F.normalize(frags.interpolate(vertex_normals(vertices, faces)), dim=-1, eps=1e-12)  # (N, 3)
    shade = directional_shading(normals, light_directions, light_intensity)[:, None]  # (N, 1)
    colour = frags.interpolate(albedo) if isinstance(albedo, Tensor) else shade.new_full((1, 3), albedo)
    mask = frags.scatter(torch.ones_like(shade))
    return Rendering(
        image=frags.scatter((colour * shade).clamp(0.0, 1.0)).permute(0, 3, 1, 2),
        mask=mask.permute(0, 3, 1, 2),
        normals=frags.scatter(normals).permute(0, 3, 1, 2),
        sparse=frags,
        screen_vertices=screen,
    )
