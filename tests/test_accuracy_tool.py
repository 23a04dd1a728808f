"""The accuracy benchmark's bookkeeping: which code changes redo postprod's analysis, which only re-plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import accuracy as acc


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for rel in ("pipeline/imaging/metering.py", "pipeline/planning/rules/faces.py", "stages/detect_faces.py",
                "stages/plan_retouch.py", "charts/base.yaml", "configs/default.yaml", "models/registry.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(f"# {rel}\n")
    monkeypatch.setattr(acc, "ROOT", tmp_path)
    return tmp_path


@pytest.mark.parametrize("rel", ["pipeline/planning/rules/faces.py", "stages/plan_retouch.py", "charts/base.yaml"])
def test_a_plan_change_keeps_the_analysis_folder(tree: Path, rel: str) -> None:
    full, analysis = acc.code_hash(), acc.code_hash(analysis_only=True)
    (tree / rel).write_text("# changed\n")
    assert acc.code_hash() != full
    assert acc.code_hash(analysis_only=True) == analysis


@pytest.mark.parametrize("rel", ["pipeline/imaging/metering.py", "stages/detect_faces.py", "configs/default.yaml",
                                 "models/registry.py"])
def test_an_analysis_change_gets_a_new_folder(tree: Path, rel: str) -> None:
    full, analysis = acc.code_hash(), acc.code_hash(analysis_only=True)
    (tree / rel).write_text("# changed\n")
    assert acc.code_hash() != full
    assert acc.code_hash(analysis_only=True) != analysis
