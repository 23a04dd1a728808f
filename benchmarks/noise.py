"""Noise reduction against clean twins: sensor noise put into the mosaic of a DNG, taken out again.

The truth is a clean picture: each photo of the accuracy benchmark's pool (its scenes and faces: the shared photos,
the Python packages' samples, Debian's wallpaper photographs), at :data:`LONG_EDGE` px, is photographed by a
synthetic camera (:func:`pipeline.imaging.dng.write_dng_from_linear_rgb`'s sensor: its light as a 14-bit Bayer
mosaic) twice: clean, and with a sensor's noise put into every photosite, Poisson shot noise of variance
``lambda * x`` at level ``x`` (1 = white) and Gaussian read noise, the read noise's variance tied to the shot
noise's as Brooks et al. fitted it on real cameras ("Unprocessing Images for Learned Raw Denoising", CVPR 2019:
``log read = 2.18 log lambda + 1.20``). :data:`NOISE` gives the levels (light, medium and heavy: about what a full
frame camera shows at ISO 800, 3200 and 12800) and the clean twin itself (what noise reduction does to a picture
that has none). The same ``(source, level)`` always gets the same noise.

Each system develops every twin twice, with its noise reduction and without, and each delivery is compared with
that system's own delivery of the clean twin without noise reduction (PSNR of the 8-bit sRGB pictures, JPEG 98
4:4:4 from both): the gain in dB is how much nearer the clean picture its noise reduction brings the noisy one.

- postprod as a user runs it (local executor, the default graph), under a chart that leaves the picture as shot
  (no exposure or white-balance correction, nothing turned or cropped: the comparison is the noise alone) with one
  full-size rendition; noise reduction on (the chart's ``noise``, default strengths) and off (``noise: {luminance:
  0, colour: 0}``);
- RawTherapee 5.9 with its "Standard Film Curve - ISO Low" profile, with and without the noise reduction its "ISO
  High" profile sets (luminance 50 with a median, automatic colour noise: :data:`RT_DENOISE`; the ISO High
  profile's other changes, LMMSE demosaic and no capture sharpening, left out, so the two differ by the noise
  reduction alone).

``--fit`` sweeps the renderer's strengths (:data:`pipeline.imaging.denoise.LUMA_K`, ``CHROMA_LIMIT``) on the tuning
split alone, at the function level (LibRaw's decode as the renderer's, the noise read and reduced, sRGB), and
prints the table the constants were chosen from. The held-out split is never read by ``--fit``.

    python benchmarks/noise.py [--fit] [--quick] [--write]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import accuracy_baselines as bl  # noqa: E402
from benchmarks.accuracy import DEFAULT_CACHE, machine  # noqa: E402
from benchmarks.accuracy_corpus import (assign_splits, build_pool, decode_dng_linear, load_photo,  # noqa: E402
                                       srgb8_to_linear)
from pipeline.imaging import denoise  # noqa: E402
from pipeline.imaging.dng import _synthetic_capture, write_dng  # noqa: E402
from pipeline.planning.rules.noise import NOISE_MARGIN  # noqa: E402

REPORT = ROOT / "benchmarks" / "NOISE.md"
LONG_EDGE = 1600
#: Shot-noise variance at white (``lambda``) and the nominal ISO written into the twin's EXIF.
NOISE = (("clean", 0.0, 100), ("light", 0.0005, 800), ("medium", 0.002, 3200), ("heavy", 0.008, 12800))
WHITE_BALANCE = (2.0, 1.0, 1.5)


def noisy_twin(linear: np.ndarray, lam: float, iso: int, seed: int, path: Path) -> None:
    """A DNG of ``linear`` through the synthetic camera, with shot noise of variance ``lam * x`` and read noise."""
    cfa, tags = _synthetic_capture(np.clip(linear, 0.0, 1.0), WHITE_BALANCE, "RGGB", 14, None)
    if lam > 0.0:
        rng = np.random.default_rng(seed)
        black, white = tags["black_level"], tags["white_level"]
        x = (cfa.astype(np.float64) - black) / (white - black)
        read = math.exp(2.18 * math.log(lam) + 1.20)
        x = rng.poisson(x / lam) * lam + rng.normal(0.0, math.sqrt(read), x.shape)
        cfa = np.clip(np.rint(black + x * (white - black)), 0, white).astype(np.uint16)
    tmp = path.with_name(f".{path.name}.tmp")
    write_dng(tmp, cfa, pattern="RGGB", make="postprod-noise", model="noise twin", iso=iso, **tags)
    os.replace(tmp, path)


def corpus(work: Path, quick: bool) -> list[dict]:
    """The twins: one clean and three noisy DNGs a source, with its split."""
    pool = [s for s in build_pool(Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data")),
                                  DEFAULT_CACHE, log=lambda _: None) if s.group in ("scenes", "faces")]
    splits = assign_splits(pool)
    if quick:
        pool = pool[::6]
    items = []
    for n, src in enumerate(pool):
        linear = srgb8_to_linear(load_photo(src.path, LONG_EDGE))
        seed = int.from_bytes(src.id.encode()[:8].ljust(8, b"_"), "little")
        for label, lam, iso in NOISE:
            stem = f"{splits[src.id][0]}{n:03d}_{label}"
            path = work / "twins" / f"{stem}.dng"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.is_file():
                noisy_twin(linear, lam, iso, seed + iso, path)
            items.append({"source": src.id, "split": splits[src.id], "level": label, "path": path, "stem": stem})
    return items


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _srgb8(linear: np.ndarray) -> np.ndarray:
    from benchmarks.accuracy_corpus import to_srgb8

    return to_srgb8(np.clip(linear, 0.0, 1.0))


def fit(items: list[dict]) -> list[str]:
    """``--fit``: PSNR gains over the tuning split's twins for a grid of strengths (function level): the table's
    lines. The first row is the constants' first choice (a fixed strength), the last the one kept."""
    # (luma k at light, at heavy noise; chroma limit at light, at heavy): the schedules of denoise.scheduled
    grid = [((1.5, 1.5), (4.0, 4.0)), ((1.5, 2.5), (4.0, 4.0)), ((1.5, 2.5), (4.0, 12.0)), ((1.5, 3.0), (4.0, 12.0)),
            ((1.5, 2.5), (4.0, 30.0)), ((1.25, 2.5), (4.0, 12.0))]
    gains: dict[tuple, list[float]] = {}
    tuning = [i for i in items if i["split"] == "tuning"]
    clean = {i["source"]: _srgb8(decode_dng_linear(i["path"])) for i in tuning if i["level"] == "clean"}
    for i in tuning:
        noisy = decode_dng_linear(i["path"]).astype(np.float32)
        base = psnr(_srgb8(noisy), clean[i["source"]])
        levels = denoise.noise_levels(noisy)
        for lk, cl in grid:
            out = noisy.copy()
            if levels is not None:
                saved = denoise.LUMA_K, denoise.CHROMA_LIMIT
                denoise.LUMA_K, denoise.CHROMA_LIMIT = lk, cl
                try:
                    denoise.reduce_noise(out, levels)
                finally:
                    denoise.LUMA_K, denoise.CHROMA_LIMIT = saved
            # The clean twin: how near it stays to itself (99: untouched); the noisy ones: the gain.
            after = psnr(_srgb8(out), clean[i["source"]])
            gains.setdefault((i["level"], lk, cl), []).append(after if i["level"] == "clean" else after - base)
        print(f"{i['stem']} {i['level']}: levels {levels}", file=sys.stderr, flush=True)
    lines = ["| luma k (light, heavy) | chroma limit (light, heavy) | clean: PSNR to itself, median (min) | "
             + " | ".join(f"{lv}: gain, median (min)" for lv, _, _ in NOISE[1:]) + " |",
             "|---|---|" + "---|" * len(NOISE)]
    for lk, cl in grid:
        cells = [f"{statistics.median(gains[(lv, lk, cl)]):+.2f} ({min(gains[(lv, lk, cl)]):+.2f})"
                 for lv, _, _ in NOISE]
        lines.append(f"| {lk} | {cl} | " + " | ".join(cells) + " |")
    return lines


def fit_margin(items: list[dict]) -> list[str]:
    """``--fit``: PSNR over the tuning split's twins for a sweep of :data:`pipeline.planning.rules.noise.NOISE_MARGIN`
    (function level): each twin's reading (:func:`~pipeline.imaging.denoise.picture_noise`, as the analysis reads
    the proxy) taken for noise up to the margin times what the tuning twins read, over the square root of their
    ISO, at the median (one camera: :func:`~pipeline.planning.rules.noise.noise_shares`), where its brightness reads
    above that. The table's lines; the objective, declared before the sweep: the smallest margin of 1.5 to 3 whose
    median gain at every noise level stays within 0.1 dB of the whole reading's (no margin), the clean twins moved
    least."""
    tuning = [i for i in items if i["split"] == "tuning"]
    iso = {label: value for label, _, value in NOISE}
    decoded = {i["stem"]: decode_dng_linear(i["path"]).astype(np.float32) for i in tuning}
    read = {i["stem"]: denoise.picture_noise(decoded[i["stem"]]) for i in tuning}
    per_iso = [[v / math.sqrt(iso[i["level"]]) for v in (r.luma, r.red_green, r.blue_green)]
               for i in tuning if (r := read[i["stem"]]) is not None]
    camera = [statistics.median(column) for column in zip(*per_iso)]
    clean = {i["source"]: _srgb8(decoded[i["stem"]]) for i in tuning if i["level"] == "clean"}
    margins = (None, 1.5, 1.75, 2.0, 2.5, 3.0)
    got: dict[tuple, list[float]] = {}
    for i in tuning:
        noisy, levels = decoded[i["stem"]], read[i["stem"]]
        base = psnr(_srgb8(noisy), clean[i["source"]])
        for margin in margins:
            out = noisy.copy()
            if levels is not None:
                root = math.sqrt(iso[i["level"]])
                values = (levels.luma, levels.red_green, levels.blue_green)
                # As the rule caps them: every reading, where the brightness's is above the margin.
                texture = margin is not None and values[0] > margin * camera[0] * root
                capped = denoise.NoiseLevels(*(min(v, margin * c * root) if texture else v  # type: ignore[operator]
                                               for v, c in zip(values, camera)))
                denoise.reduce_noise(out, capped)
            after = psnr(_srgb8(out), clean[i["source"]])
            got.setdefault((i["level"], margin), []).append(after if i["level"] == "clean" else after - base)
    lines = ["| margin | clean: PSNR to itself, median (min; twins moved) | "
             + " | ".join(f"{lv}: gain, median (min)" for lv, _, _ in NOISE[1:]) + " |",
             "|---|---|" + "---|" * (len(NOISE) - 1)]
    for margin in margins:
        c = got[("clean", margin)]
        cells = [f"{statistics.median(c):.2f} ({min(c):.2f}; {sum(v < 99.0 for v in c)} of {len(c)})"]
        cells += [f"{statistics.median(got[(lv, margin)]):+.3f} ({min(got[(lv, margin)]):+.2f})"
                  for lv, _, _ in NOISE[1:]]
        lines.append(f"| {'none (the whole reading)' if margin is None else margin} | " + " | ".join(cells) + " |")
    return lines


#: The chart the twins are developed under: the picture as shot (no exposure or colour correction, nothing turned),
#: one full-size JPEG 98, 4:4:4; noise reduction as the chart ``base`` has it, or turned off.
CHART = """schema_version: 2
extends: base
exposure: {max_correction_ev: 0}
white_balance: {policy: as_shot}
straighten: {horizon: false}
faces: {brighten: false, red_eye: false}
%s
renditions:
  full: {format: jpeg, quality: 98}
"""
RT_PROFILE = "/usr/share/rawtherapee/profiles/Standard Film Curve - ISO Low.pp3"
#: RawTherapee's noise reduction as its "ISO High" profile sets it (luminance 50 with a median, automatic colour
#: noise), put on the "ISO Low" profile alone: the same demosaic and sharpening with and without it.
RT_DENOISE = """[Directional Pyramid Denoising]
Enabled=true
Enhance=false
Median=true
Luma=50
Ldetail=60
Chroma=0
Method=Lab
LMethod=SLI
CMethod=AUT
C2Method=AUTO
SMethod=shal
MedMethod=55
RGBMethod=soft
MethodMed=Lpab
Redchro=0
Bluechro=0
Gamma=1.7
Passes=1
LCurve=0;
CCCurve=0;
"""


def postprod_runs(items: list[dict], work: Path) -> dict[tuple[str, str], np.ndarray]:
    """(stem, on|off) -> postprod's full-size delivery of each twin, noise reduction on and off."""
    from pipeline.kernel.run import RunSettings, process_shoot

    shoot = items[0]["path"].parent  # the twins' folder
    out: dict[tuple[str, str], np.ndarray] = {}
    for mode, noise in (("on", ""), ("off", "noise: {luminance: 0, colour: 0}")):
        chart = work / f"chart-{mode}.yaml"
        chart.write_text(CHART % noise)
        dest = work / f"postprod-{mode}"
        t0 = time.perf_counter()
        result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=dest, executor="local", chart=str(chart)))
        print(f"postprod {mode}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        if result.failed:
            raise SystemExit(f"postprod ({mode}): {result.failed} twin(s) failed")
        for i in items:
            out[(i["stem"], mode)] = cv2.imread(str(dest / "exports" / shoot.name / "full" / f"{i['stem']}.jpg"))
    return out


def rawtherapee_runs(items: list[dict], work: Path) -> dict[tuple[str, str], np.ndarray]:
    """(stem, on|off) -> RawTherapee's delivery of each twin with its "ISO Low" profile, with (on) and without (off)
    the noise reduction of its "ISO High" profile (:data:`RT_DENOISE`)."""
    import subprocess

    denoise_pp3 = work / "denoise.pp3"
    denoise_pp3.write_text(RT_DENOISE)
    out: dict[tuple[str, str], np.ndarray] = {}
    for mode, extra in (("off", []), ("on", ["-p", str(denoise_pp3)])):
        dest = work / f"rawtherapee-{mode}"
        dest.mkdir(exist_ok=True)
        todo = [i for i in items if not (dest / f"{i['stem']}.jpg").is_file()]
        for k in range(0, len(todo), 100):
            cmd = ["rawtherapee-cli", "-q", "-Y", "-p", RT_PROFILE, *extra, "-o", str(dest),
                   "-j98", "-js3", "-c", *[str(i["path"]) for i in todo[k:k + 100]]]
            got = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            if got.returncode != 0:
                raise SystemExit(f"rawtherapee-cli failed: {got.stderr.strip()[-300:]}")
        for i in items:
            out[(i["stem"], mode)] = cv2.imread(str(dest / f"{i['stem']}.jpg"))
    return out


def judge(items: list[dict], runs: dict[tuple[str, str], np.ndarray]) -> dict[tuple[str, str], dict[str, list[float]]]:
    """(split, level) -> {"off": PSNRs, "on": PSNRs} against the system's clean twin developed without reduction."""
    clean = {i["source"]: runs[(i["stem"], "off")] for i in items if i["level"] == "clean"}
    got: dict[tuple[str, str], dict[str, list[float]]] = {}
    for i in items:
        cell = got.setdefault((i["split"], i["level"]), {"off": [], "on": [], "source": []})
        cell["source"].append(i["source"])
        for mode in ("off", "on"):
            cell[mode].append(psnr(runs[(i["stem"], mode)], clean[i["source"]]))
    return got


def timing() -> list[str]:
    """Seconds of noise reduction (reading and reducing) on a 2 MP and a 24 MP raster, against the rest of a render."""
    from pipeline.imaging.render import Adjustments, NoiseReduction, render_frame

    rng = np.random.default_rng(0)
    rows = ["| raster | render without (s) | render with noise reduction (s) | ratio |", "|---|---|---|---|"]
    for w, h in ((1800, 1200), (6000, 4000)):
        base = cv2.resize(rng.random((h // 16, w // 16, 3), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        noisy = np.clip(base * 0.5 + rng.normal(0, 0.02, base.shape).astype(np.float32), 0, 1).astype(np.float32)
        frame = (0.0, 0.0, float(w), float(h))
        times = {}
        for label, adj in (("off", Adjustments()), ("on", Adjustments(noise=NoiseReduction(1.0, 1.0)))):
            best = math.inf
            for _ in range(2):
                t0 = time.perf_counter()
                render_frame(noisy, w, h, adj, frame, (w, h), "srgb", 0.5, 8)
                best = min(best, time.perf_counter() - t0)
            times[label] = best
        rows.append(f"| {w} x {h} ({w * h / 1e6:.0f} MP) | {times['off']:.2f} | {times['on']:.2f} | "
                    f"{times['on'] / times['off']:.2f} |")
    return rows


def table(got: dict[str, dict], splits: tuple[str, ...]) -> list[str]:
    lines = []
    for split in splits:
        title = "Held-out split (no constant was chosen on it)" if split == "held_out" else "Tuning split"
        lines += ["", f"### {title}",
                  "", "| noise | n | postprod: off -> on (dB) | postprod gain | RawTherapee: off -> on (dB) "
                  "| RawTherapee gain |", "|---|---|---|---|---|---|"]
        for level, _, iso in NOISE:
            cells = []
            n = 0
            for system in ("postprod", "rawtherapee"):
                cell = got[system].get((split, level))
                if cell is None:
                    cells += ["—", "—"]
                    continue
                n = len(cell["on"])
                off, on = statistics.median(cell["off"]), statistics.median(cell["on"])
                if level == "clean":  # against itself: how near the reduction leaves a picture with none put in
                    worst = int(np.argmin(cell["on"]))
                    cells += [f"{off:.0f} -> {on:.2f} (worst {cell['on'][worst]:.2f}, {cell['source'][worst]})", "—"]
                    continue
                gains = [b - a for a, b in zip(cell["off"], cell["on"])]
                worst = int(np.argmin(gains))
                cells += [f"{off:.2f} -> {on:.2f}",
                          f"{statistics.median(gains):+.2f} (worst {gains[worst]:+.2f}, {cell['source'][worst]})"]
            name = "clean twin (no noise put in)" if level == "clean" else f"{level} (about ISO {iso})"
            lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="sweep the strengths on the tuning split (function level)")
    parser.add_argument("--quick", action="store_true", help="every sixth source")
    parser.add_argument("--work", type=Path, default=None, help="keep the twins and deliveries here")
    parser.add_argument("--write", action="store_true", help=f"write {REPORT.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        items = corpus(work, args.quick)
        if args.fit:
            info = machine()
            lines = ["# Noise reduction: the strengths chosen on the tuning split", "",
                     "Written by `benchmarks/noise.py --fit` (its docstring says how): each row a schedule of the "
                     "brightness's threshold and the colour's limit (`pipeline/imaging/denoise.py`: LUMA_K and "
                     "CHROMA_LIMIT, at a light and at a heavy noise, log-linear between); the median PSNR gain over "
                     "the tuning split's twins and the worst. The held-out split is never read here "
                     "([NOISE.md](NOISE.md) reports it).", "", f"- date: {info['date']}",
                     f"- postprod: commit {info['postprod commit']}",
                     f"- tuning twins: {sum(i['split'] == 'tuning' for i in items)}", ""] + fit(items)
            lines += ["", "### The margin a reading is taken for noise up to (a camera's frames read alike)", "",
                      "`pipeline/planning/rules/noise.py`: NOISE_MARGIN, the strengths above as kept. Objective, "
                      "declared before the sweep: the smallest margin of 1.5 to 3 whose median gain at every noise "
                      "level stays within 0.1 dB of the whole reading's, the clean twins moved least. The tuning twins are one "
                      "camera's frames at ISO 100 (clean), 800, 3200 and 12800.", ""] + fit_margin(items)
            text = "\n".join(lines) + "\n"
            print(text)
            if args.write:
                (REPORT.parent / "NOISE_FIT.md").write_text(text)
            return 0
        got = {"postprod": judge(items, postprod_runs(items, work))}
        if bl.rawtherapee_version():
            got["rawtherapee"] = judge(items, rawtherapee_runs(items, work))
        else:
            got["rawtherapee"] = {}
            print("rawtherapee-cli not found: its columns are left empty (apt-get install rawtherapee)",
                  file=sys.stderr)
    info = machine()
    counts = {s: len({i["source"] for i in items if i["split"] == s}) for s in ("tuning", "held_out")}
    lines = ["# Noise reduction against clean twins", "",
             "Written by `benchmarks/noise.py` (see its docstring for the method). Each row: the median PSNR (dB) of "
             "the noisy twins' deliveries against the same system's delivery of the clean twin without noise "
             "reduction, without and with the system's noise reduction, and the median of each twin's gain (its "
             "worst). On the clean twin, the first figure is 99 (the delivery itself): the second says how far "
             "noise reduction moves a picture with no noise put in.", "",
             f"- date: {info['date']}",
             f"- machine: {info['cpu']}, Python {info['python']}; RawTherapee {info['rawtherapee']}",
             f"- postprod: commit {info['postprod commit']}",
             f"- command: `python benchmarks/noise.py{' --quick' if args.quick else ''}"
             f"{' --write' if args.write else ''}`",
             f"- sources: {counts['tuning']} tuning, {counts['held_out']} held out (the accuracy benchmark's split), "
             f"at {LONG_EDGE} px; {len(NOISE)} twins each"]
    lines += table(got, ("held_out", "tuning"))
    lines += ["", "The worst twins (named) are pictures of fine texture nearly everywhere (by eye, the held-out worst "
              "is a field of moss on black): no flat part holds the noise alone, and their texture reads as noise. "
              "postprod develops the 240 twins as one shoot of one camera (ISO 100 clean, 800, 3200, 12800), and a "
              f"frame reading more than {NOISE_MARGIN:g} times what the camera's frames read at its ISO has only that "
              "share of "
              "its reading taken for noise, its brightness's and its colour's (`pipeline/planning/rules/noise.py`, "
              "`read_shares`): the moss's clean twin is moved little and its noisy twins lose less of their texture. "
              "A frame whose colour alone reads above the camera's (a colourful scene: a dark channel's read noise) "
              "keeps its whole reading. "
              "RawTherapee's reduction (luminance 50 with a median) smooths every picture, a clean one too."]
    lines += ["", "### Time", "", "`render_frame` on a raster with noise of 0.02, sRGB, 8-bit, sharpened (best of "
              "two; this machine, one process):", ""] + timing()
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        REPORT.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
