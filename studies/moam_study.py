#!/usr/bin/env python3
"""MoAM vs one modulator vs no modulator, at equal parameters and budget (DreamClear's Table 3, at CPU scale).

    python -m studies.moam_study                                   # the full comparison (see below)
    python -m studies.moam_study --steps 3000 --batch 8 --crop 64 --test-count 10 --test-crop 192 \
        --ckpt-dir /work/runs/moam/scratch64 --out studies/results/moam_study_scratch64   # from scratch
    python -m studies.moam_study --init nafnet-w16 --steps 360 --batch 8 --crop 64 --lr 5e-4 \
        --test-count 10 --test-crop 192 --threads 1 --ckpt-dir data/moam_study/ft64   # a fine-tune
    # each also with --map-norm --expert-init-std 0.01 (docs/architectures.md)
    python -m studies.moam_study --steps 3 --batch 2 --crop 64 --test-count 2 --out /tmp/moam  # smoke

The three registry variants ``moam-nafnet-w16`` (router + 3 expert modulators after every block),
``moam-nafnet-w16-single`` (one modulator) and ``moam-nafnet-w16-none`` (no modulators, two more
blocks; all 1.63-1.65 M parameters) are trained in lockstep: from the same initial seed, each step
one batch that every variant takes an optimizer step on (same learning rate and schedule). Each
training sample is a crop of a TRAIN photo (studies/photos_manifest.json, data/photos) degraded by
one of five kinds drawn uniformly: camera shake (3-24 px), sensor noise (shot gain 3e-4..1e-2), JPEG
(quality 20-70), the ``realistic`` preset and the ``realesrgan`` preset; batch ``k`` is a pure
function of ``(seed, k)``. The reference restoration fed to the degradation map is ``nafnet-w16``'s
output (shipped weights, no ensemble), computed on the fly.

``--init nafnet-w16`` starts every variant from the shipped ``nafnet-w16`` weights: the variants
share its layer names, and what it lacks (the degradation map, the modulators whose experts start
at zero, the two extra blocks of ``-none`` whose layer scales start at zero) leaves the function
unchanged, so all three start as exactly ``nafnet-w16`` and the budget goes to adapting it. The
default ``scratch`` trains from random weights.

The state of all variants is written atomically to ``--ckpt-dir``/train_state.pt every
``--checkpoint-every`` steps; a run started again with the same settings resumes there, and
``--eval-only`` scores the last checkpoint without training further.

Test sets (held out: centre 256x256 crops of ../shared/data/sharp/kodak24, fixed seeds): blur-only
(4-16 px shake), noise-only (shot 1e-3..1e-2), JPEG-only (quality 20-50) and mixed (the
``realistic`` preset). Reported: PSNR/SSIM per set for every variant, the input and the reference;
for ``moam``, the router's mean expert weights per set (which expert each degradation goes to).

``--map-norm`` and ``--expert-init-std`` change the modulated variants' start (the router's cold
start: with experts at exactly zero the router has no gradient). On the shared 2-core machine one
lockstep step of batch 8 on 64-px crops takes about 0.75 s with one thread, so the defaults' 3000
steps take about 40 minutes at ``--crop 64`` (what was run from scratch; docs/architectures.md)
and, at four times the pixels, an estimated 2.5 hours at the default 128 px. Results go to ``--out``.{json,md} and the weights to ``--ckpt-dir``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from studies.curation_filters import degrade_srgb
from studies.heldout import write_results

VARIANTS = ("moam-nafnet-w16", "moam-nafnet-w16-single", "moam-nafnet-w16-none")
TRAIN_KINDS = ("blur", "noise", "jpeg", "realistic", "realesrgan")
TEST_KINDS = ("blur", "noise", "jpeg", "mixed")
TRIM = 4  # the realistic preset trims 4 px per side; every kind is trimmed alike


def sample_degradation(kind: str, rng: np.random.Generator) -> float:
    """A random strength of a training degradation kind (0 for the presets)."""
    if kind == "blur":
        return float(rng.uniform(3, 24))
    if kind == "noise":
        return float(math.exp(rng.uniform(math.log(3e-4), math.log(1e-2))))
    if kind == "jpeg":
        return float(rng.integers(20, 71))
    return 0.0


def degraded_pair(crop: np.ndarray, kind: str, strength: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(degraded, sharp)`` float32 sRGB, both trimmed by :data:`TRIM` (the presets' own sharp targets)."""
    if kind in ("realistic", "realesrgan", "mixed"):
        import torch

        from deblurkit.synth.pipeline import synthesize_pair
        from deblurkit.synth.presets import get_preset

        g = torch.Generator().manual_seed(seed)
        x = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None]
        pair = synthesize_pair(x, get_preset("realistic" if kind == "mixed" else kind), g)
        deg, sharp = (t[0].permute(1, 2, 0).numpy() for t in (pair.blur, pair.sharp))
        if deg.shape[0] == crop.shape[0]:  # presets without their own trim
            deg, sharp = deg[TRIM:-TRIM, TRIM:-TRIM], sharp[TRIM:-TRIM, TRIM:-TRIM]
        return np.ascontiguousarray(deg, np.float32), np.ascontiguousarray(sharp, np.float32)
    deg = degrade_srgb(crop, kind, strength, seed)
    t = slice(TRIM, -TRIM)
    return np.ascontiguousarray(deg[t, t]), np.ascontiguousarray(crop[t, t])


def train_photos(side: int) -> list[np.ndarray]:
    from studies.make_testsets import load_test_photos

    return [img for _, img in load_test_photos(ROOT / "studies" / "photos_manifest.json", ROOT / "data" / "photos",
                                               side, split="train")]


def test_set(folder: Path, count: int, crop: int) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    from deblurkit.io import iter_image_files, load_image_rgb

    rng = np.random.default_rng(2024)
    out: dict[str, list] = {k: [] for k in TEST_KINDS}
    for i, f in enumerate(iter_image_files(folder)[:count]):
        img = load_image_rgb(f)
        h, w = img.shape[:2]
        c = crop + 2 * TRIM
        img = np.ascontiguousarray(img[(h - c) // 2 : (h - c) // 2 + c, (w - c) // 2 : (w - c) // 2 + c])
        strengths = {"blur": rng.uniform(4, 16), "noise": math.exp(rng.uniform(math.log(1e-3), math.log(1e-2))),
                     "jpeg": int(rng.integers(20, 51)), "mixed": 0.0}
        for j, kind in enumerate(TEST_KINDS):
            out[kind].append(degraded_pair(img, kind, float(strengths[kind]), seed=10_000 + 10 * i + j))
    return out


def to_tensor(arrs: list[np.ndarray]):
    import torch

    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()


def reference_of(ref_model, x):
    import torch

    with torch.no_grad():
        return ref_model(x).clamp(0, 1)


def training_batch(photos: list[np.ndarray], step: int, args) -> tuple[np.ndarray, np.ndarray]:
    """Batch ``step`` of the run: ``(degraded, sharp)`` ``(B, crop, crop, 3)`` float32 sRGB in [0, 1].

    A pure function of ``(args.seed, step)``: every variant and every resumed run sees the same samples.
    """
    rng = np.random.default_rng([args.seed, step])
    c = args.crop + 2 * TRIM
    degs, sharps = [], []
    for b in range(args.batch):
        img = photos[int(rng.integers(len(photos)))]
        top, left = int(rng.integers(img.shape[0] - c + 1)), int(rng.integers(img.shape[1] - c + 1))
        kind = TRAIN_KINDS[int(rng.integers(len(TRAIN_KINDS)))]
        d, s = degraded_pair(img[top : top + c, left : left + c], kind, sample_degradation(kind, rng),
                             seed=step * 1000 + b + args.seed)
        degs.append(d)
        sharps.append(s)
    return np.stack(degs), np.stack(sharps)


def run_key(args) -> dict[str, Any]:
    """What a training checkpoint must match to be resumed."""
    return {"steps": args.steps, "batch": args.batch, "crop": args.crop, "lr": args.lr, "seed": args.seed,
            "photo_side": args.photo_side, "init": args.init, "new_lr_mult": args.new_lr_mult,
            **({"map_norm": True} if args.map_norm else {}),
            **({"expert_init_std": args.expert_init_std} if args.expert_init_std else {})}


def model_options(name: str, args) -> dict[str, Any]:
    """Constructor overrides of a variant: the map normalisation and the experts' initialisation
    apply to the modulated variants only."""
    if name.endswith("-none"):
        return {}
    return {"map_norm": bool(args.map_norm), "expert_init_std": float(args.expert_init_std)}


def start_from_backbone(model, backbone_state: dict) -> None:
    """Copy a trained ``nafnet`` backbone into a ``MoAMNAFNet`` variant, which then computes the same function.

    The variants name their backbone layers as NAFNet does. Layers the backbone lacks keep their
    initialisation, which is the identity: the experts' last layers and the extra NAFBlocks' layer
    scales (``beta``, ``gamma``) start at zero.

    Raises:
        ValueError: a backbone layer that the variant lacks or shapes differently.
    """
    own = model.state_dict()
    bad = [k for k, v in backbone_state.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise ValueError(f"backbone layers the model lacks or shapes differently: {bad[:5]}")
    model.load_state_dict(backbone_state, strict=False)


def cosine_factor(step: int, steps: int, floor: float = 0.05) -> float:
    """Cosine decay of the learning rate from 1 to ``floor`` over ``steps`` (every group alike)."""
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step, steps) / max(steps, 1)))


def param_groups(model, backbone_state: dict | None, lr: float, new_lr_mult: float) -> list[dict[str, Any]]:
    """Optimizer groups: the layers copied from ``backbone_state`` at ``lr``, the new ones at ``lr * new_lr_mult``.

    Without a backbone every layer is new (one group at ``lr * new_lr_mult``).
    """
    copied, new = [], []
    for name, p in model.named_parameters():
        (copied if backbone_state is not None and name in backbone_state else new).append(p)
    groups = [{"params": copied, "lr": lr}, {"params": new, "lr": lr * new_lr_mult}]
    return [g for g in groups if g["params"]]


def train_variants(names: list[str], photos: list[np.ndarray], ref_model, args) -> tuple[dict[str, Any], int, dict]:
    """Train the variants in lockstep (each step: one batch, one optimizer step per variant).

    The state of all of them (weights, optimizers, schedules, step, seconds) is written atomically
    to ``args.ckpt_dir / "train_state.pt"`` every ``args.checkpoint_every`` steps and at the end;
    a run started again with the same settings continues from there. With ``args.eval_only`` no step
    is taken: the models are those of the last checkpoint.

    Returns:
        ``(models, step, seconds)``: the models in eval mode, the steps behind them and each
        variant's own training seconds (forward, backward and update; the shared batch synthesis
        and reference restoration are under ``"batches"``).
    """
    import torch

    from deblurkit.errors import DeblurkitError
    from deblurkit.models.checkpoint import load_model
    from deblurkit.models.registry import create_model
    from deblurkit.train.checkpoint import load_checkpoint, save_checkpoint

    init = None if args.init == "scratch" else load_model(args.init)[0].state_dict()
    runs = {}
    for name in names:
        torch.manual_seed(args.seed)  # the same initial weights wherever the variants share a layer shape
        model = create_model(name, **model_options(name, args))
        if init is not None:
            start_from_backbone(model, init)
        opt = torch.optim.AdamW(param_groups(model, init, args.lr, args.new_lr_mult), weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: cosine_factor(k, args.steps))
        runs[name] = (model, opt, sched)
    state_path = args.ckpt_dir / "train_state.pt"
    step, seconds = 0, {name: 0.0 for name in [*names, "batches"]}
    if state_path.is_file():
        ck = load_checkpoint(state_path)
        if ck["key"] != run_key(args) or sorted(ck["model"]) != sorted(names):
            raise DeblurkitError(f"{state_path}: a checkpoint of another run ({ck['key']}, {sorted(ck['model'])}); "
                                 "pass another --ckpt-dir")
        for name, (model, opt, sched) in runs.items():
            model.load_state_dict(ck["model"][name])
            opt.load_state_dict(ck["optimizer"][name])
            sched.load_state_dict(ck["scheduler"][name])
        step, seconds = int(ck["step"]), {k: float(v) for k, v in ck["seconds"].items()}
        print(f"  resumed from {state_path} at step {step}", flush=True)
    elif args.eval_only:
        raise DeblurkitError(f"{state_path}: no checkpoint to evaluate")

    def save() -> None:
        args.ckpt_dir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(state_path, {
            "key": run_key(args), "step": step, "seconds": seconds,
            "model": {n: r[0].state_dict() for n, r in runs.items()},
            "optimizer": {n: r[1].state_dict() for n, r in runs.items()},
            "scheduler": {n: r[2].state_dict() for n, r in runs.items()}})

    t_start = time.perf_counter()
    while step < args.steps and not args.eval_only:
        t0 = time.perf_counter()
        deg, sharp = training_batch(photos, step, args)
        x, y = to_tensor(list(deg)), to_tensor(list(sharp))
        ref = reference_of(ref_model, x)
        seconds["batches"] += time.perf_counter() - t0
        losses = {}
        for name, (model, opt, sched) in runs.items():
            t0 = time.perf_counter()
            model.train()
            loss = (model(x, ref) - y).abs().mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            seconds[name] += time.perf_counter() - t0
            losses[name] = loss.item()
        step += 1
        if step % args.checkpoint_every == 0 or step == args.steps:
            save()
        if step % args.log_every == 0 or step == 1 or step == args.steps:
            print(f"  step {step}/{args.steps} L1 " + " ".join(f"{n} {v:.4f}" for n, v in losses.items())
                  + f" ({time.perf_counter() - t_start:.0f} s this session)", flush=True)
    return {name: r[0].eval() for name, r in runs.items()}, step, seconds


def evaluate(fn, tests, psnr, ssim) -> dict[str, dict[str, float]]:
    out = {}
    for kind, pairs in tests.items():
        ps, ss = [], []
        for deg, sharp in pairs:
            pred = fn(deg)
            ps.append(psnr(pred, sharp, data_range=1.0))
            ss.append(ssim(pred, sharp, data_range=1.0))
        out[kind] = {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss))}
    return out


def evaluate_variant(model, tests, refs, psnr, ssim) -> tuple[dict, dict]:
    """Scores per test set, and the router's mean expert weights per set and block (``moam`` only)."""
    import torch

    scores, routing = {}, {}
    for kind in TEST_KINDS:
        blocks: list[list[list[float]]] = []
        it = iter(refs[kind])

        def run(deg, it=it, blocks=blocks):
            with torch.no_grad():
                out, r = model(to_tensor([deg]), to_tensor([next(it)]), return_routing=True)
            if r:  # (blocks, K): each modulated block's expert weights, averaged over the image's tokens
                blocks.append(torch.stack(r)[:, 0].tolist())
            return out.clamp(0, 1)[0].permute(1, 2, 0).numpy()

        scores.update(evaluate(run, {kind: tests[kind]}, psnr, ssim))
        if blocks:
            routing[kind] = np.mean(blocks, axis=0).tolist()
    return scores, routing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128, help="training crop side (a multiple of 32)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--new-lr-mult", type=float, default=1.0,
                    help="learning-rate factor of the layers that --init does not provide (map, modulators, blocks)")
    ap.add_argument("--map-norm", action="store_true",
                    help="layer-normalise the degradation map before the routers and experts read it")
    ap.add_argument("--expert-init-std", type=float, default=0.0,
                    help="std of the experts' last layers at the start (0: exactly zero, the identity)")
    ap.add_argument("--init", default="scratch",
                    help="'scratch', or a nafnet registry name / weights file whose backbone every variant starts from")
    ap.add_argument("--photo-side", type=int, default=1024, help="train photos are resized to this long side")
    ap.add_argument("--test", type=Path, default=ROOT.parent / "shared" / "data" / "sharp" / "kodak24")
    ap.add_argument("--test-count", type=int, default=24)
    ap.add_argument("--test-crop", type=int, default=256)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (more were slower while other jobs shared the cores)")
    ap.add_argument("--checkpoint-every", type=int, default=20, help="steps between training checkpoints")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-only", action="store_true",
                    help="evaluate the models of the last checkpoint in --ckpt-dir without training further")
    ap.add_argument("--ckpt-dir", type=Path, default=ROOT / "data" / "moam_study",
                    help="training state (train_state.pt, resumed when present) and the trained weights")
    ap.add_argument("--out", type=Path, default=ROOT / "studies" / "results" / "moam_study")
    args = ap.parse_args(argv)

    import torch

    from deblurkit.errors import DeblurkitError
    from deblurkit.eval.metrics import psnr, ssim
    from deblurkit.models.checkpoint import load_model, save_safetensors
    from deblurkit.models.registry import count_params

    if args.crop % 32 or args.crop <= 0:
        print(f"moam_study: --crop must be a positive multiple of 32, got {args.crop}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    photos = train_photos(args.photo_side)
    if not photos or not args.test.is_dir():
        print("moam_study: needs the train photos (data/photos, scripts/fetch_photos.py) and ../shared/data",
              file=sys.stderr)
        return 2
    ref_model, _ = load_model("nafnet-w16")
    names = args.variants.split(",")
    try:
        models, step, seconds = train_variants(names, photos, ref_model, args)
    except DeblurkitError as exc:
        print(f"moam_study: {exc}", file=sys.stderr)
        return 2

    tests = test_set(args.test, args.test_count, args.test_crop)
    refs = {kind: [reference_of(ref_model, to_tensor([d]))[0].permute(1, 2, 0).numpy() for d, _ in pairs]
            for kind, pairs in tests.items()}
    ref_iters = {kind: iter(r) for kind, r in refs.items()}
    res: dict[str, Any] = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                           "trained_steps": step, "batch_seconds": seconds["batches"],
                           "input": evaluate(lambda d: d, tests, psnr, ssim),
                           "reference nafnet-w16": {k: evaluate(lambda d, k=k: next(ref_iters[k]), {k: tests[k]},
                                                                psnr, ssim)[k] for k in TEST_KINDS},
                           "variants": {}}
    for name in names:
        model = models[name]
        save_safetensors(model, args.ckpt_dir / f"{name}.safetensors", name=name,
                         meta={"training": f"studies/moam_study.py steps={step} batch={args.batch} crop={args.crop}"})
        scores, routing = evaluate_variant(model, tests, refs, psnr, ssim)
        res["variants"][name] = {"params": count_params(model), "train_seconds": seconds[name], "scores": scores,
                                 "router_block_weights": routing,
                                 "router_mean_weights": {k: np.mean(v, axis=0).tolist() for k, v in routing.items()}}
        print(f"  evaluated {name}", flush=True)

    cmd = "python -m studies.moam_study " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = ["# MoAM ablation", "", f"Command: `{cmd}`", "",
             (f"{step} of {args.steps} steps x batch {args.batch}, {args.crop}-px crops per variant (trained in "
              f"lockstep on the same batches, same initial seed); test: {args.test_count} centre "
              f"{args.test_crop}-px crops of {args.test.name} per set."), "",
             "| model | params | train s | " + " | ".join(f"{k} PSNR / SSIM" for k in TEST_KINDS) + " |",
             "|---|---|---|" + "---|" * len(TEST_KINDS)]
    rows = [("input", None, None, res["input"]), ("reference nafnet-w16", None, None, res["reference nafnet-w16"])]
    rows += [(n, v["params"], v["train_seconds"], v["scores"]) for n, v in res["variants"].items()]
    for name, params, secs, sc in rows:
        cells = " | ".join(f"{sc[k]['psnr']:.2f} / {sc[k]['ssim']:.3f}" for k in TEST_KINDS)
        lines.append(f"| {name} | {params or '-'} | {f'{secs:.0f}' if secs else '-'} | {cells} |")
    moam = res["variants"].get("moam-nafnet-w16")
    if moam and moam["router_mean_weights"]:
        lines += ["", "Router: mean expert weights per test set (over the images' tokens and the modulated blocks)", "",
                  "| set | expert 1 | expert 2 | expert 3 | top expert per block (encoder to decoder) |",
                  "|---|---|---|---|---|"]
        for kind, w in moam["router_mean_weights"].items():
            top = "".join(str(int(np.argmax(b)) + 1) for b in moam["router_block_weights"][kind])
            lines.append(f"| {kind} | " + " | ".join(f"{x:.3f}" for x in w) + f" | {top} |")
    write_results(args.out, res, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
