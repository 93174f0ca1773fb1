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
# # SMIRK
#
# SMIRK reads FLAME parameters off a single face image. Three small CNNs predict pose and
# camera, identity shape, and expression (with jaw and eyelids). What makes it learn expressions
# well is its **neural rendering loss**: a generator must redraw the input from a grey
# rendering of the predicted mesh plus a copy of the image in which the face is *hidden* (only a
# few sampled face pixels remain), so the only way to get the mouth and eyes right is for the
# encoder to get the geometry right. An **augmented cycle** then edits the expression, lets the
# generator draw the edited face, and asks the encoder to read the edit back.
#
# This chapter builds every piece on synthetic faces rendered from the built-in head (known
# ground truth, nothing licensed), dissects one training iteration — its two passes — and runs
# a short training, then pretrains the encoder on the ground truth (the book's demo checkpoint)
# and measures what it reads from an image against the trivial answer, the average face.
# Give `flame_path` to use real FLAME files and `checkpoint` to look at a trained SMIRK.

# %% tags=["parameters"]
profile = "small"
device = "cpu"
seed = 0
flame_path = None  # FLAME model file or asset folder, None: the built-in head
checkpoint = None  # SMIRK checkpoint (official or ours), None: untrained networks

# %%
import csv
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from tempsmirk import seed_everything
from tempsmirk.config import load_config
from tempsmirk.data import SyntheticConfig, SyntheticFaces, collate_faces
from tempsmirk.flame import load_flame
from tempsmirk.render import render_mesh
from tempsmirk.smirk import (AUGMENTATIONS, MaskingConfig, SmirkEncoder, SmirkGenerator,
                             augment_params, builtin_templates,
                             face_hull_points, face_sampling_weights,
                             load_smirk_checkpoint, mask_face, point_pixels,
                             sample_points, transfer_pixels)
from tempsmirk.training import (Trainer, cycle_path, demo_checkpoint, demo_config,
                                first_path)
from tempsmirk.training.step import frozen_eval
from tempsmirk.training.pretrain import (errors_table, held_out_faces, mean_prediction,
                                         parameter_errors, predict, read_learning_curve)
from tempsmirk.viz import plot_landmarks_2d, show_images, table

gen = seed_everything(seed)
torch.set_num_threads(2)
plt.rcParams["figure.dpi"] = 72
flame = load_flame(flame_path, n_shape=300, n_exp=50).to(device)
size = 64 if profile == "small" else 224
print(f"{flame.source}: {flame.n_vertices} vertices; images of {size} px")


# %% [markdown]
# ## Synthetic faces with ground truth
#
# `SyntheticFaces` renders the head whole (eyes, scalp, neck) with random identity,
# expression, head pose, jaw, eyelids and camera, a per-vertex albedo (skin tone, smooth
# variation, lips, hair, irises), random lights and a smooth random background. Each item
# carries its ground-truth parameters and the projected 68 iBUG and 105 MediaPipe landmarks in
# normalised image coordinates — the same fields real data will fill from detectors.

# %%
data = SyntheticFaces(flame, SyntheticConfig(image_size=size, n_items=1000, seed=seed))
samples = [data[i] for i in range(6)]
axes = show_images([s.image for s in samples], [f"item {s.index}" for s in samples])
for ax, s in zip(axes.flat, samples):
    plot_landmarks_2d(ax, (s.landmarks68 + 1) * size / 2, s=3, color="C3")
    ax.scatter(*((s.landmarks_mp + 1) * size / 2).T, s=1, color="C0")
batch = collate_faces(samples[:4])
print("batch:", tuple(batch.image.shape),
      "ground-truth expression", tuple(batch.params.expression.shape))

# %% [markdown]
# ## The three encoders
#
# Each branch is a timm MobileNetV3 (random init here; `pretrained=False` always) whose last
# feature map is averaged and fed to one linear layer. The pose branch (the small MobileNet)
# gives the head rotation and the orthographic camera `(s, tx, ty)`; its head starts near zero
# with the scale pinned to 7, which frames the FLAME head. The shape head starts at exactly zero
# (the mean identity); the expression head gives the expression coefficients, two eyelid values
# clamped to [0, 1] and the jaw (opening ≥ 0, sideways within ±0.2 rad).

# %%
if checkpoint is None:
    torch.manual_seed(seed)
    encoder, generator = SmirkEncoder(), SmirkGenerator()
else:
    encoder, generator = load_smirk_checkpoint(checkpoint)
    generator = generator or SmirkGenerator()
encoder, generator = encoder.to(device).eval(), generator.to(device).eval()
branches = {}
for name in ("pose", "shape", "expression"):
    branch = encoder.branch(name)
    n = sum(p.numel() for p in branch.parameters())
    branches[name] = [type(branch.encoder).__name__, n / 1e6]
with torch.no_grad():
    pred = encoder(batch.image.to(device))
shapes = {field: [str(tuple(value.shape))] for field, value in pred.as_dict().items()}
if checkpoint is None:
    assert torch.all(pred.cam[:, 0] == 7.0) and torch.all(pred.shape == 0)
display(table(branches, ["features", "parameters"], units={"parameters": "M"},
              index="branch"),
        table(shapes, ["shape"], index="encoder output"))

# %% [markdown]
# ## The generator
#
# A U-Net (widths 32–64–128–256, a 512-channel bottleneck with five residual blocks) takes six
# channels — the rendering and the masked image — and returns an RGB image through a sigmoid.

# %%
n = sum(p.numel() for p in generator.parameters())
with torch.no_grad():
    y = generator(torch.rand(2, 6, size, size, device=device))
print(f"generator: {n / 1e6:.1f} M parameters, "
      f"(2, 6, {size}, {size}) -> {tuple(y.shape)}, "
      f"values in [{y.min():.2f}, {y.max():.2f}]")

# %% [markdown]
# ## What the generator may see: the face hidden, a few points of it shown
#
# We render the **ground-truth** mesh of four faces (as a perfect encoder would predict it) and
# build the generator's input with `mask_face`, as SMIRK's code does it. The **face is hidden**:
# everything inside the convex hull of the face's landmarks — MediaPipe's 478 points on real
# data, forehead included — dilated by a 21 × 21 square at 224 px, and everything the rendering
# covers. Background, hair and neck stay visible. About 1 % of the pixels are then shown again:
# points drawn on the mesh's camera-facing triangles (density ∝ screen area × region weight:
# eyes, forehead and the clean face 1, lips and nose ½), their colours jittered ×N(1, 0.05); and
# dropout patches (11 × 11 around 1 % of the pixels) remove some of those points — never the
# background. Synthetic faces have only the 68 + 105 landmarks, so `face_hull_points` adds the
# forehead by mirroring the jaw contour over it (fitted to MediaPipe's own hull).

# %%
gt = batch.params.to(device)
out = flame.forward_params(gt)
face = flame.region_faces("face")
rendering = render_mesh(out.vertices, flame.faces, gt.cam, size, face_mask=face)
hull_points = face_hull_points(batch.landmarks68, batch.landmarks_mp).to(device)
masked = mask_face(batch.image.to(device), hull_points, rendering, flame.faces,
                   face_sampling_weights(flame), MaskingConfig(), gen)
i = 0
show_images([batch.image[i], rendering.image[i], masked.hidden[i], masked.keep[i],
             masked.painted[i], masked.image[i]],
            ["input", "rendering (face)", "hidden: dilated hull", "visible",
             "sampled points", "generator input"]);
print(f"visible {masked.keep.mean():.0%} of the image; "
      f"{int(masked.painted.sum()) // len(masked.image)} face points per image")
# Nothing of the face shows but the sampled points; the background shows as it is.
face_px = (rendering.mask + masked.hidden > 0) & (masked.painted == 0)
assert (masked.image * face_px).sum() == 0
assert torch.equal(masked.image * masked.keep, batch.image.to(device) * masked.keep)

# %% [markdown]
# ## The augmented cycle
#
# From (detached) parameters, the batch is split at random into four groups, and each group's
# expression gets one edit: a perturbation of half its coefficients (std U(1, 3), clamped to
# ±4), the expression of another member of the group scaled ×U(0.25, 1.5), a template scaled
# the same way, or zero; every edit adds a little noise. Jaw and eyelids are jittered for all
# (the zero group gets a closed jaw and random eyelids). Without a user template folder (SMIRK's
# FaMoS classes) the template bank is built from the head's own expression components. **Fresh**
# points are sampled on the original mesh and painted where they land on the edited one; the
# face is hidden again, the generator draws the edited face, and the encoder must read back the
# edit (`cycle_loss` = MSE(ψ) + 10·MSE(jaw) + 10·MSE(eyelids)).

# %%
aug = augment_params(gt, builtin_templates(flame.n_exp).to(device), gen)
a = aug.params
out_aug = flame.forward_params(a)
rendering_aug = render_mesh(out_aug.vertices, flame.faces, a.cam, size, face_mask=face)
points = sample_points(rendering.screen_vertices, flame.faces,
                       face_sampling_weights(flame), 200, size, gen)
src = point_pixels(points, rendering.screen_vertices, flame.faces, size)
dst = point_pixels(points, rendering_aug.screen_vertices, flame.faces, size)
moved = transfer_pixels(batch.image.to(device), src, dst)
images = list(rendering.image) + list(rendering_aug.image) + list(moved)
titles = ([f"original {k}" for k in range(4)]
          + [AUGMENTATIONS[k] for k in aug.kind.tolist()] + ["moved points"] * 4)
show_images(images, titles, rows=3);

# %% [markdown]
# ## One iteration: two passes, two updates
#
# SMIRK's training iteration has two passes with a backward and optimiser steps each. **Pass 1**
# (`first_path`): landmarks (the 17 jaw-contour points of the 68 and the 105 MediaPipe points),
# regularisers, and the generator's L1 reconstruction (plus VGG perceptual and the
# emotion-feature loss, off here without their weights files). Its gradient reaches **both**
# networks, and both optimisers step.

# %%
run_dir = Path(tempfile.mkdtemp(prefix="tempsmirk_ch3_"))  # never in the source tree
steps = 40 if profile == "small" else 2000
cfg = load_config(None, [f"run.dir={run_dir}", f"train.steps={steps}",
                         "train.batch_size=8", f"data.synthetic.image_size={size}",
                         "data.synthetic.n_items=4096", f"data.synthetic.seed={seed}",
                         f"run.seed={seed}", f"train.device={device}",
                         "loss.weights.perceptual=0",
                         "loss.weights.shape_reg=0.01",
                         "train.log_every=2",
                         f"train.image_every={steps}",
                         f"train.checkpoint_every={steps}"]
                  + ([f"model.flame_path={flame_path}"] if flame_path else [])
                  + ([f"model.init_checkpoint={checkpoint}"] if checkpoint else []))
trainer = Trainer(cfg, progress=False)
first = collate_faces([trainer.dataset[i] for i in range(8)]).to(device)
# What every pass uses and no iteration changes: FLAME, the face mask and sampling
# weights, the templates, the loss weights and masking settings, the loss modules.
t, ctx, rng = trainer, trainer.context, torch.Generator().manual_seed(seed)


def grad_norm(module):
    grads = [p.grad.norm() for p in module.parameters() if p.grad is not None]
    return float(torch.stack(grads).norm()) if grads else 0.0


# %%
res = first_path(t.encoder, t.generator, first, ctx, rng, shape_trains=True)
res.losses.total.backward()
print(f"pass 1: encoder grad norm {grad_norm(t.encoder):.3g}, "
      f"generator grad norm {grad_norm(t.generator):.3g} -> both optimisers step")
terms = res.losses.as_floats()
shown = [name for name in terms if name not in ("total", "cycle")]
weight = {name: getattr(ctx.weights, name) for name in shown}
rows = {name: [terms[name], w, terms[name] * w] for name, w in weight.items()}
rows["total (pass 1)"] = [None, None, terms["total"]]
table(rows, ["value", "weight", "weighted"], index="loss term", digits=4,
      formats={"weight": "g"})

# %% [markdown]
# **Pass 2**, the cycle, has its own backward and step. On even iterations the encoder is
# frozen — no gradient for its weights, and in eval mode — and the generator learns *through*
# it: its image must be readable by the encoder (only this gradient is clipped, to norm 0.1).
# On odd iterations the generator is frozen and in eval mode, its image detached, and the
# encoder learns to read the edit.

# %%
cycles = {}
for even in (True, False):
    t.encoder.zero_grad(set_to_none=True)
    t.generator.zero_grad(set_to_none=True)
    with frozen_eval(t.encoder if even else t.generator):
        cycles[even] = cyc = cycle_path(
            t.encoder, t.generator, first.image, res.params, res.masked.hidden,
            res.screen_vertices, ctx, rng, generator_trains=even)
        cyc.loss.backward()
    print(f"pass 2, {'even' if even else 'odd'} iteration: "
          f"cycle loss {float(cyc.loss.detach()):.4f}, "
          f"encoder grad norm {grad_norm(t.encoder):.3g}, "
          f"generator grad norm {grad_norm(t.generator):.3g}")

# %%
t.encoder.zero_grad(set_to_none=True)
t.generator.zero_grad(set_to_none=True)
cyc = cycles[True]  # the generator in train mode: what it draws while it learns
show_images([first.image[0], res.rendering[0], res.masked.image[0], res.generated[0],
             cyc.rendering[0], cyc.masked[0], cyc.generated[0]],
            ["input", "rendering", "masked input", "reconstruction", "cycle: edited",
             "cycle: masked input", "cycle: generated"]);

# %% [markdown]
# `Trainer.train_step` runs exactly these two passes with the optimiser steps in between, then
# steps one cosine learning-rate schedule per network (SMIRK restarts it every epoch and rebuilds
# the generator's optimiser; the README's list of differences says why we do not).

# %% [markdown]
# ## A short training run
#
# The trainer writes its resolved config, a CSV log, image grids and an atomically written
# checkpoint into the run folder; `python -m tempsmirk train --config FILE` does the same from
# the command line (`--resume` continues a run exactly). The small profile trains for
# 40 iterations at 64 px — enough to see the machinery run and the losses move, far from a trained
# model (`tests/benchmarks/smirk_learns.py` trains longer and measures parameter errors against
# the ground truth).

# %%
trainer.train()
with open(run_dir / "log.csv") as fh:
    log = list(csv.DictReader(fh))
step = np.array([int(r["step"]) for r in log])
fig, axes = plt.subplots(1, 3, figsize=(11, 3))
groups = (("landmarks_fan", "landmarks_mp"), ("reconstruction", "cycle"), ("total",))
for ax, keys in zip(axes, groups):
    for k in keys:
        ax.plot(step, [float(r[k]) for r in log], label=k)
    ax.set_xlabel("iteration")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
plt.tight_layout()
print("run folder:", sorted(p.name for p in run_dir.iterdir()))

# %%
grid = plt.imread(run_dir / "images" / f"step_{steps:07d}.png")
plt.figure(figsize=(8, 5.5))
plt.imshow(grid)
plt.axis("off")
plt.title("input | rendering | masked input | reconstruction | "
          "cycle: edited, masked input, generated", fontsize=9);

# %% [markdown]
# ## Pretraining on the ground truth: the demo checkpoint
#
# Forty steps teach a randomly initialised encoder nothing, and neither do a few hundred: its
# backbones start from scratch (no ImageNet weights can be downloaded here), and the landmark
# and rendering losses reach the parameters only through the renderer. SMIRK does not start
# there either. It first **pretrains** the encoder on direct targets — landmarks, and MICA's
# identity estimates for the shape — and only then switches to the objective above. On
# synthetic faces every parameter is known, so the synthetic counterpart supervises every
# output with its ground truth (`tempsmirk.training.pretrain`). That is how the **demo
# checkpoint** the later chapters start from is trained, once, then cached:
#
# - faces rendered once (rendering costs as much as a training step), 16 per appearance,
#   framed as SMIRK's crop frames a face (the landmarks' box × 1.4), 10 expression components;
# - each output learnt in units of its spread in the data, before the jaw's ReLU and the
#   eyelids' clamp, starting from the mean; an extra pose read-out helps the expression branch
#   find the face; the shape head reads the expression backbone's features.
#
# The run logs held-out figures as it trains — its **learning curve**: pose error relative to
# the dataset-mean predictor (1 = no better than the average pose), and R² of the jaw
# opening, the expression and the eyelids (0 = no better than the average face, 1 = exact).

# %%
# trained on first use (minutes), then read from the cache
demo = demo_checkpoint(profile)
pre = demo_config(profile).pretrain
print(f"{pre.n_items} faces of {demo_config(profile).data.synthetic.image_size} px, "
      f"{pre.steps} steps of {pre.batch_size}")
curve = read_learning_curve(demo.parent / "pretrain" / "log.csv")
fig, ax = plt.subplots(figsize=(6.5, 3.2))
for name in ("pose_ratio", "jaw_r2", "expression_r2", "eyelid_r2"):
    ax.plot(curve.minutes, getattr(curve, name), marker=".", label=name)
ax.axhline(0, color="k", lw=0.6)
ax.set_xlabel("training minutes (this machine)")
ax.legend(fontsize=8)
ax.set_title(f"held-out figures over {curve.step[-1]} pretraining steps", fontsize=9);

# %% [markdown]
# On held-out faces (another data seed), next to the trivial answers: the dataset-mean
# predictor (every face answered with the set's average — zero R² by construction) and a
# freshly initialised encoder.

# %%
held = held_out_faces(demo_config(profile))  # 512 faces, cached beside the training set
demo_encoder, _ = load_smirk_checkpoint(demo, with_generator=False)
encoders = {"untrained": SmirkEncoder(), "demo checkpoint": demo_encoder}
rows = {"dataset mean": parameter_errors(mean_prediction(held.params), held.params)}
for name, enc in encoders.items():
    predicted = predict(enc, held.float_images, len(held))
    rows[name] = parameter_errors(predicted, held.params)
display(Markdown(errors_table(rows)))
