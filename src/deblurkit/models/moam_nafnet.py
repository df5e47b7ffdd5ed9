"""NAFNet whose blocks are modulated by a Mixture of Adaptive Modulators (MoAM, DreamClear).

MoAM (Ai et al., "DreamClear", NeurIPS 2024, arXiv 2410.18666, Sec. 3.2) restores many
degradations with one network by modulating its features with the degradation it sees:

1. A token-wise **degradation map** ``D``: the degraded image and a *reference* restoration of it
   are patch-embedded (stride ``patch``); the degraded tokens attend to the reference tokens
   (cross-attention, here inside non-overlapping windows of ``window x window`` tokens, so the
   cost is linear in the image size), followed by an MLP. Where the two images agree, ``D`` carries
   little; where the reference removed something (blur, noise, blocks), ``D`` says what.
2. After every NAFBlock, a **router** (2-layer MLP + softmax, per token) mixes ``K`` **expert
   modulators**; each expert maps ``D`` to a per-channel scale and shift ``(gamma_k, beta_k)``, and
   the block output becomes ``x <- (1 + gamma) * x + beta`` with ``gamma = sum_k w_k gamma_k``,
   ``beta = sum_k w_k beta_k``. The experts' last layers start at zero, so an untrained model is
   the plain backbone.

The modulation parameters are computed at the map's resolution (1/``patch``) and bilinearly
resized to each level's resolution (or the map is average-pooled first, for the coarse levels).

``modulation`` selects the ablation variants of DreamClear's Table 3 at (nearly) equal parameters
(the registry's ``moam-nafnet-w16*`` entries are matched within 10 %): ``"moam"`` (router +
``experts`` modulators), ``"single"`` (one modulator, no router), ``"none"`` (no degradation map
and no modulators: the backbone alone, made up to size with extra blocks).

Shape:
    ``forward(inp, reference=None)``: ``inp`` and ``reference`` ``(B, img_channel, H, W)`` float32
    in [0, 1], any H, W (zero-padded inside to a multiple of :attr:`size_multiple`); output the shape
    of ``inp`` (residual: the input is added). Without ``reference`` (e.g. in the single-input
    runtime) the input is its own reference, and the map sees no restoration to compare with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from deblurkit.models.nafnet import LayerNorm2d, NAFBlock

Modulation = Literal["moam", "single", "none"]


class DegradationMap(nn.Module):
    """Token-wise degradation map from windowed cross-attention of degraded tokens on reference tokens.

    Args:
        img_channel: image channels.
        dim: token (map) channels.
        patch: patch-embedding stride (the map has 1/patch the image's resolution).
        window: attention window side, in tokens.
        heads: attention heads (``dim`` must divide by it).
    """

    def __init__(self, img_channel: int, dim: int, patch: int = 4, window: int = 8, heads: int = 2) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"map_dim {dim} must be a multiple of heads {heads}")
        self.patch, self.window, self.heads = patch, window, heads
        self.embed_lq = nn.Conv2d(img_channel, dim, patch, patch)
        self.embed_ref = nn.Conv2d(img_channel, dim, patch, patch)
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def _windows(self, t: torch.Tensor) -> torch.Tensor:
        b, c, h, w = t.shape
        s = self.window
        t = t.view(b, c, h // s, s, w // s, s).permute(0, 2, 4, 3, 5, 1)
        return t.reshape(b * (h // s) * (w // s), s * s, c)

    def forward(self, inp: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """``(B, dim, H / patch, W / patch)`` map; H and W must be multiples of ``patch * window``."""
        lq, ref = self.embed_lq(inp), self.embed_ref(reference)
        b, c, h, w = lq.shape
        q_tok, kv_tok = self._windows(lq), self._windows(ref)
        n, t, _ = q_tok.shape
        q = self.q(self.norm_q(q_tok)).view(n, t, self.heads, c // self.heads).transpose(1, 2)
        k, v = self.kv(self.norm_kv(kv_tok)).view(n, t, 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, c)
        x = q_tok + self.proj(att)
        x = x + self.mlp(self.norm_mlp(x))
        s = self.window
        x = x.view(b, h // s, w // s, s, s, c).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(b, c, h, w)


class MixtureOfModulators(nn.Module):
    """Router (2-layer MLP + softmax over experts, per token) mixing expert ``(gamma, beta)`` modulators.

    With ``experts == 1`` there is no router (a single adaptive modulator).

    Args:
        map_dim: degradation-map channels.
        channels: channels of the modulated features.
        experts: number of expert modulators K.
        hidden: hidden channels of each expert's 2-layer MLP.
        router_hidden: hidden channels of the router's MLP.
        expert_init_std: standard deviation of the experts' last layers at initialisation; 0 starts
            every expert at exactly zero (the identity), which also leaves the router without a
            gradient until the experts have grown apart.
    """

    def __init__(self, map_dim: int, channels: int, experts: int = 3, hidden: int = 32, router_hidden: int = 32,
                 expert_init_std: float = 0.0) -> None:
        super().__init__()
        self.router = None
        if experts > 1:
            self.router = nn.Sequential(
                nn.Conv2d(map_dim, router_hidden, 1), nn.GELU(), nn.Conv2d(router_hidden, experts, 1)
            )
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Conv2d(map_dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, 2 * channels, 1))
            for _ in range(experts)
        )
        for e in self.experts:  # start as (or, with a std, close to) the identity modulation
            if expert_init_std > 0:
                nn.init.normal_(e[-1].weight, std=expert_init_std)
            else:
                nn.init.zeros_(e[-1].weight)
            nn.init.zeros_(e[-1].bias)

    def forward(self, x: torch.Tensor, dmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Modulate ``x`` ``(B, C, h, w)`` by ``dmap`` ``(B, map_dim, h', w')``.

        Returns:
            ``((1 + gamma) * x + beta, weights)`` with ``weights`` ``(B, K, h', w')`` summing to 1 over K.
        """
        outs = torch.stack([e(dmap) for e in self.experts], dim=1)  # (B, K, 2C, h', w')
        if self.router is None:
            weights = torch.ones_like(outs[:, :, 0])
        else:
            weights = torch.softmax(self.router(dmap), dim=1)
        gb = (weights.unsqueeze(2) * outs).sum(dim=1)
        if gb.shape[-2:] != x.shape[-2:]:
            gb = F.interpolate(gb, size=x.shape[-2:], mode="bilinear", align_corners=False)
        gamma, beta = gb.chunk(2, dim=1)
        return (1 + gamma) * x + beta, weights


class MoAMNAFNet(nn.Module):
    """NAFNet U-Net whose every block output is modulated by MoAM (see the module docstring).

    Args:
        img_channel: image channels (3).
        width: channels at full resolution.
        middle_blk_num: blocks at the lowest resolution.
        enc_blk_nums: blocks per encoder level.
        dec_blk_nums: blocks per decoder level (same length as ``enc_blk_nums``).
        modulation: ``"moam"``, ``"single"`` or ``"none"`` (ablation variants).
        experts: expert modulators K for ``"moam"`` (3 in DreamClear).
        map_dim: degradation-map channels.
        expert_hidden: hidden channels of each expert.
        router_hidden: hidden channels of the router.
        patch: patch-embedding stride of the degradation map.
        window: cross-attention window side in tokens.
        heads: cross-attention heads.
        map_norm: layer-normalise the degradation map (per token, over its channels) before the
            routers and experts read it.
        expert_init_std: see :class:`MixtureOfModulators`.
    """

    def __init__(
        self,
        img_channel: int = 3,
        width: int = 16,
        middle_blk_num: int = 1,
        enc_blk_nums: Sequence[int] = (1, 1, 1, 4),
        dec_blk_nums: Sequence[int] = (1, 1, 1, 1),
        modulation: Modulation = "moam",
        experts: int = 3,
        map_dim: int = 32,
        expert_hidden: int = 16,
        router_hidden: int = 16,
        patch: int = 4,
        window: int = 8,
        heads: int = 2,
        map_norm: bool = False,
        expert_init_std: float = 0.0,
    ) -> None:
        super().__init__()
        if modulation not in ("moam", "single", "none"):
            raise ValueError(f"modulation must be 'moam', 'single' or 'none', got {modulation!r}")
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ValueError(f"enc_blk_nums and dec_blk_nums need the same length, got {enc_blk_nums}, {dec_blk_nums}")
        if modulation == "moam" and experts < 2:
            raise ValueError(f"'moam' needs at least 2 experts, got {experts}")
        self.hparams = {
            "img_channel": int(img_channel), "width": int(width), "middle_blk_num": int(middle_blk_num),
            "enc_blk_nums": [int(n) for n in enc_blk_nums], "dec_blk_nums": [int(n) for n in dec_blk_nums],
            "modulation": modulation, "experts": int(experts), "map_dim": int(map_dim),
            "expert_hidden": int(expert_hidden), "router_hidden": int(router_hidden), "patch": int(patch),
            "window": int(window), "heads": int(heads), "map_norm": bool(map_norm),
            "expert_init_std": float(expert_init_std),
        }
        self.modulation = modulation
        self.patch = patch
        k = experts if modulation == "moam" else 1

        def level(chan: int, num: int) -> tuple[nn.Sequential, nn.ModuleList]:
            blocks = nn.Sequential(*[NAFBlock(chan) for _ in range(num)])
            mods = nn.ModuleList(
                [] if modulation == "none"
                else [MixtureOfModulators(map_dim, chan, k, expert_hidden, router_hidden, expert_init_std)
                      for _ in range(num)]
            )
            return blocks, mods

        self.dmap = None if modulation == "none" else DegradationMap(img_channel, map_dim, patch, window, heads)
        self.map_norm = LayerNorm2d(map_dim) if map_norm and modulation != "none" else None
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        self.encoders, self.enc_mods = nn.ModuleList(), nn.ModuleList()
        self.decoders, self.dec_mods = nn.ModuleList(), nn.ModuleList()
        self.ups, self.downs = nn.ModuleList(), nn.ModuleList()
        chan = width
        for num in enc_blk_nums:
            blocks, mods = level(chan, num)
            self.encoders.append(blocks)
            self.enc_mods.append(mods)
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            chan *= 2
        self.middle_blks, self.middle_mods = level(chan, middle_blk_num)
        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            blocks, mods = level(chan, num)
            self.decoders.append(blocks)
            self.dec_mods.append(mods)
        m = 2 ** len(enc_blk_nums)
        self.size_multiple = m if modulation == "none" else m * patch * window // math.gcd(m, patch * window)

    def _run(self, x, blocks, mods, dmap, scale, routing):
        if not len(mods):
            return blocks(x)
        d = dmap
        if scale > self.patch:  # coarser than the map: pool the map to this level
            d = F.avg_pool2d(dmap, scale // self.patch)
        for block, mod in zip(blocks, mods, strict=True):
            x, w = mod(block(x), d)
            if routing is not None:
                routing.append(w.mean(dim=(2, 3)))
        return x

    def forward(
        self, inp: torch.Tensor, reference: torch.Tensor | None = None, *, return_routing: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Restore ``inp`` guided by ``reference`` (default: ``inp``).

        Returns:
            The restored ``(B, C, H, W)``; with ``return_routing``, also one ``(B, K)`` tensor per
            modulated block: the router's mean expert weights over the image's tokens.
        """
        if reference is None:
            reference = inp
        if reference.shape != inp.shape:
            raise ValueError(f"reference {tuple(reference.shape)} must have the input's shape {tuple(inp.shape)}")
        h, w = inp.shape[-2:]
        m = self.size_multiple
        aligned = h % m == 0 and w % m == 0
        if not aligned:
            pad = (0, (m - w % m) % m, 0, (m - h % m) % m)
            inp, reference = F.pad(inp, pad), F.pad(reference, pad)
        dmap = self.dmap(inp, reference) if self.dmap is not None else None
        if self.map_norm is not None:
            dmap = self.map_norm(dmap)
        routing: list[torch.Tensor] | None = [] if return_routing else None
        x = self.intro(inp)
        skips = []
        scale = 1
        for blocks, mods, down in zip(self.encoders, self.enc_mods, self.downs, strict=True):
            x = self._run(x, blocks, mods, dmap, scale, routing)
            skips.append(x)
            x = down(x)
            scale *= 2
        x = self._run(x, self.middle_blks, self.middle_mods, dmap, scale, routing)
        for blocks, mods, up, skip in zip(self.decoders, self.dec_mods, self.ups, skips[::-1], strict=True):
            scale //= 2
            x = self._run(up(x) + skip, blocks, mods, dmap, scale, routing)
        x = self.ending(x) + inp
        out = x if aligned else x[:, :, :h, :w]
        return (out, routing or []) if return_routing else out
