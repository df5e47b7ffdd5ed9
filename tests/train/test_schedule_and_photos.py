"""Crop-size schedule, photo-manifest data with validation photos, data-wait logging, device/amp resume."""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from train_testlib import TinyResidualNet

from deblurkit.errors import DeblurkitError
from deblurkit.train import resolve_config, train
from deblurkit.train.data import CropSchedule, StepBatchSampler, build_datasets


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_schedule_stages_and_sampler_positions():
    cfg = resolve_config(overrides=["crop_sizes=[32,48,64]", "crop_size=64", "batch_sizes=[4,2,1]",
                                    "crop_milestones=[3,5]", "max_steps=8"])
    sched = CropSchedule.from_config(cfg)
    assert [sched.crop(s) for s in range(8)] == [32, 32, 32, 48, 48, 64, 64, 64]
    assert [sched.batch(s) for s in range(8)] == [4, 4, 4, 2, 2, 1, 1, 1]
    assert [sched.samples_before(s) for s in range(9)] == [0, 4, 8, 12, 14, 16, 17, 18, 19]
    full = list(StepBatchSampler(7, 4, seed=3, start_step=0, max_steps=8, schedule=sched))
    assert [len(b) for b in full] == [4, 4, 4, 2, 2, 1, 1, 1] and {c for b in full[3:5] for *_, c in b} == {48}
    # the stream of indices is the same permutation stream as without a schedule: no sample skipped or repeated
    flat = [i for b in full for i, *_ in b]
    assert sorted(flat[:7]) == list(range(7)) and sorted(flat[7:14]) == list(range(7))
    assert list(StepBatchSampler(7, 4, seed=3, start_step=4, max_steps=8, schedule=sched)) == full[4:]
    even = CropSchedule.from_config(resolve_config(overrides=["crop_sizes=[32,64]", "crop_size=64", "max_steps=10"]))
    assert even.starts == (0, 5) and even.batches == (4, 4)


def _photo_manifest(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(24):
        small = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        (root / "photos").mkdir(parents=True, exist_ok=True)
        Image.fromarray(small).resize((96, 96), Image.BILINEAR).save(root / "photos" / f"{i:02d}.jpg", quality=95)
    path = root / "m.yaml"
    path.write_text(yaml.safe_dump({"validation_percent": 25, "test_percent": 25,
                                    "sources": [{"name": "p", "folder": "photos"}]}))
    return path


def _cfg(out: Path, manifest: Path, **kw):
    base = {"out_dir": str(out), "data": "synth", "source": str(manifest), "preset": "naive", "progress": False,
            "tensorboard": False, "crop_sizes": "[32,48]", "crop_size": 48, "batch_sizes": "[2,1]",
            "crop_milestones": "[3]", "max_steps": 5, "scale_min": 0.5, "val_crop": 32, "val_count": 2,
            "val_every": 0, "checkpoint_every": 2, "log_every": 1, "synth_length": 1000}
    base.update(kw)
    return resolve_config(overrides={k: str(v) for k, v in base.items()})


def test_validation_uses_only_validation_photos(tmp_path):
    manifest = _photo_manifest(tmp_path)
    train_ds, val_ds, info = build_datasets(_cfg(tmp_path / "r", manifest))
    val_names = {val_ds.base.sample(i).params[0]["crop"]["source"] for i in range(len(val_ds))}
    train_names = {train_ds.sample(i).params[0]["crop"]["source"] for i in range(40)}
    val_photos = {p.name for s in val_ds.base.source.sources for p in s.photos}
    assert val_names <= val_photos and not train_names & val_photos
    assert "validation photos" in info["val"]
    with pytest.raises(DeblurkitError, match="photo manifest"):
        build_datasets(resolve_config(overrides=["source=dead-leaves", "scale_min=0.5"]))


def test_schedule_run_resumes_exactly_and_logs_the_data_wait(tmp_path):
    manifest = _photo_manifest(tmp_path)
    factory = functools.partial(TinyResidualNet, width=8)
    full = train(_cfg(tmp_path / "a", manifest), model_factory=factory)

    def stop_at_4(step, _info):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_cfg(tmp_path / "b", manifest), model_factory=factory, on_step=stop_at_4)
    resumed = train(_cfg(tmp_path / "b", manifest), model_factory=factory, resume=True)
    for name, ref in full.model.state_dict().items():
        assert torch.equal(ref, resumed.model.state_dict()[name]), name
    with open(tmp_path / "a" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["crop"], r["batch"]) for r in rows] == [("32", "2")] * 3 + [("48", "1")] * 2
    assert all(0 <= float(r["data_wait"]) <= 1 and float(r["step_s"]) > 0 for r in rows)


def test_resume_may_change_device_and_amp_but_not_the_data(tmp_path):
    manifest = _photo_manifest(tmp_path)
    factory = functools.partial(TinyResidualNet, width=8)
    train(_cfg(tmp_path / "a", manifest, max_steps=2, crop_sizes="[]", batch_sizes="[]", crop_milestones="[]",
               crop_size=32, batch_size=1), model_factory=factory)
    # continued with bf16 autocast (as on a GPU; the CPU path here), then back without it
    more = _cfg(tmp_path / "a", manifest, max_steps=3, crop_sizes="[]", batch_sizes="[]", crop_milestones="[]",
                crop_size=32, batch_size=1, amp="bf16", threads=1, checkpoint_minutes=0.001)
    with pytest.raises(DeblurkitError, match="max_steps: 2 -> 3"):
        train(more, model_factory=factory, resume=True)
    res = train(_cfg(tmp_path / "a", manifest, max_steps=2, crop_sizes="[]", batch_sizes="[]", crop_milestones="[]",
                     crop_size=32, batch_size=1, amp="bf16", threads=1, checkpoint_minutes=0.001),
                model_factory=factory, resume=True)
    assert res.step == 2
    with pytest.raises(DeblurkitError, match="scale_min"):
        train(_cfg(tmp_path / "a", manifest, max_steps=2, crop_sizes="[]", batch_sizes="[]", crop_milestones="[]",
                   crop_size=32, batch_size=1, scale_min=0.7), model_factory=factory, resume=True)
