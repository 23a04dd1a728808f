"""Golden measurements: the manifest values measure_exposure writes for the shared photos.

``tests/golden/measurements.json`` holds, for every photo and RAW of the shared
data's ``exposure/``, ``raw/``, ``faces/pascal_voc/`` and ``wb/`` folders, the
columns of the exposure, colour, focus, lines and content groups after
decode_raw and measure_exposure. It was written by the code before the
measurements were split by topic (main at 8001f15) and guards every later
refactoring: a change that moves a measured number shows here, by file and
column, before it shows in a plan.

Floats are compared to 1e-6 relative or 1e-5 absolute, and the colour and noise
columns to the looser bounds of :data:`TOLERANCE`, so another OpenCV, numpy or
LibRaw build, or another CPU, passes: on a machine of 2026-12-01 (no AVX-512;
the same values moved with OpenCV 4.14, numpy 2.3 and Pillow 12 in place of the
versions installed, so the CPU, not a package) the floats round differently, and where a cue keeps the pixels beyond a
percentile (the white balance's bright and grey pixels, the shadow contrast's
darkest 5 %) a pixel crossing it moves the reading by up to 0.18 mired, 0.05
Lab b* and 0.02 stop; the bounds are a few times that and far below what any
decision sees (the white balance's tolerance is 10 mired). Set
``POSTPROD_EXACT_MEASUREMENTS=1`` to require the same bits (what a pure
refactoring must keep on one machine).
Everything else (verdict, pHash, line count, None) must be equal.

To regenerate after an intended change to a measurement or to decoding, run::

    POSTPROD_REGEN_GOLDEN=1 pytest tests/test_measure_golden.py

and say in the commit which values moved and why.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from pipeline.kernel.graph import load_graph
from pipeline.kernel.ingest import hash_file, sniff_format
from pipeline.kernel.records import MANIFEST_COLUMNS, SourceTask, Status
from pipeline.kernel.runner import Runner
from pipeline.kernel.stage import RunContext
from stages.measure_exposure import MeasureExposure

GOLDEN = Path(__file__).resolve().parent / "golden" / "measurements.json"
REGEN = os.environ.get("POSTPROD_REGEN_GOLDEN") == "1"
EXACT = os.environ.get("POSTPROD_EXACT_MEASUREMENTS") == "1"
FOLDERS = ("exposure", "raw", "faces/pascal_voc", "wb")
SUFFIXES = {".jpg", ".jpeg", ".crw", ".kdc", ".dng", ".raw"}
COLUMNS = [c.name for c in MANIFEST_COLUMNS if c.group in MeasureExposure.writes]
#: Column -> (relative, absolute) tolerance where another machine's rounding moves a reading more
#: than 1e-6 relative (see the module docstring); every other float column: (1e-6, 1e-5).
TOLERANCE = {
    "wb_cast_a": (0.0, 0.2), "wb_cast_b": (0.0, 0.2),  # CIE Lab units (a just visible step is about 1)
    "wb_cast_mired": (0.0, 0.5), "wb_uncertainty_mired": (0.0, 0.5),
    "wb_temperature_shift_k": (0.01, 20.0),
    "wb_tint": (0.0, 0.005), "wb_tint_uncertainty": (0.0, 0.005),  # log2 green excess
    "shadow_contrast": (0.0, 0.05),  # log2 of a gradient
    "noise_sigma": (1e-4, 0.0),
    "noise_luma": (1e-3, 0.0), "noise_red_green": (1e-3, 0.0), "noise_blue_green": (1e-3, 0.0),
    # A RAW whose lens profile undoes its distortion before the lines are read (the Canon G2's and S40's CRWs) goes
    # through OpenCV's remap, whose rounding differs by CPU: on an Intel Xeon (2026-12-05) their tilts moved by up
    # to 0.00016 deg and their agreeing length by 0.012 % from the AMD EPYC's that wrote the golden file. Bounds
    # a few times that; the rule's agreement band is 0.3 deg.
    "horizon_tilt_deg": (0.0, 1e-3), "verticals_tilt_deg": (0.0, 1e-3),
    "horizon_agreement": (0.0, 1e-3), "verticals_agreement": (0.0, 1e-3),
    "horizon_support": (1e-3, 0.0), "verticals_support": (1e-3, 0.0),
    # Read through OpenCV's power and resize (SIMD: their rounding differs by CPU) and a tabulated tone: a quarter
    # of a code value of 255; the toned picture's line is at 10.
    "off_tone_chroma_p99": (0.0, 1e-3),
    # The blue sky is read on the top quarter resized by OpenCV (its rounding differs by CPU) and thresholded per
    # pixel: a pixel crossing a threshold moves the share by 1/27,000 and the sky's median colour by a code value or
    # so; the rule's threshold is a share of 0.1 and a hue range tens of degrees wide.
    "sky_share": (0.0, 2e-3), "sky_rgb": (0.0, 2e-3),
}


def shared_photos(testdata: Path) -> list[Path]:
    return sorted(p for d in FOLDERS for p in (testdata / d).iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def measure(path: Path, testdata: Path, tmp_path: Path) -> dict[str, Any]:
    digest, head = hash_file(path)
    fmt, kind = sniff_format(head, path.suffix)
    name = path.relative_to(testdata).as_posix()
    task = SourceTask(path=path, source_path=name, content_hash=digest, file_size=path.stat().st_size,
                      format=fmt, source_kind=kind, seq=1, stem=path.stem)
    analysis = load_graph().subset({"decode_raw", "measure_exposure"})
    record = Runner(analysis, RunContext(shoot_dir=path.parent, out_dir=tmp_path)).run(task)
    assert record.status is Status.OK, f"{name}: {record.error}"
    values = {c: record.column(c) for c in COLUMNS}
    return {c: str(v) if isinstance(v, str) else v for c, v in values.items()}  # StrEnum -> plain str, as in JSON


def same(expected: Any, got: Any, column: str = "") -> bool:
    if isinstance(expected, float) and isinstance(got, float) and not EXACT:
        rel, abs_ = TOLERANCE.get(column, (1e-6, 1e-5))
        return math.isclose(got, expected, rel_tol=rel, abs_tol=abs_)
    if isinstance(expected, list) and isinstance(got, list) and column in TOLERANCE and not EXACT:
        return len(expected) == len(got) and all(same(e, g, column) for e, g in zip(expected, got))
    return type(expected) is type(got) and expected == got


def test_measurements_of_the_shared_photos_match_the_golden_values(testdata: Path, tmp_path: Path) -> None:
    measured = {p.relative_to(testdata).as_posix(): measure(p, testdata, tmp_path) for p in shared_photos(testdata)}
    if REGEN:
        GOLDEN.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"wrote {GOLDEN}")
    golden = json.loads(GOLDEN.read_text())
    assert sorted(measured) == sorted(golden), "the shared photos changed: regenerate (see the module docstring)"
    moved = [
        f"{name} {col}: {golden[name].get(col)!r} -> {values.get(col)!r}"
        for name, values in sorted(measured.items())
        for col in sorted(set(golden[name]) | set(values))
        if not same(golden[name].get(col), values.get(col), col)
    ]
    assert not moved, f"{len(moved)} measured values moved:\n" + "\n".join(moved)
