#!/usr/bin/env python3
"""Compare the deblurring designs of docs/default-pipeline.md on the held-out test sets.

    python -m studies.make_testsets            # once: data/testsets/<set>/...
    python -m studies.eval_designs [--sets uniform varying sharp] [--limit N] [--e2e CKPT]
    python -m studies.eval_designs --e2e CKPT --only-e2e [--gated-chain]   # the network alone [and the default chain]

Rows (PSNR / SSIM in sRGB, data_range 1, no border crop; mean over the set):

* ``identity``          the blurry input;
* ``kernel-deconv``     design (b): :func:`deblurkit.kernel_aware.blind.deblur_image_and_kernels`;
* ``kernel-refine``     design (c): :func:`deblurkit.kernel_aware.refine.refine_image_and_kernels` with the
  shipped weights and blind kernel estimates. The pipeline's estimator *is* the classical one
  (deterministic), so the kernels found by the (b) run are cached and passed in, saving half
  the run time; ``--skip-classical`` makes (c) estimate its own. The speed of the whole (c)
  pipeline is timed separately on one ``--speed-side`` image;
* ``kernel-refine-true`` design (c) given the TRUE kernel (upper bound of the network part);
* ``deconv-true``       (b)'s hyper-Laplacian deconvolution (same brightness scale, noise-adapted
  weight) with the TRUE kernel instead of the estimate: how much
  of (b)'s shortfall is kernel estimation; with ``--chain`` also ``deconv-true+e2e``;
* ``wiener-true``       Wiener (NSR 1e-2) with the TRUE kernel, no network;
* ``rl-true``           Richardson-Lucy (30 iterations) with the TRUE kernel;
* ``e2e``               design (a), an end-to-end network checkpoint given with ``--e2e``;
* ``refine+e2e``        with ``--chain``: the (a) network applied to the (c) output (a combination);
* ``deconv+e2e``        with ``--chain``: the (a) network applied to the (b) output;
* ``refine-true+e2e``   with ``--chain``: the (a) network applied to (c) given the TRUE kernel
  (what a perfect kernel estimate would give the (c)-then-(a) chain);
* ``gated-chain``       with ``--gated-chain``: the default pipeline's (b)-then-(a) chain as
  ``load_restorer("kernel-deconv+E2E")`` builds it (E2E: the ``--e2e`` checkpoint): (b) with the
  chain's support gate (``CHAIN_KERNEL_MIN_SUPPORT``), then (a) on every image; ``--decision``
  sets its kernel decision (:attr:`deblurkit.kernel_aware.blind.BlindParams.decision`).
  ``--only-e2e`` leaves out every other row but the input,
  (b) (cached) and (a): no (c), no true-kernel rows.

True-kernel rows exist only for sets with a uniform PSF. Also reports seconds per megapixel of
(b) and (c) on this machine, the training cost of the shipped (c) weights, and the per-image
worst change vs the input. Writes ``--out`` ``.json`` and ``.md`` (default
``studies/results/designs``). Run time: about 1 minute per test image on 2 shared CPU cores.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np

from studies.heldout import add_testset_arguments, load_pair, metrics, requested_sets, write_results

ROOT = Path(__file__).resolve().parents[1]

ORDER = ["identity", "kernel-deconv", "kernel-refine", "e2e", "gated-chain", "refine+e2e", "deconv+e2e",
         "kernel-refine-true",
         "refine-true+e2e", "deconv-true", "deconv-true+e2e", "wiener-true", "rl-true"]
DESIGNS = ["kernel-deconv", "kernel-refine", "e2e", "gated-chain", "refine+e2e", "deconv+e2e"]


@functools.cache
def classical_code_version() -> str:
    """Hash of the design (b) source files: the ``_code`` of a valid ``--cache`` (another: recomputed).

    Read once per process, when the modules it names are imported: a process that scores twice
    (``long_run_heldout``) while the files change on disk must not stamp results of the code in
    memory with the hash of the new files.
    """
    import hashlib

    return hashlib.sha256(b"".join((ROOT / "src/deblurkit/kernel_aware" / f).read_bytes()
                                   for f in ("blind.py", "estimation.py", "deconv.py"))).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_testset_arguments(ap)
    ap.add_argument("--weights", default=None, help="kernel-refine weights (default: shipped)")
    ap.add_argument("--e2e", default=None, help="end-to-end network checkpoint for design (a)")
    ap.add_argument("--e2e-ensemble", choices=("auto", "on", "off"), default="auto",
                    help="self-ensemble for the --e2e network: auto = the library default for it")
    ap.add_argument("--chain", action="store_true", help="also run the --e2e network on the (c) output")
    ap.add_argument("--skip-classical", action="store_true", help="leave out design (b) (it is slow)")
    ap.add_argument("--only-classical", action="store_true",
                    help="compute (and cache) only the design (b) rows; a later full run reuses them")
    ap.add_argument("--only-e2e", action="store_true",
                    help="score only the --e2e network (and the input; with --gated-chain also (b)): no (c) rows")
    ap.add_argument("--gated-chain", action="store_true",
                    help="also score the default (b)-then-(a) chain with its support gate (needs --e2e; uses the (b) cache)")
    ap.add_argument("--decision", choices=("checks", "learned"), default=None,
                    help="the gated chain's kernel decision (BlindParams.decision; default: the chain's own)")
    ap.add_argument("--cache", default=str(ROOT / "data/eval_cache/kernel_deconv.json"),
                    help="per-image results of design (b) (deterministic, so computed once)")
    ap.add_argument("--speed-side", type=int, default=1024,
                    help="also time kernel-refine on one SIDE x SIDE image (a test blur reflect-padded); 0 = skip")
    ap.add_argument("--refine-support", type=float, default=None,
                    help="(c) only: override the classical no-blur support threshold (then (c) estimates its own kernels)")
    ap.add_argument("--refine-agreement", type=float, default=None,
                    help="(c) only: override the classical kernel-agreement threshold")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "studies/results/designs"))
    args = ap.parse_args(argv)
    if args.only_e2e and (args.e2e is None or args.chain or args.only_classical):
        ap.error("--only-e2e needs --e2e and excludes --chain and --only-classical")
    if args.gated_chain and (args.e2e is None or args.skip_classical):
        ap.error("--gated-chain needs --e2e and the (b) runs (not --skip-classical)")
    if args.only_e2e:
        args.speed_side = 0
        args.skip_classical = args.skip_classical or not args.gated_chain

    import torch

    from deblurkit.color import linear_to_srgb, srgb_to_linear
    from deblurkit.io import atomic_write, load_image_rgb
    from deblurkit.kernel_aware.blind import deblur_image_and_kernels, deconvolve_with_kernel
    from deblurkit.kernel_aware.deconv import richardson_lucy_deconv, wiener_deconv
    from deblurkit.kernel_aware.refine import load_kernel_refine_model, refine_image_and_kernels

    torch.set_num_threads(args.threads)
    from deblurkit.kernel_aware.refine import KernelRefineParams

    rparams = KernelRefineParams(no_blur_support=args.refine_support, agreement=args.refine_agreement)
    own_estimates = args.refine_support is not None or args.refine_agreement is not None
    cache_path = Path(args.cache)
    code = classical_code_version()
    cache: dict = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    if cache.get("_code") != code:  # the classical code changed: recompute
        cache = {"_code": code}
    model, meta = (None, {}) if (args.only_classical or args.only_e2e) else load_kernel_refine_model(args.weights)
    e2e = gated = None
    if args.e2e:
        from deblurkit.infer import load_restorer

        ensemble = {"auto": None, "on": True, "off": False}[args.e2e_ensemble]
        e2e = load_restorer(args.e2e, threads=args.threads, self_ensemble=ensemble)
        if args.gated_chain:  # built as the default chain is, with this network as its last stage
            blind = None
            if args.decision is not None:
                from deblurkit.kernel_aware.blind import BlindParams

                blind = BlindParams(decision=args.decision)
            gated = load_restorer(f"kernel-deconv+{args.e2e}", threads=args.threads, self_ensemble=ensemble,
                                  blind_params=blind)
    t_start = time.time()
    rows, per_image = [], []
    secs = {"kernel-deconv": 0.0, "kernel-refine": 0.0, "e2e": 0.0, "refine+e2e": 0.0}
    # With cached kernels, the (c) time per test image excludes kernel estimation.
    refine_key = "kernel-refine" if (args.skip_classical or own_estimates) else "kernel-refine (after estimation)"
    mpix = 0.0
    for set_name, root, items in requested_sets(args):
        acc: dict[str, list[tuple[float, float]]] = {}
        for it in items:
            i = it["index"]
            blur, gt = load_pair(root, i)
            mpix += blur.shape[0] * blur.shape[1] / 1e6
            res = {"identity": metrics(blur, gt)}
            if not args.skip_classical:
                key = f"{set_name}/{i:03d}"
                kfile = cache_path.parent / "kernels" / f"{set_name}-{i:03d}.npz"
                want_image = args.chain and e2e is not None  # (a) runs on the (b) output too
                if (key not in cache or not kfile.is_file()
                        or (want_image and "image" not in np.load(kfile).files)):
                    t0 = time.time()
                    r = deblur_image_and_kernels(blur)
                    cache[key] = {"metrics": metrics(r.image, gt), "seconds": time.time() - t0}
                    kfile.parent.mkdir(parents=True, exist_ok=True)
                    with atomic_write(kfile) as fh:
                        np.savez(fh, kernels=r.kernels, blurred=r.blurred, image=r.image.astype(np.float32))
                    cache_path.parent.mkdir(parents=True, exist_ok=True)
                    with atomic_write(cache_path, "w") as fh:
                        json.dump(cache, fh)
                secs["kernel-deconv"] += cache[key]["seconds"]
                res["kernel-deconv"] = tuple(cache[key]["metrics"])
            if args.only_classical:
                print(f"{set_name}/{i:03d} kernel-deconv={res['kernel-deconv'][0]:.2f}", file=sys.stderr, flush=True)
                continue
            t0 = time.time()
            if args.only_e2e:
                rr = None
            elif args.skip_classical or own_estimates:
                rr = refine_image_and_kernels(blur, model, params=rparams)
            else:
                # Same kernels as the classical run (the pipeline calls the same deterministic
                # estimator), so they are computed once; speed is measured by --speed-side.
                kz = np.load(kfile)
                rr = refine_image_and_kernels(blur, model, kernels=kz["kernels"], blurred=kz["blurred"])
            if rr is not None:
                secs["kernel-refine"] += time.time() - t0
                res["kernel-refine"] = metrics(rr.image, gt)
            if e2e is not None:
                t0 = time.time()
                res["e2e"] = metrics(e2e(blur), gt)
                secs["e2e"] += time.time() - t0
                if gated is not None:
                    res["gated-chain"] = metrics(gated(blur), gt)
                if args.chain:
                    t0 = time.time()
                    res["refine+e2e"] = metrics(e2e(rr.image), gt)
                    secs["refine+e2e"] += time.time() - t0  # (on top of the (c) time)
                    if not args.skip_classical:
                        res["deconv+e2e"] = metrics(e2e(np.load(kfile)["image"]), gt)
            if it.get("kernel") and set_name != "sharp" and not args.only_e2e:
                k = np.load(root / it["kernel"]).astype(np.float32)
                lin = srgb_to_linear(blur)
                refined_true = refine_image_and_kernels(blur, model, kernels=k).image
                res["kernel-refine-true"] = metrics(refined_true, gt)
                if e2e is not None and args.chain:
                    res["refine-true+e2e"] = metrics(e2e(refined_true), gt)
                deconv_true = linear_to_srgb(deconvolve_with_kernel(lin, k))
                res["deconv-true"] = metrics(deconv_true, gt)
                if e2e is not None and args.chain:
                    res["deconv-true+e2e"] = metrics(e2e(deconv_true), gt)
                res["wiener-true"] = metrics(linear_to_srgb(wiener_deconv(lin, k, nsr=1e-2) * 1.01), gt)
                res["rl-true"] = metrics(linear_to_srgb(richardson_lucy_deconv(lin, k, iterations=30)), gt)
            for key, v in res.items():
                acc.setdefault(key, []).append(v)
            per_image.append({"set": set_name, "index": i, "photo": it["photo"],
                              **({"refine_blur_detected": bool(rr.blurred.any())} if rr is not None else {}),
                              **{k: [round(a, 3), round(b, 4)] for k, (a, b) in res.items()}})
            print(f"{set_name}/{i:03d} " + " ".join(f"{k}={v[0]:.2f}" for k, v in res.items()), file=sys.stderr, flush=True)
        if args.only_classical:
            continue
        row: dict = {"set": set_name, "n": len(items)}
        for key, vals in acc.items():
            arr = np.array(vals)
            row[key] = [round(float(arr[:, 0].mean()), 2), round(float(arr[:, 1].mean()), 4)]
        mine = [p for p in per_image if p["set"] == set_name]
        for key in DESIGNS:
            if key in row:
                row[f"{key}_worst_gain_db"] = round(min(p[key][0] - p["identity"][0] for p in mine), 2)
        rows.append(row)
    if args.only_classical:
        return 0
    speed = None
    if args.speed_side > 0 and per_image:
        first = per_image[0]
        img = load_image_rgb(Path(args.testsets) / first["set"] / "blur" / f"{first['index']:03d}.png")
        big = np.pad(img, ((0, max(0, args.speed_side - img.shape[0])), (0, max(0, args.speed_side - img.shape[1])), (0, 0)),
                     mode="symmetric")[: args.speed_side, : args.speed_side]
        big = np.ascontiguousarray(big)
        mp = big.shape[0] * big.shape[1] / 1e6
        t0 = time.time()
        rr = refine_image_and_kernels(big, model, params=rparams)
        dt = time.time() - t0
        speed = {"side": args.speed_side, "image": f"{first['set']}/{first['index']:03d} reflect-padded",
                 "blurred_tiles": int(rr.blurred.sum()), "tiles": list(rr.blurred.shape),
                 "kernel-refine_seconds_per_megapixel": round(dt / mp, 1)}
        if not args.skip_classical:
            t0 = time.time()
            deblur_image_and_kernels(big)
            speed["kernel-deconv_seconds_per_megapixel"] = round((time.time() - t0) / mp, 1)
    total = time.time() - t_start
    extra = meta.get("extra", {})
    summary = {
        "rows": rows, "per_image": per_image,
        "seconds_per_megapixel": {(refine_key if k == "kernel-refine" else k): round(v / max(mpix, 1e-9), 1)
                                  for k, v in secs.items() if v > 0},
        "kernel_refine_large_image": speed,
        "refine_params": {"no_blur_support": args.refine_support, "agreement": args.refine_agreement},
        "threads": args.threads, "weights": meta.get("weights"),
        "e2e": e2e.description if e2e is not None else None,
        "training": {k: extra.get(k) for k in ("steps", "wall_seconds", "hardware", "training_pairs")},
        "wall_seconds": round(total, 1),
        "command": "python -m studies.eval_designs " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    present = [k for k in ORDER if any(k in r for r in rows)]
    lines = ["| set | n | " + " | ".join(present) + " | (c) − input mean / worst dB | (c) − RL-true dB |",
             "|---|---|" + "---|" * len(present) + "---|---|"]
    for r in rows:
        cells = [f"{r[k][0]:.2f} / {r[k][1]:.3f}" if k in r else "–" for k in present]
        gain = (f"{r['kernel-refine'][0] - r['identity'][0]:+.2f} / {r['kernel-refine_worst_gain_db']:+.2f}"
                if "kernel-refine" in r else "–")
        vs_rl = f"{r['kernel-refine'][0] - r['rl-true'][0]:+.2f}" if "rl-true" in r else "–"
        lines.append(f"| {r['set']} | {r['n']} | " + " | ".join(cells) + f" | {gain} | {vs_rl} |")
    lines += ["", "PSNR gain over the blurry input, mean / worst image (dB):", "",
              "| set | " + " | ".join(k for k in DESIGNS if any(k in r for r in rows)) + " |",
              "|---|" + "---|" * sum(any(k in r for r in rows) for k in DESIGNS)]
    for r in rows:
        lines.append(f"| {r['set']} | " + " | ".join(
            f"{r[k][0] - r['identity'][0]:+.2f} / {r[f'{k}_worst_gain_db']:+.2f}" if k in r else "–"
            for k in DESIGNS if any(k in q for q in rows)) + " |")
    lines += ["", "Seconds per megapixel on the test crops (" + f"{args.threads} torch thread(s), shared 2-core machine): "
              + ", ".join(f"{k} {v}" for k, v in summary["seconds_per_megapixel"].items()),
              f"kernel-refine on one {args.speed_side} x {args.speed_side} image: {speed}",
              f"kernel-refine training: {summary['training']}", f"Whole run {total:.0f} s: `{summary['command']}`"]
    write_results(args.out, summary, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
