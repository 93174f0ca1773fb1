"""SMIRK's augmented cycle: edit the parameters, generate the edited face, read the edit back.

Explained in chapter 3. Shapes: B batch, H W image size, E expression coefficients, K templates.

Starting from the encoder's (detached) parameters, each quarter of the batch gets one edit of its
expression (:func:`augment_params`):

====== =============== ===========================================================
kind   name            expression becomes
====== =============== ===========================================================
0      ``perturb``     the prediction plus N(0, ``perturb_std``²) noise
1      ``permute``     another batch element's expression, jaw and eyelids
2      ``template``    a random row of the template bank
3      ``zero``        zero (neutral)
====== =============== ===========================================================

and then every element's jaw opening and eyelids are jittered. The edited mesh is rendered, the
sampled face pixels move with it (:func:`tempsmirk.smirk.masking.paint_samples`), the generator
draws the edited face, and the encoder must recover the edit: :func:`tempsmirk.losses.cycle_loss`.

**Template bank.** With a user file (``.npy``/``.npz``/``.pt``, (K, E') expression vectors, e.g.
coefficients fitted to posed emotions) the templates come from there
(:func:`load_templates`). Otherwise :func:`builtin_templates` builds a documented stand-in from
the expression basis itself: ±``amplitude`` along each of the first ``n_components`` components
(2n one-component expressions) and n two-component mixtures with fixed random signs. On the
built-in head these are its procedural expression components; on real FLAME they are FLAME's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor, nn

from tempsmirk.losses import cycle_loss
from tempsmirk.render import render_mesh
from tempsmirk.smirk.encoder import JAW_SIDE_LIMIT, EncoderOutput
from tempsmirk.smirk.masking import SampledPixels, paint_samples, patch_dropout, scaled_pixels

__all__ = ["CycleConfig", "AUGMENTATIONS", "Augmented", "CycleOutput", "builtin_templates",
           "load_templates", "augment_params", "cycle_path"]

PathLike = Union[str, os.PathLike]
AUGMENTATIONS = ("perturb", "permute", "template", "zero")


@dataclass
class CycleConfig:
    """The augmented cycle (the ``loss.cycle_path`` config section).

    enabled: run the cycle path at all (its weight is ``loss.cycle``).
    perturb_std: noise added to the expression for the ``perturb`` quarter.
    jaw_jitter: std of the noise on the jaw opening (radians); the side axes get a fifth of it.
    eyelid_jitter: std of the noise on eyelid closure.
    templates_path: expression templates file (module docstring); None = built-in bank.
    template_components, template_amplitude: the built-in bank's n and amplitude.
    """

    enabled: bool = True
    perturb_std: float = 0.5
    jaw_jitter: float = 0.1
    eyelid_jitter: float = 0.2
    templates_path: Optional[str] = None
    template_components: int = 10
    template_amplitude: float = 2.0


def builtin_templates(n_exp: int, n_components: int = 10, amplitude: float = 2.0) -> Tensor:
    """The stand-in template bank (module docstring): (3·n, n_exp) float, deterministic."""
    n = min(n_components, n_exp)
    eye = torch.eye(n_exp)[:n] * amplitude
    g = torch.Generator().manual_seed(0)
    partner = (torch.arange(n) + 1 + torch.randint(0, max(n - 1, 1), (n,), generator=g)) % max(n, 1)
    signs = torch.randint(0, 2, (n, 2), generator=g).float() * 2 - 1
    mixes = torch.zeros(n, n_exp)
    mixes[torch.arange(n), torch.arange(n)] = signs[:, 0] * amplitude / 2 ** 0.5
    mixes[torch.arange(n), partner] += signs[:, 1] * amplitude / 2 ** 0.5
    return torch.cat([eye, -eye, mixes])


def load_templates(path: PathLike, n_exp: int) -> Tensor:
    """Expression templates from a file: (K, E') array -> (K, n_exp) float (zero-padded or cut).

    ``.npy``; ``.npz`` with key ``expression`` (or a single array); ``.pt``/``.pth`` holding a
    tensor or a dict with ``expression`` (read with ``weights_only=True``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expression templates file {path} does not exist; give a (K, E) "
                                f".npy/.npz/.pt file or leave loss.cycle_path.templates_path empty for "
                                f"the built-in bank")
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
        raise ValueError(f"{path}: unsupported templates file type {path.suffix!r}; use .npy, .npz or .pt")
    t = torch.as_tensor(np.asarray(arr), dtype=torch.float32)
    if t.dim() != 2 or t.shape[0] == 0 or not torch.isfinite(t).all():
        raise ValueError(f"{path}: expected a finite (K, E) array of expression templates with K >= 1; "
                         f"got shape {tuple(t.shape)}")
    if t.shape[1] >= n_exp:
        return t[:, :n_exp].contiguous()
    return torch.cat([t, t.new_zeros(t.shape[0], n_exp - t.shape[1])], dim=1)


@dataclass(frozen=True)
class Augmented:
    """Edited parameters and which edit each element got.

    params: :class:`EncoderOutput` (B, ...) — shape, pose and camera unchanged.
    kind: (B,) int64 index into :data:`AUGMENTATIONS`.
    """

    params: EncoderOutput
    kind: Tensor


def augment_params(params: EncoderOutput, templates: Tensor, cfg: CycleConfig,
                   generator: torch.Generator) -> Augmented:
    """Apply the four edits by quarters of the batch, then jaw/eyelid jitter (module docstring).

    Args:
        params: (B, ...) detached encoder outputs.
        templates: (K, E) expression templates.
        cfg: :class:`CycleConfig`; generator: CPU ``torch.Generator``.
    """
    p = params.detach()
    b, e = p.expression.shape
    device, dtype = p.expression.device, p.expression.dtype
    kind = torch.arange(b) * len(AUGMENTATIONS) // b  # quarters, in batch order
    perm = torch.randperm(b, generator=generator)
    noise = torch.randn(b, e, generator=generator) * cfg.perturb_std
    pick = torch.randint(0, templates.shape[0], (b,), generator=generator)
    jaw_noise = torch.randn(b, 3, generator=generator) * torch.tensor([1.0, 0.2, 0.2]) * cfg.jaw_jitter
    lid_noise = torch.randn(b, 2, generator=generator) * cfg.eyelid_jitter
    to = lambda x: x.to(device=device, dtype=dtype)  # noqa: E731
    kind_d = kind.to(device)[:, None]

    expression = p.expression.clone()
    jaw, lids = p.jaw_pose.clone(), p.eyelids.clone()
    expression = torch.where(kind_d == 0, expression + to(noise), expression)
    permuted = perm.to(device)
    expression = torch.where(kind_d == 1, p.expression[permuted], expression)
    jaw = torch.where(kind_d == 1, p.jaw_pose[permuted], jaw)
    lids = torch.where(kind_d == 1, p.eyelids[permuted], lids)
    expression = torch.where(kind_d == 2, to(templates)[pick.to(device)], expression)
    expression = torch.where(kind_d == 3, torch.zeros_like(expression), expression)

    jaw = jaw + to(jaw_noise)
    # Keep the edit inside what the encoder can output (jaw opens one way, sides bounded).
    jaw = torch.cat([jaw[:, :1].clamp(min=0), jaw[:, 1:].clamp(-JAW_SIDE_LIMIT, JAW_SIDE_LIMIT)], dim=1)
    lids = (lids + to(lid_noise)).clamp(0, 1)
    out = EncoderOutput(global_pose=p.global_pose, cam=p.cam, shape=p.shape, expression=expression,
                        eyelids=lids, jaw_pose=jaw)
    return Augmented(params=out, kind=kind.to(device))


@dataclass(frozen=True)
class CycleOutput:
    """Everything the cycle path made (for the loss and for pictures).

    loss: () :func:`~tempsmirk.losses.cycle_loss` of re-encoded vs edited parameters.
    augmented: the edits.
    rendering: (B, 3, H, W) shading of the edited mesh.
    masked: (B, 3, H, W) masked image with the sampled pixels moved to the edited mesh.
    generated: (B, 3, H, W) the generator's image of the edited face.
    reencoded: :class:`EncoderOutput` read back from ``generated``.
    """

    loss: Tensor
    augmented: Augmented
    rendering: Tensor
    masked: Tensor
    generated: Tensor
    reencoded: EncoderOutput


def cycle_path(encoder: nn.Module, generator: nn.Module, flame: nn.Module, image: Tensor,
               params: EncoderOutput, hull: Tensor, rendered_mask: Tensor, samples: SampledPixels,
               face_mask: Tensor, templates: Tensor, cfg: CycleConfig, n_patches: int,
               patch_size: int, rng: torch.Generator) -> CycleOutput:
    """One augmented-cycle pass (module docstring). Explained in chapter 3.

    Args:
        encoder, generator, flame: the models (frozen or not: gradients reach whatever trains).
        image: (B, 3, H, W) the input images.
        params: (B, ...) encoder outputs of ``image`` (detached here).
        hull: (B, 1, H, W) dilated landmark hull; rendered_mask: (B, 1, H, W) the face area of
            the original rendering (both from the reconstruction path's masking).
        samples: sampled face pixels of the original rendering.
        face_mask: (F,) bool faces drawn; templates: (K, E).
        cfg: :class:`CycleConfig`; n_patches, patch_size (px at 224): patch dropout.
        rng: CPU ``torch.Generator``.
    """
    size = image.shape[-1]
    aug = augment_params(params, templates, cfg, rng)
    a = aug.params
    out = flame(shape=a.shape, expression=a.expression, global_pose=a.global_pose,
                jaw_pose=a.jaw_pose, eyelids=a.eyelids)
    rendering = render_mesh(out.vertices, flame.faces, a.cam, size, face_mask=face_mask)
    # Hide the face at both geometries, so neither old nor new expression can be copied.
    keep = hull * (1 - rendered_mask.detach()) * (1 - rendering.mask.detach())
    keep = patch_dropout(keep, n_patches, scaled_pixels(patch_size, size), rng)
    colours, painted = paint_samples(samples, rendering.screen_vertices, flame.faces, size)
    masked = image.detach() * keep * (1 - painted) + colours * painted
    generated = generator(torch.cat([rendering.image, masked], dim=1))
    reencoded = encoder(generated)
    loss = cycle_loss(reencoded, a)
    return CycleOutput(loss=loss, augmented=aug, rendering=rendering.image, masked=masked,
                       generated=generated, reencoded=reencoded)
