"""Exact graph rewrites applied before ONNX export, so ONNX Runtime runs a cheaper graph.

The model classes in :mod:`deblurkit.models` stay faithful to the papers' forward passes (and
their state-dict keys); this module builds an *inference copy* whose outputs are equal up to
float32 rounding (about 1e-6) but whose graph suits ONNX Runtime's CPU kernels better.

NAFNet (:class:`deblurkit.models.nafnet.NAFBlock`), per block:

- the layer norms' affine ``weight``/``bias`` are folded into the 1x1 convolution that follows
  (``conv1``, ``conv4``), and the residual scales ``beta``/``gamma`` into ``conv3``/``conv5``;
- the parameter-free normalisation over the channels becomes 1x1 convolutions for narrow blocks
  (at most :data:`POINTWISE_NORM_MAX_CHANNELS` channels): centring as one C->C convolution with
  weights ``I - 1/C``, the mean of squares as a C->1 convolution, ``1/sqrt`` on that single channel
  and a 1->C convolution to spread it back. Every large tensor then stays in ONNX Runtime's
  blocked NCHWc layout (convolutions, ``Mul``), where a ``LayerNormalization`` needs two layout
  reorders and two transposes around it. Wider blocks, where the C->C convolution costs more than
  the reorders save, keep ``LayerNormalization`` over the last axis of an NHWC view (one fused
  kernel) instead of reductions over the channel axis of NCHW;
- each SimpleGate's two halves come from two half-width convolutions instead of one convolution
  followed by a channel split, which removes the channel ``Slice`` copies;
- with TLC, the local window mean (an integral image in the model) becomes a chain of small
  dilated depthwise box convolutions per axis (a box of 384 = 8 x 8 x 6 taps at dilations 1, 8,
  64), exact for inputs at least as large as the window (the ONNX backend runs smaller ones on
  torch).

MIMO-UNet / MIMO-UNet+ (:class:`deblurkit.models.mimo_unet.MIMOUNet`): every 1x1 convolution
over a channel concatenation (the two AFF modules and the two decoder ``Convs``) becomes a sum of
1x1 convolutions over the parts, and for parts that the official forward upsamples (nearest
neighbour) first, the 1x1 convolution runs *before* the upsampling, at the lower resolution
(pointwise maps commute with nearest-neighbour upsampling). No concatenation and far fewer
upsampled channels remain.

Measured at 1280x720, 2 threads (docs/models.md): ONNX Runtime runs the rewritten NAFNet-w32 graph
in 3.8 s instead of 4.8 s (the pointwise norm, with the symbolic shapes that
:func:`deblurkit.infer.backends.export_onnx_bytes` adds, later took ``nafnet-w16`` from 1.19 to
0.79 s), and MIMO-UNet's peak memory drops from 2.8 to 2.2 GB. Other
architectures are returned unchanged.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from deblurkit.models.mimo_unet import BasicConv, MIMOUNet
from deblurkit.models.nafnet import LayerNorm2d, LocalAvgPool2d, NAFBlock

#: bump when a rewrite changes, so cached ONNX graphs of the old rewrite are not reused
FUSION_VERSION = "2"

#: narrow NAFNet blocks use :class:`ChannelNormPointwise`; wider ones :class:`ChannelNormNHWC`
POINTWISE_NORM_MAX_CHANNELS = 32


class ChannelNormNHWC(nn.Module):
    """Parameter-free layer norm over the channels of an NCHW tensor, computed on an NHWC view."""

    def __init__(self, channels: int, eps: float) -> None:
        super().__init__()
        self.channels = int(channels)
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A constant normalized_shape keeps the exported graph free of shape arithmetic.
        y = F.layer_norm(x.permute(0, 2, 3, 1), (self.channels,), eps=self.eps)
        return y.permute(0, 3, 1, 2)


class ChannelNormPointwise(nn.Module):
    """Parameter-free layer norm over the channels of an NCHW tensor, as 1x1 convolutions.

    ``y = xc / sqrt(mean_c(xc^2) + eps)`` with ``xc = x - mean_c(x)``, where the centring, the mean
    of squares and the broadcast back to C channels are 1x1 convolutions with constant weights.
    Same function as :class:`deblurkit.models.nafnet.LayerNorm2d` without its affine part.
    """

    def __init__(self, channels: int, eps: float) -> None:
        super().__init__()
        c = int(channels)
        self.center = nn.Conv2d(c, c, 1, bias=False)
        self.mean_sq = nn.Conv2d(c, 1, 1, bias=True)
        self.spread = nn.Conv2d(1, c, 1, bias=False)
        with torch.no_grad():
            self.center.weight.copy_((torch.eye(c) - 1.0 / c)[:, :, None, None])
            self.mean_sq.weight.fill_(1.0 / c)
            self.mean_sq.bias.fill_(float(eps))  # the eps rides in the bias: one op fewer
            self.spread.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xc = self.center(x)
        return xc * self.spread(torch.rsqrt(self.mean_sq(xc * xc)))


def _rows(conv: nn.Conv2d, rows: slice) -> nn.Conv2d:
    """A convolution computing only output channels ``rows`` of ``conv`` (depthwise stays depthwise)."""
    out = rows.stop - rows.start
    depthwise = conv.groups == conv.in_channels and conv.groups > 1
    new = nn.Conv2d(out if depthwise else conv.in_channels, out, conv.kernel_size, stride=conv.stride,
                    padding=conv.padding, groups=out if depthwise else 1, bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(conv.weight[rows])
        if conv.bias is not None:
            new.bias.copy_(conv.bias[rows])
    return new


def _fold_norm_into_conv(norm: LayerNorm2d, conv: nn.Conv2d) -> None:
    """conv(w * n + b) == conv'(n) with W' = W diag(w), bias' = bias + W b (1x1 conv, in place)."""
    with torch.no_grad():
        w = conv.weight[:, :, 0, 0]
        conv.bias.add_(w @ norm.bias)
        conv.weight.mul_(norm.weight.view(1, -1, 1, 1))


def _fold_scale_into_conv(conv: nn.Conv2d, scale: torch.Tensor) -> None:
    """conv(x) * s == conv'(x) for a per-output-channel scale ``s`` of shape (1, C, 1, 1) (in place)."""
    with torch.no_grad():
        s = scale.reshape(-1)
        conv.weight.mul_(s.view(-1, 1, 1, 1))
        conv.bias.mul_(s)


class FusedNAFBlock(nn.Module):
    """A :class:`NAFBlock` with folded affine parameters and split gates (same function)."""

    def __init__(self, block: NAFBlock, *, pointwise_norm_max_channels: int = POINTWISE_NORM_MAX_CHANNELS) -> None:
        super().__init__()
        block = copy.deepcopy(block)
        c = block.conv1.in_channels
        pointwise = c <= pointwise_norm_max_channels
        _fold_norm_into_conv(block.norm1, block.conv1)
        _fold_norm_into_conv(block.norm2, block.conv4)
        _fold_scale_into_conv(block.conv3, block.beta)
        _fold_scale_into_conv(block.conv5, block.gamma)
        norm = ChannelNormPointwise if pointwise else ChannelNormNHWC
        self.norm1 = norm(c, block.norm1.eps)
        self.norm2 = norm(c, block.norm2.eps)
        half = block.conv1.out_channels // 2
        first, second = slice(0, half), slice(half, 2 * half)
        self.conv1_a, self.conv1_b = _rows(block.conv1, first), _rows(block.conv1, second)
        self.conv2_a, self.conv2_b = _rows(block.conv2, first), _rows(block.conv2, second)
        self.sca = block.sca
        if isinstance(self.sca[0], LocalAvgPool2d):  # TLC
            self.sca[0] = BoxMean2d(block.conv3.in_channels, self.sca[0].kernel_size)
        self.conv3 = block.conv3
        half = block.conv4.out_channels // 2
        self.conv4_a = _rows(block.conv4, slice(0, half))
        self.conv4_b = _rows(block.conv4, slice(half, 2 * half))
        self.conv5 = block.conv5

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.norm1(inp)
        x = self.conv2_a(self.conv1_a(x)) * self.conv2_b(self.conv1_b(x))
        y = inp + self.conv3(x * self.sca(x))
        z = self.norm2(y)
        return y + self.conv5(self.conv4_a(z) * self.conv4_b(z))


def _box_factors(k: int) -> list[int]:
    """Factors of ``k`` (each <= 8 where possible) whose product is ``k``, largest first."""
    primes, n, f = [], k, 2
    while f * f <= n:
        while n % f == 0:
            primes.append(f)
            n //= f
        f += 1
    if n > 1:
        primes.append(n)
    factors: list[int] = []
    for p in sorted(primes, reverse=True):
        for i, q in enumerate(factors):
            if q * p <= 8:
                factors[i] = q * p
                break
        else:
            factors.append(p)
    return sorted(factors, reverse=True)


class BoxMean2d(nn.Module):
    """Mean over every ``k x k`` window, edge-replicated back to the input size (TLC's local pooling).

    Equal to :class:`deblurkit.models.nafnet.LocalAvgPool2d` when both sides are at least ``k``.
    A box of ``k = f1 * f2 * ...`` taps is a chain of depthwise convolutions with ``f1, f2, ...``
    unit taps at dilations ``1, f1, f1 * f2, ...`` (valid positions only), per axis.
    """

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = int(kernel_size)
        convs = []
        for axis in (3, 2):  # width, then height
            dilation = 1
            for f in _box_factors(self.kernel_size):
                shape, dil = ((1, f), (1, dilation)) if axis == 3 else ((f, 1), (dilation, 1))
                conv = nn.Conv2d(channels, channels, shape, dilation=dil, groups=channels, bias=False)
                nn.init.constant_(conv.weight, 1.0 / f)
                convs.append(conv)
                dilation *= f
        self.convs = nn.Sequential(*convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        return F.pad(self.convs(x), ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2), mode="replicate")


class SplitPointwise(nn.Module):
    """``relu?(conv1x1(cat(parts)))`` as ``relu?(sum_i conv1x1_i(part_i))``; part ``i`` has ``splits[i]`` channels.

    Calling with ``upsample=(1, 2, 4)`` applies each part's 1x1 convolution and then nearest-neighbour
    upsampling by that factor, which equals convolving the upsampled part.
    """

    def __init__(self, conv: BasicConv, splits: tuple[int, ...]) -> None:
        super().__init__()
        layer = conv.main[0]
        if not isinstance(layer, nn.Conv2d) or layer.kernel_size != (1, 1) or sum(splits) != layer.in_channels:
            raise ValueError("SplitPointwise needs a 1x1 Conv2d over the concatenated channels")
        self.relu = len(conv.main) > 1
        self.parts = nn.ModuleList()
        start = 0
        for i, n in enumerate(splits):
            part = nn.Conv2d(n, layer.out_channels, 1, bias=i == 0 and layer.bias is not None)
            with torch.no_grad():
                part.weight.copy_(layer.weight[:, start:start + n])
                if part.bias is not None:
                    part.bias.copy_(layer.bias)
            self.parts.append(part)
            start += n

    def forward(self, *xs: torch.Tensor, upsample: tuple[int, ...] | None = None) -> torch.Tensor:
        total = None
        for i, (part, x) in enumerate(zip(self.parts, xs)):
            y = part(x)
            if upsample is not None and upsample[i] > 1:
                y = F.interpolate(y, scale_factor=float(upsample[i]))
            total = y if total is None else total + y
        return F.relu(total) if self.relu else total


class FusedMIMOUNet(nn.Module):
    """A :class:`MIMOUNet` (or MIMO-UNet+, in eval mode) without concatenations (same function)."""

    def __init__(self, model: MIMOUNet) -> None:
        super().__init__()
        self.net = copy.deepcopy(model)
        self.size_multiple = model.size_multiple
        self.hparams = dict(model.hparams)
        c = model.hparams["base_channel"]
        # AFF1 at full resolution: (res1, up2(res2), up4(z)); AFF2 at half: (down2(res1), res2, up2(z))
        self.aff1 = SplitPointwise(model.AFFs[0].conv[0], (c, 2 * c, 4 * c))
        self.aff2 = SplitPointwise(model.AFFs[1].conv[0], (c, 2 * c, 4 * c))
        self.convs1 = SplitPointwise(model.Convs[0], (2 * c, 2 * c))
        self.convs2 = SplitPointwise(model.Convs[1], (c, c))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        n = self.net
        x_2, x_4, res1, res2, z = n.encode(x)
        aff2 = n.AFFs[1].conv[1](self.aff2(F.interpolate(res1, scale_factor=0.5), res2, z, upsample=(1, 1, 2)))
        aff1 = n.AFFs[0].conv[1](self.aff1(res1, res2, z, upsample=(1, 2, 4)))
        outputs: list[torch.Tensor] = []
        z = n.Decoder[0](z)
        outputs.append(n.ConvsOut[0](z) + x_4)
        z = n.Decoder[1](self.convs1(n.feat_extract[3](z), aff2))
        outputs.append(n.ConvsOut[1](z) + x_2)
        z = n.Decoder[2](self.convs2(n.feat_extract[4](z), aff1))
        outputs.append(n.feat_extract[5](z) + x)
        return outputs


def fuse_for_inference(model: nn.Module, *,
                       pointwise_norm_max_channels: int = POINTWISE_NORM_MAX_CHANNELS) -> nn.Module:
    """An inference copy of ``model`` with the rewrites above; ``model`` itself is not modified.

    Args:
        model: any network of :mod:`deblurkit.models`.
        pointwise_norm_max_channels: NAFNet blocks with at most this many channels get
            :class:`ChannelNormPointwise`, wider ones :class:`ChannelNormNHWC` (0: none pointwise;
            ``benchmarks/onnx_rewrites.py`` compares the choices).

    Returns:
        A new module with the same inputs, outputs and attributes (``size_multiple``, ``hparams``),
        equal outputs up to float32 rounding. Networks without a rewrite come back as a deep copy.
    """
    if isinstance(model, MIMOUNet):
        if model.training and model.dropout_rate:
            raise ValueError("fuse_for_inference: put MIMO-UNet+ in eval mode first (its dropout is dropped)")
        return FusedMIMOUNet(model)
    fused = copy.deepcopy(model)

    def replace(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, NAFBlock):
                setattr(parent, name, FusedNAFBlock(child, pointwise_norm_max_channels=pointwise_norm_max_channels))
            else:
                replace(child)

    replace(fused)
    return fused
