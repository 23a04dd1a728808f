"""Every white-balance cue's light on the tuning split and the extra tuning pool, for fitting offline.

Reads, for every unperturbed original and cast twin of the accuracy corpus's
tuning split (``corpus``) and of the extra tuning pool (``corpus_extra``,
split ``tuning_extra``), the proxy the pipeline decodes, prepares it as
:func:`pipeline.imaging.measure.colour.white_balance_cast` does (working
copy, the inverse tone curve for rendered sources, the usable-pixel mask) and
writes each candidate cue's light (R, G, B with G = 1) to a JSON file, with
the item's source, domain, set and injected cast. ``benchmarks/fit_wb_reference.py``
fits the estimator's constants from it. Never the held-out split.

    python benchmarks/wb_cue_dump.py --out /tmp/wb_cues.json [--cache DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import DEFAULT_CACHE  # noqa: E402
from pipeline.imaging.decode import decode_proxy  # noqa: E402
from pipeline.imaging.measure import colour  # noqa: E402
from pipeline.kernel.records import SourceKind  # noqa: E402

POOLS = (("corpus", "tuning"), ("corpus_extra", "tuning_extra"))


def candidates() -> dict:
    """The estimate's own cues and some it does not use (name -> cue(work, ok) -> light or None)."""

    def grey_world(rgb: np.ndarray, ok: np.ndarray) -> np.ndarray | None:
        px = rgb[ok].astype(np.float64)
        return px.mean(axis=0) if px.shape[0] >= 1000 else None

    def shades_of_grey(rgb: np.ndarray, ok: np.ndarray, p: float = 6.0) -> np.ndarray | None:
        px = rgb[ok].astype(np.float64)
        return np.mean(px ** p, axis=0) ** (1 / p) if px.shape[0] >= 1000 else None

    def white_patch(rgb: np.ndarray, ok: np.ndarray) -> np.ndarray | None:
        px = rgb[ok].astype(np.float64)
        return np.percentile(px, 99.0, axis=0) if px.shape[0] >= 1000 else None

    return {**colour.CUES,
            "grey_world": grey_world,
            "shades_of_grey": shades_of_grey,
            "white_patch": white_patch,
            "grey_edge_p2": lambda rgb, ok: colour.grey_edge(rgb, ok, 1.0, 2.0),
            "grey_edge_p6": lambda rgb, ok: colour.grey_edge(rgb, ok, 1.0, 6.0),
            "grey_edge_s2": lambda rgb, ok: colour.grey_edge(rgb, ok, 2.0, 1.0),
            "grey_pixels_5": lambda rgb, ok: colour.grey_pixels(rgb, ok, 0.05),
            "bright_pixels_5": lambda rgb, ok: colour.bright_pixels(rgb, ok, 0.05),
            "near_neutral_r1": lambda rgb, ok: colour.near_neutral_mode(rgb, ok, 0.1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the accuracy benchmark's cache")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None, help="only the first N items of each pool (a smoke test)")
    args = parser.parse_args(argv)
    cues = candidates()
    rows = []
    for folder, split in POOLS:
        corpus = args.cache / folder
        items = [i for i in json.loads((corpus / "manifest.json").read_text())["items"]
                 if i["split"] == split and i["set"] in ("original", "cast")]
        for n, item in enumerate(items[:args.limit] if args.limit else items):
            path = corpus / item["file"]
            kind = SourceKind.RAW if path.suffix.lower() == ".dng" else SourceKind.RASTER
            rgb = decode_proxy(path, kind, 1600, 250_000_000).rgb
            work, ok = colour.working_copy(rgb, item["domain"] == "rendered")
            lights = {}
            for name, cue in cues.items():
                try:
                    v = cue(work, ok) if ok.sum() >= 50 else None
                except ValueError:
                    v = None
                v = colour._light(v) if v is not None else None
                lights[name] = None if v is None else [float(x) for x in v]
            truth = item.get("truth", {})
            rows.append({"id": item["id"], "pool": split, "source": item["source"], "domain": item["domain"],
                         "render": item["render"], "set": item["set"],
                         "injected": float(truth.get("injected_mired", 0.0)),
                         "injected_tint": float(truth.get("injected_tint_log2_g", 0.0)), "lights": lights})
            if (n + 1) % 25 == 0:
                print(f"  {split}: {n + 1}/{len(items)}", file=sys.stderr, flush=True)
    args.out.write_text(json.dumps(rows))
    print(f"{len(rows)} items -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
