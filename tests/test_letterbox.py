"""A picture padded with bars to another aspect (a listing portal's letterbox) is the picture inside them.

MLS listing photos come padded: white bars above and below a 4:3 frame, a credit line ("SIR/MLS, INC.") in the
bottom one (29 of emanhamed/Houses-dataset's 520). Read as a packshot's white backdrop, their 3:2 crops were centred
on the padded frame and flagged, and the exports kept strips of bar with the credit cut in half. The measure reads
the bars (``content.border_bars``), the crops are placed inside them, and the keystone, which would warp the bars
into the crops, is left to a retoucher. Tier 1 pads scikit-image's photos (and checks what is no pad); tier 2 plans.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from planning_inputs import image_record, lines_record
from test_blown_sky import _photo

from benchmarks.accuracy_corpus import srgb8_to_linear
from charts.loader import load_chart
from pipeline.kernel.records import OperationKind
from pipeline.imaging.measure.content import border_bars
from pipeline.planning.plan import plan_image

REAL_ESTATE = load_chart("real_estate_interiors").chart


def _padded(srgb8: np.ndarray, top: int, bottom: int, colour: int = 255, credit: bool = True) -> np.ndarray:
    h, w = srgb8.shape[:2]
    out = np.full((h + top + bottom, w, 3), colour, dtype=np.uint8)
    out[top:top + h] = srgb8
    if credit:  # a credit line in the bottom bar, as the portals print it
        cv2.putText(out, "SIR/MLS, INC.", (w - 160, h + top + bottom - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (90, 90, 90), 1, cv2.LINE_AA)
    return out


@pytest.mark.parametrize(("name", "colour"), [("coffee.png", 255), ("astronaut.png", 0), ("chelsea.png", 255)])
def test_the_bars_of_a_padded_photo_are_read(name: str, colour: int) -> None:
    photo = _photo(name)
    h, w = photo.shape[:2]
    bars = border_bars(srgb8_to_linear(_padded(photo, 30, 24, colour)))
    assert bars is not None
    left, top, right, bottom = bars
    assert left == right == 0.0
    # One row thicker than read: a crop inside may lose a row of picture, never keep one of bar.
    assert top * (h + 54) == pytest.approx(31, abs=1) and bottom * (h + 54) == pytest.approx(25, abs=1)
    assert top * (h + 54) >= 30 and bottom * (h + 54) >= 24
    # Pillarboxed (the photo turned on its side, bars left and right): read as such.
    sideways = np.ascontiguousarray(np.rot90(_padded(photo, 40, 40, colour, credit=False)))
    l2, t2, r2, b2 = border_bars(srgb8_to_linear(sideways))
    assert t2 == b2 == 0.0 and l2 * (h + 80) == pytest.approx(41, abs=1) and r2 == pytest.approx(l2, abs=2 / w)


def test_what_is_no_pad_is_not_read_as_bars() -> None:
    photo = _photo("coffee.png")
    # The photo as it is, its top rows blown to white (a sky past full scale): one edge, no pair.
    blown = photo.copy()
    blown[:40] = 255
    assert border_bars(srgb8_to_linear(photo)) is None and border_bars(srgb8_to_linear(blown)) is None
    # A packshot on a white sweep: the white surrounds the subject, its backdrop, not a pad.
    sweep = np.full((400, 600, 3), 255, dtype=np.uint8)
    sweep[120:300, 200:420] = cv2.resize(photo, (220, 180))
    assert border_bars(srgb8_to_linear(sweep)) is None
    # Bars of two colours are no pad either.
    two = _padded(photo, 30, 30, 255, credit=False)
    two[-30:] = 0
    assert border_bars(srgb8_to_linear(two)) is None


def test_the_crops_are_placed_inside_the_bars() -> None:
    # 3000 x 2250 padded from a 3000 x 1950 picture: 180 px above, 120 below (shares of the height).
    bars = [0.0, 180 / 2250, 0.0, 120 / 2250]
    record = image_record(width=3000, height=2250, border_bars=bars, exposure_backdrop_pct=13.0,
                          exposure_backdrop_rgb=[1.0, 1.0, 1.0], exposure_subject_box=[0.0, 0.07, 1.0, 0.95])
    crops = [o for o in plan_image(record, REAL_ESTATE) if o.kind is OperationKind.CROP]
    assert crops and all("inside the picture's letterbox" in o.reason for o in crops)
    for op in crops:
        x, y, w, h = op.params["box"]
        assert y >= 180 - 0.5 and y + h <= 2250 - 120 + 0.5 and "pad_rgb" not in op.params
    # No flag of a subject the crop cannot hold: the bars are no backdrop.
    flags = [o for o in plan_image(record, REAL_ESTATE) if o.params.get("check") == "crop"]
    assert not flags
    # Without the bars, the same backdrop reading flags the crops as before.
    record.content.border_bars = None
    assert [o for o in plan_image(record, REAL_ESTATE) if o.params.get("check") == "crop"]


def test_a_turned_letterbox_is_cropped_inside_its_picture_and_its_keystone_left() -> None:
    # Converging verticals a real-estate chart undoes: not on a padded picture, whose bars the warp would bring in.
    columns = dict(width=3000, height=2250, verticals_tilt_deg=1.2, verticals_support=3.0, verticals_agreement=0.5,
                   verticals_lines=12, verticals_rival=0.1, verticals_stability=0.95, verticals_convergence=4.0,
                   verticals_convergence_stability=0.95, verticals_one_sided=False)
    plain = plan_image(lines_record(**columns), REAL_ESTATE)
    (turn,) = [o for o in plain if o.kind is OperationKind.STRAIGHTEN]
    assert "keystone" in turn.params
    padded = plan_image(lines_record(border_bars=[0.0, 0.08, 0.0, 0.05], **columns), REAL_ESTATE)
    (turn,) = [o for o in padded if o.kind is OperationKind.STRAIGHTEN]
    assert "keystone" not in turn.params and "padded with bars" in turn.reason
    for op in [o for o in padded if o.kind is OperationKind.CROP]:
        x, y, w, h = op.params["box"]
        assert y >= 0.08 * 2250 - 0.5 and y + h <= 0.95 * 2250 + 0.5
