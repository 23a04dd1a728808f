"""Faces to brighten on real photos (issue 17), tier 2: flash fall-off is no shadow, a known shadow is.

The dinner (PASCAL VOC 2008_002079) is lit by an on-camera flash: the diners
further from it are smaller and darker by the inverse square of their
distance, and none of them is in a shadow. The other photos get a shadow of a
known depth the way the accuracy benchmark makes its shadow twins
(:func:`benchmarks.accuracy_corpus.shadow_mask`): Roland Tanglao's three
faces (a face the benchmark leaves lit, and his palest face, each as a JPEG and
as a DNG twin of its scene light), the astronaut's lone face (no neighbour to compare with), and
2008_001009's girl behind (the review tests' 0.6 EV shadow). Faces are found
by the real detector; the amounts are checked against the injected depth.
A tea room seen through a window (WB_sRGB's example, as published) has a face
darker than its peer by the light of the room, not by a shadow of its own:
a check for a person, not a lift.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from group_shoot import SHADOW_EV, SHADOWED, SHADOWED_FACE, shadowed_photo
from PIL import Image

from benchmarks.accuracy import analysis_graph, match_faces
from benchmarks.accuracy_corpus import (
    EYE_DRAWN_FACES,
    WORK_LONG_EDGE,
    _package_file,
    centre_darkening_ev,
    film_curve_inverse,
    load_photo,
    pascal_voc_boxes,
    save_jpeg,
    shadow_mask,
    srgb8_to_linear,
    to_srgb8,
    write_dng,
)
from pipeline.kernel.records import ImageRecord, OperationKind
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.planning.rules.faces import KEY_FACES_BAND_EV

ROLAND = "Roland Tanglao-CC BY 2.0"
#: Roland Tanglao's middle face (the benchmark shadows the outer two) and the astronaut's, and their depths.
ROLAND_FACE, ROLAND_EV = 1, 1.0
#: Roland Tanglao's palest face (the woman on the right: her skin's log2 R/G is 0.1-0.4 under the
#: others'), and a depth at which a shadow on her was lifted 0.3-0.4 EV short while the skin
#: allowance only ever excused a face.
ROLAND_PALE_FACE, ROLAND_PALE_EV = 2, 1.2
#: A shadow on her shallow enough that in the DNG twin her face still reads among the brightest
#: (within the exposure rule's key band): she was compared with a key that held her own reading.
ROLAND_KEY_EV = 0.8
ASTRONAUT_EV = 1.2
#: A shadow deep enough that her bright face (0.9 EV over a well-exposed one, lit) reads clearly under one.
ASTRONAUT_DEEP_EV = 2.0
#: Three people in a lamp-lit tea room seen through a window (WB_sRGB's example, as published): the
#: woman on the left (face 0) reads about 1 EV under the child by the lamp, the only face in the key
#: light, and was lifted 1.05 EV; against her own surroundings she is no darker than the child is.
TEA_ROOM = "Flickr_Rhett_Sutphin_CC_BY_2.0__"
TEA_ROOM_FACES = ((846, 160, 108, 181), (1385, 438, 72, 91), (1550, 155, 143, 197))


def _shadow_twins(photo: np.ndarray, box: tuple[float, ...], depth: float, jpg: Path, dng: Path | None) -> float:
    """Write the photo with a ``depth`` EV shadow over ``box`` (JPEG, and DNG twin); the centre's darkening."""
    mask = shadow_mask(photo.shape[:2], [box])
    factor = (2.0 ** (-depth * mask.astype(np.float64)))[..., None]
    display = srgb8_to_linear(photo)
    save_jpeg(jpg, to_srgb8(display * factor))
    if dng is not None:
        write_dng(dng, film_curve_inverse(display) * factor)
    return centre_darkening_ev(mask, depth, box)


def _boxes(path: Path, boxes: tuple[tuple[float, ...], ...]) -> list[tuple[float, ...]]:
    with Image.open(path) as im:
        scale = min(1.0, WORK_LONG_EDGE / max(im.size))
    return [tuple(v * scale for v in b) for b in boxes]


@pytest.fixture(scope="module")
def planned(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, ImageRecord], dict]:
    work = tmp_path_factory.mktemp("face_lifts")
    shoot = work / "shoot"
    shoot.mkdir()
    voc = testdata / "faces" / "pascal_voc"
    (shoot / "dinner.jpg").write_bytes((voc / "2008_002079.jpg").read_bytes())
    truth: dict[str, list[tuple[tuple[float, ...], float]]] = {}
    box = pascal_voc_boxes(voc / "boxes.xml")[SHADOWED][SHADOWED_FACE]
    shadowed_photo(voc / SHADOWED, shoot / "girl_behind.jpg", box, SHADOW_EV)
    truth["girl_behind.jpg"] = [(box, SHADOW_EV)]
    src = testdata / "exposure" / f"{ROLAND}.jpg"
    faces = _boxes(src, EYE_DRAWN_FACES[f"exposure/{ROLAND}"])
    photo = load_photo(src)
    depth = _shadow_twins(photo, faces[ROLAND_FACE], ROLAND_EV, shoot / "roland.jpg", shoot / "roland.dng")
    truth["roland.jpg"] = truth["roland.dng"] = [(f, depth if k == ROLAND_FACE else 0.0) for k, f in enumerate(faces)]
    depth = _shadow_twins(photo, faces[ROLAND_PALE_FACE], ROLAND_PALE_EV, shoot / "roland_pale.jpg",
                          shoot / "roland_pale.dng")
    truth["roland_pale.jpg"] = truth["roland_pale.dng"] = [
        (f, depth if k == ROLAND_PALE_FACE else 0.0) for k, f in enumerate(faces)]
    # (its JPEG twin reads her further down, out of the band: it stays out of the shoot)
    depth = _shadow_twins(photo, faces[ROLAND_PALE_FACE], ROLAND_KEY_EV, work / "roland_key.jpg",
                          shoot / "roland_key.dng")
    truth["roland_key.dng"] = [(f, depth if k == ROLAND_PALE_FACE else 0.0) for k, f in enumerate(faces)]
    (shoot / "tea_room.jpg").write_bytes((testdata / "wb" / f"{TEA_ROOM}.jpg").read_bytes())
    truth["tea_room.jpg"] = [(box, 0.0) for box in TEA_ROOM_FACES]
    src = _package_file("skimage", "data/astronaut.png")
    if src is None:
        pytest.fail("scikit-image's astronaut sample is missing (pip install scikit-image)")
    save_jpeg(shoot / "astronaut_lit.jpg", load_photo(src))
    (face,) = _boxes(src, EYE_DRAWN_FACES["skimage/astronaut"])
    depth = _shadow_twins(load_photo(src), face, ASTRONAUT_EV, shoot / "astronaut.jpg", None)
    truth["astronaut.jpg"] = [(face, depth)]
    depth = _shadow_twins(load_photo(src), face, ASTRONAUT_DEEP_EV, shoot / "astronaut_deep.jpg", None)
    truth["astronaut_deep.jpg"] = [(face, depth)]
    truth["astronaut_lit.jpg"] = [(face, 0.0)]
    result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=work / "out", executor="local",
                                       graph_path=analysis_graph(work / "graph.yaml"), chart="base",
                                       raw_jpeg_pairs="both"))  # each photo's JPEG and its DNG twin
    return {r.source_path: r for r in result.records}, truth


def _lifts(record: ImageRecord) -> dict[int, float]:
    return {int(o.params["face_index"]): float(o.params["ev"]) for o in record.operations
            if o.kind is OperationKind.BRIGHTEN_FACE}


def _matched(record: ImageRecord, truth: list[tuple[tuple[float, ...], float]]) -> list[tuple[float, float | None]]:
    """(true depth, planned lift or None) for each truth face; a face the detector missed fails."""
    lifts = _lifts(record)
    det = [([f.x, f.y, f.width, f.height], None) for f in record.faces]
    match = match_faces([{"box": list(b)} for b, _ in truth], det)
    assert None not in match, (record.source_path, match)
    return [(depth, lifts.get(j)) for (_, depth), j in zip(truth, match)]  # type: ignore[arg-type]


def test_flash_fall_off_at_the_dinner_is_not_lifted(planned: tuple[dict[str, ImageRecord], dict]) -> None:
    records, _ = planned
    dinner = records["dinner.jpg"]
    assert len(dinner.faces) >= 5  # the detector finds the diners, far and near
    # Faces 3 and 4 (the couple at the back, 0.7-0.8 EV darker than the nearest diner) were lifted.
    assert _lifts(dinner) == {}, [o.reason for o in dinner.operations if o.kind is OperationKind.BRIGHTEN_FACE]


#: A shadow on a face paler than its neighbours is read short by the skins' difference while colour only
#: ever excuses a face (SKIN_REDNESS_EV one-way): her 1.2 EV shadow is lifted about 0.8. Both ways found it
#: at its depth but lifted more lit faces on the accuracy benchmark's held-out split (6 -> 14 of 86).
_PALE_SHORT = pytest.mark.xfail(strict=True, reason="one-way skin allowance reads a shadow on a paler face short")


@pytest.mark.parametrize("name", ["roland.jpg", "roland.dng", pytest.param("roland_pale.jpg", marks=_PALE_SHORT),
                                  pytest.param("roland_pale.dng", marks=_PALE_SHORT)])
def test_a_shadow_on_one_face_of_a_group_is_found_with_its_depth(
        planned: tuple[dict[str, ImageRecord], dict], name: str) -> None:
    records, truth = planned
    for depth, lift in _matched(records[name], truth[name]):
        if depth >= 0.5:
            assert lift is not None and lift == pytest.approx(depth, abs=0.3), (name, depth, lift)
        else:
            assert lift is None, (name, depth, lift)


@_PALE_SHORT
def test_a_shadowed_face_still_among_the_brightest_is_compared_with_the_others(
        planned: tuple[dict[str, ImageRecord], dict]) -> None:
    records, truth = planned
    record = records["roland_key.dng"]
    (key_face,) = [j for j, f in enumerate(record.faces)
                   if match_faces([{"box": list(truth["roland_key.dng"][ROLAND_PALE_FACE][0])}],
                                  [([f.x, f.y, f.width, f.height], None)]) == [0]]
    # Her reading is within the key band of the brightest face: she keys the exposure with the others ...
    brightest = max(f.exposure_ev for f in record.faces if f.exposure_ev is not None)
    assert record.faces[key_face].exposure_ev >= brightest - KEY_FACES_BAND_EV
    # ... and her shadow is still found at its depth (it was not: her own reading was in her reference).
    for depth, lift in _matched(record, truth["roland_key.dng"]):
        if depth >= 0.5:
            assert lift is not None and lift == pytest.approx(depth, abs=0.3), (depth, lift)
        else:
            assert lift is None, (depth, lift)


def test_the_review_shoots_shadowed_face_keeps_its_lift(planned: tuple[dict[str, ImageRecord], dict]) -> None:
    records, truth = planned
    # Two faces cannot show a flash's fall-off: the girl behind, 0.6 EV in a shadow and further from
    # the flash than the woman in front, is lifted by both (0.93 EV today), which the review tests need.
    ((depth, lift),) = _matched(records["girl_behind.jpg"], truth["girl_behind.jpg"])
    assert lift is not None and lift >= depth


def test_a_lone_face_in_a_shadow_is_judged_against_the_light_around_it_and_its_own_level(
        planned: tuple[dict[str, ImageRecord], dict]) -> None:
    records, truth = planned
    # 2 EV down, her face reads clearly under a well-exposed one and far under the light around it: lifted,
    # by the smaller reading (to a well-exposed face's level, not back to her bright one).
    ((depth, lift),) = _matched(records["astronaut_deep.jpg"], truth["astronaut_deep.jpg"])
    assert lift is not None and 0.6 < lift <= depth
    # 1.2 EV down her bright face still reads like a lit face: the light around it alone says shadow, as a
    # white backdrop beside a lit face does. Not lifted; a person is asked to check.
    record = records["astronaut.jpg"]
    ((_, lift),) = _matched(record, truth["astronaut.jpg"])
    assert lift is None
    (check,) = [o for o in record.operations if o.params.get("check") == "face_shadow"]
    assert check.params["ev"] > 0.6 and "a bright backdrop rather than a shadow" in check.reason
    ((_, lit_lift),) = _matched(records["astronaut_lit.jpg"], truth["astronaut_lit.jpg"])
    assert lit_lift is None
    assert not [o for o in records["astronaut_lit.jpg"].operations if o.params.get("check") == "face_shadow"]
    # The lift removes the shadow: the frame is not brightened for it as well (keyed on the face as lifted).
    def exposure(r: ImageRecord) -> float:
        return sum(float(o.params["ev"]) for o in r.operations if o.kind is OperationKind.EXPOSURE)
    assert exposure(records["astronaut_deep.jpg"]) <= exposure(records["astronaut_lit.jpg"]) + 0.3


def test_a_face_behind_glasses_is_judged_on_the_skin_under_its_eyes(
        planned: tuple[dict[str, ImageRecord], dict]) -> None:
    """The tea room's woman wears glasses: the centre of her box (eyes, frames, fringe) reads 1.0 EV under the child
    beside her, her cheeks a third of that. Neither lifted nor sent to a check (she was a face_shadow check before the
    skin under the eyes was read); her neighbour in the same dim corner stays a lift."""
    records, truth = planned
    record = records["tea_room.jpg"]
    (woman, _, _) = _matched(record, truth["tea_room.jpg"])
    assert woman[1] is None, [o.reason for o in record.operations]
    det = [([f.x, f.y, f.width, f.height], None) for f in record.faces]
    (j,) = match_faces([{"box": list(TEA_ROOM_FACES[0])}], det)
    (child,) = match_faces([{"box": list(TEA_ROOM_FACES[1])}], det)
    her, its = record.faces[j], record.faces[child]
    assert its.exposure_ev - her.exposure_ev > 0.6  # the centres: further apart than the chart's threshold
    assert its.skin_ev - her.skin_ev < 0.6  # the skin under the eyes: within it
    assert not [o for o in record.operations if o.params.get("face_index") == j], [o.reason for o in record.operations]
