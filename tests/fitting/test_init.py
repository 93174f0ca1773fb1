"""The closed-form start: axis-angle from matrices, and rotation + camera from 2D points."""

from __future__ import annotations

import math

import torch

from tempsmirk.fitting import matrix_to_axis_angle, rigid_from_landmarks
from tempsmirk.flame.lbs import batch_rodrigues
from tempsmirk.render import project_points


def test_matrix_to_axis_angle_inverts_rodrigues():
    g = torch.Generator().manual_seed(0)
    axis = torch.nn.functional.normalize(torch.randn(400, 3, generator=g, dtype=torch.float64), dim=1)
    angle = torch.cat([torch.rand(380, generator=g, dtype=torch.float64) * (math.pi - 1e-6),
                       torch.tensor([0.0, 1e-9, 1e-5, math.pi - 1e-3, math.pi - 1e-7] * 4, dtype=torch.float64)])
    aa = axis * angle[:, None]
    back = matrix_to_axis_angle(batch_rodrigues(aa))
    # Compare rotations (near π the axis-angle is ± ambiguous; the rotation is not). batch_rodrigues
    # itself is exact only to ~1e-8 (its eps shift of the angle).
    torch.testing.assert_close(batch_rodrigues(back), batch_rodrigues(aa), atol=1e-7, rtol=0)
    small = angle < 3.0
    torch.testing.assert_close(back[small], aa[small], atol=1e-7, rtol=0)


def test_rigid_from_landmarks_exact_for_rigid_projections():
    """Noiseless orthographic projections of a rotated, scaled, shifted point set (rotating about
    a root joint, as FLAME's global pose does) give back rotation and camera."""
    g = torch.Generator().manual_seed(1)
    points = torch.randn(60, 3, generator=g, dtype=torch.float64) * torch.tensor(
        [0.05, 0.06, 0.03], dtype=torch.float64
    )
    root = torch.tensor([0.001, -0.02, -0.03], dtype=torch.float64)
    t = 8
    pose = (torch.rand(t, 3, generator=g, dtype=torch.float64) - 0.5) * torch.tensor(
        [0.6, 1.2, 0.4], dtype=torch.float64
    )
    cam = torch.stack(
        [
            5 + 3 * torch.rand(t, generator=g, dtype=torch.float64),
            (torch.rand(t, generator=g, dtype=torch.float64) - 0.5) * 0.05,
            (torch.rand(t, generator=g, dtype=torch.float64) - 0.5) * 0.05,
        ],
        1,
    )
    posed = torch.einsum("tij,lj->tli", batch_rodrigues(pose), points - root) + root
    targets = project_points(posed, cam).normalised
    valid = torch.ones(t, 60, dtype=torch.bool)
    valid[0, :50] = False  # 10 points are still enough
    got_pose, got_cam = rigid_from_landmarks(points, root, targets, valid)
    torch.testing.assert_close(batch_rodrigues(got_pose), batch_rodrigues(pose), atol=1e-7, rtol=0)
    torch.testing.assert_close(got_cam, cam, atol=1e-8, rtol=1e-8)
    # NaN where invalid is ignored, and a frame without points gets a finite answer.
    targets[1, :5] = float("nan")
    valid[1, :5] = False
    valid[2] = False
    p2, c2 = rigid_from_landmarks(points, root, targets, valid)
    torch.testing.assert_close(c2[1], cam[1], atol=1e-8, rtol=1e-8)
    assert torch.isfinite(p2).all() and torch.isfinite(c2).all()
