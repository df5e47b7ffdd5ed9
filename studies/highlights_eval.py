"""Clipped-highlight recovery on held-out panoramas: baselines, reference rules, network, policy.

Synthesises clips from the held-out HDR panoramas (``TEST_PANORAMAS``) with a steady and an
oscillating auto-exposure, restores every frame online, and scores PSNR inside the clipped
regions (8-bit code >= 250 in any channel) in linear and mu-law (mu = 5000) space, peak 64x the
clipping level. Frames without clipped pixels are skipped; the table gives the mean over frames.

    python -m studies.highlights_eval                      # baselines + rules (true alignment)
    python -m studies.highlights_eval --align homography   # estimated alignment
    python -m studies.highlights_eval --checkpoint runs/highlights/highlight-net.safetensors  # + network rows
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from deblurkit.highlights.align import clipped_mask_srgb8
from deblurkit.highlights.metrics import HDR_PEAK, psnr_linear_masked, psnr_mulaw_masked
from deblurkit.highlights.online import restore_copy, restore_none, rule_policy, run_online
from deblurkit.highlights.video import (
    TEST_PANORAMAS,
    VideoConfig,
    VideoFrame,
    generate_video,
    load_panorama_linear,
    with_auto_exposure,
)
from studies.heldout import write_results

ROOT = Path(__file__).resolve().parents[1]
BASE_METHODS = ["none", "copy-previous", "copy-first", "copy-interval", "copy-oracle"]


def heldout_clips(hdr: str, panoramas: list[str], presets: list[str], clips: int, frames: int,
                  seed: int) -> Iterator[tuple[str, str, int, list[VideoFrame]]]:
    """The evaluation clips, ``(panorama, preset, clip number, frames)``, each from its own seeded RNG."""
    for pi, pano_name in enumerate(panoramas):
        pano = load_panorama_linear(Path(hdr) / f"{pano_name}.hdr")
        for preset in presets:
            cfg = with_auto_exposure(VideoConfig(frames=frames), preset)
            for c in range(clips):
                rng = np.random.default_rng([seed, pi, c, presets.index(preset)])
                yield pano_name, preset, c, list(generate_video(pano, cfg, rng))


def build_methods(names: list[str], checkpoint: str | None, policy_path: str | None) -> dict:
    """name -> (restorer, policy)."""
    restorers = {"none": restore_none, "copy": restore_copy}
    if checkpoint:
        from deblurkit.highlights.net import load_highlight_restorer

        restorers["net"] = load_highlight_restorer(checkpoint)
        restorers["net-single"] = load_highlight_restorer(checkpoint, use_reference=False)
        restorers["netcopy"] = load_highlight_restorer(checkpoint, copy_trusted=True)
    policies = {"previous": rule_policy("previous"), "first": rule_policy("first"),
                "interval": rule_policy("interval", interval=8), "oracle": "oracle"}
    if policy_path:
        from deblurkit.highlights.policy import load_policy

        policies["learned"] = load_policy(policy_path)
    out = {}
    for name in names:
        if name in ("none", "net-single"):
            if name in restorers:
                out[name] = (restorers[name], policies["previous"])
            continue
        rest, _, pol = name.partition("-")
        if rest in restorers and pol in policies:
            out[name] = (restorers[rest], policies[pol])
    return out


def score_rows(scores: dict, presets: list[str], names: list[str]) -> tuple[dict, list[str]]:
    """Mean mu-law / linear PSNR per method and preset from ``scores[preset][name]`` frame lists:
    the JSON table and its markdown table (header, then ``| name | mu-law | linear | ... | frames |``)."""
    table = {}
    lines = ["| method | " + " | ".join(f"{p} mu-law | {p} linear" for p in presets) + " | frames |",
             "|---|" + "---|---|" * len(presets) + "---|"]
    for m in names:
        row, cells = {}, []
        for p in presets:
            mu = float(np.mean(scores[p][m]["mulaw"])) if scores[p][m]["mulaw"] else float("nan")
            li = float(np.mean(scores[p][m]["linear"])) if scores[p][m]["linear"] else float("nan")
            row[p] = {"mulaw_db": round(mu, 3), "linear_db": round(li, 3), "frames": len(scores[p][m]["mulaw"])}
            cells += [f"{mu:.2f}", f"{li:.2f}"]
        table[m] = row
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {sum(r['frames'] for r in row.values())} |")
    return table, lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hdr", default=str(ROOT.parent / "shared/data/hdr"))
    ap.add_argument("--panoramas", nargs="*", default=list(TEST_PANORAMAS))
    ap.add_argument("--presets", nargs="*", default=["steady", "oscillating"])
    ap.add_argument("--clips", type=int, default=2, help="clips per panorama and preset")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--align", default="true", choices=["true", "homography", "flow"])
    ap.add_argument("--methods", nargs="*", default=None)
    ap.add_argument("--checkpoint", default=None,
                    help="trained highlight network (adds net-* rows; netcopy-* copies trusted reference pixels)")
    ap.add_argument("--policy", default=None, help="learned reference policy (adds *-learned rows)")
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the network rows")
    ap.add_argument("--out", default=str(ROOT / "studies/results/highlights_eval"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    names = args.methods or (BASE_METHODS + (["net-single", "net-previous", "net-interval", "net-oracle"]
                                              if args.checkpoint else [])
                             + (["copy-learned"] + (["net-learned"] if args.checkpoint else [])
                                if args.policy else []))
    methods = build_methods(names, args.checkpoint, args.policy)
    scores: dict[str, dict[str, dict[str, list[float]]]] = {
        p: {m: {"mulaw": [], "linear": []} for m in methods} for p in args.presets}
    timing: dict[str, float] = {m: 0.0 for m in methods}
    by_clip: dict[str, dict[str, list[float]]] = {}  # "panorama preset" -> method -> mu-law per frame
    for pano_name, preset, c, frames in heldout_clips(args.hdr, args.panoramas, args.presets, args.clips,
                                                       args.frames, args.seed):
        for m, (restorer, policy) in methods.items():
            t0 = time.perf_counter()
            for res, fr in zip(run_online(frames, restorer, policy, align=args.align), frames):
                mask = clipped_mask_srgb8(fr.srgb8)
                if mask.any():
                    truth = fr.truth_linear
                    scores[preset][m]["mulaw"].append(psnr_mulaw_masked(res.output, truth, mask, peak=HDR_PEAK))
                    scores[preset][m]["linear"].append(psnr_linear_masked(res.output, truth, mask, peak=HDR_PEAK))
                    by_clip.setdefault(f"{pano_name} {preset}", {}).setdefault(m, []).append(
                        scores[preset][m]["mulaw"][-1])
            timing[m] += time.perf_counter() - t0
        print(f"{pano_name} {preset} clip {c} done", flush=True)
    results = {"settings": {k: v for k, v in vars(args).items()}, "peak": HDR_PEAK, "table": {}}
    lines = [f"# Clipped-highlight recovery, held-out panoramas {', '.join(args.panoramas)}",
             "", f"`python -m studies.highlights_eval {' '.join(argv if argv is not None else sys.argv[1:])}`",
             (f"({args.clips} clips x {args.frames} frames per panorama and exposure preset, 256x144, "
             f"alignment `{args.align}`; PSNR in dB inside the clipped regions, peak {HDR_PEAK:g}x clipping)"), ""]
    table, rows = score_rows(scores, args.presets, list(methods))
    results["table"].update(table)
    lines += rows
    results["seconds"] = {m: round(t, 2) for m, t in timing.items()}
    results["mulaw_by_panorama"] = {k: {m: round(float(np.mean(v)), 3) for m, v in row.items()}
                                    for k, row in by_clip.items()}
    lines += ["", "mu-law PSNR (dB) per held-out panorama and preset:", "",
              "| method | " + " | ".join(by_clip) + " |", "|---|" + "---|" * len(by_clip)]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(f"{results['mulaw_by_panorama'][k].get(m, float('nan')):.2f}"
                                              for k in by_clip) + " |")
    write_results(args.out, results, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
