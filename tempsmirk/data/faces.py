"""Real face datasets for SMIRK's training mix: image folders and video corpora (README, "Training data").

Shapes: n images, T frames, H = W image size, L landmarks. Landmarks are normalised image
coordinates (x right, y down, [-1, 1]; :mod:`tempsmirk.render.camera`); source landmarks are pixels
with pixel ``i`` covering ``[i, i + 1)`` (:mod:`tempsmirk.data.landmark_files`).

:class:`FaceSource` reads one corpus prepared by ``python -m data_prep.faces`` (``corpus.json`` +
``manifest.csv``, :mod:`tempsmirk.data.face_corpus`) and samples the way SMIRK's datasets do
(``datasets/*_dataset.py``, ``base_dataset.py``):

- an **item** is an image (FFHQ, BUPT), a subject (CelebA: each visit draws one of its images) or
  a video (LRS3, MEAD front and sides: each visit draws a frame with a face; at test time the
  middle one);
- the **crop** is the square around MediaPipe's 478 points, side ``int(s · (w + h) / 2)`` of
  their box, with ``s`` uniform in [1.2, 1.8] for training and 1.6 for testing, resampled to
  224 px (bilinear, black outside the image); a crop much larger than the output is first
  area-reduced by an integer factor (SMIRK's ``skimage.warp`` aliases there);
- then SMIRK's **augmentation** (:mod:`tempsmirk.data.augmentation`; training only);
- the 105 FLAME-matched MediaPipe points are chosen with the embedding's ``landmark_indices``;
  the 68 iBUG points are **FAN's** where its file has them (videos: frames without a FAN face
  are interpolated in time, as SMIRK does), otherwise they are read off the MediaPipe mesh
  (:data:`~tempsmirk.data.clips.MP_TO_IBUG68`; a warning counts those items) — or, with
  ``fan_fallback=False`` (SMIRK's MEAD side views), marked ``landmarks68_valid=False`` so the FAN
  term skips them.

**Clips** (``clip_length`` T > 0, video corpora only): T consecutive frames; the crop scale and the
augmentation are drawn **once per clip**, the crop box follows the face through a moving average
of the per-frame boxes, and frames without a face are interpolated and flagged invalid.

Every visit is a pure function of ``(index, seed)``: :meth:`FaceSource.sample`. An item whose
files turn out to be unreadable is reported (:class:`FaceDataWarning`, naming the file and the
problem) and replaced by another item of the same source drawn from the same seed.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from tempsmirk.data.augmentation import FaceAugmentationConfig, augment_faces, draw_augmentation
from tempsmirk.data.clips import MP_TO_IBUG68
from tempsmirk.data.face_corpus import CorpusInfo, CorpusRow, read_corpus
from tempsmirk.data.landmark_files import (
    FAN_IMAGE_SUFFIX,
    FAN_VIDEO_SUFFIX,
    MEDIAPIPE_SUFFIX,
    LandmarkFileError,
    landmark_path,
    read_fan_image,
    read_fan_video,
    read_mediapipe_image,
    read_mediapipe_video,
)
from tempsmirk.data.synthetic import item_seed
from tempsmirk.data.types import FaceSample
from tempsmirk.video.gaps import fill_gaps
from tempsmirk.video.io import ImageReadError, VideoDecodeError, read_image, read_video_frames

__all__ = ["FaceCropConfig", "FaceSource", "FaceDataWarning", "FaceItemError", "crop_boxes", "smooth_boxes",
           "crop_faces", "points_to_crop"]

#: Frames averaged (each side) for a clip's crop box.
BOX_SMOOTHING = 2
#: Replacement items tried after an unreadable one before giving up.
MAX_RETRIES = 20


class FaceDataWarning(UserWarning):
    """A face item was unreadable and replaced, or a source lacks FAN files (the message says which)."""


class FaceItemError(RuntimeError):
    """One item's files could not be read (the message names the file and the problem)."""


def _media(read, path: Path, *args):
    """``read(path, *args)`` (an image or video frames), its errors as :class:`FaceItemError`."""
    try:
        return read(path, *args)
    except ImageReadError:
        raise FaceItemError(f"{path}: not a readable image") from None
    except VideoDecodeError as exc:
        raise FaceItemError(str(exc)) from None


@dataclass
class FaceCropConfig:
    """How items become training crops (SMIRK's ``base_dataset.py``; chapter 3's data section).

    image_size: H = W of the crops (224 in SMIRK; divisible by 16 for the generator).
    scale_min, scale_max: the crop side over the MediaPipe box size, uniform per item when
        ``augment``; test_scale: the fixed value otherwise.
    augment: training mode — random scale, random frame, :class:`FaceAugmentationConfig`; off:
        SMIRK's test mode (scale ``test_scale``, the middle frame, no augmentation).
    clip_length: T > 0 gives clips of T consecutive frames (video corpora only); 0 single images.
    seed: integer indexing (``dataset[i]``) draws item i from ``item_seed(seed, i)``; samplers
        that pass their own seeds (:class:`~tempsmirk.data.mix.MixedBatches`) override it.
    """

    image_size: int = 224
    scale_min: float = 1.2
    scale_max: float = 1.8
    test_scale: float = 1.6
    augment: bool = True
    clip_length: int = 0
    seed: int = 0
    augmentation: FaceAugmentationConfig = field(default_factory=FaceAugmentationConfig)

    def __post_init__(self) -> None:
        if self.image_size < 32 or self.image_size % 16:
            raise ValueError(f"image_size (data.mix.image_size) must be >= 32 and divisible by 16; "
                             f"got {self.image_size}")
        if not 0 < self.scale_min <= self.scale_max or self.test_scale <= 0:
            raise ValueError(f"data.mix: need 0 < scale_min <= scale_max and test_scale > 0; got {self.scale_min}, "
                             f"{self.scale_max}, {self.test_scale}")
        if self.clip_length == 1 or self.clip_length < 0:
            raise ValueError(f"clip_length (data.mix.clip_length) is 0 (single images) or T >= 2; "
                             f"got {self.clip_length}")


# ----------------------------------------------------------------------------- crops


def crop_boxes(mediapipe: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
    """SMIRK's crop square from MediaPipe's points (``crop_face``): (n, 478, 2) pixels and (n,)
    scales -> centre (n, 2) of their box and side ``floor(scale · (w + h) / 2)`` (n,), pixels."""
    lo, hi = mediapipe.amin(dim=1), mediapipe.amax(dim=1)
    centre = (lo + hi) / 2
    size = torch.floor((hi - lo).sum(dim=1) / 2 * scale)
    return centre, size.clamp(min=2)


def smooth_boxes(centre: Tensor, size: Tensor, radius: int = BOX_SMOOTHING) -> tuple[Tensor, Tensor]:
    """Moving average over ``2·radius + 1`` frames (clamped at the ends) of per-frame boxes
    ((T, 2), (T,)), so a clip's crop follows the head without the landmarks' frame-to-frame jitter."""
    t = centre.shape[0]
    idx = (torch.arange(t)[:, None] + torch.arange(-radius, radius + 1)[None]).clamp(0, t - 1)
    return centre[idx].mean(dim=1), size[idx].mean(dim=1)


def points_to_crop(points: Tensor, centre: Tensor, size: Tensor) -> Tensor:
    """Source pixels (n, L, 2) -> normalised coordinates of the crops ((n, 2) centres, (n,) sides)."""
    return (points - centre[:, None]) * (2 / size)[:, None, None]


def crop_faces(frames: Sequence[np.ndarray], centre: Tensor, size: Tensor, out_size: int) -> Tensor:
    """Square crops resampled to ``out_size``: frames (n of (H, W, 3) uint8) -> (n, 3, S, S) in [0, 1].

    Only the crop's region of the frame is converted; a crop more than twice the output is first
    area-reduced by an integer factor. Outside the frame is black (SMIRK's constant border).
    """
    import kornia.geometry.transform as KT

    out = []
    for frame, c, s in zip(frames, centre.tolist(), size.tolist()):
        h, w = frame.shape[:2]
        x0, y0 = c[0] - s / 2, c[1] - s / 2
        # Region of the frame under the crop (one pixel of margin for the bilinear taps).
        rx0, ry0 = max(int(math.floor(x0)) - 1, 0), max(int(math.floor(y0)) - 1, 0)
        rx1, ry1 = min(int(math.ceil(x0 + s)) + 1, w), min(int(math.ceil(y0 + s)) + 1, h)
        if rx1 <= rx0 or ry1 <= ry0:
            out.append(torch.zeros(3, out_size, out_size))
            continue
        f = max(int(s // out_size), 1)
        if f > 1:  # whole f x f cells: take more of the frame where there is more, pad beyond it
            rx1, ry1 = min(rx0 + -(-(rx1 - rx0) // f) * f, w), min(ry0 + -(-(ry1 - ry0) // f) * f, h)
        roi = torch.from_numpy(np.ascontiguousarray(frame[ry0:ry1, rx0:rx1])).permute(2, 0, 1)[None].float() / 255
        if f > 1:
            ph, pw = (-roi.shape[2]) % f, (-roi.shape[3]) % f
            roi = F.avg_pool2d(F.pad(roi, (0, pw, 0, ph)), f)
        a = out_size / s  # output pixels per source pixel
        # Pixel-centre indices: source u (reduced ROI) -> output ((u + 1/2)·f + r0 - x0)·a - 1/2.
        m = torch.tensor([[[a * f, 0, ((0.5 * f + rx0 - x0) * a) - 0.5],
                           [0, a * f, ((0.5 * f + ry0 - y0) * a) - 0.5]]])
        out.append(KT.warp_affine(roi, m, (out_size, out_size), mode="bilinear", padding_mode="zeros",
                                  align_corners=True)[0])
    return torch.stack(out).clamp(0, 1)


# ----------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class _Item:
    """One item: the manifest rows it may draw from (one, or a subject's images)."""

    rows: tuple[CorpusRow, ...]


class FaceSource(Dataset):
    """One prepared corpus as a ``Dataset`` of :class:`~tempsmirk.data.FaceSample` (module docstring).

    Args:
        corpus_dir: the folder ``python -m data_prep.faces manifest`` wrote.
        landmark_indices: (105,) the FLAME MediaPipe embedding's indices into the 478 points
            (``FLAME.mp_indices``).
        cfg: :class:`FaceCropConfig`.
        split: the manifest split to read (``train``, ``val``, ``test``).
        fan_fallback: where an item has no FAN points, read the 68 from the MediaPipe mesh (and
            warn); False marks them ``landmarks68_valid=False`` instead (SMIRK's MEAD side views).
        name: how messages call the source (default: the corpus kind).

    ``dataset[i]`` draws item i with ``item_seed(cfg.seed, i)``; ``dataset[(i, seed)]`` with the
    given seed (what :class:`~tempsmirk.data.mix.FaceMix` passes).
    """

    def __init__(self, corpus_dir: str | os.PathLike, landmark_indices: Tensor, cfg: FaceCropConfig,
                 split: str = "train", fan_fallback: bool = True, name: Optional[str] = None) -> None:
        info, rows = read_corpus(corpus_dir)
        self.info: CorpusInfo = info
        self.name = name or info.kind
        self.cfg = cfg
        self.split = split
        self.fan_fallback = fan_fallback
        self.landmark_indices = torch.as_tensor(landmark_indices, dtype=torch.long).cpu()
        if self.landmark_indices.max() >= 478 or self.landmark_indices.min() < 0:
            raise ValueError("landmark_indices must index MediaPipe's 478 points")
        t = cfg.clip_length
        if t and info.media != "videos":
            raise ValueError(f"{self.name}: clip_length={t} needs a video corpus, but {corpus_dir} holds "
                             f"{info.media} (SMIRK repeats one image T times there; give this source "
                             f"percentage 0 for clip training)")
        in_split = [r for r in rows if r.split == split]
        if not in_split:
            splits = sorted({r.split for r in rows})
            raise ValueError(f"{self.name}: {Path(corpus_dir) / 'manifest.csv'} lists no file of split "
                             f"{split!r}; it has {splits or 'no files'}")
        keep = [r.ok and (not t or r.frames >= t) for r in in_split]
        usable = [r for r, k in zip(in_split, keep) if k]
        #: Files of the split left out: (path, reason), from the manifest's status column.
        self.left_out = tuple((r.path, r.status if not r.ok else f"shorter than T={t}")
                              for r, k in zip(in_split, keep) if not k)
        if not usable:
            raise ValueError(f"{self.name}: no usable {split!r} file in {corpus_dir} ({len(self.left_out)} "
                             f"left out, e.g. {self.left_out[:3]}); run data_prep.faces over it first")
        if info.by_subject:
            groups: dict[str, list[CorpusRow]] = {}
            for r in usable:
                groups.setdefault(r.subject, []).append(r)
            self.items = tuple(_Item(tuple(g)) for _, g in sorted(groups.items()))
        else:
            self.items = tuple(_Item((r,)) for r in usable)
        no_fan = sum(1 for r in usable if info.fan_root is None or r.fan_frames <= 0)
        #: Files whose 68 points come from the MediaPipe mesh (or are invalid without fallback).
        self.without_fan = no_fan
        if no_fan and fan_fallback:
            warnings.warn(f"{self.name}: {no_fan} of {len(usable)} files have no FAN landmarks"
                          f"{' (no FAN folder given)' if info.fan_root is None else ''}; their 68 points are "
                          f"read off the MediaPipe mesh (MP_TO_IBUG68), whose jaw line sits slightly inside "
                          f"FAN's", FaceDataWarning, stacklevel=2)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key) -> FaceSample:
        index, seed = key if isinstance(key, tuple) else (key, item_seed(self.cfg.seed, key))
        return self.get(int(index), int(seed))

    def get(self, index: int, seed: int, label: Optional[int] = None) -> FaceSample:
        """Item ``index`` drawn with ``seed``; an unreadable item is reported and replaced by another
        of this source drawn from the same seed. ``label`` is the sample's ``index`` (default ``index``)."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items of {self.name}")
        errors = []
        g = torch.Generator().manual_seed(seed)
        current = index
        for _ in range(MAX_RETRIES + 1):
            try:
                sample = self.sample(current, int(torch.randint(2 ** 62, (), generator=g)))
                return replace(sample, index=index if label is None else label)
            except (FaceItemError, LandmarkFileError) as exc:
                errors.append(str(exc))
                warnings.warn(f"{self.name} item {current} skipped: {exc}", FaceDataWarning, stacklevel=2)
                current = int(torch.randint(len(self), (), generator=g))
        raise RuntimeError(f"{self.name}: {len(errors)} items in a row could not be read; the corpus looks "
                           f"broken (last: {errors[-1]}). Re-run data_prep.faces over it")

    # ------------------------------------------------------------------ one visit
    def sample(self, index: int, seed: int) -> FaceSample:
        """Item ``index`` visited with ``seed`` (no retries): a pure function of both."""
        cfg, info = self.cfg, self.info
        g = torch.Generator().manual_seed(seed)
        item = self.items[index]
        row = item.rows[int(torch.randint(len(item.rows), (), generator=g))] if cfg.augment else item.rows[0]
        media = Path(info.root) / row.path
        if info.media == "images":
            mp = read_mediapipe_image(landmark_path(info.mediapipe_root, row.path, MEDIAPIPE_SUFFIX))
            if mp is None:
                raise FaceItemError(f"{media}: its MediaPipe file says no face (re-run the manifest)")
            mp = mp[None, :, :2]
            found = np.ones(1, bool)
            fan = self._fan_image(row)
            frames = _media(read_image, media)[None]
        else:
            mp_all = read_mediapipe_video(landmark_path(info.mediapipe_root, row.path, MEDIAPIPE_SUFFIX),
                                          frames=row.frames, mmap=True)
            start, n = self._frames(mp_all, g)
            mp = np.asarray(mp_all[start:start + n, :, :2], dtype=np.float32)
            found = np.isfinite(mp).all(axis=(1, 2))
            if not found.any():
                raise FaceItemError(f"{media}: no face in frames {start}..{start + n - 1}")
            mp = fill_gaps(mp, found)
            fan = self._fan_video(row, start, n)
            frames = _media(read_video_frames, media, start, n)
        if frames.shape[0] != mp.shape[0]:
            raise FaceItemError(f"{media}: {frames.shape[0]} frames read for {mp.shape[0]} landmark rows")
        mp_t = torch.from_numpy(mp)
        scale = (cfg.scale_min + (cfg.scale_max - cfg.scale_min) * torch.rand((), generator=g)
                 if cfg.augment else torch.tensor(cfg.test_scale))
        centre, size = crop_boxes(mp_t, scale.expand(mp_t.shape[0]))
        if cfg.clip_length:
            centre, size = smooth_boxes(centre, size)
        image = crop_faces(list(frames), centre, size, cfg.image_size)
        lmk68_px = torch.from_numpy(fan) if fan is not None else mp_t[:, list(MP_TO_IBUG68)]
        # 68 + the embedding's MediaPipe points + all 478 (the masking's face hull, as SMIRK's).
        points = torch.cat([points_to_crop(lmk68_px, centre, size),
                            points_to_crop(mp_t.index_select(1, self.landmark_indices), centre, size),
                            points_to_crop(mp_t, centre, size)], dim=1)
        n = image.shape[0]
        if cfg.augment:
            draw = draw_augmentation(cfg.augmentation, 1, g)
            image, points = augment_faces(image, points, draw.repeat(n) if n > 1 else draw, cfg.augmentation, g)
        valid = torch.from_numpy(found)
        # MediaPipe's 68 stand in for FAN's only with the fallback (SMIRK's side views: FAN term off).
        lmk68_valid = valid.clone() if fan is not None or self.fan_fallback else torch.zeros_like(valid)
        n_mp = 68 + len(self.landmark_indices)
        lmk68, lmk_mp = points[:, :68].contiguous(), points[:, 68:n_mp].contiguous()
        hull = points[:, n_mp:].contiguous()
        if not cfg.clip_length:
            return FaceSample(image=image[0], landmarks68=lmk68[0], landmarks_mp=lmk_mp[0],
                              landmarks_valid=valid[0], params=None, index=index,
                              landmarks68_valid=lmk68_valid[0], hull_points=hull[0])
        return FaceSample(image=image, landmarks68=lmk68, landmarks_mp=lmk_mp, landmarks_valid=valid,
                          params=None, index=index, landmarks68_valid=lmk68_valid, hull_points=hull)

    def _frames(self, mp_all: np.ndarray, g: torch.Generator) -> tuple[int, int]:
        """(start, count) of the frames to read: a random face frame (a random T-window for clips)
        in training, the middle ones at test time."""
        total, t = mp_all.shape[0], self.cfg.clip_length
        if t:
            start = int(torch.randint(total - t + 1, (), generator=g)) if self.cfg.augment else (total - t) // 2
            return start, t
        has_face = np.flatnonzero(np.isfinite(np.asarray(mp_all[:, 0, 0])))
        if has_face.size == 0:
            raise FaceItemError("no frame with a face in its MediaPipe file")
        k = int(torch.randint(has_face.size, (), generator=g)) if self.cfg.augment else has_face.size // 2
        return int(has_face[k]), 1

    def _fan_image(self, row: CorpusRow) -> Optional[np.ndarray]:
        """(1, 68, 2) FAN points of an image, or None (no FAN file or no FAN face)."""
        if self.info.fan_root is None or row.fan_frames <= 0:
            return None
        pts = read_fan_image(landmark_path(self.info.fan_root, row.path, FAN_IMAGE_SUFFIX))
        return None if pts is None else pts[None]

    def _fan_video(self, row: CorpusRow, start: int, n: int) -> Optional[np.ndarray]:
        """(n, 68, 2) FAN points of frames start.., frames without a FAN face interpolated in time
        over the whole video (SMIRK's ``landmarks_interpolate``), or None."""
        if self.info.fan_root is None or row.fan_frames <= 0:
            return None
        pts = read_fan_video(landmark_path(self.info.fan_root, row.path, FAN_VIDEO_SUFFIX), frames=row.frames)
        found = np.isfinite(pts).all(axis=(1, 2))
        if not found.any():
            return None
        return fill_gaps(pts, found)[start:start + n].astype(np.float32)
