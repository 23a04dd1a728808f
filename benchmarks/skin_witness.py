r"""The faces' skin as a second witness of the light: white balance on portraits with casts injected, side by side.

Truth is made: each photo (scikit-image's astronaut, and the portraits the folders ``--photos`` name: for example
serengil/deepface's ``tests/unit/dataset`` and ageitgey/face_recognition's ``examples``) is taken back to its scene
light through the camera-like curve, multiplied by the colour of a light ``m`` mired from D65 (:data:`CASTS`) and
developed again as a JPEG. The photo as published is the neutral truth: its twin's light reads ``m``, and the right
correction is ``-m``. postprod analyses every twin once (the default graph up to the plan, local executor) and plans
it twice under ``base``: with this code's rule, and with the skin left out
(:func:`~pipeline.planning.rules.white_balance.skin_weighed_colour` answering None: the rule of stop 47, where
the skin could only veto a correction). Only twins with a face that is skin as shot count (the weighing needs one).

Printed: the light's reading (the neutrals alone, and weighed with the skin) against the truth; the plan's correction
against the truth (an image left as shot counts as a correction of 0), corrections the wrong way, images sent to a
retoucher for their colour; and for the photos as published (no cast) how many were shifted 20 or 50 mired.
SKIN_MIRED was fitted on 40 of deepface's and face_recognition's 79 sample portraits (every other file by name;
stop 46), so those folders are not a held-out set for it: the accuracy benchmark's held-out split is
(``benchmarks/ACCURACY.md``).

    python benchmarks/skin_witness.py [--photos DIR ...] [--work DIR] [--tints] [--reuse]

Result on 2026-12-03 (main 92cd451; deepface's 64 ``tests/unit/dataset`` files and 13 of face_recognition's
examples, its knn folders' other pictures of the same people left out; 78 photos with the astronaut, 400 of their
468 twins with a face that is skin as shot, 5 minutes on 2 CPUs):

| twins with a cast | n | the neutrals alone (stop 47) | weighed with the skin (now) |
|---|---|---|---|
| light read: median \|error\| (mired) | 324 | 20.0 | 11.6 |
| plan: median \|error\| of the correction (mired) | 324 | 30.0 | 18.9 |
| plan: mean \|error\| (mired) | 324 | 30.1 | 23.0 |
| plan: corrected within 10 mired | 324 | 56 | 98 |
| plan: corrections the wrong way | 324 | 1 | 1 |
| plan: left as shot | 324 | 157 | 120 |
| plan: sent to a retoucher for their colour | 324 | 138 | 95 |
| photos as published: median \|shift\| (mired) | 76 | 0.0 | 0.0 |
| photos as published: shifted 20 mired or more without a colour flag | 76 | 4 | 3 |
| photos as published: shifted 50 mired or more without a colour flag | 76 | 1 | 0 |

With ``--tints`` (2026-12-07; the same portraits: deepface's 64 and face_recognition's 11 examples, 76 photos with
the astronaut; twins also under lights 0.15 log2 green or magenta, :data:`TINTS` on :data:`TINTED_CASTS`), the green
tint: read by the neutrals; with the skin's temperature weighed in (the neutrals' tint kept); with the skin's tint
too (:data:`~pipeline.planning.rules.white_balance.SKIN_TINT` was read on half of these photos, so they are not a
held-out set for it); and the tint a neutral is left with after the plan (a photo left as shot keeps its light's:
most tinted twins, whose temperature is within the chart's tolerance), the plan taking the tint out as far as it is
believed (:func:`~pipeline.planning.rules.white_balance.tint_believed`), without and with the skin's tint. Before
that day the plan took the neutrals' tint out whole: left on a neutral, the untinted twins with a cast read 0.032
(median), 103 of 321 over 0.1 and 36 over 0.2; the tinted twins 455 and 39 of 574.

| green tint (log2; 0.1 is about 0.004 Duv) | n | median \|error\| | 90th percentile | over 0.1 | over 0.2 |
|---|---|---|---|---|---|
| tinted twins: read by the neutrals | 574 | 0.126 | 0.345 | 335 | 153 |
| tinted twins: read, the skin's tint weighed in too | 572 | 0.051 | 0.171 | 158 | 33 |
| tinted twins: left on a neutral by the plan, tint kept | 574 | 0.150 | 0.150 | 440 | 14 |
| tinted twins: left on a neutral by the plan, the skin's tint weighed in | 574 | 0.150 | 0.150 | 429 | 1 |
| untinted twins with a cast: read by the neutrals | 321 | 0.126 | 0.321 | 184 | 81 |
| untinted twins with a cast: read, the skin's tint weighed in too | 320 | 0.056 | 0.176 | 94 | 22 |
| untinted twins with a cast: left on a neutral by the plan, tint kept | 321 | 0.014 | 0.093 | 29 | 0 |
| untinted twins with a cast: left on a neutral by the plan, the skin's tint weighed in | 321 | 0.011 | 0.060 | 4 | 0 |
| photos as published: read by the neutrals | 75 | 0.120 | 0.345 | 42 | 17 |
| photos as published: read, the skin's tint weighed in too | 75 | 0.050 | 0.164 | 20 | 3 |
| photos as published: left on a neutral by the plan, the skin's tint weighed in | 75 | 0.000 | 0.000 | 0 | 0 |

With each frame's tint believed as far as its cues agree on it (``wb_tint_uncertainty``, a5c28e5; the same 1064
twins, analysed again): left on a neutral by the plan, the skin's tint weighed in, the untinted twins with a cast
read 0.010 (median; was 0.011), 90th percentile 0.055 (0.060), over 0.1 6 of 321 (4); the tinted twins over 0.1
436 (429), over 0.2 2 (1) of 574 (most are left as shot, their temperature within the tolerance, and keep the 0.15
injected); the tint kept, untinted over 0.1 29 -> 24, tinted over 0.2 14 -> 12. On portraits the change is within a
few twins either way; on the accuracy benchmark's scenes it is not (``benchmarks/fit_tint_spread.py``).

On photos it was not read on (the shared PASCAL groups and the astronaut, 20 tinted twins:
``tests/test_white_balance_skin.py``) the neutrals read the tint well already, 0.028 off (median), weighed 0.026;
the worst 0.12 -> 0.16 (a group whose three faces read 0.25 more magenta than published skin).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: The casts injected (mired from D65, + = warmer); 0 is the photo as published.
CASTS = (0, -60, -30, 30, 60, 100)
#: With ``--tints``: the green tints injected besides (log2 green over the locus light, + = greener: a light about
#: 0.01 Duv off the locus, as a fluorescent tube or an LED is; :func:`~pipeline.imaging.white_balance.green_tint`),
#: each on these casts.
TINTS = (-0.15, 0.15)
TINTED_CASTS = (0, -30, 30, 60)
#: Photos shorter than this on their long side are left out (a thumbnail's face is a few pixels of colour).
MIN_LONG_EDGE = 300


def light_of(m: float, t: float = 0.0) -> np.ndarray:
    """The light ``m`` mired from D65 along the locus, ``t`` (log2) greener than it."""
    from pipeline.imaging.white_balance import light_rgb

    return light_rgb(m) * np.array([1.0, 2.0**t, 1.0])


def write_cast_twins(srgb: np.ndarray, lights: tuple[tuple[int, float], ...], stem: Path) -> None:
    """Write a photo's twins under ``lights`` (mired from D65, green tint) as JPEGs ``<stem>~<m>~<t>.jpg``: its 8-bit
    sRGB pixels taken back to scene light through the camera-like curve, times the light, developed again."""
    from PIL import Image

    from pipeline.imaging.color import linear_to_srgb, srgb_to_linear
    from pipeline.imaging.measure.metering import inverse_tone_curve, tone_curve

    scene = inverse_tone_curve(srgb_to_linear(srgb.astype(np.float32) / 255.0))
    for m, t in lights:
        jpeg = tone_curve(np.clip(scene * light_of(m, t).astype(np.float32), 0.0, 1.0))
        Image.fromarray((linear_to_srgb(np.clip(jpeg, 0.0, 1.0)) * 255.0 + 0.5).astype(np.uint8)).save(
            stem.with_name(f"{stem.name}~{m:+d}~{t:+.2f}.jpg"), quality=95)


def make_twins(photos: list[Path], shoot: Path, tints: bool = False) -> list[str]:
    """Write each photo's cast twins (:data:`CASTS`, and with ``tints`` :data:`TINTS` on :data:`TINTED_CASTS`) into
    ``shoot``; returns the photos' names used."""
    from PIL import Image
    from skimage import data

    sources = {"skimage-astronaut": data.astronaut()}
    for path in photos:
        img = np.asarray(Image.open(path).convert("RGB"))
        if max(img.shape[:2]) >= MIN_LONG_EDGE:
            sources[f"{path.parent.name}-{path.stem}"] = img
    lights = tuple((m, 0.0) for m in CASTS) + (tuple((m, t) for t in TINTS for m in TINTED_CASTS) if tints else ())
    for name, srgb in sources.items():
        write_cast_twins(srgb, lights, shoot / name)
    return list(sources)


def residual_light(gains: np.ndarray, m: float, t: float) -> tuple[float, float]:
    """(mired, green tint) a neutral under the light ``(m, t)`` reads once ``gains`` are applied: 0, 0 when right."""
    from pipeline.imaging.white_balance import cast_mired, green_tint

    after = light_of(m, t) * np.asarray(gains, dtype=np.float64)
    return cast_mired(after), green_tint(after)


def tint_table(rows: list[tuple]) -> None:
    """The green tint's figures: the light's tint read against the truth (the neutrals alone; weighed with the skin's
    temperature, the neutrals' tint kept, as before the skin's tint was read; weighed with the skin's tint too), and
    the tint a neutral is left with after the plan's correction (a photo left as shot keeps its light's), for the
    twins with a tint, the untinted twins with a cast, and the photos as published (their light: none)."""
    print("\n| green tint (log2; 0.1 is about 0.004 Duv) | n | median \\|error\\| | 90th percentile | over 0.1 |"
          " over 0.2 |\n|---|---|---|---|---|---|")
    for label, part in (("tinted twins", [r for r in rows if r[1] != 0.0]),
                        ("untinted twins with a cast", [r for r in rows if r[1] == 0.0 and r[0] != 0]),
                        ("photos as published", [r for r in rows if r[1] == 0.0 and r[0] == 0])):
        for what, errs in (("read by the neutrals", [abs(r[2] - r[1]) for r in part if r[2] is not None]),
                           ("read, the skin's temperature weighed in (tint kept)",
                            [abs(r[3] - r[1]) for r in part if r[3] is not None]),
                           ("read, the skin's tint weighed in too",
                            [abs(r[4] - r[1]) for r in part if r[4] is not None]),
                           ("left on a neutral by the plan, tint kept", [abs(r[5]) for r in part]),
                           ("left on a neutral by the plan, the skin's tint weighed in", [abs(r[6]) for r in part])):
            if errs:
                print(f"| {label}: {what} | {len(errs)} | {np.median(errs):.3f} | {np.percentile(errs, 90):.3f} | "
                      f"{sum(e > 0.1 for e in errs)} | {sum(e > 0.2 for e in errs)} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, action="append", default=[], help="a folder of portraits (repeatable)")
    parser.add_argument("--work", type=Path, default=None, help="where the twins and the analysis go (kept)")
    parser.add_argument("--tints", action="store_true", help="also twins under lights off the locus (TINTS), and "
                        "the green tint's table")
    parser.add_argument("--reuse", action="store_true", help="the twins and analysis already in --work")
    args = parser.parse_args(argv)
    from benchmarks.accuracy import analysis_graph
    from charts.loader import load_chart
    from pipeline.kernel.records import OperationKind
    from pipeline.kernel.run import RunSettings, process_shoot
    from pipeline.planning import plan as plan_module
    from pipeline.planning.rules import white_balance as wb_rule

    work = args.work or Path(tempfile.mkdtemp(prefix="postprod-skin-"))
    if not (args.reuse and (work / "shoot").is_dir()):
        shutil.rmtree(work / "shoot", ignore_errors=True)
        (work / "shoot").mkdir(parents=True)
        photos = sorted(p for d in args.photos for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        make_twins(photos, work / "shoot", args.tints)
    names = sorted({p.name.split("~", 1)[0] for p in (work / "shoot").iterdir()})
    result = process_shoot(RunSettings(shoot_dir=work / "shoot", out_dir=work / "out", executor="local",
                                       force=not args.reuse, graph_path=analysis_graph(work / "graph.yaml"),
                                       chart="base"))
    base = load_chart("base").chart

    def planned(record) -> tuple[float, bool, list[float]]:  # noqa: ANN001
        ops = plan_module.plan_image(record, base)
        op = next((o for o in ops if o.kind is OperationKind.WHITE_BALANCE), None)
        flagged = any(o.kind is OperationKind.FLAG and o.params.get("check") in ("white_balance", "skin") for o in ops)
        return (0.0 if op is None else float(op.params["mired_shift"])), flagged, \
            [1.0, 1.0, 1.0] if op is None else list(op.params["gains"])

    rows, tints = [], []
    for record in result.records:
        if record.status.value != "ok" or record.colour.cast_mired is None:
            continue
        light = record.source_path.rsplit(".", 1)[0].split("~")[1:]
        m, t = int(light[0]), float(light[1]) if len(light) > 1 else 0.0
        skin = wb_rule.skin_mired(record)
        if skin is None:
            continue
        weighed = wb_rule.skin_weighed_colour(record, skin, wb_rule.skin_tint(record))
        now = planned(record)
        with mock.patch.object(wb_rule, "skin_weighed_colour", lambda *_: None):
            before = planned(record)
        with mock.patch.object(wb_rule, "skin_tint", lambda *_, **__: None):
            tint_kept = planned(record)
            weighed_kept = wb_rule.skin_weighed_colour(record, skin, None)
        if t == 0.0:
            rows.append((m, record.colour.cast_mired, None if weighed is None else weighed.cast_mired, before, now))
        tints.append((m, t, record.colour.tint, None if weighed_kept is None else weighed_kept.tint,
                      None if weighed is None else weighed.tint, residual_light(tint_kept[2], m, t)[1],
                      residual_light(now[2], m, t)[1]))
    print(f"skin witness: {len(names)} photos, {len(rows)} untinted twins with skin as shot (of "
          f"{len(names) * len(CASTS)}); work folder {work}")
    cast = [r for r in rows if r[0] != 0]
    print("\n| twins with a cast | n | the neutrals alone (stop 47) | weighed with the skin (now) |\n|---|---|---|---|")
    read_before = [abs(r[1] - r[0]) for r in cast]
    read_now = [abs((r[2] if r[2] is not None else r[1]) - r[0]) for r in cast]
    print(f"| light read: median \\|error\\| (mired) | {len(cast)} | {np.median(read_before):.1f} | {np.median(read_now):.1f} |")
    err_b = [abs(r[3][0] + r[0]) for r in cast]
    err_n = [abs(r[4][0] + r[0]) for r in cast]
    print(f"| plan: median \\|error\\| of the correction (mired) | {len(cast)} | {np.median(err_b):.1f} | "
          f"{np.median(err_n):.1f} |")
    print(f"| plan: mean \\|error\\| (mired) | {len(cast)} | {np.mean(err_b):.1f} | {np.mean(err_n):.1f} |")
    print(f"| plan: corrected within 10 mired | {len(cast)} | {sum(e <= 10 for e in err_b)} | "
          f"{sum(e <= 10 for e in err_n)} |")
    print(f"| plan: corrections the wrong way | {len(cast)} | {sum(r[3][0] * r[0] > 0 for r in cast)} | "
          f"{sum(r[4][0] * r[0] > 0 for r in cast)} |")
    print(f"| plan: left as shot | {len(cast)} | {sum(r[3][0] == 0 for r in cast)} | {sum(r[4][0] == 0 for r in cast)} |")
    print(f"| plan: sent to a retoucher for their colour | {len(cast)} | {sum(r[3][1] for r in cast)} | "
          f"{sum(r[4][1] for r in cast)} |")
    pub = [r for r in rows if r[0] == 0]
    print(f"| photos as published: median \\|shift\\| (mired) | {len(pub)} | {np.median([abs(r[3][0]) for r in pub]):.1f} "
          f"| {np.median([abs(r[4][0]) for r in pub]):.1f} |")
    for t in (20, 50):
        print(f"| photos as published: shifted {t} mired or more without a colour flag | {len(pub)} | "
              f"{sum(abs(r[3][0]) >= t and not r[3][1] for r in pub)} | {sum(abs(r[4][0]) >= t and not r[4][1] for r in pub)} |")
    tint_table(tints)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
