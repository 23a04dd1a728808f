"""A frame the photographer turned while culling: a RAW's XMP (its sidecar, a DNG's own packet) states the turn in
``tiff:Orientation``, as Camera Raw and Lightroom write it; postprod develops the RAW so, everywhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.imaging.decode import decode_proxy
from pipeline.kernel.ingest import scan_shoot
from pipeline.kernel.records import SourceKind
from pipeline.kernel.run import MANIFEST_NAME, RunSettings, process_shoot
from pipeline.kernel.sidecars import packet_orientation, xmp_orientation
from pipeline.outputs.instructions import instruction_name

ADOBE = Path(__file__).parent / "data" / "adobe_xmp"
#: Camera Raw 9.4's sidecar of a Canon CR2, as it wrote it (tiff:Orientation="1": nothing turned).
ACR_SIDECAR = ADOBE / "01_acr9.4_CR2-sidecar_canon-eos30d.xmp"
RAW = "Canon_PowerShot_G2_CRW_0304.CRW"  # stored as a landscape frame (orientation 1)
OTHER = "Canon_PowerShot_S40_CRW_0101.CRW"


def turned_sidecar(orientation: int) -> str:
    """Camera Raw's sidecar with the photographer's turn in it, as Camera Raw writes a turned frame's."""
    text = ACR_SIDECAR.read_text(encoding="utf-8")
    assert text.count('tiff:Orientation="1"') == 1
    return text.replace('tiff:Orientation="1"', f'tiff:Orientation="{orientation}"')


def test_the_turn_is_read_in_both_of_xmps_forms() -> None:
    assert xmp_orientation({"Xmp.tiff.Orientation": "6"}) == 6
    assert xmp_orientation({"Xmp.tiff.Orientation": " 8 "}) == 8
    for bad in (None, "", "0", "9", "right, top", "6.5"):
        assert xmp_orientation({"Xmp.tiff.Orientation": bad}) is None, bad
    element = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
               b'<rdf:Description rdf:about="" xmlns:tiff="http://ns.adobe.com/tiff/1.0/">'
               b"<tiff:Orientation>3</tiff:Orientation></rdf:Description></rdf:RDF></x:xmpmeta>")
    assert packet_orientation(element, "IMG.dng") == 3
    assert packet_orientation(turned_sidecar(6).encode(), "IMG.dng") == 6
    assert packet_orientation(b"<x:xmpmeta/>", "IMG.dng") is None


def test_a_raws_sidecar_turns_its_task_and_a_rendered_files_does_not(tmp_path: Path, raw_dir: Path,
                                                                     faces_dir: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(raw_dir / RAW, shoot / RAW)
    shutil.copy(raw_dir / OTHER, shoot / OTHER)
    shutil.copy(faces_dir / "2008_001009.jpg", shoot / "IMG_0001.jpg")
    (shoot / (Path(RAW).stem + ".xmp")).write_text(turned_sidecar(6), encoding="utf-8")
    (shoot / "IMG_0001.xmp").write_text(turned_sidecar(6), encoding="utf-8")  # a JPEG's EXIF is its own
    tasks = {t.source_path: t for t in scan_shoot(shoot).tasks}
    assert tasks[RAW].orientation == 6
    assert tasks[OTHER].orientation is None and tasks["IMG_0001.jpg"].orientation is None
    assert scan_shoot(shoot).culling == {}  # a turn alone is no culling (no stars, label or reject)


def test_the_proxy_of_a_turned_raw_is_its_proxy_turned(raw_dir: Path) -> None:
    path = raw_dir / RAW
    own = decode_proxy(path, SourceKind.RAW, 1600, 250_000_000)
    assert own.meta.orientation == 1 and own.meta.width > own.meta.height
    same = decode_proxy(path, SourceKind.RAW, 1600, 250_000_000, orientation=1)  # the file's own: no turn
    assert np.array_equal(same.rgb, own.rgb)
    for orientation, turns in ((6, -1), (8, 1), (3, 2)):  # clockwise, counter-clockwise, half
        turned = decode_proxy(path, SourceKind.RAW, 1600, 250_000_000, orientation=orientation)
        assert turned.meta.orientation == orientation
        expected = np.rot90(own.rgb, turns)
        assert turned.rgb.shape == expected.shape, orientation
        assert float(np.abs(turned.rgb - expected).max()) < 1e-3, orientation
        if orientation != 3:
            assert (turned.meta.width, turned.meta.height) == (own.meta.height, own.meta.width)


def _run(shoot: Path, out: Path) -> dict[str, dict]:
    """Each image's manifest row, with its exports from its instructions."""
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="social_media"))
    rows = {r["source_path"]: r for r in pq.read_table(out / MANIFEST_NAME).to_pylist()}
    for sp, row in rows.items():
        row["exports"] = json.loads((out / "instructions" / instruction_name(sp)).read_text())["exports"]
    return rows


def test_a_frame_turned_in_its_sidecar_is_delivered_turned_and_a_new_turn_is_developed_again(
        tmp_path: Path, raw_dir: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(raw_dir / RAW, shoot / RAW)
    shutil.copy(raw_dir / OTHER, shoot / OTHER)
    plain = _run(shoot, tmp_path / "plain")
    sidecar = shoot / (Path(RAW).stem + ".xmp")
    sidecar.write_text(turned_sidecar(6), encoding="utf-8")
    (shoot / (Path(OTHER).stem + ".xmp")).write_text(turned_sidecar(1), encoding="utf-8")  # its own turn, said
    out = tmp_path / "out"
    rows = _run(shoot, out)
    row, was = rows[RAW], plain[RAW]
    assert row["status"] == "ok" and row["orientation"] == 6 and row["turned_by_xmp"] is True
    assert rows[OTHER]["turned_by_xmp"] is False and plain[RAW]["turned_by_xmp"] is False  # their own turns
    assert json.loads((out / "summary.json").read_text())["turned_by_xmp"] == 1
    assert (out / "report.html").read_text(encoding="utf-8").count("turned in culling") == 1  # its card says so
    assert (row["width"], row["height"]) == (was["height"], was["width"])
    assert rows[OTHER]["orientation"] == plain[OTHER]["orientation"] == 1
    for r in row["exports"]:
        with Image.open(out / r["path"]) as im:
            assert im.height >= im.width or r["rendition"] == "feed_square", (r["rendition"], im.size)
    # The frame the photographer did not turn is delivered as before, to the bit.
    for before, after in zip(plain[OTHER]["exports"], rows[OTHER]["exports"]):
        assert before["sha256"] == after["sha256"]
    # The XMP that replaces the photographer's keeps the turn the crops were written in, for Lightroom.
    delivered = (out / "xmp" / (Path(RAW).stem + ".xmp")).read_text(encoding="utf-8")
    assert 'tiff:Orientation="6"' in delivered
    # Turned the other way in a later culling: the same bytes, analysed and delivered again in the new turn.
    sidecar.write_text(turned_sidecar(8), encoding="utf-8")
    again = _run(shoot, out)[RAW]
    assert again["orientation"] == 8 and (again["width"], again["height"]) == (row["width"], row["height"])
    story = next(e for e in again["exports"] if e["rendition"] == "story")
    first = next(e for e in row["exports"] if e["rendition"] == "story")
    assert story["sha256"] != first["sha256"]


@pytest.mark.parametrize("orientation", [6])
def test_a_dngs_own_packet_turns_it(tmp_path: Path, raw_dir: Path, orientation: int) -> None:
    import subprocess

    if shutil.which("exiftool") is None:
        pytest.fail("exiftool is needed to write the DNG's packet (make system-deps)")
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    dng = shoot / "IMG_0002.dng"
    shutil.copy(raw_dir / "tinydng_colorchart.dng", dng)
    packet = tmp_path / "turn.xmp"
    packet.write_text(turned_sidecar(orientation), encoding="utf-8")
    # Where Lightroom writes a DNG's turn: its XMP packet (its IFD0 Orientation stays the camera's).
    subprocess.run(["exiftool", "-q", "-overwrite_original", f"-xmp<={packet}", str(dng)], check=True)
    (task,) = scan_shoot(shoot).tasks
    assert task.orientation == orientation
    out = tmp_path / "out"
    row = _run(shoot, out)["IMG_0002.dng"]
    assert row["turned_by_xmp"] is True and row["orientation"] == orientation
    # Its delivered copy's packet (which replaces the DNG's own) keeps the turn for Lightroom.
    said = subprocess.run(["exiftool", "-s3", "-XMP-tiff:Orientation#", str(out / "xmp" / "IMG_0002.dng")],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert said == str(orientation)


def test_a_large_sensors_strips_are_developed_in_the_turn(tmp_path: Path, raw_dir: Path) -> None:
    """The region-by-region render (a large sensor's full-size master) reads the photosites in the turn too: forced
    here on a 4 MP frame by lowering the threshold, and compared with the whole decode's master."""
    import tifffile
    import yaml

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(raw_dir / RAW, shoot / RAW)
    (shoot / (Path(RAW).stem + ".xmp")).write_text(turned_sidecar(8), encoding="utf-8")
    chart = tmp_path / "master.yaml"
    chart.write_text("schema_version: 2\nextends: base\ndescription: a full-size master\nrenditions:\n  web: null\n"
                     "  master: {format: tiff, bit_depth: 16, sharpen_amount: 0}\n")
    graph = yaml.safe_load((Path(__file__).parents[1] / "configs" / "default.yaml").read_text())
    for stage in graph["stages"]:
        if stage["stage"] == "render":
            stage.setdefault("params", {})["whole_decode_max_megapixels"] = 1
    regions = tmp_path / "regions.yaml"
    regions.write_text(yaml.safe_dump(graph, sort_keys=False))
    masters = {}
    for name, graph_path in (("whole", None), ("regions", regions)):
        out = tmp_path / name
        process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart=chart, graph_path=graph_path))
        (path,) = (out / "exports").rglob("*.tif")
        masters[name] = tifffile.imread(path).astype(np.float32) / 65535.0
    whole, strips = masters["whole"], masters["regions"]
    assert whole.shape == strips.shape and whole.shape[0] > whole.shape[1]  # turned to a portrait frame both ways
    # OpenCV's demosaic against LibRaw's AHD: the same picture, not the same bits (a wrong turn would not correlate).
    a, b = whole.mean(axis=2)[::8, ::8].ravel(), strips.mean(axis=2)[::8, ::8].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.98


def test_a_frame_the_camera_stored_as_a_portrait_is_turned_back_to_a_landscape(tmp_path: Path, raw_dir: Path) -> None:
    import subprocess

    if shutil.which("exiftool") is None:
        pytest.fail("exiftool is needed to set the DNG's orientation (make system-deps)")
    dng = tmp_path / "IMG_0001.dng"
    shutil.copy(raw_dir / "tinydng_colorchart.dng", dng)
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-IFD0:Orientation#=6", str(dng)], check=True)
    camera = decode_proxy(dng, SourceKind.RAW, 1600, 250_000_000)
    assert camera.meta.orientation == 6 and camera.meta.height > camera.meta.width
    said = decode_proxy(dng, SourceKind.RAW, 1600, 250_000_000, orientation=6)  # Lightroom's copy of the camera's
    assert said.meta.turned_by_xmp is False and np.array_equal(said.rgb, camera.rgb)
    back = decode_proxy(dng, SourceKind.RAW, 1600, 250_000_000, orientation=1)
    assert back.meta.turned_by_xmp is True and back.meta.orientation == 1
    assert (back.meta.width, back.meta.height) == (camera.meta.height, camera.meta.width)
    assert float(np.abs(back.rgb - np.rot90(camera.rgb, 1)).max()) < 1e-3  # the camera's quarter turn undone


def test_a_dry_run_says_which_frames_their_xmp_turns(tmp_path: Path, raw_dir: Path) -> None:
    from click.testing import CliRunner

    from pipeline.cli import EXIT_OK, main

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(raw_dir / RAW, shoot / RAW)
    shutil.copy(raw_dir / OTHER, shoot / OTHER)
    (shoot / (Path(RAW).stem + ".xmp")).write_text(turned_sidecar(6), encoding="utf-8")
    (shoot / (Path(OTHER).stem + ".xmp")).write_text(turned_sidecar(1), encoding="utf-8")  # its own: no turn
    result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(tmp_path / "out"), "--dry-run"])
    assert result.exit_code == EXIT_OK, result.output
    lines = {line.split(" (")[0].strip(): line for line in result.output.splitlines() if ".CRW (" in line}
    assert "turned to orientation 6 by its XMP" in lines[RAW]
    assert "turned" not in lines[OTHER]
    assert not (tmp_path / "out").exists()


def test_a_decode_kept_for_the_render_is_kept_under_its_turn() -> None:
    """A run that stopped leaves its kept decodes for the next (pipeline.kernel.decode_cache); between the two the
    photographer may turn the frame: the same bytes in another turn are not taken for it."""
    from pipeline.kernel import decode_cache

    h = "ab" * 32
    assert decode_cache.entry_name(h) == decode_cache.entry_name(h, None) == h  # every other file: as before
    names = {decode_cache.entry_name(h, o) for o in (None, 1, 6, 8)}
    assert len(names) == 4
