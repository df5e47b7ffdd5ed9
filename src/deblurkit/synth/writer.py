"""Write synthetic pairs to a folder: ``blur/NNNNNN.png``, ``sharp/NNNNNN.png``, ``manifest.jsonl``.

Resumable and reproducible: item ``i`` depends only on ``(seed, i)``; PNGs are written
atomically; the manifest (sorted by index, one JSON object per line) is rewritten atomically
from time to time, so an interrupted run leaves only complete files. On restart, items whose
two PNGs and manifest line exist are skipped. ``run.json`` records the options; restarting with
different options in the same folder is refused.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deblurkit.errors import DeblurkitError
from deblurkit.io import atomic_write

_STATE: dict[str, Any] = {}


@dataclass
class WriteSummary:
    """What :func:`write_pairs` did."""

    written: int
    """Pairs computed in this run."""
    reused: int
    """Pairs already present (resumed run)."""
    skipped_files: list[str]
    """Unreadable source files skipped."""
    out_dir: Path


def _name(index: int) -> str:
    return f"{index:06d}.png"


def _config(preset: str, psf_dir: str | None):
    """The preset's config, blurring with the measured PSFs of ``psf_dir`` when given."""
    from dataclasses import replace

    from deblurkit.synth.presets import get_preset

    config = get_preset(preset)
    return replace(config, trajectory="recorded", psf_dir=psf_dir) if psf_dir else config


def _init_worker(source_spec: str, preset: str, size: int, seed: int, out_dir: str, threads: int = 1,
                 psf_dir: str | None = None) -> None:
    import cv2
    import torch

    from deblurkit.synth.sources import make_source

    # One thread everywhere: results then cannot depend on thread counts (e.g. FFT summation
    # order), so any --workers gives the same bytes. write_pairs restores the caller's setting.
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    _STATE.update(
        source=make_source(source_spec), config=_config(preset, psf_dir), size=size, seed=seed,
        out=Path(out_dir),
    )


def _make_one(index: int) -> dict[str, Any]:
    from deblurkit.io import save_png
    from deblurkit.synth.dataset import synthesize_item

    st = _STATE
    pair, info = synthesize_item(st["source"], st["config"], st["size"], st["seed"], index)
    name = _name(index)
    save_png(st["out"] / "sharp" / name, pair.sharp[0].permute(1, 2, 0).numpy())
    save_png(st["out"] / "blur" / name, pair.blur[0].permute(1, 2, 0).numpy())
    # Files this process found unreadable since its last report (header or decode failures).
    skipped = list(getattr(st["source"], "skipped", []))
    new_skips, st["reported"] = skipped[st.get("reported", 0) :], len(skipped)
    return {
        "index": index,
        "blur": f"blur/{name}",
        "sharp": f"sharp/{name}",
        "crop": info,
        "params": pair.params[0],
        "_skipped": new_skips,
    }


def _read_manifest(path: Path) -> dict[int, dict[str, Any]]:
    records: dict[int, dict[str, Any]] = {}
    if not path.is_file():
        return records
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
            records[int(rec["index"])] = rec
        except (ValueError, KeyError, TypeError):
            continue  # a damaged line: that item is recomputed
    return records


def _write_manifest(path: Path, records: dict[int, dict[str, Any]]) -> None:
    with atomic_write(path, "w") as fh:
        for i in sorted(records):
            fh.write(json.dumps(records[i], sort_keys=True, separators=(",", ":")) + "\n")


def write_pairs(
    source_spec: str,
    out_dir: str | os.PathLike[str],
    *,
    preset: str = "realistic",
    count: int = 100,
    size: int = 256,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    psf_dir: str | os.PathLike[str] | None = None,
) -> WriteSummary:
    """Synthesize ``count`` pairs into ``out_dir`` (resuming if it holds a partial run).

    Args:
        source_spec: folder of sharp images, ``"samples"`` or ``"dead-leaves"``.
        out_dir: output folder.
        preset: preset name (see :data:`deblurkit.synth.presets.PRESETS`).
        count: total number of pairs wanted.
        size: output crop size.
        seed: base seed.
        workers: processes (results do not depend on it).
        progress: show a tqdm progress bar.
        psf_dir: folder of measured PSFs to blur with instead of the preset's synthetic shake
            (``trajectory="recorded"``; docs/synthesis.md); the preset's other stages are kept.

    Raises:
        DeblurkitError: unknown preset, unusable source or PSF folder, bad sizes, or ``out_dir``
            holding a run made with different options.
    """
    from deblurkit.synth.sources import ImageFolderSource, make_source

    if psf_dir is not None:
        from deblurkit.synth.blur import load_psf_bank

        psf_dir = str(Path(psf_dir).resolve())
        try:
            load_psf_bank(psf_dir)  # one clear line now rather than in a worker
        except ValueError as err:
            raise DeblurkitError(f"--psf-dir: {err}") from None
    config = _config(preset, psf_dir)
    if count < 0:
        raise DeblurkitError(f"--count must be >= 0, got {count}")
    if size < 16 or (config.camera_pipeline and size % 2):
        raise DeblurkitError(f"--size must be an even number >= 16, got {size}")
    if workers < 1:
        raise DeblurkitError(f"--workers must be >= 1, got {workers}")
    if seed < 0:
        raise DeblurkitError(f"--seed must be >= 0, got {seed}")
    source = make_source(source_spec)
    # Fail early (one line) when no image can give a crop of this size.
    if isinstance(source, ImageFolderSource) and max(min(hw) for hw in source.sizes) < size + 2 * config.trim:
        biggest = max(min(hw) for hw in source.sizes)
        raise DeblurkitError(
            f"crop size {size + 2 * config.trim} (size {size} + 2x{config.trim} trim) is larger than every image in "
            f"{source_spec} (largest short side: {biggest} px)"
        )
    if not isinstance(source, ImageFolderSource):
        import numpy as np

        source.random_crop(size + 2 * config.trim, np.random.default_rng(0))  # raises if impossible
    skipped = list(getattr(source, "skipped", []))

    from deblurkit.io import ensure_writable_folder

    out = ensure_writable_folder(out_dir, label="--out")
    run_info = {"source": str(source_spec), "preset": preset, "size": size, "seed": seed, "format": 1}
    if psf_dir is not None:  # absent otherwise, so runs made before this option still resume
        run_info["psf_dir"] = psf_dir
    run_path = out / "run.json"
    if run_path.is_file():
        try:
            old = json.loads(run_path.read_text())
        except ValueError:
            old = None
        if old != run_info:
            raise DeblurkitError(f"{out} holds a run made with other options ({old}); use another --out")
    else:
        with atomic_write(run_path, "w") as fh:
            fh.write(json.dumps(run_info, sort_keys=True) + "\n")

    manifest = out / "manifest.jsonl"
    records = {
        i: r
        for i, r in _read_manifest(manifest).items()
        if i < count and (out / "blur" / _name(i)).is_file() and (out / "sharp" / _name(i)).is_file()
    }
    reused = len(records)
    todo = [i for i in range(count) if i not in records]

    from tqdm import tqdm

    bar = tqdm(total=count, initial=reused, unit="pair", disable=not progress, dynamic_ncols=True)
    init_args = (
        str(source_spec),
        preset,
        size,
        seed,
        str(out),
        1,
        psf_dir,
    )
    import cv2
    import torch

    prev_threads = (torch.get_num_threads(), cv2.getNumThreads())
    last_flush = time.monotonic()
    try:
        if workers == 1:
            _init_worker(*init_args)
            results = map(_make_one, todo)
            pool = None
        else:
            import multiprocessing as mp

            pool = mp.get_context("fork").Pool(workers, initializer=_init_worker, initargs=init_args)
            results = pool.imap(_make_one, todo, chunksize=1)
        for rec in results:
            skipped += [f for f in rec.pop("_skipped") if f not in skipped]
            records[rec["index"]] = rec
            bar.update(1)
            if time.monotonic() - last_flush > 2.0:
                _write_manifest(manifest, records)
                last_flush = time.monotonic()
        if pool is not None:
            pool.close()
            pool.join()
    finally:
        bar.close()
        if "pool" in locals() and pool is not None:
            pool.terminate()
        _write_manifest(manifest, records)
        _STATE.clear()
        torch.set_num_threads(prev_threads[0])
        cv2.setNumThreads(prev_threads[1])
    return WriteSummary(written=len(todo), reused=reused, skipped_files=skipped, out_dir=out)
