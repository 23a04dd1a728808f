"""Faces blurred for privacy, judged against faces people drew: are the delivered faces gone, and only they?

The chart's ``privacy.blur_faces`` (:mod:`pipeline.planning.rules.privacy`) blurs the faces the detector finds. A
face the detector misses is delivered as photographed, so the first figure is how many faces *people* drew on the
photos come out blurred, not how many of the detector's own. Each folder holds photos and a dlib imglab XML of
their faces (``<image file=...><box top= left= width= height=/>``); by default the shared data's four PASCAL VOC
photos (dlib's ``examples/faces/training.xml``, 18 faces). A folder may instead hold a COCO keypoints JSON (people
annotated with their nose and eyes, each marked visible or not): every person whose nose and one eye or both are
marked visible is a face, in crowds and behind others too, its box spanned by those points (2.2 eye distances wide,
as a face is about 2.2 times its eyes' distance; 1.5 nose-to-eye distances around the points where one eye shows).
Nothing in the rule or the renderer was fitted on any of these photos (the head's proportions are set from anatomy
and geometry: ``HEAD_*`` in the rule's module).

Each folder is run through postprod twice, as a user runs it (local executor, the default graph, every stage):
under ``base`` and under a chart extending it with ``privacy: {blur_faces: all}``. Then, per drawn face:

- blurred: a ``blur_face`` operation's face box overlaps the drawn box (IoU 0.3 or more); of a face given by its
  keypoints: its visible nose and eyes all lie under the blur (mask 0.99 or more);
- covered: the share of the drawn box that lies wholly under the blurred ellipse (mask 0.99 or more);
- detail left: the fine detail (grey minus its Gaussian blur at 1.5 px) inside the drawn box, blurred delivery
  against the plain one (the grain the blur takes from the picture around it counts too); and the face's own detail
  left: the correlation of that fine detail with the plain delivery's (about 0 where none is left);
- found again: faces a detector finds on the delivered JPEG, plain and blurred, matched to the drawn boxes (IoU 0.3)
  by YuNet at the pipeline's own confidence (0.7), and at lower ones: YuNet 0.5 and SCRFD 0.3. A blurred head on a
  body is still head-shaped; what a detector scores low on it is the shape, not a person's features;
- and the blurs on no drawn face (the detector's false faces, or faces the drawers left out), and the render
  stage's seconds an image with and without the blurs.

With ``--review`` a reviewer's pass follows, as production works: the plan flags every frame with a blur
(``privacy``) for a person to look for the faces it missed. On each flagged frame, every drawn face left unblurred
is blurred as a reviewer does it in the review app: a box dragged over the head (the head's box around the drawn
face, :func:`~pipeline.planning.rules.privacy.head_box`), sent through the review store as the app sends it
(:meth:`~pipeline.review.store.ReviewStore.decide`, timed: the instructions JSON, XMP and parquet written). The
shoot is rendered again (``--only render``) and those faces judged on the new delivery: 90 % of the drawn box or
more under a blur, and the face's own detail left (the correlation above). A missed face on a frame with no blur at all is counted apart: no flag
sends a person there.

With ``--grain``, the blur's grain against known grain: each photo, its own grain taken out (non-local means), is
given white noise of a known level (4 and 8 of 255, added to its sRGB values and saved as a camera's JPEG, quality 92,
or at 100, a RAW's or a TIFF's grain) and each drawn face's head blurred by the
renderer (:func:`~pipeline.imaging.render.render_frame`, the head's box around the drawn face), on the photo as it
was and on its noisy twin. The difference of the two deliveries is the noise as delivered: around the head (beyond
the blur's feather, out to a quarter of the head's box) it is the injected grain; inside the blurred ellipse (the
photo as it was blurred without grain), the grain the renderer gave the noisy twin. Their ratio (standard deviations) is 1 where the blur is as grainy as the photo, 0
without grain; and that of their grey part (the mean of the channels), 1 where the blur's grain is as much grey
and as much colour as the photo's. And the features left: the correlation, inside the drawn box, of the noisy blurred delivery's fine
detail with the noisy plain delivery's (0: nothing of the face or of its grain is left).

With ``--mosaic`` the same photos are also laid side by side at their own size on one 6000 x 4000 frame (24 MP,
a grey ground between them) and judged again: the same faces, at the same pixel sizes, in a frame the detector sees
at a fifth of its size (at most ``detect_faces.detector_long_edge``, 1280 px): what a small face in a large frame
meets.

There is no face-recognition model here (InsightFace's are for research only, OpenCV's SFace is not in the
shared data), so "unrecognisable" rests on the detail left, not on a recogniser's verdict.

    python benchmarks/privacy_blur.py [FOLDER ...] [--mosaic] [--review] [--grain] [--write] [--about TEXT]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import cv2
import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import iou, machine  # noqa: E402
from benchmarks.accuracy_corpus import pascal_voc_boxes  # noqa: E402
from models.face_detectors import ScrfdDetector, YuNetDetector  # noqa: E402
from pipeline.imaging.color import srgb_to_linear  # noqa: E402
from pipeline.imaging import render  # noqa: E402
from pipeline.imaging.render import (  # noqa: E402
    BLUR_FEATHER,
    GRAIN_MARGIN,
    Adjustments,
    FaceBlur,
    face_lift_mask,
    render_frame,
)
from pipeline.kernel.run import RunSettings, process_shoot  # noqa: E402
from pipeline.planning.rules.privacy import head_box  # noqa: E402
from pipeline.review.culling import Decision  # noqa: E402
from pipeline.review.store import OpChange, ReviewStore  # noqa: E402

REPORT = ROOT / "benchmarks" / "PRIVACY.md"
#: Drawn faces by their box's width in the delivered pixels.
SIZES = ((0, 40, "under 40 px"), (40, 80, "40-80 px"), (80, 10**9, "80 px and over"))
#: (name, detector file, its confidence) of the detectors run on the deliveries.
DETECTORS = (("YuNet 0.7 (postprod's)", "face_detection_yunet_2023mar.onnx", 0.7),
             ("YuNet 0.5", "face_detection_yunet_2023mar.onnx", 0.5),
             ("SCRFD 0.3", "scrfd_500m_bnkps.onnx", 0.3))


def fine_detail(bgr: np.ndarray) -> np.ndarray:
    g = bgr.astype(np.float32).mean(axis=2)
    return np.abs(g - cv2.GaussianBlur(g, (0, 0), 1.5))


@dataclass
class DrawnFace:
    photo: str
    box: tuple[float, float, float, float]
    points: tuple[tuple[float, float], ...] = ()  # a keypoint face's visible nose and eyes
    blurred: bool = False
    covered: float = 0.0
    detail_left: float | None = None
    detail_kept: float | None = None  # the correlation of its fine detail with the plain delivery's
    found: dict[str, tuple[bool, bool]] = field(default_factory=dict)  # detector -> (plain, blurred)
    source_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # in the photo's own pixels
    flagged: bool = False  # its frame is flagged `privacy` (a person is sent to look)
    reviewed: tuple[float, float | None] | None = None  # drawn over by the reviewer's pass: (covered, detail kept)


@dataclass
class Folder:
    name: str
    faces: list[DrawnFace] = field(default_factory=list)
    blurs: int = 0
    blurs_on_no_drawn_face: int = 0
    photos: int = 0
    render_s: dict[str, list[float]] = field(default_factory=lambda: {"plain": [], "blurred": []})
    reviewed_pass: bool = False  # a reviewer's pass was made (--review)
    decide_s: list[float] = field(default_factory=list)  # its decisions' seconds, one a frame


Drawn = tuple[tuple[float, float, float, float], tuple[tuple[float, float], ...]]


def drawn_faces(folder: Path) -> dict[str, list[Drawn]]:
    """Every imglab XML's boxes and every COCO keypoints JSON's faces in ``folder``, by photo file name: (box,
    visible nose and eyes; none for a drawn box)."""
    faces: dict[str, list[Drawn]] = {}
    for xml in sorted(folder.glob("*.xml")):
        for name, boxes in pascal_voc_boxes(xml).items():
            if (folder / name).is_file():
                faces.setdefault(name, []).extend((b, ()) for b in boxes)
    for doc_path in sorted(folder.glob("*.json")):
        doc = json.loads(doc_path.read_text())
        names = (doc.get("categories") or [{}])[0].get("keypoints") or []
        if not {"nose", "left_eye", "right_eye"} <= set(names):
            continue
        at = {k: names.index(k) for k in ("nose", "left_eye", "right_eye")}
        files = {im["id"]: Path(im["file_name"]).name for im in doc["images"]}
        for a in doc["annotations"]:
            name = files.get(a["image_id"])
            if name is None or not (folder / name).is_file():
                continue
            k = a["keypoints"]
            seen = {p: (float(k[3 * i]), float(k[3 * i + 1])) for p, i in at.items() if k[3 * i + 2] == 2}
            if "nose" in seen and len(seen) >= 2:
                faces.setdefault(name, []).append((_keypoint_box(seen), tuple(seen.values())))
    return faces


def _keypoint_box(seen: dict[str, tuple[float, float]]) -> tuple[float, float, float, float]:
    pts = np.array(list(seen.values()))
    cx, cy = pts.mean(axis=0)
    if "left_eye" in seen and "right_eye" in seen:
        side = 2.2 * float(np.hypot(*np.subtract(seen["left_eye"], seen["right_eye"])))
    else:
        eye = seen.get("left_eye") or seen["right_eye"]
        side = 3.0 * float(np.hypot(*np.subtract(eye, seen["nose"])))
    side = max(side, 4.0)
    return (float(cx) - side / 2, float(cy) - side / 2, side, side)


def render_seconds(out: Path) -> dict[str, float]:
    t = pq.read_table(out / "manifest.parquet", columns=["source_path", "stage_seconds"]).to_pylist()
    return {r["source_path"]: dict(r["stage_seconds"] or []).get("render", float("nan")) for r in t}


#: The mosaic's frame: a 24 MP camera's.
MOSAIC_SIZE = (6000, 4000)


def mosaic(folders: list[Path], dest: Path) -> Path:
    """``dest``/mosaic.jpg: every photo of ``folders`` at its own size on a :data:`MOSAIC_SIZE` grey frame, row by
    row, and its faces moved with it (an imglab XML of the boxes, a COCO JSON of the keypoint faces)."""
    dest.mkdir(parents=True)
    canvas = np.full((MOSAIC_SIZE[1], MOSAIC_SIZE[0], 3), 118, dtype=np.uint8)
    boxes, people = [], []
    x = y = row_h = 0
    for folder in folders:
        for name, faces in sorted(drawn_faces(folder).items()):
            photo = cv2.imread(str(folder / name))
            h, w = photo.shape[:2]
            if x + w > MOSAIC_SIZE[0]:
                x, y, row_h = 0, y + row_h, 0
            if y + h > MOSAIC_SIZE[1]:
                raise SystemExit("the photos do not fit on one 24 MP frame")
            canvas[y : y + h, x : x + w] = photo
            for (bx, by, bw, bh), pts in faces:
                if pts:
                    kp = [0.0] * 9
                    for i, (px, py) in enumerate(pts[:3]):
                        kp[3 * i : 3 * i + 3] = [px + x, py + y, 2]
                    people.append({"image_id": 1, "keypoints": kp})
                else:
                    boxes.append(f"<box top='{by + y:.0f}' left='{bx + x:.0f}' width='{bw:.0f}' height='{bh:.0f}'/>")
            x, row_h = x + w, max(row_h, h)
    cv2.imwrite(str(dest / "mosaic.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, 95])
    (dest / "mosaic.xml").write_text("<dataset><images><image file='mosaic.jpg'>" + "".join(boxes)
                                     + "</image></images></dataset>")
    (dest / "mosaic.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "mosaic.jpg"}], "annotations": people,
        "categories": [{"keypoints": ["nose", "left_eye", "right_eye"]}]}))
    return dest


def judge(folder: Path, work: Path, detectors: dict[str, object], graph: Path | None = None,
          review: bool = False) -> Folder:
    truth = drawn_faces(folder)
    shoot = work / "shoot"
    shoot.mkdir(parents=True)
    for name in truth:
        shutil.copyfile(folder / name, shoot / name)
    chart = work / "blur.yaml"
    chart.write_text("schema_version: 2\nextends: base\nprivacy:\n  blur_faces: all\n")
    outs, settings = {}, {}
    for label, ref in (("plain", "base"), ("blurred", str(chart))):
        outs[label] = work / label
        settings[label] = RunSettings(shoot_dir=shoot, out_dir=outs[label], executor="local", chart=ref,
                                      **({"graph_path": graph} if graph else {}))
        process_shoot(settings[label])
    result = Folder(folder.name, photos=len(truth))
    for label in outs:
        result.render_s[label] = list(render_seconds(outs[label]).values())
    for name, boxes in truth.items():
        pictures = {label: cv2.imread(str(outs[label] / "exports" / "shoot" / "web" / name)) for label in outs}
        if any(p is None for p in pictures.values()) or pictures["plain"].shape != pictures["blurred"].shape:
            raise SystemExit(f"{name}: no web rendition of the same size in both runs")
        scale = pictures["plain"].shape[1] / cv2.imread(str(folder / name)).shape[1]
        doc = json.loads((outs["blurred"] / "instructions" / f"{name}.json").read_text())
        ops = [o["params"] for o in doc["operations"] if o["kind"] == "blur_face"]
        flagged = any(o["kind"] == "flag" and o["params"].get("check") == "privacy" for o in doc["operations"])
        h, w = pictures["plain"].shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
        under = np.zeros((h, w), dtype=np.float32)
        for p in ops:
            under = np.maximum(under, face_lift_mask(xx, yy, tuple(v * scale for v in p["box"]), 0.0))
        detail = {label: fine_detail(pic) for label, pic in pictures.items()}
        found = {d: {label: [tuple(x.box) for x in det.detect(pic)] for label, pic in pictures.items()}
                 for d, det in detectors.items()}
        drawn = [(tuple(v * scale for v in b), tuple((x * scale, y * scale) for x, y in pts)) for b, pts in boxes]
        result.blurs += len(ops)
        result.blurs_on_no_drawn_face += sum(
            not any(iou(tuple(v * scale for v in p["face_box"]), b) >= 0.3 for b, _ in drawn) for p in ops)
        for (b, pts), (source_box, _) in zip(drawn, boxes):
            f = DrawnFace(name, b, pts, source_box=source_box, flagged=flagged)
            if pts:
                f.blurred = all(under[min(h - 1, max(0, int(y))), min(w - 1, max(0, int(x)))] >= 0.99 for x, y in pts)
            else:
                f.blurred = any(iou(tuple(v * scale for v in p["face_box"]), b) >= 0.3 for p in ops)
            x, y, bw, bh = (int(round(v)) for v in b)
            inside = (slice(max(0, y), max(0, y) + bh), slice(max(0, x), max(0, x) + bw))
            f.covered = float((under[inside] >= 0.99).mean())
            plain = float(detail["plain"][inside].mean())
            f.detail_left = float(detail["blurred"][inside].mean()) / plain if plain > 0 else None
            f.detail_kept = detail_kept(pictures["blurred"], pictures["plain"], inside) if bw > 2 and bh > 2 else None
            f.found = {d: tuple(any(iou(box, b) >= 0.3 for box in found[d][label]) for label in ("plain", "blurred"))
                       for d in detectors}
            result.faces.append(f)
    if review:
        reviewer_pass(result, outs)
        process_shoot(dataclasses.replace(settings["blurred"], only="render"))
        judge_reviewed(result, outs)
    return result


def reviewer_pass(result: Folder, outs: dict[str, Path]) -> None:
    """Blur every missed face of a flagged frame as a reviewer does in the review app (a head's box dragged over
    it, sent through the review store); time each frame's decision."""
    result.reviewed_pass = True
    store = ReviewStore(outs["blurred"])
    by_photo: dict[str, list[DrawnFace]] = {}
    for f in result.faces:
        if f.flagged and not f.blurred:
            by_photo.setdefault(f.photo, []).append(f)
    for name, faces in by_photo.items():
        _, version = store.get(name)
        changes = tuple(OpChange("", add="blur_face", box=tuple(round(v, 1) for v in head_box(f.source_box)))
                        for f in faces)
        t0 = time.perf_counter()
        store.decide([Decision(name, version, changes=changes)], "benchmark")
        result.decide_s.append(time.perf_counter() - t0)
    store.flush_embeds()


def judge_reviewed(result: Folder, outs: dict[str, Path]) -> None:
    """The faces the reviewer's pass drew over, on the delivery rendered again: the share of each drawn box under
    a blur (any, the plan's or the reviewer's) and its fine detail's correlation with the plain delivery's."""
    for name in {f.photo for f in result.faces if f.flagged and not f.blurred}:
        plain = cv2.imread(str(outs["plain"] / "exports" / "shoot" / "web" / name))
        again = cv2.imread(str(outs["blurred"] / "exports" / "shoot" / "web" / name))
        doc = json.loads((outs["blurred"] / "instructions" / f"{name}.json").read_text())
        scale = plain.shape[1] / float(doc["image"]["width"])
        h, w = plain.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
        under = np.zeros((h, w), dtype=np.float32)
        for o in doc["operations"]:
            if o["kind"] == "blur_face" and o["review"]["status"] != "rejected":
                under = np.maximum(under, face_lift_mask(xx, yy, tuple(v * scale for v in o["params"]["box"]), 0.0))
        for f in result.faces:
            if f.photo != name or f.blurred or not f.flagged:
                continue
            x, y, bw, bh = (int(round(v)) for v in f.box)
            inside = (slice(max(0, y), max(0, y) + bh), slice(max(0, x), max(0, x) + bw))
            f.reviewed = (float((under[inside] >= 0.99).mean()),
                          detail_kept(again, plain, inside) if bw > 2 and bh > 2 else None)


#: The grain injected for ``--grain``: white noise, in 8-bit sRGB steps, saved at a camera JPEG's quality and at
#: 100 (all but lossless: a RAW's or a TIFF's grain).
GRAIN_LEVELS = (4.0, 8.0)
GRAIN_QUALITIES = (92, 100)


def _delivered(srgb8: np.ndarray, blurs: tuple[FaceBlur, ...], grain: bool = True) -> np.ndarray:
    """The photo rendered at its own size with ``blurs`` (``grain=False``: the blurs' smooth fields alone)."""
    h, w = srgb8.shape[:2]
    linear = srgb_to_linear(cv2.cvtColor(srgb8, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
    with contextlib.ExitStack() as stack:
        if not grain:
            stack.enter_context(mock.patch.object(render, "grain_sigma", lambda *_: np.zeros(3, np.float32)))
        out = render_frame(linear, w, h, Adjustments(blurs=blurs), (0.0, 0.0, float(w), float(h)), (w, h), "srgb",
                           0.0, 8)
    return cv2.cvtColor(out, cv2.COLOR_RGB2BGR).astype(np.float32)


def detail_kept(blurred: np.ndarray, plain: np.ndarray, where: Any = ...) -> float:
    """How much of the fine detail (:func:`signed_detail`) of a region (``where``: slices or a mask; the whole by
    default) is left: the correlation of the blurred delivery's with the plain one's (1: all of it; about 0: none,
    whatever grain lies on it)."""
    a, b = signed_detail(blurred)[where].ravel(), signed_detail(plain)[where].ravel()
    a, b = a - a.mean(), b - b.mean()
    d = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / d if d > 0 else 0.0


def grain_rows(folders: list[Path]) -> list[str]:
    """``--grain``: per injected level, the blur's grain against the photo's (ratio of the delivered noise inside
    the blurred ellipse to that around the head) and the features left (correlation of the fine detail)."""
    rng = np.random.default_rng(17)
    cases = [(lv, q) for q in GRAIN_QUALITIES for lv in GRAIN_LEVELS]
    ratios: dict[tuple[float, int], list[float]] = {c: [] for c in cases}
    greys: dict[tuple[float, int], list[float]] = {c: [] for c in cases}
    kept: dict[tuple[float, int], list[float]] = {c: [] for c in cases}
    for folder in folders:
        for name, faces in sorted(drawn_faces(folder).items()):
            # Its own grain taken out first (non-local means), so that all the grain is the injected one.
            photo = cv2.fastNlMeansDenoisingColored(cv2.imread(str(folder / name)), None, 7, 7, 7, 21)
            h, w = photo.shape[:2]
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
            heads = tuple(FaceBlur(head_box(b)) for b, _ in faces if b[2] >= 12)  # a face the ellipse can hold
            clean_blurred = _delivered(photo, heads, grain=False)  # the smooth fields, without the photo's grain
            for level, quality in cases:
                noisy = np.clip(photo + rng.normal(0.0, level, photo.shape), 0, 255).astype(np.uint8)
                noisy = cv2.imdecode(cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, quality])[1],
                                     cv2.IMREAD_COLOR)
                noisy_plain, noisy_blurred = _delivered(noisy, ()), _delivered(noisy, heads)
                delivered_noise = noisy_blurred - clean_blurred
                for blur, (b, _) in zip(heads, [f for f in faces if f[0][2] >= 12]):
                    x, y, bw, bh = blur.box
                    feather = BLUR_FEATHER * max(bw, bh)
                    mask = face_lift_mask(xx, yy, blur.box, feather)
                    around = face_lift_mask(xx, yy, (x - GRAIN_MARGIN * bw, y - GRAIN_MARGIN * bh,
                                                     (1 + 2 * GRAIN_MARGIN) * bw, (1 + 2 * GRAIN_MARGIN) * bh), 0.0)
                    others = np.zeros_like(mask)
                    for o in heads:
                        others = np.maximum(others, face_lift_mask(xx, yy, o.box, BLUR_FEATHER * max(o.box[2:])))
                    inside, ring = mask >= 1.0, (around > 0) & (others == 0)
                    if inside.sum() < 16 or ring.sum() < 16:
                        continue
                    ratios[(level, quality)].append(float(delivered_noise[inside].std() / delivered_noise[ring].std()))
                    grey = delivered_noise.mean(axis=2)  # the grain's grey part: as much shared as the photo's?
                    greys[(level, quality)].append(float(grey[inside].std() / grey[ring].std()))
                    fx, fy, fw, fh = (int(round(v)) for v in b)
                    box = (slice(max(0, fy), fy + fh), slice(max(0, fx), fx + fw))
                    kept[(level, quality)].append(detail_kept(noisy_blurred, noisy_plain, box))
    rows = ["| injected grain (of 255) | saved at JPEG quality | heads | blur's grain / the photo's, median (10th-90th "
            "pct) | its grey part / the photo's, median | features left: correlation of fine detail, median (90th pct) |",
            "|---|---|---|---|---|---|"]
    for level, quality in cases:
        r, c = ratios[(level, quality)], kept[(level, quality)]
        if r:
            rows.append(f"| {level:g} | {quality} | {len(r)} | {statistics.median(r):.2f} ({np.quantile(r, 0.1):.2f}-"
                        f"{np.quantile(r, 0.9):.2f}) | {statistics.median(greys[(level, quality)]):.2f} | "
                        f"{statistics.median(c):.3f} ({np.quantile(c, 0.9):.3f}) |")
    return rows


def signed_detail(bgr: np.ndarray) -> np.ndarray:
    """Grey minus its Gaussian blur at 1.5 px (:func:`fine_detail` with its sign)."""
    g = bgr.astype(np.float32).mean(axis=2)
    return g - cv2.GaussianBlur(g, (0, 0), 1.5)


def _share(n: int, of: int) -> str:
    return f"{n} of {of}" + (f" ({100.0 * n / of:.0f} %)" if of else "")


def table(folders: list[Folder]) -> list[str]:
    faces = [f for fo in folders for f in fo.faces]
    rows = ["| measure | all drawn faces | " + " | ".join(label for *_, label in SIZES) + " |",
            "|---|---|" + "---|" * len(SIZES)]

    def row(title: str, value) -> None:  # noqa: ANN001
        groups = [faces] + [[f for f in faces if lo <= f.box[2] < hi] for lo, hi, _ in SIZES]
        rows.append(f"| {title} | " + " | ".join(value(g) for g in groups) + " |")

    row("drawn faces (of them given by keypoints)", lambda g: f"{len(g)} ({sum(bool(f.points) for f in g)})")
    row("blurred (a blur on the drawn face; a keypoint face's eyes and nose under it)",
        lambda g: _share(sum(f.blurred for f in g), len(g)))
    row("of them, 90 % of the drawn box or more under the blur",
        lambda g: _share(sum(f.covered >= 0.9 for f in g if f.blurred), sum(f.blurred for f in g)))
    row("of them, median share of the drawn box under the blur",
        lambda g: f"{statistics.median([f.covered for f in g if f.blurred]):.2f}" if any(f.blurred for f in g)
        else "—")
    row("of them, median fine detail left (blurred / plain; the blur's grain counts)",
        lambda g: (f"{statistics.median([f.detail_left for f in g if f.blurred and f.detail_left is not None]):.3f}"
                   if any(f.blurred for f in g) else "—"))
    row("of them, median correlation of the fine detail with the plain delivery's (the face's own left)",
        lambda g: (f"{statistics.median([f.detail_kept for f in g if f.blurred and f.detail_kept is not None]):.3f}"
                   if any(f.blurred and f.detail_kept is not None for f in g) else "—"))
    for d, *_ in DETECTORS:
        row(f"found by {d}: plain delivery -> blurred",
            lambda g, d=d: f"{sum(f.found[d][0] for f in g)} -> {sum(f.found[d][1] for f in g)}")
    blurs = sum(fo.blurs for fo in folders)
    off = sum(fo.blurs_on_no_drawn_face for fo in folders)
    plain = [s for fo in folders for s in fo.render_s["plain"]]
    blurred = [s for fo in folders for s in fo.render_s["blurred"]]
    lines = rows + ["", f"- blurs made: {blurs}; on no drawn face: {off} (a detector's false face, or a face the "
                        "drawers left out)"]
    missed = [f for f in faces if not f.blurred]
    if any(fo.reviewed_pass for fo in folders):
        drawn_over = [f for f in missed if f.reviewed is not None]
        held = [f for f in drawn_over if f.reviewed[0] >= 0.9]
        left = [f.reviewed[1] for f in held if f.reviewed[1] is not None]
        decide = [s for fo in folders for s in fo.decide_s]
        lines.append(
            f"- the reviewer's pass (`--review`): of the {len(missed)} faces not blurred, {len(drawn_over)} lie on "
            f"frames flagged `privacy`, {len(missed) - len(drawn_over)} on frames with no blur (no flag sends a "
            f"person there); drawn over in the review store and rendered again: {len(held)} of {len(drawn_over)} "
            "with 90 % of the drawn box or more under a blur"
            + (f", median correlation of their fine detail with the plain delivery's {statistics.median(left):.3f}"
               if left else "")
            + (f"; a frame's decision {1000 * statistics.median(decide):.0f} ms median (JSON, XMP, parquet "
               f"written; {len(decide)} frames)" if decide else ""))
    if plain and blurred:
        p, b = statistics.median(plain), statistics.median(blurred)
        lines.append(f"- render stage, median seconds an image: {p:.3f} plain, {b:.3f} with the blurs "
                     f"({b / p:.2f}x; {len(plain)} images, one process, the same machine and run)")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="*", type=Path, help="folders of photos with a dlib imglab XML of their faces "
                    "or a COCO keypoints JSON of their people (default: the shared data's faces/pascal_voc)")
    ap.add_argument("--graph", type=Path, help="a stage graph of your own (a larger proxy and detector input, "
                    "say) instead of the default")
    ap.add_argument("--mosaic", action="store_true", help="also judge the photos laid at their own size on one "
                    "24 MP frame (a second table)")
    ap.add_argument("--review", action="store_true", help="then a reviewer's pass: the faces left unblurred on "
                    "the frames flagged privacy drawn over through the review store, rendered again and judged")
    ap.add_argument("--grain", action="store_true", help="also the blur's grain against grain injected into the "
                    "photos (a third table)")
    ap.add_argument("--write", action="store_true", help=f"write the table to {REPORT.relative_to(ROOT)}")
    ap.add_argument("--about", default="", help="with --write: where the folders' photos come from")
    args = ap.parse_args(argv)
    data = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data"))
    folders = args.folders or [data / "faces" / "pascal_voc"]
    models = Path(os.environ.get("POSTPROD_MODEL_DIR", data / "models"))
    detectors = {}
    for name, file, confidence in DETECTORS:
        kind = ScrfdDetector if file.startswith("scrfd") else YuNetDetector
        detectors[name] = kind(models / file, score_threshold=confidence)
    judged, tiled = [], []
    with tempfile.TemporaryDirectory(prefix="postprod-privacy-") as tmp:
        for i, folder in enumerate(folders):
            judged.append(judge(folder.resolve(), Path(tmp) / str(i), detectors, args.graph, args.review))
        if args.mosaic:
            frame = mosaic([f.resolve() for f in folders], Path(tmp) / "mosaic" / "24mp")
            tiled.append(judge(frame, Path(tmp) / "mosaic" / "work", detectors, args.graph, args.review))
    m = machine()
    head = [f"- date: {m['date']}", f"- machine: {m['cpu']}, Python {m['python']}",
            f"- postprod: commit {m['postprod commit']}, code hash {m['code hash']}",
            "- command: `python benchmarks/privacy_blur.py " + " ".join(str(f) for f in args.folders)
            + (f" --graph {args.graph}" if args.graph else "") + (" --mosaic" if args.mosaic else "")
            + (" --review" if args.review else "") + (" --grain" if args.grain else "") + "`",
            "- folders: " + "; ".join(f"{fo.name} ({fo.photos} photos, {len(fo.faces)} faces)" for fo in judged)]
    body = table(judged)
    if tiled:
        body += ["", f"The same photos at their own size on one {MOSAIC_SIZE[0]} x {MOSAIC_SIZE[1]} frame (24 MP; the "
                 "web rendition 2048 px wide, so the sizes below are a third of the faces' own):", ""] + table(tiled)
    if args.grain:
        body += ["", "The blur's grain against grain injected into the photos (`--grain`; the photos at their own "
                 "size, each drawn face of 12 px or more blurred):", ""] + grain_rows([f.resolve() for f in folders])
    print("\n".join(head + [""] + body))
    if args.write:
        doc = __doc__.split("\n\n")
        REPORT.write_text("# Faces blurred for privacy, against faces people drew\n\nWritten by "
                          "`benchmarks/privacy_blur.py` (its docstring says how each figure is made).\n\n"
                          + (args.about + "\n\n" if args.about else "") + "\n".join(head) + "\n\n"
                          + "\n".join(body) + "\n\n" + doc[1] + "\n")
        print(f"written to {REPORT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
