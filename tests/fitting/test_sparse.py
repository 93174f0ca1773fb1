"""LandmarkFlame against the full FLAME layer: the same landmarks, from a few hundred vertices."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tempsmirk.fitting import LandmarkFlame, landmark_matrix
from tempsmirk.flame import FLAME
from tempsmirk.flame.landmarks import vertices2landmarks


def random_params(n: int, n_shape: int, n_exp: int, dtype, seed: int = 0, yaw_deg: float = 60.0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64).to(dtype)  # noqa: E731
    pose = r(n, 3) * 0.25
    pose[:, 1] = torch.linspace(-yaw_deg, yaw_deg, n, dtype=torch.float64).to(dtype) * np.pi / 180  # every contour row
    jaw = torch.cat([r(n, 1).abs() * 0.2, r(n, 2) * 0.05], 1)
    return dict(shape=r(n, n_shape), expression=r(n, n_exp), global_pose=pose, jaw_pose=jaw,
                eyelids=torch.rand(n, 2, generator=g, dtype=torch.float64).to(dtype))


def check_equal(flame: FLAME, n: int = 41, atol: float = 1e-12) -> None:
    dtype = flame.v_template.dtype
    model = LandmarkFlame(flame)
    p = random_params(n, flame.n_shape, flame.n_exp, dtype)
    full = flame(**p)
    for shape in (p["shape"], p["shape"][:1]):  # per-frame shapes, and one shared by the batch
        args = dict(p, shape=shape)
        ref = full if shape.shape[0] == n else flame(**dict(p, shape=shape.expand(n, -1)))
        sparse = model(**args)
        torch.testing.assert_close(sparse.mediapipe, ref.landmarks_mp, rtol=0, atol=atol)
        torch.testing.assert_close(sparse.landmarks68, ref.landmarks68, rtol=0, atol=atol)
        no_inner = model(**args, inner=False)
        assert no_inner.inner is None
        torch.testing.assert_close(no_inner.contour, ref.landmarks68[:, :17], rtol=0, atol=atol)


def test_sparse_equals_full_flame_builtin_head():
    """Float64: equal to rounding (the bases are the same sums taken in another order)."""
    flame = FLAME.builtin(seed=0, dtype=torch.float64)
    check_equal(flame)
    model = LandmarkFlame(flame)
    assert model.n_vertices < flame.n_vertices / 10  # a few hundred of the 5407 vertices


def test_sparse_float32_matches_to_float_precision():
    flame = FLAME.builtin(seed=0)
    check_equal(flame, n=17, atol=2e-6)  # metres: a micrometre


@pytest.mark.needs_shared_data
def test_sparse_equals_full_flame_on_real_topology(ringnet_dir):
    """FLAME's real topology and RingNet's real landmark embeddings (generated bases; the model
    itself is licensed), with a MediaPipe embedding and eyelids in SMIRK's file layout."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "flame"))
    from flame_layout import make_flame_layout

    from tempsmirk.meshio import read_ply

    v, f = read_ply(ringnet_dir / "FLAME_sample.ply")
    layout = make_flame_layout(v, f)
    rng = np.random.default_rng(1)
    bary = rng.random((105, 3))
    mediapipe = {"lmk_face_idx": rng.choice(len(f), 105, replace=False).astype(np.int64),
                 "lmk_b_coords": bary / bary.sum(1, keepdims=True),
                 "landmark_indices": rng.choice(478, 105, replace=False).astype(np.int64)}
    eyelids = {"l_eyelid": rng.normal(0, 1e-3, (len(v), 3)), "r_eyelid": rng.normal(0, 1e-3, (len(v), 3))}
    flame = FLAME.from_files(layout, ringnet_dir / "flame_static_embedding.pkl",
                             ringnet_dir / "flame_dynamic_embedding.npy", mediapipe, eyelids,
                             n_shape=100, n_exp=50, dtype=torch.float64)
    check_equal(flame)


def test_landmark_matrix_is_vertices2landmarks(flame):
    g = torch.Generator().manual_seed(0)
    ids = torch.unique(flame.faces[flame.mp_face_idx])
    verts = torch.randn(3, flame.n_vertices, 3, generator=g)
    rows = landmark_matrix(flame.faces, flame.mp_face_idx, flame.mp_bary, ids)  # (L, V_s)
    want = vertices2landmarks(verts, flame.faces, flame.mp_face_idx, flame.mp_bary)
    torch.testing.assert_close(torch.einsum("lv,bvc->blc", rows, verts[:, ids]), want)


def test_needs_a_mediapipe_embedding_and_checks_sizes(flame, model):
    bare = copy.copy(flame)
    bare.has_mediapipe = False
    with pytest.raises(ValueError, match="MediaPipe landmark embedding"):
        LandmarkFlame(bare)
    with pytest.raises(ValueError, match="expected shape"):
        model(torch.zeros(2, 10), torch.zeros(3, flame.n_exp), torch.zeros(3, 3), torch.zeros(3, 3))
