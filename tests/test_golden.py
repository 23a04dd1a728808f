"""Golden renders: decode + render of real files, compared by CIEDE2000 with a reviewed image.

Each case is a folder ``tests/golden/<case>/`` holding ``chart.yaml`` (one small
8-bit sRGB PNG rendition), ``operations.json`` (the source, relative to the
shared test data, and the plan's operations) and ``expected.png``. A case
passes when the mean CIEDE2000 between the render and ``expected.png`` is at
most 1.0 and its 99th percentile at most 3.0 (darktable-tests allow about 0.8
mean and 2.3 maximum for their integration tests; we allow a little more for
OpenCV and LibRaw versions differing between machines).

To regenerate after an intended change to the renderer, run::

    POSTPROD_REGEN_GOLDEN=1 pytest tests/test_golden.py

then LOOK at every rewritten ``expected.png`` before committing it: a golden
image is only as good as the review it got.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from render_cases import delta_e, load_case, operations_from_json, read_rgb, run_stages, turned_copy

from charts.loader import load_chart

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "operations.json").is_file())
REGEN = os.environ.get("POSTPROD_REGEN_GOLDEN") == "1"
MAX_MEAN_DE = 1.0
MAX_P99_DE = 3.0


def render_case(case: str, testdata: Path, tmp_path: Path) -> np.ndarray:
    case_dir = GOLDEN / case
    spec = load_case(case_dir)
    source = testdata / spec["source"]
    if not source.exists():
        pytest.fail(f"golden source missing: {source}") if os.environ.get("CI") else pytest.skip(f"missing {source}")
    if "turn_source_deg" in spec:
        source = turned_copy(source, float(spec["turn_source_deg"]), tmp_path / f"{source.stem}_turned.png")
    chart = load_chart(case_dir / "chart.yaml")
    item = run_stages(source, chart, operations_from_json(spec["operations"]), tmp_path)
    (name,) = chart.chart.renditions
    return item.artifacts["renditions"][name]


def test_every_case_has_its_files() -> None:
    assert CASES, "no golden cases found"
    for case in CASES:
        for name in ("chart.yaml", "operations.json"):
            assert (GOLDEN / case / name).is_file(), f"{case}/{name} missing"
        assert REGEN or (GOLDEN / case / "expected.png").is_file(), f"{case}/expected.png missing (regenerate it)"


@pytest.mark.parametrize("case", CASES)
def test_golden_render(case: str, testdata: Path, tmp_path: Path) -> None:
    rendered = render_case(case, testdata, tmp_path)
    assert rendered.dtype == np.uint8 and rendered.ndim == 3
    expected_path = GOLDEN / case / "expected.png"
    if REGEN:
        cv2.imwrite(str(expected_path), rendered[..., ::-1])
        pytest.skip(f"rewrote {expected_path}: review it by eye before committing")
    expected = read_rgb(expected_path)
    de = delta_e(rendered, expected)
    mean, p99 = float(de.mean()), float(np.percentile(de, 99))
    assert mean <= MAX_MEAN_DE and p99 <= MAX_P99_DE, f"{case}: CIEDE2000 mean {mean:.2f}, p99 {p99:.2f}"
