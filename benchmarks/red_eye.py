"""Red eyes, against red pupils put where another model found the eyes: found, corrected, and none made up.

No photo here has a flash's red eye with its pupils marked, so the truth is made: each folder holds photos and a
dlib imglab XML of their faces' 68 landmarks (dlib's ``examples/faces/*_with_face_landmarks.xml``: the PASCAL VOC
photos, landmarks by dlib's own shape predictor, not by postprod's detector). Each photo is enlarged (``--scale``,
3 by default: the PASCAL photos are 500 px, their eyes a few pixels) and every eye of every face given a red pupil
at the centre of its six landmarks: a disc of 0.42 of the eye's opening (a pupil opened wide in a dark room, as a
flash finds it), red shading to darker at its rim, a catch light at its upper left. postprod then runs on the red
twins and on the photos as they were, as a user runs it (local executor, the default graph, chart ``base``):

- found: a ``red_eye`` operation's eye within the injected pupil's radius (or 3 px) of its centre, by the pupil's
  radius on the analysis proxy (what the finder sees);
- corrected: the redness (linear red over the larger of green and blue) at the injected pupils in the delivered
  web rendition, red twin against its correction (the median pupil's, over its inner half);
- made up: ``red_eye`` operations on the photos as they were (none was given one; by eye, a photo may have one).

With ``--originals FOLDER ...``, photos of other folders (no landmarks needed) are run as they are, at their own
size: the red eyes found there, each to be judged by eye (a photo may have a real one), and how many faces had their
eyes far enough apart on the proxy to be judged at all.

    python benchmarks/red_eye.py FOLDER [FOLDER ...] [--scale 3] [--originals FOLDER ...] [--write]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import machine  # noqa: E402
from pipeline.imaging.color import srgb_to_linear  # noqa: E402
from pipeline.imaging.red_eye import MIN_EYE_DISTANCE, redness  # noqa: E402
from pipeline.kernel.run import RunSettings, process_shoot  # noqa: E402

REPORT = ROOT / "benchmarks" / "RED_EYE.md"
#: A red pupil's radius against its eye's opening (the lids' distance at the eye's middle), and its colour (sRGB).
PUPIL_OF_OPENING = 0.42
PUPIL_BGR = (30.0, 35.0, 190.0)
#: Pupils by their radius on the analysis proxy (pixels).
SIZES = ((0.0, 2.0, "under 2 px"), (2.0, 4.0, "2-4 px"), (4.0, 1e9, "4 px and over"))

Eye = tuple[float, float, float]  # centre x, y and radius, in the enlarged photo's pixels


def eyes_of(xml: Path, folder: Path, scale: float) -> dict[str, list[Eye]]:
    """The red pupils to put on each photo of ``folder`` that ``xml`` has landmarks for."""
    out: dict[str, list[Eye]] = {}
    for image in ET.parse(xml).getroot().iter("image"):
        name = image.get("file") or ""
        if not (folder / name).is_file():
            continue
        for box in image.iter("box"):
            parts = {int(p.get("name") or -1): (float(p.get("x") or 0), float(p.get("y") or 0)) for p in box.iter("part")}
            if len(parts) < 48:
                continue
            for first in (36, 42):  # the eye on the image's left, then its right: six points round each
                ring = np.array([parts[first + k] for k in range(6)])
                opening = abs((ring[1, 1] + ring[2, 1]) / 2 - (ring[4, 1] + ring[5, 1]) / 2)
                width = float(np.linalg.norm(ring[3] - ring[0]))
                radius = max(1.5, PUPIL_OF_OPENING * max(opening, 0.25 * width) * scale)
                out.setdefault(name, []).append((float(ring[:, 0].mean()) * scale, float(ring[:, 1].mean()) * scale,
                                                 radius))
    return out


def with_red_eyes(photo: np.ndarray, eyes: list[Eye], rng: np.random.Generator) -> np.ndarray:
    """``photo`` (BGR 8-bit) with a red pupil on each eye: red shading darker at the rim, a catch light."""
    out = photo.astype(np.float32)
    h, w = photo.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for cx, cy, r in eyes:
        d = np.hypot(xx - cx, yy - cy)
        inside = np.clip(r + 0.5 - d, 0.0, 1.0)[..., None]
        colour = np.array(PUPIL_BGR, np.float32) + np.array([0.0, 0.0, rng.uniform(-30, 30)], np.float32)
        shade = (1.0 - 0.35 * np.clip(d / r, 0.0, 1.0))[..., None]
        out = out * (1 - inside) + inside * colour * shade
        catch = np.clip(0.3 * r + 0.5 - np.hypot(xx - (cx - 0.3 * r), yy - (cy - 0.3 * r)), 0.0, 1.0)[..., None]
        out = out * (1 - catch) + catch * 255.0
    return np.clip(out, 0, 255).astype(np.uint8)


def pupil_redness(bgr: np.ndarray, eye: Eye) -> float:
    """The median redness over a pupil's inner half (its catch light left out)."""
    cx, cy, r = eye
    h, w = bgr.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot(xx - cx, yy - cy)
    catch = np.hypot(xx - (cx - 0.3 * r), yy - (cy - 0.3 * r)) <= 0.3 * r + 1
    sel = (d <= max(1.0, 0.5 * r)) & ~catch
    if not sel.any():
        sel = d <= max(1.0, 0.5 * r)
    rgb = srgb_to_linear(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
    return float(np.median(redness(rgb[sel])))


def web_export(out: Path, source_path: str) -> np.ndarray:
    """The web rendition of an image, as ``exports.parquet`` names it."""
    rows = pq.read_table(out / "exports.parquet", columns=["source_path", "rendition", "path"]).to_pylist()
    path = next(r["path"] for r in rows if r["source_path"] == source_path and r["rendition"] == "web")
    return cv2.imread(str(out / path))


def run(folders: list[tuple[Path, Path]], scale: float, work: Path) -> dict:
    rng = np.random.default_rng(5)
    shoots = {label: work / label for label in ("red", "plain")}
    for s in shoots.values():
        s.mkdir(parents=True)
    truth: dict[str, list[Eye]] = {}
    for folder, xml in folders:
        for name, eyes in sorted(eyes_of(xml, folder, scale).items()):
            photo = cv2.imread(str(folder / name))
            big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            stem = f"{folder.name}_{Path(name).stem}.png"  # lossless: the red as put there
            cv2.imwrite(str(shoots["plain"] / stem), big)
            cv2.imwrite(str(shoots["red"] / stem), with_red_eyes(big, eyes, rng))
            truth[stem] = eyes
    outs = {}
    for label, shoot in shoots.items():
        outs[label] = work / f"{label}-out"
        result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=outs[label], executor="local", chart="base"))
        if result.failed:
            raise SystemExit(f"{label}: {result.failed} image(s) failed")
    rows = []
    made_up = 0
    proxies = {r["source_path"]: r["width"] / r["proxy_width"] for r in pq.read_table(
        outs["red"] / "manifest.parquet", columns=["source_path", "width", "proxy_width"]).to_pylist()}
    for stem, eyes in truth.items():
        docs = {label: json.loads((outs[label] / "instructions" / f"{stem}.json").read_text()) for label in outs}
        for o in docs["plain"]["operations"]:
            if o["kind"] == "red_eye":
                made_up += len(o["params"]["eyes"])
                print(f"made up: {stem} {o['params']}", file=sys.stderr)
        found = [e for o in docs["red"]["operations"] if o["kind"] == "red_eye" for e in o["params"]["eyes"]]
        proxy_scale = proxies[stem]
        exports = {"red": web_export(outs["red"], stem)}
        k = exports["red"].shape[1] / docs["red"]["image"]["width"]
        for cx, cy, r in eyes:
            hit = any(math.hypot(fx - cx, fy - cy) <= max(3.0, r) for fx, fy, _ in found)
            on_export = (cx * k, cy * k, r * k)
            rows.append({"photo": stem, "radius_proxy": r / proxy_scale, "found": hit,
                         "redness_after": pupil_redness(exports["red"], on_export)})
    # The red twins' pupils as delivered without the correction: the same photos, red, through a chart that keeps
    # red eyes (the redness the correction starts from).
    chart = work / "keep.yaml"
    chart.write_text("schema_version: 2\nextends: base\nfaces:\n  red_eye: false\n")
    kept = work / "kept-out"
    process_shoot(RunSettings(shoot_dir=shoots["red"], out_dir=kept, executor="local", chart=str(chart)))
    i = 0
    for stem, eyes in truth.items():
        export = web_export(kept, stem)
        doc = json.loads((kept / "instructions" / f"{stem}.json").read_text())
        k = export.shape[1] / doc["image"]["width"]
        for cx, cy, r in eyes:
            rows[i]["redness_before"] = pupil_redness(export, (cx * k, cy * k, r * k))
            i += 1
    return {"rows": rows, "made_up": made_up, "photos": len(truth)}


def originals(folders: list[Path], work: Path) -> dict:
    """``--originals``: every photo of ``folders`` through postprod as it is; the red eyes found, the faces judged."""
    shoot = work / "originals"
    shoot.mkdir(parents=True)
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif", ".tiff"):
                (shoot / f"{folder.name}_{path.name}").write_bytes(path.read_bytes())
    out = work / "originals-out"
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="base"))
    found, judged, faces = [], 0, 0
    scales = {r["source_path"]: r["width"] / r["proxy_width"] for r in pq.read_table(
        out / "manifest.parquet", columns=["source_path", "width", "proxy_width"]).to_pylist() if r["proxy_width"]}
    for f in pq.read_table(out / "faces.parquet", columns=["source_path", "landmarks"]).to_pylist():
        faces += 1
        marks, scale = f["landmarks"] or [], scales.get(f["source_path"], 1.0)
        judged += len(marks) >= 4 and math.dist(marks[0:2], marks[2:4]) / scale >= MIN_EYE_DISTANCE
    for doc_path in sorted((out / "instructions").glob("*.json")):
        doc = json.loads(doc_path.read_text())
        found += [f"{doc['source_path']} face {o['params']['face_index'] + 1}" for o in doc["operations"]
                  if o["kind"] == "red_eye"]
    return {"photos": len(list(shoot.iterdir())), "faces": faces, "judged": judged, "found": found}


def table(result: dict) -> list[str]:
    rows = result["rows"]
    lines = ["| pupils (radius on the proxy) | red pupils put there | found | redness delivered, median: kept -> "
             "corrected (found ones) |", "|---|---|---|---|"]
    for lo, hi, label in ((0.0, 1e9, "all"), *SIZES):
        g = [r for r in rows if lo <= r["radius_proxy"] < hi]
        f = [r for r in g if r["found"]]
        red = (f"{statistics.median(r['redness_before'] for r in f):.1f} -> "
               f"{statistics.median(r['redness_after'] for r in f):.1f}" if f else "—")
        lines.append(f"| {label} | {len(g)} | {len(f)} ({100.0 * len(f) / len(g):.0f} %) | {red} |" if g else
                     f"| {label} | 0 | — | — |")
    lines += ["", f"- red eyes found on the {result['photos']} photos as they were (none was given one): "
                  f"{result['made_up']}",
              "- redness: linear red over the larger of green and blue; skin reads 1.3-2.5 under white light, the "
              "finder takes 6 and twice the skin around for red"]
    if "originals" in result:
        o = result["originals"]
        lines.append(f"- other photos as they are (`--originals`): {o['photos']} photos, {o['faces']} faces, "
                     f"{o['judged']} with eyes far enough apart to judge; red eyes found on "
                     + (", ".join(o["found"]) if o["found"] else "none"))
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="folders of photos, each with a dlib imglab XML of its "
                    "faces' 68 landmarks (the first *landmarks*.xml in it, or FOLDER:XML)")
    ap.add_argument("--scale", type=float, default=3.0, help="enlarge the photos this much first (default 3)")
    ap.add_argument("--originals", nargs="+", type=Path, default=[], help="also run these folders' photos as they "
                    "are (no landmarks needed): the red eyes found there")
    ap.add_argument("--write", action="store_true", help=f"write the table to {REPORT.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    pairs = []
    for f in args.folders:
        folder, _, xml = str(f).partition(":")
        xml_path = Path(xml) if xml else next(iter(sorted(Path(folder).glob("*landmarks*.xml"))), None)
        if xml_path is None:
            raise SystemExit(f"{folder}: no landmarks XML (give FOLDER:XML)")
        pairs.append((Path(folder).resolve(), xml_path.resolve()))
    os.environ.setdefault("POSTPROD_MODEL_DIR", str(ROOT.parent / "shared" / "data" / "models"))
    with tempfile.TemporaryDirectory(prefix="postprod-red-eye-") as tmp:
        result = run(pairs, args.scale, Path(tmp))
        if args.originals:
            result["originals"] = originals([f.resolve() for f in args.originals], Path(tmp))
    m = machine()
    head = [f"- date: {m['date']}", f"- machine: {m['cpu']}, Python {m['python']}",
            f"- postprod: commit {m['postprod commit']}, code hash {m['code hash']}",
            "- command: `python benchmarks/red_eye.py " + " ".join(str(f) for f in args.folders)
            + f" --scale {args.scale:g}"
            + (" --originals " + " ".join(str(f) for f in args.originals) if args.originals else "") + "`"]
    body = table(result)
    print("\n".join(head + [""] + body))
    if args.write:
        REPORT.write_text("# Red eyes, against red pupils put on eyes another model found\n\nWritten by "
                          "`benchmarks/red_eye.py` (its docstring says how each figure is made).\n\n"
                          + "\n".join(head) + "\n\n" + "\n".join(body) + "\n\n" + __doc__.split("\n\n")[1] + "\n")
        print(f"written to {REPORT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
