"""Converging verticals against known truth: real photos seen again through a camera pitched and rolled by known
angles.

Sources: photographs with vertical lines in them (:data:`SOURCES`): buildings, streets, interiors. The held-out
split is 14 Wikimedia Commons featured pictures (the ``wikipedia-photos`` folder of the Zelex/images snapshot, the
do-no-harm benchmark's photos); the tuning split, the only one the keystone's gate was fitted on, is 8 photos of
the Kodak suite (the same snapshot's ``kodak`` folder) and 4 of the straightening's own tuning pool (opencv-doc's
and Debian's). Each photo is brought to the accuracy benchmark's working size and seen again through a camera
pitched by a known angle (a rotation homography ``K R K^-1``, exact at every depth, at a 24 mm equivalent focal
length) and, for some twins, rolled too, then cut to the largest box centred on the new camera's axis that holds
nothing from beyond the photo (the twin's centre is its principal point, as a camera's is), and saved as the
benchmark's JPEG. Each twin and each photo as published runs through the pipeline's own path: the proxy decode,
the line measure and the plan under ``real_estate_interiors`` (verticals and keystone corrected).

Truth: the injected pitch and roll. A photo's own verticals are not known (a photo that looks upright may lean by
a degree at its edges: the Packard factory's corner column leans 1.4 deg as published), so the figure is
relative to the photo's own reading: its verticals are the lines through the vanishing point the line measure
reads in the photo as published. The *residual lean*: those lines, at the left edge, the centre and the right
edge of the twin, mapped through the plan's correction (the keystone's homography and the straightening's turn,
when the renderer applies them), their lean from vertical; per twin the largest of the three, 0 when the plan
undoes exactly the pitch and roll injected. Beside postprod: the twin as shot (no correction), and the
straightening alone (the plan's turn by the verticals' lean at the centre, without the keystone). The photos as
published: what the plan does to them.

    python benchmarks/keystone.py --photos DIR [--write] [--jobs 2] [--verbose]

``DIR`` holds the photos under their file names: ``wNNN.png`` (``git show HEAD:wikipedia-photos/NNN.png``) and
``kodimNN.png`` (``git show HEAD:kodak/kodimNN.png``) from ``fetch github:Zelex/images``'s snapshot, and
``opencv_*.jpg`` and ``lomiri_*.jpg`` from the accuracy benchmark's cache (``extra_tuning`` and
``debian_wallpapers``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy_corpus import (  # noqa: E402
    WORK_LONG_EDGE,
    _key,
    load_photo,
    save_jpeg,
    srgb8_to_linear,
    to_srgb8,
)
from benchmarks.straighten_fit import measure  # noqa: E402
from charts.loader import load_chart  # noqa: E402
from pipeline.imaging.lens_profile import find_profile  # noqa: E402
from pipeline.imaging.measure.lines import line_tilts as line_measure_tilts  # noqa: E402
from pipeline.imaging.perspective import Keystone, focal_px, keystone_matrix  # noqa: E402
from pipeline.imaging.render import Adjustments, render_frame, render_rows  # noqa: E402
from pipeline.kernel.records import OperationKind  # noqa: E402
from pipeline.planning.plan import plan_image  # noqa: E402
from pipeline.planning.rules.straighten import KEYSTONE_STABILITY  # noqa: E402

CACHE = Path(os.environ.get("POSTPROD_KEYSTONE_CACHE", Path.home() / ".cache" / "postprod" / "keystone"))
#: Photo file -> split. Held out: Wikimedia Commons featured pictures with verticals (a basilica's nave, a
#: market hall seen from above, an abandoned factory, a chapel, a skyline, a cathedral's altar, a canal's houses,
#: a town from a tower, a recording studio, a glass office building, St Basil's, a piano showroom, a hospital ward,
#: an obelisk). Tuning: the Kodak suite's houses, window, pier and lighthouses, and four photos of the
#: straightening's tuning pool (a building, a street, a hotel, a room).
SOURCES = {
    **{f"w{n:03d}.png": "held_out" for n in (2, 5, 6, 8, 11, 12, 24, 28, 30, 36, 38, 41, 44, 47)},
    **{f"kodim{n:02d}.png": "tuning" for n in (1, 7, 8, 11, 19, 21, 22, 24)},
    **{name: "tuning" for name in ("opencv_building.jpg", "opencv_leuvenA.jpg", "opencv_scenetext05.jpg",
                                   "lomiri_Wine_by_Jakkub_Mede.jpg")},
}
#: Camera pitches injected (degrees, + = up: the verticals meet above the frame) ...
PITCHES_DEG = (-7.0, -5.0, -3.0, -1.5, 1.5, 3.0, 5.0, 7.0)
#: ... each also with these rolls (degrees), so the keystone is read with a turn to undo.
ROLLS_DEG = (0.0, 1.2, -2.0)
#: The injected camera's focal length, 35 mm equivalent.
FOCAL_35MM = 24.0
#: The rotation target of the accuracy benchmark (issue 17): a residual within it counts as right.
WITHIN_DEG = 0.3
CHART = load_chart("real_estate_interiors").chart


@dataclass
class Row:
    source: str
    split: str
    pitch_deg: float
    roll_deg: float
    applied: bool  # the renderer turns (and, with a keystone, undoes the convergence)
    angle_deg: float | None  # the straighten operation's angle (None: none)
    keystone: dict | None  # its keystone parameters when the renderer undoes one (None: none)
    edge_lean: float  # that keystone's lean at the frame's edges (deg; 0: none)
    reading: tuple[float, float]  # the line measure's verticals: lean at the centre, convergence
    stability: float | None  # the convergence's stability (None: read as parallel)
    one_sided: bool  # converging lines on one side of the frame, read as parallel
    lean_stability: float | None  # the lean's stability (the line measure's verticals_stability)
    residual: float  # postprod: the largest |lean| of the photo's verticals in the delivered frame (deg)
    residual_turn_only: float  # the turn alone (the plan's turn without its keystone)
    residual_none: float  # the twin as shot
    residual_if_turned: float | None  # the operation's turn made, whoever it is left to (None: no operation)
    seconds: float


def _pitch(f: float, deg: float) -> np.ndarray:
    """3x3 in centred coordinates: the picture of a camera pitched up by ``deg`` -> the level camera's."""
    t = math.tan(math.radians(deg))
    c = 1.0 / math.sqrt(1.0 + t * t)
    return np.array([[1.0 / c, 0.0, 0.0], [0.0, 1.0, -f * t], [0.0, t / f, 1.0]])


def _roll(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])


def _apply(m: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = m[2, 0] * x + m[2, 1] * y + m[2, 2]
    return (m[0, 0] * x + m[0, 1] * y + m[0, 2]) / w, (m[1, 0] * x + m[1, 1] * y + m[1, 2]) / w


def twin_map(width: int, height: int, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """3x3: the twin's continuous pixel coordinates -> the published photo's (both ``width`` x ``height``).

    The twin is the photo seen by a camera pitched by ``pitch_deg`` and rolled by ``roll_deg``, zoomed about its
    axis until its frame holds nothing from beyond the photo."""
    f = FOCAL_35MM / 36.0 * max(width, height)
    centre = np.array([[1.0, 0.0, width / 2.0], [0.0, 1.0, height / 2.0], [0.0, 0.0, 1.0]])
    view = _pitch(f, pitch_deg) @ _roll(roll_deg)
    corners_x = np.array([-1.0, 1.0, 1.0, -1.0]) * width / 2.0
    corners_y = np.array([-1.0, -1.0, 1.0, 1.0]) * height / 2.0

    def inside(s: float) -> bool:
        x, y = _apply(view, corners_x * s, corners_y * s)
        return bool(np.all(np.abs(x) <= width / 2.0) and np.all(np.abs(y) <= height / 2.0))

    lo, hi = 0.05, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if inside(mid) else (lo, mid)
    zoom = np.diag([lo, lo, 1.0])
    uncentre = np.array([[1.0, 0.0, -width / 2.0], [0.0, 1.0, -height / 2.0], [0.0, 0.0, 1.0]])
    return centre @ view @ zoom @ uncentre


def twin_file(sid: str, path: Path, pitch: float, roll: float) -> Path:
    """The photo seen through the pitched (and rolled) camera, as the benchmark's JPEG (cached by what made it)."""
    out = CACHE / "files" / f"{_key('keystone', sid, path.stat().st_size, pitch, roll, WORK_LONG_EDGE)}.jpg"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        photo = load_photo(path, WORK_LONG_EDGE)
        if pitch or roll:
            h, w = photo.shape[:2]
            m = twin_map(w, h, pitch, roll)
            u, v = np.meshgrid(np.arange(w, dtype=np.float64) + 0.5, np.arange(h, dtype=np.float64) + 0.5)
            sx, sy = _apply(m, u, v)
            lin = srgb8_to_linear(photo).astype(np.float32)
            photo = to_srgb8(np.clip(cv2.remap(lin, (sx - 0.5).astype(np.float32), (sy - 0.5).astype(np.float32),
                                               cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE), 0.0, 1.0))
        save_jpeg(out, photo)
    return out


def residuals(width: int, height: int, pitch: float, roll: float, angle: float, keystone: Keystone | None,
              reference: tuple[float, float] | None) -> float:
    """The largest |lean| (deg) of the photo's verticals at the twin's left edge, centre and right edge once the
    twin is corrected by ``keystone`` and turned by ``angle`` (the straighten operation's, counter-clockwise).

    The photo's verticals are the lines through the vanishing point ``reference`` places (the photo's own reading:
    the lean at its centre and the convergence, as the line measure gives them; upright when None): the figure says
    how well the plan follows the injected pitch and roll, whatever the photo's own verticals do."""
    to_photo = twin_map(width, height, pitch, roll)
    to_twin = np.linalg.inv(to_photo)
    corrected = np.eye(3) if keystone is None else keystone_matrix(keystone, width, height)
    vp = None
    if reference is not None:
        lean, convergence = reference
        a = math.radians(lean)
        d = Keystone(lean, convergence, 1.0).vanishing_distance(width, height)  # + = above the centre
        vp = (math.sin(a), -math.cos(a), 0.0) if d is None else (width / 2.0 + d * math.sin(a),
                                                                 height / 2.0 - d * math.cos(a), 1.0)
    worst = 0.0
    for fx in (0.05, 0.5, 0.95):
        px, py = _apply(to_photo, np.array([fx * width]), np.array([0.5 * height]))
        ux, uy = 0.0, -1.0
        if vp is not None:
            ux, uy = (vp[0], vp[1]) if vp[2] == 0.0 else (vp[0] - px[0], vp[1] - py[0])
            norm = math.hypot(ux, uy) * (1.0 if uy < 0 else -1.0)  # pointing up the frame
            ux, uy = ux / norm, uy / norm
        # Two points of the photo's vertical through it, back in the twin, then in the corrected frame.
        tx, ty = _apply(to_twin, np.array([px[0], px[0] + 0.2 * height * ux]),
                        np.array([py[0], py[0] + 0.2 * height * uy]))
        cx, cy = _apply(corrected, tx, ty)
        lean = math.degrees(math.atan2(cx[1] - cx[0], -(cy[1] - cy[0])))  # + = top to the right
        # The crop turned counter-clockwise by ``angle`` shows its content turned clockwise: a lean grows by it.
        worst = max(worst, abs(lean + angle))
    return worst


def one(job: tuple[str, Path, float, float, tuple[float, float] | None]) -> Row:
    """The plan of one twin (or of the photo as published: pitch and roll 0, no reference yet) and its residuals
    against ``reference``, the published photo's reading (its own for the photo as published)."""
    sid, path, pitch, roll, reference = job
    t0 = time.perf_counter()
    lines, record = measure(twin_file(sid, path, pitch, roll))  # the straightening benchmark's own path
    width, height = int(record.frame.width), int(record.frame.height)
    ops = [o for o in plan_image(record, CHART) if o.kind is OperationKind.STRAIGHTEN]
    op = ops[0] if ops else None
    applied = op is not None and str(op.applied_by) == "renderer"
    angle = float(op.params["angle_deg"]) if applied else 0.0
    ks = op.params.get("keystone") if applied else None
    keystone = None if ks is None else Keystone.from_params(ks)
    turn_only = angle if abs(angle) >= CHART.straighten.tolerance_deg else 0.0
    reading = (lines.verticals_tilt_deg or 0.0, lines.verticals_convergence or 0.0)
    reference = reading if reference is None else reference
    return Row(sid, SOURCES[sid], pitch, roll, applied, None if op is None else float(op.params["angle_deg"]), ks,
               0.0 if keystone is None else keystone.edge_lean_deg(width, height), reading,
               lines.verticals_convergence_stability, bool(lines.verticals_one_sided), lines.verticals_stability,
               residuals(width, height, pitch, roll, angle, keystone, reference),
               residuals(width, height, pitch, roll, turn_only, None, reference),
               residuals(width, height, pitch, roll, 0.0, None, reference),
               None if op is None else residuals(width, height, pitch, roll, float(op.params["angle_deg"]), None,
                                                 reference),
               time.perf_counter() - t0)


def run(photos: Path, jobs: int) -> list[Row]:
    missing = [str(photos / sid) for sid in SOURCES if not (photos / sid).is_file()]
    if missing:
        raise SystemExit(f"photos missing: {', '.join(missing)} (see the module's docstring)")
    with ProcessPoolExecutor(jobs) as pool:
        # The photos as published first: their own readings are the twins' reference.
        published = list(pool.map(one, [(sid, photos / sid, 0.0, 0.0, None) for sid in SOURCES]))
        reading = {r.source: r.reading for r in published}
        work = [(sid, photos / sid, p, r, reading[sid]) for sid in SOURCES for p in PITCHES_DEG for r in ROLLS_DEG]
        return published + list(pool.map(one, work, chunksize=2))


def _share(values: list[float], limit: float = WITHIN_DEG) -> str:
    n = sum(v <= limit for v in values)
    return f"{n} of {len(values)} ({100.0 * n / max(1, len(values)):.0f} %)"


def _stats(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{np.median(values):.2f}"


def table(rows: list[Row]) -> str:
    """The split's figures: the residual lean of the pitched twins, postprod against the turn alone and as shot."""
    twins = [r for r in rows if r.pitch_deg or r.roll_deg]
    level = [r for r in rows if not (r.pitch_deg or r.roll_deg)]
    out = ["| metric | postprod | the turn alone (no keystone) | as shot |", "|---|---|---|---|"]
    picks = (("pitched twins", twins), ("  of them pitched 1.5-3 deg", [r for r in twins if abs(r.pitch_deg) <= 3]),
             ("  of them pitched 5-7 deg", [r for r in twins if abs(r.pitch_deg) >= 5]))
    for name, pick in picks:
        cols = [[r.residual for r in pick], [r.residual_turn_only for r in pick], [r.residual_none for r in pick]]
        out.append(f"| {name}: median residual lean (deg, n={len(pick)}) | "
                   + " | ".join(_stats(c) for c in cols) + " |")
        out.append(f"| {name}: 95th percentile (deg) | " + " | ".join(f"{np.percentile(c, 95):.2f}" for c in cols)
                   + " |")
        out.append(f"| {name}: residual within {WITHIN_DEG} deg | " + " | ".join(_share(c) for c in cols) + " |")
    undone = [r for r in twins if r.keystone is not None]
    out.append(f"| pitched twins whose keystone the renderer undid (n={len(undone)} of {len(twins)}): median "
               f"residual (deg) | {_stats([r.residual for r in undone])} | "
               f"{_stats([r.residual_turn_only for r in undone])} | {_stats([r.residual_none for r in undone])} |")
    out.append(f"| ... of them: residual within {WITHIN_DEG} deg; within 0.5 deg | "
               f"{_share([r.residual for r in undone])}; {_share([r.residual for r in undone], 0.5)} | — | — |")
    out.append(f"| pitched twins left worse than as shot (residual up by more than 0.2 deg) | "
               f"{sum(r.residual > r.residual_none + 0.2 for r in twins)} of {len(twins)} | "
               f"{sum(r.residual_turn_only > r.residual_none + 0.2 for r in twins)} of {len(twins)} | — |")
    sided = [r for r in twins if r.one_sided and r.residual_if_turned is not None]
    out.append(f"| pitched twins whose verticals converge on one side, their turn told, not made (n={len(sided)}): "
               f"made, it would leave them worse than as shot; better (by more than 0.2 deg) | "
               f"{sum(r.residual_if_turned > r.residual_none + 0.2 for r in sided)}; "
               f"{sum(r.residual_if_turned < r.residual_none - 0.2 for r in sided)} | — | — |")
    out.append(f"| photos as published: keystone undone (its lean at the frame's edges, deg: median; largest) | "
               f"{len([r for r in level if r.keystone])} of {len(level)} "
               f"({_stats([r.edge_lean for r in level if r.keystone])}; "
               f"{max([r.edge_lean for r in level if r.keystone], default=0.0):.2f}) | — | — |")
    return "\n".join(out)


def per_source(rows: list[Row]) -> str:
    out = ["| photo | split | twins: median residual (deg) | within 0.3 deg | keystone undone | as published: the "
           "measure's reading (lean at the centre, convergence per long edge); the plan |", "|---|---|---|---|---|---|"]
    for sid, split in SOURCES.items():
        twins = [r for r in rows if r.source == sid and (r.pitch_deg or r.roll_deg)]
        level = next(r for r in rows if r.source == sid and not (r.pitch_deg or r.roll_deg))
        how = "applied" if level.applied else "told"
        plan = "-" if level.angle_deg is None else f"turn {level.angle_deg:+.2f} ({how})"
        if level.keystone is not None:
            plan += f", keystone undone ({level.edge_lean:.2f} deg at the edges)"
        out.append(f"| {Path(sid).stem} | {split} | {_stats([r.residual for r in twins])} | "
                   f"{_share([r.residual for r in twins])} | {sum(r.keystone is not None for r in twins)} | "
                   f"{level.reading[0]:+.2f} deg, {level.reading[1]:+.2f} deg; {plan} |")
    return "\n".join(out)


#: The wide angle the RAW twins are drawn through (the lens benchmark's 10-22 at 10 mm on a 450D: a strong barrel),
#: and the pitches they are seen at (no roll: the figure is the convergence).
RAW_LENS = "EF-S10-22mm f/3.5-4.5 USM"
RAW_PITCHES_DEG = (-6.0, -3.0, 3.0, 6.0)


def expected_reading(width: int, height: int, pitch: float, roll: float, reference: tuple[float, float]
                     ) -> tuple[float, float]:
    """The verticals' (lean at the centre, convergence) the line measure should read in a twin: the vanishing
    point of the photo's own reading (``reference``) seen through the twin's camera."""
    lean, convergence = reference
    a = math.radians(lean)
    d = Keystone(lean, convergence, 1.0).vanishing_distance(width, height)  # + = above the centre
    vp = (np.array([math.sin(a), -math.cos(a), 0.0]) if d is None
          else np.array([width / 2.0 + d * math.sin(a), height / 2.0 - d * math.cos(a), 1.0]))
    vx, vy, vw = np.linalg.inv(twin_map(width, height, pitch, roll)) @ vp
    if abs(vw) < 1e-12 * max(abs(vx), abs(vy)):
        return math.degrees(math.atan2(vx, -vy)), 0.0
    x, y = vx / vw - width / 2.0, vy / vw - height / 2.0
    distance = -y / max(width, height)  # long edges above the centre (the line measure's d)
    return math.degrees(math.atan(x / max(width, height) / distance)), -180.0 / (math.pi * distance)


def raw_rows(photos: Path, readings: dict[str, tuple[float, float]]) -> list[dict]:
    """The landscape photos' twins drawn through :data:`RAW_LENS` as the 450D's DNG, measured as the pipeline does
    (decode, then the measure stage: the lines read with the lens's distortion undone) and as shot (the line
    measure on the proxy the lens drew): each reading's convergence against the expected one."""
    import hashlib
    import tempfile

    import lensfunpy
    from PIL import Image

    from benchmarks.lens_corrections import LENSES, write_shot
    from pipeline.imaging.lens_profile import _lens_of
    from pipeline.kernel.ingest import sniff_format
    from pipeline.kernel.records import SourceTask, WorkItem
    from pipeline.kernel.stage import RunContext
    from stages import REGISTRY

    lens = next(x for x in LENSES if x.lens == RAW_LENS)
    decode, measure_stage = REGISTRY["decode_raw"], REGISTRY["measure_exposure"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for sid, split in SOURCES.items():
            for pitch in RAW_PITCHES_DEG:
                twin = twin_file(sid, photos / sid, pitch, 0.0)
                img = np.asarray(Image.open(twin).convert("RGB"))
                h, w = img.shape[:2]
                if w < h:
                    continue  # a portrait: lensfun's model is of the sensor's own landscape frame
                truth = srgb8_to_linear(img).astype(np.float32) * np.float32(0.8)
                camera, profile_lens = _lens_of(find_profile(lens.make, lens.model, lens.lens, lens.focal_mm,
                                                             lens.aperture).profile)
                mod = lensfunpy.Modifier(profile_lens, camera.crop_factor, w, h)
                mod.initialize(lens.focal_mm, lens.aperture, 1000.0, scale=1.0, pixel_format=np.float32, reverse=True,
                               flags=int(lensfunpy.ModifyFlags.DISTORTION))
                coords = mod.apply_geometry_distortion()
                drawn = cv2.remap(truth, coords[..., 0], coords[..., 1], cv2.INTER_CUBIC,
                                  borderMode=cv2.BORDER_REFLECT)
                dng = write_shot(Path(tmp) / f"{Path(sid).stem}_{pitch:+g}.dng", drawn, lens)
                data = dng.read_bytes()
                fmt, kind = sniff_format(data[:65536], dng.suffix)
                task = SourceTask(path=dng, source_path=dng.name, content_hash=hashlib.sha256(data).hexdigest(),
                                  file_size=len(data), format=fmt, source_kind=kind, seq=1, stem=dng.stem)
                item = WorkItem(task=task, record=task.new_record())
                context = RunContext(shoot_dir=dng.parent, out_dir=Path(tmp) / "out")
                decode(decode.Params(), context).process(item)
                measure_stage(measure_stage.Params(), context).process(item)
                lines = item.record.lines
                as_shot = line_measure_tilts(item.artifacts["proxy"].luma)
                expected = expected_reading(w, h, pitch, 0.0, readings[sid])
                rows.append({"source": sid, "split": split, "pitch": pitch, "expected": expected[1],
                             "undistorted": lines.verticals_convergence or 0.0,
                             "undistorted_steady": lines.verticals_convergence_stability,
                             "as_shot": as_shot.verticals_convergence or 0.0,
                             "as_shot_steady": as_shot.verticals_convergence_stability,
                             "lines_undistorted": bool(lines.lines_undistorted)})
    return rows


def raw_table(rows: list[dict]) -> str:
    """Per split: how far the convergence read off the wide angle's DNG is from the expected one, read with the
    lens's distortion undone and as the lens drew it; all twins (a reading of parallel lines is a convergence of
    0), and those whose reading is steady enough to be undone (:data:`KEYSTONE_STABILITY`)."""
    out = ["| split | DNG twins (lines read undistorted) | convergence within 0.5 deg per long edge of the expected: "
           "undistorted; as the lens drew them | steady readings (would be undone): undistorted n, median error; "
           "as drawn n, median error |", "|---|---|---|---|"]
    for split in ("held_out", "tuning"):
        pick = [r for r in rows if r["split"] == split]
        if not pick:
            continue
        und = [abs(r["undistorted"] - r["expected"]) for r in pick]
        shot = [abs(r["as_shot"] - r["expected"]) for r in pick]
        steady_u = [abs(r["undistorted"] - r["expected"]) for r in pick
                    if (r["undistorted_steady"] or 0.0) >= KEYSTONE_STABILITY]
        steady_s = [abs(r["as_shot"] - r["expected"]) for r in pick
                    if (r["as_shot_steady"] or 0.0) >= KEYSTONE_STABILITY]
        out.append(f"| {split} | {len(pick)} ({sum(r['lines_undistorted'] for r in pick)}) | {_share(und, 0.5)}; "
                   f"{_share(shot, 0.5)} | {len(steady_u)}, {_stats(steady_u)}; {len(steady_s)}, {_stats(steady_s)} |")
    return "\n".join(out)


def timing(repeat: int = 3) -> str:
    """The render's cost of a keystone: a 24 MP master (rendered strip by strip, as the render stage makes one) and a
    2048 px rendition, uncorrected and with a keystone (and with a lens correction too), best of ``repeat``."""
    w, h = 6000, 4000
    rng = np.random.default_rng(0)
    src = (rng.random((h, w, 3), dtype=np.float32) * 0.8).astype(np.float32)
    keystone = Keystone(0.8, -7.0, focal_px(w, h, None, None))
    lens = find_profile("Canon", "EOS 450D", "EF-S10-22mm f/3.5-4.5 USM", 10.0, 4.0).profile
    cases = {"uncorrected": Adjustments(), "keystone": Adjustments(keystone=keystone),
             "lens (distortion, vignetting) + keystone": Adjustments(
                 keystone=keystone, lens=dataclasses.replace(lens, chromatic_aberration=False))}
    out = ["| render | 24 MP master, 16-bit (s) | ratio | 2048 px rendition, 8-bit (s) | ratio |",
           "|---|---|---|---|---|"]
    base: list[float] = []
    for name, adj in cases.items():
        times = []
        for size, bits in (((w, h), 16), ((2048, 1365), 8)):
            best = math.inf
            for _ in range(repeat):
                t0 = time.perf_counter()
                if size == (w, h):
                    for v0 in range(0, h, 512):
                        render_rows(lambda x0, y0, x1, y1: src[y0:y1, x0:x1], w, h, adj, (0, 0, w, h), size,
                                    (v0, min(h, v0 + 512)), "srgb", 0.0, bits)
                else:
                    render_frame(src, w, h, adj, (0, 0, w, h), size, "srgb", 0.5, bits)
                best = min(best, time.perf_counter() - t0)
            times.append(best)
        base = base or times
        out.append(f"| {name} | {times[0]:.2f} | {times[0] / base[0]:.2f}x | {times[1]:.3f} | "
                   f"{times[1] / base[1]:.2f}x |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True, help="folder of the photos (see the docstring)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="write benchmarks/KEYSTONE.md")
    parser.add_argument("--dump", type=Path, help="write every row as JSON lines")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--timing", action="store_true", help="also time the render with and without a keystone")
    parser.add_argument("--raw", action="store_true",
                        help="also read the landscape twins drawn through a 10 mm lens as DNGs (a few minutes)")
    args = parser.parse_args()
    t0 = time.time()
    rows = run(args.photos, args.jobs)
    if args.dump:
        args.dump.write_text("".join(json.dumps(asdict(r)) + "\n" for r in rows))
    if args.verbose:
        for r in rows:
            angle = "-" if r.angle_deg is None else f"{r.angle_deg:+.2f}"
            ks = "-" if r.keystone is None else f"{r.keystone['convergence']:+.2f}"
            print(f"  {r.split:8s} {r.source[:20]:20s} pitch {r.pitch_deg:+4.1f} roll {r.roll_deg:+4.1f} -> {angle} "
                  f"{'applied' if r.applied else '       '} ks {ks}  read {r.reading[1]:+6.2f} "
                  f"stab {'-' if r.stability is None else f'{r.stability:.2f}'}  residual {r.residual:.2f} "
                  f"(turn only {r.residual_turn_only:.2f}, as shot {r.residual_none:.2f})")
    body = ""
    for split, title in (("held_out", "Held-out split (no constant is fitted on it)"),
                         ("tuning", "Tuning split (the keystone's gate is fitted on it)")):
        body += f"## {title}\n\n{table([r for r in rows if r.split == split])}\n\n"
    body += f"## Per photo\n\n{per_source(rows)}\n"
    if args.raw:
        readings = {r.source: r.reading for r in rows if not (r.pitch_deg or r.roll_deg)}
        pitches = ", ".join(f"{p:+g}" for p in RAW_PITCHES_DEG)
        body += ("\n## Through a wide angle (RAW)\n\nThe landscape photos' twins pitched by "
                 f"{pitches} deg drawn through the {RAW_LENS} at 10 mm (lensfun's reverse model of its barrel), "
                 "written as the 450D's DNG: the convergence the pipeline reads (its lines with the lens's distortion "
                 "undone) and the one the line measure reads on the picture as the lens drew it, against the twin's "
                 "expected convergence (the photo's own reading seen through the pitched camera)."
                 f"\n\n{raw_table(raw_rows(args.photos, readings))}\n")
    if args.timing:
        body += f"\n## The render's cost (one process, this machine)\n\n{timing()}\n"
    print(body)
    seconds = time.time() - t0
    print(f"{len(rows)} files in {seconds:.0f} s")
    if args.write:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        head = "\n\n".join(__doc__.split("\n\n")[1:3]).replace("\n", " ")
        text = (f"# Keystone (converging verticals) against known truth\n\nWritten by `benchmarks/keystone.py "
                f"--write`. {head}\n\n- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n"
                f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
                f"{platform.python_version()}\n- postprod: commit {commit}\n- command: `python benchmarks/keystone.py "
                f"--photos DIR --write` ({seconds:.0f} s)\n- twins: {len(SOURCES)} photos x {len(PITCHES_DEG)} "
                f"pitches ({', '.join(f'{p:+g}' for p in PITCHES_DEG)} deg) x {len(ROLLS_DEG)} rolls "
                f"({', '.join(f'{r:+g}' for r in ROLLS_DEG)} deg), and the photos as published\n\n{body}")
        (ROOT / "benchmarks" / "KEYSTONE.md").write_text(text)


if __name__ == "__main__":
    main()
