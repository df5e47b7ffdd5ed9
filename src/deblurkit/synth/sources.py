"""Sharp-image sources: a folder of photos, scikit-image's bundled photos, or dead leaves.

Every source has ``random_crop(size, rng) -> (crop, info)`` with ``crop`` a float32 sRGB
``(size, size, 3)`` array in [0, 1] and ``info`` a JSON-serialisable dict saying where the crop
came from. All randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from deblurkit.errors import DeblurkitError
from deblurkit.io import iter_image_files, load_image_rgb

log = logging.getLogger(__name__)


class SharpSource(Protocol):
    """Anything that yields random sharp crops."""

    def random_crop(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]: ...


def _crop(img: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    h, w = img.shape[:2]
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    return np.ascontiguousarray(img[top : top + size, left : left + size]), top, left


class _CachedImages:
    """A small LRU cache of decoded images (crops from the same photo are common)."""

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, key: str, load) -> np.ndarray:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        img = load()
        self._items[key] = img
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return img


class ImageFolderSource:
    """Random crops from every image below a folder (recursive; png/jpg/tiff/webp/bmp).

    Image headers are read once at construction; files that cannot be read are skipped with a
    warning and counted in :attr:`skipped`. A file that fails later (truncated data) is also
    skipped and counted, and another image is drawn.

    Args:
        root: the folder.

    Raises:
        DeblurkitError: ``root`` is not a folder or holds no readable image.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        from PIL import Image

        self.root = Path(root)
        files = iter_image_files(self.root)
        self.files: list[Path] = []
        self.sizes: list[tuple[int, int]] = []  # (H, W)
        self.skipped: list[str] = []
        for f in files:
            try:
                with Image.open(f) as im:
                    w, h = im.size
            except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped, not fatal
                self._skip(f, exc)
                continue
            self.files.append(f)
            self.sizes.append((h, w))
        if not self.files:
            extra = f" ({len(self.skipped)} unreadable files skipped)" if self.skipped else ""
            raise DeblurkitError(f"{self.root}: no readable images found{extra}")
        self._cache = _CachedImages()
        self._bad: set[int] = set()

    def _skip(self, path: Path, exc: BaseException) -> None:
        log.warning(
            "skipping unreadable image %s: %s",
            path,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        self.skipped.append(str(path))

    def __len__(self) -> int:
        return len(self.files)

    def random_crop(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        """A random ``size`` x ``size`` crop of a random image large enough for it."""
        # Draw from every large-enough file and redraw on failure, so the random stream (and
        # the result) does not depend on which broken files this process has already met.
        eligible = [i for i, (h, w) in enumerate(self.sizes) if min(h, w) >= size]
        if not eligible:
            biggest = max(min(hw) for hw in self.sizes)
            raise DeblurkitError(
                f"crop size {size} is larger than every image in {self.root} (largest short side: {biggest} px)"
            )
        while eligible:
            idx = eligible[int(rng.integers(len(eligible)))]
            path = self.files[idx]
            if idx in self._bad:
                eligible.remove(idx)
                continue
            try:
                img = self._cache.get(str(path), lambda p=path: load_image_rgb(p))
            except DeblurkitError as exc:
                self._bad.add(idx)
                self._skip(path, exc)
                eligible.remove(idx)
                continue
            if min(img.shape[:2]) < size:  # header and decoded size disagree; treat like a bad file
                self._bad.add(idx)
                eligible.remove(idx)
                continue
            crop, top, left = _crop(img, size, rng)
            rel = path.relative_to(self.root).as_posix()
            return crop, {"source": rel, "top": top, "left": left, "size": size}
        raise DeblurkitError(f"{self.root}: no readable image is at least {size} px on its short side")


#: scikit-image bundled photos (no download needed), name -> loader name in ``skimage.data``.
SAMPLE_IMAGES: tuple[str, ...] = (
    "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "stereo_motorcycle", "camera", "brick", "grass", "gravel", "clock", "coins", "moon",
)  # fmt: skip


#: The colour photos among :data:`SAMPLE_IMAGES` (used for figures).
COLOR_SAMPLE_IMAGES: tuple[str, ...] = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "stereo_motorcycle",
    "hubble_deep_field",
)


class SampleImageSource:
    """Random crops of scikit-image's bundled photos, loaded at run time (not stored in this repo)."""

    def __init__(self, names: tuple[str, ...] = SAMPLE_IMAGES) -> None:
        self.names = tuple(names)
        self._cache = _CachedImages(capacity=len(self.names))

    @staticmethod
    def load(name: str) -> np.ndarray:
        """One bundled photo as float32 sRGB ``(H, W, 3)`` in [0, 1] (grayscale replicated)."""
        import skimage.data

        img = getattr(skimage.data, name)()
        if isinstance(img, tuple):  # stereo pairs
            img = img[0]
        img = np.asarray(img)
        if img.dtype != np.uint8:
            raise DeblurkitError(f"sample image {name!r} has unexpected dtype {img.dtype}")
        img = img.astype(np.float32) / 255.0
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        return np.ascontiguousarray(img[..., :3])

    def random_crop(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        """A random crop of a random bundled photo whose short side is at least ``size``."""
        name = self.names[int(rng.integers(len(self.names)))]
        img = self._cache.get(name, lambda: self.load(name))
        if min(img.shape[:2]) < size:
            big = [
                n for n in self.names if min(self._cache.get(n, lambda n=n: self.load(n)).shape[:2]) >= size
            ]
            if not big:
                raise DeblurkitError(f"crop size {size} is larger than every bundled sample image")
            name = big[int(rng.integers(len(big)))]
            img = self._cache.get(name, lambda: self.load(name))
        crop, top, left = _crop(img, size, rng)
        return crop, {"source": f"skimage:{name}", "top": top, "left": left, "size": size}


class DeadLeavesSource:
    """Procedural dead-leaves images with bright light sources (privacy-safe, any size).

    Discs with power-law distributed radii (density ~ r^-3, scale invariant like natural
    images) and random colours occlude each other; a few small discs at full intensity (value
    1, so they saturate) stand in for lamps and specular highlights.

    Args:
        min_radius: smallest disc radius in pixels.
        light_sources: range of the number of saturated light discs per image.
        light_radius: range of light-disc radii in pixels.
        brightness: range of a factor applied to the scene (not the lights); e.g. (0.1, 0.3)
            gives night scenes where lights dominate.
    """

    def __init__(
        self,
        min_radius: float = 2.0,
        light_sources: tuple[int, int] = (2, 12),
        light_radius: tuple[float, float] = (0.6, 3.0),
        brightness: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        self.min_radius = min_radius
        self.light_sources = light_sources
        self.light_radius = light_radius
        self.brightness = brightness

    def random_crop(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        """Render a new ``size`` x ``size`` dead-leaves image."""
        import cv2

        if size < 8:
            raise DeblurkitError(f"dead-leaves size must be at least 8, got {size}")
        ss = 2  # supersampling for anti-aliased edges
        big = size * ss
        rmin, rmax = self.min_radius * ss, 0.4 * big
        canvas = np.empty((big, big, 3), dtype=np.float32)
        canvas[:] = rng.uniform(0.05, 0.95, size=3)
        # Inverse-CDF sampling of r with density ~ r^-3 on [rmin, rmax], until the discs' total
        # area is ~6x the canvas (the plane is then almost surely covered).
        # Radii are drawn in chunks of 12000 until the area is reached (large canvases need more).
        target = 6.0 * big * big
        radii = np.empty(0)
        while radii.size == 0 or np.pi * np.sum(radii**2) < target:
            u = rng.random(12000)
            radii = np.concatenate([radii, 1.0 / np.sqrt(u / rmax**2 + (1 - u) / rmin**2)])
        n_discs = int(np.searchsorted(np.cumsum(np.pi * radii**2), target)) + 1
        radii = radii[:n_discs]
        centers = rng.uniform(-0.1 * big, 1.1 * big, size=(n_discs, 2))
        base = rng.uniform(0.0, 1.0, size=(n_discs, 3))
        gray = rng.uniform(0.0, 1.0, size=(n_discs, 1))
        mix = rng.uniform(0.0, 1.0, size=(n_discs, 1))
        gain = rng.uniform(*self.brightness)
        colors = gain * (mix * base + (1 - mix) * gray) ** 1.5  # many muted colours, some saturated ones
        canvas *= gain
        for (cx, cy), r, col in zip(centers, radii, colors, strict=True):
            cv2.circle(
                canvas,
                (int(cx), int(cy)),
                max(1, int(r)),
                tuple(float(c) for c in col),
                -1,
                lineType=cv2.LINE_8,
            )
        n_lights = int(rng.integers(self.light_sources[0], self.light_sources[1] + 1))
        light_pos = rng.uniform(0, big, size=(n_lights, 2))
        light_r = rng.uniform(*self.light_radius, size=n_lights) * ss
        for (cx, cy), r in zip(light_pos, light_r, strict=True):
            tint = rng.uniform(0.75, 1.0, size=3)
            tint[int(rng.integers(3))] = 1.0
            cv2.circle(
                canvas,
                (int(cx), int(cy)),
                max(1, int(r)),
                tuple(float(c) for c in tint),
                -1,
                lineType=cv2.LINE_8,
            )
            cv2.circle(
                canvas, (int(cx), int(cy)), max(1, int(0.6 * r)), (1.0, 1.0, 1.0), -1, lineType=cv2.LINE_8
            )
        img = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
        return np.clip(img, 0.0, 1.0), {
            "source": "dead-leaves",
            "discs": n_discs,
            "lights": n_lights,
            "size": size,
        }


def make_source(spec: str | os.PathLike[str]) -> ImageFolderSource | SampleImageSource | DeadLeavesSource:
    """Build a source from a spec: a folder path, ``"samples"`` or ``"dead-leaves"``.

    Raises:
        DeblurkitError: the spec is neither keyword and not a folder, or the folder has no images.
    """
    s = str(spec)
    if s == "samples":
        return SampleImageSource()
    if s == "dead-leaves":
        return DeadLeavesSource()
    if not Path(s).is_dir():
        raise DeblurkitError(f"--sharp {s!r}: not a folder (or use 'samples' / 'dead-leaves')")
    return ImageFolderSource(s)
