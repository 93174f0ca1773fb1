"""Loading FLAME files safely: a restricted unpickler and validated array bundles.

FLAME 2020 pickles wrap their arrays in ``chumpy.ch.Ch`` objects. chumpy is
unmaintained and breaks on modern NumPy, and a pickle can run arbitrary code, so
every pickle here goes through :class:`RestrictedUnpickler`: it resolves only an
allow-list of NumPy/SciPy constructors and maps any ``chumpy`` class to an inert
stub that just keeps its state (whose ``x`` entry is the array). Any other global
is refused *before* it is imported or called.

Every loader accepts a path or an already-loaded mapping in the same layout (the
built-in head hands over mappings), and validates keys and shapes with errors that
name the file, the key, what was expected and what was found.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np
import scipy.sparse as sp

__all__ = [
    "FlameFileError",
    "UnsafePickleError",
    "RestrictedUnpickler",
    "restricted_load",
    "load_npy_restricted",
    "FlameArrays",
    "LandmarkEmbedding",
    "DynamicEmbedding",
    "MediaPipeEmbedding",
    "load_flame_model",
    "load_static_embedding",
    "load_dynamic_embedding",
    "load_mediapipe_embedding",
    "load_eyelids",
    "load_masks",
]

Source = Union[str, os.PathLike, Mapping[str, Any]]

N_DYNAMIC_ROWS = 79  # one contour per whole degree of yaw in [-39, 39]
N_CONTOUR = 17
N_STATIC = 51
N_MEDIAPIPE = 105


class FlameFileError(ValueError):
    """A FLAME-layout file or mapping is missing keys or has wrong shapes."""


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global outside the allow-list; nothing was executed."""


class _ChumpyStub:
    """Inert stand-in for chumpy objects: keeps the pickled state, runs nothing."""

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state

    @property
    def state(self) -> Any:
        return self.__dict__.get("_state")


_SPARSE = {
    "csc_matrix": sp.csc_matrix,
    "csr_matrix": sp.csr_matrix,
    "coo_matrix": sp.coo_matrix,
}
_SPARSE_MODULES = {
    "scipy.sparse", "scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr",
    "scipy.sparse._csr", "scipy.sparse.coo", "scipy.sparse._coo",
}
_NUMPY_CORE = {"numpy.core.multiarray", "numpy._core.multiarray"}
_NUMPY_NUMERIC = {"numpy.core.numeric", "numpy._core.numeric"}


def _resolve_allowed(module: str, name: str) -> Any:
    """Return the object for an allowed global, or ``None`` if it is not allowed."""
    import copyreg

    if module.split(".")[0] == "chumpy":
        return _ChumpyStub
    if module in _NUMPY_CORE and name in ("_reconstruct", "scalar"):
        return getattr(np.core.multiarray, name)
    if module in _NUMPY_NUMERIC and name == "_frombuffer":
        return np.core.numeric._frombuffer
    if module == "numpy" and name in ("ndarray", "dtype"):
        return getattr(np, name)
    if module in _SPARSE_MODULES and name in _SPARSE:
        return _SPARSE[name]
    if module == "copyreg" and name == "_reconstructor":
        return copyreg._reconstructor
    if module == "builtins" and name == "object":
        return object
    if module == "_codecs" and name == "encode":
        # Protocol-2 pickles written by Python 3 spell bytes as _codecs.encode(str, 'latin1').
        import _codecs

        return _codecs.encode
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only NumPy/SciPy array constructors and chumpy stubs."""

    def find_class(self, module: str, name: str) -> Any:
        import _compat_pickle

        # Python 2 pickles name e.g. copy_reg/__builtin__; map as pickle itself would.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        obj = _resolve_allowed(module, name)
        if obj is None:
            raise UnsafePickleError(
                f"refusing to load a pickle that references '{module}.{name}': only NumPy/SciPy "
                "arrays (and chumpy-wrapped arrays) are allowed in FLAME files. Nothing was executed; "
                "if this file is genuine, re-save it with plain NumPy arrays."
            )
        return obj


def restricted_load(source: str | os.PathLike | bytes) -> Any:
    """Unpickle a file path or bytes with :class:`RestrictedUnpickler` (latin1 for Python 2 pickles)."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def load_npy_restricted(path: str | os.PathLike) -> Any:
    """Read a ``.npy`` file; object arrays go through the restricted unpickler.

    ``np.load(..., allow_pickle=True)`` would unpickle with no restriction; this
    parses the header itself and only hands the payload of object arrays to
    :class:`RestrictedUnpickler`. A 0-d object array returns its single item.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
        except ValueError as err:
            raise FlameFileError(f"{path}: expected a .npy file ({err})") from None
        header_reader = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if header_reader is None:
            raise FlameFileError(f"{path}: unsupported .npy version {version}")
        shape, fortran, dtype = header_reader(fh)
        if dtype.hasobject:
            arr = RestrictedUnpickler(fh, encoding="latin1").load()
            return arr[()] if isinstance(arr, np.ndarray) and arr.shape == () else arr
    return np.load(path, allow_pickle=False)


def _to_array(value: Any, where: str, key: str) -> np.ndarray | sp.spmatrix:
    if isinstance(value, _ChumpyStub):
        state = value.state
        if not isinstance(state, dict) or "x" not in state:
            raise FlameFileError(
                f"{where}: '{key}' is a chumpy expression without a plain 'x' array; "
                "expected a chumpy-wrapped array (Ch) — re-save the model with NumPy arrays"
            )
        return np.asarray(state["x"])
    if sp.issparse(value):
        return value
    return np.asarray(value)


def _mapping(source: Source, what: str) -> tuple[Mapping[str, Any], str]:
    if isinstance(source, Mapping):
        return source, f"<{what} mapping>"
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"expected the {what} at {path}, but there is no such file")
    if path.suffix == ".npy":
        obj = load_npy_restricted(path)
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            obj = {k: npz[k] for k in npz.files}
    else:
        obj = restricted_load(path)
    if not isinstance(obj, Mapping):
        raise FlameFileError(f"{path}: expected a dict ({what}); found {type(obj).__name__}")
    return obj, str(path)


def _require(m: Mapping[str, Any], keys: list[str], where: str) -> None:
    missing = [k for k in keys if k not in m]
    if missing:
        raise FlameFileError(
            f"{where}: missing key(s) {missing}; found keys {sorted(map(str, m.keys()))}"
        )


def _check_shape(arr: Any, expected: tuple, where: str, key: str) -> None:
    """``expected`` holds ints or None (any size)."""
    shape = tuple(arr.shape)
    ok = len(shape) == len(expected) and all(e is None or e == s for e, s in zip(expected, shape))
    if not ok:
        exp = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise FlameFileError(f"{where}: '{key}' should have shape {exp}; found {shape}")


@dataclass(frozen=True)
class FlameArrays:
    """A validated FLAME model in plain NumPy (float64 / int64).

    v_template: (V, 3); faces: (F, 3) int64; shapedirs: (V, 3, K) with shape
    components first and expression components from index ``n_shape_total``;
    posedirs: (V, 3, 9·(J−1)); j_regressor: (J, V) dense; weights: (V, J);
    parents: (J,) int64 with parents[0] = −1.
    """

    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    j_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    source: str


def load_flame_model(source: Source) -> FlameArrays:
    """Load and validate a FLAME model (2020 chumpy-wrapped, 2023, or a mapping in that layout)."""
    m, where = _mapping(source, "FLAME model")
    _require(m, ["v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table"], where)
    a = {k: _to_array(m[k], where, k) for k in
         ["v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table"]}
    v = a["v_template"]
    _check_shape(v, (None, 3), where, "v_template")
    V = v.shape[0]
    kt = np.asarray(a["kintree_table"])
    _check_shape(kt, (2, None), where, "kintree_table")
    J = kt.shape[1]
    _check_shape(a["f"], (None, 3), where, "f")
    faces = np.asarray(a["f"]).astype(np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= V):
        raise FlameFileError(f"{where}: 'f' indexes vertices outside [0, {V}); found range "
                             f"[{faces.min()}, {faces.max()}]")
    _check_shape(a["shapedirs"], (V, 3, None), where, "shapedirs")
    _check_shape(a["posedirs"], (V, 3, 9 * (J - 1)), where, "posedirs")
    jr = a["J_regressor"]
    jr = jr.toarray() if sp.issparse(jr) else np.asarray(jr)
    _check_shape(jr, (J, V), where, "J_regressor")
    _check_shape(a["weights"], (V, J), where, "weights")
    parents = kt[0].astype(np.int64)
    parents[0] = -1  # FLAME stores the root's parent as uint32 max
    if np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, J)):
        raise FlameFileError(f"{where}: 'kintree_table' parents must precede their children; found {parents}")
    return FlameArrays(
        v_template=v.astype(np.float64),
        faces=faces,
        shapedirs=np.asarray(a["shapedirs"], dtype=np.float64),
        posedirs=np.asarray(a["posedirs"], dtype=np.float64),
        j_regressor=jr.astype(np.float64),
        weights=np.asarray(a["weights"], dtype=np.float64),
        parents=parents,
        source=where,
    )


@dataclass(frozen=True)
class LandmarkEmbedding:
    """Landmarks as points on triangles. face_idx: (L,) int64; bary: (L, 3) float64."""

    face_idx: np.ndarray
    bary: np.ndarray


@dataclass(frozen=True)
class DynamicEmbedding:
    """Yaw-dependent jaw contour. face_idx: (79, 17) int64; bary: (79, 17, 3).

    Row r is for yaw r° (0 ≤ r ≤ 39) and −(r−39)° (40 ≤ r ≤ 78); see
    :func:`tempsmirk.flame.landmarks.contour_row`.
    """

    face_idx: np.ndarray
    bary: np.ndarray


@dataclass(frozen=True)
class MediaPipeEmbedding:
    """FLAME points matching MediaPipe FaceMesh points.

    face_idx: (L,) int64; bary: (L, 3); landmark_indices: (L,) int64 into the 478 MediaPipe points.
    """

    face_idx: np.ndarray
    bary: np.ndarray
    landmark_indices: np.ndarray


def _embedding(m: Mapping[str, Any], where: str, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    _require(m, ["lmk_face_idx", "lmk_b_coords"], where)
    idx = np.asarray(m["lmk_face_idx"]).astype(np.int64).reshape(-1)
    bary = np.asarray(m["lmk_b_coords"], dtype=np.float64)
    _check_shape(bary, (idx.shape[0] if n is None else n, 3), where, "lmk_b_coords")
    if n is not None and idx.shape[0] != n:
        raise FlameFileError(f"{where}: 'lmk_face_idx' should hold {n} entries; found {idx.shape[0]}")
    return idx, bary


def load_static_embedding(source: Source) -> LandmarkEmbedding:
    """The 51 inner-face landmarks (iBUG 17..67), e.g. ``flame_static_embedding.pkl``."""
    m, where = _mapping(source, "static landmark embedding")
    idx, bary = _embedding(m, where, N_STATIC)
    return LandmarkEmbedding(idx, bary)


def load_dynamic_embedding(source: Source) -> DynamicEmbedding:
    """The 79 × 17 yaw-dependent contour, e.g. ``flame_dynamic_embedding.npy``."""
    m, where = _mapping(source, "dynamic landmark embedding")
    _require(m, ["lmk_face_idx", "lmk_b_coords"], where)
    try:
        idx = np.stack([np.asarray(r) for r in m["lmk_face_idx"]]).astype(np.int64)
        bary = np.stack([np.asarray(r, dtype=np.float64) for r in m["lmk_b_coords"]])
    except ValueError as err:
        raise FlameFileError(f"{where}: contour rows have unequal lengths ({err})") from None
    _check_shape(idx, (N_DYNAMIC_ROWS, N_CONTOUR), where, "lmk_face_idx")
    _check_shape(bary, (N_DYNAMIC_ROWS, N_CONTOUR, 3), where, "lmk_b_coords")
    return DynamicEmbedding(idx, bary)


def load_mediapipe_embedding(source: Source) -> MediaPipeEmbedding:
    """The 105 MediaPipe-to-FLAME points (``mediapipe_landmark_embedding.npz``)."""
    m, where = _mapping(source, "MediaPipe landmark embedding")
    _require(m, ["lmk_face_idx", "lmk_b_coords", "landmark_indices"], where)
    idx, bary = _embedding(m, where, None)
    lmi = np.asarray(m["landmark_indices"]).astype(np.int64).reshape(-1)
    if lmi.shape[0] != idx.shape[0] or lmi.min(initial=0) < 0 or lmi.max(initial=0) >= 478:
        raise FlameFileError(
            f"{where}: 'landmark_indices' should hold {idx.shape[0]} indices into MediaPipe's 478 "
            f"points; found {lmi.shape[0]} in [{lmi.min(initial=0)}, {lmi.max(initial=0)}]"
        )
    return MediaPipeEmbedding(idx, bary, lmi)


def load_eyelids(source: Source | tuple[str | os.PathLike, str | os.PathLike], n_vertices: int) -> np.ndarray:
    """The two eyelid displacement fields, stacked (2, V, 3) as (left, right).

    ``source`` is a folder holding ``l_eyelid.npy`` and ``r_eyelid.npy`` (SMIRK's
    layout), a ``(left, right)`` pair of .npy paths, an .npz or mapping with keys
    ``l_eyelid`` / ``r_eyelid``.
    """
    if isinstance(source, tuple):
        left, right = (np.load(p, allow_pickle=False) for p in source)
        where = f"{source[0]}, {source[1]}"
    elif not isinstance(source, Mapping) and Path(source).is_dir():
        d = Path(source)
        paths = [d / "l_eyelid.npy", d / "r_eyelid.npy"]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"expected eyelid blendshapes {missing} in {d}")
        left, right = (np.load(p, allow_pickle=False) for p in paths)
        where = str(d)
    else:
        m, where = _mapping(source, "eyelid blendshapes")
        _require(m, ["l_eyelid", "r_eyelid"], where)
        left, right = np.asarray(m["l_eyelid"]), np.asarray(m["r_eyelid"])
    for key, arr in (("l_eyelid", left), ("r_eyelid", right)):
        arr = np.asarray(arr)
        if arr.ndim == 3 and arr.shape[0] == 1:  # SMIRK stores (1, V, 3) in some exports
            arr = arr[0]
        _check_shape(arr, (n_vertices, 3), where, key)
    return np.stack([np.asarray(left).reshape(n_vertices, 3), np.asarray(right).reshape(n_vertices, 3)])


def load_masks(source: Source, n_vertices: int) -> dict[str, np.ndarray]:
    """Vertex-index region masks (``FLAME_masks.pkl`` layout): name -> (K,) int64."""
    m, where = _mapping(source, "region masks")
    out = {}
    for name, value in m.items():
        idx = np.asarray(value).astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= n_vertices):
            raise FlameFileError(f"{where}: mask '{name}' indexes vertices outside [0, {n_vertices})")
        out[str(name)] = idx
    return out


