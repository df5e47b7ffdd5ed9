"""Real code paths: the `deblurkit deblur` entry point, the runtime's restorers, and the demo."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from app_testutils import SharpenRestorer, blurry_rgb, png_bytes
from PIL import Image

# deblurkit.cli.main() with only the deblur command in its table, so this test does not depend on
# the other commands' modules (tests/test_cli.py checks the full table).
_MAIN = ("import sys; from deblurkit import cli; cli.COMMANDS = {'deblur': cli.COMMANDS['deblur']}; "
         "raise SystemExit(cli.main(sys.argv[1:]))")


def _cli(*argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _MAIN, "deblur", *argv], input=stdin,
                          capture_output=True, timeout=120, check=False)


def test_entry_point_identity_round_trip_and_exit_codes(tmp_path):
    arr = (blurry_rgb(20, 24) * 255).astype(np.uint8)
    src = tmp_path / "a.png"
    src.write_bytes(png_bytes(arr))
    proc = _cli(str(src), "-m", "identity", "--quiet")
    assert proc.returncode == 0, proc.stderr.decode()
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a-deblurred.png")), arr)
    # pipes: stdin -> stdout, same bytes-level image
    proc = _cli("-", "-m", "identity", "--quiet", stdin=src.read_bytes())
    assert proc.returncode == 0
    from io import BytesIO

    np.testing.assert_array_equal(np.asarray(Image.open(BytesIO(proc.stdout))), arr)
    # a user mistake: exit status 2 and exactly one line on stderr, no traceback, no output file
    bad = tmp_path / "bad.jpg"
    bad.write_text("hello")
    proc = _cli(str(bad), "-m", "identity")
    err = proc.stderr.decode().strip()
    assert proc.returncode == 2 and err.startswith("deblurkit: error: ") and "\n" not in err and "not an image" in err
    assert not (tmp_path / "bad-deblurred.jpg").exists()
    proc = _cli(str(src), "-m", "no-such-model", "-o", str(tmp_path / "other.png"))
    assert proc.returncode == 2 and "unknown restorer" in proc.stderr.decode()


def test_default_restorer_sharpens_a_blurred_photo(tmp_path):
    """load_restorer('default') through the CLI core on a small motion-blurred photo."""
    import cv2
    from skimage import data

    from deblurkit.app.cli import deblur_files
    from deblurkit.app.restore import make_loader

    sharp = data.camera()[128:256, 128:256]
    k = np.zeros((9, 9), np.float32)
    k[4, :] = 1 / 9
    linear = (sharp / 255.0).astype(np.float32) ** 2.2  # blur happens in linear light, as in a camera
    blurred = cv2.filter2D(linear, -1, k, borderType=cv2.BORDER_REFLECT) ** (1 / 2.2)
    blurred = (blurred * 255 + 0.5).astype(np.uint8)
    src = tmp_path / "cam.png"
    src.write_bytes(png_bytes(blurred))
    assert deblur_files([str(src)], model="default", loader=make_loader(), quiet=True) == 0
    out = np.asarray(Image.open(tmp_path / "cam-deblurred.png"))
    assert out.shape == blurred.shape and out.dtype == np.uint8
    err_before = np.abs(blurred.astype(float) - sharp).mean()
    err_after = np.abs(out.astype(float) - sharp).mean()
    assert err_after < err_before, (err_before, err_after)
    psnr = lambda a: 10 * np.log10(255.0**2 / np.mean((a.astype(float) - sharp) ** 2))
    assert psnr(out) > psnr(blurred) + 1.0  # measured about +2.0 dB
    # One pass of the network (no rotation averaging) restores horizontal detail: gradients grow.
    single = tmp_path / "single.png"
    assert deblur_files([str(src)], output=str(single), model="default", quiet=True,
                        loader=make_loader(self_ensemble=False)) == 0
    one_pass = np.asarray(Image.open(single))
    grad = lambda a: np.abs(np.diff(a.astype(float), axis=1)).mean()
    assert grad(one_pass) > grad(blurred)


def test_deblur_demo_writes_before_after(tmp_path):
    import json

    from deblurkit.demo import write_deblur_demo

    write_deblur_demo(tmp_path, model="fake", loader=lambda name: SharpenRestorer(name), synthetic_size=96)
    names = {p.name for p in tmp_path.iterdir()}
    for ex in ("clock", "synthetic"):
        assert {f"{ex}-before.png", f"{ex}-after.png", f"{ex}-compare.png"} <= names
    before = np.asarray(Image.open(tmp_path / "clock-before.png"))
    assert before.shape == (300, 400)  # the real motion-blurred photo, gray kept gray
    assert not np.array_equal(before, np.asarray(Image.open(tmp_path / "clock-after.png")))
    summary = json.loads((tmp_path / "summary.json").read_text())
    syn = summary["examples"]["synthetic"]
    assert syn["synth_params"]["preset"] == "realistic" and "psnr" in syn["blurry_vs_sharp"]


def test_command_modules_import_light_and_serve_options_validate():
    code = ("import sys, argparse; import deblurkit.app.cli as a, deblurkit.app.serve_cli as s; "
            "print(sorted(m for m in ('torch', 'fastapi', 'cv2', 'uvicorn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

    import argparse

    from deblurkit.app import serve_cli
    from deblurkit.errors import DeblurkitError

    parser = argparse.ArgumentParser()
    serve_cli.add_arguments(parser)
    args = parser.parse_args([])
    assert args.host == "127.0.0.1"
    st = serve_cli.settings_from_args(parser.parse_args(["--max-upload-mb", "2", "--queue", "0", "--models", "a, b"]))
    assert st.max_upload_bytes == 2 * 1024 * 1024 and st.queue_size == 0 and st.models == ("a", "b")
    with pytest.raises(DeblurkitError, match="--workers"):
        serve_cli.settings_from_args(parser.parse_args(["--workers", "0"]))


def test_web_api_with_the_real_runtime():
    import io

    from fastapi.testclient import TestClient

    from deblurkit.app.server import create_app
    from deblurkit.infer import DEFAULT_RESTORER

    with TestClient(create_app(), base_url="http://127.0.0.1") as c:
        models = c.get("/api/models").json()
        names = [m["name"] for m in models["models"]]
        assert models["default"] == DEFAULT_RESTORER and DEFAULT_RESTORER in names and "identity" in names
        data = png_bytes((blurry_rgb(64, 80) * 255).astype(np.uint8))
        r = c.post("/api/deblur", files={"file": ("x.png", data)})
        assert r.status_code == 200 and r.headers["x-model"] == DEFAULT_RESTORER
        assert Image.open(io.BytesIO(r.content)).size == (80, 64)
        r = c.post("/api/deblur", files={"file": ("x.png", data)}, data={"model": "identity"})
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(r.content))),
                                      (blurry_rgb(64, 80) * 255).astype(np.uint8))
