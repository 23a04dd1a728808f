"""Crops placed on the subject: do a chart's crops hold what the photo is of? Known truth on real photos.

Truth: each photo's subject box, in ``benchmarks/subject_boxes.json``: the bounding box of the photo's own
matte where it comes with one (danielgatis/rembg's ``examples/*.out.png``), else drawn by eye on a 10 % grid
(the subject a retoucher keeps whole: the eagle, the dog, the cup, the flowers). The photos are not committed:
scikit-image's ``chelsea``, ``coffee``, ``rocket``, ``clock`` and ``stereo_motorcycle`` are always there; the others are read from the folders
``--photos`` names (a checkout of the photo's repository or a folder of its files, checked by SHA-256): pjreddie/darknet's ``data/*.jpg``, rembg's
``examples/``, immich-app/test-assets' ``albums/nature`` and ``metadata/gps-position`` photos. The split is
40 % tuning / 60 % held out by a hash of the photo's name, as ``accuracy_corpus`` splits its sources:
:data:`~pipeline.imaging.measure.content.SALIENT_LONG_EDGE` and the other constants of the subject's map were
chosen on the tuning split; the held-out split is reported apart.

Truth is also made: each photo is cut by a sixth or a quarter of its width (or height) on one side, where that
leaves its subject whole, so that the subject stands off the centre as a photographer composing on a third places it
(the "moved" rows; the box moves with the cut). postprod analyses each picture once (the default graph, local
executor). Its crops are then planned for every aspect
of :data:`ASPECTS` that differs from the photo's own, the largest crop of the aspect as postprod's are, by three
placements on that one analysis: the frame's centre (naive), the centre of the salient region
(``saliency_x``/``saliency_y``: the rule before the subject's map), and postprod's (``saliency_map``,
:func:`pipeline.planning.rules.crops.salient_focus`). A crop's shortfall is the share of the subject's box the
best-placed crop of that size holds less the share it holds; it *cuts* the subject when that is over
:data:`CUT_SHORTFALL`.

    python benchmarks/subject_crops.py [--photos DIR ...] [--work DIR] [--verbose]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.imaging.geometry import Box, kept_share  # noqa: E402

BOXES = Path(__file__).with_name("subject_boxes.json")
#: The crops planned on each photo (those of the charts that place crops on the subject, and their transposes).
ASPECTS = ("4:5", "1:1", "9:16", "16:9", "3:2", "2:3")
#: A crop cuts the subject when the best placement of it would hold this much more of the subject's box.
CUT_SHORTFALL = 0.02
PLACEMENTS = ("centred (naive)", "centre of the salient region (before)", "postprod: the subject's map")


def split_of(stem: str) -> str:
    """``tuning`` (two fifths) or ``held_out``, by a hash of the photo's name without its extension: the split the
    subject's map was chosen on."""
    return "tuning" if int(hashlib.sha1(stem.encode()).hexdigest(), 16) % 5 < 2 else "held_out"


#: The cuts that move a subject off the centre: a side and the share of the frame cut off it.
CUTS = tuple((side, share) for share in (1 / 6, 1 / 4) for side in "LRTB")


def gather(folders: list[Path], shoot: Path) -> tuple[dict[str, Box], list[str]]:
    """Write the photos of :data:`BOXES` into ``shoot`` as JPEGs, as shot and cut (:data:`CUTS`): their subject boxes
    (x, y, w, h in pixels) by file name (``<photo>~<cut>.jpg``), and the photos not found."""
    from PIL import Image

    boxes, missing = {}, []
    for name, entry in json.loads(BOXES.read_text())["photos"].items():
        if entry.get("skimage"):
            from skimage import data

            photo = getattr(data, entry["skimage"])()
            photo = np.asarray(photo[0] if isinstance(photo, tuple) else photo)  # a stereo pair: its left view
            if photo.ndim == 2:
                photo = np.dstack([photo] * 3)
        else:
            # A checkout of the photo's repository, or a folder of its files.
            found = [p for f in folders for p in (f / entry["path"], f / Path(entry["path"]).name) if p.is_file()]
            if not found or hashlib.sha256(found[0].read_bytes()).hexdigest() != entry["sha256"]:
                missing.append(name)
                continue
            photo = np.asarray(Image.open(found[0]).convert("RGB"))
        H, W = photo.shape[:2]
        x0, y0, x1, y1 = entry["box"]
        box = (x0 * W, y0 * H, (x1 - x0) * W, (y1 - y0) * H)
        stem = Path(name).stem
        Image.fromarray(photo).save(shoot / f"{stem}~as shot.jpg", quality=95)
        boxes[f"{stem}~as shot.jpg"] = box
        for side, part in CUTS:
            c = int((W if side in "LR" else H) * part)
            keeps = {"L": x0 * W >= c, "R": x1 * W <= W - c, "T": y0 * H >= c, "B": y1 * H <= H - c}[side]
            if not keeps:
                continue
            cut = {"L": photo[:, c:], "R": photo[:, :W - c], "T": photo[c:], "B": photo[:H - c]}[side]
            dx, dy = (c if side == "L" else 0), (c if side == "T" else 0)
            file = f"{stem}~{side}{part:.2f}.jpg"
            Image.fromarray(np.ascontiguousarray(cut)).save(shoot / file, quality=95)
            boxes[file] = (box[0] - dx, box[1] - dy, box[2], box[3])
    return boxes, missing


def best_share(box: Box, width: float, height: float, w: float, h: float) -> float:
    """The most of ``box`` (x, y, w, h, pixels) a ``w`` x ``h`` crop inside the frame can hold (what a crop holds:
    :func:`~pipeline.imaging.geometry.kept_share`)."""
    def held(lo: float, size_of: float, size: float, frame: float) -> float:
        # The crop's span [p, p + size] over [lo, lo + size_of], best placed within [0, frame].
        return min(size_of, size, max(0.0, min(lo + size_of, frame) - max(lo, 0.0)))

    x, y, bw, bh = box
    return held(x, bw, w, width) * held(y, bh, h, height) / (bw * bh)


def crops(out: Path) -> dict[str, dict[str, list[tuple[str, float, float]]]]:
    """Per photo and placement, each aspect's (aspect, share held, best share) on postprod's analysis in ``out``."""
    import pyarrow.parquet as pq

    from charts.loader import load_chart
    from charts.schema import CropPlacement, CropSpec, aspect_ratio
    from pipeline.kernel.records import Face, ImageRecord, OperationKind
    from pipeline.planning.plan import plan_image

    base = load_chart("social_media").chart
    faces: dict[str, list[Face]] = {}
    for row in pq.read_table(out / "faces.parquet").to_pylist():
        sp = row.pop("source_path")
        faces.setdefault(sp, []).append(Face(**{k: v for k, v in row.items() if k in Face.__dataclass_fields__}))
    result: dict[str, dict[str, list[tuple[str, float, float]]]] = {}
    for row in pq.read_table(out / "manifest.parquet").to_pylist():
        if row["status"] != "ok":
            continue
        W, H = float(row["width"]), float(row["height"])
        aspects = [a for a in ASPECTS if abs(aspect_ratio(a) - W / H) > 0.01]  # not the photo's own
        result[row["source_path"]] = {}
        for label in PLACEMENTS:
            record = ImageRecord.from_row(dict(row), faces.get(row["source_path"], []))
            placement = CropPlacement.CENTER if label.startswith("centred") else CropPlacement.SALIENCY
            if label.startswith("centre of"):
                record.content.saliency_map = None
            chart = base.model_copy(update={"crops": [CropSpec(aspect=a, placement=placement) for a in aspects]})
            ops = [o for o in plan_image(record, chart) if o.kind is OperationKind.CROP]
            result[row["source_path"]][label] = [(o.params["aspect"], o.params["box"]) for o in ops]  # type: ignore[misc]
    return result  # type: ignore[return-value]


def table(boxes: dict[str, Box], placed: dict, verbose: bool) -> str:
    """Per split, pictures (as shot, moved) and placement: crops, crops cutting the subject, mean and worst
    shortfall."""
    lines = ["| split | pictures | placement | pictures | crops | cutting the subject (shortfall > 2 %) "
             "| mean shortfall | worst |", "|---|---|---|---|---|---|---|---|"]
    cuts_seen = []
    for sp in ("tuning", "held_out"):
        for kind in ("as shot", "moved"):
            names = [n for n in placed if split_of(n.split("~")[0]) == sp and (n.endswith("~as shot.jpg")) == (
                kind == "as shot")]
            for label in PLACEMENTS:
                shorts = []
                for n in names:
                    W, H = placed[n]["_frame"]
                    for aspect, crop in placed[n][label]:
                        short = best_share(boxes[n], W, H, crop[2], crop[3]) - kept_share(tuple(crop), 0.0, boxes[n])
                        shorts.append(short)
                        if verbose and short > CUT_SHORTFALL:
                            cuts_seen.append(f"  {sp:8s} {label[:24]:24s} {n:56s} {aspect:5s} holds "
                                             f"{kept_share(tuple(crop), 0.0, boxes[n]):.2f} of the subject, "
                                             f"{best_share(boxes[n], W, H, crop[2], crop[3]):.2f} possible")
                if shorts:
                    lines.append(f"| {sp} | {kind} | {label} | {len(names)} | {len(shorts)} | "
                                 f"{sum(s > CUT_SHORTFALL for s in shorts)} | {np.mean(shorts):.3f} | "
                                 f"{max(shorts):.2f} |")
    return "\n".join(lines + cuts_seen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, nargs="*", default=[], help="folders holding the listed photos")
    parser.add_argument("--work", type=Path, help="working folder (kept); a temporary one by default")
    parser.add_argument("--verbose", action="store_true", help="list every crop that cuts its subject")
    args = parser.parse_args(argv)
    os.environ.setdefault("POSTPROD_MODEL_DIR", str(ROOT.parent / "shared" / "data" / "models"))
    import pyarrow.parquet as pq

    from pipeline.kernel.run import RunSettings, process_shoot

    work = args.work or Path(tempfile.mkdtemp(prefix="subject_crops-"))
    shoot, out = work / "shoot", work / "out"
    shutil.rmtree(shoot, ignore_errors=True)
    shoot.mkdir(parents=True)
    boxes, missing = gather(args.photos, shoot)
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, chart="social_media", executor="local", force=True))
    placed = crops(out)
    for row in pq.read_table(out / "manifest.parquet").to_pylist():
        if row["source_path"] in placed:
            placed[row["source_path"]]["_frame"] = (float(row["width"]), float(row["height"]))
    photos = {n.split("~")[0] for n in placed}
    print(f"subject crops: {len(photos)} photos, {len(placed)} pictures with the cuts ({len(missing)} of the list "
          f"not found: {', '.join(missing) or '-'})")
    print(table(boxes, placed, args.verbose))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
