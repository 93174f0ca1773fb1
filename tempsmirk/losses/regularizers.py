"""Parameter-space losses: regularisers and the cycle loss. Explained in chapter 3.

Shapes: B batch, S shape coefficients, E expression coefficients.

The regularisers pull predictions towards a reference: zero by default (the FLAME mean face,
neutral expression, closed jaw), or a base model's predictions when one is given (SMIRK's
``use_base_model_for_regularization``). Each is a plain mean of squares over batch and
coefficients, as in SMIRK, so its weight does not depend on B, S or E.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from tempsmirk.flame.params import FlameParams

__all__ = ["expression_reg", "jaw_reg", "shape_reg", "cycle_loss"]


def _mean_sq(x: Tensor, reference: Optional[Tensor]) -> Tensor:
    if reference is not None:
        if reference.shape != x.shape:
            raise ValueError(f"reference should have the prediction's shape {tuple(x.shape)}; "
                             f"got {tuple(reference.shape)}")
        x = x - reference
    return x.pow(2).mean()


def expression_reg(expression: Tensor, reference: Optional[Tensor] = None) -> Tensor:
    """mean((ψ − ψ_ref)²): expression (B, E), reference (B, E) or None (= 0) -> ()."""
    return _mean_sq(expression, reference)


def jaw_reg(jaw_pose: Tensor, reference: Optional[Tensor] = None) -> Tensor:
    """mean((θ_jaw − θ_ref)²) over all three axes: jaw_pose (B, 3), reference or None -> ()."""
    return _mean_sq(jaw_pose, reference)


def shape_reg(shape: Tensor, reference: Optional[Tensor] = None) -> Tensor:
    """mean((β − β_ref)²): shape (B, S), reference (B, S) or None (= 0) -> ().

    Only meaningful while the shape branch trains (SMIRK keeps it frozen by default).
    """
    return _mean_sq(shape, reference)


def cycle_loss(pred: FlameParams, target: FlameParams, expression_weight: float = 1.0,
               jaw_weight: float = 10.0, eyelid_weight: float = 10.0,
               shape_weight: float = 0.0) -> Tensor:
    """SMIRK's cycle consistency: re-encoded parameters against the ones the image was made from.

    ``MSE(ψ) + 10·MSE(jaw) + 10·MSE(eyelids)`` with each MSE a mean over batch and coefficients.
    ``pred`` comes from encoding the generated image, ``target`` holds the augmented (detached)
    parameters it was rendered with. ``shape_weight`` adds ``MSE(β)``; SMIRK uses 1 when the
    generator also trains in the cycle path, 0 otherwise.

    Returns () .
    """
    loss = expression_weight * torch.nn.functional.mse_loss(pred.expression, target.expression)
    loss = loss + jaw_weight * torch.nn.functional.mse_loss(pred.jaw_pose, target.jaw_pose)
    loss = loss + eyelid_weight * torch.nn.functional.mse_loss(pred.eyelids, target.eyelids)
    if shape_weight:
        loss = loss + shape_weight * torch.nn.functional.mse_loss(pred.shape, target.shape)
    return loss
