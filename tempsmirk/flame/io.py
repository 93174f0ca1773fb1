"""Loading FLAME files safely: a restricted unpickler and validated array bundles.

FLAME 2020 pickles wrap their arrays in ``chumpy.ch.Ch`` objects. chumpy is
unmaintained and breaks on modern NumPy, and a pickle can run arbitrary code, so
every pickle here goes through :class:`RestrictedUnpickler`: it resolves only an
allow-list of NumPy constructors and harmless builtins (``set``, ``object``,
``collections.OrderedDict``), maps any ``chumpy`` class and SciPy's sparse matrices
to inert stubs that just keep their state, and rebuilds torch tensors itself
(DECA's and SMIRK's ``landmark_embedding.npy`` holds some): the embedded storage is
read with ``torch.load(weights_only=True)`` and every size is bounds-checked. Any
other global is refused *before* it is imported or called.

Every loader accepts a path or an already-loaded mapping in the same layout (the
built-in head hands over mappings), and validates keys and shapes with errors that
name the file, the key, what was expected and what was found. Which file a user's
folder holds under which name is :mod:`tempsmirk.flame.assets`' business.
"""

from __future__ import annotations

import collections
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
    "load_landmark_embedding",
    "load_mediapipe_embedding",
    "load_eyelids",
    "load_masks",
    "load_mask_triangles",
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
    """Inert stand-in for chumpy objects: keeps the pickled state, runs nothing.

    A FLAME 2020 ``Ch`` state is chumpy's ``__getstate__``: ``x`` (the array),
    ``_dirty_vars`` (a set), ``_itr``, ``_depends_on_deps``, ``_make_dense``,
    ``_make_sparse``; only ``x`` is used.
    """

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state

    @property
    def state(self) -> Any:
        return self.__dict__.get("_state")


class _SparseStub:
    """Inert stand-in for a pickled SciPy sparse matrix: keeps the state (``data``, ``indices``,
    ``indptr``, ``_shape``; ``row``/``col`` or ``coords`` for COO); :func:`_to_array` builds
    and fully checks the matrix from plain arrays, so no pickled attribute reaches SciPy."""

    format = ""

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state

    @property
    def state(self) -> Any:
        return self.__dict__.get("_state")


_SPARSE = {
    name: type(f"_{name}_stub", (_SparseStub,), {"format": name[:3]})
    for name in ("csc_matrix", "csr_matrix", "coo_matrix")
}
_SPARSE_MODULES = {
    "scipy.sparse", "scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr",
    "scipy.sparse._csr", "scipy.sparse.coo", "scipy.sparse._coo",
}
_NUMPY_CORE = {"numpy.core.multiarray", "numpy._core.multiarray"}
_NUMPY_NUMERIC = {"numpy.core.numeric", "numpy._core.numeric"}


class _TorchStorage:
    """A storage read from an embedded ``torch.save`` blob; only :func:`_rebuild_tensor` uses it."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage


def _load_storage(data: Any) -> _TorchStorage:
    """Stands in for ``torch.storage._load_from_bytes``: the blob (legacy or zip ``torch.save``
    format) is read with ``torch.load(weights_only=True)``, which runs no code from it."""
    import torch

    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError(f"a torch storage should be rebuilt from bytes; found {type(data).__name__}")
    try:
        storage = torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
    except Exception as err:  # torch's weights-only unpickler refuses anything but tensors and storages
        raise UnsafePickleError(f"an embedded torch storage did not load with weights_only=True ({err}); "
                                "nothing was executed") from None
    if not isinstance(storage, torch.storage.TypedStorage):
        raise UnsafePickleError(f"an embedded torch blob should hold a storage; found {type(storage).__name__}")
    return _TorchStorage(storage)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                    hooks: Any = None, metadata: Any = None) -> Any:
    """Stands in for ``torch._utils._rebuild_tensor_v2``: checks every argument — torch itself
    does not bounds-check a view of a storage — and returns a CPU tensor that owns its memory."""
    import torch

    if not isinstance(storage, _TorchStorage):
        raise UnsafePickleError(f"a tensor should be rebuilt from an embedded torch storage; found "
                                f"{type(storage).__name__}")
    ok = (_is_int(offset) and offset >= 0 and isinstance(size, tuple) and isinstance(stride, tuple)
          and len(size) == len(stride) and all(_is_int(n) and n >= 0 for n in size)
          and all(_is_int(k) and k >= 0 for k in stride) and isinstance(requires_grad, bool))
    if not ok:
        raise UnsafePickleError(f"malformed tensor layout: offset {offset!r}, size {size!r}, stride {stride!r}")
    if any(x is not None and not (isinstance(x, dict) and not x) for x in (hooks, metadata)):
        # backward hooks would be code; tensor metadata (conjugate/negative bits) is in no asset
        raise UnsafePickleError("refusing a pickled tensor with backward hooks or metadata; nothing was executed")
    s = storage.storage
    u = s._untyped_storage  # (TypedStorage's public size() warns that the class is deprecated)
    n = u.nbytes() // torch.empty((), dtype=s.dtype).element_size()
    last = offset + sum((a - 1) * k for a, k in zip(size, stride)) if all(size) else offset - 1
    if last >= n:
        raise FlameFileError(f"a pickled tensor of size {size} (stride {stride}, offset {offset}) reaches "
                             f"element {last} of a storage of {n}: the file is damaged")
    return torch.empty(0, dtype=s.dtype).set_(u, offset, size, stride).clone()


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
    if module == "builtins" and name in ("object", "set"):
        # chumpy's state holds a set (_dirty_vars); set(iterable) only iterates and hashes
        # objects this unpickler has already built.
        return {"object": object, "set": set}[name]
    if module == "collections" and name == "OrderedDict":
        return collections.OrderedDict  # a pickled tensor's (empty) backward hooks
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
        return _rebuild_tensor
    if module == "torch.storage" and name == "_load_from_bytes":
        return _load_storage
    if module == "_codecs" and name == "encode":
        # Protocol-2 pickles written by Python 3 spell bytes as _codecs.encode(str, 'latin1').
        import _codecs

        return _codecs.encode
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only NumPy array constructors, harmless builtins and inert stubs."""

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
                "arrays, torch tensors and chumpy-wrapped arrays are allowed in FLAME files. Nothing "
                "was executed; if this file is genuine, re-save it with plain NumPy arrays."
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


def _sparse_from_state(stub: _SparseStub, where: str, key: str) -> sp.spmatrix:
    """A SciPy matrix built from a sparse stub's plain arrays, with every index checked."""
    st = stub.state if isinstance(stub.state, dict) else {}
    shape = st.get("_shape", st.get("shape"))
    try:
        shape = tuple(int(n) for n in shape)
        if stub.format == "coo":
            row, col = st["coords"] if "coords" in st else (st["row"], st["col"])
            m = sp.coo_matrix((np.asarray(st["data"]), (np.asarray(row), np.asarray(col))), shape=shape)
        else:
            cls = sp.csc_matrix if stub.format == "csc" else sp.csr_matrix
            m = cls((np.asarray(st["data"]), np.asarray(st["indices"]), np.asarray(st["indptr"])), shape=shape)
            m.check_format(full_check=True)
    except (KeyError, TypeError, ValueError) as err:
        raise FlameFileError(f"{where}: '{key}' is a damaged {stub.format} sparse matrix ({err}); "
                             f"found state keys {sorted(map(str, st))}") from None
    return m


def _to_array(value: Any, where: str, key: str) -> np.ndarray | sp.spmatrix:
    """Plain NumPy (or a checked SciPy sparse matrix) from a chumpy stub, a sparse stub, a torch
    tensor or anything ``np.asarray`` takes."""
    if isinstance(value, _ChumpyStub):
        state = value.state
        if not isinstance(state, dict) or "x" not in state or isinstance(state["x"], _ChumpyStub):
            raise FlameFileError(
                f"{where}: '{key}' is a chumpy expression without a plain 'x' array; "
                "expected a chumpy-wrapped array (Ch) — re-save the model with NumPy arrays"
            )
        return _to_array(state["x"], where, key)
    if isinstance(value, _SparseStub):
        return _sparse_from_state(value, where, key)
    if sp.issparse(value):
        return value
    import torch

    if isinstance(value, torch.Tensor):  # e.g. from _rebuild_tensor
        return value.detach().cpu().numpy()
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


def load_landmark_embedding(source: Source) -> tuple[LandmarkEmbedding, DynamicEmbedding]:
    """The 68 landmarks from DECA's and SMIRK's single ``landmark_embedding.npy``.

    That file is an ``np.save``'d dict: ``static_lmk_faces_idx`` (51,) and
    ``static_lmk_bary_coords`` (51, 3) as NumPy arrays, ``dynamic_lmk_faces_idx`` (79, 17)
    and ``dynamic_lmk_bary_coords`` (79, 17, 3) as torch tensors, the same numbers as
    RingNet's pair (:func:`load_static_embedding`, :func:`load_dynamic_embedding`). Its
    ``full_lmk_*`` entries (a fixed 68-point set DECA uses for 3D landmarks) are not read.
    The tensors are rebuilt by the restricted unpickler; nothing in the file runs.
    """
    m, where = _mapping(source, "landmark embedding")
    keys = ["static_lmk_faces_idx", "static_lmk_bary_coords", "dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords"]
    _require(m, keys, where)
    a = {k: _to_array(m[k], where, k) for k in keys}
    static_idx = np.asarray(a["static_lmk_faces_idx"]).reshape(-1)
    _check_shape(static_idx, (N_STATIC,), where, "static_lmk_faces_idx")
    _check_shape(a["static_lmk_bary_coords"], (N_STATIC, 3), where, "static_lmk_bary_coords")
    _check_shape(a["dynamic_lmk_faces_idx"], (N_DYNAMIC_ROWS, N_CONTOUR), where, "dynamic_lmk_faces_idx")
    _check_shape(a["dynamic_lmk_bary_coords"], (N_DYNAMIC_ROWS, N_CONTOUR, 3), where, "dynamic_lmk_bary_coords")
    static = LandmarkEmbedding(static_idx.astype(np.int64), np.asarray(a["static_lmk_bary_coords"], np.float64))
    dynamic = DynamicEmbedding(np.asarray(a["dynamic_lmk_faces_idx"]).astype(np.int64),
                               np.asarray(a["dynamic_lmk_bary_coords"], np.float64))
    return static, dynamic


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


def _index_sets(m: Mapping[str, Any], where: str, n: int, what: str) -> dict[str, np.ndarray]:
    """name -> (K,) int64 indices, each checked to lie in [0, n)."""
    out = {}
    for name, value in m.items():
        idx = np.asarray(_to_array(value, where, str(name))).astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise FlameFileError(f"{where}: region '{name}' indexes {what} outside [0, {n}); found "
                                 f"[{idx.min()}, {idx.max()}]")
        out[str(name)] = idx
    return out


def load_masks(source: Source, n_vertices: int) -> dict[str, np.ndarray]:
    """Vertex-index region masks (``FLAME_masks.pkl`` layout): name -> (K,) int64."""
    m, where = _mapping(source, "region masks")
    return _index_sets(m, where, n_vertices, "vertices")


def load_mask_triangles(source: Source, n_faces: int) -> dict[str, np.ndarray]:
    """Triangle-index region masks (SMIRK's ``FLAME_masks_triangles.npy``): name -> (K,) int64.

    The file is an ``np.save``'d dict from region name (``face_clean``, ``cleaner_lips``,
    ``eye_region``, ``left_eye_region``, ``right_eye_region``, ``forehead``, ``lips``,
    ``nose``, ``neck``, ``left_ear``, ``right_ear``, ``right_eyeball``, ...) to the indices of
    the FLAME triangles in that region; SMIRK's masking weighs the triangles it samples by
    region (``load_probabilities_per_FLAME_triangle`` in its ``src/utils/masking.py``).
    """
    m, where = _mapping(source, "triangle region masks")
    return _index_sets(m, where, n_faces, "triangles")
