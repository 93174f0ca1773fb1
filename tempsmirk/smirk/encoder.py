"""The SMIRK encoder: three MobileNetV3 branches that read FLAME parameters off a face image.

Explained in chapter 3. Shapes: B batch, H W image size, S shape coefficients, E expression
coefficients.

Each branch is a timm backbone (``features_only=True``) whose last feature map is average-pooled and
fed to one Linear layer:

========== ==================================== ===================================================
branch     backbone                             head output
========== ==================================== ===================================================
pose       ``tf_mobilenetv3_small_minimal_100`` 6 = global pose (3, axis-angle) + camera (s, tx, ty)
shape      ``tf_mobilenetv3_large_minimal_100`` S = 300 identity coefficients
expression ``tf_mobilenetv3_large_minimal_100`` E + 5 = expression, eyelids (2), jaw (3)
========== ==================================== ===================================================

Module and parameter names reproduce the official SMIRK layout exactly, so
``SmirkEncoder.state_dict()`` under the prefix ``smirk_encoder.`` is an official checkpoint's
encoder part (see :mod:`tempsmirk.smirk.checkpoint`).
"""

from __future__ import annotations

import os
from typing import Iterable, Mapping, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tempsmirk.flame.params import FlameParams

__all__ = [
    "BRANCHES",
    "BACKBONES",
    "PoseBranch",
    "ShapeBranch",
    "ExpressionBranch",
    "SmirkEncoder",
    "create_backbone",
    "load_backbone_weights",
]

PathLike = Union[str, os.PathLike]

BRANCHES = ("pose", "shape", "expression")
BACKBONES = {
    "pose": "tf_mobilenetv3_small_minimal_100",
    "shape": "tf_mobilenetv3_large_minimal_100",
    "expression": "tf_mobilenetv3_large_minimal_100",
}
N_POSE_CAM = 6     # global pose (3) + camera (s, tx, ty)
N_EXTRA_EXP = 5    # eyelids (2) + jaw (3) after the expression coefficients
INIT_CAM_SCALE = 7.0
JAW_SIDE_LIMIT = 0.2  # radians; bound on the jaw's two non-opening axes
INIT_JAW_OPEN = 0.05  # radians: a barely open mouth keeps the ReLU alive at the start
INIT_EYELIDS = 0.1    # a little closure keeps the clamp(0, 1) alive at the start


def create_backbone(branch: str) -> tuple[nn.Module, int]:
    """The branch's timm backbone, randomly initialised, and its last feature map's channel count.

    ``pretrained=False`` always: weights come only from local files (:func:`load_backbone_weights`).
    """
    if branch not in BACKBONES:
        raise ValueError(f"unknown encoder branch {branch!r}; expected one of {BRANCHES}")
    from tempsmirk.compat import ensure_torchvision

    ensure_torchvision()  # timm imports torchvision; see tempsmirk.compat
    import timm

    backbone = timm.create_model(BACKBONES[branch], pretrained=False, features_only=True)
    return backbone, backbone.feature_info.channels()[-1]


def _pooled(backbone: nn.Module, img: Tensor) -> Tensor:
    """(B, 3, H, W) -> (B, C): the last feature map, average-pooled."""
    return backbone(img)[-1].mean(dim=(2, 3))


class PoseBranch(nn.Module):
    """Image -> (global pose (B, 3), camera (B, 3)). Explained in chapter 3."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder, channels = create_backbone("pose")
        # A one-element Sequential: the official key is ``pose_cam_layers.0.weight``.
        self.pose_cam_layers = nn.Sequential(nn.Linear(channels, N_POSE_CAM))
        self.reset_head()

    @torch.no_grad()
    def reset_head(self) -> None:
        """SMIRK's init: a near-zero head (pose ≈ 0, translation ≈ 0) whose scale output is
        exactly 7 for every image, a camera that frames the FLAME head at the start."""
        head = self.pose_cam_layers[0]
        head.weight.mul_(0.001)
        head.bias.mul_(0.001)
        head.weight[3].zero_()  # row 3 = camera scale s
        head.bias[3] = INIT_CAM_SCALE

    def forward(self, img: Tensor) -> tuple[Tensor, Tensor]:
        out = self.pose_cam_layers(_pooled(self.encoder, img))
        return out[:, :3], out[:, 3:]


class ShapeBranch(nn.Module):
    """Image -> shape (B, S). Explained in chapter 3."""

    def __init__(self, n_shape: int = 300) -> None:
        super().__init__()
        self.encoder, channels = create_backbone("shape")
        self.shape_layers = nn.Sequential(nn.Linear(channels, n_shape))
        self.reset_head()

    @torch.no_grad()
    def reset_head(self) -> None:
        """SMIRK's init: a zero head, so training starts from the mean identity."""
        self.shape_layers[0].weight.zero_()
        self.shape_layers[0].bias.zero_()

    def forward(self, img: Tensor) -> Tensor:
        return self.shape_layers(_pooled(self.encoder, img))


class ExpressionBranch(nn.Module):
    """Image -> (expression (B, E), eyelids (B, 2), jaw pose (B, 3)). Explained in chapter 3."""

    def __init__(self, n_exp: int = 50) -> None:
        super().__init__()
        self.n_exp = n_exp
        self.encoder, channels = create_backbone("expression")
        self.expression_layers = nn.Sequential(nn.Linear(channels, n_exp + N_EXTRA_EXP))
        self.reset_head()

    @torch.no_grad()
    def reset_head(self) -> None:
        """SMIRK's init: the default Linear init scaled by 0.1 (small expressions at the start).

        One change for training from scratch: the jaw opening and the eyelids start *inside*
        their ReLU/clamp ranges for every image (weights ×0.001, bias = a small opening/closure).
        A random backbone's pooled features are nearly all positive, so with SMIRK's init the
        sign of the jaw-opening unit is the same for every image: on about half the seeds it is
        negative everywhere, the ReLU passes no gradient, and the jaw never learns. A pretrained
        start (SMIRK's) or a loaded checkpoint is unaffected.
        """
        layer = self.expression_layers[0]
        layer.weight.mul_(0.1)
        layer.bias.mul_(0.1)
        e = self.n_exp
        layer.weight[e:e + 3].mul_(0.01)  # eyelids (2) and jaw opening: ×0.001 overall
        layer.bias[e:e + 2] = INIT_EYELIDS
        layer.bias[e + 2] = INIT_JAW_OPEN

    def forward(self, img: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.expression_layers(_pooled(self.encoder, img))
        e = self.n_exp
        expression = out[:, :e]
        eyelids = out[:, e:e + 2].clamp(0.0, 1.0)
        # The jaw only opens one way; the sideways/twist axes stay small.
        jaw = torch.cat([F.relu(out[:, e + 2:e + 3]),
                         out[:, e + 3:e + 5].clamp(-JAW_SIDE_LIMIT, JAW_SIDE_LIMIT)], dim=1)
        return expression, eyelids, jaw


class SmirkEncoder(nn.Module):
    """SMIRK's encoder: image -> :class:`~tempsmirk.flame.FlameParams`. Explained in chapter 3.

    Args:
        n_exp: E, expression coefficients predicted (the official checkpoint has 50).
        n_shape: S, shape coefficients predicted (the official checkpoint has 300).
        backbone_weights: optional ``{branch: path}`` with branch in ``("pose", "shape",
            "expression")``; each path is a local file holding the timm backbone's weights
            (ImageNet weights of the named MobileNetV3, a ``.pth``/``.pt`` state dict or a
            ``.safetensors`` file). Branches not named keep their random init. Nothing is
            downloaded.
        frozen: branches whose parameters start frozen (see :meth:`freeze`).

    ``forward(img)`` takes img: (B, 3, H, W) RGB in [0, 1] (no mean/std normalisation;
    SMIRK uses 224 × 224, any H, W >= 32 works) and returns a
    :class:`~tempsmirk.flame.FlameParams`.
    """

    def __init__(self, n_exp: int = 50, n_shape: int = 300,
                 backbone_weights: Optional[Mapping[str, PathLike]] = None,
                 frozen: Iterable[str] = ()) -> None:
        super().__init__()
        self.n_exp = n_exp
        self.n_shape = n_shape
        self.pose_encoder = PoseBranch()
        self.shape_encoder = ShapeBranch(n_shape)
        self.expression_encoder = ExpressionBranch(n_exp)
        for branch, path in (backbone_weights or {}).items():
            load_backbone_weights(self.branch(branch).encoder, path)
        frozen = tuple(frozen)
        if frozen:  # freeze() without names would freeze every branch
            self.freeze(*frozen)

    def branch(self, name: str) -> nn.Module:
        """The branch module by name: ``"pose"``, ``"shape"`` or ``"expression"``."""
        if name not in BRANCHES:
            raise ValueError(f"unknown encoder branch {name!r}; expected one of {BRANCHES}")
        return getattr(self, f"{name}_encoder")

    def freeze(self, *branches: str) -> "SmirkEncoder":
        """Stop training the named branches (all three when none is named).

        Only ``requires_grad`` is switched off, as SMIRK does: gradients still flow *through* a
        frozen branch to its input (the cycle path trains the generator through the frozen
        encoder), and the branch follows the module's train/eval mode like the others.
        Returns self.
        """
        for name in branches or BRANCHES:
            self.branch(name).requires_grad_(False)
        return self

    def unfreeze(self, *branches: str) -> "SmirkEncoder":
        """Train the named branches again (all three when none is named). Returns self."""
        for name in branches or BRANCHES:
            self.branch(name).requires_grad_(True)
        return self

    @property
    def frozen_branches(self) -> tuple[str, ...]:
        """Branches with no trainable parameter."""
        return tuple(n for n in BRANCHES
                     if not any(p.requires_grad for p in self.branch(n).parameters()))

    def forward(self, img: Tensor) -> FlameParams:
        if img.dim() != 4 or img.shape[1] != 3:
            raise ValueError(f"SmirkEncoder expects images of shape (B, 3, H, W), RGB in [0, 1]; "
                             f"got {tuple(img.shape)}. Convert HWC arrays with "
                             f"torch.as_tensor(a).permute(2, 0, 1) and add a batch dimension.")
        if min(img.shape[2:]) < 32:
            raise ValueError(f"SmirkEncoder needs images of at least 32 × 32 pixels; got "
                             f"{tuple(img.shape[2:])}. Resize the crop (SMIRK uses 224 × 224).")
        global_pose, cam = self.pose_encoder(img)
        shape = self.shape_encoder(img)
        expression, eyelids, jaw_pose = self.expression_encoder(img)
        return FlameParams(global_pose=global_pose, cam=cam, shape=shape, expression=expression,
                           eyelids=eyelids, jaw_pose=jaw_pose)


def load_backbone_weights(backbone: nn.Module, path: PathLike) -> None:
    """Load a local weights file into a branch backbone, strictly.

    The file may hold the timm classification model's state dict (the extra ``conv_head``/
    ``classifier`` entries are ignored) or the features-only backbone's own state dict.
    Every backbone tensor must be present with the right shape; otherwise
    :class:`~tempsmirk.weightsio.CheckpointError` lists what differs.
    """
    from tempsmirk.weightsio import load_weights_into, read_weights_file

    load_weights_into(backbone, read_weights_file(path, "backbone weights file"), str(path),
                      f"weights for this backbone ({type(backbone).__name__}); use the weights of the "
                      f"timm model named in tempsmirk.smirk.encoder.BACKBONES for this branch")
