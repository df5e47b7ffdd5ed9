import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deblurkit.infer.backends import TorchBackend
from deblurkit.infer.restorers import NetworkRestorer
from deblurkit.infer.tiling import (
    _axis_weights,
    count_tiles,
    pad_to_multiple,
    run_tiled,
    tile_plan,
    tile_windows,
    window_starts,
)


class PyramidToy(nn.Module):
    """Full-res 2-conv branch plus a nearest 1/4-scale branch (like MIMO-UNet's input pyramid).
    Receptive-field radius about 10 px; needs H, W multiples of 4."""

    size_multiple = 4

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2, self.c4 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        x4 = F.interpolate(F.interpolate(x, scale_factor=0.5), scale_factor=0.5)
        up = F.interpolate(self.c4(x4), scale_factor=4.0)
        return [x + self.c2(torch.relu(self.c1(x))) + up]


def psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((a - b) ** 2))


def test_window_starts_cover_and_align():
    for length in (64, 68, 300, 1000, 1028):
        starts = window_starts(length, 128, 32, 4)
        assert starts[0] == 0 and starts[-1] == max(0, length - 128)
        assert all(s % 4 == 0 for s in starts)
        assert all(b - a <= 128 - 32 + 4 for a, b in itertools.pairwise(starts))  # overlap >= 32 (up to rounding)


def test_blend_weights_partition_of_unity_inside_overlaps():
    a = _axis_weights(0, 128, None, 96)
    b = _axis_weights(96, 128, 128, None)
    total = np.zeros(224)
    total[:128] += a
    total[96:] += b
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    assert np.all(a[-8:] == 0) and np.all(b[:8] == 0)  # the outer quarter of the overlap is discarded


def test_tiled_equals_whole_image_over_50db():
    torch.manual_seed(0)
    model = PyramidToy()
    rng = np.random.default_rng(0)
    img = rng.random((3, 333, 517), dtype=np.float32)
    run = TorchBackend(model)
    whole = run_tiled(img, run, multiple=4, tile=None, overlap=64)
    calls = []
    tiled = run_tiled(img, run, multiple=4, tile=128, overlap=64, progress=lambda: calls.append(1))
    assert whole.shape == tiled.shape == img.shape
    assert len(calls) == count_tiles(333, 517, multiple=4, tile=128, overlap=64) == len(tile_plan(336, 520, 128, 40, 4)) > 4
    assert psnr(whole, tiled) > 50


def test_restorer_tiles_with_progress_and_matches_whole():
    torch.manual_seed(1)
    model = PyramidToy()
    img = np.random.default_rng(1).random((150, 210, 3), dtype=np.float32)
    seen = []
    whole = NetworkRestorer(TorchBackend(model), name="toy", description="", size_multiple=4, tile=0)(img)
    tiled = NetworkRestorer(TorchBackend(model), name="toy", description="", size_multiple=4, tile=96,
                            overlap=48)(img, progress=lambda i, n: seen.append((i, n)))
    assert psnr(whole, tiled) > 50
    n = seen[-1][1]
    assert n > 1 and seen == [(i, n) for i in range(1, n + 1)]


def test_pad_to_multiple_reflects():
    x = np.arange(2 * 5 * 7, dtype=np.float32).reshape(2, 5, 7)
    p = pad_to_multiple(x, 4)
    assert p.shape == (2, 8, 8)
    np.testing.assert_array_equal(p[:, 5, :7], x[:, 3])  # reflect: row 5 mirrors row 3
    assert pad_to_multiple(np.zeros((3, 1, 1), np.float32), 4).shape == (3, 4, 4)  # too small to reflect: edge


@pytest.mark.parametrize("tile", [None, 64])
def test_self_ensemble_is_mean_over_rotations(tile):
    torch.manual_seed(2)
    model = PyramidToy()
    img = np.random.default_rng(2).random((40, 52, 3), dtype=np.float32) * 0.5 + 0.25
    r = NetworkRestorer(TorchBackend(model), name="toy", description="", size_multiple=4, tile=tile,
                        overlap=16, self_ensemble=True)
    out = r(img)
    plain = NetworkRestorer(TorchBackend(model), name="toy", description="", size_multiple=4, tile=tile, overlap=16)
    ref = np.mean([np.rot90(plain.restore_rgb(np.ascontiguousarray(np.rot90(img, k))), -k) for k in range(4)], axis=0)
    np.testing.assert_allclose(out, np.clip(ref, 0, 1), atol=1e-5)


def test_self_ensemble_from_the_size_limit_is_mean_over_two_quarter_turns():
    torch.manual_seed(3)
    model = PyramidToy()
    img = np.random.default_rng(3).random((40, 52, 3), dtype=np.float32) * 0.5 + 0.25
    plain = NetworkRestorer(TorchBackend(model), name="toy", description="", size_multiple=4, tile=None)
    turns = {k: np.rot90(plain.restore_rgb(np.ascontiguousarray(np.rot90(img, k))), -k) for k in range(4)}
    for limit, used in ((40 * 52 + 1, range(4)), (40 * 52, (0, 1))):
        r = NetworkRestorer(TorchBackend(model), name="toy", description="", size_multiple=4, tile=None,
                            self_ensemble=True, two_rotations_from_pixels=limit)
        np.testing.assert_allclose(r(img), np.clip(np.mean([turns[k] for k in used], axis=0), 0, 1), atol=1e-5)


def test_concurrent_tiles_give_the_sequential_result_with_bounded_work_in_flight():
    import threading
    import time

    rng = np.random.default_rng(3)
    img = rng.random((3, 150, 230), dtype=np.float32)
    lock, state = threading.Lock(), {"now": 0, "max": 0, "threads": set()}

    def run(x):  # a non-linear, position-dependent function, so a misplaced tile would show
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            state["threads"].add(threading.get_ident())
        time.sleep(0.005)
        out = np.tanh(3 * x) + x.mean()
        with lock:
            state["now"] -= 1
        return out

    calls = []
    seq = run_tiled(img, run, multiple=4, tile=64, overlap=16)
    par = run_tiled(img, run, multiple=4, tile=64, overlap=16, workers=3, progress=lambda: calls.append(1))
    np.testing.assert_array_equal(seq, par)  # blended in plan order: bit-identical
    assert len(calls) == count_tiles(150, 230, multiple=4, tile=64, overlap=16) > 3
    assert state["max"] <= 3 and len(state["threads"]) >= 2


def test_a_failing_tile_raises_from_concurrent_tiling():
    def run(x):
        if x[0, 0, -1, -1] == 1.0:  # the bottom-right tile
            raise RuntimeError("tile failed")
        return x

    img = np.zeros((3, 128, 128), dtype=np.float32)
    img[:, 100:, 100:] = 1.0
    with pytest.raises(RuntimeError, match="tile failed"):
        run_tiled(img, run, multiple=4, tile=48, overlap=8, workers=2)


def test_balanced_windows_cover_with_no_more_tiles_and_fewer_pixels():
    from deblurkit.infer.tiling import window_size

    for raw in range(200, 4200, 37):
        for tile, overlap, m in ((512, 64, 16), (768, 64, 16), (128, 32, 4)):
            length = -(-raw // m) * m  # padded to the model's multiple, as run_tiled does
            size = window_size(length, tile, overlap, m)
            assert size <= max(tile, length) and size % m == 0 or size == length
            starts = window_starts(length, size, overlap, m)
            fixed = window_starts(length, min(tile, length), overlap, m)
            assert len(starts) <= len(fixed)
            assert starts[0] == 0 and starts[-1] + size == max(length, size)  # covers to the end
            assert all(b - a <= size - overlap for a, b in itertools.pairwise(starts)), (length, tile)
    plan = tile_plan(3008, 4000, 1024, 64, 16)
    assert len(plan) == 20 and sum(h * w for _, _, h, w in plan) < 0.75 * 20 * 1024 * 1024


def test_tile_windows_are_the_shapes_run_tiled_feeds_the_network():
    seen = []

    def run(x):
        seen.append(x.shape[2:])
        return x

    img = np.zeros((3, 333, 517), dtype=np.float32)
    for tile in (None, 128, 1024):
        seen.clear()
        run_tiled(img, run, multiple=4, tile=tile, overlap=64)
        windows = tile_windows(333, 517, multiple=4, tile=tile, overlap=64)
        assert seen == [(th, tw) for _, _, th, tw in windows]
        assert len(windows) == count_tiles(333, 517, multiple=4, tile=tile, overlap=64)


def test_blend_regions_returns_identical_cells_unchanged_and_leaves_no_seam():
    from deblurkit.infer.tiling import blend_regions, split_evenly

    h, w = 64, 90
    img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    cells = [(a, b, c, d) for (a, b) in split_evenly(h, 2) for (c, d) in split_evenly(w, 3)]
    seen = []

    def crop(index, region):
        seen.append(index)
        y0, y1, x0, x1 = region
        return img[y0:y1, x0:x1]

    same = blend_regions(h, w, 3, cells, crop, overlap=8, margin=5)
    assert seen == list(range(6))
    np.testing.assert_allclose(same, img, atol=1e-6)  # identical cells blend back to the image
    # Cells of different constants: the blend changes gradually across every seam (a hard seam
    # would jump by the full 0.6 between vertically neighbouring cells).
    levels = np.linspace(0.0, 1.0, len(cells), dtype=np.float32)

    def constant(index, region):
        y0, y1, x0, x1 = region
        return np.full((y1 - y0, x1 - x0, 1), levels[index], np.float32)

    mixed = blend_regions(h, w, 1, cells, constant, overlap=8, margin=5)[..., 0]
    assert np.abs(np.diff(mixed, axis=0)).max() < 0.06
    assert np.abs(np.diff(mixed, axis=1)).max() < 0.03
    assert mixed[0, 0] == levels[0] and mixed[-1, -1] == levels[-1]  # cell interiors keep their value


def test_blend_regions_in_threads_is_bit_identical_and_reports_every_cell():
    import threading
    import time

    from deblurkit.infer.tiling import blend_regions, split_evenly

    h, w = 70, 95
    rng = np.random.default_rng(1)
    cells = [(a, b, c, d) for (a, b) in split_evenly(h, 3) for (c, d) in split_evenly(w, 3)]
    values = [rng.random((h, w, 2), dtype=np.float32) for _ in cells]
    threads = set()

    def compute(index, region):
        threads.add(threading.get_ident())
        time.sleep(0.002 * (len(cells) - index))  # early cells finish last
        y0, y1, x0, x1 = region
        return values[index][y0:y1, x0:x1] * (1.0 + index)

    serial = blend_regions(h, w, 2, cells, compute, overlap=6, margin=4)
    threads.clear()
    ticks = []
    parallel = blend_regions(h, w, 2, cells, compute, overlap=6, margin=4, workers=3,
                             progress=lambda: ticks.append(1))
    assert len(threads) > 1 and len(ticks) == len(cells)
    assert np.array_equal(parallel.view(np.int32), serial.view(np.int32))
