"""The files users have, written as the real ones are (guide §2), through the safe loaders:
FLAME 2020's Python 2 chumpy pickle, DECA's/SMIRK's ``landmark_embedding.npy`` (torch tensors
inside), and pickles that abuse the names these files need."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
from collections import OrderedDict

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from flame_layout import _Ch, _CscMatrix, _registered, dump_py2

from tempsmirk.flame import FLAME, FlameFileError, UnsafePickleError
from tempsmirk.flame.io import (
    load_dynamic_embedding,
    load_flame_model,
    load_landmark_embedding,
    load_npy_restricted,
    load_static_embedding,
    restricted_load,
)
from tempsmirk.flame.landmarks import contour_row, rotation_yaw

pytestmark = pytest.mark.needs_shared_data

CH_STATE = {"x", "_dirty_vars", "_itr", "_depends_on_deps", "_make_dense", "_make_sparse"}


def _ops(data: bytes) -> list[tuple[str, object]]:
    return [(op.name, arg) for op, arg, _ in pickletools.genops(data)]


def _npy_payload(path) -> bytes:
    raw = path.read_bytes()
    return raw[raw.index(b"\n") + 1:]  # after the .npy header


# ---------------------------------------------------------------- FLAME 2020


def test_flame2020_standin_says_what_a_python2_file_says(flame_files):
    ops = _ops(flame_files.chumpy.read_bytes())
    assert ops[0] == ("PROTO", 2)
    assert {a for n, a in ops if n == "GLOBAL"} == {
        "chumpy.ch Ch", "__builtin__ set", "scipy.sparse.csc csc_matrix",
        "numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    names = {n for n, _ in ops}
    assert {"NEWOBJ", "SHORT_BINSTRING", "BINSTRING"} <= names
    assert not names & {"BINUNICODE", "SHORT_BINBYTES", "BINBYTES"}  # Python 2 had only str
    raw = restricted_load(flame_files.chumpy)
    for key in ("v_template", "shapedirs", "posedirs", "weights", "J"):
        assert set(raw[key].state) == CH_STATE, key
        assert type(raw[key].state["_dirty_vars"]) is set


def test_flame2020_loads_the_arrays_it_holds(flame_files):
    lay = flame_files.layout
    a = load_flame_model(flame_files.chumpy)
    np.testing.assert_array_equal(a.v_template, lay["v_template"])
    np.testing.assert_array_equal(a.shapedirs, lay["shapedirs"])
    np.testing.assert_array_equal(a.posedirs, lay["posedirs"])
    np.testing.assert_array_equal(a.weights, lay["weights"])
    np.testing.assert_array_equal(a.faces, lay["f"].astype(np.int64))
    np.testing.assert_array_equal(a.j_regressor, lay["J_regressor"].toarray())
    assert a.parents.tolist() == [-1, 0, 1, 1, 1]
    # ... and the FLAME 2023 layout (a Python 3 pickle of plain arrays) gives the same model.
    b = load_flame_model(flame_files.plain)
    for f in ("v_template", "shapedirs", "posedirs", "weights", "faces", "j_regressor", "parents"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def _evil(marker):
    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    return Evil()


def test_a_set_holding_code_is_refused_before_it_runs(tmp_path):
    """``set`` is allowed for chumpy's ``_dirty_vars``; what the set holds is still unpickled
    by the same restricted rules."""
    marker = tmp_path / "executed"
    with _registered({"chumpy.ch.Ch": _Ch}):
        ch = _Ch(np.zeros((3, 3)))
        ch._dirty_vars = {_evil(marker)}
        dump_py2({"v_template": ch}, tmp_path / "generic_model.pkl")
    assert ("GLOBAL", "__builtin__ set") in _ops((tmp_path / "generic_model.pkl").read_bytes())
    with pytest.raises(UnsafePickleError, match="mkdir"):
        FLAME.from_files(tmp_path / "generic_model.pkl")
    assert not marker.exists()


def test_allowed_names_cannot_be_turned_into_calls(tmp_path):
    marker = tmp_path / "executed"
    # An OrderedDict (allowed for a tensor's backward hooks) built from code.
    bad = pickle.dumps({"v_template": OrderedDict([("k", _evil(marker))])}, protocol=2)
    with pytest.raises(UnsafePickleError, match="mkdir"):
        restricted_load(bad)
    # A torch storage blob that is not a weights-only blob.
    buf = io.BytesIO()
    torch.save(_evil(marker), buf, _use_new_zipfile_serialization=False)

    class Blob:
        def __reduce__(self):
            return (torch.storage._load_from_bytes, (buf.getvalue(),))

    with pytest.raises(UnsafePickleError, match="weights_only"):
        restricted_load(pickle.dumps({"x": Blob()}, protocol=3))
    # A tensor with backward hooks, or rebuilt from something other than a storage.
    store = torch.arange(4.0)._typed_storage()  # what a tensor pickles

    def tensor(*args):
        class T:
            def __reduce__(self):
                return (torch._utils._rebuild_tensor_v2, args)
        return pickle.dumps(T(), protocol=3)

    with pytest.raises(UnsafePickleError, match="hooks"):
        restricted_load(tensor(store, 0, (4,), (1,), False, OrderedDict([("h", 1)])))
    with pytest.raises(UnsafePickleError, match="storage"):
        restricted_load(tensor(np.zeros(4), 0, (4,), (1,), False, OrderedDict()))
    assert not marker.exists()


def test_tensor_and_sparse_views_are_bounds_checked(tmp_path):
    """torch does not check that a view fits its storage (it would read foreign memory), and
    SciPy's fast paths trust indices: both are checked before use."""
    store = torch.arange(4.0)._typed_storage()  # what a tensor pickles

    class T:
        def __init__(self, *args):
            self.args = args

        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, self.args)

    ok = restricted_load(pickle.dumps(T(store, 1, (2, 1), (1, 1), False, OrderedDict()), protocol=3))
    assert ok.tolist() == [[1.0], [2.0]]
    with pytest.raises(FlameFileError, match="storage of 4"):
        restricted_load(pickle.dumps(T(store, 0, (100,), (1,), False, OrderedDict()), protocol=3))
    with pytest.raises(UnsafePickleError, match="malformed"):
        restricted_load(pickle.dumps(T(store, -2, (2,), (1,), False, OrderedDict()), protocol=3))
    with _registered({"scipy.sparse.csc.csc_matrix": _CscMatrix}):
        m = _CscMatrix(sp.csc_matrix(np.eye(5)))
        m.indices[2] = 10**6
        dump_py2({"J_regressor": m}, tmp_path / "j.pkl")
    lay = {"v_template": np.zeros((5, 3)), "f": np.zeros((1, 3), np.int64), "shapedirs": np.zeros((5, 3, 1)),
           "posedirs": np.zeros((5, 3, 36)), "weights": np.zeros((5, 5)),
           "kintree_table": np.array([[0, 0, 1, 1, 1], [0, 1, 2, 3, 4]]),
           "J_regressor": restricted_load(tmp_path / "j.pkl")["J_regressor"]}
    with pytest.raises(FlameFileError, match="damaged csc sparse matrix"):
        load_flame_model(lay)


# ---------------------------------------------------------------- landmark_embedding.npy


def test_landmark_embedding_standin_is_written_as_deca_and_smirk_ship_it(flame_files):
    # Read it the way DECA and SMIRK do (our own stand-in, so the unrestricted load is safe here).
    d = np.load(flame_files.single, allow_pickle=True, encoding="latin1")[()]
    assert isinstance(d["static_lmk_faces_idx"], np.ndarray) and d["static_lmk_faces_idx"].shape == (51,)
    assert isinstance(d["static_lmk_bary_coords"], np.ndarray) and d["static_lmk_bary_coords"].shape == (51, 3)
    assert isinstance(d["dynamic_lmk_faces_idx"], torch.Tensor)
    assert d["dynamic_lmk_faces_idx"].dtype == torch.int64 and d["dynamic_lmk_faces_idx"].shape == (79, 17)
    assert d["dynamic_lmk_bary_coords"].dtype == torch.float32
    assert d["dynamic_lmk_bary_coords"].shape == (79, 17, 3)
    assert d["full_lmk_faces_idx"].shape == (1, 68) and d["full_lmk_bary_coords"].shape == (1, 68, 3)
    ops = _ops(_npy_payload(flame_files.single))
    assert {"torch._utils _rebuild_tensor_v2", "torch.storage _load_from_bytes",
            "collections OrderedDict"} <= {a for n, a in ops if n == "GLOBAL"}
    # Each storage is embedded as a legacy (non-zip) torch.save blob, as old files carry.
    legacy = pickle.dumps(torch.serialization.MAGIC_NUMBER, protocol=2)
    blobs = [a for n, a in ops if n == "BINBYTES" and a.startswith(legacy)]
    assert len(blobs) == 2  # the two tensors


def test_landmark_embedding_holds_ringnets_numbers(flame_files):
    static, dynamic = load_landmark_embedding(flame_files.single)
    s0, d0 = load_static_embedding(flame_files.static), load_dynamic_embedding(flame_files.dynamic)
    np.testing.assert_array_equal(static.face_idx, s0.face_idx)
    np.testing.assert_array_equal(static.bary, s0.bary)
    np.testing.assert_array_equal(dynamic.face_idx, d0.face_idx)
    np.testing.assert_array_equal(dynamic.bary, d0.bary.astype(np.float32))  # the file stores float32


def test_landmark_embedding_gives_ringnets_landmarks(flame_files):
    """The same 68 landmarks, for yaws that visit every contour row (DECA's/SMIRK's row rule)."""
    pair = FLAME.from_files(flame_files.plain, flame_files.static, flame_files.dynamic)
    single = FLAME.from_files(flame_files.chumpy, landmark_embedding=flame_files.single)
    n = 181
    g = torch.Generator().manual_seed(3)
    yaw = torch.deg2rad(torch.linspace(-45, 45, n))  # half-degree steps
    odd = (torch.arange(n) % 2 == 1)[:, None]  # whole degrees (even steps) stay pure yaw
    p = dict(global_pose=torch.stack([torch.zeros(n), yaw, torch.zeros(n)], 1),
             neck_pose=0.1 * torch.randn(n, 3, generator=g) * odd,
             jaw_pose=0.1 * torch.rand(n, 3, generator=g),
             shape=torch.randn(n, 300, generator=g), expression=torch.randn(n, 50, generator=g))
    full = torch.cat([p["global_pose"], p["neck_pose"], p["jaw_pose"], torch.zeros(n, 6)], 1)
    assert set(contour_row(rotation_yaw(full, (1, 0))).tolist()) == set(range(79))
    assert torch.equal(single(**p).landmarks68, pair(**p).landmarks68)


def test_legacy_and_zip_storage_blobs_both_load():
    t = torch.arange(12, dtype=torch.int64).reshape(3, 4)
    for zip_format in (False, True):
        buf = io.BytesIO()
        torch.save(t._typed_storage(), buf, _use_new_zipfile_serialization=zip_format)

        class Blob:
            def __reduce__(self):
                return (torch.storage._load_from_bytes, (buf.getvalue(),))

        class Tensor:
            def __reduce__(self):
                return (torch._utils._rebuild_tensor_v2, (Blob(), 0, (3, 4), (4, 1), False, OrderedDict()))

        out = restricted_load(pickle.dumps({"t": Tensor()}, protocol=3))["t"]
        assert torch.equal(out, t), zip_format


def test_object_npy_still_refuses_foreign_globals(tmp_path):
    marker = tmp_path / "executed"
    np.save(tmp_path / "landmark_embedding.npy",
            {"static_lmk_faces_idx": np.zeros(51, np.int64), "dynamic_lmk_faces_idx": _evil(marker)},
            allow_pickle=True)
    with pytest.raises(UnsafePickleError, match="mkdir"):
        load_npy_restricted(tmp_path / "landmark_embedding.npy")
    assert not marker.exists()
