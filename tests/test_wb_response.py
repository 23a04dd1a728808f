"""The white-balance response tool (benchmarks/wb_response.py, issue 17 item 3): what it says the rule did to
each twin, and the benchmark's relative-error diagnostic it recomputes, on records whose light is inline."""

from __future__ import annotations

import pytest

from benchmarks.accuracy_corpus import Item
from benchmarks.wb_response import current_rule, decide, relative_median, score
from charts.loader import load_chart
from tests.test_white_balance_rule import _record

BASE = load_chart("base").chart


@pytest.mark.parametrize(("m", "uncertainty", "what", "shift"), [
    (80.0, 6.0, "full", -80.0),       # the cues agree: corrected all the way
    (-60.0, 6.0, "full", 60.0),
    (200.0, 6.0, "cap", -150.0),      # beyond the automatic 150 mired
    (40.0, 60.0, "gate", 0.0),        # the cues scatter: left as shot (and flagged)
    (-20.0, 60.0, "gate", 0.0),
    (5.0, 6.0, "tol", 0.0),           # within the tolerance: nothing to do
])
def test_what_the_rule_did_is_named_for_each_cause(m: float, uncertainty: float, what: str, shift: float) -> None:
    d = decide(_record(m, uncertainty), BASE, current_rule)
    assert d["what"] == what
    assert d["mired"] == pytest.approx(shift, abs=0.2)
    assert d["flagged"] is (what in ("gate", "cap"))


def _items_and_decisions(corrections: dict[str, float]) -> tuple[list[Item], dict[str, dict]]:
    items = [Item(id="o", source="s", split="tuning", set="original", domain="raw", file="o.dng",
                  truth={"mired": 0.0})]
    for cid, cast in (("cool", -50.0), ("warm", 80.0)):
        items.append(Item(id=cid, source="s", split="tuning", set="cast", domain="raw", file=f"{cid}.dng",
                          truth={"mired": -cast, "injected_mired": cast}))
    dec = {k: {"mired": v, "gains": [1.0, 1.0, 1.0], "flagged": False, "what": "full"} for k, v in corrections.items()}
    return items, dec


def test_a_gated_uncast_twin_charges_its_reading_to_the_relative_error() -> None:
    # The estimate reads the uncast photo 25 mired warm: every twin is corrected 25 too cool.
    items, dec = _items_and_decisions({"o": -25.0, "cool": 50.0 - 25.0, "warm": -80.0 - 25.0})
    assert relative_median(items, dec, "raw") == pytest.approx(0.0)  # one-to-one: no relative error
    assert score(items, {}, {}, dec)["raw_median"] == pytest.approx(25.0)  # but the absolute error stays
    items, dec = _items_and_decisions({"o": 0.0, "cool": 25.0, "warm": -105.0})  # the uncast twin gated
    assert relative_median(items, dec, "raw") == pytest.approx(25.0)
    assert score(items, {}, {}, dec)["raw_wrong"] == 0
    items, dec = _items_and_decisions({"o": 0.0, "cool": -10.0, "warm": -105.0})  # cooled a cool cast
    assert score(items, {}, {}, dec)["raw_wrong"] == 1
