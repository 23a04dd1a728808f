"""benchmarks/faces_in_the_wild.py: the faces rule's decisions read back from an output folder, and compared."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.faces_in_the_wild import Lift, Pool, changes, faces_of, table


def _output(out: Path) -> None:
    """An output folder's three tables: two photos decoded (three faces), one failed; a lift applied, a lift told,
    a face_shadow check and an exposure operation."""
    out.mkdir()
    pq.write_table(pa.table({"source_path": ["a.jpg", "b.jpg", "broken.jpg"], "status": ["ok", "ok", "failed"]}),
                   out / "manifest.parquet")
    pq.write_table(pa.table({"source_path": ["a.jpg", "a.jpg", "b.jpg"]}), out / "faces.parquet")
    rows = [("a.jpg", "brighten_face", {"face_index": 1, "box": [1, 2, 3, 4], "ev": 0.8}, "renderer"),
            ("b.jpg", "brighten_face", {"face_index": 0, "box": [5, 6, 7, 8], "ev": 0.9, "render_on_accept": True},
             "retoucher"),
            ("a.jpg", "flag", {"check": "face_shadow", "face_index": 0}, "retoucher"),
            ("b.jpg", "exposure", {"ev": 0.5}, "renderer")]
    pq.write_table(pa.table({"source_path": [r[0] for r in rows], "kind": [r[1] for r in rows],
                             "params_json": [json.dumps(r[2]) for r in rows], "applied_by": [r[3] for r in rows]}),
                   out / "instructions.parquet")


def test_the_faces_rule_is_read_back_from_an_output_folder(tmp_path: Path) -> None:
    _output(tmp_path / "out")
    pool = faces_of(tmp_path / "out")
    assert (pool.photos, pool.faces, pool.checks) == (2, 3, 1)
    assert pool.lifts == (Lift("a.jpg", 1, (1, 2, 3, 4), 0.8, True), Lift("b.jpg", 0, (5, 6, 7, 8), 0.9, False, True))
    # Photos, faces, lifted, applied, proposed, photos with a lift, checks.
    assert pool.row() == (2, 3, 2, 1, 1, 2, 1)


def test_two_checkouts_are_compared_lift_by_lift() -> None:
    before = {"crowds": Pool(10, 30, 2, (Lift("a.jpg", 1, (0, 0, 1, 1), 0.8, True),
                                          Lift("b.jpg", 0, (0, 0, 1, 1), 1.4, False)))}
    now = {"crowds": Pool(10, 30, 2, (Lift("a.jpg", 1, (0, 0, 1, 1), 0.8, False, True),
                                       Lift("c.jpg", 2, (0, 0, 1, 1), 0.7, False)))}
    rows = table(now, before)
    assert rows[2] == "| crowds | 10 | 30 | 2 | 1 -> 0 | 0 -> 1 | 2 | 2 |"
    assert table(now, None)[2] == "| crowds | 10 | 30 | 2 | 0 | 1 | 2 | 2 |"
    assert changes(now, before) == ["  crowds/a.jpg face 2: +0.80 EV applied -> +0.80 EV proposed",
                                    "  crowds/b.jpg face 1: +1.40 EV -> none",
                                    "  crowds/c.jpg face 3: none -> +0.70 EV"]
