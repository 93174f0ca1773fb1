"""FLAME fitted to a clip's MediaPipe landmarks, with the paper's temporal terms (chapter 7).

Shapes: T frames, L landmarks, S shape and E expression coefficients. Landmarks are normalised
crop coordinates (x right, y down, [-1, 1]; :mod:`tempsmirk.render.camera`); errors are reported
in pixels of a 224-pixel crop (``PX``: one normalised unit is 112 px).

For T frames the fit optimises, per frame, the head rotation, the SMIRK camera, the jaw, the
expression and the eyelids, and one shape for the clip (or one per frame, held together by
L_id), minimising::

    E = w_mp · mean ‖π(FLAME_mp) − u_mp‖²  +  w_c · mean ‖π(FLAME_contour) − u_c‖²     (pixels²)
      + w_ψ · mean ψ²  +  w_β · mean β²  +  w_jaw · mean θ_jaw²                          (priors)
      + λ_smooth · Σ_g w_g L_smooth(g)  +  λ_id · L_id  +  λ_smooth · w_cam L_smooth(camera)

over the frames where a face was found (the means run over frames, points and coefficients). u are
MediaPipe's detections (the 105 points FLAME's
MediaPipe embedding places, and, where the model has an iBUG embedding, the 17 jaw-contour points
read off MediaPipe's face oval with :data:`tempsmirk.data.clips.MP_TO_IBUG68`). The priors are
SMIRK's regularisers (:mod:`tempsmirk.losses.regularizers`); L_smooth and L_id are eqs. (3)–(4)
as printed (norms, summed over each group's dimensions; :func:`tempsmirk.temporal.smoothness_loss`
and :func:`~tempsmirk.temporal.identity_loss` applied per dimension), with the fit's own group
weights (:class:`~tempsmirk.fitting.FitConfig`); the camera term is ours — without it the
landmarks' frame-to-frame jitter moves into the camera. Frames without a face keep their index and
their ``found = False`` flag:
they have no data and no prior, only the temporal terms, and after the fit they are set to the
straight line between their neighbours (a minimiser of L_smooth across the gap).

The landmarks come from :class:`~tempsmirk.fitting.LandmarkFlame` (FLAME at the landmarks only),
all frames of a window in one batch; Adam with one step size per parameter group and a cosine
schedule, then a projection onto the encoder's ranges (eyelids in [0, 1], jaw opening >= 0, the
jaw's other axes within ±0.2 rad). :func:`fit_clip` fits one window; :func:`track` fits a video
of any length in stages (the identity on frames spread over the whole video, then overlapping
windows whose overlaps are cross-faded, so memory is bounded by the window and seams do not jump).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable, Optional

import torch
from torch import Tensor

from tempsmirk.fitting.config import FitConfig
from tempsmirk.fitting.init import rigid_from_landmarks
from tempsmirk.fitting.sparse import LandmarkFlame
from tempsmirk.flame.params import FlameParams
from tempsmirk.losses.regularizers import expression_reg, jaw_reg, shape_reg
from tempsmirk.render.camera import project_points
from tempsmirk.smirk.encoder import JAW_SIDE_LIMIT
from tempsmirk.temporal import identity_loss, smoothness_loss
from tempsmirk.video.gaps import fill_gaps

__all__ = ["PX", "FitConfig", "FitTargets", "FitResult", "initial_params", "fit_clip", "track",
           "project_targets", "reprojection_error"]

PX = 112.0  # pixels of a 224-px crop per normalised unit


# Base Adam step per group (what one step may move a parameter by, before the schedule):
# radians, log camera scale, FLAME units (metres) of camera shift, coefficients, closure.
_STEP = {"global_pose": 0.02, "log_scale": 0.02, "shift": 0.002, "expression": 0.5, "jaw_pose": 0.03,
         "eyelids": 0.05, "shape": 0.05}


@dataclass(frozen=True)
class FitTargets:
    """What the fit matches, per frame.

    mediapipe: (T, L_mp, 2) detections of the points FLAME's MediaPipe embedding places, in the
        embedding's order, normalised crop coordinates (anything, e.g. NaN, where not found).
    found: (T,) bool, a face was detected.
    contour: (T, 17, 2) the jaw contour (iBUG 0–16) read off the detections, or None.
    """

    mediapipe: Tensor
    found: Tensor
    contour: Optional[Tensor] = None

    def __post_init__(self) -> None:
        t = self.found.shape[0]
        if self.mediapipe.dim() != 3 or self.mediapipe.shape[0] != t or self.mediapipe.shape[-1] < 2:
            raise ValueError(f"mediapipe targets should be ({t}, L, 2); got {tuple(self.mediapipe.shape)}")
        if self.contour is not None and tuple(self.contour.shape[:2]) != (t, 17):
            raise ValueError(f"contour targets should be ({t}, 17, 2); got {tuple(self.contour.shape)}")

    @classmethod
    def from_mediapipe(cls, points: Tensor, found: Tensor, mp_indices: Tensor, contour: bool = True) -> "FitTargets":
        """From MediaPipe's 478 points: points (T, 478, >=2) normalised crop coordinates, found (T,),
        mp_indices (L_mp,) the embedding's ``landmark_indices``; contour: also the 17 jaw points."""
        from tempsmirk.data.clips import MP_TO_IBUG68
        from tempsmirk.losses.landmarks import N_CONTOUR, select_mediapipe

        points = torch.as_tensor(points)[..., :2].float()
        found = torch.as_tensor(found, dtype=torch.bool)
        jaw = torch.as_tensor(MP_TO_IBUG68[:N_CONTOUR])
        return cls(select_mediapipe(points, mp_indices), found, points[:, jaw] if contour else None)

    @property
    def num_frames(self) -> int:
        return int(self.found.shape[0])

    def __getitem__(self, index) -> "FitTargets":
        """Frames ``index`` (a slice or an index tensor)."""
        return FitTargets(self.mediapipe[index], self.found[index],
                          None if self.contour is None else self.contour[index])


@dataclass(frozen=True)
class FitResult:
    """A fitted clip.

    params: :class:`~tempsmirk.flame.FlameParams` with (T, ...) fields (frames without a face interpolated).
    found: (T,) bool, as given.
    error_px: (T,) mean distance between the fitted and detected MediaPipe points, pixels at 224 px
        (NaN where no face was found).
    seconds: wall time per stage (``identity``, ``tracking``).
    """

    params: FlameParams
    found: Tensor
    error_px: Tensor
    seconds: dict[str, float]


# ----------------------------------------------------------------------------- pieces
def _project(points: Tensor, cam: Tensor) -> Tensor:
    return project_points(points, cam).normalised


@torch.no_grad()
def project_targets(flame, params: FlameParams, noise_px: float = 0.0,
                    generator: Optional[torch.Generator] = None) -> FitTargets:
    """The landmarks a perfect detector would give for known parameters: FLAME's MediaPipe points
    and jaw contour (from the full mesh) projected with ``params.cam``, plus i.i.d. Gaussian
    noise of ``noise_px`` pixels (224-px crop) per coordinate. params: (T, ...); every frame found.
    For tests and for measuring the fit apart from a detector's bias (chapter 7)."""
    out = flame.forward_params(params)
    mp = project_points(out.landmarks_mp, params.cam).normalised
    contour = project_points(out.landmarks68[:, :17], params.cam).normalised if out.landmarks68 is not None else None
    if noise_px > 0:
        mp = mp + torch.randn(mp.shape, generator=generator).to(mp) * (noise_px / PX)
        if contour is not None:
            contour = contour + torch.randn(contour.shape, generator=generator).to(contour) * (noise_px / PX)
    return FitTargets(mp, torch.ones(params.batch_size, dtype=torch.bool), contour)


def reprojection_error(model: LandmarkFlame, params: FlameParams, targets: FitTargets) -> Tensor:
    """Mean distance between projected and detected MediaPipe points per frame, pixels at 224 px:
    (T,), NaN where no face was found."""
    with torch.no_grad():
        shape = params.shape
        out = model(shape, params.expression, params.global_pose, params.jaw_pose, params.eyelids, inner=False)
        d = (_project(out.mediapipe, params.cam) - targets.mediapipe[..., :2].to(params.cam)).norm(dim=-1)
        err = d.mean(1) * PX
    return torch.where(targets.found.to(err.device), err, torch.full_like(err, float("nan")))


def initial_params(model: LandmarkFlame, targets: FitTargets, shape: Optional[Tensor] = None) -> FlameParams:
    """A start without an encoder: closed-form rotation and camera per frame
    (:func:`~tempsmirk.fitting.init.rigid_from_landmarks` on the rest-pose MediaPipe points of
    ``shape`` (1, S), default the mean face), neutral expression, closed jaw and eyelids.
    Frames without a face are interpolated. Returns (T, ...) fields."""
    t, dtype = targets.num_frames, model.j_template.dtype
    device = model.j_template.device
    shape = torch.zeros(1, model.n_shape, dtype=dtype, device=device) if shape is None else shape.to(device, dtype)
    zero3 = torch.zeros(1, 3, dtype=dtype, device=device)
    rest = model(shape, torch.zeros(1, model.n_exp, dtype=dtype, device=device), zero3, zero3, inner=False)
    root = model.j_template[0] + model.j_dirs[0, :, :model.n_shape] @ shape[0]
    found = targets.found.to(device)
    valid = found[:, None].expand(-1, rest.mediapipe.shape[1])
    pose, cam = rigid_from_landmarks(rest.mediapipe[0], root, targets.mediapipe.to(device, dtype), valid)
    params = FlameParams(global_pose=pose, cam=cam, shape=shape.expand(t, -1).clone(),
                         expression=torch.zeros(t, model.n_exp, dtype=dtype, device=device),
                         eyelids=torch.zeros(t, 2, dtype=dtype, device=device),
                         jaw_pose=torch.zeros(t, 3, dtype=dtype, device=device))
    return fill_gaps(params, found) if bool(found.any()) else params


def _per_dimension(term: Callable[..., Tensor], track: Tensor) -> Tensor:
    """Eq. (3) or (4) of one clip's (T, D) track for each of its D dimensions: (D,). Each
    dimension goes in as its own one-dimensional clip, (D, T, 1), so the values do not depend on
    how the term reduces over D; their sum is the norm form of the equations as printed."""
    return term(track.T[:, :, None], per_clip=True)


def _better_start(model: LandmarkFlame, init: FlameParams, closed_form: FlameParams,
                  targets: FitTargets) -> FlameParams:
    """Per frame, the start that reprojects the landmarks best among ``init`` (an encoder's
    prediction), ``init`` with the closed-form head rotation and camera, and the closed-form start
    itself (neutral expression, closed jaw); the shape, one per clip, is ``init``'s or the mean
    face's, whichever leaves the smaller error. An encoder that has never seen such a face (the
    book's demo encoder on a real video) then does not hold the fit back; a good one keeps its
    prediction."""
    best_err, best = None, None
    for shape in (init.shape, torch.zeros_like(init.shape)):
        start = replace(init, shape=shape)
        options = [start, replace(start, global_pose=closed_form.global_pose, cam=closed_form.cam),
                   replace(closed_form, shape=shape)]
        err = torch.stack([torch.nan_to_num(reprojection_error(model, o, targets), nan=float("inf"))
                           for o in options])  # (3, T)
        low, which = err.min(0)
        total = low[torch.isfinite(low)].mean() if bool(torch.isfinite(low).any()) else low.new_tensor(0.0)
        if best_err is None or total < best_err:
            frames = torch.arange(which.numel(), device=which.device)
            best_err = total
            best = FlameParams.stack(options)[which, frames]
    return best


def _blend(a: FlameParams, b: FlameParams, weight: Tensor) -> FlameParams:
    """Per-frame ``(1 − w)·a + w·b`` of every field: a, b (T, ...), weight (T,)."""
    def mix(x: Tensor, y: Tensor) -> Tensor:
        w = weight.view(-1, *[1] * (x.dim() - 1)).to(x)
        return x * (1 - w) + y * w

    return FlameParams(**{name: mix(x, getattr(b, name)) for name, x in a.as_dict().items()})


class _Adam:
    """Adam (Kingma and Ba; torch.optim.Adam's update, bias-corrected, eps outside the root) over a
    few tensors, one step size each. Written out because torch.optim's first use imports
    torch._dynamo, about two seconds that every ``reconstruct --fit`` would pay."""

    def __init__(self, params: list[Tensor], lrs: list[float], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params, self.lrs, self.betas, self.eps, self.t = params, lrs, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, scale: float = 1.0) -> None:
        """One update with every step size times ``scale``; clears the gradients."""
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, lr, m, v in zip(self.params, self.lrs, self.m, self.v):
            g = p.grad
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, (v / c2).sqrt_().add_(self.eps), value=-lr * scale / c1)
            p.grad = None


def _schedule(i: int, n: int) -> float:
    """Cosine from 1 to 0.02 over n steps."""
    return 0.02 + 0.98 * (1 + math.cos(math.pi * i / max(n, 1))) / 2


# ----------------------------------------------------------------------------- one window
def fit_clip(model: LandmarkFlame, targets: FitTargets, config: FitConfig = FitConfig(),
             init: Optional[FlameParams] = None, *, temporal: bool = True, fit_shape: bool = True,
             iterations: Optional[int] = None, on_step: Optional[Callable[[int], None]] = None) -> FlameParams:
    """Fit one window of consecutive frames (module docstring) in one batch.

    Args:
        model: :class:`LandmarkFlame` (its device and dtype are used).
        targets: (T, ...) detections; T >= 1, at least one frame found.
        config: weights and steps (:class:`FitConfig`).
        init: (T, ...) starting parameters (an encoder's prediction, or a previous window's),
            default :func:`initial_params`. Its shape rows are averaged to one shape per clip
            unless ``config.per_frame_shape``.
        temporal: add the temporal terms (False: frames independent, whatever ``config.smooth``).
        fit_shape: optimise the shape (False: keep ``init``'s).
        iterations: Adam steps, default ``config.iterations``.
        on_step: called after every step with the step's index (progress bars).
    Returns:
        (T, ...) fitted parameters, detached; frames without a face interpolated.
    """
    device, dtype = model.j_template.device, model.j_template.dtype
    found = targets.found.to(device)
    if not bool(found.any()):
        raise ValueError(f"fit_clip needs at least one frame with a face; none of the {targets.num_frames} has one")
    t = targets.num_frames
    init = (initial_params(model, targets) if init is None else init).to(device=device, dtype=dtype)
    if init.batch_size != t:
        raise ValueError(f"init has {init.batch_size} frames but targets have {t}")
    n_steps = config.iterations if iterations is None else iterations
    per_frame_shape = config.per_frame_shape
    shape0 = init.shape if per_frame_shape else init.shape[found].mean(0, keepdim=True)
    variables = {
        "global_pose": init.global_pose.clone(),
        "log_scale": init.cam[:, :1].clamp(min=1e-3).log(),
        "shift": init.cam[:, 1:].clone(),
        "expression": init.expression.clone(),
        "jaw_pose": init.jaw_pose.clone(),
        "eyelids": init.eyelids.clone(),
        "shape": shape0.clone(),
    }
    trained = [k for k in variables if k != "shape" or fit_shape]
    for k in trained:
        variables[k].requires_grad_(True)
    opt = _Adam([variables[k] for k in trained], [_STEP[k] * config.lr for k in trained])

    # Data: MediaPipe and contour points projected together, each group's mean weighted.
    use_contour = targets.contour is not None and model.has_landmarks68 and config.contour > 0
    target = targets.mediapipe[..., :2]
    n_mp = target.shape[1]
    point_w = torch.full((n_mp,), config.landmarks_mp / n_mp, dtype=dtype, device=device)
    if use_contour:
        target = torch.cat([target, targets.contour[..., :2]], dim=1)
        n_c = targets.contour.shape[1]
        point_w = torch.cat([point_w, torch.full((n_c,), config.contour / n_c, dtype=dtype, device=device)])
    target = torch.nan_to_num(target.to(device, dtype))
    frame_w = found.to(dtype) / found.sum() * PX ** 2  # mean over found frames, in pixels²
    every = bool(found.all())
    on = lambda x: x if every else x[found]  # noqa: E731 - priors on frames with a face only
    # Temporal: eq. (3) on every smoothed group at once, one weight per column of the track.
    smooth = config.smooth if temporal and t > 1 else 0.0
    columns = [(config.smooth_expression, model.n_exp), (config.smooth_jaw, 3), (config.smooth_pose, 3),
               (config.smooth_eyelids, 2), (config.smooth_camera, 3)]
    smooth_w = torch.cat([torch.full((n,), smooth * w, dtype=dtype, device=device) for w, n in columns])
    identity = config.identity if (temporal and per_frame_shape and t > 1) else 0.0

    def assemble() -> FlameParams:
        v = variables
        cam = torch.cat([v["log_scale"].exp(), v["shift"]], dim=1)
        shape = v["shape"] if per_frame_shape else v["shape"].expand(t, -1)
        return FlameParams(global_pose=v["global_pose"], cam=cam, shape=shape, expression=v["expression"],
                           eyelids=v["eyelids"], jaw_pose=v["jaw_pose"])

    with torch.enable_grad():
        for i in range(n_steps):
            p = assemble()
            out = model(variables["shape"], p.expression, p.global_pose, p.jaw_pose, p.eyelids, inner=False)
            points = torch.cat([out.mediapipe, out.contour], dim=1) if use_contour else out.mediapipe
            sq = (_project(points, p.cam) - target).pow(2).sum(-1)  # (T, L) normalised²
            loss = ((sq @ point_w) * frame_w).sum()
            loss = loss + config.expression_reg * expression_reg(on(p.expression)) \
                + config.jaw_reg * jaw_reg(on(p.jaw_pose))
            if fit_shape:
                loss = loss + config.shape_reg * shape_reg(variables["shape"])
            if smooth > 0:
                v = variables
                image_cam = torch.cat([v["log_scale"], v["log_scale"].exp() * v["shift"]], dim=1)  # log s, s·t
                track = torch.cat([p.expression, p.jaw_pose, p.global_pose, p.eyelids, image_cam], dim=1)
                loss = loss + (smooth_w * _per_dimension(smoothness_loss, track)).sum()
            if identity > 0:
                loss = loss + identity * _per_dimension(identity_loss, p.shape).sum()
            loss.backward()
            opt.step(_schedule(i, n_steps))
            with torch.no_grad():  # the encoder's ranges
                variables["eyelids"].clamp_(0.0, 1.0)
                jaw = variables["jaw_pose"]
                jaw[:, 0].clamp_(min=0.0)
                jaw[:, 1:].clamp_(-JAW_SIDE_LIMIT, JAW_SIDE_LIMIT)
            if on_step is not None:
                on_step(i)
    with torch.no_grad():
        fitted = assemble().detach().clone()
    return fill_gaps(fitted, found) if not bool(found.all()) else fitted


# ----------------------------------------------------------------------------- a whole video
def _window_starts(t: int, window: int, overlap: int) -> list[int]:
    """Start frames of windows of ``window`` frames, consecutive ones sharing ``overlap`` frames;
    the last window ends at frame t (it may share more)."""
    if t <= window:
        return [0]
    step = window - overlap
    starts = list(range(0, t - window, step))
    return starts + [t - window]


def track(model: LandmarkFlame, targets: FitTargets, config: FitConfig = FitConfig(),
          init: Optional[FlameParams] = None, *, temporal: bool = True,
          progress: bool = False, desc: str = "fit") -> FitResult:
    """Fit a whole video of T frames in stages, with memory bounded by ``config.window``.

    1. **identity** — up to ``config.identity_frames`` frames with a face, spread evenly over the
       video, fitted together with one shared shape and no temporal terms;
    2. **tracking** — windows of ``config.window`` frames (consecutive ones sharing
       ``config.overlap``), each fitted with that shape fixed (or, with ``per_frame_shape``,
       starting from it and tied by L_id) and the temporal terms; a window starts from ``init``
       (default :func:`initial_params`) except on the frames it shares with the previous window,
       which start from that window's result. In the shared frames the two results are
       cross-faded (weights ramping linearly from one window to the next), so nothing jumps at
       a seam.

    Args:
        model: :class:`LandmarkFlame`. targets: (T, ...). init: (T, ...) or None.
        temporal: add the temporal terms (False: every frame on its own).
        progress: tqdm bars, one per stage.
    Returns:
        :class:`FitResult` with (T, ...) parameters.
    """
    from tqdm.auto import tqdm

    device, dtype = model.j_template.device, model.j_template.dtype
    t = targets.num_frames
    found = targets.found.to(device)
    if not bool(found.any()):
        raise ValueError(f"no face was found in any of the {t} frames; there is nothing to fit")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    closed_form = initial_params(model, targets)
    init = closed_form if init is None else _better_start(model, init.to(device=device, dtype=dtype),
                                                          closed_form, targets)

    # 1. identity
    shape = init.shape[found].mean(0, keepdim=True)
    known = found.nonzero().squeeze(1)
    n_id = min(config.identity_frames, known.numel())
    if n_id > 0 and config.identity_iterations > 0:
        pick = known[torch.linspace(0, known.numel() - 1, n_id, device=device).round().long()]
        sub_init = init[pick]
        sub_init = replace(sub_init, shape=shape.expand(n_id, -1))
        with tqdm(total=config.identity_iterations, desc=f"{desc}: identity ({n_id} frames)", unit="step",
                  disable=not progress, leave=False) as bar:
            sub = fit_clip(model, targets[pick.cpu()], replace(config, per_frame_shape=False), sub_init,
                           temporal=False, iterations=config.identity_iterations, on_step=lambda i: bar.update(1))
        shape = sub.shape[:1]
    init = replace(init, shape=shape.expand(t, -1))
    seconds["identity"] = time.perf_counter() - start

    # 2. tracking, window by window
    start = time.perf_counter()
    starts = _window_starts(t, config.window, config.overlap)
    size = min(t, config.window)
    out: Optional[FlameParams] = None  # the fitted frames [0, done)
    done = 0
    with tqdm(total=len(starts) * config.iterations, desc=f"{desc}: tracking ({len(starts)} window"
              f"{'s' if len(starts) > 1 else ''})", unit="step", disable=not progress, leave=False) as bar:
        for w0 in starts:
            w1 = w0 + size
            shared = max(0, done - w0)  # frames the previous window fitted too
            win_init = init[w0:w1]
            if shared:
                win_init = FlameParams.cat([out[w0:done], win_init[shared:]])
            if bool(found[w0:w1].any()):
                fitted = fit_clip(model, targets[w0:w1], config, win_init, temporal=temporal,
                                  fit_shape=config.per_frame_shape, on_step=lambda i: bar.update(1))
            else:  # no face in the whole window: nothing to fit, the start values carry it
                fitted = win_init
                bar.update(config.iterations)
            if out is None:
                out = fitted
            else:  # cross-fade the shared frames, the new window's weight rising from ~0 to ~1
                ramp = torch.arange(1, shared + 1, device=device, dtype=dtype) / (shared + 1)
                blended = _blend(out[w0:done], fitted[:shared], ramp)
                out = FlameParams.cat([out[:w0], blended, fitted[shared:]])
            done = w1
    seconds["tracking"] = time.perf_counter() - start
    params = fill_gaps(out, found) if not bool(found.all()) else out
    return FitResult(params=params, found=targets.found.clone(), error_px=reprojection_error(model, params, targets),
                     seconds=seconds)
