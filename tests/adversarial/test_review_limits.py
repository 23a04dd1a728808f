"""The review app under abuse: huge bodies, a locked database, symlinks to private files, weak tokens."""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from pipeline.cli.review import review
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.review.app import MAX_REQUEST_BYTES, create_app, review_context
from pipeline.review.store import DB_NAME


@pytest.fixture(scope="module")
def processed(exposure_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    shoot = tmp_path_factory.mktemp("shoot")
    for src in sorted(exposure_dir.glob("a*.JPG"))[:2]:
        with Image.open(src) as im:
            im.thumbnail((480, 480))
            im.save(shoot / src.name, quality=85)
    out = tmp_path_factory.mktemp("out")
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local"))
    return out


@pytest.fixture
def out(processed: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "out"
    shutil.copytree(processed, dest, symlinks=True)
    return dest


def _first_image(client) -> tuple[str, int, str]:  # noqa: ANN001
    item = next(i for i in client.get("/api/images").get_json()["images"] if i["url"])
    doc = client.get(f"/api/images/{item['source_path']}").get_json()
    return item["source_path"], doc["version"], doc["doc"]["operations"][0]["op_id"]


def test_request_bodies_over_1_mb_get_a_json_413(out: Path) -> None:
    client = create_app(out).test_client()
    sp, version, op_id = _first_image(client)
    body = b'{"version": %d, "changes": [{"op_id": "%s", "comment": "' % (version, op_id.encode())
    body += b"x" * (MAX_REQUEST_BYTES + 10) + b'"}]}'
    resp = client.post(f"/api/images/{sp}", data=body, content_type="application/json")
    assert resp.status_code == 413 and "KB" in resp.get_json()["error"]
    ok = client.post(f"/api/images/{sp}", json={"version": version, "changes": [{"op_id": op_id, "comment": "fine"}]})
    assert ok.status_code == 200


def test_a_locked_database_gives_a_json_503(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(out)
    store = review_context(app).store
    connect = store._connect

    def impatient() -> sqlite3.Connection:  # the app waits 30 s for a lock; the test 0.2 s
        con = connect()
        con.execute("PRAGMA busy_timeout=200")
        return con

    monkeypatch.setattr(store, "_connect", impatient)
    client = app.test_client()
    sp, version, op_id = _first_image(client)
    accept = {"version": version, "changes": [{"op_id": op_id, "status": "accepted"}]}
    holder = sqlite3.connect(out / DB_NAME, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program holding the write lock
    try:
        resp = client.post(f"/api/images/{sp}", json=accept)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert resp.status_code == 503, resp.data[:300]
    assert "locked" in resp.get_json()["error"] and resp.headers["Retry-After"]
    again = client.post(f"/api/images/{sp}", json=accept)
    assert again.status_code == 200


def test_symlinks_to_the_database_or_the_state_are_not_served(out: Path) -> None:
    client = create_app(out).test_client()
    journal = next((out / ".postprod").rglob("*.json"))
    os.symlink(out / DB_NAME, out / "previews" / "db.jpg")
    os.symlink(out / ".postprod", out / "previews" / "state")
    os.symlink(journal, out / "instructions" / "journal.json")
    assert client.get("/files/previews/db.jpg").status_code == 404
    assert client.get(f"/files/previews/state/{journal.relative_to(out / '.postprod')}").status_code == 404
    assert client.get("/files/instructions/journal.json").status_code == 404
    real = next((out / "instructions").glob("a*.json"))
    assert client.get(f"/files/instructions/{real.name}").status_code == 200


@pytest.mark.parametrize("token", [" " * 16, " " * 40, "\t\n" * 10, "abc def ghi jkl mno", "short"])
def test_blank_or_short_tokens_are_refused(out: Path, token: str) -> None:
    result = CliRunner().invoke(review, [str(out), "--token", token])
    assert result.exit_code == 2 and "16 characters other than spaces" in result.output


def test_preview_of_an_image_still_works(out: Path) -> None:
    client = create_app(out).test_client()
    sp, _, _ = _first_image(client)
    resp = client.get(f"/preview/thumb/{sp}")
    assert resp.status_code == 200 and Image.open(io.BytesIO(resp.data)).size[0] > 0
