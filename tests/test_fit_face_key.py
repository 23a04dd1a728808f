"""The face key's fit tool (benchmarks/fit_face_key.py, issue 17): its truths, its replay of the plan's
global correction under other constants, and its move of dumped readings onto the key in use."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from benchmarks.fit_face_key import Row, correction, rebase, rows_of, truth_ev
from charts.loader import load_chart
from pipeline.imaging.measure.metering import FACE_LOG2, FACE_SPREAD_EV, FRAME_SPREAD_EV
from tests.planning_inputs import face, image_record


def test_truths_of_the_shared_exposure_files(testdata: Path) -> None:
    names = sorted(p.name for p in (testdata / "exposure").iterdir() if p.suffix.lower() == ".jpg")
    fivek = [n for n in names if n.startswith("a")]
    assert len(fivek) == 7
    for n in fivek:  # pushed 1.5 EV under (N) needs +1.5; over (P) needs -1.5
        assert truth_ev(n) == (1.5 if "_N1.5" in n else -1.5)
    assert truth_ev("Floris van Lint-CC BY-NC 2.0.jpg") == 0.0  # published as it should look
    assert truth_ev("Justin Chiaratti-CC BY-NC-SA 2.0.jpg") is None  # overexposed by an unknown amount


@pytest.mark.parametrize("face_ev, frame_ev", list(itertools.product(
    (-2.5, -1.0, -0.3, 0.0, 0.8, 1.27), (-1.2, 0.0, 0.5, 1.6))))
def test_the_replayed_correction_is_the_plans(face_ev: float, frame_ev: float) -> None:
    """Under the constants in use the tool's replay gives the plan's own correction (a fit judged on it is the plan's)."""
    chart = load_chart("base").chart
    rec = image_record(source_path="p0.jpg", exposure_meter_ev=frame_ev, faces=[face(1000, 500, 400, face_ev)])
    (row,) = rows_of({"p0.jpg": rec}, {"p0.jpg": ("src", 0.0)})
    assert row.face_log2 == pytest.approx(face_ev + FACE_LOG2) and row.n_faces == 1
    replayed = correction(row, FACE_LOG2, FACE_SPREAD_EV, FRAME_SPREAD_EV, chart)
    assert replayed == pytest.approx(row.correction, abs=0.006)  # the plan rounds its operation to 0.01 EV


def test_a_brighter_face_key_darkens_what_the_faces_say_is_over() -> None:
    chart = load_chart("base").chart
    row = Row("p0.jpg", "src", 0.0, FACE_LOG2 + 1.5, 1, 0.1, 0.0, 0.0)  # a face 1.5 EV over the key, the frame on it
    assert correction(row, FACE_LOG2, FACE_SPREAD_EV, FRAME_SPREAD_EV, chart) < -0.3
    # Keyed where that face sits, nothing is over: nothing to correct.
    assert correction(row, FACE_LOG2 + 1.5, FACE_SPREAD_EV, FRAME_SPREAD_EV, chart) == 0.0


def test_rebase_keeps_the_light_each_face_read() -> None:
    rec = image_record(faces=[face(100, 100, 200, -0.5), face(600, 100, 200, None)])  # type: ignore[arg-type]
    moved = rebase({"a.dng": rec}, FACE_LOG2 + 1.0)["a.dng"]  # dumped under a key 1 EV brighter
    assert moved.faces[0].exposure_ev == pytest.approx(0.5)  # the same light, read against the key in use
    assert moved.faces[1].exposure_ev is None
    assert rebase({"a.dng": rec}, FACE_LOG2)["a.dng"] is rec


def test_more_dirs_add_each_photo_as_published(testdata: Path, tmp_path: Path) -> None:
    """``--more-dir``: every JPEG of the folder joins the sources as a published photo (truth 0), nothing else."""
    from benchmarks.fit_face_key import sources

    more = tmp_path / "dlib"
    more.mkdir()
    for name in ("2008_002470.jpg", "b.jpeg"):
        (more / name).write_bytes(b"")
    (more / "testing.xml").write_text("<dataset/>")
    without = sources(testdata, tmp_path / "work", None)
    with_more = sources(testdata, tmp_path / "work", None, (more,))
    before = {s.id for s in without}
    added = [s for s in with_more if s.id not in before]
    assert [s.id for s in added] == ["more/dlib/2008_002470", "more/dlib/b"]
    assert len(with_more) == len(without) + 2
    assert all(truth_ev(s.path.name) == 0.0 for s in added)
