"""The kernel-gate study's rule fitting on hand-made records (no estimation)."""

from __future__ import annotations

import json

from studies.kernel_gate import choose_rule, gated_summary, leave_one_photo_out, load_records, rule_accepts


def _rec(set_name, photo, gain, overshoot, agreement, consistency=0.9, connectedness=1.0):
    return {"set": set_name, "photo": photo, "gain": gain, "blurred": True,
            "scores": {"overshoot": overshoot, "agreement": agreement, "consistency": consistency,
                       "connectedness": connectedness}}


RECORDS = [
    _rec("a", "p1", +3.0, 0.001, 0.95), _rec("a", "p2", +2.0, 0.002, 0.85),
    _rec("a", "p3", -4.0, 0.020, 0.90),  # rings: caught by the overshoot threshold
    _rec("b", "p1", +1.0, 0.001, 0.90), _rec("b", "p4", -2.0, 0.001, 0.55),  # depends on settings
    _rec("b", "p5", +0.5, 0.003, 0.75),
    _rec("b", "p6", -3.0, 0.001, 0.95, connectedness=0.5),  # split into copies: caught by connectedness
]


def test_declined_pairs_gain_nothing_and_sets_weigh_equally():
    s = gated_summary(RECORDS, [True, False, False, True, False, False, False])
    assert s["sets"]["a"] == {"mean": 1.0, "worst": 0.0, "kept": 1, "n": 3}
    assert s["mean_of_sets"] == (1.0 + 1.0 / 4) / 2 and s["worst"] == 0.0


def test_fitted_rule_keeps_the_gains_and_makes_no_pair_worse():
    rule = choose_rule(RECORDS, worst=0.0)
    accepted = rule_accepts(RECORDS, *rule)
    assert accepted == [True, True, False, True, False, True, False]
    assert gated_summary(RECORDS, accepted)["worst"] >= 0.0
    # Leave one photo out: each photo is judged by a rule fitted without it.
    loo = leave_one_photo_out(RECORDS, lambda train, test: rule_accepts(test, *choose_rule(train, 0.0)))
    assert len(loo) == len(RECORDS) and not loo[2]


def test_pairs_from_another_photo_source_form_their_own_sets(tmp_path):
    rec = _rec("uniform", "img_001.jpg", +1.0, 0.001, 0.9)
    (tmp_path / "uniform.json").write_text(json.dumps({"0": {k: rec[k] for k in ("photo", "gain", "blurred", "scores")}}))
    loaded = load_records(tmp_path, ["uniform", "varying"], "urban")
    assert [(r["set"], r["photo"], r["index"]) for r in loaded] == [("urban-uniform", "urban/img_001.jpg", 0)]
