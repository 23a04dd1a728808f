"""More focus truth from the tuning photos: back-focused, defocused and sharp frames by blur size.

The equipment corpus (:mod:`benchmarks.equipment_corpus`) has two or three
back-focused frames per tuning split, all from the one tuning photo with a
main face: too few to see why a face blurred by a disc of 5-9 px (at the
1500 px proxy) can read 1.5 px. This script renders, from the tuning photos
only (``split_sources(...)['tuning']``; never a held-out photo), through the
corpus's own code (:func:`~benchmarks.equipment_corpus.back_focused`,
:func:`~benchmarks.equipment_corpus.defocused`, the sensor's noise and the DNG
writer, LibRaw's half-size decode, YuNet on the proxy):

* back-focused frames of every tuning photo where YuNet finds a face of at
  least :data:`pipeline.imaging.focus_miss.FACE_MIN_WIDTH` of the width (the
  largest, the one the check judges), at disc radii of 10, 14 and 18
  photosites (the corpus draws 10-18), as the corpus crops them and zoomed
  in (a 70-100 % cut around the face first, so the face sits elsewhere);
* defocused frames of every tuning photo at radii 8, 12 and 16 (the
  corpus draws 8-16), with and without a face;
* sharp frames of every tuning photo (those of :data:`~benchmarks.equipment_corpus.SOFT_ORIGINALS`
  are not scored, as in the corpus).

It prints recall per kind and blur radius and the sharp frames flagged, and
with ``--frames`` every frame's verdict. The proxies and the faces are cached
(``--cache``, float16) so the check can be run again on them in seconds.

    python benchmarks/focus_fit.py [--seed N] [--frames]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("POSTPROD_OFFLINE", "1")

from benchmarks.equipment import _face_detector, _proxy  # noqa: E402
from benchmarks.equipment_corpus import (  # noqa: E402
    FULL,
    SOFT_ORIGINALS,
    TUNING_SPLITS,
    _digitised,
    _exposed,
    _frame_settings,
    _to_sensor,
    _viewed_scene,
    _write_frame,
    back_focused,
    defocused,
    face_in_view,
    split_sources,
)
from pipeline.imaging.color import Proxy, srgb_to_linear  # noqa: E402
from pipeline.imaging.focus_miss import (  # noqa: E402
    FACE_MIN_WIDTH,
    FACE_SECOND_LOOK_LONG_EDGE,
    FocusSubject,
    assess_focus,
)

BACK_FOCUS_RADII = (10.0, 14.0, 18.0)
DEFOCUS_RADII = (8.0, 12.0, 16.0)
#: Renders per photo: back-focused per radius (half of them zoomed in), defocused per radius, sharp.
BACK_FOCUS_RENDERS, DEFOCUS_RENDERS, SHARP_RENDERS = 6, 2, 4
CACHE_VERSION = 1


def _face_of_photo(detector, srgb8: np.ndarray) -> list[float] | None:  # noqa: ANN001
    """The largest face YuNet finds in the photo (x, y, w, h fractions), if the check would judge one that size."""
    from models.face_detectors import detect_on_proxy

    h, w = srgb8.shape[:2]
    dets = [d for d in detect_on_proxy(detector, srgb8, 1.0, 1280) if d.score >= 0.8]
    if not dets:
        return None
    x, y, bw, bh = max((d.box for d in dets), key=lambda b: b[2] * b[3])
    if bw < 2 * FACE_MIN_WIDTH * w:  # room to crop and still be judged
        return None
    return [x / w, y / h, bw / w, bh / h]


def _zoomed(photo: np.ndarray, face: list[float], rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """A random 70-100 % cut of the photo that holds the face, and the face in it."""
    h, w = photo.shape[:2]
    s = rng.uniform(0.7, 1.0)
    cw, ch = int(w * s), int(h * s)
    fx0, fy0, fx1, fy1 = face[0] * w, face[1] * h, (face[0] + face[2]) * w, (face[1] + face[3]) * h
    x0 = int(rng.uniform(max(0.0, fx1 - cw), max(0.0, min(fx0, w - cw)) + 1e-6))
    y0 = int(rng.uniform(max(0.0, fy1 - ch), max(0.0, min(fy0, h - ch)) + 1e-6))
    x0, y0 = min(max(x0, 0), w - cw), min(max(y0, 0), h - ch)
    cut = photo[y0 : y0 + ch, x0 : x0 + cw]
    return cut, [(fx0 - x0) / cw, (fy0 - y0) / ch, face[2] * w / cw, face[3] * h / ch]


def _plan(photos: list[str], faces: dict[str, list[float] | None]) -> list[dict]:
    plan = []
    for name in photos:
        if faces[name] is not None and name not in SOFT_ORIGINALS:
            for r in BACK_FOCUS_RADII:
                plan += [{"kind": "back_focus", "radius": r, "zoom": i % 2 == 1, "source": name}
                         for i in range(BACK_FOCUS_RENDERS)]
        for r in DEFOCUS_RADII:
            plan += [{"kind": "defocus", "radius": r, "zoom": False, "source": name} for _ in range(DEFOCUS_RENDERS)]
        plan += [{"kind": "sharp", "radius": 0.0, "zoom": False, "source": name} for _ in range(SHARP_RENDERS)]
    return plan


def build(data: Path, cache: Path, seed: int, log=print) -> list[dict]:  # noqa: ANN001
    """Render (or reuse) the stress frames; returns their truth, each with its cached proxy's path."""
    folder = cache / f"seed{seed}"
    truth_path = folder / "truth.json"
    if truth_path.exists():
        truth = json.loads(truth_path.read_text())
        if truth.get("version") == CACHE_VERSION:
            return truth["frames"]
    folder.mkdir(parents=True, exist_ok=True)
    detector = _face_detector()
    if detector is None:
        raise RuntimeError("the stress frames need YuNet: set POSTPROD_MODEL_DIR (postprod models fetch)")
    photos = split_sources(data)["tuning"]
    linear, faces = {}, {}
    for p in photos:
        with Image.open(p) as im:
            srgb8 = np.asarray(im.convert("RGB"))
        linear[p.name] = srgb_to_linear(srgb8.astype(np.float32) / 255.0)
        faces[p.name] = _face_of_photo(detector, srgb8)
        log(f"  {p.name}: face {faces[p.name]}")
    rng = np.random.default_rng(seed)
    frames = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, f in enumerate(_plan(list(linear), faces)):
            photo, face = linear[f["source"]], faces[f["source"]]
            if f["zoom"]:
                photo, face = _zoomed(photo, face, rng)
            orientation = int(rng.choice([6, 8])) if rng.random() < 0.25 else 1
            settings = _frame_settings(rng, None)
            viewed, crop, flipped = _viewed_scene(photo, rng, orientation in (6, 8), FULL)
            subject = None
            if f["kind"] == "back_focus":
                subject = face_in_view(face, photo.shape, crop, flipped)
                if subject is None:
                    continue  # the crop cut the face: the corpus would defocus the frame instead
                viewed = back_focused(viewed, subject, f["radius"])
            elif f["kind"] == "defocus":
                viewed = defocused(viewed, f["radius"])
            cfa = _digitised(_exposed(_to_sensor(viewed, orientation), settings["iso"], rng, FULL), rng, FULL)
            dng = Path(tmp) / "frame.dng"
            _write_frame(dng, cfa, make="postprod", model="Bench 6MP", orientation=orientation,
                         captured_at=datetime(2026, 5, 4, 9), iso=settings["iso"],
                         exposure_time=settings["exposure_time"], f_number=settings["f_number"],
                         focal_length=settings["focal_length"], artist="Focus Fit", body_serial="PPT-FOCUS",
                         lens_model="postprod 24-105mm f/4")
            rgb = _proxy(dng)
            from models.face_detectors import detect_on_proxy

            dets = detect_on_proxy(detector, Proxy(rgb=rgb, scale=1.0).srgb8, 1.0, 1280)
            npy = folder / f"{i:04d}.npy"
            np.save(npy, rgb.astype(np.float16))
            frames.append({**f, **settings, "orientation": orientation, "subject": subject, "proxy": npy.name,
                           "faces": [[list(map(float, d.box)), float(d.score)] for d in dets],
                           "scored": f["kind"] != "sharp" or f["source"] not in SOFT_ORIGINALS})
            if i % 10 == 0:
                log(f"  {i} frames, {time.perf_counter() - t0:.0f} s")
    truth_path.write_text(json.dumps({"version": CACHE_VERSION, "seed": seed, "frames": frames}, indent=1))
    return frames


def judge(folder: Path, frames: list[dict], detector=None) -> list[tuple[dict, object]]:  # noqa: ANN001
    """Every frame's :func:`assess_focus` verdict, as benchmarks/equipment.py asks for it (with
    ``detector``, the second look for a face at :data:`FACE_SECOND_LOOK_LONG_EDGE` too)."""
    from models.face_detectors import detect_on_proxy

    out = []
    for f in frames:
        rgb = np.load(folder / f["proxy"]).astype(np.float32)
        h, w = rgb.shape[:2]
        subject = FocusSubject.main_face([(tuple(b), s) for b, s in f["faces"]], w, h)
        if subject is None and detector is not None:
            second = detect_on_proxy(detector, Proxy(rgb=rgb, scale=1.0).srgb8, 1.0, FACE_SECOND_LOOK_LONG_EDGE)
            subject = FocusSubject.main_face([(d.box, d.score) for d in second], w, h)
        out.append((f, assess_focus(rgb, subject, shutter_s=f["exposure_time"], focal_length_mm=f["focal_length"])))
    return out


def corpus_frames(corpus_dir: Path, split: str, cache: Path, log=print) -> tuple[Path, list[dict]]:  # noqa: ANN001
    """A tuning split's scored frames in the form :func:`judge` reads, their proxies and faces cached.

    The split must be built (``python benchmarks/equipment.py --split tuning``);
    only :data:`~benchmarks.equipment_corpus.TUNING_SPLITS` are accepted.
    """
    if split not in TUNING_SPLITS:
        raise ValueError(f"{split} is not a tuning split ({TUNING_SPLITS}): constants are never set on held-out data")
    truth = json.loads((corpus_dir / split / "truth.json").read_text())
    folder = cache / f"corpus-{split}"
    index = folder / "frames.json"
    if index.exists() and json.loads(index.read_text()).get("digest") == truth["digest"]:
        return folder, json.loads(index.read_text())["frames"]
    folder.mkdir(parents=True, exist_ok=True)
    detector = _face_detector()
    from models.face_detectors import detect_on_proxy

    frames = []
    for tb in truth["bodies"]:
        for i, tf in enumerate(tb["frames"]):
            rgb = _proxy(corpus_dir / split / tf["file"])
            dets = detect_on_proxy(detector, Proxy(rgb=rgb, scale=1.0).srgb8, 1.0, 1280) if detector else []
            npy = folder / (tf["file"].replace("/", "_") + ".npy")
            np.save(npy, rgb.astype(np.float16))
            kind = tf["focus_miss"] or "sharp"
            frames.append({"kind": kind, "radius": tf["blur_px"], "zoom": False, "source": tf["source"],
                           "file": tf["file"], "exposure_time": tf["exposure_time"],
                           "focal_length": tf["focal_length"], "proxy": npy.name, "subject": tf["subject"],
                           "faces": [[list(map(float, d.box)), float(d.score)] for d in dets],
                           "scored": bool(tf["focus_miss"]) or tf.get("focus_scored", True)})
        log(f"  {split} {tb['serial']}: cached")
    index.write_text(json.dumps({"digest": truth["digest"], "frames": frames}))
    return folder, frames


def table(verdicts: list[tuple[dict, object]], radii: bool = True) -> str:
    groups: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for f, v in verdicts:
        if not f["scored"]:
            continue
        face = "face" if v.subject is not None and v.subject.source == "face" else "no face"
        if f["kind"] == "back_focus" and face == "face" and f["subject"] is not None:
            # Another face than the one blurred (a group of near-equal faces: the corpus never blurs one).
            u, vv, fw, _ = f["subject"]
            s = v.subject
            if abs(s.x + s.width / 2 - (u + fw / 2)) > fw / 2:
                face = "another face judged"
        key = (f["kind"], f"radius {f['radius']:.0f}" if f["kind"] != "sharp" else "-")
        if radii:
            groups[key].append(v.missed)
        groups[(f["kind"], face)].append(v.missed)
        groups[(f["kind"], "all")].append(v.missed)
    lines = ["| kind | frames | flagged | share |", "|---|---|---|---|"]
    for (kind, sub), flags in sorted(groups.items()):
        lines.append(f"| {kind} {sub} | {len(flags)} | {sum(flags)} | {sum(flags) / len(flags):.0%} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "postprod" / "focus_fit")
    ap.add_argument("--seed", type=int, default=1501)
    ap.add_argument("--frames", action="store_true", help="print every frame's verdict")
    ap.add_argument("--split", choices=TUNING_SPLITS, action="append",
                    help="judge this tuning split of the equipment corpus instead of the stress frames")
    ap.add_argument("--first-look-only", action="store_true",
                    help="judge focus without inspect_equipment's second look for a face (the check before it)")
    ap.add_argument("--corpus-dir", type=Path, default=Path.home() / ".cache" / "postprod" / "equipment")
    args = ap.parse_args()
    os.environ.setdefault("POSTPROD_MODEL_DIR", str(args.data / "models"))
    detector = None if args.first_look_only else _face_detector()
    if args.split:
        verdicts = []
        for split in args.split:
            folder, frames = corpus_frames(args.corpus_dir, split, args.cache)
            got = judge(folder, frames, detector)
            verdicts += got
            print(f"{split}:")
            print(table(got, radii=False))
        print("all tuning splits:")
    else:
        frames = build(args.data, args.cache, args.seed)
        verdicts = judge(args.cache / f"seed{args.seed}", frames, detector)
    if args.frames:
        for f, v in verdicts:
            print(f"{f['proxy']} {f['kind']:10s} r={f['radius']:4.0f} zoom={int(f['zoom'])} {f['source'][:28]:28s} "
                  f"subj={v.subject_blur_px if v.subject_blur_px is None else round(v.subject_blur_px, 2)} "
                  f"best={v.sharpest_blur_px if v.sharpest_blur_px is None else round(v.sharpest_blur_px, 2)} "
                  f"missed={int(v.missed)} {v.detail[:90]}")
    print(table(verdicts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
