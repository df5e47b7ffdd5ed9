"""``deblurkit train``: train a model from a flat config (resumable; ``torchrun`` for DDP).

Examples::

    deblurkit train model=mimo-unet-narrow data=synth source=photos/ preset=realistic max_steps=20000
    deblurkit train --recipe nafnet model=nafnet-w16 data=gopro data_root=GOPRO/ out_dir=runs/naf
    deblurkit train --config runs/naf/config.yaml --resume           # continue exactly
    torchrun --nproc_per_node=4 -m deblurkit train --config cfg.yaml device=cuda amp=bf16
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Config keys are set as key=value (after any --recipe and --config YAML); unknown keys are\n"
        "rejected before any work starts. 'deblurkit train --print-config' lists every key and default."
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. lr=2e-4 batch_size=8")
    parser.add_argument("--config", metavar="YAML", help="YAML file of config keys (overrides the recipe)")
    parser.add_argument("--recipe", metavar="NAME", help="published recipe to start from: mimo-unet or nafnet")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                        help="continue from OUT_DIR/checkpoints/last.pt (or the given checkpoint)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")


def run(args: argparse.Namespace) -> int:
    import yaml

    from deblurkit.train.config import config_to_dict, resolve_config

    overrides, resume = list(args.overrides), args.resume
    if isinstance(resume, str) and "=" in resume and not Path(resume).exists():
        overrides, resume = [resume, *overrides], True  # `--resume key=value`: the flag took an override
    cfg = resolve_config(recipe=args.recipe, yaml_path=args.config, overrides=overrides)
    if args.print_config:
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0

    from deblurkit.io import ensure_writable_folder
    from deblurkit.train.loop import train

    ensure_writable_folder(cfg.out_dir, label="out_dir")  # before any data is read or model built
    result = train(cfg, resume=resume)
    if not result.history or "val_psnr" not in result.history[-1]:
        return 0
    last = result.history[-1]
    print(f"done: step {result.step}, val PSNR {last['val_psnr']:.2f} dB (blurry input {last['val_input_psnr']:.2f} dB), "
          f"SSIM {last['val_ssim']:.4f}; outputs in {result.out_dir}/")
    return 0
