"""A run killed with SIGKILL and started again finishes with every output once and whole."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.conftest import TESTDATA


def _cmd(shoot: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "process", str(shoot), "--out", str(out), "--executor", "local",
            "--chart", "social_media", "--no-progress"]


@pytest.mark.slow
def test_kill_minus_nine_then_rerun(raw_dir: Path, faces_dir: Path, tmp_path: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    sources = sorted(raw_dir.glob("*.CRW")) + sorted(faces_dir.glob("*.jpg"))
    for p in sources:
        shutil.copy(p, shoot)
    out = tmp_path / "out"
    env = {**os.environ, "POSTPROD_MODEL_DIR": str(TESTDATA / "models"), "POSTPROD_OFFLINE": "1"}
    proc = subprocess.Popen(_cmd(shoot, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    exports = out / "exports"
    # Kill it once the render phase has delivered a few files but not all.
    while time.time() < deadline:
        if exports.exists() and sum(1 for _ in exports.rglob("*.*")) >= 4:
            break
        if proc.poll() is not None:
            pytest.fail("the run finished before it could be killed: make the shoot bigger")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.parquet").exists(), "killed before the end: no manifest yet"
    done = subprocess.run(_cmd(shoot, out), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reused from an earlier run" in done.stdout
    table = pq.read_table(out / "exports.parquet").to_pylist()
    listed = {r["path"] for r in table}
    on_disk = {p.relative_to(out).as_posix() for p in exports.rglob("*") if p.is_file()}
    assert listed == on_disk  # every expected output exists, once; nothing stray
    assert len(listed) == len(table) == 3 * len(sources)  # social_media: 3 renditions per image
    for r in table:
        data = (out / r["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == r["sha256"] and len(data) == r["bytes"]
        with Image.open(out / r["path"]) as im:
            im.load()  # not truncated
            assert im.size == (r["width"], r["height"])
    assert not list(out.rglob("*.tmp"))
