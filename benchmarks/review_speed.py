"""The review app with 2,000 images, in headless Chromium: the gallery's first screen, moving on.

Targets (issue 13): the gallery's first screen in under 1 s and moving to the
next image in under 100 ms, measured in a real browser (Debian's Chromium
driven by Playwright) on this machine. Prints a table; ``--write`` puts it in
``benchmarks/REVIEW.md``.

The shoot is synthetic but made of real outputs: one real photo is processed
(``postprod process``), then its manifest row, instruction file, XMP sidecar
and run preview are copied 2,000 times under other names, each name a link to
the same source file. Every image is then a real, plannable, reviewable image
to the app; only their pictures are alike.

Measured:

- gallery, first screen: from navigation to every thumbnail in the first
  screen decoded, in a new browser context (empty cache): the server just
  started (reading the 2,000 instruction files), a first visit (the
  thumbnails are the render's own pictures), a first visit after decisions
  changed every image (each thumbnail rendered on demand), and later visits;
- gallery, next tile: a key press to the next frame painted with the
  selection moved;
- image view, next image: a key press to the next image's title shown and its
  picture decoded, at a retoucher's pace (the neighbour prefetched) and back to
  back (no pause: what is not prefetched yet is waited for);
- the API's answers (server time, measured in the browser).

Run: ``python benchmarks/review_speed.py [--images 2000] [--moves 40] [--write]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.kernel.run import RunSettings, process_shoot  # noqa: E402
from pipeline.outputs.instructions import instruction_name  # noqa: E402
from pipeline.review.app import create_app, review_context, serve  # noqa: E402

TESTDATA = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data"))
SOURCE = TESTDATA / "faces" / "pascal_voc" / "2008_001009.jpg"
CHROMIUM = os.environ.get("POSTPROD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
                 "--disable-extensions", "--mute-audio"]
VIEWPORT = {"width": 1600, "height": 1000}


def synthetic_folder(root: Path, n: int) -> Path:
    """An output folder of ``n`` images made from one real processed photo."""
    shoot, first = root / "one", root / "out-one"
    shoot.mkdir(parents=True)
    shutil.copy(SOURCE, shoot / SOURCE.name)
    os.environ.setdefault("POSTPROD_MODEL_DIR", str(TESTDATA / "models"))
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=first, executor="local", chart="corporate_portrait"))
    big_shoot, out = root / "shoot", root / "out"
    (big_shoot / "day1").mkdir(parents=True)
    shutil.copytree(first, out, ignore=shutil.ignore_patterns("instructions", "xmp", "exports", "contact_sheets"))
    (out / "instructions").mkdir()
    table = pq.read_table(first / "manifest.parquet")
    row = table.to_pylist()[0]
    doc = json.loads((first / "instructions" / instruction_name(SOURCE.name)).read_text())
    xmp = (first / doc["xmp"]).read_text()
    rows = []
    for i in range(n):
        sp = f"day1/IMG_{i + 1:04d}.jpg"
        (big_shoot / sp).symlink_to(shoot / SOURCE.name)
        rows.append({**row, "source_path": sp})
        d = {**doc, "source_path": sp, "xmp": f"xmp/day1/IMG_{i + 1:04d}.jpg.xmp"}
        (out / "instructions" / instruction_name(sp)).write_text(json.dumps(d, indent=2))
        (out / d["xmp"]).parent.mkdir(parents=True, exist_ok=True)
        (out / d["xmp"]).write_text(xmp)
    meta = dict(table.schema.metadata)
    meta[b"postprod.shoot"] = str(big_shoot).encode()
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema).replace_schema_metadata(meta),
                   out / "manifest.parquet")
    summary = json.loads((out / "summary.json").read_text())
    summary["shoot"] = str(big_shoot)
    (out / "summary.json").write_text(json.dumps(summary))
    return out


FIRST_SCREEN = """() => {
  const tiles = [...document.querySelectorAll('.tile')];
  if (tiles.length < 2) return false;
  const h = window.innerHeight;
  const visible = tiles.filter(t => { const r = t.getBoundingClientRect(); return r.top < h && r.bottom > 0; });
  const imgs = visible.map(t => t.querySelector('img'));
  return imgs.length > 0 && imgs.every(i => i && i.complete && i.naturalWidth > 0) ? performance.now() : false;
}"""

NEXT_TILE = """async () => {
  const before = document.querySelector('.tile.selected').dataset.index;
  const t0 = performance.now();
  document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true}));
  await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));  // the frame that shows it
  const after = document.querySelector('.tile.selected').dataset.index;
  return after !== before ? performance.now() - t0 : -1;
}"""

NEXT_IMAGE = """async () => {
  const title = document.getElementById('title').textContent;
  const t0 = performance.now();
  document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true}));
  for (;;) {
    await new Promise(r => requestAnimationFrame(r));
    const photo = document.getElementById('photo');
    if (document.getElementById('title').textContent !== title && photo && photo.complete && photo.naturalWidth > 0) {
      try { await photo.decode(); } catch (e) {}
      await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
      return performance.now() - t0;
    }
    if (performance.now() - t0 > 10000) return -1;
  }
}"""


def stats(values: list[float]) -> tuple[float, float, float]:
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
    return statistics.median(values), p90, values[-1]


def first_screen(browser, base: str) -> tuple[float, float, int]:  # noqa: ANN001
    """Milliseconds from navigation to the first screen's thumbnails decoded, in a new context (empty cache)."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(base + "/", wait_until="commit")
    done = page.wait_for_function(FIRST_SCREEN, timeout=120_000, polling=10).json_value()
    api = page.evaluate("() => performance.getEntriesByType('resource').filter(e => e.name.includes('/api/images'))"
                        ".map(e => [e.responseEnd - e.requestStart, e.encodedBodySize])")
    tiles = page.locator(".tile").count()
    context.close()
    return done, api[0][0], api[0][1], tiles


def measure(out: Path, moves: int, reps: int) -> list[tuple[str, str, str]]:
    from playwright.sync_api import sync_playwright

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # as `postprod review` runs it: no line per request
    app = create_app(out, reviewer="bench", warm=True)  # as `postprod review` starts it
    srv = serve(app, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_port}"
    results: list[tuple[str, str, str]] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            rendered = list((out / "previews").glob("*.after.jpg"))
            cases = [("server just started", None),
                     ("first visit: the render's own pictures", "drop thumbnails"),
                     ("first visit after decisions changed every image: thumbnails rendered now", "hide renders"),
                     ("next visits, browser cache empty", "show renders")]
            for label, before in cases:
                runs = []
                for rep in range(1 if before is None else reps):
                    time.sleep(2)  # the server is done with the previous visit's thumbnails
                    review_context(app).store.warm()  # the warm-up has run since start-up
                    if before in ("drop thumbnails", "hide renders"):
                        for f in (out / "previews").glob("*.thumb-*.jpg"):
                            f.unlink()
                    for f in rendered:  # without the render's picture a thumbnail is rendered from the run's preview
                        if before == "hide renders" and f.is_file():
                            f.rename(f.with_suffix(".hidden"))
                        elif before == "show renders" and f.with_suffix(".hidden").is_file():
                            f.with_suffix(".hidden").rename(f)
                    runs.append(first_screen(browser, base))
                done = [r[0] for r in runs]
                api_ms = statistics.median(r[1] for r in runs)
                results.append((f"gallery, first screen ({label})", f"{statistics.median(done):.0f} ms",
                                (f"min {min(done):.0f}, max {max(done):.0f} ms over {len(runs)} visits; " if len(runs) > 1
                                 else "one visit; ") + f"/api/images {api_ms:.0f} ms, {runs[0][2] / 1024:.0f} KB"))
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.goto(base + "/")
            page.wait_for_function(FIRST_SCREEN, timeout=60_000)
            times = [page.evaluate(NEXT_TILE) for _ in range(moves)]
            med, p90, worst = stats(times)
            results.append(("gallery, next tile (key to frame)", f"{med:.1f} ms",
                            f"p90 {p90:.1f} ms, max {worst:.1f} ms, {moves} moves"))
            page.goto(base + "/image/day1/IMG_0001.jpg")
            page.wait_for_function("() => document.querySelectorAll('#filmstrip .frame').length > 1000",
                                   timeout=60_000)
            page.wait_for_timeout(1500)
            paced = []
            for _ in range(moves):
                page.wait_for_timeout(400)  # a retoucher's look at the image: the neighbours are fetched meanwhile
                paced.append(page.evaluate(NEXT_IMAGE))
            med, p90, worst = stats(paced)
            results.append(("image view, next image (retoucher's pace)", f"{med:.0f} ms",
                            f"p90 {p90:.0f} ms, max {worst:.0f} ms, {moves} moves, 0.4 s between"))
            burst = [page.evaluate(NEXT_IMAGE) for _ in range(moves)]
            med, p90, worst = stats(burst)
            results.append(("image view, next image (back to back)", f"{med:.0f} ms",
                            f"p90 {p90:.0f} ms, max {worst:.0f} ms, {moves} moves, no pause"))
            browser.close()
    finally:
        srv.shutdown()
        srv.server_close()
    return results


def table(results: list[tuple[str, str, str]], n: int) -> str:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    lines = [f"Review app, {n} images, headless Chromium ({CHROMIUM}), {os.cpu_count()} CPUs "
             f"(load average {load} at the end: the machine is shared), {time.strftime('%Y-%m-%d')}", "",
             "| measure | median | notes |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in results]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--moves", type=int, default=40)
    ap.add_argument("--visits", type=int, default=5, help="first-screen visits per case (the median is shown)")
    ap.add_argument("--write", action="store_true", help="write the table into benchmarks/REVIEW.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="postprod-review-bench-") as tmp:
        t0 = time.perf_counter()
        out = synthetic_folder(Path(tmp), args.images)
        print(f"synthetic output folder of {args.images} images in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        results = measure(out, args.moves, args.visits)
    text = table(results, args.images)
    print(text)
    if args.write:
        path = ROOT / "benchmarks" / "REVIEW.md"
        head = ("# Review app speed\n\n`python benchmarks/review_speed.py --write` (targets, issue 13: the gallery's "
                "first screen under 1 s and the next image under 100 ms with 2,000 images).\n\n")
        path.write_text(head + text + "\n")


if __name__ == "__main__":
    main()
