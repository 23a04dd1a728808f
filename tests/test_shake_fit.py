"""benchmarks/shake_fit.py: the drags it injects are the drags it says, and its old rule is the mean-pooled one."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.shake_fit import line_kernel, mean_pooled_motion
from pipeline.imaging.focus_miss import _frame_motion, _GridEdges, _Region


@pytest.mark.parametrize("angle_deg", [0.0, 30.0, 90.0, 135.0])
def test_a_line_kernel_has_its_length_along_its_angle(angle_deg: float) -> None:
    k = line_kernel(8.0, angle_deg)
    assert k.sum() == pytest.approx(1.0)
    ys, xs = np.indices(k.shape)
    cy, cx = (k.shape[0] - 1) / 2, (k.shape[1] - 1) / 2
    t = np.deg2rad(angle_deg)
    along = (xs - cx) * np.cos(t) - (ys - cy) * np.sin(t)
    across = (xs - cx) * np.sin(t) + (ys - cy) * np.cos(t)
    # A uniform line of 8 px: spread sqrt(8**2 / 12) = 2.3 px along it, under a pixel across it.
    assert np.sqrt((k * along**2).sum()) == pytest.approx(8 / np.sqrt(12), abs=0.3)
    assert np.sqrt((k * across**2).sum()) < 0.5


def test_the_old_rule_pools_by_the_mean_and_the_shipped_one_by_the_median() -> None:
    # Seven regions sharp every way and one drawn out like a 9 px drag: the mean calls it a shake, the median not.
    def region(p50: tuple[float, ...]) -> _Region:
        return _Region(200, 0.8, (50, 50, 50, 50), (0.8,) * 4, tuple(float(v) for v in p50))

    a = np.deg2rad([0.0, 45.0, 90.0, 135.0])
    grid = _GridEdges([region((0.8,) * 4)] * 7 + [region(tuple(np.sqrt(0.8**2 + 81.0 * np.cos(a) ** 2)))], 6, 4)
    assert mean_pooled_motion(grid)
    assert not _frame_motion(grid)[0]
