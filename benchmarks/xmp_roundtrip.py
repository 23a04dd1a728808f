"""How close postprod's Camera Raw settings come to Adobe's: the numbers of docs/xmp.md.

1. As Shot white balance of a DNG that Camera Raw 11.3.1 wrote (its own XMP says 6200 / -1).
2. Planned white balance, truth injected: a grey scene under a known light, the camera's
   AsShotNeutral set for another; LibRaw decodes it as postprod does, measure_exposure finds
   the cast, the plan corrects it, the XMP writer turns it into Temperature/Tint. The truth is
   the scene light on Adobe's scale (the white balance at which Camera Raw renders the grey
   neutral). Two cameras: Camera Raw's own dual-illuminant DNG profile (Canon EOS 6D), and the
   Canon PowerShot G2's single D65 matrix as LibRaw holds it for proprietary RAWs. No constant
   of the writer was fitted to these numbers.
3. Rotated crops of three Lightroom 6.1 exports and Adobe's forum example: corner error in
   pixels when the writer encodes the box Lightroom's numbers describe.
4. Exposure: postprod's linear decode against the DNG-spec linear scale on the shared RAWs
   (what is left is Camera Raw's own baseline), and the BaselineExposure of DNGs in the tests.

    python benchmarks/xmp_roundtrip.py          (POSTPROD_TESTDATA for part 2's G2 and part 4)
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import rawpy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from charts.loader import load_chart  # noqa: E402
from pipeline.imaging.camera_raw import (  # noqa: E402
    ColourSpec,
    DngColourTags,
    camera_raw_baseline,
    temperature_tint_to_xy,
    xy_to_temperature_tint,
)
from pipeline.imaging.decode import decode_raw_linear  # noqa: E402
from pipeline.imaging.dng import dng_bytes, mosaic  # noqa: E402
from pipeline.imaging.measure import white_balance_cast  # noqa: E402
from pipeline.kernel.records import ImageRecord  # noqa: E402
from pipeline.outputs.instructions import instruction_doc  # noqa: E402
from pipeline.outputs.xmp import CameraRawFrame, crs_crop, crs_settings, crs_to_box  # noqa: E402
from pipeline.planning.plan import plan_image  # noqa: E402

ADOBE = ROOT / "tests" / "data" / "adobe_xmp"
TESTDATA = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data"))


def adobe_tags() -> tuple[DngColourTags, dict, dict]:
    t = json.loads((ADOBE / "06_acr11.3.1_canon_eos_6d.dng-tags.json").read_text())
    tags = DngColourTags(
        as_shot_neutral=np.array(t["AsShotNeutral"]), color_matrix1=np.reshape(t["ColorMatrix1"], (3, 3)),
        color_matrix2=np.reshape(t["ColorMatrix2"], (3, 3)), illuminant1=17, illuminant2=21,
        camera_calibration1=np.reshape(t["CameraCalibration1"], (3, 3)),
        camera_calibration2=np.reshape(t["CameraCalibration2"], (3, 3)), camera_calibration_signature="com.adobe",
        profile_calibration_signature="com.adobe", analog_balance=np.array(t["AnalogBalance"]))
    extra = {50722: (10, t["ColorMatrix2"]), 50778: (3, [17]), 50779: (3, [21]),
             50723: (10, t["CameraCalibration1"]), 50724: (10, t["CameraCalibration2"]),
             50931: (2, "com.adobe"), 50932: (2, "com.adobe"), 50727: (5, t["AnalogBalance"])}
    return tags, extra, t


def part1() -> None:
    tags, _, t = adobe_tags()
    xy = ColourSpec.from_dng(tags).neutral_to_xy(tags.as_shot_neutral)
    temp, tint = xy_to_temperature_tint(*xy)
    print("1. As Shot of Camera Raw 11.3.1's DNG (Canon EOS 6D)")
    print(f"   postprod {temp:.1f} K / {tint:+.2f}  -> written as {round(temp / 50) * 50} / {round(tint):+d};"
          f" Camera Raw's XMP: {t['xmp']['Temperature']} / {t['xmp']['Tint']:+d}")


def inject(spec: ColourSpec, cm1: np.ndarray, extra: dict, scene: tuple, shot: tuple, chart) -> tuple | None:
    grey = spec.xy_to_neutral(temperature_tint_to_xy(*scene))
    shading = np.kron(np.random.default_rng(1).uniform(0.1, 0.6, (32, 48, 1)), np.ones((8, 8, 1)))
    cfa = (mosaic(shading * grey / grey.max()) * 60000).astype(np.uint16)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "grey.dng"
        path.write_bytes(dng_bytes(cfa, color_matrix1=cm1, extra_tags=extra,
                                   as_shot_neutral=list(spec.xy_to_neutral(temperature_tint_to_xy(*shot)))))
        with rawpy.imread(str(path)) as raw:
            b = camera_raw_baseline(raw, path, is_dng=True)
            linear = decode_raw_linear(raw, half_size=True).astype(np.float32) / 65535
    cast = white_balance_cast(linear)
    rec = ImageRecord.from_row(dict(
        source_path="g.dng", content_hash="0" * 64, file_size=1, format="dng", source_kind="raw", width=384,
        height=256, orientation=1, wb_cast_a=cast.a, wb_cast_b=cast.b, wb_temperature_shift_k=cast.temperature_shift_k,
        as_shot_temperature_k=b.as_shot_temperature_k, as_shot_tint=b.as_shot_tint, as_shot_wb_source=b.wb_source,
        baseline_exposure_ev=0.0))
    rec.operations = plan_image(rec, chart)
    if not any(o.kind == "white_balance" for o in rec.operations):
        return None
    attrs = crs_settings(instruction_doc(rec, "base", "h")).attrs
    truth = xy_to_temperature_tint(*temperature_tint_to_xy(*scene))
    return (1e6 / int(attrs["crs:Temperature"]) - 1e6 / truth[0], int(attrs["crs:Tint"]) - truth[1],
            int(attrs["crs:Temperature"]), truth[0])


def part2() -> None:
    chart = load_chart("base").chart
    tags, extra, _ = adobe_tags()
    cameras = [("Canon EOS 6D, Camera Raw's profile (model chosen on it)", ColourSpec.from_dng(tags), tags.color_matrix1,
                extra)]
    g2 = TESTDATA / "raw" / "Canon_PowerShot_G2_CRW_0304.CRW"
    if g2.is_file():
        with rawpy.imread(str(g2)) as raw:
            m = np.asarray(raw.rgb_xyz_matrix[:3], dtype=np.float64)
        cameras.append(("Canon PowerShot G2, LibRaw's D65 matrix (held out)", ColourSpec.single(m), m,
                        {50778: (3, [21])}))
    scenes = [(t, n) for t in (2850, 3200, 4000, 5000, 5500, 6500, 7500, 9000) for n in (-20, 0, 20)]
    shots = [(3200, 0), (5500, 10), (6500, 10)]
    print("2. Planned white balance against the injected scene light (|error|: median, 90th percentile, max)")
    print(f"   {'camera':52s} {'cases':>5s} {'no op':>5s}   mired: median  p90   max   tint: median  p90   max")
    for name, spec, cm1, ex in cameras:
        errs = []
        skipped = 0
        for scene in scenes:
            for shot in shots:
                if scene == shot:
                    continue
                r = inject(spec, cm1, ex, scene, shot, chart)
                if r is None:
                    skipped += 1
                else:
                    errs.append(r)
        e = np.abs(np.array(errs)[:, :2])
        q = lambda v: f"{np.median(v):6.1f} {np.percentile(v, 90):5.1f} {v.max():5.1f}"
        print(f"   {name:52s} {len(e):5d} {skipped:5d}          {q(e[:, 0])}         {q(e[:, 1])}")
    print("   scenes 2850-9000 K x tint -20/0/+20, as-shot 3200/0, 5500/+10, 6500/+10; 'no op': the plan made no"
          " white-balance operation (cast outside McCamy's CCT range), so the XMP keeps As Shot")


def part3() -> None:
    print("3. Rotated crops: Lightroom's numbers decoded, the box encoded again by postprod's writer")
    cases = []
    for name in ("05a", "05b", "05c"):
        path = next(ADOBE.glob(name + "*"))
        tags = json.loads(subprocess.run(["exiftool", "-j", "-n", "-XMP-crs:all", str(path)], capture_output=True,
                                         text=True, check=True).stdout)[0]
        cases.append((path.name[:40], [float(tags[k]) for k in ("CropLeft", "CropTop", "CropRight", "CropBottom",
                                                               "CropAngle")], 5184, 3456))
    cases.append(("Adobe forum (Rob Cole), angle -10", [0.374965, 0.36916, 0.925035, 0.73084, -10.0], 4288, 2848))
    for name, (L, T, R, B, a), W, H in cases:
        cx, cy, w, h = crs_to_box(L, T, R, B, a, W, H)
        c = crs_crop(CameraRawFrame(W, H), (cx - w / 2, cy - h / 2, w, h), angle_deg=-a)
        err = max(abs(c.left - L) * W, abs(c.right - R) * W, abs(c.top - T) * H, abs(c.bottom - B) * H)
        print(f"   {name:42s} angle {a:+8.5f}  box {w:7.1f} x {h:6.1f}  aspect {max(w, h) / min(w, h):.5f}"
              f"  corner error {err:.4f} px")
    # The forum's angle-0 box (L.4 T.3 R.9 B.8) turned by -10 degrees must give the forum's four numbers.
    W, H = 4288, 2848
    c = crs_crop(CameraRawFrame(W, H), (0.4 * W, 0.3 * H, 0.5 * W, 0.5 * H), angle_deg=10)
    err = max(abs(c.left - 0.374965) * W, abs(c.right - 0.925035) * W, abs(c.top - 0.36916) * H,
              abs(c.bottom - 0.73084) * H)
    print(f"   forum: box at 0 deg turned to -10 by postprod, against the forum's numbers: {err:.4f} px")


def decode_scale(path: Path) -> float:
    """postprod's linear decode over the DNG-spec linearisation (raw - black) / (white - black), greens."""
    with rawpy.imread(str(path)) as r:
        raw = r.raw_image_visible.astype(np.float64).copy()
        cols = r.raw_colors_visible.copy()
        black, white = float(r.black_level_per_channel[1]), float(r.white_level)
    with rawpy.imread(str(path)) as r:
        out = r.postprocess(half_size=True, output_color=rawpy.ColorSpace.raw, use_camera_wb=False,
                            user_wb=[1, 1, 1, 1], no_auto_bright=True, gamma=(1, 1), output_bps=16,
                            adjust_maximum_thr=0, user_flip=0).astype(np.float64) / 65535
    h, w = out.shape[:2]
    if raw.shape[0] < 2 * h or raw.shape[1] < 2 * w or (raw.shape[0] // 2, raw.shape[1] // 2) != (h, w):
        return math.nan  # non-square photosites: LibRaw stretches the output
    g = np.where(np.isin(cols, [1, 3]), (raw - black) / (white - black), np.nan)[: 2 * h, : 2 * w]
    gmean = np.nanmean(g.reshape(h, 2, w, 2), axis=(1, 3))
    m = (gmean > 0.05) & (gmean < 0.9) & (out[..., 1] > 0)
    return float(np.median(out[..., 1][m] / gmean[m]))


def part4() -> None:
    print("4. Exposure2012 baseline")
    raws = sorted(p for p in (TESTDATA / "raw").glob("*") if p.suffix.lower() in (".crw", ".kdc", ".dng"))
    for p in raws:
        s = decode_scale(p)
        if not math.isnan(s):
            print(f"   {p.name:40s} decode / DNG-spec linear scale = {s:.4f} ({math.log2(s):+.4f} EV)")
    print("   So postprod's zero is the raw data's linear scale; Camera Raw's is that plus BaselineExposure:")
    _, _, t = adobe_tags()
    print(f"   Canon EOS 6D (Camera Raw 11.3.1 DNG): BaselineExposure {t['BaselineExposure']:+.2f} EV (written: ev - 0.25)")
    print("   For a proprietary RAW Camera Raw keeps it to itself; postprod writes ev unchanged, so Camera Raw"
          " shows the image brighter by that camera's hidden baseline (see docs/xmp.md).")


if __name__ == "__main__":
    part1()
    part2()
    part3()
    part4()
