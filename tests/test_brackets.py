"""Exposure brackets: found in a shoot, merged in scene light, delivered once. The truth is a real photograph's
scene light, brighter than one exposure holds, photographed as a camera's AEB would (DNGs at -2, 0 and +2 EV)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.imaging.dng import write_dng_from_linear_rgb
from pipeline.imaging.merge import merge_bracket
from pipeline.imaging.render import decode_for_render
from pipeline.kernel.records import SourceKind
from pipeline.kernel.run import RunSettings, process_shoot

#: How much brighter than full scale the photo's brightest light is made: 1.6 stops the middle frame clips.
SCENE_GAIN = 3.0
SHOT = datetime(2026, 12, 4, 10, 0, 0)


def _scene(faces_dir: Path, name: str = "2008_001009.jpg") -> np.ndarray:
    """A real interior (a PASCAL VOC photo, its sRGB undone) as scene light, its brightest at SCENE_GAIN."""
    srgb = np.asarray(Image.open(faces_dir / name).convert("RGB"), np.float64) / 255.0
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    return linear * SCENE_GAIN / max(float(np.percentile(linear, 99.5)), 1e-6)


def _bracket(folder: Path, scene: np.ndarray, offsets: tuple[float, ...] = (0.0, -2.0, 2.0), start: int = 0,
             stem: str = "IMG_", base_shutter: float = 1 / 60, seconds_apart: float = 1.0) -> list[Path]:
    """The frames a camera's AEB takes of ``scene`` (Canon's order: 0, -2, +2), one a second."""
    paths = []
    for k, off in enumerate(offsets):
        path = folder / f"{stem}{start + k:04d}.dng"
        write_dng_from_linear_rgb(path, np.clip(scene * 2.0**off, 0.0, 1.0), make="postprod", model="AEB test",
                                  captured_at=SHOT + timedelta(seconds=start * 10 + k * seconds_apart), iso=100,
                                  exposure_time=base_shutter * 2.0**off, f_number=8.0, focal_length=24.0)
        paths.append(path)
    return paths


def _decode(path: Path, scene: np.ndarray) -> np.ndarray:
    h, w = scene.shape[:2]
    return decode_for_render(path, SourceKind.RAW, w, h, 1.0, 10**9)


def test_the_merge_recovers_what_the_middle_frame_clipped(tmp_path: Path, faces_dir: Path) -> None:
    scene = _scene(faces_dir)
    middle, dark, bright = (_decode(p, scene) for p in _bracket(tmp_path, scene))
    merged = merge_bracket(middle, [(dark, -2.0, "dark"), (bright, 2.0, "bright")])
    truth = scene.astype(np.float32)
    clipped = (scene.max(axis=2) >= 1.0) & (scene.max(axis=2) * 0.25 < 0.8)  # lost in the middle, held in the dark
    kept = scene.max(axis=2) < 0.5
    assert clipped.mean() > 0.02  # the test means something: a few percent of the frame is blown in the middle
    ratio = merged.max(axis=2)[clipped] / truth.max(axis=2)[clipped]
    assert np.median(np.abs(np.log2(ratio))) < 0.05  # the blown light read back within 4 %
    middle_ratio = (middle.astype(np.float32) / 65535).max(axis=2)[clipped] / truth.max(axis=2)[clipped]
    assert np.median(np.abs(np.log2(middle_ratio))) > 0.3  # where the middle frame alone is far off
    lit = kept & (truth.max(axis=2) > 0.02)
    rest = merged.max(axis=2)[lit] / truth.max(axis=2)[lit]
    assert np.median(np.abs(np.log2(rest))) < 0.03  # what the middle frame held is unchanged


def test_a_moved_frame_is_aligned_and_a_ghost_is_left_out(tmp_path: Path, faces_dir: Path) -> None:
    scene = _scene(faces_dir)
    middle_path, dark_path = _bracket(tmp_path, scene, offsets=(0.0, -2.0))
    moved = np.roll(scene, (3, -5), axis=(0, 1)).copy()  # a hand-held frame, 5 px left and 3 down
    walker = moved.copy()
    walker[40:120, 40:90] = 0.01  # someone in black walked into the dark frame's view
    write_dng_from_linear_rgb(dark_path, np.clip(walker * 0.25, 0.0, 1.0), make="postprod", model="AEB test")
    middle, dark = _decode(middle_path, scene), _decode(dark_path, scene)
    merged = merge_bracket(middle, [(dark, -2.0, "dark")])
    clipped = (scene.max(axis=2) >= 1.0) & (scene.max(axis=2) * 0.25 < 0.8)
    clipped[:10, :] = clipped[-10:, :] = clipped[:, :10] = clipped[:, -10:] = False
    ratio = merged.max(axis=2)[clipped] / scene.max(axis=2)[clipped]
    assert np.median(np.abs(np.log2(ratio))) < 0.1  # aligned: the blown light read back
    box = (slice(40, 120), slice(40, 90))
    held = (scene[box].max(axis=2) < 0.5) & (scene[box].max(axis=2) > 0.05)  # where the middle frame holds it
    assert held.sum() > 1000
    ref = middle[box].astype(np.float32)[held] / 65535
    # Blended in, the walker would pull these pixels a fifth of the way to 0.04 (0.3 -> 0.25: 0.27 stops).
    assert float(np.abs(np.log2(merged[box][held].max(axis=1) / ref.max(axis=1))).max()) < 0.1


@pytest.fixture(scope="module")
def bracket_shoot(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Path:
    """A real-estate shoot: a bracket of three, a burst of another view, two views 20 s apart (processed)."""
    tmp_path = tmp_path_factory.mktemp("brackets")
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    scene = _scene(faces_dir)
    _bracket(shoot, scene)  # IMG_0000-0002: a bracket
    # A flash frame right after the bracket, same ISO and aperture, its shutter a stop from each ("flambient").
    write_dng_from_linear_rgb(shoot / "FLASH_0000.dng", np.clip(scene * 0.6, 0.0, 1.0), make="postprod",
                              model="AEB test", captured_at=SHOT + timedelta(seconds=3), iso=100,
                              exposure_time=1 / 125, f_number=8.0, focal_length=24.0, flash=0x19)
    # Two frames of another view, a burst a third of a stop apart (a meter following the light).
    _bracket(shoot, _scene(faces_dir, "2008_001322.jpg") * 0.5, offsets=(0.0, 0.33), start=3, stem="BURST_")
    # Two views of a third place a stop apart but 20 s apart: the photographer moved on, no bracket.
    _bracket(shoot, _scene(faces_dir, "2007_007763.jpg"), offsets=(0.0, -1.0), start=6, stem="LATER_",
             seconds_apart=20.0)
    out = tmp_path / "out"
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="real_estate_interiors"))
    return out


def test_a_bracket_is_delivered_once_merged(bracket_shoot: Path, faces_dir: Path) -> None:
    out, scene = bracket_shoot, _scene(faces_dir)
    docs = {p.name.removesuffix(".json"): json.loads(p.read_text()) for p in (out / "instructions").glob("*.json")}
    merge = [o for o in docs["IMG_0000.dng"]["operations"] if o["kind"] == "merge_bracket"]
    assert len(merge) == 1 and [(f["source_path"], f["offset_ev"]) for f in merge[0]["params"]["frames"]] == [
        ("IMG_0001.dng", -2.0), ("IMG_0002.dng", 2.0)]
    assert "Photo Merge > HDR" in docs["IMG_0000.dng"]["xmp_note"]
    for other in ("IMG_0001.dng", "IMG_0002.dng"):
        assert docs[other]["verdict"] == "reject"
        assert [o["params"]["merged_into"] for o in docs[other]["operations"] if o["params"].get("check") == "bracket"
                ] == ["IMG_0000.dng"]
        # (near-duplicates of the flash frame, the same view, they may be; of their own bracket, no)
        assert not any(o["params"].get("check") == "duplicates" and o["params"]["duplicate_of"].startswith("IMG_")
                       for o in docs[other]["operations"])
    (flash,) = pq.read_table(out / "manifest.parquet", columns=["source_path", "flash_fired"],
                             filters=[("source_path", "==", "FLASH_0000.dng")]).to_pylist()
    assert flash["flash_fired"] is True
    for burst in ("BURST_0003.dng", "BURST_0004.dng", "LATER_0006.dng", "LATER_0007.dng", "FLASH_0000.dng"):
        assert not any(o["kind"] == "merge_bracket" or o["params"].get("check") == "bracket"
                       for o in docs[burst]["operations"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdicts"]["reject"] == 2 and summary["merged_into_brackets"] == 2
    # The photographer's figures: a bracket's merged frames are not rejections, nor a retoucher's tasks.
    (row,) = pq.read_table(out / "operators.parquet", columns=["rejected", "reasons"]).to_pylist()
    assert row["rejected"] == 0 and dict(row["reasons"])["reject:bracket"] == 2
    exports = pq.read_table(out / "exports.parquet").to_pylist()
    assert sorted({e["source_path"] for e in exports}) == ["BURST_0003.dng", "BURST_0004.dng", "FLASH_0000.dng",
                                                           "IMG_0000.dng", "LATER_0006.dng", "LATER_0007.dng"]
    # The delivery holds the windows: far fewer pixels at white than the middle frame rendered alone.
    web = next(out / e["path"] for e in exports if e["source_path"] == "IMG_0000.dng" and e["rendition"] == "web")
    pixels = np.asarray(Image.open(web).convert("RGB"))
    blown = float((pixels.min(axis=2) >= 254).mean())
    alone = float((np.clip(scene * 2.0**0.3, 0, 1).min(axis=2) >= 0.99).mean())  # the chart's +0.3 EV, no merge
    assert blown < 0.2 * alone, (blown, alone)


def test_charts_that_do_not_merge_deliver_every_frame(tmp_path: Path, faces_dir: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    _bracket(shoot, _scene(faces_dir))
    out = tmp_path / "out"
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="base"))
    exports = pq.read_table(out / "exports.parquet").to_pylist()
    assert sorted({e["source_path"] for e in exports}) == ["IMG_0000.dng", "IMG_0001.dng", "IMG_0002.dng"]


def test_the_review_app_shows_the_bracket_merged_as_delivered(bracket_shoot: Path) -> None:
    from pipeline.outputs.shoot import after_preview_name
    from pipeline.review.app import create_app

    client = create_app(bracket_shoot).test_client()
    resp = client.get("/preview/after/IMG_0000.dng")
    assert resp.status_code == 200
    shown = np.asarray(Image.open(io.BytesIO(resp.data)).convert("RGB"), np.float32)
    doc = json.loads((bracket_shoot / "instructions" / "IMG_0000.dng.json").read_text())
    rendered = bracket_shoot / after_preview_name(doc["content_hash"])  # the render's own picture: merged
    made = np.asarray(Image.open(rendered).convert("RGB"), np.float32)
    assert shown.shape == made.shape
    assert float(np.abs(shown - made).mean()) < 2.0  # the same picture, but for two JPEG encodings
    # The 100% view too (one tile holds this small frame whole).
    tile = client.get("/tile/after/1/0/0/IMG_0000.dng")
    assert tile.status_code == 200
    zoomed = np.asarray(Image.open(io.BytesIO(tile.data)).convert("RGB"), np.float32)
    # 3.0, not 2.0: the RAW's development through the camera-like curve (up to 1.6x as steep as linear light in
    # the mid-tones) steepens the two JPEG encodings' and two resamplings' differences with the picture's contrast.
    assert zoomed.shape == made.shape and float(np.abs(zoomed - made).mean()) < 3.0
