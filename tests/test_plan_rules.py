"""The planning rules: registered in one place, in an order that respects what each reads, each with its thresholds."""

from __future__ import annotations

import dataclasses
import inspect
import pkgutil
from collections.abc import Mapping, Sequence

import pytest

import pipeline.planning.rules as rules_pkg
from charts.loader import load_chart
from charts.schema import AcceptanceAction, Chart
from pipeline.kernel.records import AppliedBy, Face, ImageRecord, Operation, OperationKind, SourceKind
from pipeline.planning.operations import check_operation
from pipeline.planning.plan import plan_image, plan_shoot
from pipeline.planning.rules import RULES, SCENE_RULES, SCENE_RULES_AFTER, SHOOT_RULES
from pipeline.planning.rules.checks import check_sharpness
from pipeline.planning.rules.crops import faces_centroid, faces_region, plan_crops
from pipeline.planning.rules.exposure import plan_exposure
from pipeline.planning.rules.faces import plan_faces
from pipeline.planning.rules.straighten import plan_straightening
from pipeline.planning.state import PlanState


def _record(**kw) -> ImageRecord:
    base = dict(source_path="a.dng", content_hash="0" * 64, file_size=1, format="dng", source_kind=SourceKind.RAW,
                width=3000, height=2000, exposure_meter_ev=0.0, sharpness=100.0, lines_found=0,
                clipped_highlights_pct=0.0, clipped_shadows_pct_r=0.0, clipped_shadows_pct_g=0.0,
                clipped_shadows_pct_b=0.0, phash="0" * 16)
    base.update(kw)
    faces = base.pop("faces", [])
    return ImageRecord.from_row(base, faces=faces)


def _face(x: float, y: float, size: float, ev: float, score: float = 0.95) -> Face:
    return Face(x=x, y=y, width=size, height=size, score=score, landmarks=[0.0] * 10, exposure_ev=ev)


def _with(chart: Chart, section: str, **values) -> Chart:
    doc = chart.model_dump(mode="json")
    doc[section] = {**doc[section], **values}
    return Chart.model_validate(doc)


def _kinds(ops: list[Operation], kind: OperationKind) -> list[Operation]:
    return [o for o in ops if o.kind is kind]


def test_every_rule_module_is_registered() -> None:
    modules = {m.name for m in pkgutil.iter_modules(rules_pkg.__path__)}
    registered = [*RULES, *SHOOT_RULES, *SCENE_RULES]
    assert len(set(registered)) == len(registered)
    assert modules == {r.__module__.rsplit(".", 1)[1] for r in registered}, "rule modules not in the rule tuples"
    # Every rule function a module defines runs: none is written and forgotten.
    for name in modules:
        module = __import__(f"{rules_pkg.__name__}.{name}", fromlist=[name])
        defined = {f for n, f in inspect.getmembers(module, inspect.isfunction)
                   if f.__module__ == module.__name__ and n.startswith(("plan_", "check_"))}
        assert defined <= set(registered), f"{name}: {sorted(f.__name__ for f in defined - set(registered))}"
    for rule in RULES:
        assert list(inspect.signature(rule).parameters) == ["record", "chart", "plan"], rule.__name__
    for rule in SHOOT_RULES:
        assert list(inspect.signature(rule).parameters) == ["records", "chart", "plans"], rule.__name__
    for rule in SCENE_RULES:
        assert list(inspect.signature(rule).parameters) == ["records", "chart", "plans", "operations"], rule.__name__
    assert SCENE_RULES_AFTER in RULES


def test_rules_that_decide_run_before_the_rules_that_read_the_decision() -> None:
    order = {rule: i for i, rule in enumerate(RULES)}
    assert order[plan_exposure] < order[plan_faces]  # faces are judged after the global correction
    assert order[plan_exposure] < order[check_sharpness]  # and so is sharpness
    assert order[plan_straightening] < order[plan_crops]  # crops turn with the straightening
    # The scene rules change the exposure after it is decided and before the faces and sharpness read it.
    assert order[plan_exposure] <= order[SCENE_RULES_AFTER] < order[plan_faces]
    assert order[SCENE_RULES_AFTER] < order[check_sharpness]


def test_the_chart_says_how_sure_a_face_must_be_to_brighten_it_automatically() -> None:
    chart = load_chart("corporate_portrait").chart  # face target +0.5 EV, brighten below 0.5 EV
    # Four faces on the target key the exposure; the fifth is 0.8 EV under it, detected with score 0.6.
    faces = [*[_face(300 + 600 * k, 1200, 300, 0.5) for k in range(4)], _face(300, 300, 300, -0.3, score=0.6)]
    (lift,) = _kinds(plan_image(_record(faces=faces), chart), OperationKind.BRIGHTEN_FACE)
    assert lift.applied_by is AppliedBy.RETOUCHER and "uncertain detection" in lift.reason
    trusting = _with(chart, "faces", min_auto_score=0.5)
    (lift,) = _kinds(plan_image(_record(faces=faces), trusting), OperationKind.BRIGHTEN_FACE)
    assert lift.applied_by is AppliedBy.RENDERER and lift.params["ev"] == pytest.approx(0.8)


def test_the_chart_says_which_tilt_is_too_small_to_level() -> None:
    chart = load_chart("base").chart
    # The base chart's 0.4 deg: level photos read a few tenths of a degree (benchmarks/straighten_fit.py).
    assert _kinds(plan_image(_record(horizon_tilt_deg=0.5, lines_found=30), chart), OperationKind.STRAIGHTEN)
    assert not _kinds(plan_image(_record(horizon_tilt_deg=-0.3, lines_found=30), chart), OperationKind.STRAIGHTEN)
    relaxed = _with(chart, "straighten", tolerance_deg=0.6)
    assert not _kinds(plan_image(_record(horizon_tilt_deg=0.5, lines_found=30), relaxed), OperationKind.STRAIGHTEN)


def test_a_tilt_read_from_few_lines_goes_to_a_person() -> None:
    chart = load_chart("base").chart
    (few,) = _kinds(plan_image(_record(horizon_tilt_deg=1.0, lines_found=4), chart), OperationKind.STRAIGHTEN)
    (many,) = _kinds(plan_image(_record(horizon_tilt_deg=1.0, lines_found=40), chart), OperationKind.STRAIGHTEN)
    assert few.applied_by is AppliedBy.RETOUCHER and few.confidence == 0.2
    assert many.applied_by is AppliedBy.RENDERER and many.confidence == 1.0


def test_a_rule_can_be_replaced() -> None:
    chart = load_chart("corporate_portrait").chart
    rec = _record(exposure_meter_ev=-1.0, faces=[_face(1000, 500, 400, -1.0)])

    def centred_crops_only(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
        return plan_crops(dataclasses.replace(record, faces=[]), chart, dataclasses.replace(plan, faces_that_count=()))

    default = plan_image(rec, chart)
    replaced = plan_image(rec, chart, tuple(centred_crops_only if r is plan_crops else r for r in RULES))
    assert [o.op_id for o in replaced] == [o.op_id for o in default]
    assert {o.reason for o in _kinds(default, OperationKind.CROP)} == {
        "4:5 crop placed on 1 face(s), all 1 face(s) whole", "1:1 crop placed on 1 face(s), all 1 face(s) whole"}
    assert {o.reason for o in _kinds(replaced, OperationKind.CROP)} == {"4:5 crop placed centre",
                                                                         "1:1 crop placed centre"}


def test_a_shoot_rule_informs_the_image_rules_and_its_operations_come_last() -> None:
    chart = load_chart("base").chart  # sharpness below 15 is flagged
    soft = [_record(source_path=f"{k}.dng", sharpness=10.0, exposure_meter_ev=0.0) for k in range(2)]

    def brighter_scene(records: Sequence[ImageRecord], chart: Chart,
                       plans: Mapping[int, PlanState]) -> dict[int, list[Operation]]:
        plans[0].exposure_ev = 2.0  # e.g. a scene rule keying the whole series on its brightest frames
        return {0: check_operation(AcceptanceAction.FLAG, "scene", "brightened with its series", None, None)}

    plan_shoot(soft, chart, rules=(check_sharpness,), shoot_rules=(brighter_scene,))
    # 10 * 2 ** (2 EV * 2 / 2.2) = 35 > 15: after the scene's correction the first frame is sharp enough.
    assert [o.params["check"] for o in soft[0].operations] == ["scene"]
    assert [o.params["check"] for o in soft[1].operations] == ["sharpness"]


def test_an_unanalysed_record_stops_the_plan_before_any_record_changes() -> None:
    chart = load_chart("base").chart
    done, never = _record(source_path="done.dng", exposure_meter_ev=-1.5), _record(source_path="never.dng")
    never.frame.width = None
    with pytest.raises(ValueError, match="never.dng: cannot plan an image that was not analysed"):
        plan_shoot([done, never], chart)
    assert done.operations == [] and done.plan.verdict is None


def test_face_region_adds_margin_headroom_and_shoulders_inside_the_frame() -> None:
    # One 100-px face: 15 px margin around, 60 px headroom above, 120 px shoulders below.
    assert faces_region([(100.0, 100.0, 100.0, 100.0)], 1000.0, 1000.0) == pytest.approx((85, 25, 130, 310))
    # At the frame's top-left corner the region stops at the edges.
    assert faces_region([(0.0, 0.0, 100.0, 100.0)], 1000.0, 200.0) == pytest.approx((0, 0, 115, 200))


def test_faces_centroid_is_weighted_by_area() -> None:
    assert faces_centroid([(0.0, 0.0, 10.0, 10.0), (100.0, 0.0, 30.0, 30.0)]) == pytest.approx((104.0, 14.0))


def test_an_ignored_check_asks_for_nothing() -> None:
    assert check_operation(AcceptanceAction.IGNORE, "sharpness", "soft", 1.0, 15.0) == []
    (op,) = check_operation(AcceptanceAction.REJECT, "sharpness", "soft", 1.23456, 15.0, confidence=0.876)
    assert (op.kind, op.op_id, op.measured, op.confidence, op.applied_by) == (
        OperationKind.REJECT, "reject-sharpness", 1.235, 0.88, AppliedBy.RETOUCHER)
