import pytest


@pytest.fixture(autouse=True)
def _onnx_cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURKIT_CACHE_DIR", str(tmp_path / "cache"))
