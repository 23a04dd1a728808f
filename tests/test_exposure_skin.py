"""A darkening stops where it would turn a face's skin grey (plan_exposure, :func:`darkening_skin_keeps`).

Tier 1: the rule on records (a rendered source darkened in its scene light, as the renderer does it);
tier 2: the shared data's Flickr uploads with people, through the real detector, meter and plan.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.accuracy import analysis_graph
from charts.loader import load_chart
from pipeline.imaging.measure.metering import balanced, exposed
from pipeline.kernel.records import Face, ImageRecord, OperationKind, SourceKind
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.planning.plan import plan_shoot
from pipeline.planning.rules.exposure import darkening_skin_keeps
from pipeline.planning.rules.white_balance import is_skin

BASE = load_chart("base").chart
#: A pale face in a bright picture: display-linear, about sRGB (207, 185, 171), CIELAB chroma 11.7.
PALE_SKIN = [0.62, 0.48, 0.40]
#: A face washed out by a picture developed over (the FiveK couple's chroma of 4-5).
WASHED_OUT = [0.80, 0.77, 0.75]


def _record(meter_ev: float, skin: list[float], kind: SourceKind = SourceKind.RASTER) -> ImageRecord:
    row = dict(source_path="a.jpg", content_hash="0" * 64, file_size=1, format="jpeg", source_kind=kind,
               width=3000, height=2000, exposure_ev=0.0, exposure_meter_ev=meter_ev, sharpness=100.0, lines_found=0,
               phash="0" * 16, clipped_highlights_pct=10.0, clipped_shadows_pct_r=0.0,
               clipped_shadows_pct_g=0.0, clipped_shadows_pct_b=0.0)
    face = Face(x=1200, y=500, width=500, height=600, score=0.95, landmarks=[0.0] * 10, exposure_ev=meter_ev,
                sharpness=300.0, colour_rgb=skin, clipped_pct=5.0)
    return ImageRecord.from_row(row, faces=[face])


def _planned(record: ImageRecord) -> tuple[float, list]:
    plan_shoot([record], BASE)
    ev = sum(float(o.params["ev"]) for o in record.operations if o.kind is OperationKind.EXPOSURE)
    return ev, [o for o in record.operations if o.params.get("check") == "exposure_skin"]


def test_the_share_kept_is_the_largest_that_keeps_the_skin() -> None:
    record = _record(1.6, PALE_SKIN)
    assert is_skin(np.asarray(PALE_SKIN)) and not is_skin(exposed(np.asarray(PALE_SKIN), -1.6, True))
    kept, greyed = darkening_skin_keeps(record, (1.0, 1.0, 1.0), -1.6)
    assert greyed == (0,) and -1.6 < kept < 0.0
    assert is_skin(exposed(np.asarray(PALE_SKIN), kept, True))
    # One step further (the white balance's shares, a tenth of the darkening) greys it.
    assert not is_skin(exposed(np.asarray(PALE_SKIN), kept - 0.16, True))
    # Nothing to keep: a brightening, a face already grey as shot, a black and white picture.
    assert darkening_skin_keeps(record, (1.0, 1.0, 1.0), 1.0) == (1.0, ())
    assert darkening_skin_keeps(_record(1.6, WASHED_OUT), (1.0, 1.0, 1.0), -1.6) == (-1.6, ())
    assert darkening_skin_keeps(_record(1.6, [0.6, 0.6, 0.6]), (1.0, 1.0, 1.0), -1.6) == (-1.6, ())
    # A face the faces rule lifts on its own (in a shadow under the key light) does not hold the darkening.
    assert darkening_skin_keeps(record, (1.0, 1.0, 1.0), -1.6, lifted=(0,)) == (-1.6, ())


def test_the_faces_are_judged_as_the_renderer_balances_them() -> None:
    # A warm face in a warm-cast JPEG, the cast corrected: on the display light (as the renderer balances a
    # rendered source) it is skin, and a darkening of a stop greys it; the scene light's plain product read it
    # as no skin (its blue lifted 35 % at every level), so the darkening was not held for it.
    warm, cooling = np.asarray([0.761, 0.532, 0.357]), (0.75, 1.0, 1.35)
    shown = balanced(warm, cooling, True)
    assert is_skin(shown) and not is_skin(warm * np.asarray(cooling))
    assert not is_skin(exposed(shown, -1.6, True))
    kept, greyed = darkening_skin_keeps(_record(1.6, list(warm)), cooling, -1.6)
    assert greyed == (0,) and -1.6 < kept < 0.0 and is_skin(exposed(shown, kept, True))
    # A RAW's gains are scene light, where the product is what the renderer does.
    raw = _record(1.6, list(warm), SourceKind.RAW)
    assert darkening_skin_keeps(raw, cooling, -1.6) == (-1.6, ())


def test_a_bright_picture_of_pale_skin_is_darkened_only_as_far_as_the_skin_allows() -> None:
    ev, (flag,) = _planned(_record(1.6, PALE_SKIN))
    assert -1.6 < ev < -0.33
    assert flag.params["faces"] == [1] and f"darkened by {abs(ev):.2f} EV only" in flag.reason
    # A picture developed over, its faces washed out: the whole darkening, no flag.
    ev, flags = _planned(_record(1.6, WASHED_OUT))
    assert ev == pytest.approx(-1.6, abs=0.01) and not flags


def test_shared_uploads_keep_their_skin(exposure_dir: Path, tmp_path: Path) -> None:
    # The shared data's Flickr uploads: Justin Chiaratti over-exposed, Probably Okay and Roland Tanglao
    # roughly normal (shared data README). Darkened 1.6-2.0 EV, their faces turned grey-beige.
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    names = ["Justin Chiaratti-CC BY-NC-SA 2.0.jpg", "Probably Okay! (photo4) CC BY-SA 2.0.jpg",
             "Roland Tanglao-CC BY 2.0.jpg"]
    for name in names:
        (shoot / name).write_bytes((exposure_dir / name).read_bytes())
    out = tmp_path / "out"
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, chart="base", executor="local",
                              graph_path=analysis_graph(tmp_path / "graph.yaml")))
    for name in names:
        doc = json.loads((out / "instructions" / f"{name}.json").read_text())
        ev = sum(o["params"]["ev"] for o in doc["operations"] if o["kind"] == "exposure")
        flags = [o for o in doc["operations"] if o["params"].get("check") == "exposure_skin"]
        assert -1.2 <= ev <= -0.5 and len(flags) == 1, (name, ev)
        assert not any(o["params"].get("check") == "skin_exposure" for o in doc["operations"]), name


def test_faces_under_the_key_light_that_no_lift_answers_hold_the_darkening() -> None:
    # mmpose's airport photo (ochuman 000817): keyed on a passer-by's face, the brightest of three, the frame was
    # darkened 0.98 EV; the two walkers' faces, 0.6-1 EV under it but no shadow to the faces rule (their skin
    # explains it), were left out of the skin hold as faces "judged on their own", and greyed. Here the key face
    # is paler than the other two, read 0.62 EV under it: neither lifted nor checked.
    def face(x: int, ev: float, rgb: list[float]) -> Face:
        return Face(x=x, y=500, width=300, height=360, score=0.95, landmarks=[0.0] * 10, exposure_ev=ev,
                    sharpness=300.0, colour_rgb=rgb, clipped_pct=0.0, surround_ev=-1.0)

    def planned(faces: list[Face]) -> ImageRecord:
        record = _record(1.14, PALE_SKIN)
        record.faces = faces
        record.exposure.clipped_highlights_pct = 4.2
        plan_shoot([record], BASE)
        return record

    record = planned([face(200, 0.66, [0.66, 0.55, 0.48]), face(1200, 0.04, PALE_SKIN), face(2000, 0.04, PALE_SKIN)])
    ev, held = _planned_ops(record)
    assert not [o for o in record.operations if o.kind is OperationKind.BRIGHTEN_FACE or o.params.get("check") ==
                "face_shadow"]
    assert -0.98 < ev < 0.0 and held and "face(s) 2, 3" in held[0].reason
    assert is_skin(exposed(np.asarray(PALE_SKIN), ev, True))  # the walkers' skin, kept
    assert not [o for o in record.operations if o.params.get("check") == "skin_exposure"]
    # A face the faces rule does send to a person (0.9 EV under, its surroundings silent) is its to answer: the
    # darkening goes its whole way and the greyed face is told after it.
    record = planned([face(200, 0.66, [0.66, 0.55, 0.48]), face(1200, -0.24, PALE_SKIN)])
    ev, held = _planned_ops(record)
    assert ev == pytest.approx(-0.98, abs=0.01) and not held
    assert [o for o in record.operations if o.params.get("check") == "face_shadow"]


def _planned_ops(record: ImageRecord) -> tuple[float, list]:
    ev = sum(float(o.params["ev"]) for o in record.operations if o.kind is OperationKind.EXPOSURE)
    return ev, [o for o in record.operations if o.params.get("check") == "exposure_skin"]
