"""Crops that keep people (issue 17 item 4): no face cut, the most important kept, a flag otherwise; enlargement.

Tier 1: face boxes written inline. The real detector on real photos is in
:mod:`tests.test_decisions_photos`.
"""

from __future__ import annotations

import pytest

from charts.loader import load_chart
from charts.schema import Chart
from pipeline.imaging.geometry import fits, kept_share
from pipeline.kernel.records import AppliedBy, Face, ImageRecord, Operation, OperationKind, SourceKind
from pipeline.planning.plan import plan_image
from pipeline.planning.rules.crops import (
    CLEAR_SIDES,
    FRAMING_MIN_FACE_FRACTION,
    faces_a_box_cuts,
    faces_centroid,
    faces_region,
    framing_faces,
    importance,
    person_region,
    place_keeping_faces,
    protected_region,
    rejudge_crop_flags,
    reviewed_crop_flags,
)

# The dinner photo (PASCAL VOC 2008_002079, 500 x 375): six diners around a table, dlib's boxes.
DINERS = {0: (407, 166, 37, 37), 1: (122, 134, 37, 37), 2: (346, 138, 37, 37), 3: (433, 171, 53, 52),
          4: (62, 134, 37, 37), 5: (41, 194, 44, 44)}


def _face(box: tuple[float, float, float, float], too_small: bool = False) -> Face:
    x, y, w, h = box
    return Face(x=x, y=y, width=w, height=h, score=0.95, landmarks=[0.0] * 10, exposure_ev=0.0, too_small=too_small)


def _record(width: int, height: int, faces: list[Face], **kw) -> ImageRecord:
    row = dict(source_path="a.jpg", content_hash="0" * 64, file_size=1, format="jpeg", source_kind=SourceKind.RASTER,
               width=width, height=height, exposure_ev=0.0, sharpness=100.0, lines_found=0, phash="0" * 16,
               clipped_highlights_pct=0.0, clipped_shadows_pct_r=0.0, clipped_shadows_pct_g=0.0,
               clipped_shadows_pct_b=0.0, **kw)
    return ImageRecord.from_row(row, faces=faces)


def _crops(ops: list[Operation]) -> dict[str, Operation]:
    return {o.params["aspect"]: o for o in ops if o.kind is OperationKind.CROP}


def _crop_flags(ops: list[Operation]) -> dict[str, Operation]:
    return {o.params["aspect"]: o for o in ops if o.kind is OperationKind.FLAG and o.params["check"] == "crop"}


def _shares(op: Operation, faces: dict[int, tuple[float, float, float, float]], w: float, h: float) -> dict[int, float]:
    return {i: kept_share(tuple(op.params["box"]), op.params["angle_deg"], protected_region(f, w, h))
            for i, f in faces.items()}


def test_no_crop_of_the_dinner_cuts_a_diner_and_the_ones_left_out_are_flagged() -> None:
    record = _record(500, 375, [_face(b) for b in DINERS.values()])
    ops = plan_image(record, load_chart("social_media").chart)  # 4:5, 1:1, 9:16 saliency crops
    crops, flags = _crops(ops), _crop_flags(ops)
    assert set(crops) == {"4:5", "1:1", "9:16"}
    for aspect, op in crops.items():
        shares = _shares(op, DINERS, 500, 375)
        assert all(s >= 0.999 or s <= 0.001 for s in shares.values()), (aspect, shares)  # whole or out
        kept = [i for i, s in shares.items() if s >= 0.999]
        assert len(kept) >= 3, aspect  # not one of six, as before
        # None of these aspects holds all six: each is flagged, naming the diners left out.
        assert flags[aspect].params["faces_left_out"] == [i for i in DINERS if i not in kept]
        assert flags[aspect].applied_by is AppliedBy.RETOUCHER and "leaves face(s)" in flags[aspect].reason
        # Counted against the faces it frames, apart from their numbers (COCO's 000395: "face(s) 4 of 3").
        assert f" out ({len(DINERS) - len(kept)} of the {len(DINERS)} it frames)" in flags[aspect].reason
        assert op.applied_by is AppliedBy.RENDERER  # still made: a person looks at it


def test_the_most_important_faces_are_kept() -> None:
    # A big face in the middle and two small ones at the far ends: no 4:5 crop holds the big one with
    # either small one, so it keeps the big one; a 1:1 crop can add the small one on the left too.
    faces = {0: (1300.0, 700.0, 400.0, 400.0), 1: (50.0, 800.0, 120.0, 120.0), 2: (2800.0, 800.0, 120.0, 120.0)}
    placed = place_keeping_faces(3000, 2000, 0.8, 0.0, faces)
    assert placed.cut == () and set(placed.left_out) == {1, 2}
    square = place_keeping_faces(3000, 2000, 1.0, 0.0, faces)
    assert square.cut == () and set(square.left_out) in ({1}, {2})
    assert kept_share(placed.box, 0.0, protected_region(faces[0], 3000, 2000)) == pytest.approx(1.0)
    # Among equal faces, the central one wins.
    assert importance((1400, 900, 200, 200), 3000, 2000) > importance((100, 100, 200, 200), 3000, 2000)


def test_small_faces_count_for_framing_and_tiny_ones_do_not() -> None:
    short = 2000
    small = _face((2600, 900, 0.06 * short, 0.06 * short), too_small=True)  # too small to retouch: still framed
    tiny = _face((100, 900, 0.03 * short, 0.03 * short))
    record = _record(3000, 2000, [small, tiny])
    assert set(framing_faces(record)) == {0}
    assert FRAMING_MIN_FACE_FRACTION == 0.04
    ops = plan_image(record, load_chart("corporate_portrait").chart)  # face-aware 4:5 and 1:1
    for op in _crops(ops).values():
        assert kept_share(tuple(op.params["box"]), 0.0, protected_region((2600, 900, 120, 120), 3000, 2000)) == 1.0


def test_headroom_above_a_face_at_the_top_is_kept() -> None:
    # A face near the top of a landscape frame (the astronaut's edge twin): a 1:1 crop keeps her head and the
    # headroom above it, not just the brow-to-chin box.
    face = (1400.0, 150.0, 300.0, 350.0)
    record = _record(3000, 1600, [_face(face)])
    op = _crops(plan_image(record, load_chart("corporate_portrait").chart))["1:1"]
    x, y, w, h = op.params["box"]
    assert y <= 150 - 0.3 * 350 + 1e-6 or y == 0.0
    assert x <= 1400 - 15 and x + w >= 1715


def test_a_group_that_fits_is_kept_whole_without_a_flag() -> None:
    faces = [_face((1000 + 250 * k, 800, 200, 200)) for k in range(3)]
    ops = plan_image(_record(3000, 2000, faces), load_chart("corporate_portrait").chart)
    assert not _crop_flags(ops)
    for op in _crops(ops).values():
        assert all(s == pytest.approx(1.0) for s in
                   _shares(op, {i: (f.x, f.y, f.width, f.height) for i, f in enumerate(faces)}, 3000, 2000).values())
        assert "all 3 face(s) whole" in op.reason


def test_a_face_wider_than_the_crop_is_cut_and_flagged() -> None:
    ops = plan_image(_record(3000, 1000, [_face((200, 100, 2600, 800))]), load_chart("social_media").chart)
    flags = _crop_flags(ops)
    assert set(flags) == {"4:5", "1:1", "9:16"} and all(f.params["faces_cut"] == [0] for f in flags.values())


def test_a_crop_edge_keeps_clear_of_a_tightly_boxed_face_where_the_frame_has_room() -> None:
    # A PASCAL VOC group (2007_007763, 411 x 374) cropped so its leftmost face is at the frame's edge: dlib's
    # box for that face is (5, 198, 37, 37), the detector's (11, 191, 30, 39). A 1:1 crop may start anywhere
    # from x = 0 to about 8 and keep every detected face; at 7 it cut 6 % of the drawn face. Where the frame
    # has room, the edge stands clear of the wider region a drawn face may reach.
    detected = {0: (11.0, 191.0, 30.0, 39.0), 1: (76.0, 116.0, 26.0, 34.0), 2: (95.0, 212.0, 30.0, 39.0),
                3: (112.0, 91.0, 29.0, 38.0), 4: (212.0, 79.0, 35.0, 46.0), 5: (233.0, 230.0, 37.0, 50.0),
                6: (305.0, 84.0, 42.0, 54.0)}
    boxes = list(detected.values())
    placed = place_keeping_faces(411, 374, 1.0, 0.0, detected, faces_centroid(boxes), faces_region(boxes, 411, 374))
    assert placed.cut == () and placed.left_out == ()
    assert placed.box[0] <= 11.0 - CLEAR_SIDES * 30.0 + 0.5
    assert kept_share(placed.box, 0.0, (5.0, 198.0 - 0.25 * 37.0, 37.0, 37.0 * 1.25)) == pytest.approx(1.0)


def test_keeping_clear_never_costs_a_face() -> None:
    # No room for the wider region: the edges still keep every face whole, as without it.
    faces = {0: (20.0, 100.0, 100.0, 100.0), 1: (880.0, 100.0, 100.0, 100.0)}
    placed = place_keeping_faces(1000, 1000, 1.0, 0.0, faces)
    assert placed.cut == () and placed.left_out == ()


def test_turned_crops_fit_and_keep_faces() -> None:
    faces = {0: (2300.0, 600.0, 300.0, 300.0)}
    for aspect in (0.8, 1.0, 16 / 9):
        placed = place_keeping_faces(3000, 2000, aspect, 1.5, faces)
        assert fits(placed.box, 1.5, 3000, 2000, eps=1e-6)
        assert placed.cut == () and placed.left_out == ()


def test_a_turned_crop_does_not_cut_a_face_whose_headroom_the_frame_already_cuts() -> None:
    # deepface's img53, a 1100 x 825 press photo straightened -0.41 deg: the face's box starts 80 px under the top,
    # less than its headroom, so its protected region meets the frame's top edge. A turned crop meets that edge at a
    # corner only and lost 2 px of hair there: "no 4:5 crop holds every face whole: it cuts face(s) 1". What the turn
    # alone must lose at a frame edge is not a cut; the face's box itself still is.
    faces = {0: (443.0, 80.0, 266.0, 350.0)}
    for aspect in (0.8, 1.0):
        assert place_keeping_faces(1100, 825, aspect, 0.0, faces).cut == ()
        placed = place_keeping_faces(1100, 825, aspect, -0.41, faces)
        assert fits(placed.box, -0.41, 1100, 825, eps=1e-6)
        assert placed.cut == () and placed.left_out == ()
    # Turned 3 deg, a face touching the top edge itself loses more than the turn's strip: cut, and said so.
    assert place_keeping_faces(1100, 825, 0.8, -3.0, {0: (443.0, 0.0, 266.0, 350.0)}).cut == (0,)


def test_the_accuracy_benchmark_reads_these_flags() -> None:
    from benchmarks.accuracy import postprod_crops

    record = _record(500, 375, [_face(b) for b in DINERS.values()])
    record.operations = plan_image(record, load_chart("social_media").chart)
    assert all(flagged for *_, flagged in postprod_crops(record))


# --- enlargement --------------------------------------------------------------------------------


def _chart_with(name: str, rendition: str, **values) -> Chart:
    doc = load_chart(name).chart.model_dump(mode="json")
    doc["renditions"][rendition] = {**doc["renditions"][rendition], **values}
    return Chart.model_validate(doc)


def test_a_print_that_would_be_enlarged_is_flagged() -> None:
    # 8x10 in at 300 ppi is 2400 x 3000: a 900 x 1200 source gives a 900 x 1125 crop, 2.7x short; a 1200 x 900 one
    # a 1125 x 900 crop, its 8x10 turned to 10x8 (the print chart's crops turn with the picture; 3.3x short before,
    # its 4:5 crop cut upright, 720 x 900).
    for width, height in ((900, 1200), (1200, 900)):
        ops = plan_image(_record(width, height, []), load_chart("print").chart)
        (flag,) = [o for o in ops if o.kind is OperationKind.FLAG and o.params["check"] == "upscale"]
        assert flag.params["rendition"] == "print_8x10" and flag.params["upscale"] == pytest.approx(2.67, abs=0.01)
        assert ("(3000x2400)" in flag.reason) is (width > height)
    # A source big enough is not.
    assert not [o for o in plan_image(_record(6000, 4000, []), load_chart("print").chart) if o.kind is OperationKind.FLAG
                and o.params["check"] == "upscale"]


def test_social_renditions_deliver_smaller_without_a_flag_unless_the_chart_says_flag() -> None:
    small = _record(500, 375, [])
    assert not [o for o in plan_image(small, load_chart("social_media").chart) if o.params.get("check") == "upscale"]
    chart = _chart_with("social_media", "story", beyond_max_upscale="flag", max_upscale=2.0)
    (flag,) = [o for o in plan_image(small, chart) if o.params.get("check") == "upscale"]
    assert flag.params["rendition"] == "story" and flag.params["upscale"] > 2.0
    # A chart key, bounded and described.
    with pytest.raises(ValueError):
        _chart_with("social_media", "story", max_upscale=0.5)


def test_a_rendition_delivered_smaller_says_so_in_its_crops_reason() -> None:
    # A 500 x 375 source: the 9:16 story (1080 x 1920) would need 5x; it is delivered at the crop's own
    # pixels (max_upscale 1.0), and the crop's reason names the size, so it is not done without a word.
    ops = plan_image(_record(500, 375, []), load_chart("social_media").chart)
    story = _crops(ops)["9:16"]
    assert "story delivered at 211x375, not 1080x1920" in story.reason
    from charts.schema import Rendition
    from pipeline.imaging.render import rendition_size

    assert rendition_size(Rendition(crop="9:16", width_px=1080, height_px=1920), tuple(story.params["box"])) \
        == (211, 375)


def test_a_crop_placed_on_a_subject_holds_a_person_it_keeps_by_the_shoulders() -> None:
    """mmpose's MPII frame 051423444 (1280 x 720): a truck on the left, the salient subject, a man pointing at it on
    the right, his face 37 px wide (5 % of the short side: it counts). Placed on the truck, the 4:5 crop kept his face
    with 10 px to spare and sliced his shoulder and back; it now stops where a person's shoulders do."""
    face = {0: (968.0, 209.0, 37.0, 61.0)}
    before = place_keeping_faces(1280, 720, 0.8, 0.0, face, focus=(400.0, 360.0))
    x, _, w, _ = before.box
    assert before.cut == () and before.left_out == ()
    px, _, pw, _ = person_region(face[0], 1280, 720)
    assert x + w >= px + pw  # his shoulders are in the crop
    assert px + pw - (968.0 + 37.0) == pytest.approx(0.9 * 37.0)
    # A person the crop leaves out is left out whole where it can be: no ear and shoulder at the crop's edge. Two
    # people a square of a 3:2 frame cannot both hold, the larger kept; the other's shoulders stay out of it.
    pair = {0: (300.0, 400.0, 300.0, 400.0), 1: (2300.0, 500.0, 200.0, 260.0)}
    placed = place_keeping_faces(3000, 1500, 1.0, 0.0, pair, focus=(1500.0, 750.0))
    assert placed.left_out == (1,) and placed.cut == ()
    assert placed.box[0] + placed.box[2] <= person_region(pair[1], 3000, 1500)[0] + 0.5


def _chart_with_crops(*crops: dict) -> Chart:
    doc = load_chart("base").chart.model_dump(mode="json")
    doc["crops"] = list(crops)
    return Chart.model_validate(doc)


@pytest.mark.parametrize(("width", "height"), [(2000, 3000), (3000, 2000)])
def test_a_crop_that_follows_the_picture_is_turned_to_its_orientation(width: int, height: int) -> None:
    # A bathroom shot upright (houses 23 of emanhamed/Houses-dataset) was cut to a 3:2 landscape strip, its toilet
    # and basin halved; under ``orientation: source`` its 3:2 crop is 2:3, the whole room.
    chart = _chart_with_crops({"aspect": "3:2", "placement": "center", "orientation": "source"},
                              {"aspect": "4:5", "placement": "center"})
    crops = _crops(plan_image(_record(width, height, []), chart))
    x, y, w, h = crops["3:2"].params["box"]
    upright = height > width
    assert w / h == pytest.approx(2 / 3 if upright else 3 / 2, rel=0.01)
    assert bool(crops["3:2"].params.get("aspect_turned")) is upright
    assert ("turned to the picture's upright orientation (2:3)" in crops["3:2"].reason) is upright
    # The whole short side is kept: the largest crop of the turned aspect.
    assert (w if upright else h) == pytest.approx(min(width, height), rel=0.01)
    # A crop left fixed keeps its aspect whatever the picture.
    x, y, w, h = crops["4:5"].params["box"]
    assert w / h == pytest.approx(4 / 5, rel=0.01) and not crops["4:5"].params.get("aspect_turned")
    # Which of the two a reviewer may turn the other way round (pipeline/review/store.py): the one that follows.
    assert crops["3:2"].params["orientation"] == "source" and "orientation" not in crops["4:5"].params


def test_a_turned_crop_keeps_the_faces_whole_too() -> None:
    # A portrait-orientation source with two faces: the 16:9 crop turned to 9:16 holds both, as a fixed 16:9 cannot.
    faces = {0: (900, 400, 300, 300), 1: (900, 2200, 300, 300)}
    record = _record(2000, 3000, [_face(b) for b in faces.values()])
    turned = _chart_with_crops({"aspect": "16:9", "placement": "face_aware", "orientation": "source"})
    fixed = _chart_with_crops({"aspect": "16:9", "placement": "face_aware"})
    ops = plan_image(record, turned)
    assert all(s >= 0.99 for s in _shares(_crops(ops)["16:9"], faces, 2000, 3000).values())
    assert "16:9" not in _crop_flags(ops)
    assert "16:9" in _crop_flags(plan_image(record, fixed))


def test_a_box_rendition_of_a_turned_crop_is_judged_turned() -> None:
    # An 8x10 print (2400x3000) of a 4:5 crop turned to a 3000x2000 landscape picture: the crop is 2500x2000, and
    # the box turned (3000x2400) enlarges it 1.2x, beyond a max_upscale of 1.
    doc = load_chart("base").chart.model_dump(mode="json")
    doc["crops"] = [{"aspect": "4:5", "placement": "center", "orientation": "source"}]
    doc["renditions"] = {"print_8x10": {"crop": "4:5", "width_px": 2400, "height_px": 3000, "format": "jpeg"}}
    ops = plan_image(_record(3000, 2000, []), Chart.model_validate(doc))
    crop = _crops(ops)["4:5"]
    assert crop.params["aspect_turned"] and crop.params["box"][2:] == pytest.approx([2500, 2000], abs=1)
    assert "print_8x10 delivered at 2500x2000, not 3000x2400" in crop.reason



def test_a_box_the_plan_did_not_place_is_judged_as_the_plans_are() -> None:
    # The review's crop editor judges a reviewer's box with faces_a_box_cuts: on the plan's own crops of the dinner
    # it finds what the plan's flags say (the diners left out, none cut); a box moved onto a diner's head cuts him.
    record = _record(500, 375, [_face(b) for b in DINERS.values()])
    ops = plan_image(record, load_chart("social_media").chart)
    crops, flags = _crops(ops), _crop_flags(ops)
    for aspect, op in crops.items():
        judged = faces_a_box_cuts(tuple(op.params["box"]), op.params["angle_deg"], DINERS, 500, 375)
        assert judged.cut == () and list(judged.left_out) == flags[aspect].params["faces_left_out"], aspect
    x, y, w, h = DINERS[1]  # 122, 134: a 37 px face
    through = (x + w / 2, 0.0, 200.0, 250.0)  # the left edge down the middle of his face
    assert 1 in faces_a_box_cuts(through, 0.0, DINERS, 500, 375).cut
    above = (0.0, 0.0, 500.0, y + h / 2)  # its bottom edge across his face
    assert 1 in faces_a_box_cuts(above, 0.0, DINERS, 500, 375).cut
    below = (0.0, y + 5, 500.0, 200.0)  # the headroom above his face cut off
    assert 1 in faces_a_box_cuts(below, 0.0, DINERS, 500, 375).cut
    whole = (0.0, 0.0, 500.0, 375.0)
    assert faces_a_box_cuts(whole, 0.0, DINERS, 500, 375).cut == ()


def _reviewed(record: ImageRecord, aspect: str, **review) -> Operation:
    (op,) = [o for o in record.operations if o.kind is OperationKind.CROP and o.params["aspect"] == aspect]
    op.review = {"status": "accepted", **review}
    op.params = {**op.params, **(review.get("params") or {})}
    return op


def test_a_reviewers_crop_is_flagged_for_the_faces_it_cuts_and_no_longer_for_those_it_holds() -> None:
    # The plan's 4:5 crop of the dinner leaves diners out, and its flag says so. A reviewer who moves it onto a
    # diner's head gets that cut named (the plan's flag said nothing of it), the flag's own decision kept; a 1:1 box
    # moved over the table's middle is flagged for the diners it now leaves out, not those the plan's left out.
    chart = load_chart("social_media").chart
    record = _record(500, 375, [_face(b) for b in DINERS.values()])
    record.operations = plan_image(record, chart)
    planned = _crop_flags(record.operations)["4:5"]
    planned.review = {"status": "done", "by": "ana"}
    x, y, w, h = DINERS[1]
    through = [round(x + w / 2, 1), 0.0, 240.0, 300.0]  # its left edge down the middle of diner 2's face
    _reviewed(record, "4:5", params={"box": through})
    assert rejudge_crop_flags(record, chart, {"4:5"})
    flag = _crop_flags(record.operations)["4:5"]
    assert 1 in flag.params["faces_cut"] and flag.params["reviewed"] is True
    assert flag.reason.startswith("the 4:5 crop as a reviewer placed it cuts face(s) 2")
    assert flag.review == {"status": "done", "by": "ana"}  # the same flag, judged again: its decision stays
    assert len([o for o in record.operations if o.op_id == flag.op_id]) == 1
    assert not rejudge_crop_flags(record, chart, {"4:5"})  # judged once, nothing more to change
    # The other crops' flags are the plan's.
    assert "reviewed" not in _crop_flags(record.operations)["1:1"].params
    # The reviewer's frame taken back (the plan's box, no decision): its flag is the plan's again, word for word.
    crop = _crops(record.operations)["4:5"]
    plans_box = _crops(plan_image(_record(500, 375, [_face(b) for b in DINERS.values()]), chart))["4:5"].params["box"]
    crop.review, crop.params = None, {**crop.params, "box": plans_box}
    assert reviewed_crop_flags(record) == {"4:5"}
    assert rejudge_crop_flags(record, chart, reviewed_crop_flags(record))
    again = _crop_flags(record.operations)["4:5"]
    assert (again.reason, again.params) == (planned.reason, planned.params) and reviewed_crop_flags(record) == set()
    _reviewed(record, "4:5", params={"box": through})
    assert rejudge_crop_flags(record, chart, {"4:5"})
    # A 1:1 box over the table's middle: every diner whole or out.
    clear = [150.0, 200.0, 170.0, 170.0]
    _reviewed(record, "1:1", params={"box": clear})
    judged = faces_a_box_cuts(tuple(clear), 0.0, DINERS, 500, 375)
    assert judged.cut == ()
    rejudge_crop_flags(record, chart, {"1:1"})
    flag = _crop_flags(record.operations)["1:1"]
    assert flag.params["faces_left_out"] == list(judged.left_out) and flag.params["reviewed"] is True


def test_a_reviewers_crop_that_holds_every_face_is_not_flagged() -> None:
    # Two faces at either end of a 3:2 frame: no 1:1 crop holds both, and the plan flags its own. A reviewer's box
    # between them cuts both; in a frame wide enough for a box that holds both, the flag goes.
    chart = _chart_with_crops({"aspect": "1:1", "placement": "face_aware"})
    record = _record(1200, 800, [_face((100, 300, 120, 120)), _face((980, 300, 120, 120))])
    record.operations = plan_image(record, chart)
    assert "1:1" in _crop_flags(record.operations)  # an 800 px square holds one face or the other
    _reviewed(record, "1:1", params={"box": [200.0, 0.0, 800.0, 800.0]})  # cuts both
    rejudge_crop_flags(record, chart, {"1:1"})
    assert sorted(_crop_flags(record.operations)["1:1"].params["faces_cut"]) == [0, 1]
    record.frame.width = 2400  # the same faces in a frame wide enough (a reviewer's box can now hold both)
    _reviewed(record, "1:1", params={"box": [0.0, 0.0, 1200.0, 800.0]})
    assert rejudge_crop_flags(record, chart, {"1:1"})
    assert "1:1" not in _crop_flags(record.operations)


def test_a_reviewers_crop_is_judged_again_for_enlargement() -> None:
    # The print chart's 8x10 (2400 x 3000 px) from a 6000 x 4000 source: the plan's crop needs no enlargement. A
    # reviewer's tight 4:5 box of 800 x 1000 px would be enlarged 3x: flagged as the plan flags its own; widened
    # back to 2400 x 3000 px, the flag goes.
    chart = load_chart("print").chart
    record = _record(4000, 6000, [])
    record.operations = plan_image(record, chart)
    assert not [o for o in record.operations if o.params.get("check") == "upscale"]
    (aspect,) = [a for a, op in _crops(record.operations).items() if op.params["aspect"] == "4:5"]
    _reviewed(record, aspect, params={"box": [100.0, 100.0, 800.0, 1000.0]})
    assert rejudge_crop_flags(record, chart, {aspect})
    (flag,) = [o for o in record.operations if o.params.get("check") == "upscale"]
    assert flag.params["rendition"] == "print_8x10" and flag.params["upscale"] == pytest.approx(3.0, abs=0.01)
    assert flag.params["reviewed"] is True
    _reviewed(record, aspect, params={"box": [100.0, 100.0, 2400.0, 3000.0]})
    assert rejudge_crop_flags(record, chart, {aspect})
    assert not [o for o in record.operations if o.params.get("check") == "upscale"]
    # A rejected crop's renditions are cut centred, at the largest 4:5 of the frame: no enlargement either.
    _reviewed(record, aspect, status="rejected")
    assert not rejudge_crop_flags(record, chart, {aspect})


def test_a_rejected_crop_is_judged_as_the_centred_crop_its_renditions_are_cut_to() -> None:
    # Rejected, the dinner's 4:5 crop is still delivered, cut centred (the renderer's fallback): its flag names what
    # that centred box does to the diners, not what the plan's did.
    from pipeline.imaging.geometry import parse_aspect, place_crop

    chart = load_chart("social_media").chart
    record = _record(500, 375, [_face(b) for b in DINERS.values()])
    record.operations = plan_image(record, chart)
    _reviewed(record, "4:5", status="rejected")
    assert rejudge_crop_flags(record, chart, {"4:5"})
    judged = faces_a_box_cuts(place_crop(500, 375, parse_aspect("4:5"), 0.0), 0.0, DINERS, 500, 375)
    assert judged.cut or judged.left_out
    flag = _crop_flags(record.operations)["4:5"]
    assert (flag.params["faces_cut"], flag.params["faces_left_out"]) == (list(judged.cut), list(judged.left_out))
    assert flag.reason.startswith("the 4:5 crop rejected, its renditions cut centred, ")
