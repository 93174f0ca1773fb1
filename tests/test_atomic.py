"""Atomic writes: a failure mid-write leaves the previous file intact and no temporary behind."""

import pytest

from tempsmirk.atomic import atomic_path, atomic_write_bytes


def test_failure_keeps_previous_version(tmp_path):
    target = tmp_path / "ckpt.bin"
    atomic_write_bytes(target, b"good")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half-writ")
            raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.bin"]


def test_success_replaces_and_creates_folders(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert target.stat().st_mode & 0o044
