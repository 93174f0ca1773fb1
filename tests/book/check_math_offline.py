"""Check that a built book typesets its formulas offline.

On every HTML page of the build (default ``_build/html``):

- no page loads MathJax over the network (a script or link naming MathJax with a scheme or
  ``//``, or such a URL inside a script);
- every page with formulas loads a MathJax from the build, and that file (and the combined
  configuration a ``MathJax.js?config=NAME`` asks for) is there;
- at least one page has formulas (otherwise nothing was checked).

With Chromium (``chromium`` on the PATH, or ``--chromium PATH``) it also opens every page
with formulas headless, with every host name unresolvable, and checks that each of Sphinx's
math elements holds MathJax output and that no formula failed (a TeX error). Without
Chromium it says so; ``--require-browser`` makes that a failure.

    python tests/book/check_math_offline.py [_build/html] [--require-browser] [--screenshot DIR]

Exit status 0 when every check passes, 1 with a list of what failed. Run by ``make
build-book`` after the build; ``tests/book/test_math_offline.py`` runs it on a small book.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

# A MathJax URL that goes over the network: with a scheme or protocol-relative.
NETWORK_MATHJAX = re.compile(r"(?:[a-z][a-z0-9+.-]*:)?//[^\s\"'<>]*mathjax", re.IGNORECASE)
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
             "track", "wbr"}
# What MathJax leaves in a typeset math element: version 2 (HTML-CSS, SVG, CommonHTML) or 3.
TYPESET_CLASSES = {"MathJax", "MathJax_Display", "MathJax_SVG", "MathJax_SVG_Display", "MathJax_CHTML"}
TYPESET_TAGS = {"mjx-container"}
# A formula MathJax could not typeset: MathJax 2 shows its TeX source (noErrors extension) and
# marks it <merror> in the accessible MathML; MathJax 3 writes <mjx-merror>.
ERROR_CLASSES = {"merror", "noError", "MathJax_Error"}
ERROR_TAGS = {"merror", "mjx-merror"}
RAW_TEX = re.compile(r"\\\(|\\\[|\$\$|\\begin\{")


def _classes(attrs: list[tuple[str, str | None]]) -> set[str]:
    return set((dict(attrs).get("class") or "").split())


def _is_math(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    """Sphinx's math elements: ``<span class="math ...">`` (inline) and ``<div class="math ...">``."""
    return tag in ("span", "div") and "math" in _classes(attrs)


@dataclass
class PageScan:
    """What one HTML page holds: its formulas and how it loads MathJax."""

    formulas: int = 0
    mathjax_sources: list[str] = field(default_factory=list)   # script/link URLs naming MathJax
    network: list[str] = field(default_factory=list)           # MathJax URLs that go over the network


class _SourceParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scan = PageScan()
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if _is_math(tag, attrs):
            self.scan.formulas += 1
        self._in_script = tag == "script"
        a = dict(attrs)
        url = a.get("src") if tag == "script" else a.get("href") if tag == "link" else None
        if url and "mathjax" in url.lower():
            self.scan.mathjax_sources.append(url)
            if NETWORK_MATHJAX.match(url):
                self.scan.network.append(url)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scan.network += NETWORK_MATHJAX.findall(data)


def scan_page(page: Path) -> PageScan:
    parser = _SourceParser()
    parser.feed(page.read_text(encoding="utf-8", errors="replace"))
    return parser.scan


def _local_file(page: Path, url: str) -> Path:
    return (page.parent / unquote(urlsplit(url).path)).resolve()


def static_problems(html_dir: Path) -> tuple[list[str], list[Path]]:
    """Problems found in the built pages' sources, and the pages that have formulas."""
    html_dir = html_dir.resolve()
    pages = sorted(html_dir.rglob("*.html"))
    if not pages:
        return [f"no HTML pages under {html_dir}: build the book first (make build-book)"], []
    problems: list[str] = []
    with_math: list[Path] = []
    for page in pages:
        scan = scan_page(page)
        name = page.relative_to(html_dir)
        problems += [f"{name}: loads MathJax over the network: {url}" for url in scan.network]
        if not scan.formulas:
            continue
        with_math.append(page)
        local = [u for u in scan.mathjax_sources if not NETWORK_MATHJAX.match(u)]
        if not local:
            problems.append(f"{name}: has {scan.formulas} formulas but loads no MathJax from the build")
        for url in local:
            path = _local_file(page, url)
            if html_dir not in path.parents:
                problems.append(f"{name}: MathJax {url} points outside the build ({path})")
            elif not path.is_file():
                problems.append(f"{name}: MathJax {url} is missing from the build (expected {path})")
            elif (config := re.search(r"[?&]config=([^&,]+)", url)) and path.name == "MathJax.js":
                wanted = path.parent / "config" / f"{config[1]}.js"
                if not wanted.is_file():
                    problems.append(f"{name}: MathJax configuration {config[1]} is missing from the build "
                                    f"(expected {wanted})")
    if not with_math:
        problems.append(f"none of the {len(pages)} pages under {html_dir} has a formula: nothing was checked")
    return problems, with_math


@dataclass
class Typeset:
    """Sphinx math elements of a rendered page: how many, how many MathJax typeset, TeX errors."""

    formulas: int = 0
    typeset: int = 0
    errors: int = 0                                 # formulas shown as a TeX error
    raw: list[str] = field(default_factory=list)   # text of formulas left as LaTeX


class _DomParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.result = Typeset()
        self._stack: list[str] = []
        self._math_depth: int | None = None   # stack depth of the open math element
        self._typeset = False
        self._error = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = _classes(attrs)
        if self._math_depth is None and _is_math(tag, attrs):
            self._math_depth, self._typeset, self._error, self._text = len(self._stack), False, False, []
            self.result.formulas += 1
        elif self._math_depth is not None:
            self._typeset |= tag in TYPESET_TAGS or bool(classes & TYPESET_CLASSES)
            self._error |= tag in ERROR_TAGS or bool(classes & ERROR_CLASSES)
        if tag not in VOID_TAGS:
            self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_TAGS or tag not in self._stack:
            return
        while self._stack and self._stack.pop() != tag:
            pass
        if self._math_depth is not None and len(self._stack) <= self._math_depth:
            text = "".join(self._text).strip()
            if self._typeset and not RAW_TEX.search(text):
                self.result.typeset += 1
            else:
                self.result.raw.append(text[:80])
            self.result.errors += self._error
            self._math_depth = None

    def handle_data(self, data: str) -> None:
        # MathJax keeps each formula's source in a <script type="math/tex">: not text a reader sees.
        if self._math_depth is not None and (not self._stack or self._stack[-1] not in ("script", "style")):
            self._text.append(data)


def find_chromium(explicit: str | None = None) -> str | None:
    if explicit:
        return explicit
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _chromium(chromium: str, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess:
    """Run headless Chromium offline: every host name fails to resolve, no background traffic."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}",
               "--virtual-time-budget=20000", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def render(page: Path, chromium: str) -> Typeset:
    """Open ``page`` in headless Chromium, let MathJax run, and count what it typeset."""
    done = _chromium(chromium, "--dump-dom", page.resolve().as_uri())
    if done.returncode != 0 or "<html" not in done.stdout.lower():
        raise RuntimeError(f"chromium could not open {page} (exit {done.returncode}): {done.stderr[-500:]}")
    parser = _DomParser()
    parser.feed(done.stdout)
    return parser.result


def screenshot(page: Path, chromium: str, out: Path) -> None:
    _chromium(chromium, f"--screenshot={out}", "--window-size=1400,2400", page.resolve().as_uri())


def rendered_problems(pages: list[Path], chromium: str, html_dir: Path,
                      shots: Path | None = None) -> tuple[list[str], int]:
    """Problems of the pages as Chromium renders them, and how many formulas were typeset."""
    problems: list[str] = []
    typeset = 0
    for page in pages:
        name = page.resolve().relative_to(html_dir.resolve())
        result = render(page, chromium)
        typeset += result.typeset
        if result.formulas == 0:
            problems.append(f"{name}: no math element in the rendered page")
        if result.typeset < result.formulas:
            problems.append(f"{name}: {result.formulas - result.typeset} of {result.formulas} formulas not "
                            f"typeset in Chromium, e.g. {result.raw[:2]}")
        if result.errors:
            problems.append(f"{name}: {result.errors} of {result.formulas} formulas show a TeX error")
        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            screenshot(page, chromium, shots / (str(name).replace(os.sep, "_") + ".png"))
    return problems, typeset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", type=Path, default=Path("_build/html"))
    parser.add_argument("--chromium", help="Chromium binary (default: chromium on the PATH)")
    parser.add_argument("--require-browser", action="store_true",
                        help="fail when Chromium is absent instead of checking the sources only")
    parser.add_argument("--screenshot", type=Path, metavar="DIR", help="also write a PNG of each page with formulas")
    args = parser.parse_args(argv)

    problems, with_math = static_problems(args.html_dir)
    formulas = sum(scan_page(p).formulas for p in with_math)
    print(f"math offline: {len(with_math)} pages with {formulas} formulas under {args.html_dir}")
    chromium = find_chromium(args.chromium)
    if chromium is None:
        message = "Chromium not found (Debian package chromium): formulas not rendered in a browser"
        if args.require_browser:
            problems.append(message)
        else:
            print(f"math offline: {message}; checked the pages' sources only")
    elif with_math:
        found, typeset = rendered_problems(with_math, chromium, args.html_dir, args.screenshot)
        problems += found
        print(f"math offline: Chromium typeset {typeset} of {formulas} formulas with the network cut off")
    for p in problems:
        print(f"math offline: FAIL {p}", file=sys.stderr)
    if not problems:
        print("math offline: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
