"""The learned scene key's fit tool (benchmarks/fit_exposure_key.py, issue 17): its features keep the RAW
meter's linearity, its ridge fit recovers a known key, and its declared shipping rule."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.exposure_consistency import QUANTILES
from benchmarks.fit_exposure_key import fit, raw_features, ships


def _quantiles(luma: np.ndarray) -> np.ndarray:
    return np.percentile(luma, QUANTILES)


def test_a_raw_pushed_k_stops_reads_exactly_k_stops_brighter() -> None:
    rng = np.random.default_rng(7)
    luma = np.exp2(rng.normal(-4.0, 1.5, 200_000)).clip(0.0, 0.5)  # scene light well under clipping
    item = {"domain": "raw"}
    names = ("d5", "d25", "d75", "d95", "d99.9", "clip", "now")
    rows = [({n: float(v) for n, v in zip(names, rng.normal(size=len(names)))}, float(t), 1.0)
            for t in rng.normal(-3.4, 0.6, 40)]
    model = fit(rows, names, lam=0.1)
    base = raw_features(item, _quantiles(luma))
    for k in (-2.0, -0.7, 0.4, 0.9):
        pushed = raw_features(item, _quantiles(luma * 2.0**k))
        assert pushed["key"] == pytest.approx(base["key"] + k, abs=1e-9)
        for n in names:  # the shape, taken relative to the median, does not move
            assert pushed[n] == pytest.approx(base[n], abs=1e-9)
        reading = pushed["key"] - model.predict(pushed)
        assert reading == pytest.approx(base["key"] - model.predict(base) + k, abs=1e-9)
    # Pushed into clipping, the clipped share appears and the white point's spread shrinks.
    clipped = raw_features(item, _quantiles(np.minimum(luma * 2.0**4, 1.0)))
    assert clipped["clip"] > 0.0 and base["clip"] == 0.0
    assert clipped["d99.9"] < base["d99.9"]


def test_the_ridge_fit_recovers_a_known_key() -> None:
    rng = np.random.default_rng(3)
    feats = [{"a": float(a), "b": float(b)} for a, b in rng.normal(size=(200, 2)) * [1.0, 3.0]]
    rows = [(f, -3.0 + 0.5 * f["a"] - 0.2 * f["b"], 1.0) for f in feats]
    intercept, coef = fit(rows, ("a", "b"), lam=1e-9).raw_coefficients()
    assert intercept == pytest.approx(-3.0, abs=1e-6)
    assert coef["a"] == pytest.approx(0.5, abs=1e-6) and coef["b"] == pytest.approx(-0.2, abs=1e-6)
    # A Huber loss is not pulled by one wild target as least squares is.
    wild = rows + [({"a": 0.0, "b": 0.0}, 40.0, 1.0)]
    assert abs(fit(wild, ("a", "b"), 1e-9, huber=0.3).intercept + 3.0) < abs(fit(wild, ("a", "b"), 1e-9).intercept + 3.0)
    assert fit(rows, (), lam=0.0).predict({}) == pytest.approx(np.mean([t for _, t, _ in rows]))


def _items() -> list[dict]:
    items = [{"id": f"o{n}", "set": "original", "domain": "raw", "truth": {"ev": 0.0}} for n in range(2)]
    items += [{"id": f"{d}{n}", "set": "exposure", "domain": d, "truth": {"ev": 1.0}}
              for d in ("raw", "rendered") for n in range(3)]
    return items


def _ev(originals: tuple[float, float], raw: tuple[float, ...], rendered: tuple[float, ...]) -> dict[str, float]:
    out = {f"o{n}": v for n, v in enumerate(originals)}
    out.update({f"raw{n}": v for n, v in enumerate(raw)})
    out.update({f"rendered{n}": v for n, v in enumerate(rendered)})
    return out


def test_a_candidate_ships_only_when_it_is_better_on_every_count() -> None:
    items = _items()
    now = _ev((0.8, 0.8), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert ships(items, now, _ev((0.0, 0.8), (0.6, 0.6, 0.5), (0.5, 0.5, 0.5)))
    # Fewer corrections of originals, but no twin closer: not shipped.
    assert not ships(items, now, _ev((0.0, 0.8), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)))
    # Closer twins, but no more originals left alone: not shipped.
    assert not ships(items, now, _ev((0.8, 0.8), (0.9, 0.9, 0.9), (0.5, 0.5, 0.5)))
    # Better on both, but the rendered twins' median rises: not shipped.
    assert not ships(items, now, _ev((0.0, 0.8), (0.9, 0.9, 0.9), (0.4, 0.4, 0.5)))
    # Better on both, but a twin needing +1 EV is darkened: not shipped.
    assert not ships(items, now, _ev((0.0, 0.8), (0.9, 0.9, -0.1), (0.5, 0.5, 0.5)))
