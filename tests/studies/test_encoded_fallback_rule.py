"""``studies/encoded_fallback_rule.py``: the three rules follow from one ``encoded_fallback=0`` run."""

from __future__ import annotations

import json

import pytest

from studies import encoded_fallback_rule


def _row(gain: float, *, declined: bool = False, encoded_at: float | None = None) -> dict:
    est = {"psnr_aligned": 30.0 + gain, "declined": declined, "scores": {"scale": encoded_at or 1.0}}
    if encoded_at is not None:
        est["blur_space"] = "srgb"
    return {"blurry": {"psnr_aligned": 30.0}, "true": {"psnr_aligned": 33.0}, "estimators": {"pipeline": est}}


def test_rules_keep_or_drop_the_kernels_found_on_encoded_values(tmp_path, capsys):
    rows = [_row(2.0), _row(0.0, declined=True), _row(3.0, encoded_at=2.0), _row(-6.0, encoded_at=1.0)]
    r = encoded_fallback_rule.rule_gains(rows, 1.0)
    assert r["none"]["gain"] == pytest.approx(0.5) and r["none"]["encoded"] == 0 and r["none"]["unchanged"] == 3
    assert r["large"]["gain"] == pytest.approx(1.25) and r["large"]["encoded"] == 1 and r["large"]["unchanged"] == 2
    assert r["all"]["gain"] == pytest.approx(-0.25) and r["all"]["worst"] == pytest.approx(-6.0)

    path = tmp_path / "r.json"
    path.write_text(json.dumps({"protocol": {"pipeline_params": {"encoded_fallback": 0.0}},
                                "sets": {"large": {"per_image": rows}}}))
    assert encoded_fallback_rule.main([str(path)]) == 0
    assert "| large | 4 | +0.50 | +1.25 (1 / 2 / +0.00) | -0.25 (2 / 1 / -6.00) | +3.00 |" in capsys.readouterr().out
    path.write_text(json.dumps({"protocol": {"pipeline_params": {}}, "sets": {}}))
    assert encoded_fallback_rule.main([str(path)]) == 2
