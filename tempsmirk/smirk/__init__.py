"""SMIRK: the single-image encoder, its generator and their checkpoints (chapter 3).

- :class:`SmirkEncoder` — image (B, 3, H, W) in [0, 1] -> :class:`EncoderOutput` (FLAME parameters).
- :class:`SmirkGenerator` — U-Net, (B, 6, H, W) rendering ++ masked image -> (B, 3, H, W) image.
- :func:`load_smirk_checkpoint` / :func:`save_smirk_checkpoint` — the official flat checkpoint
  layout, loaded strictly with ``weights_only=True``.

Importing this package imports ``timm`` (through :func:`tempsmirk.compat.ensure_torchvision`)
only when an encoder is built.
"""

from tempsmirk.smirk.checkpoint import (
    CheckpointError,
    load_smirk_checkpoint,
    load_smirk_state,
    save_smirk_checkpoint,
    smirk_state_dict,
)
from tempsmirk.smirk.encoder import BRANCHES, EncoderOutput, SmirkEncoder
from tempsmirk.smirk.generator import SmirkGenerator

__all__ = [
    "BRANCHES",
    "CheckpointError",
    "EncoderOutput",
    "SmirkEncoder",
    "SmirkGenerator",
    "load_smirk_checkpoint",
    "load_smirk_state",
    "save_smirk_checkpoint",
    "smirk_state_dict",
]
