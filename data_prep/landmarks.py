"""MediaPipe FaceMesh landmarks (478 points) for videos, video folders and image folders.

Command line::

    python -m data_prep.landmarks INPUT --out DIR [--overwrite]

INPUT is a video, a folder of videos, or a folder of images (a folder holding both
gets one entry per video plus one entry for its images). Each video ``v.mp4`` gives
``DIR/v/landmarks.npz``; a folder's images give one ``DIR/<folder name>/landmarks.npz``
with a row per image and the file names.

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
mode; both with ``refine_landmarks=True`` and ``max_num_faces=1`` (guide section 3).
Over a folder, entries whose ``landmarks.npz`` exists are skipped (resume); a file
that cannot be decoded, or decodes to fewer frames than its header lists (a
truncated download), is reported and skipped (``--accept-short`` keeps such a
prefix instead); the rest continue, a summary is printed, and the exit code is 1
if anything failed (2 for unusable arguments).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Literal, Sequence

import numpy as np
from tqdm.auto import tqdm

from tempsmirk.atomic import atomic_write_bytes
from tempsmirk.cli_help import ExamplesHelpFormatter

from data_prep.video import (
    ImageReadError,
    VideoDecodeError,
    is_image,
    is_video,
    iter_frames,
    probe_video,
    read_image,
)

__all__ = [
    "NUM_LANDMARKS",
    "FaceLandmarks",
    "FaceMesh",
    "MEDIAPIPE_NOISE",
    "native_stderr_filtered",
    "detect_frames",
    "extract_video",
    "extract_images",
    "save_landmarks",
    "load_landmarks",
    "Job",
    "Outcome",
    "RunSummary",
    "plan_jobs",
    "run_jobs",
    "main",
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
            error (see :func:`data_prep.video.iter_frames`); False keeps the prefix.
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


# ----------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class Job:
    """One output to produce: a video, or the images of one folder."""

    kind: Literal["video", "images"]
    sources: tuple[Path, ...]
    out: Path  # the landmarks.npz to write

    @property
    def label(self) -> str:
        return str(self.sources[0]) if self.kind == "video" else f"{self.sources[0].parent}/ (images)"


@dataclass(frozen=True)
class Outcome:
    """What happened to one job: ``status`` is done, skipped (already there) or failed."""

    job: Job
    status: Literal["done", "skipped", "failed"]
    message: str = ""
    frames: int = 0
    found: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class RunSummary:
    outcomes: tuple[Outcome, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "failed")

    @property
    def ok(self) -> bool:
        return not self.failed

    def report(self) -> str:
        """A human-readable summary: counts, then one line per failure."""
        by = {s: [o for o in self.outcomes if o.status == s] for s in ("done", "skipped", "failed")}
        frames = sum(o.frames for o in by["done"])
        found = sum(o.found for o in by["done"])
        lines = [
            f"landmarks: {len(by['done'])} done, {len(by['skipped'])} skipped (already done), "
            f"{len(by['failed'])} failed",
        ]
        if frames:
            lines.append(f"  {frames} frames processed, face found in {found} ({100.0 * found / frames:.1f}%)")
        for o in by["done"]:
            if o.message:  # warnings on otherwise successful jobs
                lines.append(f"  warning: {o.job.label}: {o.message}")
        for o in by["failed"]:
            lines.append(f"  FAILED {o.job.label}: {o.message}")
        return "\n".join(lines)


def plan_jobs(input_path: str | os.PathLike, out_dir: str | os.PathLike) -> tuple[Job, ...]:
    """Turn INPUT (a video, a folder of videos and/or images) into jobs.

    Raises:
        FileNotFoundError / ValueError: INPUT missing, holding nothing usable, or two
        videos that would write the same ``DIR/<stem>`` (e.g. ``a.mp4`` and ``a.avi``).
    """
    src, out_dir = Path(input_path), Path(out_dir)
    if not src.exists():
        raise FileNotFoundError(f"input {src} does not exist; expected a video, or a folder "
                                "of videos or images")
    if src.is_file():
        if not is_video(src):
            raise ValueError(f"input {src} is a file but not a video (suffix {src.suffix!r}); "
                             "pass a video, or the folder that holds the images")
        return (Job("video", (src,), out_dir / src.stem / LANDMARKS_FILE),)
    files = sorted(p for p in src.iterdir() if p.is_file() and not p.name.startswith("."))
    videos = [p for p in files if is_video(p)]
    images = [p for p in files if is_image(p)]
    if not videos and not images:
        raise ValueError(f"folder {src} holds no videos ({', '.join(('.mp4', '.avi', '.mov'))}, ...) "
                         "and no images (.jpg, .png, ...); nothing to do")
    stems: dict[str, Path] = {}
    jobs = []
    for v in videos:
        if v.stem in stems:
            raise ValueError(f"{stems[v.stem].name} and {v.name} would both write "
                             f"{out_dir / v.stem}; rename one of them")
        stems[v.stem] = v
        jobs.append(Job("video", (v,), out_dir / v.stem / LANDMARKS_FILE))
    if images:
        name = src.resolve().name
        if name in stems:
            raise ValueError(f"the images of {src} and video {stems[name].name} would both write "
                             f"{out_dir / name}; rename the video")
        jobs.append(Job("images", tuple(images), out_dir / name / LANDMARKS_FILE))
    return tuple(jobs)


def _run_one(job: Job, show_progress: bool, strict: bool) -> Outcome:
    t0 = time.perf_counter()
    if job.kind == "video":
        try:
            lm = extract_video(job.sources[0], show_progress, strict)
        except VideoDecodeError as exc:
            return Outcome(job, "failed", str(exc))
        header = probe_video(job.sources[0]).header_frames
        message = (f"decoded {lm.num_frames} frames but the header says {header}"
                   if header and header != lm.num_frames else "")
        save_landmarks(job.out, lm)
        return Outcome(job, "done", message, lm.num_frames, int(lm.found.sum()),
                       time.perf_counter() - t0)
    lm, errors = extract_images(job.sources, show_progress)
    save_landmarks(job.out, lm)
    if errors:
        # Rows are kept (found=False) so the index stays aligned, but the run failed.
        return Outcome(job, "failed", f"{len(errors)} unreadable image(s): " + "; ".join(errors),
                       lm.num_frames, int(lm.found.sum()), time.perf_counter() - t0)
    return Outcome(job, "done", "", lm.num_frames, int(lm.found.sum()), time.perf_counter() - t0)


def run_jobs(jobs: Sequence[Job], overwrite: bool = False, show_progress: bool = True,
             strict: bool = True) -> RunSummary:
    """Run jobs in order; existing outputs are skipped unless ``overwrite``; never raises
    for a bad input file (it becomes a failed :class:`Outcome`). ``strict``: see
    :func:`extract_video`."""
    outcomes = []
    for job in tqdm(jobs, desc="landmarks", unit="file", disable=not show_progress or len(jobs) < 2):
        if job.out.exists() and not overwrite:
            outcomes.append(Outcome(job, "skipped"))
            continue
        outcomes.append(_run_one(job, show_progress, strict))
    return RunSummary(tuple(outcomes))


#: The end of ``--help``.
EXAMPLES = """\
examples:
  # one video: prepared/face/landmarks.npz
  python -m data_prep.landmarks face.mp4 --out prepared/
  # a folder of videos and images, keeping what decodes of videos that end early
  python -m data_prep.landmarks videos/ --out prepared/ --accept-short"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of :func:`main`."""
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.landmarks",
        description="MediaPipe FaceMesh landmarks (478 points) for a video, a folder of videos, "
                    "or a folder of images. Writes DIR/<stem>/landmarks.npz per video.",
        epilog=EXAMPLES, formatter_class=ExamplesHelpFormatter)
    parser.add_argument("input", type=Path, help="a video, or a folder of videos and/or images")
    parser.add_argument("--out", type=Path, required=True, help="output folder DIR")
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--accept-short", action="store_true",
                        help="keep the decodable frames of a video that ends before its header "
                             "says (reported as a warning) instead of failing it")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        jobs = plan_jobs(args.input, args.out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = run_jobs(jobs, overwrite=args.overwrite, show_progress=not args.quiet,
                       strict=not args.accept_short)
    print(summary.report())
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
