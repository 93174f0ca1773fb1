"""Gap filling: against np.interp and a hand computation, for numpy, torch and FLAME parameters; found
frames untouched; the case where no frame has a face."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tempsmirk.smirk.encoder import EncoderOutput
from tempsmirk.video.gaps import NoFaceError, fill_gaps

FOUND = np.array([False, True, True, False, False, True, False, True, False])


def _reference(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """np.interp per (landmark, coordinate) column: linear between found frames, held at the ends."""
    t = np.arange(found.shape[0])
    flat = values.reshape(len(t), -1)
    cols = [np.interp(t, t[found], flat[found, j]) for j in range(flat.shape[1])]
    return np.stack(cols, axis=1).reshape(values.shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_matches_np_interp_and_keeps_found_rows(dtype):
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(9, 3, 2)).astype(dtype)
    want = _reference(pts.astype(np.float64), FOUND)
    pts[~FOUND] = np.nan  # rows without a face are never read
    got = fill_gaps(pts, FOUND)
    assert got.dtype == dtype and got.shape == pts.shape
    np.testing.assert_allclose(got, want.astype(dtype), rtol=1e-6, atol=1e-6)
    assert np.array_equal(got[FOUND], pts[FOUND])  # bit for bit


def test_torch_matches_numpy_with_a_tensor_found():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(9, 4)).astype(np.float32)
    got = fill_gaps(torch.from_numpy(x), torch.from_numpy(FOUND))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), _reference(x.astype(np.float64), FOUND), rtol=1e-6, atol=1e-6)


def test_flame_parameters_by_hand():
    found = np.array([False, True, False, False, True, True, False])
    raw = torch.tensor([9.0, 1.0, 9.0, 9.0, 4.0, 6.0, 9.0])  # 9 = garbage on frames without a face
    c = raw[:, None]
    params = EncoderOutput(global_pose=c.expand(-1, 3), cam=2 * c.expand(-1, 3), shape=3 * c.expand(-1, 4),
                           expression=-c.expand(-1, 5), eyelids=c.expand(-1, 2), jaw_pose=c.expand(-1, 3))
    filled = fill_gaps(params, found)
    want = torch.tensor([1.0, 1.0, 2.0, 3.0, 4.0, 6.0, 6.0])  # held, linear, held
    torch.testing.assert_close(filled.expression, -want[:, None].expand(-1, 5))
    torch.testing.assert_close(filled.shape, 3 * want[:, None].expand(-1, 4))
    torch.testing.assert_close(filled.cam, 2 * want[:, None].expand(-1, 3))
    torch.testing.assert_close(fill_gaps(params, np.ones(7, bool)).cam, params.cam)


def test_no_frame_with_a_face_is_an_error():
    for values in (np.zeros((4, 2)), torch.zeros(4, 2)):
        with pytest.raises(NoFaceError, match="no frame has a face"):
            fill_gaps(values, np.zeros(4, bool))
    assert issubclass(NoFaceError, ValueError)  # callers that catch bad input catch it too
    with pytest.raises(ValueError, match="one found flag per frame"):
        fill_gaps(np.zeros((4, 2)), np.ones(5, bool))
