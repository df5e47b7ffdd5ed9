"""Evaluate restorers and baselines side by side on one dataset, with every setting recorded.

Datasets (:class:`PairSet`): paired folders (``blur/`` + ``sharp/``, e.g. written by
``deblurkit synth``), the GoPro layout (``{split}/{blur,sharp}``), RealBlur datalists, or pairs
synthesized on the fly from a preset and a seed (these carry the true kernel, so the non-blind
baselines can run).

Methods: ``identity``, ``unsharp``, ``wiener``, ``richardson-lucy`` (see
:mod:`deblurkit.eval.baselines`) and any name or checkpoint accepted by
:func:`deblurkit.infer.load_restorer`.

Outputs (when ``out_dir`` is given): ``per_image.csv``, ``summary.json``, ``results.md`` and
``figure.png`` (worst / median / best image of the ranking method, every method side by side).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deblurkit.errors import DeblurkitError
from deblurkit.eval.baselines import BASELINES, NonBlindDeconv, unsharp_mask_srgb
from deblurkit.eval.metrics import DEFAULT_SSIM, psnr, ssim

PROTOCOLS = ("standard", "realblur")


@dataclass
class EvalPair:
    """One evaluation item: float32 sRGB ``(H, W, 3)`` images in [0, 1], and the true kernel if known."""

    name: str
    blur: np.ndarray
    sharp: np.ndarray
    kernel: np.ndarray | None = None
    """``(k, k)`` PSF summing to 1 (synthesized uniform blur only)."""


@dataclass
class PairSet:
    """A dataset for :func:`evaluate`: ``len(ps)``, ``ps[i] -> EvalPair``, and its description."""

    length: int
    get: Callable[[int], EvalPair]
    description: dict[str, Any]
    has_kernels: bool = False
    blur_space: str = "linear"
    """Where the blur was applied (the non-blind baselines deconvolve there)."""

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> EvalPair:
        return self.get(index)


def _hwc(t) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().float().numpy().transpose(1, 2, 0))


def _torch_pairs(ds, description: dict[str, Any]) -> PairSet:
    def get(i: int) -> EvalPair:
        item = ds[i]
        return EvalPair(name=str(item["name"]), blur=_hwc(item["blur"]), sharp=_hwc(item["sharp"]))

    if len(ds) == 0:
        raise DeblurkitError(f"{description.get('root', 'dataset')}: no image pairs found")
    return PairSet(len(ds), get, {**description, "pairs": len(ds)})


def folder_pairs(root: str | os.PathLike[str], split: str | None = None) -> PairSet:
    """Pairs from ``root/[split/]blur`` + ``sharp`` (GoPro layout, or a folder from ``deblurkit synth``)."""
    from deblurkit.data.paired import PairedFolderDataset

    ds = PairedFolderDataset(root, split=split)
    return _torch_pairs(ds, {"kind": "gopro" if split else "paired-folder", "root": str(root), "split": split})


def realblur_pairs(root: str | os.PathLike[str], datalist: str | os.PathLike[str]) -> PairSet:
    """Pairs from a RealBlur datalist (lines ``gt_path blur_path`` relative to ``root``)."""
    from deblurkit.data.paired import RealBlurListDataset

    ds = RealBlurListDataset(root, datalist)
    return _torch_pairs(ds, {"kind": "realblur-datalist", "root": str(root), "datalist": str(datalist)})


def synth_pairs(preset: str, *, seed: int, count: int, size: int = 256, source: str = "samples") -> PairSet:
    """``count`` pairs synthesized on the fly (item i depends only on (seed, i)), with true kernels."""
    from deblurkit.synth.dataset import SynthPairDataset

    if count < 1:
        raise DeblurkitError(f"--count must be >= 1, got {count}")
    ds = SynthPairDataset(source, preset, size=size, length=count, seed=seed)

    def get(i: int) -> EvalPair:
        pair = ds.sample(i)
        kernel = None if pair.kernel is None else pair.kernel[0, 0].double().numpy()
        return EvalPair(name=f"{preset}-s{seed}-{i:04d}", blur=_hwc(pair.blur[0]), sharp=_hwc(pair.sharp[0]),
                        kernel=kernel)

    desc = {"kind": "synth", "preset": preset, "seed": seed, "count": count, "size": size, "source": source}
    return PairSet(count, get, desc, has_kernels=True, blur_space=ds.config.blur_space)


@dataclass
class _Method:
    name: str
    run: Callable[[EvalPair], np.ndarray]
    needs_kernel: bool
    settings: dict[str, Any]


def make_method(name: str, pairs: PairSet, *, device: str = "cpu", tile: int | None = None) -> _Method:
    """A method by name: a baseline or anything :func:`deblurkit.infer.load_restorer` accepts."""
    if name in BASELINES:
        needs_kernel, settings = BASELINES[name]
        if needs_kernel and not pairs.has_kernels:
            raise DeblurkitError(f"method {name!r} needs the true blur kernel, which only synthesized data "
                                 f"provides (use --preset NAME)")
        settings = {**settings, **({"blur_space": pairs.blur_space} if needs_kernel else {})}
        if name == "identity":
            return _Method(name, lambda p: p.blur, False, settings)
        if name == "unsharp":
            return _Method(name, lambda p: unsharp_mask_srgb(p.blur, sigma=settings["sigma"], amount=settings["amount"]),
                           False, settings)
        deconv = NonBlindDeconv(name, nsr=settings.get("nsr", 1e-2), iterations=settings.get("iterations", 30))
        return _Method(name, lambda p: deconv(p.blur, p.kernel, blur_space=pairs.blur_space), True, settings)

    from deblurkit.infer import load_restorer

    restorer = load_restorer(name, device=device, tile=tile)
    settings = {"restorer": getattr(restorer, "name", name), "description": getattr(restorer, "description", ""),
                "device": device, "tile": tile}
    return _Method(name, lambda p: np.asarray(restorer(p.blur), dtype=np.float32), False, settings)


@dataclass
class EvalReport:
    """Rows (one per image and method) and the summary (means and every setting)."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


def _score(output: np.ndarray, sharp: np.ndarray, protocol: str) -> dict[str, Any]:
    output = np.clip(np.asarray(output, dtype=np.float32), 0.0, 1.0)
    if protocol == "realblur":
        from deblurkit.eval.realblur import realblur_psnr_ssim

        s = realblur_psnr_ssim(output, sharp)
        return {"psnr": s.psnr, "ssim": s.ssim, "aligned": s.aligned}
    return {"psnr": psnr(output, sharp, data_range=1.0), "ssim": ssim(output, sharp, data_range=1.0)}


def metric_settings(protocol: str) -> dict[str, Any]:
    """Every metric setting, as written into summary.json."""
    if protocol == "realblur":
        from deblurkit.eval.realblur import PROTOCOL_SETTINGS

        return {"protocol": "realblur", **PROTOCOL_SETTINGS, "output": "clipped to [0,1], quantised to 8 bits"}
    return {"protocol": "standard", "data_range": 1.0, "color": "RGB (no Y-channel conversion)", "crop_border": 0,
            "output": "clipped to [0,1], float (not quantised)", "psnr": "10*log10(data_range^2 / MSE), float64",
            "ssim": DEFAULT_SSIM.as_dict()}


def evaluate(
    methods: Sequence[str],
    pairs: PairSet,
    *,
    protocol: str = "standard",
    out_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    device: str = "cpu",
    tile: int | None = None,
    progress: bool = False,
    figure: bool = True,
) -> EvalReport:
    """Run each method on each pair and score it.

    Args:
        methods: method names (baselines or restorer specs), scored in this order.
        pairs: the dataset.
        protocol: ``standard`` (PSNR/SSIM on RGB, data range 1) or ``realblur`` (ECC-aligned, masked).
        out_dir: where to write per_image.csv, summary.json, results.md, figure.png (None: nothing).
        limit: score only the first ``limit`` pairs.
        device: device for network restorers.
        tile: tile size for network restorers (None: whole image).
        progress: print one line per image.
        figure: write figure.png (the methods are re-run on the worst/median/best images, so
            memory does not grow with the dataset).

    Returns:
        An :class:`EvalReport`.

    Raises:
        DeblurkitError: no methods, an unknown method, an empty dataset, or a pair whose blur and
            sharp images differ in size (named).
    """
    if protocol not in PROTOCOLS:
        from deblurkit.errors import UnknownNameError

        raise UnknownNameError("protocol", protocol, PROTOCOLS)
    if not methods:
        raise DeblurkitError("no methods to evaluate")
    if len(set(methods)) != len(methods):
        raise DeblurkitError(f"a method is listed twice: {', '.join(methods)}")
    n = len(pairs) if limit is None else min(limit, len(pairs))
    if n == 0:
        raise DeblurkitError("the dataset is empty")
    runners = [make_method(m, pairs, device=device, tile=tile) for m in methods]  # fail before any work

    rows: list[dict[str, Any]] = []
    index_of: dict[str, int] = {}
    for i in range(n):
        pair = pairs[i]
        if pair.blur.shape != pair.sharp.shape:
            raise DeblurkitError(f"{pair.name}: blur {pair.blur.shape[:2]} and sharp {pair.sharp.shape[:2]} differ in size")
        index_of[pair.name] = i
        for m in runners:
            row: dict[str, Any] = {"image": pair.name, "method": m.name}
            if m.needs_kernel and pair.kernel is None:
                row.update(psnr=math.nan, ssim=math.nan, seconds=math.nan,
                           note="skipped: spatially varying blur has no single kernel")
                rows.append(row)
                continue
            t0 = time.perf_counter()
            out = m.run(pair)
            row["seconds"] = time.perf_counter() - t0
            if out.shape != pair.sharp.shape:
                raise DeblurkitError(f"{pair.name}: method {m.name} returned shape {out.shape}, expected {pair.sharp.shape}")
            row.update(_score(out, pair.sharp, protocol))
            rows.append(row)
        if progress:
            scores = ", ".join(f"{r['method']} {r['psnr']:.2f}" for r in rows[-len(runners):])
            print(f"[{i + 1}/{n}] {pair.name}: {scores}", flush=True)

    summary = _summarise(rows, methods, runners, pairs, protocol, n)
    report = EvalReport(rows, summary)
    if out_dir is not None:
        outputs: dict[str, dict[str, np.ndarray]] = {}
        if figure:
            for _, name in pick_examples(report):
                pair = pairs[index_of[name]]
                outputs[name] = {"blur": pair.blur, "sharp": pair.sharp}
                for m in runners:
                    if not (m.needs_kernel and pair.kernel is None):
                        outputs[name][m.name] = np.clip(m.run(pair), 0.0, 1.0)
        report.files = write_report(report, Path(out_dir), outputs)
    return report


def _summarise(rows, methods, runners, pairs, protocol, n) -> dict[str, Any]:
    per_method: dict[str, Any] = {}
    scored_by: dict[str, set[str]] = {m: {r["image"] for r in rows if r["method"] == m and not math.isnan(r["psnr"])}
                                      for m in methods}
    common = set.intersection(*scored_by.values()) if scored_by else set()
    for m in methods:
        mine = [r for r in rows if r["method"] == m and not math.isnan(r["psnr"])]
        psnrs = [r["psnr"] for r in mine]
        finite = [p for p in psnrs if math.isfinite(p)]
        per_method[m] = {
            "psnr": float(np.mean(finite)) if finite else math.nan,
            "ssim": float(np.mean([r["ssim"] for r in mine])) if mine else math.nan,
            "scored": len(mine), "skipped": n - len(mine),
            "seconds_per_image": float(np.mean([r["seconds"] for r in mine])) if mine else math.nan,
        }
        both = [r for r in mine if r["image"] in common and math.isfinite(r["psnr"])]
        per_method[m]["psnr_common"] = float(np.mean([r["psnr"] for r in both])) if both else math.nan
        per_method[m]["ssim_common"] = float(np.mean([r["ssim"] for r in both])) if both else math.nan
        if protocol == "realblur":
            per_method[m]["ecc_failures"] = sum(1 for r in mine if not r.get("aligned", True))
    return {
        "dataset": pairs.description, "images": n, "protocol": protocol, "metrics": metric_settings(protocol),
        "methods": {m.name: m.settings for m in runners}, "results": per_method,
        "ranking_method": _ranking_method(methods), "common_images": len(common),
    }


def _ranking_method(methods: Sequence[str]) -> str:
    return next((m for m in methods if m != "identity"), methods[0])


def _fmt(v: float, digits: int) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def markdown_table(summary: dict[str, Any]) -> str:
    """A Markdown table of mean PSNR/SSIM per method, with the dataset and protocol in a caption."""
    ds = summary["dataset"]
    caption = (f"Dataset: {', '.join(f'{k}={v}' for k, v in ds.items() if v is not None)}; "
               f"{summary['images']} images; protocol: {summary['protocol']}.")
    lines = [caption, "", "| method | PSNR (dB) | SSIM | images | s/image |", "|---|---:|---:|---:|---:|"]
    partial = any(r["skipped"] for r in summary["results"].values())
    if partial:
        lines[2] += f" PSNR / SSIM on the {summary['common_images']} images all methods scored |"
        lines[3] += "---:|"
    for name, r in summary["results"].items():
        line = (f"| {name} | {_fmt(r['psnr'], 2)} | {_fmt(r['ssim'], 4)} | {r['scored']} | "
                f"{_fmt(r['seconds_per_image'], 3)} |")
        if partial:
            line += f" {_fmt(r['psnr_common'], 2)} / {_fmt(r['ssim_common'], 4)} |"
        lines.append(line)
    if partial:
        lines.append("")
        lines.append("Non-blind methods skip images with spatially varying blur (no single true kernel).")
    return "\n".join(lines) + "\n"


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return _json_safe(obj.item())
    return obj


def write_report(report: EvalReport, out_dir: Path, outputs: dict[str, dict[str, np.ndarray]]) -> dict[str, Path]:
    """Write per_image.csv, summary.json, results.md and (with outputs) figure.png, atomically."""
    from deblurkit.io import atomic_write

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"csv": out_dir / "per_image.csv", "json": out_dir / "summary.json", "md": out_dir / "results.md"}
    fields = ["image", "method", "psnr", "ssim", "seconds"]
    if any("aligned" in r for r in report.rows):
        fields.append("aligned")
    fields.append("note")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for r in report.rows:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) and k != "aligned" else v) for k, v in r.items()})
    with atomic_write(files["csv"], "w") as fh:
        fh.write(buf.getvalue())
    with atomic_write(files["json"], "w") as fh:
        json.dump(_json_safe(report.summary), fh, indent=2)
        fh.write("\n")
    with atomic_write(files["md"], "w") as fh:
        fh.write(markdown_table(report.summary))
    if outputs:
        fig = comparison_figure(report, outputs)
        if fig is not None:
            from deblurkit.io import save_png

            files["figure"] = out_dir / "figure.png"
            save_png(files["figure"], fig)
    return files


def pick_examples(report: EvalReport) -> list[tuple[str, str]]:
    """``[("worst", image), ("median", image), ("best", image)]`` by the ranking method's PSNR."""
    method = report.summary["ranking_method"]
    scored = sorted(((r["psnr"], r["image"]) for r in report.rows
                     if r["method"] == method and not math.isnan(r["psnr"])), key=lambda t: t[0])
    if not scored:
        return []
    return [("worst", scored[0][1]), ("median", scored[len(scored) // 2][1]), ("best", scored[-1][1])]


def comparison_figure(report: EvalReport, outputs: dict[str, dict[str, np.ndarray]], *, tile: int = 192) -> np.ndarray | None:
    """Rows worst/median/best; columns blurry input, each method (with its PSNR), sharp target."""
    import cv2

    from deblurkit.io import float_to_uint

    examples = pick_examples(report)
    if not examples:
        return None
    methods = list(report.summary["results"])
    columns = ["blur", *methods, "sharp"]
    score = {(r["image"], r["method"]): r["psnr"] for r in report.rows}
    label_h = 18
    rows = []
    for label, image in examples:
        cells = []
        for col in columns:
            img = outputs.get(image, {}).get(col)
            cell = np.zeros((tile + label_h, tile, 3), np.uint8)
            if img is not None:
                h, w = img.shape[:2]
                s = tile / max(h, w)
                small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
                cell[label_h:label_h + small.shape[0], :small.shape[1]] = float_to_uint(small[..., :3], 8)
            text = col if col in ("blur", "sharp") else f"{col} {_fmt(score.get((image, col), math.nan), 2)}"
            if col == "blur":
                text = f"{label}: {image}"[:30]
            cv2.putText(cell, text, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
            cells.append(cell)
        rows.append(np.concatenate(cells, axis=1))
    return np.concatenate(rows, axis=0).astype(np.float32) / 255.0
