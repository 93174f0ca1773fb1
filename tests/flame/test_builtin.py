"""The built-in head: layout, determinism, symmetry, anatomy, rig behaviour, files.

Skinning is checked against a small NumPy linear-blend-skinning reference written
here (FLAME's formula), and against the library's FLAME layer where it loads.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial import cKDTree

from tempsmirk.flame.builtin import (
    EXPRESSION_NAMES,
    IBUG_MIRROR,
    MEDIAPIPE_INDICES,
    MEDIAPIPE_MIRROR,
    HeadAssets,
    builtin_head,
)

MASK_KEYS = {"face", "eye_region", "left_eye_region", "right_eye_region", "left_eyeball", "right_eyeball",
             "lips", "nose", "forehead", "scalp", "neck", "boundary", "left_ear", "right_ear"}


@pytest.fixture(scope="module")
def head() -> HeadAssets:
    return builtin_head(0)


@pytest.fixture(scope="module")
def other_seed() -> HeadAssets:
    return builtin_head(1)


# --------------------------------------------------------------------------- references


def rodrigues(aa: np.ndarray) -> np.ndarray:
    """(J, 3) axis-angle -> (J, 3, 3) rotation matrices."""
    out = np.zeros((aa.shape[0], 3, 3))
    for i, a in enumerate(aa):
        th = np.linalg.norm(a)
        if th < 1e-12:
            out[i] = np.eye(3)
            continue
        k = a / th
        K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        out[i] = np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K
    return out


def lbs_reference(model: dict, shape: np.ndarray, expr: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """FLAME's forward pass in plain NumPy: shape (S,) of 300, expr (E,) of 100, pose (15,) -> (V, 3)."""
    coeffs = np.concatenate([shape, expr])
    v_shaped = model["v_template"] + model["shapedirs"][:, :, : coeffs.size] @ coeffs
    J = np.asarray(model["J_regressor"] @ v_shaped)
    R = rodrigues(pose.reshape(5, 3))
    pose_feature = (R[1:] - np.eye(3)).reshape(-1)
    v_posed = v_shaped + (model["posedirs"].reshape(-1, 36) @ pose_feature).reshape(-1, 3)
    parents = model["kintree_table"][0].astype(np.int64)
    G = np.zeros((5, 4, 4))
    for j in range(5):
        local = np.eye(4)
        local[:3, :3] = R[j]
        local[:3, 3] = J[j] - (J[parents[j]] if j > 0 else 0)
        G[j] = local if j == 0 else G[parents[j]] @ local
    G_rel = G.copy()
    G_rel[:, :3, 3] -= np.einsum("jab,jb->ja", G[:, :3, :3], J)
    T = np.einsum("vj,jab->vab", model["weights"], G_rel)
    return np.einsum("vab,vb->va", T[:, :3, :3], v_posed) + T[:, :3, 3]


def landmarks(v: np.ndarray, f: np.ndarray, idx: np.ndarray, bary: np.ndarray) -> np.ndarray:
    return np.einsum("lkc,lk->lc", v[f[np.asarray(idx, dtype=np.int64)]], bary)


def landmarks68(head: HeadAssets, v: np.ndarray, row: int = 0) -> np.ndarray:
    f = head.model["f"].astype(np.int64)
    d, s = head.dynamic_landmarks, head.static_landmarks
    return np.concatenate([landmarks(v, f, d["lmk_face_idx"][row], d["lmk_b_coords"][row]),
                           landmarks(v, f, s["lmk_face_idx"], s["lmk_b_coords"])])


def landmarks_mp(head: HeadAssets, v: np.ndarray) -> np.ndarray:
    m = head.mediapipe_landmarks
    return landmarks(v, head.model["f"].astype(np.int64), m["lmk_face_idx"], m["lmk_b_coords"])


def pose_vector(**parts) -> np.ndarray:
    pose = np.zeros(15)
    slots = {"global_pose": 0, "neck_pose": 3, "jaw_pose": 6, "eye_pose": 9}
    for k, val in parts.items():
        pose[slots[k]: slots[k] + len(val)] = val
    return pose


def posed(head: HeadAssets, **parts) -> np.ndarray:
    return lbs_reference(head.model, np.zeros(300), np.zeros(100), pose_vector(**parts))


def mask(head: HeadAssets, name: str) -> np.ndarray:
    out = np.zeros(head.model["v_template"].shape[0], bool)
    out[head.masks[name]] = True
    return out


# --------------------------------------------------------------------------- determinism, layout


def test_same_seed_gives_identical_assets(head):
    again = builtin_head(0)
    for key, value in head.model.items():
        if sp.issparse(value):
            assert (value != again.model[key]).nnz == 0
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, again.model[key], err_msg=key)
    for name in ("static_landmarks", "mediapipe_landmarks", "eyelids", "masks"):
        for key, value in getattr(head, name).items():
            np.testing.assert_array_equal(value, getattr(again, name)[key], err_msg=f"{name}.{key}")
    for key in ("lmk_face_idx", "lmk_b_coords"):
        np.testing.assert_array_equal(np.stack(head.dynamic_landmarks[key]), np.stack(again.dynamic_landmarks[key]))


def test_other_seed_changes_bases_not_topology(head, other_seed):
    np.testing.assert_array_equal(head.model["f"], other_seed.model["f"])
    np.testing.assert_array_equal(head.model["v_template"], other_seed.model["v_template"])
    np.testing.assert_array_equal(head.static_landmarks["lmk_face_idx"], other_seed.static_landmarks["lmk_face_idx"])
    sd, so = head.model["shapedirs"], other_seed.model["shapedirs"]
    assert np.abs(sd[..., 50:300] - so[..., 50:300]).max() > 1e-4  # random identity fields
    assert np.abs(sd[..., 350:] - so[..., 350:]).max() > 1e-4       # random expression bumps
    assert np.abs(head.model["posedirs"] - other_seed.model["posedirs"]).max() > 0


def test_model_layout(head):
    m = head.model
    V = m["v_template"].shape[0]
    F = m["f"].shape[0]
    assert 3000 <= V <= 6000
    assert m["v_template"].dtype == np.float64 and m["v_template"].shape == (V, 3)
    assert m["f"].dtype == np.uint32 and m["f"].shape == (F, 3)
    assert m["f"].max() < V
    assert m["shapedirs"].shape == (V, 3, 400) and m["shapedirs"].dtype == np.float64
    assert m["posedirs"].shape == (V, 3, 36) and m["posedirs"].dtype == np.float64
    assert (np.abs(m["shapedirs"]).reshape(-1, 400).max(0) > 0).all(), "every component must move something"
    assert (np.abs(m["posedirs"]).reshape(-1, 36).max(0) > 0).all()
    assert np.abs(m["posedirs"]).max() < 1e-3, "pose correctives stay sub-millimetre per unit"
    assert isinstance(m["J_regressor"], sp.csc_matrix) and m["J_regressor"].shape == (5, V)
    np.testing.assert_allclose(np.asarray(m["J_regressor"].sum(1)).ravel(), 1.0, atol=1e-12)
    assert m["J_regressor"].min() >= 0
    assert m["weights"].shape == (V, 5) and (m["weights"] >= 0).all()
    np.testing.assert_allclose(m["weights"].sum(1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(m["kintree_table"], [[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]])


def test_landmark_layout(head):
    F = head.model["f"].shape[0]

    def check(idx, bary, n):
        idx, bary = np.asarray(idx), np.asarray(bary)
        assert idx.dtype == np.uint32 and idx.shape == (n,) and idx.max() < F
        assert bary.dtype == np.float64 and bary.shape == (n, 3)
        assert bary.min() >= -1e-12
        np.testing.assert_allclose(bary.sum(1), 1.0, atol=1e-12)

    check(head.static_landmarks["lmk_face_idx"], head.static_landmarks["lmk_b_coords"], 51)
    d = head.dynamic_landmarks
    assert len(d["lmk_face_idx"]) == len(d["lmk_b_coords"]) == 79
    for idx, bary in zip(d["lmk_face_idx"], d["lmk_b_coords"]):
        check(idx, bary, 17)
    m = head.mediapipe_landmarks
    check(m["lmk_face_idx"], m["lmk_b_coords"], 105)
    lmi = m["landmark_indices"]
    assert lmi.shape == (105,) and len(set(lmi.tolist())) == 105 and lmi.max() < 478
    assert (np.diff(lmi) > 0).all(), "documented order: ascending"


def test_mediapipe_indices_match_the_facemesh_contours():
    conn = pytest.importorskip("mediapipe.python.solutions.face_mesh_connections")
    expected = set()
    for group in (conn.FACEMESH_LIPS, conn.FACEMESH_LEFT_EYE, conn.FACEMESH_RIGHT_EYE,
                  conn.FACEMESH_LEFT_EYEBROW, conn.FACEMESH_RIGHT_EYEBROW):
        expected |= {i for edge in group for i in edge}
    expected |= {168, 6, 197, 195, 5, 4, 129, 98, 97, 2, 326, 327, 358}
    assert set(MEDIAPIPE_INDICES.tolist()) == expected
    # mirror partners along the contours are connected the same way on both sides
    for group_l, group_r in ((conn.FACEMESH_LEFT_EYE, conn.FACEMESH_RIGHT_EYE),
                             (conn.FACEMESH_LEFT_EYEBROW, conn.FACEMESH_RIGHT_EYEBROW)):
        mirror = {int(MEDIAPIPE_INDICES[k]): int(MEDIAPIPE_INDICES[MEDIAPIPE_MIRROR[k]]) for k in range(105)}
        mapped = {tuple(sorted((mirror[a], mirror[b]))) for a, b in group_l}
        assert mapped == {tuple(sorted(e)) for e in group_r}


def test_masks_and_eyelid_layout(head):
    V = head.model["v_template"].shape[0]
    assert set(head.masks) == MASK_KEYS
    for name, idx in head.masks.items():
        assert idx.dtype == np.int64 and idx.ndim == 1, name
        assert idx.size == 0 or (idx.min() >= 0 and idx.max() < V), name
        assert len(np.unique(idx)) == idx.size, name
    for name in MASK_KEYS - {"left_ear", "right_ear"}:
        assert head.masks[name].size > 0, name
    balls = mask(head, "left_eyeball") | mask(head, "right_eyeball")
    assert not (mask(head, "face") & balls).any()
    for region in ("scalp", "neck"):
        assert not (mask(head, "face") & mask(head, region)).any(), region
    for key in ("l_eyelid", "r_eyelid"):
        assert head.eyelids[key].shape == (V, 3) and head.eyelids[key].dtype == np.float64


# --------------------------------------------------------------------------- mesh quality


def test_skin_is_closed_but_for_the_neck_cut_and_consistently_oriented(head):
    f = head.model["f"].astype(np.int64)
    v = head.model["v_template"]
    area = 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    assert area.min() > 1e-9, "no degenerate triangles"
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed), "every directed edge once: consistent orientation"
    und, counts = np.unique(np.sort(directed, 1), axis=0, return_counts=True)
    assert counts.max() <= 2, "manifold edges"
    open_vertices = np.unique(und[counts == 1])
    # lips and lids are slits closed behind by the inner mouth and the eye sockets
    np.testing.assert_array_equal(open_vertices, np.sort(head.masks["boundary"]))
    # outward: the signed volume of the skin (neck cut closed by its centroid) is a head's
    skin = ~(mask(head, "left_eyeball") | mask(head, "right_eyeball"))
    fs = f[skin[f].all(1)]
    vol = np.einsum("ij,ij->i", v[fs[:, 0]], np.cross(v[fs[:, 1]], v[fs[:, 2]])).sum() / 6
    assert 2e-3 < vol < 8e-3, vol
    for name in ("left_eyeball", "right_eyeball"):
        ids = head.masks[name]
        fe = f[np.isin(f, ids).all(1)]
        c = v[ids].mean(0)
        vol = np.einsum("ij,ij->i", v[fe[:, 0]] - c, np.cross(v[fe[:, 1]] - c, v[fe[:, 2]] - c)).sum() / 6
        assert vol > 0.9 * 4 / 3 * np.pi * 0.012 ** 3


def test_skin_stays_outside_the_eyeballs(head):
    v = head.model["v_template"]
    balls = mask(head, "left_eyeball") | mask(head, "right_eyeball")
    for name in ("left_eyeball", "right_eyeball"):
        ids = head.masks[name]
        c = v[ids].mean(0)
        radius = np.linalg.norm(v[ids] - c, axis=1).max()
        assert np.linalg.norm(v[~balls] - c, axis=1).min() > radius
        # and the eyeball shows through the opening: its front reaches the lid edges
        L = landmarks68(head, v)
        lids = L[42:48] if name == "left_eyeball" else L[36:42]
        assert v[ids, 2].max() > lids[:, 2].min()


def test_template_is_mirror_symmetric(head):
    v = head.model["v_template"]
    d, _ = cKDTree(v).query(v * [-1, 1, 1])
    assert d.max() < 1e-9
    # mirrored triangles exist too (compared by position: slit copies share one)
    f = head.model["f"].astype(np.int64)
    key = np.round(v * 1e7).astype(np.int64)
    mkey = np.round(v * [-1, 1, 1] * 1e7).astype(np.int64)
    tri = {tuple(sorted(map(tuple, key[t]))) for t in f}
    assert all(tuple(sorted(map(tuple, mkey[t]))) in tri for t in f)


def test_size_and_orientation_are_flame_like(head):
    v = head.model["v_template"]
    lo, hi = v.min(0), v.max(0)
    assert 0.07 < hi[0] < 0.11 and np.isclose(lo[0], -hi[0])
    assert 0.11 < hi[1] < 0.15 and -0.25 < lo[1] < -0.12
    L = landmarks68(head, v)
    assert L[30, 2] == L[17:, 2].max(), "nose tip is the most forward inner landmark"
    assert L[17:27, 1].min() > L[36:48, 1].max(), "brows above the eyes"
    assert L[36:48, 1].min() > L[30, 1] > L[48:68, 1].max(), "eyes above nose tip above the mouth"
    assert L[8, 1] < L[57, 1], "chin below the lower lip"
    assert L[36, 0] < L[39, 0] < 0 < L[42, 0] < L[45, 0], "iBUG 36 is the subject's right outer corner (-x)"
    assert L[48, 0] < 0 < L[54, 0] and L[0, 0] < 0 < L[16, 0]
    np.testing.assert_allclose(np.linalg.norm(L[45] - L[36]), 0.088, atol=0.012)


def test_landmarks_are_mirror_symmetric(head):
    v = head.model["v_template"]
    for row in (0, 10, 39):
        L = landmarks68(head, v, row)
        if row == 0:
            np.testing.assert_allclose(L[IBUG_MIRROR] * [-1, 1, 1], L, atol=1e-9)
        else:  # the contour for +yaw mirrors the contour for -yaw
            mirrored = landmarks68(head, v, 39 + row)
            np.testing.assert_allclose(mirrored[IBUG_MIRROR] * [-1, 1, 1], L, atol=1e-9)
    M = landmarks_mp(head, v)
    np.testing.assert_allclose(M[MEDIAPIPE_MIRROR] * [-1, 1, 1], M, atol=1e-9)


def test_ibug_and_mediapipe_agree_on_shared_points(head):
    v = head.model["v_template"]
    L = landmarks68(head, v)
    M = dict(zip(MEDIAPIPE_INDICES.tolist(), landmarks_mp(head, v)))
    same = {36: 33, 39: 133, 42: 362, 45: 263, 48: 61, 54: 291, 60: 78, 64: 308, 62: 13, 66: 14}
    for ibug, mp in same.items():
        np.testing.assert_allclose(M[mp], L[ibug], atol=1e-4, err_msg=f"iBUG {ibug} vs MediaPipe {mp}")
    for ibug, mp in {51: 0, 57: 17, 30: 4, 33: 2}.items():
        assert np.linalg.norm(M[mp] - L[ibug]) < 0.002, (ibug, mp)
    # MediaPipe's LEFT is the subject's left (+x)
    for i in (263, 362, 386, 374, 300, 336, 291, 308, 358):
        assert M[i][0] > 0, i
    for i in (33, 133, 159, 145, 70, 107, 61, 78, 129):
        assert M[i][0] < 0, i
    assert M[159][1] > M[145][1] and M[13][1] >= M[14][1] and M[0][1] > M[13][1] > M[17][1]


def test_landmarks_fall_in_their_regions(head):
    f = head.model["f"].astype(np.int64)
    idx = head.static_landmarks["lmk_face_idx"].astype(np.int64)

    def inside(ibug: range, region: str) -> bool:
        return mask(head, region)[f[idx[np.array(ibug) - 17]]].all()

    assert inside(range(42, 48), "left_eye_region")
    assert inside(range(36, 42), "right_eye_region")
    assert inside(range(48, 68), "lips")
    assert inside(range(27, 36), "nose")
    assert mask(head, "face")[f[idx]].all()


# --------------------------------------------------------------------------- rig behaviour


def test_jaw_opens_the_mouth_and_nothing_above_it(head):
    v0 = head.model["v_template"]
    v1 = posed(head, jaw_pose=[0.2, 0.0, 0.0])
    L0, L1 = landmarks68(head, v0), landmarks68(head, v1)
    gap0, gap1 = L0[62, 1] - L0[66, 1], L1[62, 1] - L1[66, 1]
    assert abs(gap0) < 1e-9, "lips closed at rest"
    assert gap1 > 0.01, "the lower lip drops by more than a centimetre"
    assert L1[8, 1] < L0[8, 1] - 0.01
    moved = np.linalg.norm(v1 - v0, axis=1)
    above = v0[:, 1] > L0[51, 1]
    assert moved[above].max() < 1e-12
    np.testing.assert_allclose(L1[[50, 51, 52, 61, 62, 63]], L0[[50, 51, 52, 61, 62, 63]], atol=1e-12)
    # the jaw joint is a hinge behind and below the mouth, near the ears' height
    J = np.asarray(head.model["J_regressor"] @ v0)
    assert J[2, 2] < L0[48, 2] - 0.04 and L0[48, 1] < J[2, 1] < L0[36, 1]


def test_eyes_rotate_rigidly_and_alone(head):
    v0 = head.model["v_template"]
    v1 = posed(head, eye_pose=[0.3, 0.4, 0.0, -0.2, 0.1, 0.0])
    moved = np.linalg.norm(v1 - v0, axis=1) > 1e-12
    balls = mask(head, "left_eyeball") | mask(head, "right_eyeball")
    assert moved[balls].all() and not moved[~balls].any()
    for name in ("left_eyeball", "right_eyeball"):
        ids = head.masks[name]
        d0 = np.linalg.norm(v0[ids][:, None] - v0[ids][None], axis=-1)
        d1 = np.linalg.norm(v1[ids][:, None] - v1[ids][None], axis=-1)
        np.testing.assert_allclose(d1, d0, atol=1e-12)
    J = np.asarray(head.model["J_regressor"] @ v0)
    assert J[3, 0] > 0 > J[4, 0], "joint 3 is the left eye (+x)"


def test_neck_and_global_pose_move_the_head_rigidly_above_the_neck(head):
    v0 = head.model["v_template"]
    v1 = posed(head, global_pose=[0.0, 0.5, 0.0])
    R = rodrigues(np.array([[0.0, 0.5, 0.0]]))[0]
    J0 = np.asarray(head.model["J_regressor"] @ v0)[0]
    np.testing.assert_allclose(v1, (v0 - J0) @ R.T + J0, atol=1e-12)
    v2 = posed(head, neck_pose=[0.3, 0.0, 0.0])
    top = v0[:, 1] > 0.0
    d = np.linalg.norm(v2 - v0, axis=1)
    assert d[top].min() > 1e-3 and d[v0[:, 1] < -0.19].max() < 1e-6


def test_expression_components_are_local_to_the_face(head):
    E = head.model["shapedirs"][..., 300:]
    mag = np.linalg.norm(E, axis=1)  # (V, 100)
    face = mask(head, "face")
    assert mag[~face].max() == 0.0, "no expression moves eyeballs, scalp, neck or ears"
    peak = mag.max(0)
    assert (peak > 5e-4).all() and (peak < 0.01).all()
    support = (mag > 0.1 * peak).sum(0) / face.sum()
    assert support.max() < 0.45 and np.median(support) < 0.15, "expression components are localised"


def condition_number(m: np.ndarray) -> float:
    s = np.linalg.svd(m, compute_uv=False)
    return float(s[0] / s[-1])


def test_expression_coefficients_are_identifiable(head, other_seed):
    # Like FLAME's PCA basis, no expression component is (nearly) a combination of the others,
    # so coefficients can be recovered from the geometry.
    for h in (head, other_seed):
        E = h.model["shapedirs"][..., 300:].reshape(-1, 100)
        for k, bound in ((10, 30), (20, 30), (50, 30), (100, 100)):
            assert condition_number(E[:, :k]) < bound, f"first {k} expression components are ill conditioned"
        norms = np.linalg.norm(E, axis=0)
        assert norms.min() > 0.02 * norms.max(), "no expression component collapses"
    # the random bumps are orthogonal to the named actions and to each other
    E = head.model["shapedirs"][..., 300:].reshape(-1, 100)
    n = len(EXPRESSION_NAMES)
    cos = (E.T @ E) / np.outer(np.linalg.norm(E, axis=0), np.linalg.norm(E, axis=0))
    np.testing.assert_allclose(cos[n:, :n], 0.0, atol=1e-9)
    np.testing.assert_allclose(cos[n:, n:], np.eye(100 - n), atol=1e-9)


def test_named_expression_constants_point_at_their_components():
    from tempsmirk.evaluation import synthetic_affectnet as sa

    assert len(EXPRESSION_NAMES) == len(set(EXPRESSION_NAMES)) == sa.N_NAMED
    constants = {name: value for name, value in vars(sa).items()
                 if name.isupper() and isinstance(value, int) and name not in ("N_NAMED", "IMAGES_PER_FOLDER")}
    for name, column in constants.items():
        assert EXPRESSION_NAMES[column] == name.lower().replace("_", " "), name
    assert len(set(constants.values())) == len(constants), "every constant names its own column"
    used = {c for p in sa.PROTOTYPES for c, _ in p.components}
    used |= {c for c, _ in sa.VALENCE_LOADINGS + sa.AROUSAL_LOADINGS}
    assert used <= set(constants.values())


def test_identity_components_are_global_smooth_and_decaying(head):
    S = head.model["shapedirs"][..., :300]
    f = head.model["f"].astype(np.int64)
    mag = np.linalg.norm(S, axis=1)
    skin = ~(mask(head, "left_eyeball") | mask(head, "right_eyeball"))
    support = (mag[skin] > 0.05 * mag.max(0)).mean(0)
    assert np.median(support[:50]) > 0.3, "identity components are global"
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    v = head.model["v_template"]
    length = np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1)[:, None]
    slope = (np.linalg.norm(S[edges[:, 0]] - S[edges[:, 1]], axis=1) / length).max(0)
    # smooth: no component changes by its peak within 7 mm (4 mm for the fine ones)
    assert (slope[:50] * 0.007 < mag.max(0)[:50]).all()
    assert (slope * 0.004 < mag.max(0)).all()
    rms = np.sqrt((mag ** 2).mean(0))
    assert rms[:50].mean() > 3 * rms[250:].mean()
    rng = np.random.default_rng(0)
    for _ in range(3):
        d = np.linalg.norm(S @ rng.normal(size=300), axis=1)
        assert 0.003 < d.max() < 0.03 and 0.001 < d.mean() < 0.015
    # eyeballs translate with the face around them (they never deform with identity)
    for name in ("left_eyeball", "right_eyeball"):
        block = S[head.masks[name]]
        np.testing.assert_allclose(block, np.broadcast_to(block[:1], block.shape), atol=1e-15)


def test_eyelids_close_onto_the_lower_lid(head):
    v0 = head.model["v_template"]
    L0 = landmarks68(head, v0)
    assert (L0[[37, 38, 43, 44], 1] - L0[[41, 40, 47, 46], 1] > 0.006).all(), "eyes open at rest"
    for key, upper, lower, region in (("l_eyelid", [43, 44], [47, 46], "left_eye_region"),
                                      ("r_eyelid", [38, 37], [40, 41], "right_eye_region")):
        field = head.eyelids[key]
        L1 = landmarks68(head, v0 + field)
        np.testing.assert_allclose(L1[upper], L1[lower], atol=2e-4)
        np.testing.assert_allclose(L1[lower], L0[lower], atol=1e-12)
        moved = np.linalg.norm(field, axis=1) > 0
        assert moved.any() and mask(head, region)[moved].all()
    # closed lids stay outside the eyeball
    for key, ball in (("l_eyelid", "left_eyeball"), ("r_eyelid", "right_eyeball")):
        c = v0[head.masks[ball]].mean(0)
        r = np.linalg.norm(v0[head.masks[ball]] - c, axis=1).max()
        moved = np.linalg.norm(head.eyelids[key], axis=1) > 0
        closed = v0[moved] + head.eyelids[key][moved]
        assert np.linalg.norm(closed - c, axis=1).min() >= r - 1e-9


def test_dynamic_contour_slides_on_the_side_turning_away(head):
    v = head.model["v_template"]
    C0 = landmarks68(head, v, 0)[:17]
    C30 = landmarks68(head, v, 30)[:17]
    C39 = landmarks68(head, v, 39)[:17]
    Cm30 = landmarks68(head, v, 69)[:17]  # yaw -30
    np.testing.assert_allclose(C30[:9], C0[:9], atol=1e-12)  # the side facing the camera stays
    shift = C30[9:] - C0[9:]
    assert np.linalg.norm(shift, axis=1).max() > 0.008
    assert (shift[:, 2] >= -1e-12).all() and (shift[:, 0] <= 1e-12).all(), "+x side slides forward"
    np.testing.assert_allclose(Cm30[8:], C0[8:], atol=1e-12)
    assert np.linalg.norm(Cm30[:8] - C0[:8], axis=1).max() > 0.008
    assert np.linalg.norm(C39 - C0, axis=1).sum() > np.linalg.norm(C30 - C0, axis=1).sum()
    # the slid contour is on the silhouette seen by the turned camera
    psi = np.radians(30)
    view = np.array([-np.sin(psi), 0.0, np.cos(psi)])  # towards the camera, in head coordinates
    f = head.model["f"].astype(np.int64)
    tri = v[f[np.asarray(head.dynamic_landmarks["lmk_face_idx"][30], dtype=np.int64)]]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    assert np.abs(n[12:16] @ view).max() < 0.35


# --------------------------------------------------------------------------- files


def test_save_round_trip_is_exact(head, tmp_path):
    files = head.save(tmp_path / "head")
    assert sorted(p.name for p in files.directory.iterdir()) == sorted(
        ["generic_model.pkl", "flame_static_embedding.pkl", "flame_dynamic_embedding.npy",
         "mediapipe_landmark_embedding.npz", "l_eyelid.npy", "r_eyelid.npy", "FLAME_masks.pkl"])
    with open(files.model, "rb") as fh:
        assert fh.read(2) == b"\x80\x02", "pickle protocol 2"
    with open(files.model, "rb") as fh:
        model = pickle.load(fh, encoding="latin1")
    assert set(model) == set(head.model)
    for key, value in head.model.items():
        if sp.issparse(value):
            assert isinstance(model[key], sp.csc_matrix) and (model[key] != value).nnz == 0
        elif isinstance(value, np.ndarray):
            assert model[key].dtype == value.dtype
            np.testing.assert_array_equal(model[key], value)
    with open(files.static_landmarks, "rb") as fh:
        static = pickle.load(fh, encoding="latin1")
    for key in ("lmk_face_idx", "lmk_b_coords"):
        np.testing.assert_array_equal(static[key], head.static_landmarks[key])
    dyn = np.load(files.dynamic_landmarks, allow_pickle=True, encoding="latin1")[()]
    assert isinstance(dyn, dict) and isinstance(dyn["lmk_face_idx"], list)
    for key in ("lmk_face_idx", "lmk_b_coords"):
        for a, b in zip(dyn[key], head.dynamic_landmarks[key]):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    with np.load(files.mediapipe_landmarks) as npz:
        for key, value in head.mediapipe_landmarks.items():
            np.testing.assert_array_equal(npz[key], value)
    np.testing.assert_array_equal(np.load(files.l_eyelid), head.eyelids["l_eyelid"])
    np.testing.assert_array_equal(np.load(files.r_eyelid), head.eyelids["r_eyelid"])
    with open(files.masks, "rb") as fh:
        masks = pickle.load(fh, encoding="latin1")
    assert set(masks) == set(head.masks)
    for key, value in head.masks.items():
        np.testing.assert_array_equal(masks[key], value)


# --------------------------------------------------------------------------- through the FLAME layer


def _flame_layer():
    torch = pytest.importorskip("torch")
    try:
        from tempsmirk.flame import FLAME
    except ImportError as err:  # the layer is optional for these asset tests
        pytest.skip(f"FLAME layer not importable: {err}")
    return torch, FLAME


def test_flame_layer_matches_the_numpy_reference(head):
    torch, FLAME = _flame_layer()
    flame = FLAME.from_files(head.model, head.static_landmarks, head.dynamic_landmarks,
                             head.mediapipe_landmarks, head.eyelids, n_shape=300, n_exp=100,
                             dtype=torch.float64)
    rng = np.random.default_rng(3)
    shape, expr = rng.normal(size=300), rng.normal(size=100)
    pose = np.concatenate([[0.1, 0.3, -0.05], [0.2, -0.1, 0.05], [0.25, 0.02, 0.0], [0.1, 0.2, 0.0, 0.1, 0.2, 0.0]])
    t = lambda a: torch.tensor(np.asarray(a)[None], dtype=torch.float64)  # noqa: E731
    out = flame(shape=t(shape), expression=t(expr), global_pose=t(pose[:3]), neck_pose=t(pose[3:6]),
                jaw_pose=t(pose[6:9]), eye_pose=t(pose[9:]))
    ref = lbs_reference(head.model, shape, expr, pose)
    np.testing.assert_allclose(out.vertices[0].numpy(), ref, atol=1e-10)
    mp = landmarks_mp(head, ref)
    np.testing.assert_allclose(out.landmarks_mp[0].numpy(), mp, atol=1e-10)
    static = landmarks68(head, ref)[17:]
    np.testing.assert_allclose(out.landmarks68[0, 17:].numpy(), static, atol=1e-10)


def test_saved_files_load_like_the_in_memory_head(head, tmp_path):
    torch, FLAME = _flame_layer()
    files = head.save(tmp_path)
    from_disk = FLAME.from_files(files.model, files.static_landmarks, files.dynamic_landmarks,
                                 files.mediapipe_landmarks, files.directory, dtype=torch.float64)
    in_memory = FLAME.from_files(head.model, head.static_landmarks, head.dynamic_landmarks,
                                 head.mediapipe_landmarks, head.eyelids, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    kw = dict(shape=torch.randn(2, 300, generator=g, dtype=torch.float64),
              expression=torch.randn(2, 50, generator=g, dtype=torch.float64),
              global_pose=0.2 * torch.randn(2, 3, generator=g, dtype=torch.float64),
              jaw_pose=torch.tensor([[0.2, 0.0, 0.0], [0.05, 0.0, 0.0]], dtype=torch.float64),
              eyelids=torch.tensor([[1.0, 0.0], [0.3, 0.7]], dtype=torch.float64))
    a, b = from_disk(**kw), in_memory(**kw)
    assert torch.equal(a.vertices, b.vertices)
    assert torch.equal(a.landmarks68, b.landmarks68) and torch.equal(a.landmarks_mp, b.landmarks_mp)
