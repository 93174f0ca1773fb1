"""The library stands alone: nothing in ``tempsmirk`` imports ``data_prep`` (the command lines import
the library, never the other way round; README, "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(source: str, package: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line, module) of every import statement in ``source``, a module of ``package``; relative
    imports resolved against it, imports inside functions included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            found.append((node.lineno, ".".join(base + ([node.module] if node.module else []))))
    return found


def test_tempsmirk_never_imports_data_prep():
    files = sorted((ROOT / "tempsmirk").rglob("*.py"))
    assert len(files) > 50
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}" for p in files
           for line, mod in _imports(p.read_text(encoding="utf-8"), p.relative_to(ROOT).parts[:-1])
           if mod.split(".")[0] == "data_prep"]
    assert not bad, "tempsmirk must not import data_prep (move what it needs into tempsmirk):\n" + "\n".join(bad)


def test_the_scan_finds_every_kind_of_import():
    source = "import numpy\nfrom data_prep.mead import main\ndef f():\n    import data_prep.crops as c\n" \
             "from . import gaps\nfrom ..data import tables\n"
    assert sorted(_imports(source, ("tempsmirk", "video"))) == [
        (1, "numpy"), (2, "data_prep.mead"), (4, "data_prep.crops"), (5, "tempsmirk.video"), (6, "tempsmirk.data")]
