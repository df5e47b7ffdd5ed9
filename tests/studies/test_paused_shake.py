"""The paused-shake sets: same paths and photos, exposure held at pauses in one of the two."""

from __future__ import annotations

import json

import numpy as np

from deblurkit.io import load_image_rgb, save_png
from studies import paused_shake


def test_two_sets_from_the_recorded_paths(tmp_path, rng):
    src = tmp_path / "sets" / "capture"
    line = [[float(x), 0.0] for x in np.linspace(0, 12, 64)]
    items = [{"index": 0, "photo": "a.png", "params": {"trajectory_px": line, "noise_model": "rsblur-realblur",
                                                      "shot_noise": 1e-3, "read_noise_var": 1e-6}},
             {"index": 1, "photo": "b.png", "params": {"blur_type": "rotational"}}]  # no path: skipped
    for it in items:
        save_png(src / "sharp" / f"{it['index']:03d}.png", rng.random((48, 48, 3)).astype(np.float32))
    (src / "meta.json").write_text(json.dumps({"items": items}))
    out = tmp_path / "out"

    assert paused_shake.main(["--testsets", str(tmp_path / "sets"), "--every", "1", "--out", str(out)]) == 0

    even, paused = (np.load(out / kind / "capture" / "kernels" / "000.npy") for kind in ("even", "paused"))
    assert np.isclose(even.sum(), 1.0) and np.isclose(paused.sum(), 1.0)
    assert paused.max() > 1.5 * even.max()  # exposure held at the pauses
    for kind in ("even", "paused"):
        meta = json.loads((out / kind / "capture" / "meta.json").read_text())
        assert [it["index"] for it in meta["items"]] == [0]
        assert load_image_rgb(out / kind / "capture" / "blur" / "000.png").shape == (48, 48, 3)
    assert len(json.loads((out / "paused" / "capture" / "meta.json").read_text())["items"][0]["pauses"]) == 2

    noisy = tmp_path / "noisy"
    assert paused_shake.main(["--testsets", str(tmp_path / "sets"), "--every", "1", "--noise", "--out", str(noisy)]) == 0
    clean, dirty = (load_image_rgb(d / "even" / "capture" / "blur" / "000.png") for d in (out, noisy))
    assert 0.005 < float(np.std(dirty - clean)) < 0.2  # the pair's recorded noise, in sRGB


def test_pauses_are_seeded_per_pair():
    assert paused_shake.pauses_for(3, 0) == paused_shake.pauses_for(3, 0) != paused_shake.pauses_for(4, 0)
    assert all(0.05 <= at <= 0.95 and 0.15 <= share <= 0.30 for at, share in paused_shake.pauses_for(3, 0))


def test_missing_set_is_refused(tmp_path):
    assert paused_shake.main(["--testsets", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
