"""The accuracy benchmark's bookkeeping: which code changes redo postprod's analysis, which only re-plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks import accuracy as acc


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for rel in ("pipeline/imaging/metering.py", "pipeline/planning/rules/faces.py", "stages/detect_faces.py",
                "stages/plan_retouch.py", "charts/base.yaml", "configs/default.yaml", "models/registry.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(f"# {rel}\n")
    monkeypatch.setattr(acc, "ROOT", tmp_path)
    return tmp_path


@pytest.mark.parametrize("rel", ["pipeline/planning/rules/faces.py", "stages/plan_retouch.py", "charts/base.yaml"])
def test_a_plan_change_keeps_the_analysis_folder(tree: Path, rel: str) -> None:
    full, analysis = acc.code_hash(), acc.code_hash(analysis_only=True)
    (tree / rel).write_text("# changed\n")
    assert acc.code_hash() != full
    assert acc.code_hash(analysis_only=True) == analysis


@pytest.mark.parametrize("rel", ["pipeline/imaging/metering.py", "stages/detect_faces.py", "configs/default.yaml",
                                 "models/registry.py"])
def test_an_analysis_change_gets_a_new_folder(tree: Path, rel: str) -> None:
    full, analysis = acc.code_hash(), acc.code_hash(analysis_only=True)
    (tree / rel).write_text("# changed\n")
    assert acc.code_hash() != full
    assert acc.code_hash(analysis_only=True) != analysis


def test_an_interval_draws_whole_sources() -> None:
    """Twins of one source move together: the interval is as wide as the sources differ, however many twins."""
    values = [0.1] * 10 + [0.5] * 10 + [0.9] * 10
    one_source_each = [f"s{k}" for k in range(30)]
    three_sources = ["a"] * 10 + ["b"] * 10 + ["c"] * 10
    lo_items, hi_items = acc.source_interval(values, one_source_each, np.median)
    lo, hi = acc.source_interval(values, three_sources, np.median)
    assert lo <= 0.5 <= hi and lo_items <= 0.5 <= hi_items
    assert (lo, hi) == (0.1, 0.9)  # three sources: a draw can be all one of them
    assert hi_items - lo_items < hi - lo
    assert acc.source_interval(values, three_sources, np.median) == (lo, hi)  # seeded
    assert acc.source_interval([0.3, 0.4], ["a", "a"], np.median) is None


def test_a_row_shows_its_interval() -> None:
    st = acc._stats([-0.5, 0.1, 0.2, 0.4, -0.3, 0.6], ["a", "a", "b", "b", "c", "c"])
    shown = acc._estimate(st, "median")
    assert shown["value"] == st["median"] == pytest.approx(0.35)
    lo, hi = st["median_ci"]
    assert shown["text"] == f"0.35 ({lo:.2f}-{hi:.2f})" and lo <= 0.35 <= hi
    assert acc._estimate(acc._stats([0.2, 0.4]), "median")["text"] == "0.30"  # no sources, no interval
    share = acc._share([True, True, False, True], ["a", "a", "b", "c"])
    assert share["value"] == 0.75 and share["text"].startswith("3 of 4 (75 %; ") and share["text"].endswith(" %)")


def test_a_lead_over_rawtherapee_is_said_within_noise_when_the_sources_disagree() -> None:
    """Ahead on the figure; "within noise" unless the paired interval of the difference leaves out 0."""
    sources = [f"s{k // 2}" for k in range(20)]
    ours = {f"i{k}": (src, 0.2) for k, src in enumerate(sources)}
    clear = {f"i{k}": (src, 0.6) for k, src in enumerate(sources)}
    # Behind on half the sources, far ahead on the others: the median leads, the draw says nothing.
    mixed = {f"i{k}": (src, 0.1 if int(src[1:]) % 2 else 1.0) for k, src in enumerate(sources)}

    def row(rt: dict) -> acc.Row:
        vals = {s: float(np.median([v for _, v in smp.values()])) for s, smp in (("postprod", ours), ("rawtherapee", rt))}
        return acc.Row("s", "m", vals, "<= 0.1", "lower", 0.1, samples={"postprod": ours, "rawtherapee": rt},
                       statistic=np.median)

    assert row(clear).lead() == "yes"
    assert row(mixed).ahead_of_rt() is True and row(mixed).lead() == "yes, within noise"
    lo, hi = acc.paired_interval(ours, clear, np.median)
    assert lo == hi == pytest.approx(-0.4)
    assert acc.Row("s", "m", {"postprod": 0.3, "rawtherapee": 0.2}, "", "lower").lead() == "no"
