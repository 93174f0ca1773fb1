"""Square face crops from landmarks, with a temporally smoothed crop box for video.

The crop rule is SMIRK's: the box is the landmarks' bounding box, its centre the
box centre, its side the mean of the box width and height times ``scale``. SMIRK's
video demo crops with scale 1.4 (its training draws 1.2-1.8 and its test-time
scale is 1.6); :data:`DEFAULT_SCALE` is 1.4, the inference value.

**Coordinate conventions.** Pixel coordinates put pixel centres at integers (x
right, y down) in both the frame and the crop. A crop box (centre c, side s) maps
onto an N x N crop so that the box's outer edges land on the crop's outer edges:
crop pixel u = (x - c_x) * N / s + (N - 1) / 2. Normalised crop coordinates are
``2 (x - c_x) / s``: -1 and +1 are the crop's left/right (top/bottom) edges, the
convention SMIRK's landmark losses use. z is scaled by the same factor.
Every affine here is a (2, 3) matrix taking frame pixels to crop pixels; invert it
with :func:`invert_affine` to map results back to the frame.

**Video.** Landmark boxes jitter from frame to frame; cropping each frame by its
own box would add that jitter to everything downstream. :func:`video_boxes`
therefore fills frames without a face (:func:`tempsmirk.video.gaps.fill_gaps`: the box
interpolated linearly, held constant before the first and after the last detection; those
frames stay flagged ``found=False``) and smooths centre and side with a Gaussian, which is
zero-phase (no lag) and treats the ends by repeating the end values.

:func:`crop_video` writes a video's crops as ``crops.mp4`` (224 px, H.264) and ``crops.npz``
(:class:`VideoCrops`); ``python -m data_prep.crops`` runs it over a folder (after
``data_prep.landmarks``), ``python -m data_prep.mead`` over MEAD.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d
from tqdm.auto import tqdm

from tempsmirk.atomic import atomic_write_bytes
from tempsmirk.video.gaps import fill_gaps
from tempsmirk.video.io import iter_frames, write_video
from tempsmirk.video.landmarks import FaceLandmarks

__all__ = [
    "DEFAULT_SCALE",
    "DEFAULT_SIZE",
    "DEFAULT_SIGMA_SECONDS",
    "CROPS_VIDEO",
    "CROPS_FILE",
    "CropBoxes",
    "VideoCrops",
    "boxes_from_landmarks",
    "fill_missing_boxes",
    "smooth_boxes",
    "video_boxes",
    "crop_affine",
    "invert_affine",
    "transform_points",
    "to_normalized",
    "landmarks_to_crop",
    "warp_crop",
    "crop_image",
    "crop_video",
    "save_video_crops",
    "load_video_crops",
    "contact_sheet",
]

DEFAULT_SCALE = 1.4
DEFAULT_SIZE = 224
# 0.1 s (about 2.4 frames at 24 fps): removes frame-to-frame landmark noise while a
# head turn (several frames long) is followed without visible lag; see the tests.
DEFAULT_SIGMA_SECONDS = 0.1
CROPS_VIDEO = "crops.mp4"
CROPS_FILE = "crops.npz"


@dataclass(frozen=True)
class CropBoxes:
    """Square crop boxes, one per frame.

    Attributes:
        center: (T, 2) float64, box centre in frame pixels (NaN where unknown).
        size: (T,) float64, box side in frame pixels (NaN where unknown).
        found: (T,) bool, the box was measured from landmarks in that frame
            (False for interpolated or held boxes).
    """

    center: np.ndarray
    size: np.ndarray
    found: np.ndarray


def boxes_from_landmarks(landmarks: np.ndarray, found: np.ndarray,
                         scale: float = DEFAULT_SCALE) -> CropBoxes:
    """SMIRK's square box per frame.

    Args:
        landmarks: (T, L, 2 or 3) frame pixels (only x, y are used).
        found: (T,) bool; rows where it is False give NaN boxes.
    Returns:
        CropBoxes with centre = bounding-box centre, size = mean(width, height) * scale.
    """
    xy = np.asarray(landmarks, dtype=np.float64)[..., :2]
    found = np.asarray(found, dtype=bool)
    lo = np.full((xy.shape[0], 2), np.nan)
    hi = np.full((xy.shape[0], 2), np.nan)
    if found.any():
        lo[found] = xy[found].min(axis=1)
        hi[found] = xy[found].max(axis=1)
    center = (lo + hi) / 2.0
    size = (hi - lo).mean(axis=1) * scale
    return CropBoxes(center, size, found.copy())


def fill_missing_boxes(boxes: CropBoxes) -> CropBoxes:
    """Boxes of frames without a face filled by :func:`~tempsmirk.video.gaps.fill_gaps`
    (interpolated linearly, held at the ends); ``found`` is kept.

    Raises:
        NoFaceError: no frame has a face (there is nothing to interpolate from).
    """
    known = boxes.found & np.isfinite(boxes.size)
    return CropBoxes(fill_gaps(boxes.center, known), fill_gaps(boxes.size, known), boxes.found.copy())


def smooth_boxes(boxes: CropBoxes, fps: float,
                 sigma_seconds: float = DEFAULT_SIGMA_SECONDS) -> CropBoxes:
    """Zero-phase Gaussian smoothing of box centre and side over time.

    Args:
        boxes: filled boxes (no NaN; see :func:`fill_missing_boxes`).
        fps: frame rate (NaN or <= 0 is read as 25 fps, for image sequences).
        sigma_seconds: Gaussian standard deviation in seconds; 0 disables smoothing.
    """
    if not np.isfinite(boxes.size).all():
        raise ValueError("smooth_boxes needs filled boxes; call fill_missing_boxes first")
    rate = fps if np.isfinite(fps) and fps > 0 else 25.0
    sigma = sigma_seconds * rate
    if sigma <= 0 or boxes.size.shape[0] < 2:
        return boxes
    center = gaussian_filter1d(boxes.center, sigma, axis=0, mode="nearest")
    size = gaussian_filter1d(boxes.size, sigma, axis=0, mode="nearest")
    return CropBoxes(center, size, boxes.found.copy())


def video_boxes(landmarks: np.ndarray, found: np.ndarray, fps: float,
                scale: float = DEFAULT_SCALE,
                sigma_seconds: float = DEFAULT_SIGMA_SECONDS) -> CropBoxes:
    """Per-frame boxes for a video: measure, fill gaps, smooth (see module docstring).

    Args:
        landmarks: (T, L, 2 or 3) frame pixels; found: (T,) bool.
    """
    return smooth_boxes(fill_missing_boxes(boxes_from_landmarks(landmarks, found, scale)),
                        fps, sigma_seconds)


def crop_affine(center: np.ndarray, size: np.ndarray | float, out_size: int = DEFAULT_SIZE
                ) -> np.ndarray:
    """Affine taking frame pixels to crop pixels for square boxes.

    Args:
        center: (..., 2) box centres, frame pixels.
        size: (...,) box sides, frame pixels.
    Returns:
        (..., 2, 3) float64: u = k x + (N-1)/2 - k c_x, k = N / size (no rotation).
    """
    center = np.asarray(center, dtype=np.float64)
    k = out_size / np.asarray(size, dtype=np.float64)
    a = np.zeros(center.shape[:-1] + (2, 3))
    a[..., 0, 0] = k
    a[..., 1, 1] = k
    a[..., :, 2] = (out_size - 1) / 2.0 - k[..., None] * center
    return a


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of (..., 2, 3) affines (crop pixels back to frame pixels)."""
    affine = np.asarray(affine, dtype=np.float64)
    lin_inv = np.linalg.inv(affine[..., :2])
    out = np.empty_like(affine)
    out[..., :2] = lin_inv
    out[..., 2] = -np.einsum("...ij,...j->...i", lin_inv, affine[..., 2])
    return out


def transform_points(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Apply (..., 2, 3) affines to (..., L, 2) points (broadcast over leading dims)."""
    points = np.asarray(points, dtype=np.float64)
    affine = np.asarray(affine, dtype=np.float64)
    return np.einsum("...ij,...lj->...li", affine[..., :2], points) + affine[..., None, :, 2]


def to_normalized(points_crop: np.ndarray, out_size: int = DEFAULT_SIZE) -> np.ndarray:
    """Crop pixels (pixel centres at integers) to [-1, 1] with the crop's edges at +-1."""
    return (np.asarray(points_crop, dtype=np.float64) + 0.5) * (2.0 / out_size) - 1.0


def landmarks_to_crop(landmarks: np.ndarray, affine: np.ndarray, out_size: int = DEFAULT_SIZE
                      ) -> np.ndarray:
    """Frame-pixel landmarks to normalised crop coordinates.

    Args:
        landmarks: (T, L, 3) frame pixels (z on x's scale).
        affine: (T, 2, 3) frame-to-crop affines from :func:`crop_affine`.
    Returns:
        (T, L, 3) float32: x, y in [-1, 1] over the crop; z times the same factor (2/s).
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    xy = to_normalized(transform_points(landmarks[..., :2], affine), out_size)
    k = np.asarray(affine)[..., 0, 0]  # N / s (isotropic, unrotated)
    z = landmarks[..., 2] * (2.0 / out_size) * k[..., None]
    return np.concatenate([xy, z[..., None]], axis=-1).astype(np.float32)


def warp_crop(image: np.ndarray, affine: np.ndarray, out_size: int = DEFAULT_SIZE) -> np.ndarray:
    """Crop one (H, W, C) image with a (2, 3) frame-to-crop affine: (N, N, C), black outside.

    Bilinear; no antialiasing, so a box much larger than N pixels aliases a little
    (as SMIRK's own cropping does).
    """
    return cv2.warpAffine(image, np.asarray(affine, dtype=np.float64), (out_size, out_size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def crop_image(image: np.ndarray, landmarks: np.ndarray, scale: float = DEFAULT_SCALE,
               out_size: int = DEFAULT_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop one image around its landmarks (SMIRK's box, no temporal smoothing).

    Args:
        image: (H, W, 3) uint8 RGB.
        landmarks: (L, 3) frame pixels, e.g. one row of :class:`FaceLandmarks`.
    Returns:
        crop: (N, N, 3) uint8; affine: (2, 3) frame -> crop pixels;
        landmarks: (L, 3) float32 normalised crop coordinates.
    Raises:
        ValueError: the landmarks hold NaN (no face was found in this image).
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if not np.isfinite(landmarks[:, :2]).all():
        raise ValueError("landmarks hold NaN (no face was found); expected a found row to crop by")
    boxes = boxes_from_landmarks(landmarks[None], np.array([True]), scale)
    affine = crop_affine(boxes.center[0], boxes.size[0], out_size)
    return (warp_crop(image, affine, out_size), affine,
            landmarks_to_crop(landmarks[None], affine[None], out_size)[0])


# ----------------------------------------------------------------------------- video


@dataclass(frozen=True)
class VideoCrops:
    """Crops of one video (frames are in ``crops.mp4`` beside ``crops.npz``).

    Attributes:
        affine: (T, 2, 3) float64, frame pixels -> crop pixels.
        landmarks: (T, 478, 3) float32, normalised crop coordinates; NaN where not found.
        found: (T,) bool, landmarks found in the frame (False for interpolated boxes).
        boxes: the smoothed :class:`CropBoxes` used.
        fps: frame rate of the source video.
        out_size: crop side in pixels (N).
        scale: box scale used.
    """

    affine: np.ndarray
    landmarks: np.ndarray
    found: np.ndarray
    boxes: CropBoxes
    fps: float
    out_size: int
    scale: float

    @property
    def num_frames(self) -> int:
        return int(self.found.shape[0])


def save_video_crops(path: str | os.PathLike, crops: VideoCrops) -> None:
    """Write :class:`VideoCrops` as an npz, atomically."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf, affine=crops.affine, landmarks=crops.landmarks.astype(np.float32),
        found=crops.found, center=crops.boxes.center, size=crops.boxes.size,
        fps=np.float64(crops.fps), out_size=np.int64(crops.out_size), scale=np.float64(crops.scale))
    atomic_write_bytes(path, buf.getvalue())


def load_video_crops(path: str | os.PathLike) -> VideoCrops:
    """Read ``crops.npz`` (or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / CROPS_FILE
    try:
        with np.load(path, allow_pickle=False) as z:
            found = z["found"].astype(bool)
            return VideoCrops(z["affine"], z["landmarks"], found,
                              CropBoxes(z["center"], z["size"], found),
                              float(z["fps"]), int(z["out_size"]), float(z["scale"]))
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable crops file ({exc}); expected an npz written "
                         "by data_prep.crops (re-run it)") from exc


def crop_video(video: str | os.PathLike, landmarks: FaceLandmarks, out_dir: str | os.PathLike,
               scale: float = DEFAULT_SCALE, out_size: int = DEFAULT_SIZE,
               sigma_seconds: float = DEFAULT_SIGMA_SECONDS, show_progress: bool = True
               ) -> VideoCrops:
    """Crop every frame of ``video`` with smoothed boxes; write ``crops.mp4`` and ``crops.npz``.

    Args:
        landmarks: the video's :class:`FaceLandmarks` (same frame count).
    Raises:
        ValueError: no face in any frame, or the landmarks do not match the video.
        VideoDecodeError: the video cannot be decoded.
    """
    out_dir = Path(out_dir)
    t = landmarks.num_frames
    boxes = video_boxes(landmarks.landmarks, landmarks.found, landmarks.fps, scale, sigma_seconds)
    affine = crop_affine(boxes.center, boxes.size, out_size)
    crops = VideoCrops(affine, landmarks_to_crop(landmarks.landmarks, affine, out_size),
                       landmarks.found.copy(), boxes, landmarks.fps, out_size, scale)
    counted = 0

    def frames():
        nonlocal counted
        for i, frame in enumerate(tqdm(iter_frames(video), total=t, desc=Path(video).name,
                                       unit="frame", disable=not show_progress, leave=False)):
            if i >= t:
                break
            counted += 1
            yield warp_crop(frame, affine[i], out_size)

    write_video(out_dir / CROPS_VIDEO, frames(), landmarks.fps if np.isfinite(landmarks.fps) else 25.0)
    if counted != t:
        (out_dir / CROPS_VIDEO).unlink()
        raise ValueError(f"{video} decoded to {counted} frames but its landmarks have {t}; "
                         "re-run data_prep.landmarks on this video")
    save_video_crops(out_dir / CROPS_FILE, crops)
    return crops


def contact_sheet(frames: np.ndarray, landmarks: np.ndarray | None = None, cols: int = 6,
                  color: tuple[int, int, int] = (0, 255, 0)) -> np.ndarray:
    """Tile crops into one image, optionally with their landmarks drawn.

    Args:
        frames: (N, S, S, 3) uint8 RGB crops.
        landmarks: (N, L, 2+) normalised crop coordinates, or None.
    Returns:
        (rows * S, cols * S, 3) uint8 RGB, with a cross at each crop's centre.
    """
    n, s = frames.shape[0], frames.shape[1]
    rows = -(-n // cols)
    sheet = np.zeros((rows * s, cols * s, 3), np.uint8)
    for i in range(n):
        tile = np.ascontiguousarray(frames[i])
        if landmarks is not None:
            pts = (np.asarray(landmarks[i])[:, :2] + 1.0) * (s / 2.0) - 0.5
            for x, y in pts[np.isfinite(pts).all(axis=1)]:
                cv2.circle(tile, (int(round(x)), int(round(y))), 1, color, -1)
        c = s // 2
        cv2.drawMarker(tile, (c, c), (255, 0, 0), cv2.MARKER_CROSS, 12, 1)
        r, q = divmod(i, cols)
        sheet[r * s:(r + 1) * s, q * s:(q + 1) * s] = tile
    return sheet
