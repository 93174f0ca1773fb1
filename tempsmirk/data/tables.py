"""CSV tables with a fixed header: the manifests and indexes that ``data_prep`` writes.

A table is a CSV file (UTF-8, ``\\n`` line ends) whose first row names its columns. It is written
atomically (:mod:`tempsmirk.atomic`), so a reader never sees half a table, and read back only under
exactly the header it was written with: a table from another tool or another version is refused
with the columns expected and found and the command that re-creates it. Used by the MEAD manifest
(:mod:`tempsmirk.data.mead`), the face corpora (:mod:`tempsmirk.data.face_corpus`) and the AffectNet
index (:mod:`tempsmirk.data.affectnet`).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar

from tempsmirk.atomic import atomic_write_bytes

__all__ = ["write_table", "read_table"]

Row = TypeVar("Row")


def write_table(path: str | os.PathLike, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write a header row ``columns`` and then ``rows`` (each ``len(columns)`` values, written with
    ``str``) as CSV, atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def read_table(path: str | os.PathLike, columns: Sequence[str], parse: Callable[[list[str]], Row],
               producer: str) -> tuple[Row, ...]:
    """Read a table written by :func:`write_table`: ``parse`` of each data row, in file order.

    Args:
        columns: the header the table must have, exactly.
        parse: one row's fields -> a value; raises ValueError for a row it cannot read (a wrong
            field count included).
        producer: what writes the table (e.g. ``"data_prep.mead"``), for the error messages.
    Raises:
        ValueError: another header, or a row ``parse`` refuses (with its line number; the header
        is line 1).
    """
    path = Path(path)
    columns = tuple(columns)
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = tuple(next(reader, ()))
        if header != columns:
            raise ValueError(f"{path}: expected columns {','.join(columns)}; found {','.join(header)}. "
                             f"Re-create it with {producer}")
        for fields in reader:
            try:
                rows.append(parse(fields))
            except ValueError as exc:
                raise ValueError(f"{path} line {reader.line_num}: {exc}; expected {len(columns)} fields "
                                 f"({','.join(columns)})") from None
    return tuple(rows)
