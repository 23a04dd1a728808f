"""What users of exiftool, ImageMagick and rawtherapee-cli expect of a command line.

--json, -q, -v after the command name, --dry-run, --version, 'did you mean'
for chart names, and Ctrl-C exiting with 130 (not 1, the internal-error code).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from pipeline import __version__
from pipeline.cli import EXIT_CONFIG, EXIT_FILES_FAILED, EXIT_INTERRUPTED, EXIT_OK, main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shoot(exposure_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shoot")
    for src in sorted(exposure_dir.glob("a*.JPG"))[:2]:
        with Image.open(src) as im:
            im.thumbnail((400, 400))
            im.save(folder / src.name, quality=85)
    (folder / "broken.NEF").write_bytes(b"\0" * 100)
    (folder / "notes.xmp").write_text("<x/>")
    return folder


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str) -> None:
    result = CliRunner().invoke(main, [flag])
    assert result.exit_code == 0 and __version__ in result.output


def test_json_summary_on_stdout(shoot: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(tmp_path / "o"), "--executor", "local",
                                       "--json", "--no-progress"])
    assert result.exit_code == EXIT_FILES_FAILED, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] == 2 and summary["failed"][0]["source_path"] == "broken.NEF"
    assert summary["skipped"] == [{"source_path": "notes.xmp", "reason": "sidecar (.xmp)"}]


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_prints_nothing_and_verbose_is_accepted_after_the_command(shoot: Path, tmp_path: Path, where: str) -> None:
    args = ["process", str(shoot), "--out", str(tmp_path / "o"), "--executor", "local"]
    quiet = ["-q", *args] if where == "before" else [*args, "-q"]
    result = CliRunner().invoke(main, quiet)
    assert result.exit_code == EXIT_FILES_FAILED and result.stdout == "", result.output
    loud = CliRunner().invoke(main, [*args, "-vv"])
    assert loud.exit_code == EXIT_FILES_FAILED and "1 failed" in loud.stdout
    assert CliRunner().invoke(main, ["charts", "list", "-v"]).exit_code == 0


def test_dry_run_lists_and_writes_nothing(shoot: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--dry-run", "--json"])
    assert result.exit_code == EXIT_OK, result.output
    plan = json.loads(result.stdout)
    assert [t["source_path"] for t in plan["would_process"]] == sorted(
        p.name for p in shoot.iterdir() if p.suffix != ".xmp")
    assert plan["skipped"] == [{"source_path": "notes.xmp", "reason": "sidecar (.xmp)"}]
    assert not out.exists()
    text = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--dry-run"])
    assert "would process 3 files" in text.output and "notes.xmp: sidecar" in text.output and not out.exists()


def test_dry_run_still_checks_the_chart(shoot: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(tmp_path / "o"), "--dry-run",
                                       "--chart", "socal_media"])
    assert result.exit_code == EXIT_CONFIG and "did you mean 'social_media'" in result.output


def test_did_you_mean_for_charts() -> None:
    result = CliRunner().invoke(main, ["charts", "show", "Culinary"])
    assert result.exit_code == EXIT_CONFIG and "did you mean 'culinary'" in result.output
    nothing_close = CliRunner().invoke(main, ["charts", "show", "zzzz"])
    assert nothing_close.exit_code == EXIT_CONFIG and "did you mean" not in nothing_close.output


def test_ctrl_c_exits_130_with_a_resume_hint(exposure_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "POSTPROD_OFFLINE": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", "from pipeline.cli import main; main()", "process", str(exposure_dir), "--out",
         str(out), "--executor", "local", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        # A suite started in the background (`&`, nohup) hands its children SIGINT ignored; a user's
        # terminal does not. Restore the default so Python installs its KeyboardInterrupt handler.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    # Interrupt once the first image is journalled: mid-run, not during start-up.
    while not list((out / ".postprod" / "journal").rglob("*.json")) and time.monotonic() < deadline:
        if child.poll() is not None:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == EXIT_INTERRUPTED, err.decode()[-2000:]
    assert b"interrupted" in err and b"again to resume" in err and b"Traceback" not in err


def test_shell_completion_as_the_readme_says() -> None:
    assert "_POSTPROD_COMPLETE=bash_source postprod" in (ROOT / "README.md").read_text(encoding="utf-8")
    env = {"_POSTPROD_COMPLETE": "bash_complete", "COMP_WORDS": "postprod process --fol", "COMP_CWORD": "2"}
    result = CliRunner().invoke(main, [], prog_name="postprod", env=env)
    assert "--follow-external-symlinks" in result.output
