"""evaluate(): baselines on synthesized data, reports, the RealBlur protocol on a datalist, bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from skimage import data as skdata

from deblurkit.cli import main
from deblurkit.errors import DeblurkitError
from deblurkit.eval.baselines import unsharp_mask_srgb
from deblurkit.eval.evaluate import EvalPair, PairSet, evaluate, folder_pairs, realblur_pairs, synth_pairs
from deblurkit.eval.metrics import psnr
from deblurkit.io import save_png


def _photo(size: int = 64) -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut()[120:120 + size, 180:180 + size].astype(np.float32) / 255.0)


def test_unsharp_sharpens_a_mild_blur():
    import cv2

    sharp = _photo()
    blur = cv2.GaussianBlur(sharp, (0, 0), 1.0)
    out = unsharp_mask_srgb(blur, sigma=2.0, amount=1.0)
    assert out.shape == blur.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    assert psnr(out, sharp, data_range=1.0) > psnr(blur, sharp, data_range=1.0)
    flat = np.full((16, 16, 3), 0.3, np.float32)
    np.testing.assert_allclose(unsharp_mask_srgb(flat), flat, atol=1e-6)


def _known_kernel_pairs(blur_space: str) -> PairSet:
    """Photo crops blurred (true convolution, reflect border) in linear light by a known motion kernel."""
    import cv2

    from deblurkit.color import linear_to_srgb, srgb_to_linear

    kernel = np.zeros((9, 9))
    kernel[4, :] = 1.0
    kernel[3, 6:] = 0.5
    kernel /= kernel.sum()
    flipped = np.ascontiguousarray(kernel[::-1, ::-1]).astype(np.float32)  # filter2D correlates

    def get(i: int) -> EvalPair:
        sharp = np.ascontiguousarray(skdata.astronaut()[100 + 40 * i:196 + 40 * i, 150:246].astype(np.float32) / 255)
        blur = linear_to_srgb(cv2.filter2D(srgb_to_linear(sharp), -1, flipped, borderType=cv2.BORDER_REFLECT))
        return EvalPair(f"a{i}", blur.astype(np.float32), sharp, kernel)

    return PairSet(2, get, {"kind": "known-kernel"}, has_kernels=True, blur_space=blur_space)


def test_nonblind_deconvolution_with_true_kernel_beats_identity():
    res = evaluate(["identity", "wiener", "richardson-lucy"], _known_kernel_pairs("linear")).summary["results"]
    assert res["wiener"]["psnr"] > res["identity"]["psnr"] + 2.0
    assert res["richardson-lucy"]["psnr"] > res["identity"]["psnr"] + 2.0
    # deconvolving in the wrong space (sRGB values instead of linear light) loses accuracy
    wrong = evaluate(["wiener"], _known_kernel_pairs("srgb")).summary["results"]["wiener"]
    assert wrong["psnr"] < res["wiener"]["psnr"] - 1.0


def test_report_files_on_synthesized_pairs(tmp_path):
    pairs = synth_pairs("naive", seed=1, count=3, size=64, source="dead-leaves")
    assert pairs.has_kernels and pairs.blur_space == "srgb"
    report = evaluate(["identity", "unsharp", "wiener", "richardson-lucy"], pairs, out_dir=tmp_path / "ev")
    res = report.summary["results"]
    assert res["identity"]["scored"] == 3 and res["wiener"]["scored"] == 3  # naive blur is uniform: kernels known

    # every output file, with the settings recorded
    with open(tmp_path / "ev" / "per_image.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and {r["method"] for r in rows} == {"identity", "unsharp", "wiener", "richardson-lucy"}
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["metrics"]["data_range"] == 1.0 and summary["metrics"]["ssim"]["sigma"] == 1.5
    assert summary["dataset"] == {"kind": "synth", "preset": "naive", "seed": 1, "count": 3, "size": 64,
                                  "source": "dead-leaves"}
    assert summary["methods"]["wiener"]["nsr"] == 1e-2 and summary["methods"]["wiener"]["blur_space"] == "srgb"
    md = (tmp_path / "ev" / "results.md").read_text()
    assert "| richardson-lucy |" in md and f"{res['identity']['psnr']:.2f}" in md
    from deblurkit.io import load_image_rgb

    fig = load_image_rgb(tmp_path / "ev" / "figure.png")
    assert fig.shape[0] > 3 * 192 and fig.shape[1] == 6 * 192  # 3 rows; blur + 4 methods + sharp


def test_realblur_protocol_on_a_datalist_aligns_the_input(tmp_path):
    import cv2

    root = tmp_path / "RealBlur"
    lines = []
    scene = skdata.astronaut()[:176, :176].astype(np.float32) / 255.0
    for i, (dx, dy) in enumerate([(1.5, -1.0), (-2.0, 0.5)]):
        H = np.array([[1, 0, dx], [0, 1, dy]], np.float64)
        moved = cv2.warpAffine(cv2.GaussianBlur(scene, (0, 0), 1.0), H, (176, 176), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REFLECT)
        save_png(root / f"scene{i}" / "gt" / "gt_1.png", scene[8:-8, 8:-8])
        save_png(root / f"scene{i}" / "blur" / "blur_1.png", np.clip(moved[8:-8, 8:-8], 0, 1))
        lines.append(f"scene{i}/gt/gt_1.png scene{i}/blur/blur_1.png")
    (root / "test.txt").write_text("\n".join(lines) + "\n")
    pairs = realblur_pairs(root, root / "test.txt")
    plain = evaluate(["identity"], pairs, protocol="standard").summary["results"]["identity"]["psnr"]
    rb = evaluate(["identity"], pairs, protocol="realblur", out_dir=tmp_path / "rb").summary
    assert rb["results"]["identity"]["ecc_failures"] == 0
    assert rb["results"]["identity"]["psnr"] > plain + 3.0  # misalignment no longer counts as error
    assert rb["metrics"]["ecc_iterations"] == 100 and rb["metrics"]["ecc_gauss_filt_size"] == 5


def test_kernel_methods_need_synthesized_data(tmp_path):
    root = tmp_path / "pairs"
    save_png(root / "blur" / "a.png", _photo(32))
    save_png(root / "sharp" / "a.png", _photo(32))
    with pytest.raises(DeblurkitError, match="true blur kernel"):
        evaluate(["identity", "wiener"], folder_pairs(root))
    with pytest.raises(DeblurkitError, match="unknown"):
        evaluate(["identity"], folder_pairs(root), protocol="psnr-y")


def test_cli_reports_bad_datasets_with_file_names(tmp_path, capsys):
    root = tmp_path / "bad"
    save_png(root / "blur" / "a.png", _photo(32))
    save_png(root / "sharp" / "a.png", _photo(32))
    save_png(root / "blur" / "orphan.png", _photo(32))
    assert main(["eval", "--data", str(root), "--out", str(tmp_path / "o")]) == 2
    assert "orphan.png" in capsys.readouterr().err

    root2 = tmp_path / "sizes"
    save_png(root2 / "blur" / "a.png", _photo(32))
    save_png(root2 / "sharp" / "a.png", _photo(40))
    assert main(["eval", "--data", str(root2), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "a.png" in err and "size" in err

    (tmp_path / "empty" / "blur").mkdir(parents=True)
    (tmp_path / "empty" / "sharp").mkdir(parents=True)
    assert main(["eval", "--data", str(tmp_path / "empty")]) == 2
    assert "no image pairs" in capsys.readouterr().err
    assert main(["eval", "--preset", "naive", "--data", str(root)]) == 2


def test_cli_end_to_end_on_synthesized_pairs(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["eval", "--preset", "naive", "--source", "dead-leaves", "--count", "2", "--size", "48",
                 "--methods", "identity,unsharp", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "| identity |" in text and "| unsharp |" in text
    assert sorted(p.name for p in out.iterdir()) == ["figure.png", "per_image.csv", "results.md", "summary.json"]


def test_spatially_varying_pairs_are_skipped_by_nonblind_methods():
    pairs = synth_pairs("gopro", seed=0, count=6, size=48, source="dead-leaves")
    assert pairs.blur_space == "linear"
    kernels = [pairs[i].kernel is not None for i in range(len(pairs))]
    assert 0 < sum(kernels) < len(kernels), kernels  # this seed gives both kinds
    report = evaluate(["identity", "wiener"], pairs)
    res = report.summary["results"]
    assert res["wiener"]["scored"] == sum(kernels) and res["wiener"]["skipped"] == len(kernels) - sum(kernels)
    assert res["identity"]["scored"] == len(kernels) and report.summary["common_images"] == sum(kernels)
    from deblurkit.eval.evaluate import markdown_table

    assert f"on the {sum(kernels)} images all methods scored" in markdown_table(report.summary)
