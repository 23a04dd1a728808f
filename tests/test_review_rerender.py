"""A reviewer's changes reach the exports: rerun `process` after `postprod review`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.imaging.color import srgb_to_linear
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.outputs.instructions import instruction_name
from pipeline.review.store import OpChange, ReviewStore


def _mean_linear(path: Path) -> float:
    with Image.open(path) as im:
        return float(srgb_to_linear(np.asarray(im.convert("RGB"), np.float32) / 255).mean())


def test_edited_amount_and_rejected_crop_are_rendered(exposure_dir: Path, tmp_path: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    name = "a0964-20061224_140610__E6B7217_N1.5.JPG"  # 1.8 EV under: the plan brightens it
    shutil.copy(exposure_dir / name, shoot)
    out = tmp_path / "out"
    settings = RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="social_media")
    first = process_shoot(settings)
    (rec,) = first.records
    planned = next(o for o in rec.operations if o.kind == "exposure").params["ev"]
    square = next(e for e in rec.exports if e.rendition == "feed_square")
    before = _mean_linear(out / square.path)

    store = ReviewStore(out)
    doc, version = store.get(name)
    crop = next(o["op_id"] for o in doc["operations"] if o["kind"] == "crop" and o["params"]["aspect"] == "4:5")
    store.update(name, version, [OpChange("exposure", ev=round(planned - 1.0, 2)),
                                 OpChange(crop, status="rejected", comment="keep the full frame")], "ana")

    second = process_shoot(settings)
    (rec2,) = second.records
    exp = next(o for o in rec2.operations if o.kind == "exposure")
    assert exp.params["ev"] == round(planned - 1.0, 2)
    assert exp.review["status"] == "accepted" and exp.review["by"] == "ana"
    assert rec2.render_key != rec.render_key
    square2 = next(e for e in rec2.exports if e.rendition == "feed_square")
    after = _mean_linear(out / square2.path)
    # One stop less scene light: on a JPEG, below the camera-like curve's key (log-log slope 1.3-1.6), more than a
    # stop of its display light (a stop of display light before render version 8).
    assert 2.0**-1.7 <= after / before <= 2.0**-1.15
    doc = json.loads((out / "instructions" / instruction_name(name)).read_text())
    rejected = next(o for o in doc["operations"] if o["op_id"] == crop)
    assert rejected["review"]["status"] == "rejected" and rejected["review"]["comment"] == "keep the full frame"
    rows = pq.read_table(out / "instructions.parquet").to_pylist()
    assert {r["op_id"]: r["review_status"] for r in rows}[crop] == "rejected"


def test_the_renderer_skips_rejected_operations() -> None:
    from pipeline.imaging.render import adjustments_from_operations
    from pipeline.kernel.records import AppliedBy, Operation, OperationKind

    ops = [Operation("exposure", OperationKind.EXPOSURE, {"ev": 1.0}, "under", applied_by=AppliedBy.RENDERER),
           Operation("crop-4x5", OperationKind.CROP, {"aspect": "4:5", "box": [0, 0, 80, 100]}, "crop")]
    assert adjustments_from_operations(ops).exposure_ev == 1.0
    ops[0].review = {"status": "rejected", "by": "ana", "at": None, "comment": None}
    ops[1].review = {"status": "rejected", "by": "ana", "at": None, "comment": None}
    adj = adjustments_from_operations(ops)
    assert adj.exposure_ev == 0.0 and not adj.crops
