"""Fit the exposure meter's constants on the accuracy corpus's tuning split, and print them.

The constants of :mod:`pipeline.imaging.measure.metering` were made by this
script; it reads only items of the tuning split (the corpus manifest says which),
so the held-out split stays a test of them (``benchmarks/accuracy.py``).

What it fits, each on what:

- **the camera-like tone curve** of rendered sources: a natural cubic spline on
  sRGB-encoded values, through fixed knots, whose values are fitted by least
  squares to pixel pairs (the largest channel of each RAW twin as postprod
  decodes it, against the same pixel of that twin developed to JPEG), on every
  tuning exposure twin and 0 EV twin;
- **the zero point of a well-exposed scene**: the mean and spread of log2 of the
  median scene-linear luminance of the tuning 0 EV RAW twins (the photos as
  published, and camera RAWs as shot), and of their 99.9th percentile, fitted
  as a normal distribution censored at the clipping level (a clipped 99.9th
  percentile only says "at least this bright"); the mean of the 99.9th
  percentile of their brightest channel likewise (``CHANNEL_WHITE_LOG2``, the
  meter's floor for saturated colours);
- **a well-exposed face**: the mean, over the tuning 0 EV RAW twins where the
  detector finds faces that count under the base chart, of the median log2
  scene-linear luminance of the centres of the faces the plan keys on (those in
  the brightest light, :func:`pipeline.planning.rules.exposure.key_faces`): the
  same boxes and the same choice of faces as the plan's; and its spread;
- **how far the frame meter strays** on those well-exposed photos (the rms of
  its readings): with the faces' spread, the weights of the two readings when a
  plan keys on both.

``benchmarks/fit_gates.py`` repeats the ``FRAME_SPREAD_EV`` fit with the extra
tuning pool (photos no split of the benchmark contains), left one source out.

    python benchmarks/fit_exposure.py [--cache DIR]

The corpus must exist (``python benchmarks/accuracy.py`` builds it).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import DEFAULT_CACHE  # noqa: E402
from benchmarks.accuracy_corpus import source_task  # noqa: E402
from pipeline.imaging.color import linear_to_srgb, luminance  # noqa: E402
from pipeline.imaging.decode import decode_proxy  # noqa: E402
from pipeline.imaging.measure import metering  # noqa: E402
from pipeline.imaging.measure.common import subsample  # noqa: E402
from pipeline.kernel.records import SourceKind  # noqa: E402
from pipeline.planning.rules.exposure import key_faces  # noqa: E402
from pipeline.planning.state import PlanState  # noqa: E402

PAIRS_PER_IMAGE = 20_000


def _base_chart():  # noqa: ANN202
    from charts.loader import load_chart

    return load_chart("base").chart


BASE = _base_chart()


def decode(path: Path, domain: str) -> np.ndarray:
    kind = SourceKind.RAW if domain == "raw" else SourceKind.RASTER
    return decode_proxy(path, kind, 1600, 250_000_000).rgb


def natural_spline_basis(knots: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The value at ``x`` of the natural cubic spline through (knots, e_j), for each unit vector e_j."""
    return np.stack([metering.natural_spline(knots, np.eye(len(knots))[j], x) for j in range(len(knots))], axis=1)


def fit_tone_curve(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, float]:
    """Spline values at :data:`metering.TONE_CURVE_KNOTS` (ends pinned at 0 and 1) and the rms residual."""
    x = np.concatenate([p[0] for p in pairs])
    y = np.concatenate([p[1] for p in pairs])
    ok = (x > 1e-4) & (x < 0.995) & (y < 0.995)  # clipped pixels say nothing about the curve's shape
    ex, ey = linear_to_srgb(x[ok]).astype(np.float64), linear_to_srgb(y[ok]).astype(np.float64)
    knots = np.asarray(metering.TONE_CURVE_KNOTS)
    basis = natural_spline_basis(knots, ex)
    inner = basis[:, 1:-1]
    rhs = ey - basis[:, -1]  # value 1 at the last knot, 0 at the first
    values, *_ = np.linalg.lstsq(inner, rhs, rcond=None)
    fitted = np.r_[0.0, values, 1.0]
    rms = float(np.sqrt(np.mean((basis @ fitted - ey) ** 2)))
    return fitted, rms


def censored_normal(values: np.ndarray, clipped: np.ndarray, limit: float) -> tuple[float, float]:
    """Maximum-likelihood mean and spread of a normal sample whose clipped members only say ``>= limit``."""
    from scipy.optimize import minimize
    from scipy.stats import norm

    seen = values[~clipped]

    def nll(p: np.ndarray) -> float:
        mu, log_s = p
        s = math.exp(log_s)
        return -(norm.logpdf(seen, mu, s).sum() + clipped.sum() * norm.logsf(limit, mu, s))

    res = minimize(nll, [float(np.mean(values)), math.log(max(float(np.std(values)), 0.1))])
    return float(res.x[0]), float(math.exp(res.x[1]))


def detected_faces(corpus: Path, items: list[dict]) -> list:
    """The records of ``items`` after decode_raw and detect_faces (the default graph's parameters)."""
    from pipeline.kernel.graph import load_graph
    from pipeline.kernel.runner import Runner
    from pipeline.kernel.stage import RunContext

    analysis = load_graph().subset({"decode_raw", "detect_faces"})
    runner = Runner(analysis, RunContext(shoot_dir=corpus, out_dir=corpus.parent / "fit_exposure"))
    records = []
    for n, item in enumerate(items, 1):
        record = runner.run(source_task(corpus, item, n))
        if record.status == "ok":
            records.append(record)
    return records


def meter_with(key: float, white: float, key_mu: float, key_sigma: float, white_mu: float,
               white_sigma: float) -> float:
    """:func:`metering.meter_log2` under other constants (the ones just fitted)."""
    saved = metering.KEY_LOG2, metering.KEY_SPREAD_EV, metering.WHITE_LOG2, metering.WHITE_SPREAD_EV
    metering.KEY_LOG2, metering.KEY_SPREAD_EV, metering.WHITE_LOG2, metering.WHITE_SPREAD_EV = (
        key_mu, key_sigma, white_mu, white_sigma)
    try:
        return metering.meter_log2(key, white)
    finally:
        metering.KEY_LOG2, metering.KEY_SPREAD_EV, metering.WHITE_LOG2, metering.WHITE_SPREAD_EV = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the accuracy benchmark's cache")
    parser.add_argument("--no-curve", action="store_true", help="skip the tone curve (the slow part)")
    args = parser.parse_args(argv)
    corpus = args.cache / "corpus"
    manifest = json.loads((corpus / "manifest.json").read_text())
    items = [i for i in manifest["items"] if i["split"] == "tuning"]
    by_id = {i["id"]: i for i in items}
    rng = np.random.default_rng(0)

    # The tone curve: RAW twin (scene-linear) against its JPEG development (display-linear), pixel by pixel.
    pairs = []
    developed = [i for i in items if i["set"] in ("exposure", "original") and i["domain"] == "rendered"
                 and i["twin_of"] in by_id]
    for n, item in enumerate([] if args.no_curve else developed):
        scene = decode(corpus / by_id[item["twin_of"]]["file"], "raw").max(axis=2).ravel()
        shown = decode(corpus / item["file"], "rendered").max(axis=2).ravel()
        pick = rng.choice(scene.size, min(PAIRS_PER_IMAGE, scene.size), replace=False)
        pairs.append((scene[pick], shown[pick]))
        if n % 40 == 0:
            print(f"  tone curve: {n}/{len(developed)}", flush=True)
    curve, rms = fit_tone_curve(pairs) if pairs else (np.asarray(metering.TONE_CURVE_VALUES), float("nan"))

    # A well-exposed scene and a well-exposed face: the 0 EV RAW twins.
    keys, whites, channels, faces = [], [], [], []
    originals = [i for i in items if i["set"] == "original" and i["domain"] == "raw"]
    for item in originals:
        rgb = decode(corpus / item["file"], "raw")
        key, white = metering.key_and_white(luminance(rgb))
        keys.append(key)
        whites.append(white)
        channels.append(math.log2(metering.channel_white(subsample(rgb))))  # the same pixel subset as the key's
    for record in detected_faces(corpus, originals):
        plan = PlanState.start(record, BASE)
        keyed = key_faces(record, plan.faces_that_count)
        if keyed:  # a RAW's face reading is log2 of its light against the face reference
            faces.append(float(np.median([record.faces[i].exposure_ev for i in keyed])) + metering.FACE_LOG2)
    keys_a, whites_a = np.array(keys), np.array(whites)
    clipped = whites_a >= metering.CLIPPED_LOG2
    white_mu, white_sigma = censored_normal(whites_a, clipped, metering.CLIPPED_LOG2)
    channels_a = np.array(channels)
    channel_clipped = channels_a >= metering.CLIPPED_LOG2
    channel_mu, _ = censored_normal(channels_a, channel_clipped, metering.CLIPPED_LOG2)

    print(f"\nfitted on {len(keys)} tuning 0 EV RAW twins ({int(clipped.sum())} with the 99.9th percentile clipped), "
          f"{len(faces)} of them with faces, and {len(developed)} developed twins:\n")
    print(f"TONE_CURVE_VALUES = ({', '.join(f'{v:.4f}' for v in curve)})  # rms {rms:.4f} (sRGB-encoded)")
    print(f"KEY_LOG2 = {keys_a.mean():.3f}  # median {2 ** keys_a.mean():.4f}")
    print(f"KEY_SPREAD_EV = {keys_a.std():.3f}")
    print(f"WHITE_LOG2 = {white_mu:.3f}  # 99.9th percentile {2 ** white_mu:.3f}")
    print(f"WHITE_SPREAD_EV = {white_sigma:.3f}")
    print(f"CHANNEL_WHITE_LOG2 = {channel_mu:.3f}  # the brightest channel's 99.9th percentile, "
          f"{int(channel_clipped.sum())} of {len(channels)} clipped")
    print(f"FACE_LOG2 = {np.mean(faces):.3f}  # face centre {2 ** np.mean(faces):.3f}, over {len(faces)} photos")
    print(f"FACE_SPREAD_EV = {np.std(faces, ddof=1):.3f}")
    # The frame meter with these constants, on the same photos: how far a well-exposed photo reads from 0.
    readings = [meter_with(k, w, keys_a.mean(), keys_a.std(), white_mu, white_sigma) for k, w in zip(keys, whites)]
    print(f"FRAME_SPREAD_EV = {np.sqrt(np.mean(np.square(readings))):.3f}  # rms reading of the 0 EV twins "
          f"(mean {np.mean(readings):+.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
