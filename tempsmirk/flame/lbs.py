"""Linear blend skinning as pure functions (explained in chapter 1, "FLAME").

Shape vocabulary: B batch, V vertices, J joints, S/E shape/expression coefficients,
K = S + E blend coefficients, P = 9·(J−1) pose-corrective features.
All functions are differentiable, dtype/device follow their inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "batch_rodrigues",
    "blend_shapes",
    "pose_features",
    "vertices2joints",
    "rigid_transforms",
    "skin",
    "lbs",
]


def batch_rodrigues(rot_vecs: Tensor, eps: float = 1e-8) -> Tensor:
    """Axis-angle to rotation matrices.

    Args:
        rot_vecs: (N, 3) axis-angle vectors (radians).
    Returns:
        (N, 3, 3) rotation matrices.

    Uses the same ``eps`` shift as the reference FLAME/SMPL code so that the
    zero rotation stays differentiable (the angle never reaches exactly 0).
    """
    angle = torch.linalg.norm(rot_vecs + eps, dim=1, keepdim=True)  # (N, 1)
    axis = rot_vecs / angle
    cos = torch.cos(angle)[:, :, None]
    sin = torch.sin(angle)[:, :, None]
    rx, ry, rz = axis.unbind(dim=1)
    zeros = torch.zeros_like(rx)
    k = torch.stack([zeros, -rz, ry, rz, zeros, -rx, -ry, rx, zeros], dim=1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=rot_vecs.dtype, device=rot_vecs.device)[None]
    return eye + sin * k + (1 - cos) * torch.bmm(k, k)


def blend_shapes(coeffs: Tensor, dirs: Tensor) -> Tensor:
    """Linear blend-shape offsets.

    Args:
        coeffs: (B, K) coefficients.
        dirs: (V, 3, K) basis.
    Returns:
        (B, V, 3) vertex offsets ``sum_k coeffs[b, k] * dirs[:, :, k]``.
    """
    V, C, K = dirs.shape
    # One GEMM against a view of the basis (einsum would copy the (V, 3, K) basis).
    return (coeffs @ dirs.reshape(V * C, K).T).view(coeffs.shape[0], V, C)


def pose_features(rot_mats: Tensor) -> Tensor:
    """Pose-corrective features: (R − I) of every non-root joint, flattened.

    Args:
        rot_mats: (B, J, 3, 3) per-joint rotations, root first.
    Returns:
        (B, 9·(J−1)) features in the layout FLAME's ``posedirs`` expects.
    """
    eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
    return (rot_mats[:, 1:] - eye).reshape(rot_mats.shape[0], -1)


def vertices2joints(j_regressor: Tensor, vertices: Tensor) -> Tensor:
    """Regress joint locations. j_regressor (J, V) dense, vertices (B, V, 3) -> (B, J, 3)."""
    return torch.matmul(j_regressor, vertices)


def rigid_transforms(rot_mats: Tensor, joints: Tensor, parents: Tensor) -> tuple[Tensor, Tensor]:
    """Compose the kinematic chain.

    Args:
        rot_mats: (B, J, 3, 3) local rotations.
        joints: (B, J, 3) rest-pose joint locations.
        parents: (J,) long, ``parents[0] = -1`` and ``parents[j] < j``.
    Returns:
        posed_joints: (B, J, 3) joint locations after posing.
        transforms: (B, J, 4, 4) world transforms relative to the rest pose
            (applied to a rest-pose point they give its posed position).
    """
    B, J = joints.shape[:2]
    rel = joints.clone()
    rel[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
    local = torch.zeros(B, J, 4, 4, dtype=joints.dtype, device=joints.device)
    local[..., :3, :3] = rot_mats
    local[..., :3, 3] = rel
    local[..., 3, 3] = 1
    chain = [local[:, 0]]
    for j in range(1, J):  # J = 5 for FLAME: a Python loop over joints, not vertices
        chain.append(chain[int(parents[j])] @ local[:, j])
    world = torch.stack(chain, dim=1)  # (B, J, 4, 4)
    posed_joints = world[..., :3, 3]
    # Remove the rest-pose joint location so the transform acts on rest vertices.
    offset = torch.einsum("bjik,bjk->bji", world[..., :3, :3], joints)
    transforms = world.clone()
    transforms[..., :3, 3] = world[..., :3, 3] - offset
    return posed_joints, transforms


def skin(vertices: Tensor, weights: Tensor, transforms: Tensor) -> Tensor:
    """Apply blended rigid transforms.

    Args:
        vertices: (B, V, 3) rest-pose (shaped and pose-corrected) vertices.
        weights: (V, J) skinning weights, rows sum to 1.
        transforms: (B, J, 4, 4) from :func:`rigid_transforms`.
    Returns:
        (B, V, 3) posed vertices.
    """
    B, J = transforms.shape[:2]
    # Blend rotations and translations with two broadcast GEMMs over the small (B, J, ...)
    # transforms; slicing one blended (B, V, 3, 4) tensor instead makes autograd zero-fill
    # full-size gradients for every slice, which dominated the backward pass.
    rot = torch.matmul(weights, transforms[..., :3, :3].reshape(B, J, 9)).view(B, -1, 3, 3)
    # contiguous(): a strided right operand sends broadcast matmul down a very slow path.
    trans = torch.matmul(weights, transforms[..., :3, 3].contiguous())
    return torch.matmul(rot, vertices.unsqueeze(-1)).squeeze(-1) + trans


def lbs(
    coeffs: Tensor,
    full_pose: Tensor,
    v_template: Tensor,
    shapedirs: Tensor,
    posedirs: Tensor,
    j_regressor: Tensor,
    parents: Tensor,
    weights: Tensor,
) -> tuple[Tensor, Tensor]:
    """Full FLAME/SMPL-style linear blend skinning.

    Args:
        coeffs: (B, K) shape then expression coefficients.
        full_pose: (B, 3·J) axis-angle per joint, root first.
        v_template: (V, 3) template.
        shapedirs: (V, 3, K) shape+expression basis.
        posedirs: (P, 3·V) pose-corrective basis, P = 9·(J−1).
        j_regressor: (J, V) dense joint regressor.
        parents: (J,) long kinematic parents.
        weights: (V, J) skinning weights.
    Returns:
        vertices: (B, V, 3) posed vertices.
        joints: (B, J, 3) posed joints.
    """
    B = coeffs.shape[0]
    v_shaped = v_template[None] + blend_shapes(coeffs, shapedirs)
    joints = vertices2joints(j_regressor, v_shaped)
    rot_mats = batch_rodrigues(full_pose.reshape(-1, 3)).view(B, -1, 3, 3)
    v_posed = v_shaped + (pose_features(rot_mats) @ posedirs).view(B, -1, 3)
    posed_joints, transforms = rigid_transforms(rot_mats, joints, parents)
    return skin(v_posed, weights, transforms), posed_joints
