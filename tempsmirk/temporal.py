"""Temporal losses on clips of FLAME parameters, and the jitter metrics that measure flicker.

Explained in chapter 4 (paper §3.3, eqs. 3–5). Shapes: B clips, T frames per clip, D parameter
dimensions, V vertices, S shape coefficients, E expression coefficients.

A clip is T consecutive frames of one subject; every function here takes tracks with a leading
(B, T) pair of axes and works within each clip: consecutive differences are never taken across two
clips. The trainer runs the encoder on flattened (B·T, ...) frames and regroups its output with
:func:`clips` / :func:`clip_params`.

Losses (differentiable, used in training):

- :func:`smoothness_loss` — eq. (3), L1 of consecutive differences;
- :func:`identity_loss` — eq. (4), spread of the shape coefficients around the clip mean;
- :func:`temporal_loss` — both applied to a :class:`~tempsmirk.flame.FlameParams`
  with :class:`TemporalWeights`, the temporal part of eq. (5).

**Reduction over the parameter dimensions** (:data:`REDUCTIONS`). The paper prints eqs. (3)–(4)
with norms, which *sum* over the D dimensions of a group; the code that produced the paper's
Table 2 (repository ``steveliu2000/3dcv2025_final``, ``compute_temporal_losses``) takes element
*means* instead — ``(p[1:] − p[:-1]).abs().mean()`` and ``((β − β̄)²).mean()`` over one clip —
and its reference weights were tuned for those. ``"mean"`` (the default) is the fork's value,
``"sum"`` the equations as printed: exactly D times larger (50× for the expression, 3× jaw and
pose, 2× eyelids, 300× identity), so at the same weights a sum is D times stronger. Chapter 4
shows the factor.

Metrics (for evaluation; no gradient needed): :func:`acceleration`, :func:`jerk`,
:func:`acceleration_error`, :func:`identity_variance`, :func:`rotation_angle_deg`,
:func:`pose_normalised_vertices` and :func:`jitter_report`, which always puts per-frame error next
to jitter, so that over-smoothing cannot pass as an improvement.

:func:`denoise_tracks` smooths given tracks with eq. (3) directly (post-processing; chapter 4 uses
it to show the over-smoothing trade-off).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Optional

import torch
from torch import Tensor

from tempsmirk.flame.params import FlameParams
from tempsmirk.losses.weights import weighted_sum

__all__ = [
    "REDUCTIONS",
    "TEMPORAL_TERMS",
    "smoothness_loss",
    "identity_loss",
    "TemporalWeights",
    "TemporalTerms",
    "temporal_loss",
    "clips",
    "clip_params",
    "flatten_clips",
    "acceleration",
    "jerk",
    "acceleration_error",
    "identity_variance",
    "denoise_tracks",
    "rotation_angle_deg",
    "pose_normalised_vertices",
    "JitterReport",
    "jitter_report",
]

_DEG = 180.0 / math.pi
_MM = 1000.0  # FLAME units are metres


# ---------------------------------------------------------------------------- clip layout
def clips(x: Tensor, t: int) -> Tensor:
    """Regroup flattened frames into clips: x (B·T, ...) -> (B, T, ...).

    Frames must be clip-major (all T frames of clip 0, then clip 1, ...), which is what flattening
    a (B, T, ...) batch with ``reshape`` produces (e.g. :meth:`tempsmirk.data.FaceBatch.frames`).
    """
    if t < 1:
        raise ValueError(f"clip length t must be >= 1; got {t}")
    if x.dim() < 1 or x.shape[0] % t:
        raise ValueError(f"cannot regroup {tuple(x.shape)} into clips of t={t} frames: the first "
                         f"axis (B·T) must be a multiple of t; pass the clip length the batch was "
                         f"flattened with")
    return x.reshape(x.shape[0] // t, t, *x.shape[1:])


def clip_params(params: FlameParams, t: int) -> FlameParams:
    """:func:`clips` on every field: (B·T, ...) fields -> (B, T, ...) fields."""
    return params.map(lambda x: clips(x, t))


def flatten_clips(params: FlameParams) -> FlameParams:
    """The inverse of :func:`clip_params`: (B, T, ...) fields -> (B·T, ...) fields."""
    return params.map(lambda x: x.flatten(0, 1))


def _check_clip(x: Tensor, name: str, min_t: int, dims: tuple[int, ...] = (3,)) -> None:
    if x.dim() not in dims:
        want = " or ".join({3: "(B, T, D)", 4: "(B, T, V, 3)"}[d] for d in dims)
        raise ValueError(f"{name} should be a clip track {want}; got shape {tuple(x.shape)}. "
                         f"Regroup flattened (B·T, ...) frames with tempsmirk.temporal.clips(x, T)")
    if dims == (3, 4) and x.dim() == 4 and x.shape[-1] != 3:
        raise ValueError(f"{name}: a vertex track is (B, T, V, 3); got shape {tuple(x.shape)}")
    if x.shape[1] < min_t:
        raise ValueError(f"{name} needs clips of at least {min_t} frames; got T={x.shape[1]} "
                         f"(shape {tuple(x.shape)})")


# ---------------------------------------------------------------------------- losses
#: How the temporal losses reduce over the D parameter dimensions (module docstring):
#: ``"mean"`` as the code behind the paper's Table 2, ``"sum"`` as eqs. (3)–(4) are printed.
REDUCTIONS = ("mean", "sum")
#: The temporal terms of eq. (5), in the order of :class:`TemporalWeights` and :class:`TemporalTerms`.
TEMPORAL_TERMS = ("expression", "jaw", "pose", "eyelids", "identity")


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS} ('mean': element means, as the code "
                         f"behind Table 2; 'sum': eqs. (3)-(4) as printed); got {reduction!r}")


def _over_clips(values: Tensor, per_clip: bool) -> Tensor:
    """(B,) per-clip values, or their mean (with equal T per clip: the mean over every element)."""
    return values if per_clip else values.mean()


def smoothness_loss(p: Tensor, reduction: str = "mean", per_clip: bool = False) -> Tensor:
    """Eq. (3): the size of a frame-to-frame step, L_smooth = 1/(T−1) Σ_t ‖p_{t+1} − p_t‖₁.

    p: (B, T, D) time-varying parameters (expression, pose, jaw or eyelids), T >= 2 -> () tensor,
    the mean over the B clips, or (B,) per clip with ``per_clip=True``.
    reduction: ``"mean"`` — the mean |p_{t+1,d} − p_{t,d}| over the T−1 steps and the D
    dimensions (the code behind Table 2: ``(p[1:] − p[:-1]).abs().mean()`` on one clip);
    ``"sum"`` — as printed: the L1 norm sums over D, the mean runs over the T−1 steps. ``"sum"``
    is exactly D × ``"mean"``. Differences are taken within clips only. Explained in chapter 4.
    """
    _check_clip(p, "smoothness_loss input", 2)
    _check_reduction(reduction)
    step = (p[:, 1:] - p[:, :-1]).abs()
    return _over_clips(step.sum(-1).mean(1) if reduction == "sum" else step.mean((1, 2)), per_clip)


def identity_loss(beta: Tensor, reduction: str = "mean", per_clip: bool = False) -> Tensor:
    """Eq. (4): the spread of the shape around its clip mean, L_id = 1/T Σ_t ‖β_t − β̄‖²₂.

    beta: (B, T, S) shape coefficients, T >= 2 -> () tensor, the mean over the B clips, or (B,)
    per clip with ``per_clip=True``. reduction: ``"mean"`` — the mean (β_{t,s} − β̄_s)² over the T
    frames and the S coefficients (the code behind Table 2: ``((β − β̄)²).mean()`` on one clip);
    ``"sum"`` — as printed: the squared norm sums over S, the mean runs over the T frames
    (S × ``"mean"``). Explained in chapter 4.
    """
    _check_clip(beta, "identity_loss input", 2)
    _check_reduction(reduction)
    dev = (beta - beta.mean(1, keepdim=True)).pow(2)
    return _over_clips(dev.sum(-1).mean(1) if reduction == "sum" else dev.mean((1, 2)), per_clip)


@dataclass(frozen=True)
class TemporalWeights:
    """Weights of the temporal terms in eq. (5), and the reduction they are meant for.

    expression, jaw, pose (global head pose), eyelids: weights of eq. (3) on each parameter group.
    identity: weight of eq. (4) on the shape coefficients.
    reduction: ``"mean"`` or ``"sum"`` over the parameter dimensions (:data:`REDUCTIONS`). A weight
        means something only together with its reduction — the same weight is D times stronger
        under ``"sum"`` — so the two travel together.

    Defaults: the paper's reference values with the reduction of the code that produced its
    Table 2 (element means). The config's ``temporal.weights`` section
    (:class:`tempsmirk.config.TemporalConfig`).
    """

    expression: float = 0.1
    jaw: float = 0.05
    pose: float = 0.1
    eyelids: float = 0.05
    identity: float = 0.05
    reduction: str = "mean"

    def __post_init__(self) -> None:
        bad = {k: getattr(self, k) for k in TEMPORAL_TERMS
               if not (getattr(self, k) >= 0 and math.isfinite(getattr(self, k)))}
        if bad:
            raise ValueError(f"temporal weights must be finite and >= 0; got {bad}")
        _check_reduction(self.reduction)

    def scaled(self, factor: float) -> "TemporalWeights":
        """Every weight times ``factor`` (the reduction unchanged)."""
        return replace(self, **{k: getattr(self, k) * factor for k in TEMPORAL_TERMS})


@dataclass(frozen=True)
class TemporalTerms:
    """The temporal terms of one batch of clips: each an unweighted () tensor, plus their weighted sum.

    Each term is reduced over its dimensions as the weights' ``reduction`` said.
    expression, jaw, pose, eyelids: eq. (3) on each parameter group.
    identity: eq. (4) on the shape coefficients.
    total: Σ weight · term (what is added to the SMIRK loss, eq. 5).
    """

    expression: Tensor
    jaw: Tensor
    pose: Tensor
    eyelids: Tensor
    identity: Tensor
    total: Tensor

    def as_floats(self) -> dict[str, float]:
        """Every term as a Python float (for logging)."""
        return {f.name: float(getattr(self, f.name).detach()) for f in fields(self)}


def temporal_loss(params: FlameParams, weights: TemporalWeights = TemporalWeights()) -> TemporalTerms:
    """Eqs. (3)–(4) on a batch of clips, weighted as in eq. (5). Explained in chapter 4.

    params: (B, T, ...) fields (regroup encoder output with :func:`clip_params`); the camera is not
    regularised. Each term is reduced over its dimensions as ``weights.reduction`` says. Returns
    :class:`TemporalTerms` whose ``total`` is differentiable.
    """
    r = weights.reduction
    terms = dict(expression=smoothness_loss(params.expression, r), jaw=smoothness_loss(params.jaw_pose, r),
                 pose=smoothness_loss(params.global_pose, r), eyelids=smoothness_loss(params.eyelids, r),
                 identity=identity_loss(params.shape, r))
    return TemporalTerms(**terms, total=weighted_sum(weights, terms))


# ---------------------------------------------------------------------------- jitter metrics
def _norm(d: Tensor) -> Tensor:
    """Per-step size of a difference track: (B, T', D) -> norm over D; (B, T', V, 3) -> per-vertex
    Euclidean norm averaged over V. Returns (B, T')."""
    n = d.norm(dim=-1)
    return n.mean(-1) if d.dim() == 4 else n


def acceleration(x: Tensor) -> Tensor:
    """‖x_{t−1} − 2x_t + x_{t+1}‖ per step: x (B, T, D) or (B, T, V, 3), T >= 3 -> (B, T−2).

    Units of x per frame². For vertices the norm is per vertex, then averaged over V. Explained in
    chapter 4.
    """
    _check_clip(x, "acceleration input", 3, (3, 4))
    return _norm(torch.diff(x, n=2, dim=1))


def jerk(x: Tensor) -> Tensor:
    """Norm of the third difference x_{t+2} − 3x_{t+1} + 3x_t − x_{t−1}: x (B, T, D) or
    (B, T, V, 3), T >= 4 -> (B, T−3). Explained in chapter 4."""
    _check_clip(x, "jerk input", 4, (3, 4))
    return _norm(torch.diff(x, n=3, dim=1))


def acceleration_error(pred: Tensor, target: Tensor) -> Tensor:
    """‖Δ²pred_t − Δ²target_t‖ per step (Δ² the second difference): pred, target (B, T, D) or
    (B, T, V, 3), same shape, T >= 3 -> (B, T−2). Zero for a prediction that is off by a constant or
    a linear drift; large for flicker. Explained in chapter 4."""
    _check_clip(pred, "acceleration_error pred", 3, (3, 4))
    if pred.shape != target.shape:
        raise ValueError(f"acceleration_error: pred {tuple(pred.shape)} and target "
                         f"{tuple(target.shape)} must have the same shape")
    return _norm(torch.diff(pred - target, n=2, dim=1))


def identity_variance(beta: Tensor) -> Tensor:
    """Per clip, 1/T Σ_t ‖β_t − β̄‖² (summed over S, as eq. 4 is printed): beta (B, T, S) -> (B,).
    The metric form of eq. (4) (``identity_loss(beta, "sum")`` is its mean over clips).
    Explained in chapter 4."""
    return identity_loss(beta, reduction="sum", per_clip=True)


def denoise_tracks(y: Tensor, weights: Tensor, steps: int = 300, lr: float = 0.02) -> Tensor:
    """Smooth tracks by minimising, per clip, 1/T Σ_t ‖q_t − y_t‖² + λ · L_smooth(q) (eq. 3 as
    printed: both terms sum over D).

    y: (B, T, D) observed (noisy) tracks; weights: (Λ,) values of λ >= 0, all solved at once.
    Returns (Λ, B, T, D), detached. Adam from q = y with a cosine-decayed step (``lr`` in the
    units of y): the answer is good to about ``lr / 100``, and q moves at most about
    ``lr · steps / 2`` from y, so scale ``lr`` with the tracks' range. Per-frame post-processing
    with the training loss's smoothness term: chapter 4 uses it to show how a growing λ first
    removes flicker, then flattens real motion.
    """
    _check_clip(y, "denoise_tracks input", 2)
    weights = torch.as_tensor(weights, dtype=y.dtype, device=y.device).reshape(-1)
    if (weights < 0).any():
        raise ValueError(f"denoise_tracks weights must be >= 0; got {weights.tolist()}")
    n, (b, t, d) = weights.numel(), y.shape
    y = y.detach()
    q = y.expand(n, b, t, d).clone().requires_grad_()
    opt = torch.optim.Adam([q], lr=lr)
    lam = weights.repeat_interleave(b)  # the (Λ·B) clips below are λ-major
    with torch.enable_grad():
        for i in range(steps):
            # Cosine decay by hand (the scheduler class costs more than this small step).
            opt.param_groups[0]["lr"] = lr * (0.001 + 0.999 * (1 + math.cos(math.pi * i / steps)) / 2)
            flat = q.reshape(n * b, t, d)
            data = (flat - y.repeat(n, 1, 1)).pow(2).sum(-1).mean(1)
            # Sum over λ of independent problems: each clip's gradient sees only its own objective.
            loss = (data + lam * smoothness_loss(flat, reduction="sum", per_clip=True)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return q.detach()


def rotation_angle_deg(a: Tensor, b: Tensor) -> Tensor:
    """Geodesic angle between two axis-angle rotations, in degrees: a, b (..., 3) -> (...).

    The angle of R(a)ᵀR(b), computed with atan2 (accurate for small angles, unlike acos).
    """
    from tempsmirk.flame.lbs import batch_rodrigues

    shape = a.shape[:-1]
    ra = batch_rodrigues(a.reshape(-1, 3))
    rb = batch_rodrigues(b.reshape(-1, 3))
    r = ra.transpose(1, 2) @ rb
    cos = (r.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2
    skew = torch.stack([r[:, 2, 1] - r[:, 1, 2], r[:, 0, 2] - r[:, 2, 0], r[:, 1, 0] - r[:, 0, 1]], -1)
    sin = skew.norm(dim=-1) / 2
    return (torch.atan2(sin, cos) * _DEG).reshape(shape)


def pose_normalised_vertices(flame, params: FlameParams) -> Tensor:
    """FLAME vertices with the global rotation set to zero and no camera: (B, T, V, 3), metres.

    params: (B, T, ...) fields. Head motion then does not count as flicker; shape, expression, jaw
    and eyelids do. Eyes and neck stay at rest. All B·T frames go through FLAME in one call.
    Explained in chapter 4.
    """
    _check_clip(params.expression, "pose_normalised_vertices params.expression", 1)
    b, t = params.expression.shape[:2]
    p = flatten_clips(params)
    out = flame.forward_params(replace(p, global_pose=torch.zeros_like(p.global_pose)))
    return out.vertices.reshape(b, t, *out.vertices.shape[1:])


@dataclass(frozen=True)
class JitterReport:
    """Jitter and per-frame accuracy of a batch of clips, as Python floats (means over clips and
    steps). Explained in chapter 4.

    Jitter of the prediction (mean acceleration = mean ‖second difference‖ per frame², jerk =
    third difference):
        expression_accel, expression_jerk: coefficient units.
        jaw_accel_deg, jaw_jerk_deg, pose_accel_deg, pose_jerk_deg: norm of the axis-angle
            differences, in degrees.
        eyelids_accel: closure units.
        shape_variance: :func:`identity_variance` of the shape coefficients.
        vertex_accel_mm, vertex_jerk_mm: pose-normalised vertices (per-vertex norm, mean over V),
            millimetres; None without a FLAME.
    Against a target (None without one):
        *_accel_error*: :func:`acceleration_error`, same units as the accelerations.
        expression_rmse: root mean square expression error over frames and coefficients.
        jaw_error_deg, pose_error_deg: mean geodesic angle between predicted and target rotation.
        vertex_error_mm: mean per-vertex distance of the pose-normalised meshes; None without FLAME.
    """

    expression_accel: float
    expression_jerk: float
    jaw_accel_deg: float
    jaw_jerk_deg: float
    pose_accel_deg: float
    pose_jerk_deg: float
    eyelids_accel: float
    shape_variance: float
    vertex_accel_mm: Optional[float] = None
    vertex_jerk_mm: Optional[float] = None
    expression_accel_error: Optional[float] = None
    jaw_accel_error_deg: Optional[float] = None
    pose_accel_error_deg: Optional[float] = None
    vertex_accel_error_mm: Optional[float] = None
    expression_rmse: Optional[float] = None
    jaw_error_deg: Optional[float] = None
    pose_error_deg: Optional[float] = None
    vertex_error_mm: Optional[float] = None

    def as_row(self) -> dict[str, float]:
        """The metrics that were computed (None ones left out), for a table row."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@torch.no_grad()
def jitter_report(pred: FlameParams, flame=None, target: Optional[FlameParams] = None,
                  target_vertices: Optional[Tensor] = None) -> JitterReport:
    """Summarise jitter (and, with a target, per-frame error) of predicted clips.

    pred, target: (B, T, ...) fields, T >= 4, same shapes. flame: a FLAME layer for the vertex
    metrics (pose-normalised, :func:`pose_normalised_vertices`), or None to skip them.
    target_vertices: (B, T, V, 3) ``pose_normalised_vertices(flame, target)`` when already at hand
    (saves a FLAME pass when many predictions meet one target). Explained in chapter 4.
    """
    _check_clip(pred.expression, "jitter_report pred.expression", 4)
    if target is not None:
        for name, x in pred.as_dict().items():
            if x.shape != getattr(target, name).shape:
                raise ValueError(f"jitter_report: pred.{name} {tuple(x.shape)} "
                                 f"and target.{name} {tuple(getattr(target, name).shape)} differ")
    mean = lambda x: float(x.mean())  # noqa: E731
    r = dict(
        expression_accel=mean(acceleration(pred.expression)), expression_jerk=mean(jerk(pred.expression)),
        jaw_accel_deg=mean(acceleration(pred.jaw_pose)) * _DEG, jaw_jerk_deg=mean(jerk(pred.jaw_pose)) * _DEG,
        pose_accel_deg=mean(acceleration(pred.global_pose)) * _DEG,
        pose_jerk_deg=mean(jerk(pred.global_pose)) * _DEG,
        eyelids_accel=mean(acceleration(pred.eyelids)), shape_variance=mean(identity_variance(pred.shape)),
    )
    if flame is not None:
        v = pose_normalised_vertices(flame, pred)
        r.update(vertex_accel_mm=mean(acceleration(v)) * _MM, vertex_jerk_mm=mean(jerk(v)) * _MM)
    if target is not None:
        r.update(
            expression_accel_error=mean(acceleration_error(pred.expression, target.expression)),
            jaw_accel_error_deg=mean(acceleration_error(pred.jaw_pose, target.jaw_pose)) * _DEG,
            pose_accel_error_deg=mean(acceleration_error(pred.global_pose, target.global_pose)) * _DEG,
            expression_rmse=float((pred.expression - target.expression).pow(2).mean().sqrt()),
            jaw_error_deg=mean(rotation_angle_deg(pred.jaw_pose, target.jaw_pose)),
            pose_error_deg=mean(rotation_angle_deg(pred.global_pose, target.global_pose)),
        )
        if flame is not None:
            vt = pose_normalised_vertices(flame, target) if target_vertices is None else target_vertices
            if vt.shape != v.shape:
                raise ValueError(f"jitter_report: target_vertices should be {tuple(v.shape)} "
                                 f"(pose_normalised_vertices of the target); got {tuple(vt.shape)}")
            r.update(vertex_accel_error_mm=mean(acceleration_error(v, vt)) * _MM,
                     vertex_error_mm=mean((v - vt).norm(dim=-1)) * _MM)
    return JitterReport(**r)
