"""What the reader of the built book sees: no chapter code line wider than the page.

The book's theme shows about 88 characters of a code cell (or of a fenced code block in a
markdown cell) before the line scrolls sideways and its end is cut off; guide §4 sets that
limit. Checked on the jupytext sources (``book/NN_*.py``), which hold the cells verbatim.
"""

from __future__ import annotations

from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[2] / "book"
LIMIT = 88
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.py"))


def wide_lines(source: str, limit: int = LIMIT) -> list[tuple[int, str]]:
    """(line number, text) of every line the book shows as code and that is wider than
    ``limit``: the lines of code cells, and the lines inside ``` fences of markdown cells
    (without their ``# `` prefix). The jupytext header and markdown prose are not code."""
    out: list[tuple[int, str]] = []
    kind, fenced, header = None, False, False
    for number, line in enumerate(source.splitlines(), 1):
        if number == 1 and line.strip() == "# ---":
            header = True
            continue
        if header:
            header = line.strip() != "# ---"
            continue
        if line.startswith("# %%"):
            kind, fenced = ("markdown" if "[markdown]" in line else "code"), False
            continue
        if kind == "code":
            text = line
        elif kind == "markdown":
            prose = line[2:] if line.startswith("# ") else line.lstrip("#")
            if prose.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if not fenced:
                continue
            text = prose
        else:
            continue
        if len(text) > limit:
            out.append((number, text))
    return out


def test_the_checker_sees_code_and_fences_only():
    src = "\n".join([
        "# ---", "# " + "h" * 100, "# ---", "",
        "# %% [markdown]", "# " + "prose " * 30, "# ```", "# " + "c" * 89, "# ```",
        "# %%", "x = 1  # " + "y" * 80, "z = 2",
    ])
    assert [n for n, _ in wide_lines(src)] == [8, 11]
    assert wide_lines(src)[0][1] == "c" * 89


def test_chapters_exist():
    assert len(CHAPTERS) >= 7, f"expected the book's chapters under {BOOK}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_no_code_line_scrolls_sideways(chapter):
    wide = wide_lines(chapter.read_text(encoding="utf-8"))
    listing = "\n".join(f"  {chapter.name}:{n} ({len(t)} chars) {t.strip()[:60]}…" for n, t in wide)
    assert not wide, (f"{len(wide)} code line(s) wider than {LIMIT} characters scroll sideways in "
                      f"the book; break them by layout (line breaks, intermediate names):\n{listing}")
