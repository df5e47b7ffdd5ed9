"""Train the highlight network on clips of the training panoramas (``TRAIN_PANORAMAS``).

    python -m studies.highlights_train --steps 2000 --clips 24 --out runs/highlights   # the study run
    python -m studies.highlights_train --steps 20 --clips 2 --frames 12 --out /tmp/hl  # smoke test

Then: ``python -m studies.highlights_eval --checkpoint runs/highlights/highlight-net.safetensors``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from deblurkit.highlights.train import HighlightTrainConfig, train_highlight_net

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hdr", default=str(ROOT.parent / "shared/data/hdr"))
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--align", default="true", choices=["true", "homography", "flow"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--residual-from", choices=["current", "copy"], default="current",
                    help="the network adds its residual to the log current frame or to the copy fill")
    ap.add_argument("--max-ref-age", type=int, default=8, help="oldest reference, in frames")
    ap.add_argument("--ref-darkest", type=float, default=0.0,
                    help="probability that the reference is the least exposed frame of the window")
    ap.add_argument("--save-every", type=int, default=250, help="save the weights every N steps")
    ap.add_argument("--init", default=None, help="start from this checkpoint")
    ap.add_argument("--out", default=str(ROOT / "runs/highlights"))
    args = ap.parse_args(argv)
    cfg = replace(HighlightTrainConfig(), hdr_dir=args.hdr, steps=args.steps, clips=args.clips,
                  frames_per_clip=args.frames, batch=args.batch, crop=args.crop, width=args.width,
                  align=args.align, seed=args.seed, threads=args.threads, out_dir=args.out, lr=args.lr,
                  max_ref_age=args.max_ref_age, ref_darkest=args.ref_darkest, save_every=args.save_every,
                  init=args.init, residual_from=args.residual_from, log_every=max(1, min(50, args.steps // 4)))
    print(json.dumps(train_highlight_net(cfg)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
