"""Writers for FLAME-layout files with generated bases (shared by tests and benchmarks).

The real FLAME model is licensed and never available here; the topology (vertices,
faces) and the landmark embeddings are real (../shared/data/ringnet), the bases are
random but FLAME-shaped, which is all a check of the maths needs. The files are written
the way the real ones are (a Python 2 pickle with chumpy objects for FLAME 2020, an
``np.save``'d dict holding torch tensors for DECA's/SMIRK's landmark embedding), so the
loaders are tested on what users have.
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
import types
from contextlib import contextmanager
from pathlib import Path

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


class _Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: text and bytes as (SHORT_)BINSTRING (Python 2's ``str``),
    ``__builtin__``/``copy_reg`` names (``fix_imports``), and NumPy dtypes reduced as Python 2's
    NumPy did (``dtype('f8', 0, 1)``). Check with ``pickletools.dis``."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("ascii")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def reducer_override(self, obj):
        if isinstance(obj, np.dtype):
            fn, args, state = obj.__reduce__()
            return fn, (args[0], 0, 1), state
        return NotImplemented


def dump_py2(obj, path) -> None:
    """Pickle ``obj`` as Python 2's pickle (protocol 2) would have written it."""
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2, fix_imports=True).dump(obj)
    with open(path, "wb") as fh:
        fh.write(buf.getvalue())


class _Ch:
    """Pickles as ``chumpy.ch.Ch`` does: NEWOBJ of the class, then chumpy's ``__getstate__`` —
    the instance dict less ``_parents`` and ``_cache``."""

    def __init__(self, x):
        self.x = x
        self._dirty_vars = set()
        self._itr = None
        self._depends_on_deps = {}
        self._make_dense = False
        self._make_sparse = False


class _CscMatrix:
    """Pickles as SciPy's ``csc_matrix`` did then: NEWOBJ of ``scipy.sparse.csc.csc_matrix``
    with the instance dict (``_shape``, ``maxprint``, ``indices``, ``indptr``, ``data``)."""

    def __init__(self, m: sp.csc_matrix):
        self._shape = m.shape
        self.maxprint = 50
        self.indices = m.indices.astype(np.int32)
        self.indptr = m.indptr.astype(np.int32)
        self.data = m.data.astype(np.float64)


@contextmanager
def _registered(classes: dict):
    """Register fake classes under their real dotted names (and any missing parent package)
    while pickling, as pickle looks a class up by ``sys.modules[module].name``."""
    saved = {}

    def put(name, module):
        saved.setdefault(name, sys.modules.get(name))
        sys.modules[name] = module

    try:
        for dotted, cls in classes.items():
            module, name = dotted.rsplit(".", 1)
            parts = module.split(".")
            for i in range(1, len(parts)):
                if ".".join(parts[:i]) not in sys.modules:
                    put(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
            mod = types.ModuleType(module)
            setattr(mod, name, cls)
            cls.__module__, cls.__qualname__, cls.__name__ = module, name, name
            put(module, mod)
        yield
    finally:
        for m, v in saved.items():
            if v is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = v


CH_KEYS = ("v_template", "shapedirs", "posedirs", "weights", "J")


def dump_chumpy_wrapped(layout: dict, path) -> None:
    """Write ``layout`` as FLAME 2020's ``generic_model.pkl`` is written: a Python 2 pickle
    (protocol 2) with arrays wrapped in ``chumpy.ch.Ch`` objects (``CH_KEYS``) carrying chumpy's
    full state, the regressor a ``scipy.sparse.csc.csc_matrix``, ``bs_style``/``bs_type`` text."""
    with _registered({"chumpy.ch.Ch": _Ch, "scipy.sparse.csc.csc_matrix": _CscMatrix}):
        out = {}
        for k, v in layout.items():
            if k == "J_regressor":
                out[k] = _CscMatrix(sp.csc_matrix(v))
            elif k in CH_KEYS:
                out[k] = _Ch(v)
            else:
                out[k] = v
        if "J" not in out:  # FLAME 2020 stores the template's joints too
            out["J"] = _Ch(np.asarray(sp.csc_matrix(layout["J_regressor"]) @ layout["v_template"]))
        dump_py2(out, path)


def write_landmark_embedding(static_pkl, dynamic_npy, path) -> dict:
    """DECA's/SMIRK's ``landmark_embedding.npy`` from RingNet's pair, written as the real one is:
    ``np.save`` of a dict with the static part as NumPy arrays and the dynamic part as torch
    tensors (int64 (79, 17), float32 (79, 17, 3)); pickled tensors embed a legacy-format
    ``torch.save`` blob of their storage. ``full_lmk_*`` (1, 68[, 3]) is the frontal contour
    (row 0) plus the static points here; the real file's comes from another 68-point set, and
    neither DECA's 2D landmarks nor ours read it. Returns the dict written."""
    import torch

    with open(static_pkl, "rb") as fh:
        static = pickle.load(fh, encoding="latin1")  # the shared RingNet file: trusted
    dynamic = np.load(dynamic_npy, allow_pickle=True, encoding="latin1")[()]
    dyn_idx = np.stack([np.asarray(r) for r in dynamic["lmk_face_idx"]]).astype(np.int64)
    dyn_bary = np.stack([np.asarray(r) for r in dynamic["lmk_b_coords"]])
    s_idx = np.asarray(static["lmk_face_idx"]).astype(np.int64)
    s_bary = np.asarray(static["lmk_b_coords"], dtype=np.float64)
    emb = {
        "static_lmk_faces_idx": s_idx,
        "static_lmk_bary_coords": s_bary,
        "dynamic_lmk_faces_idx": torch.from_numpy(dyn_idx),
        "dynamic_lmk_bary_coords": torch.from_numpy(dyn_bary.astype(np.float32)),
        "full_lmk_faces_idx": np.concatenate([dyn_idx[0], s_idx])[None],
        "full_lmk_bary_coords": np.concatenate([dyn_bary[0], s_bary])[None],
    }
    np.save(path, emb, allow_pickle=True)
    return emb


def write_smirk_extras(folder, n_vertices: int, n_faces: int, seed: int = 0) -> dict:
    """The rest of SMIRK's ``assets/`` with random content in the real formats: the MediaPipe
    embedding (npz: ``lmk_face_idx``, ``lmk_b_coords``, ``landmark_indices``), ``FLAME_masks.pkl``
    (a Python 2 pickle: region -> vertex indices), ``FLAME_masks_triangles.npy`` (``np.save``'d
    dict: region -> triangle indices) and the eyelid fields (``np.save``'d (V, 3)). Returns
    {name: path}."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    (folder / "mediapipe_landmark_embedding").mkdir(parents=True, exist_ok=True)
    (folder / "FLAME_masks").mkdir(parents=True, exist_ok=True)
    bary = rng.random((105, 3))
    paths = {
        "mediapipe": folder / "mediapipe_landmark_embedding" / "mediapipe_landmark_embedding.npz",
        "masks": folder / "FLAME_masks" / "FLAME_masks.pkl",
        "mask_triangles": folder / "FLAME_masks" / "FLAME_masks_triangles.npy",
        "l_eyelid": folder / "l_eyelid.npy",
        "r_eyelid": folder / "r_eyelid.npy",
    }
    np.savez(paths["mediapipe"], lmk_face_idx=rng.choice(n_faces, 105, replace=False).astype(np.uint32),
             lmk_b_coords=bary / bary.sum(1, keepdims=True),
             landmark_indices=rng.choice(478, 105, replace=False).astype(np.int64))
    regions = ["face", "eye_region", "forehead", "lips", "nose", "neck", "left_ear", "right_ear"]
    dump_py2({r: np.sort(rng.choice(n_vertices, 400, replace=False)).astype(np.int64) for r in regions},
             paths["masks"])
    tri_regions = ["neck", "right_eyeball", "right_ear", "lips", "nose", "left_ear", "eye_region", "forehead",
                   "left_eye_region", "right_eye_region", "face_clean", "cleaner_lips"]
    np.save(paths["mask_triangles"],
            {r: np.sort(rng.choice(n_faces, 300, replace=False)).astype(np.int64) for r in tri_regions},
            allow_pickle=True)
    np.save(paths["l_eyelid"], rng.normal(0, 1e-3, (n_vertices, 3)).astype(np.float32))
    np.save(paths["r_eyelid"], rng.normal(0, 1e-3, (n_vertices, 3)).astype(np.float32))
    return paths
