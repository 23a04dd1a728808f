"""Camera make and model through LibRaw's C API: right on every shared RAW, silent on an unchecked LibRaw."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import rawpy

from pipeline.imaging import libraw_ids
from pipeline.imaging.libraw_ids import read_raw_make_model


def readme_cameras(data_dir: Path) -> dict[str, str]:
    """File name -> camera, from the raw/ table of the test data's README (the truth, written by a person)."""
    text = (data_dir / "README.md").read_text(encoding="utf-8")
    section = text.split("## raw/", 1)[1].split("\n## ", 1)[0]
    cameras: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not re.search(r"\.\w+$", cells[0].split(",")[0].strip()):
            continue
        first, *others = (n.strip() for n in cells[0].split(","))
        cameras[first] = cells[1]
        for other in others:  # "Canon_..._CRW_0304.CRW, _0305.CRW": the same name with another ending
            cameras[first.rsplit("_", 1)[0] + other] = cells[1]
    return cameras


def test_every_shared_raw_names_the_camera_in_the_readme(raw_dir: Path) -> None:
    cameras = readme_cameras(raw_dir.parent)
    files = sorted(p.name for p in raw_dir.iterdir() if p.is_file() and not p.name.startswith("LICENSE"))
    assert files and set(files) <= set(cameras), set(files) - set(cameras)
    for name in files:
        make, model = read_raw_make_model(raw_dir / name)
        assert make and model, name
        assert cameras[name].startswith(f"{make} {model}"), (name, make, model, cameras[name])


def test_the_loaded_library_is_the_one_rawpy_reports() -> None:
    assert libraw_ids.loaded_libraw_version() == tuple(rawpy.libraw_version)
    assert libraw_ids.layout_verified()


def test_an_unchecked_libraw_version_gives_no_camera(raw_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crw = raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW"
    assert read_raw_make_model(crw) == ("Canon", "PowerShot G2")
    monkeypatch.setattr(libraw_ids, "VERIFIED_LIBRAW", frozenset({(0, 21)}))
    assert not libraw_ids.layout_verified()
    assert read_raw_make_model(crw) == (None, None)
    monkeypatch.undo()
    # rawpy built against one LibRaw but loading another: not trusted either.
    monkeypatch.setattr(libraw_ids, "loaded_libraw_version", lambda: (0, 22, 99))
    assert read_raw_make_model(crw) == (None, None)


def test_files_libraw_cannot_open_give_no_camera(tmp_path: Path) -> None:
    text = tmp_path / "notes.CR2"
    text.write_text("not a raw file")
    assert read_raw_make_model(text) == (None, None)
    assert read_raw_make_model(tmp_path / "missing.CR2") == (None, None)
