"""A straightening reading is told a retoucher only when it is worth telling (issue 17 item 5, rot8).

Tier 1: line readings written into records (the rule's gates, each on both
sides of its bar), and a real photo: the PASCAL group photo 2008_001009 that
the demo shoot sent to a retoucher as "horizon tilted -5.79 deg" (one line
0.3 frame widths long), as it is and turned by the accuracy benchmark's own turns
(:func:`~benchmarks.accuracy_corpus.rotate_and_crop`). The photo lies in the
accuracy benchmark's held-out split: no constant was fitted on it (the gates
were swept on benchmarks/straighten_fit.py's set); it is only checked here.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from planning_inputs import chart_with, face, lines_record

from benchmarks.accuracy_corpus import WORK_LONG_EDGE, load_photo, rotate_and_crop, save_jpeg
from charts.loader import load_chart
from pipeline.imaging.color import luminance
from pipeline.imaging.decode import decode_proxy
from pipeline.imaging.measure import line_measure
from pipeline.kernel.records import AppliedBy, ImageRecord, OperationKind, SourceKind
from pipeline.planning.plan import plan_image
from pipeline.planning.rules.straighten import (
    CONFLICT_DEG,
    CONTRADICT_SUPPORT,
    GAINSAY_DEG,
    MIN_AGREEMENT_TO_REPORT,
    MIN_SUPPORT_TO_REPORT,
    ONE_LINE_STABILITY,
    PORTRAIT_FACE_SHARE,
    PORTRAIT_MIN_SUPPORT,
    SURE_SUPPORT,
    TELL_STABILITY,
    WITNESS_AGREEMENT,
    WITNESS_LINES,
    WITNESS_RIVAL,
    WITNESS_STABILITY,
    WITNESS_SUPPORT,
)


# The rule's readings as it tells them (straighten.confirm_turns off): the proposal a told turn becomes is
# tests/test_straighten_proposals.py's.
BASE = chart_with(load_chart("base").chart, "straighten", confirm_turns=False)
#: A horizon worth telling but not sure (too little line length to turn the frame), rising 1.5 deg to the right.
TOLD = dict(horizon_tilt_deg=1.5, horizon_support=MIN_SUPPORT_TO_REPORT + 0.2, horizon_agreement=MIN_AGREEMENT_TO_REPORT
            + 0.1, horizon_lines=3, horizon_rival=0.4)
assert TOLD["horizon_support"] < SURE_SUPPORT
#: Verticals that witness the roll (they dominate their family, on enough lines, steadily).
WITNESS = dict(verticals_support=WITNESS_SUPPORT + 0.5, verticals_agreement=WITNESS_AGREEMENT + 0.1,
               verticals_lines=WITNESS_LINES + 1, verticals_rival=WITNESS_RIVAL - 0.1,
               verticals_stability=WITNESS_STABILITY + 0.2)


def _straighten(record: ImageRecord):  # noqa: ANN202
    return [o for o in plan_image(record, BASE) if o.kind is OperationKind.STRAIGHTEN]


def test_a_reading_its_resamples_scatter_is_not_told() -> None:
    (op,) = _straighten(lines_record(**TOLD, horizon_stability=TELL_STABILITY + 0.05))
    assert op.applied_by is AppliedBy.RETOUCHER and op.params == {"angle_deg": 1.5, "axis": "horizon"}
    assert not _straighten(lines_record(**TOLD, horizon_stability=TELL_STABILITY - 0.05))


def test_a_reading_on_one_line_needs_most_resamples() -> None:
    stability = ONE_LINE_STABILITY  # enough on several lines, not on one
    assert stability >= TELL_STABILITY
    assert _straighten(lines_record(**TOLD, horizon_stability=stability))
    assert not _straighten(lines_record(**{**TOLD, "horizon_lines": 1}, horizon_stability=stability))
    (op,) = _straighten(lines_record(**{**TOLD, "horizon_lines": 1}, horizon_stability=ONE_LINE_STABILITY + 0.05))
    assert op.params["angle_deg"] == pytest.approx(1.5)


@pytest.mark.parametrize(("apart", "support", "told"), [
    (GAINSAY_DEG + 0.5, CONTRADICT_SUPPORT + 0.1, False),  # the verticals read another roll: nothing told
    (GAINSAY_DEG - 0.5, CONTRADICT_SUPPORT + 0.1, True),  # near enough: the horizon is told
    (GAINSAY_DEG + 0.5, CONTRADICT_SUPPORT - 0.1, True),  # too few verticals to say anything
])
def test_verticals_that_read_another_roll_silence_a_horizon_that_is_only_told(apart: float, support: float,
                                                                              told: bool) -> None:
    # Verticals leaning +x at the top ask for a turn of -x: 1.5 - apart means a lean of apart - 1.5. They do not
    # dominate their family, so they do not witness either.
    record = lines_record(**TOLD, horizon_stability=0.8, verticals_tilt_deg=apart - 1.5, verticals_support=support,
                          verticals_agreement=0.1, verticals_lines=2, verticals_rival=0.9, verticals_stability=0.5)
    ops = _straighten(record)
    assert bool(ops) is told
    if told:
        assert ops[0].params == {"angle_deg": 1.5, "axis": "horizon"}


def test_a_witness_rests_on_half_a_frame_width() -> None:
    silent_horizon = dict(horizon_tilt_deg=2.5, horizon_support=0.1, horizon_agreement=0.1)
    (op,) = _straighten(lines_record(**silent_horizon, verticals_tilt_deg=-1.3, **WITNESS))
    assert op.applied_by is AppliedBy.RETOUCHER and op.params == {"angle_deg": 1.3, "axis": "verticals"}
    assert not _straighten(lines_record(**silent_horizon, verticals_tilt_deg=-1.3,
                                        **{**WITNESS, "verticals_support": WITNESS_SUPPORT - 0.1}))


@pytest.mark.parametrize(("turn", "told"), [(1.5 - CONFLICT_DEG + 0.3, True), (1.5 - CONFLICT_DEG - 1.0, False)])
def test_a_steadier_witness_is_told_instead_of_a_horizon_only_when_they_agree(turn: float, told: bool) -> None:
    # The horizon is worth telling but less steady than the verticals: the witness is told in its place, unless the
    # two read directions more than CONFLICT_DEG apart (then they contradict each other and neither is told). Both
    # turns are beyond the chart's tolerance.
    assert abs(turn) >= BASE.straighten.tolerance_deg
    record = lines_record(**TOLD, horizon_stability=0.6, verticals_tilt_deg=-turn, **WITNESS)
    ops = _straighten(record)
    assert bool(ops) is told
    if told:
        assert ops[0].params == {"angle_deg": pytest.approx(turn), "axis": "verticals"}


def _portrait(record: ImageRecord, share: float = PORTRAIT_FACE_SHARE + 0.05) -> ImageRecord:
    """``record`` with one face ``share`` of its short edge tall (a person fills the frame at
    :data:`PORTRAIT_FACE_SHARE`)."""
    short = min(record.frame.width, record.frame.height)
    record.faces = [face(1200.0, 300.0, share * short, 0.0)]
    return record


def test_a_weak_reading_in_a_frame_a_person_fills_is_not_told() -> None:
    # A press headshot (deepface's samples, published level) was told "horizon tilted +4.38 deg (0.3 frame widths of
    # lines agree on 2 lines)": a collar and a shoulder. Where a face is a fifth of the short edge tall, a reading not
    # sure is told only on PORTRAIT_MIN_SUPPORT; a smaller face leaves the bar where it was.
    assert TOLD["horizon_support"] < PORTRAIT_MIN_SUPPORT
    assert not _straighten(_portrait(lines_record(**TOLD)))
    (op,) = _straighten(_portrait(lines_record(**TOLD), share=PORTRAIT_FACE_SHARE - 0.05))
    assert op.applied_by is AppliedBy.RETOUCHER and op.params == {"angle_deg": 1.5, "axis": "horizon"}
    (op,) = _straighten(_portrait(lines_record(**{**TOLD, "horizon_support": PORTRAIT_MIN_SUPPORT + 0.05})))
    assert op.applied_by is AppliedBy.RETOUCHER and op.params == {"angle_deg": 1.5, "axis": "horizon"}


def test_a_sure_reading_in_a_portrait_is_still_applied() -> None:
    sure = dict(horizon_tilt_deg=1.5, horizon_support=SURE_SUPPORT + 0.5, horizon_agreement=0.5, horizon_lines=4,
                horizon_rival=0.2, horizon_stability=0.9)
    (op,) = _straighten(_portrait(lines_record(**sure)))
    assert op.applied_by is AppliedBy.RENDERER and op.params == {"angle_deg": 1.5, "axis": "horizon"}


def test_a_witness_in_a_frame_a_person_fills_rests_on_more_lines() -> None:
    silent_horizon = dict(horizon_tilt_deg=2.5, horizon_support=0.1, horizon_agreement=0.1)
    short_witness = {**WITNESS, "verticals_support": PORTRAIT_MIN_SUPPORT - 0.2}
    assert short_witness["verticals_support"] >= WITNESS_SUPPORT
    assert _straighten(lines_record(**silent_horizon, verticals_tilt_deg=-1.3, **short_witness))
    assert not _straighten(_portrait(lines_record(**silent_horizon, verticals_tilt_deg=-1.3, **short_witness)))
    long_witness = {**WITNESS, "verticals_support": PORTRAIT_MIN_SUPPORT + 0.2}
    (op,) = _straighten(_portrait(lines_record(**silent_horizon, verticals_tilt_deg=-1.3, **long_witness)))
    assert op.params == {"angle_deg": 1.3, "axis": "verticals"}


def test_a_steadier_witness_silenced_in_a_portrait_does_not_let_the_horizon_through() -> None:
    # The witness outweighs a less steady horizon; in a portrait it may be too short to be told, and then nothing is
    # told (not the horizon it outweighed, which rests on less still).
    short_witness = {**WITNESS, "verticals_support": PORTRAIT_MIN_SUPPORT - 0.2}
    record = lines_record(**TOLD, horizon_stability=0.6, verticals_tilt_deg=-1.2, **short_witness)
    assert _straighten(record)
    assert not _straighten(_portrait(lines_record(**TOLD, horizon_stability=0.6, verticals_tilt_deg=-1.2,
                                                  **short_witness)))


def test_straighten_fit_replans_a_row_with_its_largest_face() -> None:
    # benchmarks/straighten_fit.py keeps each turned file's largest face as a share of its short edge and puts it
    # back when it replans the rows under other gates (--fit): the portrait gate reads it there too.
    from benchmarks.straighten_fit import Row, replan

    lines = {k: None for k in asdict(line_measure(np.zeros((64, 96), np.float32)))}
    lines.update(TOLD, lines_found=30)
    row = Row("photos/a", "other", 1.5, None, False, lines, 0.0)
    (told,) = replan([row])
    assert told.angle_deg == 1.5 and not told.applied
    (silent,) = replan([Row(**{**asdict(row), "face_share": PORTRAIT_FACE_SHARE + 0.05})])
    assert silent.angle_deg is None and silent.face_share == PORTRAIT_FACE_SHARE + 0.05


# The demo's group photo: level, one short horizontal line, the room's verticals near upright.
GROUP_PHOTO = "2008_001009.jpg"
#: The accuracy benchmark's turns (benchmarks/accuracy.py: 0.5 to 6 deg, both signs).
TURNS = (0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 4.5, -4.5, 6.0, -6.0)


def _plan_of(path: Path) -> list:
    """The file through the pipeline's own path: proxy-decoded, lines measured, planned under the base chart."""
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    lines = line_measure(luminance(decoded.rgb))
    return _straighten(lines_record(**{k: v for k, v in asdict(lines).items() if k != "lines_found"}))


def test_the_demo_group_photo_as_published_is_left_alone(faces_dir: Path) -> None:
    # Was told "horizon tilted -5.79 deg (0.3 frame widths of lines agree on 1 lines ...)", where the room's
    # verticals read -1.0 deg.
    assert _plan_of(faces_dir / GROUP_PHOTO) == []


def test_the_demo_group_photo_turned_is_not_told_a_wrong_turn(faces_dir: Path, tmp_path: Path) -> None:
    # Turned as the benchmark turns its photos, the photo's few horizontals do not follow the turn (the line measure
    # reads short edges, not a horizon): before the gates 10 of these 12 turns were told
    # a retoucher, every one more than 0.5 deg off. Whatever is told must be within 0.5 deg of the turn.
    photo = load_photo(faces_dir / GROUP_PHOTO, WORK_LONG_EDGE)
    wrong = []
    for turn in TURNS:
        path = tmp_path / f"turned_{turn:+.1f}.jpg"
        save_jpeg(path, rotate_and_crop(photo, turn))
        wrong += [(turn, op.params["angle_deg"]) for op in _plan_of(path) if abs(op.params["angle_deg"] - turn) > 0.5]
    assert wrong == []
