"""``deblurkit highlights INPUT -o OUTPUT``: restore clipped highlights in a video, online.

INPUT is a folder of frames (sorted by name) or a video file (read frame by frame through
imageio's ffmpeg plugin, ``pip install imageio-ffmpeg``). Frames are processed one at a time
with one kept reference frame, so memory does not grow with the clip. OUTPUT is a folder of
``frame_NNNNNN.exr`` (OpenEXR, float32 or half: linear HDR, 1 = the input's clipping level;
``pip install 'deblurkit[exr]'``), ``.tif`` (float32 TIFF, the same values) or ``.png`` (16-bit:
linear divided by ``--peak``, sRGB-encoded), written atomically; or, when OUTPUT ends in
``.mp4``, ``.mkv`` or ``.mov``, a tone-mapped 8-bit H.264 video (Reinhard's global curve with
``--peak`` as white, sRGB), streamed to ffmpeg frame by frame and renamed into place when complete.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deblurkit.io import ExrPrecision

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})
#: Output video suffix -> ffmpeg container (H.264 in each).
VIDEO_OUT_CONTAINERS: dict[str, str] = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="folder of frames or a video file")
    parser.add_argument("-o", "--output", required=True,
                        help="output folder of frames, or a tone-mapped video (.mp4, .mkv, .mov)")
    parser.add_argument("--model", default="copy",
                        help="'copy' (paste the aligned reference), 'none', or a HighlightNet .safetensors file")
    parser.add_argument("--policy", default="learned",
                        help="reference choice: 'learned' (the shipped policy), previous, first, interval, "
                             "or a policy .json")
    parser.add_argument("--interval", type=int, default=8, help="frames between reference updates (interval rule)")
    parser.add_argument("--align", choices=["homography", "flow"], default="homography")
    parser.add_argument("--tone-curve", choices=["srgb", "srgb-smoothstep"], default="srgb")
    parser.add_argument("--format", choices=["png", "exr", "tif"], default="png",
                        help="png: 16-bit, linear / --peak, sRGB-encoded; exr: OpenEXR linear HDR; "
                             "tif: float32 TIFF linear HDR")
    parser.add_argument("--exr-precision", choices=["float", "half"], default="float",
                        help="EXR only: 32-bit float (exact) or 16-bit half float")
    parser.add_argument("--peak", type=float, default=16.0,
                        help="PNG: linear value written as white; video: luminance the tone curve maps to white")
    parser.add_argument("--fps", type=float, default=None,
                        help="output video frame rate (default: the input video's, or 25 for a folder)")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def iter_frames_srgb8(path: str | Path) -> Iterator:
    """8-bit RGB frames ``(H, W, 3)`` of a folder or a video file, one at a time."""
    import numpy as np

    from deblurkit.errors import DeblurkitError

    p = Path(path)
    if p.is_dir():
        from deblurkit.io import iter_image_files, load_image_rgb

        files = iter_image_files(p)
        if not files:
            raise DeblurkitError(f"{p}: no image files")
        for f in files:
            yield (load_image_rgb(f) * 255.0 + 0.5).astype(np.uint8)
        return
    if not p.is_file():
        raise DeblurkitError(f"{p}: no such file or folder")
    if p.suffix.lower() not in VIDEO_SUFFIXES:
        raise DeblurkitError(f"{p}: not a folder or a video ({', '.join(sorted(VIDEO_SUFFIXES))})")
    try:
        import imageio.v3 as iio
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise DeblurkitError("reading video needs imageio-ffmpeg: pip install imageio-ffmpeg") from None
    try:
        for frame in iio.imiter(p, plugin="FFMPEG"):
            yield np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
    except (OSError, RuntimeError) as exc:
        raise DeblurkitError(f"{p}: cannot decode video ({str(exc).splitlines()[0][:120]})") from None


def write_frame_linear(path: Path, linear, fmt: str, peak: float, exr_precision: ExrPrecision = "float") -> None:
    """Write one restored frame, atomically.

    Args:
        path: the file.
        linear: ``(H, W, 3)`` float32 linear, 1 = the input's clipping level (may exceed 1).
        fmt: ``"exr"`` or ``"tif"`` (the values as they are) or ``"png"`` (16-bit, ``linear / peak``
            clipped to [0, 1], sRGB-encoded).
        peak: PNG only, the linear value written as white.
        exr_precision: EXR only, ``"float"`` or ``"half"``.
    """
    import numpy as np

    from deblurkit.io import atomic_write, save_exr_linear, save_png

    if fmt == "exr":
        save_exr_linear(path, linear, precision=exr_precision)
        return
    if fmt == "png":
        from deblurkit.color import linear_to_srgb

        enc = linear_to_srgb(linear / np.float32(peak))
        save_png(path, enc, bits=16)
        return
    import io

    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, np.ascontiguousarray(linear, np.float32), photometric="rgb")
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())


def video_fps(path: str | Path) -> float | None:
    """The frame rate a video file declares (imageio's ffmpeg plugin), or None if unknown."""
    try:
        import imageio.v3 as iio

        fps = iio.immeta(path, plugin="FFMPEG").get("fps")
    except Exception:  # noqa: BLE001 - metadata is optional; decoding errors surface when reading frames
        return None
    return float(fps) if fps and fps > 0 else None


@contextlib.contextmanager
def tonemapped_video_writer(path: str | Path, *, fps: float, peak: float) -> Iterator[Callable]:
    """Stream linear HDR frames into an 8-bit H.264 video, tone-mapped; the file appears only when complete.

    Yields ``send(linear)`` for ``(H, W, 3)`` float32 linear frames (1 = clipping, all of one
    size): Reinhard's global curve with ``peak`` as white
    (:func:`deblurkit.color.reinhard_tonemap_linear`), sRGB-encoded, 8 bits, edge-padded to even
    sizes (yuv420p). ffmpeg (``imageio-ffmpeg``) writes to a temporary name beside ``path``, renamed
    to ``path`` on success and removed on any error, so a failed run leaves no partial video. Memory
    is one frame, whatever the clip length.

    Raises:
        DeblurkitError: the suffix is not ``.mp4``, ``.mkv`` or ``.mov``, or imageio-ffmpeg is missing.
    """
    import os
    import tempfile

    import numpy as np

    from deblurkit.color import linear_to_srgb, reinhard_tonemap_linear
    from deblurkit.errors import DeblurkitError
    from deblurkit.io import float_to_uint, remove_stale_temp_files

    path = Path(path)
    container = VIDEO_OUT_CONTAINERS.get(path.suffix.lower())
    if container is None:
        raise DeblurkitError(f"{path}: output video must end in {', '.join(VIDEO_OUT_CONTAINERS)}")
    try:
        import imageio_ffmpeg
    except ImportError:
        raise DeblurkitError("writing video needs imageio-ffmpeg: pip install imageio-ffmpeg") from None
    remove_stale_temp_files(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    writer = None

    def send(linear: np.ndarray) -> None:
        nonlocal writer
        h, w = linear.shape[:2]
        if writer is None:
            writer = imageio_ffmpeg.write_frames(
                tmp, (w + w % 2, h + h % 2), fps=fps, quality=8, macro_block_size=2,
                output_params=["-f", container], ffmpeg_log_level="error")
            writer.send(None)
        srgb8 = float_to_uint(linear_to_srgb(reinhard_tonemap_linear(linear, white=peak)), 8)
        writer.send(np.ascontiguousarray(np.pad(srgb8, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")))

    try:
        yield send
        if writer is None:
            raise DeblurkitError(f"{path}: no frames to write")
        writer.close()
        writer = None
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def run(args: argparse.Namespace) -> int:
    import time

    from deblurkit.errors import DeblurkitError
    from deblurkit.highlights.online import restore_copy, restore_none, rule_policy, run_online

    if args.model == "copy":
        restorer = restore_copy
    elif args.model == "none":
        restorer = restore_none
    else:
        from deblurkit.highlights.net import load_highlight_restorer

        restorer = load_highlight_restorer(args.model)
    if args.policy in ("previous", "first", "interval"):
        policy = rule_policy(args.policy, interval=max(1, args.interval))
    else:
        from deblurkit.highlights.policy import load_policy

        policy = load_policy(args.policy)
    if args.peak <= 0:
        raise DeblurkitError(f"--peak must be positive, got {args.peak}")
    src = Path(args.input)
    if not src.is_dir() and not (src.is_file() and src.suffix.lower() in VIDEO_SUFFIXES):
        raise DeblurkitError(f"{src}: not a folder of frames or a video ({', '.join(sorted(VIDEO_SUFFIXES))})")
    from deblurkit.io import ensure_writable_folder

    out = Path(args.output)
    to_video = out.suffix.lower() in VIDEO_SUFFIXES
    if to_video:  # checked before any work: a bad output is one line, not a failure at frame 0
        if out.suffix.lower() not in VIDEO_OUT_CONTAINERS:
            raise DeblurkitError(f"{out}: output video must end in {', '.join(VIDEO_OUT_CONTAINERS)}")
        if out.is_dir():
            raise DeblurkitError(f"{out}: is a folder, not a video file")
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise DeblurkitError("writing video needs imageio-ffmpeg: pip install imageio-ffmpeg") from None
        ensure_writable_folder(out.parent, label="output folder")
        fps = args.fps or (video_fps(src) if src.is_file() else None) or 25.0
        if fps <= 0:
            raise DeblurkitError(f"--fps must be positive, got {args.fps}")
    else:
        if args.format == "exr":
            from deblurkit.io import require_openexr

            require_openexr()
        out = ensure_writable_folder(out, label="output folder")

    class _Frame:
        __slots__ = ("srgb8",)

        def __init__(self, srgb8) -> None:
            self.srgb8 = srgb8

    shape = None

    def frames() -> Iterator[_Frame]:
        nonlocal shape
        for i, f in enumerate(iter_frames_srgb8(args.input)):
            if args.max_frames is not None and i >= args.max_frames:
                return
            if shape is None:
                shape = f.shape
            elif f.shape != shape:
                raise DeblurkitError(f"frame {i} is {f.shape[1]}x{f.shape[0]}, the first was {shape[1]}x{shape[0]}")
            yield _Frame(f)

    t0 = time.perf_counter()
    n = 0
    with contextlib.ExitStack() as stack:
        send = stack.enter_context(tonemapped_video_writer(out, fps=fps, peak=args.peak)) if to_video else None
        for res in run_online(frames(), restorer, policy, align=args.align, tone_curve=args.tone_curve):
            if send is not None:
                send(res.output)
            else:
                write_frame_linear(out / f"frame_{res.index:06d}.{args.format}", res.output, args.format,
                                   args.peak, args.exr_precision)
            n += 1
            if not args.quiet:
                rate = n / max(1e-9, time.perf_counter() - t0)
                ref = "-" if res.reference_index is None else res.reference_index
                print(f"\rframe {res.index + 1}  reference {ref}  "
                      f"clipped {100 * res.features.clipped_fraction:.1f}%  {rate:.1f} fps",
                      end="", file=sys.stderr, flush=True)
    if not args.quiet:
        print(file=sys.stderr)
    print(f"{n} frames -> {out}")
    return 0
