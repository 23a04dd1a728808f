"""The review app end to end in a real headless Chromium (Debian's), driven by Playwright.

Select with ``-m browser``. Needs /usr/bin/chromium (apt: chromium) and the
playwright package (its own browser downloads are not used): the test fails
in CI (``CI=true``) when either is missing and is skipped elsewhere.

Every flow leaves screenshots in ``tests/artifacts/review_browser/`` (or
``$POSTPROD_TEST_ARTIFACTS``), printed at the end of the run: look at them.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from packshot_shoot import chart_leaving_the_backdrop, processed_packshot
from review_shoot import BIG, BIG_SOURCE, doc_of, processed_shoot
from review_shoot import GROUP as SP

from pipeline.imaging.measure.content import decode_saliency_map
from pipeline.outputs.report import _pad_bands
from pipeline.review.app import create_app, serve

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("POSTPROD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Predicates are functions: a bare expression would be eval'd in the page, which its CSP refuses.
PHOTO_LOADED = "() => document.getElementById('photo').complete && document.getElementById('photo').naturalWidth > 0"
TILES_LOADED = "() => [...document.querySelectorAll('.ztile')].every(t => t.complete && t.naturalWidth > 0)"
ARTIFACTS = Path(os.environ.get("POSTPROD_TEST_ARTIFACTS", Path(__file__).parent / "artifacts")) / "review_browser"


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} is missing: the browser tests must run in CI")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("playwright (pip install playwright)")
    expect.set_options(timeout=20_000)  # a shared CI machine can be slow; a wrong state still fails
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} (apt-get install chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()
    print(f"\nreview screenshots: {ARTIFACTS}")


@pytest.fixture(scope="module")
def processed(faces_dir: Path, exposure_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return processed_shoot(tmp_path_factory, faces_dir, {BIG: exposure_dir / BIG_SOURCE})


@pytest.fixture
def server(out: Path):  # noqa: ANN201
    srv = serve(create_app(out, reviewer="Ana"), "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}", out
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def page(browser, server):  # noqa: ANN001, ANN201
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(15000)
    yield page
    context.close()
    assert not errors, errors


def shot(page, name: str) -> Path:  # noqa: ANN001
    path = ARTIFACTS / f"{name}.png"
    try:  # the pictures in view, loaded (lazy ones out of view never are)
        page.wait_for_function("() => [...document.images].every(i => i.complete || i.loading === 'lazy')",
                               timeout=10_000)
    except Exception:  # noqa: BLE001 - a screenshot is taken anyway
        pass
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    return path


def test_review_in_a_browser(browser, page, server) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    base, out = server
    # Gallery: tiles with badges; keyboard to the second image and open it.
    page.goto(base + "/")
    expect(page.locator(".tile")).to_have_count(5)
    expect(page.locator(".tile.selected .name")).to_have_text("2007_007763.jpg")
    expect(page.locator(f'.tile[data-sp="{SP}"] .badge.faces')).to_have_text("1 face to brighten")
    page.keyboard.press("j")
    expect(page.locator(".tile.selected .name")).to_have_text(SP)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/image/{SP}")
    # Four operations (the exposure, face 2's lift, two crops): the straightening rot7 told a retoucher here (one
    # short line at -5.8 deg) is not worth telling, nor a white balance read 11 mired warm (+-18), where published
    # photographs read; and the exposure, +1.75 EV since the face key's refit, is within the automatic 2 EV.
    expect(page.locator(".op")).to_have_count(4)
    expect(page.locator('li[data-op="straighten"]')).to_have_count(0)
    stale = page.context.new_page()  # a second tab, opened before the changes below
    stale.goto(f"{base}/image/{SP}")
    expect(stale.locator(".op")).to_have_count(4)

    # Accept the exposure correction; change face 2's amount.
    page.fill("#reviewer", "Cleo")
    page.dispatch_event("#reviewer", "change")
    page.click('li[data-op="exposure"] button.accept')
    expect(page.locator('li[data-op="exposure"] .status')).to_have_text("accepted")
    face = page.locator('li[data-op="brighten_face-1"]')
    face.locator("input.ev").fill("0.4")
    face.locator("button.set-ev").click()
    expect(face.locator(".amount")).to_have_text("face 2: +0.40 EV")
    expect(page.locator('svg .face.brighten[data-face="1"] text')).to_have_text("2 +0.40 EV")
    # Keyboard: the first instruction (the exposure) is selected; j selects the next (face 2's lift), d marks
    # it done.
    page.keyboard.press("j")
    page.keyboard.press("d")
    expect(page.locator(".op").nth(1).locator(".status")).to_have_text("done")

    # Reload: the state is kept (server side), and on disk in the instructions JSON.
    page.reload()
    expect(page.locator('li[data-op="exposure"] .status')).to_have_text("accepted")
    expect(page.locator('li[data-op="brighten_face-1"] input.ev')).to_have_value("0.4")
    expect(page.locator(".op").nth(1).locator(".status")).to_have_text("done")
    doc = doc_of(out, SP)
    ops = {o["op_id"]: o for o in doc["operations"]}
    assert ops["exposure"]["review"]["status"] == "accepted" and ops["exposure"]["review"]["by"] == "Cleo"
    assert ops["brighten_face-1"]["params"]["ev"] == 0.4

    # The stale tab is refused (409) and shows the current state.
    stale.click('li[data-op="exposure"] button.reject')
    expect(stale.locator("#toast")).to_contain_text("changed elsewhere")
    expect(stale.locator('li[data-op="exposure"] .status')).to_have_text("accepted")

    # Overlays and previews are there: each crop in its own colour, named with its aspect and renditions.
    crops = page.locator("svg#overlay .crop")
    expect(crops).to_have_count(2)
    expect(crops.locator("text")).to_have_text(["4:5 · web, print", "1:1 · avatar"])
    colours = crops.evaluate_all("els => els.map(e => getComputedStyle(e.querySelector('polygon')).stroke)")
    assert len(set(colours)) == 2, colours
    # The measurements show the plan's one number, what it keyed on, and the whole frame's meter beside it.
    # (the number is the instructions' own: the plan's exposure correction, under corporate_portrait's faces-only
    # meter +1.21 EV for this photo; it read +1.75 with the whole frame's -2.03 in the blend)
    correction = ops["exposure"]["params"]["ev"]
    assert correction > 1.0
    expect(page.locator("#measurements")).to_contain_text(f"keyed on faces (under) → correction {correction:+.2f} EV")
    expect(page.locator("#measurements")).to_contain_text("Exposure, whole frame")
    white = doc["measurements"]["exposure_white_ev"]
    expect(page.locator("#measurements")).to_contain_text(f"Highlights{white:+.2f} EV (the white point")
    # The cast as the plan read it, in mired (the kelvin column caps a cast bluer than infinite kelvin).
    cast, spread = doc["measurements"]["wb_cast_mired"], doc["measurements"]["wb_uncertainty_mired"]
    expect(page.locator("#measurements")).to_contain_text(
        f"neutrals read {abs(cast):.0f} mired {'warm' if cast > 0 else 'cool'} (±{spread:.0f})")
    page.wait_for_function(PHOTO_LOADED)
    page.keyboard.press("h")  # clipped-highlights overlay on
    expect(page.locator("#clip")).to_be_visible()
    page.keyboard.press("h")
    shot(page, "image-view")


def test_pick_stars_and_label_in_the_gallery(page, server) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    base, out = server
    page.goto(base + "/")
    first = page.locator('.tile[data-index="0"]')
    expect(first).to_have_class(re.compile(r"\bselected\b"))
    sp = first.get_attribute("data-sp")
    page.keyboard.press("p")
    expect(page.locator('.tile[data-index="0"] .flag.pick')).to_be_visible()
    page.keyboard.press("3")
    expect(page.locator('.tile[data-index="0"] .stars')).to_have_text("★★★")
    page.keyboard.press("6")
    expect(page.locator('.tile[data-index="0"]')).to_have_class(re.compile(r"\blabel-Red\b"))
    review = doc_of(out, sp)["review"]
    assert (review["flag"], review["rating"], review["label"]) == ("pick", 3, "Red")
    xmp = (out / doc_of(out, sp)["xmp"]).read_text()
    assert 'xmp:Rating="3"' in xmp and 'xmp:Label="Red"' in xmp
    # Auto-advance: a decision moves to the next image.
    page.check("#auto-advance")
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(page.locator(".tile.selected")).to_have_attribute("data-index", "2")
    expect(page.locator('.tile[data-index="1"]')).to_have_class(re.compile(r"\bculled\b"))
    second = page.locator('.tile[data-index="1"]').get_attribute("data-sp")
    assert doc_of(out, second)["review"]["rating"] == -1
    shot(page, "gallery-culling")
    # Filters: picked only, red only, three stars and up.
    page.select_option("select[name=flag]", "pick")
    expect(page.locator(".tile")).to_have_count(1)
    page.select_option("select[name=flag]", "")
    page.select_option("select[name=label]", "Red")
    expect(page.locator(".tile")).to_have_count(1)
    page.select_option("select[name=label]", "")
    page.select_option("select[name=stars]", "3")
    expect(page.locator(".tile .name")).to_have_text([sp])


def test_a_slow_listing_does_not_overwrite_a_newer_filter(page, server) -> None:  # noqa: ANN001
    """Filters changed quickly: the unfiltered listing, answered last, must not replace the red-only one."""
    from playwright.sync_api import expect

    base, out = server
    page.goto(base + "/")
    expect(page.locator(".tile")).to_have_count(5)
    page.keyboard.press("6")  # the first image gets the red label
    expect(page.locator('.tile[data-index="0"]')).to_have_class(re.compile(r"\blabel-Red\b"))
    # The page's unfiltered listings now come back 1.5 s late (after any listing asked later).
    page.evaluate("""() => {
      const fetch0 = window.fetch;
      window.fetch = (url, opts) => {
        const answer = fetch0(url, opts);
        if (!String(url).endsWith("/api/images?")) return answer;
        return answer.then((r) => new Promise((done) => setTimeout(() => done(r), 1500)));
      };
    }""")
    page.select_option("select[name=flag]", "pick")
    page.select_option("select[name=flag]", "")  # every image: its answer held back
    page.select_option("select[name=label]", "Red")
    expect(page.locator(".tile")).to_have_count(1)
    page.wait_for_timeout(2500)  # the held-back answer has arrived by now
    expect(page.locator(".tile")).to_have_count(1)


def test_culling_in_the_image_view(page, server) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    base, out = server
    page.goto(f"{base}/image/{SP}")
    expect(page.locator(".op")).to_have_count(4)
    page.keyboard.press("p")
    expect(page.locator("#culling .flag.pick")).to_be_visible()
    page.click('#stars-input button[data-stars="5"]')
    expect(page.locator("#culling .stars")).to_have_text("★★★★★")
    page.keyboard.press("9")
    expect(page.locator("#culling .label-chip.label-Blue")).to_be_visible()
    expect(page.locator(f'#filmstrip .frame[data-sp="{SP}"] .stars')).to_have_text("★★★★★")
    review = doc_of(out, SP)["review"]
    assert (review["flag"], review["rating"], review["label"]) == ("pick", 5, "Blue")
    # The filmstrip and the arrows move without a page load.
    page.evaluate("window.__same_page = true")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#title")).not_to_have_text(SP)
    assert page.evaluate("window.__same_page") is True
    page.locator(f'#filmstrip .frame[data-sp="{SP}"]').click()
    expect(page.locator("#title")).to_have_text(SP)
    expect(page).to_have_url(f"{base}/image/{SP}")
    shot(page, "image-culling")


def test_multi_select_batch_and_undo(page, server) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    base, out = server
    page.goto(base + "/")
    page.locator('.tile[data-index="0"] .thumb').click()
    page.locator('.tile[data-index="2"] .thumb').click(modifiers=["Shift"])
    expect(page.locator("#selection")).to_have_text("3 selected")
    names = [page.locator(f'.tile[data-index="{i}"]').get_attribute("data-sp") for i in range(3)]
    page.keyboard.press("4")
    for i in range(3):
        expect(page.locator(f'.tile[data-index="{i}"] .stars')).to_have_text("★★★★")
    assert [doc_of(out, sp)["review"]["rating"] for sp in names] == [4, 4, 4]
    # Undo takes the three back in one step; redo brings them again.
    page.keyboard.press("Control+z")
    for i in range(3):
        expect(page.locator(f'.tile[data-index="{i}"] .stars')).to_have_count(0)
    assert [doc_of(out, sp)["review"]["rating"] for sp in names] == [0, 0, 0]
    page.keyboard.press("Control+Shift+z")
    expect(page.locator('.tile[data-index="2"] .stars')).to_have_text("★★★★")
    # Ctrl-click adds a fourth; a accepts their automatic corrections, after a confirmation.
    page.locator('.tile[data-index="3"] .thumb').click(modifiers=["Control"])
    expect(page.locator("#selection")).to_have_text("4 selected")
    page.keyboard.press("a")
    expect(page.locator("#confirm")).to_be_visible()
    expect(page.locator("#confirm-text")).to_have_text("Accept the pending automatic corrections of 4 images?")
    shot(page, "gallery-batch-confirm")
    page.keyboard.press("Escape")  # cancelled: nothing changes
    expect(page.locator("#confirm")).to_be_hidden()
    assert all(o["review"]["status"] == "pending" for o in doc_of(out, names[0])["operations"])
    page.keyboard.press("a")
    expect(page.locator("#confirm")).to_be_visible()  # Enter before the dialog is up would open the image
    expect(page.locator("#confirm-ok")).to_be_focused()
    page.keyboard.press("Enter")
    # The fifth, not selected. Four images' decisions and their tiles' refresh: slow on a loaded CI machine.
    expect(page.locator(".tile .state-pending")).to_have_count(1, timeout=60_000)
    chosen = names + [page.locator('.tile[data-index="3"]').get_attribute("data-sp")]
    for sp in chosen:
        for op in doc_of(out, sp)["operations"]:
            automatic = op["applied_by"] == "renderer" and op["kind"] not in ("flag", "reject")
            assert op["review"]["status"] == ("accepted" if automatic else "pending"), (sp, op["op_id"])
    # A batch amount: exposure on every selected image that has an exposure correction.
    page.fill("#batch-ev", "0.5")
    page.click("#batch-ev-set")
    page.click("#confirm-ok")
    expect(page.locator(".tile .badge.stale").first).to_be_visible()  # a changed amount: exports are stale
    with_exposure = [sp for sp in chosen if any(o["kind"] == "exposure" for o in doc_of(out, sp)["operations"])]
    assert with_exposure
    for sp in with_exposure:
        assert next(o for o in doc_of(out, sp)["operations"] if o["kind"] == "exposure")["params"]["ev"] == 0.5
    shot(page, "gallery-batch-done")
    # The same bar sets a backlit frame's shadow lift: never below 0 EV; these images have none to set.
    page.fill("#batch-ev", "-0.5")
    page.select_option("#batch-ev-kind", "lift_shadows")
    expect(page.locator("#batch-ev")).to_have_value("0")
    page.click("#batch-ev-set")
    expect(page.locator("#toast")).to_contain_text("None of the selected images has a shadow lift")
    page.select_option("#batch-ev-kind", "exposure")
    page.click("#undo")
    page.wait_for_function("() => document.querySelectorAll('.tile .badge.stale').length === 0")
    for sp in with_exposure:
        assert next(o for o in doc_of(out, sp)["operations"] if o["kind"] == "exposure")["params"]["ev"] != 0.5


def test_zoom_to_100_percent_and_side_by_side(page, server) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    base, _ = server
    page.goto(f"{base}/image/{BIG.replace(' ', '%20')}")
    expect(page.locator(".op").first).to_be_visible()
    page.wait_for_function(PHOTO_LOADED)
    fit_width = page.evaluate("document.querySelector('.canvas').getBoundingClientRect().width")
    assert fit_width < 1000
    page.keyboard.press("z")
    expect(page.locator("#zoom-100")).to_have_class(re.compile(r"\bon\b"))
    tiles = page.locator(".pane .ztile")
    expect(tiles.first).to_be_visible()
    page.wait_for_function(TILES_LOADED)
    assert page.evaluate("document.querySelector('.canvas').getBoundingClientRect().width") == pytest.approx(3504, abs=1)
    # Only the visible tiles are asked for, each at full resolution.
    urls = tiles.evaluate_all("els => els.map(e => e.getAttribute('src'))")
    assert urls and all("/tile/after/1/" in u for u in urls) and len(urls) < 7 * 5
    assert tiles.first.evaluate("t => t.naturalWidth") == 512
    # Drag to pan: the view moves and the tiles it uncovers arrive.
    viewport = page.locator(".viewport").first
    before = viewport.evaluate("v => [v.scrollLeft, v.scrollTop]")
    box = viewport.bounding_box()
    page.mouse.move(box["x"] + 300, box["y"] + 300)
    page.mouse.down()
    page.mouse.move(box["x"] + 100, box["y"] + 150, steps=5)
    page.mouse.up()
    after = viewport.evaluate("v => [v.scrollLeft, v.scrollTop]")
    assert after[0] == pytest.approx(before[0] + 200, abs=2) and after[1] == pytest.approx(before[1] + 150, abs=2)
    page.wait_for_function(TILES_LOADED)
    shot(page, "zoom-100")
    # Side by side at 100%: before and after, scrolled together.
    page.keyboard.press("y")
    expect(page.locator("#stage .pane")).to_have_count(2)
    expect(page.locator('.pane[data-variant="before"] .ztile').first).to_be_visible()
    page.locator('.pane[data-variant="before"] .viewport').evaluate("v => { v.scrollLeft = 900; v.scrollTop = 700; }")
    page.wait_for_function(
        "() => { const [a, b] = document.querySelectorAll('.viewport');"
        " return a.scrollLeft === b.scrollLeft && a.scrollTop === b.scrollTop && a.scrollLeft > 0; }")
    page.wait_for_function(TILES_LOADED)
    before_urls = page.locator('.pane[data-variant="before"] .ztile').evaluate_all("els => els.map(e => e.getAttribute('src'))")
    assert all("/tile/before/1/" in u for u in before_urls)
    shot(page, "side-by-side-100")
    page.keyboard.press("z")  # back to fit, still side by side
    expect(page.locator("#zoom-fit")).to_have_class(re.compile(r"\bon\b"))
    expect(page.locator(".ztile")).to_have_count(0)
    shot(page, "side-by-side-fit")


def test_rerender_of_a_changed_image(page, server) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    base, out = server
    exports = {r["path"]: r["sha256"] for r in pq.read_table(out / "exports.parquet").to_pylist()}
    page.goto(f"{base}/image/{SP}")
    expect(page.locator("#stale")).to_be_hidden()
    expect(page.locator("#rerender")).to_be_disabled()
    face = page.locator('li[data-op="exposure"]')
    face.locator("input.ev").fill("1.2")
    face.locator("button.set-ev").click()
    expect(page.locator("#stale")).to_be_visible()
    expect(page.locator("#rerender")).to_have_text("Re-render 1 stale")
    page.goto(base + "/")
    expect(page.locator(f'.tile[data-sp="{SP}"] .badge.stale')).to_be_visible()
    shot(page, "gallery-stale")
    page.click("#rerender")
    expect(page.locator("#confirm")).to_be_visible()
    page.click("#confirm-ok")
    expect(page.locator("#toast")).to_contain_text("Re-rendered 1 image(s)", timeout=120_000)
    expect(page.locator(".badge.stale")).to_have_count(0)
    expect(page.locator("#rerender")).to_have_text("Exports up to date")
    rows = pq.read_table(out / "exports.parquet").to_pylist()
    changed = {r["path"] for r in rows if exports.get(r["path"]) != r["sha256"]}
    mine = {r["path"] for r in rows if r["source_path"] == SP}
    assert changed == mine and mine  # exactly the changed image's exports were rendered again
    assert all(hashlib.sha256((out / p).read_bytes()).hexdigest() == r["sha256"]
               for r in rows for p in [r["path"]])
    shot(page, "gallery-rerendered")


@pytest.fixture(scope="module")
def packshot(browser, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    """scikit-image's cup on a white sweep, processed under the ecommerce chart: its square and 4:5 crops reach
    beyond the 3:2 frame, padded with the sweep's white."""
    shoot = tmp_path_factory.mktemp("packshot")
    return processed_packshot(shoot, shoot.parent / f"{shoot.name}-out")


@contextmanager
def served_page(browser, out: Path):  # noqa: ANN001, ANN201
    """A page of the review of ``out``, served for the test; no page error may occur on it."""
    srv = serve(create_app(out, reviewer="Ana"), "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield f"http://127.0.0.1:{srv.server_port}", page
    finally:
        context.close()
        srv.shutdown()
        srv.server_close()
    assert not errors, errors


def test_a_pad_shows_the_level_of_a_sweep_falling_off(browser, tmp_path: Path) -> None:  # noqa: ANN001
    # Under a chart that leaves the backdrop as corrected, the renderer pads a crop at the sweep's level along the
    # frame's edge (no seam where the sweep falls off); the review drew the pad in the sweep's brightest colour.
    # Each band is now a gradient of the levels the report draws (pipeline.outputs.report._pad_paint).
    import json

    from playwright.sync_api import expect

    from pipeline.outputs.report import _pad_paint

    out = processed_packshot(tmp_path / "shoot", tmp_path / "out", chart_leaving_the_backdrop(tmp_path), 1.0)
    doc = json.loads((out / "instructions" / "cup.jpg.json").read_text())
    padded = [o for o in doc["operations"] if o["kind"] == "crop" and o["params"].get("pad_rgb")]
    assert padded and all(o["params"].get("pad_falloff") for o in padded)
    W, H = doc["image"]["width"], doc["image"]["height"]
    expected = [re.findall(r'stop-color="([^"]+)"', _pad_paint(o["params"], band, W, H, False, "x")[1])
                for o in padded for band in _pad_bands(o["params"]["box"], W, H)]
    assert all(len(set(stops)) > 1 for stops in expected)  # the sweep falls off along every edge padded
    with served_page(browser, out) as (base, page):
        page.goto(f"{base}/image/cup.jpg")
        expect(page.locator(".op").first).to_be_visible()
        pads = page.locator("#overlay path.pad")
        expect(pads).to_have_count(len(expected))
        shown = pads.evaluate_all(
            "els => els.map(e => { const id = e.getAttribute('fill').slice(5, -1);"
            " return [...document.getElementById(id).querySelectorAll('stop')].map(s => s.getAttribute('stop-color')); })")
        # The browser's levels are the report's, within one level of 255 (float32 there, float64 here).
        for got, want in zip(shown, expected):
            pairs = [(re.findall(r"\d+", g), re.findall(r"\d+", w)) for g, w in zip(got, want)]
            assert len(got) == len(want) and all(abs(int(a) - int(b)) <= 1 for g, w in pairs for a, b in zip(g, w)), (
                got, want)
        shot(page, "padded-crop-falloff")


def test_a_padded_crop_shows_its_pad(browser, packshot: Path) -> None:  # noqa: ANN001
    # The review drew a crop padded beyond the frame inside the picture only, labelled "padded": the reviewer
    # could not see the frame delivered. In fit the stage widens to the crop and shows the pad in its colour.
    from playwright.sync_api import expect

    doc = doc_of(packshot, "cup.jpg")
    crops = [o for o in doc["operations"] if o["kind"] == "crop"]
    assert crops and all(o["params"].get("pad_rgb") for o in crops)
    bands = sum(len(_pad_bands(o["params"]["box"], doc["image"]["width"], doc["image"]["height"])) for o in crops)
    with served_page(browser, packshot) as (base, page):
        page.goto(f"{base}/image/cup.jpg")
        expect(page.locator(".op").first).to_be_visible()
        page.wait_for_function("() => { const p = document.getElementById('photo');"
                               " return Boolean(p && p.complete && p.naturalWidth > 0); }")
        pads = page.locator("#overlay path.pad")
        expect(pads).to_have_count(bands)  # one path per band of each crop beyond the frame
        assert set(pads.evaluate_all("els => els.map(e => e.getAttribute('fill'))")) == {"rgb(255,255,255)"}
        size = ("() => { const v = document.querySelector('.viewport').getBoundingClientRect(),"
                " c = document.querySelector('.canvas').getBoundingClientRect(); return [v.height, c.height, c.top - v.top]; }")
        shown, image, top = page.evaluate(size)
        assert shown > image + 10 and top > 5, (shown, image, top)  # padded above and below the picture
        shot(page, "padded-crop")
        # Without the crops' overlay the stage is the picture again.
        page.keyboard.press("c")
        expect(pads).to_have_count(0)
        shown, image, top = page.evaluate(size)
        assert abs(shown - image) <= 1 and abs(top) <= 1, (shown, image, top)
        # The subject's map, off by default: "s" shows where the crops placed on the subject looked, each cell as
        # strong as the subject reads there (the cup, not the sweep around it).
        grid = decode_saliency_map(doc["measurements"]["saliency_map"])
        cells = page.locator("#overlay rect.subject-cell")
        expect(cells).to_have_count(0)
        page.keyboard.press("s")
        expect(cells).to_have_count(int((grid > 0.02).sum()))
        strongest = max(cells.evaluate_all("els => els.map(e => [+e.getAttribute('fill-opacity'), +e.getAttribute('x'),"
                                           " +e.getAttribute('width')])"))
        centre = strongest[1] + strongest[2] / 2
        assert 0.15 * doc["image"]["width"] < centre < 0.85 * doc["image"]["width"]  # on the cup, not the sweep's sides
        assert strongest[0] == pytest.approx(0.6)  # the strongest cell at full strength
        shot(page, "subject-map")
        page.keyboard.press("s")
        expect(cells).to_have_count(0)


def _mean_rgb(page, base: str) -> np.ndarray:  # noqa: ANN001
    """The mean sRGB of the picture the stage shows (its ``src``, fetched)."""
    import io

    from PIL import Image

    src = page.locator("#photo").get_attribute("src")
    body = page.request.get(base + src).body()
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(axis=0)


def test_a_proposed_darkening_reads_as_proposed_until_accepted(browser, tmp_path: Path) -> None:  # noqa: ANN001
    # scikit-image's coffee under a pasted white sky (tests/test_blown_sky.py): its darkening is proposed, not applied.
    from playwright.sync_api import expect
    from test_blown_sky import _photo, _with_sky

    from benchmarks.accuracy_corpus import save_jpeg
    from pipeline.kernel.run import RunSettings, process_shoot

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    save_jpeg(shoot / "sky.jpg", _with_sky(_photo("coffee.png")))
    out = tmp_path / "out"
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="base"))
    with served_page(browser, out) as (base, page):
        page.goto(f"{base}/image/sky.jpg")
        card = page.locator(".op.kind-exposure")
        exposure_row = page.locator("#measurements tr").first
        expect(card.locator(".meta")).to_contain_text("proposed: applied once accepted")
        expect(exposure_row).to_contain_text("proposed, not applied")
        expect(page.locator("#measurements")).to_contain_text("the rest alone keys at")
        # The brown cup and table read 100 mired and more warm: the white balance is proposed too
        # (tests/test_white_balance_proposals.py), and says so on its own row.
        white_row = page.locator("#measurements tr", has_text="White balance")
        expect(white_row).to_contain_text("mired proposed, not applied")
        expect(page.locator(".op.kind-white_balance .meta")).to_contain_text("proposed: applied once accepted")
        shot(page, "proposed-darkening")
        # "Proposed" shows what accepting would deliver: both proposals applied, the cup darker and cooler.
        after = _mean_rgb(page, base)
        page.get_by_role("button", name="Proposed").click()
        expect(page.locator(".pane-label")).to_have_text("After, proposals accepted")
        expect(page.locator("#photo")).to_have_attribute("src", re.compile(r"^/preview/proposed/"))
        proposed = _mean_rgb(page, base)
        assert proposed.mean() < after.mean() - 20  # 2 EV darker on the ground
        assert proposed[2] / proposed[0] > after[2] / after[0] + 0.05  # cooler
        shot(page, "proposed-view")
        card.get_by_role("button", name="Accept").click()
        expect(card.locator(".meta")).to_contain_text("proposed, accepted: applied")
        expect(exposure_row).not_to_contain_text("proposed, not applied")
        expect(white_row).to_contain_text("mired proposed, not applied")  # still pending: its own accept
        expect(page.get_by_role("button", name="Proposed")).to_be_visible()  # the white balance is still pending
        page.locator(".op.kind-white_balance").get_by_role("button", name="Accept").click()
        # Nothing pending any more: the view falls back to "After", which is what "Proposed" showed.
        expect(page.get_by_role("button", name="Proposed")).to_be_hidden()
        expect(page.locator(".pane-label")).to_have_text("After")
        assert np.abs(_mean_rgb(page, base) - proposed).max() < 2.0
        # A reviewer changes the white balance and the exposure's amount, then takes both back to the plan's.
        import json

        def params(kind: str) -> dict:
            doc = json.loads((out / "instructions" / "sky.jpg.json").read_text())
            return next(o for o in doc["operations"] if o["kind"] == kind)["params"]

        planned_wb, planned_ev = params("white_balance"), params("exposure")["ev"]
        wb = page.locator(".op.kind-white_balance")
        wb.locator("input.temp").fill("-20")
        wb.locator("input.tint").fill("2")
        wb.locator("button.set-wb").click()
        expect(wb.locator("button.back-to-plan")).to_be_visible()  # saved (the list is drawn again)
        card.locator("input.ev").fill("-0.5")
        card.locator("button.set-ev").click()
        expect(card.locator("button.back-to-plan")).to_be_visible()
        assert params("white_balance")["mired_shift"] == -20 and params("exposure")["ev"] == -0.5
        wb.locator("button.back-to-plan").click()
        expect(wb.locator("button.back-to-plan")).to_have_count(0)
        card.locator("button.back-to-plan").click()
        expect(card.locator("button.back-to-plan")).to_have_count(0)
        assert params("white_balance") == planned_wb and params("exposure")["ev"] == planned_ev


def test_a_face_the_detector_missed_is_blurred_by_drawing_over_it(page, server,  # noqa: ANN001
                                                                   faces_dir: Path) -> None:
    """A reviewer presses m and drags over a face (people's own box on it): the plan gains a blur there, the after
    picture loses the face's detail, and Remove takes it away."""
    import cv2
    from playwright.sync_api import expect

    from benchmarks.accuracy_corpus import pascal_voc_boxes
    from benchmarks.privacy_blur import detail_kept
    from pipeline.planning.rules.privacy import head_box

    base, out = server
    page.goto(f"{base}/image/{SP}")
    expect(page.locator(".op")).to_have_count(4)
    page.wait_for_function(PHOTO_LOADED)
    before_url = page.get_attribute("#photo", "src")
    pictures = [page.request.get(base + before_url).body()]
    face = max(pascal_voc_boxes(faces_dir / "boxes.xml")[SP], key=lambda b: b[2])  # drawn by people
    head = head_box(face)
    rect = page.locator("#photo").bounding_box()
    scale = rect["width"] / doc_of(out, SP)["image"]["width"]
    page.keyboard.press("m")
    expect(page.locator("#stage")).to_have_class(re.compile(r"\bdrawing\b"))
    x0, y0 = rect["x"] + head[0] * scale, rect["y"] + head[1] * scale
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + head[2] * scale / 2, y0 + head[3] * scale / 2, steps=4)
    page.mouse.move(x0 + head[2] * scale, y0 + head[3] * scale, steps=4)
    page.mouse.up()
    op = page.locator('li[data-op="blur_face-drawn-1"]')
    expect(op.locator(".amount")).to_have_text("marked by a reviewer")
    expect(page.locator("svg#overlay .blur")).to_have_count(1)
    expect(page.locator("#stage")).not_to_have_class(re.compile(r"\bdrawing\b"))
    drawn = next(o for o in doc_of(out, SP)["operations"] if o["op_id"] == "blur_face-drawn-1")
    assert drawn["params"]["drawn"] and drawn["review"]["status"] == "accepted"
    assert np.allclose(drawn["params"]["box"], head, atol=1.5 / scale), (drawn["params"]["box"], head)
    # The after picture is rendered again with the face blurred: its detail gone, as the exports will be.
    expect(page.locator("#photo")).not_to_have_attribute("src", before_url)
    page.wait_for_function(PHOTO_LOADED)
    after_url = page.get_attribute("#photo", "src")
    pictures = [cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
                for body in (pictures[0], page.request.get(base + after_url).body())]
    # The picture before is no longer the image's: its URL (a tab not reloaded) is sent to the current one, not
    # rendered under the old key, where an undo would find a blurred picture.
    old = page.request.get(base + before_url, max_redirects=0)
    assert old.status == 307 and old.headers["location"].endswith(after_url), old.headers
    k = pictures[0].shape[1] / doc_of(out, SP)["image"]["width"]
    x, y, w, h = (int(round(v * k)) for v in face)
    inside = (slice(y, y + h), slice(x, x + w))
    assert abs(detail_kept(pictures[1], pictures[0], inside)) <= 0.15  # nothing of the face left
    shot(page, "image-blur-drawn")
    op.locator("button.remove-drawn").click()
    expect(page.locator('li[data-op="blur_face-drawn-1"]')).to_have_count(0)
    assert not [o for o in doc_of(out, SP)["operations"] if o["kind"] == "blur_face"]


def test_a_face_the_plan_did_not_lift_is_lifted_by_drawing_over_it(page, server,  # noqa: ANN001
                                                                   faces_dir: Path) -> None:
    """n, a box dragged over a face (people's own box on it), its amount set: the plan gains a lift a retoucher
    would have made in Lightroom, drawn over the picture, the after picture brighter there."""
    from playwright.sync_api import expect

    from benchmarks.accuracy import iou
    from benchmarks.accuracy_corpus import pascal_voc_boxes

    base, out = server
    page.goto(f"{base}/image/{SP}")
    expect(page.locator(".op")).to_have_count(4)
    page.wait_for_function(PHOTO_LOADED)
    before_url = page.get_attribute("#photo", "src")
    lifted = [o["params"]["box"] for o in doc_of(out, SP)["operations"] if o["kind"] == "brighten_face"]
    faces = pascal_voc_boxes(faces_dir / "boxes.xml")[SP]
    face = next(b for b in faces if all(iou(b, tuple(lift)) < 0.3 for lift in lifted))  # one the plan left alone
    rect = page.locator("#photo").bounding_box()
    scale = rect["width"] / doc_of(out, SP)["image"]["width"]
    page.locator('li.op.kind-crop .head').first.click()  # a crop selected (it takes drags): drawing still draws
    expect(page.locator("li.op.kind-crop.selected")).to_have_count(1)
    page.click("#draw-lift")
    x0, y0 = rect["x"] + face[0] * scale, rect["y"] + face[1] * scale
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + face[2] * scale, y0 + face[3] * scale, steps=5)
    page.mouse.up()
    op = page.locator('li[data-op="brighten_face-drawn-1"]')
    expect(op.locator(".amount")).to_have_text("marked face: +0.50 EV")
    op.locator("input.ev").fill("0.8")
    op.locator("button.set-ev").click()
    expect(op.locator(".amount")).to_have_text("marked face: +0.80 EV")
    expect(page.locator("svg#overlay .face.brighten.drawn text")).to_have_text("marked +0.80 EV")
    drawn = next(o for o in doc_of(out, SP)["operations"] if o["op_id"] == "brighten_face-drawn-1")
    assert np.allclose(drawn["params"]["box"], face, atol=1.5 / scale) and drawn["params"]["ev"] == 0.8
    expect(page.locator("#photo")).not_to_have_attribute("src", before_url)
    shot(page, "image-lift-drawn")


def test_a_crop_that_follows_the_picture_is_turned_by_hand(browser, faces_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    # The print chart's 8x10 (4:5) follows the picture: upright on an upright group photo. A reviewer who wants it
    # printed 10x8 turns it with one button, sees the frame and its label turned, and saves it.
    import json
    import shutil

    from playwright.sync_api import expect

    from pipeline.kernel.run import RunSettings, process_shoot

    shoot, out = tmp_path / "shoot", tmp_path / "out"
    shoot.mkdir()
    shutil.copy(faces_dir / SP, shoot / SP)  # 360 x 480, upright
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="print", only=None))
    planned = next(o for o in json.loads((out / "instructions" / f"{SP}.json").read_text())["operations"]
                   if o["op_id"] == "crop-4x5")["params"]["box"]
    with served_page(browser, out) as (base, page):
        page.goto(f"{base}/image/{SP}")
        crop = page.locator('li[data-op="crop-4x5"]')
        crop.locator(".head").click()
        expect(crop.locator("button.turn-crop")).to_have_text("Turn to 5:4")
        # What the 8x10 delivers from the planned crop (360 x 450 px): its box as asked, enlarged and flagged; and
        # the two faces it frames, whole.
        expect(crop.locator(".deliveries li.beyond")).to_have_text(
            "print_8x10: 2400×3000 px, 6.67×: enlarged beyond 1.0×, delivered as asked (flag)")
        expect(crop.locator(".deliveries li.faces-whole")).to_have_text("all 2 face(s) whole")
        crop.locator("button.turn-crop").click()
        label = page.locator('svg#overlay .crop[data-op="crop-4x5"] text')
        expect(label).to_contain_text("4:5 as 5:4")
        # Before it is saved, what the turned crop would deliver (the server's sizing of the draft), placed as the
        # plan places a crop: moved up from the centre to keep the girl's head whole (centred, it cut face 2).
        expect(crop.locator(".deliveries .hint")).to_have_text("Delivered from this crop, once saved:")
        expect(crop.locator(".deliveries li.beyond")).to_have_text(
            "print_8x10: 3000×2400 px, 8.33×: enlarged beyond 1.0×, delivered as asked (flag)")
        expect(crop.locator(".deliveries li.faces-whole")).to_have_text("all 2 face(s) whole")
        page.locator('li[data-op="crop-4x5"] button.save-crop').click()
        expect(page.locator('li[data-op="crop-4x5"] .status')).to_have_text("accepted")
        expect(page.locator('li[data-op="crop-4x5"] button.turn-crop')).to_have_text("Turn to 4:5")
        # Turned, the 8x10 is printed 10x8 from the 360 x 288 crop.
        expect(page.locator('li[data-op="crop-4x5"] .deliveries li.beyond')).to_have_text(
            "print_8x10: 3000×2400 px, 8.33×: enlarged beyond 1.0×, delivered as asked (flag)")
        # The plan's upscale flag, judged on the planned crop (6.7x), says what the turned one delivers.
        expect(page.locator('li[data-op="flag-upscale-print_8x10"] .now')).to_have_text(
            "The crop as it stands now: 3000×2400 px, 8.33× (still beyond 1.0×)")
        shot(page, "crop-turned-by-hand")
        op = next(o for o in json.loads((out / "instructions" / f"{SP}.json").read_text())["operations"]
                  if o["op_id"] == "crop-4x5")
        x, y, w, h = op["params"]["box"]
        assert op["params"]["aspect_turned"] is True and w / h == pytest.approx(5 / 4, rel=0.01)
        assert w == pytest.approx(360, abs=1)  # the picture's whole width
        # Back to the plan's crop with one button: upright again, no edit left, the flag as the plan judged it.
        page.locator('li[data-op="crop-4x5"] button.back-to-plan').click()
        expect(page.locator('li[data-op="crop-4x5"] button.turn-crop')).to_have_text("Turn to 5:4")
        expect(page.locator('li[data-op="crop-4x5"] button.back-to-plan')).to_have_count(0)
        expect(page.locator('li[data-op="flag-upscale-print_8x10"] .now')).to_have_count(0)
    back = next(o for o in json.loads((out / "instructions" / f"{SP}.json").read_text())["operations"]
                if o["op_id"] == "crop-4x5")
    assert back["params"]["box"] == planned and not back["params"].get("aspect_turned")
    assert "params" not in back["review"]


def test_a_crop_flag_says_what_the_edited_crop_does_to_the_faces(page, server) -> None:  # noqa: ANN001
    # The dinner's 4:5 crop under corporate_portrait leaves diners out, and the plan flags it. A reviewer who moves
    # the crop sees, under the flag, what the crop as it stands does to the faces; taken back, the flag says it.
    from playwright.sync_api import expect

    base, out = server
    sp = "2008_002079.jpg"
    doc = doc_of(out, sp)
    flag = next(o for o in doc["operations"] if o["kind"] == "flag" and o["params"]["check"] == "crop")
    crop = next(o for o in doc["operations"]
                if o["kind"] == "crop" and o["params"]["aspect"] == flag["params"]["aspect"])
    x, y, w, h = crop["params"]["box"]
    W = doc["image"]["width"]
    moved = [round(W - w if x < (W - w) / 2 else 0.0, 1), y, w, h]  # to the other side of the table
    resp = page.request.post(f"{base}/api/images/{sp}", data={"version": 0, "changes": [
        {"op_id": crop["op_id"], "box": moved}]})
    assert resp.status == 200, resp.text()
    judged = page.request.get(f"{base}/api/images/{sp}").json()["crop_faces"][crop["op_id"]]
    page.goto(f"{base}/image/{sp}")
    now = page.locator(f'li[data-op="{flag["op_id"]}"] .now')
    words = [f"cuts face(s) {', '.join(map(str, judged['cut']))}" if judged["cut"] else "",
             f"leaves face(s) {', '.join(map(str, judged['left_out']))} out" if judged["left_out"] else ""]
    expect(now).to_have_text("The crop as it stands now: "
                             + (" and ".join(w for w in words if w) or f"all {judged['framed']} face(s) whole"))
    assert judged["left_out"] != [i + 1 for i in flag["params"]["faces_left_out"]]  # the move changed who is out
    page.locator(f'li[data-op="{crop["op_id"]}"] .head').click()
    # Its renditions too small to fill: delivered smaller, as the chart asks (told, not in the flag's red).
    expect(page.locator(f'li[data-op="{crop["op_id"]}"] .deliveries li.smaller').first).to_contain_text(
        "delivered smaller")
    shot(page, "crop-flag-now")
    page.locator(f'li[data-op="{crop["op_id"]}"] button.back-to-plan').click()
    expect(now).to_have_count(0)
    # Rejected, the crop's renditions are cut centred: the flag says what that does to the faces.
    page.locator(f'li[data-op="{crop["op_id"]}"] button.reject').click()
    expect(now).to_contain_text("The crop as it stands now: ")
    expect(page.locator(f'li[data-op="{crop["op_id"]}"] .deliveries .hint')).to_have_text(
        "Rejected: the renditions are cut centred instead:")
    expect(page.locator(f'li[data-op="{crop["op_id"]}"] button.save-crop')).to_have_count(0)  # nothing to move
    # ... and the picture shows that centred frame, dashed.
    expect(page.locator(f'svg#overlay .crop.fallback[data-op="{crop["op_id"]}"] text')).to_contain_text(
        "rejected: centred")
    shot(page, "crop-rejected-fallback")
