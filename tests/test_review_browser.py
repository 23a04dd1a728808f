"""The review app end to end in a real headless Chromium (Debian's), driven by Playwright.

Select with ``-m browser``. Needs /usr/bin/chromium (apt: chromium) and the
playwright package (its own browser downloads are not used): the test fails
in CI (``CI=true``) when either is missing and is skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.outputs.instructions import instruction_name
from pipeline.review.app import create_app, serve

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("POSTPROD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SP = "2008_001009.jpg"  # two faces to brighten, an exposure correction, crops


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} is missing: the browser tests must run in CI")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright (pip install playwright)")
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def server(faces_dir: Path, tmp_path: Path):  # noqa: ANN201
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for p in sorted(faces_dir.glob("*.jpg")):
        shutil.copy(p, shoot)
    out = tmp_path / "out"
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="corporate_portrait"))
    srv = serve(create_app(out, reviewer="Ana"), "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}", out
    srv.shutdown()
    srv.server_close()


def test_review_in_a_browser(browser, server, tmp_path: Path) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    base, out = server
    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(15000)

    # Gallery: tiles with badges; keyboard to the second image and open it.
    page.goto(base + "/")
    expect(page.locator(".tile")).to_have_count(4)
    expect(page.locator(".tile.selected .name")).to_have_text("2007_007763.jpg")
    expect(page.locator(f'.tile[data-sp="{SP}"] .badge.faces')).to_have_text("2 faces to brighten")
    page.keyboard.press("j")
    expect(page.locator(".tile.selected .name")).to_have_text(SP)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/image/{SP}")
    expect(page.locator(".op")).to_have_count(7)
    stale = context.new_page()  # a second tab, opened before the changes below
    stale.goto(f"{base}/image/{SP}")
    expect(stale.locator(".op")).to_have_count(7)

    # Accept the exposure correction; change face 1's amount.
    page.fill("#reviewer", "Cleo")
    page.dispatch_event("#reviewer", "change")
    page.click('li[data-op="exposure"] button.accept')
    expect(page.locator('li[data-op="exposure"] .status')).to_have_text("accepted")
    face = page.locator('li[data-op="brighten_face-0"]')
    face.locator("input.ev").fill("0.4")
    face.locator("button.set-ev").click()
    expect(face.locator(".amount")).to_have_text("face 1: +0.40 EV")
    expect(page.locator('svg .face.brighten[data-face="0"] text')).to_have_text("1 +0.40 EV")
    # Keyboard: the first instruction is selected; d marks it done.
    page.keyboard.press("d")
    expect(page.locator(".op").first.locator(".status")).to_have_text("done")

    # Reload: the state is kept (server side), and on disk in the instructions JSON.
    page.reload()
    expect(page.locator('li[data-op="exposure"] .status')).to_have_text("accepted")
    expect(page.locator('li[data-op="brighten_face-0"] input.ev')).to_have_value("0.4")
    expect(page.locator(".op").first.locator(".status")).to_have_text("done")
    doc = json.loads((out / "instructions" / instruction_name(SP)).read_text())
    ops = {o["op_id"]: o for o in doc["operations"]}
    assert ops["exposure"]["review"]["status"] == "accepted" and ops["exposure"]["review"]["by"] == "Cleo"
    assert ops["brighten_face-0"]["params"]["ev"] == 0.4

    # The stale tab is refused (409) and shows the current state.
    stale.click('li[data-op="exposure"] button.reject')
    expect(stale.locator("#toast")).to_contain_text("changed elsewhere")
    expect(stale.locator('li[data-op="exposure"] .status')).to_have_text("accepted")

    # Overlays and previews are there; the screenshot is for a person to look at.
    expect(page.locator("svg#overlay .crop")).to_have_count(2)
    page.wait_for_function("document.getElementById('photo').complete && document.getElementById('photo').naturalWidth > 0")
    page.keyboard.press("h")  # clipped-highlights overlay on
    expect(page.locator("#clip")).to_be_visible()
    page.keyboard.press("h")
    shot = tmp_path / "review-image-view.png"
    page.screenshot(path=str(shot))
    shutil.copy(shot, "/tmp/review-screenshot.png")
    assert shot.stat().st_size > 10_000
    assert not errors, errors
    context.close()
