"""The kernel-gate study's rule fitting on hand-made records (no estimation)."""

from __future__ import annotations

import json

from studies.kernel_gate import choose_rule, gated_summary, leave_one_photo_out, load_records, rule_accepts


def _rec(set_name, photo, gain, overshoot, agreement, consistency=0.9, connectedness=1.0):
    return {"set": set_name, "photo": photo, "gain": gain, "blurred": True,
            "scores": {"overshoot": overshoot, "agreement": agreement, "consistency": consistency,
                       "connectedness": connectedness, "scale": 1.0}}


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


def test_the_loss_limit_can_read_the_true_kernel_and_leave_sets_aside():
    """A pair the true kernel loses too counts only by its excess; an unconstrained set only in the mean."""
    clipped = {**_rec("c", "p7", -3.0, 0.001, 0.95), "true_gain": -2.5}  # the deconvolution fails, not the kernel
    odd = _rec("d", "p8", -2.0, 0.001, 0.95)
    records = RECORDS + [clipped, odd]
    accept = [True] * len(records)
    plain = gated_summary(records, accept)
    assert plain["constrained_worst"] == -4.0  # p3 rings
    ok = [r["scores"]["overshoot"] < 0.01 and r["scores"]["connectedness"] > 0.6 for r in records]
    assert gated_summary(records, ok)["constrained_worst"] == -3.0
    s = gated_summary(records, ok, against_truth=True, unconstrained=("b",))
    assert s["constrained_worst"] == -2.0  # p7 by its 0.5 dB excess; p4 and p6 in set b aside; p8 counts
    assert s["sets"]["d"] == {"mean": -2.0, "worst": -2.0, "kept": 1, "n": 1}  # the means are unchanged
    # With that limit the fit may keep the gains of set a even though p7 and set b lose.
    rule = choose_rule(records, worst=2.0, against_truth=True, unconstrained=("b",))
    kept = rule_accepts(records, *rule)
    assert kept[0] and kept[1] and not kept[2]


def test_best_weight_is_chosen_per_pair_not_per_set():
    from studies.kernel_gate import best_per_pair

    # pair 0 prefers the first weight, pair 1 the second: the per-pair best beats either fixed weight
    rows = [[{"gain": 3.0}, {"gain": 1.0}], [{"gain": 0.0}, {"gain": 2.0}]]
    assert best_per_pair(rows, "gain") == 2.5
    assert best_per_pair(rows, "gain") > max(sum(r[i]["gain"] for r in rows) / len(rows) for i in range(2))


def test_prior_weights_are_compared_on_the_pairs_the_shipped_rule_deconvolves(tmp_path):
    """``weights`` deconvolves the trusted pairs only, with each weight, from the stored kernels."""
    import numpy as np

    from deblurkit.color import linear_to_srgb, srgb_to_linear
    from deblurkit.io import save_png
    from deblurkit.kernel_aware.deconv import convolve_fft
    from studies.kernel_gate import main, stored_kernel_path

    rng = np.random.default_rng(0)
    kernel = np.zeros((9, 9), np.float32)
    kernel[4, 1:8] = 1.0 / 7  # a 7-px horizontal shake
    root = tmp_path / "sets" / "uniform"
    (root / "kernels").mkdir(parents=True)
    items, cache = [], {}
    for i in range(2):
        sharp = np.clip(rng.random((96, 96, 3)), 0, 1).astype(np.float32)
        blur = linear_to_srgb(convolve_fft(srgb_to_linear(sharp), kernel))
        save_png(root / "sharp" / f"{i:03d}.png", sharp, bits=16)
        save_png(root / "blur" / f"{i:03d}.png", blur, bits=16)
        np.save(root / "kernels" / f"{i:03d}.npy", kernel)
        items.append({"index": i, "photo": f"p{i}.jpg", "kernel": f"kernels/{i:03d}.npy"})
        rec = _rec("uniform", f"p{i}.jpg", 1.0, 0.001 if i == 0 else 0.5, 0.95)  # pair 1 rings: declined
        rec["scores"]["support"] = 20.0
        cache[str(i)] = {k: rec[k] for k in ("photo", "gain", "blurred", "scores")}
        path = stored_kernel_path(tmp_path / "cache", "uniform", str(i))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, kernel)  # the "estimate" is the truth here
    (root / "meta.json").write_text(json.dumps({"items": items}))
    (tmp_path / "cache" / "uniform.json").write_text(json.dumps(cache))
    out = tmp_path / "res" / "w"
    assert main(["weights", "--testsets", str(tmp_path / "sets"), "--sets", "uniform", "--cache",
                 str(tmp_path / "cache"), "--combos", "2e-3:20", "1e-4:0", "--workers", "1", "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    row = res["sets"]["uniform"]
    assert row["pairs"] == 1  # the ringing pair is left out, as the pipeline declines it
    assert row["gain"] == row["true_gain"]  # the stored kernel is the truth
    assert row["gain"][1] > max(row["gain"][0], 0.0)  # noise-free: the weaker prior restores more
    assert row["best_gain"] == max(row["gain"]) and row["best_true_gain"] == max(row["true_gain"])  # one pair
    assert res["best_per_pair_mean_of_sets"] == row["best_gain"]

    # --chain: the default chain's network after each deconvolution, beside the network alone
    chain_out = tmp_path / "res" / "c"
    args = ["weights", "--testsets", str(tmp_path / "sets"), "--sets", "uniform", "--cache", str(tmp_path / "cache"),
            "--combos", "2e-3:20", "1e-4:0", "--workers", "1", "--chain", "--out", str(chain_out)]
    assert main(args) == 0
    res = json.loads(chain_out.with_suffix(".json").read_text())
    row = res["sets"]["uniform"]
    assert row["pairs"] == 1 and row["gain"] == json.loads(out.with_suffix(".json").read_text())["sets"]["uniform"]["gain"]
    assert len(row["chain_gain"]) == 2 and row["chain_gain"] != row["gain"]  # the network acted
    assert res["chain_worst_vs_network"] == [g - row["network_gain"] for g in row["chain_gain"]]  # one pair
    # a kernel below the chain's support gate is left to the network: nothing to compare
    cache["0"]["scores"]["support"] = 15.0
    (tmp_path / "cache" / "uniform.json").write_text(json.dumps(cache))
    assert main(args) == 1
