"""Landmark files in the layout SMIRK's preprocessing writes: MediaPipe's 478 and FAN's 68 points.

Explained in the README's "Training data" section. Shapes: T frames, L landmarks. Coordinates are
**pixels of the source image or frame**, x right, y down, with pixel ``i`` covering ``[i, i + 1)``
(MediaPipe's normalised x times W, and FAN's heat-map centroids, both use that convention).

One landmark file per image or video, at the media file's path relative to the dataset root,
under a landmark root, with the suffix replaced (:func:`landmark_path`) — the mirrored layout
SMIRK's ``apply_mediapipe_to_dataset.py`` / ``apply_fan_to_dataset.py`` write (LRS3 keeps its
MediaPipe files beside the videos: the landmark root is then the dataset root).

**MediaPipe** (``.npy``, written by ``python -m data_prep.faces mediapipe``):

- image: (478, 3) float: x·W, y·H in pixels and MediaPipe's z unscaled, as SMIRK writes it.
  An image in which no face was found has a (0, 478, 3) file (SMIRK writes none; ours marks it
  done, so a resumed run does not redo it, and the manifest can say why the image is left out);
- video: (T, 478, 3), one row per decoded frame, NaN rows where no face was found. SMIRK's script
  stacks the found frames only, so its files are index-aligned only where every frame had a face:
  a file with fewer rows than the video has frames is refused (:class:`LandmarkFileError`).

**FAN** (written by users with SMIRK's ``apply_fan_to_dataset.py`` — FAN's weights are a
download, which this project never makes):

- image: ``.npy`` (n, 68, 2) float32, one row per detected face (FAN's ``landmarks`` as returned,
  ``np.save``'d); (0, 68, 2) when no face was detected; a 0-d object array holding None is read
  as "no face" too. The first face is used, as SMIRK does;
- video: ``.pkl``, a pickled list with one entry per frame: a (68, 2) array, or None where no
  face was detected (the LRS3 landmark files SMIRK trains with, and its fork's video branch).
  Pickles are read with the project's restricted unpickler (NumPy arrays only).
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Optional

import numpy as np

from tempsmirk.atomic import atomic_write_bytes

__all__ = ["N_MEDIAPIPE", "N_FAN", "LandmarkFileError", "landmark_path", "read_mediapipe_image",
           "read_mediapipe_video", "read_fan_image", "read_fan_video", "write_mediapipe_image",
           "write_mediapipe_video", "MEDIAPIPE_SUFFIX", "FAN_IMAGE_SUFFIX", "FAN_VIDEO_SUFFIX"]

N_MEDIAPIPE = 478
N_FAN = 68
MEDIAPIPE_SUFFIX = ".npy"
FAN_IMAGE_SUFFIX = ".npy"
FAN_VIDEO_SUFFIX = ".pkl"


class LandmarkFileError(ValueError):
    """A landmark file is missing, unreadable or not in the expected layout."""


def landmark_path(landmark_root: str | os.PathLike, relative_media: str, suffix: str) -> Path:
    """``landmark_root / relative_media`` with its suffix replaced by ``suffix`` (the mirrored
    layout of SMIRK's preprocessing scripts), e.g. ``fan/trainval/spk/00001.pkl``."""
    rel = Path(relative_media)
    return Path(landmark_root) / rel.with_suffix(suffix)


def _load_npy(path: Path, what: str) -> np.ndarray:
    """A .npy array; object arrays go through the restricted unpickler (never plain pickle)."""
    from tempsmirk.flame.io import FlameFileError, UnsafePickleError, load_npy_restricted

    if not path.is_file():
        raise LandmarkFileError(f"{path}: no such {what} file; run the landmark step for this file "
                                f"(see the README's 'Training data' section)")
    try:
        value = load_npy_restricted(path)
    except UnsafePickleError as exc:
        raise LandmarkFileError(f"{path}: refused — {exc}") from None
    except (FlameFileError, OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise LandmarkFileError(f"{path}: not a readable .npy {what} file ({exc}); re-create it") from None
    return value


def read_mediapipe_image(path: str | os.PathLike) -> Optional[np.ndarray]:
    """MediaPipe points of one image: (478, 3) float32 pixels, or None where no face was found."""
    path = Path(path)
    arr = _load_npy(path, "MediaPipe landmark")
    if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
        raise LandmarkFileError(f"{path}: expected a float array of MediaPipe points; found "
                                f"{type(arr).__name__} {getattr(arr, 'dtype', '')}")
    if arr.shape == (0, N_MEDIAPIPE, 3):
        return None
    if arr.shape == (1, N_MEDIAPIPE, 3):
        arr = arr[0]
    if arr.shape != (N_MEDIAPIPE, 3):
        raise LandmarkFileError(f"{path}: expected MediaPipe points of shape ({N_MEDIAPIPE}, 3) (or "
                                f"(0, {N_MEDIAPIPE}, 3) for 'no face'); found {arr.shape}")
    if not np.isfinite(arr[:, :2]).all():
        raise LandmarkFileError(f"{path}: MediaPipe points contain NaN or inf; re-create the file")
    return arr.astype(np.float32)


def read_mediapipe_video(path: str | os.PathLike, frames: Optional[int] = None,
                         mmap: bool = False) -> np.ndarray:
    """MediaPipe points of a video: (T, 478, 3) float, NaN rows where no face was found.

    frames: the video's frame count; a file with another number of rows cannot be aligned with
        the frames (SMIRK's own files drop the frames without a face) and is refused.
    mmap: memory-map the file (reading one frame of a long video touches only that row).
    """
    path = Path(path)
    if not path.is_file():
        raise LandmarkFileError(f"{path}: no such MediaPipe landmark file; run "
                                f"'python -m data_prep.faces mediapipe' over the videos")
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise LandmarkFileError(f"{path}: not a readable .npy landmark file ({exc}); re-create it") from None
    if arr.ndim != 3 or arr.shape[1:] != (N_MEDIAPIPE, 3) or arr.dtype.kind != "f":
        raise LandmarkFileError(f"{path}: expected per-frame MediaPipe points (T, {N_MEDIAPIPE}, 3) "
                                f"float; found {arr.shape} {arr.dtype}")
    if frames is not None and arr.shape[0] != frames:
        raise LandmarkFileError(
            f"{path}: {arr.shape[0]} rows of landmarks for a video of {frames} frames, so rows cannot "
            f"be matched to frames (SMIRK's script keeps only frames with a face). Re-create it with "
            f"'python -m data_prep.faces mediapipe', which keeps one row per frame")
    return arr


def _fan_points(value, path: Path, where: str) -> Optional[np.ndarray]:
    """(68, 2) float32 from one FAN result (an (n, 68, 2) / (68, 2) array or None), or None."""
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise LandmarkFileError(f"{path}{where}: expected FAN points as numbers; found {arr.dtype}")
    if arr.ndim == 3 and arr.shape[1:] == (N_FAN, 2):
        if arr.shape[0] == 0:
            return None
        arr = arr[0]  # first detected face, as SMIRK reads them
    if arr.shape != (N_FAN, 2):
        raise LandmarkFileError(f"{path}{where}: expected FAN's (n, {N_FAN}, 2) or ({N_FAN}, 2) points; "
                                f"found {arr.shape}")
    if not np.isfinite(arr).all():
        raise LandmarkFileError(f"{path}{where}: FAN points contain NaN or inf")
    return arr.astype(np.float32)


def read_fan_image(path: str | os.PathLike) -> Optional[np.ndarray]:
    """FAN's 68 points of one image (first face): (68, 2) float32 pixels, None where FAN found
    no face ((0, 68, 2) file, or a saved None)."""
    path = Path(path)
    value = _load_npy(path, "FAN landmark")
    if isinstance(value, np.ndarray) and value.dtype == object:
        value = value.reshape(-1)[0] if value.size == 1 else value
    return _fan_points(value, path, "")


def read_fan_video(path: str | os.PathLike, frames: Optional[int] = None) -> np.ndarray:
    """FAN's 68 points per frame of a video: (T, 68, 2) float32, NaN rows where no face was found.

    frames: the video's frame count; a list of another length cannot be aligned (SMIRK's fork skips
        frames with two faces) and is refused.
    """
    from tempsmirk.flame.io import UnsafePickleError, restricted_load

    path = Path(path)
    if not path.is_file():
        raise LandmarkFileError(f"{path}: no such FAN landmark file")
    try:
        value = restricted_load(path)
    except UnsafePickleError as exc:
        raise LandmarkFileError(f"{path}: refused — {exc}") from None
    except (OSError, EOFError, ValueError, pickle.UnpicklingError, IndexError, TypeError) as exc:
        raise LandmarkFileError(f"{path}: not a readable FAN pickle ({exc}); expected a pickled list with "
                                f"one (68, 2) array or None per frame") from None
    if isinstance(value, np.ndarray) and value.dtype != object and value.ndim == 3:
        value = list(value)
    if not isinstance(value, (list, tuple)):
        raise LandmarkFileError(f"{path}: expected a list with one (68, 2) array or None per frame; "
                                f"found {type(value).__name__}")
    if frames is not None and len(value) != frames:
        raise LandmarkFileError(f"{path}: {len(value)} entries for a video of {frames} frames; rows "
                                f"cannot be matched to frames")
    out = np.full((len(value), N_FAN, 2), np.nan, dtype=np.float32)
    for t, v in enumerate(value):
        pts = _fan_points(v, path, f" frame {t}")
        if pts is not None:
            out[t] = pts
    return out


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def write_mediapipe_image(path: str | os.PathLike, points: Optional[np.ndarray]) -> None:
    """Write one image's MediaPipe file atomically: (478, 3) points, or None for "no face"."""
    arr = (np.zeros((0, N_MEDIAPIPE, 3), np.float32) if points is None
           else np.asarray(points, dtype=np.float32))
    if points is not None and arr.shape != (N_MEDIAPIPE, 3):
        raise ValueError(f"expected ({N_MEDIAPIPE}, 3) points; got {arr.shape}")
    atomic_write_bytes(path, _npy_bytes(arr))


def write_mediapipe_video(path: str | os.PathLike, points: np.ndarray) -> None:
    """Write a video's MediaPipe file atomically: (T, 478, 3), NaN rows where no face was found."""
    arr = np.asarray(points, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[1:] != (N_MEDIAPIPE, 3):
        raise ValueError(f"expected (T, {N_MEDIAPIPE}, 3) points; got {arr.shape}")
    atomic_write_bytes(path, _npy_bytes(arr))
