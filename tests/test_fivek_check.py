"""benchmarks/fivek_check.py: a FiveK render's truth read from its name, and which files count as shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.fivek_check import collect, needed_ev


@pytest.mark.parametrize(("name", "truth"), [
    ("a0964-20061224_140610__E6B7217_N1.5.JPG", 1.5),
    ("a1475-dgw_146_P1.JPG", -1.0),
    ("a2682-DSC_0085_P1.5.jpg", -1.5),
    ("a4875-DSC_0382_N1.JPG", 1.0),
    ("a0001-x_0.JPG", 0.0),
])
def test_the_truth_is_the_offset_the_name_gives_negated(name: str, truth: float) -> None:
    assert needed_ev(name) == truth


@pytest.mark.parametrize("name", ["Roland Tanglao-CC BY 2.0.jpg", "a0964_N1.5.JPG", "a1475-dgw_146_P1.png",
                                  "a1475-dgw_146_Q1.JPG"])
def test_other_names_are_no_fivek_render(name: str) -> None:
    assert needed_ev(name) is None


def test_a_file_of_the_shared_folder_counts_once_as_shared(tmp_path: Path) -> None:
    shared, other = tmp_path / "shared", tmp_path / "other"
    shared.mkdir()
    other.mkdir()
    for folder, names in ((shared, ["a0001-x_N1.5.JPG", "notes.txt"]), (other, ["a0001-x_N1.5.JPG", "a0002-y_P1.JPG"])):
        for n in names:
            (folder / n).write_bytes(b"")
    rows = {r.path.name: r for r in collect(shared, [other, tmp_path / "missing"])}
    assert set(rows) == {"a0001-x_N1.5.JPG", "a0002-y_P1.JPG"}
    assert rows["a0001-x_N1.5.JPG"].shared and rows["a0001-x_N1.5.JPG"].path.parent == shared
    assert not rows["a0002-y_P1.JPG"].shared and rows["a0002-y_P1.JPG"].truth == -1.0
