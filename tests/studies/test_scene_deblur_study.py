"""The scene study's summary over seeds, paired against baseline runs (hand-made run files, no fitting)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studies.scene_deblur_study import summarize


def _run(path: Path, seed: int, psnr: float, gaussians: int, floaters: int) -> str:
    fit = {"test": {"psnr": psnr, "ssim": 0.7}, "gaussians": gaussians, "peak_rss_mb": 300.0,
           "seconds": 40.0, "floaters": {"count": floaters, "opacity_share": floaters / gaussians}}
    run = {"settings": {"seed": seed}, "blurry_inputs": {"psnr": 20.0}, "fits": {"joint": fit}}
    path.write_text(json.dumps(run))
    return str(path)


def test_baseline_differences_are_paired_by_seed(tmp_path: Path) -> None:
    runs = [_run(tmp_path / "a0.json", 0, 22.0, 1800, 1000), _run(tmp_path / "a1.json", 1, 25.0, 1700, 900)]
    # listed in the other order: pairing goes by seed, not by position
    base = [_run(tmp_path / "b1.json", 1, 25.5, 2300, 1400), _run(tmp_path / "b0.json", 0, 21.0, 2400, 1500)]
    out = summarize(runs, tmp_path / "summary", baseline=base)
    row = out["baseline"]["fits"]["joint"]
    assert row["psnr_minus_baseline"]["values"] == pytest.approx([1.0, -0.5])
    assert row["psnr_minus_baseline"]["mean"] == pytest.approx(0.25)
    assert row["gaussians"]["mean"] == 1750 and row["baseline_gaussians"]["mean"] == 2350
    assert row["floaters_count"]["values"] == [1000, 900]
    assert row["baseline_floaters_count"]["values"] == [1500, 1400]
    md = (tmp_path / "summary.md").read_text()
    assert "| joint | 0.25 ± 1.06 [-0.50, 1.00] | 1 of 2 |" in md
    assert json.loads((tmp_path / "summary.json").read_text())["baseline"]["runs"] == base


def test_baseline_without_a_seed_is_an_error(tmp_path: Path) -> None:
    runs = [_run(tmp_path / "a0.json", 0, 22.0, 1800, 1000), _run(tmp_path / "a1.json", 1, 25.0, 1700, 900)]
    with pytest.raises(SystemExit, match=r"seed\(s\) \[1\]"):
        summarize(runs, tmp_path / "summary", baseline=[_run(tmp_path / "b0.json", 0, 21.0, 2400, 1500)])
    assert not (tmp_path / "summary.json").exists()


def test_baseline_of_scenes_without_floater_counts(tmp_path: Path) -> None:
    # the lego views have no true Gaussians, so their runs store floaters as None
    def lego(path: Path, seed: int, psnr: float) -> str:
        _run(path, seed, psnr, 1000, 10)
        run = json.loads(path.read_text())
        run["fits"]["joint"]["floaters"] = None
        path.write_text(json.dumps(run))
        return str(path)

    out = summarize([lego(tmp_path / "a.json", 0, 15.0)], tmp_path / "s",
                    baseline=[lego(tmp_path / "b.json", 0, 14.0)])
    row = out["baseline"]["fits"]["joint"]
    assert row["psnr_minus_baseline"]["values"] == pytest.approx([1.0]) and "floaters_count" not in row
    expected = ("| joint | 1.00 ± 0.00 [1.00, 1.00] | 1 of 1 | "
                "1000 ± 0 [1000, 1000] / 1000 ± 0 [1000, 1000] | - | - |")
    assert expected in (tmp_path / "s.md").read_text()
