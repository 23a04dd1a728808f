"""White-balance colour maths of the imaging core (pipeline.imaging.white_balance)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.imaging.white_balance import (
    D65_CCT_K,
    cct_to_xy,
    lab_to_linear_srgb,
    mired,
    planckian_white_srgb,
    white_balance_gains,
)

LUMA = np.array([0.2126, 0.7152, 0.0722])


@pytest.mark.parametrize(("cct", "xy"), [
    (2856.0, (0.44757, 0.40745)),  # CIE illuminant A, a Planckian radiator by definition
    (5000.0, (0.3451, 0.3516)),  # CIE 1931 Planckian locus tables
    (10000.0, (0.2807, 0.2884)),
])
def test_planckian_locus_matches_the_cie_values(cct: float, xy: tuple[float, float]) -> None:
    assert cct_to_xy(cct) == pytest.approx(xy, abs=1e-3)


def test_cct_outside_the_fit_is_clamped() -> None:
    assert cct_to_xy(1000.0) == cct_to_xy(1667.0)
    assert cct_to_xy(40000.0) == cct_to_xy(25000.0)


def test_lab_grey_and_white() -> None:
    # L* = 50 is Y = ((50 + 16) / 116) ** 3 = 0.18419; a* = b* = 0 is the D65 white's chromaticity.
    assert lab_to_linear_srgb(50.0, 0.0, 0.0) == pytest.approx([0.18419] * 3, abs=1e-5)
    assert lab_to_linear_srgb(100.0, 0.0, 0.0) == pytest.approx([1.0] * 3, abs=1e-5)
    r, g, b = lab_to_linear_srgb(50.0, 0.0, 20.0)  # + b* is yellow: blue drops
    assert b < g and b < r


def test_mired() -> None:
    assert mired(5000.0) == 200.0
    assert mired(D65_CCT_K) == pytest.approx(153.75, abs=0.01)


def test_no_cast_and_a_neutral_target_needs_no_gains() -> None:
    assert white_balance_gains(0.0, 0.0) == pytest.approx([1.0, 1.0, 1.0], abs=1e-4)


@pytest.mark.parametrize("target", [3200.0, 5000.0, 9000.0])
def test_gains_move_the_neutral_onto_the_target_white_at_the_same_luminance(target: float) -> None:
    measured = lab_to_linear_srgb(50.0, 4.0, 15.0)
    corrected = measured * white_balance_gains(4.0, 15.0, target)
    white = planckian_white_srgb(target)
    assert corrected / corrected[1] == pytest.approx(white / white[1], rel=1e-6)
    assert LUMA @ corrected == pytest.approx(LUMA @ measured, rel=1e-9)
