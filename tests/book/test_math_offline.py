"""The book typesets its formulas offline: MathJax is copied into the build, never fetched.

A one-page book with the kinds of math the chapters use (inline, display, labelled,
``align``) is built with the project's ``_config.yml`` (so with ``book/_ext/offline_mathjax``),
then checked with ``check_math_offline.py``: its sources, and, where Chromium is installed,
the page as headless Chromium renders it with the network cut off. The checker itself is
shown to fail on the page the book used to build (MathJax from a CDN), on a missing MathJax
file, on formulas left as LaTeX and on a TeX error.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from check_math_offline import find_chromium, rendered_problems, static_problems

REPO = Path(__file__).resolve().parents[2]
PAGE = r"""# Formulas offline

Inline: the identity loss uses $\beta$ and $\bar\beta = \frac{1}{T}\sum_t \beta_t$.

$$
L_{\mathrm{smooth}} = \frac{1}{T-1} \sum_{t=1}^{T-1} \lVert p_{t+1} - p_t \rVert_1
$$

```{math}
:label: eq-id
L_{\mathrm{id}} = \frac{1}{T}\sum_{t=1}^{T} \lVert \beta_t - \bar\beta \rVert_2^2
```

\begin{align}
x' &= s\,(x + t_x) \\
y' &= s\,(y + t_y)
\end{align}

See {eq}`eq-id`.
"""
N_FORMULAS = 5
needs_chromium = pytest.mark.skipif(find_chromium() is None,
                                    reason="needs Chromium (Debian package chromium) to render the page; absent here")


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one-page book built with the project's _config.yml: its HTML folder."""
    src = tmp_path_factory.mktemp("book")
    (src / "_toc.yml").write_text("format: jb-book\nroot: index\n")
    (src / "index.md").write_text(PAGE)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(src),
           "--config", str(REPO / "_config.yml"), "--toc", str(src / "_toc.yml")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"jupyter-book build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return src / "_build" / "html"


def _page(folder: Path, html: str, name: str = "index.html") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(html)
    return folder / name


@pytest.mark.slow
def test_built_page_loads_mathjax_from_the_build(book: Path):
    problems, with_math = static_problems(book)
    assert problems == []
    assert [p.name for p in with_math] == ["index.html"]
    assert (book / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()
    html = (book / "index.html").read_text()
    assert 'src="_static/mathjax/tex-mml-chtml.js' in html
    assert "cdn." not in html.lower()


@pytest.mark.slow
@needs_chromium
def test_formulas_typeset_in_chromium_offline(book: Path):
    problems, typeset = rendered_problems([book / "index.html"], find_chromium(), book)
    assert problems == []
    assert typeset == N_FORMULAS


@pytest.mark.slow
@needs_chromium
def test_render_check_fails_on_untypeset_and_broken_formulas(book: Path, tmp_path: Path):
    html = (book / "index.html").read_text()
    assert r"\(\beta\)" in html  # the formula broken below
    (tmp_path / "_static").symlink_to(book / "_static")
    missing = html.replace("_static/mathjax/tex-mml-chtml.js", "_static/mathjax/absent.js")
    no_mathjax = _page(tmp_path, missing, "raw.html")
    problems, typeset = rendered_problems([no_mathjax], find_chromium(), tmp_path)
    assert typeset == 0 and any(f"{N_FORMULAS} of {N_FORMULAS} formulas not typeset" in p for p in problems)
    broken = _page(tmp_path, html.replace(r"\(\beta\)", r"\(x^^2\)"), "broken.html")
    problems, _ = rendered_problems([broken], find_chromium(), tmp_path)
    assert problems == [f"broken.html: 1 of {N_FORMULAS} formulas show a TeX error"]


def test_check_fails_on_mathjax_from_the_network(tmp_path: Path):
    # What the book built before: Sphinx's default MathJax 3 from a CDN.
    _page(tmp_path, '<html><head><script defer="defer" src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/'
                    'tex-mml-chtml.js"></script></head><body><span class="math notranslate nohighlight">'
                    r"\(\beta\)</span></body></html>")
    problems, with_math = static_problems(tmp_path)
    assert len(with_math) == 1
    assert any("loads MathJax over the network" in p for p in problems)
    assert any("loads no MathJax from the build" in p for p in problems)


def test_check_fails_on_mathjax_url_inside_a_script(tmp_path: Path):
    _page(tmp_path, '<html><head><script>window.MathJax = {loader: {paths: {mathjax: "//unpkg.com/mathjax@3"}}}'
                    '</script><script src="_static/mathjax/tex-chtml.js"></script></head><body>'
                    r'<div class="math">\[x\]</div></body></html>')
    (tmp_path / "_static" / "mathjax").mkdir(parents=True)
    (tmp_path / "_static" / "mathjax" / "tex-chtml.js").write_text("// MathJax")
    problems, _ = static_problems(tmp_path)
    assert problems == ["index.html: loads MathJax over the network: //unpkg.com/mathjax"]


def test_check_fails_on_mathjax_missing_from_the_build(tmp_path: Path):
    _page(tmp_path / "sub", '<html><head><script async="async" src="../_static/mathjax/MathJax.js?config=TeX-full">'
                            r'</script></head><body><span class="math">\(x\)</span></body></html>')
    problems, _ = static_problems(tmp_path)
    assert len(problems) == 1 and "is missing from the build" in problems[0]
    (tmp_path / "_static" / "mathjax").mkdir(parents=True)
    (tmp_path / "_static" / "mathjax" / "MathJax.js").write_text("// MathJax")
    problems, _ = static_problems(tmp_path)
    assert len(problems) == 1 and "configuration TeX-full is missing" in problems[0]
    (tmp_path / "_static" / "mathjax" / "config").mkdir()
    (tmp_path / "_static" / "mathjax" / "config" / "TeX-full.js").write_text("// config")
    assert static_problems(tmp_path)[0] == []


def test_check_fails_when_no_page_has_formulas(tmp_path: Path):
    _page(tmp_path, "<html><body><p>No math here.</p></body></html>")
    problems, with_math = static_problems(tmp_path)
    assert with_math == [] and len(problems) == 1 and "nothing was checked" in problems[0]


def test_plotly_figures_in_the_book_do_not_fetch_mathjax(tmp_path):
    """Plotly's notebook renderer (the one the book builds with) writes a CDN MathJax 2 tag
    before every figure; the extension drops it, and the checker then finds nothing to fetch."""
    import plotly.graph_objects as go
    import plotly.io as pio

    sys.path.insert(0, str(REPO / "book" / "_ext"))
    from offline_mathjax import drop_plotly_cdn_mathjax

    figure = pio.renderers["notebook"].to_mimebundle(go.Figure(go.Scatter(y=[1, 2])).to_dict())
    page = tmp_path / "chapter.html"
    page.write_text(f"<html><body><p>$x$</p>{figure['text/html']}</body></html>", encoding="utf-8")
    network = [p for p in static_problems(tmp_path)[0] if "over the network" in p]
    assert network, "plotly's figure no longer loads MathJax from a CDN: the workaround can go"
    assert drop_plotly_cdn_mathjax(tmp_path) == 1
    assert not [p for p in static_problems(tmp_path)[0] if "over the network" in p]
    assert "Plotly.newPlot" in page.read_text(encoding="utf-8")  # the figure itself stays
