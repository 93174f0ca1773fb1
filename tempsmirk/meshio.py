"""Small mesh file readers/writers (PLY, OBJ) in NumPy, with no extra dependency.

Outputs are written atomically (temporary file + rename) so a crash never leaves
a half-written mesh behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tempsmirk.atomic import atomic_write_bytes

__all__ = ["read_ply", "write_ply", "write_obj"]

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


def read_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh from a PLY file (ASCII or binary little/big endian).

    Returns:
        vertices: (V, 3) float32
        faces: (F, 3) int64 (every face must be a triangle)
    """
    path = Path(path)
    raw = path.read_bytes()
    end = raw.find(b"end_header")
    if not raw.startswith(b"ply") or end < 0:
        raise ValueError(f"{path}: expected a PLY file (starting with 'ply' and an 'end_header' line)")
    body_start = raw.index(b"\n", end) + 1
    header = raw[:end].decode("ascii", errors="replace").splitlines()
    fmt, elements = None, []
    for line in header:
        tok = line.split()
        if not tok:
            continue
        if tok[0] == "format":
            fmt = tok[1]
        elif tok[0] == "element":
            elements.append([tok[1], int(tok[2]), []])
        elif tok[0] == "property" and elements:
            elements[-1][2].append(tok[1:])
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise ValueError(f"{path}: unsupported PLY format {fmt!r}")
    endian = ">" if fmt == "binary_big_endian" else "<"
    vertices = faces = None
    if fmt == "ascii":
        lines = raw[body_start:].decode("ascii").split("\n")
        pos = 0
        for name, count, props in elements:
            rows = lines[pos:pos + count]
            pos += count
            if name == "vertex":
                data = np.array([r.split() for r in rows], dtype=np.float64)
                names = [p[-1] for p in props]
                vertices = data[:, [names.index(a) for a in "xyz"]].astype(np.float32)
            elif name == "face":
                parsed = [list(map(int, r.split())) for r in rows]
                faces = _triangles(path, parsed)
    else:
        buf, off = raw[body_start:], 0
        for name, count, props in elements:
            if props and props[0][0] == "list":
                cnt_t, idx_t = _PLY_TYPES[props[0][1]], _PLY_TYPES[props[0][2]]
                if len(props) != 1:
                    raise ValueError(f"{path}: element {name!r} mixes lists and scalars; not supported")
                # Fast path: every face a triangle.
                rec = np.dtype([("n", endian + cnt_t), ("i", endian + idx_t, (3,))])
                arr = np.frombuffer(buf, dtype=rec, count=count, offset=off)
                if not np.all(arr["n"] == 3):
                    raise ValueError(f"{path}: expected triangles only; found polygons with other vertex counts")
                off += rec.itemsize * count
                if name == "face":
                    faces = arr["i"].astype(np.int64)
            else:
                rec = np.dtype([(p[-1], endian + _PLY_TYPES[p[0]]) for p in props])
                arr = np.frombuffer(buf, dtype=rec, count=count, offset=off)
                off += rec.itemsize * count
                if name == "vertex":
                    vertices = np.stack([arr[a] for a in "xyz"], axis=1).astype(np.float32)
    if vertices is None or faces is None:
        raise ValueError(f"{path}: expected 'vertex' and 'face' elements")
    return vertices, faces


def _triangles(path: Path, rows: list[list[int]]) -> np.ndarray:
    if any(r[0] != 3 for r in rows):
        raise ValueError(f"{path}: expected triangles only; found polygons with other vertex counts")
    return np.array([r[1:4] for r in rows], dtype=np.int64)


def write_ply(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a binary little-endian PLY. vertices (V, 3) float, faces (F, 3) int."""
    vertices = np.asarray(vertices, dtype="<f4")
    faces = np.asarray(faces)
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    ).encode("ascii")
    rec = np.empty(len(faces), dtype=[("n", "u1"), ("i", "<i4", (3,))])
    rec["n"] = 3
    rec["i"] = faces
    atomic_write_bytes(path, header + vertices.tobytes() + rec.tobytes())


def write_obj(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a Wavefront OBJ (1-based indices). vertices (V, 3), faces (F, 3)."""
    v = "\n".join(f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(vertices, dtype=np.float64))
    f = "\n".join(f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces, dtype=np.int64))
    atomic_write_bytes(path, (v + "\n" + f + "\n").encode("ascii"))
