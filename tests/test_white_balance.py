"""White-balance colour maths of the imaging core (pipeline.imaging.white_balance)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.imaging.white_balance import (
    D65_CCT_K,
    D65_MIRED,
    cast_mired,
    cct_to_xy,
    green_tint,
    lab_of_light,
    lab_to_linear_srgb,
    light_rgb,
    linear_srgb_to_lab,
    locus_xy,
    mired,
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


@pytest.mark.parametrize("target", [3200.0, 5000.0, 9000.0, 40000.0])
def test_gains_move_the_neutral_onto_the_target_light_at_the_same_luminance(target: float) -> None:
    measured = lab_to_linear_srgb(50.0, 4.0, 15.0)
    corrected = measured * white_balance_gains(4.0, 15.0, target)
    # The target is that far from D65 along the locus: warmer or cooler, never tinted.
    white = light_rgb(mired(target) - D65_MIRED)
    assert corrected / corrected[1] == pytest.approx(white, rel=1e-6)
    assert green_tint(corrected) == pytest.approx(0.0, abs=1e-9)
    assert LUMA @ corrected == pytest.approx(LUMA @ measured, rel=1e-9)


@pytest.mark.parametrize(("cct", "xy"), [
    (2856.0, (0.44757, 0.40745)),  # CIE illuminant A
    (5000.0, (0.3451, 0.3516)),  # CIE 1931 Planckian locus tables
    (10000.0, (0.2807, 0.2884)),
    (1667.0, (0.5646, 0.4029)),  # the warm end: Kim et al.'s cubic fit (cct_to_xy) there
    (20000.0, (0.2564, 0.2576)),  # and far into the blue
])
def test_robertson_locus_matches_the_cie_values(cct: float, xy: tuple[float, float]) -> None:
    assert locus_xy(mired(cct)) == pytest.approx(xy, abs=1e-3)


def test_d65_white_reads_no_cast_and_a_locus_light_reads_its_own_shift() -> None:
    assert light_rgb(0.0) == pytest.approx([1.0, 1.0, 1.0], abs=1e-12)
    assert cast_mired(np.ones(3)) == pytest.approx(0.0, abs=1e-9)
    # Past both ends of the table (bluer than infinitely hot, redder than 1900 K) the reading goes on.
    for shift in (-300.0, -153.0, -120.0, -20.0, 0.5, 20.0, 120.0, 300.0, 450.0):
        assert cast_mired(light_rgb(shift)) == pytest.approx(shift, abs=0.05)


def test_a_cast_adds_to_the_reading_and_a_green_tint_does_not_move_it() -> None:
    grey = np.array([0.3, 0.3, 0.3])
    for shift in (-120.0, -50.0, 50.0, 120.0):
        assert cast_mired(grey * light_rgb(shift)) == pytest.approx(shift, abs=0.05)
        greener = light_rgb(shift) * np.array([1.0, 2.0**0.1, 1.0])
        assert cast_mired(greener) == pytest.approx(shift, abs=0.05)
        assert green_tint(greener) == pytest.approx(0.1, abs=1e-9)


def test_black_bodies_read_their_own_temperature() -> None:
    """Planck's law through the CIE 1931 observer (Wyman et al.'s fit; the accuracy corpus's lights):
    an independent locus from Robertson's table, agreeing within 2 mired from 2000 K (sRGB has no blue left below) to 30 000 K."""
    from benchmarks.accuracy_corpus import planck_srgb

    for kelvin in (2000.0, 2856.0, 4000.0, 5500.0, 6504.0, 8000.0, 13500.0, 30000.0):
        assert cast_mired(planck_srgb(kelvin)) == pytest.approx(mired(kelvin) - D65_MIRED, abs=2.0), kelvin


def test_lab_of_a_light_round_trips() -> None:
    for rgb in ([1.2, 1.0, 0.7], [0.8, 1.0, 1.3], [1.0, 1.0, 1.0]):
        a, b = lab_of_light(np.array(rgb))
        back = lab_to_linear_srgb(50.0, a, b)
        assert back / back[1] == pytest.approx(np.array(rgb) / rgb[1], rel=1e-5)
    assert linear_srgb_to_lab(np.ones(3)) == pytest.approx([100.0, 0.0, 0.0], abs=1e-3)
