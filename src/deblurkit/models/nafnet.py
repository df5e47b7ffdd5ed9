"""NAFNet (Chen, Chu, Zhang, Sun, "Simple Baselines for Image Restoration", ECCV 2022).

Written from the paper and the official module layout (github megvii-research/NAFNet,
``basicsr/models/archs/NAFNet_arch.py``): module names ``intro``, ``encoders``, ``downs``,
``middle_blks``, ``ups``, ``decoders``, ``ending`` and the NAFBlock parameter names are the same,
so BasicSR checkpoints (``params`` / ``params_ema``) load with ``strict=True``.

TLC (test-time local statistics converter) is not part of the model: :func:`convert_to_tlc`
replaces the global average pooling of each block's channel attention by a local average, as an
optional inference step.

Shape:
    input ``(B, img_channel, H, W)`` float32 in [0, 1], any H, W (zero-padded inside to a multiple
    of ``2 ** len(enc_blk_nums)`` like the official code; the runtime pads by reflection first);
    output the same shape (residual: the input is added).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):
    """Layer norm over the channels of an NCHW tensor (eps 1e-6), with ``weight``/``bias`` of shape (C,)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return x1 * x2


class LocalAvgPool2d(nn.Module):
    """Mean over a ``kernel x kernel`` window around each pixel (TLC), edge-replicated to keep the size.

    Equivalent to the official ``AvgPool2d(fast_imp=False)`` of NAFNet's ``local_arch.py``: an
    integral image gives every valid window mean, then the result is replicate-padded back to
    ``(H, W)``. Where the feature map is smaller than the window this is the global mean.
    """

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = int(kernel_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        k1, k2 = min(h, self.kernel_size), min(w, self.kernel_size)
        if k1 >= h and k2 >= w:
            return x.mean(dim=(-2, -1), keepdim=True).expand_as(x)
        s = F.pad(x.cumsum(dim=-1).cumsum(dim=-2), (1, 0, 1, 0))
        out = s[..., k1:, k2:] + s[..., :-k1, :-k2] - s[..., :-k1, k2:] - s[..., k1:, :-k2]
        out = out / (k1 * k2)
        _h, _w = out.shape[-2:]
        pad = ((w - _w) // 2, (w - _w + 1) // 2, (h - _h) // 2, (h - _h + 1) // 2)
        return F.pad(out, pad, mode="replicate")


class NAFBlock(nn.Module):
    """Nonlinear-activation-free block: norm -> 1x1 -> depthwise 3x3 -> gate -> channel attention -> 1x1,
    then norm -> 1x1 -> gate -> 1x1; both branches scaled by learned ``beta``/``gamma`` (zero-initialised)."""

    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2) -> None:
        super().__init__()
        dw = c * dw_expand
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.sg = SimpleGate()
        ffn = c * ffn_expand
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.beta = nn.Parameter(torch.zeros((1, c, 1, 1)))
        self.gamma = nn.Parameter(torch.zeros((1, c, 1, 1)))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        x = self.conv3(x * self.sca(x))
        y = inp + x * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return y + x * self.gamma


class NAFNet(nn.Module):
    """NAFNet U-Net of NAFBlocks.

    Args:
        img_channel: image channels (3).
        width: channels at full resolution (32 / 64 for the GoPro models).
        middle_blk_num: blocks at the lowest resolution.
        enc_blk_nums: blocks per encoder level (one level per entry, each halves the resolution).
        dec_blk_nums: blocks per decoder level (same length as ``enc_blk_nums``).
        dw_expand: channel expansion of the depthwise branch (2 official).
        ffn_expand: channel expansion of the feed-forward branch (2 official).
    """

    def __init__(
        self,
        img_channel: int = 3,
        width: int = 16,
        middle_blk_num: int = 1,
        enc_blk_nums: Sequence[int] = (1, 1, 1, 28),
        dec_blk_nums: Sequence[int] = (1, 1, 1, 1),
        dw_expand: int = 2,
        ffn_expand: int = 2,
    ) -> None:
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ValueError(f"enc_blk_nums and dec_blk_nums need the same length, got {enc_blk_nums}, {dec_blk_nums}")
        self.hparams = {
            "img_channel": int(img_channel), "width": int(width), "middle_blk_num": int(middle_blk_num),
            "enc_blk_nums": [int(n) for n in enc_blk_nums], "dec_blk_nums": [int(n) for n in dec_blk_nums],
            "dw_expand": int(dw_expand), "ffn_expand": int(ffn_expand),
        }
        blk = {"dw_expand": dw_expand, "ffn_expand": ffn_expand}
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        # registration order as in the official code (state-dict key order)
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.middle_blks = nn.Sequential()
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()
        chan = width
        for num in enc_blk_nums:
            self.encoders.append(nn.Sequential(*[NAFBlock(chan, **blk) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            chan *= 2
        self.middle_blks = nn.Sequential(*[NAFBlock(chan, **blk) for _ in range(middle_blk_num)])
        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(chan, **blk) for _ in range(num)]))
        self.size_multiple = 2 ** len(enc_blk_nums)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """Deblur ``inp`` ``(B, C, H, W)``; returns the same shape."""
        h, w = inp.shape[-2:]
        m = self.size_multiple
        aligned = h % m == 0 and w % m == 0  # then no pad/crop ops (keeps exported graphs size-agnostic)
        if not aligned:
            inp = F.pad(inp, (0, (m - w % m) % m, 0, (m - h % m) % m))
        x = self.ending(self.features(inp)) + inp
        return x if aligned else x[:, :, :h, :w]

    def features(self, inp: torch.Tensor) -> torch.Tensor:
        """The U-Net from ``intro`` to the last decoder: ``(B, C_in, H, W)`` -> ``(B, width, H, W)``;
        H and W multiples of :attr:`size_multiple`."""
        x = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, skips[::-1]):
            x = decoder(up(x) + skip)
        return x


def convert_to_tlc(model: NAFNet, *, train_size: int = 256, window_scale: float = 1.5) -> NAFNet:
    """Replace every block's global average pooling by a local window mean (TLC), in place.

    The window is ``window_scale * train_size`` input pixels (384 for the official 256-px crops),
    scaled to each level's resolution, like the official ``NAFNetLocal``. The state dict is
    unchanged; outputs differ only on inputs larger than the window.

    Args:
        model: a :class:`NAFNet`.
        train_size: the training crop size in pixels.
        window_scale: window size as a multiple of ``train_size``.

    Returns:
        The same model object (converted).
    """
    base = int(train_size * window_scale)
    levels = len(model.encoders)
    groups: list[tuple[nn.Module, int]] = [(enc, i) for i, enc in enumerate(model.encoders)]
    groups.append((model.middle_blks, levels))
    groups += [(dec, levels - 1 - i) for i, dec in enumerate(model.decoders)]
    for seq, level in groups:
        for block in seq:
            block.sca[0] = LocalAvgPool2d(max(1, base >> level))
    model.tlc = {"train_size": train_size, "window_scale": window_scale}
    return model


def widen_nafnet(model: NAFNet, factor: int = 2, *, generator: torch.Generator | None = None) -> NAFNet:
    """A NAFNet ``factor`` times wider that computes the same function (Net2WiderNet-style).

    Every feature channel is repeated ``factor`` times (channel ``n`` of the wide network copies
    channel ``n mod C``; the inputs of each :class:`SimpleGate` are repeated within their halves),
    so layer norms, gates and channel attention see the same statistics. Where a layer reads
    repeated channels, each original weight is split among the copies in random proportions that
    sum to one: the output is unchanged (up to rounding) while the copies' outgoing weights differ,
    so training pulls them apart and the extra width is used: a starting point for training a wider
    network from a trained narrow one instead of from scratch.

    Args:
        model: a trained :class:`NAFNet` (not modified).
        factor: width multiplier (integer >= 1).
        generator: random generator for the split proportions (``None``: torch's default).

    Returns:
        A new :class:`NAFNet` with ``width * factor`` channels, on the CPU in float32, eval mode.
    """
    if int(factor) != factor or factor < 1:
        raise ValueError(f"factor must be an integer >= 1, got {factor}")
    factor = int(factor)
    hp = dict(model.hparams)
    wide = NAFNet(**{**hp, "width": hp["width"] * factor}).eval()
    src = {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()}

    def tiled(c: int) -> torch.Tensor:
        return torch.arange(c * factor) % c

    def gated(c2: int) -> torch.Tensor:
        half = c2 // 2  # each half repeated in place, so the gate multiplies the right copies
        n = torch.arange(c2 * factor)
        return (n // (half * factor)) * half + (n % (half * factor)) % half

    def split(out_ch: int, in_ch: int) -> torch.Tensor:
        """Proportions ``(out_ch, in_ch * factor)`` summing to 1 over each input channel's copies."""
        p = torch.rand((out_ch, factor, in_ch), generator=generator) + 0.5
        p = p / p.sum(dim=1, keepdim=True)
        return p.reshape(out_ch, factor * in_ch)

    def conv(name: str, out_map: torch.Tensor | None, widen_input: bool) -> dict:
        w = src[f"{name}.weight"]
        w = w if out_map is None else w[out_map]
        if widen_input:
            w = w[:, tiled(w.shape[1])] * split(w.shape[0], w.shape[1])[:, :, None, None]
        out = {f"{name}.weight": w}
        if f"{name}.bias" in src:
            b = src[f"{name}.bias"]
            out[f"{name}.bias"] = b if out_map is None else b[out_map]
        return out

    new: dict[str, torch.Tensor] = {}
    new |= conv("intro", tiled(hp["width"]), False)
    new |= conv("ending", None, True)
    blocks = [f"encoders.{i}.{j}" for i, n in enumerate(hp["enc_blk_nums"]) for j in range(n)]
    blocks += [f"middle_blks.{j}" for j in range(hp["middle_blk_num"])]
    blocks += [f"decoders.{i}.{j}" for i, n in enumerate(hp["dec_blk_nums"]) for j in range(n)]
    for b in blocks:
        c = src[f"{b}.beta"].shape[1]
        dw, ffn = src[f"{b}.conv1.weight"].shape[0], src[f"{b}.conv4.weight"].shape[0]
        new |= conv(f"{b}.conv1", gated(dw), True)
        new |= conv(f"{b}.conv2", gated(dw), False)  # depthwise: one input channel per output
        new |= conv(f"{b}.sca.1", tiled(dw // 2), True)
        new |= conv(f"{b}.conv3", tiled(c), True)
        new |= conv(f"{b}.conv4", gated(ffn), True)
        new |= conv(f"{b}.conv5", tiled(c), True)
        for p in ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"):
            new[f"{b}.{p}"] = src[f"{b}.{p}"][tiled(c)]
        for p in ("beta", "gamma"):
            new[f"{b}.{p}"] = src[f"{b}.{p}"][:, tiled(c)]
    for i in range(len(hp["enc_blk_nums"])):
        out_ch = src[f"downs.{i}.weight"].shape[0]
        new |= conv(f"downs.{i}", tiled(out_ch), True)
        out_ch = src[f"ups.{i}.0.weight"].shape[0]
        # PixelShuffle reads input channels 4o..4o+3 for output o: repeating the 4C inputs
        # whole (index mod 4C) is what repeats the C outputs.
        new |= conv(f"ups.{i}.0", tiled(out_ch), True)
    wide.load_state_dict(new, strict=True)
    return wide
