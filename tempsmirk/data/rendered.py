"""Pre-rendered synthetic faces: render once, cache on disk, train for many epochs (chapter 3).

On a CPU, rendering a 64 px synthetic face costs about as much as one training step of SMIRK's
encoder on it, so drawing every training image afresh halves the speed of training. A
:class:`RenderedFaces` set holds N faces drawn as :class:`~tempsmirk.data.SyntheticFaces` draws
them (the same :class:`~tempsmirk.data.SyntheticConfig`) as uint8 images with their ground truth,
and :func:`cached_face_set` keeps it under :func:`tempsmirk.paths.cache_dir` keyed by everything
that produced it (the config, the head model, the set size and :data:`RENDER_VERSION`).

Appearance groups: the faces are rendered ``group_size`` at a time, one appearance (albedo,
lights, background) per group and the geometry (identity, expression, pose, camera) drawn per face.
A batched render is cheaper than single ones, and within a group the appearance says nothing
about the parameters, so a network cannot learn them from the background or the skin.

Shapes: N faces, H W image size, S shape and E expression coefficients.
"""

from __future__ import annotations

import fcntl
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from tempsmirk.cachekey import cache_key, fingerprint
from tempsmirk.data.synthetic import SyntheticConfig, item_seed, render_faces, sample_appearance, sample_params
from tempsmirk.data.types import FaceSample
from tempsmirk.flame import FlameParams
from tempsmirk.paths import cache_dir

__all__ = ["RENDER_VERSION", "RenderedFaces", "render_face_set", "cached_face_set", "head_fingerprint"]

#: Bumped when rendering code changes what the same config produces (part of the cache key).
RENDER_VERSION = 1
_FORMAT = "tempsmirk.rendered/1"


def head_fingerprint(flame) -> str:
    """A hash of a FLAME model's template, bases and faces: a changed head means a new cache key."""
    return fingerprint(flame.v_template, flame.shapedirs, flame.faces)


@dataclass(frozen=True, eq=False)
class RenderedFaces(Dataset):
    """N rendered faces with ground truth; a ``Dataset`` of :class:`~tempsmirk.data.FaceSample`.

    images: (N, 3, H, W) uint8 RGB (``[0, 255]``; items are returned as float in [0, 1]).
    params: :class:`FlameParams` with (N, ...) fields, the true FLAME parameters.
    landmarks68: (N, 68, 2), landmarks_mp: (N, 105, 2) float, normalised image coordinates.
    """

    images: Tensor
    params: FlameParams
    landmarks68: Tensor
    landmarks_mp: Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    def __getitem__(self, index: int) -> FaceSample:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} faces")
        return FaceSample(image=self.images[index].float() / 255, landmarks68=self.landmarks68[index],
                          landmarks_mp=self.landmarks_mp[index], landmarks_valid=torch.tensor(True),
                          params=self.params[index], index=index)

    def float_images(self, index: Tensor) -> Tensor:
        """(n,) indices -> (n, 3, H, W) float images in [0, 1] (a fast batch without ``FaceSample``)."""
        return self.images[index].float() / 255

    def state(self) -> dict:
        """A plain dict of tensors (what :meth:`save` writes; loads with ``weights_only=True``)."""
        return {"format": _FORMAT, "images": self.images, "landmarks68": self.landmarks68,
                "landmarks_mp": self.landmarks_mp,
                **{f"params.{f.name}": getattr(self.params, f.name) for f in fields(FlameParams)}}

    def save(self, path: Path) -> Path:
        """Write atomically (a crash leaves no truncated file under ``path``). Returns the path."""
        from tempsmirk.smirk.checkpoint import atomic_torch_save

        atomic_torch_save(self.state(), path)
        return Path(path)

    @staticmethod
    def load(path: Path) -> "RenderedFaces":
        """Read a set written by :meth:`save`; a file of another kind is refused with its path named."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a rendered face set (expected format {_FORMAT!r}); delete it "
                             f"and it is rendered again")
        params = FlameParams(**{f.name: state[f"params.{f.name}"] for f in fields(FlameParams)})
        return RenderedFaces(images=state["images"], params=params, landmarks68=state["landmarks68"],
                             landmarks_mp=state["landmarks_mp"])


class _Groups(Dataset):
    """Group k of a face set: ``group_size`` faces with one appearance (a worker renders it)."""

    def __init__(self, flame, cfg: SyntheticConfig, n_items: int, group_size: int) -> None:
        self.flame, self.cfg, self.n, self.g = flame, cfg, n_items, group_size

    def __len__(self) -> int:
        return math.ceil(self.n / self.g)

    def __getitem__(self, k: int):
        cfg, flame = self.cfg, self.flame
        size = min(self.g, self.n - k * self.g)
        gen = torch.Generator().manual_seed(item_seed(cfg.seed, k))
        appearance = sample_appearance(flame, cfg.image_size, gen)
        params, eye = sample_params(cfg, size, flame.n_shape, flame.n_exp, gen)
        image, lmk68, lmk_mp = render_faces(flame, params, eye, appearance, cfg.image_size)
        return (image * 255).round().to(torch.uint8), params, lmk68, lmk_mp


def _first(batch):
    return batch[0]


def render_face_set(flame, cfg: SyntheticConfig, n_items: int, group_size: int = 16, workers: int = 0,
                    progress: bool = False) -> RenderedFaces:
    """Render ``n_items`` faces drawn from ``cfg`` (module docstring: appearance groups).

    Group k is a pure function of ``(cfg.seed, k)``, so the set does not depend on ``workers``.
    ``cfg.clip_length`` and ``cfg.nuisance`` are not used (single clean frames).

    Args:
        flame: the FLAME layer (with landmark embeddings); rendering runs on its device.
        cfg: what to draw; ``cfg.image_size`` is the image side.
        n_items: N faces. group_size: faces per appearance (1 = every face its own).
        workers: rendering processes (0 = this one).
        progress: show a progress bar.
    """
    if n_items < 1 or group_size < 1:
        raise ValueError(f"need n_items >= 1 and group_size >= 1; got {n_items}, {group_size}")
    groups = DataLoader(_Groups(flame, cfg, n_items, group_size), batch_size=1, num_workers=workers,
                        collate_fn=_first)
    parts = list(tqdm(groups, desc=f"rendering {n_items} faces", disable=not progress, dynamic_ncols=True))
    return RenderedFaces(images=torch.cat([p[0] for p in parts]), params=FlameParams.cat([p[1] for p in parts]),
                         landmarks68=torch.cat([p[2] for p in parts]), landmarks_mp=torch.cat([p[3] for p in parts]))


def face_set_key(flame, cfg: SyntheticConfig, n_items: int, group_size: int) -> str:
    """The cache key of a face set: config, set size, grouping, head model and :data:`RENDER_VERSION`."""
    from omegaconf import OmegaConf

    return cache_key(OmegaConf.to_yaml(OmegaConf.structured(cfg)), f"n {n_items} group {group_size}",
                     f"render {RENDER_VERSION}", f"head {head_fingerprint(flame)}")


def cached_face_set(flame, cfg: SyntheticConfig, n_items: int, group_size: int = 16, workers: int = 0,
                    root: Optional[Path] = None, progress: bool = False) -> RenderedFaces:
    """:func:`render_face_set`, rendered on first use and read from the cache after.

    The file (``faces-<key>.pt`` under ``root``, default ``cache_dir("rendered")``) is written
    atomically and rendered by one process at a time: a second caller waits for the first.
    """
    root = Path(root) if root is not None else cache_dir("rendered")
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"faces-{face_set_key(flame, cfg, n_items, group_size)}.pt"
    if not path.is_file():
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.is_file():
                render_face_set(flame, cfg, n_items, group_size, workers, progress).save(path)
    return RenderedFaces.load(path)
