"""Gap filling: against np.interp, a frame-by-frame loop and a hand computation, for numpy, torch and
FLAME parameters; found frames untouched; leading and trailing gaps held; the case where no frame has
a face."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tempsmirk.flame.params import FlameParams
from tempsmirk.video.gaps import NoFaceError, fill_gaps

FOUND = np.array([False, True, True, False, False, True, False, True, False])


def _reference(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """np.interp per (landmark, coordinate) column: linear between found frames, held at the ends."""
    t = np.arange(found.shape[0])
    flat = values.reshape(len(t), -1)
    cols = [np.interp(t, t[found], flat[found, j]) for j in range(flat.shape[1])]
    return np.stack(cols, axis=1).reshape(values.shape)


def _looped(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Frame by frame: walk back and forward to the nearest found frames; linear between them, the
    one found neighbour's value where there is only one (before the first, after the last)."""
    out = np.empty(values.shape, dtype=np.float64)
    t = found.shape[0]
    for i in range(t):
        if found[i]:
            out[i] = values[i]
            continue
        before = [j for j in range(i - 1, -1, -1) if found[j]]
        after = [j for j in range(i + 1, t) if found[j]]
        if not before:
            out[i] = values[after[0]]
        elif not after:
            out[i] = values[before[0]]
        else:
            a, b = before[0], after[0]
            out[i] = values[a] + (i - a) / (b - a) * (values[b] - values[a])
    return out


def _masks(rng: np.random.Generator) -> list[np.ndarray]:
    """Random found flags of 1..24 frames, plus the edge cases: one frame, only the first, only
    the last, one in the middle, every frame."""
    masks = [rng.random(int(rng.integers(1, 25))) < rng.uniform(0.1, 0.9) for _ in range(40)]
    masks += [np.array([True]), np.eye(1, 9, 0, dtype=bool)[0], np.eye(1, 9, 8, dtype=bool)[0],
              np.eye(1, 9, 4, dtype=bool)[0], np.ones(9, bool)]
    return [m for m in masks if m.any()]


def test_numpy_and_torch_match_a_frame_by_frame_loop_on_random_gaps():
    rng = np.random.default_rng(3)
    masks = _masks(rng)
    assert any(not m[0] for m in masks) and any(not m[-1] for m in masks)  # leading, trailing gaps
    for found in masks:
        x = rng.normal(size=(found.shape[0], 2, 3))
        want = _looped(x, found)
        x[~found] = np.nan
        np.testing.assert_allclose(fill_gaps(x, found), want, rtol=0, atol=1e-12)
        got = fill_gaps(torch.from_numpy(x), torch.from_numpy(found))
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


def test_leading_and_trailing_gaps_hold_the_nearest_found_value():
    x = np.array([np.nan, np.nan, 2.0, np.nan, 6.0, np.nan, np.nan])
    found = np.isfinite(x)
    np.testing.assert_array_equal(fill_gaps(x, found), [2.0, 2.0, 2.0, 4.0, 6.0, 6.0, 6.0])
    one = np.array([np.nan, 5.0, np.nan, np.nan])
    np.testing.assert_array_equal(fill_gaps(one, np.isfinite(one)), [5.0, 5.0, 5.0, 5.0])


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
    params = FlameParams(global_pose=c.expand(-1, 3), cam=2 * c.expand(-1, 3), shape=3 * c.expand(-1, 4),
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
    params = FlameParams(global_pose=torch.zeros(4, 3), cam=torch.zeros(4, 3), shape=torch.zeros(4, 4),
                         expression=torch.zeros(4, 5), eyelids=torch.zeros(4, 2), jaw_pose=torch.zeros(4, 3))
    with pytest.raises(NoFaceError, match="none of 4"):
        fill_gaps(params, torch.zeros(4, dtype=torch.bool))
    assert issubclass(NoFaceError, ValueError)  # callers that catch bad input catch it too


def test_found_flags_that_do_not_match_the_frames_are_refused():
    with pytest.raises(ValueError, match="one found flag per frame"):
        fill_gaps(np.zeros((4, 2)), np.ones(5, bool))
    with pytest.raises(ValueError, match="one found flag per frame"):
        fill_gaps(np.zeros((4, 2)), np.ones((4, 1), bool))
    params = FlameParams(global_pose=torch.zeros(4, 3), cam=torch.zeros(4, 3), shape=torch.zeros(1, 4),
                         expression=torch.zeros(4, 5), eyelids=torch.zeros(4, 2), jaw_pose=torch.zeros(4, 3))
    with pytest.raises(ValueError, match="shape has 1 frames"):
        fill_gaps(params, np.zeros(4, bool))  # checked before the no-face error
