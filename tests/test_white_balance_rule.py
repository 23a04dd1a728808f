"""White balance with judgement (issue 17 item 3): the estimate, its confidence, the chart's ambience, cap and skin.

Tier 1: records whose light is written inline (a light ``m`` mired from D65 along
the locus, read with an uncertainty), planned under the bundled charts. Tier 2
(:mod:`tests.test_white_balance_photos`) runs the measurement on real photos.
"""

from __future__ import annotations

import numpy as np
import pytest

from charts.loader import load_chart
from charts.schema import Chart
from pipeline.imaging.measure import colour_measure, white_balance_cast
from pipeline.imaging.measure.metering import balanced, exposed, tone_curve, undevelop
from pipeline.imaging.white_balance import (
    D65_CCT_K,
    D65_MIRED,
    cast_mired,
    green_tint,
    lab_of_light,
    lab_to_linear_srgb,
    light_rgb,
    white_balance_gains,
)
from pipeline.kernel.records import (
    RENDER_ON_ACCEPT,
    AppliedBy,
    Face,
    ImageRecord,
    Operation,
    OperationKind,
    SourceKind,
)
from pipeline.planning.plan import plan_image
from pipeline.planning.rules.exposure import darkening_skin_keeps
from pipeline.planning.rules.white_balance import (
    DAYLIGHT_SHADE_MIRED,
    MAX_LIGHT_TINT,
    PUBLISHED_WARMTH_MIRED,
    SKIN_MIRED,
    SKIN_SPREAD_MIRED,
    LIGHT_TINT_SPREAD,
    NEUTRAL_TINT_SPREAD,
    SKIN_TINT,
    TINT_NOTED_A,
    beyond_published,
    cast_confidence,
    colour_judged,
    develops_raw,
    is_a_light,
    is_skin,
    kelvin_shift,
    light_uncertainty,
    off_skin,
    reviewed_params,
    shown,
    skin_hue_margin,
    skin_mired,
    skin_tint,
    skin_weighed_colour,
)

BASE = load_chart("base").chart


def _light_columns(m: float, uncertainty: float | None, tint_g: float = 0.0) -> dict[str, float | None]:
    light = light_rgb(m) * np.array([1.0, 2.0**tint_g, 1.0])
    a, b = lab_of_light(light)
    return {"wb_cast_a": a, "wb_cast_b": b, "wb_temperature_shift_k": kelvin_shift(m),  # capped as measured
            "wb_cast_mired": cast_mired(light), "wb_tint": tint_g, "wb_uncertainty_mired": uncertainty}


def _record(m: float, uncertainty: float | None = 6.0, faces: list[Face] | None = None, tint_g: float = 0.0,
            **kw) -> ImageRecord:
    row = dict(source_path="a.jpg", content_hash="0" * 64, file_size=1, format="jpeg", source_kind=SourceKind.RASTER,
               width=3000, height=2000, exposure_ev=0.0, sharpness=100.0, lines_found=0, phash="0" * 16,
               clipped_highlights_pct=0.0, clipped_shadows_pct_r=0.0, clipped_shadows_pct_g=0.0,
               clipped_shadows_pct_b=0.0, **_light_columns(m, uncertainty, tint_g), **kw)
    return ImageRecord.from_row(row, faces=faces or [])


def _chart(name: str = "base", **wb: float) -> Chart:
    doc = load_chart(name).chart.model_dump(mode="json")
    doc["white_balance"] = {**doc["white_balance"], **wb}
    return Chart.model_validate(doc)


def _wb(ops: list[Operation]) -> Operation | None:
    return next((o for o in ops if o.kind is OperationKind.WHITE_BALANCE), None)


def _flags(ops: list[Operation], check: str) -> list[Operation]:
    return [o for o in ops if o.kind is OperationKind.FLAG and o.params.get("check") == check]


def _corrected_neutral(record: ImageRecord, op: Operation) -> np.ndarray:
    seen = light_rgb(record.colour.cast_mired) * np.array([1.0, 2.0**record.colour.tint, 1.0])
    out = seen * np.asarray(op.params["gains"])
    return out / out[1]


@pytest.mark.parametrize("m", [-150.0, -120.0, -80.0, -30.0, 30.0, 80.0, 140.0])
def test_a_cast_the_cues_agree_on_is_neutralised_whatever_its_temperature(m: float) -> None:
    # -120 mired is 29 600 K, past McCamy's 25 000 K: it used to get no operation at all.
    record = _record(m)
    op = _wb(plan_image(record, BASE))
    # The renderer's up to the chart's propose_above_mired, a person's to accept beyond it (the same amount:
    # tests/test_white_balance_proposals.py).
    assert op is not None and op.applied_by is (AppliedBy.RENDERER if abs(m) <= BASE.white_balance.propose_above_mired
                                                else AppliedBy.RETOUCHER)
    assert op.params["mired_shift"] == pytest.approx(-m, abs=0.15)
    assert op.params["cast_mired"] == pytest.approx(m, abs=0.1) and op.params["target_mired"] == 0.0
    assert _corrected_neutral(record, op) == pytest.approx([1.0, 1.0, 1.0], abs=2e-3)
    # A cool reading is judged from the target; a warm one from the warmth published photographs read
    # (30 mired warm is 7 beyond it: 1.2 of the 6 mired uncertainty, 0.88 sure; 80 mired, all but certain).
    assert op.confidence == pytest.approx(cast_confidence(beyond_published(m, 0.0), 6.0), abs=0.01)
    assert op.confidence > (0.99 if abs(m) > 2 * PUBLISHED_WARMTH_MIRED else BASE.white_balance.min_confidence)
    assert not _flags(plan_image(record, BASE), "white_balance")


def test_a_photo_as_warm_as_published_photos_read_is_left_as_shot_unless_the_cues_agree_well_beyond() -> None:
    # 20 mired warm, the cues in agreement: as warm as the estimate reads a published photograph. Left as
    # shot, where a 20 mired cool reading is corrected.
    warm = plan_image(_record(20.0), BASE)
    assert _wb(warm) is None
    cool = _wb(plan_image(_record(-20.0), BASE))
    assert cool is not None and cool.params["mired_shift"] == pytest.approx(20.0, abs=0.15)
    # The same 45 mired warm reading: corrected all the way when the cues agree, left when they scatter.
    sure = _wb(plan_image(_record(45.0, uncertainty=6.0), BASE))
    assert sure is not None and sure.params["target_mired"] == 0.0
    assert sure.params["mired_shift"] == pytest.approx(-45.0, abs=0.15)
    assert _wb(plan_image(_record(45.0, uncertainty=30.0), BASE)) is None
    assert cast_confidence(45.0, 30.0) > BASE.white_balance.min_confidence  # judged from D65 it was corrected
    # A scene of nothing but neutral surfaces is left alone (the allowance never warms anything).
    assert _wb(plan_image(_record(0.0), BASE)) is None


def test_the_published_warmth_is_measured_from_the_charts_target() -> None:
    assert beyond_published(10.0, 0.0) == 0.0 and beyond_published(-5.0, 0.0) == -5.0
    assert beyond_published(PUBLISHED_WARMTH_MIRED + 7.0, 0.0) == pytest.approx(7.0)
    # A warm chart (culinary: +10 mired) accepts from its target to the published warmth ...
    assert beyond_published(5.0, 10.0) == pytest.approx(-5.0) and beyond_published(20.0, 10.0) == 0.0
    # ... and one warmer than published photos read, only its own target.
    assert beyond_published(45.0, 40.0) == pytest.approx(5.0)


def test_a_green_tint_is_removed_with_the_temperature_as_far_as_it_is_believed() -> None:
    record = _record(40.0)
    record.colour.cast_a, record.colour.cast_b = lab_of_light(light_rgb(40.0) * np.array([1.0, 2.0**0.15, 1.0]))
    record.colour.tint = 0.15
    op = _wb(plan_image(record, BASE))
    untinted = _wb(plan_image(_record(40.0), BASE))
    # The green (a* lower) is taken out too, the temperature as without it: as far as a tint the neutrals read is
    # likely a light's (tint_believed: a record without its own spread strays 0.18, lights 0.10 from the line).
    share = LIGHT_TINT_SPREAD**2 / (LIGHT_TINT_SPREAD**2 + NEUTRAL_TINT_SPREAD**2)
    assert op.params["tint_shift"] > untinted.params["tint_shift"] + 0.5
    assert op.params["mired_shift"] == pytest.approx(untinted.params["mired_shift"], abs=0.2)
    left = _corrected_neutral(record, op)
    assert green_tint(left) == pytest.approx(0.15 * (1.0 - share), abs=0.02)  # (its b* kept as read)
    assert cast_mired(left) == pytest.approx(0.0, abs=1.0)
    # Greys known to be grey (a ColorChecker's) say the tint whole.
    record.colour.colour_checker = True
    assert _corrected_neutral(record, _wb(plan_image(record, BASE))) == pytest.approx([1.0, 1.0, 1.0], abs=2e-3)


@pytest.mark.parametrize(("spread", "believed"), [(0.104, 0.48), (0.2, 0.2), (0.5, 0.04)])
def test_each_frames_tint_is_believed_as_far_as_its_cues_agree_on_it(spread: float, believed: float) -> None:
    # The same green reading (0.15): where the four cues agree on the tint (the floor, 0.104: white walls under a
    # tube) about half is taken out; where they scatter (a scene of its own colours) next to nothing.
    record = _record(40.0, tint_g=0.15, wb_tint_uncertainty=spread)
    left = _corrected_neutral(record, _wb(plan_image(record, BASE)))
    share = LIGHT_TINT_SPREAD**2 / (LIGHT_TINT_SPREAD**2 + spread**2)
    assert share == pytest.approx(believed, abs=0.01)
    assert green_tint(left) == pytest.approx(0.15 * (1.0 - share), abs=0.02)
    assert cast_mired(left) == pytest.approx(0.0, abs=1.0)  # the temperature as without a tint


def test_the_tints_spread_is_read_off_the_cues_scatter() -> None:
    # Four cues that agree on a grey card's tint give the floor; on a scene of saturated colours they scatter.
    rng = np.random.default_rng(3)
    grey = np.clip(0.18 * light_rgb(30.0) * rng.normal(1.0, 0.02, (240, 320, 1)), 0.0, 1.0).astype(np.float32)
    cast = white_balance_cast(grey, look_for_chart=False)
    assert cast.tint_uncertainty == pytest.approx(0.104, abs=0.01)
    patches = rng.uniform(0.02, 0.6, (6, 8, 3)).astype(np.float32)
    colourful = np.repeat(np.repeat(patches, 40, axis=0), 40, axis=1)
    scattered = white_balance_cast(colourful, look_for_chart=False)
    assert scattered.tint_uncertainty > cast.tint_uncertainty
    assert colour_measure(grey, look_for_chart=False).tint_uncertainty == cast.tint_uncertainty


def test_a_cast_the_cues_disagree_on_is_left_as_shot_and_flagged() -> None:
    # A field of flowers: the four light estimates scatter by 60 mired around a 40 mired "cast".
    ops = plan_image(_record(40.0, uncertainty=60.0), BASE)
    assert _wb(ops) is None
    (flag,) = _flags(ops, "white_balance")
    assert flag.applied_by is AppliedBy.RETOUCHER and "left as shot" in flag.reason
    # (a warm reading: judged from the warmth published photographs read, 17 mired beyond it)
    assert flag.confidence == pytest.approx(cast_confidence(40.0 - PUBLISHED_WARMTH_MIRED, 60.0), abs=0.01)
    assert flag.confidence < BASE.white_balance.min_confidence
    # Estimates 60 mired apart say no light at all (more than a shift anyone sees): the flag says so; 30 apart, not.
    assert "no neutral surface says the light" in flag.reason
    (unsure,) = _flags(plan_image(_record(40.0, uncertainty=30.0), BASE), "white_balance")
    assert "not sure" in unsure.reason and "no neutral surface" not in unsure.reason
    # Within the tolerance there is nothing to flag either.
    assert plan_image(_record(8.0, uncertainty=60.0), BASE) == [] or not _flags(plan_image(_record(8.0, 60.0), BASE),
                                                                                 "white_balance")


@pytest.mark.parametrize(("m", "uncertainty"), [(11.0, 12.0), (20.0, 6.0), (21.0, 44.0), (23.0, 80.0),
                                                (PUBLISHED_WARMTH_MIRED + 9.0, 80.0)])
def test_a_reading_where_published_photos_read_sends_no_retoucher(m: float, uncertainty: float) -> None:
    # A new user's 22 published photos read 11-27 mired warm with uncertainties of 6-88: every one beyond the
    # tolerance was flagged "not sure the picture is too warm", 14 of 22. Within the tolerance of the published
    # band (0 to PUBLISHED_WARMTH_MIRED warm) a reading is no evidence of a cast: left as shot, nobody sent.
    ops = plan_image(_record(m, uncertainty=uncertainty), BASE)
    assert _wb(ops) is None and not _flags(ops, "white_balance")


@pytest.mark.parametrize(("m", "uncertainty"), [(PUBLISHED_WARMTH_MIRED + 11.0, 80.0), (45.0, 30.0), (-15.0, 40.0)])
def test_an_unsure_reading_beyond_the_published_band_is_flagged(m: float, uncertainty: float) -> None:
    # Beyond the band by more than the tolerance (11 and 22 mired warmer than published photos read, 15 cooler
    # than the target), unsure: left as shot, and a retoucher is asked to look.
    ops = plan_image(_record(m, uncertainty=uncertainty), BASE)
    assert _wb(ops) is None
    (flag,) = _flags(ops, "white_balance")
    assert "left as shot" in flag.reason


@pytest.mark.parametrize(("chart", "m"), [("base", -12.0), ("base", DAYLIGHT_SHADE_MIRED),
                                          ("real_estate_interiors", -8.0)])
def test_an_unsure_cool_reading_under_a_blue_sky_sends_no_retoucher(chart: str, m: float) -> None:
    # A daylight scene's shade is lit by the sky: of 205 listing photos' house fronts (held out of everything),
    # 55 were flagged "not sure the picture is too cool", 7-20 mired, before.
    plan_chart = load_chart(chart).chart
    ops = plan_image(_record(m, uncertainty=40.0, sky_share=0.5), plan_chart)
    assert _wb(ops) is None and not _flags(ops, "white_balance")
    # The same reading without a sky, or measured before the sky was, is flagged as before (proposed where the chart
    # proposes what it is unsure of: white_balance.propose_unsure).
    for record in (_record(m, uncertainty=40.0, sky_share=0.02), _record(m, uncertainty=40.0)):
        ops = plan_image(record, plan_chart)
        told = _flags(ops, "white_balance") if not plan_chart.white_balance.propose_unsure else [_wb(ops)]
        assert len(told) == 1 and "not sure the picture is too cool" in told[0].reason


def test_under_a_blue_sky_a_cast_beyond_the_shade_or_one_the_cues_agree_on_is_still_told_or_corrected() -> None:
    beyond = plan_image(_record(DAYLIGHT_SHADE_MIRED - 10.0, uncertainty=60.0, sky_share=0.5), BASE)
    assert _wb(beyond) is None and _flags(beyond, "white_balance")
    sure = _wb(plan_image(_record(-25.0, uncertainty=5.0, sky_share=0.5), BASE))
    assert sure is not None and sure.applied_by is AppliedBy.RENDERER
    assert sure.params["mired_shift"] == pytest.approx(25.0, abs=0.2)
    # Warm readings are judged as anywhere: the sky clears only the cool side.
    warm = plan_image(_record(PUBLISHED_WARMTH_MIRED + 15.0, uncertainty=60.0, sky_share=0.5), BASE)
    assert _flags(warm, "white_balance")


def test_a_chart_that_proposes_what_it_is_unsure_of_hands_the_correction_to_a_reviewer() -> None:
    # A warm room read 45 mired warm +-30: not sure (0.70 < 0.8). Flagged "check by eye" under base; under a chart
    # with propose_unsure the same correction is proposed, applied once a reviewer accepts it, and not flagged.
    record = _record(45.0, uncertainty=30.0)
    flagged = plan_image(record, BASE)
    assert _wb(flagged) is None and _flags(flagged, "white_balance")
    proposing = _chart("base", propose_unsure=True)
    ops = plan_image(record, proposing)
    op = _wb(ops)
    assert op is not None and op.applied_by is AppliedBy.RETOUCHER and op.params[RENDER_ON_ACCEPT]
    assert op.params["mired_shift"] == pytest.approx(-45.0, abs=0.2) and not _flags(ops, "white_balance")
    assert "not sure the picture is too warm" in op.reason and "once a reviewer accepts it" in op.reason
    # What the published band or a tint no light makes says is no cast is neither flagged nor proposed, or flagged.
    assert not plan_image(_record(20.0, uncertainty=30.0), proposing)
    tinted = plan_image(_record(45.0, uncertainty=30.0, tint_g=MAX_LIGHT_TINT + 0.2), proposing)
    assert _wb(tinted) is None and _flags(tinted, "white_balance")
    # The real-estate chart proposes them: white walls read white whatever the cues' doubt.
    assert load_chart("real_estate_interiors").chart.white_balance.propose_unsure
    assert not BASE.white_balance.propose_unsure


def test_a_correction_that_would_turn_the_blue_sky_teal_is_proposed() -> None:
    # A pale blue sky (hue 271, chroma 17) over a house front whose neutrals read 68 mired cool, sure of it: the
    # +68 mired warming would take the sky to hue 218 (teal). Proposed, not applied.
    # Under the real-estate chart, which applies up to 200 mired unseen.
    chart = load_chart("real_estate_interiors").chart
    sky = {"sky_share": 0.5, "sky_rgb": [0.40, 0.50, 0.70]}
    op = _wb(plan_image(_record(-68.0, uncertainty=5.0, **sky), chart))
    assert op is not None and op.applied_by is AppliedBy.RETOUCHER and op.params[RENDER_ON_ACCEPT]
    assert op.params["mired_shift"] == pytest.approx(68.0, abs=0.2)
    assert "would turn the blue sky teal (hue 271 -> 218 deg)" in op.reason
    # The reason names what the sky would become as a retoucher would: further warmed, green (hue 111); a greyish
    # blue (chroma 11) warmed 40 mired, grey, told by its chroma (a grey's hue means nothing).
    assert "the blue sky green (hue 271 -> 111 deg)" in _wb(plan_image(_record(-120.0, uncertainty=5.0, **sky),
                                                                        chart)).reason
    greyish = {"sky_share": 0.5, "sky_rgb": [0.45, 0.50, 0.62]}
    assert "the blue sky grey (chroma 11 -> 1)" in _wb(plan_image(_record(-40.0, uncertainty=5.0, **greyish),
                                                                  chart)).reason
    # A cooling keeps it blue (bluer): applied as anywhere; so is the warming without a sky, or a smaller one.
    assert _wb(plan_image(_record(40.0, uncertainty=5.0, **sky), chart)).applied_by is AppliedBy.RENDERER
    assert _wb(plan_image(_record(-68.0, uncertainty=5.0), chart)).applied_by is AppliedBy.RENDERER
    deep = {"sky_share": 0.5, "sky_rgb": [0.30, 0.45, 0.80]}  # chroma 30: +30 mired leaves it blue
    assert _wb(plan_image(_record(-30.0, uncertainty=5.0, **deep), chart)).applied_by is AppliedBy.RENDERER


def test_confidence_is_the_chance_the_direction_is_right() -> None:
    assert cast_confidence(0.0, 10.0) == pytest.approx(0.5)
    assert cast_confidence(10.0, 10.0) == pytest.approx(0.841, abs=1e-3)
    assert cast_confidence(-20.0, 10.0) == pytest.approx(0.977, abs=1e-3)


def test_beyond_the_cap_the_renderer_goes_as_far_as_the_cap_and_a_retoucher_finishes() -> None:
    record = _record(230.0, uncertainty=20.0)  # a tungsten room (2600 K) against daylight
    ops = plan_image(record, BASE)
    op = _wb(ops)
    assert op.params["mired_shift"] == pytest.approx(-150.0) and op.params["target_mired"] == pytest.approx(80.0)
    assert cast_mired(_corrected_neutral(record, op)) == pytest.approx(80.0, abs=0.5)  # still warm, not grey-blue
    (flag,) = _flags(ops, "white_balance")
    assert "beyond the automatic 150" in flag.reason
    # Real-estate interiors go the whole way (their cap is 200 mired, and a room reads 180).
    op = _wb(plan_image(_record(180.0, uncertainty=20.0), load_chart("real_estate_interiors").chart))
    assert op.params["mired_shift"] == pytest.approx(-180.0)


def test_charts_keep_some_of_a_warm_ambience() -> None:
    record = _record(100.0, uncertainty=10.0)
    for name, kept in (("real_estate_interiors", 0.0), ("base", 0.0), ("corporate_portrait", 0.15),
                       ("social_media", 0.25)):
        op = _wb(plan_image(record, load_chart(name).chart))
        assert op.params["target_mired"] == pytest.approx(kept * 100.0, abs=0.1), name
    # Culinary: warm policy (+10 mired) and 30 % of the rest kept: 10 + 0.3 * 90.
    op = _wb(plan_image(record, load_chart("culinary").chart))
    assert op.params["target_mired"] == pytest.approx(37.0, abs=0.1)
    assert "keeping 30% of the warm ambience" in op.reason
    # A cool ambience is kept only where the chart says so.
    op = _wb(plan_image(_record(-60.0, uncertainty=10.0), _chart(keep_cool=0.5)))
    assert op.params["target_mired"] == pytest.approx(-30.0, abs=0.1)


def test_the_inverse_gives_the_plans_gains_back() -> None:
    for record, chart in ((_record(60.0), BASE), (_record(-120.0), BASE), (_record(100.0, 10.0), load_chart("culinary").chart),
                          (_record(230.0, 20.0), BASE)):
        op = _wb(plan_image(record, chart))
        measurements = _light_columns(record.colour.cast_mired, record.colour.uncertainty_mired)
        again = reviewed_params(measurements, op.params, op.params["tint_shift"],
                                temperature_shift_k=op.params["temperature_shift_k"])
        assert again["gains"] == pytest.approx(op.params["gains"], abs=2e-3)
        assert again["mired_shift"] == pytest.approx(op.params["mired_shift"], abs=0.2)
        # In mired (the review's unit) too, at any light: a blue cast's correction is past the 10,000 K the review
        # editor once bounded it by.
        back = reviewed_params(measurements, op.params, op.params["tint_shift"], mired_shift=op.params["mired_shift"])
        assert back["gains"] == pytest.approx(op.params["gains"], abs=1e-3)  # (its mired_shift rounded to 0.1)
        assert back["temperature_shift_k"] == pytest.approx(op.params["temperature_shift_k"], rel=1e-3, abs=1.0)
    assert _wb(plan_image(_record(-120.0), BASE)).params["temperature_shift_k"] > 10000
    with pytest.raises(ValueError, match="outside 1-600 mired"):
        reviewed_params(_light_columns(0.0, 6.0), {}, 0.0, mired_shift=-D65_MIRED)
    with pytest.raises(ValueError, match="outside 1667-1000000 K"):
        reviewed_params(_light_columns(0.0, 6.0), {}, 0.0, temperature_shift_k=5000.0)


@pytest.mark.parametrize("case", ["bluer than infinite kelvin", "weighed with the skin"])
def test_a_reviewers_shift_moves_the_neutrals_from_where_the_plan_left_them(case: str) -> None:
    """A reviewer's 10 mired warmer than the plan leaves the neutrals 10 mired warmer than the plan did.

    A blue cast of -183 mired (the shared wb photos' chispita_666) has no kelvin: the measurement caps it at
    1e6 K, 1 mired, 30 mired warmer than the light, and a shift counted from the cap landed 40 mired warmer. A
    plan that weighed a face's skin with the neutrals (Afifi's Rhett_Sutphin photo: neutrals 36 mired warm, the
    plan's light 300) corrects a light the measurements alone do not give; from the neutrals alone the same
    10 mired landed 42 mired away."""
    if case == "bluer than infinite kelvin":
        record = _record(-183.0, uncertainty=10.0)
        assert record.colour.temperature_shift_k == pytest.approx(1e6 - D65_CCT_K)
    else:
        record = _record(36.0, uncertainty=60.0, faces=[_pale_face(_published_skin(260.0))])
    op = _wb(plan_image(record, BASE))
    assert abs(op.params["mired_shift"]) == pytest.approx(150.0, abs=0.1)  # the chart's cap
    if case == "weighed with the skin":
        assert op.params["cast_mired"] > 150.0 and "weighed with the faces' skin" in op.reason
    measurements = _light_columns(record.colour.cast_mired, record.colour.uncertainty_mired)
    warmer = reviewed_params(measurements, op.params, op.params["tint_shift"], mired_shift=op.params["mired_shift"] + 10.0)
    assert warmer["mired_shift"] == pytest.approx(op.params["mired_shift"] + 10.0, abs=0.1)
    assert warmer["target_mired"] == pytest.approx(op.params["target_mired"] + 10.0, abs=0.1)
    # The gains change as the light 10 mired warmer than the plan's target would: whatever the light measured.
    step = np.asarray(warmer["gains"]) / np.asarray(op.params["gains"])
    want = light_rgb(op.params["target_mired"] + 10.0) / light_rgb(op.params["target_mired"])
    assert step / step[1] == pytest.approx(want / want[1], abs=2e-3)


def test_a_record_measured_before_the_uncertainty_is_planned_as_likely() -> None:
    record = _record(60.0, uncertainty=None)
    record.colour.cast_mired = None  # an old manifest: the kelvin column only
    op = _wb(plan_image(record, BASE))
    assert op.confidence == 0.8 and op.params["mired_shift"] == pytest.approx(-60.0, abs=0.5)


# --- a reading no light could make -------------------------------------------------------------------


def _tinted(m: float, tint_g: float, uncertainty: float = 6.0, faces: list[Face] | None = None) -> ImageRecord:
    record = _record(m, uncertainty, faces)
    cols = _light_columns(m, uncertainty, tint_g)
    record.colour.cast_a, record.colour.cast_b, record.colour.tint = cols["wb_cast_a"], cols["wb_cast_b"], tint_g
    record.colour.cast_mired = cols["wb_cast_mired"]
    return record


@pytest.mark.parametrize("tint_g", [0.9, -2.0])
def test_neutrals_greener_or_more_magenta_than_any_light_are_left_as_shot_and_flagged(tint_g: float) -> None:
    # Grass or limes filling the frame (green), a magenta wall: the cues agree (6 mired) on a reading 100 mired
    # warm that no lamp, sun or sky gives: the picture's colour. The plan used to cool it by 100 mired and take
    # the green out with it, turning the grass purple.
    assert not is_a_light(tint_g) and is_a_light(0.1) and is_a_light(None)
    ops = plan_image(_tinted(100.0, tint_g), BASE)
    assert _wb(ops) is None
    (flag,) = _flags(ops, "white_balance")
    assert flag.applied_by is AppliedBy.RETOUCHER and "beyond any light's" in flag.reason
    assert ("green" if tint_g > 0 else "magenta") in flag.reason and "left as shot" in flag.reason
    # Within a light's tint (a fluorescent lamp's green) the same reading is corrected, tint and all.
    op = _wb(plan_image(_tinted(100.0, 0.3), BASE))
    assert op is not None and op.params["mired_shift"] == pytest.approx(-100.0, abs=0.3)
    # A tinted reading within the tolerance is no evidence of anything: no flag.
    assert not plan_image(_tinted(-2.0, 0.9), BASE)


def test_faces_a_cast_took_from_skin_vouch_for_a_reading_beyond_any_lights_tint() -> None:
    skin = np.array([0.45, 0.30, 0.22])
    seen = skin * light_rgb(-70.0) * np.array([1.0, 2.0**0.6, 1.0])  # a blue-green light took the face's skin
    assert not is_skin(seen)
    op = _wb(plan_image(_tinted(-70.0, 0.6, faces=[_pale_face(seen.tolist())]), BASE))
    assert op is not None and "faces confirm" in op.reason
    assert is_skin(seen * np.asarray(op.params["gains"]))


def test_a_real_photo_of_one_colour_keeps_it() -> None:
    # scikit-image's retina: an orange-red fundus photograph. Its neutrals read about 200 mired warm and
    # magenta (tint -1.3): the plan used to cool it by the automatic cap (150 mired), turning it grey-violet.
    from skimage import data

    from pipeline.imaging.color import srgb_to_linear

    record = _record(0.0)
    record.colour = colour_measure(srgb_to_linear(data.retina().astype(np.float32) / 255.0), rendered=True)
    assert record.colour.cast_mired > 150 and record.colour.tint < -MAX_LIGHT_TINT
    ops = plan_image(record, BASE)
    assert _wb(ops) is None and _flags(ops, "white_balance")


# --- skin stays skin -----------------------------------------------------------------------------


def _pale_face(rgb: list[float]) -> Face:
    return Face(x=1000, y=600, width=400, height=500, score=0.99, landmarks=[0.0] * 10, exposure_ev=0.0,
                colour_rgb=rgb)


def _published_skin(m: float = 0.0, green: float = 0.75) -> list[float]:
    """A JPEG face's colour that reads as published skin does (:data:`SKIN_MIRED`) under a light ``m`` mired from
    D65: its red/blue ratio in scene light is that light's (``green`` sets its hue)."""
    return [float(v) for v in tone_curve(light_rgb(SKIN_MIRED + m) * np.array([0.3, 0.3 * green, 0.3]))]


def test_skin_is_a_hue_and_a_chroma() -> None:
    assert is_skin(np.array([0.45, 0.30, 0.22]))  # light skin, linear
    assert is_skin(np.array([0.10, 0.055, 0.035]))  # dark skin
    assert not is_skin(np.array([0.30, 0.30, 0.32]))  # grey
    assert not is_skin(np.array([0.30, 0.25, 0.40]))  # magenta-blue


def test_a_correction_the_faces_skin_contradicts_is_left_as_shot_and_flagged() -> None:
    # A pale face that reads as skin does in daylight, while the neutrals read 90 mired warm (a coloured wall or
    # backdrop fools them, not the skin): cooling by 90 would take the skin 3 spreads past where skin reads.
    # (Weighed with the skin, the light reads 75 mired warm: still a correction that takes the skin past 3 spreads.)
    record = _record(90.0, uncertainty=10.0, faces=[_pale_face(_published_skin())])
    skin = skin_mired(record)
    assert skin is not None and abs(skin - SKIN_MIRED) < 1.0
    ops = plan_image(record, BASE)
    assert _wb(ops) is None
    (flag,) = _flags(ops, "white_balance")
    assert "the faces' skin reads" in flag.reason and "left as shot" in flag.reason
    # The same face under the light the neutrals read (its skin as warm as they are) vouches for the correction.
    warm = _record(90.0, uncertainty=10.0, faces=[_pale_face(_published_skin(90.0))])
    assert skin_mired(warm) == pytest.approx(skin + 90.0, abs=1.0)
    op = _wb(plan_image(warm, BASE))
    assert op is not None and op.params["mired_shift"] == pytest.approx(-90.0, abs=1.0)


def test_the_skin_and_the_neutrals_are_weighed_by_their_spreads() -> None:
    # The true light is 40 mired warm. The neutrals read 80 (a warm wall pulls the cues) with a scatter as wide as
    # published skin's spread; the face is published skin under the true light. Two readings, equally sure: the
    # light is read halfway, 60, and surer than either.
    face = _pale_face(_published_skin(40.0))
    record = _record(80.0, uncertainty=SKIN_SPREAD_MIRED, faces=[face])
    weighed = skin_weighed_colour(record, skin_mired(record))
    assert weighed.cast_mired == pytest.approx(60.0, abs=1.0)
    assert weighed.uncertainty_mired == pytest.approx(SKIN_SPREAD_MIRED / 2**0.5, rel=1e-6)
    assert cast_mired(lab_to_linear_srgb(50.0, weighed.cast_a, weighed.cast_b)) == pytest.approx(60.0, abs=1.0)
    op = _wb(plan_image(record, BASE))
    assert op.params["mired_shift"] == pytest.approx(-60.0, abs=1.0)
    assert "neutrals read 80 mired warm" in op.reason and "weighed with the faces' skin" in op.reason
    assert "60 mired warm" in op.reason
    assert _corrected_neutral(record, op)[0] > 1.0  # the wall stays a little warm: the light, not the wall, is neutral
    # Without the face the neutrals alone are corrected; a sure reading barely moves.
    assert _wb(plan_image(_record(80.0, uncertainty=SKIN_SPREAD_MIRED), BASE)).params["mired_shift"] == pytest.approx(-80.0, abs=0.5)
    sure = _record(80.0, uncertainty=5.0, faces=[face])
    assert skin_weighed_colour(sure, skin_mired(sure)).cast_mired == pytest.approx(80.0 - 40.0 * 25 / (25 + SKIN_SPREAD_MIRED**2), abs=1.0)
    # The skin weighs in on how far, never on whether: neutrals too unsure to act on (Grace Hopper's portrait:
    # 6 mired cool +-88) are not corrected for a skin that reads 55 mired warm, whatever it weighs.
    unsure = _record(-6.0, uncertainty=88.0, faces=[_pale_face(_published_skin(55.0))])
    assert skin_weighed_colour(unsure, skin_mired(unsure)).cast_mired > 40.0
    assert _wb(plan_image(unsure, BASE)) is None
    # Neutrals too unsure alone (60 mired warm +-95: confidence 0.65) and a skin that reads the same warm light:
    # two witnesses of one cast, and the plan corrects it.
    agree = _record(60.0, uncertainty=95.0, faces=[_pale_face(_published_skin(60.0))])
    assert _wb(plan_image(_record(60.0, uncertainty=95.0), BASE)) is None
    op = _wb(plan_image(agree, BASE))
    assert op is not None and op.params["mired_shift"] == pytest.approx(-60.0, abs=1.0) and op.confidence > 0.9
    # Neutrals sure enough (26 mired cool +-30) that the skin (38 mired warm, within 3 spreads of published skin
    # after their correction) outweighs the other way: the readings disagree, and a retoucher decides.
    torn = _record(-26.0, uncertainty=30.0, faces=[_pale_face(_published_skin(38.0))])
    assert skin_mired(torn) is not None and skin_weighed_colour(torn, skin_mired(torn)).cast_mired > 10.0
    ops = plan_image(torn, BASE)
    assert _wb(ops) is None and "disagree" in _flags(ops, "white_balance")[0].reason
    # A ColorChecker's greys are grey: the skin is not asked.
    chart = _record(80.0, uncertainty=SKIN_SPREAD_MIRED, faces=[face], wb_colour_checker=True)
    assert skin_weighed_colour(chart, skin_mired(chart)) is None
    # Nor is a face that is not skin as shot (it reads no light).
    grey = _record(80.0, uncertainty=SKIN_SPREAD_MIRED, faces=[_pale_face([0.30, 0.30, 0.31])])
    assert skin_mired(grey) is None and skin_weighed_colour(grey, None) is None


def test_a_face_that_stays_skin_costs_nothing() -> None:
    record = _record(60.0, uncertainty=10.0, faces=[_pale_face(_published_skin(60.0))])  # skin under a warm light
    ops = plan_image(record, BASE)
    assert _wb(ops).params["mired_shift"] == pytest.approx(-60.0, abs=0.5) and not _flags(ops, "skin")


# --- the measurement --------------------------------------------------------------------------------


def _scene(seed: int = 2) -> np.ndarray:
    """Grey and coloured patches (a real-ish scene: a third of it neutral) with shading and edges."""
    rng = np.random.default_rng(seed)
    colours = np.concatenate([np.repeat(rng.uniform(0.1, 0.7, (16, 1)), 3, axis=1),
                              rng.uniform(0.05, 0.7, (32, 3))])
    tiles = colours[rng.integers(0, len(colours), (12, 18))]
    img = np.kron(tiles, np.ones((24, 24, 1)))
    shade = np.linspace(0.6, 1.0, img.shape[1])[None, :, None]
    return (img * shade).astype(np.float32)


@pytest.mark.parametrize("m", [-120.0, -50.0, 0.0, 40.0, 120.0])
def test_the_measurement_reads_an_injected_light_in_mired(m: float) -> None:
    scene = _scene()
    base = white_balance_cast(scene)
    cast = white_balance_cast(scene * light_rgb(m).astype(np.float32))
    assert cast.mired - base.mired == pytest.approx(m, abs=3.0)
    assert abs(base.mired) < 10 and base.uncertainty_mired < 15
    assert set(cast.cues) == {"near_neutral", "grey_pixels", "bright_pixels", "grey_edge"}
    # The kelvin column follows the mired reading (and has a value past 25 000 K).
    assert 1e6 / (D65_CCT_K + cast.temperature_shift_k) - D65_MIRED == pytest.approx(cast.mired, abs=1e-6)


def test_a_flat_or_black_image_has_no_light() -> None:
    assert white_balance_cast(np.zeros((64, 64, 3), np.float32)) is None


# --- faces as a second cue --------------------------------------------------------------------------


def test_faces_a_cast_took_from_skin_vouch_for_a_correction_the_neutrals_are_unsure_of() -> None:
    # Light read 70 mired cool with a scatter that leaves it unsure (confidence ~0.77 < 0.8). Under that
    # blue light a face is lilac-grey; the correction turns it back into skin, so the plan applies it.
    skin = np.array([0.45, 0.30, 0.22])
    seen = (skin * light_rgb(-70.0)).tolist()
    assert not is_skin(np.array(seen))
    record = _record(-70.0, uncertainty=95.0, faces=[_pale_face(seen)])
    ops = plan_image(record, BASE)
    op = _wb(ops)
    assert op is not None and op.params["mired_shift"] == pytest.approx(70.0, abs=1.0)
    assert "faces confirm" in op.reason and op.confidence < BASE.white_balance.min_confidence
    assert is_skin(np.array(seen) * np.asarray(op.params["gains"]))
    # The same reading with a face that is skin as shot proves nothing: left as shot, flagged (the skin weighs in
    # on how far a correction goes, never on whether the neutrals' reading is sure enough to make one).
    ops = plan_image(_record(-70.0, uncertainty=95.0, faces=[_pale_face(_published_skin())]), BASE)
    assert _wb(ops) is None and _flags(ops, "white_balance") and not _flags(ops, "skin")


def test_a_face_that_is_not_skin_and_a_balance_left_as_shot_is_flagged() -> None:
    grey_face = [0.30, 0.30, 0.31]
    ops = plan_image(_record(40.0, uncertainty=95.0, faces=[_pale_face(grey_face)]), BASE)
    assert _wb(ops) is None
    (flag,) = _flags(ops, "skin")
    assert "not skin-coloured as shot" in flag.reason


def test_small_faces_keep_their_skin_too() -> None:
    # A face too small to count for retouching (2 % of the short side) is still a person: the correction that
    # would turn it lilac is reduced, as for a big one.
    face_rgb = [0.42, 0.33, 0.27]
    small = Face(x=100, y=100, width=40, height=40, score=0.9, landmarks=[0.0] * 10, exposure_ev=0.0,
                 too_small=True, colour_rgb=face_rgb)
    ops = plan_image(_record(90.0, uncertainty=10.0, faces=[small]), BASE)
    assert is_skin(np.array(face_rgb) * np.asarray(_wb(ops).params["gains"]))
    assert _flags(ops, "skin")


def test_skin_flags_name_only_faces_big_enough_to_judge() -> None:
    # A ballroom's video frame (mmpose's posetrack18 009473): two dancers of 56 px, eleven audience faces of
    # 26-38 px in the dim seats, skin-hued at a CIELAB chroma of 4-10. "Not skin-coloured" was told of the eleven;
    # their colour is a few chroma samples, and nobody retouches a face under the chart's faces.min_face_pct.
    dim = [0.061, 0.046, 0.044]  # hue 36 deg, chroma 4.4: skin's hue, too little chroma to call it skin
    assert not is_skin(np.array(dim))

    def face(x: int, size: int, rgb: list[float]) -> Face:
        return Face(x=x, y=300, width=size, height=size, score=0.85, landmarks=[0.0] * 10, exposure_ev=0.0,
                    too_small=size < 40, colour_rgb=rgb)

    dancers = [face(1200, 160, _published_skin()), face(1500, 160, _published_skin())]
    audience = [face(60 * k, 30, dim) for k in range(11)]
    for m, uncertainty in ((0.0, 6.0), (40.0, 95.0)):  # needs no correction; left as shot, unsure
        ops = plan_image(_record(m, uncertainty=uncertainty, faces=dancers + audience), BASE)
        assert _wb(ops) is None and not _flags(ops, "skin"), ops
        # A face big enough to judge that is not skin as shot is still told, by its number alone.
        ops = plan_image(_record(m, uncertainty=uncertainty, faces=[face(1800, 160, dim), *dancers, *audience]),
                         BASE)
        (flag,) = _flags(ops, "skin")
        assert flag.reason.startswith("face(s) 1 not skin-coloured as shot")
    # Corrected (40 mired cool, sure): the small faces are not listed after it either.
    ops = plan_image(_record(-40.0, uncertainty=6.0, faces=dancers + audience), BASE)
    assert _wb(ops).params["mired_shift"] > 30.0 and not _flags(ops, "skin")
    # Neither are they where a correction is held back for a face that was skin: only the face it would spoil.
    pink = [0.30, 0.16, 0.15]  # hue 20 deg: skin, a few degrees from the range's magenta edge
    assert is_skin(np.array(pink))
    ops = plan_image(_record(40.0, uncertainty=6.0, faces=[face(1800, 160, pink), *dancers, *audience]), BASE)
    (flag,) = _flags(ops, "skin")
    assert "would turn face(s) 1 away from skin" in flag.reason and flag.reason.endswith("of it applied")
    # The same held back in a correction proposed, not applied (beyond a chart's propose_above_mired): it says so.
    ops = plan_image(_record(40.0, uncertainty=6.0, faces=[face(1800, 160, pink), *dancers, *audience]),
                     _chart("base", propose_above_mired=10.0))
    (flag,) = _flags(ops, "skin")
    assert flag.reason.endswith("of it proposed") and _wb(ops).params[RENDER_ON_ACCEPT], flag.reason
    # Relative to the frame, not in pixels: seven 37 px faces of a 500 x 375 group photo (too_small to the
    # detector) are its subjects, and one not skin-coloured as shot is told.
    group = [face(60 * k, 37, _published_skin()) for k in range(6)] + [face(400, 37, dim)]
    small = ImageRecord.from_row({**_record(0.0).to_row(), "width": 500, "height": 375}, faces=group)
    (flag,) = _flags(plan_image(small, BASE), "skin")
    assert flag.reason.startswith("face(s) 7 not skin-coloured as shot")


def test_faces_still_blue_after_the_correction_ask_for_more_of_it() -> None:
    # The light is 110 mired cool but the neutrals read only 50: the face, lilac as shot, is still lilac
    # after +50; going further (here about +100) makes it skin, so the plan does, and says why.
    skin = np.array([0.45, 0.30, 0.22])
    seen = skin * light_rgb(-110.0)
    seen = (seen * 0.33 / seen[1]).tolist()
    record = _record(-50.0, uncertainty=10.0, faces=[_pale_face(seen)])
    plain = white_balance_gains(record.colour.cast_a, record.colour.cast_b)  # the neutrals to D65
    assert not is_skin(np.array(seen)) and not is_skin(np.array(seen) * plain)
    ops = plan_image(record, BASE)
    op = _wb(ops)
    assert 50.0 < op.params["mired_shift"] <= 100.0 and "need more" in op.reason
    assert is_skin(np.array(seen) * np.asarray(op.params["gains"])) and not _flags(ops, "skin")


def test_a_face_that_was_never_skin_does_not_hold_the_correction_back() -> None:
    # A verdigris statue's "face" under a 60 mired warm light: no correction makes it skin; the neutrals'
    # whole correction is applied (not reduced for a face it cannot spoil) and the face is flagged.
    statue = (np.array([0.15, 0.30, 0.30]) * light_rgb(60.0)).tolist()
    assert not is_skin(np.array(statue))
    ops = plan_image(_record(60.0, uncertainty=10.0, faces=[_pale_face(statue)]), BASE)
    assert _wb(ops).params["mired_shift"] == pytest.approx(-60.0, abs=0.2)
    (flag,) = _flags(ops, "skin")
    assert "after the correction" in flag.reason


def test_a_balance_within_tolerance_with_a_face_that_is_not_skin_is_flagged() -> None:
    ops = plan_image(_record(3.0, uncertainty=5.0, faces=[_pale_face([0.30, 0.30, 0.31])]), BASE)
    assert _wb(ops) is None
    (flag,) = _flags(ops, "skin")
    assert "needs no correction" in flag.reason
    assert not _flags(plan_image(_record(3.0, uncertainty=5.0, faces=[_pale_face([0.45, 0.30, 0.22])]), BASE),
                      "skin")


def test_a_correction_that_leaves_a_face_at_the_edge_of_skin_is_flagged() -> None:
    # The face's colour is read over the detector's box, so a face the correction moves to within a few
    # degrees of the skin range's edge may be past it as a person sees it: the plan asks for a look.
    # The faces tried read as skin under the light the neutrals read, so weighing the skin in moves nothing.
    # The photo is a JPEG: the gains move its colours as the renderer moves a rendered source's (balanced).
    gains = np.asarray(_wb(plan_image(_record(60.0, uncertainty=10.0), BASE)).params["gains"])
    grid = [np.array(_published_skin(60.0, green)) for green in np.linspace(0.3, 1.2, 181)]

    def after(rgb: np.ndarray) -> np.ndarray:
        return balanced(rgb, gains, rendered=True)

    edge = next(rgb for rgb in grid
                if is_skin(after(rgb)) and 1.0 < skin_hue_margin(after(rgb)) < 4.0
                and skin_hue_margin(rgb) > skin_hue_margin(after(rgb)))
    ops = plan_image(_record(60.0, uncertainty=10.0, faces=[_pale_face(edge.tolist())]), BASE)
    assert _wb(ops).params["mired_shift"] == pytest.approx(-60.0, abs=0.5)  # the correction is not held back
    (flag,) = _flags(ops, "skin")
    assert "at the edge of skin colour" in flag.reason
    # Well inside the range after the correction: no flag.
    inside = np.array(_published_skin(60.0, green=0.65))
    assert skin_hue_margin(after(inside)) > 15.0
    assert not _flags(plan_image(_record(60.0, uncertainty=10.0, faces=[_pale_face(inside.tolist())]), BASE), "skin")


def test_the_skin_margin_is_measured_across_zero_degrees() -> None:
    assert skin_hue_margin(np.array([0.45, 0.30, 0.22])) > 0
    assert skin_hue_margin(np.array([0.40, 0.20, 0.30])) < 0  # magenta: a hue below 0 degrees
    assert skin_hue_margin(np.array([0.30, 0.40, 0.20])) < 0  # yellow-green: past 85 degrees


def _bright(face_rgb: list[float], over_ev: float, m: float = 0.0, raw: bool = True) -> ImageRecord:
    """A photo whose frame and only face both read ``over_ev`` over, its neutrals ``m`` mired from D65, its face shown
    as ``face_rgb`` (display light): a RAW (its pixels scene light: the face's is that colour taken back through the
    camera-like curve the renderer develops it through, :func:`undevelop`), or with ``raw=False`` a JPEG clipped as
    one developed over is (15 % of its pixels: not bright by intent)."""
    light = undevelop(np.asarray(face_rgb, dtype=np.float32)).astype(np.float64).tolist() if raw else face_rgb
    face = _pale_face(light)
    face.exposure_ev = over_ev
    record = _record(m, uncertainty=10.0, faces=[face], exposure_meter_ev=over_ev)
    if raw:
        record.source_kind, record.format = SourceKind.RAW, "dng"
    else:
        record.exposure.clipped_highlights_pct = 15.0
    return record


def test_a_darkening_that_would_turn_a_pale_face_grey_is_held_and_flagged() -> None:
    # Pale skin (CIELAB chroma 10.7 as shown). A JPEG is darkened in its scene light, through its camera's curve: the
    # 1.8 EV the frame and face read over keep its hue but take its chroma to 6.7, under skin's 10, and any darkening
    # past 0.2 EV greys it: left as shot, a retoucher told (exposure_skin); nothing left grey for the check after.
    pale = [0.60, 0.47, 0.40]
    assert is_skin(np.array(pale)) and not is_skin(exposed(np.array(pale), -0.36, rendered=True))
    ops = plan_image(_bright(pale, 1.8, raw=False), BASE)
    assert not [o for o in ops if o.kind is OperationKind.EXPOSURE]
    (flag,) = _flags(ops, "exposure_skin")
    assert flag.params["faces"] == [1] and "left as shot" in flag.reason and flag.applied_by is AppliedBy.RETOUCHER
    assert not _flags(ops, "skin_exposure")
    # Left as shot (within what well-exposed photos read): nothing to check.
    assert not _flags(plan_image(_bright(pale, 0.2, raw=False), BASE), "exposure_skin")
    # A RAW is darkened in its scene light and developed after, through the camera-like curve, whose contrast gives a
    # darkened face its colour back: the same face shown keeps chroma 11.2 a stop down and 10.5 at 1.5 EV, and greys
    # only past about 1.7 EV (2 EV: 9.6). Darkened as far as the skin keeps its colour, and flagged.
    raw_pale = undevelop(np.array(pale, dtype=np.float32)).astype(np.float64)
    assert is_skin(shown(raw_pale * 2.0**-1.5, False)) and not is_skin(shown(raw_pale * 2.0**-2.0, False))
    ops = plan_image(_bright(pale, 2.0), BASE)
    (exposure,) = [o for o in ops if o.kind is OperationKind.EXPOSURE]
    assert -2.0 < exposure.params["ev"] <= -1.4 and is_skin(shown(raw_pale * 2.0 ** exposure.params["ev"], False))
    (flag,) = _flags(ops, "exposure_skin")
    assert f"darkened by {abs(exposure.params['ev']):.2f} EV only" in flag.reason and not _flags(ops, "skin_exposure")
    # A face with colour to spare, or a near-white one (chroma 13.2): a JPEG's darkening keeps its skin (10.6 at
    # 1.8 EV), a RAW's developed gives it colour (26.6): nothing to check.
    for face in ([0.45, 0.30, 0.22], [0.98, 0.76, 0.64]):
        assert not _flags(plan_image(_bright(face, 1.8), BASE), "exposure_skin")
    assert not _flags(plan_image(_bright([0.98, 0.76, 0.64], 1.8, raw=False), BASE), "exposure_skin")
    # A black-and-white picture has no skin colour to lose: darkened whole.
    mono = _bright(pale, 1.8, raw=False)
    mono.colour.chroma_p99 = 2.0 / 255.0  # two code values
    ops = plan_image(mono, BASE)
    assert not _flags(ops, "exposure_skin") and not _flags(ops, "skin_exposure")
    assert [o.params["ev"] for o in ops if o.kind is OperationKind.EXPOSURE] == [pytest.approx(-1.8)]


def test_skin_after_the_exposure_is_judged_under_the_white_balance_the_plan_applies() -> None:
    # A warm JPEG face (chroma 21.8) keeps colour to spare darkened 1.8 EV as shot (13.1), but a cooling white
    # balance takes its warmth (10.8 as the renderer balances it) and the darkening then leaves it grey (6.4).
    # Judged on the colour as shot the darkening would pass; under the gains the renderer applies it is held.
    face = np.array([0.5, 0.3, 0.2])
    gains = (0.8436, 1.0265, 1.4095)
    cooled = balanced(face, gains, rendered=True)
    assert is_skin(exposed(face, -1.8, rendered=True))
    assert is_skin(cooled) and not is_skin(exposed(cooled, -1.8, rendered=True))
    record = _bright(face.tolist(), 1.8, raw=False)
    assert darkening_skin_keeps(record, (1.0, 1.0, 1.0), -1.8) == (-1.8, ())
    held, greyed = darkening_skin_keeps(record, gains, -1.8)
    assert greyed == (0,) and -1.8 < held < 0.0 and is_skin(exposed(cooled, held, rendered=True))


def test_skin_after_the_exposure_is_judged_under_the_white_balance_as_the_renderer_applies_it() -> None:
    # A JPEG's white balance moves a colour display-referred (balance_display_referred): the first face, cooled by
    # these gains and darkened a stop, turns grey there, though the plain gains on its linear light keep its skin (no
    # flag was given); the second keeps its skin there, though the plain gains read it grey (a flag for nothing). The
    # check after the exposure reads each as the renderer shows it.
    from pipeline.planning.rules.checks import check_skin_after_exposure
    from pipeline.planning.state import PlanState

    gains = (0.8, 1.0, 1.35)
    greys, keeps = np.array([0.4, 0.25, 0.15]), np.array([0.55, 0.3, 0.2])
    for rgb, greyed in ((greys, True), (keeps, False)):
        shown = balanced(rgb, gains, rendered=True)
        assert is_skin(shown) and is_skin(exposed(shown, -1.0, rendered=True)) is not greyed
        plain = rgb * np.asarray(gains)
        assert (is_skin(plain) and not is_skin(exposed(plain, -1.0, rendered=True))) is not greyed  # the old reading
        record = _record(0.0, faces=[_pale_face(rgb.tolist())])
        plan = PlanState(faces_that_count=(0,), exposure_ev=-1.0, white_balance_gains=gains)
        flags = check_skin_after_exposure(record, BASE, plan)
        assert bool(flags) is greyed
        if greyed:
            assert flags[0].params["check"] == "skin_exposure" and flags[0].params["faces"] == [1]


def test_a_raw_face_is_judged_as_the_rendition_shows_it_developed() -> None:
    # A RAW is developed through the camera-like curve after its corrections: a face shown at sRGB-linear
    # (0.30, 0.20, 0.15) (CIELAB chroma 14.2, skin) is (0.145, 0.105, 0.085) in the RAW's scene light, chroma 8.8
    # read as if displayed. Judged there it was "not skin-coloured as shot" and a retoucher was sent to check it;
    # judged as shown it is skin, and nothing is flagged. The JPEG whose pixels are that scene light is flagged.
    delivered = np.array([0.30, 0.20, 0.15])
    light = undevelop(delivered.astype(np.float32)).astype(np.float64)
    assert is_skin(delivered) and not is_skin(light)
    assert is_skin(shown(light, rendered=False)) and np.allclose(shown(delivered, rendered=True), delivered)
    raw = _record(0.0, faces=[_pale_face(light.tolist())])
    raw.source_kind, raw.format = SourceKind.RAW, "dng"
    assert not _flags(plan_image(raw, BASE), "skin")
    (flag,) = _flags(plan_image(_record(0.0, faces=[_pale_face(light.tolist())]), BASE), "skin")
    assert "not skin-coloured as shot" in flag.reason
    # A chart that delivers RAWs in their scene light (exposure.raw_tone_curve: linear) shows the face so: flagged.
    doc = BASE.model_dump(mode="json")
    doc["exposure"]["raw_tone_curve"] = "linear"
    linear = Chart.model_validate(doc)
    assert not develops_raw(linear) and develops_raw(BASE)
    (flag,) = _flags(plan_image(raw, linear), "skin")
    assert "not skin-coloured as shot" in flag.reason


def test_a_raw_face_is_judged_for_its_colour_at_a_well_exposed_level() -> None:
    # A RAW shot two stops over develops its face near white (chroma 6.0): the exposure rule darkens it, and it is
    # skin again (16.7). The white balance judges a RAW face's colour at a well-exposed face's level, so no "not
    # skin-coloured as shot" flag; a JPEG whose development washed the face out keeps the flag (its colour is lost).
    face = undevelop(np.array([0.45, 0.30, 0.22], dtype=np.float32)).astype(np.float64) * 4.0
    assert not is_skin(shown(face, rendered=False)) and is_skin(colour_judged(face, rendered=False))
    raw = _record(0.0, faces=[_pale_face(face.tolist())])
    raw.source_kind, raw.format = SourceKind.RAW, "dng"
    assert not _flags(plan_image(raw, BASE), "skin")
    washed = shown(face, rendered=False)  # the same face as a JPEG developed over shows it
    (flag,) = _flags(plan_image(_record(0.0, faces=[_pale_face(washed.tolist())]), BASE), "skin")
    assert "not skin-coloured as shot" in flag.reason


def test_the_skin_weighs_in_on_the_lights_tint_too() -> None:
    """serengil/deepface's img1.jpg (a press photo before a magenta-red backdrop): its neutrals read 58 mired warm
    (+-37) and magenta (tint -0.38), its face skin as published under a neutral light. Weighed with the skin, the
    temperature came to 6 mired, but the neutrals' tint was kept and taken out whole (Lab a* 8.8): the face went
    from a skin hue of 51 deg to a greenish 79, under a reason that spoke of 5 mired. The skin reads the tint too."""
    face = _pale_face(_published_skin(0.0, green=2.0**SKIN_TINT))
    record = _record(58.0, uncertainty=37.0, faces=[face], tint_g=-0.38)
    assert skin_tint(record) == pytest.approx(SKIN_TINT, abs=0.01)
    kept = skin_weighed_colour(record, skin_mired(record))  # as before: the neutrals' tint kept
    weighed = skin_weighed_colour(record, skin_mired(record), skin_tint(record))
    assert kept.tint == -0.38 and kept.cast_a > 5.0
    share = SKIN_SPREAD_MIRED**2 / (SKIN_SPREAD_MIRED**2 + 37.0**2)  # the neutrals' share of the weights
    assert weighed.tint == pytest.approx(-0.38 * share, abs=0.02)
    assert weighed.cast_mired == kept.cast_mired  # the temperature as before: the light's green alone moved
    assert cast_mired(lab_to_linear_srgb(50.0, weighed.cast_a, weighed.cast_b)) == pytest.approx(
        cast_mired(lab_to_linear_srgb(50.0, kept.cast_a, kept.cast_b)), abs=0.01)
    op = _wb(plan_image(record, load_chart("corporate_portrait").chart))
    assert op is not None and abs(op.params["tint_shift"]) < 0.35 * kept.cast_a  # 2.6 of Lab a*, not 8.8
    # A skin that is itself greener than published skin says the light is green: the weighing follows it.
    greener = _record(58.0, uncertainty=37.0, faces=[_pale_face(_published_skin(0.0, green=2.0**(SKIN_TINT + 0.3)))],
                      tint_g=-0.38)
    assert skin_weighed_colour(greener, skin_mired(greener), skin_tint(greener)).tint > weighed.tint + 0.15


def test_the_lights_uncertainty_is_weighed_with_the_skin() -> None:
    # Neutrals that scatter by 90 mired (a colourful scene) with a face that is skin: the skin, read within its own
    # spread, says the light; the scatter a scene's hold on a guessed white reads is the pair's (under the skin's
    # spread), not the neutrals' alone. Without a face, the neutrals'.
    face = _pale_face(_published_skin(0.0, green=2.0**SKIN_TINT))
    with_face = _record(58.0, uncertainty=90.0, faces=[face])
    assert light_uncertainty(with_face, BASE) < SKIN_SPREAD_MIRED
    assert light_uncertainty(_record(58.0, uncertainty=90.0), BASE) == 90.0
    assert light_uncertainty(_record(58.0, uncertainty=None), BASE) is None


def test_a_tint_taken_out_is_named_in_the_reason() -> None:
    # A ColorChecker's greys read magenta: the tint is taken out whole, and the picture turns greener: said so.
    op = _wb(plan_image(_record(-30.0, tint_g=-0.3, wb_colour_checker=True), BASE))
    off_locus = op.params["tint_shift"] + lab_of_light(light_rgb(op.params["cast_mired"]))[0]
    assert off_locus < -TINT_NOTED_A
    assert f"a magenta tint taken out (Lab a* {abs(off_locus):.1f}): greener" in op.reason
    op = _wb(plan_image(_record(-30.0, tint_g=0.3, wb_colour_checker=True), BASE))
    assert "a green tint taken out" in op.reason and op.reason.endswith("more magenta")
    # On the black-body line nothing is said, however warm the light (its own a*: 4 at 100 mired), nor of a tint
    # the neutrals read and are believed a quarter of (0.3 -> 0.07, Lab a* 1.6).
    assert "tint" not in _wb(plan_image(_record(-30.0), BASE)).reason
    assert "tint" not in _wb(plan_image(_record(100.0, wb_colour_checker=True), BASE)).reason
    assert "tint" not in _wb(plan_image(_record(-30.0, tint_g=-0.3), BASE)).reason


def test_a_skin_flag_says_which_way_the_faces_are_off() -> None:
    # A retoucher told "not skin-coloured" is told how: pink (a cool or magenta cast; its hue read through 0 as the eye
    # sees it), yellow-green, or grey (washed out, whatever its hue), with the faces' hue and chroma against skin's.
    def lab_rgb(hue: float, chroma: float) -> np.ndarray:
        return lab_to_linear_srgb(60.0, chroma * np.cos(np.radians(hue)), chroma * np.sin(np.radians(hue)))

    assert off_skin([lab_rgb(355.0, 14.0), lab_rgb(8.0, 16.0)]) == (
        "pink: hue -5 to 8 deg, chroma 14.0-16.0; skin 15-85 deg, chroma 10 or more")
    assert off_skin([lab_rgb(95.0, 15.0)]) == "yellow-green: hue 95 deg, chroma 15.0; skin 15-85 deg, chroma 10 or more"
    assert off_skin([lab_rgb(45.0, 6.0), lab_rgb(250.0, 20.0)]).startswith("grey or blue: hue 45 to 250 deg")
