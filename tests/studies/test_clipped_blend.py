from __future__ import annotations

import numpy as np

from studies.clipped_blend import blend_near, clipped_regions_linear


def test_small_clipped_regions_are_told_from_large_ones():
    lin = np.full((64, 64, 3), 0.3, np.float32)
    lin[5:8, 5:8] = 1.0  # a light: 9 px
    lin[30:60, 10:60, 0] = 0.99  # an overexposed wall: 1500 px, one channel clipped
    every = clipped_regions_linear(lin)
    small = clipped_regions_linear(lin, max_area=25)
    assert every.sum() == 9 + 1500
    assert small.sum() == 9 and small[6, 6] and not small[40, 40]


def test_the_input_is_kept_only_near_the_mask():
    rng = np.random.default_rng(0)
    lin = rng.random((48, 48, 3)).astype(np.float32)
    restored = np.zeros_like(lin)
    mask = np.zeros((48, 48), bool)
    mask[24, 24] = True
    out = blend_near(lin, restored, mask, kernel_size=5)
    assert np.allclose(out[24, 24], lin[24, 24], atol=0.05)
    assert np.array_equal(out[:10, :10], restored[:10, :10])
    assert np.array_equal(blend_near(lin, restored, np.zeros_like(mask), 5), restored)
