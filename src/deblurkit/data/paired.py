"""Readers for real paired datasets: GoPro-style folders and RealBlur datalists.

Items are ``{"blur": (3, H, W), "sharp": (3, H, W), "name": str}`` float32 sRGB in [0, 1].
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from deblurkit.errors import DeblurkitError
from deblurkit.io import iter_image_files, load_image_rgb


def _to_tensor(img: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def _load_pair(blur_path: Path, sharp_path: Path, name: str) -> dict[str, Tensor | str]:
    blur, sharp = load_image_rgb(blur_path), load_image_rgb(sharp_path)
    if blur.shape != sharp.shape:
        raise DeblurkitError(
            f"size mismatch: {blur_path} is {blur.shape[:2]}, {sharp_path} is {sharp.shape[:2]}"
        )
    return {"blur": _to_tensor(blur), "sharp": _to_tensor(sharp), "name": name}


class PairedFolderDataset(torch.utils.data.Dataset):
    """Pairs from a GoPro-style layout: ``root/[split/]blur/...`` with ``sharp/...`` partners.

    Also accepts GoPro_Large's ``root/split/<sequence>/{blur,sharp}/`` (any depth): every
    folder named ``blur`` below ``root/split`` is paired with its sibling ``sharp`` folder,
    file by file (same relative path).

    Args:
        root: dataset root.
        split: sub-folder such as ``"train"`` / ``"test"``, or None to use ``root`` itself.

    Raises:
        DeblurkitError: no ``blur`` folder, a missing ``sharp`` partner, or a folder without images.
    """

    def __init__(self, root: str | os.PathLike[str], split: str | None = None) -> None:
        self.root = Path(root)
        base = self.root / split if split else self.root
        if not base.is_dir():
            raise DeblurkitError(f"{base}: not a folder")
        blur_dirs = sorted(d for d in [base, *base.rglob("*")] if d.is_dir() and d.name == "blur")
        if not blur_dirs:
            raise DeblurkitError(
                f"{base}: no 'blur' folder found (expected {{split}}/blur and {{split}}/sharp)"
            )
        self.pairs: list[tuple[Path, Path, str]] = []
        for bdir in blur_dirs:
            sdir = bdir.parent / "sharp"
            if not sdir.is_dir():
                raise DeblurkitError(f"{bdir}: no sibling 'sharp' folder")
            for bf in iter_image_files(bdir):
                rel = bf.relative_to(bdir)
                sf = sdir / rel
                if not sf.is_file():
                    raise DeblurkitError(f"{bf}: missing sharp partner {sf}")
                name = (bdir.parent.relative_to(base) / rel).as_posix()
                self.pairs.append((bf, sf, name))
            extra = {p.relative_to(sdir) for p in iter_image_files(sdir)} - {
                p.relative_to(bdir) for p in iter_image_files(bdir)
            }
            if extra:
                raise DeblurkitError(
                    f"{sdir}: {len(extra)} sharp images without a blur partner, e.g. {min(extra)}"
                )
        if not self.pairs:
            raise DeblurkitError(f"{base}: no image pairs found")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        bf, sf, name = self.pairs[index]
        return _load_pair(bf, sf, name)


class RealBlurListDataset(torch.utils.data.Dataset):
    """Pairs listed in a RealBlur datalist: lines ``gt_path blur_path`` relative to ``root``.

    Raises:
        DeblurkitError: the list is missing or malformed, or a listed file does not exist.
    """

    def __init__(self, root: str | os.PathLike[str], datalist_path: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        lst = Path(datalist_path)
        if not lst.is_file():
            raise DeblurkitError(f"{lst}: no such datalist")
        self.pairs: list[tuple[Path, Path, str]] = []
        for n, line in enumerate(lst.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise DeblurkitError(f"{lst}:{n}: expected 'gt_path blur_path', got {line.strip()!r}")
            gt, bl = self.root / parts[0], self.root / parts[1]
            for f in (gt, bl):
                if not f.is_file():
                    raise DeblurkitError(f"{lst}:{n}: missing file {f}")
            self.pairs.append((bl, gt, parts[1]))
        if not self.pairs:
            raise DeblurkitError(f"{lst}: empty datalist")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        bf, sf, name = self.pairs[index]
        return _load_pair(bf, sf, name)
