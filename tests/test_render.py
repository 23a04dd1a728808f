"""Render stage: geometry, gains, face lifts, output encoding; real-file accuracy."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from render_cases import delta_e, read_rgb, run_stages, turned_copy

from charts.loader import load_chart
from charts.schema import Rendition
from pipeline.imaging.color import linear_to_srgb
from pipeline.imaging.geometry import inscribed_box, rotated_corners
from pipeline.imaging.icc import encode
from pipeline.imaging.render import (
    Adjustments,
    FaceLift,
    adjustments_from_operations,
    apply_face_lifts,
    encode_fast,
    face_lift_mask,
    finish_rendition,
    output_to_frame,
    render_key,
    render_frame,
    render_renditions,
    rendition_frame,
    rendition_size,
    required_scale,
    warp_frame,
)
from pipeline.kernel.records import AppliedBy, Operation, OperationKind

GOLDEN = Path(__file__).resolve().parent / "golden"


def op(kind: str, params: dict, applied_by: str = "renderer", op_id: str | None = None) -> Operation:
    return Operation(op_id or kind, OperationKind(kind), params, "test", applied_by=AppliedBy(applied_by))


# --- operations -> adjustments ---------------------------------------------------------


def test_adjustments_compose_and_skip_the_retouchers_share() -> None:
    adj = adjustments_from_operations(
        [
            op("exposure", {"ev": 0.5}),
            op("exposure", {"ev": 0.25}, op_id="exposure-2"),
            op("white_balance", {"gains": [2.0, 1.0, 0.5]}),
            op("white_balance", {"gains": [1.0, 1.0, 2.0]}, op_id="wb-2"),
            op("brighten_face", {"box": [10, 20, 30, 40], "ev": 0.8, "feather_px": 5}),
            op("brighten_face", {"box": [0, 0, 10, 10], "ev": 2.0, "feather_px": 5}, applied_by="retoucher"),
            op("straighten", {"angle_deg": -1.5, "axis": "horizon"}),
            op("crop", {"aspect": "4:5", "box": [0, 0, 80, 100], "placement": "center"}),
            op("flag", {"check": "sharpness"}),
        ]
    )
    assert adj.exposure_ev == pytest.approx(0.75)
    assert adj.wb_gains == pytest.approx((2.0, 1.0, 1.0))
    assert adj.faces == (FaceLift((10, 20, 30, 40), 0.8, 5.0),)
    assert adj.angle_deg == -1.5
    assert adj.crops == {"4:5": (0, 0, 80, 100)}


@pytest.mark.parametrize(
    "bad",
    [
        op("exposure", {}),
        op("white_balance", {"gains": [1.0, -1.0, 1.0]}),
        op("white_balance", {"gains": [1.0, 1.0]}),
        op("brighten_face", {"box": [0, 0, 0, 10], "ev": 1}),
    ],
)
def test_malformed_operations_are_programming_errors(bad: Operation) -> None:
    with pytest.raises(ValueError, match=bad.op_id):
        adjustments_from_operations([bad])


# --- frames and sizes ---------------------------------------------------------------------


def test_frames_and_sizes() -> None:
    web = Rendition(long_edge_px=1000)
    full = Rendition()
    box = Rendition(crop="4:5", width_px=400, height_px=500)
    none = Adjustments()
    assert rendition_frame(web, none, 3000, 2000) == (0, 0, 3000, 2000)
    assert rendition_size(web, (0, 0, 3000, 2000)) == (1000, 667)
    assert rendition_size(Rendition(long_edge_px=5000), (0, 0, 3000, 2000)) == (3000, 2000)  # never enlarged
    assert rendition_size(full, (0, 0, 3000, 2000)) == (3000, 2000)
    # A short edge whatever the orientation, a pixel count whatever the shape; neither enlarges.
    assert rendition_size(Rendition(short_edge_px=1080), (0, 0, 3000, 2000)) == (1620, 1080)
    assert rendition_size(Rendition(short_edge_px=1080), (0, 0, 2000, 3000)) == (1080, 1620)
    assert rendition_size(Rendition(short_edge_px=4000), (0, 0, 3000, 2000)) == (3000, 2000)
    assert rendition_size(Rendition(megapixels=1.5), (0, 0, 3000, 2000)) == (1500, 1000)
    assert rendition_size(Rendition(megapixels=1.5), (0, 0, 1000, 4000)) == (612, 2449)
    assert rendition_size(Rendition(megapixels=24), (0, 0, 3000, 2000)) == (3000, 2000)
    # The plan's crop wins; without one, a centred crop of the aspect that fits the turn.
    planned = Adjustments(crops={"4:5": (100, 0, 1600, 2000)})
    assert rendition_frame(box, planned, 3000, 2000) == (100, 0, 1600, 2000)
    x, y, w, h = rendition_frame(box, Adjustments(angle_deg=2.0), 3000, 2000)
    assert w / h == pytest.approx(0.8) and x + w / 2 == pytest.approx(1500)
    # Turned, uncropped: the largest inscribed frame.
    assert rendition_frame(web, Adjustments(angle_deg=3.0), 3000, 2000) == pytest.approx(inscribed_box(3000, 2000, 3.0))
    # An exact box enlarges up to max_upscale (1.0 by default: "don't enlarge"), then is delivered smaller in
    # its shape; with beyond_max_upscale: flag it is delivered as asked (and the plan flags it).
    assert rendition_size(box, (100, 0, 1600, 2000)) == (400, 500)
    assert rendition_size(box, (100, 0, 160, 200)) == (160, 200)
    assert rendition_size(Rendition(crop="4:5", width_px=400, height_px=500, max_upscale=2.0), (100, 0, 160, 200)) \
        == (320, 400)
    assert rendition_size(Rendition(crop="4:5", width_px=400, height_px=500, beyond_max_upscale="flag"),
                          (100, 0, 160, 200)) == (400, 500)
    assert required_scale({"web": web}, none, 3000, 2000) == pytest.approx(667 / 2000)  # rounding up 666.7
    assert required_scale({"web": web, "full": full}, none, 3000, 2000) == 1.0


def test_output_to_frame_maps_the_raster_onto_the_turned_box() -> None:
    box, angle, size = (100.0, 50.0, 400.0, 300.0), 7.0, (80, 60)
    m = output_to_frame(box, angle, size)
    # Output raster corners (continuous coords = index - 0.5 .. size - 0.5).
    raster = [(-0.5, -0.5), (79.5, -0.5), (79.5, 59.5), (-0.5, 59.5)]
    mapped = [tuple((m @ [u, v, 1])[:2]) for u, v in raster]
    for got, want in zip(mapped, rotated_corners(box, angle)):
        assert got == pytest.approx(want, abs=1e-9)


# --- warp ------------------------------------------------------------------------------------


def test_warp_identity_is_an_exact_copy() -> None:
    rng = np.random.default_rng(1)
    src = rng.integers(0, 65536, size=(40, 60, 3), dtype=np.uint16)
    out = warp_frame(src, (0, 0, 60, 40), 0.0, (60, 40))
    np.testing.assert_allclose(out, src.astype(np.float32) / 65535, rtol=1e-6)
    src_f = src.astype(np.float32) / 65535
    out_f = warp_frame(src_f, (10, 5, 30, 20), 0.0, (30, 20))
    np.testing.assert_array_equal(out_f, src_f[5:25, 10:40])
    assert not np.shares_memory(out_f, src_f)


def test_warp_half_size_decode_coordinates() -> None:
    # A full-res 200x100 frame decoded at half size (100x50), left half white.
    src = np.zeros((50, 100, 3), np.float32)
    src[:, :50] = 1.0
    whole = warp_frame(src, (0, 0, 200, 100), 0.0, (100, 50), src_scale=(0.5, 0.5))
    assert whole[:, :48].min() > 0.99 and whole[:, 52:].max() < 0.01
    # Full-res box (50, 0, 100, 100) straddles the edge at full-res x = 100: its left half is white.
    part = warp_frame(src, (50, 0, 100, 100), 0.0, (100, 100), src_scale=(0.5, 0.5))
    assert part[:, :47].min() > 0.99 and part[:, 53:].max() < 0.01


def test_unturned_downscale_averages_the_decoded_pixels_once() -> None:
    # One resampling: each output pixel is the mean of exactly the decoded pixels under it,
    # for a whole frame and for a crop of a half-size decode (not an area shrink plus a cubic warp).
    rng = np.random.default_rng(2)
    src = rng.random((48, 64, 3)).astype(np.float32)
    out = warp_frame(src, (0, 0, 64, 48), 0.0, (16, 12))
    np.testing.assert_allclose(out, src.reshape(12, 4, 16, 4, 3).mean(axis=(1, 3)), atol=1e-6)
    crop = warp_frame(src, (16, 8, 64, 48), 0.0, (16, 12), src_scale=(0.5, 0.5))
    np.testing.assert_allclose(crop, src[4:28, 8:40].reshape(12, 2, 16, 2, 3).mean(axis=(1, 3)), atol=1e-6)
    # A crop off the decode's pixel grid is snapped to it (at most half a decoded pixel per edge).
    off = warp_frame(src, (16.6, 7.4, 64, 48), 0.0, (16, 12), src_scale=(0.5, 0.5))
    np.testing.assert_allclose(off, src[4:28, 8:40].reshape(12, 2, 16, 2, 3).mean(axis=(1, 3)), atol=1e-6)


def test_big_downscale_does_not_alias() -> None:
    # One-pixel stripes averaged by an 8x downscale: grey, not a moire of black and white.
    stripes = np.zeros((800, 800, 3), np.float32)
    stripes[:, ::2] = 1.0
    out = warp_frame(stripes, (0, 0, 800, 800), 1.0, (100, 100))
    assert abs(float(out.mean()) - 0.5) < 0.01
    assert float(out[5:-5, 5:-5].std()) < 0.03


def test_turned_box_follows_the_content() -> None:
    # A bright square turned 10 deg CCW; the box turned the same way sees it upright and centred.
    h = w = 401
    img = np.zeros((h, w, 3), np.float32)
    img[150:251, 150:251] = 1.0
    m = cv2.getRotationMatrix2D((200.0, 200.0), 10.0, 1.0)
    turned = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR)
    out = warp_frame(turned, (100.5, 100.5, 201, 201), 10.0, (201, 201))
    ys, xs = np.nonzero(out[..., 0] > 0.5)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == pytest.approx((50, 150, 50, 150), abs=1)


# --- gains and faces ----------------------------------------------------------------------


def test_face_lift_mask_shape() -> None:
    box = (100.0, 100.0, 100.0, 60.0)  # ellipse centred (150, 130), semi-axes 50 x 30
    xs = np.array([150, 190, 150, 210, 215, 260], np.float32)
    ys = np.array([130, 130, 155, 130, 130, 130], np.float32)
    m = face_lift_mask(xs, ys, box, feather_px=20)
    assert m[:3] == pytest.approx([1, 1, 1])
    assert m[3] == pytest.approx(0.5) and m[4] == pytest.approx(1 - 0.75**2 * (3 - 1.5))  # smoothstep past x=200
    assert m[5] == 0.0
    hard = face_lift_mask(xs, ys, box, feather_px=0)
    assert list(hard) == [1, 1, 1, 0, 0, 0]


def test_face_lift_brightens_the_face_only() -> None:
    rgb = np.full((100, 200, 3), 0.1, np.float32)
    to_frame = output_to_frame((0, 0, 400, 200), 0.0, (200, 100))  # output at half the full resolution
    apply_face_lifts(rgb, [FaceLift((80, 80, 40, 40), 1.0, 10.0)], to_frame)
    assert rgb[50, 50] == pytest.approx([0.2, 0.2, 0.2], rel=1e-5)  # full-res (101, 101): the face centre
    assert rgb[50, 150] == pytest.approx([0.1, 0.1, 0.1])
    assert rgb[5, 5] == pytest.approx([0.1, 0.1, 0.1])
    # Overlapping faces take the larger lift, not the sum.
    rgb2 = np.full((100, 200, 3), 0.1, np.float32)
    apply_face_lifts(rgb2, [FaceLift((80, 80, 40, 40), 1.0, 10.0), FaceLift((85, 85, 30, 30), 0.5, 10.0)], to_frame)
    assert rgb2[50, 50, 0] == pytest.approx(0.2, rel=1e-5)


# --- output encoding ------------------------------------------------------------------------


def test_encode_fast_matches_the_reference() -> None:
    v = np.linspace(-0.1, 1.2, 30000, dtype=np.float32).reshape(1, -1, 3)
    for space in ("srgb", "display_p3", "adobe_rgb"):
        np.testing.assert_allclose(encode_fast(space, v), encode(space, v), atol=2e-6)


def test_finish_known_values() -> None:
    grey = np.full((8, 8, 3), 0.18, np.float32)
    # 18% grey is sRGB 118 (0.4613 * 255); white is 255 in every space.
    assert finish_rendition(grey.copy(), "srgb", 0.0, 8)[0, 0].tolist() == [118, 118, 118]
    want16 = round(float(linear_to_srgb(np.float32(0.18))) * 65535)
    assert abs(finish_rendition(grey.copy(), "srgb", 0.0, 16)[0, 0].astype(int) - want16).max() <= 1
    white = np.ones((4, 4, 3), np.float32)
    assert finish_rendition(white.copy(), "adobe_rgb", 0.0, 16)[0, 0].tolist() == [65535] * 3
    # Gains (white balance x exposure) apply before encoding; over-range clips.
    out = finish_rendition(grey.copy(), "srgb", 0.0, 8, gains=(2.0, 1.0, 0.5))
    want = np.round(linear_to_srgb(np.array([0.36, 0.18, 0.09])) * 255)
    assert out[0, 0].tolist() == want.tolist()
    # What the source blew stays white (a blown lamp under a cooling correction is not turned cyan), and under
    # gains all below 1 it goes a neutral grey at the largest gain.
    assert finish_rendition(white.copy(), "srgb", 0.0, 8, gains=(0.7, 1.0, 1.4))[0, 0].tolist() == [255] * 3
    assert finish_rendition(white.copy(), "adobe_rgb", 0.0, 16, gains=(0.7, 1.0, 1.4))[0, 0].tolist() == [65535] * 3
    rolled = finish_rendition(white.copy(), "srgb", 0.0, 8, gains=(0.7, 1.0, 1.4), white=2.0)[0, 0]  # the shoulder's way
    assert rolled.tolist() == [rolled[0]] * 3
    dim = finish_rendition(white.copy(), "srgb", 0.0, 8, gains=(0.25, 0.4, 0.5))[0, 0]
    assert dim.tolist() == [round(float(linear_to_srgb(np.float32(0.5))) * 255)] * 3
    # ... and a yellow lamp blown in red and green stays yellow, tones rising with the source through the blend ...
    ramp = np.full((1, 64, 3), 0.5, np.float32)
    ramp[0, :, :2] = np.linspace(0.6, 1.0, 64)[:, None]
    yellow = finish_rendition(ramp.copy(), "srgb", 0.0, 16, gains=(0.7, 1.0, 1.0))[0]
    assert (np.diff(yellow[:, 0].astype(int)) >= 0).all() and yellow[-1, :2].tolist() == [65535, 65535]
    assert yellow[0, 0] == round(float(linear_to_srgb(np.float32(0.42))) * 65535)
    # ... while a red blown alone (a face's highlight) takes the red gain, as the skin around it does: not pink.
    skin = np.array([[[1.0, 0.6, 0.45]]], np.float32)
    cooled = finish_rendition(skin.copy(), "srgb", 0.0, 16, gains=(0.8, 1.0, 1.35))[0, 0]
    assert cooled[0] == round(float(linear_to_srgb(np.float32(0.8))) * 65535)
    # Sharpening leaves flat areas alone and steepens an edge.
    assert finish_rendition(grey.copy(), "srgb", 2.0, 8)[4, 4].tolist() == [118, 118, 118]
    edge = np.full((16, 16, 3), 0.05, np.float32)
    edge[:, 8:] = 0.4
    soft = finish_rendition(edge.copy(), "srgb", 0.0, 8)[8]
    sharp = finish_rendition(edge.copy(), "srgb", 1.0, 8)[8]
    assert sharp[7, 1] < soft[7, 1] and sharp[8, 1] > soft[8, 1]
    assert sharp[0, 1] == soft[0, 1]


def test_finish_converts_to_the_rendition_space() -> None:
    # Pure sRGB green is inside Adobe RGB: there it has red and blue components below full.
    green = np.zeros((2, 2, 3), np.float32)
    green[..., 1] = 1.0
    out = finish_rendition(green, "adobe_rgb", 0.0, 16)[0, 0]
    assert out[1] > 60000 and 20000 < out[0] < 40000 and out[2] < 20000


def test_render_renditions_end_to_end_synthetic() -> None:
    decoded = np.full((100, 150, 3), 0.09, np.float32)  # a half-size decode of a 300x200 frame
    renditions = {
        "web": Rendition(long_edge_px=60, sharpen_amount=0),
        "square": Rendition(crop="1:1", width_px=40, height_px=40, format="tiff", bit_depth=16, sharpen_amount=0),
    }
    adj = Adjustments(exposure_ev=1.0, angle_deg=2.0)
    out = render_renditions(decoded, 300, 200, adj, renditions)
    assert out["web"].shape == (40, 60, 3) and out["web"].dtype == np.uint8
    assert out["square"].shape == (40, 40, 3) and out["square"].dtype == np.uint16
    assert out["web"][20, 30].tolist() == [118] * 3  # 0.09 lifted 1 EV is 18% grey


def test_render_key_tracks_operations_and_chart() -> None:
    chart = load_chart("base").chart
    a = render_key("abc", chart, [op("exposure", {"ev": 0.5})])
    assert a == render_key("abc", chart, [op("exposure", {"ev": 0.5})])
    assert a != render_key("abc", chart, [op("exposure", {"ev": 0.6})])
    assert a != render_key("abd", chart, [op("exposure", {"ev": 0.5})])
    assert a != render_key("abc", load_chart("social_media").chart, [op("exposure", {"ev": 0.5})])


# --- real files ---------------------------------------------------------------------------------


def test_straightening_restores_the_original(faces_dir: Path, tmp_path: Path) -> None:
    """Turn a real photo by a known angle; the straightened render must match the original's centre."""
    src = faces_dir / "2008_001322.jpg"
    angle = 4.0
    turned = turned_copy(src, angle, tmp_path / "turned.png")
    chart = load_chart(GOLDEN / "straighten" / "chart.yaml")
    item = run_stages(turned, chart, [op("straighten", {"angle_deg": angle, "axis": "horizon"})], tmp_path)
    out = item.artifacts["renditions"]["golden"]
    # Turning about the centre keeps centred boxes centred: the inscribed frame of the turned image is
    # the same-size centred box of the original.
    h, w = item.record.frame.height, item.record.frame.width
    x, y, bw, bh = inscribed_box(w, h, angle)
    original = read_rgb(src)
    crop = original[int(round(y)) : int(round(y + bh)), int(round(x)) : int(round(x + bw))]
    crop = cv2.resize(crop, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_AREA)
    de = delta_e(out, crop)
    # Two resamplings and sharpening differ at edges; a wrong angle or sign gives mean dE > 10.
    assert float(np.median(de)) < 2.0, float(np.median(de))
    unturned = run_stages(turned, chart, [], tmp_path).artifacts["renditions"]["golden"]
    assert float(np.median(delta_e(cv2.resize(unturned, (out.shape[1], out.shape[0])), crop))) > 3 * float(np.median(de))


def test_proxy_reuse_matches_a_fresh_decode(raw_dir: Path, tmp_path: Path) -> None:
    chart = load_chart(GOLDEN / "crw_exposure_white_balance" / "chart.yaml")
    ops = [op("exposure", {"ev": 0.5})]
    path = raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW"
    fresh = run_stages(path, chart, ops, tmp_path, reuse_proxy=False).artifacts["renditions"]["golden"]
    reused = run_stages(path, chart, ops, tmp_path, reuse_proxy=True).artifacts["renditions"]["golden"]
    de = delta_e(fresh, reused)
    assert float(de.mean()) < 1.0


def test_rejected_frames_are_not_rendered(raw_dir: Path, tmp_path: Path) -> None:
    from render_cases import task_for

    from pipeline.kernel.records import Verdict, WorkItem
    from pipeline.kernel.stage import RunContext
    from stages.render import Render

    chart = load_chart(GOLDEN / "crw_exposure_white_balance" / "chart.yaml")
    task = task_for(raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW")
    item = WorkItem(task=task, record=task.new_record())
    item.record.frame.width, item.record.frame.height, item.record.plan.verdict = 2312, 1720, Verdict.REJECT
    Render(Render.Params(), RunContext(shoot_dir=raw_dir, out_dir=tmp_path, chart=chart)).process(item)
    assert item.artifacts["renditions"] == {}


def test_a_shrunk_jpeg_is_decoded_by_dct_scaling_only(exposure_dir: Path) -> None:
    # The render resamples a raster once: the decode stops at JPEG's own 1/2, 1/4, 1/8 scaling
    # (no less than the size asked for) instead of area-shrinking to it first.
    from pipeline.imaging.decode import decode_raster
    from pipeline.imaging.render import decode_for_render
    from pipeline.kernel.records import SourceKind

    src = exposure_dir / "a0964-20061224_140610__E6B7217_N1.5.JPG"
    full, meta = decode_raster(src, None, 250_000_000)
    scale = 700 / max(meta.width, meta.height)
    decoded = decode_for_render(src, SourceKind.RASTER, meta.width, meta.height, scale, 250_000_000)
    assert max(decoded.shape[:2]) >= 700
    assert max(decoded.shape[:2]) in {-(-max(full.shape[:2]) // d) for d in (1, 2, 4, 8)}


# --- highlight roll-off ------------------------------------------------------------------------------


def test_highlight_shoulder_keeps_the_tones_below_the_knee_and_lands_white_on_white() -> None:
    from pipeline.imaging.render import SHOULDER_KNEE, highlight_shoulder

    source = np.linspace(0.0, 1.0, 1001, dtype=np.float32)
    pushed = np.repeat((source * 4.0)[:, None], 3, axis=1).reshape(1, -1, 3)  # +2 EV
    out = highlight_shoulder(pushed.copy(), white=4.0)[0, :, 0]
    below = source * 4.0 <= SHOULDER_KNEE
    np.testing.assert_allclose(out[below], source[below] * 4.0, rtol=1e-6)  # the plan's exposure, exactly
    assert out[-1] == pytest.approx(1.0, abs=1e-6)  # the source's white is display white
    assert np.all(np.diff(out) > 0)  # tones keep their order: nothing flattens into white
    assert out[900] < 0.99  # a tone a tenth below the source's white stays short of display white
    # No kink at the knee: the slope in stops leaves 1 continuously.
    k = np.searchsorted(source * 4.0, SHOULDER_KNEE)
    s_in = np.log2(out[k + 1] / out[k]) / np.log2(source[k + 1] / source[k])
    assert s_in == pytest.approx(1.0, abs=0.02)
    # A pull (or no push) changes nothing.
    same = np.full((2, 2, 3), 0.9, np.float32)
    assert np.array_equal(highlight_shoulder(same.copy(), white=1.0), same)
    with pytest.raises(ValueError, match="knee"):
        highlight_shoulder(same, white=2.0, knee=1.0)


def test_a_push_rolls_highlights_off_instead_of_clipping_them() -> None:
    from pipeline.imaging.render import shoulder_white, source_white

    rng = np.random.default_rng(5)
    photo = rng.uniform(0.0, 1.0, (64, 96, 3)).astype(np.float32) ** 2  # a spread of tones, a few near white
    photo[:4] = 1.0  # and a blown sky
    as_shot = finish_rendition(photo.copy(), "srgb", 0.0, 8)
    shot_clipped = np.mean(np.any(as_shot >= 255, axis=2))
    for ev in (0.5, 1.0, 2.0):
        gain = 2.0**ev
        adjust = Adjustments(exposure_ev=ev)
        # Shot under, pushed back: its highlights were a stop or two below full scale, no roll-off needed.
        under = photo * np.float32(1 / gain)
        back = finish_rendition(under.copy(), "srgb", 0.0, 8, gains=(gain,) * 3,
                                white=shoulder_white(adjust, source_white(under)))
        assert np.mean(np.any(back >= 255, axis=2)) - shot_clipped <= 0.005, ev
        assert np.abs(back.astype(int) - as_shot.astype(int)).max() <= 1, ev  # the photo as shot, to the 8-bit step
        # A frame that already reaches white, pushed: rolled off, far fewer pixels at white than a plain gain.
        rolled = finish_rendition(photo.copy(), "srgb", 0.0, 8, gains=(gain,) * 3,
                                  white=shoulder_white(adjust, source_white(photo)))
        hard = finish_rendition(photo.copy(), "srgb", 0.0, 8, gains=(gain,) * 3)  # the old clip
        new_rolled = np.mean(np.any(rolled >= 255, axis=2)) - shot_clipped
        new_hard = np.mean(np.any(hard >= 255, axis=2)) - shot_clipped
        assert new_hard > 0.05 and new_rolled < 0.25 * new_hard, (ev, new_rolled, new_hard)
    assert shoulder_white(Adjustments(exposure_ev=-1.0), 0.3) == 1.0  # a pull needs no roll-off


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_a_jpeg_developed_under_is_pushed_back_to_how_it_was_developed(name: str) -> None:
    """A push on a rendered source moves its key as the push moves scene light, through the camera-like curve.

    A real photo taken back to scene light through the film curve the accuracy corpus develops with, developed
    1.5 EV under (8-bit sRGB, as a JPEG stores it) and pushed by 1.5 EV as the plan asks: its key lands within
    0.15 EV of the photo developed right (-0.04 to +0.02 for these three). A gain of 2**1.5 on its display light,
    what the renderer applied before, leaves it 0.24-0.6 EV under: the curve is steeper than 1:1 below the key.
    """
    from skimage import data

    from benchmarks.accuracy_corpus import film_curve_inverse, film_curve_render, srgb8_to_linear, to_srgb8
    from benchmarks.rendered_push import key_log2 as key

    scene = film_curve_inverse(srgb8_to_linear(getattr(data, name)()[..., :3]))
    truth = to_srgb8(film_curve_render(scene))
    twin = srgb8_to_linear(to_srgb8(film_curve_render(scene * 2.0**-1.5))).astype(np.float32)
    h, w = twin.shape[:2]
    push = op("exposure", {"ev": 1.5})
    adjust = adjustments_from_operations([push], display_referred=True)
    assert adjust.exposure_ev == 1.5 and adjust.gain_ev == pytest.approx(2.2, abs=0.05)  # at a photograph's key
    assert 1.8 <= adjust.for_source(twin).gain_ev <= 2.3  # at this photo's own level

    def delivered(a: Adjustments) -> np.ndarray:
        return render_frame(twin, w, h, a, (0.0, 0.0, float(w), float(h)), (w, h), "srgb", 0.0, 8)

    assert abs(key(delivered(adjust)) - key(truth)) <= 0.15
    assert key(delivered(Adjustments(exposure_ev=1.5))) - key(truth) < -0.2  # the display gain alone
    # A RAW's pixels are scene light already: its push is the plain gain.
    assert adjustments_from_operations([push]).gain_ev == 1.5


def test_only_what_was_blown_in_the_source_is_delivered_at_white() -> None:
    from pipeline.imaging.render import SHOULDER_TOP, highlight_shoulder

    # A source whose highlights (its 99.9th percentile) sit at 0.9, with a few pixels up to full scale.
    source = np.array([0.2, 0.8, 0.9, 0.92, 0.94, 1.0], np.float32)
    gain = 2.0
    pushed = np.repeat((source * gain)[:, None], 3, axis=1).reshape(1, -1, 3)
    out = highlight_shoulder(pushed.copy(), white=0.9 * gain, full_scale=gain)[0, :, 0]
    assert out[0] == pytest.approx(0.2 * gain)  # below the knee: the plan's exposure
    assert out[2] == pytest.approx(SHOULDER_TOP, abs=1e-5)  # the highlights: just short of white
    assert np.all(np.diff(out) > 0) and out[4] < 1.0  # the rest in order, short of white
    assert out[5] == 1.0  # blown in the source: white
    encoded = finish_rendition(pushed.copy(), "srgb", 0.0, 8, gains=(1.0,) * 3, white=0.9 * gain, full_scale=gain)
    assert list(encoded[0, :, 0] >= 255) == [False, False, False, False, False, True]


def develop_film_like(light: np.ndarray) -> np.ndarray:
    """Scene light developed through the camera-like curve as the accuracy benchmark develops its JPEG twins: each
    pixel's brightest and darkest channel through the curve, the middle one kept in between (float32)."""
    from pipeline.imaging.measure.metering import tone_curve

    hi, lo = light.max(axis=2), light.min(axis=2)
    t = np.where((hi - lo)[..., None] > 1e-12, (light - lo[..., None]) / np.maximum(hi - lo, 1e-12)[..., None], 0.0)
    new_hi, new_lo = tone_curve(np.clip(hi, 0, 1)), tone_curve(np.clip(lo, 0, 1))
    return (new_lo[..., None] + t * (new_hi - new_lo)[..., None]).astype(np.float32)


def film_like_jpeg(light: np.ndarray) -> np.ndarray:
    """Scene light developed by :func:`develop_film_like`, saved as a JPEG (quality 90) and read back: sRGB codes."""
    import io

    from PIL import Image

    from pipeline.imaging.color import linear_to_srgb

    buf = io.BytesIO()
    Image.fromarray(np.round(linear_to_srgb(develop_film_like(light)) * 255.0).astype(np.uint8)).save(buf, "JPEG",
                                                                                                       quality=90)
    return np.asarray(Image.open(buf)).astype(int)


def fine_detail(a: np.ndarray) -> np.ndarray:
    """A picture's plane less its Gaussian blur of 2 px: its fine detail."""
    a = np.asarray(a, np.float32)
    return a - cv2.GaussianBlur(a, (0, 0), 2.0)


def smooth_and_bright(truth: np.ndarray, above: int) -> np.ndarray:
    """Where the picture (sRGB codes) is smooth (its fine detail under 1 code within 4 px) and brighter than
    ``above`` in its brightest channel."""
    return (cv2.GaussianBlur(np.abs(fine_detail(truth.mean(axis=2))), (0, 0), 4.0) < 1.0) & (truth.max(axis=2) > above)


def test_a_rendered_source_is_darkened_in_its_scene_light() -> None:
    """A JPEG over-exposed before its camera's curve comes back to the photo as the curve made it."""
    # A real photo's scene light (scikit-image's coffee, sRGB-decoded), developed 1.5 EV over through the
    # camera-like curve (hue-preserving, on each pixel's brightest and darkest channel), as the accuracy
    # benchmark develops its JPEG twins.
    from skimage import data

    from pipeline.imaging.measure.metering import darken_display_referred
    from pipeline.imaging.render import render_frame, scene_gain

    scene = (data.coffee()[::4, ::4] / 255.0) ** 2.2 * 0.5

    published, over = develop_film_like(scene), develop_film_like(scene * 2.0**1.5)
    h, w = published.shape[:2]
    darken = Adjustments(exposure_ev=-1.5, display_referred=True)
    assert scene_gain(darken) == pytest.approx(2.0**-1.5)
    assert scene_gain(Adjustments(exposure_ev=-1.5)) == 1.0  # a RAW's pixels are scene light: a plain gain
    assert scene_gain(Adjustments(exposure_ev=1.0, display_referred=True)) == 1.0  # a push: the shoulder's

    def render(image: np.ndarray, adjust: Adjustments) -> np.ndarray:
        return render_frame(image, w, h, adjust, (0.0, 0.0, float(w), float(h)), (w, h), "srgb", 0.0, 8).astype(int)

    expected = render(published, Adjustments())
    scene_way = render(over, darken)
    gain_way = render(over, Adjustments(exposure_ev=-1.5))
    unclipped = np.all(scene * 2.0**1.5 < 0.98, axis=2)  # where the push lost nothing
    assert np.median(np.abs(scene_way - expected)[unclipped]) <= 1  # the published photo, to the 8-bit step
    assert np.median(np.abs(gain_way - expected)[unclipped]) >= 8  # a gain on the display light is not it
    # White stays nearer white than under the plain gain (grey 158 of 255), and order is kept.
    white = darken_display_referred(np.ones((1, 1, 3)), 2.0**-1.5)[0, 0, 0]
    assert 0.6 < white < 1.0 and white > 2.0**-1.5
    ramp = darken_display_referred(np.repeat(np.linspace(0, 1, 50)[:, None], 3, axis=1)[None], 0.5)[0, :, 0]
    assert np.all(np.diff(ramp) > 0) and ramp[0] == 0.0
    # Hue and saturation kept: the brightest channel takes the curve, the others are scaled with it.
    colour = np.array([[[0.6, 0.4, 0.2]]])
    out = darken_display_referred(colour, 0.5)[0, 0]
    np.testing.assert_allclose(out / colour[0, 0], out[0] / 0.6)
    with pytest.raises(ValueError, match="gain"):
        darken_display_referred(colour, 1.5)


@pytest.mark.parametrize("photo", ["coffee", "chelsea"])
def test_a_darkened_jpeg_keeps_its_noise_as_it_was_seen(photo: str) -> None:
    """An over-exposed JPEG darkened in its scene light does not come out with its noise and 8-bit steps steepened.

    A real photo (scikit-image's) developed 1.5 EV over through the camera-like curve and saved as a JPEG
    (quality 90): near white the darkening steepens its tones 3-6 times, and the JPEG's noise with them. Against
    the photo developed right, the renderer's darkening (its detail kept as displayed) leaves the areas smooth
    and bright in the truth about as quiet as the truth, where each pixel darkened alone makes them at least 1.5
    times noisier; the detail and the tones come out closer too.
    """
    from skimage import data

    from pipeline.imaging.color import linear_to_srgb, srgb_to_linear
    from pipeline.imaging.measure.metering import darken_display_referred
    from pipeline.imaging.render import render_frame

    scene = srgb_to_linear(getattr(data, photo)() / 255.0).astype(np.float64) * 0.5

    def codes(display: np.ndarray) -> np.ndarray:
        return np.round(linear_to_srgb(display) * 255.0).astype(int)

    over = srgb_to_linear(film_like_jpeg(scene * 2.0**1.5) / 255.0).astype(np.float32)
    truth = codes(develop_film_like(scene))
    h, w = over.shape[:2]
    rendered = render_frame(over, w, h, Adjustments(exposure_ev=-1.5, display_referred=True),
                            (0.0, 0.0, float(w), float(h)), (w, h), "srgb", 0.0, 8).astype(int)
    alone = codes(darken_display_referred(over, 2.0**-1.5))

    def detail(a: np.ndarray) -> np.ndarray:
        return fine_detail(a.mean(axis=2))

    smooth = smooth_and_bright(truth, 150)
    assert smooth.mean() > 0.02  # the cup and saucer, the cat's white fur
    noise = {name: float(detail(a)[smooth].std()) for name, a in (("truth", truth), ("rendered", rendered),
                                                                   ("alone", alone))}
    assert noise["rendered"] <= 1.2 * noise["truth"], noise
    assert noise["alone"] >= 1.5 * noise["truth"], noise
    assert np.abs(detail(rendered) - detail(truth)).mean() <= 0.8 * np.abs(detail(alone) - detail(truth)).mean()
    assert np.abs(rendered - truth).mean() <= np.abs(alone - truth).mean()


@pytest.mark.parametrize("photo", ["coffee", "astronaut"])
def test_a_balanced_jpeg_keeps_its_chroma_noise_as_it_was_seen(photo: str) -> None:
    """A JPEG shot under a strong warm cast, balanced, does not come out with its chroma noise steepened near white.

    A real photo (scikit-image's) developed through the camera-like curve under a warm cast (red 1.8x, blue 0.5x)
    and saved as a JPEG: the correction's red gain of 0.56 moves red through the curve's shoulder, whose inverse is
    steep near white. Against the photo developed without the cast (saved as a JPEG too), the renderer's balance
    (read at the level's base) leaves the areas smooth and bright in the truth with about the truth's chroma noise,
    where each pixel read at its own level makes it at least 1.5 times the truth's; the tones come out as close.
    """
    from skimage import data

    from pipeline.imaging.color import linear_to_srgb, srgb_to_linear
    from pipeline.imaging.measure.metering import balance_display_referred
    from pipeline.imaging.render import render_frame

    scene = srgb_to_linear(getattr(data, photo)() / 255.0).astype(np.float64) * 0.5
    cast = np.array([1.8, 1.0, 0.5])
    shot = srgb_to_linear(film_like_jpeg(scene * cast) / 255.0).astype(np.float32)
    truth = film_like_jpeg(scene)
    gains = tuple(float(g) for g in 1.0 / cast)
    h, w = shot.shape[:2]
    rendered = render_frame(shot, w, h, Adjustments(wb_gains=gains, display_referred=True),
                            (0.0, 0.0, float(w), float(h)), (w, h), "srgb", 0.0, 8).astype(int)
    alone = np.round(linear_to_srgb(balance_display_referred(shot, np.asarray(gains))) * 255.0).astype(int)
    smooth = smooth_and_bright(truth, 200)
    assert smooth.mean() > 0.01  # the cup and saucer; the astronaut's suit

    def chroma_noise(a: np.ndarray) -> float:
        return float(np.sqrt(np.mean([fine_detail(a[..., c] - a[..., 1])[smooth].var() for c in (0, 2)])))

    noise = {name: chroma_noise(a) for name, a in (("truth", truth), ("rendered", rendered), ("alone", alone))}
    assert noise["rendered"] <= 1.3 * noise["truth"], noise
    assert noise["alone"] >= 1.5 * noise["truth"], noise
    assert np.abs(rendered - truth).mean() <= np.abs(alone - truth).mean()


def test_a_rendered_sources_rows_are_its_whole_picture() -> None:
    """A JPEG balanced and darkened (each step's split read around its rows) comes out strip by strip as whole."""
    from pipeline.imaging.render import render_frame, render_rows

    rng = np.random.default_rng(4)
    picture = np.clip(cv2.GaussianBlur(rng.random((90, 60, 3), dtype=np.float32), (0, 0), 3.0) * 1.6 - 0.3
                      + rng.normal(0.0, 0.01, (90, 60, 3)).astype(np.float32), 0.0, 1.0)
    adjust = Adjustments(wb_gains=(0.6, 1.0, 1.5), exposure_ev=-1.2, display_referred=True)
    box = (0.0, 0.0, 60.0, 90.0)

    def strips_and_whole() -> tuple[np.ndarray, np.ndarray]:
        whole = render_frame(picture.copy(), 60, 90, adjust, box, (60, 90), "srgb", 0.5, 16)
        rows = [render_rows(lambda x0, y0, x1, y1: picture[y0:y1, x0:x1].copy(), 60, 90, adjust, box, (60, 90),
                            (v0, v1), "srgb", 0.5, 16) for v0, v1 in ((0, 7), (7, 40), (40, 89), (89, 90))]
        return np.concatenate(rows), whole

    # With OpenCV's SIMD paths off the strips are the whole to the bit: what postprod reads for each strip is right.
    optimized = cv2.useOptimized()
    cv2.setUseOptimized(False)
    try:
        np.testing.assert_array_equal(*strips_and_whole())
    finally:
        cv2.setUseOptimized(optimized)
    # With them on (OpenCV 5.1's wheel of 2026-12), the sharpening rounds a pixel near the right edge, in the SIMD
    # loop's tail, 1 of 65535 apart when the strip's height differs from the whole's (as test_bayer's masters).
    got, whole = strips_and_whole()
    off = np.abs(got.astype(int) - whole)
    assert int(off.max()) <= 1 and int((off > 0).sum()) <= 2


def test_a_darkening_split_read_by_rows_is_the_whole_pictures() -> None:
    """The renderer splits a darkened picture's level strip by strip (each from its rows and the filter's reach):
    the strips' splits are the whole picture's, at the top and bottom edges too."""
    from pipeline.imaging.measure.metering import DETAIL_REACH, encoded_level, split_level

    rgb = np.random.default_rng(3).random((101, 37, 3), dtype=np.float32)
    level = encoded_level(rgb)
    whole = split_level(level)
    for y0, y1 in ((0, 5), (5, 50), (50, 100), (100, 101), (0, 101), (DETAIL_REACH, DETAIL_REACH + 1)):
        part = split_level(level, (y0, y1))
        np.testing.assert_array_equal(part.base, whole.base[y0:y1])
        np.testing.assert_array_equal(part.detail, whole.detail[y0:y1])
