"""What the generator may see of the input image: SMIRK's masking and pixel sampling.

Explained in chapter 3. Shapes: B batch, H W image size, L landmarks, V vertices, F faces,
N sampled points per image. Pixel and normalised coordinates are those of
:mod:`tempsmirk.render.camera`.

The generator gets the rendered shading and a *masked* copy of the input in which the **face is
hidden** (as the reference code does it, ``src/utils/masking.py`` and ``datasets/base_dataset.py``
of SMIRK):

1. **Hidden region** — the convex hull of the face's landmarks (MediaPipe's 478 points, forehead
   included), dilated by a (2r+1)² square (r = ``hull_radius``, 10 px at 224). The mask is 1
   *outside* it, **minus** the rendered face, so background, hair and neck stay visible and
   nothing of the real face (its expression) can be copied.
2. **Sampled points** — ~1 % of H·W points drawn on the mesh's front-facing triangles with
   probability ∝ screen area × region weight (:data:`REGION_WEIGHTS`); each point shows the input
   pixel under it, its colour ×N(1, 0.05). A point is a triangle + barycentrics, so it moves
   with the mesh: the cycle path (:mod:`tempsmirk.smirk.cycle`) takes the colour where the point
   was and paints it where the point lands on the edited mesh.
3. **Dropout** — patch centres drawn Bernoulli(``dropout``) per pixel (1 %; 0.5 % in the cycle
   path), each removing the sampled points inside its 11 × 11 square. Only sampled points are
   dropped; the visible background never is.

**Without the 478 points** (the built-in head and synthetic data, whose MediaPipe embedding has
the 105 FLAME points; any batch with only 68 + 105 landmarks), :func:`face_hull_points` adds the
forehead: the 17 jaw-contour points reflected across the line through the two contour ends (the
temples), at :data:`FOREHEAD_SCALE` of their distance. The scale was fitted to MediaPipe's own
478-point hull: on the shared real video the hull of 68 + 105 + forehead points has IoU 0.947
with it (coverage 98.4 %; without the forehead 0.830), and on 96 synthetic faces of the built-in
head, where MediaPipe also finds all 478 points, IoU 0.863 (coverage 95.1 %; without it 0.811).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tempsmirk.render import Rendering, normalised_to_pixels
from tempsmirk.render.shading import vertex_normals

__all__ = ["MaskingConfig", "SampledPoints", "MaskedInput", "REGION_WEIGHTS", "FOREHEAD_SCALE",
           "scaled_pixels", "convex_hull", "dilate", "hull_mask", "forehead_points", "face_hull_points",
           "load_triangle_masks", "triangle_regions", "face_sampling_weights", "sample_points",
           "point_pixels", "transfer_pixels", "mask_image", "mask_face"]

PathLike = Union[str, os.PathLike]

#: SMIRK's sampling weight per FLAME region (``load_probabilities_per_FLAME_triangle``), in its
#: order: a triangle in several regions gets the weight of the last one listed; others get 0.
REGION_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("neck", 0.0), ("right_eyeball", 0.0), ("right_ear", 0.0), ("lips", 0.5), ("nose", 0.5),
    ("left_ear", 0.0), ("eye_region", 1.0), ("forehead", 1.0), ("left_eye_region", 1.0),
    ("right_eye_region", 1.0), ("face_clean", 1.0), ("cleaner_lips", 1.0),
)
#: Forehead points at this fraction of the mirrored jaw contour (module docstring).
FOREHEAD_SCALE = 0.4
#: SMIRK keeps triangles whose mean vertex normal points at most this much away from the camera.
FRONT_FACING = 0.05
REFERENCE_SIZE = 224  # image side the pixel sizes below are given at


@dataclass
class MaskingConfig:
    """Masking parameters (the ``loss.masking`` config section); pixel sizes are at 224 px.

    hull_radius: r of the (2r+1)² square dilation of the landmark hull.
    sample_fraction: sampled face points per image as a fraction of H·W.
    colour_jitter: σ of the multiplicative colour noise N(1, σ) on sampled points.
    dropout: probability that a pixel is a dropout-patch centre (reconstruction path).
    cycle_dropout: the same in the cycle path.
    patch_size: side of a dropout patch.
    triangle_masks: SMIRK's ``FLAME_masks_triangles.npy`` (region -> triangle indices), which
        holds its ``face_clean`` and ``cleaner_lips`` regions; None = the equivalent built from
        the model's vertex regions (:func:`triangle_regions`).
    """

    hull_radius: float = 10.0
    sample_fraction: float = 0.01
    colour_jitter: float = 0.05
    dropout: float = 0.01
    cycle_dropout: float = 0.005
    patch_size: int = 11
    triangle_masks: Optional[str] = None


def scaled_pixels(size_at_224: float, image_size: int) -> int:
    """A pixel size given at 224 px, at ``image_size`` (at least 1)."""
    return max(1, int(round(size_at_224 * image_size / REFERENCE_SIZE)))


def _odd(k: int) -> int:
    return k if k % 2 else k + 1


def convex_hull(points: Tensor) -> Tensor:
    """Convex hull of 2D points (Andrew's monotone chain): (L, 2) -> (K, 2), counter-clockwise
    in a y-up frame (clockwise on screen, y down), no repeated end point."""
    pts = sorted(set(map(tuple, points.detach().cpu().tolist())))
    if len(pts) < 3:
        return torch.tensor(pts, dtype=points.dtype)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return torch.tensor(lower[:-1] + upper[:-1], dtype=points.dtype)


def _square_max(x: Tensor, k: int) -> Tensor:
    """Max over k × k windows (k odd, stride 1, same size): SMIRK's ``max_pool2d(x, k, 1, k // 2)``,
    as two 1-D passes (a square is separable; 2k instead of k² comparisons per pixel)."""
    x = F.max_pool2d(x, (k, 1), stride=1, padding=(k // 2, 0))
    return F.max_pool2d(x, (1, k), stride=1, padding=(0, k // 2))


def dilate(mask: Tensor, radius: int) -> Tensor:
    """Binary dilation with a (2r+1)² square (SMIRK's max-pooling): (B, 1, H, W) -> same."""
    if radius <= 0:
        return mask
    return _square_max(mask, 2 * radius + 1)


def hull_mask(landmarks: Tensor, image_size: int, radius: int = 0) -> Tensor:
    """Filled convex hull of each image's landmarks, dilated by ``radius`` pixels (square).

    Args:
        landmarks: (B, L, 2) normalised image coordinates (any number of points >= 3; NaN rows
            are ignored).
        image_size: H = W.
        radius: dilation in pixels (at this image size).
    Returns:
        (B, 1, H, W) float in {0, 1}; pixel centres inside or on the hull are 1.
    """
    b = landmarks.shape[0]
    device, dtype = landmarks.device, torch.float32
    px = normalised_to_pixels(landmarks.detach().float(), image_size)  # (B, L, 2)
    c = torch.arange(image_size, device=device, dtype=dtype) + 0.5
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    out = torch.zeros(b, 1, image_size, image_size, device=device, dtype=dtype)
    for i in range(b):
        pts = px[i][torch.isfinite(px[i]).all(dim=1)]
        hull = convex_hull(pts).to(device) if len(pts) else pts
        if hull.shape[0] < 3:
            continue
        a, e = hull, hull.roll(-1, dims=0) - hull  # edges a -> a + e
        # Sorted-ascending monotone chain is counter-clockwise for (x, y) as given, so the inside
        # is on the left of every edge: cross(e, p - a) >= 0.
        side = e[:, 0, None, None] * (yy - a[:, 1, None, None]) - e[:, 1, None, None] * (xx - a[:, 0, None, None])
        out[i, 0] = (side >= -1e-6).all(dim=0).to(dtype)
    return dilate(out, radius)


def forehead_points(landmarks68: Tensor, scale: float = FOREHEAD_SCALE) -> Tensor:
    """The jaw contour mirrored over the forehead: (..., 68, 2) -> (..., 17, 2).

    Each contour point (iBUG 0–16) is reflected across the line through points 0 and 16 (the
    temples) and its distance from that line scaled by ``scale`` (module docstring).
    """
    contour = landmarks68[..., :17, :]
    a, b = contour[..., :1, :], contour[..., 16:17, :]
    d = b - a
    d = d / d.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    rel = contour - a
    along = (rel * d).sum(-1, keepdim=True) * d
    return a + along - scale * (rel - along)


def face_hull_points(landmarks68: Tensor, landmarks_mp: Tensor, scale: float = FOREHEAD_SCALE) -> Tensor:
    """Points whose hull stands in for MediaPipe's 478-point hull when only the 68 iBUG and 105
    FLAME-matched MediaPipe points are known: (B, 68, 2), (B, 105, 2) -> (B, 190, 2)."""
    return torch.cat([landmarks68, landmarks_mp, forehead_points(landmarks68, scale)], dim=-2)


# --------------------------------------------------------------------------- sampling weights
def load_triangle_masks(path: PathLike, n_faces: int) -> dict[str, Tensor]:
    """SMIRK's ``FLAME_masks_triangles.npy`` (an ``np.save``'d dict: region -> triangle indices)
    as region -> (F,) bool. Read without running code from the file (restricted unpickler)."""
    from tempsmirk.flame.io import load_npy_restricted

    obj = load_npy_restricted(path)
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a dict of region name -> triangle indices (SMIRK's "
                         f"FLAME_masks_triangles.npy), found {type(obj).__name__}")
    out = {}
    for name, idx in obj.items():
        idx = torch.as_tensor(np.asarray(idx, dtype=np.int64).reshape(-1))
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n_faces):
            raise ValueError(f"{path}: region {name!r} indexes triangles outside [0, {n_faces}); is it "
                             f"the masks file of this FLAME topology?")
        mask = torch.zeros(n_faces, dtype=torch.bool)
        mask[idx] = True
        out[str(name)] = mask
    known = [n for n, _ in REGION_WEIGHTS if n in out]
    if not known:
        raise ValueError(f"{path}: none of SMIRK's regions {[n for n, _ in REGION_WEIGHTS]} is in the "
                         f"file (it has {sorted(out)})")
    return out


def triangle_regions(flame, triangle_masks: Optional[Mapping[str, Tensor]] = None) -> dict[str, Tensor]:
    """Triangle regions for :data:`REGION_WEIGHTS`: name -> (F,) bool on ``flame.faces``.

    ``triangle_masks`` (from :func:`load_triangle_masks`) are used as they are. Otherwise they are
    built from the model's vertex regions (``FLAME_masks.pkl`` names; the built-in head has the
    same): a triangle is in a region when its three vertices are, and SMIRK's two extra regions,
    which ``FLAME_masks.pkl`` lacks, are approximated as ``face_clean`` = face − boundary − lips −
    nose (so lips and nose keep their 0.5) and ``cleaner_lips`` = none.
    """
    device = flame.faces.device
    if triangle_masks is not None:
        return {k: v.to(device) for k, v in triangle_masks.items()}
    regions = {name: flame.region_faces(name) for name in flame.masks}
    if "face" in regions:
        clean = regions["face"].clone()
        for name in ("boundary", "lips", "nose"):
            if name in regions:
                clean &= ~regions[name]
        regions["face_clean"] = clean
    return regions


def face_sampling_weights(flame, triangle_masks: Optional[Mapping[str, Tensor]] = None) -> Tensor:
    """Per-triangle sampling weight, SMIRK's :data:`REGION_WEIGHTS`: (F,) float.

    Regions come from :func:`triangle_regions`; a model with no region masks at all weighs every
    triangle 1.
    """
    regions = triangle_regions(flame, triangle_masks)
    n_faces = flame.faces.shape[0]
    if not any(name in regions for name, _ in REGION_WEIGHTS):
        return torch.ones(n_faces, device=flame.faces.device)
    w = torch.zeros(n_faces, device=flame.faces.device)
    for name, weight in REGION_WEIGHTS:
        if name in regions:
            w[regions[name]] = weight
    return w


# --------------------------------------------------------------------------- points
@dataclass(frozen=True)
class SampledPoints:
    """Points on a mesh, tied to it so they can move with it.

    face: (B, N) int64 index into ``faces``.
    bary: (B, N, 3) barycentric coordinates inside that face.
    valid: (B,) bool; False where the mesh gave no usable weights (degenerate, e.g. non-finite):
        such an image gets no points.
    """

    face: Tensor
    bary: Tensor
    valid: Tensor


def _camera_frame(screen_vertices: Tensor, image_size: int) -> Tensor:
    """Pixel-space vertices back to SMIRK's projected frame (x right, y down, depth), all in
    normalised units: (B, V, 3) -> (B, V, 3)."""
    xy = screen_vertices[..., :2] * (2.0 / image_size) - 1.0
    return torch.cat([xy, screen_vertices[..., 2:]], dim=-1)


def sample_points(screen_vertices: Tensor, faces: Tensor, face_weights: Tensor, n: int, image_size: int,
                  generator: torch.Generator) -> SampledPoints:
    """Draw ``n`` points per mesh as SMIRK does (``mesh_based_mask_uniform_faces``).

    A triangle is drawn with probability ∝ region weight × its screen area, among the triangles
    that face the camera (mean vertex normal at most :data:`FRONT_FACING` away from it; no
    occlusion test, as in SMIRK); the point is uniform inside it.

    Args:
        screen_vertices: (B, V, 3) pixel-space vertices (``Rendering.screen_vertices``); no
            gradient flows.
        faces: (F, 3) int64; face_weights: (F,) from :func:`face_sampling_weights`.
        n: points per mesh; image_size: H = W of ``screen_vertices``' image.
        generator: CPU ``torch.Generator`` for every draw.
    """
    b = screen_vertices.shape[0]
    device = screen_vertices.device
    faces = faces.to(device)
    v = _camera_frame(screen_vertices.detach().float(), image_size)
    depth_normal = vertex_normals(v, faces)[..., 2][:, faces].mean(-1)  # (B, F)
    tri = v[:, faces, :2]  # (B, F, 3, 2)
    e1, e2 = tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0]
    area = 0.5 * (e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]).abs()
    weights = face_weights.to(device)[None] * area * (depth_normal < FRONT_FACING)
    weights = torch.nan_to_num(weights.cpu(), nan=0.0, posinf=0.0, neginf=0.0).clamp(min=0)
    valid = weights.sum(1) > 0
    weights[~valid] = 1.0  # anything: these images get no points (``valid``)
    face = torch.multinomial(weights, n, replacement=True, generator=generator)  # (B, N)
    u, w = torch.rand(b, n, generator=generator), torch.rand(b, n, generator=generator)
    flip = u + w > 1  # fold the unit square onto the triangle: uniform over its area
    u, w = torch.where(flip, 1 - u, u), torch.where(flip, 1 - w, w)
    bary = torch.stack([1 - u - w, u, w], dim=-1)
    return SampledPoints(face=face.to(device), bary=bary.to(device), valid=valid.to(device))


def point_pixels(points: SampledPoints, screen_vertices: Tensor, faces: Tensor, image_size: int) -> Tensor:
    """The pixel each point falls in on a mesh: (B, N, 2) int64 (column, row), clamped to the
    image as SMIRK clamps them."""
    b, n = points.face.shape
    tri = screen_vertices.detach()[:, faces.to(screen_vertices.device)]  # (B, F, 3, 3)
    corners = tri.gather(1, points.face[..., None, None].expand(b, n, 3, 3))
    pos = (points.bary[..., None].to(tri.dtype) * corners).sum(2)[..., :2]
    return pos.floor().clamp(0, image_size - 1).long()


def transfer_pixels(image: Tensor, source: Tensor, target: Tensor, valid: Optional[Tensor] = None) -> Tensor:
    """Copy the input's colour at each source pixel to its target pixel on a black canvas.

    Args:
        image: (B, 3, H, W); source, target: (B, N, 2) int64 (column, row) from
            :func:`point_pixels`; valid: (B,) bool images that get points (all when None).
    Returns:
        (B, 3, H, W): colours at the target pixels, 0 elsewhere.
    """
    b, n = source.shape[:2]
    bidx = torch.arange(b, device=image.device)[:, None].expand(b, n)
    keep = torch.ones(b, n, dtype=torch.bool, device=image.device) if valid is None else valid[:, None].expand(b, n)
    src, dst = source[keep], target[keep]
    canvas = torch.zeros_like(image.detach())
    canvas[bidx[keep], :, dst[:, 1], dst[:, 0]] = image.detach()[bidx[keep], :, src[:, 1], src[:, 0]]
    return canvas


def mask_image(image: Tensor, hidden: Tensor, extra: Tensor, rendered: Tensor, colour_jitter: float,
               dropout: float, patch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """SMIRK's ``masking``: hide the face, add the sampled points, drop some of them.

    Args:
        image: (B, 3, H, W); hidden: (B, 1, H, W) the dilated hull; rendered: (B, 1, H, W) the
            rendered face; extra: (B, 3, H, W) sampled colours (:func:`transfer_pixels`).
        colour_jitter: σ of N(1, σ) per channel; dropout: patch-centre probability; patch_size:
            patch side in pixels at this image size (made odd).
        generator: CPU ``torch.Generator``.
    Returns:
        masked (B, 3, H, W), keep (B, 1, H, W) the visible region (outside the hull and the
        rendering), painted (B, 1, H, W) where sampled points remain. All detached.
    """
    b, _, h, w = image.shape
    keep = (1 - hidden) * (1 - rendered.detach().to(image.dtype))
    masked = image.detach() * keep
    extra = extra.detach() * (1 + colour_jitter * torch.randn(extra.shape, generator=generator)).to(extra)
    if dropout > 0:
        k = _odd(patch_size)
        centres = (torch.rand(b, 1, h, w, generator=generator) < dropout).to(extra)
        extra = extra * (1 - _square_max(centres, k))
    shown = extra > 0
    masked = torch.where(shown, extra, masked)
    return masked, keep, shown.any(dim=1, keepdim=True).to(image.dtype)


@dataclass(frozen=True)
class MaskedInput:
    """The generator's view of the input image.

    image: (B, 3, H, W) the input outside the hidden region and the rendering, sampled colours
        where ``painted``, 0 elsewhere.
    keep: (B, 1, H, W) the visible region: outside the dilated hull and the rendered face.
    painted: (B, 1, H, W) where sampled points remain after dropout.
    hidden: (B, 1, H, W) the dilated landmark hull (the cycle path hides it too).
    points: the :class:`SampledPoints`.
    """

    image: Tensor
    keep: Tensor
    painted: Tensor
    hidden: Tensor
    points: SampledPoints


def mask_face(image: Tensor, hull_points: Tensor, rendering: Rendering, faces: Tensor,
              face_weights: Tensor, cfg: MaskingConfig, generator: torch.Generator) -> MaskedInput:
    """SMIRK's masked input for the reconstruction path (module docstring).

    Args:
        image: (B, 3, H, W) in [0, 1].
        hull_points: (B, L, 2) normalised coordinates of points whose hull is the face: MediaPipe's
            478, or :func:`face_hull_points` of the 68 + 105 landmarks.
        rendering: face rendering of the predicted mesh at the same size.
        faces: (F, 3); face_weights: (F,) from :func:`face_sampling_weights`.
        cfg: :class:`MaskingConfig`; generator: CPU ``torch.Generator``.
    """
    size = image.shape[-1]
    hidden = hull_mask(hull_points, size, scaled_pixels(cfg.hull_radius, size)).to(image.dtype)
    n = max(1, int(cfg.sample_fraction * size * size))
    points = sample_points(rendering.screen_vertices, faces, face_weights, n, size, generator)
    px = point_pixels(points, rendering.screen_vertices, faces, size)
    extra = transfer_pixels(image, px, px, points.valid)
    masked, keep, painted = mask_image(image, hidden, extra, rendering.mask, cfg.colour_jitter, cfg.dropout,
                                       scaled_pixels(cfg.patch_size, size), generator)
    return MaskedInput(image=masked, keep=keep, painted=painted, hidden=hidden, points=points)
