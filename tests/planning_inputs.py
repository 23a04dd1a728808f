"""What the planning tests feed ``plan_image`` (test_plan.py, test_plan_rules.py, test_scenes.py): an analysed
image record with every measurement neutral, faces, a chart with a section changed, and a look at the result."""

from __future__ import annotations

from collections.abc import Iterable

from charts.schema import Chart
from pipeline.kernel.records import Face, ImageRecord, Operation, OperationKind, SourceKind


def image_record(**columns) -> ImageRecord:  # noqa: ANN003
    """A 3000 x 2000 RAW measured on target (meter 0 EV, sharp, nothing clipped, no lines), ``columns`` over it.

    ``faces=`` takes a list of :class:`Face`; every other key is a column of the record's row.
    """
    base = dict(source_path="a.dng", content_hash="0" * 64, file_size=1, format="dng", source_kind=SourceKind.RAW,
                width=3000, height=2000, exposure_meter_ev=0.0, sharpness=100.0, lines_found=0,
                clipped_highlights_pct=0.0, clipped_shadows_pct_r=0.0, clipped_shadows_pct_g=0.0,
                clipped_shadows_pct_b=0.0, phash="0" * 16)
    base.update(columns)
    faces = base.pop("faces", [])
    return ImageRecord.from_row(base, faces=faces)


def lines_record(**columns) -> ImageRecord:  # noqa: ANN003
    """A 3000 x 2000 JPEG with 30 line segments found and no exposure reading, ``columns`` (its line
    readings) over it: what the straightening tests plan."""
    return image_record(**{"source_path": "a.jpg", "format": "jpeg", "source_kind": SourceKind.RASTER,
                           "exposure_meter_ev": None, "exposure_ev": 0.0, "lines_found": 30, **columns})


#: How far a lit face reads under the lit surfaces around it (Face.surround_ev; about the faces rule's
#: SURROUND_LIT_EV): a face in a shadow of its own reads under them by the shadow's depth more.
LIT_SURROUND_EV = -0.4


def face(x: float, y: float, size: float, ev: float, score: float = 0.95, surround_ev: float | None = None) -> Face:
    """A square face box of ``size`` px at (``x``, ``y``), measured at ``ev`` EV (and ``surround_ev`` under its surroundings)."""
    return Face(x=x, y=y, width=size, height=size, score=score, landmarks=[0.0] * 10, exposure_ev=ev,
                surround_ev=surround_ev)


def chart_with(chart: Chart, section: str, **values) -> Chart:  # noqa: ANN003
    """``chart`` with ``values`` set in its ``section``, validated again."""
    doc = chart.model_dump(mode="json")
    doc[section] = {**doc[section], **values}
    return Chart.model_validate(doc)


def of_kind(ops: Iterable[Operation], kind: OperationKind) -> list[Operation]:
    """The operations of ``kind``, in their order."""
    return [o for o in ops if o.kind is kind]
