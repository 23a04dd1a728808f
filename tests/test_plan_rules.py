"""The planning rules: registered in one place, in an order that respects what each reads, each with its thresholds."""

from __future__ import annotations

import dataclasses
import inspect
import math
import pkgutil
from collections.abc import Mapping, Sequence

import pytest
from planning_inputs import LIT_SURROUND_EV, chart_with, face, image_record, of_kind

import pipeline.planning.rules as rules_pkg
from charts.loader import load_chart
from charts.schema import AcceptanceAction, Chart
from pipeline.imaging.measure.metering import FACE_LOG2, FACE_SPREAD_EV, inverse_tone_curve, tone_curve
from pipeline.imaging.render import RenderKeys, adjustments_from_operations
from pipeline.kernel.records import (
    RENDER_ON_ACCEPT,
    AppliedBy,
    Face,
    ImageRecord,
    Operation,
    OperationKind,
    SourceKind,
    pixel_review,
)
from pipeline.outputs.instructions import summary_line
from pipeline.planning.operations import check_operation
from pipeline.planning.plan import plan_image, plan_shoot
from pipeline.planning.rules import RULES, SCENE_RULES, SCENE_RULES_AFTER, SHOOT_RULES
from pipeline.planning.rules.checks import check_sharpness
from pipeline.planning.rules.crops import faces_centroid, faces_region, plan_crops
from pipeline.planning.rules.exposure import plan_exposure
from pipeline.planning.rules.faces import (
    FALLOFF_EV_PER_STOP,
    MELANIN_EV_PER_REDNESS,
    REDNESS_SPREAD,
    SKIN_BAND_MARGIN_EV,
    SKIN_REDNESS_EV,
    SURROUND_CONFIRMS,
    SURROUND_LIT_EV,
    flash_falloff,
    judge_against_peers,
    lit_by_falloff,
    lit_reference,
    lone_face_deficit,
    plan_faces,
    shown_ev,
    shown_surround_ev,
    skin_allowance,
)
from pipeline.planning.rules.straighten import plan_straightening
from pipeline.planning.state import PlanState


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
    # Four faces on the target key the exposure; the fifth is 0.8 EV under it, in a shadow of its own
    # (as far under its surroundings again), detected with score 0.6.
    faces = [*[face(300 + 600 * k, 1200, 300, 0.5, surround_ev=LIT_SURROUND_EV) for k in range(4)],
             face(300, 300, 300, -0.3, score=0.6, surround_ev=LIT_SURROUND_EV - 0.8)]
    (lift,) = of_kind(plan_image(image_record(faces=faces), chart), OperationKind.BRIGHTEN_FACE)
    assert lift.applied_by is AppliedBy.RETOUCHER and "uncertain detection" in lift.reason
    trusting = chart_with(chart_with(chart, "faces", min_auto_score=0.5), "faces", confirm_lifts=False)
    (lift,) = of_kind(plan_image(image_record(faces=faces), trusting), OperationKind.BRIGHTEN_FACE)
    assert lift.applied_by is AppliedBy.RENDERER and lift.params["ev"] == pytest.approx(0.8)
    # A face detect_faces marked too small to judge reliably is not lifted unseen, however sure the detector.
    faces[4].too_small = True
    (lift,) = of_kind(plan_image(image_record(faces=faces), trusting), OperationKind.BRIGHTEN_FACE)
    assert lift.applied_by is AppliedBy.RETOUCHER and "too small to judge unseen" in lift.reason
    assert lift.params["ev"] == pytest.approx(0.8)


def _skin(ev: float, redness: float, x: float) -> Face:
    """A face reading ``ev`` whose skin has log2(R/G) = ``redness`` (G = B = 0.1, linear), its surroundings
    in the light a face reading 0 is in (a darker face reads as much further under them)."""
    skin = face(x, 600, 300, ev, surround_ev=LIT_SURROUND_EV + ev)
    skin.colour_rgb = [0.1 * 2.0**redness, 0.1, 0.1]
    return skin


def test_a_face_of_no_skin_hue_is_no_reference_for_one_of_a_skin_hue() -> None:
    chart = load_chart("base").chart
    # A selfie's lit face and a "face" the detector found on a striped sleeve, grey-blue (hue 271 deg, chroma 5) and
    # 1.2 EV brighter: the sleeve is the key; as the reference it put the real face in a shadow 1.2 EV deep.
    sleeve, selfie = _skin(0.0, 0.5, 300), _skin(-1.2, 0.5, 1200)
    sleeve.colour_rgb = [0.09, 0.1, 0.12]
    assert not of_kind(plan_image(image_record(faces=[sleeve, selfie]), chart), OperationKind.BRIGHTEN_FACE)
    # Skin on both: the darker face is less lit than its peer, and lifted by the difference.
    sleeve.colour_rgb = selfie.colour_rgb
    (lift,) = of_kind(plan_image(image_record(faces=[sleeve, selfie]), chart), OperationKind.BRIGHTEN_FACE)
    assert lift.params["face_index"] == 1 and lift.params["ev"] == pytest.approx(1.2)
    # No skin on either (a cast on every face, or a black and white picture): the key faces stand.
    sleeve.colour_rgb = selfie.colour_rgb = [0.09, 0.1, 0.12]
    (lift,) = of_kind(plan_image(image_record(faces=[sleeve, selfie]), chart), OperationKind.BRIGHTEN_FACE)
    assert lift.params["face_index"] == 1 and lift.params["ev"] == pytest.approx(1.2)


def test_a_darker_skin_is_not_a_shadow() -> None:
    chart = load_chart("base").chart  # brighten below 0.6 EV
    # Two faces in one light: the second 0.9 EV darker and as much redder as a darker skin is (the Monk Skin Tone
    # scale's slope, past the redness a skin of one tone strays by).
    deeper = REDNESS_SPREAD + 0.9 / MELANIN_EV_PER_REDNESS
    assert skin_allowance(_skin(0.0, 0.5 + deeper, 0), 0.5) == pytest.approx(0.9)
    skins = [_skin(0.0, 0.5, 300), _skin(-0.9, 0.5 + deeper, 1200)]
    assert not of_kind(plan_image(image_record(faces=skins), chart), OperationKind.BRIGHTEN_FACE)
    # The same 0.9 EV at the same redness is less light on that face: a shadow, lifted by its depth.
    shadowed = [_skin(0.0, 0.5, 300), _skin(-0.9, 0.5, 1200)]
    (lift,) = of_kind(plan_image(image_record(faces=shadowed), chart), OperationKind.BRIGHTEN_FACE)
    assert lift.params["face_index"] == 1 and lift.params["ev"] == pytest.approx(0.9)
    assert "shadow" in lift.reason
    # A shadow on the darker skin is found too, at its own depth (not at the skins' difference).
    both = [_skin(0.0, 0.5, 300), _skin(-0.9 - 1.0, 0.5 + deeper, 1200)]
    (lift,) = of_kind(plan_image(image_record(faces=both), chart), OperationKind.BRIGHTEN_FACE)
    assert lift.params["face_index"] == 1 and lift.params["ev"] == pytest.approx(1.0)
    # Colour only ever excuses: a paler face 0.55 EV under its neighbours is not lifted for being pale.
    pale = [_skin(0.0, 0.5, 300), _skin(0.0, 0.5, 1200), _skin(-0.55, 0.0, 2100)]
    assert not of_kind(plan_image(image_record(faces=pale), chart), OperationKind.BRIGHTEN_FACE)


def test_a_face_is_judged_against_the_key_faces_other_than_itself() -> None:
    chart = load_chart("base").chart  # brighten below 0.6 EV
    # Two faces 0.6 EV apart both key the exposure (the key band is 0.6 EV); each is judged against the
    # other alone, not against a median that holds itself (which read the second 0.3 EV deep).
    faces = [_skin(0.6, 0.5, 300), _skin(0.0, 0.3, 1200)]
    record = image_record(faces=faces)
    plan = PlanState.start(record, chart)
    assert not of_kind(plan_image(record, chart, plan=plan), OperationKind.BRIGHTEN_FACE)  # 0.6 is not beyond 0.6
    assert plan.key_faces == (0, 1)
    judged = judge_against_peers(record, plan.key_faces, 1)
    # The second face is paler: colour only ever excuses, so its skin explains nothing (0, not negative).
    assert (judged.reading, judged.expected, judged.skin, judged.depth) == pytest.approx((0.0, 0.6, 0.0, 0.6))
    redder = judge_against_peers(image_record(faces=[faces[0], _skin(0.0, 0.7, 1200)]), (0, 1), 1)
    assert redder.skin == pytest.approx(0.2 * SKIN_REDNESS_EV) and redder.depth == pytest.approx(0.6 - 0.2 * SKIN_REDNESS_EV)
    # A lone key face is its own reference (depth 0), and there is no judging without key faces.
    assert judge_against_peers(record, (1,), 1).depth == pytest.approx(0.0)
    with pytest.raises(ValueError, match="at least one key face"):
        judge_against_peers(record, (), 1)


def test_one_bright_face_does_not_put_its_group_in_a_shadow() -> None:
    chart = load_chart("base").chart  # brighten below 0.6 EV
    # Seven faces: one nearest the flash (or in a patch of sun) reads 0.9 EV above six in one light, which
    # scatter 0.2 EV. Judged against the bright face alone, all six read "in a shadow" (PASCAL VOC
    # 2007_007763's DNG twin: three of them lifted 0.6-0.9 EV); the lit level is the group's upper quartile.
    scatter = (0.1, -0.1, 0.05, 0.0, -0.05, 0.1)
    def group(shade: dict[int, float]) -> list[Face]:
        return [_skin(0.0, 0.5, 100)] + [_skin(-0.9 + e - shade.get(k, 0.0), 0.5, 500 + 400 * k)
                                          for k, e in enumerate(scatter)]
    record = image_record(faces=group({}))
    plan = PlanState.start(record, chart)
    assert not of_kind(plan_image(record, chart, plan=plan), OperationKind.BRIGHTEN_FACE)
    assert plan.key_faces == tuple(range(7))
    assert lit_reference(record, plan.key_faces, plan.faces_that_count) == tuple(range(7))
    # Nor does it key the frame darker: the exposure reads as it does on the six alone (within their scatter).
    six = PlanState.start(image_record(faces=group({})[1:]), chart)
    plan_image(image_record(faces=group({})[1:]), chart, plan=six)
    assert plan.exposure_offset_ev == pytest.approx(six.exposure_offset_ev, abs=0.1)
    # Two of the six in a shadow 1.0 and 1.5 EV deep are lifted by their depths against the group's lit level.
    lifts = {o.params["face_index"]: o.params["ev"]
             for o in of_kind(plan_image(image_record(faces=group({1: 1.0, 4: 1.5})), chart), OperationKind.BRIGHTEN_FACE)}
    assert lifts.keys() == {2, 5}
    assert lifts[2] == pytest.approx(1.0 + 0.1, abs=0.15) and lifts[5] == pytest.approx(1.5, abs=0.15)
    # Four faces cannot tell one bright face from three in a shadow: the brightest keys them, as before.
    four = image_record(faces=group({})[:4])
    assert len(of_kind(plan_image(four, chart), OperationKind.BRIGHTEN_FACE)) == 3


def test_flash_fall_off_is_not_a_shadow_but_a_shadow_in_flash_light_is() -> None:
    chart = load_chart("base").chart  # brighten below 0.6 EV
    # Four diners from a flash near the camera: each face half as far again is smaller and darker by
    # the inverse square of its distance (FALLOFF_EV_PER_STOP per halving of its size), plus a little
    # skin and angle scatter.
    sizes, scatter = (400, 300, 220, 160), (0.0, 0.1, -0.1, 0.05)
    def diners(shadow: float = 0.0) -> list[Face]:
        # (the surroundings of each diner fall off with the face: only a shadow darkens a face against them)
        return [face(300 + 700 * k, 600, s, FALLOFF_EV_PER_STOP * math.log2(s / 400) + e - (shadow if k == 2 else 0),
                     surround_ev=LIT_SURROUND_EV - (shadow if k == 2 else 0))
                for k, (s, e) in enumerate(zip(sizes, scatter))]
    assert lit_by_falloff(diners())
    assert not of_kind(plan_image(image_record(faces=diners()), chart), OperationKind.BRIGHTEN_FACE)
    # A 1 EV shadow on the third diner does not follow size: it is found, at its depth (and its 0.1 EV scatter).
    (lift,) = of_kind(plan_image(image_record(faces=diners(1.0)), chart), OperationKind.BRIGHTEN_FACE)
    assert lift.params["face_index"] == 2 and lift.params["ev"] == pytest.approx(1.0 + 0.1, abs=0.05)  # its scatter too
    # In an even light the same sizes read alike, and a smaller face darker than the others is lifted.
    even = [face(300 + 700 * k, 600, s, e - (1.0 if k == 2 else 0), surround_ev=LIT_SURROUND_EV - (1.0 if k == 2 else 0))
            for k, (s, e) in enumerate(zip(sizes, scatter))]
    assert not lit_by_falloff(even)
    (lift,) = of_kind(plan_image(image_record(faces=even), chart), OperationKind.BRIGHTEN_FACE)
    assert lift.params["face_index"] == 2
    # Two faces cannot tell fall-off from a shadow: the smaller, darker one is still lifted.
    two = [face(300, 600, 400, 0.0, surround_ev=LIT_SURROUND_EV), face(1200, 600, 300, -0.9, surround_ev=LIT_SURROUND_EV - 0.9)]
    assert not lit_by_falloff(two)
    (lift,) = of_kind(plan_image(image_record(faces=two), chart), OperationKind.BRIGHTEN_FACE)
    assert lift.params["face_index"] == 1


def test_flash_fall_off_is_the_photos_own() -> None:
    chart = load_chart("base").chart  # brighten below 0.6 EV
    # A diffused flash: the diners fall off by 1.3 EV per halving of their size, not the law's 2.0.
    sizes, slope = (400, 300, 220, 160), 1.3
    def diners(shadow: float = 0.0) -> list[Face]:
        return [face(300 + 700 * k, 600, s, slope * math.log2(s / 400) - (shadow if k == 2 else 0),
                     surround_ev=LIT_SURROUND_EV - (shadow if k == 2 else 0)) for k, s in enumerate(sizes)]
    assert flash_falloff(diners()) == pytest.approx(slope)
    assert not of_kind(plan_image(image_record(faces=diners()), chart), OperationKind.BRIGHTEN_FACE)
    # A 1 EV shadow on the third diner is lifted by its depth: the law would excuse 0.47 EV of it as
    # distance (2.0 - 1.3 EV per halving, 0.67 halvings under the key faces' size) and read 0.53,
    # under the threshold.
    (lift,) = of_kind(plan_image(image_record(faces=diners(1.0)), chart), OperationKind.BRIGHTEN_FACE)
    assert lift.params["face_index"] == 2 and lift.params["ev"] == pytest.approx(1.0, abs=0.05)
    # Steeper than the law is not believed beyond it; an even light has none.
    steep = [face(300 + 700 * k, 600, s, 3.0 * math.log2(s / 400)) for k, s in enumerate(sizes)]
    assert flash_falloff(steep) == pytest.approx(FALLOFF_EV_PER_STOP)
    assert flash_falloff([face(300 + 700 * k, 600, s, 0.0) for k, s in enumerate(sizes)]) == 0.0


def test_a_face_its_surroundings_do_not_show_in_a_shadow_is_a_check_not_a_lift() -> None:
    chart = load_chart("base").chart  # brighten below 0.6 EV
    # The third face reads 0.9 EV under the two others at their redness: a shadow, by the peers alone.
    def group(surround: float | None) -> ImageRecord:
        return image_record(faces=[face(300, 600, 300, 0.0, surround_ev=LIT_SURROUND_EV),
                                   face(1200, 600, 300, 0.0, surround_ev=LIT_SURROUND_EV),
                                   face(2100, 600, 300, -0.9, surround_ev=surround)])
    # Its surroundings are as much darker as it is (it stands in a dimmer part of the room): no shadow
    # of its own. Not lifted: a check for a person, with the depth the peers read.
    dim = group(LIT_SURROUND_EV)
    assert judge_against_peers(dim, (0, 1), 2).surround < SURROUND_CONFIRMS * chart.faces.brighten_below_ev
    ops = plan_image(dim, chart)
    assert not of_kind(ops, OperationKind.BRIGHTEN_FACE)
    (check,) = [o for o in of_kind(ops, OperationKind.FLAG) if o.params["check"] == "face_shadow"]
    assert check.params["face_index"] == 2 and check.params["ev"] == pytest.approx(0.9)
    assert check.applied_by is AppliedBy.RETOUCHER and check.confidence <= 0.5 and "not lifted" in check.reason
    # Nothing to confirm it with (no surround reading): a check too.
    assert not of_kind(plan_image(group(None), chart), OperationKind.BRIGHTEN_FACE)
    # In a shadow of its own it reads as much further under its surroundings: lifted by the peers' depth.
    shadowed = group(LIT_SURROUND_EV - 0.9)
    assert judge_against_peers(shadowed, (0, 1), 2).surround > SURROUND_CONFIRMS * chart.faces.brighten_below_ev
    ops = plan_image(shadowed, chart)
    (lift,) = of_kind(ops, OperationKind.BRIGHTEN_FACE)
    assert lift.params["face_index"] == 2 and lift.params["ev"] == pytest.approx(0.9)
    assert not of_kind(ops, OperationKind.FLAG)


def test_a_face_read_deeper_than_the_charts_correction_is_a_check_not_a_lift() -> None:
    """A face reading further under than the chart's exposure.max_correction_ev is not told a lift: on published
    photos such readings (2.0-6.7 EV) were darker skins, make-up, dark glasses or faces in a light of their own
    (a crowd's face 6.65 EV under was sent to a retoucher to be lifted 6.65 EV by hand)."""
    chart = load_chart("base").chart  # brighten below 0.6 EV, max_correction_ev 2.0
    cap = chart.exposure.max_correction_ev
    def group(depth: float) -> list[Operation]:  # the third face in a shadow its surroundings confirm
        return plan_image(image_record(faces=[face(300, 600, 300, 0.0, surround_ev=LIT_SURROUND_EV),
                                              face(1200, 600, 300, 0.0, surround_ev=LIT_SURROUND_EV),
                                              face(2100, 600, 300, -depth, surround_ev=LIT_SURROUND_EV - depth)]),
                          chart)
    (lift,) = of_kind(group(1.8), OperationKind.BRIGHTEN_FACE)  # within the chart's correction: a lift, by hand
    assert lift.params["ev"] == pytest.approx(1.8) and "retouch by hand" in lift.reason
    deep = group(3.5)
    assert not of_kind(deep, OperationKind.BRIGHTEN_FACE)
    (check,) = [o for o in of_kind(deep, OperationKind.FLAG) if o.params["check"] == "face_shadow"]
    assert check.params["face_index"] == 2 and check.params["ev"] == pytest.approx(3.5)
    assert f"more than the {cap:g} EV the chart corrects" in check.reason and "not lifted" in check.reason
    assert check.applied_by is AppliedBy.RETOUCHER
    # The only face, far under its surroundings and a well-exposed face: the same check.
    lone = face(1000, 500, 400, -3.0, surround_ev=SURROUND_LIT_EV - 3.0)
    ops = plan_image(image_record(source_path="a.jpg", format="jpeg", source_kind=SourceKind.RASTER,
                                  exposure_meter_ev=0.0, faces=[lone]), chart)
    assert not of_kind(ops, OperationKind.BRIGHTEN_FACE)
    (check,) = [o for o in of_kind(ops, OperationKind.FLAG) if o.params["check"] == "face_shadow"]
    assert check.params["ev"] > cap and "light around it" in check.reason


def test_a_lone_face_is_lifted_by_how_much_darker_than_its_surroundings_it_reads() -> None:
    chart = load_chart("base").chart  # brighten below 0.6 EV
    def portrait(surround_ev: float) -> ImageRecord:  # a JPEG: its surround reading is in display light
        lone = face(1000, 500, 400, -1.5)
        lone.surround_ev = surround_ev
        return image_record(source_path="a.jpg", format="jpeg", source_kind=SourceKind.RASTER,
                            exposure_meter_ev=-0.2, faces=[lone])
    # Lit like a lit face against its neighbourhood: no lift, and the exposure keys on the face as it reads.
    lit = plan_image(portrait(SURROUND_LIT_EV), chart)
    assert not of_kind(lit, OperationKind.BRIGHTEN_FACE)
    # One stop under that: a shadow of its own, lifted by its depth; the frame is keyed on the face
    # as it would read lit (-1.5 + 1 = -0.5 EV), so it is not brightened as the lit, -1.5 EV face's is.
    shadowed = plan_image(portrait(SURROUND_LIT_EV - 1.0), chart)
    (lift,) = of_kind(shadowed, OperationKind.BRIGHTEN_FACE)
    assert lift.params["ev"] == pytest.approx(1.0) and "light around it" in lift.reason
    def global_ev(ops: list[Operation]) -> float:
        return sum(o.params["ev"] for o in of_kind(ops, OperationKind.EXPOSURE))
    assert global_ev(lit) > 0.5 and global_ev(shadowed) < global_ev(lit) - 0.5
    # Without a surround reading there is nothing to judge a lone face against.
    assert not of_kind(plan_image(portrait(None), chart), OperationKind.BRIGHTEN_FACE)  # type: ignore[arg-type]


def test_a_lone_face_is_lifted_by_what_the_global_correction_leaves_of_its_deficit() -> None:
    """A lift adds to the global correction: COCO val2014's 000294 (a man lit by a flash before dark kitchen cabinets,
    chart social_media) had its frame brightened 1.14 EV and its face, 0.69 EV under a well-exposed one as shot, sent
    to be lifted 1.07 EV more: applied both, the face came out a stop over the chart's skin. A lone face's lift is the
    smaller of its shadow's depth and what the frame's correction leaves it short of a well-exposed face."""
    chart = chart_with(load_chart("base").chart, "faces", confirm_lifts=False)
    reasons: list[str] = []
    def planned(meter_ev: float) -> tuple[float, float]:  # (global correction, lift) of a JPEG portrait
        lone = face(1000, 500, 400, -1.0, surround_ev=SURROUND_LIT_EV - 2.0)  # deeper by its surroundings than its level
        record = image_record(source_path="a.jpg", format="jpeg", source_kind=SourceKind.RASTER,
                              exposure_meter_ev=meter_ev, faces=[lone])
        ops = plan_image(record, chart)
        lifts = [o.params["ev"] for o in of_kind(ops, OperationKind.BRIGHTEN_FACE)]
        assert len(lifts) <= 1
        reasons[:] = [o.reason for o in of_kind(ops, OperationKind.BRIGHTEN_FACE)]
        return sum(o.params["ev"] for o in of_kind(ops, OperationKind.EXPOSURE)), sum(lifts)
    def delivered(global_ev: float, lift: float) -> float:  # the face's level as the renderer multiplies it
        return shown_ev(-1.0 + global_ev, True) + lift
    alone, lift = planned(0.0)  # the frame reads as the face would lit: left as shot, the face lifted to its level
    assert alone == 0.0 and 1.0 < lift < 1.5 and delivered(alone, lift) == pytest.approx(shown_ev(0.0, True), abs=0.02)
    dark, smaller = planned(-0.9)  # a dark frame, brightened: the face comes up with it and is lifted the rest
    assert dark > 0.5 and 0.0 < smaller < lift - 0.3
    assert delivered(dark, smaller) == pytest.approx(shown_ev(0.0, True), abs=0.02)
    assert f"the frame's {dark:+.2f} EV correction brings it up the rest: lifted {smaller:.2f} EV" in reasons[0]
    darker, none = planned(-2.0)  # brightened as far as the face needs, or further: no lift on top
    assert darker > dark and delivered(darker, 0.0) >= shown_ev(0.0, True) - chart.exposure.tolerance_ev
    assert none == 0.0


def test_a_lone_face_near_a_lit_faces_level_is_lifted_by_a_person_not_the_renderer() -> None:
    """Both witnesses see a shadow, but a face within one spread of a well-exposed face's level reads so when lit,
    before a bright backdrop (the Kodak suite's kodim04): the same instruction, which the renderer applies once a
    reviewer accepts it."""
    # A chart whose renderer applies lifts up to 1 EV unseen (base proposes them to a reviewer first).
    chart = chart_with(load_chart("base").chart, "faces", confirm_lifts=False)
    def lift_of(face_ev: float, depth: float) -> tuple[Operation, float]:
        lone = face(1000, 500, 400, face_ev, surround_ev=SURROUND_LIT_EV - depth)
        record = image_record(source_path="a.jpg", format="jpeg", source_kind=SourceKind.RASTER,
                              exposure_meter_ev=-0.2, faces=[lone])
        (op,) = of_kind(plan_image(record, chart), OperationKind.BRIGHTEN_FACE)
        return op, lone_face_deficit(record, chart, 0)
    # In a shadow 1.5 EV deep by its surroundings, 0.9 EV under a well-exposed face by its own level.
    near, deficit = lift_of(-0.7, 1.5)
    assert chart.faces.brighten_below_ev < deficit <= min(FACE_SPREAD_EV, chart.faces.max_brighten_ev)
    assert near.applied_by is AppliedBy.RETOUCHER and "accept it after a look" in near.reason
    assert near.params["ev"] == pytest.approx(deficit, abs=0.01)  # the lift the renderer applied before
    # Not applied while pending; applied once accepted, and the exports made before are stale by their key.
    keys = RenderKeys(chart)
    assert near.params[RENDER_ON_ACCEPT] is True and not adjustments_from_operations([near]).faces
    accepted = dataclasses.replace(near, review={"status": "accepted", "by": "retoucher"})
    (lift,) = adjustments_from_operations([accepted]).faces
    assert lift.ev == pytest.approx(near.params["ev"])
    assert keys.key("h", [accepted]) != keys.key("h", [near])
    rejected = dataclasses.replace(near, review={"status": "rejected", "by": "retoucher"})
    assert not adjustments_from_operations([rejected]).faces
    # A resumed run re-renders for the acceptance, as for a rejection (and for no other operation's acceptance).
    assert pixel_review(near.params, accepted.review) != pixel_review(near.params, near.review)
    assert pixel_review({"ev": 0.5}, {"status": "accepted"}) == pixel_review({"ev": 0.5}, None) == {"rejected": False}
    # 0.9 EV deep by its surroundings, 1.6 EV under a well-exposed face: the renderer lifts it by 0.9 EV.
    far, deficit = lift_of(-1.2, 0.9)
    assert deficit > FACE_SPREAD_EV
    assert far.applied_by is AppliedBy.RENDERER and "after a look" not in far.reason
    assert far.params["ev"] == pytest.approx(0.9, abs=0.01) and RENDER_ON_ACCEPT not in far.params
    # Beyond the renderer's limit (2.2 EV under a well-exposed face, 3 EV deep): a retoucher's work by hand, accepted
    # or not.
    deep, _ = lift_of(-1.3, 1.6)  # beyond the automatic 1 EV, within the chart's 2 EV correction
    assert deep.applied_by is AppliedBy.RETOUCHER and "retouch by hand" in deep.reason
    assert RENDER_ON_ACCEPT not in deep.params
    assert not adjustments_from_operations([dataclasses.replace(deep, review={"status": "accepted"})]).faces
    # The line a production director reads tells the two apart.
    assert summary_line([near], 1) == "1 face to brighten (1 to confirm)"
    assert summary_line([accepted], 1) == "1 face to brighten"  # accepted: the renderer's
    assert summary_line([deep], 1) == "1 face to brighten (1 by hand)"
    assert summary_line([far], 1) == "1 face to brighten"


def test_a_lone_face_on_a_white_backdrop_is_not_judged_against_it() -> None:
    """Its surroundings are the backdrop, lit brighter than skin on purpose: no lift and no check from them."""
    chart = load_chart("base").chart
    def portrait(backdrop_pct: float) -> ImageRecord:
        lone = face(1000, 500, 400, -1.5)
        lone.surround_ev = SURROUND_LIT_EV - 1.0
        record = image_record(source_path="a.jpg", format="jpeg", source_kind=SourceKind.RASTER,
                              exposure_meter_ev=-0.2, faces=[lone])
        record.exposure.backdrop_pct = backdrop_pct
        return record
    assert of_kind(plan_image(portrait(0.0), chart), OperationKind.BRIGHTEN_FACE)
    on_white = plan_image(portrait(80.0), chart)
    assert not of_kind(on_white, OperationKind.BRIGHTEN_FACE)
    assert not [o for o in of_kind(on_white, OperationKind.FLAG) if o.params["check"] == "face_shadow"]


def test_a_raw_lone_face_is_judged_against_its_surroundings_as_they_look() -> None:
    """A sunlit wall 1.5 EV brighter than a bright face in scene light looks about a third of a stop brighter."""
    chart = load_chart("base").chart
    lit_face = 0.41  # a bright, sunlit face: 1.6 EV over the reference of a well-exposed one
    face_ev = math.log2(lit_face) - FACE_LOG2
    wall = lit_face * 2.0**1.5
    raw_face = face(1000, 500, 400, face_ev)
    raw_face.surround_ev = -1.5  # scene light: what the RAW's pixels hold
    jpeg_face = face(1000, 500, 400, face_ev)
    jpeg_face.surround_ev = math.log2(float(tone_curve(lit_face)) / float(tone_curve(wall)))  # its JPEG twin
    assert -0.45 < jpeg_face.surround_ev < -0.3
    # The RAW is read in the light its JPEG twin shows: the same surround, no lift for either.
    assert shown_surround_ev(raw_face, rendered=False) == pytest.approx(jpeg_face.surround_ev, abs=1e-6)
    raw = image_record(faces=[raw_face])
    jpeg = image_record(source_path="a.jpg", format="jpeg", source_kind=SourceKind.RASTER, faces=[jpeg_face])
    # (Read in scene light, the RAW's face was 1.24 EV under a lit face's -0.26 and lifted for it.)
    assert not of_kind(plan_image(raw, chart), OperationKind.BRIGHTEN_FACE)
    assert not of_kind(plan_image(jpeg, chart), OperationKind.BRIGHTEN_FACE)
    # A shadow on the RAW's face is lifted by its depth in scene light: the face a stop darker, the
    # wall as it was, read through the curve at the face's darker level and taken back to scene light.
    # The bright face a stop down still reads 0.6 EV over a well-exposed face: lit, whatever the wall.
    shadowed = face(1000, 500, 400, face_ev - 1.0)
    shadowed.surround_ev = -2.5
    assert not of_kind(plan_image(image_record(faces=[shadowed]), chart), OperationKind.BRIGHTEN_FACE)
    # A face exposed like a well-exposed one, beside a wall it looks as far under as a lit face does, a stop
    # down in a shadow: lifted.
    well = 2.0**FACE_LOG2
    wall = float(inverse_tone_curve(float(tone_curve(well)) * 2.0**-SURROUND_LIT_EV))
    shadowed = face(1000, 500, 400, -1.0)
    shadowed.surround_ev = math.log2(well / 2 / wall)
    (lift,) = of_kind(plan_image(image_record(faces=[shadowed]), chart), OperationKind.BRIGHTEN_FACE)
    assert lift.params["ev"] == pytest.approx(1.0, abs=0.3)


def test_an_under_exposure_beyond_the_cap_lifts_no_face_lit_like_its_key() -> None:
    chart = load_chart("base").chart  # global correction capped at 2 EV
    faces = [face(300, 600, 300, -3.5), face(1200, 600, 300, -3.6)]  # both in the same (short) light
    ops = plan_image(image_record(exposure_meter_ev=-3.5, faces=faces), chart)
    assert of_kind(ops, OperationKind.EXPOSURE)[0].params["ev"] == chart.exposure.max_correction_ev
    assert any(o.params.get("check") == "exposure_range" for o in of_kind(ops, OperationKind.FLAG))
    assert not of_kind(ops, OperationKind.BRIGHTEN_FACE)  # the rest is a retoucher's, not a lift of lit faces


def test_the_chart_says_which_tilt_is_too_small_to_level() -> None:
    chart = load_chart("base").chart
    # The base chart's 0.4 deg: level photos read a few tenths of a degree (benchmarks/straighten_fit.py).
    assert of_kind(plan_image(image_record(horizon_tilt_deg=0.5, lines_found=30), chart), OperationKind.STRAIGHTEN)
    assert not of_kind(plan_image(image_record(horizon_tilt_deg=-0.3, lines_found=30), chart), OperationKind.STRAIGHTEN)
    relaxed = chart_with(chart, "straighten", tolerance_deg=0.6)
    assert not of_kind(plan_image(image_record(horizon_tilt_deg=0.5, lines_found=30), relaxed), OperationKind.STRAIGHTEN)


def test_a_tilt_read_from_few_lines_goes_to_a_person() -> None:
    chart = load_chart("base").chart
    (few,) = of_kind(plan_image(image_record(horizon_tilt_deg=1.0, lines_found=4), chart), OperationKind.STRAIGHTEN)
    (many,) = of_kind(plan_image(image_record(horizon_tilt_deg=1.0, lines_found=40), chart), OperationKind.STRAIGHTEN)
    assert few.applied_by is AppliedBy.RETOUCHER and few.confidence == 0.2
    assert many.applied_by is AppliedBy.RENDERER and many.confidence == 1.0


def test_a_rule_can_be_replaced() -> None:
    chart = load_chart("corporate_portrait").chart
    rec = image_record(exposure_meter_ev=-1.0, faces=[face(1000, 500, 400, -1.0)])

    def centred_crops_only(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
        return plan_crops(dataclasses.replace(record, faces=[]), chart, dataclasses.replace(plan, faces_that_count=()))

    default = plan_image(rec, chart)
    replaced = plan_image(rec, chart, tuple(centred_crops_only if r is plan_crops else r for r in RULES))
    assert [o.op_id for o in replaced] == [o.op_id for o in default]
    assert {o.reason for o in of_kind(default, OperationKind.CROP)} == {
        "4:5 crop placed on 1 face(s), all 1 face(s) whole", "1:1 crop placed on 1 face(s), all 1 face(s) whole"}
    assert {o.reason for o in of_kind(replaced, OperationKind.CROP)} == {"4:5 crop placed centre",
                                                                         "1:1 crop placed centre"}


def test_a_shoot_rule_informs_the_image_rules_and_its_operations_come_last() -> None:
    chart = load_chart("base").chart  # sharpness below 15 is flagged
    soft = [image_record(source_path=f"{k}.dng", sharpness=10.0, exposure_meter_ev=0.0) for k in range(2)]

    def brighter_scene(records: Sequence[ImageRecord], chart: Chart,
                       plans: Mapping[int, PlanState]) -> dict[int, list[Operation]]:
        plans[0].exposure_ev = 2.0  # e.g. a scene rule keying the whole series on its brightest frames
        return {0: check_operation(AcceptanceAction.FLAG, "scene", "brightened with its series", None, None)}

    plan_shoot(soft, chart, rules=(check_sharpness,), shoot_rules=(brighter_scene,))
    # 10 * 2 ** (2 EV * 2 / 2.2) = 35 > 15: after the scene's correction the first frame is sharp enough.
    assert [o.params["check"] for o in soft[0].operations] == ["scene"]
    assert [o.params["check"] for o in soft[1].operations] == ["sharpness"]


def test_the_shoot_rules_operations_follow_the_frames_own_in_every_part_of_the_plan() -> None:
    # The shoot rules' operations wait on the record while the image and scene rules run (a record store keeps
    # them on disk): the frame's own come first, in the plan's order, then every shoot rule's, in theirs; the scene
    # rules see only the frame's own; what the record carried before planning is gone.
    chart = load_chart("base").chart
    frames = [image_record(source_path=f"{k}.dng", sharpness=5.0, exposure_meter_ev=-1.0) for k in range(2)]
    frames[0].operations = check_operation(AcceptanceAction.FLAG, "stale", "an earlier plan's", None, None)
    seen: dict[int, list[str]] = {}

    def flags(check: str):  # noqa: ANN202
        def rule(records: Sequence[ImageRecord], chart: Chart, plans: Mapping[int, PlanState]) -> dict:
            return {0: check_operation(AcceptanceAction.FLAG, check, check, None, None)}
        return rule

    def scene_note(records: Sequence[ImageRecord], chart: Chart, plans: Mapping[int, PlanState],
                   so_far: Mapping[int, Sequence[Operation]]) -> dict[int, list[Operation]]:
        seen.update({i: [o.op_id for o in so_far[i]] for i in so_far})
        return {i: [*so_far[i], *check_operation(AcceptanceAction.FLAG, "scene", "its scene", None, None)]
                for i in so_far}

    plan_shoot(frames, chart, rules=(plan_exposure, check_sharpness), shoot_rules=(flags("first"), flags("second")),
               scene_rules=(scene_note,), scene_rules_after=plan_exposure)
    assert seen == {0: ["exposure"], 1: ["exposure"]}
    assert [o.op_id for o in frames[0].operations] == [
        "exposure", "flag-scene", "flag-sharpness", "flag-first", "flag-second"]
    assert [o.op_id for o in frames[1].operations] == ["exposure", "flag-scene", "flag-sharpness"]


def test_an_unanalysed_record_stops_the_plan_before_any_record_changes() -> None:
    chart = load_chart("base").chart
    done, never = image_record(source_path="done.dng", exposure_meter_ev=-1.5), image_record(source_path="never.dng")
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


def test_a_lamp_beside_a_face_is_not_its_lit_surroundings() -> None:
    """face_surround_ev reads the surfaces around a face, not a light source in the ring (blown pixels)."""
    import numpy as np

    from pipeline.imaging.faces import face_surround_ev

    rgb = np.full((400, 400, 3), 0.4, np.float32)  # lit wall around the face
    box = (150.0, 150.0, 100.0, 100.0)
    rgb[150:250, 150:250] = 0.2  # the face, a stop under the wall
    plain = face_surround_ev(rgb, box)
    assert plain is not None and abs(plain - (-1.0)) < 0.05
    lamp = rgb.copy()
    lamp[60:150, 260:330] = 1.0  # a blown lamp filling a good part of the ring's upper right
    assert abs(face_surround_ev(lamp, box) - plain) < 0.05  # without the exclusion: -2.3 EV, a false lift


def test_a_lone_face_exposed_as_the_chart_asks_beside_a_bright_backdrop_is_no_check() -> None:
    """A face that reads within the chart's exposure tolerance of a well-exposed one needs no person: of 43 press and
    studio portraits under corporate_portrait, 7 lit faces before bright backdrops were sent to a check 0.04-0.10 EV
    under a well-exposed face."""
    chart = load_chart("base").chart  # tolerance 0.33 EV, brighten below 0.6 EV
    def portrait(level_ev: float) -> ImageRecord:  # a JPEG whose face reads 1.5 EV further under its backdrop
        lone = face(1000, 500, 400, level_ev)
        lone.surround_ev = SURROUND_LIT_EV - 1.5
        return image_record(source_path="a.jpg", format="jpeg", source_kind=SourceKind.RASTER,
                            exposure_meter_ev=0.0, faces=[lone])
    def checks(level_ev: float) -> list[Operation]:
        ops = plan_image(portrait(level_ev), chart)
        assert not of_kind(ops, OperationKind.BRIGHTEN_FACE)
        return [o for o in of_kind(ops, OperationKind.FLAG) if o.params["check"] == "face_shadow"]
    # 0.12 and 0.31 EV under a well-exposed face as shown (0.1 and 0.25 EV of scene light), or over it: no check.
    assert checks(-0.1) == [] and checks(-0.25) == [] and checks(0.3) == []
    # 0.37 and 0.5 EV under as shown: beyond the tolerance, not far enough for a lift on its level: a check.
    assert len(checks(-0.3)) == 1
    (check,) = checks(-0.4)
    assert "a bright backdrop rather than a shadow" in check.reason


def test_dark_glasses_are_read_past_to_the_skin_under_the_eyes() -> None:
    """face_skin_ev reads the band between the eyes' line and the mouth's: dark lenses over the eyes darken the box's
    centre (where exposure_ev reads) and not it; a shadow over the whole face dims both alike."""
    import numpy as np

    from pipeline.imaging.faces import face_exposure_ev, face_skin_ev

    rgb = np.full((400, 400, 3), 0.3, np.float32)
    box = (100.0, 100.0, 200.0, 200.0)
    rgb[100:300, 100:300] = 0.2  # skin
    # Eyes at y 175, mouth corners at y 255 (YuNet's order: eyes, nose, mouth corners): the band is rows 203-243.
    marks = [150.0, 175.0, 250.0, 175.0, 200.0, 215.0, 160.0, 255.0, 240.0, 255.0]
    rgb[245:262, 165:235] = 0.05  # the lips
    lit_centre, lit_skin = face_exposure_ev(rgb, box), face_skin_ev(rgb, marks)
    glasses = rgb.copy()
    glasses[146:201, 120:280] = 0.01  # two dark lenses and their bridge, over the eyes' line
    assert face_exposure_ev(glasses, box) < lit_centre - 0.5  # the centre reads them
    assert face_skin_ev(glasses, marks) == pytest.approx(lit_skin, abs=1e-6)  # the band does not
    shadow = rgb * np.float32(0.5)  # a shadow one stop deep over everything
    assert face_skin_ev(shadow, marks) == pytest.approx(lit_skin - 1.0, abs=0.01)
    # No band: the mouth above the eyes (a face upside down), or a band of a few pixels (a tiny face).
    assert face_skin_ev(rgb, [150.0, 255.0, 250.0, 255.0, 200.0, 215.0, 160.0, 175.0, 240.0, 175.0]) is None
    assert face_skin_ev(rgb, [150.0, 175.0, 152.0, 175.0, 151.0, 176.0, 150.0, 178.0, 152.0, 178.0]) is None
    assert face_skin_ev(rgb, [0.0] * 4) is None


def test_a_face_behind_dark_glasses_is_not_lifted_but_a_shadow_on_it_is() -> None:
    chart = load_chart("base").chart  # brighten below 0.6 EV
    def group(centre: float, skin: float) -> list[Face]:
        faces = [_skin(0.0, 0.5, 300), _skin(0.0, 0.5, 1200), _skin(centre, 0.5, 2100)]
        for f, band in zip(faces, (0.3, 0.3, 0.3 + skin)):
            f.skin_ev = band
        return faces
    def lifts(faces: list[Face]) -> list[Operation]:
        return of_kind(plan_image(image_record(faces=faces), chart), OperationKind.BRIGHTEN_FACE)
    # Its centre 1.2 EV under its peers', its cheeks as lit as theirs: dark glasses, no lift.
    assert not lifts(group(-1.2, 0.0))
    # A shadow 1.2 EV deep dims both: lifted by its depth (beyond base's 1 EV for the renderer: by hand).
    (lift,) = lifts(group(-1.2, -1.2))
    assert lift.params["ev"] == pytest.approx(1.2) and lift.applied_by is AppliedBy.RETOUCHER
    assert "unless it is a darker skin in the same light" in lift.reason
    # 0.9 EV deep, within the renderer's reach: proposed to a reviewer, applied once accepted (base applies no lift
    # unseen: faces.confirm_lifts).
    (lift,) = lifts(group(-0.9, -0.9))
    assert lift.params["ev"] == pytest.approx(0.9) and lift.applied_by is AppliedBy.RETOUCHER
    assert lift.params[RENDER_ON_ACCEPT] is True and "once a reviewer accepts it" in lift.reason
    # Glasses over a shadow: lifted by the shadow the cheeks show.
    (lift,) = lifts(group(-1.9, -1.0))
    assert lift.params["ev"] == pytest.approx(1.0)
    # The two readings a little apart (their noise, within SKIN_BAND_MARGIN_EV): the centre's depth stands.
    (lift,) = lifts(group(-1.2, -1.2 + SKIN_BAND_MARGIN_EV - 0.1))
    assert lift.params["ev"] == pytest.approx(1.2)
    # Without a band on the face (a profile), or on every peer, the centre alone is read.
    no_band = group(-1.2, 0.0)
    no_band[2].skin_ev = None
    (lift,) = lifts(no_band)
    assert lift.params["ev"] == pytest.approx(1.2)
