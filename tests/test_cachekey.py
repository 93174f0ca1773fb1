"""Cache keys: each helper against hashlib written out, so the folder names of existing caches
(demo checkpoint, experiments, evaluation crops and parameters) do not change."""

import hashlib
import os

import numpy as np
import pytest
import torch

from tempsmirk.cachekey import cache_key, file_digest, file_stamps, fingerprint


def test_fingerprint_is_sha256_of_the_parts_bytes():
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3).t()  # not contiguous
    a = np.array([1, 2, 3], np.int64)
    ref = hashlib.sha256(b"src" + t.contiguous().numpy().tobytes() + a.tobytes() + b"\x00\x01").hexdigest()
    assert fingerprint("src", t, a, b"\x00\x01") == ref
    assert fingerprint(t) != fingerprint(t.double())  # dtype counts
    with pytest.raises(TypeError, match="got int"):
        fingerprint(3)


def test_cache_key_joins_parts_by_newlines():
    ref = hashlib.sha256("v2\nstart\nabc".encode()).hexdigest()
    assert cache_key("v2", "start", "abc") == ref[:16]
    assert cache_key("v2", "start", "abc", length=12) == ref[:12]
    assert cache_key("a", "bc") != cache_key("ab", "c")


def test_file_digest_and_stamps(tmp_path):
    f, g = tmp_path / "f.bin", tmp_path / "g.csv"
    f.write_bytes(b"abc" * 5000)
    g.write_text("x")
    assert file_digest(f, chunk=7) == hashlib.sha256(b"abc" * 5000).hexdigest()
    os.utime(f, ns=(10**18, 10**18))
    lines = [f"{f.resolve()}|15000|{10**18}\n", f"{g.resolve()}|1|{g.stat().st_mtime_ns}\n",
             f"{(tmp_path / 'missing').resolve()}|-1|-1\n"]
    assert file_stamps([f, g, tmp_path / "missing"]) == hashlib.sha256("".join(lines).encode()).hexdigest()
    before = file_stamps([f])
    os.utime(f, ns=(2 * 10**18, 2 * 10**18))  # touched, same contents: a new stamp, the same digest
    assert file_stamps([f]) != before
