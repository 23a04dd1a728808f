"""The dependency rules of the layout, read from every module's imports with ``ast``.

- A stage module imports the core and libraries, never another stage: nothing
  from the ``stages`` package (its ``__init__``, the registry, is the exception).
- Outside ``stages/`` and ``tests/``, a stage is reached only through the
  registry: ``from stages import REGISTRY`` or ``import stages``, never
  ``stages.<module>``.
- The imaging core (``pipeline/imaging/``) imports no stage, and none of the
  layers built on it: the CLI, the review app, the executors, the run
  kernel's ``run``, the output writers, planning.

Imports inside functions count as much as those at the top of a file.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_SKIP_DIRS = {"__pycache__", "node_modules", "build", "dist", "venv", "env"}

#: What the imaging core must not import (packages and everything under them).
IMAGING_MUST_NOT_IMPORT = (
    "stages",
    "pipeline.cli",
    "pipeline.review",
    "pipeline.executors",
    "pipeline.kernel.run",
    "pipeline.outputs",
    "pipeline.planning",
)


@dataclass(frozen=True)
class Import:
    """One imported name: the module it may denote, where, and how it was written."""

    module: str  # absolute dotted name (for ``from a import b``: ``a.b``, which may be a submodule)
    line: int
    text: str
    from_package: str | None = None  # ``a`` for ``from a import b``
    name: str | None = None  # ``b`` for ``from a import b``


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    text: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text!r}: {self.rule}"


def module_name(relpath: str) -> str:
    parts = relpath[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(relpath: str, source: str) -> list[Import]:
    """Every import statement of a module, relative ones resolved against its package."""
    tree = ast.parse(source, filename=relpath)
    package = module_name(relpath)
    if not relpath.endswith("__init__.py"):
        package = package.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(tree):
        text = ast.get_source_segment(source, node) if isinstance(node, (ast.Import, ast.ImportFrom)) else None
        if isinstance(node, ast.Import):
            found += [Import(a.name, node.lineno, text or "") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                parent = ".".join(base + ([node.module] if node.module else []))
            else:
                parent = node.module or ""
            found.append(Import(parent, node.lineno, text or ""))
            for a in node.names:
                found.append(Import(f"{parent}.{a.name}", node.lineno, text or "", parent, a.name))
    return found


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations_of(relpath: str, source: str) -> list[Violation]:
    """The rules' verdict on one module (``relpath`` is POSIX, relative to the repository root)."""
    out: list[Violation] = []
    top = relpath.split("/", 1)[0]
    for imp in imports_of(relpath, source):
        if top == "stages" and relpath != "stages/__init__.py":
            if _under(imp.module, "stages"):
                out.append(Violation(relpath, imp.line, imp.text, "a stage imports the core, never another stage"))
        elif top not in ("stages", "tests") and _under(imp.module, "stages"):
            through_registry = imp.module == "stages" or (imp.from_package == "stages" and imp.name == "REGISTRY")
            if not through_registry:
                out.append(Violation(relpath, imp.line, imp.text,
                                     "outside stages/, reach a stage through `from stages import REGISTRY`"))
        if relpath.startswith("pipeline/imaging/"):
            banned = next((b for b in IMAGING_MUST_NOT_IMPORT if _under(imp.module, b)), None)
            if banned is not None:
                out.append(Violation(relpath, imp.line, imp.text, f"the imaging core must not import {banned}"))
    return sorted(set(out), key=lambda v: (v.path, v.line, v.rule))


def python_files() -> list[str]:
    files = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if any(p.startswith(".") or p in _SKIP_DIRS for p in rel.parts[:-1]):
            continue
        files.append(rel.as_posix())
    return sorted(files)


# --- the repository ------------------------------------------------------------------


def test_the_repository_keeps_the_dependency_rules() -> None:
    files = python_files()
    assert "stages/render.py" in files and "pipeline/imaging/render.py" in files and "benchmarks/bench_render.py" in files
    found = [v for f in files for v in violations_of(f, (ROOT / f).read_text(encoding="utf-8"))]
    assert not found, "imports that break the layout's rules:\n" + "\n".join(map(str, found))


# --- the checker itself ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "source", "line"),
    [
        ("pipeline/review/preview.py", "import io\n\nfrom stages.render import Render\n", 3),
        ("pipeline/review/preview.py", "def f():\n    from stages import render\n", 2),
        ("pipeline/review/preview.py", "import stages.decode_raw as d\n", 1),
        ("benchmarks/bench_x.py", "from stages.decode_raw import DecodeRaw\n", 1),
        ("stages/render.py", "from stages.decode_raw import decode\n", 1),
        ("stages/render.py", "from .decode_raw import decode\n", 1),
        ("stages/render.py", "from stages import REGISTRY\n", 1),
        ("pipeline/imaging/render.py", "from pipeline.kernel import run\n", 1),
        ("pipeline/imaging/render.py", "from pipeline.outputs.encode import encode\n", 1),
        ("pipeline/imaging/render.py", "from ..review import app\n", 1),
        ("pipeline/imaging/decode.py", "from pipeline import planning\n", 1),
        ("pipeline/imaging/decode.py", "import stages\n", 1),
    ],
)
def test_a_broken_rule_is_reported_with_file_and_line(path: str, source: str, line: int) -> None:
    found = violations_of(path, source)
    assert found and {v.line for v in found} == {line}, found
    assert str(found[0]).startswith(f"{path}:{line}: ")


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("pipeline/kernel/graph.py", "def f():\n    from stages import REGISTRY as registry\n"),
        ("pipeline/cli/main.py", "import stages\n"),
        ("stages/__init__.py", "from stages.render import Render\n"),
        ("stages/render.py", "from pipeline.imaging.render import render_renditions\nimport numpy as np\n"),
        ("tests/test_x.py", "from stages.render import Render\n"),
        ("pipeline/imaging/render.py", "from pipeline.kernel.records import Operation\nfrom charts.schema import Chart\n"),
        ("pipeline/imaging/render.py", "from pipeline.kernel import records\nimport pipeline.kernel.errors\n"),
        ("pipeline/review/preview.py", "from pipeline.imaging.render import render_preview\nimport stagesetc\n"),
    ],
)
def test_what_the_rules_allow(path: str, source: str) -> None:
    assert violations_of(path, source) == []
