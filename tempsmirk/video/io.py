"""Video and image I/O with PyAV and OpenCV (guide section 3: PyAV decodes and encodes H.264).

Frames are RGB ``uint8`` arrays of shape (H, W, 3) everywhere in :mod:`tempsmirk.video` and
:mod:`data_prep` (OpenCV's BGR order stops at this module's boundary). A whole video is read in
order with :func:`iter_frames`; a few frames anywhere in it with :func:`read_video_frames`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import av
import cv2
import numpy as np

from tempsmirk.atomic import atomic_path, atomic_write_bytes

__all__ = [
    "VIDEO_SUFFIXES",
    "IMAGE_SUFFIXES",
    "VideoDecodeError",
    "ImageReadError",
    "VideoInfo",
    "probe_video",
    "iter_frames",
    "read_frames",
    "read_video_frames",
    "write_video",
    "read_image",
    "write_image",
    "is_video",
    "is_image",
]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class VideoDecodeError(RuntimeError):
    """A video could not be opened or stopped decoding part-way."""


class ImageReadError(RuntimeError):
    """An image file could not be read."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video before decoding.

    ``header_frames`` is the container's frame count (0 where the container does
    not store one); the decoded count is the truth and can differ for a damaged file.
    """

    path: Path
    fps: float
    width: int
    height: int
    header_frames: int


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoDecodeError(
            f"could not open video {path}: {exc}; expected a readable video file "
            "(check that the file is complete, e.g. not a partial download)"
        ) from exc
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"{path} holds no video stream; expected a video file")
    return container


def _stream_fps(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else float("nan")


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read a video's header (fps, size, header frame count) without decoding frames."""
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        return VideoInfo(path, _stream_fps(stream), stream.codec_context.width,
                         stream.codec_context.height, int(stream.frames or 0))
    finally:
        container.close()


def iter_frames(path: str | os.PathLike, strict: bool = True) -> Iterator[np.ndarray]:
    """Yield every decodable frame of a video in order.

    Args:
        strict: raise if fewer frames decode than the container header lists. A file
            cut short after its index (an mp4 written with ``+faststart``) otherwise
            decodes silently to a prefix of the video. ``False`` returns the decodable
            prefix, also when the decoder fails on a cut-off last packet.
    Yields:
        frame: (H, W, 3) uint8 RGB
    Raises:
        VideoDecodeError: the file cannot be opened, the decoder fails part-way, or
        (``strict``) the stream ends early; the message says how many frames decoded.
    """
    path = Path(path)
    container = _open(path)
    n = 0
    try:
        stream = container.streams.video[0]
        header = int(stream.frames or 0)
        stream.thread_type = "AUTO"
        error: av.error.FFmpegError | None = None
        # Packet by packet, so a failure on a cut-off packet can still flush the
        # frames the (threaded) decoder holds when the caller accepts a prefix.
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                error = exc
                break
            for frame in frames:
                yield frame.to_ndarray(format="rgb24")
                n += 1
        if error is not None and not strict:
            try:
                for frame in stream.codec_context.decode(None):
                    yield frame.to_ndarray(format="rgb24")
                    n += 1
            except av.error.FFmpegError:
                pass
        if error is not None and (strict or n == 0):
            raise VideoDecodeError(
                f"decoding {path} failed after {n} frames: {error}; the file is probably "
                "truncated or corrupt (re-encode or re-download it)"
            ) from error
        if strict and header and n < header:
            raise VideoDecodeError(
                f"{path} decoded to {n} frames but its header lists {header}; the file is "
                "probably truncated (re-download it, or accept the decodable prefix explicitly)"
            )
    finally:
        container.close()


def read_frames(path: str | os.PathLike) -> np.ndarray:
    """All frames of a (short) video: (T, H, W, 3) uint8 RGB."""
    frames = list(iter_frames(path))
    if not frames:
        raise VideoDecodeError(f"{path} decoded to zero frames; expected at least one")
    return np.stack(frames)


def read_video_frames(path: str | os.PathLike, start: int, count: int) -> np.ndarray:
    """Frames ``start .. start + count - 1`` of a video: (count, H, W, 3) uint8 RGB.

    Seeks to the key frame before ``start`` (frame indices from presentation time stamps at the
    stream's frame rate), and falls back to decoding from the beginning when time stamps do not
    give consecutive indices. Decodes on one thread (a DataLoader worker has a core of its own).

    Raises:
        VideoDecodeError: the file cannot be decoded, or those frames are not in it (the
        message names the file and the frames).
    """

    def decode(container, stream, seek: bool) -> list[np.ndarray]:
        rate, tb = stream.average_rate or stream.guessed_rate, stream.time_base
        t0 = stream.start_time or 0
        if seek and start > 0:
            container.seek(t0 + int(start / (rate * tb)), stream=stream, backward=True, any_frame=False)
        out: list[np.ndarray] = []
        expected = start
        for i, frame in enumerate(container.decode(stream)):
            if seek:
                if frame.pts is None:
                    return []
                idx = int(round(float((frame.pts - t0) * tb * rate)))
            else:
                idx = i
            if idx < expected:
                continue
            if idx > expected:
                return []  # a gap: the time stamps do not count frames
            out.append(frame.to_ndarray(format="rgb24"))
            expected += 1
            if expected == start + count:
                break
        return out

    try:
        for seek in (True, False):
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                stream.thread_count = 1  # a DataLoader worker decodes on its own core
                frames = decode(container, stream, seek=seek and bool(stream.average_rate or stream.guessed_rate))
            if len(frames) == count:
                break
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise VideoDecodeError(f"{path}: could not decode the video ({exc})") from None
    if len(frames) != count:
        raise VideoDecodeError(f"{path}: frames {start}..{start + count - 1} could not be decoded (the "
                               f"manifest promised them; the file may be truncated)")
    return np.stack(frames)


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float,
                crf: int = 18, preset: str = "medium") -> int:
    """Encode frames as H.264 (yuv420p) into an mp4, atomically; returns the frame count.

    Args:
        frames: iterable of (H, W, 3) uint8 RGB, all the same size; H and W even
            (yuv420p needs even sizes).
        fps: frame rate; stored as an exact fraction where it is an NTSC rate (23.976...).
        crf: x264 quality (18 is visually lossless for our purposes).
        preset: x264 speed preset; ``"veryfast"`` encodes about 2.6x faster than ``"medium"``
            at the same crf, with files about as large (measured on 1280 x 360 overlays).
    """
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    n = 0
    with atomic_path(path) as tmp:
        # faststart puts the index first, so players can stream the file.
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = None
            for frame in frames:
                if stream is None:
                    h, w = frame.shape[:2]
                    if h % 2 or w % 2:
                        raise ValueError(f"H.264 needs even frame sizes; got {w}x{h}")
                    stream = out.add_stream("libx264", rate=rate)
                    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                    stream.options = {"crf": str(crf), "preset": preset}
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                out.mux(stream.encode(vf))
                n += 1
            if stream is None:
                raise ValueError(f"no frames given for {path}; expected at least one")
            out.mux(stream.encode(None))
    return n


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB (grey and alpha are converted)."""
    path = Path(path)
    data = np.fromfile(path, dtype=np.uint8) if path.is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if image is None:
        raise ImageReadError(
            f"could not read image {path}: "
            f"{'file does not exist' if data is None else 'not a decodable image'}; "
            "expected a JPEG/PNG/BMP/WebP/TIFF file"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_image(path: str | os.PathLike, image: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write an (H, W, 3) uint8 RGB image atomically; the format follows the suffix."""
    path = Path(path)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if is_jpeg(path) else []
    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"OpenCV could not encode an image as {path.suffix!r}")
    atomic_write_bytes(path, buf.tobytes())


def is_jpeg(path: Path) -> bool:
    return path.suffix.lower() in (".jpg", ".jpeg")
