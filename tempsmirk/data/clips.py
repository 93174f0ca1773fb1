"""Real video clips for temporal training: MEAD as prepared by ``data_prep.mead`` (chapter 5).

Shapes: T frames, H W image size, L landmarks. Landmarks are normalised image coordinates
(x right, y down, [-1, 1] over the image; :mod:`tempsmirk.render.camera`).

``python -m data_prep.mead ROOT --out DIR`` writes ``DIR/manifest.csv`` (one row per clip, with
its split and frame count) and, per clip, ``DIR/clips/<subject>/<view>/<emotion>/level_<n>/<clip>/``
holding ``crops.mp4`` (square face crops, 224 px, with a temporally smoothed box) and
``crops.npz`` (MediaPipe's 478 landmarks in normalised crop coordinates, NaN where no face was
found, and ``found`` per frame; :mod:`tempsmirk.data.mead`, :mod:`tempsmirk.video.crops`).
:class:`MeadClips` reads that folder as a dataset of :class:`~tempsmirk.data.FaceSample` clips:

- an item is a window of T consecutive frames of one clip (windows start every ``stride``
  frames); ``params`` is None (real data has no ground truth);
- crop (zoom, shift, rotation) and colour augmentation (:mod:`tempsmirk.data.augmentation`) are
  drawn **once per clip** from the item's seeded generator and applied to all T frames alike —
  per-frame draws add exactly the jitter the temporal loss then fights; ``per_frame=True`` draws
  every frame anew, as the fork behind the paper's Table 2 does (chapter 5 measures both).
  Landmarks move with the crop;
- the 105 FLAME-matched MediaPipe points are selected with the embedding's
  ``landmark_indices``; the 68 iBUG points (SMIRK takes them from FAN, which data_prep does not
  run) are read off the MediaPipe mesh with :data:`MP_TO_IBUG68`, a widely used index map
  (an approximation: MediaPipe's face oval sits slightly inside FAN's jaw contour at the temples);
- frames without a face keep their index but are marked ``landmarks_valid=False``; their
  landmarks are interpolated from the neighbouring found frames
  (:func:`~tempsmirk.video.gaps.fill_gaps`) so the masking hull stays sane; a clip without any
  face gets zero landmarks (every frame invalid).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from tempsmirk.data.augmentation import ClipAugmentation, ClipTransform, augment_frames, draw_clip_transform
from tempsmirk.data.mead import MANIFEST_FILE, clip_output_dir, read_manifest
from tempsmirk.data.synthetic import item_seed
from tempsmirk.data.types import FaceSample
from tempsmirk.video.crops import CROPS_FILE, CROPS_VIDEO, load_video_crops
from tempsmirk.video.gaps import fill_gaps
from tempsmirk.video.io import VideoDecodeError, read_video_frames

__all__ = ["MP_TO_IBUG68", "ClipAugmentation", "MeadConfig", "ClipWindow", "ClipTransform",
           "draw_clip_transform", "MeadClips"]

#: MediaPipe face-mesh index for each of the 68 iBUG points (jaw 0–16, brows 17–26, nose 27–35,
#: eyes 36–47, mouth 48–67), the map used by several open projects (e.g. LatentSync).
MP_TO_IBUG68 = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87,
)


@dataclass
class MeadConfig:
    """The ``data.mead`` section: MEAD clips from a data_prep output folder.

    root: the folder ``python -m data_prep.mead ... --out DIR`` wrote (``manifest.csv``, ``clips/``).
    split: the manifest split to read (``train``, ``val``, ``test``).
    clip_length: T consecutive frames per item (the paper uses 32).
    stride: frames between window starts (0 = T: non-overlapping windows).
    image_size: H = W of the items (crops are resampled; divisible by 16 for the generator).
    seed: item i draws its augmentation from ``item_seed(seed, i)``.
    augment: draw :class:`~tempsmirk.data.augmentation.ClipAugmentation` (off for evaluation);
        once per clip unless ``augmentation.per_frame``.
    """

    root: Optional[str] = None
    split: str = "train"
    clip_length: int = 32
    stride: int = 0
    image_size: int = 224
    seed: int = 0
    augment: bool = True
    augmentation: ClipAugmentation = field(default_factory=ClipAugmentation)


@dataclass(frozen=True)
class ClipWindow:
    """One item: frames ``start .. start + length - 1`` of the clip stored in ``folder``."""

    key: str
    folder: Path
    start: int
    length: int


def _decode(video: Path, start: int, length: int) -> np.ndarray:
    """Frames start .. start+length-1 of a clip's crops: (length, H, W, 3) uint8 RGB."""
    try:
        return read_video_frames(video, start, length)
    except VideoDecodeError as exc:
        raise ValueError(f"{exc}; expected data_prep's crops.mp4 (re-run data_prep.mead on this "
                         f"clip)") from None


class MeadClips(Dataset):
    """T-frame windows of MEAD clips prepared by data_prep, as :class:`FaceSample` clips.

    Explained in chapter 5 (module docstring: layout, landmarks, augmentation).

    Args:
        cfg: :class:`MeadConfig` (``root`` required).
        landmark_indices: (105,) the FLAME MediaPipe embedding's indices into the 478 points
            (``FLAME.mp_indices``), in the order of FLAME's ``landmarks_mp``.

    Clips of the split whose ``crops.npz`` and ``crops.mp4`` are missing (not prepared, or failed)
    or that are shorter than T are left out and counted in :attr:`not_prepared` and
    :attr:`too_short`.
    """

    def __init__(self, cfg: MeadConfig, landmark_indices: Tensor) -> None:
        if cfg.root is None:
            raise ValueError("data.mead.root is not set; expected the folder data_prep.mead wrote "
                             "(manifest.csv and clips/)")
        if cfg.clip_length < 2:
            raise ValueError(f"data.mead.clip_length must be >= 2; got {cfg.clip_length}")
        if cfg.image_size < 32 or cfg.image_size % 16:
            raise ValueError(f"data.mead.image_size must be >= 32 and divisible by 16; got {cfg.image_size}")
        self.cfg = cfg
        self.root = Path(cfg.root)
        self.landmark_indices = torch.as_tensor(landmark_indices, dtype=torch.long).cpu()
        rows = read_manifest(self.root / MANIFEST_FILE)
        in_split = [c for c in rows if c.split == cfg.split]
        if not in_split:
            splits = sorted({c.split for c in rows})
            raise ValueError(f"{self.root / MANIFEST_FILE} lists no clip of split {cfg.split!r}; it has "
                             f"{splits or 'no clips'}. Set data.mead.split to one of them")
        t, stride = cfg.clip_length, cfg.stride or cfg.clip_length
        windows, missing, short = [], 0, 0
        for clip in in_split:
            folder = clip_output_dir(self.root, clip)
            if not ((folder / CROPS_FILE).is_file() and (folder / CROPS_VIDEO).is_file()):
                missing += 1
                continue
            if clip.frames < t:
                short += 1
                continue
            windows += [ClipWindow(clip.key, folder, s, t) for s in range(0, clip.frames - t + 1, stride)]
        self.not_prepared, self.too_short = missing, short
        if not windows:
            raise ValueError(f"no usable {cfg.split!r} clip under {self.root / 'clips'}: {missing} not "
                             f"prepared (no crops.npz + crops.mp4), {short} shorter than T={t}. Run "
                             f"python -m data_prep.mead MEAD_ROOT --out {self.root} (without "
                             f"--manifest-only), or lower data.mead.clip_length")
        self.windows = tuple(windows)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> FaceSample:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        w, cfg = self.windows[index], self.cfg
        stored = load_video_crops(w.folder / CROPS_FILE)
        lm_all, found_all = stored.landmarks, stored.found
        if lm_all.shape[0] < w.start + w.length or lm_all.shape[1:] != (478, 3):
            raise ValueError(f"{w.folder / CROPS_FILE}: landmarks {lm_all.shape} do not cover frames "
                             f"{w.start}..{w.start + w.length - 1} of 478 points; re-run data_prep.mead")
        points = lm_all[..., :2].astype(np.float32)
        # A clip without any face has nothing to fill from: zeros, and every frame is invalid.
        points = fill_gaps(points, found_all) if found_all.any() else np.zeros_like(points)
        sl = slice(w.start, w.start + w.length)
        points = torch.from_numpy(np.ascontiguousarray(points[sl])).float()  # (T, 478, 2)
        valid = torch.from_numpy(found_all[sl].copy())
        frames = torch.from_numpy(_decode(w.folder / CROPS_VIDEO, w.start, w.length))
        image = frames.permute(0, 3, 1, 2).float() / 255  # (T, 3, N, N)
        lmk68 = points[:, list(MP_TO_IBUG68)]
        lmk_mp = points.index_select(1, self.landmark_indices)

        if cfg.augment:
            g = torch.Generator().manual_seed(item_seed(cfg.seed, index))
            tf = draw_clip_transform(cfg.augmentation, w.length, g)
            # Zeros outside the stored crop: data_prep pads its crops with black too.
            image, (lmk68, lmk_mp, points) = augment_frames(image, (lmk68, lmk_mp, points), tf,
                                                            padding_mode="zeros")
        if image.shape[-1] != cfg.image_size:  # normalised coordinates do not change with the size
            image = F.interpolate(image, size=(cfg.image_size, cfg.image_size), mode="bilinear",
                                  align_corners=False, antialias=True)
        # All 478 points give the masking SMIRK's face hull (forehead included).
        return FaceSample(image=image.clamp(0, 1), landmarks68=lmk68, landmarks_mp=lmk_mp,
                          landmarks_valid=valid, params=None, index=index, hull_points=points)
