"""Data-parallel training under ``torchrun`` (README, "Training on several GPUs").

``torchrun --nproc_per_node N -m tempsmirk train ...`` starts N copies of the trainer and sets
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`setup` reads them, joins the process group
(NCCL on CUDA, gloo on a CPU) and picks the device ``cuda:LOCAL_RANK``. Without ``torchrun``
(no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) nothing changes: one process, no process group.

What the :class:`~tempsmirk.training.Trainer` synchronises with it:

- **gradients**: the encoder and the generator are each wrapped in PyTorch's
  ``DistributedDataParallel``, so every backward (both passes of an iteration) averages the
  gradients over the ranks before the optimiser steps; each rank's loss is the mean over its
  share, and the shares are equal (the global batch must divide by the world size), so the
  average is the global batch's mean;
- **BatchNorm**: :func:`sync_batchnorm` makes every BatchNorm layer normalise with the statistics
  of the whole global batch (PyTorch's ``SyncBatchNorm`` on CUDA; :class:`GlobalBatchNorm` on a
  CPU, where ``SyncBatchNorm`` refuses to run);
- **decisions**: :func:`any_rank` makes the ranks agree on a NaN stop and a Ctrl-C stop, so all of
  them stop after the same step and none waits forever for the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["Distributed", "from_environment", "setup", "teardown", "any_rank", "gather_strings",
           "average_gradients", "GlobalBatchNorm", "sync_batchnorm", "SINGLE"]


@dataclass(frozen=True)
class Distributed:
    """Where this process stands among the data-parallel processes.

    rank: 0 .. world_size - 1 (rank 0 writes every file); world_size: the number of processes;
    local_rank: the rank on this machine (the CUDA device it uses).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """The process that writes logs, images and checkpoints."""
        return self.rank == 0


#: One process (no torchrun).
SINGLE = Distributed()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer; it is set by "
                         f"torchrun (launch with 'torchrun --nproc_per_node N -m tempsmirk train ...')") from None


def from_environment() -> Distributed:
    """The ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` that ``torchrun`` sets (one process without them)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world}, "
                         f"LOCAL_RANK={local}; expected 0 <= RANK < WORLD_SIZE and LOCAL_RANK >= 0")
    return Distributed(rank, world, local)


def setup(device: str = "auto") -> tuple[Distributed, torch.device]:
    """Join the process group ``torchrun`` describes (if it is not joined yet) and choose the device.

    ``device``: ``"auto"`` (CUDA when available), ``"cuda"``, ``"cuda:K"`` or ``"cpu"``. With
    several processes on CUDA each takes ``cuda:LOCAL_RANK`` (an explicit index is refused: the
    processes would share it); the backend is NCCL on CUDA and gloo on a CPU.
    """
    info = from_environment()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if not info.enabled:
        return info, dev
    if dev.type == "cuda":
        if dev.index is not None:
            raise ValueError(f"train.device={device!r} under torchrun: each process uses cuda:LOCAL_RANK; "
                             f"set train.device=cuda (or auto) and choose GPUs with CUDA_VISIBLE_DEVICES")
        if info.local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={info.local_rank} but only {torch.cuda.device_count()} CUDA "
                             f"device(s) are visible; start at most that many processes per machine")
        dev = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(dev)
    elif dev.type != "cpu":
        raise ValueError(f"train.device={device!r}: data-parallel training runs on cuda (NCCL) or cpu (gloo)")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    if dist.get_world_size() != info.world_size or dist.get_rank() != info.rank:
        raise RuntimeError(f"the process group has rank {dist.get_rank()} of {dist.get_world_size()}, "
                           f"the environment says {info.rank} of {info.world_size}")
    return info, dev


def teardown() -> None:
    """Leave the process group (if one was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def any_rank(flag: bool, info: Distributed, device: torch.device) -> bool:
    """Whether ``flag`` is true on any rank (every rank must call it at the same point)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather_strings(text: str, info: Distributed) -> list[str]:
    """Every rank's ``text``, in rank order (every rank must call it)."""
    if not info.enabled:
        return [text]
    out: list[Optional[str]] = [None] * info.world_size
    dist.all_gather_object(out, text)
    return [str(s) for s in out]


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) that autograd follows: the gradient of every rank's input is the sum of
    the ranks' output gradients."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training-mode statistics are those of the whole data-parallel batch: the
    per-channel sum and squared deviation are summed over the ranks with autograd-aware
    all-reduces, so forward and backward equal a BatchNorm over the
    concatenated batch. PyTorch's ``SyncBatchNorm`` does this on GPUs only; this is the CPU (gloo)
    version. Eval mode (and one process) is ordinary BatchNorm. Same parameters, buffers and state
    dict keys as ``nn.BatchNorm2d``. Converted from timm's ``BatchNormAct2d`` (the encoder's
    backbones) it keeps that layer's ``drop`` and ``act`` and applies them after normalising.
    """

    def _after(self, y: Tensor) -> Tensor:
        for extra in ("drop", "act"):
            if extra in self._modules:
                y = self._modules[extra](y)
        return y

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (N, C, ...); got {input.dim()}D")

    def forward(self, x: Tensor) -> Tensor:
        batch_stats = self.training or not self.track_running_stats
        if not batch_stats or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self._after(super().forward(x))
        all_reduce = _SumOverRanks.apply
        dims = [0] + list(range(2, x.dim()))
        view = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() // x.shape[1]], dtype=torch.float64, device=x.device)
        dist.all_reduce(count)
        n = float(count.item())
        mean = all_reduce(x.sum(dims)) / n
        centred = x - mean.view(view)
        var = all_reduce(centred.pow(2).sum(dims)) / n  # biased, as BatchNorm normalises
        y = centred * torch.rsqrt(var + self.eps).view(view)
        if self.affine:
            y = y * self.weight.view(view) + self.bias.view(view)
        if self.training and self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / max(n - 1, 1.0)), alpha=m)
        return self._after(y)

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """``module`` with every BatchNorm layer replaced by a :class:`GlobalBatchNorm` holding the
        same parameters and buffers (as ``SyncBatchNorm.convert_sync_batchnorm`` does)."""
        out = module
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, cls):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
            if module.affine:
                with torch.no_grad():
                    out.weight = module.weight
                    out.bias = module.bias
            out.running_mean = module.running_mean
            out.running_var = module.running_var
            out.num_batches_tracked = module.num_batches_tracked
            out.training = module.training
            for extra in ("drop", "act"):  # timm's BatchNormAct2d
                if isinstance(getattr(module, extra, None), nn.Module):
                    out.add_module(extra, getattr(module, extra))
        for name, child in module.named_children():
            out.add_module(name, cls.convert(child))
        return out


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` with its BatchNorm layers normalising over the global batch: PyTorch's
    ``SyncBatchNorm`` on CUDA (through timm's converter, which keeps ``BatchNormAct2d``'s
    activation), :class:`GlobalBatchNorm` elsewhere. The state dict keeps its keys."""
    if device.type == "cuda":
        from timm.layers import convert_sync_batchnorm  # BatchNormAct2d keeps its activation

        return convert_sync_batchnorm(module)
    return GlobalBatchNorm.convert(module)


def average_gradients(params, info: Distributed) -> None:
    """Average the gradients of ``params`` over the ranks in place, in one all-reduce; parameters
    without a gradient keep none (every rank runs the same graph, so they agree on which). For a
    pass DDP cannot follow: a loss that reads only some of a network's outputs."""
    if not info.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
