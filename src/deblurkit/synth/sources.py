"""Sharp-image sources: a folder of photos, scikit-image's bundled photos, dead leaves, procedural scenes.

Procedural scenes (:class:`deblurkit.synth.procedural.ProceduralSceneSource`) live in their own module.

Every source has ``random_crop(size, rng) -> (crop, info)`` with ``crop`` a float32 sRGB
``(size, size, 3)`` array in [0, 1] and ``info`` a JSON-serialisable dict saying where the crop
came from. All randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

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

        from deblurkit.synth.procedural import draw_lamp, lamp_colour

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
            draw_lamp(canvas, cx, cy, r, lamp_colour(rng))
        img = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
        return np.clip(img, 0.0, 1.0), {
            "source": "dead-leaves",
            "discs": n_discs,
            "lights": n_lights,
            "size": size,
        }


#: the procedural (privacy-safe) source keywords, usable as a ``source`` and as a manifest's ``procedural:``
PROCEDURAL_KINDS: tuple[str, ...] = ("dead-leaves", "procedural-scenes")


def make_procedural_source(kind: str) -> SharpSource:
    """A procedural source by keyword (:data:`PROCEDURAL_KINDS`).

    Raises:
        DeblurkitError: unknown keyword.
    """
    if kind == "dead-leaves":
        return DeadLeavesSource()
    if kind == "procedural-scenes":
        from deblurkit.synth.procedural import ProceduralSceneSource

        return ProceduralSceneSource()
    raise DeblurkitError(f"unknown procedural source {kind!r}; valid: {', '.join(PROCEDURAL_KINDS)}")


def make_source(
    spec: str | os.PathLike[str], *, split: Split = "train", scale: tuple[float, float] = (1.0, 1.0)
) -> SharpSource:
    """Build a source from a spec: a folder path, a photo manifest, ``"samples"`` or a procedural keyword.

    Args:
        spec: a folder of photos, a photo manifest (``.yaml``/``.yml``/``.json`` file, see
            :class:`PhotoSetSource`), ``"samples"``, ``"dead-leaves"`` or ``"procedural-scenes"``.
        split: for a photo manifest, the photos to use; the other sources have no splits.
        scale: for a photo manifest, the range of the per-crop random scale.

    Raises:
        DeblurkitError: the spec is neither keyword nor a folder or manifest, or holds no images.
    """
    s = str(spec)
    if s == "samples":
        return SampleImageSource()
    if s in PROCEDURAL_KINDS:
        return make_procedural_source(s)
    if is_photo_manifest(s):
        return PhotoSetSource(s, split=split, scale=scale)
    if not Path(s).is_dir():
        raise DeblurkitError(f"--sharp {s!r}: not a folder (or use 'samples' / {' / '.join(repr(k) for k in PROCEDURAL_KINDS)}"
                             " / a photo manifest .yaml)")
    return ImageFolderSource(s)


def is_photo_manifest(spec: str | os.PathLike[str]) -> bool:
    """Whether a source spec names a photo manifest file (``.yaml``, ``.yml`` or ``.json``)."""
    p = Path(str(spec))
    return p.suffix.lower() in (".yaml", ".yml", ".json") and p.is_file()


# --------------------------------------------------------------------------- many photo folders

Split = Literal["train", "validation", "test"]
SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: decoded photos kept per process by :class:`PhotoSetSource` (most crops come from another photo)
_PHOTO_CACHE = 6
#: the long side a photo is first reduced to when its manifest entry gives no ``max_side``
DEFAULT_MAX_SIDE = 2048


def split_of_name(name: str, *, validation_percent: int, test_percent: int) -> Split:
    """The fixed split of a photo from its name alone (the same on every machine and every run).

    ``bucket = int(sha256(name)[:8], 16) % 100``; ``test`` when ``bucket < test_percent``,
    ``validation`` when ``bucket < test_percent + validation_percent``, else ``train``.

    Args:
        name: ``"<source>/<path relative to the source folder>"``.
        validation_percent: share of photos held out for validation, in percent.
        test_percent: share of photos held out for testing, in percent.
    """
    bucket = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 100
    if bucket < test_percent:
        return "test"
    if bucket < test_percent + validation_percent:
        return "validation"
    return "train"


@dataclass(frozen=True)
class PhotoEntry:
    """One photo of a :class:`PhotoSetSource`: where it is, its source and split, its size after EXIF rotation."""

    path: Path
    name: str
    """``<source>/<path relative to the source folder>``: the name the split is computed from."""
    source: str
    split: str
    height: int
    width: int
    max_side: int


@dataclass
class PhotoSetEntrySource:
    """One source of a photo manifest: its photos (all splits), weight and procedural generator."""

    name: str
    weight: float
    photos: list[PhotoEntry] = field(default_factory=list)
    procedural: SharpSource | None = None


def _image_header(path: Path) -> tuple[int, int]:
    """``(height, width)`` of an image after its EXIF rotation, from the header only."""
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
        try:
            orientation = int(im.getexif().get(0x0112, 1))
        except Exception:  # noqa: BLE001 - a broken EXIF block means no rotation
            orientation = 1
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def load_photo_manifest(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[PhotoSetEntrySource]]:
    """Read a photo manifest (YAML or JSON) and list every photo of every source with its split.

    Manifest keys: ``root`` (folder the paths are relative to, itself relative to the manifest's
    folder; default: the manifest's folder), ``validation_percent`` / ``test_percent`` (default
    10 / 10) and ``sources``, a list of mappings with ``name``, ``weight`` (relative probability
    of drawing a crop from this source) and exactly one of

    - ``folder``: every image below it; split by :func:`split_of_name` of ``<name>/<relative path>``;
    - ``photos_manifest``: a ``scripts/fetch_photos.py`` manifest; its photos keep *its* split
      (``train`` / ``test``), so photos held out there stay held out;
    - ``procedural: dead-leaves`` or ``procedural: procedural-scenes``: procedural images
      (training split only).

    and optionally ``max_side`` (photos are first reduced to this long side; default 2048).

    Returns:
        ``(manifest, sources)``.

    Raises:
        DeblurkitError: unreadable manifest, unknown keys, a missing folder or photo, a source without photos.
    """
    import json

    import yaml

    path = Path(path)
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise DeblurkitError(f"{path}: cannot read photo manifest ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list) or not data["sources"]:
        raise DeblurkitError(f"{path}: a photo manifest needs a non-empty 'sources' list")
    root = (path.parent / str(data.get("root", "."))).resolve()
    val_pct, test_pct = int(data.get("validation_percent", 10)), int(data.get("test_percent", 10))
    if not (0 <= val_pct and 0 <= test_pct and val_pct + test_pct < 100):
        raise DeblurkitError(f"{path}: validation_percent + test_percent must be in [0, 100), got {val_pct} + {test_pct}")
    known = {"name", "weight", "folder", "photos_manifest", "procedural", "max_side"}
    sources: list[PhotoSetEntrySource] = []
    for i, spec in enumerate(data["sources"]):
        if not isinstance(spec, dict) or "name" not in spec:
            raise DeblurkitError(f"{path}: source #{i} needs a 'name'")
        name = str(spec["name"])
        unknown = sorted(set(spec) - known)
        kinds = [k for k in ("folder", "photos_manifest", "procedural") if k in spec]
        if unknown or len(kinds) != 1:
            raise DeblurkitError(f"{path}: source {name!r}: needs exactly one of folder / photos_manifest / procedural"
                                 + (f"; unknown keys {unknown}, valid: {sorted(known)}" if unknown else ""))
        weight = float(spec.get("weight", 1.0))
        max_side = int(spec.get("max_side", DEFAULT_MAX_SIDE))
        if weight <= 0 or max_side < 16:
            raise DeblurkitError(f"{path}: source {name!r}: weight must be > 0 and max_side >= 16")
        entry = PhotoSetEntrySource(name=name, weight=weight)
        if "procedural" in spec:
            if spec["procedural"] not in PROCEDURAL_KINDS:
                raise DeblurkitError(f"{path}: source {name!r}: procedural must be one of {', '.join(PROCEDURAL_KINDS)}")
            entry.procedural = make_procedural_source(spec["procedural"])
        elif "folder" in spec:
            folder = root / str(spec["folder"])
            if not folder.is_dir():
                raise DeblurkitError(f"{path}: source {name!r}: {folder} is not a folder")
            for f in iter_image_files(folder):
                rel = f"{name}/{f.relative_to(folder).as_posix()}"
                split = split_of_name(rel, validation_percent=val_pct, test_percent=test_pct)
                entry.photos.append(_photo_entry(f, rel, name, split, max_side))
        else:
            pm_path = root / str(spec["photos_manifest"])
            try:
                pm = json.loads(pm_path.read_text())
            except (OSError, ValueError) as exc:
                raise DeblurkitError(f"{path}: source {name!r}: cannot read {pm_path} ({exc})") from None
            photo_root = root / pm.get("root", "data/photos")
            for e in pm.get("photos", []):
                f = photo_root / e["path"]
                if not f.is_file():
                    raise DeblurkitError(f"{path}: source {name!r}: {f} is missing (run scripts/fetch_photos.py)")
                entry.photos.append(_photo_entry(f, f"{name}/{e['package']}/{e['name']}", name, e["split"], max_side))
        if entry.procedural is None and not entry.photos:
            raise DeblurkitError(f"{path}: source {name!r} has no photos")
        sources.append(entry)
    return data, sources


def _photo_entry(path: Path, name: str, source: str, split: str, max_side: int) -> PhotoEntry:
    try:
        h, w = _image_header(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable header is a bad file
        raise DeblurkitError(f"{path}: cannot read image header ({exc})") from None
    return PhotoEntry(path=path, name=name, source=source, split=split, height=h, width=w, max_side=max_side)


def _decode_reduced_rgb8(path: Path, reduce: int) -> np.ndarray:
    """A JPEG (or any image) decoded at about ``1/reduce`` of its size, EXIF-rotated, uint8 RGB ``(H, W, 3)``.

    JPEGs are decoded at the reduced size by the DCT (``Image.draft``), far faster than decoding in
    full and resizing; the result is at least ``1/reduce`` of the full size. This is the training
    crops' decoder (8-bit sRGB photos, kept as uint8 in the per-process cache, only the crop's region
    converted to float); photos a user restores go through :func:`deblurkit.photo_io.read_photo`.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            if reduce > 1 and im.format == "JPEG":
                im.draft("RGB", (im.width // reduce, im.height // reduce))
            im = ImageOps.exif_transpose(im)
            im.load()
            arr = np.asarray(im.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt data: skip the photo
        raise DeblurkitError(f"{path}: cannot read image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    return arr


class PhotoSetSource:
    """Random crops from the photos of one split of a photo manifest, at a random scale per crop.

    A crop first picks a source with probability proportional to its ``weight`` (sources with no
    photo large enough are left out), then a photo of that source uniformly, then a scale
    ``s`` log-uniform in ``scale`` relative to the photo reduced to its source's ``max_side``:
    the crop shows a ``size / s``-pixel square of that reduced photo, resampled to ``size`` (area
    interpolation). Where the photo is too small for the drawn scale, the smallest scale that
    fits is used; a photo is never upsampled (photos whose short side is below ``size`` are
    skipped). So one photo yields crops of many framings and scales.

    Args:
        manifest: path of the photo manifest (see :func:`load_photo_manifest`).
        split: the photos to draw from; procedural sources serve only ``train``.
        scale: ``(min, max)`` of the per-crop scale, ``0 < min <= max <= 1``.

    Raises:
        DeblurkitError: bad manifest (see :func:`load_photo_manifest`) or no photo in ``split``.
    """

    def __init__(self, manifest: str | os.PathLike[str], split: Split = "train",
                 scale: tuple[float, float] = (1.0, 1.0)) -> None:
        if split not in SPLITS:
            raise DeblurkitError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        lo, hi = float(scale[0]), float(scale[1])
        if not 0.0 < lo <= hi <= 1.0:
            raise DeblurkitError(f"scale range must satisfy 0 < min <= max <= 1, got ({lo}, {hi})")
        self.manifest_path = Path(manifest)
        self.split, self.scale = split, (lo, hi)
        self.manifest, all_sources = load_photo_manifest(manifest)
        self.sources: list[PhotoSetEntrySource] = []
        for s in all_sources:
            photos = [p for p in s.photos if p.split == split]
            procedural = s.procedural if split == "train" else None
            if photos or procedural is not None:
                self.sources.append(PhotoSetEntrySource(s.name, s.weight, photos, procedural))
        if not self.sources:
            raise DeblurkitError(f"{manifest}: no photos in split {split!r}")
        self._cache = _CachedImages(capacity=_PHOTO_CACHE)

    def __len__(self) -> int:
        """The number of photos (procedural sources not counted)."""
        return sum(len(s.photos) for s in self.sources)

    def counts(self) -> dict[str, int]:
        """Photos per source in this split (``-1`` for a procedural source)."""
        return {s.name: (-1 if s.procedural is not None else len(s.photos)) for s in self.sources}

    def random_crop(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        """A ``size`` x ``size`` float32 sRGB crop in [0, 1] and where it came from."""
        eligible = [(s, [p for p in s.photos if min(p.height, p.width) >= size]) for s in self.sources]
        eligible = [(s, ps) for s, ps in eligible if ps or s.procedural is not None]
        if not eligible:
            raise DeblurkitError(f"{self.manifest_path}: no {self.split} photo is at least {size} px on its short side")
        weights = np.array([s.weight for s, _ in eligible], dtype=np.float64)
        k = int(np.searchsorted(np.cumsum(weights / weights.sum()), rng.random(), side="right"))
        src, photos = eligible[min(k, len(eligible) - 1)]
        if src.procedural is not None:
            crop, info = src.procedural.random_crop(size, rng)
            return crop, {**info, "source": f"{src.name}/{info['source']}"}
        photo = photos[int(rng.integers(len(photos)))]
        u = rng.random()
        crop, info = _crop_at_scale_rgb(photo, size, u, self.scale, rng, self._cache)
        return crop, info


def _crop_at_scale_rgb(photo: PhotoEntry, size: int, u: float, scale: tuple[float, float],
                      rng: np.random.Generator, cache: _CachedImages) -> tuple[np.ndarray, dict[str, Any]]:
    """A ``size`` crop of ``photo`` at the scale log-uniform quantile ``u`` of ``scale`` (see :class:`PhotoSetSource`).

    Returns:
        ``(crop, info)``: float32 sRGB ``(size, size, 3)`` in [0, 1]; ``info`` names the photo, the
        scale relative to the full-size photo and the region (full-size pixels).
    """
    import cv2

    lo, hi = scale
    h, w = photo.height, photo.width
    base = min(1.0, photo.max_side / max(h, w))  # the photo reduced to max_side
    s = base * math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
    s = min(1.0, max(s, size / min(h, w)))  # the region must fit; never upsample
    region = min(min(h, w), max(size, int(round(size / s))))
    top = int(rng.integers(0, h - region + 1))
    left = int(rng.integers(0, w - region + 1))
    reduce = 1
    while reduce < 8 and region / (reduce * 2) >= size:  # decode smaller while the region keeps >= size px
        reduce *= 2
    img = cache.get(f"{photo.path}|{reduce}", lambda: _decode_reduced_rgb8(photo.path, reduce))
    fy, fx = img.shape[0] / h, img.shape[1] / w  # the draft size is rounded up, per axis
    y0, x0 = int(top * fy), int(left * fx)
    y1, x1 = min(img.shape[0], max(y0 + size, int(round((top + region) * fy)))), \
        min(img.shape[1], max(x0 + size, int(round((left + region) * fx))))
    patch = img[y0:y1, x0:x1].astype(np.float32) / 255.0
    if patch.shape[0] != size or patch.shape[1] != size:
        patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    info = {"source": photo.name, "top": top, "left": left, "region": region, "scale": round(size / region, 4),
            "size": size}
    return np.ascontiguousarray(np.clip(patch, 0.0, 1.0)), info
