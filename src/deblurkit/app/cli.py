"""``deblurkit deblur``: deblur photos from files, folders, globs or stdin.

Output naming (decided for every input before any work starts, so a conflict costs nothing):

* no ``-o``: ``<name>-deblurred.<ext>`` beside each input (stdin goes to stdout);
* ``-o FILE`` (a known image suffix): exactly one input, written there in that format;
* ``-o FOLDER``: every input keeps its name (and its path below a folder input); a name that
  would land on an input gets the ``-deblurred`` suffix;
* ``-o -``: stdout (one input).

An output never replaces an input, and never replaces an existing file unless ``--force``
(nor a folder, even then). Every output folder is checked for writability before any image is
processed. Every file is written atomically; a failed write (full disk, permissions) is one line
and, in a batch, the other files go on. ``--compare`` also writes ``<output stem>-compare.<ext>``
with the input and the result side by side.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from deblurkit.errors import DeblurkitError

if TYPE_CHECKING:  # numpy stays unimported until a command runs
    from deblurkit.color import ColorSpace

DEFAULT_SUFFIX = "-deblurred"
_GLOB_CHARS = set("*?[")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files, folders (recursive), globs (quote them), or '-' for stdin")
    parser.add_argument("-o", "--output", default=None,
                        help="output file (one input), folder, or '-' for stdout "
                             "(default: <name>-deblurred.<ext> beside each input)")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs (never inputs)")
    parser.add_argument("-m", "--model", default=None,
                        help="restorer name (see `deblurkit models`) or checkpoint file (default: the shipped default)")
    parser.add_argument("--tile", type=int, default=None, help="process in tiles of this size (bounds memory)")
    parser.add_argument("--backend", default="auto", help="runtime backend: auto, torch or onnx")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for inference")
    parser.add_argument("--ensemble", action=argparse.BooleanOptionalAction, default=None,
                        help="average a network's output over the four 90-degree rotations at every size (4x the "
                             "time); default: where measured to help (the default model: four rotations below "
                             "0.5 MP, two from 0.5 MP up), off elsewhere")
    parser.add_argument("--quality", type=int, default=95, help="JPEG/WEBP quality 1..100 (default 95)")
    parser.add_argument("--compare", action="store_true", help="also write a side-by-side before/after image")
    parser.add_argument("--suffix", default=DEFAULT_SUFFIX, help=f"name suffix for outputs (default {DEFAULT_SUFFIX})")
    parser.add_argument("--max-pixels", type=int, default=None,
                        help="refuse larger images (default: Pillow's decompression-bomb limit, ~89 MP; "
                             "may be set higher); inputs over 8 bytes per pixel + 64 MiB are refused unread")
    parser.add_argument("--input-space", choices=("srgb", "linear"), default="srgb",
                        help="how the input pixels are encoded: srgb (camera JPEG/PNG, default) or linear "
                             "(raw-derived images; encoded to sRGB for the model, decoded after)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summary lines")


@dataclass(frozen=True)
class Job:
    """One input and where its result goes (None means stdin / stdout)."""

    source: Path | None
    output: Path | None
    compare: Path | None = None

    @property
    def source_label(self) -> str:
        return "<stdin>" if self.source is None else str(self.source)

    @property
    def output_label(self) -> str:
        return "<stdout>" if self.output is None else str(self.output)


def expand_inputs(inputs: list[str]) -> list[tuple[Path | None, Path | None]]:
    """Resolve files, folders and globs to ``(file, base_folder)`` pairs (``(None, None)`` = stdin).

    Raises:
        DeblurkitError: an input matches nothing, or stdin is mixed with other inputs.
    """
    from deblurkit.io import IMAGE_SUFFIXES, iter_image_files

    suffixes = IMAGE_SUFFIXES | {".heic", ".heif"}
    out: list[tuple[Path | None, Path | None]] = []
    if "-" in inputs and len(inputs) > 1:
        raise DeblurkitError("'-' (stdin) cannot be combined with other inputs")
    for item in inputs:
        if item == "-":
            out.append((None, None))
            continue
        p = Path(item)
        if p.is_dir():
            files = [f for f in iter_image_files(p)] + sorted(
                f for f in p.rglob("*") if f.suffix.lower() in {".heic", ".heif"} and f.is_file())
            if not files:
                raise DeblurkitError(f"{p}: folder contains no images")
            out.extend((f, p) for f in files)
        elif p.is_file():
            out.append((p, None))
        elif _GLOB_CHARS & set(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            files = [m for m in matches if m.is_file() and m.suffix.lower() in suffixes]
            if not files:
                raise DeblurkitError(f"{item}: pattern matches no image files")
            out.extend((f, None) for f in files)
        else:
            raise DeblurkitError(f"{item}: no such file or folder")
    # the same file named twice (e.g. by a folder and a glob) is deblurred once
    seen: set[Path] = set()
    unique = []
    for f, base in out:
        key = f.resolve() if f is not None else None
        if key is not None and key in seen:
            continue
        if key is not None:
            seen.add(key)
        unique.append((f, base))
    return unique


def _looks_like_image_file(output: str) -> bool:
    """``-o`` names a file (not a folder) with an image suffix some program writes (``.gif``, ``.jxl``...)."""
    from PIL import Image

    p = Path(output)
    if output.endswith(("/", "\\")) or p.is_dir() or not p.suffix:
        return False
    ext = p.suffix.lower()
    return ext in Image.registered_extensions() or ext in {".avif", ".jxl", ".heic", ".heif"}


def _default_suffix(path: Path) -> str:
    from deblurkit.photo_io import SUFFIX_FORMATS, heif_available

    ext = path.suffix.lower()
    if ext not in SUFFIX_FORMATS or (SUFFIX_FORMATS[ext] == "HEIF" and not heif_available()):
        return ".png"
    return path.suffix


def plan_jobs(inputs: list[str], output: str | None, *, force: bool = False, compare: bool = False,
              suffix: str = DEFAULT_SUFFIX) -> list[Job]:
    """Decide every output path up front and check for conflicts.

    Raises:
        DeblurkitError: an output would overwrite an input, an existing file (without ``force``),
            or another output; or ``-o`` does not fit the inputs.
    """
    from deblurkit.photo_io import SUFFIX_FORMATS, format_for_suffix

    if not suffix:
        raise DeblurkitError("--suffix must not be empty (outputs would overwrite inputs)")
    if any(ch in suffix for ch in "/\\\0") or suffix in (".", ".."):
        raise DeblurkitError(f"--suffix {suffix!r}: must be part of a file name (no '/', '\\' or '..')")
    if output not in (None, "-") and _looks_like_image_file(output):
        format_for_suffix(Path(output).suffix)  # e.g. -o out.gif: say it cannot be written, not make a folder
    sources = expand_inputs(inputs)
    to_stdout = output == "-" or (output is None and sources == [(None, None)])
    out_is_file = output not in (None, "-") and Path(output).suffix.lower() in SUFFIX_FORMATS \
        and not Path(output).is_dir()
    if to_stdout and len(sources) != 1:
        raise DeblurkitError(f"-o - (stdout) takes exactly one input, got {len(sources)}")
    if out_is_file and len(sources) != 1:
        raise DeblurkitError(f"-o {output} is a file name but there are {len(sources)} inputs; give a folder")
    if to_stdout and compare:
        raise DeblurkitError("--compare cannot write to stdout; give -o FILE")
    if sources == [(None, None)] and output is not None and not to_stdout and not out_is_file:
        raise DeblurkitError("with stdin input, -o must be an image file name or '-'")

    if output not in (None, "-") and not out_is_file:
        # `deblurkit deblur shots/ -o shots/sharp/`: earlier results inside the output folder are not inputs
        out_root = Path(output).resolve()
        sources = [(src, base) for src, base in sources
                   if src is None or base is None or not src.resolve().is_relative_to(out_root)]
        if not sources:
            raise DeblurkitError(f"no inputs left: every image found is inside the output folder {output}")

    jobs: list[Job] = []
    for src, base in sources:
        dest: Path | None
        if to_stdout:
            dest = None
        elif out_is_file:
            dest = Path(output)  # type: ignore[arg-type]
        elif output is None:
            assert src is not None
            dest = src.with_name(src.stem + suffix + _default_suffix(src))
        else:
            assert src is not None
            rel = src.relative_to(base) if base is not None else Path(src.name)
            dest = Path(output) / rel.with_suffix(_default_suffix(src))
            if src.resolve() == dest.resolve():
                dest = dest.with_name(dest.stem + suffix + dest.suffix)
        cmp_path = dest.with_name(dest.stem + "-compare" + dest.suffix) if (compare and dest) else None
        jobs.append(Job(src, dest, cmp_path))

    input_set = {src.resolve() for src, _ in sources if src is not None}
    taken: dict[Path, Job] = {}
    for job in jobs:
        for path in (job.output, job.compare):
            if path is None:
                continue
            format_for_suffix(path.suffix)
            key = path.resolve()
            if key in input_set:
                raise DeblurkitError(f"{path}: output would overwrite an input; choose another -o or --suffix")
            if key in taken:
                raise DeblurkitError(f"{path}: two inputs would write the same output "
                                     f"({taken[key].source_label} and {job.source_label})")
            if path.is_dir():
                raise DeblurkitError(f"{path}: is a folder; an image cannot replace it (not even with --force)")
            if path.exists() and not force:
                raise DeblurkitError(f"{path}: already exists (use --force to overwrite)")
            taken[key] = job
    return jobs


@dataclass(frozen=True)
class Result:
    """What happened to one job."""

    job: Job
    width: int
    height: int
    bits: int
    seconds: float


def deblur_job(job: Job, restorer, *, quality: int = 95, max_pixels: int | None = None,
               stdin: BinaryIO | None = None, stdout: BinaryIO | None = None, progress=None,
               input_space: ColorSpace = "srgb") -> Result:
    """Read, deblur and write one job (atomically). ``stdin``/``stdout`` replace ``None`` paths."""
    from deblurkit.app.restore import restore_pixels
    from deblurkit.io import atomic_write, describe_os_error, write_error
    from deblurkit.photo_io import (
        DEFAULT_MAX_PIXELS,
        encode_photo,
        format_for_suffix,
        read_photo_file,
        read_photo_stream,
        writable_format,
    )
    from deblurkit.viz import side_by_side

    t0 = time.perf_counter()
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if job.source is None:
        photo = read_photo_stream(stdin or sys.stdin.buffer, name=job.source_label, max_pixels=limit)
    else:
        photo = read_photo_file(job.source, name=job.source_label, max_pixels=limit)
    result = photo.with_pixels(restore_pixels(photo.pixels, restorer, progress=progress,
                                                      input_space=input_space))
    fmt = writable_format(photo.format) if job.output is None else format_for_suffix(job.output.suffix)
    encoded = encode_photo(result, fmt, quality=quality)
    compare_bytes = None
    if job.compare is not None:
        both = photo.with_pixels(side_by_side(photo.pixels, result.pixels))
        compare_bytes = encode_photo(both, format_for_suffix(job.compare.suffix), quality=quality)
    if job.output is None:
        sink = stdout or sys.stdout.buffer
        try:
            sink.write(encoded)
            sink.flush()
        except OSError as exc:  # a closed pipe (`| head`), a full disk (`> /dev/full`)
            raise DeblurkitError(f"<stdout>: cannot write ({describe_os_error(exc)})") from None
    else:
        for path, payload in ((job.output, encoded), (job.compare, compare_bytes)):
            if path is None or payload is None:
                continue
            try:
                with atomic_write(path) as fh:
                    fh.write(payload)
            except OSError as exc:
                raise write_error(path, exc) from None
    return Result(job, photo.width, photo.height, photo.bits, time.perf_counter() - t0)


def deblur_files(inputs: list[str], output: str | None = None, *, model: str | None = None,
                 loader=None, force: bool = False, quality: int = 95, compare: bool = False,
                 suffix: str = DEFAULT_SUFFIX, max_pixels: int | None = None, quiet: bool = False,
                 stdin: BinaryIO | None = None, stdout: BinaryIO | None = None,
                 log=None, input_space: ColorSpace = "srgb") -> int:
    """The whole ``deblurkit deblur`` command as a function.

    Args:
        inputs: files, folders, globs or ``["-"]``.
        output: see the module docstring.
        model: restorer name or checkpoint path (None: the shipped default).
        loader: ``name -> restorer``; default :func:`deblurkit.app.restore.make_loader` ().
        force, quality, compare, suffix, max_pixels, quiet, input_space: as the command-line options.
        stdin, stdout: binary streams used for ``-`` (default: the process's).
        log: text stream for summary lines (default stdout, or stderr when images go to stdout).

    Returns:
        0 when every file was deblurred, 2 when some failed (each failure printed as one line).

    Raises:
        DeblurkitError: a planning error (nothing was written), or the only input failed.
    """
    from tqdm import tqdm

    from deblurkit.app.restore import default_restorer_name, make_loader
    from deblurkit.io import describe_os_error, ensure_writable_folder

    if not 1 <= quality <= 100:
        raise DeblurkitError(f"--quality must be in 1..100, got {quality}")
    if max_pixels is not None and max_pixels < 1:
        raise DeblurkitError(f"--max-pixels must be >= 1, got {max_pixels}")
    jobs = plan_jobs(inputs, output, force=force, compare=compare, suffix=suffix)
    # every output folder is writable before any image is processed
    for folder in sorted({p.parent for job in jobs for p in (job.output, job.compare) if p is not None}):
        ensure_writable_folder(folder)
    images_to_stdout = any(j.output is None for j in jobs)
    log = log or (sys.stderr if images_to_stdout else sys.stdout)
    restorer = (loader or make_loader())(model or default_restorer_name())

    failures = 0
    bar = tqdm(total=len(jobs), unit="img", disable=quiet or len(jobs) < 2 or None, file=sys.stderr,
               desc="deblur")
    for job in jobs:
        tile_bar: list = []

        def progress(done: int, total: int, _bars=tile_bar, _label=job.source_label) -> None:
            if quiet or total < 2:
                return
            if not _bars:
                _bars.append(tqdm(total=total, unit="tile", leave=False, file=sys.stderr, disable=None,
                                  desc=_label[-30:]))
            _bars[0].n = done
            _bars[0].refresh()

        try:
            res = deblur_job(job, restorer, quality=quality, max_pixels=max_pixels, stdin=stdin,
                             stdout=stdout, progress=progress, input_space=input_space)
        except (DeblurkitError, OSError) as exc:
            if isinstance(exc, OSError):  # anything the file system refused along the way: this file only
                exc = DeblurkitError(f"{job.source_label}: {describe_os_error(exc)}")
            if len(jobs) == 1:
                raise exc from None
            failures += 1
            tqdm.write(f"deblurkit: error: {exc}", file=sys.stderr)
        else:
            if not quiet:
                extra = f" (+ {job.compare})" if job.compare else ""
                tqdm.write(f"{job.source_label} -> {job.output_label}{extra}  {res.width}x{res.height}  "
                           f"{res.bits}-bit  {res.seconds:.2f} s", file=log)
        finally:
            for b in tile_bar:
                b.close()
        bar.update(1)
    bar.close()
    if failures:
        print(f"deblurkit: {failures} of {len(jobs)} files failed", file=sys.stderr)
        return 2
    return 0


def run(args: argparse.Namespace, *, loader=None) -> int:
    from deblurkit.app.restore import make_loader

    if args.threads is not None and args.threads < 1:
        raise DeblurkitError(f"--threads must be >= 1, got {args.threads}")
    if args.tile is not None and args.tile < 16:
        raise DeblurkitError(f"--tile must be >= 16, got {args.tile}")
    loader = loader or make_loader(backend=args.backend, device=args.device, threads=args.threads, tile=args.tile,
                                   self_ensemble=args.ensemble)
    return deblur_files(args.inputs, args.output, model=args.model, loader=loader, force=args.force,
                        quality=args.quality, compare=args.compare, suffix=args.suffix,
                        max_pixels=args.max_pixels, quiet=args.quiet, input_space=args.input_space)
