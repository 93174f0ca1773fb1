"""PLY/OBJ readers and writers: round trips and an ASCII file parsed by hand."""

import numpy as np
import pytest

from tempsmirk.meshio import read_ply, write_obj, write_ply


def test_binary_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 3)).astype(np.float32)
    f = rng.integers(0, 50, size=(70, 3))
    write_ply(tmp_path / "m.ply", v, f)
    v2, f2 = read_ply(tmp_path / "m.ply")
    np.testing.assert_array_equal(v2, v)
    np.testing.assert_array_equal(f2, f)
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temporary behind
    assert (tmp_path / "m.ply").stat().st_mode & 0o044  # readable by others, like open() gives


def test_ascii_ply(tmp_path):
    text = ("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
            "property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
            "0 0 0\n1 0 0\n0 1 0.5\n3 0 1 2\n")
    (tmp_path / "a.ply").write_text(text)
    v, f = read_ply(tmp_path / "a.ply")
    np.testing.assert_allclose(v, [[0, 0, 0], [1, 0, 0], [0, 1, 0.5]])
    np.testing.assert_array_equal(f, [[0, 1, 2]])


def test_rejects_non_ply_and_quads(tmp_path):
    (tmp_path / "x.ply").write_text("hello")
    with pytest.raises(ValueError, match="expected a PLY file"):
        read_ply(tmp_path / "x.ply")
    quad = ("ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
            "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
            "0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n")
    (tmp_path / "q.ply").write_text(quad)
    with pytest.raises(ValueError, match="triangles only"):
        read_ply(tmp_path / "q.ply")


def test_obj_writer(tmp_path):
    write_obj(tmp_path / "m.obj", np.eye(3), np.array([[0, 1, 2]]))
    lines = (tmp_path / "m.obj").read_text().splitlines()
    assert lines[0] == "v 1.000000 0.000000 0.000000"
    assert lines[-1] == "f 1 2 3"


@pytest.mark.needs_shared_data
def test_real_flame_topology(ringnet_dir):
    v, f = read_ply(ringnet_dir / "FLAME_sample.ply")
    assert v.shape == (5023, 3) and f.shape == (9976, 3)
    assert f.min() == 0 and f.max() == 5022
    assert np.abs(v).max() < 0.25  # metres
