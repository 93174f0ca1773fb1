"""Image-space losses: L1 reconstruction and the VGG16 perceptual loss. Explained in chapter 3.

Shapes: B batch, H W image size; images are (B, 3, H, W) RGB in [0, 1].

The perceptual loss compares VGG16 activations after relu1_2, relu2_2, relu3_3 and relu4_3
(timm's ``vgg16`` with ``features_only=True``, feature indices 0–3) with an L1 distance, summed
over the four levels, as SMIRK does. VGG weights are never downloaded: give a local file with
the ImageNet weights (timm's or torchvision's ``vgg16`` state dict; both name the layers
``features.N``). Without one the loss is *off*: it returns 0, ``enabled`` is False, and a warning
says so when it is built — random VGG features would be a meaningless loss.
"""

from __future__ import annotations

import os
import warnings
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["reconstruction_loss", "PerceptualLoss", "VGG_LAYERS"]

PathLike = Union[str, os.PathLike]
VGG_LAYERS = (0, 1, 2, 3)  # timm feature indices: relu1_2, relu2_2, relu3_3, relu4_3
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def reconstruction_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error over every pixel and channel: (B, 3, H, W) ×2 -> ()."""
    return (pred - target).abs().mean()


class PerceptualLoss(nn.Module):
    """VGG16 perceptual loss: (B, 3, H, W), (B, 3, H, W) in [0, 1] -> (). Explained in chapter 3.

    Args:
        weights_path: local VGG16 weights file (``.pth``/``.pt`` state dict or ``.safetensors``);
            None turns the loss off (see the module docstring).
        resize: side the images are bilinearly resized to before VGG (SMIRK: 224); None keeps
            their size (cheaper on small test images).
        smirk_rescale: apply SMIRK's ``x * 0.5 + 0.5`` before ImageNet normalisation. SMIRK's
            images are already in [0, 1], so this squeezes them into [0.5, 1]; we keep it by
            default so that the reference weight (10) means what it meant there.

    The VGG parameters are frozen; gradients flow to ``pred`` only.
    """

    def __init__(self, weights_path: Optional[PathLike] = None, resize: Optional[int] = 224,
                 smirk_rescale: bool = True) -> None:
        super().__init__()
        self.resize = resize
        self.smirk_rescale = smirk_rescale
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.vgg: Optional[nn.Module] = None
        if weights_path is None:
            warnings.warn("VGG perceptual loss is OFF: no VGG16 weights file was given "
                          "(PerceptualLoss(weights_path=None)); it returns 0. Pass the path of "
                          "local ImageNet VGG16 weights to turn it on.", stacklevel=2)
            return
        self.vgg = build_vgg16_features(weights_path)

    @property
    def enabled(self) -> bool:
        return self.vgg is not None

    def train(self, mode: bool = True) -> "PerceptualLoss":
        super().train(mode)
        if self.vgg is not None:
            self.vgg.eval()  # a fixed feature extractor, whatever the surrounding mode
        return self

    def _prepare(self, x: Tensor) -> Tensor:
        if self.smirk_rescale:
            x = x * 0.5 + 0.5
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        if self.resize is not None and tuple(x.shape[-2:]) != (self.resize, self.resize):
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        return x

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.dim() != 4 or pred.shape[1] != 3 or pred.shape != target.shape:
            raise ValueError(f"PerceptualLoss expects two (B, 3, H, W) images of one shape; got "
                             f"{tuple(pred.shape)} and {tuple(target.shape)}")
        if self.vgg is None:
            return pred.new_zeros(())
        feats_pred = self.vgg(self._prepare(pred))
        with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
            feats_target = self.vgg(self._prepare(target))
        loss = pred.new_zeros(())
        for a, b in zip(feats_pred, feats_target):
            loss = loss + (a - b).abs().mean()
        return loss


def build_vgg16_features(weights_path: PathLike) -> nn.Module:
    """timm ``vgg16`` (``features_only``, levels :data:`VGG_LAYERS`) with weights from a local file,
    frozen and in eval mode. The file's ``features.N.*`` tensors (timm or torchvision naming) are
    loaded strictly; its classifier entries are ignored."""
    from tempsmirk.compat import ensure_torchvision
    from tempsmirk.weightsio import load_weights_into, read_weights_file

    state = read_weights_file(weights_path, "VGG16 weights file")  # first: a bad path fails before VGG is built
    ensure_torchvision()  # timm imports torchvision; see tempsmirk.compat
    import timm

    vgg = timm.create_model("vgg16", pretrained=False, features_only=True, out_indices=VGG_LAYERS)
    # features_only flattens ``features.3`` into ``features_3``; accept either spelling.
    state = {k.replace("features.", "features_", 1) if k.startswith("features.") else k: v
             for k, v in state.items()}
    load_weights_into(vgg, state, str(weights_path),
                      "VGG16 weights (expected a timm or torchvision vgg16 state dict)")
    vgg.requires_grad_(False)
    return vgg.eval()
