import pytest


@pytest.fixture(autouse=True)
def _onnx_cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURKIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Intra-op threads busy-wait; on a shared 2-core machine one thread is many times faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
