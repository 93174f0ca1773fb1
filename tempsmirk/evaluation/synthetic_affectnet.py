"""A synthetic AffectNet: rendered faces with expression classes, valence and arousal.

Explained in chapter 6. Shapes: N images, E expression coefficients, K = 8 classes.

AffectNet cannot ship, so the evaluation chapter runs on this stand-in, written in AffectNet's own
layout so that the identical pipeline (:func:`tempsmirk.data.affectnet.prepare_affectnet`, then
:mod:`tempsmirk.evaluation.pipeline`) runs on either::

    ROOT/training.csv, ROOT/validation.csv     AffectNet's columns (guide section 2)
    ROOT/Manually_Annotated_Images/<k>/<name>.jpg
    ROOT/ground_truth.npz                      the FLAME parameters of every image (synthetic only)
    ROOT/meta.json                             the generating config; written last (= complete)

**Expressions.** Each class has a prototype (:data:`PROTOTYPES`) built from the built-in head's
named expression components (:mod:`tempsmirk.flame.builtin`: smile, frown, brow raise, ...) plus
a jaw opening and an eyelid closure. Image i of class k gets

    expression = s * prototype_k + n,     n ~ N(0, sigma^2) on the first ``noise_components``
    jaw open   = s * jaw_k + U(0, 0.03),  eyelids = clip((1 - s) * 0.1 + s * lid_k + N(0, 0.05^2))

with intensity s ~ U(``intensity_min``, ``intensity_max``) (Neutral's prototype is zero, so only
the noise moves it). With a real FLAME model the same component indices are PCA directions with
no names: the classes stay distinct but no longer look like their names.

**Valence and arousal** follow from the expression by a fixed mapping: the class's position on
Russell's circumplex (:data:`PROTOTYPES`, ``valence``/``arousal``) scaled by the intensity, plus a
small linear read-out of the expression noise (:data:`VALENCE_LOADINGS`: a smile and raised cheeks
raise valence, a frown or furrowed brow lowers it; :data:`AROUSAL_LOADINGS`: widened eyes and raised
brows raise arousal), plus annotation noise, clipped to [-1, 1]::

    (v, a) = s * c_k + va_expression_gain * L n + N(0, va_noise^2)

So valence, arousal and class are all recoverable from the expression parameters (up to the
annotation noise): an encoder that reads expressions well scores well, as on real AffectNet.

**Everything else varies as in** :class:`~tempsmirk.data.SyntheticConfig` (``faces``): identity,
head pose, gaze, camera; albedo, lights and background are shared by ``group_size`` images at a
time (one rendering call), with classes shuffled so no class owns an appearance.

**Class mix as AffectNet's**: the validation split has ``n_val_per_class`` images per class
(AffectNet's validation set is balanced, 500 per class); the training split has
8 x ``n_train_per_class`` images spread like AffectNet's manually annotated training split
(:data:`AFFECTNET_TRAIN_COUNTS`: about 47 % Happy, 26 % Neutral, 1.3 % Contempt; at least one
image per class), or evenly with ``train_class_mix="balanced"``. The skew is what EMOCA's
class-balanced sampler exists for.

**Files as AffectNet writes them**: expression codes 0-7, valence/arousal as decimals, the face
box in whole pixels, 68 landmarks (x;y pairs, pixel centres at integers). A ``dropped_fraction``
of extra training rows carries codes 8 (None), 9 (Uncertain) and 10 (No-Face, valence and arousal
-2), which the AffectNet reader must drop and report. The face box is the square that the
``csv_box`` crop rule (side x 1.25, :func:`tempsmirk.data.affectnet.box_crop_affine`) maps back onto
the whole rendered image: that rule (:data:`SYNTHETIC_CROP_RULE`) gives the demo encoders the
framing of the renders they were trained on. The other rules find the face in the image
(MediaPipe, or the 68 landmarks) and frame it tighter, as SMIRK's and EMOCA's encoders expect.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from tempsmirk.atomic import atomic_write_bytes
from tempsmirk.cachekey import cache_key
from tempsmirk.data.synthetic import SyntheticConfig, render_faces, sample_appearance, sample_params
from tempsmirk.evaluation.metrics import EMOTION_CLASSES
from tempsmirk.flame.params import FlameParams
from tempsmirk.paths import cache_dir

__all__ = [
    "ExpressionPrototype",
    "PROTOTYPES",
    "VALENCE_LOADINGS",
    "AROUSAL_LOADINGS",
    "IMAGES_DIR",
    "GROUND_TRUTH_FILE",
    "SYNTHETIC_CROP_RULE",
    "AFFECTNET_TRAIN_COUNTS",
    "train_class_counts",
    "SyntheticAffectNetConfig",
    "EmotionSample",
    "SyntheticGroundTruth",
    "sample_emotions",
    "write_synthetic_affectnet",
    "load_ground_truth",
    "ground_truth_params",
]

IMAGES_DIR = "Manually_Annotated_Images"  # AffectNet's images folder name
GROUND_TRUTH_FILE = "ground_truth.npz"
META_FILE = "meta.json"
CSV_HEADER = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
              "facial_landmarks", "expression", "valence", "arousal")
CROP_SCALE = 1.25  # AffectNet box -> crop (tempsmirk.data.affectnet.RULE_SCALES["csv_box"])
#: The crop rule that reproduces the renders' framing (the demo encoders' training framing).
SYNTHETIC_CROP_RULE = "csv_box"
#: Images per class in AffectNet's manually annotated training split (Mollahosseini et al., 2017).
AFFECTNET_TRAIN_COUNTS = (74874, 134415, 25459, 14090, 6378, 3803, 24882, 3750)
TRAIN_CLASS_MIXES = ("affectnet", "balanced")
IMAGES_PER_FOLDER = 500
REST_EYELIDS = 0.1

# The built-in head's named expression components (tempsmirk.flame.builtin.EXPRESSION_NAMES, in that
# order). A "lopsided" component moves the subject's left side one way and the right side the other:
# added to its symmetric partner it makes a one-sided action.
LOWER_LIP_DOWN, UPPER_LIP_RAISE, SMILE, LOPSIDED_SMILE, CHEEK_RAISE, FROWN, PUCKER, STRETCH = range(8)
LIP_PRESS, CHEEK_PUFF, INNER_BROW_RAISE, OUTER_BROW_RAISE, LOPSIDED_BROW_RAISE, EYE_CRINKLE = range(8, 14)
BROW_FURROW, NOSE_WRINKLE, SQUINT_LEFT, SQUINT_RIGHT, WIDEN_LEFT, WIDEN_RIGHT = range(14, 20)
CHIN_RAISE, DIMPLER = 20, 21
N_NAMED = 30


@dataclass(frozen=True)
class ExpressionPrototype:
    """One class's expression: (component, coefficient) pairs, jaw opening (radians), eyelid
    closure in [0, 1], and its valence/arousal centroid (Russell's circumplex, approximate)."""

    name: str
    components: tuple[tuple[int, float], ...]
    jaw_open: float
    eyelids: float
    valence: float
    arousal: float


PROTOTYPES = (
    ExpressionPrototype("Neutral", (), 0.0, REST_EYELIDS, 0.0, 0.0),
    ExpressionPrototype("Happy", ((SMILE, 3.5), (CHEEK_RAISE, 1.5), (SQUINT_LEFT, 1.2), (SQUINT_RIGHT, 1.2)),
                        0.06, 0.25, 0.75, 0.35),
    ExpressionPrototype("Sad", ((FROWN, 3.0), (INNER_BROW_RAISE, 2.5), (CHIN_RAISE, 1.5)),
                        0.0, 0.40, -0.65, -0.30),
    ExpressionPrototype("Surprise", ((INNER_BROW_RAISE, 2.5), (OUTER_BROW_RAISE, 2.5), (WIDEN_LEFT, 2.0),
                                     (WIDEN_RIGHT, 2.0), (LOWER_LIP_DOWN, 1.0)), 0.25, 0.0, 0.20, 0.75),
    ExpressionPrototype("Fear", ((INNER_BROW_RAISE, 2.5), (BROW_FURROW, 1.0), (WIDEN_LEFT, 2.0),
                                 (WIDEN_RIGHT, 2.0), (STRETCH, 2.5)), 0.12, 0.0, -0.55, 0.70),
    ExpressionPrototype("Disgust", ((NOSE_WRINKLE, 3.0), (UPPER_LIP_RAISE, 2.5), (BROW_FURROW, 1.5),
                                    (SQUINT_LEFT, 1.0), (SQUINT_RIGHT, 1.0), (FROWN, 1.0)),
                        0.03, 0.30, -0.65, 0.30),
    ExpressionPrototype("Anger", ((BROW_FURROW, 3.0), (LIP_PRESS, 2.0), (SQUINT_LEFT, 1.5),
                                  (SQUINT_RIGHT, 1.5), (CHIN_RAISE, 1.0)), 0.0, 0.15, -0.55, 0.60),
    # a one-sided smile: the lopsided smile cancels the symmetric one on the subject's right side
    ExpressionPrototype("Contempt", ((SMILE, 1.8), (LOPSIDED_SMILE, 1.8), (DIMPLER, 1.0)),
                        0.0, 0.20, -0.45, 0.15),
)
assert tuple(p.name for p in PROTOTYPES) == EMOTION_CLASSES

# Linear read-out of the expression noise into valence / arousal (rows normalised to unit length).
VALENCE_LOADINGS = ((SMILE, 1.0), (CHEEK_RAISE, 0.5), (FROWN, -1.0), (BROW_FURROW, -0.5))
AROUSAL_LOADINGS = ((WIDEN_LEFT, 0.5), (WIDEN_RIGHT, 0.5), (INNER_BROW_RAISE, 0.5),
                    (OUTER_BROW_RAISE, 0.5), (LIP_PRESS, 0.5))


@dataclass
class SyntheticAffectNetConfig:
    """How the synthetic AffectNet is drawn (module docstring).

    n_train_per_class, n_val_per_class: images per class in training.csv (on average; see
        ``train_class_mix``) / validation.csv.
    train_class_mix: ``"affectnet"`` (AffectNet's training skew) or ``"balanced"``.
    image_size: rendered image side in pixels.
    seed: everything is a function of the seed.
    intensity_min, intensity_max: range of the per-image intensity s.
    expression_noise, noise_components: std and extent of the expression noise n.
    va_expression_gain: weight of the linear read-out L n in valence/arousal.
    va_noise: std of the annotation noise on valence/arousal.
    dropped_fraction: extra training rows with codes 8/9/10 (as a fraction of the kept rows).
    group_size: images rendered together (they share albedo, lights and background).
    faces: identity, pose and camera ranges (its expression, jaw, eyelid and image-size fields
        are not used).
    """

    n_train_per_class: int = 500
    n_val_per_class: int = 100
    train_class_mix: str = "affectnet"
    image_size: int = 128
    seed: int = 0
    intensity_min: float = 0.25
    intensity_max: float = 1.2
    expression_noise: float = 0.5
    noise_components: int = 20
    va_expression_gain: float = 0.15
    va_noise: float = 0.05
    dropped_fraction: float = 0.02
    group_size: int = 16
    faces: SyntheticConfig = field(default_factory=lambda: SyntheticConfig(yaw=20.0, pitch=10.0, roll=5.0))


@dataclass(frozen=True)
class EmotionSample:
    """Drawn emotions for N images.

    expression: (N, E); jaw_pose: (N, 3); eyelids: (N, 2); intensity: (N,);
    valence, arousal: (N,) in [-1, 1] (AffectNet's -2 for code 10); label: (N,) int64 code.
    """

    expression: Tensor
    jaw_pose: Tensor
    eyelids: Tensor
    intensity: Tensor
    valence: Tensor
    arousal: Tensor
    label: Tensor


def _prototype_table(n_exp: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(K, E) prototypes, (K,) jaw openings, (K,) eyelid closures, (K, 2) V/A centroids."""
    if n_exp < N_NAMED:
        raise ValueError(f"the synthetic AffectNet's prototypes use expression components up to "
                         f"{N_NAMED - 1}; the FLAME model has only {n_exp}")
    protos = torch.zeros(len(PROTOTYPES), n_exp)
    for k, p in enumerate(PROTOTYPES):
        for c, v in p.components:
            protos[k, c] = v
    jaw = torch.tensor([p.jaw_open for p in PROTOTYPES])
    lids = torch.tensor([p.eyelids for p in PROTOTYPES])
    centroids = torch.tensor([[p.valence, p.arousal] for p in PROTOTYPES])
    return protos, jaw, lids, centroids


def _loadings(n_exp: int) -> Tensor:
    """(2, E) unit-length rows: the valence and arousal read-outs."""
    out = torch.zeros(2, n_exp)
    for row, pairs in enumerate((VALENCE_LOADINGS, AROUSAL_LOADINGS)):
        for c, v in pairs:
            out[row, c] = v
    return out / out.norm(dim=1, keepdim=True)


def sample_emotions(labels: Tensor, cfg: SyntheticAffectNetConfig, n_exp: int,
                    generator: torch.Generator) -> EmotionSample:
    """Draw expression, jaw, eyelids, valence and arousal for the given class codes (module docstring).

    labels: (N,) int codes; 0-7 follow their prototype; 8 (None) and 9 (Uncertain) get a random
    expression and random valence/arousal; 10 (No-Face) a random expression and -2/-2.
    """
    g = generator
    labels = labels.long()
    n = labels.shape[0]
    protos, jaw_k, lid_k, centroids = _prototype_table(n_exp)
    known = labels < len(PROTOTYPES)
    k = labels.clamp(max=len(PROTOTYPES) - 1)
    s = cfg.intensity_min + (cfg.intensity_max - cfg.intensity_min) * torch.rand(n, generator=g)
    noise = torch.zeros(n, n_exp)
    m = min(cfg.noise_components, n_exp)
    noise[:, :m] = torch.randn(n, m, generator=g) * cfg.expression_noise
    # Codes 8-10 have no prototype: an arbitrary expression like SyntheticFaces draws.
    wild = torch.zeros(n, n_exp)
    wild[:, :m] = torch.randn(n, m, generator=g) * 0.8
    expression = torch.where(known[:, None], s[:, None] * protos[k] + noise, wild)
    jaw_open = torch.where(known, s * jaw_k[k], 0.1 * torch.rand(n, generator=g)) \
        + 0.03 * torch.rand(n, generator=g)
    jaw_pose = torch.stack([jaw_open, 0.01 * torch.randn(n, generator=g),
                            0.01 * torch.randn(n, generator=g)], dim=1)
    lid = torch.where(known, (1 - s) * REST_EYELIDS + s * lid_k[k], torch.full((n,), REST_EYELIDS))
    eyelids = (lid[:, None] + 0.05 * torch.randn(n, 2, generator=g)).clamp(0, 1)
    va = s[:, None] * centroids[k] + cfg.va_expression_gain * noise @ _loadings(n_exp).T \
        + cfg.va_noise * torch.randn(n, 2, generator=g)
    random_va = torch.rand(n, 2, generator=g) * 2 - 1
    va = torch.where(known[:, None], va.clamp(-1, 1), random_va)
    va = torch.where((labels == 10)[:, None], torch.full_like(va, -2.0), va)
    return EmotionSample(expression=expression, jaw_pose=jaw_pose, eyelids=eyelids, intensity=s,
                         valence=va[:, 0], arousal=va[:, 1], label=labels)


@dataclass(frozen=True)
class SyntheticGroundTruth:
    """The parameters behind every image of a synthetic AffectNet (``ground_truth.npz``).

    paths: N subDirectory_filePath values (the CSVs' first column).
    params: :class:`~tempsmirk.flame.FlameParams` with (N, ...) fields.
    label: (N,) int64 code; intensity, valence, arousal: (N,) float.
    """

    paths: tuple[str, ...]
    params: FlameParams
    label: Tensor
    intensity: Tensor
    valence: Tensor
    arousal: Tensor


def train_class_counts(cfg: SyntheticAffectNetConfig) -> tuple[int, ...]:
    """Training images per class (8,): AffectNet's proportions of 8 x ``n_train_per_class``
    (rounded, at least 1 each), or ``n_train_per_class`` each for a balanced mix."""
    if cfg.train_class_mix == "balanced":
        return (cfg.n_train_per_class,) * len(PROTOTYPES)
    if cfg.train_class_mix != "affectnet":
        raise ValueError(f"train_class_mix must be one of {TRAIN_CLASS_MIXES}; got {cfg.train_class_mix!r}")
    total = cfg.n_train_per_class * len(PROTOTYPES)
    share = np.asarray(AFFECTNET_TRAIN_COUNTS, np.float64) / sum(AFFECTNET_TRAIN_COUNTS)
    return tuple(max(1, int(round(total * p))) for p in share)


def _config_dict(cfg: SyntheticAffectNetConfig) -> dict:
    return asdict(cfg)


def default_root(cfg: SyntheticAffectNetConfig) -> Path:
    """The cache folder for a config: one folder per distinct config."""
    key = cache_key(json.dumps(_config_dict(cfg), sort_keys=True), length=12)
    return cache_dir("evaluation", "synthetic_affectnet", key)


def _is_complete(root: Path, cfg: SyntheticAffectNetConfig) -> bool:
    meta = root / META_FILE
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text()).get("config") == json.loads(json.dumps(_config_dict(cfg)))
    except (OSError, ValueError):
        return False


def _csv_bytes(rows: Sequence[tuple]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _face_box(size: int) -> tuple[int, int, int, int]:
    """Whole-pixel (x, y, w, h): the square whose 1.25x crop is the whole image."""
    side = int(round(size / CROP_SCALE))
    corner = int(round((size - side) / 2))
    return corner, corner, side, side


def write_synthetic_affectnet(root: Optional[str | Path] = None,
                              cfg: Optional[SyntheticAffectNetConfig] = None, flame=None,
                              progress: bool = True) -> Path:
    """Render the synthetic AffectNet into ``root`` (module docstring); reuse it if already there.

    Args:
        root: output folder; None = a cache folder keyed by the config.
        cfg: :class:`SyntheticAffectNetConfig`.
        flame: the head to render (None = the built-in head, 300 shape / 50 expression components).
        progress: show a progress bar.
    Returns:
        the folder (pass it to :func:`tempsmirk.evaluation.pipeline.prepare_index`).
    """
    from tempsmirk.flame import FLAME
    from tempsmirk.video.io import write_image

    cfg = cfg or SyntheticAffectNetConfig()
    root = Path(root) if root is not None else default_root(cfg)
    if _is_complete(root, cfg):
        return root
    if cfg.image_size < 32 or cfg.n_train_per_class < 1 or cfg.n_val_per_class < 1:
        raise ValueError(f"synthetic AffectNet needs image_size >= 32 and at least one image per class "
                         f"and split; got {cfg.image_size}, {cfg.n_train_per_class}, {cfg.n_val_per_class}")
    flame = flame if flame is not None else FLAME.builtin(seed=0, n_shape=300, n_exp=50)
    g = torch.Generator().manual_seed(cfg.seed)
    n_classes = len(PROTOTYPES)
    n_dropped = int(math.ceil(cfg.dropped_fraction * cfg.n_train_per_class * n_classes))
    splits = []
    for split, per_class, extra in (("training", torch.tensor(train_class_counts(cfg)), n_dropped),
                                    ("validation", torch.full((n_classes,), cfg.n_val_per_class), 0)):
        codes = torch.cat([torch.arange(n_classes).repeat_interleave(per_class),
                           8 + torch.arange(extra) % 3])
        splits.append((split, codes[torch.randperm(len(codes), generator=g)]))

    size = cfg.image_size
    box = _face_box(size)
    paths: list[str] = []
    params: list[FlameParams] = []
    emotions: list[EmotionSample] = []
    total = sum(len(c) for _, c in splits)
    bar = tqdm(total=total, desc="synthetic AffectNet", unit="image", disable=not progress)
    for split, codes in splits:
        rows = []
        for start in range(0, len(codes), cfg.group_size):
            labels = codes[start:start + cfg.group_size]
            n = len(labels)
            base, eye = sample_params(cfg.faces, n, flame.n_shape, flame.n_exp, g)
            emo = sample_emotions(labels, cfg, flame.n_exp, g)
            p = FlameParams(global_pose=base.global_pose, cam=base.cam, shape=base.shape,
                            expression=emo.expression, eyelids=emo.eyelids, jaw_pose=emo.jaw_pose)
            appearance = sample_appearance(flame, size, g)
            images, lmk68, _ = render_faces(flame, p, eye, appearance, size)
            # Normalised -> AffectNet pixels (pixel centres at integers, tempsmirk.video.crops' convention).
            lmk_px = ((lmk68 + 1) * size / 2 - 0.5).numpy()
            pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            for j in range(n):
                i = start + j
                rel = f"{1 + i // IMAGES_PER_FOLDER}/{split}_{i:06d}.jpg"
                write_image(root / IMAGES_DIR / rel, pixels[j])
                lmk = ";".join(f"{v:.2f}" for v in lmk_px[j].reshape(-1))
                rows.append((rel, *box, lmk, int(emo.label[j]), f"{float(emo.valence[j]):.6f}",
                             f"{float(emo.arousal[j]):.6f}"))
                paths.append(rel)
            params.append(p)
            emotions.append(emo)
            bar.update(n)
        atomic_write_bytes(root / f"{split}.csv", _csv_bytes(rows))
    bar.close()
    allp = FlameParams.cat(params)
    cat = lambda name: torch.cat([getattr(e, name) for e in emotions]).numpy()  # noqa: E731
    buf = io.BytesIO()
    np.savez(buf, path=np.array(paths), label=cat("label"), intensity=cat("intensity"),
             valence=cat("valence"), arousal=cat("arousal"),
             **{name: t.numpy() for name, t in allp.as_dict().items()})
    atomic_write_bytes(root / GROUND_TRUTH_FILE, buf.getvalue())
    meta = {"config": _config_dict(cfg), "classes": list(EMOTION_CLASSES), "images": total,
            "flame": getattr(flame, "source", "FLAME")}
    atomic_write_bytes(root / META_FILE, json.dumps(meta, indent=1).encode("utf-8"))
    return root


def load_ground_truth(path: str | Path) -> SyntheticGroundTruth:
    """Read ``ground_truth.npz`` (or the synthetic root holding it).

    Raises:
        FileNotFoundError: no such file (real AffectNet has none: there is no oracle for it).
    """
    path = Path(path)
    if path.is_dir():
        path = path / GROUND_TRUTH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"ground-truth parameters {path} do not exist; they come with the "
                                f"synthetic AffectNet (write_synthetic_affectnet), not with real AffectNet")
    with np.load(path, allow_pickle=False) as z:
        t = {k: torch.from_numpy(z[k]) for k in z.files if k != "path"}
        paths = tuple(str(p) for p in z["path"])
    params = FlameParams.from_dict(t).map(lambda x: x.float())
    return SyntheticGroundTruth(paths, params, t["label"].long(), t["intensity"].float(),
                                t["valence"].float(), t["arousal"].float())


def ground_truth_params(gt: SyntheticGroundTruth, source_paths: Sequence[str]) -> FlameParams:
    """The ground-truth parameters in the order of ``source_paths`` (an index's ``source_paths``).

    Raises:
        ValueError: a path has no ground truth (the index is not from this synthetic set).
    """
    where = {p: i for i, p in enumerate(gt.paths)}
    missing = [p for p in source_paths if p not in where]
    if missing:
        raise ValueError(f"{len(missing)} of {len(source_paths)} index rows have no ground truth "
                         f"(e.g. {missing[:3]}); the index was not made from this synthetic set")
    return gt.params[torch.tensor([where[p] for p in source_paths], dtype=torch.long)]
