"""Video and image files: round trips, damaged and truncated files, and reading frames anywhere in a
video against decoding it in order."""

from __future__ import annotations

import numpy as np
import pytest

from tempsmirk.video.io import (
    ImageReadError,
    VideoDecodeError,
    iter_frames,
    probe_video,
    read_frames,
    read_image,
    read_video_frames,
    write_image,
    write_video,
)


def _ramp(t: int, h: int = 32, w: int = 48) -> np.ndarray:
    """(T, H, W, 3) frames whose brightness encodes the frame index."""
    return np.stack([np.full((h, w, 3), 20 + 20 * i, np.uint8) for i in range(t)])


def test_write_then_read_keeps_count_order_and_rate(tmp_path):
    frames = _ramp(9)
    path = tmp_path / "ramp.mp4"
    assert write_video(path, frames, fps=24000 / 1001) == 9
    back = read_frames(path)
    assert back.shape == frames.shape
    # H.264 is lossy, but a flat frame survives within a few grey levels, in order.
    assert np.abs(back.astype(int).mean(axis=(1, 2, 3)) - frames.mean(axis=(1, 2, 3))).max() < 3
    info = probe_video(path)
    assert info.width == 48 and info.height == 32
    assert info.fps == pytest.approx(23.976, abs=1e-3)
    assert info.header_frames == 9
    assert not list(tmp_path.glob(".*tmp")), "the temporary file must be renamed away"


def test_write_video_rejects_odd_sizes_without_leaving_files(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", _ramp(2, 31, 48), fps=25)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cut", ["half", "garbage", "empty"])
def test_damaged_video_raises_with_the_path(tmp_path, cut):
    good = tmp_path / "good.mp4"
    write_video(good, _ramp(6), fps=25)
    bad = tmp_path / "bad.mp4"
    data = good.read_bytes()
    bad.write_bytes({"half": data[: len(data) // 2],
                     "garbage": np.random.default_rng(0).bytes(4000),
                     "empty": b""}[cut])
    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        read_frames(bad)


def test_truncated_stream_fails_unless_the_prefix_is_accepted(tmp_path):
    # Our mp4s put the index first (faststart), so a cut file still opens and
    # decodes a prefix; strict mode must notice the shortfall.
    path = tmp_path / "cut.mp4"
    frames = np.random.default_rng(0).integers(0, 256, (30, 64, 64, 3), dtype=np.uint8)
    write_video(path, frames, fps=25)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(VideoDecodeError, match="header lists 30"):
        list(iter_frames(path))
    prefix = list(iter_frames(path, strict=False))
    assert 0 < len(prefix) < 30


def test_image_round_trip_and_unreadable_image(tmp_path):
    img = np.zeros((20, 30, 3), np.uint8)
    img[..., 0] = 200  # red in RGB must stay red (no BGR mix-up)
    write_image(tmp_path / "a.png", img)
    assert np.array_equal(read_image(tmp_path / "a.png"), img)
    (tmp_path / "b.jpg").write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="b.jpg"):
        read_image(tmp_path / "b.jpg")
    with pytest.raises(ImageReadError, match="does not exist"):
        read_image(tmp_path / "c.jpg")


@pytest.mark.needs_shared_data
def test_video_frames_are_read_exactly(real_video):
    wanted = [(0, 2), (5, 3), (71, 3), (72, 1), (150, 4)]  # key frames at 0, 72, 144
    got = {s: read_video_frames(real_video, s, n) for s, n in wanted}
    for t, frame in enumerate(iter_frames(real_video)):  # the reference: decoding every frame in order
        for s, n in wanted:
            if s <= t < s + n:
                np.testing.assert_array_equal(got[s][t - s], frame)
        if t >= 153:
            break
    with pytest.raises(VideoDecodeError, match="could not be decoded"):
        read_video_frames(real_video, 470, 5)  # the video has 472 frames
