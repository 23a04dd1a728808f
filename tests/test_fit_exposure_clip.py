"""The clipped-white-point fit tool (benchmarks/fit_exposure_clip.py, issue 17): its clipped share, its
candidate readings of a clipped image, the reconstruction of a clipped 0 EV twin and its declared rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.exposure_consistency import QUANTILES
from benchmarks.fit_exposure_clip import (
    CLIP,
    GRID,
    Proxy,
    censored_white,
    fit_levels,
    in_use,
    share_floor,
    ships,
    slope,
    source_levels,
)
from pipeline.imaging.measure import metering


def _proxy(luma: np.ndarray) -> Proxy:
    return Proxy(np.percentile(luma, QUANTILES))


def _pareto(n: int = 400_000, alpha: float = 1.5, seed: int = 5) -> np.ndarray:
    """Scene light that is a power law (log2 level linear in log2 of the tail share), its 99.9th
    percentile at 2**-3.8 and its median 6 EV under it."""
    rng = np.random.default_rng(seed)
    return 2.0**-10.44 * (1.0 - rng.random(n)) ** (-1.0 / alpha)


def test_the_clipped_share_is_the_share_pushed_over_the_clip_level() -> None:
    luma = _pareto()
    for k in (5.0, 6.0):
        pushed = np.minimum(luma * 2.0**k, 1.0)
        share = 100.0 * np.mean(pushed >= 2.0**CLIP)
        assert _proxy(pushed).clipped_share() == pytest.approx(share, rel=0.1, abs=0.03)
    assert _proxy(np.minimum(luma, 0.5)).clipped_share() == 0.0


def test_the_slope_reads_a_power_law_tail_back_over_the_clip() -> None:
    luma = _pareto()
    unclipped = _proxy(luma * 2.0**3)  # its 99.9th percentile under the clip: the meter in use reads it
    assert unclipped.level(metering.WHITE_PERCENTILE) == pytest.approx(-0.8, abs=0.05)
    for k in (1.5, 2.0, 2.5):  # pushed k EV further, its white point clips
        clipped = _proxy(np.minimum(luma * 2.0 ** (3 + k), 1.0))
        assert 0.1 < clipped.clipped_share() < 2.0
        # The meter in use falls back to the floor; the slope (g 1, the tail's own slope) reads the push.
        assert in_use(clipped) < in_use(unclipped) + k - 0.3
        assert slope(clipped, 4.0, 1.0, 100.0) == pytest.approx(in_use(unclipped) + k, abs=0.1)
        # Its clipped-share limit leaves the meter in use.
        assert slope(clipped, 4.0, 1.0, 0.05) == in_use(clipped)


def test_a_clipped_share_floor_and_a_censored_white_never_read_darker_than_the_meter() -> None:
    luma = _pareto()
    levels = np.linspace(-1.8, metering.WHITE_LOG2, len(GRID))
    for k in (3.0, 4.0, 5.0, 6.0):
        p = _proxy(np.minimum(luma * 2.0**k, 1.0))
        assert share_floor(p, levels) >= in_use(p)
        assert censored_white(p) >= in_use(p) - 1e-9
    # Unclipped, both are the meter in use.
    p = _proxy(luma * 2.0**2)
    assert share_floor(p, levels) == in_use(p) and censored_white(p) == in_use(p)


def test_a_clipped_0ev_twin_is_read_from_its_darkest_twin() -> None:
    luma = _pareto()
    zero, down = np.minimum(luma * 2.0**5, 1.0), luma * 2.0**3  # the 0 EV twin clips; 2 EV down does not
    items = [{"id": "z", "source": "s", "domain": "raw", "set": "original", "truth": {"ev": 0.0}},
             {"id": "d", "source": "s", "domain": "raw", "set": "exposure", "truth": {"ev": 2.0}}]
    lv = source_levels(items, {"z": _proxy(zero), "d": _proxy(down)})["s"]
    truth = [math.log2(float(np.percentile(luma * 2.0**5, g))) for g in GRID]
    assert lv == pytest.approx(truth, abs=0.05)
    assert lv[-1] > 0.0  # over the clip level, as the 0 EV twin was before it clipped
    # A censored fit's mean sits over the plain mean of values held at the clip.
    held = [np.full(len(GRID), min(v, CLIP)) for v in np.linspace(-2.0, 1.0, 30)]  # log2 levels
    assert fit_levels(held, 0.0)[-1] > np.mean([h[-1] for h in held]) + 0.1


def _items() -> tuple[list[dict], dict[str, str]]:
    items = [{"id": f"{d}0", "set": "original", "domain": d, "truth": {"ev": 0.0}} for d in ("raw", "rendered")]
    items.append({"id": "pub", "set": "original", "domain": "rendered", "render": "published", "truth": {"ev": 0.0}})
    items += [{"id": f"{d}{n}", "set": "exposure", "domain": d, "truth": {"ev": -1.0 - n}}
              for d in ("raw", "rendered") for n in range(1, 21)]
    return items, {f"{d}{n}": f"{d}0" for d in ("raw", "rendered") for n in range(1, 21)}


def test_a_candidate_ships_only_when_the_raw_p95_falls_and_nothing_is_worse() -> None:
    items, ref = _items()
    now = {i["id"]: 0.0 for i in items}
    now.update({f"{d}{n}": -1.0 - n for d in ("raw", "rendered") for n in range(1, 19)})  # the two worst left
    fixed = dict(now, raw19=-20.0, raw20=-21.0)
    assert ships(items, now, fixed, ref)
    assert not ships(items, now, now, ref)  # nothing better
    assert not ships(items, now, dict(fixed, raw0=-0.5), ref)  # a 0 EV twin corrected
    assert not ships(items, now, dict(fixed, pub=0.5), ref)  # a published photo corrected
    assert not ships(items, now, dict(fixed, raw20=1.0), ref)  # a wrong sign
