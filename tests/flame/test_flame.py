"""FLAME layer against independent references: the smplx package's FLAME, SciPy
rotations, a looped evaluation, and float64 gradchecks."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from tempsmirk.flame import FLAME, FlameFileError, UnsafePickleError
from tempsmirk.flame.io import load_npy_restricted, restricted_load
from tempsmirk.flame.landmarks import contour_row, rotation_yaw
from tempsmirk.flame.lbs import batch_rodrigues

pytestmark = pytest.mark.needs_shared_data

B = 6


def random_params(n, seed=0, dtype=torch.float64, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s, k=1.0: torch.randn(*s, generator=g, dtype=dtype) * k * scale  # noqa: E731
    return dict(
        shape=r(n, 300, k=1.0), expression=r(n, 50, k=1.0), global_pose=r(n, 3, k=0.4),
        neck_pose=r(n, 3, k=0.2), jaw_pose=r(n, 3, k=0.15), eye_pose=r(n, 6, k=0.2),
    )


def _permuted_contour_dir(flame_files, tmp_path) -> Path:
    """smplx indexes the contour table by −yaw; swap rows r ↔ r+39 so both pick the same contour."""
    d = tmp_path / "smplx"
    d.mkdir()
    (d / "FLAME_NEUTRAL.pkl").write_bytes(flame_files.plain.read_bytes())
    (d / "flame_static_embedding.pkl").write_bytes(flame_files.static.read_bytes())
    emb = load_npy_restricted(flame_files.dynamic)
    perm = [0] + [r + 39 for r in range(1, 40)] + [r - 39 for r in range(40, 79)]
    swapped = {k: [emb[k][p] for p in perm] for k in ("lmk_face_idx", "lmk_b_coords")}
    arr = np.empty((), dtype=object)
    arr[()] = swapped
    np.save(d / "flame_dynamic_embedding.npy", arr, allow_pickle=True)
    return d


@pytest.fixture(scope="module")
def reference(flame_files, tmp_path_factory):
    smplx = pytest.importorskip("smplx")
    d = _permuted_contour_dir(flame_files, tmp_path_factory.mktemp("ref"))
    ref = smplx.FLAME(model_path=str(d), gender="neutral", num_betas=300, num_expression_coeffs=50,
                      use_face_contour=True, batch_size=B, dtype=torch.float64)
    # smplx takes the yaw from the global rotation alone; RingNet/DECA/SMIRK (and we)
    # use the neck→global chain. Point smplx at that chain so both select alike.
    ref.neck_kin_chain = torch.tensor([1, 0])
    return ref


@pytest.mark.parametrize("layout", ["plain", "chumpy"])
def test_matches_smplx(flame_files, reference, layout):
    flame = FLAME.from_files(getattr(flame_files, layout), flame_files.static, flame_files.dynamic,
                             dtype=torch.float64)
    p = random_params(B, seed=1)
    # Include yaws beyond the ±39° clamp and near zero on both sides.
    p["global_pose"][:4] = torch.tensor([[0, 0.9, 0], [0, -0.9, 0], [0.1, 0.3, 0], [0, -0.3, 0.1]],
                                        dtype=torch.float64)
    ours = flame(**p)
    ref = reference(betas=p["shape"], expression=p["expression"], global_orient=p["global_pose"],
                    neck_pose=p["neck_pose"], jaw_pose=p["jaw_pose"], leye_pose=p["eye_pose"][:, :3],
                    reye_pose=p["eye_pose"][:, 3:], transl=torch.zeros(B, 3, dtype=torch.float64))
    torch.testing.assert_close(ours.vertices, ref.vertices, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.joints, ref.joints[:, :5], atol=1e-5, rtol=0)
    static, contour = ref.joints[:, 5:56], ref.joints[:, 56:73]
    torch.testing.assert_close(ours.landmarks68[:, :17], contour, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.landmarks68[:, 17:], static, atol=1e-5, rtol=0)


def test_float32_close_to_float64(flame_files):
    f64 = FLAME.from_files(flame_files.plain, flame_files.static, flame_files.dynamic, dtype=torch.float64)
    f32 = FLAME.from_files(flame_files.plain, flame_files.static, flame_files.dynamic)
    p = random_params(3, seed=2)
    out64 = f64(**p).vertices
    out32 = f32(**{k: v.float() for k, v in p.items()}).vertices
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out64, atol=1e-5, rtol=0)


def test_batched_equals_looped(flame_files):
    flame = FLAME.from_files(flame_files.plain, flame_files.static, flame_files.dynamic, dtype=torch.float64)
    p = random_params(4, seed=3)
    batched = flame(**p)
    for i in range(4):
        single = flame(**{k: v[i:i + 1] for k, v in p.items()})
        torch.testing.assert_close(batched.vertices[i:i + 1], single.vertices)
        torch.testing.assert_close(batched.landmarks68[i:i + 1], single.landmarks68)


def test_omitted_parameters_are_zeros(flame_files):
    flame = FLAME.from_files(flame_files.plain, flame_files.static, flame_files.dynamic, dtype=torch.float64)
    zero = flame(shape=torch.zeros(2, 300, dtype=torch.float64))
    torch.testing.assert_close(zero.vertices, flame.v_template.expand(2, -1, -1))
    short = flame(expression=torch.ones(1, 10, dtype=torch.float64))
    padded = flame(expression=torch.cat([torch.ones(1, 10), torch.zeros(1, 40)], 1).double())
    torch.testing.assert_close(short.vertices, padded.vertices)


def test_rodrigues_matches_scipy():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(64, 3, generator=g, dtype=torch.float64) * 1.5
    expected = torch.as_tensor(Rotation.from_rotvec(v.numpy()).as_matrix())
    torch.testing.assert_close(batch_rodrigues(v), expected, atol=1e-7, rtol=0)


def test_contour_row_against_scipy_euler():
    g = torch.Generator().manual_seed(0)
    pose = torch.zeros(200, 15, dtype=torch.float64)
    pose[:, :6] = torch.randn(200, 6, generator=g, dtype=torch.float64) * 0.5
    yaw = rotation_yaw(pose)
    rows = contour_row(yaw)
    for i in range(200):
        r = Rotation.from_rotvec(pose[i, :3].numpy()) * Rotation.from_rotvec(pose[i, 3:6].numpy())
        deg = np.degrees(r.as_euler("ZYX")[1])  # R = Rz·Ry·Rx: the middle angle is the yaw
        assert yaw[i].item() == pytest.approx(deg, abs=1e-5)  # rodrigues shifts by eps=1e-8
        a = int(np.round(min(deg, 39)))
        expected = a if a >= 0 else (78 if a < -39 else 39 - a)
        assert rows[i].item() == expected


def test_gradcheck_float64(flame_files):
    flame = FLAME.from_files(flame_files.plain, flame_files.static, flame_files.dynamic,
                             n_shape=4, n_exp=3, dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    inputs = [torch.randn(2, n, generator=g, dtype=torch.float64, requires_grad=True) * s
              for n, s in ((4, 1), (3, 1), (3, 0.3), (3, 0.2), (6, 0.2))]
    inputs = [t.detach().requires_grad_() for t in inputs]

    def f(shape, expression, global_pose, jaw_pose, eye_pose):
        out = flame(shape=shape, expression=expression, global_pose=global_pose,
                    jaw_pose=jaw_pose, eye_pose=eye_pose)
        return out.vertices[:, ::500], out.landmarks68
    # fast_mode checks a random projection of the Jacobian: one backward pass, not one per output.
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, fast_mode=True)


def test_eyelids_added_after_skinning(tmp_path, flame_files):
    V = flame_files.layout["v_template"].shape[0]
    rng = np.random.default_rng(0)
    left, right = rng.normal(0, 1e-3, (V, 3)), rng.normal(0, 1e-3, (V, 3))
    np.save(tmp_path / "l_eyelid.npy", left)
    np.save(tmp_path / "r_eyelid.npy", right)
    flame = FLAME.from_files(flame_files.plain, eyelids=tmp_path, dtype=torch.float64)
    p = random_params(2, seed=7)
    lids = torch.tensor([[1.0, 0.0], [0.3, 0.8]], dtype=torch.float64)
    delta = flame(**p, eyelids=lids).vertices - flame(**p).vertices
    expected = lids[:, 0, None, None] * torch.as_tensor(left) + lids[:, 1, None, None] * torch.as_tensor(right)
    torch.testing.assert_close(delta, expected)


# ---------------------------------------------------------------- bad input


def test_refuses_foreign_global_without_running_it(tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            import os
            return (os.mkdir, (str(marker),))

    bad = tmp_path / "model.pkl"
    bad.write_bytes(pickle.dumps({"v_template": np.zeros((3, 3)), "payload": Evil()}, protocol=2))
    with pytest.raises(UnsafePickleError, match="mkdir"):
        FLAME.from_files(bad)
    assert not marker.exists()


def test_refuses_foreign_global_in_object_npy(tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            import os
            return (os.mkdir, (str(marker),))

    arr = np.empty((), dtype=object)
    arr[()] = {"lmk_face_idx": Evil()}
    np.save(tmp_path / "dyn.npy", arr, allow_pickle=True)
    with pytest.raises(UnsafePickleError):
        load_npy_restricted(tmp_path / "dyn.npy")
    assert not marker.exists()


def test_chumpy_stub_loads_plain_arrays(flame_files):
    obj = restricted_load(flame_files.chumpy)
    assert type(obj["v_template"]).__name__ == "_ChumpyStub"
    flame = FLAME.from_files(flame_files.chumpy, dtype=torch.float64)
    np.testing.assert_array_equal(flame.v_template.numpy(), flame_files.layout["v_template"])


def test_missing_key_and_wrong_shape_are_named(tmp_path, flame_files):
    layout = dict(flame_files.layout)
    del layout["posedirs"]
    with pytest.raises(FlameFileError, match="posedirs"):
        FLAME.from_files(layout)
    layout = dict(flame_files.layout, weights=np.ones((10, 5)))
    with pytest.raises(FlameFileError, match=r"'weights' should have shape \(5023, 5\); found \(10, 5\)"):
        FLAME.from_files(layout)
    with pytest.raises(FileNotFoundError, match="no such file"):
        FLAME.from_files(tmp_path / "absent.pkl")


def test_embedding_from_other_model_is_refused(flame_files):
    small = dict(flame_files.layout, f=flame_files.layout["f"][:100])
    with pytest.raises(FlameFileError, match="do not belong together"):
        FLAME.from_files(small, flame_files.static, flame_files.dynamic)


@pytest.mark.gpu
def test_cuda_matches_cpu(flame_files):
    flame = FLAME.from_files(flame_files.plain, flame_files.static, flame_files.dynamic, dtype=torch.float64)
    p = random_params(3, seed=9)
    cpu = flame(**p)
    gpu = flame.to("cuda")(**{k: v.cuda() for k, v in p.items()})
    torch.testing.assert_close(gpu.vertices.cpu(), cpu.vertices, atol=1e-9, rtol=0)
    torch.testing.assert_close(gpu.landmarks68.cpu(), cpu.landmarks68, atol=1e-9, rtol=0)
