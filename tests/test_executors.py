"""The auto executor: a small shoot runs in this process, a large one (or one that asks) on Ray."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import EXIT_OK, main
from pipeline.executors import RAY_OVERHEAD_S, choose_executor, estimate_local_seconds
from pipeline.kernel.records import SourceKind, SourceTask


def tasks(n: int, mb: float) -> list[SourceTask]:
    return [SourceTask(path=Path(f"/s/{i}.dng"), source_path=f"{i}.dng", content_hash=f"{i:064x}",
                       file_size=int(mb * 1e6), format="dng", source_kind=SourceKind.RAW) for i in range(n)]


def test_a_small_shoot_does_not_wait_for_ray() -> None:
    for cpus in (2, 16):
        choice = choose_executor("auto", None, None, tasks(6, 48), cpus=cpus)  # six 24 MP DNGs: ~6 s alone
        assert choice.name == "local", choice
        assert "6 images" in choice.reason and f"on {cpus} CPUs" in choice.reason


def test_a_large_shoot_gets_every_cpu() -> None:
    assert choose_executor("auto", None, None, tasks(200, 48), cpus=2).name == "ray"
    assert choose_executor("auto", None, None, tasks(30, 48), cpus=16).name == "ray"
    # The break-even: one process's time equals Ray's start plus the parallel share.
    few = tasks(10, 10)
    assert estimate_local_seconds(few) < RAY_OVERHEAD_S
    assert choose_executor("auto", None, None, few, cpus=64).name == "local"


def test_asking_for_workers_or_a_cluster_picks_ray() -> None:
    one = tasks(1, 1)
    assert choose_executor("auto", 4, None, one, cpus=2).name == "ray"
    assert choose_executor("auto", 1, None, one, cpus=16).name == "ray"  # one worker process: still asked for
    assert choose_executor("auto", None, "10.0.0.5:6379", one).name == "ray"
    assert choose_executor("auto", None, None, tasks(500, 48), cpus=1).name == "local"
    # An explicit executor is taken as it is.
    assert choose_executor("ray", None, None, one).name == "ray"
    assert choose_executor("local", 8, "10.0.0.5:6379", tasks(500, 48)).name == "local"
    with pytest.raises(ValueError, match="unknown executor"):
        choose_executor("spark", None, None, one)


def test_the_cli_prints_the_choice_and_the_summary_keeps_it(tmp_path: Path, raw_dir: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(raw_dir / "Kodak_DC50_DC50IMG_DC0008L.KDC", shoot)
    result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(tmp_path / "o")])
    assert result.exit_code == EXIT_OK, result.output
    assert "executor: local (auto: 1 image on" in result.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["executor"].startswith("local (auto:")
    bad = CliRunner().invoke(main, ["process", str(shoot), "--out", str(tmp_path / "o2"), "--executor", "spark"])
    assert bad.exit_code != EXIT_OK


def test_rays_token_notice_is_kept_off_the_progress_bar() -> None:
    import logging

    from pipeline.executors.ray import _quiet_token_notice

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("ray", logging.WARNING, __file__, 1, msg, None, None)

    notice = ("Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out. "
              "For more information, see https://docs.ray.io/en/latest/ray-security/token-auth.html")
    assert not _quiet_token_notice(record(notice))
    assert _quiet_token_notice(record("Token authentication is disabled for this Ray cluster. Anyone with ..."))
