"""MediaPipe FaceMesh landmarks (478 points) of video frames and images, and their file.

:class:`FaceMesh` runs MediaPipe (one face, ``refine_landmarks=True``; guide section 3) with its
native start-up noise filtered (:func:`native_stderr_filtered`); :func:`detect_frames` runs it over
frames, :func:`extract_video` over a video file and :func:`extract_images` over image files.
``python -m data_prep.landmarks`` runs them over folders (chapter 7 and the README's data section).

``landmarks.npz`` keys (see :class:`FaceLandmarks`):

- ``landmarks`` (T, 478, 3) float32: x, y in pixels of the frame; z as MediaPipe gives
  it (relative depth, same scale as x) times the frame width, so also in pixels.
  **Frames without a face hold NaN** (NaN cannot be mistaken for a position).
- ``found`` (T,) bool: a face was detected in the frame.
- ``fps`` () float64: frame rate (NaN for an image folder).
- ``size`` (2,) int64: (W, H) of the video; for an image folder the common size,
  or (0, 0) when the images differ.
- ``sizes`` (T, 2) int64: (W, H) per row ((0, 0) for an unreadable image).
- ``names`` (T,) str: image file names (empty for a video).

T is the number of decoded frames: a frame without a face keeps its index.
Video uses FaceMesh in tracking mode (``static_image_mode=False``), images in static
mode; both with ``refine_landmarks=True`` and ``max_num_faces=1``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from tqdm.auto import tqdm

from tempsmirk.atomic import atomic_write_bytes
from tempsmirk.video.io import ImageReadError, VideoDecodeError, iter_frames, probe_video, read_image

__all__ = [
    "NUM_LANDMARKS",
    "LANDMARKS_FILE",
    "FaceLandmarks",
    "FaceMesh",
    "MEDIAPIPE_NOISE",
    "native_stderr_filtered",
    "detect_frames",
    "extract_video",
    "extract_images",
    "save_landmarks",
    "load_landmarks",
]

NUM_LANDMARKS = 478
LANDMARKS_FILE = "landmarks.npz"


@dataclass(frozen=True)
class FaceLandmarks:
    """Per-frame MediaPipe landmarks of one video or one image folder.

    Attributes:
        landmarks: (T, 478, 3) float32, pixels (x right, y down, z scaled by width);
            NaN where ``found`` is False.
        found: (T,) bool.
        fps: frames per second (NaN for images).
        sizes: (T, 2) int64, (W, H) of each frame/image.
        names: T image file names, or () for a video.
    """

    landmarks: np.ndarray
    found: np.ndarray
    fps: float
    sizes: np.ndarray
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        t = self.found.shape[0]
        if self.landmarks.shape != (t, NUM_LANDMARKS, 3):
            raise ValueError(f"landmarks must be ({t}, {NUM_LANDMARKS}, 3); got {self.landmarks.shape}")
        if self.sizes.shape != (t, 2):
            raise ValueError(f"sizes must be ({t}, 2); got {self.sizes.shape}")
        if self.names and len(self.names) != t:
            raise ValueError(f"names must have {t} entries; got {len(self.names)}")

    @property
    def num_frames(self) -> int:
        return int(self.found.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) shared by all rows, or (0, 0) when rows differ (image folders)."""
        if self.num_frames and (self.sizes == self.sizes[0]).all():
            return int(self.sizes[0, 0]), int(self.sizes[0, 1])
        return 0, 0


def save_landmarks(path: str | os.PathLike, lm: FaceLandmarks) -> None:
    """Write ``lm`` as an npz (keys in the module docstring), atomically."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        landmarks=lm.landmarks.astype(np.float32),
        found=lm.found.astype(bool),
        fps=np.float64(lm.fps),
        size=np.asarray(lm.size, dtype=np.int64),
        sizes=lm.sizes.astype(np.int64),
        names=np.asarray(lm.names, dtype=str),
    )
    atomic_write_bytes(path, buf.getvalue())


def load_landmarks(path: str | os.PathLike) -> FaceLandmarks:
    """Read a ``landmarks.npz`` written by :func:`save_landmarks`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            found = z["found"].astype(bool)
            sizes = z["sizes"] if "sizes" in z else np.tile(z["size"], (found.shape[0], 1))
            names = tuple(str(n) for n in z["names"]) if "names" in z else ()
            return FaceLandmarks(z["landmarks"].astype(np.float32), found, float(z["fps"]),
                                 sizes.astype(np.int64), names)
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(
            f"{path} is not a readable landmarks file ({exc}); expected an npz with "
            "'landmarks', 'found', 'fps', 'size' written by data_prep.landmarks (re-run it)"
        ) from exc


#: Start-up lines MediaPipe's C++ side (TFLite, absl) writes straight to file descriptor 2:
#: information for its developers, not ours. Anything else it writes is shown.
MEDIAPIPE_NOISE = (
    re.compile(r"^INFO: Created TensorFlow Lite .*delegate"),
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(r"^[IW]\d{4} [\d:. ]+\d+ (inference_feedback_manager|landmark_projection_calculator|"
               r"gl_context|face_landmarker_graph)\.cc:\d+\]"),
)


@contextlib.contextmanager
def native_stderr_filtered(noise: Sequence[re.Pattern]) -> Iterator[None]:
    """Capture what native code writes to file descriptor 2 inside the block, drop the lines
    matching ``noise`` and write the rest to ``sys.stderr`` (so real errors still show, and a
    notebook shows them in its stderr stream). Python's own stderr is unaffected."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", "replace").splitlines()
            kept = [ln for ln in lines if ln.strip() and not any(p.search(ln) for p in noise)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


class FaceMesh:
    """MediaPipe FaceMesh (478 points, one face) as a context manager.

    ``tracking=True`` is video mode: landmarks of the previous frame seed the next
    (smoother, faster); ``False`` detects every image afresh.
    """

    def __init__(self, tracking: bool, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5) -> None:
        with native_stderr_filtered(MEDIAPIPE_NOISE):
            import mediapipe as mp  # heavy import, kept out of module import time

            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=not tracking,
                max_num_faces=1,
                refine_landmarks=True,
                min_detection_confidence=min_detection_confidence,
                min_tracking_confidence=min_tracking_confidence,
            )
            # The graph opens its models on its own threads, which log while the caller is
            # busy elsewhere (decoding the first frame): one blank frame waits for that here.
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))
        # The landmark model's start-up lines come with the first face; filter until then.
        self._quiet = True

    def __enter__(self) -> "FaceMesh":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._mesh.close()

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        """Landmarks of one (H, W, 3) uint8 RGB frame: (478, 3) float32 pixels, or None."""
        if self._quiet:
            with native_stderr_filtered(MEDIAPIPE_NOISE):
                result = self._mesh.process(np.ascontiguousarray(frame))
            self._quiet = not result.multi_face_landmarks
        else:
            result = self._mesh.process(np.ascontiguousarray(frame))
        if not result.multi_face_landmarks:
            return None
        h, w = frame.shape[:2]
        pts = result.multi_face_landmarks[0].landmark
        out = np.array([(p.x, p.y, p.z) for p in pts], dtype=np.float32)
        # MediaPipe normalises x by W, y by H and gives z on x's scale.
        out *= np.array([w, h, w], dtype=np.float32)
        return out


def detect_frames(frames: Iterable[np.ndarray], tracking: bool,
                  progress: tqdm | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run FaceMesh over frames, keeping every index.

    Args:
        frames: iterable of (H, W, 3) uint8 RGB.
        tracking: video mode (see :class:`FaceMesh`).
    Returns:
        landmarks: (T, 478, 3) float32 pixels, NaN where not found
        found: (T,) bool
        sizes: (T, 2) int64 (W, H)
    """
    rows: list[np.ndarray] = []
    found: list[bool] = []
    sizes: list[tuple[int, int]] = []
    empty = np.full((NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
    with FaceMesh(tracking=tracking) as mesh:
        for frame in frames:
            pts = mesh(frame)
            rows.append(empty if pts is None else pts)
            found.append(pts is not None)
            sizes.append((frame.shape[1], frame.shape[0]))
            if progress is not None:
                progress.update(1)
    if not rows:
        return (np.zeros((0, NUM_LANDMARKS, 3), np.float32), np.zeros(0, bool),
                np.zeros((0, 2), np.int64))
    return np.stack(rows), np.array(found, dtype=bool), np.array(sizes, dtype=np.int64)


def extract_video(path: str | os.PathLike, show_progress: bool = True,
                  strict: bool = True) -> FaceLandmarks:
    """Landmarks for every decoded frame of a video (FaceMesh tracking mode).

    Args:
        strict: a video that decodes to fewer frames than its header lists is an
            error (see :func:`tempsmirk.video.io.iter_frames`); False keeps the prefix.
    Raises:
        VideoDecodeError: unreadable, truncated or empty video.
    """
    path = Path(path)
    info = probe_video(path)
    bar = tqdm(total=info.header_frames or None, desc=path.name, unit="frame",
               disable=not show_progress, leave=False)
    try:
        landmarks, found, sizes = detect_frames(iter_frames(path, strict), tracking=True,
                                                progress=bar)
    finally:
        bar.close()
    if found.shape[0] == 0:
        raise VideoDecodeError(f"{path} decoded to zero frames; expected at least one")
    return FaceLandmarks(landmarks, found, info.fps, sizes)


def extract_images(paths: Sequence[str | os.PathLike], show_progress: bool = True
                   ) -> tuple[FaceLandmarks, tuple[str, ...]]:
    """Landmarks for a list of images (FaceMesh static mode), one row each.

    An unreadable image keeps its row (found False, size (0, 0)) and is returned
    in the second element as a message, so the caller can report it.

    Returns:
        landmarks: :class:`FaceLandmarks` with ``names`` = the file names
        errors: one message per unreadable image
    """
    paths = [Path(p) for p in paths]
    errors: list[str] = []
    rows: list[np.ndarray] = []
    found: list[bool] = []
    sizes: list[tuple[int, int]] = []
    empty = np.full((NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
    with FaceMesh(tracking=False) as mesh:
        for p in tqdm(paths, desc="images", unit="image", disable=not show_progress, leave=False):
            try:
                image = read_image(p)
            except ImageReadError as exc:
                errors.append(str(exc))
                rows.append(empty)
                found.append(False)
                sizes.append((0, 0))
                continue
            pts = mesh(image)
            rows.append(empty if pts is None else pts)
            found.append(pts is not None)
            sizes.append((image.shape[1], image.shape[0]))
    lm = FaceLandmarks(
        np.stack(rows) if rows else np.zeros((0, NUM_LANDMARKS, 3), np.float32),
        np.array(found, dtype=bool), float("nan"),
        np.array(sizes, dtype=np.int64).reshape(-1, 2), tuple(p.name for p in paths))
    return lm, tuple(errors)
