"""What ``python -m tempsmirk reconstruct`` writes: ``params.npz`` and per-frame meshes.

Explained in chapter 7. Shapes: T frames, S shape and E expression coefficients, V vertices, F faces.

``params.npz`` (one row per decoded frame, frames without a face included)::

    expression   (T, E) float32      jaw_pose     (T, 3) float32, axis-angle
    global_pose  (T, 3) float32      shape        (T, S) float32
    cam          (T, 3) float32      eyelids      (T, 2) float32
    found        (T,)   bool         a face was detected in the frame (False: interpolated)
    fps          ()     float64      the video's frame rate
    crop_affine  (T, 2, 3) float64   frame pixels -> crop pixels (tempsmirk.video.crops conventions)
    crop_size    ()     int64        N: ``cam`` is the camera of the N × N crop
    frame_size   (2,)   int64        (W, H) of the video
    smoothing    ()     str          the inference-time filter applied, e.g. "none"
    source       ()     str          what made the parameters: "encoder", "fit" (landmark fitting
                                     alone) or "encoder+fit" (the encoder refined by fitting)

``cam`` is in crop coordinates; :func:`tempsmirk.reconstruct.overlay.window_camera` re-expresses
it for the frame. Every file is written atomically (a crash leaves no truncated file under the
final name), and the mesh folder appears under its name only when all its frames are written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from tempsmirk.atomic import atomic_path
from tempsmirk.flame.params import PARAM_FIELDS, FlameParams
from tempsmirk.meshio import write_obj, write_ply

__all__ = ["PARAMS_FILE", "OVERLAY_FILE", "MESH_DIR", "SOURCES", "VideoParams", "save_params",
           "load_params", "MeshFolder"]

PARAMS_FILE = "params.npz"
OVERLAY_FILE = "overlay.mp4"
MESH_DIR = "meshes"
SOURCES = ("encoder", "fit", "encoder+fit")


@dataclass(frozen=True)
class VideoParams:
    """Per-frame FLAME parameters of one video (the content of ``params.npz``).

    params: :class:`~tempsmirk.flame.FlameParams` with (T, ...) fields (float32, CPU).
    found: (T,) bool. fps: frame rate. crop_affine: (T, 2, 3). crop_size: N.
    frame_size: (W, H). smoothing: label of the filter applied (``"none"`` for raw output).
    source: ``"encoder"``, ``"fit"`` or ``"encoder+fit"`` (:data:`SOURCES`).
    """

    params: FlameParams
    found: np.ndarray
    fps: float
    crop_affine: np.ndarray
    crop_size: int
    frame_size: tuple[int, int]
    smoothing: str = "none"
    source: str = "encoder"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"VideoParams.source must be one of {SOURCES}; got {self.source!r}")
        t = self.found.shape[0]
        bad = [n for n in PARAM_FIELDS if getattr(self.params, n).shape[0] != t]
        if bad or self.crop_affine.shape != (t, 2, 3):
            raise ValueError(f"every field of VideoParams needs {t} rows (one per frame); "
                             f"{bad or ['crop_affine']} differ")

    @property
    def num_frames(self) -> int:
        return int(self.found.shape[0])


def save_params(path: str | os.PathLike, video: VideoParams) -> None:
    """Write :class:`VideoParams` as ``params.npz`` (keys in the module docstring), atomically."""
    arrays = {n: getattr(video.params, n).detach().cpu().float().numpy() for n in PARAM_FIELDS}
    arrays.update(found=video.found.astype(bool), fps=np.float64(video.fps),
                  crop_affine=video.crop_affine.astype(np.float64), crop_size=np.int64(video.crop_size),
                  frame_size=np.asarray(video.frame_size, dtype=np.int64), smoothing=np.asarray(video.smoothing),
                  source=np.asarray(video.source))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())


def load_params(path: str | os.PathLike) -> VideoParams:
    """Read a ``params.npz`` written by :func:`save_params` (or the folder holding it)."""
    file = Path(path) / PARAMS_FILE if Path(path).is_dir() else Path(path)
    try:
        with np.load(file, allow_pickle=False) as z:
            params = FlameParams.from_dict({n: z[n].astype(np.float32) for n in PARAM_FIELDS})
            return VideoParams(params, z["found"].astype(bool), float(z["fps"]), z["crop_affine"],
                               int(z["crop_size"]), tuple(int(v) for v in z["frame_size"]),
                               str(z["smoothing"]), str(z["source"]) if "source" in z else "encoder")
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{file} is not a readable params file ({exc}); expected an npz with "
                         f"{', '.join(PARAM_FIELDS)}, found, fps, ... written by "
                         "`python -m tempsmirk reconstruct` (re-run it)") from exc


class MeshFolder:
    """Per-frame meshes ``DIR/meshes/000000.obj`` (or ``.ply``), published all at once.

    Frames are written into a hidden temporary folder beside the target; :meth:`publish` renames it
    to ``meshes`` (replacing an older one), so a crash never leaves a partial set under that name.
    Use as a context manager: leaving it with an exception removes the temporary folder.
    """

    def __init__(self, folder: str | os.PathLike, fmt: Literal["obj", "ply"]) -> None:
        if fmt not in ("obj", "ply"):
            raise ValueError(f"mesh format must be 'obj' or 'ply'; got {fmt!r}")
        self.target = Path(folder) / MESH_DIR
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.fmt = fmt
        self.tmp = Path(tempfile.mkdtemp(dir=self.target.parent, prefix=f".{MESH_DIR}.", suffix=".tmp"))

    def write(self, first_index: int, vertices: np.ndarray, faces: np.ndarray) -> None:
        """Write frames ``first_index ..`` of vertices (B, V, 3); faces (F, 3)."""
        writer = write_obj if self.fmt == "obj" else write_ply
        for i, v in enumerate(vertices):
            writer(self.tmp / f"{first_index + i:06d}.{self.fmt}", v, faces)

    def publish(self) -> Path:
        """Move the finished folder into place; returns its path."""
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{MESH_DIR}.old.{os.getpid()}")
            os.replace(self.target, old)
        os.replace(self.tmp, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.target

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "MeshFolder":
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        if exc_type is not None:
            self.discard()

