"""Hard triangle rasterisation in pure PyTorch (explained in chapter 2).

Input vertices are in pixel space, x right, y down, smaller depth closer; the pixel conventions
are written once in :mod:`tempsmirk.render.camera`.

How it works, vectorised over faces, pixels and the batch:

1. Visibility, without autograd. Every face tests the pixel centres of its clipped bounding box.
   Faces are bucketed by the pixel count of their box rounded up to a power of two K, so within a
   bucket all faces test offsets 0..K-1 of their boxes with plain broadcasting (at most 2x padding,
   no per-pixel gathers): a 2-pixel triangle costs a few tests, a full-screen one W*H. Buckets are
   processed in chunks of at most ``max_candidates`` (face, pixel) pairs, so memory stays bounded
   for big triangles and big batches. For each pixel centre inside a triangle we pack
   ``(depth, face index)`` into one int64 key and keep the per-pixel minimum with
   ``scatter_reduce("amin")``: nearest depth wins, equal depths go to the lowest face index, so the
   result is deterministic and independent of the chunking. Depths are compared in float32 (the
   key has 32 bits for each), whatever the input dtype; faces are limited to 2^31.
2. Geometry, with autograd. For each covered pixel the barycentrics of its winning face are
   recomputed at the pixel centre from the input vertices, so gradients reach vertex positions
   through barycentrics (and through anything interpolated with them); visibility itself has no
   gradient, as with pytorch3d at blur 0 or nvdiffrast without antialiasing.

A pixel centre exactly on an edge counts as inside both triangles (the depth test then decides).
Degenerate triangles (zero area) and faces with non-finite vertices cover nothing. There is no
backface culling by default: FLAME meshes are nearly closed, so the z-buffer already hides back
faces, and culling would open holes where a mesh is not closed. ``cull_backfaces=True`` drops faces
whose signed pixel-space area ``(v1 - v0) x (v2 - v0)`` is not negative, i.e. those wound clockwise
on screen, which for an outward-wound mesh seen through :mod:`tempsmirk.render.camera` are the ones
facing away.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tempsmirk.render.camera import image_hw

__all__ = ["Fragments", "SparseFragments", "rasterize", "rasterize_sparse", "interpolate"]

_NO_HIT = torch.iinfo(torch.int64).max
_LOW32 = 0xFFFFFFFF


@dataclass(frozen=True)
class Fragments:
    """What each pixel sees.

    pix_to_face: (B, H, W) int64, index into ``faces`` of the visible face, -1 for background.
    bary: (B, H, W, 3) float, barycentric coordinates of the pixel centre in that face
        (zeros on background); differentiable w.r.t. the vertices.
    zbuf: (B, H, W) float, interpolated depth (``+inf`` on background).
    """

    pix_to_face: Tensor
    bary: Tensor
    zbuf: Tensor

    @property
    def mask(self) -> Tensor:
        """(B, H, W) bool coverage."""
        return self.pix_to_face >= 0


def _ordered_key(depth: Tensor) -> Tensor:
    """float32 depth -> int64 whose integer order equals the float order (for finite values)."""
    bits = (depth.to(torch.float32) + 0.0).view(torch.int32)  # + 0.0 folds -0.0 into +0.0
    # Negative floats sort backwards as integers: flip their 31 magnitude bits.
    bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return bits.to(torch.int64)


def _visible_faces(
    verts: Tensor, faces: Tensor, h: int, w: int, cull_backfaces: bool, max_candidates: int
) -> Tensor:
    """Winning face per pixel, without gradients. verts (B, V, 3) -> (B, H, W) int64 (-1 = none)."""
    b, f = verts.shape[0], faces.shape[0]
    tri = verts[:, faces]  # (B, F, 3, 3)
    x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]  # each (B, F, 3)
    area = (x[..., 1] - x[..., 0]) * (y[..., 2] - y[..., 0]) - (x[..., 2] - x[..., 0]) * (y[..., 1] - y[..., 0])
    ok = torch.isfinite(tri).all(dim=(-1, -2)) & (area != 0)
    if cull_backfaces:
        ok &= area < 0
    # Pixel centres j + 0.5 inside [xmin, xmax]: j from ceil(xmin - 0.5) to floor(xmax - 0.5).
    # Clamping before the integer cast keeps huge or infinite coordinates harmless.
    xmin = (x.amin(-1) - 0.5).clamp(-1, w).ceil().long().clamp(min=0)
    xmax = (x.amax(-1) - 0.5).clamp(-1, w).floor().long().clamp(max=w - 1)
    ymin = (y.amin(-1) - 0.5).clamp(-1, h).ceil().long().clamp(min=0)
    ymax = (y.amax(-1) - 0.5).clamp(-1, h).floor().long().clamp(max=h - 1)
    bw = (xmax - xmin + 1).clamp(min=0)
    bh = (ymax - ymin + 1).clamp(min=0)
    count = torch.where(ok, bw * bh, torch.zeros_like(bw)).flatten()  # (B*F,)
    live = count.nonzero().squeeze(1)
    keys = torch.full((b * h * w,), _NO_HIT, dtype=torch.int64, device=verts.device)
    if live.numel() == 0:
        return keys.new_full((b, h, w), -1)

    # Per live face: barycentrics w0, w1 and depth as affine functions of the candidate's offset
    # (dj, di) from the top-left pixel centre of its bounding box (small numbers: good precision).
    def flat(t: Tensor) -> Tensor:
        return t.reshape(b * f, *t.shape[2:]).index_select(0, live)

    xs, ys, zs, a = flat(x), flat(y), flat(z), flat(area)
    px = xs - (flat(xmin).to(xs.dtype) + 0.5)[:, None]  # vertices relative to the box origin
    py = ys - (flat(ymin).to(xs.dtype) + 0.5)[:, None]
    # w_k(p) = cross(v_{k+2} - v_{k+1}, p - v_{k+1}) / area, written as c + ax * dj + ay * di.
    coef = []
    for k in (0, 1):
        i1, i2 = (k + 1) % 3, (k + 2) % 3
        ex, ey = px[:, i2] - px[:, i1], py[:, i2] - py[:, i1]
        coef += [(ey * px[:, i1] - ex * py[:, i1]) / a, -ey / a, ex / a]
    coef += [zs[:, 2], zs[:, 0] - zs[:, 2], zs[:, 1] - zs[:, 2]]
    real = torch.stack(coef, dim=1)  # (n, 9)
    box_h, box_w = flat(bh), flat(bw)
    base = (live // f) * (h * w) + flat(ymin) * w + flat(xmin)  # flat pixel index of the box origin
    ints = torch.stack([box_h, box_w, base, live % f], dim=1)  # (n, 4)

    # Bucket faces by the pixel count of their box rounded up to a power of two K: inside a
    # bucket every face tests offsets 0..K-1 of its box (row-major, at most 2x padding), so the
    # work is plain broadcasting with no per-pixel gathers. Most FLAME faces land in K <= 8.
    n_pix = box_h * box_w
    bucket = torch.log2(n_pix.double()).ceil().long()  # exact: counts are far below 2**52
    order = torch.argsort(bucket, stable=True)
    kinds, sizes = torch.unique_consecutive(bucket[order], return_counts=True)
    for kind, group in zip(kinds.tolist(), order.split(sizes.tolist())):
        # Float offsets make row = floor((offset + 0.5) / width) exact and cheap; float32 suffices
        # below 2**20 pixels per box.
        exact = torch.float32 if kind <= 20 else torch.float64
        offsets = torch.arange(1 << kind, device=verts.device, dtype=exact)
        for k0 in range(0, offsets.numel(), max_candidates):  # splits only boxes above max_candidates pixels
            off = offsets[k0:k0 + max_candidates][None]  # (1, K)
            step = max(1, max_candidates // off.numel())
            for chunk in group.split(step):
                c = real.index_select(0, chunk)  # (n_b, 9)
                i = ints.index_select(0, chunk)  # (n_b, 4)
                bw_f = i[:, 1:2].to(exact)
                fdi = ((off + 0.5) / bw_f).floor()
                fdj = off - fdi * bw_f
                w0 = c[:, 0:1] + c[:, 1:2] * fdj + c[:, 2:3] * fdi  # (n_b, K)
                w1 = c[:, 3:4] + c[:, 4:5] * fdj + c[:, 5:6] * fdi
                inside = (w0 >= 0) & (w1 >= 0) & (w0 + w1 <= 1) & (off < (i[:, 0:1] * i[:, 1:2]).to(exact))
                depth = c[:, 6:7] + w0 * c[:, 7:8] + w1 * c[:, 8:9]
                key = torch.where(inside, (_ordered_key(depth) << 32) | i[:, 3:4], _NO_HIT)
                pix = torch.where(inside, i[:, 2:3] + fdi.long() * w + fdj.long(), 0)  # padding leaves the box
                keys.scatter_reduce_(0, pix.flatten(), key.flatten(), reduce="amin")

    hit = keys != _NO_HIT
    return torch.where(hit, keys & _LOW32, torch.full_like(keys, -1)).view(b, h, w)


def rasterize(
    vertices: Tensor,
    faces: Tensor,
    image_size: int | tuple[int, int],
    *,
    cull_backfaces: bool = False,
    max_candidates: int = 1 << 21,
) -> Fragments:
    """Hard-rasterise triangle meshes that share one topology.

    Args:
        vertices: (B, V, 3) float, pixel space (x right, y down, depth; see
            :mod:`tempsmirk.render.camera`). Any float dtype and device.
        faces: (F, 3) int64 vertex indices, shared by the batch.
        image_size: H = W int, or (H, W).
        cull_backfaces: drop faces wound clockwise on screen (see the module docstring); off by default.
        max_candidates: bound on (face, pixel) pairs tested at once; the result does not depend on it.
    Returns:
        :class:`Fragments`; ``bary`` and ``zbuf`` carry gradients to ``vertices``.
    """
    return rasterize_sparse(
        vertices, faces, image_size, cull_backfaces=cull_backfaces, max_candidates=max_candidates
    ).dense()


@dataclass(frozen=True)
class SparseFragments:
    """The covered pixels only (what the renderer works on; cheaper than full images).

    pix_to_face: (B, H, W) int64 as in :class:`Fragments`.
    pixels: (N,) int64 flat indices ``b*H*W + i*W + j`` of the covered pixels, increasing.
    vertex_ids: (N, 3) int64 rows of the flattened (B*V) vertices of each pixel's face.
    bary: (N, 3) barycentrics (differentiable).
    zbuf: (N,) depth (differentiable).
    """

    pix_to_face: Tensor
    pixels: Tensor
    vertex_ids: Tensor
    bary: Tensor
    zbuf: Tensor

    def scatter(self, values: Tensor, fill: float = 0.0) -> Tensor:
        """(N, C) per covered pixel -> (B, H, W, C) image, ``fill`` elsewhere."""
        b, h, w = self.pix_to_face.shape
        out = values.new_full((b * h * w, values.shape[1]), fill)
        return out.index_copy(0, self.pixels, values).view(b, h, w, -1)

    def dense(self) -> Fragments:
        return Fragments(
            pix_to_face=self.pix_to_face,
            bary=self.scatter(self.bary),
            zbuf=self.scatter(self.zbuf[:, None], float("inf"))[..., 0],
        )

    def interpolate(self, attributes: Tensor) -> Tensor:
        """Per-vertex (B, V, C) attributes -> (N, C) at the covered pixels."""
        b, v, c = attributes.shape
        vals = attributes.reshape(b * v, c).index_select(0, self.vertex_ids.reshape(-1)).view(-1, 3, c)
        return (vals * self.bary[..., None].to(vals.dtype)).sum(1)


def rasterize_sparse(
    vertices: Tensor,
    faces: Tensor,
    image_size: int | tuple[int, int],
    *,
    cull_backfaces: bool = False,
    max_candidates: int = 1 << 21,
) -> SparseFragments:
    """:func:`rasterize`, returning the covered pixels only (same arguments)."""
    if vertices.dim() != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices: expected (B, V, 3), found {tuple(vertices.shape)}")
    if faces.dim() != 2 or faces.shape[-1] != 3:
        raise ValueError(f"faces: expected (F, 3), found {tuple(faces.shape)}")
    h, w = image_hw(image_size)
    faces = faces.to(device=vertices.device, dtype=torch.int64)
    with torch.no_grad():
        pix_to_face = _visible_faces(vertices.detach(), faces, h, w, cull_backfaces, max_candidates)

    b, v = vertices.shape[:2]
    flat_p2f = pix_to_face.flatten()
    covered = (flat_p2f >= 0).nonzero().squeeze(1)
    pix = covered % (h * w)
    px = (pix % w).to(vertices.dtype) + 0.5
    py = (pix // w).to(vertices.dtype) + 0.5
    vidx = faces[flat_p2f[covered]] + (covered // (h * w))[:, None] * v  # (N, 3) into (B*V)
    tri = vertices.reshape(b * v, 3).index_select(0, vidx.reshape(-1)).view(-1, 3, 3)  # differentiable
    bary, z = _barycentric(tri, px, py)
    return SparseFragments(pix_to_face=pix_to_face, pixels=covered, vertex_ids=vidx, bary=bary, zbuf=z)


def _barycentric(tri: Tensor, px: Tensor, py: Tensor) -> tuple[Tensor, Tensor]:
    """Barycentrics and depth of points in triangles. tri (N, 3, 3), px/py (N,) -> (N, 3), (N,)."""
    dx, dy = tri[..., 0] - px[:, None], tri[..., 1] - py[:, None]  # vertices relative to the point
    x0, x1, x2 = dx.unbind(1)
    y0, y1, y2 = dy.unbind(1)
    # Sub-triangle areas opposite each vertex, e.g. w0 ~ cross(v1 - p, v2 - p).
    cross = torch.stack([x1 * y2 - x2 * y1, x2 * y0 - x0 * y2, x0 * y1 - x1 * y0], dim=1)
    bary = cross / cross.sum(1, keepdim=True)
    return bary, (bary * tri[..., 2]).sum(1)


def interpolate(attributes: Tensor, faces: Tensor, fragments: Fragments) -> Tensor:
    """Interpolate per-vertex attributes at every pixel with the fragments' barycentrics.

    Args:
        attributes: (B, V, C) float (normals, colours, ...).
        faces: (F, 3) int64, the ``faces`` whose indices ``fragments.pix_to_face`` refers to.
        fragments: from :func:`rasterize`.
    Returns:
        (B, H, W, C), zeros on background; differentiable w.r.t. ``attributes`` and the barycentrics.
    """
    b, v, c = attributes.shape
    faces = faces.to(device=attributes.device, dtype=torch.int64)
    p2f = fragments.pix_to_face
    vidx = faces[p2f.clamp(min=0)] + torch.arange(b, device=p2f.device).view(b, 1, 1, 1) * v  # (B, H, W, 3)
    vals = attributes.reshape(b * v, c).index_select(0, vidx.reshape(-1)).view(*p2f.shape, 3, c)
    out = (vals * fragments.bary[..., None].to(vals.dtype)).sum(-2)
    return torch.where(p2f[..., None] >= 0, out, torch.zeros_like(out))
