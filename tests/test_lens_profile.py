"""Lens profile corrections against known truth: a real photo photographed through a profiled wide angle.

The truth is made with lensfun's own reverse model (the picture as the lens would draw it: bowed and darker
in the corners) from a photo of the shared data, written as the DNG of the body that lens was profiled on. The
delivery is then compared with the photo: local shifts by phase correlation, less the one scale the correction
zooms by to fill the frame, are the distortion left; the corners' brightness against the centre, the
vignetting left.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import lensfunpy
import numpy as np
import pytest
from PIL import Image
from render_cases import run_stages

from benchmarks.lens_corrections import colour_offsets, distortion_left
from charts.loader import load_chart
from pipeline.imaging.color import srgb_to_linear
from pipeline.imaging.dng import write_dng_from_linear_rgb
from pipeline.imaging.lens_profile import LensGrid, _lens_of, find_profile
from pipeline.imaging.render import adjustments_from_operations, render_frame, render_rows
from pipeline.kernel.records import AppliedBy, Operation, OperationKind
from pipeline.outputs.instructions import instruction_doc
from pipeline.outputs.xmp import crs_settings
from pipeline.planning.rules.lens import plan_lens_corrections
from pipeline.planning.state import PlanState

BODY = ("Canon", "EOS 450D")  # as LibRaw names it: lensfun's "Canon EOS 450D"
LENS = "EF-S10-22mm f/3.5-4.5 USM"  # as Canon's EXIF names it: lensfun's "Canon EF-S 10-22mm f/3.5-4.5 USM"
FOCAL, APERTURE = 10.0, 4.0
SIZE = (1536, 1024)


def test_a_body_and_lens_are_matched_as_the_files_name_them() -> None:
    match = find_profile(*BODY, LENS, FOCAL, APERTURE)
    assert match.profile is not None
    assert (match.profile.camera_model, match.profile.lens_model) == ("Canon EOS 450D",
                                                                     "Canon EF-S 10-22mm f/3.5-4.5 USM")
    assert match.profile.distortion and match.profile.vignetting
    # A compact's one lens, which its files do not name; lensfun has no vignetting for it.
    g2 = find_profile("Canon", "PowerShot G2", None, 7.0, 2.0).profile
    assert g2 is not None and "G2" in g2.lens_model and g2.distortion and not g2.vignetting


@pytest.mark.parametrize("body, lens, focal, aperture, why", [
    # Nikon's name for its kit zoom scores its VR and VR II profiles alike in lensfun.
    (("Nikon", "D3100"), "AF-S DX NIKKOR 18-55mm f/3.5-5.6G VR", 18.0, 5.6, "without doubt"),
    (BODY, "Sigma 12-24mm f/9.9 Imaginary", 12.0, 8.0, "not in lensfun"),
    (BODY, LENS, 35.0, 8.0, "outside"),
    (BODY, LENS, None, 8.0, "focal length"),
    (("Canon", "EOS 5D"), None, 24.0, 4.0, "does not name its lens"),  # a body whose lens can change
])
def test_no_profile_is_guessed(body: tuple[str, str], lens: str | None, focal: float | None, aperture: float,
                               why: str) -> None:
    match = find_profile(*body, lens, focal, aperture)
    assert match.profile is None and why in match.why, match.why


def test_a_lens_is_found_by_its_makers_own_name() -> None:
    """Canon's files name a lens without "Canon" and with no space after EF: lensfun's profile of that very
    lens is taken, not its version with an extender, which lensfun scores nearly as well."""
    profile = find_profile("Canon", "EOS 5D Mark II", "EF70-200mm f/2.8L IS II USM", 200.0, 2.8).profile
    assert profile is not None and profile.lens_model == "Canon EF 70-200mm f/2.8L IS II USM"
    kit = find_profile(*BODY, "EF-S18-55mm f/3.5-5.6 IS", 18.0, 5.6).profile
    assert kit is not None and kit.lens_model == "Canon EF-S 18-55mm f/3.5-5.6 IS"


def test_the_grid_reads_lensfuns_own_map() -> None:
    profile = find_profile(*BODY, LENS, FOCAL, 8.0).profile
    w, h = 4272, 2848
    grid = LensGrid(profile, w, h)
    camera, lens = _lens_of(profile)
    mod = lensfunpy.Modifier(lens, camera.crop_factor, w, h)
    mod.initialize(FOCAL, 8.0, 1000.0, scale=0.0, pixel_format=np.float32,
                   flags=int(lensfunpy.ModifyFlags.DISTORTION | lensfunpy.ModifyFlags.SCALE))
    full = mod.apply_geometry_distortion() + 0.5  # pixel indices -> continuous coordinates
    cols, rows = np.meshgrid(np.arange(0, w, 5), np.arange(0, h, 5))
    x, y = grid.source((cols + 0.5).astype(np.float32), (rows + 0.5).astype(np.float32))
    err = np.hypot(x - full[rows, cols, 0], y - full[rows, cols, 1])
    assert np.median(err) < 0.15 and err.max() < 1.0, (np.median(err), err.max())
    assert 30 < grid.max_shift < 60  # a 10 mm lens moves its corners tens of pixels


def shot_through_the_lens(photo: Path, dng: Path) -> np.ndarray:
    """``photo`` as the 10-22 at 10 mm f/4 would draw it on a 450D, written to ``dng``; the photo's linear light
    (the truth) returned."""
    img = np.asarray(Image.open(photo).convert("RGB").resize(SIZE, Image.Resampling.LANCZOS), np.float32) / 255
    truth = srgb_to_linear(img) * np.float32(0.8)
    write_through_the_lens(truth, dng)
    return truth


def write_through_the_lens(truth: np.ndarray, dng: Path) -> None:
    """``truth`` (linear RGB at :data:`SIZE`) as the 10-22 at 10 mm f/4 draws it on a 450D (lensfun's reverse model
    of its distortion and vignetting), written to ``dng`` as that camera names the lens."""
    w, h = SIZE
    camera, lens = _lens_of(find_profile(*BODY, LENS, FOCAL, APERTURE).profile)
    mod = lensfunpy.Modifier(lens, camera.crop_factor, w, h)
    mod.initialize(FOCAL, APERTURE, 1000.0, scale=1.0, pixel_format=np.float32, reverse=True,
                   flags=int(lensfunpy.ModifyFlags.DISTORTION | lensfunpy.ModifyFlags.VIGNETTING))
    coords = mod.apply_geometry_distortion()
    drawn = cv2.remap(truth, coords[..., 0], coords[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    assert mod.apply_color_modification(drawn)
    write_dng_from_linear_rgb(dng, np.clip(drawn, 0.0, 1.0), make=BODY[0], model=f"{BODY[0]} {BODY[1]}",
                              lens_model=LENS, focal_length=FOCAL, f_number=APERTURE, exposure_time=1 / 60, iso=200)


# Delivered in scene light (raw_tone_curve: linear): the corners' brightness against the centre is read as the
# lens let the light through, not through the camera-like curve that would compress it.
CHART = """\
schema_version: 2
lens: {{distortion: {on}, vignetting: {on}}}
white_balance: {{policy: as_shot}}
exposure: {{raw_tone_curve: linear}}
renditions:
  full: {{format: png, bit_depth: 16, sharpen_amount: 0}}
"""


@pytest.fixture(scope="module")
def wide_angle(exposure_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("lens")
    dng = folder / "room.dng"
    return dng, shot_through_the_lens(exposure_dir / "Floris van Lint-CC BY-NC 2.0.jpg", dng)


@pytest.mark.parametrize("on", [True, False])
def test_a_profiled_wide_angle_is_delivered_as_the_photo_was(wide_angle, tmp_path: Path, on: bool) -> None:
    """Planned and rendered as a user runs it: the correction leaves under 0.4 px of the lens's 6-7 px of
    distortion (95th percentile over the frame) and its corners within 3 % of the photo's brightness against
    the centre, where uncorrected they are at about half."""
    dng, truth = wide_angle
    chart_file = tmp_path / "chart.yaml"
    chart_file.write_text(CHART.format(on="true" if on else "false"), encoding="utf-8")
    chart = load_chart(chart_file)
    item = run_stages(dng, chart, [], tmp_path / "plan")
    ops = plan_lens_corrections(item.record, chart.chart, PlanState(faces_that_count=()))
    assert len(ops) == (1 if on else 0)
    if on:
        assert ops[0].kind is OperationKind.LENS_CORRECTION and ops[0].applied_by is AppliedBy.RENDERER
        assert "EF-S 10-22mm" in ops[0].reason and "distortion and vignetting" in ops[0].reason
    item = run_stages(dng, chart, ops, tmp_path / "out", export=True)
    png = tmp_path / "out" / item.record.exports[0].path
    delivered = srgb_to_linear(cv2.imread(str(png), cv2.IMREAD_UNCHANGED)[..., ::-1].astype(np.float32) / 65535)
    assert delivered.shape == truth.shape
    shift, vignetting = distortion_left(truth, delivered)
    if on:
        assert shift < 0.4 and abs(vignetting - 1.0) < 0.03, (shift, vignetting)
    else:
        assert shift > 4.0 and vignetting < 0.6, (shift, vignetting)
    # Lightroom is told to correct the lens too (with Adobe's own profile of it).
    settings = crs_settings(instruction_doc(item.record, "lens", "h", [("full", None)]))
    assert settings.attrs.get("crs:LensProfileEnable") == ("1" if on else None)


def test_strips_and_face_lifts_go_through_the_lens() -> None:
    """A big master's strips (render_rows) are the picture rendered whole; a face's lift is laid where the face
    was found, which the correction moves."""
    # Distortion alone: the vignetting's gain would brighten the corners of this flat picture as the lift does.
    profile = dataclasses.replace(find_profile(*BODY, LENS, FOCAL, APERTURE).profile, vignetting=False)
    w, h = SIZE
    face = (100.0, 80.0, 160.0, 200.0)  # near the top-left corner, where the lens moves things most
    ops = [Operation("lens", OperationKind.LENS_CORRECTION, profile.as_params(), "test",
                     applied_by=AppliedBy.RENDERER),
           Operation("face-0", OperationKind.BRIGHTEN_FACE, {"box": list(face), "ev": 1.0, "feather_px": 0.0},
                     "test", applied_by=AppliedBy.RENDERER)]
    adjustments = adjustments_from_operations(ops)
    flat = np.full((h, w, 3), 0.25, np.float32)
    whole = render_frame(flat, w, h, adjustments, (0, 0, w, h), (w, h), "srgb", 0.0, 16)
    strips = np.concatenate([render_rows(lambda x0, y0, x1, y1: flat[y0:y1, x0:x1], w, h, adjustments,
                                         (0, 0, w, h), (w, h), (v0, min(h, v0 + 97)), "srgb", 0.0, 16)
                             for v0 in range(0, h, 97)])
    assert np.abs(strips.astype(int) - whole.astype(int)).max() <= 2
    # The lifted pixels are those whose place on the sensor lies in the face's ellipse.
    lifted = whole[..., 1] > np.median(whole[..., 1]) * 1.2
    grid = LensGrid(profile, w, h)
    u, v = np.meshgrid(np.arange(w, dtype=np.float32) + 0.5, np.arange(h, dtype=np.float32) + 0.5)
    sx, sy = grid.source(u, v)
    inside = ((sx - 180.0) / 80.0) ** 2 + ((sy - 180.0) / 100.0) ** 2 < 1.0
    assert (lifted != inside).mean() < 0.002
    # ... which is not where the box sits in the corrected picture.
    naive = ((u - 180.0) / 80.0) ** 2 + ((v - 180.0) / 100.0) ** 2 < 1.0
    assert (lifted != naive).sum() > 5 * (lifted != inside).sum()


def test_crops_frame_the_faces_where_the_correction_moves_them(tmp_path: Path) -> None:
    """A face near the frame's side moves with the correction (a 10 mm lens's barrel, undone, pushes it out):
    the face-aware crop holds it where it lands in the delivered picture, not where it was as shot."""
    from pipeline.kernel.records import Face, ImageRecord, SourceKind
    from pipeline.planning.plan import plan_image

    w, h = 4272, 2848
    row = dict(source_path="a.CR2", content_hash="0" * 64, file_size=1, format="cr2", source_kind=SourceKind.RAW,
               width=w, height=h, orientation=1, exposure_meter_ev=0.0, sharpness=100.0, lines_found=0,
               clipped_highlights_pct=0.0, clipped_shadows_pct_r=0.0, clipped_shadows_pct_g=0.0,
               clipped_shadows_pct_b=0.0, phash="0" * 16, camera_make=BODY[0], camera_model=BODY[1], lens=LENS,
               focal_length_mm=FOCAL, aperture=APERTURE)
    face = Face(x=40.0, y=1200.0, width=300.0, height=380.0, score=0.9, landmarks=[0.0] * 10)
    chart_file = tmp_path / "chart.yaml"
    chart_file.write_text("schema_version: 2\nlens: {distortion: true}\ncrops:\n  - {aspect: '4:5', placement: "
                          "face_aware}\n", encoding="utf-8")
    chart = load_chart(chart_file).chart
    ops = plan_image(ImageRecord.from_row(row, [face]), chart)
    assert [o.kind for o in ops if o.kind is OperationKind.LENS_CORRECTION]
    crop = next(o for o in ops if o.kind is OperationKind.CROP)
    x, y, cw, ch = crop.params["box"]
    moved = LensGrid(find_profile(*BODY, LENS, FOCAL, APERTURE).profile, w, h).corrected_box(
        (face.x, face.y, face.width, face.height))
    assert moved[0] < face.x - 20  # the correction takes the face 20 px or more further out
    assert x <= max(0.0, moved[0]) + 1 and x + cw >= moved[0] + moved[2] - 1, (crop.params["box"], moved)


def test_a_lens_chromatic_aberration_is_undone(exposure_dir: Path, tmp_path: Path) -> None:
    """A shared photo, grey (its three colours one picture), drawn through the 10-22's measured chromatic
    aberration at 10 mm on a 3000 px frame (lensfun's reverse model: red and blue scaled apart from green, 0.17 px
    along the frame's edges, median): corrected, red and blue lie on green again (0.06 px; 0.14 with the distortion
    alone corrected; 0.04 where no fringes were drawn, the mosaic's and the demosaic's own)."""
    w, h = 3000, 2000
    photo = exposure_dir / "Justin Chiaratti-CC BY-NC-SA 2.0.jpg"
    grey = np.asarray(Image.open(photo).convert("L").resize((w, h), Image.Resampling.LANCZOS), np.float32) / 255
    truth = np.dstack([srgb_to_linear(grey) * np.float32(0.8)] * 3)
    camera, lens = _lens_of(find_profile(*BODY, LENS, FOCAL, APERTURE).profile)
    mod = lensfunpy.Modifier(lens, camera.crop_factor, w, h)
    mod.initialize(FOCAL, APERTURE, 1000.0, scale=1.0, pixel_format=np.float32, reverse=True,
                   flags=int(lensfunpy.ModifyFlags.DISTORTION | lensfunpy.ModifyFlags.TCA))
    sub = mod.apply_subpixel_geometry_distortion()
    drawn = np.dstack([cv2.remap(np.ascontiguousarray(truth[..., c]), sub[..., c, 0], sub[..., c, 1],
                                 cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT) for c in range(3)])
    dng = tmp_path / "fringed.dng"
    write_dng_from_linear_rgb(dng, np.clip(drawn, 0.0, 1.0), white_balance=(1.0, 1.0, 1.0), make=BODY[0],
                              model=f"{BODY[0]} {BODY[1]}", lens_model=LENS, focal_length=FOCAL, f_number=APERTURE,
                              exposure_time=1 / 60, iso=200)
    found = {"drawn": colour_offsets(drawn)}
    for name, keys in (("plain", "distortion: true"), ("fringes", "distortion: true, chromatic_aberration: true")):
        chart_file = tmp_path / f"{name}.yaml"
        chart_file.write_text(CHART.replace("distortion: {on}, vignetting: {on}", keys).replace("{{", "{")
                              .replace("}}", "}"), encoding="utf-8")
        chart = load_chart(chart_file)
        item = run_stages(dng, chart, [], tmp_path / f"plan-{name}")
        ops = plan_lens_corrections(item.record, chart.chart, PlanState(faces_that_count=()))
        assert ops and ops[0].params["chromatic_aberration"] == (name == "fringes")
        item = run_stages(dng, chart, ops, tmp_path / name, export=True)
        png = tmp_path / name / item.record.exports[0].path
        delivered = srgb_to_linear(cv2.imread(str(png), cv2.IMREAD_UNCHANGED)[..., ::-1].astype(np.float32) / 65535)
        found[name] = colour_offsets(delivered)
    # Through the mosaic and LibRaw's demosaic a grey picture's colours lie 0.04 px apart (median) with no fringes
    # drawn at all: what the correction is measured against.
    assert found["drawn"] > 0.12 and found["plain"] > 0.12 and found["fringes"] < 0.5 * found["plain"], found


def test_the_run_says_which_lenses_it_corrected_and_why_not_the_others(raw_dir: Path, tmp_path: Path) -> None:
    """Under a chart that corrects lenses: the shared Canon compacts' fixed lenses are corrected (lensfun has
    their distortion), the Kodak DC120 is not (no profile), and the summary says so for production staff."""
    from pipeline.kernel.run import RunSettings, process_shoot

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for name in ("Canon_PowerShot_G2_CRW_0304.CRW", "Kodak_DC120_DC120IMG_P003908.KDC"):
        (shoot / name).write_bytes((raw_dir / name).read_bytes())
    result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "out", executor="local",
                                       chart="real_estate_interiors"))
    lens = result.summary()["lens_corrections"]
    assert lens["corrected"] == {"Canon PowerShot G2 & compatibles (Standard)": 1}
    assert lens["not_corrected"] == {"the camera Kodak DC120 is not in lensfun's database": 1}
    # A lens's own profile is nothing its photographer did: not among the reasons the operators' table counts.
    from pipeline.equipment.analysis import frame_facts

    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")  # the production director's view
    assert "<h2>Lens profiles</h2>" in page and "not corrected: the camera Kodak DC120 is not in lensfun" in page
    g2 = next(r for r in result.records if r.source_path.startswith("Canon"))
    assert any(o.kind is OperationKind.LENS_CORRECTION for o in g2.operations)
    assert not any("lens" in reason for reason in frame_facts(g2).reasons)


def test_the_review_shows_the_vignetting_and_leaves_the_geometry_to_its_overlays() -> None:
    """The review's "after" picture is the uncropped frame the crops and faces are drawn over: a lens correction
    brightens its corners as the export does, and moves nothing."""
    from pipeline.review.preview import after_preview, tonal_operations

    profile = find_profile(*BODY, LENS, FOCAL, APERTURE, chromatic_aberration=True).profile
    op = {"op_id": "lens", "kind": "lens_correction", "params": profile.as_params(), "reason": "test",
          "measured": None, "target": None, "confidence": 1.0, "applied_by": "renderer", "review": None}
    assert tonal_operations({"operations": [op]}) == [op]
    w, h = 600, 400
    grid = np.zeros((h, w, 3), np.float32)
    grid[::40] = grid[:, ::40] = 0.2  # thin lines: a geometric correction would move them
    grid += 0.05
    before = after_preview(grid, [], w * 4, h * 4).astype(float)
    after = after_preview(grid, [op], w * 4, h * 4).astype(float)
    assert after[:20, :20].mean() > before[:20, :20].mean() * 1.3  # the corners brightened
    assert abs(after[h // 2 - 10:h // 2 + 10, w // 2 - 10:w // 2 + 10].mean()
               - before[h // 2 - 10:h // 2 + 10, w // 2 - 10:w // 2 + 10].mean()) < 2  # the centre as it was
    lines = before[..., 1] > before[..., 1].mean() + 20
    assert (after[..., 1][lines] > after[..., 1].mean()).mean() > 0.97  # the lines where they were


def test_inspect_says_why_a_frames_lens_is_not_corrected(raw_dir: Path) -> None:
    import json

    from click.testing import CliRunner

    from pipeline.cli import main

    args = ["inspect", str(raw_dir / "Kodak_DC120_DC120IMG_P003908.KDC"), "--chart", "real_estate_interiors"]
    data = json.loads(CliRunner().invoke(main, args).output)
    assert data["lens_not_corrected"] == "the camera Kodak DC120 is not in lensfun's database"
    corrected = json.loads(CliRunner().invoke(main, ["inspect", str(raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW"),
                                                     "--chart", "real_estate_interiors"]).output)
    assert "lens_not_corrected" not in corrected
    assert [o["params"]["lens_model"] for o in corrected["operations"] if o["kind"] == "lens_correction"] == [
        "Canon PowerShot G2 & compatibles (Standard)"]
