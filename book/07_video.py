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
# # From video to meshes
#
# What most users come for: give it a video, get smooth FLAME parameters, meshes and a video to
# look at. One command does it:
#
# ```
# python -m tempsmirk reconstruct VIDEO --checkpoint CKPT [--flame generic_model.pkl] --out DIR \
#     [--smooth one_euro|savgol] [--meshes obj|ply]
# ```
#
# It decodes the video, finds MediaPipe landmarks in every frame, cuts a face crop around them,
# runs the SMIRK encoder on the crops in batches, fills the frames where no face was found, and
# writes `DIR/<stem>/params.npz` (one row per frame), `DIR/<stem>/overlay.mp4` (input | mesh over
# the input | the generator's redrawing) and, if asked, one mesh per frame.
#
# This chapter runs the same stages on a **synthetic clip** rendered from the built-in head, so
# every number can be checked against ground truth, and on a real video when `video_path` is
# given. It also measures the simplest way to calm a flickering reconstruction, an
# **inference-time filter** on the parameters, which is the baseline that the temporal training
# of chapters 4 and 5 has to beat.

# %% tags=["parameters"]
profile = "small"
device = "cpu"
seed = 0
video_path = None  # a video showing one face (try ../shared/data/video/...); None: synthetic clip only
checkpoint = None  # SMIRK checkpoint (official layout or ours); None: the book's demo encoder
flame_path = None  # FLAME model file or asset folder (None: the built-in head)

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import HTML, display

from data_prep.crops import landmarks_to_crop, warp_crop
from data_prep.video import write_video
from tempsmirk import seed_everything
from tempsmirk.data import SyntheticConfig, SyntheticFaces
from tempsmirk.paths import cache_dir
from tempsmirk.reconstruct import OneEuro, SavitzkyGolay, load_models, reconstruct_video, smooth_params
from tempsmirk.reconstruct.overlay import frame_camera
from tempsmirk.reconstruct.viewer import mesh_viewer, video_html
from tempsmirk.temporal import jitter_report
from tempsmirk.training import DEMO_IMAGE_SIZE, demo_checkpoint
from tempsmirk.viz import mesh_figure, plot_tracks, plot_tradeoff

gen = seed_everything(seed)
if profile == "small":
    torch.set_num_threads(1)  # small crops: a second thread mostly waits, and on a busy machine spins
plt.rcParams["figure.dpi"] = 72
work = cache_dir("book", "07_video")  # videos and results of this chapter, overwritten each run
demo = checkpoint is None
ckpt = demo_checkpoint(profile) if demo else Path(checkpoint)
encoder, generator, flame = load_models(ckpt, flame_path, device=device)
# The demo encoder reads 64-px crops; official SMIRK checkpoints read 224 px.
crop_size = DEMO_IMAGE_SIZE if demo else 224
print(f"encoder from {'the demo checkpoint' if demo else ckpt}: {crop_size}-px crops, "
      f"generator {'yes' if generator is not None else 'no'}; {flame.source}")

# %% [markdown]
# ## A synthetic clip with known parameters
#
# `SyntheticFaces` in clip mode renders one identity whose pose, expression, jaw, eyelids and
# camera follow smooth random trajectories. We first checked that MediaPipe's face mesh finds this
# head in every frame (it does, at 128 px and above), so the clip can go through the *whole*
# command as an ordinary mp4: decoding, landmarks, crops and all. Three frames are blacked out,
# as if the face had been occluded, to show what happens to frames without a face.
#
# The head is drawn a little smaller than in the demo encoder's training images, leaving room
# around it, because the crop rule (next section) decides how large the face appears to the
# encoder.

# %%
T = 48 if profile == "small" else 160
frame_px = 160 if profile == "small" else 256
lost = [20, 21, 22]
clip = SyntheticFaces(flame, SyntheticConfig(image_size=frame_px, clip_length=T, n_items=1, seed=seed,
                                             scale_min=4.2, scale_max=4.8, keyframe_every=12))[0]
truth = clip.params  # (T, ...) ground truth
frames = (clip.image.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
frames[lost] = 0
video = work / "synthetic_clip.mp4"
write_video(video, frames, fps=24.0)
print(f"{T} frames of {frame_px} px written to {video.name}; frames {lost} are black")

# %% [markdown]
# ## Running the command
#
# `reconstruct_video` is the function behind the command; it returns what it wrote and how long
# each stage took. SMIRK's own demo crops a square box 1.4 times the landmarks' extent. The demo
# encoder, however, was trained on whole synthetic renders, in which the landmarks span only
# about half the image, so for it we crop looser (scale 2.0): then the face fills the crop as it
# filled its training images. The check is printed below: the *true* camera scale in the crop,
# known on this clip, lies in the training range 6–7.5.

# %%
crop_scale = 2.0 if demo else 1.4
rec = reconstruct_video(video, encoder, flame, work / "out", generator=generator, crop_size=crop_size,
                        scale=crop_scale, batch_size=16, progress=False)
found = rec.video.found
box = crop_size / rec.video.crop_affine[:, 0, 0]  # (T,) crop box side in frame pixels
true_crop_scale = truth.cam[:, 0].numpy() * frame_px / box  # the frame camera seen through the crop
print(f"face found in {found.sum()} of {len(found)} frames; not found: {np.flatnonzero(~found).tolist()}")
print("wrote", sorted(p.name for p in rec.folder.iterdir()))
print(f"camera scale in the crop: true {np.median(true_crop_scale):.2f}, "
      f"predicted {rec.raw.cam[:, 0].median():.2f} (medians)")
print(rec.times.table())

# %% [markdown]
# ## Landmarks and crops
#
# MediaPipe gives 478 points per frame (green). The crop box is the landmarks' bounding square
# times the scale, **smoothed over time** (a Gaussian of 0.1 s) so the crop itself does not
# jitter; in frames without a face the box is interpolated from its neighbours, and the frame is
# flagged `found = False`.

# %%
show = [0, T // 3, lost[1], T - 1]
fig, axes = plt.subplots(2, len(show), figsize=(2.6 * len(show), 5.2))
for ax, ax_crop, i in zip(axes[0], axes[1], show):
    ax.imshow(frames[i])
    if found[i]:
        ax.scatter(*rec.landmarks[i, :, :2].T, s=0.3, color="lime")
    k = rec.video.crop_affine[i, 0, 0]
    side = crop_size / k
    corner = (-rec.video.crop_affine[i, :, 2] - 0.5) / k  # frame pixel edge of the box's corner
    ax.add_patch(plt.Rectangle(corner, side, side, fill=False, color="C1", lw=1.5))
    ax.set_title(f"frame {i}" + ("" if found[i] else " (no face)"), fontsize=9)
    ax_crop.imshow(warp_crop(frames[i], rec.video.crop_affine[i], crop_size))
    if found[i]:  # the same landmarks in the crop (normalised [-1, 1] -> crop pixels)
        pts = landmarks_to_crop(rec.landmarks[i:i + 1], rec.video.crop_affine[i:i + 1], crop_size)[0]
        ax_crop.scatter(*((pts[:, :2] + 1) * crop_size / 2 - 0.5).T, s=0.3, color="lime")
    ax_crop.set_title(f"crop, {crop_size} px", fontsize=9)
for ax in axes.flat:
    ax.axis("off")
plt.tight_layout()

# %% [markdown]
# ## Parameters over time, with and without smoothing
#
# `raw` is the encoder's output per frame (with the three lost frames filled by linear
# interpolation between their neighbours). Two classic filters, from
# `tempsmirk.reconstruct.smoothing`, smooth it after the fact:
#
# - **One-Euro** (Casiez et al. 2012): a low-pass whose cutoff rises with the signal's speed.
#   Causal, so it works live, but it lags behind fast motion.
# - **Savitzky–Golay**: a local polynomial fit over a window of frames. No lag, exact for slow
#   polynomial motion, but it needs the frames after the current one.

# %%
fps = 24.0
filters = {"one_euro": OneEuro(min_cutoff=1.0, beta=0.5), "savgol": SavitzkyGolay(window=9, order=2)}
tracks = {"raw": rec.raw, **{name: smooth_params(rec.raw, f, fps) for name, f in filters.items()}}
tracks["truth"] = truth
curves = [("expression ψ₀", lambda p: p.expression[:, 0]), ("jaw opening (rad)", lambda p: p.jaw_pose[:, 0]),
          ("head yaw (rad)", lambda p: p.global_pose[:, 1])]
styles = {"truth": dict(color="k", lw=2, alpha=0.35), "raw": dict(color="C7", lw=0.9)}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
for ax, (name, get) in zip(axes, curves):
    plot_tracks(ax, {k: get(p) for k, p in tracks.items()}, title=name, styles=styles)
    for i in lost:
        ax.axvspan(i - 0.5, i + 0.5, color="C3", alpha=0.12)
plt.tight_layout()

# %% [markdown]
# The camera is predicted for the crop. Composed with the crop box it becomes a camera for the
# whole frame (`tempsmirk.reconstruct.overlay.window_camera`, exact, since both are a scale and a
# shift); on the synthetic clip that can be compared with the camera the frames were rendered with.

# %%
cam = frame_camera(rec.video.params.cam, torch.from_numpy(rec.video.crop_affine), crop_size, rec.video.frame_size)
fig, axes = plt.subplots(1, 3, figsize=(13, 2.8))
for d, (ax, name) in enumerate(zip(axes, ["scale s", "shift tx", "shift ty"])):
    plot_tracks(ax, {"truth": truth.cam[:, d], "predicted, in the frame": cam[:, d]}, title=name,
                styles={"truth": dict(color="k", lw=2, alpha=0.35)})
plt.tight_layout()

# %% [markdown]
# ## Jitter against per-frame error
#
# Jitter is the mean acceleration ‖x_{t−1} − 2x_t + x_{t+1}‖ of the parameters and of the
# pose-normalised vertices (`tempsmirk.temporal`, chapter 4); a smoother is only better if the
# per-frame error does not grow. The ground truth's own row shows how much the true motion
# accelerates: less jitter than that means motion was erased.
#
# In the small profile the demo encoder has trained for a few minutes only: its per-frame error
# is large (it barely follows the head's yaw above), and that error is mostly a bias that no
# filter can remove. What the table does show is the filters' job: several times less jitter at
# the same per-frame error. Run with `profile = "full"` (a longer-trained demo encoder) or a real
# checkpoint for accuracy worth reading.

# %%
columns = ["expression_accel", "vertex_accel_mm", "pose_accel_deg", "expression_rmse", "pose_error_deg",
           "jaw_error_deg", "vertex_error_mm"]
reports = {name: jitter_report(p[None], flame, None if name == "truth" else truth[None])
           for name, p in tracks.items()}
print(f"{'':<10}" + "".join(f"{c:>18}" for c in columns))
for name, r in reports.items():
    row = r.as_row()
    print(f"{name:<10}" + "".join(f"{row[c]:>18.4f}" if c in row else f"{'—':>18}" for c in columns))

# %% [markdown]
# Each filter has one knob that trades jitter for error. Sweeping it traces the trade-off; the
# dashed line is the truth's own jitter.

# %%
sweeps = {"Savitzky–Golay window": {w: SavitzkyGolay(window=w) for w in (5, 9, 13, 19, 27)},
          "One-Euro min cutoff (Hz)": {c: OneEuro(min_cutoff=c) for c in (4.0, 2.0, 1.0, 0.5, 0.25)}}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for ax, (title, settings) in zip(axes, sweeps.items()):
    points = []
    for f in settings.values():
        r = jitter_report(smooth_params(rec.raw, f, fps)[None], flame, truth[None])
        points.append((r.vertex_accel_mm, r.vertex_error_mm))
    x, y = np.array(points).T
    plot_tradeoff(ax, x, y, list(settings), truth_jitter=reports["truth"].vertex_accel_mm,
                  xlabel="vertex acceleration (mm/frame²)", ylabel="vertex error (mm)", title=title)
    ax.plot([reports["raw"].vertex_accel_mm], [reports["raw"].vertex_error_mm], "kx", label="raw (no filter)")
    ax.legend(fontsize=7, loc="upper right")
plt.tight_layout()

# %% [markdown]
# ## The overlay video
#
# Input | the mesh drawn over the input with the frame camera | the generator's redrawing of the
# crop from the mesh and a masked copy of the crop (when the checkpoint has a generator). Frames
# whose parameters were interpolated get a red border.

# %%
display(HTML(video_html(rec.overlay, width=3 * 220)))

# %% [markdown]
# ## The meshes
#
# One frame's mesh below; in JupyterLab the slider draws any frame (FLAME runs on demand). The
# command writes every frame's mesh with `--meshes obj` or `--meshes ply`.

# %%
mid = rec.video.params[T // 2:T // 2 + 1]
with torch.no_grad():
    out = flame(shape=mid.shape, expression=mid.expression, global_pose=mid.global_pose,
                jaw_pose=mid.jaw_pose, eyelids=mid.eyelids)
mesh_figure(out.vertices[0], flame.faces, title=f"frame {T // 2}", height=380)

# %%
mesh_viewer(flame, rec.video.params)

# %% [markdown]
# ## A real video
#
# With `video_path` set (for instance the shared talking-head video), the same command runs on
# real frames. There is no ground truth, so only jitter can be measured. The demo encoder has only
# seen the synthetic head: on a real face its meshes show the pipeline working, not SMIRK's
# accuracy; give `checkpoint` (and `flame_path`) for that.

# %%
if video_path is not None:
    real = reconstruct_video(video_path, encoder, flame, work / "out", generator=generator,
                             crop_size=crop_size, scale=crop_scale, progress=False)
    rfps = real.video.fps
    print(f"{real.video.num_frames} frames, face found in {real.video.found.sum()}")
    print(real.times.table())
    smooth = {"raw": real.raw, **{n: smooth_params(real.raw, f, rfps) for n, f in filters.items()}}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    for ax, (name, get) in zip(axes, curves):
        plot_tracks(ax, {k: get(p) for k, p in smooth.items()}, title=name, styles=styles)
    plt.tight_layout()
    for n, p in smooth.items():
        r = jitter_report(p[None], flame)
        print(f"{n:<10} expression accel {r.expression_accel:.4f}  vertex accel {r.vertex_accel_mm:.4f} mm")
    size = real.overlay.stat().st_size
    if size < 4 << 20:
        display(HTML(video_html(real.overlay, width=900)))
    else:
        print(f"overlay written to {real.overlay} ({size / 2**20:.1f} MiB; too large to embed here)")
