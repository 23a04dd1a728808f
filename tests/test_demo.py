"""The demo shoot: real DNGs from real photos, every kind of row, same bytes each time."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import rawpy
from PIL import Image

import pipeline.cli.demo as demo_module
from pipeline.cli.demo import (
    CAMERA_RAWS,
    DEMO_LONG_EDGE,
    FRAMES,
    GROUP_PHOTOS,
    SHADED_FACES,
    SHADED_NAME,
    SHADED_PHOTO,
    TRUNCATED_NAME,
    build_demo_shoot,
)
from pipeline.kernel.ingest import scan_shoot


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("demo")
    build_demo_shoot(dest, None)
    return dest


def test_every_kind_of_file_is_there(demo: Path) -> None:
    names = {p.name for p in demo.iterdir()}
    assert {f"{f.name}.dng" for f in FRAMES} <= names
    assert {"IMG_0002.JPG", "IMG_0005_copy.dng", "IMG_0001.xmp", ".DS_Store", TRUNCATED_NAME} <= names
    assert not (demo / CAMERA_RAWS).exists()  # no shared RAW folder given
    shoot = scan_shoot(demo)
    assert {s.source_path: s.reason.split(" (")[0] for s in shoot.skipped} == {
        ".DS_Store": "hidden file", "IMG_0001.xmp": "sidecar", "IMG_0002.JPG": "camera JPEG of a RAW+JPEG pair"}
    assert [(d.source_path, d.duplicate_of) for d in shoot.duplicates] == [("IMG_0005_copy.dng", "IMG_0005.dng")]
    formats = {t.source_path: t.format for t in scan_shoot(demo, pairs="both").tasks}
    assert formats["IMG_0002.JPG"] == "jpeg"
    assert formats[TRUNCATED_NAME] == formats["IMG_0001.dng"] == "dng"


def test_dngs_decode_to_the_expected_pictures(demo: Path) -> None:
    for frame in FRAMES:
        with rawpy.imread(str(demo / f"{frame.name}.dng")) as raw:
            out = raw.postprocess(half_size=True, use_camera_wb=True, no_auto_bright=True, gamma=(1, 1), output_bps=16)
            iso = raw.other.iso_speed
        h, w = out.shape[:2]
        assert max(h, w) == DEMO_LONG_EDGE // 2, frame.name
        assert iso == frame.iso
        if frame.portrait_crop:
            assert h > w, "orientation 6 must decode upright, in portrait"
        else:
            assert w > h
    # The astronaut's sample is 512x512, cropped to 4:5 before the shot.
    with rawpy.imread(str(demo / "IMG_0001.dng")) as raw:
        assert raw.sizes.flip == 6
        assert (raw.sizes.width, raw.sizes.height) == (2400, 1918)


def _linear(path: Path) -> np.ndarray:
    """A DNG's half-size decode in linear light, 16-bit, with its camera's white balance."""
    with rawpy.imread(str(path)) as raw:
        return raw.postprocess(half_size=True, use_camera_wb=True, no_auto_bright=True, gamma=(1, 1), output_bps=16)


def test_exposure_errors_are_real(demo: Path) -> None:
    # Same scene statistics, different exposures: the under-exposed frame's
    # mean is about 2**-1.5 of what the same photo gives at +0 EV.
    def mean_level(name: str) -> float:
        return float(_linear(demo / name).mean() / 65535)

    import skimage.data

    from pipeline.imaging.color import srgb_to_linear
    from pipeline.imaging.measure.metering import undevelop

    # The photo's scene light: what a camera-like development made the published picture from.
    reference = float(undevelop(srgb_to_linear(skimage.data.chelsea() / 255.0)).mean())
    assert np.log2(mean_level("IMG_0003.dng") / reference) == pytest.approx(-1.5, abs=0.1)


def test_truncated_file_fails_to_decode(demo: Path) -> None:
    with pytest.raises(rawpy.LibRawError), rawpy.imread(str(demo / TRUNCATED_NAME)) as raw:
        raw.postprocess(half_size=True)


def test_camera_jpeg_carries_exif(demo: Path) -> None:
    with Image.open(demo / "IMG_0002.JPG") as im:
        assert im.size == (2400, 1600)
        exif = im.getexif()
        assert (exif[0x010F], exif[0x0110]) == ("postprod demo", "Synthetic DNG")
        assert exif.get_ifd(0x8769)[0x8827] == 800


def test_build_is_deterministic_and_idempotent(demo: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build_demo_shoot(again, None)
    assert digests(again) == digests(demo)
    before = {p.name: p.stat().st_mtime_ns for p in again.iterdir()}
    (again / "IMG_0003.dng").write_bytes(b"damaged")
    build_demo_shoot(again, None)
    after = {p.name: p.stat().st_mtime_ns for p in again.iterdir()}
    assert {name for name in before if before[name] != after[name]} == {"IMG_0003.dng"}
    assert digests(again) == digests(demo)


def test_camera_raws_are_copied(tmp_path: Path, raw_dir: Path) -> None:
    dest = tmp_path / "shoot"
    dest.mkdir()
    paths = build_demo_shoot(dest, raw_dir)
    copied = sorted(p.name for p in (dest / CAMERA_RAWS).iterdir())
    expected = sorted(p.name for p in raw_dir.iterdir() if p.is_file() and p.suffix.lower() != ".txt")
    assert copied == expected
    assert "unsupported" not in copied
    # Files, not links: process skips links that leave the shoot folder.
    assert not any((dest / CAMERA_RAWS / n).is_symlink() for n in copied)
    assert all((dest / CAMERA_RAWS / n).read_bytes() == (raw_dir / n).read_bytes() for n in copied)
    assert set(paths) >= {dest / CAMERA_RAWS / n for n in copied}
    assert build_demo_shoot(dest, raw_dir) == paths


def test_the_shaded_group_frame_holds_three_faces_to_brighten(tmp_path: Path, faces_dir: Path, monkeypatch) -> None:
    """With the shared group photos, one is the demo camera's frame with a shade over three faces: the shade is
    as deep as asked at each face's centre, the photo is not copied beside its frame, and the plan finds those
    three faces (and no other) to brighten by about the shade's depth."""
    from pipeline.kernel.run import RunSettings, process_shoot

    dest = tmp_path / "shoot"
    (dest / GROUP_PHOTOS).mkdir(parents=True)
    (dest / GROUP_PHOTOS / SHADED_PHOTO).write_bytes((faces_dir / SHADED_PHOTO).read_bytes())  # an older demo's copy
    paths = build_demo_shoot(dest, None, faces_dir)
    frame = dest / f"{SHADED_NAME}.dng"
    assert frame in paths and frame.is_file()
    copied = sorted(p.name for p in (dest / GROUP_PHOTOS).iterdir())
    assert SHADED_PHOTO not in copied and len(copied) == 3
    # The same frame without its shade: each face's centre is as much darker as its shade is deep.
    monkeypatch.setattr(demo_module, "SHADED_FACES", {box: 0.0 for box in SHADED_FACES})
    plain = tmp_path / "plain"
    build_demo_shoot(plain, None, faces_dir)
    monkeypatch.undo()
    shaded, unshaded = (_linear(p)[..., 1].astype(np.float64) for p in (frame, plain / f"{SHADED_NAME}.dng"))
    with Image.open(faces_dir / SHADED_PHOTO) as im:
        scale = shaded.shape[1] / im.width
    for (x, y, w, h), depth in SHADED_FACES.items():
        rows = slice(round((y + h / 4) * scale), round((y + 3 * h / 4) * scale))
        cols = slice(round((x + w / 4) * scale), round((x + 3 * w / 4) * scale))
        assert np.log2(shaded[rows, cols].mean() / unshaded[rows, cols].mean()) == pytest.approx(-depth, abs=0.1)

    shoot = tmp_path / "one"
    shoot.mkdir()
    frame.rename(shoot / frame.name)
    out = tmp_path / "out"
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="social_media"))  # make demo's
    doc = json.loads((out / "instructions" / f"{frame.name}.json").read_text())
    lifts = [op["params"] for op in doc["operations"] if op["kind"] == "brighten_face"]
    full = 2 * scale  # the instructions' boxes are in the full-size frame, twice the half-size decode's
    for box, depth in SHADED_FACES.items():
        cx, cy = (box[0] + box[2] / 2) * full, (box[1] + box[3] / 2) * full
        hits = [p for p in lifts if p["box"][0] <= cx <= p["box"][0] + p["box"][2]
                and p["box"][1] <= cy <= p["box"][1] + p["box"][3]]
        assert len(hits) == 1, (box, lifts)
        assert hits[0]["ev"] == pytest.approx(depth, abs=0.3)
    assert len(lifts) == 3, lifts  # no lit face lifted
    assert doc["summary"].startswith("3 faces to brighten")
