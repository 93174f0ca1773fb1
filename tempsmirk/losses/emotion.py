"""The emotion-feature loss: EMOCA's ResNet-50 emotion features, as SMIRK uses them (chapter 3).

Shapes: B batch, H W image size; images are (B, 3, H, W) RGB in [0, 1].

SMIRK's ``ExpressionLoss`` builds a ResNet-50 without its classifier (``include_top=False``,
``emoca_specific=True``: the stride of each stage's first bottleneck sits in its 3 × 3
convolution, the stem's max-pool is 3 × 3 / 2 with padding 1, then a 7 × 7 average pool: the
torchvision layout), loads EMOCA's ResNet-50 emotion-recognition checkpoint into it (the
``backbone.*`` tensors of the Lightning checkpoint's ``state_dict``, without ``backbone.fc``) and
compares the 2048 features of the generated image and of the input with an L2 distance: the mean
of squared differences over features, then over the batch. The images go in as they are ([0, 1],
no normalisation), as SMIRK feeds them; images of another size than 224 are resized to 224 first
(the 7 × 7 pool needs it; nothing changes at 224).

The weights come from a user path (nothing is downloaded) and are read without running code
from the file: :func:`read_emotion_state` reads it with
:func:`~tempsmirk.weightsio.read_weights_file`, which tries ``torch.load(weights_only=True)`` and,
for a Lightning checkpoint that also pickles its callbacks and hyper-parameters (classes of
``pytorch_lightning``, ``omegaconf``, ...), turns such objects into inert stubs (nothing of theirs is
imported or called) and refuses any other global. The network is frozen and stays in eval mode.
"""

from __future__ import annotations

import os
from typing import Mapping, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tempsmirk.weightsio import CheckpointError, load_weights_into, read_weights_file

__all__ = ["EmotionFeatures", "EmotionLoss", "read_emotion_state", "EMOTION_SIZE", "STUB_PACKAGES"]

PathLike = Union[str, os.PathLike]
EMOTION_SIZE = 224
#: Top-level packages whose pickled objects a checkpoint may hold beside its tensors (Lightning's
#: callbacks and hyper-parameters, EMOCA's own classes); they become inert stubs.
STUB_PACKAGES = ("pytorch_lightning", "lightning", "lightning_fabric", "omegaconf", "gdl", "gdl_apps",
                 "pathlib", "numpy", "argparse", "typing", "enum", "datetime")


def read_emotion_state(path: PathLike) -> dict[str, Tensor]:
    """The emotion backbone's tensors from a checkpoint: ``{conv1.weight: ..., layer1.0...}``.

    Accepts EMOCA's Lightning checkpoint (tensors ``backbone.*`` under ``state_dict``; SMIRK's
    layout), such a ``state_dict`` saved on its own, or a bare backbone state dict. The classifier
    (``backbone.fc``) and the emotion head (``linear``) are dropped, as SMIRK drops them.
    """
    obj = read_weights_file(path, "emotion network weights (EMOCA's ResNet-50 emotion checkpoint; SMIRK: "
                            "assets/ResNet50/checkpoints/*.ckpt)", stub_packages=STUB_PACKAGES)
    state = obj.get("state_dict", obj)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: expected a checkpoint dict with a 'state_dict' (EMOCA's layout) or a "
                              f"state dict; found {type(state).__name__} under 'state_dict'")
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, Tensor)}
    if any(k.startswith("backbone.") for k in tensors):
        tensors = {k[len("backbone."):]: v for k, v in tensors.items() if k.startswith("backbone.")}
    return {k: v for k, v in tensors.items() if not k.startswith("fc.")}


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class EmotionFeatures(nn.Module):
    """ResNet-50 features as SMIRK's ``ExpressionLoss`` builds them: (B, 3, 224, 224) -> (B, 2048).

    Module names are those of the checkpoint's ``backbone.*`` tensors (``conv1``, ``bn1``,
    ``layer1.0.conv1``, ``layer1.0.downsample.0``, ...).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        inplanes, layers = 64, []
        for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            down = None
            if stride != 1 or inplanes != planes * 4:
                down = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                                     nn.BatchNorm2d(planes * 4))
            blocks_ = [_Bottleneck(inplanes, planes, stride, down)]
            inplanes = planes * 4
            blocks_ += [_Bottleneck(inplanes, planes) for _ in range(blocks - 1)]
            layers.append(nn.Sequential(*blocks_))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return F.avg_pool2d(x, 7, stride=1).flatten(1)


class EmotionLoss(nn.Module):
    """L2 distance of emotion features: (B, 3, H, W) generated, (B, 3, H, W) target -> ().

    Build it with :meth:`from_file`. The network is frozen and always in eval mode; gradients
    flow to ``generated`` only.
    """

    def __init__(self, features: EmotionFeatures) -> None:
        super().__init__()
        self.features = features.requires_grad_(False).eval()

    @classmethod
    def from_file(cls, path: PathLike) -> "EmotionLoss":
        """Load EMOCA's ResNet-50 emotion weights (module docstring) strictly: every convolution and
        BatchNorm tensor must be there with its shape (``num_batches_tracked`` may be absent)."""
        net = EmotionFeatures()
        load_weights_into(net, read_emotion_state(path), str(path),
                          "EMOCA's ResNet-50 emotion network (the checkpoint SMIRK's ExpressionLoss loads)",
                          optional=("num_batches_tracked",))
        return cls(net)

    def train(self, mode: bool = True) -> "EmotionLoss":
        super().train(mode)
        self.features.eval()  # a fixed feature extractor, whatever the surrounding mode
        return self

    def _features(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != (EMOTION_SIZE, EMOTION_SIZE):
            x = F.interpolate(x, size=(EMOTION_SIZE, EMOTION_SIZE), mode="bilinear", align_corners=False)
        return self.features(x)

    def forward(self, generated: Tensor, target: Tensor) -> Tensor:
        if generated.dim() != 4 or generated.shape[1] != 3 or generated.shape != target.shape:
            raise ValueError(f"EmotionLoss expects two (B, 3, H, W) images of one shape; got "
                             f"{tuple(generated.shape)} and {tuple(target.shape)}")
        with torch.no_grad():
            goal = self._features(target)
        return (self._features(generated) - goal).pow(2).mean(dim=1).mean()
