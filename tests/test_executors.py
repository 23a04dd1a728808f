"""The auto executor: a small shoot runs in this process, a large one (or one that asks) on Ray."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import EXIT_OK, main
from pipeline.executors import (ISOLATION_IMAGES, RAY_OVERHEAD_S, choose_executor, estimate_local_seconds,
                                usable_cpus)
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
    assert choose_executor("auto", None, None, tasks(30, 48), cpus=16).name == "ray"
    assert choose_executor("auto", None, None, tasks(20, 48), cpus=4).name == "ray"
    # The break-even: this process's time on every CPU equals Ray's start plus the parallel share.
    few = tasks(3, 10)
    assert estimate_local_seconds(few) < RAY_OVERHEAD_S
    assert choose_executor("auto", None, None, few, cpus=64).name == "local"


def test_on_two_cpus_this_process_is_as_fast_as_two_workers_until_the_shoot_is_large() -> None:
    """Run AF (benchmarks/RESULTS.md): one process on both CPUs delivered 38.0 24 MP images a minute, two Ray
    workers 36.7, after Ray's start: up to ISOLATION_IMAGES the shoot stays here; beyond, workers spare the run a
    crash."""
    assert choose_executor("auto", None, None, tasks(ISOLATION_IMAGES, 48), cpus=2).name == "local"
    large = choose_executor("auto", None, None, tasks(ISOLATION_IMAGES + 1, 48), cpus=2)
    assert large.name == "ray" and "crashes its decoder" in large.reason


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


def test_the_threads_an_image_gets_in_this_process_are_given_and_said(tmp_path: Path, raw_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.kernel.runner as runner

    given: list[int] = []
    limit = runner.limit_threads
    monkeypatch.setattr(runner, "limit_threads", lambda n: (given.append(n), limit(n)))
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(raw_dir / "Kodak_DC50_DC50IMG_DC0008L.KDC", shoot)
    one = CliRunner().invoke(main, ["process", str(shoot), "--out", str(tmp_path / "one"), "--threads", "1"])
    assert one.exit_code == EXIT_OK, one.output
    assert "; 1 thread an image)" in one.output and set(given) == {1}
    given.clear()
    every = CliRunner().invoke(main, ["process", str(shoot), "--out", str(tmp_path / "every")])
    assert every.exit_code == EXIT_OK, every.output
    cpus = usable_cpus()
    assert f"; {cpus} thread{'s' if cpus > 1 else ''} an image)" in every.output and set(given) == {cpus}
    assert CliRunner().invoke(main, ["process", str(shoot), "--out", str(tmp_path / "no"), "--threads", "0"]
                              ).exit_code != EXIT_OK


def test_rays_token_notice_is_kept_off_the_progress_bar() -> None:
    import logging

    from pipeline.executors.ray import _quiet_token_notice

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("ray", logging.WARNING, __file__, 1, msg, None, None)

    notice = ("Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out. "
              "For more information, see https://docs.ray.io/en/latest/ray-security/token-auth.html")
    assert not _quiet_token_notice(record(notice))
    assert _quiet_token_notice(record("Token authentication is disabled for this Ray cluster. Anyone with ..."))


def test_every_ray_worker_gets_a_gpu_share_it_can_be_placed_with() -> None:
    from pipeline.executors.ray import gpu_share

    # The face detector asks 0.25 GPU a worker: 4 workers fit one GPU as asked.
    assert gpu_share(0.25, 1.0, 4) == 0.25
    # 8 workers on one GPU would need two: each gets an eighth, so all 8 are placed (4 of them waited for ever).
    assert gpu_share(0.25, 1.0, 8) == 0.125
    assert 8 * gpu_share(0.25, 1.0, 8) <= 1.0
    # Shares Ray cannot express are rounded down to its 0.0001, never up past the cluster's GPUs.
    assert gpu_share(0.5, 1.0, 3) == 0.3333 and 3 * gpu_share(0.5, 1.0, 3) <= 1.0
    assert gpu_share(0.25, 2.0, 16) == 0.125


def test_more_cuda_workers_than_the_gpu_holds_at_the_detectors_share_all_run(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """6 Ray workers on a cluster of one (logical) GPU: at 0.25 GPU each, two were never placed and the run waited
    for ever (seen: still waiting after 90 s); with a sixth each, the shoot finishes. No GPU is needed: Ray's GPU is
    a count, and the detectors fall back to the CPU."""
    import threading

    import cv2
    import numpy as np
    import ray

    from pipeline.kernel.run import RunSettings, process_shoot

    monkeypatch.setenv("POSTPROD_MODEL_DIR", str(model_dir))
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        cv2.imwrite(str(shoot / f"frame_{i}.jpg"), cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), np.uint8),
                                                                   (0, 0), 2.0))
    ray.init(address="local", num_cpus=6, num_gpus=1, include_dashboard=False)
    done: list[int] = []
    try:
        run = threading.Thread(daemon=True, target=lambda: done.append(len(process_shoot(RunSettings(
            shoot_dir=shoot, out_dir=tmp_path / "out", executor="ray", workers=6, device="cuda")).ok)))
        run.start()
        run.join(timeout=120)
    finally:
        ray.shutdown()
    assert done == [6]


def test_more_workers_than_the_cluster_has_cpus_are_not_waited_for(caplog: pytest.LogCaptureFixture) -> None:
    """On an existing cluster of 2 CPUs, 4 workers asked for become 2, with a warning: two one-CPU actors would
    never be placed, and the run would wait for them."""
    import logging

    import ray

    from pipeline.executors.ray import RayExecutor

    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        with caplog.at_level(logging.WARNING, logger="pipeline.executors.ray"):
            executor = RayExecutor(workers=4)
        assert executor.workers == 2
        assert "4 workers asked for, the Ray cluster has 2 CPU(s): 2 workers" in caplog.text
        assert RayExecutor(workers=1).workers == 1 and RayExecutor().workers == 2
    finally:
        ray.shutdown()
