"""--ray-address runs the same graph on an existing Ray cluster."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import EXIT_OK


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_process_on_an_existing_cluster(raw_dir: Path, tmp_path: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for name in ("Kodak_DC50_DC50IMG_DC0008L.KDC", "Kodak_DC120_DC120IMG_P003911.KDC"):
        shutil.copy(raw_dir / name, shoot)
    port = _free_port()
    # A token of the test's own, so nothing depends on ~/.ray/auth_token existing.
    token = secrets.token_hex(16)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    ray_bin = str(Path(sys.executable).with_name("ray"))
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--node-ip-address=127.0.0.1",
         "--include-dashboard=false", "--disable-usage-stats"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        # The driver runs as its own process, as a user's would: no Ray state
        # shared with the test process (or with other tests' local clusters).
        result = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "process", str(shoot), "--out", str(tmp_path / "out"),
             "--workers", "2", "--no-progress"],
            env={**env, "RAY_ADDRESS": f"127.0.0.1:{port}"}, capture_output=True, text=True, timeout=180,
        )
        assert result.returncode == EXIT_OK, result.stdout + result.stderr
        rows = pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist()
        assert [r["status"] for r in rows] == ["ok", "ok"]
        assert {r["camera_model"] for r in rows} == {"DC50", "DC120"}
    finally:
        head.terminate()
        head.wait(timeout=60)


def test_a_cluster_it_cannot_reach_is_a_configuration_error() -> None:
    # A typo in --ray-address (or a head node that is down): Ray's ConnectionError with its stack, exit 1 ("internal
    # error"), became a setting's error before any work, exit 2. Ray itself is not asked: its attempt takes 20 s.
    from pipeline.executors.ray import connect_to_cluster
    from pipeline.kernel.errors import ConfigError

    class Unreachable:
        def init(self, **kwargs: object) -> None:
            raise ConnectionError(f"Failed to connect to Ray cluster at {kwargs['address']}")

    with pytest.raises(ConfigError) as info:
        connect_to_cluster(Unreachable(), "10.0.0.1:1", {"address": "10.0.0.1:1"})
    assert info.value.location.key == "--ray-address"
    assert "cannot connect to the Ray cluster at '10.0.0.1:1': Failed to connect" in str(info.value)
    assert "leave out --ray-address and RAY_ADDRESS" in str(info.value)
