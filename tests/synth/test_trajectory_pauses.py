"""Re-timing a shake path with pauses: same path, exposure moved to bright points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deblurkit.kernel_aware.kernels import kernel_similarity
from deblurkit.synth.blur import render_psf
from deblurkit.synth.trajectory import random_walk, retime_with_pauses


def _line(length: float = 20.0) -> torch.Tensor:
    return torch.stack([torch.linspace(0.0, length, 64, dtype=torch.float64), torch.zeros(64, dtype=torch.float64)], 1)


def test_without_pauses_the_kernel_is_unchanged():
    traj = random_walk(64, 2, torch.Generator().manual_seed(0), anxiety=0.3) * 15.0
    before = render_psf(traj).numpy()
    after = render_psf(retime_with_pauses(traj, [])).numpy()
    assert kernel_similarity(before, after) > 0.99


def test_a_pause_holds_its_share_of_the_exposure_at_its_place():
    traj = _line()
    k = render_psf(retime_with_pauses(traj, [(0.25, 0.4)]), 41, align_centroid=False).numpy()
    even = render_psf(traj, 41, align_centroid=False).numpy()
    row = k[20]  # the line runs along the centre row, from x = 20 to 40
    assert np.isclose(k.sum(), 1.0) and np.isclose(row.sum(), 1.0, atol=1e-6)
    pause_x = 20 + round(0.25 * 20)
    # about 40 % of the time near the pause point plus the even share there; far less without it
    assert k[20, pause_x - 1:pause_x + 2].sum() > 0.35
    assert even[20, pause_x - 1:pause_x + 2].sum() < 0.2
    # the pause does not move the path: the same pixels are covered
    assert set(np.flatnonzero(row > 1e-4)) == set(np.flatnonzero(even[20] > 1e-4))


def test_bad_shares_are_refused():
    with pytest.raises(ValueError, match="sum to less than 1"):
        retime_with_pauses(_line(), [(0.2, 0.6), (0.7, 0.5)])
    with pytest.raises(ValueError, match="T >= 2"):
        retime_with_pauses(_line()[:1], [])


def test_synthesis_with_pauses_records_them_and_brightens_the_kernel():
    import dataclasses

    from deblurkit.synth.pipeline import sample_shake, synthesize_pair
    from deblurkit.synth.presets import get_preset

    base = dataclasses.replace(get_preset("gopro"), spatially_varying_prob=0.0, blur_length_px=(20.0, 20.0))
    paused = dataclasses.replace(base, pause_prob=1.0)
    p0, k0, _ = sample_shake(base, (96, 96), torch.Generator().manual_seed(5))
    p1, k1, _ = sample_shake(paused, (96, 96), torch.Generator().manual_seed(5))
    assert "pauses" not in p0 and len(p1["pauses"]) == 2
    assert p0["trajectory_px"] == p1["trajectory_px"]  # the same path, re-timed
    assert float(k1.max()) > 1.3 * float(k0.max())
    with pytest.raises(ValueError, match="pause_share"):
        synthesize_pair(torch.rand(1, 3, 64, 64), dataclasses.replace(base, pause_share=(0.3, 0.6)),
                        torch.Generator().manual_seed(0))
