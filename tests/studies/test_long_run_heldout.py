"""studies/long_run_heldout.py: a checkpoint's EMA weights scored against a baseline, set by set."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deblurkit.io import save_png

TINY_NAF = {"width": 8, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1], "middle_blk_num": 1}


def _testsets(root: Path, sets: list[str], count: int = 2) -> Path:
    """Tiny held-out sets in the layout of ``studies/make_testsets.py`` (48-px crops)."""
    import cv2

    rng = np.random.default_rng(0)
    for s in sets:
        items = []
        for i in range(count):
            sharp = cv2.GaussianBlur(rng.random((48, 48, 3)).astype(np.float32), (0, 0), 1.5)
            blur = cv2.GaussianBlur(sharp, (0, 0), 1.0)
            save_png(root / s / "sharp" / f"{i:03d}.png", sharp, bits=16)
            save_png(root / s / "blur" / f"{i:03d}.png", blur, bits=16)
            items.append({"index": i, "photo": f"p{i}.jpg"})
        (root / s / "meta.json").write_text(json.dumps({"items": items}))
    return root


def test_checkpoint_is_copied_exported_and_compared_set_by_set(tmp_path):
    from deblurkit.models.checkpoint import save_safetensors
    from deblurkit.models.registry import create_model
    from deblurkit.train.checkpoint import save_checkpoint
    from deblurkit.train.config import config_to_dict, resolve_config

    study = importlib.import_module("studies.long_run_heldout")
    torch.manual_seed(0)
    baseline = create_model("nafnet-w16", **TINY_NAF).eval()
    save_safetensors(baseline, tmp_path / "base.safetensors", name="nafnet-custom", meta={})
    live, ema = (create_model("nafnet-w16", **TINY_NAF).state_dict() for _ in range(2))
    cfg = resolve_config(overrides={"model": "nafnet-w16", "out_dir": str(tmp_path)})
    ckpt = tmp_path / "last.pt"
    save_checkpoint(ckpt, {"model": live, "ema": ema, "step": 42, "config": config_to_dict(cfg), "data": {}})
    testsets = _testsets(tmp_path / "testsets", ["uniform", "sharp"])
    out = tmp_path / "res" / "heldout"
    weights = tmp_path / "kept" / "cand.safetensors"
    assert study.main([str(ckpt), "--baseline", str(tmp_path / "base.safetensors"), "--weights-out", str(weights),
                       "--testsets", str(testsets), "--sets", "uniform", "sharp", "--threads", "1",
                       "--out", str(out)]) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["candidate"]["step"] == 42 and result["candidate"]["weights"] == "ema"
    kept = {k: v for k, v in study.candidate_weights(weights, weights, False)[1].items() if k != "file"}
    assert kept["step"] == 42 and kept["weights"] == "ema" and kept["checkpoint"] == str(ckpt)  # not the copy
    # the table is the per-image difference of the two networks' eval_designs runs
    per = {lab: json.loads(out.with_name(f"heldout_{lab}.json").read_text())["per_image"]
           for lab in ("shipped", "candidate")}
    for s in ("uniform", "sharp"):
        diff = np.mean([c["e2e"][0] - b["e2e"][0] for b, c in zip(per["shipped"], per["candidate"]) if b["set"] == s])
        assert abs(result["table"]["e2e"][s]["difference"] - diff) < 2e-3
        assert result["table"]["e2e"][s]["n"] == 2
    assert result["every_set_improved"] == study.every_set_improved(result["table"])
    assert "Every set improved (network alone)" in out.with_suffix(".md").read_text()


def test_every_set_must_improve():
    study = importlib.import_module("studies.long_run_heldout")

    def run(gains: dict[str, list[float]]) -> dict:
        per = [{"set": s, "index": i, "identity": [30.0, 0.9], "e2e": [30.0 + g, 0.9]}
               for s, gs in gains.items() for i, g in enumerate(gs)]
        return {"rows": [{"set": s} for s in gains], "per_image": per}

    shipped = run({"uniform": [1.0, 2.0], "night": [1.0, 1.0]})
    table = study.compare(shipped, run({"uniform": [1.5, 2.5], "night": [0.5, 1.4]}), ["e2e"])["e2e"]
    assert table["uniform"]["difference"] == 0.5 and table["uniform"]["candidate_worst"] == 1.5
    assert table["night"]["difference"] == -0.05 and table["night"]["images_better"] == 1
    assert study.every_set_improved({"e2e": table}) == {"e2e": False}
    better = study.compare(shipped, run({"uniform": [1.1, 2.0], "night": [1.0, 1.2]}), ["e2e"])
    assert study.every_set_improved(better) == {"e2e": True}


def test_gated_chain_is_the_default_chain_as_load_restorer_builds_it(tmp_path, monkeypatch):
    from deblurkit.infer import restorers
    from deblurkit.io import load_image_rgb
    from deblurkit.models.checkpoint import save_safetensors
    from deblurkit.models.registry import create_model
    from studies.heldout import metrics

    designs = importlib.import_module("studies.eval_designs")
    net = create_model("nafnet-w16", **TINY_NAF).eval()
    torch.nn.init.zeros_(net.ending.weight)
    torch.nn.init.zeros_(net.ending.bias)  # NAFNet is residual: this network returns its input
    weights = tmp_path / "identity.safetensors"
    save_safetensors(net, weights, name="nafnet-custom", meta={})
    testsets = _testsets(tmp_path / "testsets", ["uniform"])
    gates = []

    def fake_kernel_stage(self, rgb, progress=None):  # a stand-in for (b): halves the contrast
        gates.append(self.no_blur_support)
        return rgb * 0.5 + 0.25

    monkeypatch.setattr(restorers.KernelDeconvRestorer, "restore_rgb", fake_kernel_stage)
    # the (b) column's runs, cached as eval_designs keeps them (the images are too small to run it)
    cache = tmp_path / "cache" / "kernel_deconv.json"
    delta = np.zeros((1, 1, 7, 7), np.float32)
    delta[0, 0, 3, 3] = 1.0
    for i in (0, 1):
        (cache.parent / "kernels").mkdir(parents=True, exist_ok=True)
        np.savez(cache.parent / "kernels" / f"uniform-{i:03d}.npz", kernels=delta, blurred=np.zeros((1, 1), bool))
    cache.write_text(json.dumps({"_code": designs.classical_code_version(),
                                 **{f"uniform/{i:03d}": {"metrics": [0.0, 0.0], "seconds": 1.0} for i in (0, 1)}}))
    out = tmp_path / "d"
    assert designs.main(["--e2e", str(weights), "--only-e2e", "--gated-chain", "--testsets", str(testsets),
                         "--sets", "uniform", "--cache", str(cache), "--out", str(out)]) == 0
    per_image = json.loads(out.with_suffix(".json").read_text())["per_image"]
    # the chain's kernel stage ran with the chain's support gate, on every image ...
    assert restorers.CHAIN_KERNEL_MIN_SUPPORT in gates
    for row in per_image:
        blur = load_image_rgb(testsets / "uniform" / "blur" / f"{row['index']:03d}.png")
        sharp = load_image_rgb(testsets / "uniform" / "sharp" / f"{row['index']:03d}.png")
        # ... and the network (here the identity) ran on its output
        assert row["gated-chain"] == pytest.approx(metrics(blur * 0.5 + 0.25, sharp), abs=1e-3)
        assert row["e2e"] == pytest.approx(row["identity"], abs=1e-3)
