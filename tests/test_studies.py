"""The study scripts' data plumbing (the ``studies`` package; pytest puts the project root on the path)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _load(name: str):
    return importlib.import_module(f"studies.{name}")


def test_build_source_writes_train_photos_at_each_scale_and_never_a_test_photo(tmp_path, monkeypatch):
    study = _load("train_data_study")
    monkeypatch.setattr(study, "ROOT", tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("train_a.png", "test_b.png"):
        Image.fromarray(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)).save(photos / name)
    (tmp_path / "studies").mkdir()
    manifest = {"root": "photos", "photos": [{"path": "train_a.png", "split": "train"},
                                             {"path": "test_b.png", "split": "test"}]}
    (tmp_path / "studies" / "photos_manifest.json").write_text(json.dumps(manifest))
    cfg = {"source_dir": "src", "photo_side": 64, "photo_sides": [64, 32, 128],
           "dead_leaves_count": 1, "dead_leaves_size": 32}

    out = study.build_source(cfg)

    written = {p.name: Image.open(p).size for p in (out / "photos").iterdir()}
    # 128 would upsample the 100-px photo: an extra scale is never upsampled
    assert written == {"000_train_a_64.bmp": (64, 51), "000_train_a_32.bmp": (32, 26)}
    info = json.loads((out / "source.json").read_text())
    assert info["photos"] == ["train_a.png"] and info["photo_sides"] == [64, 32, 128]
    assert len(list((out / "dead-leaves").iterdir())) == 1


def test_a_configured_source_is_used_as_it_is_and_the_many_photos_config_resolves(tmp_path, monkeypatch):
    study = _load("train_data_study")
    cfg = study.load_study_config(study.ROOT / "studies" / "data_study_many.yaml")
    assert study.build_source(cfg) == study.ROOT / "studies" / "train_photos_many.yaml"
    train = study.train_config(cfg, "gopro", study.build_source(cfg))
    assert (train.preset, train.max_steps, train.batch_size, train.crop_size) == ("gopro", 3000, 8, 128)
    assert train.source.endswith("train_photos_many.yaml") and train.out_dir.endswith("train-data-study-many/gopro")
    monkeypatch.setattr(study, "ROOT", tmp_path)
    with pytest.raises(SystemExit, match="no-such.yaml"):
        study.build_source({"source": "no-such.yaml", "source_dir": "src"})
    assert not (tmp_path / "src").exists()  # nothing was written in its place


def test_data_study_lands_variant_by_variant_keeping_the_stored_scores(tmp_path, monkeypatch):
    study = _load("train_data_study")
    import deblurkit.infer

    monkeypatch.setattr(study, "ROOT", tmp_path)
    (tmp_path / "tests-sets").mkdir()
    rng = np.random.default_rng(0)
    sharp = rng.random((16, 16, 3)).astype(np.float32)
    pairs = {0: (np.clip(sharp + 0.1, 0, 1), sharp), 1: (np.clip(sharp - 0.1, 0, 1), sharp)}
    monkeypatch.setattr(study, "available_sets", lambda root: ["uniform"])
    monkeypatch.setattr(study, "set_items", lambda root, s, limit, all_photos: (root, [{"index": 0}, {"index": 1}]))
    monkeypatch.setattr(study, "load_pair", lambda root, i: pairs[i])
    monkeypatch.setattr(study, "run_wall_seconds", lambda run: {"realistic": 10.0, "naive": 20.0}[run.name])
    for v in ("realistic", "naive"):  # finished runs: their weights exist
        (tmp_path / "runs" / v).mkdir(parents=True)
        (tmp_path / "runs" / v / "model.safetensors").write_bytes(b"")
    near = np.clip(sharp + 0.01, 0, 1)  # a "network" that returns nearly the sharp image
    monkeypatch.setattr(deblurkit.infer, "load_restorer", lambda path, **kw: (lambda blur: near))
    cfg = {"variants": ["naive", "gopro", "realistic"], "runs_dir": "runs", "testsets_dir": "tests-sets",
           "out_dir": "out", "train": {}}

    study.run_variants(cfg, ["realistic"], train_missing=False)
    first = study.stored_results(cfg)
    assert first["methods"] == ["identity", "realistic"]

    monkeypatch.setattr(deblurkit.infer, "load_restorer", lambda path, **kw: (lambda blur: blur))  # no gain
    # gopro has no weights and is not trained here; realistic is scored already and not run again
    study.run_variants(cfg, ["naive", "gopro", "realistic"], train_missing=False)
    second = study.stored_results(cfg)
    study.write_results(cfg, second, 1.0)
    assert second["methods"] == ["identity", "naive", "realistic"]  # in the config's order
    table = second["summary"]["table"]["uniform"]
    assert table["naive"]["gain_db"] == pytest.approx(0.0)
    assert table["realistic"]["gain_db"] > 10  # the stored scores, not re-run
    assert table["naive"]["realistic_wins"] == 2
    assert second["summary"]["train_wall_s"] == {"naive": 20.0, "realistic": 10.0}
    assert sorted({(r["method"], r["image"]) for r in second["rows"]}) == sorted(
        (m, f"{i:03d}.png") for m in ("identity", "naive", "realistic") for i in (0, 1))
    assert (tmp_path / "out" / "results.md").read_text().count("| realistic |") == 2

    study.run_variants(cfg, ["realistic"], train_missing=False, rescore=True)  # scored again: no gain now
    assert study.stored_results(cfg)["summary"]["table"]["uniform"]["realistic"]["gain_db"] == pytest.approx(0.0)


def _fake_results(tmp_path: Path, name: str, images: list[tuple[str, float, float, float]]) -> tuple[Path, Path]:
    """Results json + kernel cache for images ``(set, support px², gain of e2e, gain of the chain)``."""
    kernel_dir = tmp_path / f"{name}-kernels"
    kernel_dir.mkdir()
    per_image = []
    for i, (set_name, support, e2e, chain) in enumerate(images):
        k = np.zeros((1, 1, 31, 31), np.float32)
        k.reshape(-1)[: max(1, int(support))] = 1.0  # a box of N equal pixels has support N
        np.savez(kernel_dir / f"{set_name}-{i:03d}.npz", kernels=k, blurred=np.array([[support > 0]]))
        per_image.append({"set": set_name, "index": i, "identity": [20.0, 0.5],
                          "e2e": [20.0 + e2e, 0.5], "deconv+e2e": [20.0 + chain, 0.5]})
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"per_image": per_image}))
    return path, kernel_dir


def test_chain_gate_picks_the_threshold_on_validation_only(tmp_path):
    gate = _load("chain_gate")
    # validation: a long kernel where the chain wins, a short wrong one where it loses badly
    val, val_k = _fake_results(tmp_path, "val", [("uniform", 40, 0.1, 2.0), ("uniform", 10, 1.0, -1.0),
                                                  ("uniform", 0, 0.5, 0.5), ("night", 25, 0.3, 0.2)])
    # test: deliberately different, to check that it does not influence the choice
    test, test_k = _fake_results(tmp_path, "test", [("uniform", 12, 0.0, 5.0), ("night", 50, 1.0, 0.0)])
    out = tmp_path / "gate"
    assert gate.main(["--val", str(val), "--val-kernels", str(val_k), "--test", str(test),
                      "--test-kernels", str(test_k), "--out", str(out)]) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    # T = 40: the chain acts on the long kernel only (night's 25 px² chain is 0.1 dB worse)
    assert abs(result["threshold"] - 40.0) < 1e-6
    assert abs(result["validation"]["uniform"][0] - 3.5 / 3) < 1e-9
    assert result["test"] == {"uniform": [0.0, 0.0], "night": [0.0, 0.0]}  # scored with T, not tuned on it


def test_chain_gate_pools_several_results_files_and_refuses_a_set_twice(tmp_path):
    gate = _load("chain_gate")
    val_a, val_k = _fake_results(tmp_path, "val-a", [("uniform", 40, 0.1, 2.0), ("uniform", 10, 1.0, -1.0)])
    # a second validation file with another set; its kernels go to the same cache folder
    val_b, val_b_k = _fake_results(tmp_path, "val-b", [("medium", 0, 0.0, 0.0), ("medium", 20, 0.2, 1.5)])
    for f in val_b_k.iterdir():
        f.rename(val_k / f.name)
    test, test_k = _fake_results(tmp_path, "test", [("uniform", 12, 0.0, 5.0)])
    out = tmp_path / "gate"
    assert gate.main(["--val", str(val_a), str(val_b), "--val-kernels", str(val_k), "--test", str(test),
                      "--test-kernels", str(test_k), "--out", str(out)]) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    # pooled: T = 20 lets the chain act on medium's 20 px² kernel (+1.5) and uniform's 40 px² one
    assert abs(result["threshold"] - 20.0) < 1e-6
    assert set(result["validation"]) == {"uniform", "medium"}
    with pytest.raises(SystemExit, match="uniform"):
        gate.main(["--val", str(val_a), str(val_a), "--val-kernels", str(val_k), "--test", str(test),
                   "--test-kernels", str(test_k), "--out", str(out)])


def test_kernel_study_sparsity_rises_with_blur_and_rules_pick_per_image():
    study = _load("kernel_estimation_study")
    from scipy.ndimage import uniform_filter

    rng = np.random.default_rng(0)
    # Piecewise-flat image: sparse gradients; blurring spreads them, so |grad|_1 / |grad|_2 rises.
    sharp = np.kron(rng.random((12, 12)), np.ones((10, 10)))[..., None].repeat(3, axis=2)
    blurred = uniform_filter(sharp, size=(1, 9, 1))
    assert study.normalised_sparsity(blurred) > 1.5 * study.normalised_sparsity(sharp)

    names = list(study.SETTINGS) + ["delta", "true"]

    def image(gains: dict[str, float], rule: str) -> dict:
        rows = {n: {"similarity": 0.5, "support_ratio": 2.0, "gain": gains.get(n, -1.0), "sparsity": 1.0} for n in names}
        return {"rows": rows, "consensus": rule, "sparsity": rule, "network": rule, "network, kernels only": rule,
                "free energy": "true" if rule == "delta" else rule, "oracle": max(rows, key=lambda n: rows[n]["gain"])}

    per_image = [image({"default": 2.0, "delta": 0.1, "true": 3.0}, "default"),
                 image({"default": -4.0, "gamma 8": 1.0, "delta": 0.3, "true": 2.0}, "delta")]
    summary = {s["row"]: s for s in study.summarise(per_image)}
    assert summary["default"]["gain"] == -1.0 and summary["default"]["worst"] == -4.0
    assert summary["default"]["oracle_gated"] == 1.0  # a gate that knew would drop the -4 dB image
    assert summary["consensus"]["gain"] == (2.0 + 0.3) / 2
    assert summary["network"]["gain"] == summary["network, kernels only"]["gain"] == (2.0 + 0.3) / 2
    assert summary["free energy"]["gain"] == (2.0 + 2.0) / 2
    assert summary["true"]["gain"] == 2.5


def test_kernel_refine_training_runs_through_the_library_loop_and_resumes_exactly(tmp_path):
    import cv2
    import pytest
    import torch

    from deblurkit.kernel_aware.refine import load_kernel_refine_model
    from deblurkit.models.kernel_deconv_net import KernelDeconvNet
    from deblurkit.train import resolve_config, train
    from deblurkit.train.checkpoint import load_checkpoint
    from deblurkit.train.config import parse_overrides

    study = _load("train_kernel_refine")
    rng, k = np.random.default_rng(0), study.KSIZE
    sharp = np.stack([cv2.GaussianBlur(rng.random((40, 40, 3)).astype(np.float32), (0, 0), 2) for _ in range(6)])
    kernel = np.zeros((6, k, k), np.float32)
    kernel[:, k // 2, k // 2 - 2:k // 2 + 3] = 0.2  # 5 px horizontal shake
    blur = np.stack([cv2.filter2D(s, -1, kernel[0], borderType=cv2.BORDER_REFLECT) for s in sharp])
    (cache := tmp_path / "cache").mkdir()
    np.savez(cache / "shard-000-000.npz", blur=(blur.transpose(0, 3, 1, 2).clip(0, 1) * 255).round().astype(np.uint8),
             sharp=(sharp.transpose(0, 3, 1, 2) * 255).round().astype(np.uint8), kernel=kernel, info="[]")
    task = study.KernelRefineTask(cache)
    # a delta kernel: every Wiener copy is the blurry image itself
    item = task.build_datasets(resolve_config(overrides={"val_fraction": 0.34}))[0][0]
    delta = torch.zeros(1, k, k)
    delta[0, k // 2, k // 2] = 1
    x = task.model_input({"blur": item["blur"][None], "kernel": delta}, training=False)
    assert x.shape == (1, 12, 40, 40) and torch.allclose(x[:, 3:], item["blur"][None].repeat(1, 3, 1, 1), atol=2e-3)

    args = ["max_steps=4", "crop_size=32", "batch_size=2", "val_fraction=0.34", "val_count=1", "val_every=2",
            "checkpoint_every=2", "log_every=1", "progress=false", "tensorboard=false"]
    assert study.main(["train", "--cache", str(cache), "--out", str(tmp_path / "full"), *args]) == 0
    # the same run stopped after step 2 (checkpointed), then resumed by the study
    cfg = resolve_config(overrides={**study.RECIPE, "out_dir": str(tmp_path / "cut"), **parse_overrides(args)})

    def stop_after_2(step: int, _row: dict) -> None:
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, model_factory=lambda: KernelDeconvNet(**study.HPARAMS), task=task, on_step=stop_after_2)
    assert study.main(["train", "--cache", str(cache), "--out", str(tmp_path / "cut"), "--resume", *args]) == 0
    full, cut = (load_checkpoint(tmp_path / d / "checkpoints" / "last.pt")["model"] for d in ("full", "cut"))
    assert all(torch.equal(full[key], cut[key]) for key in full)
    assert "val_psnr" in (tmp_path / "full" / "metrics.csv").read_text()

    assert study.main(["export", "--run", str(tmp_path / "full"), "--out", str(tmp_path / "kr.safetensors")]) == 0
    model, meta = load_kernel_refine_model(tmp_path / "kr.safetensors")
    assert meta["name"] == "kernel-refine" and meta["extra"]["steps"] == 4 and model.hparams == study.HPARAMS
    assert meta["extra"]["training_pairs"] == 3 and meta["extra"]["wall_seconds"] > 0  # read by studies.eval_designs


def test_variant_scores_keep_one_record_per_variant(tmp_path):
    from studies.variant_scores import VariantScores

    store = VariantScores(tmp_path / "out")
    assert store.scored(["a", "b"]) == [] and "a" not in store
    store.write("b", {"rows": [{"image": "x", "psnr": 1.0}], "train_wall_s": 5.0})
    store.write("a", {"rows": [{"image": "x", "psnr": 2.0}, {"image": "y", "psnr": 3.0}]})
    assert store.scored(["a", "b", "c"]) == ["a", "b"]
    assert [r["psnr"] for r in store.rows(["b", "a"])] == [1.0, 2.0, 3.0]
    assert store.read("b") == {"variant": "b", "rows": [{"image": "x", "psnr": 1.0}], "train_wall_s": 5.0}
    with pytest.raises(TypeError, match="rows"):
        store.write("c", {"psnr": 1.0})
    assert "c" not in store and sorted(p.name for p in store.folder.iterdir()) == ["a.json", "b.json"]
