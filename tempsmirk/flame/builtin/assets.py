"""The built-in head's files: :class:`HeadAssets` in memory, written by :meth:`HeadAssets.save`.

The in-memory layout is that of FLAME's and SMIRK's real files (guide, section 2), so
:meth:`HeadAssets.save` writes files the real loaders read unchanged (:mod:`tempsmirk.flame.io`).
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tempsmirk.atomic import atomic_write_bytes

__all__ = ["HeadAssets", "HeadFiles"]


@dataclass(frozen=True)
class HeadFiles:
    """Where :meth:`HeadAssets.save` wrote each file (FLAME's and SMIRK's file names)."""

    model: Path                 # generic_model.pkl
    static_landmarks: Path      # flame_static_embedding.pkl
    dynamic_landmarks: Path     # flame_dynamic_embedding.npy
    mediapipe_landmarks: Path   # mediapipe_landmark_embedding.npz
    l_eyelid: Path              # l_eyelid.npy
    r_eyelid: Path              # r_eyelid.npy
    masks: Path                 # FLAME_masks.pkl

    @property
    def directory(self) -> Path:
        return self.model.parent


@dataclass(frozen=True)
class HeadAssets:
    """A head model and its landmark embeddings, in FLAME's in-memory file layout.

    Attributes:
        model: FLAME pickle contents: ``v_template`` (V, 3) float64, ``f`` (F, 3) uint32,
            ``shapedirs`` (V, 3, 400) float64 (300 identity then 100 expression),
            ``posedirs`` (V, 3, 36) float64, ``J_regressor`` scipy CSC (5, V),
            ``weights`` (V, 5) float64, ``kintree_table`` (2, 5) int64, plus ``J`` (5, 3).
        static_landmarks: ``lmk_face_idx`` (51,) uint32, ``lmk_b_coords`` (51, 3) — iBUG 17..67.
        dynamic_landmarks: ``lmk_face_idx`` / ``lmk_b_coords``: lists of 79 (17,) / (17, 3)
            arrays — iBUG 0..16 for yaw 0..39° (rows 0..39) and −1..−39° (rows 40..78).
        mediapipe_landmarks: ``lmk_face_idx`` (105,), ``lmk_b_coords`` (105, 3),
            ``landmark_indices`` (105,) into MediaPipe's 478 (ascending).
        eyelids: ``l_eyelid`` / ``r_eyelid`` (V, 3): weight 1 closes that upper lid.
        masks: region name -> (K,) int64 vertex indices (``FLAME_masks.pkl`` keys).
    """

    model: dict[str, Any]
    static_landmarks: dict[str, np.ndarray]
    dynamic_landmarks: dict[str, list[np.ndarray]]
    mediapipe_landmarks: dict[str, np.ndarray]
    eyelids: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]

    def save(self, directory: str | os.PathLike) -> HeadFiles:
        """Write every asset into ``directory`` in the real files' formats (each atomically)."""
        d = Path(directory)
        files = HeadFiles(
            model=d / "generic_model.pkl",
            static_landmarks=d / "flame_static_embedding.pkl",
            dynamic_landmarks=d / "flame_dynamic_embedding.npy",
            mediapipe_landmarks=d / "mediapipe_landmark_embedding.npz",
            l_eyelid=d / "l_eyelid.npy",
            r_eyelid=d / "r_eyelid.npy",
            masks=d / "FLAME_masks.pkl",
        )
        atomic_write_bytes(files.model, pickle.dumps(self.model, protocol=2))
        atomic_write_bytes(files.static_landmarks, pickle.dumps(self.static_landmarks, protocol=2))
        # FLAME's dynamic embedding is np.save of a 0-d object array holding the dict.
        holder = np.empty((), dtype=object)
        holder[()] = self.dynamic_landmarks
        atomic_write_bytes(files.dynamic_landmarks, _npy_bytes(holder, allow_pickle=True))
        buf = io.BytesIO()
        np.savez(buf, **self.mediapipe_landmarks)
        atomic_write_bytes(files.mediapipe_landmarks, buf.getvalue())
        atomic_write_bytes(files.l_eyelid, _npy_bytes(self.eyelids["l_eyelid"]))
        atomic_write_bytes(files.r_eyelid, _npy_bytes(self.eyelids["r_eyelid"]))
        atomic_write_bytes(files.masks, pickle.dumps(self.masks, protocol=2))
        return files


def _npy_bytes(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()
