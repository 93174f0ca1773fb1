"""The one place that resolves asset and data roots.

Nothing here points inside the source tree for writing: generated files go to
:func:`cache_dir`. The shared data folder (``../shared`` beside a checkout, or
``$TEMPSMIRK_SHARED``) holds real data that is read, never copied.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["repo_root", "shared_root", "shared_data", "cache_dir"]


def repo_root() -> Path:
    """Root of a source checkout (the folder holding ``tempsmirk/``)."""
    return Path(__file__).resolve().parent.parent


def shared_root() -> Path | None:
    """The shared folder, or ``None`` where it is absent (e.g. a user's fresh machine).

    ``$TEMPSMIRK_SHARED`` wins; otherwise ``shared`` next to the checkout.
    """
    env = os.environ.get("TEMPSMIRK_SHARED")
    candidates = [Path(env)] if env else []
    candidates.append(repo_root().parent / "shared")
    for c in candidates:
        if (c / "data").is_dir():
            return c.resolve()
    return None


def shared_data(*parts: str) -> Path:
    """Path of a file under ``shared/data``; raises ``FileNotFoundError`` saying what to do."""
    root = shared_root()
    if root is None:
        raise FileNotFoundError(
            "the shared data folder was not found: expected '../shared/data' beside the "
            "checkout or a folder named by $TEMPSMIRK_SHARED"
        )
    path = root.joinpath("data", *parts)
    if not path.exists():
        raise FileNotFoundError(f"expected shared data file {path}, which does not exist")
    return path


def cache_dir(*parts: str) -> Path:
    """A writable cache folder (``$TEMPSMIRK_CACHE`` or ``~/.cache/tempsmirk``), created on demand."""
    base = Path(os.environ.get("TEMPSMIRK_CACHE", Path.home() / ".cache" / "tempsmirk"))
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
