"""The processed shoots the review app's tests open (test_review.py, test_review_culling.py, test_review_browser.py).

Which photos the tests name, how a shoot is made and processed, and the per-test copy of its output folder
live here once. Each test module keeps its own ``processed`` fixture (what its shoot holds); the ``out`` and
``client`` fixtures below take that module's ``processed`` (registered for every test in conftest.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.outputs.instructions import instruction_name
from pipeline.review.app import create_app
from tests.group_shoot import copy_group_photos

GROUP = "2008_001009.jpg"  # a face to brighten (in a known shadow: tests/group_shoot.py), exposure, crops
BIG = "street 8MP.jpg"  # 3504 x 2336: several 100% tiles, a name to quote
BIG_SOURCE = "Justin Chiaratti-CC BY-NC-SA 2.0.jpg"  # in the exposure folder
RAW = "raw/Canon_PowerShot_G2_CRW_0304.CRW"


def processed_shoot(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path,
                    extra: Mapping[str, Path | bytes]) -> Path:
    """Process the group photos of ``faces_dir`` and ``extra`` with the corporate_portrait chart.

    Parameters
    ----------
    tmp_path_factory
        Where the shoot and its output folder are made.
    faces_dir
        The folder of group photos (every ``*.jpg`` in it goes into the shoot, one face of
        2008_001009 in a known shadow: :func:`tests.group_shoot.copy_group_photos`).
    extra
        More files by their path in the shoot: a file to copy there, or the bytes of one to write.

    Returns
    -------
    Path
        The output folder.
    """
    shoot = tmp_path_factory.mktemp("shoot")
    copy_group_photos(faces_dir, shoot)  # 2008_001009 with a known shadow on one face: a lift to review
    for name, what in extra.items():
        dest = shoot / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(what, bytes):
            dest.write_bytes(what)
        else:
            shutil.copy(what, dest)
    out = tmp_path_factory.mktemp("out")
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="corporate_portrait"))
    return out


@pytest.fixture
def out(processed: Path, tmp_path: Path) -> Path:
    """A fresh copy of the output folder per test (the shoot is shared, read only)."""
    dest = tmp_path / "out"
    shutil.copytree(processed, dest)
    return dest


@pytest.fixture
def client(out: Path):  # noqa: ANN201
    return create_app(out, reviewer="Ana").test_client()


def doc_of(out: Path, source_path: str) -> dict:
    """The instruction document of ``source_path`` as it is on disk."""
    return json.loads((out / "instructions" / instruction_name(source_path)).read_text())
