"""The whole pipeline on a shoot of hostile inputs (see hostile_corpus.py): every file accounted for, nothing lost.

The run goes through the command line in a child process, as a user's would:
its exit code must be 3 (some files failed, the rest delivered), its stderr
must hold no traceback, every input must be a manifest row or a skipped entry
with its reason, no two exports may share a path (even ignoring case) and
every export must be on disk with the SHA-256 its row gives. The child's peak
memory is read back (``wait4``): a 169-megapixel PNG once took 10 GB. A rerun
into the same folder must give the same deliveries.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hostile_corpus import Corpus, build_corpus

ROOT = Path(__file__).resolve().parents[2]
#: Peak memory the run may take (bytes): the 169 MP PNG's Pillow decode is 680 MB of it.
MAX_RSS = 2_500 * 1024 * 1024

CHART = """\
# Issue 11's collisions under one rendition: names only {stem} tells apart.
schema_version: 2
extends: social_media
renditions:
  feed_portrait: null
  story: null
naming: "{shoot}/{rendition}/{stem}.{ext}"
"""


def run_cli(*args: str) -> tuple[int, str, str]:
    """``postprod ARGS`` in a child process: (exit code, stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "POSTPROD_OFFLINE": "1"}
    child = subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", *args],
                           capture_output=True, env=env, timeout=300)
    return child.returncode, child.stdout.decode(), child.stderr.decode("utf-8", "replace")


def run_cli_measured(*args: str) -> tuple[int, str, str, int]:
    """As :func:`run_cli`, plus the child's own peak memory in bytes (``wait4``'s rusage)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "POSTPROD_OFFLINE": "1"}
    out_r, out_w = os.pipe()
    err_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"postprod-adversarial-{os.getpid()}.err"
    with open(err_path, "wb") as err_file:
        pid = os.posix_spawn(
            sys.executable, [sys.executable, "-c", "from pipeline.cli import main; main()", *args], env,
            file_actions=[(os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_file.fileno(), 2),
                          (os.POSIX_SPAWN_CLOSE, out_r)],
        )
    os.close(out_w)
    with os.fdopen(out_r, "rb") as f:
        stdout = f.read()
    _, status, usage = os.wait4(pid, 0)
    stderr = err_path.read_bytes()
    err_path.unlink()
    return os.waitstatus_to_exitcode(status), stdout.decode(), stderr.decode("utf-8", "replace"), usage.ru_maxrss * 1024


@pytest.fixture(scope="module")
def corpus(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build_corpus(tmp_path_factory.mktemp("hostile"), testdata)


@pytest.fixture(scope="module")
def first_run(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("run")
    chart = folder / "hostile_chart.yaml"
    chart.write_text(CHART, encoding="utf-8")
    out = folder / "out"
    code, stdout, stderr, rss = run_cli_measured(
        "process", str(corpus.shoot), "--out", str(out), "--executor", "local", "--chart", str(chart), "--json"
    )
    return {"code": code, "stdout": stdout, "stderr": stderr, "rss": rss, "out": out, "chart": chart}


def test_exit_code_3_and_no_traceback(first_run: dict) -> None:
    assert first_run["code"] == 3, first_run["stderr"][-3000:]
    assert "Traceback" not in first_run["stderr"], first_run["stderr"][-3000:]


def test_every_input_is_a_row_or_a_skipped_entry(first_run: dict, corpus: Corpus) -> None:
    summary = json.loads(first_run["stdout"])
    rows = {r["source_path"]: r for r in pq.read_table(first_run["out"] / "manifest.parquet").to_pylist()}
    skipped = {s["source_path"]: s["reason"] for s in summary["skipped"]}
    problems = []
    for case in corpus.cases:
        if case.outcome == "skipped":
            reason = skipped.get(case.source_path)
            if reason is None or not all(w in reason.lower() for w in case.says):
                problems.append(f"{case.source_path!r} ({case.kind}): skipped as {reason!r}, expected {case.says}")
            continue
        row = rows.get(case.source_path)
        if row is None:
            problems.append(f"{case.source_path!r} ({case.kind}): no manifest row")
        elif case.outcome == "duplicate":
            if row["duplicate_of"] is None:
                problems.append(f"{case.source_path!r}: expected a duplicate, got {row['status']}")
        elif row["status"] != case.outcome or (
            case.says and not all(w in (row["error"] or "").lower() for w in case.says)
        ):
            problems.append(f"{case.source_path!r} ({case.kind}): {row['status']} {row['error']!r}, "
                            f"expected {case.outcome} {case.says}")
    expected_rows = {c.source_path for c in corpus.cases if c.outcome != "skipped"}
    extra = set(rows) - expected_rows
    assert not problems and not extra, "\n".join(problems + [f"unexpected row {e!r}" for e in sorted(extra)])
    assert len(skipped) == sum(c.outcome == "skipped" for c in corpus.cases)


def test_no_export_is_overwritten(first_run: dict, corpus: Corpus) -> None:
    out: Path = first_run["out"]
    exports = pq.read_table(out / "exports.parquet").to_pylist()
    ok = [c for c in corpus.cases if c.outcome == "ok"]
    assert len(exports) == len(ok)  # one rendition per delivered image
    paths = [e["path"] for e in exports]
    assert len(set(paths)) == len(paths) and len({p.casefold() for p in paths}) == len(paths)
    for e in exports:
        data = (out / e["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == e["sha256"], e["path"]
        name = Path(e["path"]).name
        assert name.isascii() and name.isprintable() and len(name.encode()) <= 255, name
    on_disk = [p for p in (out / "exports").rglob("*") if p.is_file()]
    assert len(on_disk) == len(exports)
    # The sidecars and instructions do not overwrite each other either.
    planned = [r for r in pq.read_table(out / "manifest.parquet").to_pylist()
               if r["status"] == "ok" and r["duplicate_of"] is None]
    assert len(list((out / "instructions").glob("*.json"))) == len(planned)
    assert len([p for p in (out / "xmp").rglob("*.xmp")]) == len(planned)


def test_the_169_megapixel_png_fits_in_memory(first_run: dict) -> None:
    assert first_run["rss"] < MAX_RSS, f"peak {first_run['rss'] / 2**20:.0f} MB"


def test_a_rerun_gives_the_same_deliveries(first_run: dict, corpus: Corpus) -> None:
    out: Path = first_run["out"]
    before = sorted((e["path"], e["sha256"]) for e in pq.read_table(out / "exports.parquet").to_pylist())
    code, stdout, stderr = run_cli(
        "process", str(corpus.shoot), "--out", str(out), "--executor", "local", "--chart", str(first_run["chart"]),
        "--json",
    )
    assert code == 3 and "Traceback" not in stderr, stderr[-3000:]
    assert json.loads(stdout)["reused_from_earlier_run"] > 0
    after = sorted((e["path"], e["sha256"]) for e in pq.read_table(out / "exports.parquet").to_pylist())
    assert after == before
