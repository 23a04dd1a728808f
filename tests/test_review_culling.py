"""The review app's day of culling and checking: flags, stars, labels, batch decisions, undo, edits, 100% tiles,
stale exports and re-rendering, through the API (the browser flows are in test_review_browser.py)."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
import threading
from pathlib import Path

import jsonschema
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image
from review_shoot import BIG, BIG_SOURCE, GROUP, RAW, doc_of, processed_shoot

from pipeline.cli.main import main as cli
from pipeline.imaging.color import srgb_to_linear
from pipeline.imaging.geometry import fits, shrink_to_fit
from pipeline.imaging.render import adjustments_from_operations, decode_for_render, render_frame
from pipeline.kernel.records import SourceKind
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.outputs.instructions import SCHEMA_PATH, instruction_name, operation_from_doc
from pipeline.outputs.shoot import after_preview_name
from pipeline.outputs.xmp import image_decision, xmp_packet
from pipeline.planning.plan import white_balance_gains
from pipeline.planning.rules.white_balance import reviewed_params
from pipeline.review.app import create_app
from pipeline.review.context import review_context
from pipeline.review.culling import parse_culling
from pipeline.review.preview import develops, preview_adjustments, tonal_operations
from pipeline.review.render_jobs import RenderJobs
from pipeline.review.store import OpChange, ReviewStore
from pipeline.review.tiles import TILE_PX, render_tile, tile_box

SCHEMA = json.loads(SCHEMA_PATH.read_text())


@pytest.fixture(scope="module")
def processed(faces_dir: Path, exposure_dir: Path, raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return processed_shoot(tmp_path_factory, faces_dir, {BIG: exposure_dir / BIG_SOURCE, RAW: raw_dir / Path(RAW).name})


def version_of(client, sp: str) -> int:  # noqa: ANN001
    return client.get(f"/api/images/{sp}").get_json()["version"]


def decide(client, *items: dict, reviewer: str | None = None):  # noqa: ANN001, ANN201
    body: dict = {"items": list(items)}
    if reviewer:
        body["reviewer"] = reviewer
    return client.post("/api/decisions", json=body)


def tiles_of(client) -> dict[str, dict]:  # noqa: ANN001
    return {i["source_path"]: i for i in client.get("/api/images").get_json()["images"]}


def exiftool_xmp(path: Path) -> dict:
    result = subprocess.run(["exiftool", "-j", "-XMP-xmp:Rating", "-XMP-xmp:Label", str(path)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)[0]


# --- culling --------------------------------------------------------------------------

def test_pick_stars_and_label_are_stored_and_written_to_the_xmp(client, out: Path) -> None:  # noqa: ANN001
    resp = decide(client, {"source_path": GROUP, "version": 0, "image": {"flag": "pick", "stars": 4, "label": "Red"}},
                  reviewer="Cleo")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    (tile,) = body["images"]
    assert (tile["flag"], tile["stars"], tile["label"], tile["version"]) == ("pick", 4, "Red", 1)
    doc = doc_of(out, GROUP)
    jsonschema.validate(doc, SCHEMA)
    assert {k: doc["review"][k] for k in ("rating", "label", "flag", "by")} == \
        {"rating": 4, "label": "Red", "flag": "pick", "by": "Cleo"}
    with sqlite3.connect(out / "review.sqlite") as con:
        assert con.execute("SELECT flag, stars, label, by FROM culling WHERE source_path = ?",
                           (GROUP,)).fetchone() == ("pick", 4, "Red", "Cleo")
    xmp = (out / doc["xmp"]).read_text()
    assert xmp == xmp_packet(doc, image_decision(doc))
    assert '<xmp:Rating>4</xmp:Rating>' in xmp or 'xmp:Rating="4"' in xmp
    if shutil.which("exiftool"):
        tags = exiftool_xmp(out / doc["xmp"])
        assert (tags["Rating"], tags["Label"]) == (4, "Red")
    # Culling alone leaves instructions.parquet alone, and the history names each field.
    history = client.get(f"/api/history/{GROUP}").get_json()["history"]
    assert [(h["field"], h["before"], h["after"]) for h in history] == \
        [("flag", None, "pick"), ("stars", 0, 4), ("label", None, "Red")]
    assert len({h["change_id"] for h in history}) == 1


def test_a_reject_keeps_the_stars_underneath(client, out: Path) -> None:  # noqa: ANN001
    assert decide(client, {"source_path": GROUP, "version": 0, "image": {"stars": 3}}).status_code == 200
    assert decide(client, {"source_path": GROUP, "version": 1, "image": {"flag": "reject"}}).status_code == 200
    assert doc_of(out, GROUP)["review"]["rating"] == -1  # xmp:Rating -1: rejected, as Bridge writes it
    assert 'xmp:Rating="-1"' in (out / doc_of(out, GROUP)["xmp"]).read_text()
    assert decide(client, {"source_path": GROUP, "version": 2, "image": {"flag": None}}).status_code == 200
    assert doc_of(out, GROUP)["review"]["rating"] == 3


def test_gallery_filters_on_flag_stars_and_label(client) -> None:  # noqa: ANN001
    items = tiles_of(client)
    names = [sp for sp, i in items.items() if i["url"]]
    a, b, c = names[:3]
    resp = decide(client,
                  {"source_path": a, "version": items[a]["version"], "image": {"flag": "pick", "stars": 5}},
                  {"source_path": b, "version": items[b]["version"], "image": {"flag": "reject", "label": "Green"}},
                  {"source_path": c, "version": items[c]["version"], "image": {"stars": 2, "label": "Green"}})
    assert resp.status_code == 200 and resp.get_json()["changed"] == 3

    def query(q: str) -> list[str]:
        return [i["source_path"] for i in client.get("/api/images?" + q).get_json()["images"]]

    assert query("flag=pick") == [a]
    assert query("flag=reject") == [b]
    assert a not in query("flag=none") and c in query("flag=none")
    assert query("stars=2") == sorted([a, c])
    assert query("stars=5") == [a]
    assert query("label=Green") == sorted([b, c])
    assert client.get("/api/images?stars=x").status_code == 400
    assert client.get("/api/images?label=Orange").status_code == 400


@pytest.mark.parametrize(("image", "message"), [
    ({"stars": 6}, "stars"),
    ({"stars": -1}, "stars"),
    ({"stars": 2.5}, "stars"),
    ({"stars": "3"}, "stars"),
    ({"stars": True}, "stars"),
    ({"label": "Orange"}, "label"),
    ({"label": "red"}, "label"),
    ({"flag": "maybe"}, "flag"),
    ({"rating": 3}, "unknown"),
])  # fmt: skip
def test_out_of_range_culling_is_refused(client, out: Path, image: dict, message: str) -> None:  # noqa: ANN001
    before = (out / "instructions" / instruction_name(GROUP)).read_bytes()
    resp = decide(client, {"source_path": GROUP, "version": 0, "image": image})
    assert resp.status_code == 422 and message in resp.get_json()["error"], resp.get_json()
    assert (out / "instructions" / instruction_name(GROUP)).read_bytes() == before


def test_bad_decisions_are_refused_and_change_nothing(client, out: Path) -> None:  # noqa: ANN001
    items = tiles_of(client)
    other = next(sp for sp, i in items.items() if i["url"] and sp != GROUP)
    before = {sp: (out / "instructions" / instruction_name(sp)).read_bytes() for sp in (GROUP, other)}
    # Unknown image: 404, and the other image of the request is not changed either.
    resp = decide(client, {"source_path": GROUP, "version": 0, "image": {"stars": 2}},
                  {"source_path": "nope.jpg", "version": 0, "image": {"stars": 2}})
    assert resp.status_code == 404 and "nope.jpg" in resp.get_json()["error"]
    assert decide(client, {"source_path": "broken.CR2", "version": 0, "image": {"stars": 1}}).status_code == 404
    # Stale version on one image: 409 with its current tile, nothing written anywhere.
    assert decide(client, {"source_path": other, "version": 0, "image": {"label": "Blue"}}).status_code == 200
    written = (out / "instructions" / instruction_name(other)).read_bytes()
    resp = decide(client, {"source_path": GROUP, "version": 0, "image": {"stars": 2}},
                  {"source_path": other, "version": 0, "image": {"stars": 2}})
    assert resp.status_code == 409
    body = resp.get_json()
    assert [(t["source_path"], t["version"], t["label"]) for t in body["stale"]] == [(other, 1, "Blue")]
    assert (out / "instructions" / instruction_name(GROUP)).read_bytes() == before[GROUP]
    assert (out / "instructions" / instruction_name(other)).read_bytes() == written
    # Malformed bodies.
    assert client.post("/api/decisions", json={"items": []}).status_code == 400
    assert client.post("/api/decisions", json=[1]).status_code == 400
    assert client.post("/api/decisions", data="x", content_type="application/json").status_code == 400
    for item in ({"source_path": GROUP, "image": {"stars": 1}},  # no version
                 {"source_path": GROUP, "version": 0},  # nothing to change
                 {"source_path": GROUP, "version": 0, "all": {"status": "maybe"}},
                 {"source_path": GROUP, "version": 0, "amount": {"kind": "crop", "ev": 1}},
                 {"source_path": GROUP, "version": 0, "amount": {"kind": "exposure", "ev": 9}},
                 {"source_path": GROUP, "version": 0, "changes": [{"op_id": "exposure", "ev": "x"}]},
                 {"source_path": GROUP, "version": 0, "shout": 1}):
        resp = decide(client, item)
        assert resp.status_code == 422, (item, resp.get_json())
    dup = {"source_path": GROUP, "version": 0, "image": {"stars": 1}}
    assert decide(client, dup, dup).status_code == 422
    assert (out / "instructions" / instruction_name(GROUP)).read_bytes() == before[GROUP]


def test_parse_culling_keeps_only_what_was_sent() -> None:
    assert parse_culling({"stars": 3}) == {"stars": 3}
    assert parse_culling({"flag": None, "label": None}) == {"flag": None, "label": None}
    assert parse_culling({"stars": 5.0}) == {"stars": 5}


# --- batch decisions and undo --------------------------------------------------------------

def test_batch_accept_leaves_flags_and_retouchers_tasks(client, out: Path) -> None:  # noqa: ANN001
    items = tiles_of(client)
    names = [sp for sp, i in items.items() if i["url"]]
    resp = decide(client, *({"source_path": sp, "version": items[sp]["version"], "all": {"status": "accepted"}}
                            for sp in names))
    assert resp.status_code == 200, resp.get_json()
    for sp in names:
        for op in doc_of(out, sp)["operations"]:
            automatic = op["applied_by"] == "renderer" and op["kind"] not in ("flag", "reject")
            assert op["review"]["status"] == ("accepted" if automatic else "pending"), (sp, op["op_id"])
    rows = pq.read_table(out / "instructions.parquet").to_pylist()
    assert {r["review_status"] for r in rows if r["applied_by"] == "renderer" and r["kind"] == "exposure"} == {"accepted"}


def test_batch_amount_and_its_undo_and_redo(client, out: Path) -> None:  # noqa: ANN001
    items = tiles_of(client)
    with_exposure = [sp for sp in items if items[sp]["url"]
                     and any(o["kind"] == "exposure" for o in doc_of(out, sp)["operations"])]
    assert len(with_exposure) >= 2
    planned = {sp: next(o for o in doc_of(out, sp)["operations"] if o["kind"] == "exposure") for sp in with_exposure}
    resp = decide(client, *({"source_path": sp, "version": items[sp]["version"],
                             "amount": {"kind": "exposure", "ev": 0.5}} for sp in with_exposure))
    assert resp.status_code == 200, resp.get_json()
    undo = resp.get_json()["undo"]
    for sp in with_exposure:
        exp = next(o for o in doc_of(out, sp)["operations"] if o["kind"] == "exposure")
        assert exp["params"]["ev"] == 0.5 and exp["review"]["status"] == "accepted"
    # Undo puts every image back as it was; the answer's own undo redoes it.
    resp = client.post("/api/decisions", json=undo)
    assert resp.status_code == 200, resp.get_json()
    redo = resp.get_json()["undo"]
    for sp in with_exposure:
        exp = next(o for o in doc_of(out, sp)["operations"] if o["kind"] == "exposure")
        assert exp["params"] == planned[sp]["params"] and exp["review"]["status"] == "pending"
    with sqlite3.connect(out / "review.sqlite") as con:
        assert con.execute("SELECT count(*) FROM edits").fetchone()[0] == 0  # back to the plan: no edit left
    assert client.post("/api/decisions", json=redo).status_code == 200
    assert all(next(o for o in doc_of(out, sp)["operations"] if o["kind"] == "exposure")["params"]["ev"] == 0.5
               for sp in with_exposure)
    # An undo made stale by another change is refused, not half applied.
    assert client.post("/api/decisions", json=redo).status_code == 409
    # An amount on images without such an instruction is refused, naming the image.
    without = next((sp for sp in items if items[sp]["url"] and sp not in with_exposure), None)
    if without is not None:
        resp = decide(client, {"source_path": without, "version": version_of(client, without),
                               "amount": {"kind": "exposure", "ev": 0.3}})
        assert resp.status_code == 422 and without in resp.get_json()["error"]


def test_undo_of_culling_and_of_a_single_change(client, out: Path) -> None:  # noqa: ANN001
    resp = decide(client, {"source_path": GROUP, "version": 0, "image": {"stars": 5, "label": "Yellow"}})
    undo = resp.get_json()["undo"]
    assert undo["items"] == [{"source_path": GROUP, "version": 1, "image": {"stars": 0, "label": None}}]
    assert client.post("/api/decisions", json=undo).status_code == 200
    assert doc_of(out, GROUP)["review"]["rating"] == 0 and doc_of(out, GROUP)["review"]["label"] is None
    # The image page's own endpoint answers with an undo too.
    op = next(o for o in doc_of(out, GROUP)["operations"] if o["kind"] == "brighten_face")
    resp = client.post(f"/api/images/{GROUP}", json={"version": 2, "changes": [{"op_id": op["op_id"], "ev": 0.9,
                                                                                 "comment": "more"}]})
    assert resp.status_code == 200
    undo = resp.get_json()["undo"]
    assert client.post("/api/decisions", json={"items": [undo]}).status_code == 200
    back = next(o for o in doc_of(out, GROUP)["operations"] if o["op_id"] == op["op_id"])
    assert back["params"] == op["params"] and back["review"]["status"] == "pending" and not back["review"]["comment"]


# --- editing white balance, straightening, crop rotation ------------------------------------

def test_white_balance_temperature_and_tint_are_editable(client, out: Path) -> None:  # noqa: ANN001
    sp = next(sp for sp in tiles_of(client) if tiles_of(client)[sp]["url"]
              and any(o["kind"] == "white_balance" for o in doc_of(out, sp)["operations"]))
    doc = doc_of(out, sp)
    wb = next(o for o in doc["operations"] if o["kind"] == "white_balance")
    m = doc["measurements"]
    # The plan's own shifts give the plan's gains (the edit's inverse is exact).
    cast_a = -wb["params"]["tint_shift"]
    target = 6504.0 + m["wb_temperature_shift_k"] - wb["params"]["temperature_shift_k"]
    assert white_balance_gains(cast_a, m["wb_cast_b"], target) == pytest.approx(wb["params"]["gains"], abs=2e-3)
    v = version_of(client, sp)
    resp = client.post(f"/api/images/{sp}", json={"version": v, "changes": [
        {"op_id": wb["op_id"], "temperature_shift_k": wb["params"]["temperature_shift_k"] / 2, "tint_shift": 0}]})
    assert resp.status_code == 200, resp.get_json()
    new = next(o for o in doc_of(out, sp)["operations"] if o["op_id"] == wb["op_id"])
    assert new["params"]["tint_shift"] == 0 and new["review"]["status"] == "accepted"
    # Half the shift: gains halfway (in mired) between none and the plan's, blue/red ratio between.
    ratio = lambda g: g[2] / g[0]  # noqa: E731
    assert min(1.0, ratio(wb["params"]["gains"])) < ratio(new["params"]["gains"]) < max(1.0, ratio(wb["params"]["gains"]))
    assert resp.get_json()["previews"]["after"] != client.get(f"/api/images/{sp}").get_json()["previews"]["before"]
    # Back to the plan's values: the plan's gains exactly, the edits gone.
    resp = client.post(f"/api/images/{sp}", json={"version": v + 1, "changes": [
        {"op_id": wb["op_id"], "temperature_shift_k": wb["params"]["temperature_shift_k"],
         "tint_shift": wb["params"]["tint_shift"]}]})
    assert next(o for o in doc_of(out, sp)["operations"] if o["op_id"] == wb["op_id"])["params"] == wb["params"]
    too_warm = round(6504.0 + m["wb_temperature_shift_k"] - 1200)  # neutrals to 1200 K: off the locus
    for bad in ({"temperature_shift_k": 20000}, {"tint_shift": "x"}, {"temperature_shift_k": too_warm},
                {"tint_shift": 150}):
        resp = client.post(f"/api/images/{sp}", json={"version": v + 2, "changes": [{"op_id": wb["op_id"], **bad}]})
        assert resp.status_code == 422, (bad, resp.get_json())


def test_white_balance_is_editable_in_mired_at_any_light(client, out: Path) -> None:  # noqa: ANN001
    """The review edits a white balance in mired, the plan's unit: a step of kelvin is hundreds of thousands of
    them for a blue cast (the shared wb photos with a cool cast read +58,914 to +993,496 K), which the editor's
    kelvin field, bounded at +-10,000 K, refused even when only the tint was changed."""
    sp = next(sp for sp in tiles_of(client) if tiles_of(client)[sp]["url"]
              and any(o["kind"] == "white_balance" for o in doc_of(out, sp)["operations"]))
    doc = doc_of(out, sp)
    wb = next(o for o in doc["operations"] if o["kind"] == "white_balance")
    m = doc["measurements"]
    v = version_of(client, sp)
    # A shift given in mired is the same edit as its kelvin (the same gains), and lands on the mired asked.
    half = round(wb["params"]["mired_shift"] / 2, 1)
    resp = client.post(f"/api/images/{sp}", json={"version": v, "changes": [
        {"op_id": wb["op_id"], "mired_shift": half}]})
    assert resp.status_code == 200, resp.get_json()
    new = next(o for o in doc_of(out, sp)["operations"] if o["op_id"] == wb["op_id"])
    assert new["params"]["mired_shift"] == pytest.approx(half, abs=0.05)
    assert new["params"]["target_mired"] == pytest.approx(wb["params"]["cast_mired"] + half, abs=0.1)  # not the plan's
    assert new["params"]["gains"] == pytest.approx(reviewed_params(  # the same edit in kelvin
        m, wb["params"], wb["params"]["tint_shift"], temperature_shift_k=new["params"]["temperature_shift_k"])["gains"],
        abs=1e-3)
    # A strong cooling, past the old editor's 10,000 K, then a tint alone with the kelvin the editor shows back.
    cool = round(-(1e6 / (6504.0 + m["wb_temperature_shift_k"])) + 30.0, 1)  # neutrals to 30 mired: 33,000 K
    resp = client.post(f"/api/images/{sp}", json={"version": v + 1, "changes": [
        {"op_id": wb["op_id"], "mired_shift": cool}]})
    assert resp.status_code == 200, resp.get_json()
    far = next(o for o in doc_of(out, sp)["operations"] if o["op_id"] == wb["op_id"])["params"]
    assert far["temperature_shift_k"] < -10000
    resp = client.post(f"/api/images/{sp}", json={"version": v + 2, "changes": [
        {"op_id": wb["op_id"], "temperature_shift_k": far["temperature_shift_k"], "tint_shift": 2.0}]})
    assert resp.status_code == 200, resp.get_json()
    tinted = next(o for o in doc_of(out, sp)["operations"] if o["op_id"] == wb["op_id"])["params"]
    assert tinted["tint_shift"] == 2.0 and tinted["mired_shift"] == pytest.approx(far["mired_shift"], abs=0.1)
    assert "mired cooler" in doc_of(out, sp)["summary"]
    # Back to the plan's own mired and tint: the plan's parameters exactly.
    resp = client.post(f"/api/images/{sp}", json={"version": v + 3, "changes": [
        {"op_id": wb["op_id"], "mired_shift": wb["params"]["mired_shift"], "tint_shift": wb["params"]["tint_shift"]}]})
    assert next(o for o in doc_of(out, sp)["operations"] if o["op_id"] == wb["op_id"])["params"] == wb["params"]
    beyond = round(-(1e6 / (6504.0 + m["wb_temperature_shift_k"])) - 5.0, 1)  # bluer than infinite kelvin
    for bad in ({"mired_shift": beyond}, {"mired_shift": 600}, {"mired_shift": "x"},
                {"mired_shift": 10, "temperature_shift_k": 500}):
        resp = client.post(f"/api/images/{sp}", json={"version": v + 4, "changes": [{"op_id": wb["op_id"], **bad}]})
        assert resp.status_code == 422, (bad, resp.get_json())


def test_straightening_and_crop_rotation(client, out: Path) -> None:  # noqa: ANN001
    doc = doc_of(out, GROUP)
    crops = [o for o in doc["operations"] if o["kind"] == "crop"]
    assert len(crops) == 2
    crop = crops[0]
    resp = client.post(f"/api/images/{GROUP}", json={"version": 0, "changes": [{"op_id": crop["op_id"],
                                                                                 "rotate_deg": 4.0}]})
    assert resp.status_code == 200, resp.get_json()
    turned = next(o for o in doc_of(out, GROUP)["operations"] if o["op_id"] == crop["op_id"])
    assert turned["params"]["rotate_deg"] == 4.0 and turned["params"]["angle_deg"] == 4.0
    W, H = doc["image"]["width"], doc["image"]["height"]
    assert fits(turned["params"]["box"], 4.0, W, H, eps=1.0)  # shrunk about its centre to stay inside
    assert turned["params"]["box"][2] < crop["params"]["box"][2]
    # The renderer turns that crop, and only that one.
    adj = adjustments_from_operations([operation_from_doc(o) for o in doc_of(out, GROUP)["operations"]])
    assert adj.crop_turns == {crop["params"]["aspect"]: 4.0} and adj.angle_deg == 0.0
    assert adj.for_crop(crop["params"]["aspect"]).angle_deg == 4.0 and adj.for_crop("9:9").angle_deg == 0.0
    # Straightening is an angle only a straighten instruction takes.
    resp = client.post(f"/api/images/{GROUP}", json={"version": 1, "changes": [{"op_id": crop["op_id"], "angle_deg": 2}]})
    assert resp.status_code == 422 and "rotate_deg" in resp.get_json()["error"]
    resp = client.post(f"/api/images/{GROUP}", json={"version": 1, "changes": [{"op_id": crop["op_id"], "rotate_deg": 60}]})
    assert resp.status_code == 422
    # Back to no turn: the parameter and the edit go; the box stays as the reviewer last had it.
    resp = client.post(f"/api/images/{GROUP}", json={"version": 1, "changes": [{"op_id": crop["op_id"], "rotate_deg": 0}]})
    back = next(o for o in doc_of(out, GROUP)["operations"] if o["op_id"] == crop["op_id"])
    assert "rotate_deg" not in back["params"] and back["params"]["angle_deg"] == 0.0
    jsonschema.validate(doc_of(out, GROUP), SCHEMA)


def test_a_straightening_edit_turns_the_crops_with_it(out: Path) -> None:
    store = ReviewStore(out)
    doc, version = store.get(GROUP)
    doc = json.loads(json.dumps(doc))
    # Give the image a straighten instruction as the plan writes one (the group photo has none).
    doc["operations"].insert(0, {"op_id": "straighten", "kind": "straighten", "params": {"angle_deg": 1.0,
                                 "axis": "horizon"}, "reason": "horizon tilted +1.00 deg (12 lines)", "measured": 1.0,
                                 "target": 0.0, "confidence": 0.6, "applied_by": "renderer",
                                 "review": {"status": "pending", "by": None, "at": None, "comment": None}})
    for o in doc["operations"]:
        if o["kind"] == "crop":
            o["params"]["angle_deg"] = 1.0
            box = shrink_to_fit(o["params"]["box"], 1.0, doc["image"]["width"], doc["image"]["height"])
            o["params"]["box"] = [round(v, 1) for v in box]
    (out / "instructions" / instruction_name(GROUP)).write_text(json.dumps(doc, indent=2))
    doc, version = store.get(GROUP)
    doc, version = store.update(GROUP, version, [OpChange("straighten", angle_deg=-3.5)], "ana")
    crops = [o for o in doc["operations"] if o["kind"] == "crop"]
    assert all(o["params"]["angle_deg"] == -3.5 for o in crops)
    doc, version = store.update(GROUP, version, [OpChange("straighten", status="rejected")], "ana")
    assert all(o["params"]["angle_deg"] == 0.0 for o in doc["operations"] if o["kind"] == "crop")



def test_accepting_a_proposed_turn_turns_the_crops_and_the_frame(out: Path) -> None:
    """A turn the plan proposes (straighten.confirm_turns) turns nothing while pending; accepted, the crops are kept
    inside the turned frame and the renderer turns it; rejected, the crops are unturned again."""
    store = ReviewStore(out)
    doc, version = store.get(GROUP)
    doc = json.loads(json.dumps(doc))
    doc["operations"].insert(0, {"op_id": "straighten", "kind": "straighten",
                                 "params": {"angle_deg": 2.0, "axis": "horizon", "render_on_accept": True},
                                 "reason": "horizon tilted +2.00 deg (...); proposed: turned once a reviewer accepts it",
                                 "measured": 2.0, "target": 0.0, "confidence": 0.4, "applied_by": "retoucher",
                                 "review": {"status": "pending", "by": None, "at": None, "comment": None}})
    (out / "instructions" / instruction_name(GROUP)).write_text(json.dumps(doc, indent=2))
    W, H = doc["image"]["width"], doc["image"]["height"]
    doc, version = store.get(GROUP)
    before = {o["op_id"]: o["params"]["box"] for o in doc["operations"] if o["kind"] == "crop"}
    assert adjustments_from_operations([operation_from_doc(o) for o in doc["operations"]]).angle_deg == 0.0
    doc, version = store.update(GROUP, version, [OpChange("straighten", status="accepted")], "ana")
    crops = [o for o in doc["operations"] if o["kind"] == "crop"]
    assert crops and all(o["params"]["angle_deg"] == 2.0 and fits(o["params"]["box"], 2.0, W, H, eps=1.0)
                         for o in crops)
    assert any(o["params"]["box"] != before[o["op_id"]] for o in crops)  # shrunk to stay inside the turned frame
    assert adjustments_from_operations([operation_from_doc(o) for o in doc["operations"]]).angle_deg == 2.0
    assert "straighten +2.0 deg;" in doc["summary"]  # done: neither to confirm nor by hand
    doc, version = store.update(GROUP, version, [OpChange("straighten", status="rejected")], "ana")
    assert all(o["params"]["angle_deg"] == 0.0 for o in doc["operations"] if o["kind"] == "crop")
    assert adjustments_from_operations([operation_from_doc(o) for o in doc["operations"]]).angle_deg == 0.0

# --- 100% tiles -------------------------------------------------------------------------------

def _jpeg(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("sp", [BIG, RAW])
def test_a_100_percent_tile_is_the_full_resolution_render(client, out: Path, sp: str) -> None:  # noqa: ANN001
    data = client.get(f"/api/images/{sp}").get_json()
    doc = data["doc"]
    W, H = doc["image"]["width"], doc["image"]["height"]
    assert max(W, H) > 1600  # larger than any preview
    url = data["tiles"]["url"]
    assert data["tiles"]["size"] == TILE_PX
    col, row = 1, 1
    resp = client.get(url.format(variant="after", scale=1, col=col, row=row))
    assert resp.status_code == 200 and resp.mimetype == "image/jpeg"
    got = _jpeg(resp.data)
    assert got.shape == (TILE_PX, TILE_PX, 3)
    # The same render path on the full decode, cropped to the tile: equal but for JPEG's rounding.
    shoot = Path(json.loads((out / "summary.json").read_text())["shoot"])
    kind = SourceKind.RAW if sp == RAW else SourceKind.RASTER
    decoded = decode_for_render(shoot / sp, kind, W, H, 1.0, 250_000_000)
    adjustments = preview_adjustments(tonal_operations(doc), display_referred=kind is SourceKind.RASTER,
                                      develop_curve=develops(kind))
    want = render_tile(decoded, W, H, adjustments, col, row, 1).astype(np.int16)
    # JPEG's rounding of a contrastier picture (a RAW developed through the camera-like curve: 1.9 levels, 1.5 before).
    assert np.abs(got - want).mean() < 2.5
    whole = render_frame(decoded, W, H, adjustments, (0.0, 0.0, float(W), float(H)), (W, H), "srgb", 0.0, 8)
    x0, y0 = col * TILE_PX, row * TILE_PX
    assert np.abs(want - whole[y0:y0 + TILE_PX, x0:x0 + TILE_PX]).max() <= 1  # a tile is the picture, cut
    before = _jpeg(client.get(url.format(variant="before", scale=1, col=col, row=row)).data)
    if any(o["kind"] in ("exposure", "white_balance") for o in tonal_operations(doc)):
        assert np.abs(before - got).mean() > 2  # the corrections show at 100%
    # Edge tiles are cut to the image; outside it and unknown variants are 404.
    last_col, last_row = (W - 1) // TILE_PX, (H - 1) // TILE_PX
    edge = _jpeg(client.get(url.format(variant="after", scale=1, col=last_col, row=last_row)).data)
    assert edge.shape == (H - last_row * TILE_PX, W - last_col * TILE_PX, 3)
    assert client.get(url.format(variant="after", scale=1, col=last_col + 1, row=0)).status_code == 404
    assert client.get(url.format(variant="after", scale=3, col=0, row=0)).status_code == 404
    assert client.get(url.format(variant="source", scale=1, col=0, row=0)).status_code == 404
    assert client.get("/tile/after/1/0/0/nope.jpg").status_code == 404
    # The decode is cached once, memory-mapped, under the run's state (never served as a file).
    cached = list((out / ".postprod" / "fullres").glob("*.u16.npy"))
    assert len(cached) == 1 and np.load(cached[0], mmap_mode="r").shape == (H, W, 3)


def test_tile_boxes_cover_the_image() -> None:
    assert tile_box(0, 0, 1, 1000, 700) == ((0.0, 0.0, 512.0, 512.0), (512, 512))
    assert tile_box(1, 1, 1, 1000, 700) == ((512.0, 512.0, 488.0, 188.0), (488, 188))
    assert tile_box(0, 0, 2, 1000, 700) == ((0.0, 0.0, 1000.0, 700.0), (500, 350))
    for bad in ((2, 0, 1), (0, 2, 1), (-1, 0, 1), (0, 0, 3)):
        with pytest.raises(ValueError):
            tile_box(bad[0], bad[1], bad[2], 1000, 700)


# --- thumbnails, stale exports, re-render ------------------------------------------------------

def _mean_linear(data: bytes) -> float:
    return float(srgb_to_linear(np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float32) / 255).mean())


def test_thumbnails_show_the_corrected_picture(client, out: Path) -> None:  # noqa: ANN001
    tile = tiles_of(client)[GROUP]
    exposure = next(o for o in doc_of(out, GROUP)["operations"] if o["kind"] == "exposure")["params"]["ev"]
    assert exposure > 0.5
    thumb = client.get(tile["thumb"])
    assert thumb.status_code == 200 and "max-age" in thumb.headers["Cache-Control"]
    before = client.get(f"/preview/before/{GROUP}")
    assert _mean_linear(thumb.data) > 1.3 * _mean_linear(before.data)
    # Unchanged since the render: the render's own picture of the corrections.
    rendered = out / after_preview_name(doc_of(out, GROUP)["content_hash"])
    assert thumb.data == rendered.read_bytes()
    # A changed amount is a new thumbnail URL, and a thumbnail rendered now by the same path.
    v = version_of(client, GROUP)
    client.post(f"/api/images/{GROUP}", json={"version": v, "changes": [{"op_id": "exposure", "ev": 0.0}]})
    changed = tiles_of(client)[GROUP]["thumb"]
    assert changed != tile["thumb"]
    now = client.get(changed)
    assert now.status_code == 200 and now.data != rendered.read_bytes()
    assert _mean_linear(now.data) == pytest.approx(_mean_linear(client.get(f"/preview/before/{GROUP}").data), rel=0.25)
    # The report shows the corrected picture the render made, with each crop frame in its colour and named.
    report = (out / "report.html").read_text()
    assert ".after.jpg" in report and ">4:5</text>" in report and ">1:1</text>" in report


def test_a_decision_marks_exports_stale_until_rendered_again(client, out: Path) -> None:  # noqa: ANN001
    assert not any(i.get("stale") for i in tiles_of(client).values())
    exports = pq.read_table(out / "exports.parquet").to_pylist()
    assert exports and not any(r["stale"] for r in exports) and all(r["render_key"] for r in exports)
    web = next(r for r in exports if r["source_path"] == GROUP and r["rendition"] == "web")
    before = (out / web["path"]).read_bytes()
    # Stars change no pixel: nothing goes stale.
    decide(client, {"source_path": GROUP, "version": 0, "image": {"stars": 3}})
    assert not tiles_of(client)[GROUP]["stale"]
    # A changed amount does.
    resp = client.post(f"/api/images/{GROUP}", json={"version": 1, "changes": [{"op_id": "exposure", "ev": 0.2}]})
    assert resp.get_json()["stale"] is True
    assert tiles_of(client)[GROUP]["stale"] is True
    assert [i for i, t in tiles_of(client).items() if t.get("stale")] == [GROUP]
    assert client.get("/api/images?stale=1").get_json()["images"][0]["source_path"] == GROUP
    rows = pq.read_table(out / "exports.parquet").to_pylist()
    assert {r["source_path"] for r in rows if r["stale"]} == {GROUP}
    report = (out / "report.html").read_text()
    assert "stale export" in report and "Stale exports: 1 image(s)" in report
    # `postprod render OUT` re-renders exactly that image.
    result = CliRunner().invoke(cli, ["render", str(out)])
    assert result.exit_code == 0, result.output
    assert "re-rendered 1 image(s)" in result.output and GROUP in result.output
    assert (out / web["path"]).read_bytes() != before
    after_rows = pq.read_table(out / "exports.parquet").to_pylist()
    assert not any(r["stale"] for r in after_rows)
    unchanged = {r["path"]: r["sha256"] for r in exports if r["source_path"] != GROUP}
    assert {r["path"]: r["sha256"] for r in after_rows if r["source_path"] != GROUP} == unchanged
    assert "Stale exports" not in (out / "report.html").read_text()
    assert not tiles_of(client)[GROUP]["stale"]  # the app reads the new manifest
    doc = doc_of(out, GROUP)
    assert doc["review"]["rating"] == 3  # the rerun kept the culling
    assert next(o for o in doc["operations"] if o["op_id"] == "exposure")["params"]["ev"] == 0.2
    # Nothing changed since: nothing to do.
    result = CliRunner().invoke(cli, ["render", str(out)])
    assert result.exit_code == 0 and "every export was up to date" in result.output


def test_the_re_render_button_runs_in_the_app(client, out: Path) -> None:  # noqa: ANN001
    client.post(f"/api/images/{GROUP}", json={"version": 0, "changes": [{"op_id": "exposure", "ev": 0.1}]})
    assert client.get("/api/render").get_json()["stale"] == 1
    resp = client.post("/api/render", json={})
    assert resp.status_code == 202 and resp.get_json()["state"] == "running"
    status = review_context(client.application).jobs.wait(120)
    assert status["state"] == "done", status
    assert status["rendered"] == [GROUP] and status["stale"] == 0
    assert client.get("/api/render").get_json()["stale"] == 0
    assert decide(client, {"source_path": GROUP, "version": version_of(client, GROUP),
                           "image": {"stars": 1}}).status_code == 200


def test_decisions_wait_while_a_render_rewrites_the_files(client) -> None:  # noqa: ANN001
    store = review_context(client.application).store
    store.pause("re-rendering the changed images")
    resp = decide(client, {"source_path": GROUP, "version": 0, "image": {"stars": 1}})
    assert resp.status_code == 423 and "re-rendering" in resp.get_json()["error"]
    store.resume()
    assert decide(client, {"source_path": GROUP, "version": 0, "image": {"stars": 1}}).status_code == 200


def test_one_re_render_at_a_time_and_only_with_the_runs_chart(client, out: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    release = threading.Event()
    monkeypatch.setattr(RenderJobs, "_run", lambda self: (release.wait(30), self.store.resume()))
    assert client.post("/api/render", json={}).status_code == 202
    resp = client.post("/api/render", json={})
    assert resp.status_code == 409 and "running" in resp.get_json()["error"]
    assert client.get("/api/render").get_json()["state"] == "running"
    release.set()
    review_context(client.application).jobs.wait(30)
    for kept in (out / ".postprod" / "chart").glob("*.yaml"):
        kept.unlink()
    resp = client.post("/api/render", json={})
    assert resp.status_code == 422 and "postprod process" in resp.get_json()["error"]
    result = CliRunner().invoke(cli, ["render", str(out)])
    assert result.exit_code == 2 and "holds no chart" in result.output


def test_only_render_needs_an_analysed_shoot(processed: Path, tmp_path: Path) -> None:
    shoot = Path(json.loads((processed / "summary.json").read_text())["shoot"])
    from pipeline.kernel.errors import ConfigError

    with pytest.raises(ConfigError, match="never analysed"):
        process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "fresh", executor="local",
                                  chart="corporate_portrait", only="render"))


# --- the database: kept across reruns, migrated -----------------------------------------------

def test_culling_survives_a_rerun_and_the_database_restores_it(client, out: Path) -> None:  # noqa: ANN001
    decide(client, {"source_path": GROUP, "version": 0, "image": {"flag": "pick", "label": "Purple"}})
    path = out / "instructions" / instruction_name(GROUP)
    doc = json.loads(path.read_text())
    del doc["review"]  # an older postprod rewrote the file without it
    path.write_text(json.dumps(doc, indent=2))
    data = client.get(f"/api/images/{GROUP}").get_json()
    assert data["doc"]["review"]["flag"] == "pick" and data["culling"]["label"] == "Purple"
    assert 'xmp:Label="Purple"' in (out / doc["xmp"]).read_text()


def test_an_older_review_database_is_migrated(out: Path) -> None:
    for name in ("review.sqlite", "review.sqlite-wal", "review.sqlite-shm"):
        (out / name).unlink(missing_ok=True)  # a folder reviewed before culling and decision ids
    with sqlite3.connect(out / "review.sqlite") as con:
        con.executescript("""
            CREATE TABLE images (source_path TEXT PRIMARY KEY, version INTEGER NOT NULL, doc_sha TEXT NOT NULL);
            CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, by TEXT,
                source_path TEXT NOT NULL, op_id TEXT, field TEXT NOT NULL, before_json TEXT, after_json TEXT,
                version INTEGER NOT NULL);
            INSERT INTO audit (at, by, source_path, op_id, field, before_json, after_json, version)
                VALUES ('2026-01-01T00:00:00Z', 'old', '2008_001009.jpg', 'exposure', 'status', '"pending"',
                        '"accepted"', 1);
        """)
    client = create_app(out).test_client()
    assert decide(client, {"source_path": GROUP, "version": 0, "image": {"stars": 2}}).status_code == 200
    history = client.get(f"/api/history/{GROUP}").get_json()["history"]
    assert history[0]["by"] == "old" and history[0]["change_id"] is None and history[-1]["change_id"]
    with sqlite3.connect(out / "review.sqlite") as con:
        assert {r[1] for r in con.execute("PRAGMA table_info(audit)")} >= {"change_id"}
        assert con.execute("SELECT stars FROM culling WHERE source_path = ?", (GROUP,)).fetchone() == (2,)


def test_a_raws_run_preview_is_developed_and_read_back_as_its_light(out: Path) -> None:
    # The run's small preview of a RAW (the report shows it where an image has no exports) is developed through the
    # camera-like curve as its renditions are, and named so; the review's thumbnails take it back to scene light.
    from pipeline.outputs.shoot import DEVELOPED_PREVIEW_SUFFIX
    from pipeline.review.preview import PreviewCache, decode_preview

    rows = {r["source_path"]: r for r in pq.read_table(out / "manifest.parquet").to_pylist()}
    raw, jpeg = rows[RAW]["preview_path"], rows[GROUP]["preview_path"]
    assert raw.endswith(DEVELOPED_PREVIEW_SUFFIX) and not jpeg.endswith(DEVELOPED_PREVIEW_SUFFIX)
    shoot = Path(json.loads((out / "summary.json").read_text())["shoot"])
    light = PreviewCache._thumb_source(out / raw, shoot / RAW, "raw")
    decoded = decode_preview(shoot / RAW, "raw")
    small = np.asarray(Image.fromarray(np.clip(decoded * 255, 0, 255).astype(np.uint8)).resize(light.shape[1::-1]))
    # The same light as the source's own decode, within the 8-bit preview's rounding (ratio of the channel means).
    np.testing.assert_allclose(light.reshape(-1, 3).mean(axis=0) / (small.reshape(-1, 3).mean(axis=0) / 255.0), 1.0,
                               atol=0.08)
    developed = srgb_to_linear(np.asarray(Image.open(out / raw).convert("RGB"), np.float32) / 255).mean()
    assert developed > 1.2 * light.mean()  # the mid-tones lifted by the curve, not linear light encoded
