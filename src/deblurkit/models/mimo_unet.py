"""MIMO-UNet and MIMO-UNet+ (Cho et al., "Rethinking Coarse-to-Fine Approach in Single Image
Deblurring", ICCV 2021, arXiv 2108.05054).

Written from the published description and the official module layout (github chosj95/MIMO-UNet,
``models/MIMOUNet.py`` and ``models/layers.py``): same layers, same forward pass and the same
state-dict keys, so an official checkpoint (``torch.load(path)["model"]``) loads with
``strict=True``. Parameter counts: 6,807,171 (MIMO-UNet) and 16,107,651 (MIMO-UNet+); 244 and 532
tensors.

The only addition is ``base_channel`` (32 = official) for narrow CPU-trainable variants.

Shape:
    input ``(B, 3, H, W)`` float32 sRGB in [0, 1] with H and W multiples of 4 (the runtime pads);
    output a list of three ``(B, 3, H/4, W/4)``, ``(B, 3, H/2, W/2)``, ``(B, 3, H, W)`` tensors,
    all residual (the input at that scale is added). The deblurred image is the last one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicConv(nn.Module):
    """Conv (or 2x transposed conv) followed by an optional ReLU, as ``main = Sequential(...)``."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        stride: int = 1,
        *,
        bias: bool = True,
        relu: bool = True,
        transpose: bool = False,
    ) -> None:
        super().__init__()
        if transpose:
            conv: nn.Module = nn.ConvTranspose2d(
                in_channel, out_channel, kernel_size, stride=stride, padding=kernel_size // 2 - 1, bias=bias
            )
        else:
            conv = nn.Conv2d(in_channel, out_channel, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)
        layers: list[nn.Module] = [conv]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class ResBlock(nn.Module):
    """conv3x3 + ReLU -> conv3x3, plus the input (no activation after the sum)."""

    def __init__(self, channel: int) -> None:
        super().__init__()
        self.main = nn.Sequential(BasicConv(channel, channel, 3), BasicConv(channel, channel, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + x


class EBlock(nn.Module):
    """``num_res`` residual blocks (encoder side)."""

    def __init__(self, channel: int, num_res: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[ResBlock(channel) for _ in range(num_res)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DBlock(EBlock):
    """``num_res`` residual blocks (decoder side)."""


class AFF(nn.Module):
    """Asymmetric feature fusion: concat the three encoder scales -> 1x1 + ReLU -> 3x3."""

    def __init__(self, in_channel: int, out_channel: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            BasicConv(in_channel, out_channel, 1), BasicConv(out_channel, out_channel, 3, relu=False)
        )

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, x4: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([x1, x2, x4], dim=1))


class SCM(nn.Module):
    """Shallow convolutional module: features of a downscaled input, concatenated with it."""

    def __init__(self, out_plane: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            BasicConv(3, out_plane // 4, 3),
            BasicConv(out_plane // 4, out_plane // 2, 1),
            BasicConv(out_plane // 2, out_plane // 2, 3),
            BasicConv(out_plane // 2, out_plane - 3, 1),
        )
        self.conv = BasicConv(out_plane, out_plane, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([x, self.main(x)], dim=1))


class FAM(nn.Module):
    """Feature attention module: ``x1 + conv3x3(x1 * x2)``."""

    def __init__(self, channel: int) -> None:
        super().__init__()
        self.merge = BasicConv(channel, channel, 3, relu=False)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return x1 + self.merge(x1 * x2)


class MIMOUNet(nn.Module):
    """MIMO-UNet: multi-input multi-output U-Net with three residual outputs.

    Args:
        num_res: residual blocks per encoder/decoder block (8 official, 20 for MIMO-UNet+).
        base_channel: channels at full resolution (32 official); the other scales use 2x and 4x.
    """

    size_multiple = 4
    dropout_rate = 0.0

    def __init__(self, num_res: int = 8, base_channel: int = 32) -> None:
        super().__init__()
        if num_res < 1 or base_channel < 8 or base_channel % 4:
            raise ValueError(f"need num_res >= 1 and base_channel a multiple of 4 >= 8, got {num_res}, {base_channel}")
        self.hparams = {"num_res": int(num_res), "base_channel": int(base_channel)}
        c = base_channel
        self.Encoder = nn.ModuleList([EBlock(c, num_res), EBlock(c * 2, num_res), EBlock(c * 4, num_res)])
        self.feat_extract = nn.ModuleList([
            BasicConv(3, c, 3),
            BasicConv(c, c * 2, 3, stride=2),
            BasicConv(c * 2, c * 4, 3, stride=2),
            BasicConv(c * 4, c * 2, 4, stride=2, transpose=True),
            BasicConv(c * 2, c, 4, stride=2, transpose=True),
            BasicConv(c, 3, 3, relu=False),
        ])
        self.Decoder = nn.ModuleList([DBlock(c * 4, num_res), DBlock(c * 2, num_res), DBlock(c, num_res)])
        self.Convs = nn.ModuleList([BasicConv(c * 4, c * 2, 1), BasicConv(c * 2, c, 1)])
        self.ConvsOut = nn.ModuleList([BasicConv(c * 4, 3, 3, relu=False), BasicConv(c * 2, 3, 3, relu=False)])
        self.AFFs = nn.ModuleList([AFF(c * 7, c), AFF(c * 7, c * 2)])
        self.FAM1 = FAM(c * 4)
        self.SCM1 = SCM(c * 4)
        self.FAM2 = FAM(c * 2)
        self.SCM2 = SCM(c * 2)
        if self.dropout_rate:
            self.drop1 = nn.Dropout2d(self.dropout_rate)
            self.drop2 = nn.Dropout2d(self.dropout_rate)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The encoder half: ``(x_2, x_4, res1, res2, z)`` = input pyramid, the two skip features and
        the bottleneck (shared with the inference rewrite in ``deblurkit.infer.fusion``)."""
        x_2 = F.interpolate(x, scale_factor=0.5)  # nearest, as in the official code
        x_4 = F.interpolate(x_2, scale_factor=0.5)
        z2 = self.SCM2(x_2)
        z4 = self.SCM1(x_4)

        res1 = self.Encoder[0](self.feat_extract[0](x))
        z = self.FAM2(self.feat_extract[1](res1), z2)
        res2 = self.Encoder[1](z)
        z = self.FAM1(self.feat_extract[2](res2), z4)
        return x_2, x_4, res1, res2, self.Encoder[2](z)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Deblur ``x`` ``(B, 3, H, W)`` (H, W multiples of 4); returns outputs at 1/4, 1/2 and 1."""
        x_2, x_4, res1, res2, z = self.encode(x)
        z12 = F.interpolate(res1, scale_factor=0.5)
        z21 = F.interpolate(res2, scale_factor=2.0)
        z42 = F.interpolate(z, scale_factor=2.0)
        z41 = F.interpolate(z42, scale_factor=2.0)
        res2 = self.AFFs[1](z12, res2, z42)
        res1 = self.AFFs[0](res1, z21, z41)
        if self.dropout_rate:
            res2 = self.drop2(res2)
            res1 = self.drop1(res1)

        outputs: list[torch.Tensor] = []
        z = self.Decoder[0](z)
        outputs.append(self.ConvsOut[0](z) + x_4)
        z = self.feat_extract[3](z)
        z = self.Decoder[1](self.Convs[0](torch.cat([z, res2], dim=1)))
        outputs.append(self.ConvsOut[1](z) + x_2)
        z = self.feat_extract[4](z)
        z = self.Decoder[2](self.Convs[1](torch.cat([z, res1], dim=1)))
        outputs.append(self.feat_extract[5](z) + x)
        return outputs


class MIMOUNetPlus(MIMOUNet):
    """MIMO-UNet+: 20 residual blocks per block and ``Dropout2d(0.1)`` on both AFF outputs.

    The dropout layers have no parameters, so the state-dict keys are those of :class:`MIMOUNet`.
    """

    dropout_rate = 0.1

    def __init__(self, num_res: int = 20, base_channel: int = 32) -> None:
        super().__init__(num_res=num_res, base_channel=base_channel)
