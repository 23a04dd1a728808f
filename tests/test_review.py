"""The review app: API, write-back to JSON/Parquet/XMP, concurrency, access control, previews."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path

import jsonschema
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image
from review_shoot import doc_of, processed_shoot

from charts.schema import Rendition
from pipeline.cli.review import review
from pipeline.imaging.color import srgb_to_linear
from pipeline.imaging.render import render_renditions
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.outputs.instructions import SCHEMA_PATH, instruction_name
from pipeline.outputs.xmp import xmp_packet
from pipeline.review.app import create_app, is_loopback, review_context
from pipeline.review.preview import (
    after_preview,
    clipped_mask,
    decode_preview,
    pending_proposals,
    preview_adjustments,
    proposed_operations,
    tonal_operations,
)  # fmt: skip
from pipeline.review.store import image_decision

SCHEMA = json.loads(SCHEMA_PATH.read_text())
TOKEN = "s3cret-token-for-tests-0123456789"


# --- fixtures ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def processed(faces_dir: Path, raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A processed shoot: four group photos (faces to brighten), a real RAW, a broken file."""
    return processed_shoot(tmp_path_factory, faces_dir, {
        "raw/Kodak_DC50_DC50IMG_DC0008L.KDC": raw_dir / "Kodak_DC50_DC50IMG_DC0008L.KDC",
        "broken.CR2": b"II*\0" + b"\0" * 50,
    })


def image_with(client, kind: str) -> tuple[str, dict]:  # noqa: ANN001
    """The first planned image with an operation of ``kind``, and that operation."""
    for item in client.get("/api/images").get_json()["images"]:
        if item["url"] is None:
            continue
        doc = client.get(f"/api/images/{item['source_path']}").get_json()["doc"]
        for op in doc["operations"]:
            if op["kind"] == kind:
                return item["source_path"], op
    raise AssertionError(f"no {kind} operation in the test shoot")


def post(client, sp: str, version: int, *changes: dict, **extra):  # noqa: ANN001, ANN003, ANN201
    return client.post(f"/api/images/{sp}", json={"version": version, "changes": list(changes), **extra})


def exiftool_tags(path: Path) -> dict:
    out = subprocess.run(["exiftool", "-j", "-struct", "-XMP-crs:all", str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def parquet_rows(out: Path, sp: str) -> dict[str, dict]:
    return {r["op_id"]: r for r in pq.read_table(out / "instructions.parquet").to_pylist() if r["source_path"] == sp}


# --- listing and reading ------------------------------------------------------------

def test_list_images_with_badges_and_filters(client) -> None:  # noqa: ANN001
    images = client.get("/api/images").get_json()["images"]
    by_path = {i["source_path"]: i for i in images}
    assert set(by_path) == {"2007_007763.jpg", "2008_001009.jpg", "2008_001322.jpg", "2008_002079.jpg",
                            "raw/Kodak_DC50_DC50IMG_DC0008L.KDC", "broken.CR2"}
    broken = by_path["broken.CR2"]
    assert broken["status"] == "failed" and broken["url"] is None and broken["error"]
    assert by_path["2008_001009.jpg"]["faces_to_brighten"] == 1  # the face in the shadow (tests/group_shoot.py)
    assert all(i["review_state"] == "pending" for i in images if i["url"])

    flagged = client.get("/api/images?verdict=flag").get_json()["images"]
    assert flagged and all(i["verdict"] == "flag" for i in flagged)
    with_faces = client.get("/api/images?faces=1").get_json()["images"]
    assert {i["source_path"] for i in with_faces} == {
        sp for sp, i in by_path.items() if i.get("faces_to_brighten")}
    assert len(with_faces) < len(images)
    failed = client.get("/api/images?verdict=failed").get_json()["images"]
    assert [i["source_path"] for i in failed] == ["broken.CR2"]


def test_the_gallery_filters_on_what_a_frame_is_flagged_for(client, out: Path) -> None:  # noqa: ANN001
    def flagged_for(check: str) -> set[str]:  # from the instruction files as the plan wrote them
        return {sp for sp in ("2007_007763.jpg", "2008_001009.jpg", "2008_001322.jpg", "2008_002079.jpg",
                              "raw/Kodak_DC50_DC50IMG_DC0008L.KDC")
                if any(o["kind"] in ("flag", "reject") and o["params"].get("check") == check
                       and o["review"]["status"] != "rejected" for o in doc_of(out, sp)["operations"])}

    listing = client.get("/api/images").get_json()
    assert listing["checks"], "the test shoot has frames flagged for a check"
    for check, n in listing["checks"].items():
        chosen = {i["source_path"] for i in client.get(f"/api/images?check={check}").get_json()["images"]}
        assert chosen == flagged_for(check) and len(chosen) == n, check
        # the counts are the shoot's, whatever the filters
        assert client.get(f"/api/images?check={check}&verdict=reject").get_json()["checks"] == listing["checks"]
    check, n = next(iter(listing["checks"].items()))
    sp = sorted(flagged_for(check))[0]
    doc = client.get(f"/api/images/{sp}").get_json()
    op = next(o for o in doc["doc"]["operations"] if o["params"].get("check") == check)
    assert post(client, sp, doc["version"], {"op_id": op["op_id"], "status": "rejected"}).status_code == 200
    after = client.get(f"/api/images?check={check}").get_json()
    assert sp not in {i["source_path"] for i in after["images"]}  # a flag turned down no longer holds the frame
    assert after["checks"].get(check, 0) == n - 1
    assert client.get("/api/images?check=no_such_check").get_json()["images"] == []


def test_get_image_returns_the_document_and_its_version(client, out: Path) -> None:  # noqa: ANN001
    data = client.get("/api/images/2008_001009.jpg").get_json()
    assert data["version"] == 0
    assert data["doc"] == doc_of(out, "2008_001009.jpg")
    jsonschema.validate(data["doc"], SCHEMA)
    assert data["next"] == "2008_001322.jpg" and data["prev"] == "2007_007763.jpg"
    assert client.get("/api/images/nope.jpg").status_code == 404
    assert client.get("/api/images/broken.CR2").status_code == 404  # failed: no plan to review
    assert client.get("/image/2008_001009.jpg").status_code == 200
    assert client.get("/").status_code == 200


# --- changes, written back ----------------------------------------------------------

def test_accept_is_written_to_json_parquet_and_xmp(client, out: Path) -> None:  # noqa: ANN001
    sp, op = image_with(client, "exposure")
    resp = post(client, sp, 0, {"op_id": op["op_id"], "status": "accepted"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["version"] == 1
    doc = doc_of(out, sp)
    jsonschema.validate(doc, SCHEMA)
    review_ = next(o for o in doc["operations"] if o["op_id"] == op["op_id"])["review"]
    assert review_["status"] == "accepted" and review_["by"] == "Ana"
    at = datetime.fromisoformat(review_["at"])
    assert at.utcoffset().total_seconds() == 0
    row = parquet_rows(out, sp)[op["op_id"]]
    assert (row["review_status"], row["reviewed_by"], row["reviewed_at"]) == ("accepted", "Ana", review_["at"])
    assert pq.read_schema(out / "instructions.parquet").metadata[b"postprod.chart"] == b"corporate_portrait"
    assert (out / doc["xmp"]).read_text() == xmp_packet(doc, image_decision(doc))
    # The name typed in the browser wins over --reviewer.
    resp = post(client, sp, 1, {"op_id": op["op_id"], "status": "done"}, reviewer="Bo")
    assert next(o for o in doc_of(out, sp)["operations"] if o["op_id"] == op["op_id"])["review"]["by"] == "Bo"


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed (CI installs it)")
def test_changed_face_amount_reaches_the_xmp(client, out: Path) -> None:  # noqa: ANN001
    sp, op = image_with(client, "brighten_face")
    before = client.get(f"/api/images/{sp}").get_json()
    resp = post(client, sp, before["version"], {"op_id": op["op_id"], "ev": 0.35})
    assert resp.status_code == 200, resp.get_json()
    data = resp.get_json()
    changed = next(o for o in data["doc"]["operations"] if o["op_id"] == op["op_id"])
    assert changed["params"]["ev"] == 0.35
    assert changed["review"]["status"] == "accepted"  # changing the amount accepts the new amount
    assert data["previews"]["after"] != before["previews"]["after"]  # a new "after" is rendered
    doc = doc_of(out, sp)
    jsonschema.validate(doc, SCHEMA)
    assert json.loads(parquet_rows(out, sp)[op["op_id"]]["params_json"])["ev"] == 0.35
    tags = exiftool_tags(out / doc["xmp"])
    face_evs = sorted(float(c["LocalExposure2012"]) for c in tags["CircularGradientBasedCorrections"])
    assert 0.35 in face_evs
    history = client.get(f"/api/history/{sp}").get_json()["history"]
    assert {"op_id": op["op_id"], "field": "ev", "before": op["params"]["ev"], "after": 0.35, "by": "Ana"}.items() \
        <= history[-2].items()


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed (CI installs it)")
def test_xmp_says_who_decided_when_and_the_image_decision(client, out: Path) -> None:  # noqa: ANN001
    """Who and when of the latest decision reach the packet and the embedded copy; so does an image-level
    decision (rating, label, keywords) that the document carries (the culling screen will write it)."""
    sp, op = image_with(client, "exposure")
    assert post(client, sp, 0, {"op_id": op["op_id"], "status": "accepted"}).status_code == 200
    doc = doc_of(out, sp)
    at = next(o for o in doc["operations"] if o["op_id"] == op["op_id"])["review"]["at"]

    def review_tags(path: Path) -> dict:
        res = subprocess.run(["exiftool", "-j", "-n", "-XMP-xmp:Rating", "-XMP-xmp:Label", "-XMP-dc:Subject",
                              "-XMP-postprodReview:all", str(path)], capture_output=True, text=True, check=True)
        return json.loads(res.stdout)[0]

    store = review_context(client.application).store
    assert store.flush_embeds()  # the embedded copy follows the packet in the background
    for path in (out / doc["xmp"], out / doc["xmp_copy"]):
        tags = review_tags(path)
        assert tags["ReviewedBy"] == "Ana" and tags["ReviewedAt"].replace(":", "").replace("-", "") == \
            at.replace(":", "").replace("-", "").replace("T", " ")
        assert "Rating" not in tags  # nobody rated the image yet
    doc["review"] = {"rating": -1, "label": "Red", "keywords": ["reshoot"], "by": "Cy", "at": "2000-01-01T00:00:00Z"}
    (out / "instructions" / instruction_name(sp)).write_text(json.dumps(doc))
    version = client.get(f"/api/images/{sp}").get_json()["version"]
    assert post(client, sp, version, {"op_id": op["op_id"], "comment": "ok"}).status_code == 200
    assert store.flush_embeds()
    for path in (out / doc["xmp"], out / doc["xmp_copy"]):
        tags = review_tags(path)
        assert (tags["Rating"], tags["Label"], tags["Subject"]) == (-1, "Red", "reshoot")
        assert tags["ReviewedBy"] == "Ana"  # the comment is newer than Cy's rating


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed (CI installs it)")
def test_rejected_operation_leaves_the_xmp(client, out: Path) -> None:  # noqa: ANN001
    sp, op = image_with(client, "brighten_face")
    n = len(exiftool_tags(out / doc_of(out, sp)["xmp"])["CircularGradientBasedCorrections"])
    assert post(client, sp, 0, {"op_id": op["op_id"], "status": "rejected"}).status_code == 200
    tags = exiftool_tags(out / doc_of(out, sp)["xmp"])
    assert len(tags.get("CircularGradientBasedCorrections", [])) == n - 1
    assert parquet_rows(out, sp)[op["op_id"]]["review_status"] == "rejected"
    summary = doc_of(out, sp)["summary"]  # the one-line summary follows the review
    assert (f"{n - 1} face" in summary) if n > 1 else ("to brighten" not in summary), summary


def test_comment_and_bulk_actions(client, out: Path) -> None:  # noqa: ANN001
    sp = "2008_001322.jpg"  # automatic corrections and a flag (its clipped highlights)
    ops = doc_of(out, sp)["operations"]
    assert post(client, sp, 0, {"op_id": ops[0]["op_id"], "comment": "  warmer than the chart, keep  "}).status_code == 200
    doc = doc_of(out, sp)
    assert doc["operations"][0]["review"]["comment"] == "warmer than the chart, keep"
    assert doc["operations"][0]["review"]["status"] == "pending"
    assert parquet_rows(out, sp)[ops[0]["op_id"]]["comment"] == "warmer than the chart, keep"
    # Gallery keys: a = accept every pending automatic correction (a flag or a retoucher's task is
    # answered one by one: bulk accept once accepted flags too), d = done for every one not rejected.
    # The second automatic correction is rejected by hand (which one it is depends on the plan).
    k = next(i for i, o in enumerate(ops) if i > 0 and o["applied_by"] == "renderer" and o["kind"] not in ("flag", "reject"))
    assert post(client, sp, 1, {"op_id": ops[k]["op_id"], "status": "rejected"}).status_code == 200
    resp = client.post(f"/api/images/{sp}", json={"version": 2, "all": {"status": "accepted"}})
    assert resp.status_code == 200
    after = doc_of(out, sp)["operations"]
    statuses = [o["review"]["status"] for o in after]
    by_hand = [o for o in after if o["applied_by"] == "retoucher" or o["kind"] in ("flag", "reject")]
    assert by_hand and all(o["review"]["status"] == "pending" for o in by_hand)
    assert statuses[k] == "rejected" and statuses.count("accepted") == len(statuses) - 1 - len(by_hand)
    resp = client.post(f"/api/images/{sp}", json={"version": 3, "all": {"status": "done"}})
    item = next(i for i in client.get("/api/images").get_json()["images"] if i["source_path"] == sp)
    assert item["review_state"] == "done" and item["counts"]["rejected"] == 1
    assert client.get("/api/images?review=done").get_json()["images"][0]["source_path"] == sp
    for p in (out / "instructions").glob("*.json"):
        jsonschema.validate(json.loads(p.read_text()), SCHEMA)


def test_stale_tab_gets_409_with_the_current_state(client, out: Path) -> None:  # noqa: ANN001
    sp = "2008_001009.jpg"
    tab1 = client.get(f"/api/images/{sp}").get_json()
    tab2 = client.get(f"/api/images/{sp}").get_json()
    op_id = tab1["doc"]["operations"][0]["op_id"]
    assert post(client, sp, tab1["version"], {"op_id": op_id, "status": "accepted"}).status_code == 200
    written = (out / "instructions" / instruction_name(sp)).read_bytes()
    resp = post(client, sp, tab2["version"], {"op_id": op_id, "status": "rejected"})
    assert resp.status_code == 409
    body = resp.get_json()
    assert body["version"] == tab1["version"] + 1
    assert body["doc"]["operations"][0]["review"]["status"] == "accepted"
    assert (out / "instructions" / instruction_name(sp)).read_bytes() == written  # nothing from the stale tab


def test_crop_edits_are_checked(client, out: Path) -> None:  # noqa: ANN001
    sp, op = image_with(client, "crop")
    x, y, w, h = op["params"]["box"]
    doc = doc_of(out, sp)
    W = doc["image"]["width"]
    smaller = [x + w * 0.05, y + h * 0.05, w * 0.9, h * 0.9]
    resp = post(client, sp, 0, {"op_id": op["op_id"], "box": smaller})
    assert resp.status_code == 200, resp.get_json()
    saved = next(o for o in doc_of(out, sp)["operations"] if o["op_id"] == op["op_id"])["params"]["box"]
    assert saved == pytest.approx(smaller, abs=0.051)
    bad = [
        {"op_id": op["op_id"], "box": [0, 0, w, h * 0.5]},  # another aspect
        {"op_id": op["op_id"], "box": [W - w / 2, 0, w * 0.9, h * 0.9]},  # leaves the image
        {"op_id": op["op_id"], "ev": 1.0},  # a crop has no EV
        {"op_id": "no-such-op", "status": "accepted"},
        {"op_id": op["op_id"], "status": "maybe"},
        {"op_id": op["op_id"], "box": [0, 0, "w", 1]},
    ]
    for change in bad:
        resp = post(client, sp, 1, change)
        assert resp.status_code == 422, (change, resp.get_json())
    sp2, exposure = image_with(client, "exposure")
    version = client.get(f"/api/images/{sp2}").get_json()["version"]
    assert post(client, sp2, version, {"op_id": exposure["op_id"], "ev": 9.0}).status_code == 422
    assert client.post(f"/api/images/{sp}", json={"changes": []}).status_code == 400
    assert client.post(f"/api/images/{sp}", json={"version": 1, "all": {}}).status_code == 422


def test_state_survives_a_restart_in_wal_mode(out: Path) -> None:
    app = create_app(out, reviewer="Ana")
    sp = "2008_002079.jpg"
    op_id = doc_of(out, sp)["operations"][0]["op_id"]
    assert post(app.test_client(), sp, 0, {"op_id": op_id, "status": "done"}).status_code == 200
    again = create_app(out).test_client().get(f"/api/images/{sp}").get_json()
    assert again["version"] == 1 and again["doc"]["operations"][0]["review"]["status"] == "done"
    with sqlite3.connect(out / "review.sqlite") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT count(*) FROM audit WHERE source_path = ?", (sp,)).fetchone()[0] == 1


def test_edits_survive_a_replan_unless_the_plan_changed(client, out: Path) -> None:  # noqa: ANN001
    sp, op = image_with(client, "brighten_face")
    planned_ev = op["params"]["ev"]
    assert post(client, sp, 0, {"op_id": op["op_id"], "ev": 0.2}).status_code == 200
    shoot = Path(json.loads((out / "summary.json").read_text())["shoot"])
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="corporate_portrait", only="plan"))
    replanned = next(o for o in doc_of(out, sp)["operations"] if o["op_id"] == op["op_id"])
    assert replanned["params"]["ev"] == 0.2  # pipeline.kernel.run keeps the reviewer's amount over the plan's
    assert replanned["review"]["status"] == "accepted" and replanned["review"]["params"] == {"ev": 0.2}
    assert client.get(f"/api/images/{sp}").get_json()["planned"] == {op["op_id"]: {"ev": planned_ev}}
    data = client.get(f"/api/images/{sp}").get_json()
    kept = next(o for o in data["doc"]["operations"] if o["op_id"] == op["op_id"])
    assert kept["params"]["ev"] == 0.2 and data["version"] >= 1
    assert next(o for o in doc_of(out, sp)["operations"] if o["op_id"] == op["op_id"])["params"]["ev"] == 0.2
    assert json.loads(parquet_rows(out, sp)[op["op_id"]]["params_json"])["ev"] == 0.2
    # A plan that now proposes another amount (a chart change): the edit no longer applies.
    path = out / "instructions" / instruction_name(sp)
    doc = json.loads(path.read_text())
    next(o for o in doc["operations"] if o["op_id"] == op["op_id"])["params"]["ev"] = planned_ev + 0.5
    path.write_text(json.dumps(doc, indent=2))
    data = client.get(f"/api/images/{sp}").get_json()
    now = next(o for o in data["doc"]["operations"] if o["op_id"] == op["op_id"])
    assert now["params"]["ev"] == planned_ev + 0.5 and now["review"]["status"] == "pending"
    assert "params" not in now["review"]  # a rerun of process will not bring the dropped edit back
    jsonschema.validate(doc_of(out, sp), SCHEMA)


# --- access control -------------------------------------------------------------------

def test_token_is_required_on_every_request(out: Path) -> None:
    client = create_app(out, token=TOKEN).test_client()
    for url in ("/", "/api/images", "/image/2008_001009.jpg", "/static/review.js", "/preview/thumb/2008_001009.jpg",
                "/files/summary.json", "/api/history/2008_001009.jpg",
                "/api/deliveries/2008_001009.jpg?op=crop-4x5&box=0,0,40,50"):
        assert client.get(url).status_code == 401, url
    assert client.get("/api/images", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/images", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/?token=wrong").status_code == 401
    resp = client.get(f"/?verdict=flag&token={TOKEN}")
    assert resp.status_code == 303 and resp.headers["Location"] == "/?verdict=flag"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    # The test client keeps the cookie: the rest of the session works without the query.
    assert client.get("/api/images").status_code == 200
    assert client.get("/static/review.js").status_code == 200
    resp = post(client, "2008_001009.jpg", 0, {"op_id": "exposure", "status": "accepted"})
    assert resp.status_code == 200
    # With a token the server may be reached by any host name (it listens on the network).
    bearer = {"Authorization": f"Bearer {TOKEN}", "Host": "studio-pc.lan:8765"}
    assert client.get("/api/images", headers=bearer).status_code == 200


def test_refuses_to_listen_on_the_network_without_a_token(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POSTPROD_REVIEW_TOKEN", raising=False)
    result = CliRunner().invoke(review, [str(out), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "without an access token" in result.output and "POSTPROD_REVIEW_TOKEN" in result.output
    result = CliRunner().invoke(review, [str(out), "--host", "0.0.0.0", "--token", "short"])
    assert result.exit_code == 2 and "at least 16" in result.output
    result = CliRunner().invoke(review, [str(out.parent / "nothing-here")])
    assert result.exit_code == 2
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.1.2.3")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10") and not is_loopback("example.com")


def test_a_port_in_use_is_a_usage_error(out: Path) -> None:
    # Another review (or any program) on the port: werkzeug printed its own message and exited 1, "internal error".
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(review, [str(out), "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.output


def test_every_option_has_help() -> None:
    assert review.help
    for param in review.params:
        if param.param_type_name == "option":
            assert param.help, param.name


def test_loopback_server_refuses_other_host_names_and_cross_site_posts(client) -> None:  # noqa: ANN001
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1.
    assert client.get("/api/images", headers={"Host": "evil.example:8765"}).status_code == 421
    assert client.get("/api/images", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    resp = client.post("/api/images/2008_001009.jpg", json={"version": 0, "changes": [{"op_id": "exposure",
                       "status": "rejected"}]}, headers={"Origin": "http://evil.example"})
    assert resp.status_code == 403
    resp = client.post("/api/images/2008_001009.jpg", data={"version": "0"})  # a plain HTML form
    assert resp.status_code == 415


@pytest.mark.parametrize("url", [
    "/files/../manifest.parquet",
    "/files/..%2f..%2fetc%2fpasswd",
    "/files/%2e%2e/%2e%2e/etc/passwd",
    "/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/files//etc/passwd",
    "/files/%2fetc%2fpasswd",
    "/files/review.sqlite",
    "/files/.postprod/journal",
    "/files/xmp/escape.xmp",
    "/files/linked/passwd",
    "/preview/before/..%2f..%2fetc%2fpasswd",
    "/preview/before//etc/passwd",
    "/preview/before/%2e%2e/manifest.parquet",
    "/preview/source/2008_001009.jpg",
    "/api/images/..%2fmanifest.parquet",
    "/api/images//etc/passwd",
    "/static/..%2fapp.py",
    "/static/%2e%2e/app.py",
])
def test_no_path_traversal(client, out: Path, url: str) -> None:  # noqa: ANN001
    (out / "xmp" / "escape.xmp").symlink_to("/etc/passwd")
    (out / "linked").symlink_to("/etc", target_is_directory=True)
    # Werkzeug answers "//" with a redirect to the merged path, which must then be refused too.
    resp = client.get(url, follow_redirects=True)
    assert resp.status_code in (400, 404), (url, resp.status_code)
    assert b"root:" not in resp.data


def test_files_inside_the_output_folder_are_served(client, out: Path) -> None:  # noqa: ANN001
    resp = client.get("/files/summary.json")
    assert resp.status_code == 200 and json.loads(resp.data)["shoot"]
    data = client.get("/api/images/2008_001009.jpg").get_json()
    assert json.loads(client.get(data["files"]["instructions"]).data)["source_path"] == "2008_001009.jpg"
    assert b"crs:" in client.get(data["files"]["xmp"]).data


# --- previews ---------------------------------------------------------------------------

def test_previews_are_rendered_and_cached(client, out: Path) -> None:  # noqa: ANN001
    data = client.get("/api/images/2008_001322.jpg").get_json()
    before = client.get(data["previews"]["before"])
    assert before.status_code == 200 and before.mimetype == "image/jpeg"
    im = Image.open(io.BytesIO(before.data))
    assert im.size == (data["doc"]["image"]["width"], data["doc"]["image"]["height"])  # small source, not upscaled
    clip = client.get(data["previews"]["clip"])
    assert clip.status_code == 200 and clip.mimetype == "image/png"
    mask = np.asarray(Image.open(io.BytesIO(clip.data)))
    assert mask.shape[2] == 4
    shoot = Path(json.loads((out / "summary.json").read_text())["shoot"])
    expected = clipped_mask(decode_preview(shoot / "2008_001322.jpg", "raster"))
    assert np.array_equal(mask[..., 3] > 0, expected) and expected.sum() > 0
    for variant in ("after", "thumb"):
        assert client.get(data["previews"].get(variant, "/preview/thumb/2008_001322.jpg")).status_code == 200
    # Nothing proposed to a person here: no "proposed" picture offered, and its tiles are the "after" ones.
    assert data["previews"]["proposed"] is None
    url = data["tiles"]["url"]
    tiles = {v: client.get(url.format(variant=v, scale=1, col=0, row=0)) for v in ("after", "proposed")}
    assert tiles["proposed"].status_code == 200 and tiles["proposed"].data == tiles["after"].data
    raw = client.get("/preview/thumb/raw/Kodak_DC50_DC50IMG_DC0008L.KDC")
    assert raw.status_code == 200 and max(Image.open(io.BytesIO(raw.data)).size) <= 400
    names = sorted(p.name for p in (out / "previews").iterdir())
    assert not [n for n in names if n.endswith(".tmp")]
    assert any(n.endswith(".clip.png") for n in names) and any(".after-" in n for n in names)


def _linear(srgb8: np.ndarray) -> np.ndarray:
    return srgb_to_linear(srgb8.astype(np.float32) / 255)


def test_exposure_and_white_balance_are_gains_in_linear_light() -> None:
    rgb = np.full((4, 6, 3), 0.1, dtype=np.float32)
    ops = [{"kind": "exposure", "applied_by": "renderer", "params": {"ev": 1.5}},
           {"kind": "white_balance", "applied_by": "renderer", "params": {"gains": [0.5, 1.0, 2.0]}}]
    out = after_preview(rgb, ops, width=6, height=4)
    assert out.dtype == np.uint8 and out.shape == (4, 6, 3)
    expected = [0.1 * 2**1.5 * 0.5, 0.1 * 2**1.5, 0.1 * 2**1.5 * 2.0]
    np.testing.assert_allclose(_linear(out[0, 0]), expected, rtol=0.01)  # 8-bit sRGB: within a code
    np.testing.assert_array_equal(rgb, np.float32(0.1))  # input untouched


def test_faces_are_lifted_as_the_renderer_lifts_them() -> None:
    # A 200 px preview of a 400 px image: the boxes are in full-resolution pixels.
    rgb = np.full((200, 200, 3), 0.2, dtype=np.float32)

    def face(box: list[float], ev: float) -> dict:
        return {"kind": "brighten_face", "applied_by": "renderer", "params": {"box": box, "ev": ev, "feather_px": 40}}

    out = _linear(after_preview(rgb, [face([100, 100, 200, 200], 1.0)], width=400, height=400)[..., 0])
    assert out[100, 100] == pytest.approx(0.4, rel=0.01)  # centre: full gain
    assert out[100, 149] == pytest.approx(0.4, rel=0.01)  # just inside the ellipse: still full gain
    assert out[5, 5] == pytest.approx(0.2, rel=0.01)  # far outside: untouched
    assert out[100, 171] == pytest.approx(0.2, rel=0.01)  # past ellipse + feather (340 full-res px): untouched
    ramp = out[100, 100:175]
    assert np.all(np.diff(ramp) <= 1e-6) and ramp[-1] < ramp[0]  # falls off monotonically, no ring
    # Overlapping faces take the larger lift; two lifts do not multiply.
    both = _linear(after_preview(rgb, [face([100, 100, 120, 120], 1.0), face([140, 140, 120, 120], 0.5)],
                                 width=400, height=400)[..., 0])
    assert both[100, 100] == pytest.approx(0.4, rel=0.01)  # inside both: 1 EV, not 1.5
    with pytest.raises(ValueError, match="no area"):
        after_preview(rgb, [face([0, 0, 0, 5], 1.0)], width=400, height=400)


def test_the_after_preview_is_the_renderers_picture() -> None:
    """Same operations, same size: the preview and an uncropped sRGB rendition are the same pixels."""
    rng = np.random.default_rng(7)
    rgb = rng.uniform(0.01, 0.6, size=(60, 80, 3)).astype(np.float32)
    ops = [
        {"op_id": "exposure", "kind": "exposure", "applied_by": "renderer", "params": {"ev": 0.7}},
        {"op_id": "white_balance", "kind": "white_balance", "applied_by": "renderer",
         "params": {"gains": [1.1, 1.0, 0.8]}},
        {"op_id": "brighten_face-1", "kind": "brighten_face", "applied_by": "renderer",
         "params": {"box": [40, 30, 60, 60], "ev": 0.8, "feather_px": 15}},
        {"op_id": "brighten_face-2", "kind": "brighten_face", "applied_by": "renderer",
         "params": {"box": [80, 50, 50, 50], "ev": 0.5, "feather_px": 12}},
    ]
    preview = after_preview(rgb, ops, width=160, height=120)
    rendition = Rendition(width_px=80, height_px=60, sharpen_amount=0.0)
    (export,) = render_renditions(rgb, 160, 120, preview_adjustments(ops), {"web": rendition}).values()
    np.testing.assert_array_equal(preview, export)


def test_only_the_renderers_unrejected_operations_are_previewed() -> None:
    def op(kind: str, applied_by: str = "renderer", status: str = "pending") -> dict:
        return {"kind": kind, "applied_by": applied_by, "params": {}, "review": {"status": status}}

    doc = {"operations": [op("exposure"), op("brighten_face", "retoucher"), op("white_balance", status="rejected"),
                          op("crop"), op("brighten_face", status="accepted")]}
    assert [o["kind"] for o in tonal_operations(doc)] == ["exposure", "brighten_face"]
    # A person's lift the plan marks to be rendered once accepted (a lone face near a lit face's level).
    def confirmable(status: str) -> dict:
        return {**op("brighten_face", "retoucher", status), "params": {"render_on_accept": True}}
    assert tonal_operations({"operations": [confirmable("pending"), confirmable("rejected")]}) == []
    assert [o["kind"] for o in tonal_operations({"operations": [confirmable("accepted")]})] == ["brighten_face"]


def test_the_proposed_preview_accepts_every_pending_proposal() -> None:
    def op(kind: str, status: str, proposal: bool = True, applied_by: str = "retoucher") -> dict:
        return {"kind": kind, "applied_by": applied_by, "params": {"render_on_accept": True} if proposal else {},
                "review": {"status": status}}

    doc = {"operations": [op("white_balance", "pending"), op("exposure", "renderer", False, "renderer"),
                          op("exposure", "rejected"), op("brighten_face", "accepted"),
                          op("brighten_face", "pending", False), op("crop", "pending")]}
    # Pending: the white balance; the rejected darkening and the person's own lift (no render_on_accept) are not.
    assert [o["kind"] for o in pending_proposals(doc)] == ["white_balance"]
    proposed = proposed_operations(doc)
    assert [o["kind"] for o in proposed] == ["white_balance", "exposure", "brighten_face"]
    assert proposed[0]["review"]["status"] == "accepted" and doc["operations"][0]["review"]["status"] == "pending"
    assert [o["kind"] for o in tonal_operations(doc)] == ["exposure", "brighten_face"]  # "after": as before
    # The renderer's picture of them: the white balance's gains are in it.
    rgb = np.full((4, 6, 3), 0.1, dtype=np.float32)
    doc["operations"][0]["params"]["gains"] = [0.5, 1.0, 2.0]
    doc["operations"][1]["params"]["ev"] = 0.0
    doc["operations"][3]["params"].update({"box": [0, 0, 1, 1], "ev": 0.0, "feather_px": 1})
    out = after_preview(rgb, proposed_operations(doc), width=6, height=4)
    np.testing.assert_allclose(_linear(out[0, 0]), [0.05, 0.1, 0.2], rtol=0.02)


def test_clipped_mask_counts_any_channel_at_white() -> None:
    rgb = np.zeros((1, 4, 3), dtype=np.float32)
    rgb[0, 1] = (0.996, 0.2, 0.2)
    rgb[0, 2] = (0.99, 0.99, 0.99)
    rgb[0, 3] = (0.2, 0.2, 1.0)
    assert clipped_mask(rgb).tolist() == [[False, True, False, True]]


def test_a_crop_turned_to_the_pictures_orientation_keeps_its_turned_aspect() -> None:
    # A 3:2 crop turned to an upright picture (the chart's ``orientation: source``) is 2:3: a reviewer's move keeps
    # that, and a box of the written 3:2 is another aspect.
    from pipeline.review.store import ReviewError, ReviewStore

    op = {"op_id": "crop-3x2", "params": {"aspect": "3:2", "box": [0, 0, 200, 300], "aspect_turned": True}}
    ReviewStore._check_crop_shape(op, (10.0, 20.0, 200.0, 300.0))
    with pytest.raises(ReviewError, match="3:2 aspect, turned"):
        ReviewStore._check_crop_shape(op, (10.0, 20.0, 300.0, 200.0))
    fixed = {**op, "params": {"aspect": "3:2", "box": [0, 0, 300, 200]}}
    ReviewStore._check_crop_shape(fixed, (0.0, 0.0, 300.0, 200.0))
    # A crop the chart lets follow the picture takes either orientation from a reviewer, and says which it has.
    free = {"op_id": "crop-3x2", "params": {"aspect": "3:2", "box": [0, 0, 200, 300], "aspect_turned": True,
                                            "orientation": "source"}}
    assert ReviewStore._check_crop_shape(free, (0.0, 0.0, 300.0, 200.0)) is False
    assert ReviewStore._check_crop_shape(free, (0.0, 0.0, 200.0, 300.0)) is True
    with pytest.raises(ReviewError, match="3:2 aspect"):
        ReviewStore._check_crop_shape(free, (0.0, 0.0, 250.0, 250.0))


@pytest.fixture(scope="module")
def upright_print(faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An upright group photo (360 x 480), processed under the print chart (its 4:5 and 2:3 crops follow the picture)."""
    shoot = tmp_path_factory.mktemp("upright")
    shutil.copy(faces_dir / "2008_001009.jpg", shoot / "upright.jpg")
    out = tmp_path_factory.mktemp("upright-out")
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="print"))
    return out


def test_a_reviewer_turns_a_crop_that_follows_the_picture(upright_print: Path, tmp_path: Path) -> None:
    # An upright picture's 8x10 (4:5) crop, upright as planned, turned by a reviewer to a 10x8 (a print lab prints
    # either way round): the document says the crop is turned, the edit survives a rerun of the plan, and turning it
    # back is the plan's crop again.
    out = tmp_path / "out"
    shutil.copytree(upright_print, out)
    client = create_app(out, reviewer="Ana").test_client()
    doc = doc_of(out, "upright.jpg")
    W, H = doc["image"]["width"], doc["image"]["height"]
    assert H > W
    crop = next(o for o in doc["operations"] if o["op_id"] == "crop-4x5")
    assert crop["params"]["orientation"] == "source" and not crop["params"].get("aspect_turned")
    planned = crop["params"]["box"]
    assert planned[2] < planned[3]  # 4:5 on an upright picture, as written
    wide = [0.0, round((H - W * 4 / 5) / 2, 1), float(W), round(W * 4 / 5, 1)]  # 5:4, the picture's whole width
    # Asked before saving, what the turned box would deliver; a box that is not one is refused.
    draft = client.get("/api/deliveries/upright.jpg?op=crop-4x5&box=" + ",".join(map(str, wide))).get_json()
    assert [(d["name"], d["width"], d["height"], d["beyond"]) for d in draft["deliveries"]] == [
        ("print_8x10", 3000, 2400, True)]
    assert client.get("/api/deliveries/upright.jpg?op=crop-4x5&box=0,0,0,5").status_code == 422
    # The faces the crop frames: the plan's keeps both whole; a draft whose top edge runs through a face cuts it.
    assert client.get("/api/images/upright.jpg").get_json()["crop_faces"]["crop-4x5"] == {
        "cut": [], "left_out": [], "framed": 2}
    fx, fy, fw, fh = doc["faces"][0]["box"]
    low = [0.0, round(fy + fh / 2, 1), float(W), round(W * 4 / 5, 1)]
    judged = client.get("/api/deliveries/upright.jpg?op=crop-4x5&box=" + ",".join(map(str, low))).get_json()
    assert judged["faces"]["cut"] == [1] and judged["faces"]["framed"] == 2
    # "Turn to 5:4" asks for the turned box placed as the plan places a crop: the whole width, no face cut.
    placed = client.get("/api/deliveries/upright.jpg?op=crop-4x5&turn=1&box=" + ",".join(map(str, planned))).get_json()
    x, y, w, h = placed["box"]
    assert w == pytest.approx(W, abs=0.5) and w / h == pytest.approx(5 / 4, rel=0.01)
    assert placed["faces"] == {"cut": [], "left_out": [], "framed": 2}
    assert client.get("/api/deliveries/upright.jpg?op=exposure&box=0,0,5,5").status_code == 404
    resp = post(client, "upright.jpg", 0, {"op_id": "crop-4x5", "box": wide})
    assert resp.status_code == 200, resp.get_json()
    turned = next(o for o in doc_of(out, "upright.jpg")["operations"] if o["op_id"] == "crop-4x5")
    assert turned["params"]["aspect_turned"] is True and turned["params"]["box"] == pytest.approx(wide, abs=0.051)
    # The instruction file the app wrote judges the enlargement on the turned box at once, not at the next run.
    written = next(o for o in doc_of(out, "upright.jpg")["operations"] if o["op_id"] == "flag-upscale-print_8x10")
    assert written["params"]["upscale"] == pytest.approx(3000 / wide[2], abs=0.01) and written["params"]["reviewed"]
    assert turned["review"]["status"] == "accepted" and turned["review"]["params"]["aspect_turned"] is True
    # The review shows what the turned crop's 8x10 will be: printed 10x8, its box turned, enlarged and flagged; and
    # the plan's values of what was changed, which "Plan's values" takes the crop back to.
    payload = client.get("/api/images/upright.jpg").get_json()
    assert payload["planned"]["crop-4x5"] == {"box": planned, "aspect_turned": None}
    delivered = payload["deliveries"]["crop-4x5"]
    assert [(d["name"], d["width"], d["height"], d["beyond"], d["action"]) for d in delivered] == [
        ("print_8x10", 3000, 2400, True, "flag")]
    assert delivered[0]["scale"] == pytest.approx(3000 / W, abs=0.01)
    jsonschema.validate(doc_of(out, "upright.jpg"), SCHEMA)
    # The 2:3 crop of the same chart is left as planned; a square box is neither orientation.
    other = next(o for o in doc_of(out, "upright.jpg")["operations"] if o["op_id"] == "crop-2x3")
    assert other["params"] == next(o for o in doc["operations"] if o["op_id"] == "crop-2x3")["params"]
    assert post(client, "upright.jpg", 1, {"op_id": "crop-4x5", "box": [0, 0, W / 2, W / 2]}).status_code == 422
    # A rerun of the plan keeps the reviewer's turn.
    shoot = Path(json.loads((out / "summary.json").read_text())["shoot"])
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="print", only="plan"))
    replanned = next(o for o in doc_of(out, "upright.jpg")["operations"] if o["op_id"] == "crop-4x5")
    assert replanned["params"]["aspect_turned"] is True and replanned["params"]["box"] == pytest.approx(wide, abs=0.051)
    # Its enlargement flag is judged on the turned box (printed 10x8 from the picture's width), not the plan's.
    planned_flag = next(o for o in doc["operations"] if o["op_id"] == "flag-upscale-print_8x10")
    assert planned_flag["params"]["upscale"] == pytest.approx(2400 / planned[2], abs=0.01)
    flag = next(o for o in doc_of(out, "upright.jpg")["operations"] if o["op_id"] == "flag-upscale-print_8x10")
    assert flag["params"]["upscale"] == pytest.approx(3000 / wide[2], abs=0.01) and "(3000x2400)" in flag["reason"]
    # Turned back to the planned box: the plan's crop, no edit left.
    version = client.get("/api/images/upright.jpg").get_json()["version"]
    assert post(client, "upright.jpg", version, {"op_id": "crop-4x5", "box": planned}).status_code == 200
    back = next(o for o in doc_of(out, "upright.jpg")["operations"] if o["op_id"] == "crop-4x5")
    assert not back["params"].get("aspect_turned") and "params" not in back["review"]
    assert next(o for o in doc_of(out, "upright.jpg")["operations"]
                if o["op_id"] == "flag-upscale-print_8x10") == planned_flag  # the plan's flag, word for word
    jsonschema.validate(doc_of(out, "upright.jpg"), SCHEMA)
    # A crop turned by 3 deg of its own, then turned the other way round across the picture's whole width: the box
    # cannot fit at 3 deg, and is shrunk about its centre to fit (as the plan's are), not refused.
    assert post(client, "upright.jpg", version + 1, {"op_id": "crop-4x5", "rotate_deg": 3.0}).status_code == 200
    resp = post(client, "upright.jpg", version + 2, {"op_id": "crop-4x5", "box": wide})
    assert resp.status_code == 200, resp.get_json()
    fitted = next(o for o in doc_of(out, "upright.jpg")["operations"] if o["op_id"] == "crop-4x5")["params"]
    x, y, w, h = fitted["box"]
    assert fitted["aspect_turned"] is True and w < W - 10 and w / h == pytest.approx(5 / 4, rel=0.01)
    assert x + w / 2 == pytest.approx(W / 2, abs=1) and y + h / 2 == pytest.approx(H / 2, abs=1)
    # A box drawn at the crop's orientation as it stands must still fit as drawn.
    assert post(client, "upright.jpg", version + 3, {"op_id": "crop-4x5", "box": wide}).status_code == 422


def test_a_rejected_crop_says_what_its_renditions_are_cut_to(client, out: Path) -> None:  # noqa: ANN001
    # A reviewer who rejects the dinner's 4:5 crop still gets its renditions cut to 4:5: centred, as the renderer
    # falls back to. The review's deliveries and faces follow that box, not the rejected one.
    from pipeline.imaging.geometry import parse_aspect, place_crop
    from pipeline.planning.rules.crops import faces_a_box_cuts

    sp = "2008_002079.jpg"
    doc = doc_of(out, sp)
    crop = next(o for o in doc["operations"] if o["op_id"] == "crop-4x5")
    W, H = doc["image"]["width"], doc["image"]["height"]
    centred = place_crop(W, H, parse_aspect("4:5"), 0.0)
    assert abs(crop["params"]["box"][0] - centred[0]) > 5  # the plan placed it off the centre, on the faces
    assert post(client, sp, 0, {"op_id": "crop-4x5", "status": "rejected"}).status_code == 200
    payload = client.get(f"/api/images/{sp}").get_json()
    faces = {f["face_index"]: tuple(f["box"]) for f in doc["faces"] if f["box"][2] >= 0.04 * min(W, H)}
    judged = faces_a_box_cuts(centred, 0.0, faces, W, H)
    assert payload["crop_faces"]["crop-4x5"] == {"cut": [i + 1 for i in judged.cut],
                                                 "left_out": [i + 1 for i in judged.left_out], "framed": len(faces)}
    web = next(d for d in payload["deliveries"]["crop-4x5"] if d["name"] == "web")
    assert (web["width"], web["height"]) == (round(centred[2]), round(centred[3]))  # 300 x 375: never enlarged


def test_a_crop_moved_through_a_face_is_flagged_in_the_files_it_writes(client, out: Path) -> None:  # noqa: ANN001
    # A reviewer drags the dinner's 4:5 crop (it holds what it can of six diners) so that its left edge runs through a
    # face it kept whole: the instruction file,
    # instructions.parquet and the verdict the app writes say so at once (the next run would too); taking the crop
    # back gives the plan's operations again, word for word.
    sp = "2008_002079.jpg"
    planned = doc_of(out, sp)
    crop = next(o for o in planned["operations"] if o["op_id"] == "crop-4x5")
    x, y, w, h = crop["params"]["box"]
    W = planned["image"]["width"]
    inside = [f for f in planned["faces"] if f["box"][2] >= 0.04 * min(W, planned["image"]["height"])
              and x <= f["box"][0] and f["box"][0] + f["box"][2] <= x + w]  # framed, and kept whole by the plan
    # The crop's left or right edge through the middle of one of those faces, the box still in the picture.
    face, left = next((f, left) for f in inside for left in (f["box"][0] + f["box"][2] / 2 - w * e for e in (0, 1))
                      if 0 <= left <= W - w)
    moved = [round(left, 1), y, w, h]
    assert post(client, sp, 0, {"op_id": crop["op_id"], "box": moved}).status_code == 200
    doc = doc_of(out, sp)
    flag = next(o for o in doc["operations"] if o["params"].get("check") == "crop" and o["params"]["aspect"] == "4:5")
    assert flag["reason"].startswith("the 4:5 crop as a reviewer placed it cuts face(s)"), flag["reason"]
    assert face["face_index"] in flag["params"]["faces_cut"]
    assert flag["params"]["reviewed"] is True and flag["review"]["status"] == "pending"
    assert doc["verdict"] == "flag"
    assert parquet_rows(out, sp)[flag["op_id"]]["reason"] == flag["reason"]
    jsonschema.validate(doc, SCHEMA)
    # Taken back to the plan's box: no reviewed flag left, the plan's operations and verdict.
    assert post(client, sp, 1, {"op_id": crop["op_id"], "box": crop["params"]["box"]}).status_code == 200
    back = doc_of(out, sp)
    assert [(o["op_id"], o["reason"], o["params"]) for o in back["operations"]] == [
        (o["op_id"], o["reason"], o["params"]) for o in planned["operations"]]
    assert back["verdict"] == planned["verdict"]


def test_a_crops_faces_are_judged_where_the_renderer_puts_them() -> None:
    # Under a keystone the renderer undoes (converging verticals), the crops lie in the corrected frame and so must
    # the faces they are judged against: a face near the top corner moves outwards there.
    from pipeline.imaging.perspective import Keystone, KeystoneMap
    from pipeline.review.payloads import box_faces, framed_faces

    W, H = 1200, 900
    keystone = Keystone(0.0, -8.0, 1000.0)
    face = [60.0, 40.0, 80.0, 100.0]
    doc = {"image": {"width": W, "height": H},
           "faces": [{"face_index": 0, "box": face}],
           "operations": [{"op_id": "straighten", "kind": "straighten", "applied_by": "renderer",
                           "params": {"angle_deg": 0.0, "axis": "verticals", "keystone": keystone.as_params()},
                           "review": {"status": "pending"}}]}
    faces, fw, fh = framed_faces(doc)
    moved = KeystoneMap(keystone, W, H).corrected_box(tuple(face))
    assert (fw, fh) == (W, H) and faces[0] == pytest.approx(moved)
    assert abs(moved[0] - face[0]) > 2  # the keystone moves it: judged as shot, the test would say nothing
    # A box whose left edge runs at x = 125: clear of the face where the renderer puts it (x 7-101, its sides a
    # little more), through it as shot (x 60-140).
    box = (125.0, 0.0, 600.0, 900.0)
    assert box_faces(doc, box, 0.0) == {"cut": [], "left_out": [1], "framed": 1}
    # Rejected by a reviewer, the keystone is not undone: the face is judged where it was shot, and cut.
    doc["operations"][0]["review"] = {"status": "rejected"}
    assert framed_faces(doc)[0][0] == pytest.approx(tuple(face))
    assert box_faces(doc, box, 0.0)["cut"] == [1]
