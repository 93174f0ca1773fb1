"""Writers for FLAME-layout files with generated bases (shared by tests and benchmarks).

The real FLAME model is licensed and never available here; the topology (vertices,
faces) and the landmark embeddings are real (../shared/data/ringnet), the bases are
random but FLAME-shaped, which is all a check of the maths needs.
"""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import scipy.sparse as sp


def make_flame_layout(v_template: np.ndarray, faces: np.ndarray, seed: int = 0) -> dict:
    """A dict in FLAME 2023's pickle layout with random bases of realistic magnitude."""
    rng = np.random.default_rng(seed)
    V = v_template.shape[0]
    shapedirs = rng.normal(0, 1e-3, (V, 3, 400))
    posedirs = rng.normal(0, 5e-3, (V, 3, 36))
    # Joints: each a sparse average of a handful of vertices, like FLAME's regressor.
    rows, cols, vals = [], [], []
    for j in range(5):
        ids = rng.choice(V, 12, replace=False)
        w = rng.random(12)
        rows += [j] * 12
        cols += list(ids)
        vals += list(w / w.sum())
    j_regressor = sp.csc_matrix((vals, (rows, cols)), shape=(5, V))
    logits = rng.normal(0, 2, (V, 5))
    weights = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    kintree = np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)
    return {
        "v_template": v_template.astype(np.float64),
        "f": faces.astype(np.uint32),
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": j_regressor,
        "weights": weights,
        "kintree_table": kintree,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


class _FakeCh:
    """Pickles as ``chumpy.ch.Ch`` with the state layout chumpy writes (``x`` + bookkeeping)."""

    def __init__(self, x):
        self.x = x
        self.dterms = ("x",)


def dump_chumpy_wrapped(layout: dict, path) -> None:
    """Write ``layout`` as FLAME 2020 does: arrays wrapped in chumpy ``Ch`` objects (protocol 2)."""
    chumpy = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")
    _FakeCh.__module__, _FakeCh.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch = _FakeCh
    chumpy.ch = ch
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules.update({"chumpy": chumpy, "chumpy.ch": ch})
    try:
        wrapped = {k: (_FakeCh(v) if k in ("v_template", "shapedirs", "posedirs", "weights") else v)
                   for k, v in layout.items()}
        with open(path, "wb") as fh:
            pickle.dump(wrapped, fh, protocol=2)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
