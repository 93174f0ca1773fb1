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
# # Temporal losses
#
# SMIRK reads every frame on its own. Run it over a video and each frame's estimate carries its
# own small error; from one frame to the next those errors do not agree, and the mesh
# **flickers** — the mouth trembles, the head shivers, and the identity (the face shape, which
# cannot change within a video) drifts. The paper's contribution is two losses on the predicted
# FLAME parameters of short clips that penalise exactly this, added to SMIRK's training objective
# without touching the networks.
#
# This chapter defines both losses, writes them from scratch and checks them against
# `tempsmirk.temporal`, defines how we *measure* flicker (jitter metrics), and then plays with
# them on parameter tracks whose true motion we know: how much smoothing removes noise, and
# where more smoothing starts to erase real motion. Training with these losses is chapter 5.

# %% tags=["parameters"]
profile = "small"
device = "cpu"
seed = 0
# FLAME generic_model.pkl with its landmark embeddings beside it
# (None: the built-in head)
flame_path = None

# %%
import math
from dataclasses import fields, replace

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from tempsmirk import seed_everything
from tempsmirk.data import SyntheticConfig, smooth_trajectory
from tempsmirk.data.synthetic import sample_params
from tempsmirk.flame import FlameParams, load_flame
from tempsmirk.reconstruct.compare import MetricsTable
from tempsmirk.temporal import (TemporalWeights, acceleration, clip_params, clips,
                                denoise_tracks, flatten_clips, identity_loss,
                                identity_variance, jerk, jitter_report,
                                pose_normalised_vertices, smoothness_loss,
                                temporal_loss)
from tempsmirk.viz import (plot_tracks, plot_tradeoff, smoothing_explorer, table,
                           to_numpy)

gen = seed_everything(seed)
if profile == "small":
    # tiny tensors: more threads only add synchronisation on a busy machine
    torch.set_num_threads(1)
plt.rcParams["figure.dpi"] = 72
flame = load_flame(flame_path, n_shape=300, n_exp=50).to(device)
n_clips = 2 if profile == "small" else 8
T = 32  # the paper's clip length
print(f"{flame.source}; {n_clips} clips of {T} frames")

# %% [markdown]
# ## The two losses
#
# A training batch holds $B$ clips of $T$ consecutive frames of one subject each. For a
# time-varying parameter group $\mathbf p$ — expression $\psi$, global head pose, jaw pose or
# eyelids — the **smoothness loss** (eq. 3) is the mean L1 size of a frame-to-frame step:
#
# $$\mathcal{L}_{smooth} = \frac{1}{T-1} \sum_{t=1}^{T-1} \|\mathbf{p}_{t+1} - \mathbf{p}_t\|_1 .$$
#
# The shape $\beta$ describes who the person is and should not move at all within a clip. The
# **identity loss** (eq. 4) is its spread around the clip mean $\bar\beta$:
#
# $$\mathcal{L}_{id} = \frac{1}{T} \sum_{t=1}^{T} \|\beta_t - \bar{\beta}\|_2^2,
# \qquad \bar\beta = \frac1T \sum_{t=1}^T \beta_t .$$
#
# What is summed and what is averaged: as printed, the norms sum over the parameter dimensions
# $D$ (or $S$); the sums over time are averaged over the $T-1$ steps (or $T$ frames); then the
# result is averaged over the $B$ clips. (The code that trained the paper's models averages over
# the dimensions instead of summing — the next section; the library follows that code by
# default.) Differences and means are taken **within a clip, never across clips**: the last
# frame of one clip and the first frame of the next belong to different videos (often
# different people), so a difference between them is not motion, and a mean over them is not
# anybody's identity. The losses therefore take tensors shaped `(B, T, D)`. The encoder sees
# single images, so the trainer flattens the clips to `(B·T, ...)` frames, runs the encoder,
# and regroups its output with `clips` (`clip_params` for a whole `FlameParams`).
#
# From scratch, one clip at a time, exactly as printed (`reduction="sum"`):

# %%
def smooth_scratch(p):  # p (B, T, D)
    steps = [[(c[t + 1] - c[t]).abs().sum() for t in range(len(c) - 1)] for c in p]
    return torch.stack([torch.stack(s).mean() for s in steps]).mean()


def identity_scratch(beta):  # beta (B, T, S)
    spread = [[(c[t] - c.mean(0)).pow(2).sum() for t in range(len(c))] for c in beta]
    return torch.stack([torch.stack(s).mean() for s in spread]).mean()


p = torch.randn(3, 7, 5, generator=gen)
assert torch.allclose(smooth_scratch(p), smoothness_loss(p, reduction="sum"))
assert torch.allclose(identity_scratch(p), identity_loss(p, reduction="sum"))

# Two clips, each perfectly still, at different values: no loss at all ...
still = torch.stack([torch.full((T, 4), 1.0), torch.full((T, 4), -3.0)])
# ... but flattened and regrouped as one long clip, the boundary looks like a jump.
one = clips(still.reshape(2 * T, 4), 2 * T)
cases = {"two still clips": still, "the same frames, one clip": one}
display(table({name: [smoothness_loss(x).item(), identity_loss(x).item()]
               for name, x in cases.items()}, ["L_smooth", "L_id"], index="frames"))

# %% [markdown]
# ## Mean or sum over the dimensions
#
# The paper's Table 2 was produced by a fork of SMIRK's code (repository
# `steveliu2000/3dcv2025_final`). Its temporal terms are element **means**: for one clip of
# $T$ frames, `(p[1:] - p[:-1]).abs().mean()` — the mean over the $T-1$ steps *and* the $D$
# dimensions — and `((β - β̄)**2).mean()` for the identity. The printed norms sum over the
# dimensions, so each term is exactly $D$ times larger, with $D$ the size of its group (the
# factors are computed below, once we have tracks). The reference weights (0.1, 0.05, 0.1,
# 0.05, 0.05) were tuned for the means; at the same weights the printed sums would regularise
# each group $D$ times harder than the runs behind Table 2. The library therefore defaults to
# `reduction="mean"` — the config key `temporal.weights.reduction: mean` — and keeps the
# printed form as `reduction="sum"`. The fork's formula, written out, against the default:

# %%
def fork_smooth(c):  # one clip (T, D), as the fork's compute_temporal_losses
    return (c[1:] - c[:-1]).abs().mean()


def fork_identity(c):  # one clip (T, S)
    return ((c - c.mean(dim=0, keepdim=True)) ** 2).mean()


fork_smooth_total = torch.stack([fork_smooth(c) for c in p]).mean()
fork_identity_total = torch.stack([fork_identity(c) for c in p]).mean()
# reduction="mean", the default
assert torch.allclose(smoothness_loss(p), fork_smooth_total)
assert torch.allclose(identity_loss(p), fork_identity_total)

# %% [markdown]
# ## Clips with known motion
#
# To see what the losses do we need tracks whose true motion we know. We draw keyframes of FLAME
# parameters with the synthetic-data sampler of chapter 3 and join them with its smooth
# (cosine) trajectory, as its clip mode does; the shape is one identity per clip. Each clip also
# gets one **fast jaw opening**: the mouth opens by 0.25 rad and closes again within six frames
# (a syllable). Then every frame gets independent noise — a stand-in for a per-frame estimator's
# error: the *noisy* track is what a frame-by-frame reconstruction looks like.

# %%
cfg = SyntheticConfig(seed=seed)
n_keys = (T - 1) // cfg.keyframe_every + 2
keys, _ = sample_params(cfg, n_clips * n_keys, flame.n_shape, flame.n_exp, gen)


def clip_track(x):
    """keyframes (B·K, D) -> smooth clip tracks (B, T, D), near each clip's first key"""
    k = x.reshape(n_clips, n_keys, -1)
    k = (1 - cfg.clip_motion) * k[:, :1] + cfg.clip_motion * k
    return smooth_trajectory(k.transpose(0, 1), T).transpose(0, 1)


names = [f.name for f in fields(FlameParams)]
clean = FlameParams(**{n: clip_track(getattr(keys, n)) for n in names})
frame = torch.arange(T, dtype=torch.float32)
start = torch.randint(4, T - 10, (n_clips, 1), generator=gen)
jaw_open = 0.25 * torch.sin(math.pi * ((frame - start) / 6).clamp(0, 1)) ** 2
# (B, T, 3): about the x axis only
jaw_open = torch.nn.functional.pad(jaw_open[..., None], (0, 2))
clean = replace(clean, shape=clean.shape[:, :1].expand(-1, T, -1).clone(),
                jaw_pose=clean.jaw_pose + jaw_open)

noise_std = dict(global_pose=0.02, cam=0.0, shape=0.05, expression=0.1, eyelids=0.03,
                 jaw_pose=0.015)
noise = {n: torch.randn(getattr(clean, n).shape, generator=gen) for n in names}
noisy = FlameParams(**{n: getattr(clean, n) + noise_std[n] * noise[n] for n in names})
clean, noisy = clean.to(device), noisy.to(device)

fig, axes = plt.subplots(1, 3, figsize=(12, 3))
styles = {"truth": dict(color="k", lw=2, alpha=0.5), "noisy": dict(color="C7", lw=0.8)}
shown = [("expression ψ₀", lambda p: p.expression[0, :, 0], ""),
         ("jaw opening", lambda p: p.jaw_pose[0, :, 0], "rad"),
         ("head yaw", lambda p: p.global_pose[0, :, 1], "rad")]
for ax, (name, get, unit) in zip(axes, shown):
    plot_tracks(ax, {"truth": get(clean), "noisy": get(noisy)}, title=f"clip 0: {name}",
                ylabel=unit, styles=styles)
plt.tight_layout()

# %% [markdown]
# Back to the reductions (previous section): the temporal terms of these noisy tracks under
# both, their ratio — the size $D$ of each group — and the weighted totals at the reference
# weights:

# %%
terms_mean = temporal_loss(noisy, TemporalWeights(reduction="mean")).as_floats()
terms_sum = temporal_loss(noisy, TemporalWeights(reduction="sum")).as_floats()
dims = {"expression": noisy.expression, "jaw": noisy.jaw_pose,
        "pose": noisy.global_pose, "eyelids": noisy.eyelids, "identity": noisy.shape}
rows = {}
for k in [*dims, "total"]:
    ratio = terms_sum[k] / terms_mean[k]
    d = dims[k].shape[-1] if k in dims else None
    assert d is None or round(ratio) == d
    name = "weighted total" if k == "total" else k
    rows[name] = [d, terms_mean[k], terms_sum[k], ratio]
table(rows, ["D", "mean (fork)", "sum (printed)", "sum / mean"], index="term", digits=4)

# %% [markdown]
# ## Measuring jitter
#
# Flicker is fast back-and-forth motion, so we measure it with finite differences of a track
# $x_t$ (a parameter vector, or mesh vertices):
#
# - **acceleration** $\|x_{t-1} - 2x_t + x_{t+1}\|$ per frame² — zero for a track moving at
#   constant speed, large for a track that zig-zags;
# - **jerk**, the norm of the third difference, even more sensitive to frame-to-frame noise;
# - **acceleration error** $\|\Delta^2 \hat x_t - \Delta^2 x_t\|$ against a ground truth $x$:
#   unlike the acceleration itself it does not reward freezing a face that really moves;
# - **identity variance** $\frac1T\sum_t\|\beta_t-\bar\beta\|^2$ per clip (eq. 4 before the mean
#   over clips).
#
# On vertices the norm is per vertex and averaged over the mesh. Vertices are taken
# **pose-normalised** (global rotation zero, no camera), so turning the head is not counted
# as flicker of the face. Parameters use norms over their dimensions (axis-angle differences are
# reported in degrees).

# %%
x = to_numpy(noisy.expression)
second, third = np.diff(x, n=2, axis=1), np.diff(x, n=3, axis=1)
assert np.allclose(to_numpy(acceleration(noisy.expression)),
                   np.linalg.norm(second, axis=-1), atol=1e-5)
assert np.allclose(to_numpy(jerk(noisy.expression)),
                   np.linalg.norm(third, axis=-1), atol=1e-5)
v_clean = pose_normalised_vertices(flame, clean)
v_noisy = pose_normalised_vertices(flame, noisy)
print("pose-normalised vertices:", tuple(v_noisy.shape))

fig, axes = plt.subplots(1, 2, figsize=(11, 3))
plot_tracks(axes[0], {"truth": acceleration(clean.expression)[0],
                      "noisy": acceleration(noisy.expression)[0]},
            title="expression acceleration, clip 0", styles=styles)
plot_tracks(axes[1], {"truth": 1000 * acceleration(v_clean)[0],
                      "noisy": 1000 * acceleration(v_noisy)[0]},
            title="vertex acceleration (pose-normalised), clip 0", ylabel="mm / frame²",
            styles=styles)
plt.tight_layout()

# %% [markdown]
# `jitter_report` collects all of it, and — given a ground truth — the **per-frame error** beside it
# (expression RMSE, geodesic pose and jaw angle errors, vertex error in mm). The two belong
# together: a method that returns the same mesh for every frame has no jitter at all.

# %%
error_columns = [
    "expression_rmse", "jaw_error_deg", "pose_error_deg", "vertex_error_mm",
]
jitter_columns = [
    "expression_accel", "jaw_accel_deg", "pose_accel_deg", "vertex_accel_mm",
    "vertex_accel_error_mm", "shape_variance",
]


def show_reports(reports):  # JitterReports as two tables: per-frame error, then jitter
    rows = {name: r.as_row() for name, r in reports.items()}
    display(MetricsTable(rows, error_columns), MetricsTable(rows, jitter_columns))


reports = {"truth": jitter_report(clean, flame, clean, v_clean),
           "noisy": jitter_report(noisy, flame, clean, v_clean)}
show_reports(reports)

# %% [markdown]
# (The expression RMSE is over the coefficients, the rotation errors are the mean angle
# between prediction and truth, the vertex error the mean vertex distance; accelerations are
# mean accelerations, the vertex acceleration error is against the truth's.) The truth has
# some acceleration of its own — real motion is not uniform — and per-frame noise of a few
# hundredths multiplies it several times over.
#
# ## Identity consistency
#
# The identity loss acts on the shape. Per-frame noise on $\beta$ makes the neutral head itself
# flicker: below, the shape-only heads of one clip (no expression, no pose) differ by
# millimetres from frame to frame. Minimising $\mathcal L_{id}$ alone (here as printed, summed
# over $S$) moves every frame towards the clip mean
# ($\partial\mathcal L_{id}/\partial\beta_t = \frac{2}{BT}(\beta_t-\bar\beta)$;
# the mean itself does not move), so a few gradient steps leave one shape per clip. That shape is
# the clip *average*: averaging cancels independent noise, but a bias shared by all frames would
# stay — consistency is not accuracy.

# %%
beta = noisy.shape.clone().requires_grad_()
# each step moves every frame halfway to its clip mean
opt = torch.optim.SGD([beta], lr=n_clips * T / 4)
history = [identity_variance(noisy.shape)[0]]
for _ in range(4):
    opt.zero_grad()
    identity_loss(beta, reduction="sum").backward()
    opt.step()
    history.append(identity_variance(beta.detach())[0])
display(table({"identity variance, clip 0": history}, [f"step {k}" for k in range(5)],
              units="coefficients²", index=""))
# the clip mean never moved
assert torch.allclose(beta.mean(1), noisy.shape.mean(1), atol=1e-5)

with torch.no_grad():  # shape-only heads of clip 0: (T, V, 3)
    shapes = {"truth": clean.shape, "noisy": noisy.shape, "after L_id": beta}
    heads = {name: flame(shape=s[0]).vertices for name, s in shapes.items()}


def distance_mm(a, b):  # (T, V, 3) meshes -> (T,) mean vertex distance in mm
    return 1000 * (a - b).norm(dim=-1).mean(-1)


fig, axes = plt.subplots(1, 2, figsize=(11, 3))
plot_tracks(axes[0], {k: distance_mm(h, h.mean(0)) for k, h in heads.items()},
            title="each frame's neutral head vs the clip's mean head", ylabel="mm",
            styles=styles)
plot_tracks(axes[1], {k: distance_mm(h, heads["truth"]) for k, h in heads.items()
                      if k != "truth"},
            title="each frame's neutral head vs the true one", ylabel="mm",
            styles=styles)
plt.tight_layout()

# %% [markdown]
# ## Smoothing noisy tracks, and over-smoothing
#
# What does eq. (3) do to a track? Training shapes an encoder rather than a track, but the
# loss's effect is easiest to see by applying it directly: smooth each noisy clip by minimising a
# data term plus $\lambda$ times the smoothness loss (both summed over the dimensions, as
# printed),
#
# $$\min_{q}\; \frac1T\sum_t \|q_t - y_t\|^2 + \lambda\, \mathcal L_{smooth}(q),$$
#
# for many values of $\lambda$ at once (`denoise_tracks` stacks them on the batch axis and runs
# gradient descent with the library's loss; the shape is set to its clip mean, as the identity
# loss leaves it). An L1 penalty on differences is *total variation*: small wiggles are
# flattened completely, and every remaining extremum is clipped by an amount that grows with
# $\lambda$ and shrinks with the width of the motion — short, fast motions are the first to be cut.

# %%
weights = torch.logspace(-3, 0.5, 10 if profile == "small" else 16)
groups = {"expression": flame.n_exp, "jaw_pose": 3, "global_pose": 3, "eyelids": 2}
# (B, T, D): the smoothed groups side by side
y = torch.cat([getattr(noisy, g) for g in groups], -1)
# (Λ, B, T, D)
smoothed_all = denoise_tracks(y, weights, steps=300 if profile == "small" else 600)
mean_shape = noisy.shape.mean(1, keepdim=True).expand_as(noisy.shape)
smoothed = [replace(noisy, shape=mean_shape,
                    **dict(zip(groups, q.split(list(groups.values()), -1))))
            for q in smoothed_all]
sweep = [jitter_report(s, flame, clean, v_clean) for s in smoothed]

panels = [("expression_rmse", "expression_accel", "expression"),
          ("jaw_error_deg", "jaw_accel_deg", "jaw (deg)"),
          ("pose_error_deg", "pose_accel_deg", "global pose (deg)"),
          ("vertex_error_mm", "vertex_accel_mm", "vertices (mm)")]
fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
for ax, (err, acc, name) in zip(axes, panels):
    jitter = [getattr(r, acc) for r in sweep]
    error = [getattr(r, err) for r in sweep]
    plot_tradeoff(ax, jitter, error, [f"{w:.2g}" for w in weights.tolist()],
                  truth_jitter=getattr(reports["truth"], acc), title=name)
    noisy_r = reports["noisy"]  # the input: a grey cross
    ax.plot(getattr(noisy_r, acc), getattr(noisy_r, err), "x", color="C7", ms=8)
plt.tight_layout()

# %% [markdown]
# Read each panel from the right: the grey cross is the noisy input, and each point is one
# $\lambda$ (annotated). As $\lambda$ grows, jitter falls; at first the per-frame error falls
# too (noise is removed), then it turns and climbs — once the smoothed track is **smoother than
# the truth** (left of the dashed line) the loss is removing real motion. The best $\lambda$ is
# not the same for each group: it depends on the group's units and motion (radians of head pose
# against expression coefficients), which is why the paper weights every group separately.
#
# Here is what the over-smoothed side does to the fast jaw opening:

# %%
best = int(np.argmin([r.jaw_error_deg for r in sweep]))
pick = {"small λ": 1, "best λ (jaw)": best, "large λ": min(best + 3, len(weights) - 1)}
tracks = {"truth": clean, "noisy": noisy,
          **{f"{k} = {weights[i]:.2g}": smoothed[i] for k, i in pick.items()}}
fig, ax = plt.subplots(figsize=(8, 3.2))
plot_tracks(ax, {name: p.jaw_pose[0, :, 0] for name, p in tracks.items()},
            title="clip 0: jaw opening", ylabel="rad", styles=styles)
plt.tight_layout()


def amplitude(p):  # mean over clips of the jaw opening's range within the clip (rad)
    jaw = p.jaw_pose[..., 0]
    return float((jaw.amax(1) - jaw.amin(1)).mean())


ranges = {name: amplitude(p) for name, p in tracks.items()}
display(table({"jaw opening range": ranges}, units="rad", index=""))
show_reports({"truth": reports["truth"], "noisy": reports["noisy"],
              **{f"λ={weights[i]:.2g}": sweep[i] for i in pick.values()}})

# %% [markdown]
# A large $\lambda$ gives the calmest numbers in the jitter table and the worst in the error
# table: the syllable is cut to a fraction of its height. This is why jitter is never
# reported alone in this book, and why the acceleration *error* (against a ground truth, where
# one exists) is the fairer jitter number: it does not keep improving when real motion is removed.
#
# ## The temporal training objective
#
# `temporal_loss` applies eq. (3) to expression, jaw, global pose and eyelids, and eq. (4) to the
# shape, and adds them with `TemporalWeights` — the paper's reference weights on element means
# by default, as the code behind Table 2 ran them (the camera is not regularised). Chapter 5
# adds its `total` to the SMIRK loss (eq. 5):
#
# $$\mathcal{L} = \mathcal{L}_{SMIRK} + \lambda_{smooth} \mathcal{L}_{smooth} + \lambda_{id} \mathcal{L}_{id}.$$
#
# The encoder runs on flattened frames; `clip_params` regroups its output before the loss:

# %%
w = TemporalWeights()
frames = flatten_clips(noisy)  # what the encoder outputs for the B·T frames
print("encoder output:", tuple(frames.expression.shape),
      "-> clips:", tuple(clip_params(frames, T).expression.shape))
cases = {"truth": clean, "noisy": noisy, "best λ (jaw)": smoothed[best]}
rows = {name: temporal_loss(clip_params(flatten_clips(p), T), w).as_floats()
        for name, p in cases.items()}
rows["weight"] = {k: getattr(w, k) for k in rows["truth"] if k != "total"}
table(rows, index="clips", digits=4,
      note=f"terms: element {w.reduction}s, unweighted; total: Σ weight × term")

# %% [markdown]
# Two practical notes carry over to training. The smoothness loss cannot tell flicker from real
# fast motion — only the SMIRK losses, which look at the image, can; the weights set where the
# balance lies, and the trade-off above is what to measure when choosing them. And anything
# random that changes a clip from frame to frame (crop, rotation, colour augmentation) adds
# jitter this loss then has to fight: we draw augmentation once per clip, where the code behind
# Table 2 draws it for every frame — chapter 5 measures the difference.
#
# ## Try it
#
# In JupyterLab, the slider smooths clip 0's expression coefficient ψ₀, jaw opening and head
# yaw with the chosen $\lambda$ (the static figures above tell the same story).

# %%
def track(p):  # clip 0's ψ₀, jaw opening and head yaw: (T, 3)
    shown = [p.expression[0, :, 0], p.jaw_pose[0, :, 0], p.global_pose[0, :, 1]]
    return torch.stack(shown, -1)


smoothing_explorer(track(clean), track(noisy),
                   ["expression ψ₀", "jaw opening (rad)", "head yaw (rad)"])
