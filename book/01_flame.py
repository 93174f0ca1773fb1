# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # FLAME
#
# FLAME maps an identity shape $\beta$, an expression $\psi$ and a pose $\theta$ to a
# head mesh with a fixed triangulation. Everything later in this book — rendering,
# the SMIRK encoder, the temporal losses — works on FLAME parameters, so we start here.
#
# By default this chapter runs on the **built-in head**: a procedurally generated
# stand-in with FLAME's file layout (not FLAME, and not a scan). Point `flame_path` at
# a real FLAME model, or at a folder of FLAME files such as SMIRK's `assets/` (the
# README's "Real assets" lists the layouts), and every cell runs unchanged.

# %% tags=["parameters"]
profile = "small"
device = "cpu"
seed = 0
flame_path = None  # FLAME model file or asset folder (None: the built-in head)

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from tempsmirk import seed_everything
from tempsmirk.flame import FLAME, load_flame
from tempsmirk.flame.lbs import batch_rodrigues
from tempsmirk.viz import (draw_mesh_2d, flame_explorer, mesh_figure, plot_landmarks_2d,
                           to_numpy)

seed_everything(seed)
plt.rcParams["figure.dpi"] = 72
if flame_path is None:
    flame = FLAME.builtin(seed=seed)
else:  # finds the landmark, eyelid and mask files in the folder (README: Real assets)
    flame = load_flame(flame_path, require=())
flame = flame.to(device)
print(flame.source)
print(f"{flame.n_vertices} vertices, {len(flame.faces)} triangles, "
      f"{flame.n_shape} shape and {flame.n_exp} expression components")

# %% [markdown]
# ## Template and topology
#
# The template $\bar T$ is the mean head in a neutral pose. Every output mesh has the
# same vertices in the same order and the same triangles, which is what lets a
# network regress a fixed-length parameter vector and lets us compare meshes vertex
# by vertex across frames.

# %%
out0 = flame(shape=torch.zeros(1, flame.n_shape, device=device))
landmarks = out0.landmarks68[0] if flame.has_landmarks68 else None
mesh_figure(out0.vertices[0], flame.faces, landmarks=landmarks,
            title="template with the 68 landmarks")

# %% [markdown]
# ## Shape, expression and pose
#
# $$T(\beta, \psi, \theta) = \bar T + B_S(\beta) + B_E(\psi) + B_P(\theta)$$
#
# $B_S$ and $B_E$ are linear bases (the columns of `shapedirs`: 300 identity components,
# then expression components). Identity components move the whole head smoothly;
# expression components are local. $B_P$ adds small pose-dependent corrections driven by
# the rotation matrices of the non-root joints. The posed mesh is then skinned
# (next section). Below, the per-vertex displacement of one unit of a component,
# seen from the front: identity moves everything, expression only parts of the face.

# %%
dirs = to_numpy(flame.shapedirs)
fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
components = [(0, "shape 0"), (1, "shape 1"), (flame.n_shape, "expression 0"),
              (flame.n_shape + 2, "expression 2")]
for ax, (k, name) in zip(axes, components):
    mag = np.linalg.norm(dirs[:, :, k], axis=1) * 1000
    draw_mesh_2d(ax, flame.v_template, flame.faces, values=mag)
    ax.set_title(f"{name} (max {mag.max():.1f} mm)")
plt.tight_layout()

# %% [markdown]
# ## Linear blend skinning, from scratch
#
# Five joints (global, neck, jaw, left eye, right eye) are regressed from the shaped
# mesh, $J = \mathcal{J}\,(\bar T + B_S + B_E)$. Each joint's rotation is composed
# down the kinematic chain into a world transform $G_k$, and each vertex moves by the
# weighted blend of those transforms: $v' = \sum_k w_{ik}\, G_k(\theta)\, G_k(0)^{-1}\, v$.
# A dozen lines reproduce the library exactly:

# %%
g = torch.Generator().manual_seed(seed)
beta = torch.randn(2, flame.n_shape, generator=g).to(device)
psi = torch.randn(2, flame.n_exp, generator=g).to(device)
# global, neck, jaw, eyes (axis-angle)
pose = (torch.randn(2, 15, generator=g) * 0.2).to(device)


def lbs_from_scratch(flame, beta, psi, pose):
    coeffs = torch.cat([beta, psi], 1)
    v = flame.v_template + torch.einsum("bk,vck->bvc", coeffs, flame.shapedirs)
    joints = torch.einsum("jv,bvc->bjc", flame.j_regressor, v)
    R = batch_rodrigues(pose.reshape(-1, 3)).view(len(pose), -1, 3, 3)
    v = v + ((R[:, 1:] - torch.eye(3)).flatten(1) @ flame.posedirs).view_as(v)
    G = []
    for k, parent in enumerate(flame.parents.tolist()):
        local = torch.eye(4).repeat(len(pose), 1, 1)
        local[:, :3, :3] = R[:, k]
        local[:, :3, 3] = joints[:, k] - (joints[:, parent] if parent >= 0 else 0)
        G.append(local if parent < 0 else G[parent] @ local)
    G = torch.stack(G, 1)
    G[..., :3, 3] -= (G[..., :3, :3] @ joints[..., None])[..., 0]  # G_k(θ) G_k(0)^-1
    T = torch.einsum("vk,bkij->bvij", flame.lbs_weights, G)
    return (T[..., :3, :3] @ v[..., None])[..., 0] + T[..., :3, 3]


mine = lbs_from_scratch(flame, beta, psi, pose)
lib = flame(shape=beta, expression=psi, global_pose=pose[:, :3], neck_pose=pose[:, 3:6],
            jaw_pose=pose[:, 6:9], eye_pose=pose[:, 9:]).vertices
assert torch.allclose(mine, lib, atol=1e-5), (mine - lib).abs().max()
print("from-scratch LBS matches the library: "
      f"max |Δ| = {(mine - lib).abs().max():.2e} (FLAME units)")

# %% [markdown]
# The jaw opens the mouth by rotating about the jaw joint; the eyes rotate about
# their own centres; the eyelid fields (a SMIRK addition) close the lids and are added
# after skinning.

# %%
demo = {
    "neutral": {},
    "jaw open": dict(jaw_pose=torch.tensor([[0.35, 0.0, 0.0]])),
    "ψ[2] = 3 (built-in: smile)": dict(expression=torch.tensor([[0.0, 0.0, 3.0]])),
    "head turned 30°": dict(global_pose=torch.tensor([[0.0, np.radians(30), 0.0]])),
    "eyes left, lids half": dict(
        eye_pose=torch.tensor([[0.0, 0.35, 0.0, 0.0, 0.35, 0.0]]),
        eyelids=torch.tensor([[0.5, 0.5]])),
}
fig, axes = plt.subplots(1, len(demo), figsize=(3.2 * len(demo), 3.6))
for ax, (name, kw) in zip(axes, demo.items()):
    out = flame(**{k: v.to(device) for k, v in kw.items()})
    draw_mesh_2d(ax, out.vertices[0], flame.faces)
    if out.landmarks68 is not None:
        plot_landmarks_2d(ax, to_numpy(out.landmarks68[0])[:, :2], color="crimson", s=5)
    ax.set_title(name)
plt.tight_layout()

# %% [markdown]
# ## Landmarks
#
# Landmarks are points fixed on the surface: a triangle and barycentric coordinates
# each, so they move with the mesh. The **68 iBUG landmarks** are 51 static inner-face
# points plus a 17-point jaw contour that depends on head yaw: when the head turns, the
# visible jaw line is a different curve on the surface, so FLAME's *dynamic embedding*
# stores one contour per whole degree of yaw in $[-39°, 39°]$, chosen from the
# neck→global rotation. The **MediaPipe** embedding (105 points: lips, eyes, brows and
# nose) matches FaceMesh's 478-point output, which SMIRK uses as a dense landmark loss.

# %%
yaws = [0, 20, 39] if profile == "small" else [-39, -20, 0, 20, 39]
fig, axes = plt.subplots(1, len(yaws), figsize=(3.6 * len(yaws), 3.8))
for ax, yaw in zip(axes, yaws):
    out = flame(global_pose=torch.tensor([[0.0, np.radians(yaw), 0.0]], device=device))
    draw_mesh_2d(ax, out.vertices[0], flame.faces)
    if out.landmarks68 is not None:
        lm = to_numpy(out.landmarks68[0])
        ax.scatter(lm[:17, 0], lm[:17, 1], s=12, color="orange",
                   label="contour (dynamic)")
        ax.scatter(lm[17:, 0], lm[17:, 1], s=6, color="crimson", label="static 51")
    if out.landmarks_mp is not None:
        mp = to_numpy(out.landmarks_mp[0])
        ax.scatter(mp[:, 0], mp[:, 1], s=3, color="deepskyblue", label="MediaPipe 105")
    ax.set_title(f"yaw {yaw}°")
axes[0].legend(loc="lower left", fontsize=7)
plt.tight_layout()

# %% [markdown]
# ## Explore
#
# In JupyterLab the explorer below is live: sliders for the first shape and expression
# components, the jaw, neck and eyes and the eyelids drive the 3D view. In the static
# book it shows its initial state; the figure after it is an ordinary embedded plotly
# mesh you can rotate here.

# %%
flame_explorer(flame)

# %%
out = flame(expression=torch.tensor([[1.5, -1.0, 1.0]], device=device),
            jaw_pose=torch.tensor([[0.2, 0.0, 0.0]], device=device))
mesh_figure(out.vertices[0], flame.faces, title="an expression with the jaw open")
