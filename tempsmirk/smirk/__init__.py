"""SMIRK: the single-image encoder, its generator and their checkpoints (chapter 3).

- :class:`SmirkEncoder` — image (B, 3, H, W) in [0, 1] -> :class:`~tempsmirk.flame.FlameParams`.
- :class:`SmirkGenerator` — U-Net, (B, 6, H, W) rendering ++ masked image -> (B, 3, H, W) image.
- :func:`load_smirk_checkpoint` / :func:`save_smirk_checkpoint` — the official flat checkpoint
  layout, loaded strictly with ``weights_only=True``.
- :mod:`tempsmirk.smirk.masking` — :func:`mask_face`: the generator's masked view of the input.
- :mod:`tempsmirk.smirk.cycle` — :func:`augment_params`: the augmented cycle's parameter edits
  (the pass that uses them is :func:`tempsmirk.training.step.cycle_path`).

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
from tempsmirk.smirk.cycle import (
    AUGMENTATIONS,
    Augmented,
    CycleConfig,
    ExpressionTemplates,
    augment_params,
    builtin_templates,
    load_templates,
)
from tempsmirk.smirk.encoder import BRANCHES, SmirkEncoder
from tempsmirk.smirk.generator import SmirkGenerator
from tempsmirk.smirk.masking import (
    MaskedInput,
    MaskingConfig,
    SampledPoints,
    face_hull_points,
    face_sampling_weights,
    hull_mask,
    mask_face,
    point_pixels,
    sample_points,
    transfer_pixels,
)

__all__ = [
    "AUGMENTATIONS",
    "Augmented",
    "CycleConfig",
    "ExpressionTemplates",
    "MaskedInput",
    "MaskingConfig",
    "SampledPoints",
    "augment_params",
    "builtin_templates",
    "face_hull_points",
    "face_sampling_weights",
    "hull_mask",
    "load_templates",
    "mask_face",
    "point_pixels",
    "sample_points",
    "transfer_pixels",
    "BRANCHES",
    "CheckpointError",
    "SmirkEncoder",
    "SmirkGenerator",
    "load_smirk_checkpoint",
    "load_smirk_state",
    "save_smirk_checkpoint",
    "smirk_state_dict",
]
