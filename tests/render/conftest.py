"""Reference implementations for the renderer tests: a per-pixel, per-face brute-force z-buffer and
random scenes with the awkward cases (overlaps, slivers, off-screen and degenerate triangles)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch


def brute_force(vertices: np.ndarray, faces: np.ndarray, h: int, w: int, eps: float = 1e-3):
    """Plain loops over pixels and faces.

    Returns pix_to_face (B, H, W), unambiguous (B, H, W) bool, bary (B, H, W, 3), zbuf (B, H, W).
    A pixel is ambiguous when its centre lies within ``eps`` of an edge of a triangle it may be
    inside, or when the two nearest covering triangles are within ``eps`` in depth. Zero-area
    triangles cover nothing.
    """
    b = vertices.shape[0]
    p2f = np.full((b, h, w), -1, dtype=np.int64)
    clear = np.ones((b, h, w), dtype=bool)
    bary = np.zeros((b, h, w, 3))
    zbuf = np.full((b, h, w), np.inf)
    for n in range(b):
        for i in range(h):
            for j in range(w):
                px, py = j + 0.5, i + 0.5
                hits = []
                for f, (a, bb, c) in enumerate(faces):
                    tri = [tuple(map(float, vertices[n, k])) for k in (a, bb, c)]
                    (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = tri
                    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
                    if area == 0 or not all(math.isfinite(t) for v in tri for t in v):
                        continue
                    ws, dists = [], []
                    for k in range(3):
                        (ax, ay, _), (bx, by, _) = tri[(k + 1) % 3], tri[(k + 2) % 3]
                        cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
                        ws.append(cross / area)
                        length = math.hypot(bx - ax, by - ay)
                        # signed distance to the edge line, positive towards the inside
                        dists.append(math.copysign(1, area) * cross / length if length > 0 else 0.0)
                    if min(dists) > eps:
                        hits.append((ws[0] * z0 + ws[1] * z1 + ws[2] * z2, f, ws))
                    elif min(dists) > -eps:
                        clear[n, i, j] = False
                if hits:
                    hits.sort(key=lambda t: t[0])
                    if len(hits) > 1 and hits[1][0] - hits[0][0] < eps:
                        clear[n, i, j] = False
                    z, f, ws = hits[0]
                    p2f[n, i, j], zbuf[n, i, j], bary[n, i, j] = f, z, ws
    return p2f, clear, bary, zbuf


def brute_force_vectorised(vertices: np.ndarray, faces: np.ndarray, h: int, w: int, eps: float = 1e-3):
    """:func:`brute_force` with the loop over faces vectorised in NumPy, for real meshes.

    Returns pix_to_face (B, H, W) and unambiguous (B, H, W) bool.
    """
    b = vertices.shape[0]
    p2f = np.full((b, h, w), -1, dtype=np.int64)
    clear = np.ones((b, h, w), dtype=bool)
    for n in range(b):
        tri = vertices[n][faces].astype(np.float64)  # (F, 3, 3)
        x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]
        area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])
        keep = area != 0
        ax, ay = np.roll(x, -1, 1), np.roll(y, -1, 1)  # edge k runs from vertex k+1 to k+2
        bx, by = np.roll(x, -2, 1), np.roll(y, -2, 1)
        length = np.hypot(bx - ax, by - ay)
        for i in range(h):
            for j in range(w):
                px, py = j + 0.5, i + 0.5
                cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax)  # (F, 3)
                with np.errstate(divide="ignore", invalid="ignore"):
                    dist = (np.sign(area)[:, None] * cross / length).min(1)
                    depth = (cross / area[:, None] * z).sum(1)
                inside = keep & (dist > eps)
                if (keep & (dist > -eps) & ~inside).any():
                    clear[n, i, j] = False
                if inside.any():
                    cand = np.nonzero(inside)[0]
                    order = np.argsort(depth[cand], kind="stable")
                    p2f[n, i, j] = cand[order[0]]
                    if len(cand) > 1 and depth[cand[order[1]]] - depth[cand[order[0]]] < eps:
                        clear[n, i, j] = False
    return p2f, clear


def random_scene(gen: torch.Generator, batch: int, n_faces: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Separate triangles (3 vertices each) in pixel space, float32-representable.

    Mixes ordinary triangles (partly off-screen), slivers, exactly degenerate ones (a repeated
    vertex and collinear vertices) and interpenetrating depths.
    """
    v = torch.rand(batch, n_faces, 3, 3, generator=gen)
    v[..., :2] = v[..., :2] * 1.6 * size - 0.3 * size  # some vertices off-screen
    v[..., 2] = v[..., 2] * 4 - 2  # tilted planes that cut through each other
    k = n_faces // 8
    # slivers: third vertex close to the segment between the first two
    t = torch.rand(batch, k, 1, generator=gen)
    mid = v[:, :k, 0, :2] * t + v[:, :k, 1, :2] * (1 - t)
    v[:, :k, 2, :2] = mid + (torch.rand(batch, k, 2, generator=gen) - 0.5) * 0.6
    # degenerate: a repeated vertex, and three collinear points
    v[:, k:2 * k, 2] = v[:, k:2 * k, 0]
    v[:, 2 * k:3 * k, :2, :2] = v[:, 2 * k:3 * k, :2, :2].round()  # integers: exact collinearity
    v[:, 2 * k:3 * k, 2, :2] = 2 * v[:, 2 * k:3 * k, 1, :2] - v[:, 2 * k:3 * k, 0, :2]
    verts = v.reshape(batch, n_faces * 3, 3).contiguous()
    faces = torch.arange(n_faces * 3).view(n_faces, 3)
    return verts, faces


@pytest.fixture(scope="session")
def brute():
    return brute_force


@pytest.fixture(scope="session")
def brute_vectorised():
    return brute_force_vectorised


@pytest.fixture(scope="session")
def scene():
    return random_scene
