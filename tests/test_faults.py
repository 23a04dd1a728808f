"""Fault injection: killed workers, a killed raylet, two runs at once, a full disk, a killed render,
review decisions during a rerun, output folders of another shoot or chart, unwritable folders.

Each fault is made for real (SIGKILL, a tmpfs that fills, a second process),
on shoots of two or three small real photos, and the test checks what the
issue asked: the file completes in the same run, or the run stops within
its bound with a message and the right exit code; no file is lost; no
export is on disk that ``exports.parquet`` does not list; no process is
left behind (every process a run starts carries a token in its environment,
looked for in ``/proc`` after it exits).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli.main import EXIT_CONFIG, EXIT_INTERNAL, EXIT_OK, main
from pipeline.kernel.outdir import RunLock
from pipeline.kernel.records import Failure, Status
from pipeline.kernel.run import RunSettings, process_shoot
from tests.conftest import ROOT, TESTDATA

PHOTOS = ("2007_007763.jpg", "2008_001009.jpg", "2008_001322.jpg")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def shoot(faces_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "shoot"
    root.mkdir()
    for name in PHOTOS[:2]:
        shutil.copy(faces_dir / name, root / name)
    return root


def _graph(tmp: Path, after: str, **params: object) -> tuple[Path, Path]:
    """The default graph with an :class:`tests.fault_stages.InjectFault` stage after ``after``."""
    markers = tmp / "markers"
    markers.mkdir(exist_ok=True)
    doc = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    at = next(i for i, s in enumerate(doc["stages"]) if s["stage"] == after) + 1
    doc["stages"].insert(at, {"stage": "inject_fault", "params": {"marker_dir": str(markers), **params}})
    path = tmp / "graph.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path, markers


def _env(token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(POSTPROD_MODEL_DIR=str(TESTDATA / "models"), POSTPROD_OFFLINE="1", POSTPROD_FAULT_TOKEN=token,
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    return env


def _cli(*args: str | Path) -> list[str]:
    """``postprod`` in a new process, with the fault stage registered (Ray workers import it by name)."""
    boot = ("import sys, fault_stages; fault_stages.register(); from pipeline.cli.main import main; "
            "sys.argv[0] = 'postprod'; main()")
    return [sys.executable, "-c", boot, "process", *map(str, args), "--no-progress"]


def _processes_with(token: str) -> list[str]:
    """Live processes whose environment carries ``token``: what a run left behind."""
    found = []
    needle = f"POSTPROD_FAULT_TOKEN={token}".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if needle in environ.split(b"\0") and stat[stat.rfind(")") + 2] != "Z":
            found.append(f"{pid} {Path(f'/proc/{pid}/cmdline').read_bytes()[:80]!r}")
    return found


def _assert_no_orphans(token: str, grace_s: float = 5.0) -> None:
    deadline = time.monotonic() + grace_s
    while (left := _processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"processes left behind: {left}"


def _children(pid: int) -> dict[int, str]:
    """Every process below ``pid``, with its command name."""
    parent: dict[int, int] = {}
    comm: dict[int, str] = {}
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        comm[int(p)] = stat[stat.find("(") + 1 : stat.rfind(")")]
        parent[int(p)] = int(stat[stat.rfind(")") + 2 :].split()[1])
    below, frontier = {}, [pid]
    while frontier:
        here = frontier.pop()
        for child, par in parent.items():
            if par == here and child not in below:
                below[child] = comm[child]
                frontier.append(child)
    return below


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (rc {proc.returncode}) before {path.name}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{path.name} did not appear in {timeout} s")
        time.sleep(0.05)


def _deliveries_match_the_table(out: Path) -> list[dict]:
    """Every export on disk is listed once with its SHA-256, and every listed one is on disk."""
    rows = pq.read_table(out / "exports.parquet").to_pylist()
    listed = [r["path"] for r in rows]
    on_disk = sorted(p.relative_to(out).as_posix() for p in (out / "exports").rglob("*") if p.is_file())
    assert len(listed) == len(set(listed)), "an export listed twice"
    assert sorted(listed) == on_disk, "exports on disk that exports.parquet does not list, or the reverse"
    for r in rows:
        assert hashlib.sha256((out / r["path"]).read_bytes()).hexdigest() == r["sha256"]
    assert not list(out.rglob("*.tmp")), "temporary files left"
    return rows


# --- transient failures: retried in the run, never journalled ------------------------------------


@pytest.mark.slow
def test_a_killed_ray_worker_is_replaced_and_its_file_completes_in_the_same_run(shoot: Path, tmp_path: Path) -> None:
    graph, markers = _graph(tmp_path, after="decode_raw", mode="kill")
    (markers / Path(PHOTOS[0]).stem).touch()
    token = uuid.uuid4().hex
    out = tmp_path / "out"
    done = subprocess.run(_cli(shoot, "--out", out, "--graph", graph, "--chart", "social_media", "--workers", "1"),
                          env=_env(token), capture_output=True, text=True, timeout=300)
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert (markers / (Path(PHOTOS[0]).stem + ".fired")).exists(), "the worker was never killed"
    assert "worker died on" in done.stderr
    rows = pq.read_table(out / "manifest.parquet").to_pylist()
    assert [(r["source_path"], r["status"], r["failure"]) for r in rows] == [(p, "ok", None) for p in PHOTOS[:2]]
    assert len(_deliveries_match_the_table(out)) == 3 * 2  # social_media: three renditions each
    _assert_no_orphans(token)


def test_an_io_error_is_retried_in_the_run_and_a_lasting_one_on_the_next_run(
        shoot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fault_stages

    import pipeline.kernel.runner
    import stages

    monkeypatch.setitem(stages.REGISTRY, fault_stages.InjectFault.name, fault_stages.InjectFault)
    monkeypatch.setattr(pipeline.kernel.runner, "RETRY_DELAYS_S", (0.01, 0.01))
    out = tmp_path / "out"
    # Missing for a moment: the local executor tries again and the file completes.
    graph, markers = _graph(tmp_path, after="decode_raw", mode="oserror")
    (markers / Path(PHOTOS[0]).stem).touch()
    settings = RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="social_media", graph_path=graph)
    first = process_shoot(settings)
    assert [r.status for r in first.records] == [Status.OK, Status.OK]
    # Missing on every attempt: a failed row marked transient, and not journalled.
    graph, markers = _graph(tmp_path, after="decode_raw", mode="oserror", sticky=True)
    (markers / Path(PHOTOS[1]).stem).touch()
    shutil.rmtree(out)
    second = process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="social_media",
                                       graph_path=graph))
    failed = {r.source_path: r for r in second.records if r.status is Status.FAILED}
    assert list(failed) == [PHOTOS[1]]
    assert failed[PHOTOS[1]].failure is Failure.TRANSIENT and "after 3 attempts" in failed[PHOTOS[1]].error
    assert second.summary()["failed"][0]["failure"] == "transient"
    # The machine is fine again: the next run retries it (the other image is reused).
    (markers / Path(PHOTOS[1]).stem).unlink()
    third = process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="social_media",
                                      graph_path=graph))
    assert [r.status for r in third.records] == [Status.OK, Status.OK]
    assert third.reused >= 2  # the first image's analysis and render came from the journal
    _deliveries_match_the_table(out)


def test_a_bug_on_one_file_fails_its_row_and_the_shoot_goes_on(shoot: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import fault_stages

    import stages

    # ExifTool's test JPEG XL made the JPEG XL plugin raise a RuntimeError at open: the whole run stopped with a
    # traceback, every other file of the shoot lost. Any exception a stage raises on one file is that file's failed
    # row (internal: postprod's error, retried by the next run); the tests' strict runs still raise it.
    monkeypatch.setitem(stages.REGISTRY, fault_stages.InjectFault.name, fault_stages.InjectFault)
    monkeypatch.setenv("POSTPROD_CHECK_DECLARATIONS", "0")
    graph, markers = _graph(tmp_path, after="measure_exposure", mode="bug", sticky=True)
    (markers / Path(PHOTOS[1]).stem).touch()
    out = tmp_path / "out"
    settings = RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="social_media", graph_path=graph)
    first = {r.source_path: r for r in process_shoot(settings).records}
    assert first[PHOTOS[0]].status is Status.OK
    bug = first[PHOTOS[1]]
    assert bug.status is Status.FAILED and bug.failure is Failure.INTERNAL
    assert bug.error.startswith("inject_fault: internal error (RuntimeError: an unexpected state (injected)); ")
    assert "please report it" in bug.error and "\n" not in bug.error
    assert len(_deliveries_match_the_table(out)) == 3  # the other image's three renditions
    # Fixed (the marker gone): the next run tries it again and it completes.
    (markers / Path(PHOTOS[1]).stem).unlink()
    again = process_shoot(settings)
    assert [r.status for r in again.records] == [Status.OK, Status.OK]
    # The tests' strict runs raise it.
    monkeypatch.setenv("POSTPROD_CHECK_DECLARATIONS", "1")
    (markers / Path(PHOTOS[1]).stem).touch()
    with pytest.raises(RuntimeError, match="an unexpected state"):
        process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "strict", executor="local",
                                  chart="social_media", graph_path=graph))


def test_a_bug_in_one_frames_planning_fails_its_row_and_the_shoot_is_delivered(
        shoot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.planning.plan as plan_module

    # Planning runs in the driver after every frame is analysed: a rule raising on one frame's record stopped the
    # run before any export. That frame's row fails (internal), the others are planned and delivered.
    real = plan_module.plan_image

    def buggy(record, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if record.source_path == PHOTOS[1]:
            raise ZeroDivisionError("float division by zero")
        return real(record, *args, **kwargs)

    monkeypatch.setattr(plan_module, "plan_image", buggy)
    monkeypatch.setenv("POSTPROD_CHECK_DECLARATIONS", "0")
    out = tmp_path / "out"
    settings = RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="social_media")
    records = {r.source_path: r for r in process_shoot(settings).records}
    assert records[PHOTOS[0]].status is Status.OK and records[PHOTOS[0]].exports
    bug = records[PHOTOS[1]]
    assert bug.status is Status.FAILED and bug.failure is Failure.INTERNAL and not bug.exports
    assert bug.error.startswith("plan_retouch: internal error (ZeroDivisionError: float division by zero); ")
    assert len(_deliveries_match_the_table(out)) == 3
    monkeypatch.setenv("POSTPROD_CHECK_DECLARATIONS", "1")  # the tests' strict runs raise it
    with pytest.raises(ZeroDivisionError):
        process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "strict", executor="local",
                                  chart="social_media"))


def test_a_source_missing_for_a_moment_completes_in_the_same_run(shoot: Path, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    import threading

    away = shoot / f".{PHOTOS[0]}.away"

    def take_it_away(name: str, n: int) -> None:
        if name.startswith("decode_raw"):  # after ingest hashed it, before the decode opens it
            (shoot / PHOTOS[0]).rename(away)
            threading.Timer(1.0, away.rename, [shoot / PHOTOS[0]]).start()

    result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "out", executor="local",
                                       chart="social_media"), on_phase=take_it_away)
    assert [(r.source_path, r.status) for r in result.records] == [(p, Status.OK) for p in PHOTOS[:2]]
    assert len(_deliveries_match_the_table(tmp_path / "out")) == 3 * 2
    assert f"{PHOTOS[0]}: decode_raw: I/O error: [Errno 2] No such file" in caplog.text  # it was gone, then retried


def test_a_corrupt_file_is_a_permanent_failure_not_tried_again(shoot: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (shoot / "cut.jpg").write_bytes((shoot / PHOTOS[0]).read_bytes()[:3000])
    out = tmp_path / "out"
    settings = RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="social_media")
    first = {r.source_path: r for r in process_shoot(settings).records}
    assert first["cut.jpg"].status is Status.FAILED and first["cut.jpg"].failure is Failure.INPUT
    import stages.decode_raw

    seen: list[str] = []
    real = stages.decode_raw.DecodeRaw.process
    monkeypatch.setattr(stages.decode_raw.DecodeRaw, "process",
                        lambda self, item: (seen.append(item.task.source_path), real(self, item))[1])
    again = {r.source_path: r for r in process_shoot(settings).records}
    assert seen == []  # same bytes, same code: the journal's answer stands
    assert again["cut.jpg"].error == first["cut.jpg"].error


# --- the cluster under the run -------------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_raylet_ends_the_run_within_30_s_with_a_message(shoot: Path, tmp_path: Path) -> None:
    graph, markers = _graph(tmp_path, after="decode_raw", mode="hold")
    (markers / Path(PHOTOS[0]).stem).touch()
    token = uuid.uuid4().hex
    out = tmp_path / "out"
    proc = subprocess.Popen(_cli(shoot, "--out", out, "--graph", graph, "--chart", "social_media", "--workers", "1"),
                            env=_env(token), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(markers / (Path(PHOTOS[0]).stem + ".holding"), proc)
    raylets = [pid for pid, name in _children(proc.pid).items() if name == "raylet"]
    assert len(raylets) == 1, _children(proc.pid)
    os.kill(raylets[0], signal.SIGKILL)
    killed = time.monotonic()
    try:
        out_text, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the run was still going 60 s after its raylet was killed")
    took = time.monotonic() - killed
    assert proc.returncode == EXIT_INTERNAL, out_text + err
    assert took < 30, f"{took:.0f} s to stop"
    assert "raylet" in err and "run again" in err and "Traceback" not in err, err
    _assert_no_orphans(token)
    assert not (out / ".postprod" / "lock").exists()  # released on the way out
    # The rerun resumes (the marker was used: no more holding).
    again = subprocess.run(_cli(shoot, "--out", out, "--graph", graph, "--chart", "social_media", "--executor",
                                "local"), env=_env(token), capture_output=True, text=True, timeout=300)
    assert again.returncode == EXIT_OK, again.stdout + again.stderr
    _deliveries_match_the_table(out)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the reaper reads /proc")
def test_the_reaper_kills_what_it_follows_when_its_input_closes() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"])
    time.sleep(0.5)
    grandchild = next(iter(_children(child.pid)))
    reaper = subprocess.Popen([sys.executable, "-I", "-S", str(ROOT / "pipeline" / "executors" / "reaper.py"),
                               str(child.pid)], stdin=subprocess.PIPE)
    time.sleep(1.5)  # one scan
    child.kill()  # the grandchild is orphaned, as Ray's agents are when their raylet dies
    child.wait()
    reaper.stdin.close()
    assert reaper.wait(10) == 0
    time.sleep(0.2)
    assert not Path(f"/proc/{grandchild}").exists() or " Z " in Path(f"/proc/{grandchild}/stat").read_text()


# --- one run per folder --------------------------------------------------------------------------


def test_a_second_run_into_a_busy_folder_exits_2_naming_the_holder_or_waits(shoot: Path, tmp_path: Path) -> None:
    graph, markers = _graph(tmp_path, after="decode_raw", mode="hold")
    (markers / Path(PHOTOS[0]).stem).touch()
    token = uuid.uuid4().hex
    out = tmp_path / "out"
    args = (shoot, "--out", out, "--graph", graph, "--chart", "social_media", "--executor", "local")
    first = subprocess.Popen(_cli(*args), env=_env(token), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(markers / (Path(PHOTOS[0]).stem + ".holding"), first)
    second = subprocess.run(_cli(*args), env=_env(token), capture_output=True, text=True, timeout=120)
    assert second.returncode == EXIT_CONFIG, second.stdout + second.stderr
    assert f"pid {first.pid} on " in second.stderr and "--wait" in second.stderr
    waiting = subprocess.Popen(_cli(*args, "--wait"), env=_env(token), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    assert waiting.poll() is None  # waits while the first one works
    (markers / (Path(PHOTOS[0]).stem + ".release")).touch()
    assert first.wait(120) == EXIT_OK
    out_text, err = waiting.communicate(timeout=120)
    assert waiting.returncode == EXIT_OK, out_text + err
    assert "waiting for the run that holds" in err and f"pid {first.pid}" in err
    assert "reused from an earlier run" in out_text  # it found the first run's work, not its own copy of it
    _deliveries_match_the_table(out)
    _assert_no_orphans(token)


def test_a_dead_runs_lock_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / ".postprod").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pipeline.kernel.outdir import RunLock; "
                               "RunLock(__import__('pathlib').Path(sys.argv[1])).acquire(); print('held', flush=True); "
                               "time.sleep(60)", str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert holder.stdout.readline().strip() == "held"
    lock = RunLock(tmp_path)
    with pytest.raises(Exception, match=f"pid {holder.pid} on "):
        lock.acquire()
    holder.send_signal(signal.SIGKILL)  # no chance to remove its lock file
    holder.wait()
    assert json.loads((tmp_path / ".postprod" / "lock").read_text())["pid"] == holder.pid
    lock.acquire()  # the kernel dropped the dead process's flock
    assert json.loads((tmp_path / ".postprod" / "lock").read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / ".postprod" / "lock").exists()


# --- a killed render -----------------------------------------------------------------------------


def test_a_rerun_after_kill_9_mid_render_leaves_no_unlisted_export(shoot: Path, faces_dir: Path,
                                                                   tmp_path: Path) -> None:
    shutil.copy(faces_dir / PHOTOS[2], shoot / PHOTOS[2])
    # Hold the second image between its render and its export: the first one's files are written by then.
    graph, markers = _graph(tmp_path, after="render", mode="hold")
    (markers / Path(PHOTOS[1]).stem).touch()
    token = uuid.uuid4().hex
    out = tmp_path / "out"
    args = (shoot, "--out", out, "--graph", graph, "--chart", "social_media", "--executor", "local")
    proc = subprocess.Popen(_cli(*args), env=_env(token), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(markers / (Path(PHOTOS[1]).stem + ".holding"), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = sorted(p.name for p in (out / "exports").rglob("*") if p.is_file())
    assert len(written) == 3 and not (out / "exports.parquet").exists()  # the first image's three renditions
    # Before the rerun, that first image leaves the shoot: its exports must not stay behind unlisted.
    first = PHOTOS[0]
    (shoot / first).unlink()
    done = subprocess.run(_cli(*args), env=_env(token), capture_output=True, text=True, timeout=300)
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    rows = _deliveries_match_the_table(out)
    assert sorted({r["source_path"] for r in rows}) == sorted(PHOTOS[1:])
    assert len(rows) == 3 * 2
    assert not any(Path(first).stem in p.name for p in out.rglob("*") if p.is_file() and "journal" not in p.parts)
    _assert_no_orphans(token)


# --- review decisions during a rerun -------------------------------------------------------------


def test_a_review_decision_made_during_a_rerun_survives_it(shoot: Path, tmp_path: Path) -> None:
    from pipeline.outputs.instructions import instruction_name
    from pipeline.outputs.xmp import image_decision, xmp_packet
    from pipeline.review.store import OpChange, ReviewStore

    out = tmp_path / "out"
    settings = RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="social_media")
    process_shoot(settings)
    store = ReviewStore(out)
    sp = PHOTOS[0]
    doc, version = store.get(sp)
    crop = next(o["op_id"] for o in doc["operations"] if o["kind"] == "crop")
    decided: list[int] = []

    def decide_while_rendering(name: str, n: int) -> None:
        if name.startswith("render"):  # the rerun planned with the old decisions; the reviewer acts now
            _, v = store.get(sp)
            decided.append(store.update(sp, v, [OpChange(crop, status="rejected", comment="full frame")], "ana")[1])

    result = process_shoot(settings, on_phase=decide_while_rendering)
    assert decided, "the hook never ran"
    doc = json.loads((out / "instructions" / instruction_name(sp)).read_text())
    review = next(o for o in doc["operations"] if o["op_id"] == crop)["review"]
    assert review["status"] == "rejected" and review["by"] == "ana" and review["comment"] == "full frame"
    rows = {r["op_id"]: r for r in pq.read_table(out / "instructions.parquet").to_pylist() if r["source_path"] == sp}
    assert rows[crop]["review_status"] == "rejected"
    packet = (out / doc["xmp"]).read_text()
    assert packet == xmp_packet(doc, image_decision(doc))  # the settings without the rejected crop, and who/when
    assert "ana" in packet
    again, _ = ReviewStore(out).get(sp)
    assert next(o for o in again["operations"] if o["op_id"] == crop)["review"]["status"] == "rejected"
    # The decision came after this image's render: the run says so, and the next run renders it.
    assert result.decisions_not_rendered == [sp]
    assert result.summary()["decisions_not_rendered"] == [sp]
    rendered = process_shoot(settings)
    assert rendered.decisions_not_rendered == []
    square = next(r for r in rendered.records if r.source_path == sp)
    assert next(o for o in square.operations if o.op_id == crop).review["status"] == "rejected"


# --- output folders that do not lie ----------------------------------------------------------------


def test_another_shoot_or_chart_in_the_folder_is_refused_unless_forced(shoot: Path, faces_dir: Path,
                                                                       tmp_path: Path) -> None:
    out = tmp_path / "out"
    runner = CliRunner()

    def run(*args: str | Path):  # noqa: ANN202
        return runner.invoke(main, ["process", *map(str, args), "--executor", "local", "--no-progress"])

    assert run(shoot, "--out", out, "--chart", "social_media").exit_code == EXIT_OK
    other = tmp_path / "other_shoot"
    other.mkdir()
    shutil.copy(faces_dir / PHOTOS[2], other / PHOTOS[2])
    refused = run(other, "--out", out, "--chart", "social_media")
    assert refused.exit_code == EXIT_CONFIG and "shoot 'shoot'" in refused.output and "--force" in refused.output
    switched = run(shoot, "--out", out, "--chart", "culinary")
    assert switched.exit_code == EXIT_CONFIG and "chart 'social_media'" in switched.output
    before = set(p for p in out.rglob("*") if p.is_file())
    assert before == set(p for p in out.rglob("*") if p.is_file())  # refused before touching anything
    # --force with the other chart: only its deliveries remain (the social_media ones and their sheets go).
    forced = run(shoot, "--out", out, "--chart", "culinary", "--force")
    assert forced.exit_code == EXIT_OK, forced.output
    rows = _deliveries_match_the_table(out)
    renditions = set(yaml.safe_load((ROOT / "charts" / "culinary.yaml").read_text()).get("renditions") or {})
    assert {r["rendition"] for r in rows} <= renditions | {"web"}
    sheets = {p.stem for p in (out / "contact_sheets").glob("*.jpg")}
    assert sheets == {r["rendition"] for r in rows}
    # --force with the other shoot: its files only, and the first shoot's instructions and previews gone.
    forced = run(other, "--out", out, "--chart", "culinary", "--force")
    assert forced.exit_code == EXIT_OK, forced.output
    rows = _deliveries_match_the_table(out)
    assert {r["source_path"] for r in rows} == {PHOTOS[2]}
    assert [p.name for p in (out / "instructions").iterdir()] == [f"{PHOTOS[2]}.json"]
    # The image's run preview and the corrected picture its render left for the report, nothing of the first shoot.
    (row,) = pq.read_table(out / "manifest.parquet").to_pylist()
    assert sorted(p.name for p in (out / "previews").iterdir()) == sorted(
        [Path(row["preview_path"]).name, f"{row['content_hash'][:24]}.after.jpg"])
    assert {r["source_path"] for r in pq.read_table(out / "manifest.parquet").to_pylist()} == {PHOTOS[2]}


def test_a_replan_lists_the_exports_its_plan_still_gives_and_removes_the_others(shoot: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="social_media"))
    before = _deliveries_match_the_table(out)
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="social_media", only="plan"))
    assert _deliveries_match_the_table(out) == before  # same plan: the same deliveries, still listed
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="culinary", only="plan",
                              force=True))
    assert _deliveries_match_the_table(out) == []  # a new plan, not rendered: the old chart's files go
    assert not list((out / "contact_sheets").glob("*.jpg"))


def test_a_folder_of_someone_elses_files_is_not_swept(shoot: Path, tmp_path: Path) -> None:
    out = tmp_path / "pictures"
    (out / "previews").mkdir(parents=True)
    (out / "previews" / "holiday.jpg").write_bytes(b"mine")
    result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--executor", "local"])
    assert result.exit_code == EXIT_CONFIG and "files postprod did not write" in result.output, result.output
    assert (out / "previews" / "holiday.jpg").read_bytes() == b"mine"


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_outputs_get_the_mode_the_umask_gives(shoot: Path, tmp_path: Path, umask: int) -> None:
    out = tmp_path / "out"
    old = os.umask(umask)
    try:
        process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="social_media"))
    finally:
        os.umask(old)
    delivered = [p for p in out.rglob("*") if p.is_file() and ".postprod" not in p.parts
                 and not p.name.startswith("review.sqlite")]
    assert len(delivered) > 10
    assert {oct(p.stat().st_mode & 0o777) for p in delivered} == {oct(0o666 & ~umask)}


def test_a_file_or_a_read_only_folder_as_out_stops_before_any_work(shoot: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    for out, says in ((a_file, "is a file"), (a_file / "out", "is a file, not a folder")):
        result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--executor", "local"])
        assert result.exit_code == EXIT_CONFIG and says in result.output, result.output
        assert "Traceback" not in result.output
    read_only = tmp_path / "ro"
    read_only.mkdir()
    if IS_ROOT:  # root ignores permission bits: a read-only mount is the real thing
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(read_only)],
                                 capture_output=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    else:
        read_only.chmod(0o555)
    try:
        result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(read_only / "out"),
                                           "--executor", "local"])
        assert result.exit_code == EXIT_CONFIG, result.output
        assert ("read-only" in result.output or "permission denied" in result.output) and str(read_only) in result.output
    finally:
        if IS_ROOT:
            subprocess.run(["umount", str(read_only)], check=True)
        else:
            read_only.chmod(0o755)


# --- a full disk ------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path):  # noqa: ANN201
    """A 20 MB tmpfs (root only: mounting needs it)."""
    if not IS_ROOT:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_stops_the_run_with_what_it_needs_and_nothing_half_written(shoot: Path, small_disk: Path) -> None:
    out = small_disk / "out"
    # The print chart's 8x10 master is a 2400x3000 16-bit TIFF: 43 MB, on a 20 MB disk.
    result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--chart", "print",
                                       "--executor", "local", "--no-progress"])
    assert result.exit_code == EXIT_INTERNAL, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert f"no space left on the disk holding {out.resolve()}" in result.output and "MB more" in result.output
    assert "finished work is kept" in result.output
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*.tmp")), "half-written files left"
    assert not (out / ".postprod" / "decoded").exists()
    assert not (out / ".postprod" / "lock").exists()
    # With room, the same command finishes, keeping the analysis.
    subprocess.run(["mount", "-o", "remount,size=400m", str(small_disk)], check=True)
    again = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--chart", "print",
                                      "--executor", "local", "--no-progress"])
    assert again.exit_code == EXIT_OK, again.output
    assert "reused from an earlier run" in again.output
    _deliveries_match_the_table(out)


def test_a_library_upgrade_redoes_the_journalled_work(shoot: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A rerun reuses the journal; under another OpenCV (or LibRaw, onnxruntime, ...) it redoes every step instead of
    mixing records of two versions in one shoot, and reuses again after that."""
    from pipeline.kernel import journal

    out = tmp_path / "out"
    settings = RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="social_media")
    assert process_shoot(settings).reused == 0
    assert process_shoot(settings).reused >= 4  # analysis and render of both images
    opencv, *others = journal.library_versions()
    assert opencv.startswith("opencv")
    upgraded = (opencv + ".post1", *others)
    monkeypatch.setattr(journal, "library_versions", lambda: upgraded)
    assert process_shoot(settings).reused == 0
    assert process_shoot(settings).reused >= 4
    _deliveries_match_the_table(out)
