"""The review app's structure: blueprints registered in one place, the guard over every one, state per app."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flask import Blueprint, jsonify

import pipeline.review.blueprints as blueprints_pkg
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.review.app import create_app
from pipeline.review.blueprints import BLUEPRINTS
from pipeline.review.context import ReviewSettings, review_context
from pipeline.review.payloads import image_badges
from pipeline.review.security import SECURITY_HEADERS

TOKEN = "s3cret-token-for-tests-0123456789"
SP = "2008_001009.jpg"


@pytest.fixture(scope="module")
def out(faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One processed group photo: enough for a store, quick to make."""
    shoot = tmp_path_factory.mktemp("shoot")
    shutil.copy(faces_dir / SP, shoot)
    out = tmp_path_factory.mktemp("out")
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="corporate_portrait"))
    return out


def test_every_blueprint_module_is_registered() -> None:
    modules = {p.stem for p in Path(blueprints_pkg.__file__).parent.glob("*.py") if p.stem != "__init__"}
    registered = {bp.import_name.rsplit(".", 1)[-1] for bp in BLUEPRINTS}
    assert modules == registered
    assert len({bp.name for bp in BLUEPRINTS}) == len(BLUEPRINTS)


def test_a_new_blueprint_is_guarded_without_asking(out: Path) -> None:
    extra = Blueprint("extra", __name__)
    extra.add_url_rule("/api/extra", "read", lambda: jsonify({"ok": True}))
    extra.add_url_rule("/api/extra", "write", lambda: jsonify({"ok": True}), methods=["POST"])
    app = create_app(out, token=TOKEN)
    app.register_blueprint(extra)
    client = app.test_client()
    resp = client.get("/api/extra")
    assert resp.status_code == 401 and "access token required" in resp.get_json()["error"]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    resp = client.get("/api/extra", headers=bearer)
    assert resp.status_code == 200 and resp.get_json() == {"ok": True}
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers[name] == value
    assert client.post("/api/extra", data={"a": "1"}, headers=bearer).status_code == 415
    cross = {**bearer, "Origin": "http://evil.example"}
    assert client.post("/api/extra", json={}, headers=cross).status_code == 403
    assert client.post("/api/extra", json={}, headers=bearer).status_code == 200
    resp = client.get("/api/extra/nothing", headers=bearer)  # no route: still JSON under /api/
    assert resp.status_code == 404 and "error" in resp.get_json()


def test_each_app_serves_its_own_settings(out: Path) -> None:
    ana, bo = create_app(out, reviewer="Ana"), create_app(out, reviewer="Bo", allowed_hosts=("studio.lan",))
    assert b'data-reviewer="Ana"' in ana.test_client().get("/").data
    assert b'data-reviewer="Bo"' in bo.test_client().get("/").data
    assert bo.test_client().get("/", headers={"Host": "studio.lan"}).status_code == 200
    assert ana.test_client().get("/", headers={"Host": "studio.lan"}).status_code == 421
    assert review_context(ana).store is not review_context(bo).store
    assert review_context(ana).settings.allowed_hosts == ()


def test_the_token_stays_out_of_the_settings_repr() -> None:
    settings = ReviewSettings(reviewer="Ana", token=TOKEN)
    assert TOKEN not in repr(settings) and "Ana" in repr(settings)


@pytest.mark.parametrize(("statuses", "state"), [
    ([], "reviewed"),
    (["pending", "pending"], "pending"),
    (["accepted", "pending"], "in_progress"),
    (["done", "rejected"], "done"),
    (["rejected", "rejected"], "reviewed"),
    (["done", "accepted"], "reviewed"),
])  # fmt: skip
def test_review_state_of_a_gallery_tile(statuses: list[str], state: str) -> None:
    doc = {"operations": [{"review": {"status": s}} for s in statuses]}
    badges = image_badges(doc)
    assert badges["review_state"] == state
    assert sum(badges["counts"].values()) == len(statuses)
    assert image_badges(None) == {}
    assert image_badges({"operations": [{}]})["review_state"] == "pending"  # no review yet: pending


def test_every_write_route_answers_a_paused_review_with_423(out: Path) -> None:
    """While a re-render rewrites the instruction files, each decision route refuses with the reason, as JSON."""
    app = create_app(out)
    client = app.test_client()
    store = review_context(app).store
    scene_id = client.get("/api/scenes").get_json()["by_path"][SP]
    # a reviewer's exposure on the frame, so that propagating it is a real write
    assert client.post(f"/api/scenes/{scene_id}", json={"action": "exposure", "ev_delta": 0.1}).status_code == 200
    version = client.get(f"/api/images/{SP}").get_json()["version"]
    writes = {
        "image": (f"/api/images/{SP}", {"version": version, "all": {"status": "accepted"}}),
        "batch": ("/api/decisions", {"items": [{"source_path": SP, "version": version, "image": {"stars": 3}}]}),
        "scene": (f"/api/scenes/{scene_id}", {"action": "decide", "status": "accepted"}),
        "propagate": ("/api/scenes/propagate", {"from": SP, "version": version}),
    }
    store.pause("re-rendering 1 image")
    try:
        for name, (url, body) in writes.items():
            resp = client.post(url, json=body)
            assert resp.status_code == 423, (name, resp.status_code, resp.get_data(as_text=True))
            assert "re-rendering 1 image: decisions are paused" in resp.get_json()["error"], name
    finally:
        store.resume()
    resp = client.post("/api/decisions", json={"items": [{"source_path": SP, "version": version, "image": {"stars": 9}}]})
    assert resp.status_code == 422 and "stars" in resp.get_json()["error"]
    assert client.get(f"/api/images/{SP}").get_json()["version"] == version  # nothing was changed
