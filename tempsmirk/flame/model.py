"""The FLAME layer (explained in chapter 1).

``FLAME`` is a stateless ``nn.Module``: every array is a buffer (so ``.to(device,
dtype)`` moves it), nothing has a batch size, and parameters are call arguments.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np
import torch
from torch import Tensor, nn

from tempsmirk.flame import io as fio
from tempsmirk.flame.landmarks import contour_row, rotation_yaw, vertices2landmarks
from tempsmirk.flame.lbs import lbs
from tempsmirk.flame.params import FlameParams

GLOBAL, NECK, JAW, LEFT_EYE, RIGHT_EYE = range(5)
__all__ = ["FLAME", "FlameOutput", "GLOBAL", "NECK", "JAW", "LEFT_EYE", "RIGHT_EYE"]

N_SHAPE_TOTAL = 300  # FLAME's shapedirs: 300 shape components, then expression ones


@functools.lru_cache(maxsize=4)
def _builtin_assets(seed: int):
    from tempsmirk.flame.builtin import builtin_head

    return builtin_head(seed)


@dataclass(frozen=True)
class FlameOutput:
    """Result of a FLAME call (tensors follow the inputs' dtype and device).

    vertices: (B, V, 3) FLAME units (metres), +y up, +z out of the face.
    landmarks68: (B, 68, 3) iBUG order — 17 yaw-dependent contour points, then the
        51 static ones — or ``None`` without landmark embeddings.
    landmarks_mp: (B, L_mp, 3) MediaPipe-matched points (105 for FLAME) or ``None``.
    joints: (B, J, 3) posed joints (global, neck, jaw, left eye, right eye).
    """

    vertices: Tensor
    landmarks68: Optional[Tensor]
    landmarks_mp: Optional[Tensor]
    joints: Tensor


class FLAME(nn.Module):
    """FLAME: shape β, expression ψ and pose θ → mesh, joints and landmarks.

    Build with :meth:`from_files` (real FLAME files or mappings in their layout) or
    :meth:`builtin` (the procedural stand-in head). Call with keyword tensors::

        out = flame(shape=(B,S), expression=(B,E), global_pose=(B,3), neck_pose=(B,3),
                    jaw_pose=(B,3), eye_pose=(B,6), eyelids=(B,2))

    Any omitted argument is zeros. Eyelid fields are added after skinning, as
    SMIRK does (so they are not rotated with the head). :meth:`forward_params` takes a
    :class:`~tempsmirk.flame.FlameParams` (neck and eyes at rest).
    """

    faces: Tensor
    v_template: Tensor
    shapedirs: Tensor
    posedirs: Tensor
    j_regressor: Tensor
    lbs_weights: Tensor
    parents: Tensor

    def __init__(
        self,
        model: fio.FlameArrays,
        n_shape: int = 300,
        n_exp: int = 50,
        static: Optional[fio.LandmarkEmbedding] = None,
        dynamic: Optional[fio.DynamicEmbedding] = None,
        mediapipe: Optional[fio.MediaPipeEmbedding] = None,
        eyelids: Optional[np.ndarray] = None,
        masks: Optional[Mapping[str, np.ndarray]] = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        K = model.shapedirs.shape[2]
        if not (0 < n_shape <= N_SHAPE_TOTAL and 0 <= n_exp <= K - N_SHAPE_TOTAL):
            raise ValueError(
                f"n_shape must be in 1..{N_SHAPE_TOTAL} and n_exp in 0..{K - N_SHAPE_TOTAL} for "
                f"{model.source} (shapedirs has {K} components); got n_shape={n_shape}, n_exp={n_exp}"
            )
        self.n_shape, self.n_exp = n_shape, n_exp
        dirs = np.concatenate(
            [model.shapedirs[:, :, :n_shape], model.shapedirs[:, :, N_SHAPE_TOTAL:N_SHAPE_TOTAL + n_exp]], axis=2
        )
        P = model.posedirs.shape[2]
        # torch.tensor copies: buffers never alias the (possibly cached) source arrays.
        f = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=dtype)  # noqa: E731
        self.register_buffer("faces", torch.tensor(model.faces, dtype=torch.long))
        self.register_buffer("v_template", f(model.v_template))
        self.register_buffer("shapedirs", f(dirs))
        self.register_buffer("posedirs", f(model.posedirs.reshape(-1, P).T))  # (P, 3V)
        self.register_buffer("j_regressor", f(model.j_regressor))
        self.register_buffer("lbs_weights", f(model.weights))
        self.register_buffer("parents", torch.as_tensor(model.parents, dtype=torch.long))
        self._parents = tuple(int(p) for p in model.parents)
        self.has_landmarks68 = static is not None and dynamic is not None
        if (static is None) != (dynamic is None):
            raise ValueError("landmarks68 need both the static and the dynamic embedding; got only one")
        if self.has_landmarks68:
            self.register_buffer("static_face_idx", torch.as_tensor(static.face_idx, dtype=torch.long))
            self.register_buffer("static_bary", f(static.bary))
            self.register_buffer("dynamic_face_idx", torch.as_tensor(dynamic.face_idx, dtype=torch.long))
            self.register_buffer("dynamic_bary", f(dynamic.bary))
        self.has_mediapipe = mediapipe is not None
        if mediapipe is not None:
            self.register_buffer("mp_face_idx", torch.as_tensor(mediapipe.face_idx, dtype=torch.long))
            self.register_buffer("mp_bary", f(mediapipe.bary))
            self.register_buffer("mp_indices", torch.as_tensor(mediapipe.landmark_indices, dtype=torch.long))
        self.has_eyelids = eyelids is not None
        if eyelids is not None:
            self.register_buffer("eyelid_dirs", f(eyelids))  # (2, V, 3): left, right
        self.masks: dict[str, np.ndarray] = dict(masks or {})
        self.source = model.source

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_files(
        cls,
        model: fio.Source,
        static_landmarks: Optional[fio.Source] = None,
        dynamic_landmarks: Optional[fio.Source] = None,
        mediapipe_landmarks: Optional[fio.Source] = None,
        eyelids: Any = None,
        masks: Optional[fio.Source] = None,
        n_shape: int = 300,
        n_exp: int = 50,
        dtype: torch.dtype = torch.float32,
        landmark_embedding: Optional[fio.Source] = None,
    ) -> "FLAME":
        """Load FLAME 2020 / 2023 files (or mappings in their layout) safely.

        To find these files in a user's folder, use :func:`tempsmirk.flame.load_flame`.

        Args:
            model: ``generic_model.pkl`` (chumpy-wrapped arrays are fine, chumpy is not needed)
                or a FLAME 2023 pickle, or the unpickled dict.
            static_landmarks: ``flame_static_embedding.pkl`` (51 points; RingNet).
            dynamic_landmarks: ``flame_dynamic_embedding.npy`` (79 × 17 contour; RingNet).
            landmark_embedding: DECA's / SMIRK's ``landmark_embedding.npy`` (both of the above
                in one file); give it or the RingNet pair, not both.
            mediapipe_landmarks: ``mediapipe_landmark_embedding.npz`` (105 points).
            eyelids: folder with ``l_eyelid.npy``/``r_eyelid.npy``, a (left, right) pair, or a mapping.
            masks: ``FLAME_masks.pkl`` (region name -> vertex indices).
            n_shape, n_exp: how many shape / expression components to use.
        Raises:
            FileNotFoundError, FlameFileError (names key, expected and found shape),
            UnsafePickleError (a pickle referenced a non-array global; nothing ran).
        """
        arrays = fio.load_flame_model(model)
        V = arrays.v_template.shape[0]
        F = arrays.faces.shape[0]
        static = fio.load_static_embedding(static_landmarks) if static_landmarks is not None else None
        dynamic = fio.load_dynamic_embedding(dynamic_landmarks) if dynamic_landmarks is not None else None
        if landmark_embedding is not None:
            if static is not None or dynamic is not None:
                raise ValueError("give either landmark_embedding (DECA/SMIRK) or the RingNet pair "
                                 "static_landmarks + dynamic_landmarks, not both")
            static, dynamic = fio.load_landmark_embedding(landmark_embedding)
        mp = fio.load_mediapipe_embedding(mediapipe_landmarks) if mediapipe_landmarks is not None else None
        for name, emb in (("static", static), ("dynamic", dynamic), ("MediaPipe", mp)):
            if emb is not None and emb.face_idx.size and emb.face_idx.max() >= F:
                raise fio.FlameFileError(
                    f"the {name} landmark embedding indexes face {int(emb.face_idx.max())}, but the model "
                    f"{arrays.source} has {F} faces: embedding and model do not belong together"
                )
        lids = fio.load_eyelids(eyelids, V) if eyelids is not None else None
        region = fio.load_masks(masks, V) if masks is not None else None
        return cls(arrays, n_shape, n_exp, static, dynamic, mp, lids, region, dtype)

    @classmethod
    def builtin(cls, seed: int = 0, n_shape: int = 300, n_exp: int = 50,
                dtype: torch.dtype = torch.float32) -> "FLAME":
        """The procedural stand-in head (:func:`tempsmirk.flame.builtin_head`) through :meth:`from_files`.

        The head's arrays are built once per seed and process (about a second), then reused.
        """
        h = _builtin_assets(seed)
        model = cls.from_files(h.model, h.static_landmarks, h.dynamic_landmarks, h.mediapipe_landmarks,
                               h.eyelids, h.masks, n_shape=n_shape, n_exp=n_exp, dtype=dtype)
        model.source = f"built-in head (seed {seed}; a stand-in, not FLAME)"
        return model

    # ------------------------------------------------------------------ forward
    @property
    def n_vertices(self) -> int:
        return self.v_template.shape[0]

    def forward(
        self,
        shape: Optional[Tensor] = None,
        expression: Optional[Tensor] = None,
        global_pose: Optional[Tensor] = None,
        neck_pose: Optional[Tensor] = None,
        jaw_pose: Optional[Tensor] = None,
        eye_pose: Optional[Tensor] = None,
        eyelids: Optional[Tensor] = None,
    ) -> FlameOutput:
        """Shapes: shape (B, ≤S), expression (B, ≤E), global/neck/jaw pose (B, 3),
        eye_pose (B, 6) = left then right eye, eyelids (B, 2) = left, right in [0, 1].
        Shorter shape/expression vectors are zero-padded."""
        given = [t for t in (shape, expression, global_pose, neck_pose, jaw_pose, eye_pose, eyelids)
                 if t is not None]
        B = given[0].shape[0] if given else 1
        ref = self.v_template
        dtype = given[0].dtype if given else ref.dtype

        def arg(t: Optional[Tensor], n: int, name: str) -> Tensor:
            if t is None:
                return ref.new_zeros(B, n, dtype=dtype)
            if t.dim() != 2 or t.shape[0] != B or t.shape[1] > n:
                raise ValueError(f"{name} should have shape ({B}, ≤{n}); got {tuple(t.shape)}")
            if t.shape[1] < n:
                t = torch.cat([t, t.new_zeros(B, n - t.shape[1])], dim=1)
            return t.to(dtype)

        coeffs = torch.cat([arg(shape, self.n_shape, "shape"), arg(expression, self.n_exp, "expression")], 1)
        full_pose = torch.cat([arg(global_pose, 3, "global_pose"), arg(neck_pose, 3, "neck_pose"),
                               arg(jaw_pose, 3, "jaw_pose"), arg(eye_pose, 6, "eye_pose")], 1)
        b = {k: v.to(dtype) for k, v in (("vt", self.v_template), ("sd", self.shapedirs),
                                         ("pd", self.posedirs), ("jr", self.j_regressor),
                                         ("w", self.lbs_weights))}
        vertices, joints = lbs(coeffs, full_pose, b["vt"], b["sd"], b["pd"], b["jr"], self.parents, b["w"])
        if eyelids is not None and self.has_eyelids:
            lids = arg(eyelids, 2, "eyelids")
            vertices = vertices + torch.einsum("bk,kvc->bvc", lids, self.eyelid_dirs.to(dtype))

        lmk68 = None
        if self.has_landmarks68:
            row = contour_row(rotation_yaw(full_pose, (NECK, GLOBAL)))
            face_idx = torch.cat([self.dynamic_face_idx[row], self.static_face_idx.expand(B, -1)], dim=1)
            bary = torch.cat([self.dynamic_bary[row], self.static_bary.expand(B, -1, -1)], dim=1)
            lmk68 = vertices2landmarks(vertices, self.faces, face_idx, bary)
        lmk_mp = None
        if self.has_mediapipe:
            lmk_mp = vertices2landmarks(vertices, self.faces, self.mp_face_idx, self.mp_bary)
        return FlameOutput(vertices=vertices, landmarks68=lmk68, landmarks_mp=lmk_mp, joints=joints)

    def forward_params(self, params: FlameParams, eye_pose: Optional[Tensor] = None) -> FlameOutput:
        """FLAME on a :class:`~tempsmirk.flame.FlameParams` (B, ...): shape, expression, global and
        jaw pose, eyelids; the neck at rest and the eyes too unless ``eye_pose`` (B, 6) is given
        (SMIRK drives FLAME without them). The camera is not used."""
        return self(shape=params.shape, expression=params.expression, global_pose=params.global_pose,
                    jaw_pose=params.jaw_pose, eye_pose=eye_pose, eyelids=params.eyelids)

    def region_faces(self, region: str = "face") -> Tensor:
        """(F,) bool: faces whose three vertices all lie in the named mask region."""
        if region not in self.masks:
            raise KeyError(f"no region mask {region!r}; this model has {sorted(self.masks)}")
        inside = torch.zeros(self.n_vertices, dtype=torch.bool, device=self.faces.device)
        inside[torch.as_tensor(self.masks[region], device=self.faces.device)] = True
        return inside[self.faces].all(dim=1)

