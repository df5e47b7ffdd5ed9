"""studies.long_run_progress: wall time summed over resumed sessions, the validation curve."""

from __future__ import annotations

import importlib

import yaml


def test_sessions_speed_and_validation_curve(tmp_path):
    study = importlib.import_module("studies.long_run_progress")
    run = tmp_path / "run"
    run.mkdir()
    cfg = {k: 0 for k in ("scale_min", "scale_max", "lr", "ema_decay", "val_count", "val_crop", "threads",
                          "num_workers")}
    cfg.update(model="nafnet-w16", init_weights="nafnet-w16", source="m.yaml", preset="realistic", crop_sizes=[],
               batch_sizes=[], crop_milestones=[], device="cpu", amp="none", max_steps=100)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    (run / "metrics.csv").write_text(
        "step,loss,lr,val_psnr,val_ssim,val_input_psnr,elapsed_s,crop,batch,step_s,data_wait\n"
        "10,1,1,,,,100,128,8,10,0.01\n"
        "20,1,1,25.0,0.7,23.0,200,128,8,10,0.01\n"
        "30,1,1,,,,50,128,8,5,0.02\n"  # resumed at step 20: the clock restarts
        "40,1,1,26.0,0.8,23.0,100,128,8,5,0.02\n")
    s = study.summarise(run, {})
    assert s["sessions"] == [{"from_step": 10, "to_step": 20, "wall_s": 200.0},
                             {"from_step": 30, "to_step": 40, "wall_s": 100.0}]
    assert s["wall_s"] == 300.0 and s["steps_done"] == 40 and s["steps_per_hour_overall"] == 480
    assert [v["step"] for v in s["validation"]] == [20, 40]
    md = study.markdown(s)
    assert "| 40 | 26.00 | 23.00 | +3.00 | 0.8000 |" in md
