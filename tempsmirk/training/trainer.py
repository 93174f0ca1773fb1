"""The SMIRK trainer: SMIRK's two-pass iteration, one schedule, logs, checkpoints, exact resume.

Explained in chapter 3 (clip training with the temporal losses: chapter 5). One iteration is the
reference's ``SmirkTrainer.step``:

1. **reconstruction path** (:func:`~tempsmirk.training.step.first_path`): every network in train
   mode; backward; **both** optimisers step (the encoder's holds only the trainable branches);
2. **cycle path** (:func:`~tempsmirk.training.step.cycle_path`) with its own backward and step: on
   even iterations the encoder is frozen (``requires_grad`` off, eval mode) and the generator
   learns, its gradient clipped to norm ``optim.generator_clip`` (0.1); on odd iterations the
   generator is frozen and in eval mode and the encoder learns.

Then both cosine schedules step. A run folder (``run.dir``) holds::

    config.yaml              the resolved config
    log.csv                  one row per logged iteration (losses, learning rates, seconds)
    images/step_0000200.png  input | rendering | masked input | reconstruction | cycle edit |
                             cycle masked input | cycle output
    checkpoints/last.pt      training state (see below), written atomically
    smirk.pt                 final encoder + generator weights in the official SMIRK layout

``checkpoints/last.pt`` is a plain dict readable with ``torch.load(weights_only=True)``: ``model``
(the official flat layout), ``optimizers``, ``schedulers``, ``scaler``, ``step``, ``rng`` (torch
generator states as uint8 tensors) and ``config`` (YAML text). Data order is a function of the
iteration (:class:`StepBatches`), so N iterations, resume, N more reproduce 2N straight ones.

**Clip mode.** When the data are clips (``data.synthetic.clip_length`` > 0, ``data.source=mead``,
or a dataset whose items are (T, 3, H, W)), a batch is ``train.batch_size`` clips × T frames: the
reconstruction path runs on the flattened frames and adds the temporal terms weighted by the
``temporal`` section (zero unless ``temporal.enabled``) on every iteration; the cycle runs on
the frames. The log then has ``temporal_*`` columns (unweighted terms and their weighted total).
Fine-tuning starts from ``model.init_checkpoint``; a config that sets ``model.init_required``
(the fine-tuning presets) refuses to start without one.
"""

from __future__ import annotations

import copy
import csv
import io
import signal
import sys
import threading
import time
import warnings
from dataclasses import fields
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from tempsmirk.config import Config, config_to_yaml, save_config
from tempsmirk.data.build import SOURCES, TrainingData, build_dataset
from tempsmirk.data.synthetic import item_seed
from tempsmirk.data.types import FaceBatch
from tempsmirk.flame import load_flame
from tempsmirk.flame.params import FlameParams
from tempsmirk.meshio import atomic_write_bytes
from tempsmirk.seeding import seed_everything
from tempsmirk.smirk.checkpoint import load_smirk_state, read_smirk_state, save_smirk_checkpoint, smirk_state_dict
from tempsmirk.smirk.encoder import BRANCHES, SmirkEncoder
from tempsmirk.smirk.generator import SmirkGenerator
from tempsmirk.temporal import TemporalTerms
from tempsmirk.training import distributed as dist_util
from tempsmirk.training.context import StepContext, step_context
from tempsmirk.training.step import LossTerms, StepOutput, cycle_path, first_path, frozen_eval
from tempsmirk.weightsio import atomic_torch_save

__all__ = ["Trainer", "TrainingDiverged", "TrainingInterrupted", "lr_factor", "StepBatches", "image_grid",
           "CHECKPOINT_FORMAT", "LOG_FIELDS", "TEMPORAL_LOG_FIELDS"]

#: /2: SMIRK's two-pass iteration (a /1 checkpoint came from the alternating scheme before it).
CHECKPOINT_FORMAT = "tempsmirk.training/2"
LOG_FIELDS = ["step", "trained", "lr_encoder", "lr_generator"] + [f.name for f in fields(LossTerms)] + ["seconds"]
#: Extra log columns in clip mode: the unweighted temporal terms and their weighted total.
TEMPORAL_LOG_FIELDS = [f"temporal_{f.name}" for f in fields(TemporalTerms)]


def lr_factor(steps: int, warmup_steps: int, final_scale: float):
    """Learning-rate multiplier by step: linear warm-up over ``warmup_steps`` (0 = none), then a
    cosine from 1 down to ``final_scale`` at ``steps``. Returns a function step -> float."""
    import math

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = min(1.0, (step - warmup_steps) / max(1, steps - warmup_steps))
        return final_scale + (1 - final_scale) * 0.5 * (1 + math.cos(math.pi * t))

    return factor


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the run stopped before any optimiser step used it, and the
    checkpoint on disk is the last good one."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C (SIGINT). The first Ctrl-C lets the current step finish and writes a
    checkpoint (``saved``: True); a second one, a second or more later, abandons the step and keeps
    the checkpoint on disk. ``step``: the steps completed in memory; ``checkpoint_step``: the step
    the checkpoint on disk holds (None: there is none). ``str()`` says both."""

    def __init__(self, message: str, step: int, checkpoint_step: Optional[int], saved: bool) -> None:
        super().__init__(message)
        self.step, self.checkpoint_step, self.saved = step, checkpoint_step, saved

    def __str__(self) -> str:
        return str(self.args[0])


class _StopOnInterrupt:
    """Context manager: while active, Ctrl-C asks the training loop to stop after the current step
    (``requested``); another Ctrl-C at least ``grace`` seconds later raises KeyboardInterrupt at
    once. (torchrun passes the terminal's Ctrl-C on to its workers, so each worker gets two within
    milliseconds: the grace keeps them one request.) Installed only in the main thread and only
    over Python's default handler."""

    def __init__(self, announce: bool, grace: float = 1.0) -> None:
        self.announce, self.grace = announce, grace
        self.requested_at: Optional[float] = None
        self._previous = None

    @property
    def requested(self) -> bool:
        return self.requested_at is not None

    def _handler(self, signum, frame) -> None:
        now = time.monotonic()
        if self.requested_at is None:
            self.requested_at = now
            if self.announce:
                sys.stderr.write("\nCtrl-C: stopping after this step and writing a checkpoint "
                                 "(Ctrl-C again to stop at once)\n")
                sys.stderr.flush()
        elif now - self.requested_at >= self.grace:
            raise KeyboardInterrupt

    def __enter__(self) -> "_StopOnInterrupt":
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _Replicated(nn.Module):
    """A network trained data-parallel: calls that can train it (grad mode, some parameter
    requiring grad) go through its ``DistributedDataParallel`` wrapper, whose backward averages
    the gradients over the ranks; calls while it is frozen (``frozen_eval``) or under no_grad run
    the network itself, so they wait for no gradient."""

    def __init__(self, ddp: nn.Module) -> None:
        super().__init__()
        self.ddp = ddp

    def forward(self, x: Tensor):
        module = self.ddp.module
        if torch.is_grad_enabled() and any(p.requires_grad for p in module.parameters()):
            return self.ddp(x)
        return module(x)


class StepBatches(Sampler[list[int]]):
    """Dataset indices for steps ``start .. end-1``: epochs of a seeded permutation, global batch k
    taking positions ``k·B .. k·B+B-1``. A pure function of the step, so a resumed run sees the same
    data. With ``world_size`` > 1 this process takes items ``rank::world_size`` of each global batch
    (the same split as the mix's :class:`~tempsmirk.data.mix.MixedBatches`)."""

    def __init__(self, n_items: int, batch_size: int, seed: int, start: int, end: int, rank: int = 0,
                 world_size: int = 1) -> None:
        if n_items < 1 or batch_size < 1:
            raise ValueError(f"need n_items >= 1 and batch_size >= 1; got {n_items}, {batch_size}")
        if batch_size < world_size or not 0 <= rank < world_size:
            raise ValueError(f"need batch_size >= world_size > rank >= 0; got {batch_size}, {world_size}, {rank}")
        self.n, self.b, self.seed, self.start, self.end = n_items, batch_size, seed, start, end
        self.rank, self.world = rank, world_size

    def __len__(self) -> int:
        return max(0, self.end - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        cache: dict[int, Tensor] = {}
        for step in range(self.start, self.end):
            out = []
            for pos in range(step * self.b, (step + 1) * self.b):
                epoch = pos // self.n
                if epoch not in cache:
                    cache.clear()
                    cache[epoch] = torch.randperm(self.n, generator=torch.Generator().manual_seed(
                        item_seed(self.seed, -1 - epoch)))
                out.append(int(cache[epoch][pos % self.n]))
            yield out[self.rank::self.world]


class _Autocast(nn.Module):
    """Runs a module under CUDA autocast and returns float32 (AMP for the networks only: the
    renderer and FLAME stay in float32)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor):
        with torch.autocast("cuda", dtype=torch.float16):
            y = self.module(x)
        if isinstance(y, FlameParams):
            return y.map(lambda t: t.float())
        return y.float()


def image_grid(columns: Sequence[Tensor], max_rows: int = 4) -> np.ndarray:
    """Images side by side: columns of (B, 3, H, W) in [0, 1] -> (rows·H, cols·W, 3) uint8."""
    rows = min(max_rows, columns[0].shape[0])
    cols = [c[:rows].detach().float().cpu().clamp(0, 1) for c in columns]
    grid = torch.cat([torch.cat(list(c), dim=1) for c in cols], dim=2)  # (3, rows·H, cols·W)
    return (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def _png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


class Trainer:
    """Trains SMIRK's encoder and generator. Explained in chapter 3.

    Args:
        cfg: the whole :class:`~tempsmirk.config.Config` (the trainer is the one place that reads
            every section; it hands each library function only its section).
        resume: continue from ``run.dir/checkpoints/last.pt``; without it a run folder that already
            holds a checkpoint is refused.
        dataset: a dataset of :class:`~tempsmirk.data.FaceSample`, single frames or clips
            (default: synthetic faces from ``data.synthetic``, or MEAD clips from ``data.mead``
            with ``data.source=mead``).
        progress: show a tqdm bar.

    Under ``torchrun`` (README, "Training on several GPUs"; :mod:`~tempsmirk.training.distributed`)
    each process trains on its share of every global batch of ``train.batch_size`` items (clips in
    clip mode; it must divide by the number of processes), BatchNorm normalises over the global
    batch, gradients are averaged over the processes, and rank 0 alone writes the run folder.
    """

    def __init__(self, cfg: Config, resume: bool = False, dataset: Optional[Dataset] = None,
                 progress: bool = True) -> None:
        self.cfg = cfg
        self.progress = progress
        self.run_dir = Path(cfg.run.dir)
        self.checkpoint_path = self.run_dir / "checkpoints" / "last.pt"
        if not resume and self.checkpoint_path.exists():
            raise FileExistsError(f"{self.run_dir} already holds a training checkpoint; pass --resume "
                                  f"to continue it or choose another run.dir")
        if resume and not self.checkpoint_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {self.checkpoint_path}")
        if cfg.data.source not in SOURCES and dataset is None:
            raise ValueError(f"data.source={cfg.data.source!r}: {SOURCES} are built in; "
                             f"pass a dataset to Trainer for other data")
        unknown = [b for b in cfg.model.frozen if b not in BRANCHES]
        if unknown:
            raise ValueError(f"model.frozen: unknown branches {unknown}; choose from {BRANCHES}")
        if cfg.model.init_required and cfg.model.init_checkpoint is None:
            raise ValueError("this config fine-tunes a trained SMIRK (model.init_required) but names no "
                             "starting checkpoint: set model.init_checkpoint=PATH to a SMIRK checkpoint "
                             "(e.g. the one tempsmirk.training.demo_checkpoint() trains)")
        #: This process among the data-parallel ones (one process without torchrun).
        self.dist, self.device = dist_util.setup(cfg.train.device)
        world = self.dist.world_size
        if cfg.train.batch_size % world:
            raise ValueError(f"train.batch_size={cfg.train.batch_size} is the global batch, split evenly over "
                             f"the {world} processes (items of clip data are whole clips, never cut); it does "
                             f"not divide by {world}. Choose a batch size that does, or another number of "
                             f"processes")
        self.amp = bool(cfg.train.amp and self.device.type == "cuda")
        seed_everything(cfg.run.seed, cfg.run.deterministic)

        m = cfg.model
        flame = load_flame(m.flame_path, m.n_shape, m.n_exp)
        self.data = (TrainingData(dataset, cfg.data.num_workers) if dataset is not None
                     else build_dataset(cfg.data, flame))
        self.dataset = self.data.dataset
        first = self.dataset[0].image
        #: T of clip data, 0 for single frames.
        self.clip_length = first.shape[0] if first.dim() == 4 else 0
        if cfg.temporal.enabled and not self.clip_length:
            raise ValueError("temporal.enabled needs clip data, but the dataset yields single images; "
                             "set data.synthetic.clip_length to T >= 2 (or data.source=mead)")
        # One clip per batch is the paper's own shape (one 32-frame clip: BatchNorm sees its 32
        # frames); BatchNorm only needs more than one frame per batch.
        if self.clip_length and cfg.train.batch_size * self.clip_length < 2:
            raise ValueError(f"clip training needs at least 2 frames per batch for BatchNorm's batch "
                             f"statistics; got train.batch_size={cfg.train.batch_size} clip(s) of "
                             f"T={self.clip_length} frame(s). Use clips of T >= 2 frames or more clips "
                             f"per batch")
        self.encoder = SmirkEncoder(n_exp=m.n_exp, n_shape=m.n_shape).to(self.device)
        self.generator = SmirkGenerator().to(self.device)
        if m.init_checkpoint is not None:
            state = read_smirk_state(m.init_checkpoint)
            gen = self.generator if any(k.startswith("smirk_generator.") for k in state) else None
            load_smirk_state(self.encoder, gen, state, source=str(m.init_checkpoint))
        if self.dist.enabled:  # BatchNorm statistics of the global batch (state dict keys unchanged)
            self.encoder = dist_util.sync_batchnorm(self.encoder, self.device)
            self.generator = dist_util.sync_batchnorm(self.generator, self.device)
        self.trainable_branches = tuple(b for b in BRANCHES if b not in m.frozen)
        if m.frozen:
            self.encoder.freeze(*m.frozen)
        # The data keep a CPU copy of FLAME (synthetic faces render in worker processes).
        #: What every pass uses: FLAME on the device, masks, templates, weights, loss modules.
        self.context: StepContext = step_context(copy.deepcopy(flame).to(self.device), cfg.loss, cfg.temporal,
                                                 m.vgg_path, m.emotion_path)
        #: Whether the generator is in the loop at all (not in encoder pretraining).
        self.uses_generator = self.context.generator_needed()
        self.cycle_on = self.context.cycle_on

        o = cfg.optim
        enc_params = [p for b in self.trainable_branches for p in self.encoder.branch(b).parameters()]
        # On a CPU, fused Adam: the same update in one kernel, 4x faster than the per-tensor loop
        # (CUDA keeps torch's default, SMIRK's).
        fused = self.device.type == "cpu"
        self.opt_encoder = torch.optim.Adam(enc_params, lr=o.lr * o.encoder_lr_scale, betas=tuple(o.encoder_betas),
                                            fused=fused)
        self.opt_generator = torch.optim.Adam(self.generator.parameters(), lr=o.lr, betas=tuple(o.generator_betas),
                                              fused=fused)
        factor = lr_factor(max(cfg.train.steps, 1), o.warmup_steps, o.final_lr_scale)
        self.sched_encoder = torch.optim.lr_scheduler.LambdaLR(self.opt_encoder, factor)
        self.sched_generator = torch.optim.lr_scheduler.LambdaLR(self.opt_generator, factor)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.rng = torch.Generator().manual_seed(item_seed(cfg.run.seed, -(10 ** 6)))
        self.step = 0
        #: The step ``checkpoints/last.pt`` holds (None: no checkpoint yet).
        self.checkpoint_step: Optional[int] = None
        self.last: Optional[StepOutput] = None
        if resume:
            self._load(self.checkpoint_path)
        enc, gen = self.encoder, self.generator
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            # Every trainable parameter receives a gradient in the passes that go through DDP (the
            # encoder's cycle update, which reads only some outputs, is averaged in train_step).
            # Buffers need no broadcast after the start: synchronised BatchNorm keeps them equal.
            enc = _Replicated(DDP(self.encoder, device_ids=ids, forward_sync_buffers=False))
            gen = _Replicated(DDP(self.generator, device_ids=ids, forward_sync_buffers=False))
        self._enc = _Autocast(enc) if self.amp else enc
        self._gen = _Autocast(gen) if self.amp else gen
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.run_dir / "config.yaml")
            self._init_log(resume)

    # ----------------------------------------------------------------- state
    def state(self) -> dict:
        """The checkpoint dict (module docstring)."""
        rng = {"cycle": self.rng.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "model": {k: v.detach().cpu().clone() for k, v in smirk_state_dict(self.encoder, self.generator).items()},
            "optimizers": {"encoder": self.opt_encoder.state_dict(), "generator": self.opt_generator.state_dict()},
            "schedulers": {"encoder": self.sched_encoder.state_dict(), "generator": self.sched_generator.state_dict()},
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "config": config_to_yaml(self.cfg),
        }

    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/last.pt`` atomically (a crash leaves the previous one); rank 0 only
        under torchrun (the model state is the same on every rank)."""
        if self.dist.is_main:
            atomic_torch_save(self.state(), self.checkpoint_path)
        self.checkpoint_step = self.step
        return self.checkpoint_path

    def _load(self, path: Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a tempsmirk training checkpoint (format "
                             f"{state.get('format') if isinstance(state, dict) else type(state).__name__!r}, "
                             f"expected {CHECKPOINT_FORMAT!r})")
        load_smirk_state(self.encoder, self.generator, state["model"], source=str(path))
        self.opt_encoder.load_state_dict(state["optimizers"]["encoder"])
        self.opt_generator.load_state_dict(state["optimizers"]["generator"])
        self.sched_encoder.load_state_dict(state["schedulers"]["encoder"])
        self.sched_generator.load_state_dict(state["schedulers"]["generator"])
        self.scaler.load_state_dict(state["scaler"])
        self.rng.set_state(state["rng"]["cycle"])
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.step = int(state["step"])
        self.checkpoint_step = self.step

    # ----------------------------------------------------------------- logs
    @property
    def log_path(self) -> Path:
        return self.run_dir / "log.csv"

    def _init_log(self, resume: bool) -> None:
        rows = []
        if resume and self.log_path.exists():
            with open(self.log_path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= self.step]
        with open(self.log_path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.log_fields)
            w.writeheader()
            w.writerows(rows)

    @property
    def log_fields(self) -> list[str]:
        """The log's columns: :data:`LOG_FIELDS`, plus :data:`TEMPORAL_LOG_FIELDS` in clip mode."""
        return LOG_FIELDS + (TEMPORAL_LOG_FIELDS if self.clip_length else [])

    def _log(self, trained: str, out: StepOutput, seconds: float) -> None:
        """One log row; under torchrun every rank calls it and the losses are averaged over the
        ranks (the global batch's means, as one process logs them)."""
        losses = out.losses.as_floats()
        if out.temporal is not None:
            losses.update({f"temporal_{k}": v for k, v in out.temporal.as_floats().items()})
        if self.dist.enabled:
            values = torch.tensor(list(losses.values()), dtype=torch.float64, device=self.device)
            torch.distributed.all_reduce(values)
            losses = dict(zip(losses, (values / self.dist.world_size).tolist()))
        if not self.dist.is_main:
            return
        row = {"step": self.step, "trained": trained,
               "lr_encoder": self.opt_encoder.param_groups[0]["lr"],
               "lr_generator": self.opt_generator.param_groups[0]["lr"],
               **losses, "seconds": round(seconds, 4)}
        with open(self.log_path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.log_fields).writerow(row)

    def save_images(self, out: StepOutput, batch: FaceBatch) -> Path:
        """An image grid of an iteration (columns as in the module docstring), written atomically
        (rank 0 only under torchrun: its share of the batch)."""
        path = self.run_dir / "images" / f"step_{self.step:07d}.png"
        if not self.dist.is_main:
            return path
        cols = [batch.image] + ([] if out.rendering is None else [out.rendering, out.masked.image])
        if out.generated is not None:
            cols.append(out.generated)
        if out.cycle is not None:
            cols += [out.cycle.rendering, out.cycle.masked, out.cycle.generated]
        atomic_write_bytes(path, _png_bytes(image_grid(cols)))
        return path

    # ----------------------------------------------------------------- training
    def cycle_trains_generator(self, step: int) -> bool:
        """Who learns in iteration ``step``'s cycle pass: the generator on even iterations (the
        encoder frozen), the encoder on odd ones (the generator frozen), as SMIRK alternates."""
        return step % 2 == 0

    def trained(self, step: int) -> str:
        """What iteration ``step`` updates, as the log's ``trained`` column says it."""
        if not self.uses_generator:
            return "encoder"
        if not self.cycle_on:
            return "encoder+generator"
        return f"encoder+generator; cycle: {'generator' if self.cycle_trains_generator(step) else 'encoder'}"

    def _check_finite(self, where: str, losses: LossTerms, names: list[str], note: str) -> None:
        """Raise :class:`TrainingDiverged` on every rank when ``names`` (this rank's non-finite
        terms) is not empty on some rank; the message names the ranks and their values."""
        if not dist_util.any_rank(bool(names), self.dist, self.device):
            return
        values = ", ".join(f"{n}={float(getattr(losses, n).detach()):g}" for n in names)
        if self.dist.enabled:
            found = dist_util.gather_strings(values, self.dist)
            values = "; ".join(f"rank {r}: {v}" for r, v in enumerate(found) if v)
        raise TrainingDiverged(
            f"step {self.step}: non-finite loss in the {where} ({values}). {note} The last good checkpoint "
            f"{self.checkpoint_path} is intact. Lower optim.lr, check the data, or resume with --resume "
            f"after fixing the cause.")

    def train_step(self, batch: FaceBatch) -> StepOutput:
        """One SMIRK iteration (module docstring): the reconstruction path updates both networks,
        then the cycle path updates one. A clip batch ((B, T, ...) tensors) adds the temporal terms
        to the first path. Raises :class:`TrainingDiverged` on a non-finite loss before the pass
        that computed it updates anything."""
        every = self.cfg.train.image_every
        picture = bool(every and (self.step + 1) % every == 0)
        batch = batch.to(self.device)
        ctx = self.context
        gen_in_cycle = self.cycle_trains_generator(self.step)
        if self.dist.enabled:
            # Each rank draws its own masking and cycle edits, from a stream that is a function of
            # (seed, step, rank): a resumed run draws the same, whatever ran before.
            self.rng.manual_seed(item_seed(item_seed(self.cfg.run.seed, -(10 ** 6) - self.step), self.dist.rank))

        # 1. Reconstruction path: everything in train mode, both optimisers step.
        self.encoder.train()
        self.generator.train()
        # Rendering and masking only when something needs them (encoder-only profiles: they would
        # otherwise cost more than the step itself).
        out = first_path(self._enc, self._gen, batch, ctx, self.rng,
                         shape_trains="shape" in self.trainable_branches,
                         expression_trains="expression" in self.trainable_branches,
                         render=picture or self.cycle_on)
        self._check_finite("reconstruction path", out.losses, out.losses.non_finite(), "Nothing was updated.")
        self.opt_encoder.zero_grad(set_to_none=True)
        self.opt_generator.zero_grad(set_to_none=True)
        self.scaler.scale(out.losses.total).backward()
        self.scaler.step(self.opt_encoder)
        if any(p.grad is not None for p in self.generator.parameters()):
            self.scaler.step(self.opt_generator)
        self.scaler.update()

        # 2. Cycle path: the frozen network in eval mode; only the generator's gradient is clipped.
        if self.cycle_on:
            frames = batch.frames()
            # The cycle loss reads only some of the encoder's outputs (not pose or camera, nor shape
            # when the encoder learns), which DDP's reducer would wait for: when the encoder learns
            # here it runs unwrapped and its gradients are averaged below.
            enc = self._enc if gen_in_cycle or not self.dist.enabled else (
                _Autocast(self.encoder) if self.amp else self.encoder)
            with frozen_eval(self.encoder if gen_in_cycle else self.generator):
                cyc = cycle_path(enc, self._gen, frames.image, out.params, out.masked.hidden,
                                 out.screen_vertices, ctx, self.rng, generator_trains=gen_in_cycle)
                out = out.with_cycle(cyc, ctx.weights)
                self._check_finite("cycle path", out.losses, [] if torch.isfinite(cyc.loss.detach()) else ["cycle"],
                                   "The reconstruction path had already updated the networks in memory; "
                                   "nothing of this step was saved.")
                self.opt_encoder.zero_grad(set_to_none=True)
                self.opt_generator.zero_grad(set_to_none=True)
                self.scaler.scale(ctx.weights.cycle * cyc.loss).backward()
                if not gen_in_cycle:
                    dist_util.average_gradients(self.encoder.parameters(), self.dist)
                if gen_in_cycle:
                    clip = self.cfg.optim.generator_clip
                    if clip:
                        self.scaler.unscale_(self.opt_generator)
                        torch.nn.utils.clip_grad_norm_(self.generator.parameters(), clip)
                    self.scaler.step(self.opt_generator)
                else:
                    self.scaler.step(self.opt_encoder)
                self.scaler.update()
        with warnings.catch_warnings():
            # One schedule per optimiser, following the iteration (the generator's optimiser never
            # steps when no loss needs the generator).
            warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*")
            self.sched_encoder.step()
            self.sched_generator.step()
        self.step += 1
        self.last = out
        return out

    def _interrupted(self, end: int, saved: bool) -> TrainingInterrupted:
        where = self.checkpoint_path
        if saved:
            text = f"Interrupted after step {self.step} of {end}; {where} holds step {self.step}."
        elif self.checkpoint_step is None:
            text = (f"Interrupted during step {self.step + 1} of {end}; that step was abandoned and no "
                    f"checkpoint had been written yet: --resume needs one, so this run starts over.")
        else:
            text = (f"Interrupted during step {self.step + 1} of {end}; that step was abandoned. {where} "
                    f"holds step {self.checkpoint_step}.")
        return TrainingInterrupted(text, self.step, self.checkpoint_step, saved)

    def loader(self, start: int, end: int) -> DataLoader:
        """Batches for steps ``start .. end-1``: the mix's per-source sampler for ``data.source=mix``,
        :class:`StepBatches` otherwise (both a pure function of the step)."""
        b, seed = self.cfg.train.batch_size, self.cfg.run.seed
        rank, world = self.dist.rank, self.dist.world_size
        sampler = (self.data.batch_sampler(b, seed, start, end, rank, world)
                   or StepBatches(len(self.dataset), b, seed, start, end, rank, world))
        return self.data.loader(sampler)

    def train(self, until: Optional[int] = None) -> Path:
        """Train up to iteration ``until`` (default: ``train.steps``); checkpoint at the end. Returns the
        run folder. A :class:`TrainingDiverged` propagates with the last checkpoint untouched.

        Ctrl-C (SIGINT) stops after the current step — on every rank at the same step under
        torchrun — writes the checkpoint and raises :class:`TrainingInterrupted`; a second Ctrl-C
        abandons the step at once and keeps the checkpoint on disk."""
        t = self.cfg.train
        end = t.steps if until is None else min(until, t.steps)
        bar = tqdm(total=end, initial=self.step, desc="SMIRK", disable=not (self.progress and self.dist.is_main),
                   dynamic_ncols=True)
        stopping = False
        with _StopOnInterrupt(announce=self.dist.is_main) as stop:
            try:
                for batch in self.loader(self.step, end):
                    tic = time.perf_counter()
                    trained = self.trained(self.step)
                    out = self.train_step(batch)
                    seconds = time.perf_counter() - tic
                    if t.log_every and (self.step % t.log_every == 0 or self.step == end):
                        self._log(trained, out, seconds)
                    if t.image_every and self.step % t.image_every == 0:
                        self.save_images(out, batch.frames())
                    if t.checkpoint_every and self.step % t.checkpoint_every == 0 and self.step < end:
                        self.save_checkpoint()
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(out.losses.total.detach()):.3g}")
                    # The ranks agree, so that all of them stop after the same step.
                    stopping = dist_util.any_rank(stop.requested, self.dist, self.device)
                    if stopping:
                        break
            except (KeyboardInterrupt, RuntimeError) as exc:
                # A RuntimeError after Ctrl-C: a collective whose peer process already stopped.
                if isinstance(exc, TrainingDiverged) or not (isinstance(exc, KeyboardInterrupt) or stop.requested):
                    raise
                bar.close()
                raise self._interrupted(end, saved=False) from (None if isinstance(exc, KeyboardInterrupt) else exc)
            finally:
                bar.close()
            if stopping and self.step < end:
                if self.checkpoint_step != self.step:
                    self.save_checkpoint()
                raise self._interrupted(end, saved=True)
        self.save_checkpoint()
        if self.step >= t.steps and self.dist.is_main:
            save_smirk_checkpoint(self.run_dir / "smirk.pt", self.encoder, self.generator)
        return self.run_dir
