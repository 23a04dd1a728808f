"""Packshot crops: what stands on a white backdrop is never cut by a crop; where no crop of the aspect inside the frame
holds it, the crop reaches beyond the frame and the renderer pads it with the backdrop's colour."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from planning_inputs import face, image_record, of_kind

from benchmarks.packshots import coffee_cup, on_white
from charts.loader import load_chart
from pipeline.cli import main
from pipeline.imaging.geometry import kept_share
from pipeline.imaging.render import Adjustments, padded_split, render_frame
from pipeline.kernel.records import OperationKind
from pipeline.planning.plan import plan_shoot
from pipeline.planning.rules.crops import SUBJECT_MARGIN

SWEEP = [1.0, 0.84, 0.65]


def _packshot_record(box: list[float], **columns):  # noqa: ANN003, ANN202
    """A 3000 x 2000 frame on a white backdrop, what stands on it at ``box`` (fractions x0, y0, x1, y1)."""
    return image_record(exposure_backdrop_pct=60.0, exposure_backdrop_rgb=SWEEP, exposure_subject_box=box, **columns)


def _crops(record) -> dict[str, dict]:  # noqa: ANN001
    plan_shoot([record], load_chart("social_media").chart)  # 4:5, 1:1, 9:16
    return {o.params["aspect"]: o.params for o in of_kind(record.operations, OperationKind.CROP)}


def _whole_on_white(picture: np.ndarray) -> float:
    """Whether a delivered packshot has the product whole on white (nothing but white at its edges: a product cut
    by the crop would reach one), and how much of the picture it fills (pixels under 200 in a channel)."""
    picture = picture.astype(int)
    border = np.concatenate([picture[:3].reshape(-1, 3), picture[-3:].reshape(-1, 3),
                             picture[:, :3].reshape(-1, 3), picture[:, -3:].reshape(-1, 3)])
    assert (border.min(axis=1) >= 250).mean() > 0.99, np.percentile(border.min(axis=1), [1, 50])
    return float((picture.min(axis=2) < 200).mean())


def _held(params: dict, box: list[float]) -> bool:
    x0, y0, x1, y1 = box[0] * 3000, box[1] * 2000, box[2] * 3000, box[3] * 2000
    return kept_share(tuple(params["box"]), 0.0, (x0, y0, x1 - x0, y1 - y0)) > 0.999


def test_a_wide_product_is_held_whole_by_every_crop_padded_where_the_frame_is_too_short() -> None:
    # A car filling most of a 3:2 frame's width: the chart's 1:1, 4:5 and 9:16 crops inside the frame cut it at both
    # ends (2000 px wide at most, for a car 2400 px long); each is widened to hold it, with its air, centred on
    # it, beyond the frame's top and bottom, and padded with the sweep's colour.
    car = [0.1, 0.4, 0.9, 0.75]
    crops = _crops(_packshot_record(car))
    assert set(crops) == {"4:5", "1:1", "9:16"}
    for aspect, p in crops.items():
        x, y, w, h = p["box"]
        assert _held(p, car), (aspect, p)
        assert p["pad_rgb"] == SWEEP and (y < 0 and y + h > 2000), (aspect, p)  # padded above and below
        assert w == pytest.approx(2400 * (1 + 2 * SUBJECT_MARGIN), rel=0.01)  # the car and its air, no more
        assert x + w / 2 == pytest.approx(1500, abs=1)  # centred on it


def test_a_product_a_crop_inside_the_frame_can_hold_is_not_padded() -> None:
    # A bottle to the right of the frame: the chart's centred 4:5 crop would cut it; one slid onto it holds it.
    bottle = [0.62, 0.2, 0.85, 0.9]
    crops = _crops(_packshot_record(bottle))
    for aspect, p in crops.items():
        assert _held(p, bottle) and "pad_rgb" not in p, (aspect, p)
        x, y, w, h = p["box"]
        assert x >= 0 and y >= 0 and x + w <= 3000 + 1e-6 and y + h <= 2000 + 1e-6


def test_a_side_the_product_meets_is_never_padded() -> None:
    # A sofa cut off by the frame's bottom edge (the photographer framed it so): white below it would float it.
    sofa = [0.05, 0.3, 0.95, 1.0]
    for aspect, p in _crops(_packshot_record(sofa)).items():
        x, y, w, h = p["box"]
        assert y + h <= 2000 + 0.1, (aspect, p)
        assert _held(p, [sofa[0], sofa[1], sofa[2], 1.0]), (aspect, p)
    # Cut off at the top and the bottom, it cannot be padded upright: the chart's crop, as without a backdrop,
    # flagged for a retoucher.
    column = [0.3, 0.0, 0.7, 1.0]
    record = _packshot_record(column)
    p = _crops(record)["9:16"]
    assert "pad_rgb" not in p and p["box"][1] >= 0
    (flag,) = [o for o in of_kind(record.operations, OperationKind.FLAG) if o.params.get("aspect") == "9:16"]
    assert flag.params["check"] == "crop" and "meets both edges" in flag.reason


def test_a_person_on_a_seamless_is_held_whole_unless_the_chart_frames_heads() -> None:
    # A model on a white seamless, cut off by the bottom edge: under a chart that places crops on the salient
    # region (social_media) she is held whole as a product is (a crop framing her face cut her raised hands),
    # padded above her head only where the frame is too narrow (9:16), never below the edge she meets.
    person = [0.3, 0.1, 0.7, 1.0]
    record = _packshot_record(person, faces=[face(1350, 300, 300, 0.0)])
    crops = _crops(record)
    for aspect, p in crops.items():
        assert _held(p, person), (aspect, p)
        x, y, w, h = p["box"]
        assert y + h <= 2000 + 1e-6, (aspect, p)  # never padded below the edge she meets
    assert "pad_rgb" in crops["9:16"] and crops["9:16"]["box"][1] < 0
    assert "pad_rgb" not in crops["4:5"] and "pad_rgb" not in crops["1:1"]  # held inside the frame
    # A head-and-shoulders chart (face_aware) frames her face, as people are framed: no pad.
    plan_shoot([record], load_chart("corporate_portrait").chart)
    for o in of_kind(record.operations, OperationKind.CROP):
        assert "pad_rgb" not in o.params, o.params


def test_a_padded_frame_is_the_image_on_its_pad() -> None:
    assert padded_split((10.0, 10.0, 50.0, 40.0), 100, 80, (100, 80)) is None
    inner, (ox, oy, ow, oh) = padded_split((-50.0, 0.0, 200.0, 80.0), 100, 80, (400, 160))
    assert inner == (0.0, 0.0, 100.0, 80.0) and (ox, oy, ow, oh) == (100, 0, 200, 160)
    with pytest.raises(ValueError, match="outside"):
        padded_split((200.0, 0.0, 50.0, 50.0), 100, 80, (50, 50))
    rng = np.random.default_rng(3)
    decoded = rng.uniform(0.05, 0.6, size=(80, 100, 3)).astype(np.float32)
    pad = (0.9, 0.9, 0.9)
    out = render_frame(decoded, 100, 80, Adjustments(pad_rgb=pad), (-50.0, 0.0, 200.0, 80.0), (400, 160), "srgb", 0.0, 8)
    alone = render_frame(decoded, 100, 80, Adjustments(), (0.0, 0.0, 100.0, 80.0), (200, 160), "srgb", 0.0, 8)
    np.testing.assert_array_equal(out[:, 100:300], alone)
    assert np.all(out[:, :100] == out[0, 0]) and np.all(out[:, 300:] == out[0, 0])
    assert out[0, 0, 0] == round(255 * (1.055 * 0.9 ** (1 / 2.4) - 0.055))
    # Without a pad (a crop a reviewer turned, an older plan) the image's edge is repeated, as before.
    plain = render_frame(decoded, 100, 80, Adjustments(), (-50.0, 0.0, 200.0, 80.0), (400, 160), "srgb", 0.0, 8)
    assert not np.all(plain[:, :100] == out[0, 0])


@pytest.mark.parametrize("chart", ["social_media", "ecommerce"])
def test_a_packshot_is_delivered_whole_on_white_in_every_format(tmp_path: Path, chart: str) -> None:
    # scikit-image's cup on a warm sweep, 3:2: its 4:5, 1:1 and 9:16 crops inside the frame all cut the saucer;
    # delivered, each holds it whole on a white canvas.
    shoot, out = tmp_path / "shoot", tmp_path / "out"
    shoot.mkdir()
    Image.fromarray(on_white(coffee_cup(), 0.0, 45.0)).save(shoot / "cup.jpg", quality=95)
    result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--executor", "local", "-q",
                                       "--chart", chart])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "instructions" / "cup.jpg.json").read_text())
    crops = [o for o in doc["operations"] if o["kind"] == "crop"]
    spec = load_chart(chart).chart
    assert len(crops) == len(spec.crops) and all(o["params"].get("pad_rgb") for o in crops), crops
    exports = sorted((out / "exports").rglob("cup*"))
    assert len(exports) == len(spec.renditions)
    for path in exports:
        assert _whole_on_white(np.asarray(Image.open(path).convert("RGB"))) > 0.2, path.name  # 29 % of a 9:16 story
    assert "no crop is written" in (doc.get("xmp_note") or ""), doc.get("xmp_note")
    # A reviewer's decision on the image (accepting its white balance) leaves the padded crops as they are: the
    # review re-fitted every crop to the frame, and shrank them onto the cup.
    from pipeline.review.app import create_app

    client = create_app(out, reviewer="Ana").test_client()
    version = client.get("/api/images/cup.jpg").get_json()["version"]
    resp = client.post("/api/images/cup.jpg", json={"version": version, "changes": [
        {"op_id": next(o["op_id"] for o in doc["operations"] if o["kind"] == "white_balance"), "status": "accepted"}]})
    assert resp.status_code == 200, resp.get_json()
    after = json.loads((out / "instructions" / "cup.jpg.json").read_text())
    assert [o["params"]["box"] for o in after["operations"] if o["kind"] == "crop"] == [o["params"]["box"] for o in crops]


def test_a_raw_packshot_is_whitened_and_padded_as_a_jpeg_is(tmp_path: Path) -> None:
    # The cup on its sweep as sensor data (a DNG: its light 45 mired warm, the sweep blown in red alone on the
    # sensor), delivered under ecommerce: LibRaw's decode goes through the same whitening and padding.
    from benchmarks.accuracy_corpus import film_curve_inverse, srgb8_to_linear, write_dng
    from pipeline.imaging.white_balance import light_rgb

    shoot, out = tmp_path / "shoot", tmp_path / "out"
    shoot.mkdir()
    light = (light_rgb(45.0) / light_rgb(45.0).max()).astype(np.float32)
    write_dng(shoot / "cup.dng", np.clip(film_curve_inverse(srgb8_to_linear(on_white(coffee_cup()))) * light, 0, 1))
    result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--executor", "local", "-q",
                                       "--chart", "ecommerce"])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "instructions" / "cup.dng.json").read_text())
    kinds = [o["kind"] for o in doc["operations"]]
    assert "whiten_backdrop" in kinds and all(o["params"].get("pad_rgb") for o in doc["operations"]
                                              if o["kind"] == "crop"), doc["operations"]
    (main_export,) = (out / "exports").rglob("cup_main.jpg")
    picture = np.asarray(Image.open(main_export).convert("RGB"))
    assert picture.shape[0] == picture.shape[1] and _whole_on_white(picture) > 0.3
