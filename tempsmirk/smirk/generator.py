"""The SMIRK generator: a U-Net that turns (rendering, masked image) back into the image.

Explained in chapter 3. Shapes: B batch, H W image size (both divisible by 16).

Layout (widths 32-64-128-256, bottleneck 512)::

    (B, 6, H, W) -> enc1 32 -> pool -> enc2 64 -> pool -> enc3 128 -> pool -> enc4 256 -> pool
                 -> bottleneck 512 -> 5 residual blocks (reflect padding, BatchNorm)
                 -> up 256 ++ enc4 -> dec4 256 -> up 128 ++ enc3 -> dec3 128
                 -> up 64 ++ enc2 -> dec2 64 -> up 32 ++ enc1 -> dec1 32 -> 1×1 conv -> sigmoid

Each enc/dec/bottleneck stage is two (3×3 conv without bias, BatchNorm, ReLU) layers with zero
padding; "up" is a 2×2 transposed convolution with stride 2; "++" concatenates the skip.
Submodule names reproduce the official SMIRK layout (``encoder1.enc1conv1``, ``resnet_blocks.0.
conv_block.1``, …), so the state dict under the prefix ``smirk_generator.`` is an official
checkpoint's generator part.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

__all__ = ["SmirkGenerator", "ResidualBlock", "conv_stage"]


def conv_stage(in_channels: int, out_channels: int, name: str) -> nn.Sequential:
    """Two (3×3 conv, BatchNorm, ReLU) layers: (B, in, H, W) -> (B, out, H, W).

    Layers are named ``{name}conv1``, ``{name}norm1``, ``{name}relu1``, ``{name}conv2``, … as in
    the official checkpoint. Convolutions have no bias: BatchNorm's shift replaces it.
    """
    layers = OrderedDict()
    for i, cin in ((1, in_channels), (2, out_channels)):
        layers[f"{name}conv{i}"] = nn.Conv2d(cin, out_channels, kernel_size=3, padding=1, bias=False)
        layers[f"{name}norm{i}"] = nn.BatchNorm2d(out_channels)
        layers[f"{name}relu{i}"] = nn.ReLU(inplace=True)
    return nn.Sequential(layers)


class ResidualBlock(nn.Module):
    """x + F(x) with F = pad, conv, BN, ReLU, pad, conv, BN: (B, C, H, W) -> (B, C, H, W).

    Reflection padding avoids the dark border zero padding would add at the bottleneck, where a
    224 px image is only 14 px wide.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        # Indices 0..6 are part of the checkpoint keys (conv_block.1, conv_block.2, …).
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class SmirkGenerator(nn.Module):
    """U-Net: (B, 6, H, W) rendering ++ masked image -> (B, 3, H, W) image in [0, 1].

    Explained in chapter 3. H and W must be divisible by 16 (four 2× poolings).

    Args:
        in_channels: 6 in SMIRK (3 rendered shading + 3 masked image).
        out_channels: 3 (RGB).
        features: width of the first stage (32); stages double it up to 16× at the bottleneck.
        res_blocks: residual blocks at the bottleneck (5).
    """

    def __init__(self, in_channels: int = 6, out_channels: int = 3, features: int = 32,
                 res_blocks: int = 5) -> None:
        super().__init__()
        self.in_channels = in_channels
        w = [features * 2 ** i for i in range(5)]  # 32, 64, 128, 256, 512
        self.encoder1 = conv_stage(in_channels, w[0], "enc1")
        self.encoder2 = conv_stage(w[0], w[1], "enc2")
        self.encoder3 = conv_stage(w[1], w[2], "enc3")
        self.encoder4 = conv_stage(w[2], w[3], "enc4")
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)  # parameter-free, shared by all levels
        self.bottleneck = conv_stage(w[3], w[4], "bottleneck")
        self.resnet_blocks = nn.ModuleList(ResidualBlock(w[4]) for _ in range(res_blocks))
        self.upconv4 = nn.ConvTranspose2d(w[4], w[3], kernel_size=2, stride=2)
        self.decoder4 = conv_stage(2 * w[3], w[3], "dec4")
        self.upconv3 = nn.ConvTranspose2d(w[3], w[2], kernel_size=2, stride=2)
        self.decoder3 = conv_stage(2 * w[2], w[2], "dec3")
        self.upconv2 = nn.ConvTranspose2d(w[2], w[1], kernel_size=2, stride=2)
        self.decoder2 = conv_stage(2 * w[1], w[1], "dec2")
        self.upconv1 = nn.ConvTranspose2d(w[1], w[0], kernel_size=2, stride=2)
        self.decoder1 = conv_stage(2 * w[0], w[0], "dec1")
        self.conv = nn.Conv2d(w[0], out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"SmirkGenerator expects (B, {self.in_channels}, H, W) = rendering and "
                             f"masked image concatenated on channels; got {tuple(x.shape)}")
        if x.shape[2] % 16 or x.shape[3] % 16:
            raise ValueError(f"SmirkGenerator needs H and W divisible by 16 (four 2× poolings); got "
                             f"{tuple(x.shape[2:])}. Crop or resize, e.g. to 224 × 224.")
        e1 = self.encoder1(x)
        e2 = self.encoder2(self.pool(e1))
        e3 = self.encoder3(self.pool(e2))
        e4 = self.encoder4(self.pool(e3))
        h = self.bottleneck(self.pool(e4))
        for block in self.resnet_blocks:
            h = block(h)
        h = self.decoder4(torch.cat([self.upconv4(h), e4], dim=1))
        h = self.decoder3(torch.cat([self.upconv3(h), e3], dim=1))
        h = self.decoder2(torch.cat([self.upconv2(h), e2], dim=1))
        h = self.decoder1(torch.cat([self.upconv1(h), e1], dim=1))
        return torch.sigmoid(self.conv(h))
