"""Looking at a reconstruction in a notebook: the overlay video inline, a frame slider over meshes
(chapter 7)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import torch

from tempsmirk.flame.params import FlameParams

__all__ = ["video_html", "mesh_viewer"]


def video_html(path: str | os.PathLike, width: int | None = None, max_bytes: int = 4 << 20) -> str:
    """An HTML ``<video>`` with the mp4 embedded (base64), so the page carries it; plays in browsers
    that decode H.264. Raises ValueError above ``max_bytes`` (a notebook should stay small: show
    a shorter clip, or link the file)."""
    data = Path(path).read_bytes()
    if len(data) > max_bytes:
        raise ValueError(f"{path} is {len(data) / 2**20:.1f} MiB; embedding more than "
                         f"{max_bytes / 2**20:.0f} MiB would bloat the notebook: link the file instead")
    size = f' width="{width}"' if width else ""
    return (f'<video controls loop autoplay muted playsinline{size}>'
            f'<source src="data:video/mp4;base64,{base64.b64encode(data).decode()}" type="video/mp4">'
            "</video>")


def mesh_viewer(flame, params: FlameParams, height: int = 420):
    """An ipywidgets slider over frames that draws the mesh of the chosen frame (plotly).

    params: (T, ...) fields, e.g. ``load_params(folder).params``. FLAME runs for one frame per
    slider move, so nothing is stored for the frames not looked at. Like
    :func:`tempsmirk.viz.flame_explorer`, nothing is drawn until the slider moves (displaying into an
    ``Output`` while a headless client executes the notebook can hang it); needs a live kernel.
    Returns the widget.
    """
    import ipywidgets as W

    from tempsmirk.viz import mesh_figure

    device, dtype = flame.v_template.device, flame.v_template.dtype
    view = W.Output()
    slider = W.IntSlider(value=0, min=0, max=params.batch_size - 1, description="frame",
                         continuous_update=False, layout=W.Layout(width="420px"))

    def update(_=None):
        p = params[slider.value:slider.value + 1].to(device=device, dtype=dtype)
        with torch.no_grad():
            out = flame.forward_params(p)
        view.clear_output(wait=True)
        with view:
            mesh_figure(out.vertices[0], flame.faces, title=f"frame {slider.value}",
                        height=height).show(renderer="plotly_mimetype")

    slider.observe(update, names="value")
    hint = W.HTML("<i>Move the slider to draw that frame's mesh (needs a live kernel).</i>")
    return W.VBox([hint, slider, view])
