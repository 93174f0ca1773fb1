"""Plot helpers: back-face culling and painter's order of the 2D mesh view, the plotly figure."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tempsmirk.viz import draw_mesh_2d, mesh_figure  # noqa: E402


def _two_layer_scene():
    # Two triangles facing +z (one behind the other) and one facing away.
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0],
                  [0.5, 0, 1], [1.5, 0, 1], [0.5, 1, 1],
                  [0, 0, 2], [0, 1, 2], [1, 0, 2]], dtype=np.float64)
    f = np.array([[3, 4, 5], [0, 1, 2], [6, 7, 8]])
    return v, f


def test_draw_mesh_2d_culls_and_orders():
    v, f = _two_layer_scene()
    fig, ax = plt.subplots()
    pc = draw_mesh_2d(ax, torch.as_tensor(v), torch.as_tensor(f))
    polys = pc.get_paths()
    assert len(polys) == 2  # the back-facing triangle is dropped
    # Painted back to front: the z=0 triangle first, the (shifted) z=1 one on top.
    assert polys[0].vertices[:3, 0].min() == 0.0
    assert polys[1].vertices[:3, 0].min() == 0.5
    plt.close(fig)


def test_draw_mesh_2d_values_colour_faces():
    v, f = _two_layer_scene()
    fig, ax = plt.subplots()
    pc = draw_mesh_2d(ax, v, f, values=np.arange(9.0))
    c = pc.get_facecolor()
    assert not np.allclose(c[0], c[1])  # different mean values -> different colours
    plt.close(fig)


def test_mesh_figure_carries_mesh_and_landmarks():
    v, f = _two_layer_scene()
    fig = mesh_figure(v, f, landmarks=v[:2])
    assert fig.data[0].type == "mesh3d" and len(fig.data[0].i) == 3
    assert fig.data[1].type == "scatter3d" and len(fig.data[1].x) == 2


def test_flame_explorer_sliders_drive_the_model(monkeypatch):
    from tempsmirk.flame import FLAME
    from tempsmirk.viz import flame_explorer

    flame = FLAME.builtin(0)
    calls = []
    real = flame.forward
    monkeypatch.setattr(flame, "forward", lambda **kw: calls.append(kw) or real(**kw))
    box = flame_explorer(flame, n_shape=2, n_exp=2)
    sliders = [w for w in box.children[0].children if hasattr(w, "value") and hasattr(w, "min")]
    assert [s.description for s in sliders][:4] == ["shape 0", "shape 1", "expr 0", "expr 1"]
    assert not calls  # nothing drawn before a slider moves
    sliders[2].value = 1.5
    assert len(calls) == 1 and calls[0]["expression"][0, 0].item() == 1.5


def test_show_images_grid_and_values():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tempsmirk.viz import show_images

    rgb = torch.rand(3, 8, 8)
    grey = torch.full((1, 8, 8), 2.0)  # out of range: shown clipped to 1
    axes = show_images([rgb, grey, rgb], titles=["a", "b", "c"], rows=2)
    assert axes.shape == (2, 2)
    shown = axes[0, 0].images[0].get_array()
    assert np.allclose(shown, rgb.permute(1, 2, 0).numpy())
    assert np.allclose(axes[0, 1].images[0].get_array(), 1.0)
    assert axes[0, 1].get_title() == "b" and not axes[1, 1].images  # the spare cell stays empty
    plt.close("all")


# ----------------------------------------------------------------------------- tables
class _Cells:
    """The header and body cells of an HTML table, read back with the standard parser."""

    def __init__(self, markup: str) -> None:
        from html.parser import HTMLParser

        self.head: list[str] = []
        self.body: list[list[str]] = []
        self.small: list[str] = []
        cells = self

        class P(HTMLParser):
            section, cell, in_small = None, None, False

            def handle_starttag(self, tag, attrs):
                if tag in ("thead", "tbody"):
                    self.section = tag
                elif tag == "tr" and self.section == "tbody":
                    cells.body.append([])
                elif tag in ("th", "td"):
                    self.cell = ""
                elif tag == "small":
                    self.in_small = True
                    cells.small.append("")

            def handle_endtag(self, tag):
                if tag in ("th", "td"):
                    (cells.head if self.section == "thead" else cells.body[-1]).append(self.cell)
                    self.cell = None
                elif tag == "small":
                    self.in_small = False

            def handle_data(self, data):
                if self.in_small:
                    cells.small[-1] += data
                if self.cell is not None and not self.in_small:
                    self.cell += data

        P().feed(markup)


def test_format_number_keeps_significant_digits():
    from tempsmirk.viz import format_number

    expected = {0.0835: "0.0835", 16.0757: "16.1", 1367.6: "1368", 0.73: "0.730", 3.02e-13: "3.02e-13",
                -2.5e8: "-2.50e+08", 0.0: "0", 7: "7", float("nan"): "—", None: "—", "x": "x",
                float("inf"): "∞", np.float32(0.5): "0.500", torch.tensor(2.0): "2.00"}
    for value, text in expected.items():
        assert format_number(value) == text, (value, format_number(value), text)
    assert format_number(0.123456, digits=5) == "0.12346"
    # Rounding decides the decimals: float32's 0.01 is 0.0099999998, 9.996 rounds to 10.0.
    assert format_number(float(np.float32(0.01)), digits=4) == "0.01000"
    assert format_number(9.996) == "10.0" and format_number(-0.0004567) == "-0.000457"
    assert format_number(0.25, spec=".1%") == "25.0%" and format_number(3, spec=".2f") == "3.00"


def test_table_html_text_and_markdown_agree():
    from tempsmirk.viz import table

    t = table({"decode": [0.73, 1367.6], "end to end": {"speed": 21.4}}, ["time", "speed"],
              units={"time": "ms/frame", "speed": "frames/s"}, index="stage", note="48 frames",
              caption="timings")
    cells = _Cells(t._repr_html_())
    assert cells.head == ["stage", "time", "speed"] and cells.small == ["ms/frame", "frames/s", "48 frames"]
    assert "ms/<wbr>frame" in t._repr_html_()  # a long unit may break after its slash
    assert cells.body == [["decode", "0.730", "1368"], ["end to end", "—", "21.4"]]
    assert "<caption>timings</caption>" in t._repr_html_() and "48 frames" in t._repr_html_()
    text = str(t).splitlines()
    assert text[0] == "timings" and text[-1] == "48 frames"
    # Aligned text: numbers right-aligned under their headers, labels left-aligned.
    assert text[1].split() == ["stage", "time", "(ms/frame)", "speed", "(frames/s)"]
    assert text[2].startswith("decode ") and text[2].endswith("1368")
    assert len({len(line) for line in text[1:4]}) == 1 and repr(t) == str(t)
    md = t.to_markdown().splitlines()
    assert md[2] == "| stage | time (ms/frame) | speed (frames/s) |"
    assert md[3] == "| --- | ---: | ---: |" and md[4] == "| decode | 0.730 | 1368 |"


def test_table_columns_formats_and_escaping():
    from tempsmirk.viz import table

    t = table({"a<b": {"share": 0.25, "name": "x|y"}, "c": {"share": 0.5}}, formats={"share": ".0%"})
    assert t.columns == ("share", "name") and t.numeric == (True, False)
    assert t.cells == (("25%", "x|y"), ("50%", "—"))
    assert "a&lt;b" in t._repr_html_() and "x\\|y" in t.to_markdown()
    unlabelled = table([(1, 2.0)], ["n", "v"])
    assert unlabelled.headers() == ["n", "v"] and str(unlabelled).splitlines()[1].split() == ["1", "2.00"]
    with pytest.raises(ValueError, match="3 values for 2 columns"):
        table({"r": [1, 2, 3]}, ["a", "b"])
    with pytest.raises(ValueError, match="not among"):
        table({"r": [1]}, ["a"], units={"b": "mm"})
    with pytest.raises(ValueError, match="give columns"):
        table([[1]])
