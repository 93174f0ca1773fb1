"""From a video to per-frame FLAME parameters, an overlay video and meshes (chapter 7).

Shapes: T frames, B a batch of frames, H W frame size, N crop side, V vertices.

The stages, each a function over a batch of frames:

1. **decode** — :func:`tempsmirk.video.io.iter_frames` (PyAV);
2. **landmarks** — MediaPipe FaceMesh in tracking mode (:func:`tempsmirk.video.landmarks.detect_frames`),
   NaN and ``found=False`` for frames without a face;
3. **crop** — SMIRK's square box around the landmarks (scale 1.4), filled across frames without a
   face and smoothed over time (:func:`tempsmirk.video.crops.video_boxes`), each frame warped to N × N
   (:func:`crop_frames`; N = 224 for official checkpoints, ``DEMO_IMAGE_SIZE`` for the demo one);
4. **encode** — :class:`~tempsmirk.smirk.SmirkEncoder` in eval mode without gradients
   (:func:`encode_crops`), then frames without a face get parameters interpolated from their
   neighbours (:func:`tempsmirk.video.gaps.fill_gaps`);
5. **fit** (with ``fit``) — FLAME fitted to the MediaPipe landmarks in the crops with the temporal
   terms (:func:`tempsmirk.fitting.track`), starting from the encoder's prediction when there is an
   encoder and from a closed-form pose and camera otherwise (then the crop pass is skipped);
   then, optionally, an inference-time filter (:mod:`tempsmirk.reconstruct.smoothing`);
6. **FLAME**, **render** — meshes, drawn into the frames with the crop camera re-expressed for the
   frame (:mod:`tempsmirk.reconstruct.overlay`), plus the generator's redrawing when the
   checkpoint has a generator;
7. **write** — ``params.npz``, ``overlay.mp4`` and optional per-frame meshes
   (:mod:`tempsmirk.reconstruct.export`), all atomic.

The video is read in three passes (landmarks; crops and encoder; FLAME, overlay and meshes; the
second is skipped when fitting without an encoder),
because crop boxes and filled parameters of frame t depend on later frames. A video whose frames
fit in ``max_cache_bytes`` (1 GiB, e.g. a minute of 640 × 360) is decoded once and kept in memory;
a longer one is decoded again for each pass (1–2 ms per frame), so memory stays bounded.
:func:`reconstruct_video` runs everything and times every stage (:class:`StageTimes`).
"""

from __future__ import annotations

import math
import pickle
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Literal, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from tempsmirk.flame.params import FlameParams
from tempsmirk.reconstruct.export import OVERLAY_FILE, PARAMS_FILE, MeshFolder, VideoParams, save_params
from tempsmirk.reconstruct.overlay import (
    blend_windows,
    compose_panels,
    generator_panel,
    projected_landmarks,
    render_windows,
)
from tempsmirk.reconstruct.smoothing import Smoothing, describe, smooth_params
from tempsmirk.smirk.masking import face_hull_points
from tempsmirk.video.crops import (
    DEFAULT_SCALE,
    DEFAULT_SIGMA_SECONDS,
    crop_affine,
    landmarks_to_crop,
    video_boxes,
    warp_crop,
)
from tempsmirk.video.gaps import NoFaceError, fill_gaps
from tempsmirk.video.io import VideoDecodeError, iter_frames, probe_video, write_video
from tempsmirk.video.landmarks import detect_frames
from tempsmirk.viz import Table, table

if TYPE_CHECKING:
    from tempsmirk.fitting import FitConfig, FitResult

__all__ = [
    "STAGES",
    "NoFaceError",
    "FlameModelError",
    "StageTimes",
    "Reconstruction",
    "crop_transforms",
    "crop_frames",
    "encode_crops",
    "prepare_encoder",
    "load_models",
    "fit_targets",
    "reconstruct_video",
]

#: x264 preset of the overlay video: a preview, written 2.6x faster than "medium" at the same size.
OVERLAY_PRESET = "veryfast"

STAGES = ("decode", "landmarks", "crop", "encode", "fit", "flame", "render", "generator", "compose", "write")


class FlameModelError(ValueError):
    """The FLAME model file (or a file expected beside it) could not be loaded."""


# ----------------------------------------------------------------------------- timing
@dataclass(frozen=True)
class StageTimes:
    """Seconds spent in each stage of one run (:data:`STAGES`), the run's wall time and frames.

    ``crop`` is cutting the crops, ``compose`` building the overlay panels, ``write`` encoding and
    writing files. Stages that did not run hold 0.
    """

    frames: int
    decode: float
    landmarks: float
    crop: float
    encode: float
    fit: float
    flame: float
    render: float
    generator: float
    compose: float
    write: float
    total: float

    def fps(self, stage: str) -> float:
        """Frames per second of one stage alone (``inf`` for a stage that took no time)."""
        s = getattr(self, stage)
        return self.frames / s if s > 0 else math.inf

    @property
    def without_write(self) -> float:
        """Wall time less the time spent writing files."""
        return self.total - self.write

    def table(self) -> Table:
        """Per-stage ms/frame and frames/s, then end to end with and without writing: an HTML
        table in a notebook, aligned text when printed (:func:`tempsmirk.viz.table`)."""
        rows = {stage: getattr(self, stage) for stage in STAGES if getattr(self, stage) > 0}
        rows.update({"end to end": self.total, "end to end, no writing": self.without_write})
        return table({k: [1e3 * s / self.frames, self.frames / s] for k, s in rows.items()},
                     ["time", "speed"], units=["ms/frame", "frames/s"], index="stage",
                     note=f"{self.frames} frames")


class _Stopwatch:
    """Accumulates seconds per stage; waits for the GPU at stage edges so times are honest."""

    def __init__(self, device: torch.device) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cuda = device.type == "cuda"
        self.device = device

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = self._now()
        try:
            yield
        finally:
            self.seconds[stage] += self._now() - t0

    @contextmanager
    def rest(self, stage: str) -> Iterator[None]:
        """Charge ``stage`` with the block's time not charged to another stage inside it."""
        t0, before = self._now(), sum(self.seconds.values())
        try:
            yield
        finally:
            inner = sum(self.seconds.values()) - before
            self.seconds[stage] += self._now() - t0 - inner

    def timed(self, items: Iterable, stage: str) -> Iterator:
        """Yield from ``items``, charging the time spent producing each item to ``stage``."""
        it = iter(items)
        while True:
            with self(stage):
                item = next(it, _END)
            if item is _END:
                return
            yield item

    def times(self, frames: int, total: float) -> StageTimes:
        return StageTimes(frames=frames, total=total, **{s: self.seconds.get(s, 0.0) for s in STAGES})


_END = object()


def _keeping(items: Iterable, kept: list) -> Iterator:
    """Yield ``items``, appending each to ``kept``."""
    for item in items:
        kept.append(item)
        yield item


def _batches(items: Iterable, n: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(islice(it, n)):
        yield batch


# ----------------------------------------------------------------------------- stages
def crop_transforms(landmarks: np.ndarray, found: np.ndarray, fps: float, crop_size: int,
                    scale: float = DEFAULT_SCALE, sigma_seconds: float = DEFAULT_SIGMA_SECONDS) -> np.ndarray:
    """Per-frame crop affines from landmarks: (T, 478, 3), (T,) -> (T, 2, 3) frame -> crop pixels.

    Boxes of frames without a face are interpolated (held at the ends) and all boxes smoothed over
    time (:func:`tempsmirk.video.crops.video_boxes`). Raises :class:`NoFaceError` when no frame has a face.
    """
    if not np.asarray(found).any():
        raise NoFaceError(f"no face was found in any of the {len(found)} frames; expected a video "
                          "showing a face (MediaPipe FaceMesh detected none): check the video")
    boxes = video_boxes(landmarks, found, fps, scale, sigma_seconds)
    return crop_affine(boxes.center, boxes.size, crop_size)


def crop_frames(frames: Sequence[np.ndarray], affine: np.ndarray, crop_size: int) -> Tensor:
    """Cut N × N crops: B frames (H, W, 3) uint8, affine (B, 2, 3) -> (B, 3, N, N) float in [0, 1].

    One OpenCV warp per frame: warping uint8 frames is several times cheaper than sampling float
    copies of whole frames in one batched call.
    """
    crops = np.stack([warp_crop(f, a, crop_size) for f, a in zip(frames, affine)])
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(255.0)


@torch.inference_mode()
def encode_crops(encoder, crops: Tensor) -> FlameParams:
    """The encoder on a batch of crops (B, 3, N, N) on its device; eval mode, no gradients."""
    if encoder.training:
        raise ValueError("encode_crops needs the encoder in eval mode (BatchNorm statistics of a "
                         "single video are not the training ones); call encoder.eval()")
    return encoder(crops.contiguous(memory_format=torch.channels_last))


# ----------------------------------------------------------------------------- loading
def prepare_encoder(encoder, device: str | torch.device = "cpu"):
    """Eval mode on ``device``, weights in channels-last layout (MobileNets run about a third faster
    that way on CPUs); returns the encoder."""
    return encoder.to(device).eval().to(memory_format=torch.channels_last)


def load_models(checkpoint: Optional[str | Path], flame_path: Optional[str | Path] = None,
                with_generator: bool = True, device: str | torch.device = "cpu", require: Sequence[str] = ()):
    """Encoder (prepared, :func:`prepare_encoder`), generator (or None) and FLAME for reconstruction.

    The coefficient counts come from the checkpoint
    (:func:`~tempsmirk.smirk.checkpoint.checkpoint_sizes`); without a
    checkpoint (fitting alone) there is no encoder or generator, and FLAME keeps 300 shape and 50
    expression coefficients. ``flame_path`` None is the built-in head, otherwise a FLAME model
    file or asset folder (:func:`tempsmirk.flame.load_flame`; ``require`` names the asset features
    that must be there, e.g. ``("mediapipe",)`` for fitting).

    Raises:
        FileNotFoundError, :class:`~tempsmirk.smirk.CheckpointError`: unusable checkpoint.
        :class:`FlameModelError`: unusable FLAME file.
    """
    from tempsmirk.flame import load_flame

    encoder = generator = None
    n_exp, n_shape = 50, 300
    if checkpoint is not None:
        from tempsmirk.smirk.checkpoint import checkpoint_sizes, load_smirk_checkpoint

        n_exp, n_shape = checkpoint_sizes(checkpoint)
        encoder, generator = load_smirk_checkpoint(checkpoint, n_exp=n_exp, n_shape=n_shape,
                                                   with_generator=with_generator)
    try:
        flame = load_flame(flame_path, n_shape, n_exp, require=require)
    except (OSError, ValueError, KeyError, EOFError, IndexError, TypeError, AttributeError,
            pickle.UnpicklingError) as exc:  # what a wrong or damaged pickle raises; FlameFileError is a ValueError
        raise FlameModelError(f"could not load the FLAME model {flame_path}: {exc}. Expected a FLAME "
                              "2020/2023 pickle or an asset folder (README, 'Real assets'); leave "
                              "--flame out to use the built-in head") from exc
    if generator is not None:
        generator = generator.to(device).eval()
    return (None if encoder is None else prepare_encoder(encoder, device)), generator, flame.to(device)


def fit_targets(landmarks: np.ndarray, found: np.ndarray, affine: np.ndarray, crop_size: int, flame):
    """What the fit matches: MediaPipe's detections (T, 478, 3) frame pixels, found (T,) and crop
    affines (T, 2, 3) -> :class:`~tempsmirk.fitting.FitTargets` in normalised crop coordinates (the
    105 points of FLAME's MediaPipe embedding, and the 17 jaw-contour points when FLAME has an
    iBUG embedding)."""
    from tempsmirk.fitting import FitTargets

    points = torch.from_numpy(landmarks_to_crop(landmarks, affine, crop_size))
    return FitTargets.from_mediapipe(points, torch.from_numpy(np.asarray(found, dtype=bool)),
                                     flame.mp_indices.cpu(), contour=flame.has_landmarks68)


# ----------------------------------------------------------------------------- the driver
@dataclass(frozen=True)
class Reconstruction:
    """What :func:`reconstruct_video` produced.

    video: the saved :class:`~tempsmirk.reconstruct.export.VideoParams` (filled and smoothed).
    raw: (T, ...) parameters before the inference-time filter: the fit's when fitting, else the
        encoder's, frames without a face filled.
    landmarks: (T, 478, 3) MediaPipe landmarks in frame pixels, NaN where not found.
    folder: ``DIR/<stem>``; overlay, meshes: the written paths, or None.
    times: per-stage seconds.
    encoded: (T, ...) the encoder's output (frames without a face filled), or None without an encoder.
    fit: the :class:`~tempsmirk.fitting.FitResult` when fitting, else None.
    """

    video: VideoParams
    raw: FlameParams
    landmarks: np.ndarray
    folder: Path
    overlay: Optional[Path]
    meshes: Optional[Path]
    times: StageTimes
    encoded: Optional[FlameParams] = None
    fit: Optional["FitResult"] = None

    @property
    def params_path(self) -> Path:
        return self.folder / PARAMS_FILE


def reconstruct_video(
    video: str | Path,
    encoder,
    flame,
    out_dir: str | Path,
    *,
    generator=None,
    crop_size: int = 224,
    scale: float = DEFAULT_SCALE,
    sigma_seconds: float = DEFAULT_SIGMA_SECONDS,
    batch_size: int = 16,
    smoothing: Optional[Smoothing] = None,
    fit: Optional["FitConfig"] = None,
    overlay: bool = True,
    meshes: Optional[Literal["obj", "ply"]] = None,
    progress: bool = True,
    max_cache_bytes: int = 1 << 30,
) -> Reconstruction:
    """Reconstruct every frame of a video and write ``DIR/<stem>/`` (module docstring). Chapter 7.

    Args:
        video: a video file PyAV can decode.
        encoder: a :class:`~tempsmirk.smirk.SmirkEncoder` in eval mode (:func:`prepare_encoder`),
            or None to fit without one (``fit`` then required). flame: FLAME layer on the
            encoder's device, which is used for everything after cropping (FLAME's without an encoder).
        out_dir: DIR; outputs go to ``DIR/<video stem>/``.
        generator: a :class:`~tempsmirk.smirk.SmirkGenerator` for the overlay's third panel, or None.
        crop_size: N, the encoder's input size. scale, sigma_seconds: crop box (tempsmirk.video.crops).
        batch_size: frames per encoder / FLAME / render call.
        smoothing: inference-time filter (:class:`~tempsmirk.reconstruct.smoothing.OneEuro` or
            :class:`~tempsmirk.reconstruct.smoothing.SavitzkyGolay`) applied after filling frames
            without a face (and after the fit); None for the raw output.
        fit: fit FLAME to the landmarks with these settings (:class:`~tempsmirk.fitting.FitConfig`),
            starting from the encoder's output when there is an encoder; None: the encoder alone.
        overlay: write ``overlay.mp4``. meshes: also write per-frame meshes in this format.
        progress: tqdm bars.
        max_cache_bytes: keep the decoded frames in memory when the whole video fits (by its header's
            frame count), instead of decoding it again for the later passes.
    Raises:
        VideoDecodeError: unreadable or truncated video. NoFaceError: no face in any frame.
        ValueError: neither an encoder nor ``fit``. FlameModelError: fitting with a FLAME without a
        MediaPipe landmark embedding.
    """
    if encoder is None and fit is None:
        raise ValueError("reconstruct_video needs an encoder, fit settings, or both; got neither")
    if fit is not None and not flame.has_mediapipe:
        raise FlameModelError(f"fitting needs FLAME's MediaPipe landmark embedding; {flame.source} has none "
                              "(put mediapipe_landmark_embedding.npz beside the model file)")
    video, folder = Path(video), Path(out_dir) / Path(video).stem
    info = probe_video(video)
    fps = info.fps if math.isfinite(info.fps) and info.fps > 0 else 25.0
    device = flame.v_template.device if encoder is None else next(encoder.parameters()).device
    watch = _Stopwatch(device)
    start = time.perf_counter()

    def bar(what: str, total: Optional[int]):
        return tqdm(total=total, desc=f"{video.name}: {what}", unit="frame", disable=not progress, leave=False)

    kept: Optional[list] = None
    passes = int(encoder is not None) + int(overlay)  # how often the frames are needed again
    if passes and 0 < info.header_frames * info.width * info.height * 3 <= max_cache_bytes:
        kept = []

    def frames_again() -> Iterator[np.ndarray]:
        return iter(kept) if kept is not None else watch.timed(iter_frames(video), "decode")

    first = watch.timed(iter_frames(video), "decode")
    with bar("landmarks", info.header_frames or None) as pb, watch.rest("landmarks"):
        landmarks, found, sizes = detect_frames(first if kept is None else _keeping(first, kept),
                                                tracking=True, progress=pb)
    t = int(found.shape[0])
    if t == 0:
        raise VideoDecodeError(f"{video} decoded to zero frames; expected at least one")
    w, h = (int(v) for v in sizes[0])
    with watch("crop"):
        try:
            affine = crop_transforms(landmarks, found, fps, crop_size, scale, sigma_seconds)
        except NoFaceError as exc:
            raise NoFaceError(f"{video}: {exc}") from None

    encoded = None
    if encoder is not None:
        encoded = _encode_pass(video, frames_again(), encoder, affine, crop_size, batch_size, t, watch,
                               bar("encode", t))
        encoded = fill_gaps(encoded, found)
    fitted = None
    if fit is not None:
        from tempsmirk.fitting import LandmarkFlame, track

        with watch("fit"):
            targets = fit_targets(landmarks, found, affine, crop_size, flame)
            fitted = track(LandmarkFlame(flame), targets, fit, encoded, progress=progress, desc=video.name)
        raw = fitted.params.to("cpu", torch.float32)
    else:
        raw = encoded
    params = smooth_params(raw, smoothing, fps)
    source = "fit" if encoder is None else "encoder+fit" if fit is not None else "encoder"
    result = VideoParams(params, found, info.fps, affine, crop_size, (w, h), describe(smoothing), source)
    with watch("write"):
        save_params(folder / PARAMS_FILE, result)

    overlay_path = folder / OVERLAY_FILE if overlay else None
    mesh_path = None
    if overlay or meshes:
        mesh_folder = MeshFolder(folder, meshes) if meshes else None
        frames_pass = _render_pass(video, frames_again() if overlay else None, params, found, affine, crop_size,
                                   landmarks, flame, generator, mesh_folder, batch_size, watch, bar("render", t))
        try:
            if overlay:
                with watch.rest("write"):
                    write_video(overlay_path, frames_pass, fps, preset=OVERLAY_PRESET)
            else:
                for _ in frames_pass:
                    pass
            if mesh_folder is not None:
                mesh_path = mesh_folder.publish()
        finally:
            if mesh_folder is not None and mesh_path is None:
                mesh_folder.discard()
    times = watch.times(t, time.perf_counter() - start)
    return Reconstruction(result, raw, landmarks, folder, overlay_path, mesh_path, times, encoded, fitted)


def _encode_pass(video: Path, frames_it: Iterator[np.ndarray], encoder, affine: np.ndarray, crop_size: int,
                 batch_size: int, t: int, watch: _Stopwatch, pb) -> FlameParams:
    """Crops and the encoder over the video's frames, batch by batch: (T, ...) fields on the CPU."""
    device = next(encoder.parameters()).device
    outputs, i0 = [], 0
    with pb:
        for frames in _batches(frames_it, batch_size):
            if i0 + len(frames) > t:
                raise VideoDecodeError(f"{video} decoded to more frames on its second pass than on its "
                                       f"first ({t}); the file may have changed while being read")
            with watch("crop"):
                crops = crop_frames(frames, affine[i0:i0 + len(frames)], crop_size).to(device)
            with watch("encode"):
                outputs.append(encode_crops(encoder, crops).to("cpu", torch.float32))
            i0 += len(frames)
            pb.update(len(frames))
    if i0 != t:
        raise VideoDecodeError(f"{video} decoded to {i0} frames on its second pass but {t} on its first; "
                               "the file may be damaged or have changed while being read")
    return FlameParams.cat(outputs)


@torch.inference_mode()
def _render_pass(video: Path, frames_it: Optional[Iterator[np.ndarray]], params: FlameParams, found: np.ndarray,
                 affine: np.ndarray, crop_size: int, landmarks: np.ndarray, flame, generator,
                 mesh_folder: Optional[MeshFolder], batch_size: int, watch: _Stopwatch,
                 pb) -> Iterator[np.ndarray]:
    """FLAME, meshes and (with ``frames_it``, the video's frames) overlay frames, batch by batch;
    yields (H', W', 3) uint8 overlay frames."""
    device = flame.v_template.device
    t = found.shape[0]
    faces = flame.faces
    face_mask = flame.region_faces("face") if "face" in flame.masks else None
    affine_t = torch.from_numpy(affine).to(device)
    found_t = torch.from_numpy(found).to(device)
    overlay = frames_it is not None
    face_weights = None
    if generator is not None and overlay:
        from tempsmirk.smirk.masking import face_sampling_weights

        face_weights = face_sampling_weights(flame)
    with pb:
        for i0 in range(0, t, batch_size):
            i1 = min(t, i0 + batch_size)
            p = params[i0:i1].to(device)
            with watch("flame"):
                out = flame.forward_params(p)
            if mesh_folder is not None:
                with watch("write"):
                    mesh_folder.write(i0, out.vertices.cpu().numpy(), faces.cpu().numpy())
            if overlay:
                frames = list(islice(frames_it, i1 - i0))
                if len(frames) != i1 - i0:
                    raise VideoDecodeError(f"{video} decoded to fewer frames on its last pass; the file "
                                           "may have changed while it was being read")
                with watch("render"):
                    win = render_windows(out.vertices, faces, p.cam, affine_t[i0:i1], crop_size,
                                         frames[0].shape[:2], face_mask)
                generated = None
                if generator is not None:
                    with watch("generator"):
                        crops = crop_frames(frames, affine[i0:i1], crop_size).to(device)
                        hull = _hull_points(landmarks[i0:i1], affine[i0:i1], crop_size, found_t[i0:i1],
                                            _mesh_hull_points(out, p.cam, crop_size)).to(device)
                        generated = generator_panel(generator, flame, out.vertices, p, crops, hull,
                                                    face_mask, face_weights)
                with watch("compose"):
                    batch = torch.from_numpy(np.stack(frames)).to(device)
                    overlaid = blend_windows(batch, win.rendering.image, win.rendering.mask, win.origin)
                    composed = compose_panels(batch, overlaid, found_t[i0:i1], generated).cpu().numpy()
                yield from composed
            pb.update(i1 - i0)


def _mesh_hull_points(out, cam: Tensor, crop_size: int) -> Tensor:
    """The mesh's own face-hull points in the crop, forehead included (the training hull for
    data without MediaPipe's 478 points, :func:`~tempsmirk.smirk.masking.face_hull_points`);
    the projected vertices where the model has no 68 + MediaPipe landmarks. -> (B, L', 2)."""
    if out.landmarks68 is not None and out.landmarks_mp is not None:
        return face_hull_points(projected_landmarks(out.landmarks68, cam, crop_size),
                                projected_landmarks(out.landmarks_mp, cam, crop_size))
    return projected_landmarks(out.vertices, cam, crop_size)


def _hull_points(landmarks: np.ndarray, affine: np.ndarray, crop_size: int, found: Tensor,
                 fallback: Tensor) -> Tensor:
    """Points whose hull bounds the face in each crop: detected landmarks where a face was found,
    ``fallback`` (B, L', 2) — the mesh's hull points, repeated to the same count — elsewhere.
    -> (B, 478, 2) normalised."""
    detected = torch.from_numpy(np.nan_to_num(landmarks_to_crop(landmarks, affine, crop_size)[..., :2]))
    proj = fallback.cpu()
    proj = proj[:, torch.arange(detected.shape[1]) % proj.shape[1]]
    return torch.where(found.cpu()[:, None, None], detected.to(proj.dtype), proj)
