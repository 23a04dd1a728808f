"""A ColorChecker in the frame gives the white balance (pipeline/imaging/measure/colour_checker.py).

On the shared data's real charts: found where one is whole in the frame, refused where it is cut by the frame
or absent; a cast injected into a chart frame's light is read back; the wrong-white-balance pair, rendered
from one raw with a wrong preset and rightly, is corrected to its truth; and the plan and the scene follow the
chart.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from charts.loader import load_chart
from charts.schema import Chart
from pipeline.imaging.decode import decode_proxy
from pipeline.imaging.measure.colour import white_balance_cast
from pipeline.imaging.measure.colour_checker import GREYS, find_colour_checker, looks_like_a_chart
from pipeline.imaging.white_balance import cast_mired, green_tint, light_rgb
from pipeline.kernel.graph import load_graph
from pipeline.kernel.ingest import scan_shoot
from pipeline.kernel.records import OperationKind, SourceKind, Verdict
from pipeline.kernel.runner import Runner
from pipeline.kernel.stage import RunContext
from pipeline.planning.plan import plan_image, verdict_of
from tests.test_white_balance_rule import _record, _wb

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("colour_checker_bench", ROOT / "benchmarks" / "colour_checker.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # type: ignore[union-attr]

CHARTS = ("Canon_PowerShot_G2_CRW_0304.CRW", "Canon_PowerShot_S40_CRW_0101.CRW",
          "Kodak_DC120_DC120IMG_P003911.KDC", "tinydng_colorchart.dng")
#: Frames of the same bodies without a chart, and a chart cut by the frame's edge (the detector extrapolates
#: the patches it cannot see).
NO_CHART = ("Canon_PowerShot_G2_CRW_0305.CRW", "Canon_PowerShot_S40_CRW_0113.CRW",
            "Kodak_DC50_DC50IMG_DC0008L.KDC", "Kodak_DC120_DC120IMG_P003908.KDC")


def _proxy(path: Path) -> np.ndarray:
    kind = SourceKind.RASTER if path.suffix.lower() in (".png", ".jpg") else SourceKind.RAW
    return decode_proxy(path, kind, 1600, 200_000_000).rgb


@pytest.fixture(scope="module")
def chart_proxies(raw_dir: Path) -> dict[str, np.ndarray]:
    return {name: _proxy(raw_dir / name) for name in CHARTS}


def test_the_chart_is_found_where_it_is_whole_and_refused_elsewhere(chart_proxies: dict, raw_dir: Path,
                                                                    exposure_dir: Path, testdata: Path) -> None:
    for name, rgb in chart_proxies.items():
        checker = find_colour_checker(rgb)
        assert checker is not None, name
        assert np.all((checker.corners >= 0) & (checker.corners <= 1)) and np.ptp(checker.corners[:, 0]) > 0.1, name
    photos = [raw_dir / n for n in NO_CHART] + sorted(exposure_dir.glob("*.[jJ][pP][gG]")) \
        + sorted((testdata / "wb").glob("*.jpg")) + sorted((testdata / "faces" / "pascal_voc").glob("*.jpg"))
    assert len(photos) >= 25
    found = [p.name for p in photos
             if find_colour_checker(_proxy(p), rendered=p.parent != raw_dir)]
    assert found == []


def test_the_chart_reads_the_light_on_greys_drawn_by_eye(chart_proxies: dict, testdata: Path) -> None:
    frames = dict(chart_proxies)
    frames["Canon1DsMkIII_0087_F_P.input.png"] = _proxy(testdata / "wb" / "pairs" / "Canon1DsMkIII_0087_F_P.input.png")
    for name, rgb in frames.items():
        rendered = name.endswith(".png")
        truth = bench.eye_drawn_light(rgb, rendered, bench.EYE_DRAWN_GREYS[name])
        checker = find_colour_checker(rgb, rendered=rendered)
        assert cast_mired(checker.light) == pytest.approx(cast_mired(truth), abs=3.0), name
        assert green_tint(checker.light) == pytest.approx(green_tint(truth), abs=0.05), name


def test_a_chart_held_sideways_or_upside_down_reads_the_same_light(chart_proxies: dict) -> None:
    for name, rgb in chart_proxies.items():
        truth = bench.eye_drawn_light(rgb, False, bench.EYE_DRAWN_GREYS[name])
        for quarter_turns in (1, 2, 3):
            checker = find_colour_checker(np.ascontiguousarray(np.rot90(rgb, quarter_turns)))
            assert checker is not None, (name, quarter_turns)
            assert cast_mired(checker.light) == pytest.approx(cast_mired(truth), abs=4.0), (name, quarter_turns)


def test_a_cast_injected_into_a_chart_frame_is_read_back(chart_proxies: dict) -> None:
    for name, rgb in chart_proxies.items():
        before = find_colour_checker(rgb)
        for shift in (-120.0, -40.0, 40.0, 120.0):
            after = find_colour_checker((rgb * light_rgb(shift)).astype(np.float32))
            assert after is not None, (name, shift)
            # The light the frame now shows (mired do not add along the locus for a light off D65).
            truth = before.light * light_rgb(shift)
            # Within 4 mired (the target for casts is 10); the patches are found anew in each frame.
            assert cast_mired(after.light) == pytest.approx(cast_mired(truth), abs=4.0), (name, shift)
            assert green_tint(after.light) == pytest.approx(green_tint(truth), abs=0.1), (name, shift)


def test_patches_that_are_not_a_colorcheckers_are_refused(chart_proxies: dict) -> None:
    checker = find_colour_checker(chart_proxies["Canon_PowerShot_G2_CRW_0304.CRW"])
    patches = checker.patches
    unclipped = np.ones(24, bool)
    assert looks_like_a_chart(patches, unclipped) is not None
    shuffled = patches.copy()
    shuffled[:18] = patches[:18][np.random.default_rng(1).permutation(18)]  # the colours in other places
    assert looks_like_a_chart(shuffled, unclipped) is None
    reversed_greys = patches.copy()
    reversed_greys[GREYS] = patches[GREYS][::-1]  # a chart upside down is read in the wrong order
    assert looks_like_a_chart(reversed_greys, unclipped) is None
    red = patches.copy()
    red[18:24] = patches[18:24] * np.array([1.0, 0.6, 0.5])  # "greys" of one colour, darker and darker
    red[:18] = patches[21] * np.array([1.0, 0.6, 0.5])
    assert looks_like_a_chart(red, unclipped) is None


def test_the_wrong_preset_pair_is_corrected_to_its_truth(testdata: Path) -> None:
    """``wb/pairs``: one raw rendered with a wrong white-balance preset and rightly; the truth is the median
    log2 R/B change between them (labels.csv), +2.13. The four cues read +0.85 (ACCURACY.md's reference row)."""
    pair = testdata / "wb" / "pairs"
    truth = 2.13
    wrong = _proxy(pair / "Canon1DsMkIII_0087_F_P.input.png")
    cast = white_balance_cast(wrong, rendered=True)
    assert cast.colour_checker
    record = _record(cast.mired, cast.uncertainty_mired)
    record.colour.colour_checker = True
    record.colour.cast_a, record.colour.cast_b, record.colour.tint = cast.a, cast.b, cast.tint
    gains = _wb(plan_image(record, load_chart("base").chart)).params["gains"]
    assert math.log2(gains[0] / gains[2]) == pytest.approx(truth, abs=0.5)
    right = find_colour_checker(_proxy(pair / "Canon1DsMkIII_0087_F_P.groundtruth.png"), rendered=True)
    assert abs(cast_mired(right.light)) < 10.0  # the right rendering's chart is grey


def test_a_chart_reading_is_applied_where_a_guess_would_be_left_as_shot() -> None:
    # A warm reading beyond the base chart's 150 mired cap: left as shot when the cues disagree (confidence
    # under min_confidence), capped when they agree.
    ops = plan_image(_record(180.0, uncertainty=400.0), load_chart("base").chart)
    assert _wb(ops) is None and any(o.params.get("check") == "white_balance" for o in ops)
    ops = plan_image(_record(180.0, uncertainty=6.0), load_chart("base").chart)
    assert _wb(ops).params["mired_shift"] == pytest.approx(-150.0, abs=0.5)
    charted = _record(180.0, uncertainty=3.0)
    charted.colour.colour_checker = True
    ops = plan_image(charted, load_chart("base").chart)
    wb = _wb(ops)
    assert wb.kind is OperationKind.WHITE_BALANCE and wb.params["mired_shift"] == pytest.approx(-180.0, abs=0.5)
    assert wb.reason.startswith("the ColorChecker in the frame: its greys read 180 mired warm")
    assert not any(o.params.get("check") == "white_balance" for o in ops)


def test_a_frame_with_a_chart_is_flagged_with_where_the_chart_is() -> None:
    charted = _record(40.0, uncertainty=3.0)
    charted.colour.colour_checker, charted.colour.colour_checker_box = True, [0.2, 0.5, 0.6, 0.9]
    (flag,) = [o for o in plan_image(charted, load_chart("base").chart) if o.params.get("check") == "colour_checker"]
    assert flag.kind is OperationKind.FLAG and flag.params["region"] == [0.2, 0.5, 0.6, 0.9]
    assert "a ColorChecker in the frame (20%-60% across, 50%-90% down)" in flag.reason
    doc = load_chart("base").chart.model_dump(mode="json")
    doc["acceptance"]["colour_checker"] = {"action": "reject"}  # a studio's reference frames: never delivered
    ops = plan_image(charted, Chart.model_validate(doc))
    assert verdict_of(ops) is Verdict.REJECT
    assert not [o for o in plan_image(_record(40.0, uncertainty=3.0), load_chart("base").chart)
                if o.params.get("check") == "colour_checker"]


def test_panoramas_and_tiny_frames_are_not_searched() -> None:
    # The detector enlarges a copy to 1000 px across: a 3x4000 strip became a billion-pixel image and the
    # process was killed for memory. Such frames hold no reference chart and are skipped.
    noise = np.random.default_rng(0)
    for shape in ((3, 4000, 3), (4000, 3, 3), (20, 20, 3), (400, 1600, 3)):
        assert find_colour_checker(noise.random(shape, dtype=np.float32)) is None, shape


def test_the_stage_can_be_told_not_to_look_for_a_chart(raw_dir: Path, tmp_path: Path) -> None:
    shoot_dir = tmp_path / "shoot"
    shoot_dir.mkdir()
    shutil.copy(raw_dir / CHARTS[0], shoot_dir)  # (a shoot's links outside it are not followed)
    task = scan_shoot(shoot_dir).tasks[0]
    default = (ROOT / "configs" / "default.yaml").read_text(encoding="utf-8")
    assert "  - stage: measure_exposure\n" in default
    for look in (True, False):
        graph_file = tmp_path / f"graph-{look}.yaml"
        graph_file.write_text(default.replace(
            "  - stage: measure_exposure\n",
            f"  - stage: measure_exposure\n    params:\n      colour_checker: {str(look).lower()}\n"), encoding="utf-8")
        ctx = RunContext(shoot_dir=shoot_dir, out_dir=tmp_path / f"out-{look}")
        record = Runner(load_graph(graph_file).segments()[0], ctx).run(task)
        assert record.status == "ok", record.error
        assert bool(record.colour.colour_checker) is look
