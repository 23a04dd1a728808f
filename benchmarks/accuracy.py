"""How far postprod's decisions are from the truth, beside RawTherapee's auto and a naive baseline.

The corpus (:mod:`benchmarks.accuracy_corpus`) is made from real photos and RAWs with
known problems injected: exposure offsets in the RAW domain (DNG twins) and in
rendered twins, colour casts in sensor data, faces in a known shadow, faces at the
frame edge, rotations, and the unperturbed originals. postprod runs on it as a user
runs it (``process_shoot`` with the local executor on a shoot folder, the default
graph up to the plan; ``--only plan`` for each chart with crops); RawTherapee's auto
exposure and auto white balance (rawtherapee-cli) and a naive baseline (median
metering, grey world) run on the same files (:mod:`benchmarks.accuracy_baselines`).
The figures are reported for the held-out split (no constant is tuned on it) and
the tuning split, against the targets of issue 17, in ``benchmarks/ACCURACY.md``.

``--photos DIR`` (repeatable) runs the same benchmark on one's own photos instead
of the pool (:func:`benchmarks.accuracy_corpus.own_pool`): pictures taken as right as
they are (a client's approved deliveries, a portfolio), into which every exposure
offset and cast of the benchmark is injected (:data:`~benchmarks.accuracy_corpus.OWN_SPEC`),
with shadows over the faces a dlib imglab
file in the folder draws and rotations of the photos its ``level.txt`` names.
Nothing in postprod was fitted on them, so the table says how its decisions do on
photos of that kind before a chart is trusted with their shoots (``--report PATH``
writes it as Markdown).

What "the needed correction" is for each system:

- postprod: the plan's operations (exposure ``ev``, white balance ``mired_shift``
  and ``gains``, ``brighten_face`` ``ev``, straighten ``angle_deg``, crops); an
  absent operation is a correction of 0. The whole frame's meter alone (the manifest's
  ``exposure_meter_ev``, as ``target - exposure_meter_ev``) is reported beside it.
- RawTherapee: read from its output (see :mod:`benchmarks.accuracy_baselines`).
- naive: median metering to mid-grey and grey-world white balance; no rotation;
  centred crops.

    python benchmarks/accuracy.py [--quick] [--cache DIR] [--no-rawtherapee] [--jobs N] [--write]
    python benchmarks/accuracy.py --photos DIR [--photos DIR ...] [--report PATH] [--no-rawtherapee]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import accuracy_baselines as bl  # noqa: E402
from benchmarks._tables import cpu_model, verdict  # noqa: E402
from benchmarks.accuracy_corpus import (  # noqa: E402
    BACKLIT_SKY_EV,
    EXTRA_SPLIT,
    OWN_SPEC,
    OWN_SPLIT,
    Corpus,
    Item,
    Renderer,
    Source,
    build_corpus,
    build_extra_pool,
    build_pool,
    own_pool,
    slug,
)

DEFAULT_CACHE = Path(os.environ.get("POSTPROD_ACCURACY_CACHE", Path.home() / ".cache" / "postprod" / "accuracy"))
ACCURACY_MD = ROOT / "benchmarks" / "ACCURACY.md"
SYSTEMS = ("postprod", "rawtherapee", "naive")
#: The chart the decisions are read under: the house defaults every chart extends.
MAIN_CHART = "base"
#: Bundled charts with crops: each crop they place is checked against the faces.
CROP_CHARTS = ("social_media", "corporate_portrait", "print", "culinary", "real_estate_interiors", "client_acme_realty")
#: Quick mode: a few sources of each kind (minutes on two cores).
QUICK_SOURCES = ("pascal_voc/2008_001322", "pascal_voc/2007_007763", "skimage/astronaut", "matplotlib/grace_hopper",
                 "skimage/coffee", "skimage/motorcycle_left", "debian/mate_Storm", "debian/plasma_Kite",
                 "debian/lomiri_Wine_by_Jakkub_Mede", "debian/plasma_FallenLeaf",
                 "raw/Canon_PowerShot_G2_CRW_0305", "raw/Canon_PowerShot_S40_CRW_0101")
# Scoring thresholds of issue 17 (also the targets' wording in the tables).
SIGN_MIN_EV = 0.7
NO_HARM_EV = 0.3
# What a retoucher sees at a glance on a photo that needed nothing (diagnostic rows of the do-no-harm section;
# set by judgement, not fitted): a stop of exposure, the colour of daylight against a cloudy day's.
BIG_EV = 1.0
BIG_MIRED = 50.0
FACE_MIN_FRACTION = 0.04  # faces narrower than this share of the short side may be cut
HEADROOM = 0.25  # of a brow-to-chin face box: the forehead and hair above it belong to the face
#: A crop cuts a face when it leaves out more than this share of the face and its headroom (the
#: annotated boxes are good to a few pixels; a crop edge grazing a box is not a cut).
CUT_TOLERANCE = 0.05
SKIN_HUE = (15.0, 85.0)
SKIN_MIN_CHROMA = 10.0
MATCH_IOU = 0.3


def log(msg: str) -> None:
    print(msg, flush=True)


# --- running postprod ------------------------------------------------------------------------------


#: What only the plan reads: the rules, the charts and the stage that runs them in the driver.
PLAN_CODE = ("pipeline/planning/", "charts/", "stages/plan_retouch.py")


def code_hash(analysis_only: bool = False) -> str:
    """A digest of postprod's code, charts and graph (printed with the tables).

    ``analysis_only``: of the code the analysis stages run, leaving out :data:`PLAN_CODE`. It keys
    the result folder: the run journal is keyed by the package version only, which a code change
    does not bump, so a change to the analysis gets a new folder (and a whole new run), while a
    change to the rules or charts alone re-plans the analysed images from their journal (every run
    is ``--force``d: minutes, not the hour of a whole run).
    """
    h = hashlib.sha256()
    for folder in ("pipeline", "stages", "models", "charts", "configs"):
        for p in sorted((ROOT / folder).rglob("*")):
            rel = p.relative_to(ROOT).as_posix()
            if analysis_only and rel.startswith(PLAN_CODE):
                continue
            if p.is_file() and p.suffix in (".py", ".yaml", ".json"):
                h.update(rel.encode())
                h.update(p.read_bytes())
    return h.hexdigest()[:16]


def analysis_graph(dest: Path) -> Path:
    """The default graph up to the plan (no preview, render or export), with the default parameters."""
    import yaml

    graph = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    graph["name"] = "accuracy"
    graph["description"] = "The default graph's analysis and plan (benchmarks/accuracy.py)."
    graph["stages"] = [s for s in graph["stages"] if s["stage"] not in ("write_preview", "render", "export")]
    dest.write_text(yaml.safe_dump(graph, sort_keys=False))
    return dest


def make_shoot(corpus: Corpus, items: list[Item], shoot: Path) -> dict[str, Item]:
    """A shoot folder holding the items under their ids (hard links into the corpus): name -> item."""
    if shoot.exists():
        shutil.rmtree(shoot)
    shoot.mkdir(parents=True)
    by_name = {}
    for item in items:
        name = f"{item.id}{Path(item.file).suffix}"
        try:
            os.link(corpus.path(item), shoot / name)
        except OSError:
            shutil.copyfile(corpus.path(item), shoot / name)
        by_name[name] = item
    return by_name


def judged_chart(name: str, folder: Path) -> str:
    """The chart ``name`` resolved into one file in ``folder`` with its scene consistency off: the path to judge.

    The twins of one photo (every offset and cast injected into it) are one scene to the consistency rule,
    which pulls a scene's exposures and colours together: under ``corporate_portrait`` it turned 35 of 96 RAW
    cast twins of 12 portraits the wrong way. Each twin is judged on its own, as under ``base``.
    """
    import dataclasses

    from charts.loader import load_chart

    resolved = load_chart(name)
    chart = resolved.chart.model_copy(
        update={"consistency": resolved.chart.consistency.model_copy(update={"enabled": False})})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{resolved.name}.yaml"
    path.write_text(dataclasses.replace(resolved, chart=chart).to_yaml())
    return str(path)


def run_postprod(corpus: Corpus, items: list[Item], work: Path, charts: Iterable[str], main_chart: str = MAIN_CHART
                 ) -> dict[str, dict[str, Any]]:
    """Process the items as one shoot under ``main_chart``, then re-plan under each crop chart.

    Returns
    -------
    dict
        chart name -> {item id -> ImageRecord}.
    """
    from pipeline.kernel.run import RunSettings, process_shoot

    listed = "\n".join(sorted(f"{i.id}:{i.file}" for i in items))
    key = hashlib.sha256((listed + code_hash(analysis_only=True)).encode()).hexdigest()[:16]
    shoot, out = work / f"shoot-{key}", work / f"out-{key}"
    by_name = make_shoot(corpus, items, shoot)
    graph = analysis_graph(work / "accuracy_graph.yaml")
    results: dict[str, dict[str, Any]] = {}
    for n, chart in enumerate([main_chart, *charts]):
        t = time.perf_counter()
        settings = RunSettings(shoot_dir=shoot, out_dir=out, executor="local", graph_path=graph, chart=chart,
                               only=None if n == 0 else "plan", force=True)  # one folder, one chart after another
        done = [0]

        def tick(_record: Any) -> None:
            done[0] += 1
            if done[0] % 50 == 0:
                log(f"    postprod: {done[0]} images analysed ({time.perf_counter() - t:.0f} s)")

        result = process_shoot(settings, on_record=tick)
        results[chart] = {by_name[r.source_path].id: r for r in result.records if r.source_path in by_name}
        failed = [r for r in result.records if r.status != "ok"]
        log(f"  postprod under {chart}: {len(result.records)} images in {time.perf_counter() - t:.1f} s"
            + (f", {len(failed)} failed: {[(r.source_path, r.error) for r in failed[:3]]}" if failed else ""))
    return results


# --- decisions -------------------------------------------------------------------------------------


#: The plan's checks that send a retoucher to an image's colour: its white balance, and skin that the white
#: balance or the exposure correction takes from a face.
COLOUR_CHECKS = ("white_balance", "skin", "skin_exposure")


@dataclass
class Decision:
    """What one system decided for one item (None: the system has no such decision)."""

    ev: float | None = None
    #: Whether the exposure correction is proposed to a person, not applied (the renderer's once accepted).
    ev_proposed: bool = False
    ev_meter: float | None = None
    mired: float | None = None
    #: Whether the white-balance correction is proposed to a person, not applied (beyond the chart's
    #: ``white_balance.propose_above_mired``; the renderer's once accepted).
    mired_proposed: bool = False
    tint_a: float | None = None
    log2_rb: float | None = None
    gains: list[float] | None = None
    angle: float | None = None
    angle_applied: bool = False
    #: Whether the plan flagged the colour for a person (a ``white_balance`` or ``skin`` check).
    colour_flagged: bool = False
    #: Detected faces: (box, brighten ev or None).
    faces: list[tuple[list[float], float | None]] | None = None
    #: chart -> list of (box, angle_deg, aspect, flagged).
    crops: dict[str, list[tuple[list[float], float, str, bool]]] = field(default_factory=dict)
    #: Linear RGB at each truth face after the correction (for the skin check).
    face_colours: list[np.ndarray | None] | None = None
    #: A proposed lift of the shadows (``lift_shadows``): [ev, start, end].
    lift: list[float] | None = None
    #: A backlit twin's ground and top (:func:`~benchmarks.accuracy_corpus.ground_ev`, ``sky_ev``) as the system
    #: delivers it (the exposure it applies), then with its proposed lift accepted, and the percentage points of
    #: pixels that newly clips (:func:`backlit_ground`).
    ground_ev: float | None = None
    ground_lifted_ev: float | None = None
    sky_ev: float | None = None
    sky_lifted_ev: float | None = None
    ground_clipped_added: float | None = None

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "face_colours"}
        if self.face_colours is not None:
            out["face_colours"] = [None if c is None else [float(v) for v in c] for c in self.face_colours]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        d = cls(**{k: v for k, v in data.items() if k != "face_colours"})
        if data.get("face_colours") is not None:
            d.face_colours = [None if c is None else np.asarray(c) for c in data["face_colours"]]
        return d


def postprod_decision(record: Any, target_ev: float) -> Decision:
    """postprod's decision for one record under the main chart."""
    from pipeline.kernel.records import RENDER_ON_ACCEPT

    ops = {op.op_id: op for op in record.operations}
    d = Decision()
    d.ev = float(ops["exposure"].params["ev"]) if "exposure" in ops else 0.0
    d.ev_proposed = "exposure" in ops and bool(ops["exposure"].params.get(RENDER_ON_ACCEPT))
    meter = record.exposure.meter_ev
    d.ev_meter = None if meter is None else target_ev - float(meter)
    wb = ops.get("white_balance")
    d.mired = float(wb.params["mired_shift"]) if wb else 0.0
    d.mired_proposed = bool(wb and wb.params.get(RENDER_ON_ACCEPT))
    d.tint_a = float(wb.params.get("tint_shift", 0.0)) if wb else 0.0
    d.gains = [float(g) for g in wb.params["gains"]] if wb else [1.0, 1.0, 1.0]
    d.log2_rb = math.log2(d.gains[0] / d.gains[2])
    st = ops.get("straighten")
    d.angle = float(st.params["angle_deg"]) if st else 0.0
    d.angle_applied = bool(st) and str(st.applied_by) == "renderer"
    d.colour_flagged = any(str(op.kind) in ("flag", "reject") and op.params.get("check") in COLOUR_CHECKS
                           for op in record.operations)
    brighten = {int(op.params["face_index"]): float(op.params["ev"]) for op in record.operations
                if str(op.kind) == "brighten_face"}
    d.faces = [([f.x, f.y, f.width, f.height], brighten.get(i)) for i, f in enumerate(record.faces)]
    lift = ops.get("lift_shadows")
    d.lift = None if lift is None else [float(lift.params[k]) for k in ("ev", "start", "end")]
    return d


def backlit_ground(path: Path, d: Decision) -> tuple[float, float, float, float, float]:
    """A backlit twin's ground and top (:func:`~benchmarks.accuracy_corpus.ground_ev`, ``sky_ev``) rendered with a
    system's decision (the exposure it applies, not one it only proposes), then with its proposed shadow lift
    accepted, and the percentage points of pixels the latter clips beyond the source's own: (ground, ground
    lifted, top, top lifted, clipped). postprod's renderer carries every system's correction (a rendered
    source's push on its display light, as postprod's)."""
    from PIL import Image

    from benchmarks.accuracy_corpus import ground_ev, sky_ev, srgb8_to_linear
    from pipeline.imaging.render import Adjustments, render_preview
    from pipeline.imaging.shadow_lift import ShadowLift

    with Image.open(path) as im:
        srgb8 = np.asarray(im.convert("RGB"))
    h, w = srgb8.shape[:2]
    ev = 0.0 if d.ev is None or d.ev_proposed else float(d.ev)
    delivered = Adjustments(exposure_ev=ev, display_referred=True)
    linear = srgb8_to_linear(srgb8).astype(np.float32)  # decoded once; each render works on a copy
    out = render_preview(linear.copy(), w, h, delivered)
    lifted = out
    if d.lift and d.lift[0] > 0:
        lift = ShadowLift(*d.lift, rendered=True)
        lifted = render_preview(linear, w, h, dataclasses.replace(delivered, shadow_lift=lift))
    clipped = 100.0 * (np.mean(lifted.max(axis=2) == 255) - np.mean(srgb8.max(axis=2) == 255))
    return ground_ev(out), ground_ev(lifted), sky_ev(out), sky_ev(lifted), float(clipped)


def postprod_crops(record: Any, chart: str | None = None) -> list[tuple[list[float], float, str, list, bool]]:
    """The record's crops, each with the deliveries filled from it under ``chart`` (see :func:`deliveries`;
    none without a chart) and whether the plan flagged the crop for a person."""
    flags = [op for op in record.operations if str(op.kind) in ("flag", "reject")
             and str(op.params.get("check", "")).startswith("crop")]
    upscale_flagged = {str(op.params.get("rendition")) for op in record.operations
                       if str(op.kind) in ("flag", "reject") and op.params.get("check") == "upscale"}
    out = []
    for op in record.operations:
        if str(op.kind) != "crop":
            continue
        aspect = op.params["aspect"]
        flagged = str(op.applied_by) == "retoucher" or any(f.params.get("aspect", aspect) == aspect for f in flags)
        box = list(op.params["box"])
        sent = [] if chart is None else deliveries(chart, aspect, box, upscale_flagged)
        out.append((box, float(op.params.get("angle_deg", 0.0)), aspect, sent, flagged))
    return out


def deliveries(chart: str, aspect: str, box: list[float], flagged: set[str] | None = None) -> list[list]:
    """``[rendition, enlargement, max_upscale, flagged]`` of every exact-size rendition of ``chart`` filled
    from an ``aspect`` crop ``box``: the size postprod's renderer delivers it at (``flagged``: the renditions
    the plan flagged as enlarged), or with ``flagged=None`` the box as asked (the naive baseline)."""
    from charts.loader import load_chart
    from pipeline.imaging.render import rendition_size

    out = []
    for name, r in load_chart(chart).chart.renditions.items():
        if r.crop != aspect or r.box is None:
            continue
        dw, dh = rendition_size(r, tuple(box)) if flagged is not None else r.box_for(box[2], box[3])
        out.append([name, round(max(dw / box[2], dh / box[3]), 3), r.max_upscale,
                    flagged is not None and name in flagged])
    return out


def centred_crops(width: float, height: float, aspects: Iterable[str]) -> list[tuple[list[float], float, str, list, bool]]:
    """The naive baseline's crops: the largest centred box of each aspect, every chart's renditions of that
    aspect delivered at the size asked."""
    from pipeline.imaging.geometry import inscribed_box, parse_aspect

    out = []
    for a in aspects:
        box = list(inscribed_box(width, height, 0.0, parse_aspect(a)))
        out.append((box, 0.0, a, [d for chart in CROP_CHARTS for d in deliveries(chart, a, box)], False))
    return out


def corrected_face_colours(lin: np.ndarray, ev: float, gains: Iterable[float], faces: list[dict[str, Any]],
                           scale: float = 1.0, rendered: bool = False, developed: bool = False
                           ) -> list[np.ndarray | None]:
    """Linear RGB at each face's centre after a white-balance and an exposure correction, as postprod's
    renderer applies them (a rendered source's by its curve: ``rendered``), and with ``developed`` (a RAW's scene
    light) as the rendition shows it: through the camera-like curve a RAW is developed through after its
    corrections (:func:`pipeline.planning.rules.white_balance.shown`)."""
    from pipeline.imaging.measure.metering import balanced, exposed
    from pipeline.planning.rules.white_balance import shown

    g = np.asarray(list(gains), dtype=np.float64)
    out = []
    for f in faces:
        c = bl.face_colour(lin, tuple(v * scale for v in f["box"]))
        if c is not None:
            c = exposed(balanced(c, g, rendered), ev, rendered)
            c = shown(c, False) if developed else c
        out.append(c)
    return out


#: Long edge (px) the baselines' statistics are read at.
BASELINE_LONG_EDGE = 800
#: Bump when the baselines' decisions change for the same files (their cache is keyed by it).
# 2: mired by the red/blue ratio on the locus, as postprod reads casts (was McCamy). 3: a DNG twin's faces judged as
# delivered, developed through the camera-like curve (:func:`corrected_face_colours`), as postprod's are.
BASELINES_VERSION = 3
NEEDS_RT = ("exposure", "original", "cast", "backlit", "fivek", "wb_real", "wb_pair")
NEEDS_NAIVE = NEEDS_RT + ("shadow", "edge", "rotation")


def baseline_decisions(corpus: Corpus, items: list[Item], cache: Path, rawtherapee: bool, jobs: int
                       ) -> tuple[dict[str, Decision], dict[str, Decision]]:
    """RawTherapee's and the naive baseline's decisions: item id -> Decision."""
    rt: dict[str, Decision] = {}
    naive: dict[str, Decision] = {}

    todo = [i for i in items if i.set in NEEDS_NAIVE]
    t = time.perf_counter()
    auto: dict[Path, Path] = {}
    neutral: dict[Path, Path] = {}
    if rawtherapee:
        needs = [corpus.path(i) for i in todo if i.set in NEEDS_RT]
        log(f"    RawTherapee: auto on {len(needs)} files, neutral on the RAW ones")
        auto = bl.rawtherapee_cached(needs, cache, "auto", jobs)
        neutral = bl.rawtherapee_cached([p for p in needs if p.suffix == ".dng"], cache, "neutral", jobs)
        log(f"    RawTherapee renders ready ({time.perf_counter() - t:.0f} s)")

    def one(item: Item) -> None:
        path = corpus.path(item)
        rendered = item.domain == "rendered"
        lin, scale = bl.read_linear_scaled(path, BASELINE_LONG_EDGE)
        faces = item.truth.get("faces") or []
        nd = Decision(ev=bl.naive_exposure_ev(lin, rendered), angle=0.0, faces=None)
        gains = bl.grey_world_gains(lin)
        nd.gains = [1.0, 1.0, 1.0] if gains is None else [float(g) for g in gains]
        nd.mired, nd.log2_rb = bl.naive_wb_shift(lin)
        if faces:
            nd.face_colours = corrected_face_colours(lin, nd.ev, nd.gains, faces, scale, developed=item.domain == "raw")
        naive[item.id] = nd
        if path not in auto:
            return
        before = bl.read_linear_scaled(neutral[path], BASELINE_LONG_EDGE)[0] if path in neutral else lin
        after, after_scale = bl.read_linear_scaled(auto[path], BASELINE_LONG_EDGE)
        d = Decision(ev=bl.exposure_change_ev(before, after))
        d.mired, d.log2_rb = bl.wb_change(before, after)
        if faces:
            d.face_colours = corrected_face_colours(after, 0.0, (1, 1, 1), faces, scale * after.shape[1] / lin.shape[1])
        rt[item.id] = d

    def measured(item: Item) -> Item:
        one(item)
        return item

    # Each item's baseline decisions depend only on its file (named by its content), its faces and this
    # code: kept between runs, so a rerun after a change to postprod redoes postprod alone.
    store_path = cache / "results" / f"baselines-v{BASELINES_VERSION}{'-rt' if rawtherapee else ''}.json"
    try:
        store = json.loads(store_path.read_text())
    except (OSError, ValueError):
        store = {}

    version = bl.rawtherapee_version() if rawtherapee else ""

    def key(item: Item) -> str:
        return f"{item.file}|{json.dumps(item.truth.get('faces'), sort_keys=True)}|{version}"

    def save() -> None:
        store_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = store_path.with_name(f".{store_path.name}.tmp")
        tmp.write_text(json.dumps(store))
        os.replace(tmp, store_path)

    fresh = []
    for item in todo:
        kept = store.get(key(item))
        if kept is None:
            fresh.append(item)
            continue
        naive[item.id] = Decision.from_json(kept["naive"])
        if kept.get("rawtherapee") is not None:
            rt[item.id] = Decision.from_json(kept["rawtherapee"])
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        # Kept as they come (every 50 items), so that a run stopped half way keeps what it measured.
        for n, item in enumerate(pool.map(measured, fresh), 1):
            store[key(item)] = {"naive": naive[item.id].to_json(),
                                "rawtherapee": rt[item.id].to_json() if item.id in rt else None}
            if n % 50 == 0:
                save()
            if n % 200 == 0:
                log(f"    baselines: {n}/{len(fresh)} ({time.perf_counter() - t:.0f} s)")
    save()
    return rt, naive


# --- scoring ------------------------------------------------------------------------------------------


def iou(a: Iterable[float], b: Iterable[float]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def match_faces(truth: list[dict[str, Any]], detected: list[tuple[list[float], float | None]]) -> list[int | None]:
    """For each truth face, the index of the detection that is it (greedy by IoU >= 0.3), or None."""
    pairs = sorted(((iou(t["box"], d[0]), i, j) for i, t in enumerate(truth) for j, d in enumerate(detected)),
                   reverse=True)
    out: list[int | None] = [None] * len(truth)
    used: set[int] = set()
    for score, i, j in pairs:
        if score < MATCH_IOU:
            break
        if out[i] is None and j not in used:
            out[i] = j
            used.add(j)
    return out


def crop_face_share(crop: list[float], angle: float, face: list[float], image_wh: tuple[float, float]) -> float:
    """The share of a face (with its headroom, inside the image) that a (turned) crop keeps."""
    import cv2

    from pipeline.imaging.geometry import rotated_corners

    x, y, w, h = face
    top = max(0.0, y - HEADROOM * h)
    region = np.array([[x, top], [x + w, top], [x + w, y + h], [x, y + h]], np.float32)
    poly = np.array(rotated_corners(tuple(crop), angle), np.float32)
    area, _ = cv2.intersectConvexConvex(region, poly)
    full = w * (y + h - top)
    return float(area) / full if full > 0 else 1.0


#: Resamples behind an interval, and the share of them it leaves out on each side (a 90 % interval).
RESAMPLES = 2000
INTERVAL_TAIL = 0.05
INTERVAL_NOTE = (f"In brackets after a median, a 95th percentile or a share: its "
                 f"{100 * (1 - 2 * INTERVAL_TAIL):.0f} % interval when the split's sources are drawn again with "
                 f"replacement ({RESAMPLES:,} draws, each source with all its twins): how far the figure could move on "
                 "another set of photos like these. A change within it is not shown to be a change.")


def _interval(groups: list[np.ndarray], figure: Any) -> tuple[float, float] | None:
    """The 90 % interval of ``figure`` of the groups' rows when whole groups are drawn again with replacement
    (seeded: the same groups give the same interval every run). None with fewer than two groups."""
    if len(groups) < 2:
        return None
    rng = np.random.default_rng(0)
    draws = [float(figure(np.concatenate([groups[k] for k in rng.integers(0, len(groups), len(groups))])))
             for _ in range(RESAMPLES)]
    lo, hi = np.quantile(draws, [INTERVAL_TAIL, 1.0 - INTERVAL_TAIL])
    return float(lo), float(hi)


def source_interval(values: list[float], sources: list[str], statistic: Any) -> tuple[float, float] | None:
    """The 90 % interval of ``statistic(values)`` when whole sources are drawn again with replacement.

    A source's twins share its content (a night scene reads dark at every offset), so they are drawn
    together: resampling single items would make the interval as narrow as if every twin were another
    photo. None with fewer than two sources.
    """
    by_source: dict[str, list[float]] = {}
    for v, s in zip(values, sources):
        by_source.setdefault(s, []).append(v)
    return _interval([np.asarray(g, dtype=np.float64) for g in by_source.values()], statistic)


def paired_interval(a: dict[str, tuple[str, float]], b: dict[str, tuple[str, float]], statistic: Any
                    ) -> tuple[float, float] | None:
    """The 90 % interval of ``statistic(a) - statistic(b)`` over the items both have (item id -> (source,
    value)), whole sources drawn again with replacement and both systems read on the same draw. None with
    fewer than two sources in common."""
    by_source: dict[str, list[tuple[float, float]]] = {}
    for k in sorted(set(a) & set(b)):
        by_source.setdefault(a[k][0], []).append((a[k][1], b[k][1]))
    return _interval([np.asarray(g, dtype=np.float64) for g in by_source.values()],
                     lambda pick: float(statistic(pick[:, 0])) - float(statistic(pick[:, 1])))


def _p95(values: np.ndarray) -> float:
    return float(np.percentile(values, 95))


def _stats(errors: list[float], sources: list[str] | None = None) -> dict[str, Any]:
    """n, median, 95th percentile and maximum of the absolute errors; with ``sources`` (one per error) also
    the median's and the 95th percentile's intervals (:func:`source_interval`) as ``median_ci``, ``p95_ci``."""
    if not errors:
        return {"n": 0}
    a = np.abs(np.asarray(errors, dtype=np.float64))
    out: dict[str, Any] = {"n": len(a), "median": float(np.median(a)), "p95": float(np.percentile(a, 95)),
                           "max": float(a.max())}
    if sources is not None:
        out["median_ci"] = source_interval(list(a), sources, np.median)
        out["p95_ci"] = source_interval(list(a), sources, _p95)
    return out


def _stats_of(sample: dict[str, tuple[str, float]]) -> dict[str, Any]:
    """:func:`_stats` of an item id -> (source, error) sample, with the intervals."""
    return _stats([v for _, v in sample.values()], [src for src, _ in sample.values()])


def _absolute(samples: dict[str, dict[str, tuple[str, float]]]) -> dict[str, dict[str, tuple[str, float]]]:
    """The samples with their errors made absolute (what a median |error| row compares)."""
    return {s: {k: (src, abs(v)) for k, (src, v) in sample.items()} for s, sample in samples.items()}


def _estimate(st: dict[str, Any], key: str, fmt: str = "{:.2f}") -> dict[str, Any] | None:
    """A row's value from :func:`_stats`: ``key``'s figure, shown with its interval when it has one."""
    v = st.get(key)
    if v is None:
        return None
    ci = st.get(f"{key}_ci")
    text = fmt.format(v) + ("" if ci is None else f" ({fmt.format(ci[0])}-{fmt.format(ci[1])})")
    return {"value": v, "text": text}


@dataclass
class Row:
    """One line of a table: a metric for each system, its target, and how to compare."""

    section: str
    metric: str
    values: dict[str, Any]
    target: str
    #: Lower is better ("lower"), higher is better ("higher"), or no target ("").
    better: str = ""
    threshold: float | None = None
    #: Shown in the table (e.g. "3 of 40"); the number compared is values[...]["value"].
    fmt: str = "{:.2f}"
    #: What the figure is made of, for the paired comparison with RawTherapee (:meth:`lead`): system ->
    #: item id -> (source, value), and the statistic that makes the figure of the values (np.median: a
    #: median of absolute errors; np.mean: a share of 0/1 hits; np.sum: a count of them).
    samples: dict[str, dict[str, tuple[str, float]]] | None = None
    statistic: Any = None

    def value(self, system: str) -> float | None:
        v = self.values.get(system)
        if isinstance(v, dict):
            return v.get("value")
        return v

    def text(self, system: str) -> str:
        v = self.values.get(system)
        if v is None:
            return "—"
        if isinstance(v, dict):
            if v.get("value") is None:
                return v.get("text", "—")
            return v.get("text") or self.fmt.format(v["value"])
        return self.fmt.format(v)

    def passed(self) -> bool | None:
        v = self.value("postprod")
        if self.threshold is None or v is None or not self.better:
            return None
        return v <= self.threshold if self.better == "lower" else v >= self.threshold

    def ahead_of_rt(self) -> bool | None:
        p, r = self.value("postprod"), self.value("rawtherapee")
        if p is None or r is None or not self.better:
            return None
        return p < r if self.better == "lower" else p > r

    def lead(self) -> str:
        """"yes" or "no" (:meth:`ahead_of_rt`), said "within noise" when the interval of the difference on the
        items both systems decided, their sources drawn again together (:func:`paired_interval`), holds 0."""
        ahead = self.ahead_of_rt()
        if ahead is None:
            return "—"
        word = "yes" if ahead else "no"
        if not self.samples or self.statistic is None:
            return word
        ci = paired_interval(self.samples.get("postprod", {}), self.samples.get("rawtherapee", {}), self.statistic)
        return word if ci is None or not ci[0] <= 0.0 <= ci[1] else f"{word}, within noise"


def _count(k: int, n: int, share: bool = False) -> dict[str, Any]:
    if n == 0:
        return {"value": None, "text": "— (none)"}
    return {"value": (k / n) if share else float(k), "text": f"{k} of {n}" + (f" ({100 * k / n:.0f} %)" if share else "")}


def _ratio(k: int, n: int) -> dict[str, Any]:
    return _count(k, n, share=True)


def _share(hits: list[bool], sources: list[str]) -> dict[str, Any]:
    """:func:`_ratio` of the items that hit, with the share's interval over sources (:func:`source_interval`)."""
    out = _ratio(sum(hits), len(hits))
    ci = source_interval([float(h) for h in hits], sources, np.mean)
    if out["value"] is not None and ci is not None:
        out["text"] = out["text"][:-1] + f"; {100 * ci[0]:.0f}-{100 * ci[1]:.0f} %)"
    return out


def evaluate(items: list[Item], decisions: dict[str, dict[str, Decision]], crop_decisions: dict[str, dict[str, list]],
             rawtherapee: bool, corpus: Corpus) -> list[Row]:
    """Every metric of issue 17's targets for one split.

    Parameters
    ----------
    items : list of Item
        The split's items.
    decisions : dict
        system -> item id -> Decision.
    crop_decisions : dict
        system -> item id -> list of (chart, crop box, angle, aspect, flagged).
    rawtherapee : bool
        Whether RawTherapee ran (its column is "—" otherwise).
    corpus : Corpus
        Where the items' files are.
    """
    rows: list[Row] = []
    systems = [s for s in SYSTEMS if s != "rawtherapee" or rawtherapee]

    def dec(system: str, item: Item) -> Decision | None:
        return decisions.get(system, {}).get(item.id)

    def by(set_: str, domain: str | None = None, render: str | None = None) -> list[Item]:
        return [i for i in items if i.set == set_ and (domain is None or i.domain == domain)
                and (render is None or i.render == render)]

    def reference_twin(item: Item) -> Item | None:
        """The unperturbed twin of an item (same source, same domain and developer)."""
        for j in items:
            if (j.source == item.source and j.set == "original" and j.domain == item.domain
                    and j.render == item.render):
                return j
        return None

    def relative_errors(system: str, twins: list[Item], key: str) -> list[float]:
        """Error of the change of a decision between a twin and its unperturbed twin, against the change of
        the truth: how well a system follows the injected problem whatever it makes of the original."""
        out = []
        for i in twins:
            ref = reference_twin(i)
            d, r = dec(system, i), dec(system, ref) if ref is not None else None
            if d is None or r is None or getattr(d, key) is None or getattr(r, key) is None:
                continue
            truth_key = "ev" if key == "ev" else "mired"
            out.append((getattr(d, key) - getattr(r, key)) - (i.truth[truth_key] - ref.truth[truth_key]))
        return out

    # Exposure.
    sec = "Exposure: needed correction vs truth (EV)"
    for domain, label, med_t, p95_t in (("raw", "RAW twins (DNG)", 0.15, 0.4),
                                         ("rendered", "rendered twins (JPEG)", 0.3, 0.6)):
        twins = by("exposure", domain)
        med, p95, sign, meter, errors, signs = {}, {}, {}, {}, {}, {}
        for s in systems:
            sample, wrong, n_big, merrs, signs[s] = {}, 0, 0, [], {}
            for i in twins:
                d = dec(s, i)
                if d is None or d.ev is None:
                    continue
                sample[i.id] = (i.source, d.ev - i.truth["ev"])
                if abs(i.truth["ev"]) >= SIGN_MIN_EV - 1e-9:
                    n_big += 1
                    wrong += d.ev * i.truth["ev"] < 0
                    signs[s][i.id] = (i.source, float(d.ev * i.truth["ev"] < 0))
                if d.ev_meter is not None:
                    merrs.append(d.ev_meter - i.truth["ev"])
            st = _stats_of(sample)
            errors[s] = sample
            med[s] = _estimate(st, "median")
            p95[s] = _estimate(st, "p95")
            sign[s] = _count(wrong, n_big)
            if merrs:
                meter[s] = _stats(merrs).get("median")
        n = len(twins)
        rel = {s: _stats(relative_errors(s, twins, "ev")).get("median") for s in systems}
        # Darkenings the plan proposes to a person instead of applying (the frame's clipped part alone asks for
        # them): the figures above count them as made; how many there are, and how many the truth called for.
        darkened = [(i, d) for i in twins if (d := dec("postprod", i)) is not None and d.ev is not None and d.ev < 0]
        proposed = [i for i, d in darkened if d.ev_proposed]
        needed = sum(i.truth["ev"] <= -SIGN_MIN_EV + 1e-9 for i in proposed)
        rows += [
            Row(sec, f"{label}: median |error| (n={n})", med, f"<= {med_t}", "lower", med_t,
                samples=_absolute(errors), statistic=np.median),
            Row(sec, f"{label}: 95th percentile |error|", p95, f"<= {p95_t}", "lower", p95_t,
                samples=_absolute(errors), statistic=_p95),
            Row(sec, f"{label}: corrections of the wrong sign where |offset| >= {SIGN_MIN_EV}", sign, "0",
                "lower", 0.0, "{:.0f}", samples=signs, statistic=np.sum),
            Row(sec, f"{label}: median |error| of the scene meter alone (manifest exposure_meter_ev; diagnostic)",
                meter, ""),
            Row(sec, f"{label}: median |error| relative to the 0 EV twin's correction (diagnostic)", rel, ""),
            Row(sec, f"{label}: darkenings proposed to a person, not applied (the clipped part alone asks for them; "
                     f"of them, truly {SIGN_MIN_EV} EV or more over: {needed}; diagnostic)",
                {"postprod": _ratio(len(proposed), len(darkened))}, ""),
        ]

    # Do no harm.
    sec = "Do no harm: unperturbed originals"
    for label, pick in (("published photos", by("original", "rendered", "published")),
                        ("RAW twins at 0 EV", by("original", "raw")),
                        ("rendered twins at 0 EV", [i for i in by("original", "rendered") if i.render != "published"])):
        vals, hits = {}, {}
        for s in systems:
            ds = {i.id: (i.source, dec(s, i)) for i in pick}
            hits[s] = {k: (src, float(abs(d.ev) <= NO_HARM_EV + 1e-9)) for k, (src, d) in ds.items()
                       if d is not None and d.ev is not None}
            vals[s] = _share([h > 0 for _, h in hits[s].values()], [src for src, _ in hits[s].values()])
        rows.append(Row(sec, f"{label}: share needing |correction| <= {NO_HARM_EV} EV", vals, ">= 90 %", "higher", 0.9,
                        samples=hits, statistic=np.mean))
    originals = by("original")
    vals, shifts = {}, {}
    for s in systems:
        ds = {i.id: (i.source, dec(s, i)) for i in originals}
        shifts[s] = {k: (src, d.mired) for k, (src, d) in ds.items() if d is not None and d.mired is not None}
        vals[s] = _estimate(_stats_of(shifts[s]), "median", "{:.1f}")
    rows.append(Row(sec, f"median |white-balance shift| on all originals (mired, n={len(originals)})", vals, "<= 10",
                    "lower", 10.0, "{:.1f}", samples=_absolute(shifts), statistic=np.median))
    # The tail the medians hide, which is what a retoucher sees first: a published photo or its 0 EV twin
    # changed a lot with no word (a blue hour warmed to grey, a dark photo brightened by a stop).
    vals_ev, vals_wb = {}, {}
    for s in systems:
        ds = [d for d in (dec(s, i) for i in originals) if d is not None]
        vals_ev[s] = _ratio(sum(d.ev is not None and abs(d.ev) >= BIG_EV - 1e-9 for d in ds), len(ds))
        vals_wb[s] = _ratio(sum(d.mired is not None and abs(d.mired) >= BIG_MIRED - 1e-9
                                and not (d.colour_flagged or d.mired_proposed) for d in ds), len(ds))
    rows += [
        Row(sec, f"originals whose exposure is changed by {BIG_EV:g} EV or more (diagnostic)", vals_ev, ""),
        Row(sec, f"originals whose white balance is shifted by {BIG_MIRED:g} mired or more with no colour flag "
                 "(nor proposed to a person, not applied; diagnostic)", vals_wb, ""),
    ]
    # A retoucher sent to check the colour of a photo that needs nothing: the cost of a flag (postprod alone flags).
    ds = [d for d in (dec("postprod", i) for i in originals) if d is not None]
    if ds:
        rows.append(Row(sec, "originals whose exposure correction is proposed to a person, not applied (the clipped "
                             "part alone asks for it; counted above as made; diagnostic)",
                        {"postprod": _ratio(sum(d.ev_proposed for d in ds), len(ds))}, ""))
        rows.append(Row(sec, "originals whose white-balance correction is proposed to a person, not applied (beyond "
                             "the chart's propose_above_mired; counted above as made; diagnostic)",
                        {"postprod": _ratio(sum(d.mired_proposed for d in ds), len(ds))}, ""))
    if ds:
        rows.append(Row(sec, "originals whose colour the plan sends a retoucher to check (a white_balance or skin flag; "
                             "diagnostic)", {"postprod": _ratio(sum(d.colour_flagged for d in ds), len(ds))}, ""))

    # Casts.
    sec = "Colour casts (mired; + = warmer)"
    for domain, label in (("raw", "RAW cast twins"), ("rendered", "rendered cast twins")):
        twins = by("cast", domain)
        med, wrong, tint, errors, wrongs = {}, {}, {}, {}, {}
        for s in systems:
            sample, bad, n, terrs, wrongs[s] = {}, 0, 0, [], {}
            for i in twins:
                d = dec(s, i)
                if d is None:
                    continue
                n += 1
                m = d.mired if d.mired is not None else 0.0
                sample[i.id] = (i.source, m - i.truth["mired"])
                bad += m * i.truth["mired"] < 0
                wrongs[s][i.id] = (i.source, float(m * i.truth["mired"] < 0))
                if d.tint_a is not None and "tint_a" in i.truth:
                    terrs.append(d.tint_a - i.truth["tint_a"])
            errors[s] = sample
            med[s] = _estimate(_stats_of(sample), "median", "{:.1f}")
            wrong[s] = _count(bad, n)
            if terrs:
                tint[s] = _stats(terrs).get("median")
        rel = {s: _stats(relative_errors(s, twins, "mired")).get("median") for s in systems}
        # Corrections the plan proposes to a person instead of applying (a guessed light beyond the chart's
        # propose_above_mired): the figures above count them as made; how many, and how many go the right way.
        made = [(i, d) for i in twins if (d := dec("postprod", i)) is not None and d.mired]
        asked = [(i, d) for i, d in made if d.mired_proposed]
        right = sum(d.mired * i.truth["mired"] > 0 for i, d in asked)
        rows += [
            Row(sec, f"{label}: median |error| (n={len(twins)})", med, "<= 10", "lower", 10.0, "{:.1f}",
                samples=_absolute(errors), statistic=np.median),
            Row(sec, f"{label}: median |error| relative to the uncast twin's correction (diagnostic)", rel, "",
                fmt="{:.1f}"),
            Row(sec, f"{label}: corrections in the wrong direction", wrong, "0", "lower", 0.0, "{:.0f}",
                samples=wrongs, statistic=np.sum),
            Row(sec, f"{label}: median |tint error| (Lab a*; diagnostic)", tint, "", fmt="{:.1f}"),
            Row(sec, f"{label}: corrections proposed to a person, not applied (beyond the chart's "
                     f"propose_above_mired; of them, in the right direction: {right}; diagnostic)",
                {"postprod": _ratio(len(asked), len(made))}, ""),
        ]
    # Whether the colour flag (the unsure reading left as shot, "check by eye") tells a cast from none: a flag that
    # fires as often on photos that need nothing as on photos with a cast sends a retoucher to look at random.
    flag_rates = []
    for label, pick in ((f"cast twins of {BIG_MIRED:g} mired or more",
                         [i for i in by("cast") if abs(i.truth["mired"]) >= BIG_MIRED - 1e-9]),
                        ("uncast originals", originals)):
        ds = [d for d in (dec("postprod", i) for i in pick) if d is not None]
        flag_rates.append((label, sum(d.colour_flagged for d in ds), sum(d.mired_proposed for d in ds), len(ds)))
    if all(n for *_, n in flag_rates):
        rows.append(Row(sec, "colour flagged for a retoucher's eye / correction proposed to a person: cast twins "
                             "against uncast originals (does the flag tell a cast from none? diagnostic)",
                        {"postprod": {"value": flag_rates[0][1] / flag_rates[0][3],
                                      "text": "; ".join(f"{label}: {f / n:.0%} / {p / n:.0%} (n={n})"
                                                        for label, f, p, n in flag_rates)}}, ""))
    real = by("wb_real") + by("wb_pair")
    if real:
        direction, kept, pair = {}, {}, {}
        for s in systems:
            right = n = k_kept = n_kept = 0
            for i in real:
                d = dec(s, i)
                if d is None:
                    continue
                if d.mired is None:  # no reading is no correction
                    d = copy.copy(d)
                    d.mired = 0.0
                cast = i.truth["cast"]
                if cast in ("cool", "warm"):
                    n += 1
                    right += (d.mired > 0) if cast == "cool" else (d.mired < 0)
                elif cast == "warm-intended":
                    n_kept += 1
                    k_kept += kept_warmth(corpus.path(i), d)
                if "log2_rb" in i.truth and d.log2_rb is not None:
                    pair[s] = {"value": abs(d.log2_rb - i.truth["log2_rb"]),
                               "text": f"{d.log2_rb:+.2f} (|error| {abs(d.log2_rb - i.truth['log2_rb']):.2f})"}
            direction[s] = _ratio(right, n)
            kept[s] = _ratio(k_kept, n_kept)
        rows += [
            Row(sec, "real wrong-white-balance photos (wb/): direction right", direction, "all", "higher", 1.0),
            Row(sec, "wb/pairs: log2 R/B of the correction vs truth +2.13", pair, "within 0.5", "lower", 0.5),
            Row(sec, "warm-intended photos keep some warmth (>= 10 mired warm after the correction)", kept, "all",
                "higher", 1.0),
        ]
    skin_items = [i for i in items if i.set in ("cast", "original", "wb_real") and (i.truth.get("faces") or [])]
    vals, silent = {}, {}
    excluded = 0
    lost_by = {"corrected": 0, "as shot": 0}  # postprod's faces not kept: under its correction, or left as shot
    for s in systems:
        ok = n = unflagged = 0
        for i in skin_items:
            d = dec(s, i)
            if d is None or d.face_colours is None:
                continue
            for c, was_skin in zip(d.face_colours, skin_as_published(corpus, items, i)):
                if c is None or not was_skin:
                    excluded += s == "postprod" and c is not None
                    continue
                n += 1
                kept = is_skin(c)
                ok += kept
                unflagged += not kept and not (d.colour_flagged or d.mired_proposed)
                if s == "postprod" and not kept:
                    lost_by["corrected" if d.mired else "as shot"] += 1
        vals[s] = _ratio(ok, n)
        silent[s] = _count(unflagged, n)
    rows.append(Row(sec, "skin kept: faces that are skin as published (hue 15-85 deg, chroma >= 10) still are "
                         "after the correction", vals, "all", "higher", 1.0))
    rows.append(Row(sec, "skin lost without a flag: faces not kept whose image the plan did not flag for its colour "
                         "nor propose its correction to a person (issue item 3: skin kept, or the image flagged)",
                    silent, "0", "lower", 0.0, "{:.0f}"))
    rows.append(Row(sec, "faces not kept: under the white-balance correction (applied or proposed) / in an image left "
                         "as shot, its cast still in (diagnostic)",
                    {"postprod": {"value": None, "text": f"{lost_by['corrected']} / {lost_by['as shot']}"}}, ""))
    rows.append(Row(sec, "faces left out of the skin check: not skin-coloured even as published (diagnostic)",
                    {"postprod": {"value": float(excluded), "text": str(excluded)}}, ""))

    # Faces to brighten.
    sec = "Faces to brighten (faces in a known shadow)"
    shadow = by("shadow")
    for domain, label in (("rendered", "JPEG"), ("raw", "DNG twins")):
        pick = [i for i in shadow if i.domain == domain]
        found = lit_lifted = total = n_lit = 0
        for i in pick:
            d = dec("postprod", i)
            if d is None or d.faces is None:
                continue
            match = match_faces(i.truth["faces"], d.faces)
            for f, j in zip(i.truth["faces"], match):
                lifted = j is not None and d.faces[j][1] is not None
                if f["shadow_ev"] >= 0.5:
                    total += 1
                    found += lifted
                elif f["shadow_ev"] < 0.1:
                    n_lit += 1
                    lit_lifted += lifted
        rows.append(Row(sec, f"shadowed faces found and brightened ({label})",
                        {"postprod": _ratio(found, total), "rawtherapee": _ratio(0, total) if rawtherapee else None,
                         "naive": _ratio(0, total)}, "all", "higher", 1.0))
    errs, within, total = [], 0, 0
    for i in shadow:
        d = dec("postprod", i)
        if d is None or d.faces is None:
            continue
        for f, j in zip(i.truth["faces"], match_faces(i.truth["faces"], d.faces)):
            if f["shadow_ev"] < 0.5:
                continue
            total += 1
            amount = d.faces[j][1] if j is not None else None
            if amount is not None:
                errs.append(amount - f["shadow_ev"])
                within += abs(amount - f["shadow_ev"]) <= 0.3
    rows.append(Row(sec, "amount within 0.3 EV of the shadow's depth (all shadowed faces)",
                    {"postprod": _ratio(within, total), "rawtherapee": _ratio(0, total) if rawtherapee else None,
                     "naive": _ratio(0, total)}, "all", "higher", 1.0))
    st = _stats(errs)
    rows.append(Row(sec, "median |amount error| of the faces brightened (EV; diagnostic)",
                    {"postprod": st.get("median")}, ""))
    vals = {}
    for s in systems:
        evs = [d.ev for d in (dec(s, i) for i in shadow) if d is not None and d.ev is not None]
        vals[s] = _stats(evs).get("median")
    rows.append(Row(sec, "median |global exposure correction| on the shadow twins (truth 0; diagnostic)", vals, ""))
    # The truth of 0 also charges a shadow twin its published photo's own correction: what the shadows
    # themselves move is the difference from the unshadowed twin's.
    vals = {}
    for s in systems:
        moved = []
        for i in shadow:
            twin = reference_twin(i)
            d, d0 = dec(s, i), None if twin is None else dec(s, twin)
            if d is not None and d0 is not None and d.ev is not None and d0.ev is not None:
                moved.append(d.ev - d0.ev)
        vals[s] = _stats(moved).get("median")
    rows.append(Row(sec, "median |global correction moved by the shadows| (shadow twin - unshadowed twin; EV; "
                         "diagnostic)", vals, ""))
    lit: dict[str, tuple[str, float]] = {}  # face -> (source, lifted)
    for i in by("shadow") + [i for i in by("original", render="published") if i.truth.get("faces")] + by("edge"):
        d = dec("postprod", i)
        if d is None or d.faces is None:
            continue
        for k, (f, j) in enumerate(zip(i.truth["faces"], match_faces(i.truth["faces"], d.faces))):
            if f["shadow_ev"] < 0.1:
                lit[f"{i.id}#{k}"] = (i.source, float(j is not None and d.faces[j][1] is not None))
    lifted, n_lit = int(sum(v for _, v in lit.values())), len(lit)
    rows.append(Row(sec, "lit faces given a lift (shadow twins' lit faces, published photos, edge crops)",
                    {"postprod": _count(lifted, n_lit), "rawtherapee": _count(0, n_lit) if rawtherapee else None,
                     "naive": _count(0, n_lit)}, "0", "lower", 0.0, "{:.0f}",
                    samples={"postprod": lit, "rawtherapee": {k: (src, 0.0) for k, (src, _) in lit.items()}},
                    statistic=np.sum))
    # Every twin with no shadow put on it (the originals and the exposure and cast twins, RAW and JPEG): no face the
    # detector finds there is in a shadow the benchmark made, so a lift is on a face as the photographer lit it.
    unshadowed = {"RAW": [], "JPEG": []}
    for i in by("original") + by("exposure") + by("cast"):
        d = dec("postprod", i)
        if d is not None and d.faces:
            unshadowed["RAW" if i.domain == "raw" else "JPEG"] += [lift is not None for _, lift in d.faces]
    rows.append(Row(sec, "faces given a lift in the twins with no shadow (originals, exposure and cast twins; faces "
                         "the detector found; diagnostic)",
                    {"postprod": {"value": None, "text": "; ".join(
                        f"{k} {sum(v)} of {len(v)}" for k, v in unshadowed.items())}}, ""))
    edge_found = edge_n = 0
    for i in by("edge"):
        d = dec("postprod", i)
        if d is None or d.faces is None:
            continue
        for j in match_faces(i.truth["faces"], d.faces):
            edge_n += 1
            edge_found += j is not None
    rows.append(Row(sec, "faces at the frame edge detected (diagnostic)", {"postprod": _ratio(edge_found, edge_n)}, ""))

    rows += backlit_rows(by("backlit"), [i for i in by("original", render="published")], dec, systems)

    # Crops and straightening.
    sec = "Crops and straightening"
    crop_items = [i for i in items if i.truth.get("faces") and i.set in ("original", "edge") and i.render == "published"]
    vals, dropped, dropped_silently = {}, {}, {}
    for s in ("postprod", "naive"):
        cuts = n_crops = left_out = left_unflagged = 0
        for i in crop_items:
            w, h = image_size(corpus.path(i))
            faces = [f["box"] for f in i.truth["faces"] if f["box"][2] >= FACE_MIN_FRACTION * min(w, h)]
            for chart, box, angle, aspect, _, flagged in crop_decisions.get(s, {}).get(i.id, []):
                n_crops += 1
                shares = [crop_face_share(box, angle, f, (w, h)) for f in faces]
                cut = any(1e-3 < sh < 1.0 - CUT_TOLERANCE for sh in shares)
                cuts += cut and not flagged
                out = sum(sh <= 1e-3 for sh in shares)
                left_out += out
                left_unflagged += out > 0 and not flagged
        vals[s] = {"value": float(cuts), "text": f"{cuts} of {n_crops} crops"}
        dropped[s] = {"value": float(left_out), "text": f"{left_out}"}
        dropped_silently[s] = {"value": float(left_unflagged), "text": f"{left_unflagged} of {n_crops} crops"}
    rows.append(Row(sec, f"unflagged crops that cut a face (>= {FACE_MIN_FRACTION:.0%} of the short side, "
                         f"with headroom; {len(CROP_CHARTS)} charts)", vals, "0", "lower", 0.0, "{:.0f}"))
    rows.append(Row(sec, "faces left wholly outside a crop (diagnostic)", dropped, ""))
    # The dinner photo: a 4:5 crop that keeps one of six diners cuts no face, but drops five; a crop that
    # cannot hold every face keeps the most important and is flagged with a crop reason.
    rows.append(Row(sec, f"unflagged crops that leave a face (>= {FACE_MIN_FRACTION:.0%} of the short side) wholly "
                         "out", dropped_silently, "0", "lower", 0.0, "{:.0f}"))
    vals = {}
    for s in ("postprod", "naive"):
        enlarged = n_sent = 0
        for i in crop_items:
            for *_, sent, _ in crop_decisions.get(s, {}).get(i.id, []):
                for _, scale, max_upscale, flagged in sent:
                    n_sent += 1
                    # 1 %: whole output pixels move a small box's scale by a few tenths of a percent.
                    enlarged += scale > max_upscale * 1.01 and not flagged
        vals[s] = {"value": float(enlarged), "text": f"{enlarged} of {n_sent} renditions"}
    rows.append(Row(sec, "renditions enlarged beyond the chart's max_upscale without a flag (exact-size "
                         "renditions of the crops above)", vals, "0", "lower", 0.0, "{:.0f}"))
    tilted = by("rotation")
    vals, within = {}, {}
    for s in ("postprod", "naive"):
        sample = {i.id: (i.source, (d.angle or 0.0) - i.truth["angle_deg"])
                  for i, d in ((i, dec(s, i)) for i in tilted) if d is not None}
        errs = [v for _, v in sample.values()]
        vals[s] = _estimate(_stats_of(sample), "median")
        within[s] = _ratio(sum(abs(e) <= 0.3 for e in errs), len(errs))
    rows.append(Row(sec, f"rotation: median |error| (deg, n={len(tilted)})", vals, "<= 0.3", "lower", 0.3))
    rows.append(Row(sec, "rotation: share recovered within 0.3 deg (diagnostic)", within, ""))
    untilted = by("original", "rendered", "published")
    vals = {}
    for s in ("postprod", "naive"):
        ds = [dec(s, i) for i in untilted]
        ds = [d for d in ds if d is not None]
        vals[s] = _count(sum(d.angle_applied for d in ds), len(ds))
    rows.append(Row(sec, "rotations applied to published photos (no tilt injected)", vals, "0", "lower", 0.0, "{:.0f}"))
    return rows


def backlit_rows(twins: list[Item], published: list[Item], dec: Callable[[str, Item], Decision | None],
                 systems: list[str]) -> list[Row]:
    """The backlit twins' rows: a ground developed 1-2 EV under beneath a blown sky (the truth: the ground as
    published), each system's correction rendered by postprod's renderer, postprod's proposed lift accepted."""
    sec = (f"Backlit frames (a ground developed 1-2 EV under beneath a top {BACKLIT_SKY_EV:g} EV over; truth: the "
           "photo as published)")
    rows: list[Row] = []
    lifted = [i for i in twins if (d := dec("postprod", i)) is not None and d.lift]
    rows.append(Row(sec, "backlit twins given a shadow lift, proposed to a reviewer (diagnostic)",
                    {"postprod": _ratio(len(lifted), len(twins))}, ""))
    def errors(system: str, lifted: bool = False) -> list[float]:
        return [(d.ground_lifted_ev if lifted else d.ground_ev) - i.truth["ground_ev"] for i in twins
                if (d := dec(system, i)) is not None and d.ground_ev is not None]

    rows.append(Row(sec, "ground: median error as delivered (EV; - = under; postprod's lift pending)",
                    {s: _signed_median(errors(s)) for s in systems}, ""))
    after = errors("postprod", lifted=True)
    rows.append(Row(sec, "ground: median error with postprod's proposed lift accepted (EV)",
                    {"postprod": _signed_median(after)}, ""))
    moved = [a - b for a, b in zip(after, errors("postprod"))]
    rows.append(Row(sec, "ground: median move toward the published level by the accepted lift (EV; diagnostic)",
                    {"postprod": _signed_median(moved)}, ""))
    given = [d for i in twins if (d := dec("postprod", i)) is not None and d.lift and d.ground_ev is not None]
    rows.append(Row(sec, "of the twins given a lift: median move of the ground, and of the top, by the accepted lift "
                         "(EV; diagnostic)",
                    {"postprod": None if not given else {
                        "value": float(np.median([d.ground_lifted_ev - d.ground_ev for d in given])),
                        "text": f"{np.median([d.ground_lifted_ev - d.ground_ev for d in given]):+.2f}, top "
                                f"{np.median([d.sky_lifted_ev - d.sky_ev for d in given]):+.2f} (n={len(given)})"}},
                    ""))
    rows.append(Row(sec, "ground: lifted past its published level by more than 0.1 EV",
                    {s: _count(sum(e > 0.1 for e in (after if s == "postprod" else errors(s))), len(errors(s)))
                     for s in systems}, "0", "lower", 0.0, "{:.0f}"))
    sky = {s: [(d.sky_lifted_ev if s == "postprod" else d.sky_ev) - i.truth["sky_ev"] for i in twins
               if (d := dec(s, i)) is not None and d.sky_ev is not None] for s in systems}
    rows.append(Row(sec, f"top (developed {BACKLIT_SKY_EV:g} EV over): median error against its published level "
                         "(EV; postprod's lift accepted)", {s: _signed_median(sky[s]) for s in systems}, ""))
    rows.append(Row(sec, "pixels newly clipped by the correction (percentage points, median; postprod's lift "
                         "accepted)",
                    {s: _signed_median([d.ground_clipped_added for i in twins if (d := dec(s, i)) is not None
                                        and d.ground_clipped_added is not None]) for s in systems}, ""))
    proposed = sum(bool((d := dec("postprod", i)) and d.lift) for i in published)
    rows.append(Row(sec, "published photos (as published) given a shadow lift, proposed (diagnostic)",
                    {"postprod": _count(proposed, len(published))}, ""))
    return rows


def _signed_median(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"value": None, "text": "— (none)"}
    m = float(np.median(values))
    return {"value": m, "text": f"{m:+.2f} (n={len(values)})"}


def is_skin(rgb: np.ndarray) -> bool:
    hue, chroma = bl.skin_hue_chroma(rgb)
    return SKIN_HUE[0] <= hue <= SKIN_HUE[1] and chroma >= SKIN_MIN_CHROMA


_AS_PUBLISHED: dict[tuple[str, str], list[bool]] = {}


def skin_as_published(corpus: Corpus, items: list[Item], item: Item) -> list[bool]:
    """Whether each annotated face of ``item`` is skin-coloured in the photo as published (before any
    injected problem or correction): only those can be "kept". For a reference file, the file itself."""
    source = next((j for j in items if j.source == item.source and j.set == "original" and j.render == "published"),
                  item)
    key = (str(corpus.root), source.id)
    if key not in _AS_PUBLISHED:
        lin = bl.read_linear(corpus.path(source))
        colours = [bl.face_colour(lin, tuple(f["box"])) for f in source.truth.get("faces") or []]
        _AS_PUBLISHED[key] = [c is not None and is_skin(c) for c in colours]
    return _AS_PUBLISHED[key]


def kept_warmth(path: Path, d: Decision) -> bool:
    """Whether a warm-intended photo still reads warm (>= 10 mired by the grey world of the photo) after
    the correction ``d`` (its shift in mired)."""
    lin = bl.read_linear(path, 800)
    before = bl.grey_world_gains(lin)
    if before is None:
        return False
    cast = bl.cast_mired(1.0 / before)
    if cast is None:
        return False
    return cast + (d.mired or 0.0) >= 10.0


_SIZES: dict[Path, tuple[int, int]] = {}


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of a rendered file (cached)."""
    if path not in _SIZES:
        from PIL import Image

        with Image.open(path) as im:
            _SIZES[path] = im.size
    return _SIZES[path]


# --- tables ---------------------------------------------------------------------------------------


def table(rows: list[Row], rawtherapee: bool) -> str:
    head = "| metric | postprod | RawTherapee auto | naive | target | postprod | ahead of RawTherapee |"
    out = [head, "|---|---|---|---|---|---|---|"]
    section = None
    for r in rows:
        if r.section != section:
            section = r.section
            out.append(f"| **{section}** | | | | | | |")
        passed = r.passed()
        cells = [
            r.metric, r.text("postprod"), r.text("rawtherapee") if rawtherapee else "not run", r.text("naive"),
            r.target or "—", "—" if passed is None else verdict(passed),
            r.lead(),
        ]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out)


def console_table(rows: list[Row], rawtherapee: bool) -> str:
    lines = []
    section = None
    for r in rows:
        if r.section != section:
            section = r.section
            lines.append(f"\n{section}")
            lines.append(f"  {'metric':78s} {'postprod':>26s} {'RT auto':>26s} {'naive':>26s} {'target':>10s}")
        passed = "" if r.passed() is None else verdict(r.passed())
        lines.append(f"  {r.metric[:78]:78s} {r.text('postprod')[:26]:>26s} "
                     f"{(r.text('rawtherapee') if rawtherapee else 'not run')[:26]:>26s} {r.text('naive')[:26]:>26s} "
                     f"{r.target[:10]:>10s} {passed}")
    return "\n".join(lines)


def machine() -> dict[str, str]:
    cpu = cpu_model()
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = "?"
    return {"date": datetime.now().strftime("%Y-%m-%d %H:%M"), "cpu": f"{cpu}, {os.cpu_count()} cores",
            "python": platform.python_version(), "rawtherapee": bl.rawtherapee_version() or "not installed",
            "postprod commit": commit or "?", "code hash": code_hash()}


# --- main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a dozen sources (minutes), not the whole pool")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help=f"corpus, renders and postprod outputs (default {DEFAULT_CACHE}; POSTPROD_ACCURACY_CACHE)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data")),
                        help="the shared test data (POSTPROD_TESTDATA)")
    parser.add_argument("--no-rawtherapee", action="store_true", help="skip the RawTherapee baseline")
    parser.add_argument("--no-wallpapers", action="store_true", help="leave Debian's wallpaper photos out of the pool")
    parser.add_argument("--jobs", type=int, default=2, help="parallel converter processes (default 2)")
    parser.add_argument("--write", action="store_true", help=f"write the tables to {ACCURACY_MD.relative_to(ROOT)}")
    parser.add_argument("--sheet", metavar="WORD", default=None,
                        help="also draw a contact sheet of the items whose id contains WORD (in the cache's results/)")
    parser.add_argument("--split", choices=("tuning", "held_out", EXTRA_SPLIT), default=None,
                        help="only this split's items (and the shared reference files): tune on 'tuning' "
                             f"without seeing the held-out figures; --write needs both. '{EXTRA_SPLIT}': the "
                             "extra tuning pool alone (Debian packages' photographs outside the benchmark's pool, "
                             "a corpus of their own; never part of the written tables)")
    parser.add_argument("--photos", type=Path, action="append", default=[], metavar="DIR",
                        help="your own photos instead of the benchmark's pool (repeatable): pictures right as they "
                             "are, into which known offsets and casts are injected (shadows over the faces of a "
                             "dlib imglab file in the folder, rotations of the photos its level.txt names); "
                             "nothing was fitted on them")
    parser.add_argument("--report", type=Path, metavar="PATH",
                        help="with --photos: also write the table as Markdown to PATH")
    parser.add_argument("--chart", default=MAIN_CHART, metavar="NAME",
                        help=f"with --photos: the chart whose decisions are judged (a name or a YAML path; default "
                             f"{MAIN_CHART}): a client's chart on photos of its kind, its scene consistency off (a "
                             "photo's twins are one scene to it). The truth stays the photograph as it was: a "
                             "chart that keeps some warmth or aims brighter reads off it by what it keeps")
    args = parser.parse_args(argv)
    if args.split is not None and args.write:
        parser.error("--write reports both splits: run it without --split")
    if args.photos and (args.split is not None or args.write or args.quick):
        parser.error("--photos is a pool of its own: not with --split, --write or --quick")
    if args.report is not None and not args.photos:
        parser.error("--report writes the table of --photos")
    if args.chart != MAIN_CHART:
        if not args.photos:
            parser.error("--chart judges a chart on --photos; the benchmark's own tables are read under "
                         f"{MAIN_CHART}")
        from charts.loader import load_chart
        from pipeline.kernel.errors import ConfigError
        try:
            load_chart(args.chart)
        except ConfigError as exc:
            parser.error(f"--chart: {exc}")
    os.environ.setdefault("POSTPROD_MODEL_DIR", str(args.data / "models"))
    start = time.perf_counter()
    cache = args.cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)

    rawtherapee = bl.have_rawtherapee() and not args.no_rawtherapee
    if not bl.have_rawtherapee():
        log("rawtherapee-cli not found (apt-get install rawtherapee): the RawTherapee column is left out and the "
            "rendered twins are developed by the numpy emulation of its film curve; postprod's rows are reported.")
    renderer = Renderer("rawtherapee_film" if bl.have_rawtherapee() else "curve_film", args.jobs)

    log("pool")
    extra = args.split == EXTRA_SPLIT
    left_out: list[str] = []
    if args.photos:
        try:
            pool = own_pool(args.photos, log, left_out)
        except (OSError, ValueError, ET.ParseError) as exc:  # no folder, two photos of one id, a broken imglab file
            parser.error(f"--photos: {exc}")
        if not pool:
            log("no photos in " + ", ".join(str(f) for f in args.photos))
            return 1
    elif extra:
        pool = build_extra_pool(cache, log)
    else:
        pool = build_pool(args.data, cache, log, wallpapers=not args.no_wallpapers)
    if args.quick:
        pool = [s for s in pool if s.id in QUICK_SOURCES]
    log(f"  {len(pool)} sources: " + ", ".join(f"{g} {sum(s.group == g for s in pool)}" for g in ("faces", "scenes", "raw")))
    log(f"corpus (rendered twins: {renderer.name})")
    if args.photos:  # a corpus of their own, as the extra pool's
        corpus = build_corpus(cache / "corpus_own", pool, args.data, renderer, log, references=False,
                              spec=OWN_SPEC, split=OWN_SPLIT)
    elif extra:  # a corpus of its own: the benchmark's splits and manifest never see it
        corpus = build_corpus(cache / "corpus_extra", pool, args.data, renderer, log, references=False,
                              split=EXTRA_SPLIT)
    else:
        corpus = build_corpus(cache / "corpus", pool, args.data, renderer, log)
    items = [i for i in corpus.items if args.split is None or i.split in (args.split, "reference")]
    if args.sheet is not None:
        picked = [i for i in items if args.sheet in i.id][:40]
        log(f"  contact sheet: {contact_sheet(corpus, picked, cache / 'results' / f'sheet-{slug(args.sheet)}.png')}")
    main_chart = MAIN_CHART if args.chart == MAIN_CHART else judged_chart(args.chart, cache / "charts")
    decisions, crops, seconds = decide(corpus, items, cache, rawtherapee, args.jobs, main_chart=main_chart)
    run_name = "own" if args.photos else "quick" if args.quick else "full"
    details = write_details(cache / "results" / f"decisions-{run_name}.jsonl", items,
                            decisions, crops)
    log(f"  per-item decisions: {details}")
    results = score(corpus, items, decisions, crops, rawtherapee)
    for name, rows in results.items():
        log(f"\n=== {name} split ===")
        log(console_table(measured(rows) if name == OWN_SPLIT else rows, rawtherapee))
    total_s = time.perf_counter() - start
    log(f"\n{len(items)} items; postprod {seconds['postprod']:.0f} s, baselines {seconds['baselines']:.0f} s, "
        f"total {total_s:.0f} s")
    if args.write:
        write_markdown(results, corpus, pool, rawtherapee, args, total_s)
        log(f"wrote {ACCURACY_MD}")
    if args.report is not None and OWN_SPLIT in results:
        write_own_report(args.report, results[OWN_SPLIT], corpus, pool, rawtherapee, args, total_s, left_out,
                         as_published(items, decisions["postprod"]))
        log(f"wrote {args.report}")
    return 0


def decide(corpus: Corpus, items: list[Item], cache: Path, rawtherapee: bool, jobs: int, baselines: bool = True,
           main_chart: str = MAIN_CHART
           ) -> tuple[dict[str, dict[str, Decision]], dict[str, dict[str, list]], dict[str, float]]:
    """Every system's decisions on the items: (system -> item id -> Decision, system -> item id -> crops,
    seconds spent per system); postprod's exposure, colour, faces and straightening read under ``main_chart``.
    ``baselines=False``: postprod's only."""
    from charts.loader import load_chart

    t = time.perf_counter()
    log(f"postprod on {len(items)} images")
    # The crop charts are re-planned only to check crops against drawn faces: a corpus without any has none.
    charts = CROP_CHARTS if any(i.truth.get("faces") for i in items) else ()
    runs = run_postprod(corpus, items, cache / "postprod", charts, main_chart)
    target_ev = load_chart(main_chart).chart.exposure.target_ev
    decisions: dict[str, dict[str, Decision]] = {"postprod": {}}
    crops: dict[str, dict[str, list]] = {"postprod": {}, "naive": {}}
    for item_id, record in runs[main_chart].items():
        if record.status == "ok":
            decisions["postprod"][item_id] = postprod_decision(record, target_ev)
    aspects = sorted({c.aspect for name in CROP_CHARTS for c in load_chart(name).chart.crops})
    for item in items:
        if not item.truth.get("faces") or item.domain != "rendered":
            continue
        for chart in CROP_CHARTS:
            record = runs[chart].get(item.id)
            if record is not None and record.status == "ok":
                crops["postprod"].setdefault(item.id, []).extend((chart, *c) for c in postprod_crops(record, chart))
        w, h = image_size(corpus.path(item))
        crops["naive"][item.id] = [("centre", *c) for c in centred_crops(w, h, aspects)]
    by_id = {i.id: i for i in items}
    for item_id, d in decisions["postprod"].items():
        item = by_id[item_id]
        if item.truth.get("faces") and item.set in ("cast", "original", "wb_real"):
            lin = bl.read_linear(corpus.path(item))
            d.face_colours = corrected_face_colours(lin, d.ev or 0.0, d.gains or (1, 1, 1), item.truth["faces"],
                                                    rendered=item.domain == "rendered", developed=item.domain == "raw")
    seconds = {"postprod": time.perf_counter() - t, "baselines": 0.0}
    if baselines:
        t = time.perf_counter()
        log("baselines" + (" (RawTherapee and naive)" if rawtherapee else " (naive)"))
        decisions["rawtherapee"], decisions["naive"] = baseline_decisions(corpus, items, cache, rawtherapee, jobs)
        seconds["baselines"] = time.perf_counter() - t
    for system in decisions.values():
        for item in (i for i in items if i.set == "backlit"):
            d = system.get(item.id)
            if d is not None:
                (d.ground_ev, d.ground_lifted_ev, d.sky_ev, d.sky_lifted_ev,
                 d.ground_clipped_added) = backlit_ground(corpus.path(item), d)
    return decisions, crops, seconds


def score(corpus: Corpus, items: list[Item], decisions: dict[str, dict[str, Decision]],
          crops: dict[str, dict[str, list]], rawtherapee: bool) -> dict[str, list[Row]]:
    """The tables: split name (held_out, tuning, reference, and the extra tuning pool's) -> rows."""
    splits = {"held_out": [i for i in items if i.split == "held_out"],
              "tuning": [i for i in items if i.split == "tuning"],
              "reference": [i for i in items if i.split == "reference"],
              EXTRA_SPLIT: [i for i in items if i.split == EXTRA_SPLIT],
              OWN_SPLIT: [i for i in items if i.split == OWN_SPLIT]}
    results = {name: evaluate(pick, decisions, crops, rawtherapee, corpus) for name, pick in splits.items() if pick}
    if "reference" in results:
        results["reference"] = [r for r in results["reference"] if any(
            k in r.metric for k in ("real wrong", "wb/pairs", "warm-intended", "skin"))]
        results["reference"].insert(0, fivek_row(splits["reference"], decisions, rawtherapee))
    return results


def contact_sheet(corpus: Corpus, items: list[Item], out: Path, columns: int = 5, cell: int = 300) -> Path:
    """A labelled PNG of the items as a person sees them (RAW twins through the standard camera curve),
    annotated faces drawn (red: in a shadow), for checking by eye that each perturbation looks like a
    real photo with the intended problem."""
    from PIL import Image, ImageDraw

    from benchmarks.accuracy_corpus import film_curve_render, to_srgb8

    rows = (len(items) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell, rows * (cell * 2 // 3 + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    for n, item in enumerate(items):
        lin, scale = bl.read_linear_scaled(corpus.path(item), 2 * cell)
        shown = film_curve_render(lin) if item.domain == "raw" else lin
        im = Image.fromarray(to_srgb8(shown))
        fit = min(cell / im.size[0], (cell * 2 // 3) / im.size[1])
        im = im.resize((max(1, round(im.size[0] * fit)), max(1, round(im.size[1] * fit))))
        d = ImageDraw.Draw(im)
        for f in item.truth.get("faces") or []:
            x, y, w, h = (v * scale * fit for v in f["box"])
            d.rectangle([x, y, x + w, y + h], outline=(255, 0, 0) if f["shadow_ev"] >= 0.5 else (0, 255, 0))
        x0, y0 = (n % columns) * cell, (n // columns) * (cell * 2 // 3 + 16)
        sheet.paste(im, (x0, y0 + 16))
        draw.text((x0 + 2, y0 + 2), item.id[-46:], fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def write_details(path: Path, items: list[Item], decisions: dict[str, dict[str, Decision]],
                  crops: dict[str, dict[str, list]]) -> Path:
    """One JSON line per item: its truth and each system's decision (for whoever works on the decisions)."""

    def plain(d: Decision | None) -> dict[str, Any] | None:
        if d is None:
            return None
        out = {k: v for k, v in vars(d).items() if k not in ("face_colours", "crops") and v is not None}
        if d.face_colours is not None:
            out["face_lab"] = [None if c is None else [round(float(v), 1) for v in bl.lab(c)] for c in d.face_colours]
        return out

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for i in items:
            row = {"id": i.id, "split": i.split, "set": i.set, "domain": i.domain, "file": i.file,
                   "truth": i.truth, **{s: plain(decisions.get(s, {}).get(i.id)) for s in SYSTEMS}}
            if i.id in crops.get("postprod", {}):
                row["postprod_crops"] = crops["postprod"][i.id]
            f.write(json.dumps(row, default=float) + "\n")
    return path


def fivek_row(items: list[Item], decisions: dict[str, dict[str, Decision]], rawtherapee: bool) -> Row:
    fivek = [i for i in items if i.set == "fivek"]
    vals = {}
    for s in SYSTEMS:
        if s == "rawtherapee" and not rawtherapee:
            continue
        ds = [(i, decisions.get(s, {}).get(i.id)) for i in fivek]
        ds = [(i, d) for i, d in ds if d is not None and d.ev is not None]
        k = sum(abs(d.ev - i.truth["ev"]) <= 0.5 for i, d in ds)
        vals[s] = {"value": k / len(ds) if ds else None,
                   "text": f"{k} of {len(ds)}: " + " ".join(f"{d.ev:+.1f}" for _, d in ds)}
    return Row("Exposure: the shared FiveK files (truth +-1.5 EV by name)",
               "within 0.5 EV of the truth (corrections listed: N1.5 need +1.5, P1.5 need -1.5)", vals, "all",
               "higher", 1.0)


def write_markdown(results: dict[str, list[Row]], corpus: Corpus, pool: list[Source], rawtherapee: bool,
                   args: argparse.Namespace, seconds: float) -> None:
    m = machine()
    counts = {}
    for i in corpus.items:
        counts.setdefault(i.split, {}).setdefault(i.set, 0)
        counts[i.split][i.set] += 1
    cmd = "python benchmarks/accuracy.py" + (" --quick" if args.quick else "") + (
        " --no-rawtherapee" if args.no_rawtherapee else "") + " --write"
    lines = [
        "# Accuracy against known truth",
        "",
        "Written by `benchmarks/accuracy.py` (issue 17, item 1). The corpus is generated from real photos and",
        "RAWs with known problems injected; the truth is the injected perturbation, never a converter's output.",
        "postprod runs as a user runs it (the default graph up to the plan, local executor, chart `base`;",
        f"crops under {', '.join(f'`{c}`' for c in CROP_CHARTS)} by `--only plan`).",
        "",
        f"- date: {m['date']}",
        f"- machine: {m['cpu']}, Python {m['python']}; {m['rawtherapee']}",
        f"- postprod: commit {m['postprod commit']}, code hash {m['code hash']}",
        f"- command: `{cmd}`: {seconds / 60:.0f} min, {corpus.made} of {len(corpus.items)} corpus files made in this run "
        "(the rest, and RawTherapee's renders, from the cache; measured 2026-11-29, a run with an empty cache "
        "took 57 min on a 2-core machine shared with other jobs, 20 min of it CPU)",
        f"- pool: {len(pool)} sources ("
        + ", ".join(f"{g} {sum(s.group == g for s in pool)}" for g in ("faces", "scenes", "raw"))
        + f"); rendered twins developed by `{corpus.renderer}`",
        "- items: " + "; ".join(f"{split}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
                                for split, c in sorted(counts.items())),
        "",
        "Columns: postprod's figure, RawTherapee 5.9's auto exposure + auto white balance (read from its output),",
        "the naive baseline (median metering, grey world, no rotation, centred crops), the issue's target,",
        "PASS/MISS for postprod, and whether postprod is ahead of RawTherapee on the row. \"—\": the system has",
        "no such decision. Wrong-sign counts treat \"no correction\" as not wrong; the median errors charge it.",
        INTERVAL_NOTE,
        "",
    ]
    titles = {"held_out": "Held-out split (no constant is tuned on it): the figures the targets are judged on",
              "tuning": "Tuning split", "reference": "Reference files of the shared data (not split)"}
    for name in ("held_out", "tuning", "reference"):
        lines += [f"## {titles[name]}", "", table(results[name], rawtherapee), ""]
    lines += NOTES
    tmp = ACCURACY_MD.with_name(f".{ACCURACY_MD.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, ACCURACY_MD)


def measured(rows: list[Row]) -> list[Row]:
    """The rows with something measured (and the section titles above them): a folder without drawn faces has
    no shadow or crop rows, one without level photos no rotation rows."""
    def empty(r: Row) -> bool:
        texts = [r.text(s) for s in SYSTEMS]
        return all(r.value(s) is None for s in SYSTEMS) or any(t.startswith("0 of 0") for t in texts)

    return [r for r in rows if not empty(r)]


#: The per-photo list of an own report shows at most this many photos (the largest changes first).
AS_PUBLISHED_LINES = 50


def as_published(items: list[Item], decisions: dict[str, Decision]) -> list[str]:
    """What postprod's plan does to each photo as it is (its ``published`` item; a camera RAW's: the RAW as
    shot), the largest exposure change first: Markdown table lines (header included), at most
    :data:`AS_PUBLISHED_LINES` photos."""
    photos = [(i, decisions.get(i.id)) for i in items if i.set == "original" and i.render == "published"]
    shown = {i.source for i, _ in photos}
    photos += [(i, decisions.get(i.id)) for i in items
               if i.set == "original" and i.domain == "raw" and i.source not in shown]
    photos.sort(key=lambda p: (-abs((p[1].ev or 0.0) if p[1] else 0.0), p[0].source))
    lines = ["| photo | exposure | white balance | straighten | colour sent to a retoucher |", "|---|---|---|---|---|"]
    for item, d in photos[:AS_PUBLISHED_LINES]:
        if d is None:
            lines.append(f"| {item.source.removeprefix('own/')} | not analysed | | | |")
            continue
        turn = "" if not d.angle else f"{d.angle:+.2f} deg {'applied' if d.angle_applied else 'told'}"
        wb = f"{d.mired or 0.0:+.0f} mired" + (" proposed" if d.mired_proposed else "")
        lines.append(f"| {item.source.removeprefix('own/')} | {d.ev or 0.0:+.2f} EV | {wb} | {turn} | "
                     f"{'yes' if d.colour_flagged else ''} |")
    if len(photos) > AS_PUBLISHED_LINES:
        lines.append(f"| and {len(photos) - AS_PUBLISHED_LINES} more | | | | |")
    return lines


def write_own_report(path: Path, rows: list[Row], corpus: Corpus, pool: list[Source], rawtherapee: bool,
                     args: argparse.Namespace, seconds: float, left_out: list[str], photos: list[str]) -> None:
    """The table of one's own photos (``--photos``) as Markdown at ``path`` (written atomically): the rows
    with something measured (:func:`measured`), the files left out, and what the plan does to each photo as it
    is (``photos``, :func:`as_published`)."""
    m = machine()
    counts: dict[str, int] = {}
    for i in corpus.items:
        counts[i.set] = counts.get(i.set, 0) + 1
    cmd = ("python benchmarks/accuracy.py " + " ".join(f"--photos {f}" for f in args.photos)
           + (" --no-rawtherapee" if args.no_rawtherapee else "")
           + (f" --chart {args.chart}" if args.chart != MAIN_CHART else "") + f" --report {path}")
    lines = [
        "# Accuracy on your own photos, against known truth",
        "",
        "Written by `benchmarks/accuracy.py --photos`. The photos are taken as right as they are; the truth is what",
        "was injected into them (exposure offsets and colour casts in their scene light, as DNG twins and as JPEGs",
        "developed from those; shadows over the faces a dlib imglab file draws; rotations of the photos `level.txt`",
        "names). Nothing in postprod was fitted on them. postprod runs as a user runs it (the default graph up to the",
        f"plan, chart `{args.chart}`" + ("" if args.chart == MAIN_CHART else " with its scene consistency off: each "
                                         "twin judged on its own")
        + "); the columns, targets and notes are those of `benchmarks/ACCURACY.md`.",
        "The photo as published and its twins are written without the source's EXIF, so the two rules that read a",
        "camera's settings (a camera JPEG's exposure compensation kept, the camera's automatic white balance kept",
        "in daylight) do not apply here; `benchmarks/do_no_harm.py` plans the files themselves.",
        "",
        f"- date: {m['date']}",
        f"- machine: {m['cpu']}, Python {m['python']}; {m['rawtherapee']}",
        f"- postprod: commit {m['postprod commit']}, code hash {m['code hash']}",
        f"- command: `{cmd}`: {seconds / 60:.0f} min",
        f"- photos: {len(pool)} (" + ", ".join(f"{g} {sum(s.group == g for s in pool)}"
                                              for g in ("faces", "scenes", "raw"))
        + f", {sum(s.level for s in pool)} with level lines) from " + ", ".join(f"`{f}`" for f in args.photos)
        + f"; rendered twins developed by `{corpus.renderer}`",
        "- items: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
        "- left out: " + ("; ".join(left_out) if left_out else "none"),
        "",
        INTERVAL_NOTE.replace("split's sources", "photos").replace("each source", "each photo"),
        "",
        table(measured(rows), rawtherapee),
        "",
        "## What the plan does to each photo as it is",
        "",
        "The correction postprod's plan makes to the photo itself (exposure in EV, + = brighter; white balance in",
        "mired, + = warmer; a turn applied by the renderer or told a retoucher), the largest exposure change first:",
        "a photo right as it is should need none.",
        "",
        *photos,
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


NOTES = [
    "## How the truth is made",
    "",
    "- **Scene light of a published photo**: the photo's sRGB values through the inverse of the standard camera",
    "  curve (RawTherapee's \"Standard Film Curve - ISO Low\", film-like), so developing the unperturbed DNG twin",
    "  through that curve gives the photo back: the photo as published is the correctly exposed, neutral truth.",
    "  This is an assumption about how the photo was developed: darktable's default curve (18 % grey to 145 of",
    "  255 where this curve gives 166) would put the same photo's scene light about 0.4 EV higher at mid-grey.",
    "  Either way the RAW twin of a well-exposed photo has its median luminance well below 18 % grey.",
    "- **Exposure twins**: that light times 2^offset, written as a DNG (sensor data; BaselineExposure is ignored",
    "  by both converters); real camera RAWs re-exposed photosite by photosite. Offsets -2..+2 EV. Rendered twins:",
    "  each DNG twin developed to JPEG through that curve (rawtherapee-cli, or its numpy emulation where",
    "  RawTherapee is not installed).",
    "- **Casts**: the light times the sRGB colour of a black body -120..+120 mired from D65 (some with a",
    "  green/magenta tint), AsShotNeutral unchanged; truth = minus the injected mired. Every system's",
    "  correction is read in mired by one conversion, postprod's (the Planckian light with the same red/blue",
    "  ratio, Robertson's locus): it reads these lights within 2 mired from -120 to +120 (McCamy's CCT, used",
    "  before, read -80 as -76 and had no value past 25 000 K, so -120 mired counted as no correction).",
    "- **Frames with a ColorChecker**: four of the RAW pool's sources (`raw/` CRW_0304 and CRW_0101, tuning; the",
    "  DC120's P003911 and tinydng's chart, held out) show a 24-patch chart, and postprod reads their light off",
    "  its greys (`benchmarks/colour_checker.py`). There the truth above (the frame as shot is neutral) is",
    "  contradicted by the chart: tinydng's greys read 125 mired warm as shot, and its correction counts as a",
    "  shift of an original (and its cast twins' errors keep that offset). Their rows are left as the truth",
    "  above scores them.",
    "- **Faces in shadow**: a soft-edged ellipse (Gaussian feather, 8 % of the face width) over every other",
    "  human-annotated face, 0.8-1.5 EV deep in linear light, in the DNG twin and in a JPEG of the photo.",
    "  PASCAL VOC faces are dlib's human-drawn boxes; the astronaut, Grace Hopper and Flickr faces were drawn",
    "  by eye on a coordinate grid (`EYE_DRAWN_FACES`).",
    "- **Edges**: group photos cropped so the outermost face sits 1 % of the frame from the left, right or top.",
    "- **Rotations**: photos with level horizontals turned -6..+6 deg in linear light and cropped to the",
    "  largest level rectangle of the same aspect.",
    "- **Splits**: by source photo, 40 % tuning / 60 % held-out within each group (faces, scenes, RAWs), fixed",
    "  by a hash of the source's id; the Flickr photos of `exposure/` are always in the tuning split because",
    "  `measure.py`'s rendered-source constants were calibrated on that folder. The FiveK and `wb/` files are",
    "  reported apart, as reference files.",
    "",
    "## How each system's decision is read",
    "",
    "- postprod: the plan's operations under `base` (an absent operation is a correction of 0): exposure `ev`,",
    "  white balance `mired_shift`/`gains`/`tint_shift`, `brighten_face` `ev` matched to the annotated faces",
    "  (IoU >= 0.3), straighten `angle_deg` (applied when the renderer applies it); crops under each chart.",
    "  A crop counts as flagged when the plan hands it to a retoucher or flags a `crop...` check for its",
    "  aspect. Enlargement: each exact-size rendition filled from a crop, at the size postprod's renderer",
    "  delivers it (`rendition_size`; the naive baseline delivers the size asked), against the rendition's",
    "  `max_upscale`; flagged when the plan flags an `upscale` check for that rendition.",
    "  The manifest's `exposure_ev` is the offset the plan corrects (one number: keyed on the faces that",
    "  count, or the whole frame); the whole frame's meter alone (`target_ev - exposure_meter_ev`) is a diagnostic.",
    "- RawTherapee auto: `rawtherapee-cli` with `[Exposure] Auto=true` and `[White Balance] Setting=autold`",
    "  (RGB grey) against the same profile without them; exposure = log2 of the ratio of median luminances,",
    "  white balance = the median per-channel change, as mired by the same conversion as postprod's.",
    "  RawTherapee has no face brightening, straightening or crop placement from the command line.",
    "- naive: median luminance to 0.18 (RAW) or the sRGB middle 0.214 (rendered); grey world; no rotation;",
    "  the largest centred crop of each aspect the charts use.",
    "- Skin: the median linear RGB of each annotated face's centre after the correction, in CIELAB (a JPEG's",
    "  white balance moved as the renderer moves it, through its curve's shoulder); a face counts when it is",
    "  skin-coloured in the photo as published (a blown-out face cannot be \"kept\").",
    "  A face not kept is *lost without a flag* unless the plan flagged the image's colour for a person",
    "  (a `white_balance` or `skin` check): the issue asks for skin kept or the image flagged.",
    "- Warm-intended kept: the grey world of the photo, plus the correction's shift, still >= 10 mired warm.",
    "",
    "## Using it",
    "",
    "- `--quick`: a dozen sources, a few minutes. The corpus, RawTherapee's renders and the baselines' figures",
    "  are cached by content (`~/.cache/postprod/accuracy`, `POSTPROD_ACCURACY_CACHE`), so a rerun after a",
    "  change to postprod redoes postprod's run alone (its output folder is keyed by a hash of postprod's",
    "  analysis code: a change to the rules or charts alone re-plans the analysed images, minutes).",
    "- Every item's truth and each system's decision: `results/decisions-full.jsonl` in the cache.",
    "- `--sheet WORD`: a contact sheet of the items whose id contains WORD, to look at the perturbations.",
    "- `tests/test_accuracy_floor.py` keeps today's figures, on four sources, as floors: raise them with the",
    "  decisions.",
]


if __name__ == "__main__":
    raise SystemExit(main())
