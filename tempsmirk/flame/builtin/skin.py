"""The skin mesh of the built-in head: a ray-cast grid with slits, eye sockets and two eyeballs.

- The skin is one grid (:mod:`.layout`): rows run from the crown down to the neck cut,
  columns around the head (column 0 is the face's midline; column ``c`` mirrors to ``-c``,
  so the template is exactly left/right symmetric). Each grid vertex is where a ray from
  the head's vertical axis meets the implicit head (:mod:`.surface`); the facial relief is
  then added along the rays.
- The mouth and both eyes are *slits* along one grid row: the vertices of the slit are
  duplicated, the upper side keeps the originals, the lower side uses the copies. The mouth
  is closed at rest and backed by a small inner cavity, so the jaw opens it; the eyes are
  opened into almond shapes at rest and show the eyeballs (separate spheres) behind them,
  each held in a socket sac joining the lid edges behind the eyeball. The skin is closed
  except for the neck cut.

:func:`build_skin` returns the grid as :class:`Skin` (ids and reference positions that the
regions, landmarks and rig are placed by); :func:`with_eyeballs` adds the eyeball spheres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tempsmirk.flame.builtin.layout import (
    CAVITY_RINGS,
    EYE_RADIUS,
    EYE_X,
    LID_DOWN,
    LID_FALLOFF,
    LID_GAP,
    LID_UP,
    MOUTH_X,
    N_CAP_ROWS,
    N_COLS,
    Y_CAP,
    Y_EYE,
    Y_MOUTH,
    Z_AXIS,
)
from tempsmirk.flame.builtin.surface import facial_relief, ray_hit

__all__ = ["Skin", "EyeballIds", "build_skin", "with_eyeballs", "lid_edges", "lid_falloff", "lid_profile"]

EyeballIds = tuple[np.ndarray, np.ndarray]
"""Vertex ids of the left and right eyeball spheres in the full mesh."""


@dataclass(frozen=True)
class Skin:
    """The skin grid before eyeballs are added (vertex ids into ``positions``)."""

    positions: np.ndarray       # (V_skin, 3) template positions
    ref: np.ndarray             # (V_skin, 3) positions before the eyes were opened (region maths)
    faces: np.ndarray           # (F_skin, 3)
    cell_faces: np.ndarray      # (R-1, N, 2) face ids of each grid cell
    gid: np.ndarray             # (R, N) vertex id of each grid node (upper side at slits)
    top_ids: np.ndarray         # (R, N) vertex ids used as a cell's top row (lower side at slits)
    row_y: np.ndarray           # (R,) ref height of each horizontal row (nan on the crown cap)
    col_phi: np.ndarray         # (N,) column angle about +y, 0 = front, +x side positive
    directions: np.ndarray      # (V_skin, 3) ray direction of each skin vertex
    r_eye: int
    r_mouth: int
    eye_cols: tuple[int, int]   # left eye inner / outer corner columns (right eye: negated)
    mouth_col: int              # left mouth corner column (right: negated)
    mouth_dup: np.ndarray       # (2m-1,) lower-lip copies for columns -m+1..m-1
    eye_dup: np.ndarray         # (2, k-1) lower-lid copies (left, right) for interior columns
    cavity: np.ndarray          # (CAVITY_RINGS-1, 2m-1) inner mouth vertices
    sacs: np.ndarray            # (2, rings, k-1) eye socket vertices behind the eyeballs (left, right)
    pole: int
    eye_centres: np.ndarray     # (2, 3) left, right


def _column_angles() -> np.ndarray:
    """(N,) column angles about +y; column c and -c are mirror images."""
    u = 2 * np.pi * np.arange(N_COLS) / N_COLS
    u = np.where(u > np.pi, u - 2 * np.pi, u)
    return u - 0.45 * np.sin(u)  # denser towards the face


def _row_levels() -> np.ndarray:
    """Heights of the horizontal rows, with exact rows at the eyes and the mouth."""
    parts = [np.linspace(Y_CAP, Y_EYE, 12)[1:], np.linspace(Y_EYE, Y_MOUTH, 19)[1:],
             np.linspace(Y_MOUTH, -0.105, 18)[1:], np.linspace(-0.105, -0.20, 8)[1:]]
    return np.concatenate(parts)


def lid_falloff(ref: np.ndarray) -> np.ndarray:
    """How much of a lid's motion reaches a vertex: 1 at the eye slit, 0 beyond 2.5 falloffs or off the face."""
    dy = ref[:, 1] - Y_EYE
    fall = np.exp(-((dy / LID_FALLOFF) ** 2)) * (np.abs(dy) < 2.5 * LID_FALLOFF)
    return fall * (ref[:, 2] > 0.0)  # the back of the head has the same x and y as the eyes


def lid_profile(s: np.ndarray) -> np.ndarray:
    """Lid opening along the slit: 0 at the corners (s = 0, 1), 1 in the middle."""
    inside = (s > 0) & (s < 1)
    return np.where(inside, np.sin(np.pi * np.clip(s, 0, 1)) ** 0.8, 0.0)


def build_skin() -> Skin:
    """The skin: ray-cast grid, facial relief, slits, opened eyes, inner mouth and eye sockets."""
    N = N_COLS
    phi = _column_angles()
    alphas = np.pi / 2 * np.arange(1, N_CAP_ROWS + 1) / N_CAP_ROWS
    ys = _row_levels()
    R = N_CAP_ROWS + ys.size
    row_y = np.concatenate([np.full(N_CAP_ROWS, np.nan), ys])
    row_y[N_CAP_ROWS - 1] = Y_CAP
    # rays: a fan on the crown cap, horizontal below it
    sa = np.concatenate([np.sin(alphas), np.ones(ys.size)])
    ca = np.concatenate([np.cos(alphas), np.zeros(ys.size)])
    oy = np.concatenate([np.full(N_CAP_ROWS, Y_CAP), ys])
    d = np.stack([sa[:, None] * np.sin(phi)[None], np.broadcast_to(ca[:, None], (R, N)),
                  sa[:, None] * np.cos(phi)[None]], -1)
    o = np.stack([np.zeros((R, N)), np.broadcast_to(oy[:, None], (R, N)), np.full((R, N), Z_AXIS)], -1)
    t = ray_hit(o.reshape(-1, 3), d.reshape(-1, 3)).reshape(R, N)
    base = o + t[..., None] * d
    grid = base + facial_relief(base[..., 0], base[..., 1], base[..., 2])[..., None] * d
    top = np.array([0.0, Y_CAP, Z_AXIS]) + ray_hit(np.array([[0.0, Y_CAP, Z_AXIS]]), np.array([[0.0, 1.0, 0.0]]))[0] \
        * np.array([0.0, 1.0, 0.0])

    r_eye = N_CAP_ROWS + int(np.argmin(np.abs(ys - Y_EYE)))
    r_mouth = N_CAP_ROWS + int(np.argmin(np.abs(ys - Y_MOUTH)))
    front = N // 4  # search the face side only (the back of the head has the same |x| too)
    x_eye, x_mouth = grid[r_eye, :front, 0], grid[r_mouth, :front, 0]
    j_in, j_out = (int(np.argmin(np.abs(x_eye - e))) for e in EYE_X)
    j_m = int(np.argmin(np.abs(x_mouth - MOUTH_X)))

    # vertex ids: grid, pole, slit copies (mouth, left eye, right eye), inner mouth
    gid = np.arange(R * N).reshape(R, N)
    pole = R * N
    nxt = pole + 1
    mouth_cols = np.arange(-j_m + 1, j_m)
    mouth_dup = nxt + np.arange(mouth_cols.size)
    nxt += mouth_cols.size
    eye_cols_l = np.arange(j_in + 1, j_out)
    eye_dup = nxt + np.arange(2 * eye_cols_l.size).reshape(2, -1)
    nxt += 2 * eye_cols_l.size
    cavity = nxt + np.arange((CAVITY_RINGS - 1) * mouth_cols.size).reshape(CAVITY_RINGS - 1, -1)
    nxt += cavity.size
    n_skin = nxt

    top_ids = gid.copy()
    top_ids[r_mouth, mouth_cols % N] = mouth_dup
    top_ids[r_eye, eye_cols_l] = eye_dup[0]
    top_ids[r_eye, (-eye_cols_l) % N] = eye_dup[1]

    pos = np.zeros((n_skin, 3))
    dirs = np.zeros((n_skin, 3))
    pos[gid.ravel()] = grid.reshape(-1, 3)
    dirs[gid.ravel()] = d.reshape(-1, 3)
    pos[pole], dirs[pole] = top, (0.0, 1.0, 0.0)
    for ids, cols, row in ((mouth_dup, mouth_cols, r_mouth), (eye_dup[0], eye_cols_l, r_eye),
                           (eye_dup[1], -eye_cols_l, r_eye)):
        pos[ids], dirs[ids] = grid[row, cols % N], d[row, cols % N]
    # inner mouth: a lens-shaped pocket behind the lips, from the upper to the lower lip edge
    lip = grid[r_mouth, mouth_cols % N]
    x_corner = grid[r_mouth, j_m, 0]
    taper = np.sqrt(np.clip(1.0 - (lip[:, 0] / x_corner) ** 2, 0.0, 1.0))
    for k in range(1, CAVITY_RINGS):
        th = np.pi * k / CAVITY_RINGS
        back = -d[r_mouth, mouth_cols % N] * (0.022 * taper * np.sin(th))[:, None]
        up = np.array([0.0, 1.0, 0.0]) * (0.006 * taper * np.sin(2 * th))[:, None]
        pos[cavity[k - 1]] = lip + back + up
        dirs[cavity[k - 1]] = d[r_mouth, mouth_cols % N]
    ref = pos.copy()

    # open the eyes: lift the upper side, lower the lower side, fading away from the slit
    upper = np.zeros(n_skin, bool)
    upper[gid[:r_eye].ravel()] = True
    upper[gid[r_eye]] = True
    upper[pole] = True
    movable = np.zeros(n_skin, bool)  # grid and lid copies; not the inner mouth
    movable[gid.ravel()] = True
    movable[eye_dup.ravel()] = True
    x_in, x_out = abs(grid[r_eye, j_in, 0]), abs(grid[r_eye, j_out, 0])
    fall = lid_falloff(ref) * movable
    for sign in (1, -1):
        s = (sign * ref[:, 0] - x_in) / (x_out - x_in)
        pos[:, 1] += np.where(upper, LID_UP, -LID_DOWN) * lid_profile(s) * fall

    # eyeball centres: as far forward as the lid edges allow (lids stay LID_GAP outside)
    centres = np.zeros((2, 3))
    R_out = EYE_RADIUS + LID_GAP
    for e, sign in enumerate((1, -1)):
        edge = _lid_edge(gid, r_eye, (j_in, j_out), eye_dup[e], sign)
        c = np.array([0.5 * (grid[r_eye, j_in, 0] + grid[r_eye, j_out, 0]) * sign, Y_EYE + 0.0004, 0.0])
        dx2 = (pos[edge, 0] - c[0]) ** 2 + (pos[edge, 1] - c[1]) ** 2
        ok = dx2 < R_out ** 2
        c[2] = np.min(pos[edge[ok], 2] - np.sqrt(R_out ** 2 - dx2[ok]))
        centres[e] = c
        # lids drape over the eyeball: push skin that would cut into it outwards along its ray
        rel = pos - c
        inside = np.linalg.norm(rel, axis=1) < R_out
        inside[cavity.ravel()] = False
        b = np.einsum("ij,ij->i", dirs[inside], rel[inside])
        cc = np.einsum("ij,ij->i", rel[inside], rel[inside]) - R_out ** 2
        pos[inside] += (-b + np.sqrt(b * b - cc))[:, None] * dirs[inside]

    # faces: grid cells (diagonals mirrored across the midline), crown fan, inner mouth
    r0 = np.arange(R - 1)[:, None]
    c0 = np.arange(N)[None, :]
    c1 = (c0 + 1) % N
    A, B = top_ids[r0, c0], top_ids[r0, c1]
    C, D = gid[r0 + 1, c0], gid[r0 + 1, c1]
    main = np.broadcast_to(c0 < N // 2, A.shape)
    t1 = np.where(main[..., None], np.stack([A, C, D], -1), np.stack([A, C, B], -1))
    t2 = np.where(main[..., None], np.stack([A, D, B], -1), np.stack([B, C, D], -1))
    cell_faces = np.arange(2 * (R - 1) * N).reshape(R - 1, N, 2)
    faces = [np.stack([t1, t2], 2).reshape(-1, 3)]
    faces.append(np.stack([np.full(N, pole), gid[0, c0[0]], gid[0, c1[0]]], -1))
    # the mouth pocket continues the upper lip downwards into the lower lip copies
    inner = [gid[r_mouth, mouth_cols % N]] + list(cavity) + [mouth_dup]
    faces.append(_pocket_faces(np.arange(-j_m, j_m + 1), gid[r_mouth, (-j_m) % N], gid[r_mouth, j_m], inner))
    # eye sockets: a sac behind each eyeball joins the upper lid edge to the lower one, so
    # the skin is closed there and an oblique view never looks into the head
    sacs = []
    nxt = n_skin
    pos, dirs = list(pos), list(dirs)
    for e, sign in enumerate((1, -1)):
        cols_e = sign * eye_cols_l
        up_ids, lo_ids = gid[r_eye, cols_e % N], eye_dup[e]
        ring = _eye_sac(np.asarray(pos)[up_ids], np.asarray(pos)[lo_ids], centres[e])
        ids = nxt + np.arange(ring.shape[0] * ring.shape[1]).reshape(ring.shape[:2])
        nxt += ids.size
        pos += list(ring.reshape(-1, 3))
        dirs += list(np.repeat(d[r_eye, cols_e % N][None], ring.shape[0], 0).reshape(-1, 3))
        rings = [up_ids] + list(ids) + [lo_ids]
        corner_a, corner_b = gid[r_eye, (sign * j_in) % N], gid[r_eye, (sign * j_out) % N]
        if sign < 0:  # walk the columns in increasing order, as the grid does
            rings = [r[::-1] for r in rings]
            corner_a, corner_b = corner_b, corner_a
        c_lo = min(sign * j_in, sign * j_out)
        faces.append(_pocket_faces(np.arange(c_lo, c_lo + j_out - j_in + 1), corner_a, corner_b, rings))
        sacs.append(ids)
    pos, dirs = np.array(pos), np.array(dirs)
    ref = np.concatenate([ref, pos[n_skin:]])
    faces = np.concatenate(faces).astype(np.int64)
    return Skin(pos, ref, faces, cell_faces, gid, top_ids, row_y, phi, dirs, r_eye, r_mouth, (j_in, j_out),
                 j_m, mouth_dup, eye_dup, cavity, np.stack(sacs), pole, centres)


def _pocket_faces(cols: np.ndarray, corner_a: int, corner_b: int, rings: list[np.ndarray]) -> np.ndarray:
    """Triangles of a pocket hanging from a slit, oriented like the grid cells it continues.

    ``cols``: the slit's signed columns from corner a to corner b (increasing); ``rings``:
    vertex ids of the interior columns, from the upper edge (first) to the lower copies (last).
    """
    ring_ids = np.array([np.concatenate([[corner_a], r, [corner_b]]) for r in rings])
    tris = []
    for k in range(ring_ids.shape[0] - 1):
        for i, c in enumerate(cols[:-1]):
            a, b, cc, dd = ring_ids[k, i], ring_ids[k, i + 1], ring_ids[k + 1, i], ring_ids[k + 1, i + 1]
            pair = [(a, cc, dd), (a, dd, b)] if c >= 0 else [(a, cc, b), (b, cc, dd)]
            tris += [t for t in pair if len(set(t)) == 3]
    return np.array(tris)


def _eye_sac(upper: np.ndarray, lower: np.ndarray, centre: np.ndarray, n_rings: int = 8) -> np.ndarray:
    """Inner rings of an eye socket, (n_rings-1, K, 3): from the upper lid edge round the back of the
    eyeball to the lower lid edge, between the eyeball and the skin (radius LID_GAP/2 outside it)."""
    u, l = upper - centre, lower - centre
    ru, rl = np.linalg.norm(u, axis=1), np.linalg.norm(l, axis=1)
    back = np.array([0.0, 0.0, -1.0])
    out = []
    for k in range(1, n_rings):
        th = np.pi * k / n_rings
        d = np.cos(th / 2) ** 2 * u / ru[:, None] + np.sin(th / 2) ** 2 * l / rl[:, None] + 1.5 * np.sin(th) * back
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        w = np.sin(th) ** 0.5
        r = (1 - w) * (np.cos(th / 2) ** 2 * ru + np.sin(th / 2) ** 2 * rl) + w * (EYE_RADIUS + 0.5 * LID_GAP)
        out.append(centre + d * r[:, None])
    return np.array(out)


def _eyeball(centre: np.ndarray, n_lat: int = 10, n_lon: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A UV sphere with its pole looking forward (+z): (Ve, 3) vertices, (Fe, 3) outward faces."""
    th = np.pi * np.arange(1, n_lat) / n_lat
    lam = 2 * np.pi * np.arange(n_lon) / n_lon
    ring = np.stack([np.sin(th)[:, None] * np.cos(lam)[None], np.sin(th)[:, None] * np.sin(lam)[None],
                     np.broadcast_to(np.cos(th)[:, None], (th.size, n_lon))], -1).reshape(-1, 3)
    v = np.concatenate([[[0, 0, 1.0]], ring, [[0, 0, -1.0]]]) * EYE_RADIUS + centre
    ids = 1 + np.arange((n_lat - 1) * n_lon).reshape(n_lat - 1, n_lon)
    l0, l1 = np.arange(n_lon), (np.arange(n_lon) + 1) % n_lon
    back = len(v) - 1
    f = [np.stack([np.zeros(n_lon, int), ids[0, l0], ids[0, l1]], -1)]
    for k in range(n_lat - 2):
        f += [np.stack([ids[k, l0], ids[k + 1, l0], ids[k + 1, l1]], -1),
              np.stack([ids[k, l0], ids[k + 1, l1], ids[k, l1]], -1)]
    f.append(np.stack([ids[-1, l0], np.full(n_lon, back), ids[-1, l1]], -1))
    return v, np.concatenate(f)


def _lid_edge(gid: np.ndarray, r_eye: int, eye_cols: tuple[int, int], lower_copies: np.ndarray,
              sign: int) -> np.ndarray:
    """Vertex ids along one eye slit: the grid nodes from corner to corner, then the lower lid's copies.

    ``sign``: +1 for the left eye (+x), −1 for the right one.
    """
    j_in, j_out = eye_cols
    cols = np.arange(j_in, j_out + 1)
    return np.concatenate([gid[r_eye, (sign * cols) % N_COLS], lower_copies])


def lid_edges(skin: Skin) -> tuple[np.ndarray, np.ndarray]:
    """Vertex ids along the left and right eye slits (both lids, both corners)."""
    left = _lid_edge(skin.gid, skin.r_eye, skin.eye_cols, skin.eye_dup[0], 1)
    right = _lid_edge(skin.gid, skin.r_eye, skin.eye_cols, skin.eye_dup[1], -1)
    return left, right


def with_eyeballs(skin: Skin) -> tuple[np.ndarray, np.ndarray, EyeballIds]:
    """The full mesh: the skin followed by the left and right eyeballs.

    Returns:
        vertices (V, 3), faces (F, 3) int64, and each eyeball's vertex ids. The right eyeball
        mirrors the left one vertex for vertex, so the mesh stays left/right symmetric.
    """
    n_skin = skin.positions.shape[0]
    balls, ball_faces, ball_ids = [], [], []
    offset = n_skin
    for e in range(2):
        bv, bf = _eyeball(skin.eye_centres[0])
        if e == 1:  # the right eye mirrors the left one, vertex for vertex
            bv = bv * np.array([-1.0, 1.0, 1.0])
            bf = bf[:, ::-1]
        balls.append(bv)
        ball_faces.append(bf + offset)
        ball_ids.append(np.arange(offset, offset + bv.shape[0]))
        offset += bv.shape[0]
    vertices = np.concatenate([skin.positions] + balls)
    faces = np.concatenate([skin.faces] + ball_faces)
    return vertices, faces, (ball_ids[0], ball_ids[1])
