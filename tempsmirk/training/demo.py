"""A SMIRK checkpoint trained on synthetic faces, built offline and cached (chapters 5–7).

Nothing licensed ships, so the chapters that need "a trained encoder" train one here: the
config ``tempsmirk/configs/smirk_synthetic_small.yaml`` (64 px faces of the built-in head) for the
profile's number of steps. The run folder lives under :func:`tempsmirk.paths.cache_dir`, named by
a hash of the resolved config, the head model and :data:`DEMO_RECIPE`, so a changed recipe trains
anew and an unchanged one is reused. A
run cut short resumes from its last checkpoint on the next call.
"""

from __future__ import annotations

import fcntl
from dataclasses import replace
from pathlib import Path
from typing import Optional

from tempsmirk.cachekey import cache_key, fingerprint
from tempsmirk.config import Config, config_to_yaml, load_config
from tempsmirk.paths import cache_dir, repo_root

__all__ = ["DEMO_IMAGE_SIZE", "DEMO_PROFILES", "demo_config", "demo_checkpoint"]

#: Input size of the demo encoder (crops must be resized to it).
DEMO_IMAGE_SIZE = 64
#: Training steps per profile: ``small`` runs in CI on a CPU, ``full`` is a longer run.
DEMO_PROFILES = {"small": 200, "full": 4000}
#: Bumped when training code changes what the same config produces (part of the cache key).
DEMO_RECIPE = 2


def _head_fingerprint(cfg: Config) -> str:
    """A hash of the head model the run trains on: a changed built-in head means a new run."""
    from tempsmirk.flame import load_flame

    flame = load_flame(cfg.model.flame_path, cfg.model.n_shape, cfg.model.n_exp)
    return fingerprint(flame.v_template, flame.shapedirs, flame.faces)


def demo_config(profile: str = "small", seed: int = 0) -> Config:
    """The demo run's config (``run.dir`` still a placeholder; :func:`demo_checkpoint` sets it)."""
    if profile not in DEMO_PROFILES:
        raise ValueError(f"profile must be one of {sorted(DEMO_PROFILES)}; got {profile!r}")
    path = repo_root() / "tempsmirk" / "configs" / "smirk_synthetic_small.yaml"
    return load_config(path, [f"run.dir=unset", f"run.seed={seed}", f"train.steps={DEMO_PROFILES[profile]}",
                              f"data.synthetic.image_size={DEMO_IMAGE_SIZE}", "train.image_every=0"])


def demo_checkpoint(profile: str = "small", seed: int = 0, progress: bool = False,
                    root: Optional[Path] = None) -> Path:
    """Path of a SMIRK-layout checkpoint (encoder + generator) trained on synthetic faces.

    Trains on first use (``small``: a few minutes on a CPU) and returns the cached file after.
    Load it with :func:`tempsmirk.smirk.load_smirk_checkpoint`; its encoder expects
    ``DEMO_IMAGE_SIZE`` × ``DEMO_IMAGE_SIZE`` crops.

    Args:
        profile: ``"small"`` or ``"full"`` (:data:`DEMO_PROFILES`).
        seed: training seed (data order, masking and cycle draws).
        progress: show the training progress bar.
        root: cache folder (default ``cache_dir("checkpoints")``).
    """
    from tempsmirk.training.trainer import Trainer

    cfg = demo_config(profile, seed)
    key = cache_key(config_to_yaml(cfg), f"recipe {DEMO_RECIPE}", f"head {_head_fingerprint(cfg)}", length=12)
    run_dir = Path(root) if root is not None else cache_dir("checkpoints")
    run_dir = run_dir / f"demo-{profile}-seed{seed}-{key}"
    final = run_dir / "smirk.pt"
    if final.is_file():
        return final
    run_dir.mkdir(parents=True, exist_ok=True)
    # Two notebooks asking at once: the second waits for the first's run instead of racing it.
    with open(run_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not final.is_file():
            cfg = replace(cfg, run=replace(cfg.run, dir=str(run_dir)))
            trainer = Trainer(cfg, resume=(run_dir / "checkpoints" / "last.pt").is_file(), progress=progress)
            trainer.train()
    return final
