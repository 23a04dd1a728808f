"""``postprod models``: list, fetch, verify (click's CliRunner, no network)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pipeline.cli.models import models


@pytest.fixture
def cache(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model cache holding a copy of the shared YuNet file, offline."""
    name = "face_detection_yunet_2023mar.onnx"
    (tmp_path / name).write_bytes((model_dir / name).read_bytes())
    monkeypatch.setenv("POSTPROD_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("POSTPROD_OFFLINE", "1")
    return tmp_path


def test_every_command_has_help_text():
    assert models.help
    for name, command in models.commands.items():
        assert command.help, f"`postprod models {name}` has no help text"
        result = CliRunner().invoke(models, [name, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_list_shows_licence_cache_and_verification(cache: Path):
    result = CliRunner().invoke(models, ["list"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[2:]}
    assert "yes" in lines["yunet_2023mar"] and "MIT" in lines["yunet_2023mar"]
    assert " no " in lines["scrfd_500m"] and "non-commercial" in lines["scrfd_500m"]


def test_verify_passes_then_fails_on_a_tampered_file(cache: Path):
    runner = CliRunner()
    ok = runner.invoke(models, ["verify"])
    assert ok.exit_code == 0 and "yunet_2023mar    ok" in ok.output
    path = cache / "face_detection_yunet_2023mar.onnx"
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    bad = runner.invoke(models, ["verify"])
    assert bad.exit_code == 1
    assert "HASH MISMATCH" in bad.output and "postprod models fetch yunet_2023mar" in bad.output


def test_fetch_keeps_a_verified_file_and_refuses_the_network_offline(cache: Path):
    runner = CliRunner()
    kept = runner.invoke(models, ["fetch", "yunet_2023mar"])
    assert kept.exit_code == 0 and "SHA-256 verified" in kept.output
    offline = runner.invoke(models, ["fetch", "--all"])
    assert offline.exit_code == 1 and "POSTPROD_OFFLINE=1" in offline.output
    unknown = runner.invoke(models, ["fetch", "nope"])
    assert unknown.exit_code == 1 and "unknown model 'nope'" in unknown.output
    assert runner.invoke(models, ["fetch"]).exit_code == 2


def test_group_is_a_click_group():
    assert isinstance(models, click.Group) and set(models.commands) == {"list", "fetch", "verify"}
