"""Verticals as the camera's roll (issue 17 item 5): read through their vanishing point, told where the horizon is silent.

Tier 1: converging verticals drawn and turned by a known angle; rule decisions on
readings written into records; and a real photo (scikit-image's cameraman, a
photo of the straightening tuning set, never of the accuracy benchmark's
held-out split) turned as the benchmark turns its photos.
"""

from __future__ import annotations

import io
from dataclasses import asdict

import cv2
import numpy as np
import pytest
from planning_inputs import chart_with, lines_record

from benchmarks.accuracy_corpus import rotate_and_crop
from charts.loader import load_chart
from pipeline.imaging.color import luminance
from pipeline.imaging.decode import decode_proxy
from pipeline.imaging.measure import line_measure, line_tilts
from pipeline.kernel.records import AppliedBy, ImageRecord, OperationKind, SourceKind
from pipeline.planning.plan import plan_image
from pipeline.planning.rules.straighten import (
    CONFLICT_DEG,
    CONFLICT_SUPPORT,
    MIN_SUPPORT_TO_REPORT,
    WITNESS_AGREEMENT,
    WITNESS_LINES,
    WITNESS_RIVAL,
)


# The rule's readings as it tells them (straighten.confirm_turns off): the proposal a told turn becomes is
# tests/test_straighten_proposals.py's.
BASE = chart_with(load_chart("base").chart, "straighten", confirm_turns=False)


def _straighten(record: ImageRecord):  # noqa: ANN202
    return [o for o in plan_image(record, BASE) if o.kind is OperationKind.STRAIGHTEN]


def _keystone(roll_deg: float, size: tuple[int, int] = (900, 1200)) -> np.ndarray:
    """Dark verticals on a light wall, all meeting at a vanishing point 8 frame heights above the
    frame (a camera pitched up), then the whole frame turned ``roll_deg`` counter-clockwise."""
    h, w = size
    img = np.full((h, w), 0.6, np.float32)
    vp = (w / 2.0, -8.0 * h)
    for x in np.linspace(0.08 * w, 0.92 * w, 9):
        top = x + (vp[0] - x) * h / (h - vp[1])  # where the line from (x, h) to the vanishing point meets y = 0
        cv2.line(img, (int(round(x)), h), (int(round(top)), 0), 0.05, 6, cv2.LINE_AA)
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), roll_deg, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("roll", [-2.0, 1.5])
def test_converging_verticals_are_read_at_the_frame_centre(roll: float) -> None:
    t = line_tilts(_keystone(roll))
    # A turn of +roll (counter-clockwise) leans the verticals left at the top: a lean of -roll.
    assert t.verticals_tilt_deg == pytest.approx(-roll, abs=0.2)
    assert t.verticals_lines >= 5  # the fan is gathered as one reading, not its steepest lines


def test_dominant_verticals_are_told_where_the_horizon_says_nothing() -> None:
    (op,) = _straighten(lines_record(horizon_tilt_deg=2.5, horizon_support=0.1, horizon_agreement=0.1,
                                verticals_tilt_deg=-1.3, verticals_support=1.2,
                                verticals_agreement=WITNESS_AGREEMENT + 0.05, verticals_lines=WITNESS_LINES,
                                verticals_rival=WITNESS_RIVAL - 0.1))
    assert op.applied_by is AppliedBy.RETOUCHER and op.params == {"angle_deg": 1.3, "axis": "verticals"}
    assert "check by eye" in op.reason


@pytest.mark.parametrize("weak", [dict(verticals_agreement=WITNESS_AGREEMENT - 0.05),
                                  dict(verticals_rival=WITNESS_RIVAL + 0.1),
                                  dict(verticals_lines=WITNESS_LINES - 1),
                                  dict(verticals_support=MIN_SUPPORT_TO_REPORT - 0.05)])
def test_verticals_that_do_not_dominate_their_family_say_nothing(weak: dict) -> None:
    reading = dict(verticals_tilt_deg=-1.3, verticals_support=1.2, verticals_agreement=WITNESS_AGREEMENT + 0.05,
                   verticals_lines=WITNESS_LINES, verticals_rival=WITNESS_RIVAL - 0.1) | weak
    assert _straighten(lines_record(horizon_tilt_deg=2.5, horizon_support=0.1, horizon_agreement=0.1, **reading)) == []


def test_verticals_contradicted_by_a_horizon_of_some_length_say_nothing() -> None:
    verticals = dict(verticals_tilt_deg=-1.3, verticals_support=1.2, verticals_agreement=0.4, verticals_lines=5,
                     verticals_rival=0.2)
    # The horizon is not worth telling (its lines scatter: 10 % agree), but it is long and reads elsewhere.
    far = 1.3 + CONFLICT_DEG + 0.3
    assert _straighten(lines_record(horizon_tilt_deg=far, horizon_support=CONFLICT_SUPPORT + 0.1,
                               horizon_agreement=0.1, **verticals)) == []
    # The same horizon in agreement, or a short one, leaves the witness its say.
    for horizon in (dict(horizon_tilt_deg=1.3 + CONFLICT_DEG - 0.3, horizon_support=CONFLICT_SUPPORT + 0.1),
                    dict(horizon_tilt_deg=far, horizon_support=CONFLICT_SUPPORT - 0.1)):
        (op,) = _straighten(lines_record(horizon_agreement=0.1, **horizon, **verticals))
        assert op.params["angle_deg"] == pytest.approx(1.3)


def test_a_level_horizon_is_not_overruled_by_verticals() -> None:
    assert _straighten(lines_record(horizon_tilt_deg=0.1, horizon_support=0.1, horizon_agreement=0.1,
                               verticals_tilt_deg=-1.3, verticals_support=1.2, verticals_agreement=0.4,
                               verticals_lines=5, verticals_rival=0.2)) == []


def _cameraman() -> np.ndarray:
    from skimage import data

    grey = data.camera()
    return np.repeat(grey[..., None], 3, axis=2)


def _plan_of(srgb8: np.ndarray, tmp_path) -> list:  # noqa: ANN001
    """The photo through the pipeline's own path: saved as a JPEG, proxy-decoded, lines measured, planned."""
    from PIL import Image

    path = tmp_path / "photo.jpg"
    buf = io.BytesIO()
    Image.fromarray(srgb8).save(buf, "JPEG", quality=95)
    path.write_bytes(buf.getvalue())
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    lines = line_measure(luminance(decoded.rgb))
    record = lines_record(**{k: v for k, v in asdict(lines).items() if k != "lines_found"})
    return [o for o in plan_image(record, BASE) if o.kind is OperationKind.STRAIGHTEN]


@pytest.mark.parametrize("turn", [-3.0, 2.0])
def test_a_turned_real_photo_is_recovered_within_a_third_of_a_degree(turn: float, tmp_path) -> None:  # noqa: ANN001
    # The cameraman's horizon is a few soft edges; his tripod and the buildings behind are upright.
    (op,) = _plan_of(rotate_and_crop(_cameraman(), turn), tmp_path)
    assert op.params["angle_deg"] == pytest.approx(turn, abs=0.3)
    assert op.applied_by is AppliedBy.RETOUCHER  # verticals witness the roll; they never turn the frame


def test_the_real_photo_as_published_is_left_alone(tmp_path) -> None:  # noqa: ANN001
    assert _plan_of(_cameraman(), tmp_path) == []
