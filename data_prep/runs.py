"""What happened to each input of a run, and the summary the commands print.

Every command here goes over many inputs and never stops at a bad one: each input ends as an
:class:`Outcome` (done, skipped because its output exists, or failed with the reason), and
:func:`summary` turns them into the lines printed at the end — the counts, the share of frames
with a face, then one line per failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, Literal, Optional, Sequence, TypeVar

__all__ = ["Outcome", "summary"]

Item = TypeVar("Item")


@dataclass(frozen=True)
class Outcome(Generic[Item]):
    """What happened to one input (``item``: a file's path, a job, a clip): ``status`` is done,
    skipped (its output exists) or failed (``message`` says why; on a done input it is a remark,
    e.g. that no frame has a face). ``frames`` processed and ``found`` with a face, ``seconds``
    taken."""

    item: Item
    status: Literal["done", "skipped", "failed"]
    message: str = ""
    frames: int = 0
    found: int = 0
    seconds: float = 0.0


def summary(what: str, outcomes: Sequence[Outcome[Item]], label: Callable[[Item], str] = str,
            processed: Optional[str] = "frames", remarks: bool = False) -> list[str]:
    """The lines a run prints: ``what: N done, M skipped (already done), K failed``, the
    ``processed`` frames (None: no such line) and how many had a face, the remarks on done inputs
    (with ``remarks``), then ``FAILED <label>: <message>`` per failure."""
    by = {s: [o for o in outcomes if o.status == s] for s in ("done", "skipped", "failed")}
    lines = [f"{what}: {len(by['done'])} done, {len(by['skipped'])} skipped (already done), "
             f"{len(by['failed'])} failed"]
    frames = sum(o.frames for o in by["done"])
    if frames and processed:
        found = sum(o.found for o in by["done"])
        lines.append(f"  {frames} {processed} processed, face found in {found} ({100.0 * found / frames:.1f}%)")
    if remarks:
        lines += [f"  warning: {label(o.item)}: {o.message}" for o in by["done"] if o.message]
    lines += [f"  FAILED {label(o.item)}: {o.message}" for o in by["failed"]]
    return lines
