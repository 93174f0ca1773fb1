"""FLAME evaluated only where the landmarks are (chapter 7, "tracking a real video").

Shapes: B frames, V_s the vertices the landmarks use, L landmarks, J joints, S shape and E
expression coefficients, K = 1 + S + E + 9 per-vertex blend terms (template, identity,
expression, the jaw's nine pose correctives).

**Which vertices.** A landmark is a barycentric combination of one triangle's three corners
(:func:`tempsmirk.flame.landmarks.vertices2landmarks`). The fit needs the MediaPipe points, the 51
static iBUG points and the 17-point jaw contour, whose triangles depend on the head's yaw: one of
79 rows is chosen per frame, so the corners of **all 79 rows'** triangles are kept. That is a
few hundred of FLAME's 5023 vertices (V_s; 445 of the built-in head's 5407).

**Skinning those vertices only, folded into the landmarks.** The fit never poses the neck or the
eyes (SMIRK predicts neither), and with those rotations at exactly zero every joint but the jaw
moves rigidly with the root: FLAME's skinning of vertex v reduces to::

    LBS(v) = R0 [ w_r (v − J0) + w_j (Rj (v − J2) + J2 − J0) ] + (w_r + w_j) J0

with R0, Rj the root and jaw rotations, J0, J2 their joints, w_j the vertex's jaw weight and w_r
the sum of its other weights. The rest-pose vertex v, the joints, and the jaw's pose correctives
(Rj − I) are all linear in the coefficients, so each landmark ``Σ_k b_k LBS(v_k)`` is::

    lmk = R0 [ a·v − α J0 + Rj (c·v − γ J2) + γ (J2 − J0) ] + σ J0 + e·eyelids

where ``a·v = Σ_k b_k w_r,k v_k`` and ``c·v = Σ_k b_k w_j,k v_k`` are linear maps of the blend
coefficients whose bases (L, 3, K) are computed once from the kept vertices' template, blend
shapes and correctives; α, γ, σ are the landmarks' summed weights and e the eyelid fields
(added after skinning, unrotated, as :class:`~tempsmirk.flame.FLAME` adds them). Joints are
linear too (``J_regressor @ v_template`` and ``J_regressor @ shapedirs`` precomputed). No vertex
is formed during fitting: an iteration costs two small GEMMs per frame instead of a 5023-vertex
mesh, and gives FLAME's ``landmarks_mp`` and ``landmarks68`` to rounding (the tests compare
both, in float64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from tempsmirk.flame.landmarks import contour_row, rotation_yaw
from tempsmirk.flame.lbs import batch_rodrigues
from tempsmirk.flame.model import FLAME, GLOBAL, JAW

__all__ = ["SparseLandmarks", "LandmarkFlame", "landmark_matrix"]

_JAW_FEATURES = slice(9 * (JAW - 1), 9 * JAW)  # the jaw's (R − I) entries among FLAME's pose features


@dataclass(frozen=True)
class SparseLandmarks:
    """Landmarks of a batch of frames in FLAME units (metres), as :class:`~tempsmirk.flame.FlameOutput`.

    mediapipe: (B, L_mp, 3) the MediaPipe-matched points (105 for FLAME).
    contour: (B, 17, 3) the yaw-dependent jaw contour (iBUG 0–16), or None when the model has no
        iBUG embedding.
    inner: (B, 51, 3) the static iBUG points 17–67, or None (not asked for, or no embedding).
    """

    mediapipe: Tensor
    contour: Optional[Tensor] = None
    inner: Optional[Tensor] = None

    @property
    def landmarks68(self) -> Optional[Tensor]:
        """(B, 68, 3) in iBUG order, as FLAME's ``landmarks68``; None unless both parts are here."""
        if self.contour is None or self.inner is None:
            return None
        return torch.cat([self.contour, self.inner], dim=1)


def landmark_matrix(faces: Tensor, face_idx: Tensor, bary: Tensor, vertex_ids: Tensor) -> Tensor:
    """Landmarks as a linear map of the kept vertices: face_idx (...,), bary (..., 3) -> (..., V_s).

    Row l holds landmark l's barycentric weights in the columns of its triangle's corners
    (``vertex_ids`` (V_s,) sorted, the kept vertex of each column).
    """
    corners = torch.searchsorted(vertex_ids, faces[face_idx])  # (..., 3) columns
    out = bary.new_zeros(*face_idx.shape, vertex_ids.numel())
    return out.scatter_add_(-1, corners, bary)


class LandmarkFlame(nn.Module):
    """FLAME's landmarks without its mesh: exact for zero neck and eye rotation (module docstring).

    Build from a :class:`~tempsmirk.flame.FLAME` that has a MediaPipe embedding (the iBUG
    embeddings are used when present); the bases are computed in float64 and stored in FLAME's
    dtype, on its device. ``shape`` may have one row for the whole batch (one identity per clip):
    it is then blended once per call, not once per frame.
    """

    def __init__(self, flame: FLAME) -> None:
        super().__init__()
        if not flame.has_mediapipe:
            raise ValueError(f"fitting needs a FLAME with a MediaPipe landmark embedding; {flame.source} has "
                             "none (put mediapipe_landmark_embedding.npz beside the model file)")
        dtype = flame.v_template.dtype
        f64 = lambda t: t.detach().to(torch.float64)  # noqa: E731 - bases are built in float64
        faces = flame.faces
        used = [flame.mp_face_idx.reshape(-1)]
        if flame.has_landmarks68:
            used += [flame.static_face_idx.reshape(-1), flame.dynamic_face_idx.reshape(-1)]
        ids = torch.unique(faces[torch.cat(used)])  # (V_s,) sorted
        self.n_shape, self.n_exp = flame.n_shape, flame.n_exp
        self.has_landmarks68 = flame.has_landmarks68
        self.register_buffer("vertex_ids", ids)
        self.register_buffer("mp_indices", flame.mp_indices.clone())

        # Per kept vertex, the K blend terms of its rest position: (V_s, 3, K).
        n_pose = flame.posedirs.shape[0]
        jaw_dirs = f64(flame.posedirs).view(n_pose, -1, 3)[_JAW_FEATURES, ids].permute(1, 2, 0)
        terms = torch.cat([f64(flame.v_template)[ids, :, None], f64(flame.shapedirs)[ids], jaw_dirs], dim=2)
        weights = f64(flame.lbs_weights)[ids]
        w_jaw = weights[:, JAW]
        w_rest = weights.sum(1) - w_jaw
        lids = f64(flame.eyelid_dirs)[:, ids] if flame.has_eyelids else None  # (2, V_s, 3)
        self.has_eyelids = lids is not None

        s = flame.n_shape

        def bases(prefix: str, rows: Tensor) -> None:
            """Register the bases of landmarks given as rows (..., V_s) of weights on the kept vertices:
            ``{prefix}_identity`` (..., 2, 3, 1 + S) and ``{prefix}_moving`` (..., 2, 3, E + 9) for
            (a·v, c·v); ``_alpha``, ``_gamma``, ``_sigma`` (...,); ``_eyelid`` (..., 3, 2)."""
            a, c = rows * w_rest, rows * w_jaw
            basis = torch.stack([torch.einsum("...v,vck->...ck", m, terms) for m in (a, c)], dim=-3)
            out = {"identity": basis[..., :1 + s], "moving": basis[..., 1 + s:],
                   "alpha": a.sum(-1), "gamma": c.sum(-1), "sigma": (a + c).sum(-1)}
            if lids is not None:
                out["eyelid"] = torch.einsum("...v,kvc->...ck", rows, lids)
            for name, value in out.items():
                self.register_buffer(f"{prefix}_{name}", value.to(dtype).contiguous())

        # "static": the MediaPipe points, then (with an iBUG embedding) the 51 inner iBUG points.
        rows = landmark_matrix(faces, flame.mp_face_idx, f64(flame.mp_bary), ids)
        if flame.has_landmarks68:
            rows = torch.cat([rows, landmark_matrix(faces, flame.static_face_idx, f64(flame.static_bary), ids)])
        bases("static", rows)
        if flame.has_landmarks68:
            # The contour: its triangle changes with the yaw row, so it stays in vertex space — the
            # rest positions of its V_c corner vertices, and per (row, point, corner) the vertex and
            # its weights b·w_r, b·w_j — rather than 79 × 17 landmark bases gathered every frame.
            corner_ids = faces[flame.dynamic_face_idx]  # (79, 17, 3) FLAME vertex ids
            c_ids, corners = torch.unique(corner_ids, return_inverse=True)
            at = torch.searchsorted(ids, c_ids)  # rows of the kept vertices
            self.register_buffer("contour_identity", terms[at, :, :1 + s].to(dtype).contiguous())  # (V_c, 3, 1+S)
            self.register_buffer("contour_moving", terms[at, :, 1 + s:].permute(2, 0, 1)
                                 .reshape(-1, 3 * len(at)).to(dtype).contiguous())  # (E + 9, V_c·3)
            self.register_buffer("contour_corners", corners)  # (79, 17, 3) into V_c
            bary = f64(flame.dynamic_bary)
            self.register_buffer("contour_a", (bary * w_rest[at][corners]).to(dtype))  # (79, 17, 3)
            self.register_buffer("contour_c", (bary * w_jaw[at][corners]).to(dtype))
            if lids is not None:
                self.register_buffer("contour_eyelid", torch.einsum("rlk,rlkmc->rlcm", bary,
                                                                    lids[:, at][:, corners].permute(1, 2, 3, 0, 4))
                                     .to(dtype))  # (79, 17, 3, 2)
        self.n_mp = int(flame.mp_face_idx.numel())
        j_reg = f64(flame.j_regressor)
        self.register_buffer("j_template", (j_reg @ f64(flame.v_template)).to(dtype))  # (J, 3)
        self.register_buffer("j_dirs", torch.einsum("jv,vck->jck", j_reg, f64(flame.shapedirs)).to(dtype))
        self.n_vertices = int(ids.numel())
        self.source = flame.source

    def forward(self, shape: Tensor, expression: Tensor, global_pose: Tensor, jaw_pose: Tensor,
                eyelids: Optional[Tensor] = None, inner: bool = True) -> SparseLandmarks:
        """Landmarks of B frames, neck and eyes at rest.

        Args:
            shape: (B, S) or (1, S) for one identity shared by the batch.
            expression: (B, E). global_pose, jaw_pose: (B, 3) axis-angle. eyelids: (B, 2) or None.
            inner: also compute the 51 static iBUG points (the fit uses only the contour).
        Returns:
            :class:`SparseLandmarks`, equal (to rounding) to FLAME's ``landmarks_mp`` and
            ``landmarks68`` for the same arguments.
        """
        b = expression.shape[0]
        if (shape.dim() != 2 or shape.shape[1] != self.n_shape or shape.shape[0] not in (1, b)
                or expression.shape[1] != self.n_exp):
            raise ValueError(f"expected shape (1 or {b}, {self.n_shape}) and expression ({b}, {self.n_exp}); "
                             f"got {tuple(shape.shape)} and {tuple(expression.shape)}")
        s = self.n_shape
        r0 = batch_rodrigues(global_pose)
        rj = batch_rodrigues(jaw_pose)
        eye = torch.eye(3, dtype=rj.dtype, device=rj.device)
        per_frame = torch.cat([expression, (rj - eye).reshape(b, 9)], dim=1)  # (B, E + 9)
        joints = (self.j_template + torch.einsum("bk,jck->bjc", shape, self.j_dirs[..., :s])
                  + torch.einsum("bk,jck->bjc", expression, self.j_dirs[..., s:]))  # (B, J, 3)
        j0, j2 = joints[:, GLOBAL, None], joints[:, JAW, None]  # (B, 1, 3)

        def pose(av: Tensor, cv: Tensor, alpha: Tensor, gamma: Tensor, sigma: Tensor) -> Tensor:
            """The module docstring's formula: (B, L, 3) each, weights (B or 1, L) -> (B, L, 3)."""
            al, ga = alpha[..., None], gamma[..., None]
            local = av - al * j0 + _rotate(cv - ga * j2, rj) + ga * (j2 - j0)
            return _rotate(local, r0) + sigma[..., None] * j0

        # MediaPipe and inner iBUG points: identity part per clip (or frame), the rest in one GEMM.
        n = self.static_alpha.shape[0] if inner and self.has_landmarks68 else self.n_mp
        ident, moving = self.static_identity[:n], self.static_moving[:n]  # (L, 2, 3, ·)
        fixed = ident[..., 0] + torch.einsum("lmck,bk->blmc", ident[..., 1:], shape)
        moving = (per_frame @ moving.reshape(-1, per_frame.shape[1]).T).view(b, *moving.shape[:3])
        av, cv = (fixed + moving).unbind(2)
        static = pose(av, cv, self.static_alpha[:n], self.static_gamma[:n], self.static_sigma[:n])
        if self.has_eyelids and eyelids is not None:
            static = static + torch.einsum("lck,bk->blc", self.static_eyelid[:n], eyelids)
        contour = None
        if self.has_landmarks68:
            # The contour row follows the head's yaw (neck at rest), as in FLAME.forward.
            yaw = rotation_yaw(torch.cat([global_pose, torch.zeros_like(global_pose)], 1).detach(), (1, 0))
            row = contour_row(yaw)
            ident = self.contour_identity  # (V_c, 3, 1 + S)
            verts = ident[..., 0] + torch.einsum("vck,bk->bvc", ident[..., 1:], shape)  # (B or 1, V_c, 3)
            verts = verts + (per_frame @ self.contour_moving).view(b, -1, 3)  # (B, V_c, 3)
            corners = verts[torch.arange(b, device=verts.device)[:, None, None], self.contour_corners[row]]
            a, c = self.contour_a[row], self.contour_c[row]  # (B, 17, 3)
            av = (a[..., None] * corners).sum(2)
            cv = (c[..., None] * corners).sum(2)
            alpha, gamma = a.sum(-1), c.sum(-1)
            contour = pose(av, cv, alpha, gamma, alpha + gamma)
            if self.has_eyelids and eyelids is not None:
                contour = contour + torch.einsum("blck,bk->blc", self.contour_eyelid[row], eyelids)
        return SparseLandmarks(mediapipe=static[:, :self.n_mp], contour=contour,
                               inner=static[:, self.n_mp:] if n > self.n_mp else None)


def _rotate(points: Tensor, rot: Tensor) -> Tensor:
    """Rotate each frame's points: points (B, L, 3), rot (B, 3, 3) -> (B, L, 3) = points @ rotᵀ.

    One ``bmm`` (a broadcast product and sum was four times slower on CPUs, forwards and backwards).
    """
    return torch.bmm(points, rot.transpose(1, 2))
