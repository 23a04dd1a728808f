"""A portrait made bright on purpose keeps its brightness: its faces' highlights, not its backdrop's, say so.

Tier 1: the face measure on written pixels and the rule on records; tier 2: scikit-image's astronaut
(a published photo, its face 0.8 EV brighter than a typical portrait's) set on a white seamless, as
published and pushed 1 and 1.5 EV over through the benchmark's camera curve, through the real
detector, meter and plan.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.accuracy import analysis_graph
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
from pipeline.imaging.faces import face_clipped_pct
from pipeline.kernel.records import Face, ImageRecord, OperationKind, SourceKind
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.planning.plan import plan_shoot
from pipeline.planning.rules.exposure import BRIGHT_BY_INTENT_CLIPPED_PCT, highlights_clipped

BASE = load_chart("base").chart


def test_a_face_centre_clipped_share_counts_the_pixels_with_a_channel_at_white() -> None:
    rgb = np.full((100, 100, 3), 0.4, np.float32)
    rgb[40:50, 25:75, 0] = 1.0  # a blown red band across the centre's upper part: 10 of its 50 rows
    rgb[0:10, :, :] = 1.0  # a white backdrop above the box's centre: not the face's
    assert face_clipped_pct(rgb, (0.0, 0.0, 100.0, 100.0)) == pytest.approx(20.0)
    assert face_clipped_pct(rgb, (0.0, 0.0, 100.0, 100.0), centre_fraction=1.0) == pytest.approx(15.0)
    rgb[40:50, 25:75, 0] = 0.99  # under 8-bit 255: detail kept
    assert face_clipped_pct(rgb, (0.0, 0.0, 100.0, 100.0)) == 0.0
    assert face_clipped_pct(rgb, (200.0, 200.0, 10.0, 10.0)) is None


def _record(meter_ev: float, frame_clipped: float, face_clipped: float | None) -> ImageRecord:
    row = dict(source_path="a.jpg", content_hash="0" * 64, file_size=1, format="jpeg", source_kind=SourceKind.RASTER,
               width=3000, height=2000, exposure_ev=0.0, exposure_meter_ev=meter_ev, sharpness=100.0, lines_found=0,
               phash="0" * 16, clipped_highlights_pct=frame_clipped, clipped_shadows_pct_r=0.0,
               clipped_shadows_pct_g=0.0, clipped_shadows_pct_b=0.0)
    # One large face, read as bright as the frame: it keys the plan.
    face = Face(x=1200, y=500, width=500, height=600, score=0.95, landmarks=[0.0] * 10, exposure_ev=meter_ev,
                sharpness=300.0, colour_rgb=[0.5, 0.35, 0.25], clipped_pct=face_clipped)
    return ImageRecord.from_row(row, faces=[face])


def _exposure(record: ImageRecord) -> tuple[float, list[str]]:
    plan_shoot([record], BASE)
    ev = sum(float(o.params["ev"]) for o in record.operations if o.kind is OperationKind.EXPOSURE)
    return ev, [str(o.params["check"]) for o in record.operations if o.kind is OperationKind.FLAG]


def test_the_keyed_faces_highlights_decide_and_the_frame_stands_in_when_they_were_not_measured() -> None:
    # A blown backdrop, a face that holds: left as shot, flagged.
    ev, flags = _exposure(rec := _record(1.8, 60.0, 0.2))
    assert ev == 0.0 and "exposure_bright" in flags
    assert highlights_clipped(rec, (0,)) == (pytest.approx(0.2), "its faces' highlights")
    # A face that clips as an over-exposed one does: darkened, though the backdrop would have spared it.
    assert _exposure(_record(1.8, 0.5, 20.0))[0] < -1.0
    # Faces of an analysis from before they were measured: the whole frame, as before.
    rec = _record(1.8, 60.0, None)
    assert _exposure(rec)[0] < -1.0 and highlights_clipped(rec, (0,)) == (60.0, "its highlights")
    assert BRIGHT_BY_INTENT_CLIPPED_PCT == 2.0


@pytest.fixture(scope="module")
def seamless(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, ImageRecord]]:
    src = _package_file("skimage", "data/astronaut.png")
    if src is None:
        pytest.fail("scikit-image's astronaut sample is missing (pip install scikit-image)")
    work = tmp_path_factory.mktemp("seamless")
    shoot = work / "shoot"
    shoot.mkdir()
    photo = load_photo(src)
    h, w = photo.shape[:2]
    canvas = np.full((h * 5 // 4, 2 * w, 3), 255, np.uint8)  # a white seamless around and above her
    canvas[-h:, w // 2:w // 2 + w] = photo
    save_jpeg(shoot / "seamless.jpg", canvas)
    for ev in (1.0, 1.5):
        scene = film_curve_inverse(srgb8_to_linear(canvas)) * 2.0**ev
        save_jpeg(shoot / f"over_{ev}.jpg", to_srgb8(np.clip(film_curve_render(scene), 0.0, 1.0)))
    out = {}
    for chart in ("base", "corporate_portrait"):
        result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=work / f"out-{chart}", executor="local",
                                           graph_path=analysis_graph(work / "graph.yaml"), chart=chart))
        out[chart] = {Path(r.source_path).name: r for r in result.records}
    return out


def _correction(record: ImageRecord) -> float:
    return sum(float(o.params["ev"]) for o in record.operations if o.kind is OperationKind.EXPOSURE)


@pytest.mark.parametrize("chart", ["base", "corporate_portrait"])
def test_a_portrait_on_a_white_seamless_is_not_greyed(seamless: dict[str, dict[str, ImageRecord]],
                                                      chart: str) -> None:
    records = seamless[chart]
    published = records["seamless.jpg"]
    (face,) = [f for f in published.faces if not f.too_small]
    # The backdrop clips (about 60 % of the frame), her skin does not.
    assert published.exposure.clipped_highlights_pct > 40.0 and face.clipped_pct < 1.0
    # Under base the whole frame's meter read it 2.5 EV over and darkened it 2 EV, the seamless to grey.
    assert _correction(published) == 0.0
    # Pushed over, her skin clips (13-37 % of its centre): darkened, by about what was added and more.
    for name, pushed in (("over_1.0.jpg", 1.0), ("over_1.5.jpg", 1.5)):
        record = records[name]
        (face,) = [f for f in record.faces if not f.too_small]
        assert face.clipped_pct > 5.0, (name, face.clipped_pct)
        assert _correction(record) <= -pushed + 0.05, (chart, name, _correction(record))
