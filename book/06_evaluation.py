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
# # Evaluation
#
# Is one encoder's FLAME expression better than another's? Reconstruction errors need 3D ground
# truth that in-the-wild photos do not have, so the paper (section 4, after EMOCA and SMIRK) asks
# a different question: **how much emotion do the parameters carry?** A small network, the
# EmotionVA MLP, learns to read valence, arousal and one of eight expression classes off the
# expression parameters of AffectNet's training images; the encoder whose parameters let it do
# best on AffectNet's validation images wins. The paper reports its Table 2 in this layout:
#
# | | V-CCC↑ | V-RMSE↓ | A-CCC↑ | A-RMSE↓ | E-ACC↑ |
# |---|---|---|---|---|---|
# | Non-temporal | 0.4866 | 0.3955 | 0.3951 | 0.3576 | 0.3591 |
# | Temporal | 0.5266 | 0.3811 | 0.3999 | 0.3600 | 0.3571 |
#
# This chapter explains the metrics with small examples, builds a synthetic stand-in for
# AffectNet in AffectNet's own file layout (AffectNet cannot ship), and runs the whole pipeline
# on it — images, crops, encoder, cached parameters, MLP, table — for an oracle (the true
# parameters), an untrained encoder, the demo SMIRK checkpoint and chapter 5's non-temporal and
# temporal fine-tunes of it. Give `affectnet_root` and
# `checkpoints` to run the identical pipeline on real AffectNet and reproduce Table 2.

# %% tags=["parameters"]
profile = "small"
device = "cpu"
seed = 0
affectnet_root = None  # AffectNet root or a prepared index folder (None: the synthetic set)
checkpoints = None  # dict from row name to SMIRK checkpoint path (None: untrained and demo encoders)
image_size = None  # encoder input size in pixels (None: the demo size, or 224 with checkpoints)

# %%
import tempfile
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from data_prep.affectnet import parse_annotations
from data_prep.video import read_image
from tempsmirk import seed_everything
from tempsmirk.evaluation import (EMOTION_CLASSES, PROTOTYPES, EmotionMLP, EmotionMLPConfig, EvaluationConfig,
                                  SyntheticAffectNetConfig, ccc, comparison_figure, evaluate_encoders,
                                  ground_truth_params, load_ground_truth, pcc, plot_history, prepare_index,
                                  results_table, rmse, untrained_checkpoint, write_report,
                                  write_synthetic_affectnet)
from tempsmirk.evaluation.synthetic_affectnet import GROUND_TRUTH_FILE, IMAGES_DIR
from tempsmirk.training import (DEMO_IMAGE_SIZE, EvalSpec, ExperimentSpec, demo_checkpoint, finetune_config,
                                run_experiment)

gen = seed_everything(seed)
small = profile == "small"
if small:
    torch.set_num_threads(1)  # small tensors: extra threads only add synchronisation on a busy machine
plt.rcParams["figure.dpi"] = 72
if image_size is None:
    image_size = DEMO_IMAGE_SIZE if checkpoints is None else 224
print(f"profile {profile}: encoders read {image_size} px crops")

# %% [markdown]
# ## The metrics
#
# For true values $Y$ and predictions $\hat Y$ (valence or arousal, both in $[-1, 1]$) the paper
# uses
#
# $$\mathrm{RMSE} = \sqrt{\mathbb E[(Y - \hat Y)^2]}, \qquad
#   \mathrm{PCC} = \frac{\mathbb E[(Y - \mu_Y)(\hat Y - \mu_{\hat Y})]}{\sigma_Y \sigma_{\hat Y}}, \qquad
#   \mathrm{CCC} = \frac{2\sigma_Y\sigma_{\hat Y}\,\mathrm{PCC}}{\sigma_Y^2 + \sigma_{\hat Y}^2 + (\mu_Y - \mu_{\hat Y})^2}.$$
#
# PCC only asks whether the predictions rise and fall with the truth; CCC also asks that they
# agree in **level and scale** — it is 1 only on the diagonal $\hat Y = Y$. A valence predictor
# that is always 0.3 too positive, or that squashes every answer towards zero, keeps a perfect
# PCC but loses CCC. That is why emotion papers rank by CCC. E-ACC is the fraction of images
# whose most likely class is the labelled one (chance: 1/8 on a balanced set). All moments are
# population moments, as the expectations are written.

# %%
t = torch.linspace(-0.9, 0.9, 200)
noise = 0.25 * torch.randn(200, generator=gen)
cases = {"exact": t, "shifted by +0.3": t + 0.3, "scaled by 0.5": 0.5 * t, "noisy": t + noise,
         "noisy, scaled by 0.5": 0.5 * (t + noise)}
print(f"{'prediction':<22}{'PCC':>7}{'CCC':>7}{'RMSE':>7}")
for name, p in cases.items():
    print(f"{name:<22}{float(pcc(p, t)):>7.3f}{float(ccc(p, t)):>7.3f}{float(rmse(p, t)):>7.3f}")

# The same CCC from scratch, as eq. (7) is written, against the library.
p = cases["noisy"]
mu_t, mu_p, s_t, s_p = t.mean(), p.mean(), t.std(unbiased=False), p.std(unbiased=False)
rho = ((t - mu_t) * (p - mu_p)).mean() / (s_t * s_p)
ccc_scratch = 2 * s_t * s_p * rho / (s_t ** 2 + s_p ** 2 + (mu_t - mu_p) ** 2)
assert torch.allclose(ccc_scratch, ccc(p, t))

fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, name in zip(axes, ("shifted by +0.3", "scaled by 0.5", "noisy")):
    ax.scatter(t, cases[name], s=4)
    ax.plot([-1, 1], [-1, 1], "k--", lw=0.8)
    q = cases[name]
    ax.set_title(f"{name}\nPCC {float(pcc(q, t)):.2f}, CCC {float(ccc(q, t)):.2f}", fontsize=9)
    ax.set_xlabel("true")
axes[0].set_ylabel("predicted")
plt.tight_layout()

# %% [markdown]
# ## A synthetic AffectNet
#
# AffectNet's annotations are two CSV files (`training.csv`, `validation.csv`) with an image path,
# a face box, 68 landmarks, an expression code (0 Neutral … 7 Contempt; 8–10 mean None, Uncertain,
# No-Face and are dropped) and valence/arousal (−2 where there is no face). The stand-in is
# written in exactly that layout, so the same reader (`data_prep.affectnet`) crops it and the same
# pipeline evaluates it.
#
# Its faces are rendered from the built-in head. Each class has an **expression prototype** made
# of the head's named expression components — Happy smiles and squints, Sad frowns with raised
# inner brows, Surprise raises the brows, widens the eyes and opens the jaw, Contempt lifts one
# mouth corner — and each image draws an intensity $s$ and some expression noise $n$:
# expression $= s \cdot \text{prototype} + n$. Valence and arousal follow from the expression by a
# documented mapping: the class's place on Russell's circumplex times $s$, plus a small linear
# read-out of $n$ (raised mouth corners add valence, widened eyes add arousal), plus annotation
# noise. So the labels *are* in the parameters — an encoder that reads expressions well lets the
# MLP find them, as on real AffectNet. Identity, head pose, lighting and background vary as in
# chapter 3's synthetic faces.

# %%
for p in PROTOTYPES:
    parts = ", ".join(f"ψ{c}×{v:g}" for c, v in p.components) or "zero"
    print(f"{p.name:<9} valence {p.valence:+.2f} arousal {p.arousal:+.2f}  jaw {p.jaw_open:.2f}  "
          f"eyelids {p.eyelids:.2f}  expression {parts}")

# %%
if affectnet_root is None:
    per_class = (30, 8) if small else (1000, 200)
    syn_cfg = SyntheticAffectNetConfig(n_train_per_class=per_class[0], n_val_per_class=per_class[1],
                                       image_size=64 if small else 128, seed=seed)
    data_root = write_synthetic_affectnet(None, syn_cfg, progress=False)  # cached: written once
else:
    data_root = Path(affectnet_root)
print("data folder:", sorted(p.name for p in data_root.iterdir()))
if (data_root / "training.csv").is_file():
    print((data_root / "training.csv").read_text().splitlines()[1][:160], "…")
    rows, report = parse_annotations(data_root / "training.csv")
    print(report.summary())

# %%
if (data_root / "training.csv").is_file():
    first = {}
    for r in rows:
        first.setdefault(r.expression, r)
    fig, axes = plt.subplots(1, 8, figsize=(13, 2.3))
    for k, ax in enumerate(axes):
        ax.axis("off")
        if k in first:
            r = first[k]
            ax.imshow(read_image(data_root / IMAGES_DIR / r.path) if (data_root / IMAGES_DIR).is_dir()
                      else read_image(data_root / r.path))
            ax.set_title(f"{EMOTION_CLASSES[k]}\nv {r.valence:+.2f} a {r.arousal:+.2f}", fontsize=8)
    plt.tight_layout()

    va = np.array([(r.valence, r.arousal) for r in rows[:5000]])
    codes = np.array([r.expression for r in rows[:5000]])
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    for k, name in enumerate(EMOTION_CLASSES):
        ax.scatter(*va[codes == k].T, s=5, label=name)
    ax.set_xlim(-1, 1), ax.set_ylim(-1, 1), ax.set_xlabel("valence"), ax.set_ylabel("arousal")
    ax.axhline(0, color="k", lw=0.5), ax.axvline(0, color="k", lw=0.5)
    ax.legend(fontsize=6, markerscale=2, loc="lower left")
    ax.set_title("training labels on the valence/arousal plane", fontsize=9);

# %% [markdown]
# `prepare_index` crops every kept face by its box (AffectNet's rule: the box's centre, side ×1.25)
# and writes `index.csv` with the split of each row (`train` from training.csv, `validation` from
# validation.csv — the paper's test set). On the synthetic set the box is chosen so the crop is
# the whole rendered image, the framing the demo encoder was trained on.

# %%
crop_size = image_size if affectnet_root is None else 224
index = prepare_index(data_root, crop_size=crop_size, progress=False)
splits = {s: sum(x == s for x in index.split) for s in ("train", "validation")}
print(f"{len(index)} crops: {splits}")

# %% [markdown]
# ## The EmotionVA MLP
#
# EMOCA's recipe (guide, section 2): the input is the expression (50) and jaw pose (3); four
# hidden layers of 2048 units, each Linear → BatchNorm → LeakyReLU(0.2); the output is 8 class
# logits, valence and arousal. The loss adds the classes' negative log-likelihood to MSE, 1 − PCC
# and 1 − CCC of valence and of arousal; Adam at 1e-4, batches of 64, and early stopping: a tenth
# of the training split is held out, training stops when its loss has not improved for
# `patience` epochs, and the best epoch's weights are kept. The small profile uses a narrower
# MLP and a larger learning rate to fit the CI budget; the full profile uses the recipe.

# %%
mlp_cfg = EmotionMLPConfig(hidden=256, n_hidden=2, lr=1e-3, max_epochs=80, patience=10) if small \
    else EmotionMLPConfig()
n_params = sum(p.numel() for p in EmotionMLP(53, mlp_cfg).parameters())
print(f"MLP: {mlp_cfg.n_hidden} × {mlp_cfg.hidden} hidden, {n_params / 1e6:.2f} M parameters, "
      f"inputs {mlp_cfg.inputs}")

# %% [markdown]
# ## Comparing encoders
#
# Every row runs the same procedure with the same seed: encode all crops (resized to the encoder's
# input size) — the parameters are cached per checkpoint file, index and size, so a re-run skips
# this — train the MLP on the training split, score it on the validation split.
#
# - **oracle** (synthetic data only): the true parameters. The ceiling for this MLP; below a
#   perfect score only because of the annotation noise and the low-intensity faces that look
#   neutral.
# - **untrained**: a freshly initialised SMIRK encoder. Its parameters are a random function of the
#   image; the MLP should be near chance (E-ACC ≈ 1/8, CCC ≈ 0).
# - **demo**: the SMIRK checkpoint trained on synthetic faces for the book
#   (`tempsmirk.training.demo_checkpoint`). Where its row falls between the untrained encoder and
#   the oracle says how much of the expression it has learnt to read. The small profile's
#   checkpoint trains for only a few hundred steps and is expected to stay close to the untrained
#   row; the full profile trains it longer.
# - **non-temporal / temporal (ch. 5)**: the two encoders chapter 5 fine-tuned from the demo
#   checkpoint with the same budget, without and with the temporal losses — the comparison of the
#   paper's Table 2. Temporal training should not cost the parameters their expression content.
#
# The same run from the command line (`--synthetic` instead of `--affectnet` evaluates on the
# stand-in):
#
# ```
# python -m tempsmirk evaluate --affectnet ROOT --checkpoint NAME=PATH [--checkpoint NAME=PATH ...] \
#     --image-size 224 --out DIR
# ```

# %%
if checkpoints is None:
    start = demo_checkpoint(profile, seed=seed)
    # Chapter 5's two fine-tuned encoders for this seed (its cached runs; trained here if absent).
    ch5_cfg = finetune_config(profile, [f"train.device={device}", f"data.synthetic.image_size={DEMO_IMAGE_SIZE}",
                                        f"data.mead.image_size={DEMO_IMAGE_SIZE}"])
    ch5 = run_experiment(ch5_cfg, start,
                         ExperimentSpec(seeds=(seed,), single_seed=(),
                                        eval=EvalSpec(n_clips=6 if profile == "small" else 32,
                                                      clip_length=16 if profile == "small" else 64)),
                         progress=False)
    encoders = {"untrained": untrained_checkpoint(seed), "demo SMIRK": start,
                **{f"{r.condition} (ch. 5)": r.weights for r in ch5.runs}}
else:
    encoders = {name: Path(path) for name, path in checkpoints.items()}
gt_file = data_root / GROUND_TRUTH_FILE
oracle = partial(ground_truth_params, load_ground_truth(gt_file)) if gt_file.is_file() else None
eval_cfg = EvaluationConfig(image_size=image_size, crop_size=crop_size, mlp=mlp_cfg)
results = evaluate_encoders(index, encoders, eval_cfg, oracle, device=device, seed=seed, progress=False)
display(Markdown(results_table(results)))

# %%
comparison_figure(results, row_height=3.0);

# %% [markdown]
# The confusion matrices (rows: true class, in percent of the row) show *which* expressions the
# parameters separate; the scatter plots show how far the valence and arousal predictions are
# from the diagonal where CCC is 1. The MLP's training curves show where early stopping kept the
# weights (vertical lines): the held-out loss stops improving well before the training loss does.

# %%
fig, ax = plt.subplots(figsize=(6, 3))
for r in results:
    plot_history(ax, r.history, r.name)
ax.legend(fontsize=7)
ax.set_title("EmotionVA MLP: training (dotted) and held-out loss", fontsize=9);

# %% [markdown]
# `write_report` saves what the command line saves: the table as CSV and markdown, every metric
# and training curve as JSON, and one figure per encoder.

# %%
out_dir = Path(tempfile.mkdtemp(prefix="tempsmirk_ch6_"))  # reports never go into the source tree
print(sorted(p.name for p in write_report(results, out_dir)))

# %% [markdown]
# ## On real AffectNet
#
# Set `affectnet_root` to the folder holding AffectNet's `training.csv`, `validation.csv` and
# `Manually_Annotated_Images/` (or to a folder prepared by `python -m data_prep.affectnet`), and
# `checkpoints` to the encoders to compare, e.g. the non-temporal and the temporal SMIRK of
# chapter 5, with `profile = "full"` for the full MLP. Cropping ~290k training images and
# encoding them takes hours on a CPU; `EvaluationConfig(max_train_images=…)` (or `--max-train`)
# trains the MLP on a random subset instead. There is no oracle row on real data. The paper's
# Table 2 (top of this chapter) is what the same procedure gave for its two encoders.
