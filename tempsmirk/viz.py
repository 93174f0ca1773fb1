"""Plots, tables and widgets for the book (plotly 3D meshes, matplotlib landmarks, result tables,
ipywidgets explorers).

Plotly figures embed in the built HTML when ``PLOTLY_RENDERER=notebook`` (the
Makefile sets it). Widgets need a live kernel (JupyterLab); the HTML shows their
static first state. :func:`table` is the one way results are tabulated: an HTML table in a
notebook, aligned text in a terminal, markdown in a report file.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import torch

__all__ = ["mesh_figure", "draw_mesh_2d", "plot_landmarks_2d", "flame_explorer", "to_numpy",
           "show_images", "plot_tracks", "plot_tradeoff", "smoothing_explorer", "Table", "table",
           "format_number"]

SKIN = "rgb(222,190,170)"


def to_numpy(x) -> np.ndarray:
    """Tensor (any device, with or without grad) or array -> NumPy."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def show_images(images, titles: Optional[Sequence[str]] = None, rows: int = 1, scale: float = 2.2):
    """A row (or grid) of images side by side; returns the (rows, cols) matplotlib axes.

    images: a sequence of (3, H, W) RGB or (1, H, W) grey tensors/arrays in [0, 1].
    """
    import matplotlib.pyplot as plt

    n = len(images)
    cols = (n + rows - 1) // rows
    fig, axes = plt.subplots(rows, cols, figsize=(scale * cols, scale * rows), squeeze=False)
    for ax, i in zip(axes.flat, range(rows * cols)):
        ax.axis("off")
        if i < n:
            img = np.clip(to_numpy(images[i]).astype(np.float32), 0, 1)
            ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=1)
            if titles:
                ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return axes


def mesh_figure(
    vertices,
    faces,
    landmarks=None,
    vertex_colors: Optional[np.ndarray] = None,
    title: str = "",
    height: int = 420,
    landmark_labels: Optional[Sequence[str]] = None,
):
    """A plotly 3D figure of one mesh: vertices (V, 3), faces (F, 3), optional landmarks (L, 3).

    The camera looks at the face (+z towards the viewer, +y up).
    """
    import plotly.graph_objects as go

    v, f = to_numpy(vertices), to_numpy(faces)
    mesh = go.Mesh3d(
        x=v[:, 0], y=v[:, 1], z=v[:, 2], i=f[:, 0], j=f[:, 1], k=f[:, 2],
        color=None if vertex_colors is not None else SKIN,
        vertexcolor=vertex_colors, flatshading=False,
        lighting=dict(ambient=0.35, diffuse=0.8, specular=0.15, roughness=0.6),
        lightposition=dict(x=0, y=0.5, z=2), name="mesh", hoverinfo="skip",
    )
    data = [mesh]
    if landmarks is not None:
        lm = to_numpy(landmarks)
        data.append(go.Scatter3d(
            x=lm[:, 0], y=lm[:, 1], z=lm[:, 2], mode="markers",
            marker=dict(size=3, color="crimson"), name="landmarks",
            text=list(landmark_labels) if landmark_labels is not None else None,
        ))
    fig = go.Figure(data=data)
    fig.update_layout(
        title=title, height=height, margin=dict(l=0, r=0, t=30 if title else 0, b=0), showlegend=False,
        scene=dict(aspectmode="data", xaxis_visible=False, yaxis_visible=False, zaxis_visible=False,
                   camera=dict(eye=dict(x=0, y=0, z=2.0), up=dict(x=0, y=1, z=0))),
    )
    return fig


def draw_mesh_2d(ax, vertices, faces, values=None, cmap: str = "magma", light=(0.3, 0.4, 1.0)):
    """Orthographic front view (x right, y up) of a mesh on a matplotlib axis.

    Faces are painted back to front (painter's algorithm), back-facing ones dropped,
    and shaded by a directional light — or coloured by per-vertex ``values`` (V,)
    when given. vertices (V, 3), faces (F, 3). Returns the PolyCollection.
    """
    import matplotlib
    from matplotlib.collections import PolyCollection

    v, f = to_numpy(vertices).astype(np.float64), to_numpy(faces)
    tri = v[f]  # (F, 3, 3)
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    front = n[:, 2] > 0
    tri, n, f = tri[front], n[front], f[front]
    order = np.argsort(tri[:, :, 2].mean(1))
    tri, n, f = tri[order], n[order], f[order]
    if values is None:
        l = np.asarray(light, dtype=np.float64) / np.linalg.norm(light)
        shade = np.clip((n / np.linalg.norm(n, axis=1, keepdims=True)) @ l, 0, 1)
        colors = np.clip(0.25 + 0.7 * shade, 0, 1)[:, None] * np.array([0.87, 0.75, 0.67])
    else:
        vals = to_numpy(values)[f].mean(1)
        colors = matplotlib.colormaps[cmap]((vals - vals.min()) / (np.ptp(vals) + 1e-12))
    # Edges in the face colour hide the antialiasing seams between polygons.
    pc = PolyCollection(tri[:, :, :2], facecolors=colors, edgecolors=colors, linewidths=0.3)
    ax.add_collection(pc)
    ax.set_xlim(v[:, 0].min(), v[:, 0].max())
    ax.set_ylim(v[:, 1].min(), v[:, 1].max())
    ax.set_aspect("equal")
    ax.axis("off")
    return pc


def plot_landmarks_2d(ax, points, connect_ibug: bool = True, **kwargs):
    """Scatter (L, 2) points on a matplotlib axis; with 68 points, draw the iBUG contours."""
    p = to_numpy(points)
    ax.scatter(p[:, 0], p[:, 1], s=kwargs.pop("s", 8), **kwargs)
    if connect_ibug and len(p) == 68:
        for a, b, closed in ((0, 17, False), (17, 22, False), (22, 27, False), (27, 31, False),
                             (31, 36, False), (36, 42, True), (42, 48, True), (48, 60, True), (60, 68, True)):
            seg = p[a:b]
            if closed:
                seg = np.concatenate([seg, seg[:1]])
            ax.plot(seg[:, 0], seg[:, 1], lw=0.8, color=kwargs.get("color", "C0"))
    return ax


def flame_explorer(flame, n_shape: int = 3, n_exp: int = 5, height: int = 420):
    """An ipywidgets explorer: sliders for the first shape/expression components, jaw,
    neck, eyes and eyelids redraw a plotly mesh of ``flame``.

    The figure is shown in an ``Output`` widget rather than a ``FigureWidget``: the
    latter stores plotly's 5 MB JavaScript bundle in the notebook's widget state.
    Live in JupyterLab; the mesh appears on the first slider move, and a static page
    shows the controls only.
    Returns the widget (display it in JupyterLab).
    """
    import ipywidgets as W

    dtype = flame.v_template.dtype
    device = flame.v_template.device
    view = W.Output()

    def slider(desc, lo=-3.0, hi=3.0, step=0.1):
        return W.FloatSlider(value=0.0, min=lo, max=hi, step=step, description=desc,
                             continuous_update=False, layout=W.Layout(width="320px"))

    shape = [slider(f"shape {i}") for i in range(n_shape)]
    expr = [slider(f"expr {i}") for i in range(n_exp)]
    jaw = slider("jaw open", 0.0, 0.5, 0.01)
    neck = slider("neck yaw", -0.6, 0.6, 0.02)
    eyes = slider("eyes yaw", -0.5, 0.5, 0.02)
    lids = slider("eyelids", 0.0, 1.0, 0.05)

    def update(_=None):
        t = lambda values: torch.tensor([values], dtype=dtype, device=device)  # noqa: E731
        with torch.no_grad():
            out = flame(shape=t([w.value for w in shape]), expression=t([w.value for w in expr]),
                        jaw_pose=t([jaw.value, 0, 0]), neck_pose=t([0, neck.value, 0]),
                        eye_pose=t([0, eyes.value, 0, 0, eyes.value, 0]),
                        eyelids=t([lids.value, lids.value]))
        view.clear_output(wait=True)
        with view:
            # Always the JSON mimetype here (JupyterLab's plotly extension draws it): plotly's
            # "notebook" renderer inside an Output widget can hang headless execution (nbclient).
            mesh_figure(out.vertices[0], flame.faces, height=height).show(renderer="plotly_mimetype")

    controls = shape + expr + [jaw, neck, eyes, lids]
    for w in controls:
        w.observe(update, names="value")
    # Nothing is drawn until a slider moves: displaying into an Output widget while a
    # headless client (nbclient: papermill, jupyter-book) executes the cell can hang it.
    hint = W.HTML("<i>Move a slider to draw the mesh (needs a live kernel).</i>")
    return W.HBox([W.VBox([hint] + controls), view])


def plot_tracks(ax, tracks: dict, title: str = "", ylabel: str = "", styles: Optional[dict] = None):
    """Plot named 1D tracks over frames: ``tracks`` maps a label to a (T,) tensor or array.

    ``styles`` maps a label to matplotlib keyword arguments (colour, line style, ...). Chapter 4.
    """
    styles = styles or {}
    for label, y in tracks.items():
        y = to_numpy(y)
        ax.plot(np.arange(len(y)), y, label=label, **styles.get(label, {}))
    ax.set_xlabel("frame")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return ax


def plot_tradeoff(ax, jitter, error, labels: Sequence[str], truth_jitter: Optional[float] = None,
                  xlabel: str = "mean acceleration", ylabel: str = "per-frame error", title: str = ""):
    """Per-frame error against jitter for a series of settings (e.g. growing smoothing weights).

    jitter, error: (N,) values, one point per setting, joined in order and annotated with
    ``labels``. ``truth_jitter``: the ground truth's own jitter; left of it a method is smoother
    than the real motion (shaded: over-smoothing). Chapters 4 and 5.
    """
    x, y = to_numpy(jitter), to_numpy(error)
    ax.plot(x, y, "o-", ms=4)
    for xi, yi, lab in zip(x, y, labels):
        ax.annotate(str(lab), (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=7)
    if truth_jitter is not None:
        ax.axvline(truth_jitter, color="k", ls="--", lw=0.8)
        ax.axvspan(min(float(x.min()), truth_jitter) * 0.9, truth_jitter, color="C3", alpha=0.08,
                   label="smoother than the truth")
        ax.legend(fontsize=7, loc="upper right")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return ax


def smoothing_explorer(clean, noisy, names: Sequence[str], weight_range=(1e-3, 3.0), steps: int = 200):
    """An ipywidgets slider for λ that smooths one clip with
    :func:`tempsmirk.temporal.denoise_tracks` and plots each track (matplotlib).

    clean, noisy: (T, D) tracks of one clip; names: D panel titles. Computes and draws only when
    the slider moves (a static page shows the control only). Chapter 4. Returns the widget.
    """
    import ipywidgets as W
    import matplotlib.pyplot as plt

    from tempsmirk.temporal import acceleration, denoise_tracks

    clean, noisy = torch.as_tensor(clean), torch.as_tensor(noisy)
    lo, hi = np.log10(weight_range[0]), np.log10(weight_range[1])
    slider = W.FloatLogSlider(value=10 ** ((lo + hi) / 2), min=lo, max=hi, step=0.1, description="λ",
                              continuous_update=False, layout=W.Layout(width="420px"))
    view = W.Output()

    def update(_=None):
        smooth = denoise_tracks(noisy[None], torch.tensor([slider.value]), steps=steps)[0, 0]
        err = float((smooth - clean).pow(2).mean().sqrt())
        acc, acc_true = float(acceleration(smooth[None]).mean()), float(acceleration(clean[None]).mean())
        view.clear_output(wait=True)
        with view:
            fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 2.8), squeeze=False)
            for d, (ax, name) in enumerate(zip(axes[0], names)):
                plot_tracks(ax, {"truth": clean[:, d], "noisy": noisy[:, d], f"λ = {slider.value:.3g}": smooth[:, d]},
                            title=name, styles={"truth": dict(color="k", lw=2, alpha=0.4),
                                                "noisy": dict(color="C7", lw=0.8)})
            fig.suptitle(f"RMSE to the truth {err:.3g}; mean acceleration {acc:.3g} (truth {acc_true:.3g})",
                         fontsize=10)
            fig.tight_layout()
            plt.show()

    slider.observe(update, names="value")
    hint = W.HTML("<i>Move the slider to smooth the clip (needs a live kernel).</i>")
    return W.VBox([hint, slider, view])


# ----------------------------------------------------------------------------- tables
MISSING = "—"


def format_number(value: Any, digits: int = 3, spec: Optional[str] = None) -> str:
    """One table cell. ``spec`` (a format spec such as ``".1%"`` or ``"+.2f"``) wins; otherwise
    floats keep ``digits`` significant digits in fixed notation (``0.0835``, ``16.1``, ``1368``),
    switching to scientific only below 1e-4 or from 1e7 (``3.02e-13``). Integers print whole;
    None and NaN print as a dash; strings pass through."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, Integral) and spec is None:
        return str(int(value))
    if not isinstance(value, Real):
        return str(value)
    v = float(value)
    if math.isnan(v):
        return MISSING
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if spec is not None:
        return format(v, spec)
    if v == 0:
        return "0"
    scientific = f"{v:.{max(digits - 1, 0)}e}"  # rounded first: 0.00999999 has exponent -2
    exponent = int(scientific.split("e")[1])
    if exponent < -4 or exponent >= 7:
        return scientific
    return f"{v:.{max(digits - 1 - exponent, 0)}f}"


@dataclass(frozen=True, repr=False)
class Table:
    """A formatted table (build it with :func:`table`): rows of text cells under column labels
    with units. Shown as an HTML table in Jupyter (``_repr_html_``), as aligned text by
    ``print``/``repr``, and as a markdown table by :meth:`to_markdown`.

    columns: labels; units: one per column ("" for none); index: the row-label column's header
    (None: rows have no labels); labels: row labels; cells: (rows, columns) text; numeric: per
    column, whether it holds numbers (right-aligned); caption above, note below.
    """

    columns: tuple[str, ...]
    units: tuple[str, ...]
    index: Optional[str]
    labels: tuple[str, ...]
    cells: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    caption: str = ""
    note: str = ""

    def headers(self) -> list[str]:
        """Column headers with units in parentheses, the row-label column first (if any)."""
        head = [c + (f" ({u})" if u else "") for c, u in zip(self.columns, self.units)]
        return ([self.index] if self.index is not None else []) + head

    def _body(self) -> list[list[str]]:
        if self.index is None:
            return [list(r) for r in self.cells]
        return [[label, *r] for label, r in zip(self.labels, self.cells)]

    def _aligned_right(self) -> list[bool]:
        return ([False] if self.index is not None else []) + list(self.numeric)

    def __str__(self) -> str:
        head, body, right = self.headers(), self._body(), self._aligned_right()
        width = [max(len(x[k]) for x in [head, *body]) for k in range(len(head))]
        line = lambda cells: "  ".join(  # noqa: E731
            (c.rjust(w) if r else c.ljust(w)) for c, w, r in zip(cells, width, right)).rstrip()
        text = [line(head), *map(line, body)]
        return "\n".join(([self.caption] if self.caption else []) + text
                         + ([self.note] if self.note else []))

    __repr__ = __str__

    def to_markdown(self) -> str:
        """A pipe table (numbers right-aligned), caption and note as paragraphs around it."""
        esc = lambda c: c.replace("|", "\\|")  # noqa: E731
        head = self.headers()
        rule = ["---:" if r else "---" for r in self._aligned_right()]
        rows = [head, rule, *self._body()]
        text = "\n".join("| " + " | ".join(esc(c) for c in r) + " |" for r in rows)
        if self.caption:
            text = f"{self.caption}\n\n{text}"
        return text + (f"\n\n{self.note}" if self.note else "") + "\n"

    def _repr_html_(self) -> str:
        # Inline styles: they survive notebook sanitising and need no stylesheet in the book.
        e = html.escape
        left = ' style="text-align:left"'
        # Numbers right-aligned, digits of equal width, never broken; headers wrap at spaces.
        num = ' style="text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums"'
        right = ' style="text-align:right"'
        th = [f"<th{left}>{e(self.index)}</th>"] if self.index is not None else []
        unit = lambda u: e(u).replace("/", "/<wbr>")  # noqa: E731  (mm/frame² may break)
        th += [f"<th{right if n else left}>{e(c)}" + (f"<br><small>{unit(u)}</small>" if u else "")
               + "</th>" for c, u, n in zip(self.columns, self.units, self.numeric)]
        trs = []
        for i, row in enumerate(self.cells):
            tds = [f"<th{left}>{e(self.labels[i])}</th>"] if self.index is not None else []
            tds += [f"<td{num if n else left}>{e(c)}</td>" for c, n in zip(row, self.numeric)]
            trs.append("<tr>" + "".join(tds) + "</tr>")
        caption = f"<caption>{e(self.caption)}</caption>" if self.caption else ""
        note = f"<p><small>{e(self.note)}</small></p>" if self.note else ""
        # A little smaller than the prose, so that eight or nine columns fit the book's page.
        return (f'<table style="font-size:0.9em">{caption}<thead><tr>{"".join(th)}</tr></thead>'
                f"<tbody>{''.join(trs)}</tbody></table>{note}")


RowValues = Union[Sequence[Any], Mapping[str, Any]]


def _per_column(value, columns: Sequence[str], default, what: str) -> list:
    """A scalar, a sequence (one per column) or a mapping (column -> value, others ``default``)."""
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in columns]
        if unknown:
            raise ValueError(f"table: {what} names columns {unknown} that are not among {list(columns)}")
        return [value.get(c, default) for c in columns]
    if isinstance(value, (list, tuple)):
        if len(value) != len(columns):
            raise ValueError(f"table: {len(value)} {what} for {len(columns)} columns; give one per "
                             f"column or a mapping column -> value")
        return list(value)
    return [default if value is None else value] * len(columns)


def table(rows: Union[Mapping[str, RowValues], Sequence[Sequence[Any]]],
          columns: Optional[Sequence[str]] = None,
          units: Union[None, Sequence[str], Mapping[str, str]] = None,
          digits: Union[int, Sequence[int], Mapping[str, int]] = 3,
          formats: Optional[Mapping[str, str]] = None,
          index: Optional[str] = "",
          caption: str = "",
          note: str = "") -> Table:
    """Tabulate results: an HTML table in the book, aligned text in a terminal (``print``).

    Args:
        rows: row label -> values (a sequence in ``columns`` order, or a mapping column ->
            value, where a missing column shows a dash); or a sequence of unlabelled rows.
        columns: column labels (default, for mapping rows: their keys in order of appearance).
        units: each column's unit, shown under (HTML) or after (text) its label: a sequence,
            or a mapping column -> unit ("" or absent: none).
        digits: significant digits of floats (:func:`format_number`), for all columns or per
            column (sequence or mapping).
        formats: column -> format spec (e.g. ``".1%"``, ``".4f"``), replacing ``digits``.
        index: header of the row-label column (ignored for unlabelled rows).
        caption, note: a line above and a line below the table.
    Returns:
        :class:`Table`.
    """
    labelled = isinstance(rows, Mapping)
    values = list(rows.values()) if labelled else list(rows)
    if columns is None:
        if not all(isinstance(v, Mapping) for v in values):
            raise ValueError("table: give columns=... unless every row is a mapping column -> value")
        columns = list(dict.fromkeys(k for v in values for k in v))
    columns = [str(c) for c in columns]
    unit_list = [u or "" for u in _per_column(units, columns, "", "units")]
    digit_list = _per_column(digits, columns, 3, "digits")
    spec_list = _per_column(dict(formats or {}), columns, None, "formats")
    cells, numeric = [], [False] * len(columns)
    is_number = lambda x: isinstance(x, (Real, torch.Tensor)) and not isinstance(x, bool)  # noqa: E731
    for r, v in enumerate(values):
        if isinstance(v, Mapping):
            row = [v.get(c) for c in columns]
        else:
            row = list(v)
            if len(row) != len(columns):
                name = list(rows)[r] if labelled else r
                raise ValueError(f"table: row {name!r} has {len(row)} values for {len(columns)} "
                                 f"columns {columns}")
        for k, x in enumerate(row):
            numeric[k] = numeric[k] or is_number(x)
        cells.append(tuple(format_number(x, d, s) for x, d, s in zip(row, digit_list, spec_list)))
    return Table(columns=tuple(columns), units=tuple(unit_list),
                 index=index if labelled else None,
                 labels=tuple(str(k) for k in rows) if labelled else (),
                 cells=tuple(cells), numeric=tuple(numeric), caption=caption, note=note)
