"""The command line: help everywhere, exit codes, summaries, JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
from click.testing import CliRunner
import pyarrow.parquet as pq

from pipeline.cli import EXIT_CONFIG, EXIT_FILES_FAILED, EXIT_OK, main


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in group.commands.items():
        out.append(prefix + (name,))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, prefix + (name,))
    return out


def test_every_command_has_help() -> None:
    runner = CliRunner()
    assert main.help
    for path in _commands(main):
        cmd = main
        for part in path:
            cmd = cmd.commands[part]
        assert cmd.help or cmd.short_help, f"'postprod {' '.join(path)}' has no help text"
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"option {param.opts} of 'postprod {' '.join(path)}' has no help"


def test_describe_prints_the_graph() -> None:
    result = CliRunner().invoke(main, ["describe"])
    assert result.exit_code == 0
    assert "decode_raw" in result.output and "reads:" in result.output


def test_bad_graph_is_exit_2_with_location(tmp_path: Path, raw_dir: Path) -> None:
    bad = tmp_path / "g.yaml"
    bad.write_text("schema_version: 1\nname: g\nstages:\n  - stage: decode_raw\n    parms: {}\n")
    result = CliRunner().invoke(main, ["process", str(raw_dir), "--out", str(tmp_path / "o"), "--graph", str(bad)])
    assert result.exit_code == EXIT_CONFIG
    assert f"{bad}:5" in result.output and "stages.0.parms" in result.output
    assert not (tmp_path / "o").exists()  # nothing processed


def test_process_local_ok_and_partial_failure(tmp_path: Path, raw_dir: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(raw_dir / "Kodak_DC50_DC50IMG_DC0008L.KDC", shoot)
    runner = CliRunner()
    ok = runner.invoke(main, ["process", str(shoot), "--out", str(tmp_path / "o1"), "--executor", "local"])
    assert ok.exit_code == EXIT_OK, ok.output
    assert "1 ok, 0 failed" in ok.output
    (shoot / "broken.NEF").write_bytes(b"\0" * 100)
    bad = runner.invoke(main, ["process", str(shoot), "--out", str(tmp_path / "o2"), "--executor", "local"])
    assert bad.exit_code == EXIT_FILES_FAILED, bad.output
    assert "1 ok, 1 failed" in bad.output and "broken.NEF: decode_raw:" in bad.output
    summary = json.loads((tmp_path / "o2" / "summary.json").read_text())
    assert summary["failed"][0]["source_path"] == "broken.NEF"


def test_inspect_prints_json(raw_dir: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", str(raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW")])
    assert result.exit_code == EXIT_OK, result.output
    data = json.loads(result.output)
    assert data["camera_model"] == "PowerShot G2" and data["width"] == 2312 and data["status"] == "ok"
    assert data["photographer_culling"] is None


def test_inspect_says_what_the_photographer_decided_and_where_it_was_read(tmp_path: Path, raw_dir: Path) -> None:
    # A frame skipped as rejected: inspect names the sidecar that rejects it (the scan reads the same).
    import shutil

    from tests.test_sidecars import _flagged

    shutil.copy(raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW", tmp_path / "IMG_0304.CRW")
    (tmp_path / "IMG_0304.xmp").write_text(_flagged('xmp:Rating="3" xmpDM:pick="-1"'))
    data = json.loads(CliRunner().invoke(main, ["inspect", str(tmp_path / "IMG_0304.CRW")]).output)
    assert data["photographer_culling"] == {"rating": 3, "label": None, "keywords": [], "flag": "reject",
                                            "rejected": True, "read_from": "IMG_0304.xmp"}


def test_missing_shoot_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["process", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == EXIT_CONFIG
    assert "shoot folder not found" in result.output


def test_a_cut_out_is_planned_as_its_opaque_part_reads(tmp_path: Path) -> None:
    # Through the stages: the cup cut out on a transparent background is not darkened for its white background
    # (it was, 2 EV, with flags for the exposure range and 57 % clipped highlights).
    from tests.test_decode import _cutout

    path, _ = _cutout(tmp_path)
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == EXIT_OK, result.output
    data = json.loads(result.output)
    assert abs(data["exposure_meter_ev"]) < 1.0 and data["clipped_highlights_pct"] < 2.0, data
    kinds = {o["op_id"] for o in data["operations"]}
    assert "exposure" not in kinds and not kinds & {"flag-exposure_range", "flag-clipped_highlights"}, kinds


def test_libtiffs_complaints_about_a_damaged_tiff_stay_off_the_console(tmp_path: Path) -> None:
    # A fax-compressed TIFF (a scanned document) with damaged data: libtiff printed one line per bad row from C on
    # standard error, under -q too (879 lines over ImageTestSuite's 726 files). The file is decoded as Pillow
    # decodes it, and the console says nothing of it; -vv prints libtiff's lines again.
    import os
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    Image.fromarray(np.random.default_rng(0).random((200, 300)) > 0.5).convert("1").save(
        shoot / "scan.tif", compression="group4")
    data = bytearray((shoot / "scan.tif").read_bytes())
    for i in range(200, 2000, 7):
        data[i] ^= 0xFF
    (shoot / "scan.tif").write_bytes(bytes(data))
    env = {k: v for k, v in os.environ.items() if k != "POSTPROD_LIBTIFF_MESSAGES"}

    def run(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pipeline.cli", "process", str(shoot), "--out",
                               str(tmp_path / f"out{flags}"), "--executor", "local", "--no-progress", *flags],
                              capture_output=True, text=True, env=env, timeout=300)

    quiet = run("-q")
    assert quiet.returncode in (EXIT_OK, EXIT_FILES_FAILED), quiet.stderr[-2000:]
    assert "Fax4Decode" not in quiet.stderr, quiet.stderr[-2000:]
    loud = run("-vv")
    assert "Fax4Decode: Bad code word" in loud.stderr, loud.stderr[-2000:]


def test_opencvs_tiff_warnings_stay_off_the_console(tmp_path: Path) -> None:
    # A 16-bit RGBA TIFF as OpenCV writes it (its alpha not declared as an extra sample) is read through OpenCV's
    # own libtiff, which warned on the console under the run's summary, once per read. Decoded all the same; the
    # console is quiet, and -vv prints the warning again.
    import os
    import subprocess
    import sys

    import cv2
    import numpy as np

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    rng = np.random.default_rng(1)
    bgr = (rng.random((240, 320, 3)) * 50000 + 5000).astype(np.uint16)
    cv2.imwrite(str(shoot / "master.tif"), np.dstack([bgr, np.full((240, 320), 65535, np.uint16)]))
    env = {k: v for k, v in os.environ.items() if k != "POSTPROD_LIBTIFF_MESSAGES"}

    def run(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pipeline.cli", "process", str(shoot), "--out",
                               str(tmp_path / f"out{flags}"), "--executor", "local", "--no-progress", *flags],
                              capture_output=True, text=True, env=env, timeout=300)

    plain = run()
    assert plain.returncode == EXIT_OK, plain.stderr[-2000:]
    assert "TIFF_Warning" not in plain.stderr and "TIFF_Warning" not in plain.stdout, plain.stderr[-2000:]
    assert "1 ok, 0 failed" in plain.stdout, plain.stdout[-2000:]
    loud = run("-vv")
    assert "TIFF_Warning" in loud.stderr, loud.stderr[-2000:]


def test_a_librarys_warnings_about_a_file_are_logged_not_printed(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    # A TIFF whose Software tag claims more bytes than the file holds: Pillow skips the tag, decodes the picture and
    # warns, three times. Over a shoot of such files the warnings buried the progress bar; they are the file's, and
    # go to the log (-vv) with its name.
    import io
    import struct
    import warnings

    import numpy as np
    from PIL import Image, TiffImagePlugin

    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[305] = "a camera's software"
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(
        buf, format="TIFF", tiffinfo=tags)
    data = bytearray(buf.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd:ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", data[entry:entry + 2])[0] == 305:
            data[entry + 4:entry + 8] = struct.pack("<I", 10**6)  # its length, far past the file's end
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    (shoot / "damaged_tag.tif").write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        with caplog.at_level("DEBUG", logger="pipeline.kernel.runner"):
            result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(tmp_path / "out"), "--executor",
                                               "local", "-q"])
    assert result.exit_code == EXIT_OK, result.output
    assert not [w for w in escaped if "Tag data" in str(w.message)], [str(w.message) for w in escaped]
    assert any("damaged_tag.tif" in r.getMessage() and "Tag data larger than file" in r.getMessage()
               for r in caplog.records)


def test_raw_jpeg_pairs_deliver_the_raw_and_a_rerun_keeps_the_folders_choice(tmp_path: Path, raw_dir: Path,
                                                                             faces_dir: Path) -> None:
    # A camera shooting RAW+JPEG: one frame, delivered once, from its RAW. A frame whose RAW cannot be read is
    # delivered from its camera JPEG, under the RAW's name; the RAW is still a failure, and says so.
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW", shoot / "IMG_0002.CRW")
    shutil.copy(faces_dir / "2008_001009.jpg", shoot / "IMG_0002.JPG")
    (shoot / "IMG_0009.dng").write_bytes((raw_dir / "tinydng_colorchart.dng").read_bytes()[:200_000])
    shutil.copy(faces_dir / "2008_001322.jpg", shoot / "IMG_0009.JPG")
    out = tmp_path / "out"
    runner = CliRunner()

    def run(*extra: str) -> dict:
        result = runner.invoke(main, ["process", str(shoot), "--out", str(out), "--executor", "local", *extra])
        assert result.exit_code == EXIT_FILES_FAILED, result.output  # the truncated DNG
        summary = json.loads((out / "summary.json").read_text())
        note = "its camera JPEG IMG_0009.JPG was developed in its place"
        assert (note in result.output) == bool(summary["skipped"]), result.output
        return summary

    first = run()
    assert first["processed"] == 3 and [s["source_path"] for s in first["skipped"]] == ["IMG_0002.JPG"]
    assert [(f["source_path"], f["developed_instead"], f["pair_jpeg_skipped"]) for f in first["failed"]] == [
        ("IMG_0009.dng", "IMG_0009.JPG", None)]
    assert first["ok"] == 2
    doc = json.loads((out / "instructions" / "IMG_0009.JPG.json").read_text())
    flag = [o for o in doc["operations"] if o["params"].get("check") == "raw_failed"]
    assert doc["verdict"] == "flag" and len(flag) == 1 and flag[0]["params"]["raw"] == "IMG_0009.dng"
    assert flag[0]["reason"].startswith("developed from the camera's JPEG: its RAW IMG_0009.dng could not be developed")
    report = (out / "report.html").read_text(encoding="utf-8")
    assert ("Delivered from the camera's JPEG instead (the other file of a RAW+JPEG pair): "
            "<span class=path>IMG_0009.JPG</span> for <span class=path>IMG_0009.dng</span>.") in report
    stems = lambda: sorted(p.stem for p in (out / "exports").rglob("*.jpg"))  # noqa: E731
    assert stems() == ["IMG_0002", "IMG_0009"]  # the stand-in under its RAW's name
    manifest = pq.read_table(out / "manifest.parquet", columns=["source_path", "status"]).to_pylist()
    assert sorted((m["source_path"], m["status"]) for m in manifest) == [
        ("IMG_0002.CRW", "ok"), ("IMG_0009.JPG", "ok"), ("IMG_0009.dng", "failed")]
    assert run()["processed"] == 3 and stems() == ["IMG_0002", "IMG_0009"]  # a rerun: the same, nothing twice
    both = run("--raw-jpeg-pairs", "both")
    assert both["processed"] == 4 and both["skipped"] == [] and both["failed"][0]["pair_jpeg_skipped"] is None
    assert stems() == ["IMG_0002", "IMG_0002_jpg", "IMG_0009_jpg"]
    again = run()  # no option: the folder's last choice, so a rerun delivers the same files
    assert again["processed"] == 4 and stems() == ["IMG_0002", "IMG_0002_jpg", "IMG_0009_jpg"]
    back = run("--raw-jpeg-pairs", "raw")
    assert back["processed"] == 3 and stems() == ["IMG_0002", "IMG_0009"]  # the JPEG's exports go with it
    # The choice as the first version of the file put it (key "pairs") is still the folder's.
    (out / ".postprod" / "raw_jpeg_pairs.json").write_text('{"pairs": "raw"}')
    assert run()["processed"] == 3
    # A folder delivered into before the option existed (every file developed, no choice recorded) keeps
    # delivering every file on a rerun.
    (out / ".postprod" / "raw_jpeg_pairs.json").unlink()
    assert run()["processed"] == 4 and stems() == ["IMG_0002", "IMG_0002_jpg", "IMG_0009_jpg"]
