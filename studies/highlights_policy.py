"""Train the learned reference policy (REINFORCE, logistic over 5 features) on training panoramas.

    python -m studies.highlights_policy --out runs/highlights/policy.json
    python -m studies.highlights_policy --clips 1 --frames 8 --iterations 1 --out /tmp/p.json  # smoke test

Clips use the oscillating and randomly drawn auto-exposure controllers (``TRAIN_PANORAMAS``);
the restorer during training is the copy fill (``--checkpoint`` uses the network instead).
Then: ``python -m studies.highlights_eval --policy runs/highlights/policy.json``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from deblurkit.highlights.online import restore_copy
from deblurkit.highlights.policy import save_policy, train_reference_policy
from deblurkit.highlights.train import sample_auto_exposure
from deblurkit.highlights.video import (
    AUTO_EXPOSURE_PRESETS,
    TRAIN_PANORAMAS,
    VideoConfig,
    generate_video,
    load_panorama_linear,
)

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hdr", default=str(ROOT.parent / "shared/data/hdr"))
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--rollouts", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "runs/highlights/policy.json"))
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    clips = []
    for c in range(args.clips):
        name = TRAIN_PANORAMAS[c % len(TRAIN_PANORAMAS)]
        ae = AUTO_EXPOSURE_PRESETS["oscillating"] if c % 2 == 0 else sample_auto_exposure(rng)
        cfg = replace(VideoConfig(frames=args.frames), auto_exposure=ae)
        clips.append(list(generate_video(load_panorama_linear(Path(args.hdr) / f"{name}.hdr"), cfg, rng)))
    restorer = restore_copy
    if args.checkpoint:
        from deblurkit.highlights.net import load_highlight_restorer

        restorer = load_highlight_restorer(args.checkpoint)
    policy, history = train_reference_policy(clips, restorer, iterations=args.iterations, rollouts=args.rollouts,
                                             lr=args.lr, rng=rng)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_policy(policy, args.out, returns=history, settings=vars(args))
    print(f"saved {args.out}: weights {policy.weights} bias {policy.bias:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
