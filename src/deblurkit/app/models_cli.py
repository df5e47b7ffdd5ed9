"""``deblurkit models``: list the model variants with parameters, MACs at 256x256 and sources,
then the other restorer names ``deblurkit deblur --model`` accepts."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--inspect", metavar="CHECKPOINT",
                        help="detect the architecture and hyper-parameters of a checkpoint file instead")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from deblurkit.models.registry import list_models

    if args.inspect:
        from deblurkit.models.checkpoint import load_model
        from deblurkit.models.registry import count_params

        model, meta = load_model(args.inspect)
        meta["params"] = count_params(model)
        print(json.dumps(meta, indent=2, default=str))
        return 0
    infos = list_models()
    if args.json:
        print(json.dumps([asdict(i) for i in infos], indent=2))
        return 0
    from deblurkit.infer.restorers import RESTORERS

    print(f"{'name':<18} {'params':>12} {'GMACs@256':>10} {'mult':>4}  source")
    for i in infos:
        print(f"{i.name:<18} {i.params:>12,} {i.macs_256 / 1e9:>10.2f} {i.size_multiple:>4}  {i.source}")
    print(f"\nother restorers: default, {', '.join(RESTORERS)} (and chains joined by '+')")
    return 0
