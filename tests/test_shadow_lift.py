"""A backlit frame's shadows lifted once a reviewer accepts it (pipeline/planning/rules/shadows.py).

Tier 1: the curve (pipeline/imaging/shadow_lift.py) on numbers, the rule on records; tier 2, against truth:
photos scikit-image ships, their ground developed 1.5 EV under through the accuracy benchmark's camera curve
beneath a white sky pasted over their top (a backlit frame whose truth is the photo as published), through the
real meter, plan and renderer: the accepted lift brings the ground toward its published level, never past it,
and leaves the sky and the clipping as they were.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from PIL import Image
from planning_inputs import chart_with, face, image_record, of_kind

from benchmarks.accuracy_corpus import (
    _package_file,
    film_curve_inverse,
    film_curve_render,
    load_photo,
    save_jpeg,
    srgb8_to_linear,
    to_srgb8,
)
from charts.loader import load_chart
from pipeline.imaging.color import luminance
from pipeline.imaging.measure.metering import KEY_LOG2, inverse_tone_curve, tone_curve
from pipeline.imaging.render import adjustments_from_operations, render_preview
from pipeline.imaging.shadow_lift import MIN_SLOPE, ShadowLift
from pipeline.kernel.records import RENDER_ON_ACCEPT, AppliedBy, Operation, SourceKind
from pipeline.kernel.records import OperationKind as Kind
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.outputs.instructions import summary_line
from pipeline.outputs.xmp import crs_settings
from pipeline.planning.plan import plan_image
from pipeline.planning.rules.shadows import MAX_LIFT_EV

BASE = load_chart("base").chart
TARGET = 2.0**KEY_LOG2  # base's target (target_ev 0), linear


# --- the curve -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rendered", [False, True])
@pytest.mark.parametrize("ev", [0.1, 0.7, 1.5, 4.0])
def test_the_curve_keeps_the_order_of_levels_and_half_their_contrast(rendered: bool, ev: float) -> None:
    lift = ShadowLift(ev, TARGET * 2.0**-2.1, TARGET, rendered=rendered)
    y = np.geomspace(1e-5, 1.0, 4000).astype(np.float32)
    out = np.log2(y * lift.gains(y))
    assert np.all(np.diff(out) >= 0)  # a darker pixel never ends brighter than a lighter one
    assert out[-1] == pytest.approx(0.0, abs=1e-4)  # white stays white: nothing clips that did not
    if not rendered:  # in log luminance, at least MIN_SLOPE of the contrast everywhere (the table's samples: 0.5 %)
        assert np.min(np.diff(out) / np.diff(np.log2(y))) >= MIN_SLOPE - 5e-3


def test_the_curve_lifts_under_start_by_its_amount_and_nothing_from_end() -> None:
    lift = ShadowLift(0.7, TARGET * 2.0**-2.1, TARGET)
    under = np.array([1e-4, 1e-3, TARGET * 2.0**-2.1], dtype=np.float32)
    assert np.allclose(lift.gains(under), 2.0**0.7, rtol=1e-3)
    above = np.array([TARGET, 0.5, 1.0, 3.0], dtype=np.float32)  # 3.0: a RAW's highlight before the shoulder
    assert np.all(lift.gains(above) == 1.0)
    # A rendered source: the lift is scene light (as its exposure is metered), the gain its display light's.
    r = ShadowLift(0.7, TARGET * 2.0**-2.1, TARGET, rendered=True)
    shown = tone_curve(np.array([TARGET * 2.0**-4, TARGET * 2.0**-2.1]))
    scene_gain = inverse_tone_curve(shown * r.gains(shown.astype(np.float32))) / inverse_tone_curve(shown)
    assert np.allclose(np.log2(scene_gain), 0.7, atol=0.02)
    assert np.all(r.gains(tone_curve(np.array([TARGET, 0.5, 1.0])).astype(np.float32)) == 1.0)


def test_a_lift_wider_than_its_levels_eases_off_higher_and_keeps_the_hue() -> None:
    # A reviewer asking for 1.7 EV where the plan proposed 0.7 between the same levels: the ease-off widens upward.
    lift = ShadowLift(1.7, TARGET * 2.0**-2.1, TARGET)
    assert lift.span_ev == pytest.approx(5.1) and lift.lift == 1.7
    # Past white it would clip what it lifts: held to the most that eases off by white (5.47 EV over the start).
    held = ShadowLift(4.0, TARGET * 2.0**-2.1, TARGET)
    assert held.span_ev == pytest.approx(-math.log2(TARGET * 2.0**-2.1))
    assert held.lift == pytest.approx(held.span_ev / 3)
    assert held.gains(np.array([0.999, 1.0, 2.0], dtype=np.float32)) == pytest.approx([1.0, 1.0, 1.0], abs=1e-3)
    assert lift.gains(np.array([TARGET], dtype=np.float32))[0] > 1.0
    rgb = np.array([[[0.002, 0.004, 0.001], [0.02, 0.01, 0.005]]], dtype=np.float32)
    ratios = rgb / rgb[..., 1:2]
    lifted = lift.apply(rgb.copy())
    assert np.allclose(lifted / lifted[..., 1:2], ratios, rtol=1e-5) and np.all(lifted > rgb)


@pytest.mark.parametrize(("ev", "start", "end"), [(0.0, 0.01, 0.1), (-0.5, 0.01, 0.1), (math.nan, 0.01, 0.1),
                                                  (0.5, 0.1, 0.1), (0.5, 0.0, 0.1), (0.5, 0.2, 0.1)])
def test_a_malformed_lift_is_refused(ev: float, start: float, end: float) -> None:
    with pytest.raises(ValueError, match="shadow lift"):
        ShadowLift(ev, start, end)


# --- the rule --------------------------------------------------------------------------------------


def _plan(unclipped: float | None, meter: float = 0.301, clipped: float = 5.3, chart: object = BASE,
          **columns: object) -> list[Operation]:
    """The FiveK balcony's readings by default: read +0.30 EV, 5.3 % clipped, the rest 2.10 EV under."""
    record = image_record(**{"source_path": "a.jpg", "format": "jpeg", "source_kind": SourceKind.RASTER,
                             "exposure_meter_ev": meter, "exposure_unclipped_key_ev": unclipped,
                             "clipped_highlights_pct": clipped, **columns})
    return plan_image(record, chart)


def test_a_backlit_frame_is_proposed_a_lift_of_its_shadows() -> None:
    (op,) = of_kind(_plan(-2.10), Kind.LIFT_SHADOWS)
    assert op.applied_by is AppliedBy.RETOUCHER and op.params[RENDER_ON_ACCEPT] is True
    # A third of the gap: the most a curve gives from the rest's key to the target keeping half its contrast.
    assert op.params["ev"] == 0.7 and op.params["rest_ev"] == -2.1
    assert op.params["end"] == pytest.approx(TARGET, rel=1e-4)
    assert op.params["start"] == pytest.approx(TARGET * 2.0**-2.1, rel=1e-3)
    assert "the rest reads -2.10 EV" in op.reason and "confirm by eye" in op.reason
    # Pending it changes no pixel; accepted, the renderer lifts; rejected, or set to 0 by a reviewer, nothing.
    assert adjustments_from_operations([op]).shadow_lift is None
    accepted = dataclasses.replace(op, review={"status": "accepted", "by": "retoucher"})
    assert adjustments_from_operations([accepted], display_referred=True).shadow_lift == ShadowLift(
        0.7, op.params["start"], op.params["end"], rendered=True)
    assert adjustments_from_operations([dataclasses.replace(op, review={"status": "rejected"})]).shadow_lift is None
    zero = dataclasses.replace(accepted, params={**op.params, "ev": 0.0})
    assert adjustments_from_operations([zero]).shadow_lift is None
    assert summary_line([op], 0) == "shadows +0.70 EV (to confirm)"
    assert summary_line([accepted], 0) == "shadows +0.70 EV"
    # The XMP says what Camera Raw cannot be told: a note once accepted, nothing while pending.
    doc = {"source_path": "a.jpg", "image": {"width": 3000, "height": 2000, "format": "jpeg",
                                            "source_kind": "raster", "orientation": 1}}
    def notes(operation: Operation) -> list[str]:
        d = {**doc, "operations": [{"op_id": "lift_shadows", "kind": "lift_shadows", "params": operation.params,
                                    "applied_by": str(operation.applied_by), "review": operation.review}]}
        return [n for n in crs_settings(d).notes if "shadows" in n]
    assert notes(op) == []
    assert notes(accepted) == ["postprod lifts this frame's shadows +0.70 EV, easing off to none at the chart's "
                               "target: not written, as Camera Raw's Shadows slider has no scale in EV (set Shadows "
                               "by eye)"]


def test_the_lift_is_capped_and_asked_only_of_a_backlit_frame_without_faces() -> None:
    (deep,) = of_kind(_plan(-6.0), Kind.LIFT_SHADOWS)
    assert deep.params["ev"] == MAX_LIFT_EV
    # The rest within what well-exposed photographs read, over, or unmeasured: no lift (nor the flag's note).
    for rest in (-0.5, 0.0, 0.9, None):
        assert of_kind(_plan(rest), Kind.LIFT_SHADOWS) == []
    # Clipped within the chart's limit (2 % on base): not backlit.
    assert of_kind(_plan(-2.1, clipped=1.5), Kind.LIFT_SHADOWS) == []
    # A chart stricter on clipping flags it, but a lamp or a sun's disc at white does not make it backlit: under
    # 2 % no lift, whatever the chart's limit; a chart that tolerates more (real estate's 5 %) asks more.
    strict = chart_with(BASE, "acceptance", clipped_highlights={"max_pct": 0.5, "action": "flag"})
    assert of_kind(_plan(-2.1, clipped=1.5, chart=strict), Kind.LIFT_SHADOWS) == []
    assert [o.params["check"] for o in _plan(-2.1, clipped=1.5, chart=strict)
            if o.kind is Kind.FLAG] == ["clipped_highlights"]
    assert len(of_kind(_plan(-2.1, clipped=2.5, chart=strict), Kind.LIFT_SHADOWS)) == 1
    lenient = chart_with(BASE, "acceptance", clipped_highlights={"max_pct": 5.0, "action": "flag"})
    assert of_kind(_plan(-2.1, clipped=4.5, chart=lenient), Kind.LIFT_SHADOWS) == []
    # A face that counts: the faces rule's (their exposure and lifts).
    assert of_kind(_plan(-2.1, faces=[face(1000, 800, 400, -2.0, surround_ev=0.0)]), Kind.LIFT_SHADOWS) == []
    # A white backdrop (a logo on white), a chart that leaves backlit frames to the flag's note: no lift.
    assert of_kind(_plan(-2.04, clipped=2.5, exposure_backdrop_pct=79.9), Kind.LIFT_SHADOWS) == []
    off = chart_with(BASE, "exposure", lift_backlit_shadows=False)
    assert of_kind(_plan(-2.1, chart=off), Kind.LIFT_SHADOWS) == []
    (flag,) = [o for o in _plan(-2.1, chart=off) if o.params.get("check") == "clipped_highlights"]
    assert "the rest of the frame reads -2.10 EV: backlit" in flag.reason
    assert flag.reason.endswith("a global brightening would clip more: lift the shadows locally if they should show")


# --- against truth: a ground developed under beneath a blown sky -------------------------------------

#: The share of the frame's top the white sky covers (the Kodak suite's kodim20: 49.5 % blown).
SKY = 0.45
UNDER_EV = 1.5
PHOTOS = ("coffee.png", "chelsea.png", "motorcycle_left.png")


def _ground_ev(srgb8: np.ndarray) -> float:
    """log2 of the mean linear luminance of the frame's lower half (under the pasted sky)."""
    return math.log2(float(luminance(srgb8_to_linear(srgb8[srgb8.shape[0] // 2:]).astype(np.float32)).mean()))


def test_an_accepted_lift_brings_a_backlit_ground_toward_its_published_level(tmp_path) -> None:  # noqa: ANN001
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    published = {}
    for name in PHOTOS:
        src = _package_file("skimage", f"data/{name}")
        if src is None:
            pytest.fail(f"scikit-image's {name} sample is missing (pip install scikit-image)")
        photo = load_photo(src)
        published[name[:-4]] = photo
        scene = film_curve_inverse(srgb8_to_linear(photo)) * 2.0**-UNDER_EV
        under = to_srgb8(np.clip(film_curve_render(scene), 0.0, 1.0))
        under[: int(SKY * under.shape[0])] = 255
        save_jpeg(shoot / f"{name[:-4]}_backlit.jpg", under)
    result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "out", executor="local", chart="base"))
    assert len(result.records) == len(PHOTOS)
    for r in result.records:
        assert r.status == "ok", r.error
        (lift,) = of_kind(r.operations, Kind.LIFT_SHADOWS)
        assert lift.params[RENDER_ON_ACCEPT] is True and lift.params["rest_ev"] < -1.0, r.source_path
        source = np.asarray(Image.open(shoot / r.source_path).convert("RGB"))
        h, w = source.shape[:2]
        accepted = [dataclasses.replace(o, review={"status": "accepted"}) if o.kind is Kind.LIFT_SHADOWS else o
                    for o in r.operations]
        before, after = (render_preview(srgb8_to_linear(source).astype(np.float32), w, h,
                                        adjustments_from_operations(ops, display_referred=True))
                         for ops in (r.operations, accepted))
        truth = _ground_ev(published[r.source_path.removesuffix("_backlit.jpg")])
        error_before, error_after = _ground_ev(before) - truth, _ground_ev(after) - truth
        # Toward the published ground (0.3-0.8 EV of the 1.5 here), never past it.
        assert error_before < error_after <= 0.0, (r.source_path, error_before, error_after)
        assert error_after - error_before >= 0.25, (r.source_path, error_before, error_after)
        # The sky and the clipping exactly as they were.
        sky = int(SKY * h) - 2
        assert np.array_equal(before[:sky], after[:sky]), r.source_path
        assert np.count_nonzero(after.max(axis=2) == 255) == np.count_nonzero(before.max(axis=2) == 255)


def test_a_reviewer_sets_the_lift_and_cannot_make_it_a_darkening(exposure_dir, tmp_path) -> None:  # noqa: ANN001
    """The FiveK balcony at dusk developed 1.5 EV under (its sky 5.3 % clipped, its table and diner 2.1 EV under)
    in the review app: the lift is an amount a reviewer sets (which accepts it), 0 or more."""
    from pipeline.review.app import create_app

    name = "a4874-20090320_at_19h15m51__MG_0126_N1.5.JPG"
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    (shoot / name).write_bytes((exposure_dir / name).read_bytes())
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "out", executor="local", chart="base"))
    client = create_app(tmp_path / "out").test_client()
    got = client.get(f"/api/images/{name}").get_json()
    (op,) = [o for o in got["doc"]["operations"] if o["kind"] == "lift_shadows"]
    assert op["params"]["ev"] == 0.7 and op["review"]["status"] == "pending"
    assert "shadows +0.70 EV (to confirm)" in got["doc"]["summary"]
    refused = client.post(f"/api/images/{name}", json={"version": got["version"],
                                                         "changes": [{"op_id": op["op_id"], "ev": -0.5}]})
    assert refused.status_code == 422 and "0 EV (none) or more" in refused.get_json()["error"]
    done = client.post(f"/api/images/{name}", json={"version": got["version"],
                                                      "changes": [{"op_id": op["op_id"], "ev": 1.2}]})
    assert done.status_code == 200, done.get_json()
    after = client.get(f"/api/images/{name}").get_json()["doc"]
    (edited,) = [o for o in after["operations"] if o["kind"] == "lift_shadows"]
    assert edited["params"]["ev"] == 1.2 and edited["review"]["status"] == "accepted"
    assert "shadows +1.20 EV" in after["summary"] and "(to confirm)" not in after["summary"]


def test_an_accepted_lift_lifts_a_backlit_raw_s_ground_in_its_scene_light(tmp_path) -> None:  # noqa: ANN001
    """A DNG: scikit-image's cat in scene light 1.5 EV under, its top 45 % over the sensor's white (a sky blown
    in the RAW itself): the lift's levels are the decode's scene light after the plan's correction."""
    from benchmarks.accuracy_corpus import write_dng
    from pipeline.review.preview import decode_preview

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    scene = film_curve_inverse(srgb8_to_linear(load_photo(_package_file("skimage", "data/chelsea.png"))))
    scene *= 2.0**-UNDER_EV
    scene[: int(SKY * scene.shape[0])] = 1.0
    write_dng(shoot / "cat.dng", scene)
    (r,) = process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "out", executor="local",
                                     chart="base")).records
    (lift,) = of_kind(r.operations, Kind.LIFT_SHADOWS)
    assert lift.params["rest_ev"] < -1.0
    decoded = decode_preview(shoot / "cat.dng", "raw", 1280)
    accepted = [dataclasses.replace(o, review={"status": "accepted"}) if o.kind is Kind.LIFT_SHADOWS else o
                for o in r.operations]
    before, after = (render_preview(decoded.copy(), r.frame.width, r.frame.height, adjustments_from_operations(ops))
                     for ops in (r.operations, accepted))
    moved = _ground_ev(after) - _ground_ev(before)
    assert 0.25 <= moved <= lift.params["ev"] + 1e-6, moved  # its ground lifted, by no more than the lift
    sky = int(SKY * before.shape[0]) - 2
    assert np.array_equal(before[:sky], after[:sky])
    assert np.count_nonzero(after.max(axis=2) == 255) == np.count_nonzero(before.max(axis=2) == 255)


@pytest.mark.parametrize("rendered", [False, True])
def test_a_lifted_picture_rendered_in_strips_is_the_whole_picture(rendered: bool) -> None:
    """The render of a 100 MP master goes strip by strip (render_rows): each pixel's lift reads its own luminance,
    so the strips put together are the picture rendered whole, to the bit (no sharpening: its SIMD tail rounds)."""
    import cv2

    from pipeline.imaging.render import Adjustments, render_frame, render_rows, source_white

    rng = np.random.default_rng(7)
    picture = np.clip(cv2.GaussianBlur(rng.random((90, 60, 3), dtype=np.float32), (0, 0), 3.0) ** 4, 0.0, 1.0)
    adjust = Adjustments(exposure_ev=0.4, display_referred=rendered,  # a JPEG's push read at its whole level
                         shadow_lift=ShadowLift(0.9, TARGET * 2.0**-2.5, TARGET, rendered=rendered)).for_source(picture)
    box = (0.0, 0.0, 60.0, 90.0)
    whole = render_frame(picture.copy(), 60, 90, adjust, box, (60, 90), "srgb", 0.0, 16)
    rows = [render_rows(lambda x0, y0, x1, y1: picture[y0:y1, x0:x1].copy(), 60, 90, adjust, box, (60, 90),
                        (v0, v1), "srgb", 0.0, 16, white_of_source=source_white(picture))
            for v0, v1 in ((0, 7), (7, 40), (40, 89), (89, 90))]
    np.testing.assert_array_equal(np.concatenate(rows), whole)
    unlifted = render_frame(picture.copy(), 60, 90, dataclasses.replace(adjust, shadow_lift=None), box, (60, 90),
                            "srgb", 0.0, 16)
    assert np.all(whole >= unlifted) and (whole > unlifted).mean() > 0.3  # lifted, never darkened
