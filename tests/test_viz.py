"""Plot helpers: back-face culling and painter's order of the 2D mesh view, the plotly figure."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
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
