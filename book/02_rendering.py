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
# # Rendering
#
# SMIRK never compares meshes with images directly. It *renders* the predicted FLAME mesh as a
# grey, shaded face and lets the rest of the pipeline (the landmark losses, the generator, the
# cycle) work on that image. The renderer must therefore be exact (one triangle per pixel, the
# nearest one), differentiable (gradients reach the vertices) and fast (it runs on every
# training image). SMIRK uses pytorch3d for it; pytorch3d cannot be installed here, so
# `tempsmirk.render` is a renderer in plain PyTorch. This chapter opens it up:
#
# 1. the camera, and the coordinate conventions everything else follows;
# 2. rasterisation, first as a ten-line brute force, then the library's version;
# 3. SMIRK's shading;
# 4. analysis by synthesis: recovering pose and expression by gradient descent through the renderer.
#
# As in chapter 1, everything runs on the built-in head unless `flame_path` points at a real
# FLAME model.

# %% tags=["parameters"]
profile = "small"
device = "cpu"
seed = 0
flame_path = None  # FLAME model file or asset folder (None: the built-in head)

# %%
# %matplotlib inline
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from tempsmirk import seed_everything
from tempsmirk.flame import FLAME, load_flame
from tempsmirk.render import (
    SMIRK_ALBEDO,
    directional_shading,
    project_points,
    rasterize,
    render_mesh,
    smirk_light_directions,
    to_pixel_space,
)
from tempsmirk.viz import plot_landmarks_2d, table, to_numpy

seed_everything(seed)
small = profile == "small"
if flame_path is None:
    flame = FLAME.builtin(seed=seed)
else:
    flame = load_flame(flame_path, require=())
flame = flame.to(device)
faces = flame.faces
face_region = flame.region_faces("face") if "face" in flame.masks else None
size = 112 if small else 224  # SMIRK renders at 224 px
region = "all faces" if face_region is None else f"{int(face_region.sum())} triangles"
print(flame.source)
print(f"{flame.n_vertices} vertices, {len(faces)} triangles; face region: {region}")

# %% [markdown]
# ## The camera
#
# SMIRK's camera is orthographic with three numbers per image, a scale $s$ and a 2D translation
# $(t_x, t_y)$:
#
# $$x' = s\,(x + t_x), \qquad y' = s\,(y + t_y), \qquad z' = s\,z .$$
#
# $(x', y') \in [-1, 1]^2$ spans the image. FLAME's $y$ points up and its $z$ towards the camera,
# while images count rows downwards, so the renderer works in **pixel space**: $u$ to the right,
# $v$ down, the centre of pixel (row $i$, column $j$) at $(j + \tfrac12, i + \tfrac12)$, and a
# depth $-z'$ where *smaller is closer*:
#
# $$u = (x' + 1)\,\tfrac{W}{2}, \qquad v = (1 - y')\,\tfrac{H}{2}, \qquad d = -z' .$$
#
# SMIRK's landmark losses compare points in the *normalised* image frame $(x', -y')$: the same
# picture, in $[-1, 1]$, $y$ down. `project_points` returns both. The conventions are written
# once, in `tempsmirk.render.camera`; the rest of the library links there.
#
# One more consequence worth knowing: the map from FLAME to pixel space flips two axes, so it
# keeps handedness. A triangle the camera sees from the outside has a *negative* signed area
# $(v_1 - v_0) \times (v_2 - v_0)$ in pixel space.

# %%
# pitch, yaw, roll (axis-angle)
gt_pose = torch.tensor([[0.12, -0.35, 0.04]], device=device)
gt_cam = torch.tensor([[7.2, 0.01, -0.015]], device=device)
gen = torch.Generator().manual_seed(seed)
n_exp = min(flame.n_exp, 10)
gt_exp = (0.9 * torch.randn(1, n_exp, generator=gen)).to(device)
gt = flame(expression=gt_exp, global_pose=gt_pose)

scale, shift = torch.tensor([0.8, 1, 1]), torch.tensor([0, 0.03, 0.02])
cameras = {"(s, tx, ty)": gt_cam,
           "smaller s": gt_cam * scale.to(device),
           "tx, ty > 0: right and up": gt_cam + shift.to(device)}
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
for ax, (title, cam) in zip(axes, cameras.items()):
    r = render_mesh(gt.vertices, faces, cam, size, face_region)
    ax.imshow(to_numpy(r.image[0].permute(1, 2, 0)))
    if gt.landmarks68 is not None:
        pixels = project_points(gt.landmarks68, cam, size).pixels[0]
        plot_landmarks_2d(ax, pixels, color="C1", s=4)
    ax.set_title(title)
    ax.axis("off")
plt.tight_layout()

# %%
# The formula, checked against the library for one landmark-sized point set.
pts = gt.vertices[:, ::500]
p = project_points(pts, gt_cam, size)
s, tx, ty = gt_cam[0]
u = (s * (pts[..., 0] + tx) + 1) * size / 2
v = (1 - s * (pts[..., 1] + ty)) * size / 2
assert torch.allclose(p.pixels, torch.stack([u, v], -1), atol=1e-4)
assert torch.allclose(p.normalised, p.pixels / (size / 2) - 1, atol=1e-6)

# %% [markdown]
# ## Rasterisation
#
# With the mesh in pixel space, rasterisation answers one question per pixel: *which triangle is
# nearest along the viewing ray through the pixel centre?* For a triangle $(v_0, v_1, v_2)$ and a
# point $p$, the barycentric coordinates are ratios of signed areas,
#
# $$w_0 = \frac{(v_1 - p) \times (v_2 - p)}{(v_1 - v_0) \times (v_2 - v_0)}, \quad \text{and cyclically},$$
#
# $p$ is inside when all three are non-negative, and its depth is $\sum_k w_k d_k$ (exact for an
# orthographic camera). The brute force below does exactly that for every pixel and every
# triangle, row by row, and keeps the nearest; zero-area triangles cover nothing, and equal depths
# go to the lowest face index.


# %%
def rasterize_brute_force(verts, faces, size):
    """verts (V, 3) in pixel space -> (size, size) index of the visible face,
    -1 = background."""
    tri = verts[faces]  # (F, 3, 3)
    rows = []
    for i in range(size):
        centres = [torch.arange(size) + 0.5, torch.full((size,), i + 0.5)]
        p = torch.stack(centres, -1).to(verts)
        # vertices relative to each pixel centre (W, F, 3, 2)
        d = tri[None, :, :, :2] - p[:, None, None, :]
        a, b = d.roll(-1, 2), d.roll(-2, 2)  # v_{k+1} - p and v_{k+2} - p for each k
        cross = a[..., 0] * b[..., 1] - b[..., 0] * a[..., 1]
        area = cross.sum(-1, keepdim=True)
        bary = cross / area
        inside = (bary >= 0).all(-1) & (area[..., 0] != 0)
        depth = torch.where(inside, (bary * tri[None, :, :, 2]).sum(-1), torch.inf)
        zmin, face = depth.min(1)  # the first minimum: lowest face index on ties
        rows.append(torch.where(zmin.isfinite(), face, -1))
    return torch.stack(rows)


small_size = 40
screen = to_pixel_space(gt.vertices, gt_cam, small_size)
t0 = time.perf_counter()
mine = rasterize_brute_force(screen[0], faces, small_size)
t1 = time.perf_counter()
frags = rasterize(screen, faces, small_size)
t2 = time.perf_counter()
print(f"brute force {1e3 * (t1 - t0):.0f} ms, library {1e3 * (t2 - t1):.1f} ms "
      f"at {small_size} px")
assert torch.equal(mine, frags.pix_to_face[0])

# %% [markdown]
# The brute force tests every triangle at every pixel: $O(HWF)$, hopeless at 224 px for a batch.
# `tempsmirk.render.rasterize` gets the same answer another way:
#
# - **Bounding boxes.** Each triangle tests only the pixel centres inside its (clipped) bounding
#   box. FLAME's triangles are a few pixels wide at 224 px, so most cost a handful of tests.
#   Triangles are grouped by box size rounded up to powers of two, so that a whole group tests the
#   same small grid of offsets with broadcasting, and groups are cut into chunks, which bounds
#   memory even for a triangle that covers the whole image.
# - **One z-test for all.** Each candidate inside its triangle packs `(depth, face index)` into one
#   64-bit integer, and `scatter_reduce("amin")` keeps the smallest per pixel: nearest depth first,
#   then lowest face index, deterministic whatever the chunking.
# - **Gradients.** Which triangle wins is a discrete choice and has no gradient. The barycentrics
#   of the winner are then recomputed at the pixel centre *with* autograd, so anything interpolated
#   with them (normals, colours, depth) is differentiable with respect to the vertices — what
#   pytorch3d gives with `blur_radius=0`.
#
# The tests compare it with a brute force like the one above on random scenes full of slivers,
# overlaps and degenerate triangles, and check the gradients with `gradcheck`.

# %%
p2f = to_numpy(frags.pix_to_face[0])
palette = np.random.default_rng(0).random((len(faces) + 1, 3))
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
axes[0].imshow(np.where(p2f[..., None] >= 0, palette[p2f], 0))
axes[0].set_title("pix_to_face (one colour per triangle)")
axes[1].imshow(to_numpy(frags.bary[0]))
axes[1].set_title("barycentrics as RGB")
zb = to_numpy(frags.zbuf[0])
axes[2].imshow(np.where(np.isfinite(zb), zb, np.nan), cmap="viridis")
axes[2].set_title("depth (smaller = closer)")
for ax in axes:
    ax.axis("off")
plt.tight_layout()

# %% [markdown]
# ## Shading
#
# SMIRK shades with a grey albedo $a = 180/255$, per-pixel normals (the vertex normals,
# interpolated with the barycentrics and renormalised) and five directional lights
# $l_k \in \{(\pm1, \pm1, 1)/\sqrt3,\ (0, 0, 1)\}$ of intensity 1.7:
#
# $$I(p) = a \cdot \frac{1}{5} \sum_{k=1}^{5} 1.7\,\mathrm{clamp}(n(p) \cdot l_k,\ 0,\ 1).$$
#
# Normals and lights live in the FLAME frame, so $(0, 0, 1)$ shines from the camera. By default
# only the face region is drawn (the rest neither draws nor hides anything).

# %%
r = render_mesh(gt.vertices, faces, gt_cam, size, face_region)
n = r.normals[0].permute(1, 2, 0)  # (H, W, 3)
covered = r.mask[0, 0] > 0
lights = smirk_light_directions().to(n)  # (5, 3)
by_hand = SMIRK_ALBEDO * 1.7 * (n @ lights.T).clamp(0, 1).mean(-1)
assert torch.allclose(r.image[0, 0][covered], by_hand[covered], atol=1e-6)
assert torch.allclose(directional_shading(n)[covered] * SMIRK_ALBEDO, by_hand[covered])

whole = render_mesh(gt.vertices, faces, gt_cam, size)
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
axes[0].imshow(to_numpy((n + 1) / 2 * covered[..., None]))
axes[0].set_title("normals as RGB")
axes[1].imshow(to_numpy(r.image[0].permute(1, 2, 0)))
axes[1].set_title("SMIRK rendering (face region)")
axes[2].imshow(to_numpy(whole.image[0].permute(1, 2, 0)))
axes[2].set_title("whole head")
for ax in axes:
    ax.axis("off")
plt.tight_layout()

# %% [markdown]
# ## Analysis by synthesis
#
# A differentiable renderer turns "which parameters explain this image?" into an optimisation
# problem. We render the head above (its pose, camera and expression are the ground truth), then
# start from a neutral, frontal head with a wrong camera and descend the gradient of
#
# $$L = \lambda_{\text{lmk}}\,\big\|\pi(\text{landmarks}) - \pi(\text{landmarks}^*)\big\|^2
#       + \lambda_{\text{pho}}\,\big|I - I^*\big|_1$$
#
# through FLAME and the renderer. Landmarks (in SMIRK's normalised frame) pull the head into place
# from far away; the photometric term refines what landmarks cannot see. This is what SMIRK's
# encoder learns to do in one forward pass; here we do it by iteration for a single image.

# %%
steps = 200 if small else 600
target = r.image.detach()
has_lmk = gt.landmarks68 is not None


def keypoints(out):
    return out.landmarks68 if has_lmk else out.vertices[:, ::50]


target_lmk = project_points(keypoints(gt), gt_cam, size).normalised.detach()

pose = torch.zeros(1, 3, device=device, requires_grad=True)
exp = torch.zeros(1, n_exp, device=device, requires_grad=True)
cam = torch.tensor([[6.0, 0.0, 0.0]], device=device, requires_grad=True)
opt = torch.optim.Adam([{"params": [pose, exp], "lr": 0.05},
                        {"params": [cam], "lr": 0.05}])
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=1e-3)


def render_params(pose, exp, cam):
    out = flame(expression=exp, global_pose=pose)
    return out, render_mesh(out.vertices, faces, cam, size, face_region)


with torch.no_grad():
    start = render_params(pose, exp, cam)[1].image
start_cam = cam.detach().clone()
units = {"landmark loss": "half image widths²", "photometric loss": "intensity, 0–1",
         "pose error": "rad", "expression error": "coefficients",
         "face vertex error": "mm"}
history = {name: [] for name in units}
if "face" in flame.masks:
    region_vertices = torch.as_tensor(flame.masks["face"], device=device)
else:
    region_vertices = torch.arange(flame.n_vertices, device=device)
t0 = time.perf_counter()
for _ in range(steps):
    out, rend = render_params(pose, exp, cam)
    projected = project_points(keypoints(out), cam, size).normalised
    l_lmk = (projected - target_lmk).square().sum(-1).mean()
    l_pho = (rend.image - target).abs().mean()
    loss = 100 * l_lmk + 10 * l_pho
    with torch.no_grad():  # errors of the parameters this loss was computed with
        history["landmark loss"].append(l_lmk.item())
        history["photometric loss"].append(l_pho.item())
        history["pose error"].append((pose - gt_pose).norm().item())
        history["expression error"].append((exp - gt_exp).norm().item())
        gap = (out.vertices - gt.vertices)[:, region_vertices].norm(dim=-1).mean()
        history["face vertex error"].append(1e3 * gap.item())
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
print(f"{steps} steps in {time.perf_counter() - t0:.1f} s")

# %%
after = f"after {steps} steps"
camera = {"start": start_cam[0], after: cam[0].detach(), "truth": gt_cam[0]}
display(table({k: c.tolist() for k, c in camera.items()}, ["s", "tx", "ty"], digits=4,
              index="camera"))
display(table({"start": {k: v[0] for k, v in history.items()},
               after: {k: v[-1] for k, v in history.items()}}, units=units))

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for key in ("landmark loss", "photometric loss"):
    axes[0].semilogy(history[key], label=key)
axes[0].set_title("losses")
for key in ("pose error", "expression error", "face vertex error"):
    axes[1].semilogy(history[key], label=f"{key} ({units[key]})")
axes[1].set_title("distance to the ground truth")
for ax in axes:
    ax.set_xlabel("step")
    ax.legend()
plt.tight_layout()

with torch.no_grad():
    final = render_params(pose, exp, cam)[1].image
fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
for ax, img, title in zip(axes, [start, final, target, (final - target).abs() * 4],
                          ["start", "after", "target", "|after - target| x 4"]):
    ax.imshow(to_numpy(img[0].permute(1, 2, 0).clamp(0, 1)))
    ax.set_title(title)
    ax.axis("off")
plt.tight_layout()

# %%
# Analysis by synthesis should land close to the truth
# (loose bounds: a regression test, not a benchmark).
assert history["pose error"][-1] < 0.1 * history["pose error"][0]
assert history["photometric loss"][-1] < 0.2 * history["photometric loss"][0]
assert history["face vertex error"][-1] < 0.3 * history["face vertex error"][0]

# %% [markdown]
# Pose and camera come back first: they move many pixels and all landmarks at once. The face
# surface then converges too, yet the expression *coefficients* stay far from the truth: some
# combinations of expression components mostly move vertices along the viewing direction or
# nearly cancel each other, and an orthographic grey rendering cannot tell them apart. A good fit
# in the image is not a unique answer in parameter space. SMIRK's answer to that ambiguity is to
# make expression matter *visibly*: its neural generator and augmented cycle (chapter 3) reward
# expressions that reproduce the photograph, and its regularisers keep the rest near zero.
