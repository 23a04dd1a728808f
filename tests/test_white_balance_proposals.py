"""A big white-balance correction of a light guessed from the picture is proposed to a person, not applied.

The chart's ``white_balance.propose_above_mired`` (base: 50 mired): beyond it, a correction no ColorChecker, white
backdrop or face's skin witnesses goes to a person as the same operation, ``render_on_accept`` (the renderer applies
it once a reviewer accepts it). Tier 1 plans records whose light is written inline; tier 2 runs a real photo
(scikit-image's chelsea, a tabby cat on a rug) with a warm cast injected in linear light through the CLI's pipeline.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from test_blown_sky import _photo
from test_scenes import frame
from test_white_balance_rule import BASE, _chart, _flags, _record, _wb

from benchmarks.accuracy_corpus import cast_gains, load_photo, save_jpeg, srgb8_to_linear, to_srgb8
from charts.loader import load_chart
from pipeline.imaging.render import adjustments_from_operations
from pipeline.kernel.records import RENDER_ON_ACCEPT, AppliedBy, OperationKind
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.outputs.instructions import instruction_doc, summary_line
from pipeline.outputs.xmp import crs_settings
from pipeline.planning.plan import plan_image, plan_shoot
from pipeline.review.store import refresh_summary


def test_a_guessed_light_beyond_the_charts_limit_is_proposed_not_applied() -> None:
    # 80 mired warm, the four cues within 6 mired of each other: as sure as the estimate gets, and as a fire
    # festival or a gilded altar read.
    op = _wb(plan_image(_record(80.0), BASE))
    assert op.applied_by is AppliedBy.RETOUCHER and op.params[RENDER_ON_ACCEPT] is True
    assert op.params["mired_shift"] == pytest.approx(-80.0, abs=0.15)  # the same amount as before
    assert "proposed, not applied" in op.reason and "more than the chart's 50" in op.reason
    # Pending it changes no pixel; accepted, the renderer applies its gains; rejected, nothing.
    assert adjustments_from_operations([op]).wb_gains == (1.0, 1.0, 1.0)
    accepted = dataclasses.replace(op, review={"status": "accepted", "by": "retoucher"})
    assert adjustments_from_operations([accepted]).wb_gains == pytest.approx(tuple(op.params["gains"]))
    rejected = dataclasses.replace(op, review={"status": "rejected", "by": "retoucher"})
    assert adjustments_from_operations([rejected]).wb_gains == (1.0, 1.0, 1.0)
    assert summary_line([op], 0) == "white balance 80 mired cooler (to confirm)"
    assert summary_line([accepted], 0) == "white balance 80 mired cooler"
    # The XMP carries what the exports carry: as shot while pending, the correction once accepted.
    doc = {"source_path": "a.jpg", "image": {"width": 3000, "height": 2000, "format": "jpeg", "source_kind": "raster",
                                            "orientation": 1},
           "measurements": {"wb_cast_mired": 80.0, "wb_cast_a": 0.0, "wb_cast_b": 20.0,
                            "wb_temperature_shift_k": -2400.0}}

    def white_of(operation: object) -> str:
        d = {**doc, "operations": [{"op_id": "white_balance", "kind": "white_balance", "params": operation.params,
                                    "applied_by": str(operation.applied_by), "review": operation.review}]}
        return crs_settings(d).attrs["crs:WhiteBalance"]
    assert white_of(op) == "As Shot" and white_of(accepted) == "Custom"
    # A cool light the same.
    cool = _wb(plan_image(_record(-70.0), BASE))
    assert cool.applied_by is AppliedBy.RETOUCHER and cool.params["mired_shift"] == pytest.approx(70.0, abs=0.15)


def test_a_rejected_proposal_carried_into_a_replan_is_not_to_confirm() -> None:
    # A re-plan carries a reviewer's decisions onto the operations: the instructions' summary then says what the
    # review app's own refresh says, the rejected proposal left out (it was "(to confirm)" before).
    record = _record(80.0)
    op = _wb(plan_image(record, BASE))
    record.operations = [op]
    assert instruction_doc(record, "base", "h")["summary"] == "white balance 80 mired cooler (to confirm)"
    record.operations = [dataclasses.replace(op, review={"status": "rejected", "by": "retoucher"})]
    doc = instruction_doc(record, "base", "h")
    assert doc["summary"] == "nothing to do"
    refresh_summary(doc)  # the review app's refresh of the same document agrees
    assert doc["summary"] == "nothing to do"
    record.operations = [dataclasses.replace(op, review={"status": "accepted", "by": "retoucher"})]
    assert instruction_doc(record, "base", "h")["summary"] == "white balance 80 mired cooler"


def test_a_correction_within_the_limit_is_applied() -> None:
    # 45 mired warm: 22 beyond published photographs' warmth, sure (6 mired): a 45 mired correction, unseen.
    op = _wb(plan_image(_record(45.0), BASE))
    assert op.applied_by is AppliedBy.RENDERER and RENDER_ON_ACCEPT not in op.params
    assert op.params["mired_shift"] == pytest.approx(-45.0, abs=0.15)
    # The limit is the chart's: raised past the shift, applied; lowered under it, proposed.
    assert _wb(plan_image(_record(80.0), _chart(propose_above_mired=100.0))).applied_by is AppliedBy.RENDERER
    assert _wb(plan_image(_record(45.0), _chart(propose_above_mired=30.0))).applied_by is AppliedBy.RETOUCHER


def test_a_reading_whose_cues_scatter_is_proposed_whatever_the_charts_limit() -> None:
    # Real-estate interiors apply up to 200 mired unseen (the light read off white walls under bulbs). A twilight
    # front read 139 mired cool with its cues +-131 apart (a blue sky and pool, no white wall) is no such reading:
    # proposed, with the scatter named; the same light the cues agree on is applied.
    chart = load_chart("real_estate_interiors").chart
    op = _wb(plan_image(_record(-139.0, uncertainty=131.0), chart))
    assert op.applied_by is AppliedBy.RETOUCHER and op.params[RENDER_ON_ACCEPT] is True
    assert op.params["mired_shift"] == pytest.approx(139.0, abs=0.2)
    assert "disagree by +-131 mired" in op.reason and "proposed, not applied" in op.reason
    assert _wb(plan_image(_record(-139.0, uncertainty=20.0), chart)).applied_by is AppliedBy.RENDERER
    # The bound is a shift anyone sees (50 mired), not the chart's: just under it, applied; just over, proposed.
    assert _wb(plan_image(_record(120.0, uncertainty=49.0), chart)).applied_by is AppliedBy.RENDERER
    assert _wb(plan_image(_record(120.0, uncertainty=51.0), chart)).applied_by is AppliedBy.RETOUCHER


def test_greys_known_to_be_grey_are_applied_whatever_the_shift() -> None:
    # A ColorChecker's greys read the light: no guess, the correction is the renderer's.
    op = _wb(plan_image(_record(120.0, wb_colour_checker=True), BASE))
    assert op.applied_by is AppliedBy.RENDERER and op.params["mired_shift"] == pytest.approx(-120.0, abs=0.2)
    # So is a white backdrop's.
    op = _wb(plan_image(_record(120.0, wb_backdrop=True), BASE))
    assert op.applied_by is AppliedBy.RENDERER


def test_beyond_the_cap_the_proposal_carries_the_cap_and_its_flag() -> None:
    ops = plan_image(_record(230.0, uncertainty=20.0), BASE)
    op = _wb(ops)
    assert op.applied_by is AppliedBy.RETOUCHER and op.params["mired_shift"] == pytest.approx(-150.0)
    (flag,) = _flags(ops, "white_balance")
    assert "beyond the automatic 150" in flag.reason
    # The flag says what happens to the capped shift: proposed, not applied (a macro of orange flowers read 214
    # mired warm, was proposed -150 mired, and its flag said "-150 applied").
    assert flag.reason.endswith("-150 proposed (applied once accepted), finish by eye")
    assert " applied," not in flag.reason
    # Where the chart applies it unseen, the flag says applied.
    ops = plan_image(_record(230.0, uncertainty=20.0), _chart(propose_above_mired=200.0))
    assert _wb(ops).applied_by is AppliedBy.RENDERER
    assert _flags(ops, "white_balance")[0].reason.endswith("-150 applied, finish by eye")
    # Real-estate interiors read the light off white walls: every correction up to their cap is applied.
    op = _wb(plan_image(_record(180.0, uncertainty=20.0), load_chart("real_estate_interiors").chart))
    assert op.applied_by is AppliedBy.RENDERER and op.params["mired_shift"] == pytest.approx(-180.0)


def test_a_scene_asking_a_guessed_shift_beyond_the_limit_is_levelled_and_flagged() -> None:
    """A restaurant's series under 2700 K lamps (culinary matches a scene's white), the camera's white off by up
    to 15 mired between frames: each frame's own correction is a guess beyond the limit, and so is the scene's.
    The series is levelled to its median As Shot white (consistent, and applied) and flagged; a person decides the
    shift."""
    from pipeline.imaging.scene_light import mired_tint, rendered_white
    from pipeline.planning.consistency import applied_gains
    from pipeline.planning.scenes import frame_light

    chart = load_chart("culinary").chart
    # The camera's white 100-115 mired cooler than the lamps: the neutrals read warm.
    shifts = (-100, -115, -105)
    records = [frame(f"t{k}.dng", 30 * k, light_cct=2700, white_shift=shift) for k, shift in enumerate(shifts)]
    alone = [_wb(plan_image(r, chart)) for r in records]
    assert all(o.applied_by is AppliedBy.RETOUCHER for o in alone)  # each frame's own: proposed
    plan_shoot(records, chart)
    whites = []
    for r in records:
        for op in [o for o in r.operations if o.kind is OperationKind.WHITE_BALANCE]:  # none on the median frame
            assert op.applied_by is AppliedBy.RENDERER and "is held for a person" in op.reason
        whites.append(mired_tint(rendered_white(applied_gains(r.operations), frame_light(r).as_shot_xy))[0])
        (flag,) = [o for o in r.operations if o.params.get("check") == "scene_white_balance"]
        assert "more than the chart's 50 applied unseen" in flag.reason and "cooler" in flag.reason
    assert max(whites) - min(whites) < 1.0  # one white for the series


def test_a_scene_read_by_scattered_estimates_is_held_whatever_the_charts_limit() -> None:
    """The same under real_estate_interiors (up to 200 mired unseen): a series whose frames' light estimates scatter
    by more than a shift anyone sees is held at its median As Shot white and flagged, as each frame's own correction
    is proposed; the same series read by estimates that agree is levelled to the scene's white, applied."""
    from pipeline.imaging.scene_light import mired_tint, rendered_white
    from pipeline.planning.consistency import applied_gains
    from pipeline.planning.scenes import frame_light

    chart = load_chart("real_estate_interiors").chart

    def series(uncertainty: float) -> list:
        records = [frame(f"t{k}.dng", 30 * k, light_cct=2700, white_shift=shift)
                   for k, shift in enumerate((-100, -115, -105))]
        for r in records:
            r.colour.uncertainty_mired = uncertainty
        return records

    scattered = series(90.0)
    assert all(_wb(plan_image(r, chart)).applied_by is AppliedBy.RETOUCHER for r in scattered)  # each: proposed
    plan_shoot(scattered, chart)
    for r in scattered:
        (flag,) = [o for o in r.operations if o.params.get("check") == "scene_white_balance"]
        assert "disagree by +-90 mired" in flag.reason and "kept at their median As Shot white" in flag.reason
        white = mired_tint(rendered_white(applied_gains(r.operations), frame_light(r).as_shot_xy))[0]
        assert abs(white - mired_tint(frame_light(scattered[1]).as_shot_xy)[0]) < 15.0  # near as shot
    agreeing = series(20.0)
    plan_shoot(agreeing, chart)
    for r in agreeing:
        assert not [o for o in r.operations if o.params.get("check") == "scene_white_balance"]
        (op,) = [o for o in r.operations if o.kind is OperationKind.WHITE_BALANCE]
        assert op.applied_by is AppliedBy.RENDERER and "scene" in op.reason


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Through the pipeline (base): scikit-image's coffee as published (a brown cup and saucer on a wooden table) and
    chelsea (a tabby cat) under a light 60 mired warmer, injected in linear light."""
    work = tmp_path_factory.mktemp("wb_proposal")
    shoot = work / "shoot"
    shoot.mkdir()
    save_jpeg(shoot / "coffee.jpg", _photo("coffee.png"))
    lin = srgb8_to_linear(_photo("chelsea.png"))
    save_jpeg(shoot / "chelsea_warm.jpg", to_srgb8(np.clip(lin * cast_gains(60.0), 0.0, 1.0)))
    out = work / "out"
    result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="base"))
    exports = {r["source_path"]: out / r["path"] for r in pq.read_table(out / "exports.parquet").to_pylist()}
    return {r.source_path: (r, load_photo(shoot / r.source_path),
                            np.asarray(Image.open(exports[r.source_path]).convert("RGB"))) for r in result.records} | {
        "out": out, "summary": result.summary()}


def _red_over_blue(srgb8: np.ndarray) -> float:
    lin = srgb8_to_linear(srgb8).reshape(-1, 3).mean(axis=0)
    return float(np.log2(lin[0] / lin[2]))


@pytest.mark.parametrize("name", ["coffee.jpg", "chelsea_warm.jpg"])
def test_a_real_photo_read_far_warm_is_proposed_and_delivered_as_shot(photos: dict, name: str) -> None:
    record, source, export = photos[name]
    (op,) = [o for o in record.operations if o.kind is OperationKind.WHITE_BALANCE]
    # Read warm beyond the limit: the coffee by its brown cup and table (cooled by 109 mired before, the cup to
    # blue-grey), the cat by the light injected. Proposed: the person who sees it tells the two apart ...
    assert op.params["mired_shift"] < -BASE.white_balance.propose_above_mired
    assert op.applied_by is AppliedBy.RETOUCHER and op.params[RENDER_ON_ACCEPT] is True
    # ... and the export keeps the colour it was shot with until then.
    assert _red_over_blue(export) == pytest.approx(_red_over_blue(source), abs=0.05)


def test_a_real_photo_whose_cues_scatter_is_proposed_under_real_estate(photos: dict) -> None:
    # scikit-image's coffee (a brown cup on a wooden table) as measured by the pipeline: its four light estimates
    # scatter by more than a visible shift, so the chart that applies 200 mired unseen proposes its cooling.
    record = photos["coffee.jpg"][0]
    assert record.colour.uncertainty_mired > 50.0
    op = _wb(plan_image(record, load_chart("real_estate_interiors").chart))
    assert op.params["mired_shift"] < -50.0
    assert op.applied_by is AppliedBy.RETOUCHER and "disagree by" in op.reason


def test_the_runs_summary_counts_the_corrections_to_confirm(photos: dict, capsys: pytest.CaptureFixture) -> None:
    from pipeline.cli.main import _print_summary

    summary = photos["summary"]
    assert summary["to_confirm"] == {"white_balance": 2} and summary["images_to_confirm"] == 2
    _print_summary(summary)
    assert "to confirm: 2 white balance (in 2 images; proposed, not applied until accepted" in capsys.readouterr().out
    # The report counts them too, and names them among the retoucher's tasks.
    report = (photos["out"] / "report.html").read_text(encoding="utf-8")
    assert "<b>2</b>to confirm" in report and report.count("white_balance (to confirm)") == 2


def test_the_review_lists_the_photos_with_a_correction_to_confirm(photos: dict) -> None:
    from pipeline.review.app import create_app

    client = create_app(photos["out"], reviewer="Ana").test_client()
    everything = client.get("/api/images").get_json()["images"]
    assert {i["source_path"]: i["proposed"] for i in everything} == {"coffee.jpg": 1, "chelsea_warm.jpg": 1}
    assert [i["source_path"] for i in client.get("/api/images?proposed=1").get_json()["images"]] == [
        "chelsea_warm.jpg", "coffee.jpg"]
    # Rejected (the coffee's brown is its own), it is decided: no longer to confirm, and the picture as shot.
    doc = client.get("/api/images/coffee.jpg").get_json()
    r = client.post("/api/images/coffee.jpg", json={"version": doc["version"],
                                                   "changes": [{"op_id": "white_balance", "status": "rejected"}]})
    assert r.status_code == 200, r.get_json()
    assert [i["source_path"] for i in client.get("/api/images?proposed=1").get_json()["images"]] == ["chelsea_warm.jpg"]
    assert client.get("/api/images/coffee.jpg").get_json()["previews"]["proposed"] is None


def test_the_gallerys_batch_accepts_proposals_only_when_asked(photos: dict) -> None:
    from pipeline.review.app import create_app

    client = create_app(photos["out"], reviewer="Ana").test_client()

    def decide(**all_: object) -> list[str]:
        version = client.get("/api/images/chelsea_warm.jpg").get_json()["version"]
        r = client.post("/api/decisions", json={"items": [{"source_path": "chelsea_warm.jpg", "version": version,
                                                          "all": all_}]})
        assert r.status_code == 200, r.get_json()
        doc = client.get("/api/images/chelsea_warm.jpg").get_json()["doc"]
        return [o["review"]["status"] for o in doc["operations"] if o["kind"] == "white_balance"]

    # "Accept corrections" accepts the automatic ones: the proposal waits for a look.
    assert decide(status="accepted") == ["pending"]
    # "Accept proposals" accepts it (after the look the filter and the Proposed view give).
    assert decide(status="accepted", proposals=True) == ["accepted"]
    version = client.get("/api/images/chelsea_warm.jpg").get_json()["version"]
    bad = client.post("/api/decisions", json={"items": [{"source_path": "chelsea_warm.jpg", "version": version,
                                                        "all": {"status": "done", "proposals": True}}]})
    assert bad.status_code == 422 and "all.proposals" in bad.get_json()["error"]
