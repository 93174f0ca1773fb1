"""SMIRK's augmented cycle: edit the parameters, generate the edited face, read the edit back.

Explained in chapter 3. Shapes: B batch, H W image size, E expression coefficients, K templates.
This is the reference code's second path (``step2`` of SMIRK's ``smirk_trainer.py``), with its
numbers (the constants below). Starting from the encoder's detached parameters, the batch is
split at random into four groups of ⌊B/4⌋, ⌊2B/4⌋ − ⌊B/4⌋, ⌊3B/4⌋ − ⌊2B/4⌋ and the rest, and each
group's expression ψ is edited (:func:`augment_params`):

====== ============ ===========================================================================
kind   name         ψ becomes (U: uniform per sample, n: N(0, 1) per coefficient)
====== ============ ===========================================================================
0      ``perturb``  clamp(ψ + (1 + 2U)·n·m, ±4) + 0.2U·n, m Bernoulli(½) per coefficient
1      ``permute``  (0.25 + 1.25U) · ψ of another member of the group + 0.2U·n
2      ``template`` (0.25 + 1.25U) · a template + 0.2U·n (a template group uniformly, then a row)
3      ``zero``     0.2U·n, with the jaw set to 0 and the eyelids to U(0, 1)
====== ============ ===========================================================================

Every sample's jaw gets, with probability ½, N(0, 0.2²) noise scaled (1, 0.1, 0.1) per axis, its
opening then clamped to [0, 0.5]; every sample's eyelids move by U(−0.25, 0.25), clamped to
[0, 1] (before the zero group's overwrite). Shape, pose and camera stay. The pass itself,
:func:`tempsmirk.training.step.cycle_path`, renders the edited mesh; **fresh** points are
sampled on the original mesh and painted where they land on the edited one
(:mod:`tempsmirk.smirk.masking`), the face is hidden as in the reconstruction path (minus the
*edited* rendering; dropout 0.5 %), the generator draws the edited face and the encoder reads it
back (:func:`tempsmirk.losses.cycle_loss`: MSE(ψ) + 10·MSE(jaw) + 10·MSE(eyelids), + MSE(β)
when the generator is the one training).

**Templates.** SMIRK injects FaMoS expressions: a folder ``<subject>/<class>/*.npy`` (each an
``np.save``'d dict with ``expression``), of which the classes :data:`FAMOS_CLASSES` are read; a
template is drawn by picking a subject-class group uniformly, then a row. :func:`load_templates`
reads that folder (without running code from the files), or a single (K, E') ``.npy``/``.npz``/
``.pt`` file as one group. Without either, :func:`builtin_templates` builds a documented stand-in
from the expression basis itself: ±``amplitude`` along each of the first ``n_components``
components and n two-component mixtures with fixed random signs. On the built-in head these are
its procedural expression components; on real FLAME they are FLAME's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor

from tempsmirk.flame.params import FlameParams

__all__ = ["CycleConfig", "AUGMENTATIONS", "FAMOS_CLASSES", "ExpressionTemplates", "Augmented",
           "builtin_templates", "load_templates", "augment_params"]

PathLike = Union[str, os.PathLike]
AUGMENTATIONS = ("perturb", "permute", "template", "zero")
#: The FaMoS template classes SMIRK's ``load_templates`` reads.
FAMOS_CLASSES = ("lips_back", "rolling_lips", "mouth_side", "kissing", "high_smile", "mouth_up",
                 "mouth_middle", "mouth_down", "blow_cheeks", "cheeks_in", "jaw", "lips_up")

# The reference's numbers (``step2``).
PERTURB_PROBABILITY = 0.5       # share of coefficients a perturbation touches
PERTURB_STD = (1.0, 3.0)        # its std, uniform per sample
EXPRESSION_CLAMP = 4.0
NOISE_STD_MAX = 0.2             # extra noise: std uniform in [0, this] per sample
SCALE = (0.25, 1.5)             # permuted and template expressions scaled uniformly in this range
JAW_STD = 0.2
JAW_AXIS_SCALE = (1.0, 0.1, 0.1)
JAW_PROBABILITY = 0.5
JAW_OPEN_MAX = 0.5
EYELID_JITTER = 0.25


@dataclass
class CycleConfig:
    """The augmented cycle (the ``loss.cycle_path`` config section; its weight, 0 for no cycle, is
    ``loss.weights.cycle``).

    templates_path: expression templates, a folder in SMIRK's FaMoS layout or a (K, E) file
        (module docstring); None = the built-in bank.
    template_components, template_amplitude: the built-in bank's n and amplitude.
    """

    templates_path: Optional[str] = None
    template_components: int = 10
    template_amplitude: float = 2.0


@dataclass(frozen=True)
class ExpressionTemplates:
    """A bank of expression templates in groups (SMIRK: one group per FaMoS subject and class).

    expression: (K, E) float; group: (K,) int64 group index, rows of a group contiguous.
    """

    expression: Tensor
    group: Tensor

    def __post_init__(self) -> None:
        if self.expression.dim() != 2 or self.expression.shape[0] == 0:
            raise ValueError(f"expression templates: expected (K, E) with K >= 1; got {tuple(self.expression.shape)}")
        if self.group.shape != self.expression.shape[:1]:
            raise ValueError(f"expression templates: group {tuple(self.group.shape)} does not match K = "
                             f"{self.expression.shape[0]}")

    @property
    def n_groups(self) -> int:
        return int(self.group.max()) + 1

    def to(self, device) -> "ExpressionTemplates":
        return ExpressionTemplates(self.expression.to(device), self.group.to(device))

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` rows as SMIRK draws them (a group uniformly, then a row in it): (n, E)."""
        group = self.group.cpu()
        counts = torch.bincount(group, minlength=self.n_groups)
        starts = torch.cumsum(counts, 0) - counts
        g = torch.randint(0, self.n_groups, (n,), generator=generator)
        row = (torch.rand(n, generator=generator) * counts[g]).long().clamp(max=counts[g] - 1)
        return self.expression[(starts[g] + row).to(self.expression.device)]


def builtin_templates(n_exp: int, n_components: int = 10, amplitude: float = 2.0) -> ExpressionTemplates:
    """The stand-in template bank (module docstring): 3·n rows, one group, deterministic."""
    n = min(n_components, n_exp)
    eye = torch.eye(n_exp)[:n] * amplitude
    g = torch.Generator().manual_seed(0)
    partner = (torch.arange(n) + 1 + torch.randint(0, max(n - 1, 1), (n,), generator=g)) % max(n, 1)
    signs = torch.randint(0, 2, (n, 2), generator=g).float() * 2 - 1
    mixes = torch.zeros(n, n_exp)
    mixes[torch.arange(n), torch.arange(n)] = signs[:, 0] * amplitude / 2 ** 0.5
    mixes[torch.arange(n), partner] += signs[:, 1] * amplitude / 2 ** 0.5
    rows = torch.cat([eye, -eye, mixes])
    return ExpressionTemplates(rows, torch.zeros(len(rows), dtype=torch.long))


def _fit(t: Tensor, n_exp: int) -> Tensor:
    if t.shape[1] >= n_exp:
        return t[:, :n_exp].contiguous()
    return torch.cat([t, t.new_zeros(t.shape[0], n_exp - t.shape[1])], dim=1)


def _famos_folder(root: Path, n_exp: int) -> ExpressionTemplates:
    from tempsmirk.flame.io import load_npy_restricted

    groups = []
    for subject in sorted(p for p in root.iterdir() if p.is_dir()):
        for cls in FAMOS_CLASSES:
            folder = subject / cls
            if not folder.is_dir():
                continue
            rows = []
            for f in sorted(folder.glob("*.npy")):
                obj = load_npy_restricted(f)
                if not (isinstance(obj, dict) and "expression" in obj):
                    raise ValueError(f"{f}: expected an np.save'd dict with key 'expression' (SMIRK's "
                                     f"FaMoS template layout); found {type(obj).__name__}")
                rows.append(np.asarray(obj["expression"], dtype=np.float32).reshape(-1))
            if rows:
                groups.append(torch.from_numpy(np.stack(rows)))
    if not groups:
        raise ValueError(f"{root}: no templates found; expected <subject>/<class>/*.npy with classes among "
                         f"{list(FAMOS_CLASSES)} (SMIRK's expression_templates_famos layout)")
    expression = torch.cat([_fit(g, n_exp) for g in groups])
    group = torch.cat([torch.full((len(g),), i, dtype=torch.long) for i, g in enumerate(groups)])
    return ExpressionTemplates(expression, group)


def load_templates(path: PathLike, n_exp: int) -> ExpressionTemplates:
    """Expression templates from a folder in SMIRK's FaMoS layout or from one file (module
    docstring), cut or zero-padded to ``n_exp`` coefficients.

    Files: ``.npy``; ``.npz`` with key ``expression`` (or a single array); ``.pt``/``.pth`` holding
    a tensor or a dict with ``expression`` (read with ``weights_only=True``): one group.
    """
    path = Path(path)
    if path.is_dir():
        return _famos_folder(path, n_exp)
    if not path.is_file():
        raise FileNotFoundError(f"expression templates {path} do not exist; give SMIRK's FaMoS folder "
                                f"(<subject>/<class>/*.npy), a (K, E) .npy/.npz/.pt file, or leave "
                                f"loss.cycle_path.templates_path empty for the built-in bank")
    if path.suffix == ".npy":
        arr = np.load(path, allow_pickle=False)
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            if "expression" in z:
                arr = z["expression"]
            elif len(keys) == 1:
                arr = z[keys[0]]
            else:
                raise ValueError(f"{path}: expected key 'expression' (or a single array); found {keys}")
    elif path.suffix in (".pt", ".pth"):
        obj = torch.load(path, map_location="cpu", weights_only=True)
        arr = obj["expression"] if isinstance(obj, dict) else obj
        arr = torch.as_tensor(arr).numpy()
    else:
        raise ValueError(f"{path}: unsupported templates file type {path.suffix!r}; use .npy, .npz, .pt "
                         f"or SMIRK's FaMoS folder")
    t = torch.as_tensor(np.asarray(arr), dtype=torch.float32)
    if t.dim() != 2 or t.shape[0] == 0 or not torch.isfinite(t).all():
        raise ValueError(f"{path}: expected a finite (K, E) array of expression templates with K >= 1; "
                         f"got shape {tuple(t.shape)}")
    return ExpressionTemplates(_fit(t, n_exp), torch.zeros(t.shape[0], dtype=torch.long))


@dataclass(frozen=True)
class Augmented:
    """Edited parameters and which edit each element got.

    params: :class:`~tempsmirk.flame.FlameParams` (B, ...) — shape, pose and camera unchanged.
    kind: (B,) int64 index into :data:`AUGMENTATIONS`.
    """

    params: FlameParams
    kind: Tensor


def _groups(b: int, generator: torch.Generator) -> Tensor:
    """SMIRK's random split into four groups: (B,) int64 kind per element."""
    perm = torch.randperm(b, generator=generator)
    bounds = [0, b // 4, 2 * b // 4, 3 * b // 4, b]
    kind = torch.empty(b, dtype=torch.long)
    for k in range(4):
        kind[perm[bounds[k]:bounds[k + 1]]] = k
    return kind


def augment_params(params: FlameParams, templates: ExpressionTemplates, generator: torch.Generator) -> Augmented:
    """SMIRK's parameter edits (module docstring): every draw from ``generator`` (CPU).

    Args:
        params: (B, ...) encoder outputs (detached here).
        templates: the template bank.
    """
    p = params.detach()
    b, e = p.expression.shape
    device, dtype = p.expression.device, p.expression.dtype
    g = generator

    def u(*shape):
        return torch.rand(*shape, generator=g)

    def n(*shape):
        return torch.randn(*shape, generator=g)

    kind = _groups(b, g)
    exp = p.expression.cpu().float()
    noise = NOISE_STD_MAX * u(b, 1) * n(b, e)  # the small extra noise every expression edit gets
    # 0: perturb half the coefficients
    touched = (u(b, e) < PERTURB_PROBABILITY).float()
    std = PERTURB_STD[0] + (PERTURB_STD[1] - PERTURB_STD[0]) * u(b, 1)
    perturbed = (exp + n(b, e) * std * touched).clamp(-EXPRESSION_CLAMP, EXPRESSION_CLAMP)
    # 1: another member of the same group, scaled
    source = torch.arange(b)
    members = (kind == 1).nonzero().squeeze(1)
    source[members] = members[torch.randperm(len(members), generator=g)]
    scale = SCALE[0] + (SCALE[1] - SCALE[0]) * u(b, 1)
    permuted = scale * exp[source]
    # 2: a template, scaled
    template = (SCALE[0] + (SCALE[1] - SCALE[0]) * u(b, 1)) * templates.sample(b, g).cpu().float()
    k = kind[:, None]
    edited = torch.where(k == 0, perturbed, torch.where(k == 1, permuted, torch.where(k == 2, template, 0.0)))
    expression = edited + noise

    jaw = p.jaw_pose.cpu().float()
    on = (u(b) < JAW_PROBABILITY).float()[:, None]
    jaw = jaw + n(b, 3) * JAW_STD * torch.tensor(JAW_AXIS_SCALE) * on
    jaw = torch.cat([jaw[:, :1].clamp(0.0, JAW_OPEN_MAX), jaw[:, 1:]], dim=1)
    lids = (p.eyelids.cpu().float() + (2 * u(b, 2) - 1) * EYELID_JITTER).clamp(0.0, 1.0)
    # 3: zero expression, closed jaw, any eyelids
    zero = kind == 3
    jaw = torch.where(zero[:, None], 0.0, jaw)
    lids = torch.where(zero[:, None], u(b, 2), lids)

    to = lambda x: x.to(device=device, dtype=dtype)  # noqa: E731
    out = FlameParams(global_pose=p.global_pose, cam=p.cam, shape=p.shape, expression=to(expression),
                      eyelids=to(lids), jaw_pose=to(jaw))
    return Augmented(params=out, kind=kind.to(device))
