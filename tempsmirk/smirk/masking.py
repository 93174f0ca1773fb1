"""What the generator may see of the input image: SMIRK's masking and pixel sampling.

Explained in chapter 3. Shapes: B batch, H W image size, L landmarks, V vertices, F faces,
N sampled pixels per image. Pixel and normalised coordinates are those of
:mod:`tempsmirk.render.camera`.

The generator gets the rendered shading and a *masked* copy of the input. The mask keeps

1. the **surroundings** of the face: the convex hull of the landmarks, dilated by
   ``hull_radius`` pixels (10 at 224 px, scaled with the image), **minus** the area the face
   rendering covers — so the generator cannot copy the expression from the input and must take it
   from the rendering;
2. a sparse set of **sampled face pixels** (~1 % of the image): points drawn on visible face
   triangles with probability proportional to triangle area × region weight, their colours
   jittered ×N(1, 0.05). Each point remembers its triangle and barycentrics, so it can be moved
   with the mesh (:func:`paint_samples` with another mesh's screen vertices): that is how the
   cycle path hands the generator the face's colours at the *augmented* geometry;

and drops random square patches (11 × 11 at 224 px) of what is kept, so the generator learns to
fill in rather than copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from tempsmirk.render import Rendering, normalised_to_pixels

__all__ = ["MaskingConfig", "SampledPixels", "MaskedInput", "REGION_WEIGHTS", "convex_hull",
           "hull_mask", "dilate", "scaled_pixels", "face_sampling_weights", "sample_face_pixels",
           "paint_samples", "patch_dropout", "mask_face"]

# Expressions live around the mouth and eyes: sample those regions more densely.
REGION_WEIGHTS: dict[str, float] = {"face": 1.0, "lips": 3.0, "eye_region": 2.0}
REFERENCE_SIZE = 224  # image side the pixel sizes below are given at


@dataclass
class MaskingConfig:
    """Masking parameters (the ``loss.masking`` config section); pixel sizes are at 224 px.

    hull_radius: dilation of the landmark hull.
    sample_fraction: sampled face pixels as a fraction of H·W.
    colour_jitter: std of the multiplicative colour noise N(1, σ) on sampled pixels.
    patch_size: side of each dropped square patch.
    n_patches: patches dropped per image.
    """

    hull_radius: float = 10.0
    sample_fraction: float = 0.01
    colour_jitter: float = 0.05
    patch_size: int = 11
    n_patches: int = 10


def scaled_pixels(size_at_224: float, image_size: int) -> int:
    """A pixel size given at 224 px, at ``image_size`` (at least 1)."""
    return max(1, int(round(size_at_224 * image_size / REFERENCE_SIZE)))


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


def dilate(mask: Tensor, radius: int) -> Tensor:
    """Binary dilation with a disk: (B, 1, H, W) float {0, 1} -> same."""
    if radius <= 0:
        return mask
    r = torch.arange(-radius, radius + 1, device=mask.device, dtype=mask.dtype)
    disk = ((r[:, None] ** 2 + r[None, :] ** 2) <= radius ** 2 + 1e-6).to(mask.dtype)
    return (F.conv2d(mask, disk[None, None], padding=radius) > 0.5).to(mask.dtype)


def hull_mask(landmarks: Tensor, image_size: int, radius: int = 0) -> Tensor:
    """Filled convex hull of each image's landmarks, dilated by ``radius`` pixels.

    Args:
        landmarks: (B, L, 2) normalised image coordinates (any number of points >= 3).
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
        hull = convex_hull(px[i]).to(device)
        if hull.shape[0] < 3:
            continue
        a, e = hull, hull.roll(-1, dims=0) - hull  # edges a -> a + e
        # Sorted-ascending monotone chain is counter-clockwise for (x, y) as given, so the inside
        # is on the left of every edge: cross(e, p - a) >= 0.
        side = e[:, 0, None, None] * (yy - a[:, 1, None, None]) - e[:, 1, None, None] * (xx - a[:, 0, None, None])
        out[i, 0] = (side >= -1e-6).all(dim=0).to(dtype)
    return dilate(out, radius)


def face_sampling_weights(flame, region_weights: Optional[Mapping[str, float]] = None) -> Tensor:
    """Per-face sampling weight from FLAME's region masks: (F,) float.

    A face gets the largest weight of the named regions it lies in, 0 outside them (so only the
    face region is sampled); a model without region masks weighs every face 1.
    """
    region_weights = REGION_WEIGHTS if region_weights is None else region_weights
    n_faces = flame.faces.shape[0]
    if not any(name in flame.masks for name in region_weights):
        return torch.ones(n_faces, device=flame.faces.device)
    w = torch.zeros(n_faces, device=flame.faces.device)
    for name, weight in region_weights.items():
        if name in flame.masks:
            w = torch.where(flame.region_faces(name), torch.clamp(w, min=weight), w)
    return w


@dataclass(frozen=True)
class SampledPixels:
    """Face points sampled on a rendered mesh, tied to the mesh so they can move with it.

    face: (B, N) int64 index into ``faces``.
    bary: (B, N, 3) barycentric coordinates inside that face.
    colour: (B, N, 3) the input image's colour there, jittered, in [0, 1].
    valid: (B, N) bool: visible in the rendering they were drawn from (others are never painted).
    """

    face: Tensor
    bary: Tensor
    colour: Tensor
    valid: Tensor


def sample_face_pixels(image: Tensor, rendering: Rendering, faces: Tensor, face_weights: Tensor,
                       fraction: float, colour_jitter: float, generator: torch.Generator,
                       depth_tolerance: float = 0.01) -> SampledPixels:
    """Draw ~``fraction``·H·W points per image on the visible faces of ``rendering``.

    Args:
        image: (B, 3, H, W) the input image whose colours are taken.
        rendering: the face rendering of the predicted mesh (its ``screen_vertices`` and
            ``sparse.pix_to_face`` are used; no gradient flows).
        faces: (F, 3) int64; face_weights: (F,) from :func:`face_sampling_weights`.
        fraction: points per image as a fraction of H·W; colour_jitter: σ of N(1, σ).
        generator: CPU ``torch.Generator`` for every random draw.
        depth_tolerance: a point is visible if the pixel it lands on shows its face, or a surface
            within this depth (normalised units) of it.
    Returns:
        :class:`SampledPixels` with N = max(1, round(fraction·H·W)).
    """
    b, _, h, w = image.shape
    device = image.device
    faces = faces.to(device)
    n = max(1, int(round(fraction * h * w)))
    screen = rendering.screen_vertices.detach()
    tri = screen[:, faces]  # (B, F, 3, 3)
    e1, e2 = tri[:, :, 1, :2] - tri[:, :, 0, :2], tri[:, :, 2, :2] - tri[:, :, 0, :2]
    area = 0.5 * (e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]).abs()  # (B, F) pixels²
    p2f = rendering.sparse.pix_to_face  # (B, H, W)
    seen = torch.zeros(b, faces.shape[0] + 1, device=device)
    seen.scatter_(1, (p2f.reshape(b, -1) + 1), 1.0)  # column 0 collects background
    weights = (area * face_weights.to(device)[None] * seen[:, 1:]).float().cpu()
    # A degenerate (e.g. non-finite) mesh gives no usable weights: sample nothing valid there.
    weights = torch.nan_to_num(weights, nan=0.0, posinf=0.0, neginf=0.0).clamp(min=0)
    empty = weights.sum(1) <= 0
    weights[empty] = 1.0  # anything; these rows are marked invalid below
    face = torch.multinomial(weights, n, replacement=True, generator=generator)  # (B, N)
    u, v = torch.rand(b, n, generator=generator), torch.rand(b, n, generator=generator)
    su = u.sqrt()  # uniform over the triangle's area
    bary = torch.stack([1 - su, su * (1 - v), su * v], dim=-1)
    jitter = 1 + colour_jitter * torch.randn(b, n, 3, generator=generator)
    face, bary, jitter = face.to(device), bary.to(device, screen.dtype), jitter.to(device, image.dtype)

    pos = (bary[..., None] * tri.gather(1, face[..., None, None].expand(b, n, 3, 3))).sum(2)  # (B, N, 3)
    col = pos[..., 0].floor().long().clamp(0, w - 1)
    row = pos[..., 1].floor().long().clamp(0, h - 1)
    bidx = torch.arange(b, device=device)[:, None].expand(b, n)
    shown = p2f[bidx, row, col]
    zbuf = rendering.fragments.zbuf[bidx, row, col]
    valid = (shown == face) | ((zbuf - pos[..., 2]).abs() < depth_tolerance)
    valid &= ~empty.to(device)[:, None]
    colour = (image.detach()[bidx, :, row, col] * jitter).clamp(0, 1)  # (B, N, 3)
    return SampledPixels(face=face, bary=bary, colour=colour, valid=valid)


def paint_samples(samples: SampledPixels, screen_vertices: Tensor, faces: Tensor,
                  image_size: int) -> tuple[Tensor, Tensor]:
    """Place sampled colours where their (face, barycentrics) land on a mesh.

    Args:
        samples: from :func:`sample_face_pixels`.
        screen_vertices: (B, V, 3) pixel-space vertices of the mesh to paint on (the one sampled
            from, or an augmented one: the points move with it).
        faces: (F, 3) int64; image_size: H = W.
    Returns:
        colours (B, 3, H, W) (0 where nothing is painted) and mask (B, 1, H, W) float.
    """
    b, n = samples.face.shape
    device = screen_vertices.device
    tri = screen_vertices.detach()[:, faces.to(device)]
    pos = (samples.bary[..., None].to(tri.dtype) * tri.gather(1, samples.face[..., None, None].expand(b, n, 3, 3))).sum(2)
    col, row = pos[..., 0].floor().long(), pos[..., 1].floor().long()
    ok = samples.valid & (col >= 0) & (col < image_size) & (row >= 0) & (row < image_size)
    bidx = torch.arange(b, device=device)[:, None].expand(b, n)
    canvas = torch.zeros(b, image_size, image_size, 3, device=device, dtype=samples.colour.dtype)
    mask = torch.zeros(b, image_size, image_size, 1, device=device, dtype=samples.colour.dtype)
    canvas[bidx[ok], row[ok], col[ok]] = samples.colour[ok]
    mask[bidx[ok], row[ok], col[ok]] = 1.0
    return canvas.permute(0, 3, 1, 2), mask.permute(0, 3, 1, 2)


def patch_dropout(mask: Tensor, n_patches: int, patch_size: int, generator: torch.Generator) -> Tensor:
    """Zero ``n_patches`` random ``patch_size``² squares per image: (B, 1, H, W) -> same."""
    b, _, h, w = mask.shape
    if n_patches <= 0 or patch_size <= 0:
        return mask
    cy = torch.randint(0, h, (b, n_patches), generator=generator).to(mask.device)
    cx = torch.randint(0, w, (b, n_patches), generator=generator).to(mask.device)
    ys = torch.arange(h, device=mask.device)
    xs = torch.arange(w, device=mask.device)
    lo = patch_size // 2
    in_y = (ys[None, None, :] >= cy[..., None] - lo) & (ys[None, None, :] < cy[..., None] - lo + patch_size)
    in_x = (xs[None, None, :] >= cx[..., None] - lo) & (xs[None, None, :] < cx[..., None] - lo + patch_size)
    hole = (in_y[..., :, None] & in_x[..., None, :]).any(dim=1)  # (B, H, W)
    return mask * (~hole)[:, None].to(mask.dtype)


@dataclass(frozen=True)
class MaskedInput:
    """The generator's view of the input image.

    image: (B, 3, H, W) the input where ``keep`` is 1, sampled colours where ``painted`` is 1,
        0 elsewhere.
    keep: (B, 1, H, W) the dilated hull minus the rendered face, after patch dropout.
    painted: (B, 1, H, W) where sampled face pixels were placed.
    hull: (B, 1, H, W) the dilated landmark hull (reused by the cycle path).
    samples: the :class:`SampledPixels`.
    """

    image: Tensor
    keep: Tensor
    painted: Tensor
    hull: Tensor
    samples: SampledPixels


def mask_face(image: Tensor, landmarks: Tensor, rendering: Rendering, faces: Tensor,
              face_weights: Tensor, cfg: MaskingConfig, generator: torch.Generator) -> MaskedInput:
    """SMIRK's masked input for the reconstruction path (module docstring).

    Args:
        image: (B, 3, H, W) in [0, 1].
        landmarks: (B, L, 2) detected landmarks (normalised coordinates) whose hull bounds the face.
        rendering: face rendering of the predicted mesh at the same size.
        faces: (F, 3); face_weights: (F,) from :func:`face_sampling_weights`.
        cfg: :class:`MaskingConfig`; generator: CPU ``torch.Generator``.
    """
    size = image.shape[-1]
    hull = hull_mask(landmarks, size, scaled_pixels(cfg.hull_radius, size)).to(image.dtype)
    keep = hull * (1 - rendering.mask.detach().to(image.dtype))
    keep = patch_dropout(keep, cfg.n_patches, scaled_pixels(cfg.patch_size, size), generator)
    samples = sample_face_pixels(image, rendering, faces, face_weights, cfg.sample_fraction,
                                 cfg.colour_jitter, generator)
    colours, painted = paint_samples(samples, rendering.screen_vertices, faces, size)
    masked = image.detach() * keep * (1 - painted) + colours * painted
    return MaskedInput(image=masked, keep=keep, painted=painted, hull=hull, samples=samples)
