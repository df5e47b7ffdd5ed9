"""Procedural scenes: sharp training images that contain no real person and no private content.

:func:`render_scene_srgb` paints a scene in depth layers, far to near, each layer an occluding
set of objects whose sizes follow a power law (density ~ r^-3, the scale invariance of dead
leaves and of natural images) and grow with nearness. Objects are discs, ellipses, rotated
rectangles, random polygons, thin strokes (wires, branches) and rows of random characters
(signs); each is filled with a flat colour, a fractal texture (power spectrum ~ 1/f^beta, beta
drawn around 2 as in natural images), stripes or a checker pattern, and lit by a linear shading
gradient. Far layers are mixed towards a haze colour (aerial perspective). A few small saturated
lamps and light strips are drawn last at value 1, as in :class:`deblurkit.synth.sources.DeadLeavesSource`.
Everything is rendered at twice the size and area-downsampled, so edges are anti-aliased and
sharp: the images are sharp training targets, never blurred.

>>> import numpy as np
>>> img = render_scene_srgb(64, np.random.default_rng(0))
>>> img.shape, img.dtype.name, float(img.min()) >= 0.0, float(img.max()) <= 1.0
((64, 64, 3), 'float32', True, True)
"""

from __future__ import annotations

import math
import string
from typing import Any, Literal

import numpy as np

from deblurkit.errors import DeblurkitError

Texture = Literal["flat", "fractal", "stripes", "checker"]
TEXTURES: tuple[Texture, ...] = ("flat", "fractal", "stripes", "checker")
#: probability of each texture for an object, in the order of :data:`TEXTURES`
TEXTURE_WEIGHTS: tuple[float, ...] = (0.25, 0.5, 0.15, 0.1)
_SUPERSAMPLE = 2
_MAX_OBJECTS_PER_LAYER = 80
#: octaves of object size within one layer (the smallest object of a layer is rmax / 2**this)
_LAYER_OCTAVES = 3.5
_CHARS = string.ascii_uppercase + string.digits


def fractal_noise(shape: tuple[int, int], beta: float, rng: np.random.Generator) -> np.ndarray:
    """A Gaussian random field whose power spectrum falls as ``1/f^beta``, zero mean, unit std.

    Args:
        shape: ``(H, W)``.
        beta: spectral exponent; about 2 for natural images, smaller is rougher.
        rng: the random generator.

    Returns:
        float32 ``(H, W)``.
    """
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2.0)
    amp[0, 0] = 0.0
    spec = (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape)) * amp
    field = np.fft.irfft2(spec, s=(h, w))
    field -= field.mean()
    std = field.std()
    return (field / std if std > 0 else field).astype(np.float32)


def _random_colour_srgb(rng: np.random.Generator) -> np.ndarray:
    """A colour with the muted-to-saturated spread of natural scenes (many greyish, some vivid)."""
    base = rng.uniform(0.0, 1.0, size=3)
    grey = rng.uniform(0.0, 1.0)
    mix = rng.uniform(0.0, 1.0) ** 2
    return ((mix * base + (1.0 - mix) * grey) ** 1.3).astype(np.float32)


def _texture_srgb(kind: Texture, box: tuple[int, int, int, int], fields: list[np.ndarray],
                  rng: np.random.Generator, scale: float) -> np.ndarray:
    """The fill of one object over its bounding box ``(x0, y0, x1, y1)``: float32 ``(h, w, 3)``."""
    x0, y0, x1, y1 = box
    h, w = y1 - y0, x1 - x0
    c0 = _random_colour_srgb(rng)
    if kind == "flat":
        tex = np.broadcast_to(c0, (h, w, 3)).copy()
    elif kind == "fractal":
        field = fields[int(rng.integers(len(fields)))][y0:y1, x0:x1]
        c1 = _random_colour_srgb(rng)
        amount = rng.uniform(0.05, 0.35)
        tex = c0 + amount * field[..., None] * (0.5 + c1 - c1.mean())
    else:
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        period = max(3.0, scale * rng.uniform(0.08, 0.5))
        angle = rng.uniform(0.0, math.pi)
        u = (xx * math.cos(angle) + yy * math.sin(angle)) / period
        if kind == "stripes":
            duty = rng.uniform(0.2, 0.8)
            on = (u - np.floor(u)) < duty
        else:
            v = (-xx * math.sin(angle) + yy * math.cos(angle)) / period
            on = (np.floor(u) + np.floor(v)) % 2 == 0
        c1 = _random_colour_srgb(rng)
        tex = np.where(on[..., None], c0, c1)
    # a linear shading gradient across the object (light falling on a surface)
    gy, gx = rng.uniform(-0.4, 0.4, size=2) / max(h, w, 1)
    yy, xx = np.ogrid[0:h, 0:w]
    shade = 1.0 + gx * (xx - w / 2) + gy * (yy - h / 2)
    return (tex * shade[..., None]).astype(np.float32)


def _paint(canvas: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], fill: np.ndarray) -> None:
    x0, y0, x1, y1 = box
    region = canvas[y0:y1, x0:x1]
    on = mask > 0
    region[on] = fill[on]


def _clip_box(cx: float, cy: float, r: float, big: int) -> tuple[int, int, int, int] | None:
    x0, y0 = max(0, int(cx - r) - 1), max(0, int(cy - r) - 1)
    x1, y1 = min(big, int(cx + r) + 2), min(big, int(cy + r) + 2)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _shape_mask(shape: str, cx: float, cy: float, r: float, box: tuple[int, int, int, int],
                rng: np.random.Generator) -> np.ndarray:
    """A uint8 mask over ``box`` of one shape of size ``r`` centred at ``(cx, cy)`` (canvas pixels)."""
    import cv2

    x0, y0, x1, y1 = box
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    lx, ly = cx - x0, cy - y0
    if shape == "disc":
        cv2.circle(mask, (int(lx), int(ly)), max(1, int(r)), 255, -1, lineType=cv2.LINE_8)
    elif shape == "ellipse":
        axes = (max(1, int(r)), max(1, int(r * rng.uniform(0.25, 1.0))))
        cv2.ellipse(mask, (int(lx), int(ly)), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    elif shape == "rectangle":
        w, h = 2 * r, 2 * r * rng.uniform(0.2, 1.0)
        angle = float(rng.choice([0.0, 90.0])) if rng.random() < 0.6 else float(rng.uniform(0, 180))
        pts = cv2.boxPoints(((lx, ly), (w, h), angle))
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)
    elif shape == "polygon":
        n = int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * math.pi, size=n))
        radii = r * rng.uniform(0.4, 1.0, size=n)
        pts = np.stack([lx + radii * np.cos(angles), ly + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)
    else:  # stroke: a thin, gently bending polyline (wire, branch, cable)
        n = int(rng.integers(2, 6))
        heading = rng.uniform(0, 2 * math.pi)
        step = 2 * r / n
        pts = [(lx - r * math.cos(heading), ly - r * math.sin(heading))]
        for _ in range(n):
            heading += rng.normal(0.0, 0.35)
            pts.append((pts[-1][0] + step * math.cos(heading), pts[-1][1] + step * math.sin(heading)))
        thickness = max(1, int(r * rng.uniform(0.01, 0.06)))
        cv2.polylines(mask, [np.round(np.array(pts)).astype(np.int32)], False, 255, thickness,
                      lineType=cv2.LINE_8)
    return mask


_SHAPES = ("disc", "ellipse", "rectangle", "polygon", "stroke")
_SHAPE_WEIGHTS = np.array([0.2, 0.15, 0.3, 0.2, 0.15])


def _draw_text(canvas: np.ndarray, rng: np.random.Generator, big: int) -> None:
    """A row of random characters (never words) on an optional plate, like a sign or a label."""
    import cv2

    font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
                           cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_PLAIN]))
    text = "".join(rng.choice(list(_CHARS), size=int(rng.integers(2, 10))))
    height = big * math.exp(rng.uniform(math.log(0.02), math.log(0.1)))
    scale = height / 22.0
    thickness = max(1, round(scale * rng.uniform(1.0, 2.5)))
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    x = int(rng.uniform(-0.1 * tw, max(1.0, big - 0.9 * tw)))
    y = int(rng.uniform(th, big + 0.1 * th))
    plate = _random_colour_srgb(rng)
    ink = np.where(plate.mean() > 0.5, rng.uniform(0.0, 0.25, size=3), rng.uniform(0.75, 1.0, size=3))
    if rng.random() < 0.7:
        pad = int(0.3 * th)
        cv2.rectangle(canvas, (x - pad, y - th - pad), (x + tw + pad, y + base + pad),
                      tuple(float(c) for c in plate), -1)
    mask = np.zeros(canvas.shape[:2], dtype=np.uint8)  # OpenCV 5 draws text into 8-bit images only
    cv2.putText(mask, text, (x, y), font, scale, 255, thickness, cv2.LINE_8)
    canvas[mask > 0] = ink


def lamp_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """A lamp's tint: each channel in [0.75, 1], one of them at full value."""
    tint = rng.uniform(0.75, 1.0, size=3)
    tint[int(rng.integers(3))] = 1.0
    return (float(tint[0]), float(tint[1]), float(tint[2]))


def draw_lamp(canvas: np.ndarray, cx: float, cy: float, r: float, colour: tuple[float, float, float]) -> None:
    """A saturated lamp on an sRGB ``canvas`` (in place): a tinted disc of radius ``r`` px with a white core."""
    import cv2

    cv2.circle(canvas, (int(cx), int(cy)), max(1, int(r)), colour, -1, lineType=cv2.LINE_8)
    cv2.circle(canvas, (int(cx), int(cy)), max(1, int(0.6 * r)), (1.0, 1.0, 1.0), -1, lineType=cv2.LINE_8)


def render_scene_srgb(size: int, rng: np.random.Generator, **options: Any) -> np.ndarray:
    """Render one procedural scene (see the module docstring and :func:`render_scene_with_counts_srgb`).

    Returns:
        float32 sRGB ``(size, size, 3)`` in [0, 1].
    """
    return render_scene_with_counts_srgb(size, rng, **options)[0]


def render_scene_with_counts_srgb(
    size: int,
    rng: np.random.Generator,
    *,
    layers: tuple[int, int] = (3, 5),
    light_sources: tuple[int, int] = (0, 6),
    texts: tuple[int, int] = (0, 3),
    brightness: tuple[float, float] = (0.6, 1.0),
) -> tuple[np.ndarray, dict[str, int]]:
    """Render one procedural scene (see the module docstring) and count what it holds.

    Args:
        size: output side in pixels (>= 16).
        rng: the random generator; the image is a function of its state.
        layers: range of the number of depth layers.
        light_sources: range of the number of saturated lamps / light strips.
        texts: range of the number of rows of random characters.
        brightness: range of an exposure factor applied to the scene (not to the lights).

    Returns:
        ``(image, counts)``: float32 sRGB ``(size, size, 3)`` in [0, 1]; the numbers of layers,
        objects, lights and rows of text drawn.

    Raises:
        DeblurkitError: ``size`` < 16 or an empty range.
    """
    import cv2

    if size < 16:
        raise DeblurkitError(f"procedural scene size must be at least 16, got {size}")
    for name, (lo, hi) in (("layers", layers), ("light_sources", light_sources), ("texts", texts),
                           ("brightness", brightness)):
        if lo > hi or lo < 0:
            raise DeblurkitError(f"procedural scene {name} range must satisfy 0 <= min <= max, got ({lo}, {hi})")
    big = size * _SUPERSAMPLE
    fields = [fractal_noise((big, big), float(b), rng) for b in rng.uniform(1.4, 2.6, size=3)]
    # background: a vertical gradient (sky / ground) with a faint fractal texture
    top, bottom = _random_colour_srgb(rng), _random_colour_srgb(rng)
    t = np.linspace(0.0, 1.0, big, dtype=np.float32)[:, None, None]
    canvas = (1 - t) * top + t * bottom + 0.05 * fields[0][..., None]
    canvas = np.array(np.broadcast_to(canvas, (big, big, 3)), dtype=np.float32)
    haze = _random_colour_srgb(rng) * 0.5 + 0.4
    haze_amount = rng.uniform(0.0, 0.6)
    n_layers = int(rng.integers(layers[0], layers[1] + 1))
    n_objects = 0
    for layer in range(n_layers):
        nearness = (layer + 1) / max(1, n_layers)
        rmax = big * (0.06 + 0.34 * nearness)
        rmin = max(1.5 * _SUPERSAMPLE, rmax / 2**_LAYER_OCTAVES)
        coverage = rng.uniform(0.4, 1.2)
        target = coverage * big * big
        radii: list[float] = []
        area = 0.0
        while area < target and len(radii) < _MAX_OBJECTS_PER_LAYER:
            u = rng.random()
            r = 1.0 / math.sqrt(u / rmax**2 + (1 - u) / rmin**2)  # density ~ r^-3 on [rmin, rmax]
            radii.append(r)
            area += math.pi * r * r
        fog = haze_amount * (1.0 - nearness)
        for r in radii:
            cx, cy = rng.uniform(-0.1 * big, 1.1 * big, size=2)
            box = _clip_box(cx, cy, r, big)
            if box is None:
                continue
            shape = str(rng.choice(_SHAPES, p=_SHAPE_WEIGHTS))
            mask = _shape_mask(shape, cx, cy, r, box, rng)
            kind = TEXTURES[int(rng.choice(len(TEXTURES), p=TEXTURE_WEIGHTS))]
            fill = _texture_srgb(kind, box, fields, rng, r)
            if fog > 0:
                fill = (1 - fog) * fill + fog * haze
            _paint(canvas, mask, box, fill)
            n_objects += 1
    n_texts = int(rng.integers(texts[0], texts[1] + 1))
    for _ in range(n_texts):
        _draw_text(canvas, rng, big)
    canvas *= rng.uniform(*brightness)
    n_lights = int(rng.integers(light_sources[0], light_sources[1] + 1))
    for _ in range(n_lights):
        cx, cy = rng.uniform(0, big, size=2)
        colour = lamp_colour(rng)
        if rng.random() < 0.7:  # a lamp: a small disc with a white core
            draw_lamp(canvas, cx, cy, rng.uniform(0.6, 3.0) * _SUPERSAMPLE, colour)
        else:  # a light strip (neon tube, lit window edge)
            length = rng.uniform(0.03, 0.2) * big
            a = rng.uniform(0, math.pi)
            p0 = (int(cx), int(cy))
            p1 = (int(cx + length * math.cos(a)), int(cy + length * math.sin(a)))
            cv2.line(canvas, p0, p1, colour, max(1, int(rng.uniform(0.5, 1.5) * _SUPERSAMPLE)), cv2.LINE_8)
    img = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    counts = {"layers": n_layers, "objects": n_objects, "lights": n_lights, "texts": n_texts}
    return np.clip(img, 0.0, 1.0).astype(np.float32), counts


class ProceduralSceneSource:
    """Random procedural scenes (:func:`render_scene_srgb`): privacy-safe, any size, unlimited.

    Args:
        layers, light_sources, texts, brightness: see :func:`render_scene_srgb`.
    """

    def __init__(self, layers: tuple[int, int] = (3, 5), light_sources: tuple[int, int] = (0, 6),
                 texts: tuple[int, int] = (0, 3), brightness: tuple[float, float] = (0.6, 1.0)) -> None:
        self.layers, self.light_sources, self.texts, self.brightness = layers, light_sources, texts, brightness

    def random_crop(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        """Render a new ``size`` x ``size`` scene; ``info`` says what it holds."""
        img, counts = render_scene_with_counts_srgb(size, rng, layers=self.layers, light_sources=self.light_sources,
                                                    texts=self.texts, brightness=self.brightness)
        return img, {"source": "procedural-scenes", **counts, "size": size}
