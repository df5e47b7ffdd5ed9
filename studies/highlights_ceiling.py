"""How much can one past reference frame give? The best past frame per frame, chosen with the truth.

For every frame with clipped pixels of the held-out clips of ``highlights_eval`` (same seeds, same
frames), every earlier frame is tried as the reference (true alignment) and the one giving the
best mu-law PSNR inside the clipped region is kept. That is a bound for any one-reference method
on these clips (it keeps the whole clip, so it is neither online nor constant in memory), to set
against the single-frame network: it says whether "reference-based >= 3 dB over single-frame" is
reachable at all with one reference. With ``--checkpoint`` a second bound covers any number of
references: the truth wherever some earlier frame saw the pixel unclipped (and aligned), elsewhere
the better of the network with no reference and with its best past frame. It also counts the clipped pixels that any earlier frame saw
unclipped (and aligned): only those can be copied; the rest must be hallucinated in every method.

    python -m studies.highlights_ceiling --clips 1 --frames 32 --out studies/results/highlights_ceiling
    python -m studies.highlights_ceiling --clips 1 --frames 32 --checkpoint runs/highlights/highlight-net.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from deblurkit.highlights.align import clipped_mask_srgb8
from deblurkit.highlights.camera import linearize_srgb8
from deblurkit.highlights.metrics import HDR_PEAK, psnr_linear_masked, psnr_mulaw_masked
from deblurkit.highlights.online import make_reference, prepare_inputs, restore_copy, restore_none
from deblurkit.highlights.video import TEST_PANORAMAS
from studies.heldout import write_results
from studies.highlights_eval import heldout_clips, score_rows

ROOT = Path(__file__).resolve().parents[1]
EVERY_PAST_FRAME = "network, best of the above + truth where any past frame saw it"
"""Row of the bound for any number of references: every pixel that some past frame saw unclipped
is exact, the rest is the better of the network's outputs with no reference and with its best
past frame."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hdr", default=str(ROOT.parent / "shared/data/hdr"))
    ap.add_argument("--panoramas", nargs="*", default=list(TEST_PANORAMAS))
    ap.add_argument("--presets", nargs="*", default=["steady", "oscillating"])
    ap.add_argument("--clips", type=int, default=1)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--checkpoint", default=None, help="also the network with its best past reference")
    ap.add_argument("--seed", type=int, default=1000, help="as highlights_eval, for the same clips")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "studies/results/highlights_ceiling"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    restorers = {"none": (restore_none, False), "copy, best past frame": (restore_copy, True)}
    if args.checkpoint:
        from deblurkit.highlights.net import load_highlight_restorer

        restorers["network, no reference"] = (load_highlight_restorer(args.checkpoint, use_reference=False), False)
        restorers["network, best past frame"] = (load_highlight_restorer(args.checkpoint), True)
    rows_scored = list(restorers) + ([EVERY_PAST_FRAME] if args.checkpoint else [])
    scores = {p: {m: {"mulaw": [], "linear": []} for m in rows_scored} for p in args.presets}
    seen: dict[str, list[float]] = {p: [] for p in args.presets}  # per frame, % of clipped pixels seen unclipped
    for pano_name, preset, c, frames in heldout_clips(args.hdr, args.panoramas, args.presets, args.clips,
                                                       args.frames, args.seed):
        lins = [linearize_srgb8(fr.srgb8, "srgb") for fr in frames]
        refs = [make_reference(fr.index, fr.srgb8, "srgb", fr.rotation, lin) for fr, lin in zip(frames, lins)]
        for i, fr in enumerate(frames):
            mask = clipped_mask_srgb8(fr.srgb8)
            if not mask.any():
                continue
            truth = fr.truth_linear
            seen_any = np.zeros_like(mask)
            for ref in refs[:i]:
                inputs, _ = prepare_inputs(fr.srgb8, lins[i], ref, align="true", rotation=fr.rotation, k=fr.k,
                                           index=i)
                seen_any |= mask & ~inputs.reference_clipped & (inputs.confidence > 0.5)
            seen[preset].append(100.0 * float(seen_any.sum()) / float(mask.sum()))
            best_out: dict[str, np.ndarray] = {}
            for name, (restorer, with_ref) in restorers.items():
                best: tuple[float, float] | None = None
                for ref in (refs[:i] if with_ref and i > 0 else [None]):
                    inputs, _ = prepare_inputs(fr.srgb8, lins[i], ref, align="true", rotation=fr.rotation,
                                               k=fr.k, index=i)
                    out = restorer(inputs)
                    mu = psnr_mulaw_masked(out, truth, mask, peak=HDR_PEAK)
                    if best is None or mu > best[0]:
                        best = (mu, psnr_linear_masked(out, truth, mask, peak=HDR_PEAK))
                        best_out[name] = out
                assert best is not None
                scores[preset][name]["mulaw"].append(best[0])
                scores[preset][name]["linear"].append(best[1])
            if args.checkpoint:
                # Every past frame used perfectly: the truth wherever one of them saw the pixel
                # unclipped and aligned, elsewhere the network with no reference or its best past
                # frame, whichever is better.
                bound: tuple[float, float] | None = None
                for name in ("network, no reference", "network, best past frame"):
                    out = best_out[name].copy()
                    out[seen_any] = truth[seen_any]
                    mu = psnr_mulaw_masked(out, truth, mask, peak=HDR_PEAK)
                    if bound is None or mu > bound[0]:
                        bound = (mu, psnr_linear_masked(out, truth, mask, peak=HDR_PEAK))
                assert bound is not None
                scores[preset][EVERY_PAST_FRAME]["mulaw"].append(bound[0])
                scores[preset][EVERY_PAST_FRAME]["linear"].append(bound[1])
        print(f"{pano_name} {preset} clip {c} done", flush=True)
    results = {"settings": vars(args), "peak": HDR_PEAK, "table": {}}
    lines = [f"# One-reference bound on held-out panoramas {', '.join(args.panoramas)}", "",
             f"`python -m studies.highlights_ceiling {' '.join(argv if argv is not None else sys.argv[1:])}`",
             (f"({args.clips} clips x {args.frames} frames per panorama and exposure preset, the clips of "
              "`highlights_eval`; per frame the best earlier frame as reference, chosen with the truth; true "
              f"alignment; PSNR in dB inside the clipped regions, peak {HDR_PEAK:g}x clipping)"), ""]
    table, rows = score_rows(scores, args.presets, rows_scored)
    results["table"].update(table)
    lines += rows
    results["clipped_seen_unclipped_pct"] = {p: round(float(np.mean(v)), 2) for p, v in seen.items() if v}
    lines += ["", "Clipped pixels that some earlier frame saw unclipped (confidence > 0.5), mean % per frame: "
              + ", ".join(f"{p} {v:.1f} %" for p, v in results["clipped_seen_unclipped_pct"].items()) + "."]
    write_results(args.out, results, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
