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
# rendering of the predicted mesh plus a heavily *masked* copy of the image, so the only way to
# get the mouth and eyes right is for the encoder to get the geometry right. An **augmented
# cycle** then edits the expression, lets the generator draw the edited face, and asks the
# encoder to read the edit back.
#
# This chapter builds every piece on synthetic faces rendered from the built-in head (known
# ground truth, nothing licensed), dissects one training step and runs a short training.
# Give `flame_path` to use real FLAME files and `checkpoint` to look at a trained SMIRK.

# %% tags=["parameters"]
profile = "small"
device = "cpu"
seed = 0
flame_path = None  # FLAME model file or asset folder (None: the built-in head)
checkpoint = None  # SMIRK checkpoint (official layout or ours), None means untrained networks

# %%
import csv
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from tempsmirk import seed_everything
from tempsmirk.config import load_config
from tempsmirk.data import SyntheticConfig, SyntheticFaces, collate_faces
from tempsmirk.render import project_points, render_mesh
from tempsmirk.smirk import (AUGMENTATIONS, CycleConfig, MaskingConfig, SmirkEncoder, SmirkGenerator,
                             augment_params, builtin_templates, face_sampling_weights,
                             load_smirk_checkpoint, mask_face, paint_samples)
from tempsmirk.training import Trainer, load_flame, smirk_step
from tempsmirk.viz import plot_landmarks_2d, show_images

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
print("batch:", tuple(batch.image.shape), "ground-truth expression", tuple(batch.params.expression.shape))

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
for name in ("pose", "shape", "expression"):
    branch = encoder.branch(name)
    n = sum(p.numel() for p in branch.parameters())
    print(f"{name:>10} branch: {type(branch.encoder).__name__} features, {n / 1e6:.2f} M parameters")
with torch.no_grad():
    pred = encoder(batch.image.to(device))
for field in ("global_pose", "cam", "shape", "expression", "eyelids", "jaw_pose"):
    print(f"{field:>12}: {tuple(getattr(pred, field).shape)}")
if checkpoint is None:
    assert torch.all(pred.cam[:, 0] == 7.0) and torch.all(pred.shape == 0)

# %% [markdown]
# ## The generator
#
# A U-Net (widths 32–64–128–256, a 512-channel bottleneck with five residual blocks) takes six
# channels — the rendering and the masked image — and returns an RGB image through a sigmoid.

# %%
n = sum(p.numel() for p in generator.parameters())
with torch.no_grad():
    y = generator(torch.rand(2, 6, size, size, device=device))
print(f"generator: {n / 1e6:.1f} M parameters, (2, 6, {size}, {size}) -> {tuple(y.shape)}, "
      f"values in [{y.min():.2f}, {y.max():.2f}]")

# %% [markdown]
# ## What the generator may see: the mask and the sampled pixels
#
# We render the **ground-truth** mesh of four faces (as a perfect encoder would predict it) and
# build the generator's input with `mask_face`: the convex hull of the landmarks, dilated by
# 10 px at 224 (scaled here), minus the rendered face; about 1 % of the pixels sampled on visible
# face triangles (weighted by area, lips and eyes three and two times denser), their colours
# jittered; and random 11 × 11 patches dropped.

# %%
gt = batch.params.to(device)
out = flame(shape=gt.shape, expression=gt.expression, global_pose=gt.global_pose,
            jaw_pose=gt.jaw_pose, eyelids=gt.eyelids)
face = flame.region_faces("face")
rendering = render_mesh(out.vertices, flame.faces, gt.cam, size, face_mask=face)
hull_points = torch.cat([batch.landmarks68, batch.landmarks_mp], 1).to(device)
masked = mask_face(batch.image.to(device), hull_points, rendering, flame.faces,
                   face_sampling_weights(flame), MaskingConfig(), gen)
i = 0
show_images([batch.image[i], rendering.image[i], masked.hull[i], masked.keep[i], masked.painted[i], masked.image[i]],
     ["input", "rendering (face)", "dilated hull", "hull − face − patches", "sampled pixels", "generator input"]);
print(f"sampled {masked.samples.face.shape[1]} points per image, "
      f"{masked.samples.valid.float().mean():.0%} visible")
# Nothing of the rendered face leaks through except the sampled points.
assert (masked.keep * rendering.mask).sum() == 0

# %% [markdown]
# ## The augmented cycle
#
# From (detached) parameters, each quarter of the batch gets one edit of the expression:
# a random perturbation, another element's expression (a permutation across the batch), a
# template, or zero; jaw and eyelids are jittered for all. Without a user template file the
# template bank is built from the head's own expression components (±2 along each of the
# first ten, plus ten two-component mixes). The sampled pixels follow the edited mesh through
# their triangles and barycentrics; the generator draws the edited face, and the encoder must
# read back the edit (`cycle_loss` = MSE(ψ) + 10·MSE(jaw) + 10·MSE(eyelids)).

# %%
aug = augment_params(gt, builtin_templates(flame.n_exp).to(device), CycleConfig(), gen)
a = aug.params
out_aug = flame(shape=a.shape, expression=a.expression, global_pose=a.global_pose,
                jaw_pose=a.jaw_pose, eyelids=a.eyelids)
rendering_aug = render_mesh(out_aug.vertices, flame.faces, a.cam, size, face_mask=face)
_, moved = paint_samples(masked.samples, rendering_aug.screen_vertices, flame.faces, size)
images = list(rendering.image) + list(rendering_aug.image) + list(moved)
titles = [f"original {k}" for k in range(4)] + [AUGMENTATIONS[k] for k in aug.kind.tolist()] + ["moved samples"] * 4
show_images(images, titles, rows=3);

# %% [markdown]
# ## One training step, dissected
#
# `smirk_step` computes every loss of a step: landmarks (the 17 jaw-contour points of the 68
# and the 105 MediaPipe points), the regularisers, the L1 reconstruction (and VGG perceptual,
# off without local VGG weights) and the cycle. The `Trainer` alternates who learns from them:
# on even steps the encoder is frozen and the generator steps; on odd steps the reverse.
# Gradients still flow *through* the frozen network — that is how the cycle loss trains the
# generator: its image must be readable by the encoder.

# %%
run_dir = Path(tempfile.mkdtemp(prefix="tempsmirk_ch3_"))  # runs never go into the source tree
steps = 40 if profile == "small" else 2000
cfg = load_config(None, [f"run.dir={run_dir}", f"train.steps={steps}", "train.batch_size=8",
                         f"data.synthetic.image_size={size}", "data.synthetic.n_items=4096",
                         f"data.synthetic.seed={seed}", f"run.seed={seed}", f"train.device={device}",
                         "loss.perceptual=0", "loss.shape_reg=0.01", "train.log_every=2",
                         f"train.image_every={steps}", f"train.checkpoint_every={steps}"]
                  + ([f"model.flame_path={flame_path}"] if flame_path else [])
                  + ([f"model.init_checkpoint={checkpoint}"] if checkpoint else []))
trainer = Trainer(cfg, progress=False)
first = collate_faces([trainer.dataset[i] for i in range(8)])
w = trainer.weights
for trains_encoder in (False, True):
    trainer.set_trainable(trains_encoder)
    res = smirk_step(trainer.encoder, trainer.generator, trainer.flame, first, w, cfg.loss.masking,
                     cfg.loss.cycle_path, trainer.face_mask, trainer.face_weights, trainer.templates,
                     torch.Generator().manual_seed(seed))
    res.losses.total.backward()
    g_enc = sum(p.grad.norm() ** 2 for p in trainer.encoder.parameters() if p.grad is not None) ** 0.5
    g_gen = sum(p.grad.norm() ** 2 for p in trainer.generator.parameters() if p.grad is not None) ** 0.5
    print(f"{'odd' if trains_encoder else 'even'} step: encoder grad norm {float(g_enc):.3g}, "
          f"generator grad norm {float(g_gen):.3g}")
    trainer.encoder.zero_grad(set_to_none=True)
    trainer.generator.zero_grad(set_to_none=True)
terms = res.losses.as_floats()
print(f"{'loss':<16}{'value':>10}{'weight':>9}{'weighted':>10}")
for name, value in terms.items():
    if name != "total":
        print(f"{name:<16}{value:>10.4f}{getattr(w, name):>9g}{value * getattr(w, name):>10.4f}")
print(f"{'total':<16}{terms['total']:>29.4f}")
show_images([first.image[0], res.rendering[0], res.masked.image[0], res.generated[0],
      res.cycle.rendering[0], res.cycle.generated[0]],
     ["input", "rendering", "masked input", "reconstruction", "cycle: edited", "cycle: generated"]);

# %% [markdown]
# ## A short training run
#
# The trainer writes its resolved config, a CSV log, image grids and an atomically written
# checkpoint into the run folder; `python -m tempsmirk train --config FILE` does the same from
# the command line (`--resume` continues a run exactly). The small profile trains for
# 40 steps at 64 px — enough to see the machinery run and the losses move, far from a trained
# model (`tests/benchmarks/smirk_learns.py` trains longer and measures parameter errors against
# the ground truth).

# %%
trainer.train()
with open(run_dir / "log.csv") as fh:
    log = list(csv.DictReader(fh))
step = np.array([int(r["step"]) for r in log])
fig, axes = plt.subplots(1, 3, figsize=(11, 3))
for ax, keys in zip(axes, (("landmarks_fan", "landmarks_mp"), ("reconstruction", "cycle"), ("total",))):
    for k in keys:
        ax.plot(step, [float(r[k]) for r in log], label=k)
    ax.set_xlabel("step")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
plt.tight_layout()
print("run folder:", sorted(p.name for p in run_dir.iterdir()))

# %%
grid = plt.imread(run_dir / "images" / f"step_{steps:07d}.png")
plt.figure(figsize=(8, 5.5))
plt.imshow(grid)
plt.axis("off")
plt.title("input | rendering | masked input | reconstruction | cycle edit | cycle output", fontsize=9);
