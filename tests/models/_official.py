"""Official-format state dicts built from the published specification (anchors §1.3, §10), with
random weights. Written independently of deblurkit.models so strict loading is a real check."""

from __future__ import annotations

import torch


def _conv(sd, prefix, out_c, in_c, k, g):
    sd[f"{prefix}.weight"] = torch.randn(out_c, in_c, k, k, generator=g) * 0.05
    sd[f"{prefix}.bias"] = torch.randn(out_c, generator=g) * 0.01


def mimo_official_state_dict(num_res: int, seed: int = 0, c: int = 32) -> dict[str, torch.Tensor]:
    """Keys in the official registration order: Encoder, feat_extract, Decoder, Convs, ConvsOut, AFFs,
    FAM1, SCM1, FAM2, SCM2; every conv is ``<...>.main.0``."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for i, ch in enumerate((c, 2 * c, 4 * c)):
        for r in range(num_res):
            for j in (0, 1):
                _conv(sd, f"Encoder.{i}.layers.{r}.main.{j}.main.0", ch, ch, 3, g)
    fe = [(c, 3, 3), (2 * c, c, 3), (4 * c, 2 * c, 3), None, None, (3, c, 3)]
    for i, spec in enumerate(fe):
        if spec is None:  # ConvTranspose2d stores (in, out, k, k)
            cin, cout = (4 * c, 2 * c) if i == 3 else (2 * c, c)
            sd[f"feat_extract.{i}.main.0.weight"] = torch.randn(cin, cout, 4, 4, generator=g) * 0.05
            sd[f"feat_extract.{i}.main.0.bias"] = torch.randn(cout, generator=g) * 0.01
        else:
            _conv(sd, f"feat_extract.{i}.main.0", *spec, g)
    for i, ch in enumerate((4 * c, 2 * c, c)):
        for r in range(num_res):
            for j in (0, 1):
                _conv(sd, f"Decoder.{i}.layers.{r}.main.{j}.main.0", ch, ch, 3, g)
    _conv(sd, "Convs.0.main.0", 2 * c, 4 * c, 1, g)
    _conv(sd, "Convs.1.main.0", c, 2 * c, 1, g)
    _conv(sd, "ConvsOut.0.main.0", 3, 4 * c, 3, g)
    _conv(sd, "ConvsOut.1.main.0", 3, 2 * c, 3, g)
    for i, out in enumerate((c, 2 * c)):
        _conv(sd, f"AFFs.{i}.conv.0.main.0", out, 7 * c, 1, g)
        _conv(sd, f"AFFs.{i}.conv.1.main.0", out, out, 3, g)
    for fam, scm, o in (("FAM1", "SCM1", 4 * c), ("FAM2", "SCM2", 2 * c)):
        _conv(sd, f"{fam}.merge.main.0", o, o, 3, g)
        _conv(sd, f"{scm}.main.0.main.0", o // 4, 3, 3, g)
        _conv(sd, f"{scm}.main.1.main.0", o // 2, o // 4, 1, g)
        _conv(sd, f"{scm}.main.2.main.0", o // 2, o // 2, 3, g)
        _conv(sd, f"{scm}.main.3.main.0", o - 3, o // 2, 1, g)
        _conv(sd, f"{scm}.conv.main.0", o, o, 1, g)
    return sd


def nafnet_official_state_dict(width: int, enc=(1, 1, 1, 28), middle=1, dec=(1, 1, 1, 1), seed: int = 0):
    """NAFNet keys: intro, ending, encoders.i.j.*, downs.i, middle_blks.j.*, ups.i.0, decoders.i.j.*."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def block(prefix, ch):
        sd[f"{prefix}.beta"] = torch.randn(1, ch, 1, 1, generator=g) * 0.1
        sd[f"{prefix}.gamma"] = torch.randn(1, ch, 1, 1, generator=g) * 0.1
        _conv(sd, f"{prefix}.conv1", 2 * ch, ch, 1, g)
        sd[f"{prefix}.conv2.weight"] = torch.randn(2 * ch, 1, 3, 3, generator=g) * 0.1
        sd[f"{prefix}.conv2.bias"] = torch.randn(2 * ch, generator=g) * 0.01
        _conv(sd, f"{prefix}.conv3", ch, ch, 1, g)
        _conv(sd, f"{prefix}.sca.1", ch, ch, 1, g)
        _conv(sd, f"{prefix}.conv4", 2 * ch, ch, 1, g)
        _conv(sd, f"{prefix}.conv5", ch, ch, 1, g)
        for n in ("norm1", "norm2"):
            sd[f"{prefix}.{n}.weight"] = 1 + torch.randn(ch, generator=g) * 0.1
            sd[f"{prefix}.{n}.bias"] = torch.randn(ch, generator=g) * 0.1

    _conv(sd, "intro", width, 3, 3, g)
    _conv(sd, "ending", 3, width, 3, g)
    ch = width
    for i, n in enumerate(enc):
        for j in range(n):
            block(f"encoders.{i}.{j}", ch)
        _conv(sd, f"downs.{i}", 2 * ch, ch, 2, g)
        ch *= 2
    for j in range(middle):
        block(f"middle_blks.{j}", ch)
    for i, n in enumerate(dec):
        sd[f"ups.{i}.0.weight"] = torch.randn(2 * ch, ch, 1, 1, generator=g) * 0.05
        ch //= 2
        for j in range(n):
            block(f"decoders.{i}.{j}", ch)
    return sd
