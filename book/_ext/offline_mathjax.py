"""Sphinx extension: the book's formulas are typeset by a MathJax copied into the build, not a CDN.

Without it the pages load MathJax 3 from a CDN, so offline every formula shows as raw LaTeX.
The MathJax here is the same 3.2.2 (``tex-mml-chtml.js``, MathJax's TeX fonts), from the
``sphinx-mathjax-offline`` package: its ``static/mathjax`` folder is byte for byte the ``es5``
folder of npm's ``mathjax@3.2.2``. When the HTML builder starts, this points ``mathjax_path``
at ``_static/mathjax/tex-mml-chtml.js`` (MyST's MathJax 3 settings apply unchanged); when the
build finishes, it copies that file and the components it loads on demand (TeX extensions,
fonts, menu, accessibility) into ``_static/mathjax`` of the build. Nothing is fetched, and
nothing is written outside the build folder. ``tests/book/check_math_offline.py`` checks the
result.

Only the package's files are used, not its own Sphinx extension. Registered in
``_config.yml`` under ``sphinx: local_extensions``.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

PACKAGE = "sphinx-mathjax-offline"   # the distribution, and the folder it installs
TARGET = "mathjax"                   # folder under the build's _static
ENTRY = "tex-mml-chtml.js"           # what Sphinx loads from the CDN by default
# Plotly's "notebook" renderer puts a MathJax 2 <script> from a CDN before every figure (its
# to_mimebundle hard-codes include_mathjax="cdn"). The figures hold no LaTeX and the page already
# has the bundled MathJax 3, so the tag is dropped from the built pages.
PLOTLY_CDN_MATHJAX = re.compile(r'<script src="https?://[^"]*/mathjax/2\.[^"]*/MathJax\.js[^"]*"></script>')


def mathjax_source() -> Path:
    """The folder of MathJax's files in the installed ``sphinx-mathjax-offline`` package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError(f"the book's MathJax comes from the {PACKAGE} package, which is not installed; "
                             "install the requirements (pip install -r requirements.txt)")
    static = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"
    for needed in (static / ENTRY, static / "output" / "chtml" / "fonts" / "woff-v2"):
        if not needed.exists():
            raise ExtensionError(f"expected MathJax's {needed.name} at {needed}, found nothing; reinstall {PACKAGE}")
    return static


def _use_bundled_mathjax(app: Sphinx) -> None:
    if app.builder.format == "html":
        mathjax_source()  # fail at the start of the build, not after every notebook has run
        app.config.mathjax_path = f"{TARGET}/{ENTRY}"


def _copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source = mathjax_source()
    target = Path(app.outdir) / "_static" / TARGET
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / ENTRY, target / ENTRY)
    # The other top-level files are alternative combined bundles (SVG output, ...): not needed.
    for sub in sorted(p for p in source.iterdir() if p.is_dir()):
        shutil.copytree(sub, target / sub.name, dirs_exist_ok=True)
    drop_plotly_cdn_mathjax(Path(app.outdir))


def drop_plotly_cdn_mathjax(html_dir: Path) -> int:
    """Remove Plotly's CDN MathJax tags from every page under ``html_dir``; returns how many."""
    removed = 0
    for page in html_dir.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        cleaned, n = PLOTLY_CDN_MATHJAX.subn("", html)
        if n:
            page.write_text(cleaned, encoding="utf-8")
            removed += n
    return removed


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", _use_bundled_mathjax)
    app.connect("build-finished", _copy_mathjax)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
