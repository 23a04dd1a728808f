"""The declared objective that picks the exposure gate's chart key (benchmarks/fit_gates.py, issue 17)."""

from __future__ import annotations

from benchmarks.fit_gates import exposure_score, pick_min_confidence


def _items() -> list[dict]:
    """Two originals and, per domain, three exposure twins needing +1 EV."""
    items = [{"id": f"o{n}", "set": "original", "domain": "raw", "truth": {"ev": 0.0}} for n in range(2)]
    items += [{"id": f"{d}{n}", "set": "exposure", "domain": d, "truth": {"ev": 1.0}}
              for d in ("raw", "rendered") for n in range(3)]
    return items


def _decisions(originals: tuple[float, float], twins: dict[str, tuple[float, float, float]]) -> dict[str, float]:
    out = {f"o{n}": v for n, v in enumerate(originals)}
    for d, values in twins.items():
        out.update({f"{d}{n}": v for n, v in enumerate(values)})
    return out


def test_the_gate_is_raised_only_within_the_declared_limits() -> None:
    items = _items()
    now = _decisions((0.8, 0.8), {"raw": (1.0, 1.0, 1.0), "rendered": (1.0, 1.0, 1.0)})
    # One more original left alone, the twins' medians unchanged: taken.
    better = _decisions((0.0, 0.8), {"raw": (1.0, 1.0, 1.0), "rendered": (1.0, 1.0, 1.0)})
    # Both originals left alone, but the rendered twins' median error rises 0.03 EV: refused.
    too_costly = _decisions((0.0, 0.0), {"raw": (1.0, 1.0, 1.0), "rendered": (0.97, 0.97, 1.0)})
    # Both originals left alone, but a twin needing +1 EV gets a darkening: refused.
    wrong_sign = _decisions((0.0, 0.0), {"raw": (1.0, 1.0, -0.2), "rendered": (1.0, 1.0, 1.0)})
    by_value = {0.8: now, 0.85: better, 0.9: too_costly, 0.95: wrong_sign}
    assert exposure_score(items, too_costly)[1]["rendered"] - exposure_score(items, now)[1]["rendered"] > 0.02
    assert pick_min_confidence(items, by_value, 0.8) == 0.85
    # Pooled, the rendered twins' rise is diluted by the RAW twins' median: 0.9 passes.
    assert exposure_score(items, too_costly, pooled=True)[1]["raw+rendered"] == 0.0
    assert pick_min_confidence(items, by_value, 0.8, pooled=True) == 0.9
    # Nothing better than the value in use: it is kept.
    assert pick_min_confidence(items, {0.8: now, 0.9: too_costly}, 0.8) == 0.8
