"""Finding a user's FLAME files: the one resolver behind ``--flame``, ``model.flame_path`` and the
book's ``flame_path`` (explained in chapter 1; the accepted layouts are the README's "Real assets").

A user points at **a model file or a folder**:

- SMIRK's ``assets/`` folder: ``FLAME2020/generic_model.pkl``, ``landmark_embedding.npy``,
  ``mediapipe_landmark_embedding/mediapipe_landmark_embedding.npz``,
  ``FLAME_masks/FLAME_masks.pkl``, ``FLAME_masks/FLAME_masks_triangles.npy``,
  ``l_eyelid.npy``, ``r_eyelid.npy``;
- DECA's ``data/`` folder: ``generic_model.pkl``, ``landmark_embedding.npy``;
- any folder with the files side by side (the model as ``generic_model.pkl``; the landmarks
  as DECA's/SMIRK's ``landmark_embedding.npy`` or RingNet's ``flame_static_embedding.pkl`` +
  ``flame_dynamic_embedding.npy``);
- a model file (``generic_model.pkl``, a FLAME 2023 pickle, any name).

Each other file is looked for beside the model, then one folder up when the model lies in a
``FLAME2020`` folder (SMIRK's ``assets/FLAME2020/``).

:func:`resolve_flame_assets` returns the paths found (:class:`FlameAssets`);
:func:`load_flame` loads them into a :class:`~tempsmirk.flame.FLAME`, failing with the missing
file and the feature that needs it when a caller requires that feature.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

import torch

if TYPE_CHECKING:
    from tempsmirk.flame.model import FLAME

__all__ = ["FlameAssets", "AssetFeature", "FEATURES", "LAYOUT", "TRAINING_FEATURES", "MissingAssetWarning",
           "resolve_flame_assets", "load_flame"]

PathLike = Union[str, os.PathLike]

#: Where each file is looked for, relative to an asset folder, in order (the README's table).
LAYOUT: dict[str, tuple[str, ...]] = {
    "model": ("FLAME2020/generic_model.pkl", "generic_model.pkl"),
    "landmark_embedding": ("landmark_embedding.npy",),
    "static_landmarks": ("flame_static_embedding.pkl",),
    "dynamic_landmarks": ("flame_dynamic_embedding.npy",),
    "mediapipe_landmarks": ("mediapipe_landmark_embedding/mediapipe_landmark_embedding.npz",
                            "mediapipe_landmark_embedding.npz"),
    "l_eyelid": ("l_eyelid.npy",),
    "r_eyelid": ("r_eyelid.npy",),
    "masks": ("FLAME_masks/FLAME_masks.pkl", "FLAME_masks.pkl"),
    "mask_triangles": ("FLAME_masks/FLAME_masks_triangles.npy", "FLAME_masks_triangles.npy"),
}


@dataclass(frozen=True)
class AssetFeature:
    """What a group of optional files gives: ``files`` in words, ``used_for`` the features."""

    name: str
    files: str
    used_for: str


FEATURES: dict[str, AssetFeature] = {f.name: f for f in (
    AssetFeature("landmarks68", "landmark_embedding.npy (DECA/SMIRK) or flame_static_embedding.pkl + "
                 "flame_dynamic_embedding.npy (RingNet)",
                 "the 68 iBUG landmarks: SMIRK's FAN landmark loss and the training images' landmarks"),
    AssetFeature("mediapipe", "mediapipe_landmark_embedding.npz",
                 "the 105 MediaPipe landmarks: SMIRK's MediaPipe landmark loss, the training images' "
                 "landmarks and MEAD clips"),
    AssetFeature("eyelids", "l_eyelid.npy + r_eyelid.npy",
                 "SMIRK's eyelid blendshapes (without them the eyelid parameters move nothing)"),
    AssetFeature("masks", "FLAME_masks.pkl",
                 "FLAME's vertex regions: rendering only the face region, as SMIRK does, and the "
                 "masking's region weights"),
    AssetFeature("mask_triangles", "FLAME_masks_triangles.npy",
                 "SMIRK's triangle regions (region name -> triangle indices) for the masking's "
                 "sampling weights"),
)}

#: What training needs (the landmark losses and the training images' landmarks).
TRAINING_FEATURES: tuple[str, ...] = ("landmarks68", "mediapipe")
#: Features SMIRK uses; a missing one that is not required is named in a warning.
_WARN_FEATURES: tuple[str, ...] = ("landmarks68", "mediapipe", "eyelids", "masks")


class MissingAssetWarning(UserWarning):
    """An optional FLAME asset file was not found; the warning names it and what it is for."""


@dataclass(frozen=True)
class FlameAssets:
    """The FLAME files found for one ``flame_path``; ``None`` where a file was not found.

    model: the FLAME pickle (2020 ``generic_model.pkl`` or a 2023 pickle).
    landmark_embedding: DECA's/SMIRK's ``landmark_embedding.npy`` (static + dynamic in one file).
    static_landmarks, dynamic_landmarks: RingNet's ``flame_static_embedding.pkl`` /
        ``flame_dynamic_embedding.npy`` (the same numbers; used when ``landmark_embedding`` is absent).
    mediapipe_landmarks: ``mediapipe_landmark_embedding.npz``: ``lmk_face_idx`` (105,),
        ``lmk_b_coords`` (105, 3), ``landmark_indices`` (105,) into MediaPipe's 478 points.
    eyelids: (``l_eyelid.npy``, ``r_eyelid.npy``): two (V, 3) displacement fields.
    masks: ``FLAME_masks.pkl``: region name -> vertex indices.
    mask_triangles: SMIRK's ``FLAME_masks_triangles.npy``: an ``np.save``'d dict, region name
        (``face_clean``, ``cleaner_lips``, ``eye_region``, ``left_eye_region``,
        ``right_eye_region``, ``forehead``, ``lips``, ``nose``, ``neck``, ``left_ear``,
        ``right_ear``, ``right_eyeball``, ...) -> indices of the FLAME triangles in it; SMIRK's
        masking weighs the triangles it samples by region from it. Read it with
        :func:`tempsmirk.flame.io.load_mask_triangles`.
    folders: the folders searched, in order.
    """

    model: Path
    landmark_embedding: Optional[Path] = None
    static_landmarks: Optional[Path] = None
    dynamic_landmarks: Optional[Path] = None
    mediapipe_landmarks: Optional[Path] = None
    eyelids: Optional[tuple[Path, Path]] = None
    masks: Optional[Path] = None
    mask_triangles: Optional[Path] = None
    folders: tuple[Path, ...] = ()

    def has(self, feature: str) -> bool:
        """Whether the files of ``feature`` (a key of :data:`FEATURES`) were found."""
        if feature == "landmarks68":
            return self.landmark_embedding is not None or (
                self.static_landmarks is not None and self.dynamic_landmarks is not None)
        attr = {"mediapipe": "mediapipe_landmarks", "eyelids": "eyelids", "masks": "masks",
                "mask_triangles": "mask_triangles"}.get(feature)
        if attr is None:
            raise ValueError(f"unknown FLAME asset feature {feature!r}; choose from {sorted(FEATURES)}")
        return getattr(self, attr) is not None

    def missing_message(self, feature: str) -> str:
        """One sentence: which file is missing, where it was looked for, and what needs it."""
        f = FEATURES[feature]
        files = f.files
        if feature == "landmarks68" and (self.static_landmarks is None) != (self.dynamic_landmarks is None):
            have, lack = (("flame_static_embedding.pkl", "flame_dynamic_embedding.npy")
                          if self.static_landmarks is not None
                          else ("flame_dynamic_embedding.npy", "flame_static_embedding.pkl"))
            files = f"landmark_embedding.npy (DECA/SMIRK) or {lack} (RingNet's pair: only {have} was found)"
        where = " or ".join(str(d) for d in self.folders)
        return (f"{files} not found in {where} (for {self.model}); it is needed for {f.used_for}. "
                f"Put it there under that name (layouts: README, 'Real assets').")

    def require(self, *features: str) -> None:
        """Raise ``FileNotFoundError`` naming every missing file and the feature that needs it."""
        absent = [f for f in features if not self.has(f)]
        if absent:
            raise FileNotFoundError(" ".join(self.missing_message(f) for f in absent))


def _first(folders: Sequence[Path], names: Sequence[str]) -> Optional[Path]:
    for d in folders:
        for n in names:
            if (d / n).is_file():
                return d / n
    return None


def resolve_flame_assets(flame_path: PathLike) -> FlameAssets:
    """Find the FLAME files for a model file or an asset folder (layouts: module docstring).

    Raises:
        FileNotFoundError: ``flame_path`` does not exist, or a folder holds no FLAME model
            (the message lists where the model was looked for).
    """
    p = Path(flame_path).expanduser()
    if p.is_dir():
        model = _first([p], LAYOUT["model"])
        if model is None:
            tried = ", ".join(str(p / n) for n in LAYOUT["model"])
            raise FileNotFoundError(
                f"flame_path {p} is a folder without a FLAME model: expected {tried}. Pass SMIRK's "
                f"assets/ or DECA's data/ folder (not the repository root), a folder with "
                f"generic_model.pkl and the other files side by side, or the model file itself "
                f"(e.g. a FLAME 2023 pickle)")
    elif p.is_file():
        model = p
    else:
        raise FileNotFoundError(f"flame_path {p}: no such file or folder; expected a FLAME model file "
                                f"(generic_model.pkl, a FLAME 2023 pickle) or an asset folder "
                                f"(SMIRK's assets/, DECA's data/)")
    base = model.parent  # the other files lie beside the model, or one up from a FLAME2020 folder
    folders = (base, base.parent) if base.name == "FLAME2020" else (base,)
    found = {k: _first(folders, names) for k, names in LAYOUT.items() if k != "model"}
    left, right = found.pop("l_eyelid"), found.pop("r_eyelid")
    eyelids = (left, right) if left is not None and right is not None else None
    return FlameAssets(model=model, eyelids=eyelids, folders=folders, **found)


def load_flame(flame_path: Optional[PathLike], n_shape: int = 300, n_exp: int = 50,
               require: Sequence[str] = TRAINING_FEATURES, dtype: torch.dtype = torch.float32) -> "FLAME":
    """The built-in head (``flame_path`` None) or the user's FLAME files, found by
    :func:`resolve_flame_assets` and loaded safely by :meth:`FLAME.from_files`.

    Args:
        flame_path: a model file or an asset folder (module docstring), or None.
        n_shape, n_exp: shape / expression components to use.
        require: features (keys of :data:`FEATURES`) whose files must be present; default what
            training needs. Any other feature SMIRK uses that is missing gets a
            :class:`MissingAssetWarning` naming the file and what it is for.
    Raises:
        FileNotFoundError: a path or a required file is missing (named, with the feature).
        FlameFileError, UnsafePickleError: a file is damaged or refused (named).
    """
    from tempsmirk.flame.model import FLAME

    require = (require,) if isinstance(require, str) else tuple(require)
    unknown = [f for f in require if f not in FEATURES]
    if unknown:
        raise ValueError(f"unknown FLAME asset features {unknown}; choose from {sorted(FEATURES)}")
    if flame_path is None:
        return FLAME.builtin(seed=0, n_shape=n_shape, n_exp=n_exp, dtype=dtype)
    a = resolve_flame_assets(flame_path)
    a.require(*require)
    for feature in _WARN_FEATURES:
        if feature not in require and not a.has(feature):
            warnings.warn(a.missing_message(feature), MissingAssetWarning, stacklevel=2)
    pair = a.landmark_embedding is None
    return FLAME.from_files(
        a.model,
        a.static_landmarks if pair and a.dynamic_landmarks else None,
        a.dynamic_landmarks if pair and a.static_landmarks else None,
        a.mediapipe_landmarks, a.eyelids, a.masks, n_shape=n_shape, n_exp=n_exp, dtype=dtype,
        landmark_embedding=a.landmark_embedding)

