"""Graph files are validated before any work, with file, line and key."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from pathlib import Path

import pytest

import stages
from pipeline.kernel.errors import ConfigError
from pipeline.kernel.graph import describe, load_graph
from pipeline.kernel.records import GROUPS, MANIFEST_COLUMNS, SIDE_TABLE_FIELDS, ImageRecord, SourceKind, Verdict
from pipeline.kernel.schema import MANIFEST_SCHEMA
from pipeline.kernel.stage import Stage
from stages import REGISTRY


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "graph.yaml"
    path.write_text(text)
    return path


def test_default_graph_is_valid() -> None:
    graph = load_graph()
    assert graph.stages[0].name == "decode_raw"
    text = describe(graph)
    assert "decode_raw" in text and "resources" in text


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("schema_version: 1\nname: g\nstages:\n  - stage: decode_raw\n    colour: red\n", 5, "stages.0.colour",
         "unknown key (the keys here: stage, params)"),
        ("schema_version: 1\nname: g\nstages:\n  - stage: decode_raw\n    params:\n      proxy_lng_edge: 1600\n", 6,
         "stages.0.params.proxy_lng_edge", "unknown key (the keys here: proxy_long_edge, max_megapixels"),
        ("schema_version: 1\nname: g\nstages:\n  - stage: sharpen_everything\n", 4, "stages.0.stage", "unknown stage"),
        ("schema_version: 1\nname: g\nstages:\n  - stage: decode_raw\n    params:\n      proxy_long_edge: 12\n", 6,
         "stages.0.params.proxy_long_edge", "greater than or equal to 256, got the number 12"),
        ("schema_version: 1\nname: g\nstages:\n  - stage: decode_raw\n    params:\n      proxy_long_edge: big\n", 6,
         "stages.0.params.proxy_long_edge", "valid integer, unable to parse string as an integer, got the text 'big'"),
        ("schema_version: 1\nname: g\nstages:\n  - stage: decode_raw\n  - stage: decode_raw\n", 5, "stages.1.stage", "twice"),
        ("schema_version: 9\nname: g\nstages:\n  - stage: decode_raw\n", 1, "schema_version", "Input should be 1"),
        ("schema_version: 1\nname: g\nstages:\n  - stage: decode_raw\n   bad: [\n", 5, None, "YAML syntax error"),
        ("schema_version: 1\nname: g\nname: h\nstages: []\n", 3, None, "duplicate key"),
    ],
)
def test_bad_graph_names_file_line_and_key(tmp_path: Path, text: str, line: int, key: str | None, words: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_graph(path)
    err = info.value
    assert err.location is not None and Path(err.location.file) == path
    assert err.location.line == line, str(err)
    assert err.location.key == key
    assert words in str(err)
    assert f"{path}:{line}" in str(err)


def test_read_before_write_is_rejected(tmp_path: Path) -> None:
    class NeedsExposure(Stage):
        name = "needs_exposure"
        reads = frozenset({"frame.width"})
        consumes = frozenset({"proxy"})

        def process(self, item) -> None:  # noqa: ANN001
            pass

    registry = {**REGISTRY, NeedsExposure.name: NeedsExposure}
    path = _write(tmp_path, "schema_version: 1\nname: g\nstages:\n  - stage: needs_exposure\n  - stage: decode_raw\n")
    with pytest.raises(ConfigError, match=r"reads \['frame.width'\], which no earlier stage writes") as info:
        load_graph(path, registry)
    assert info.value.location.line == 4
    ok = _write(tmp_path, "schema_version: 1\nname: g\nstages:\n  - stage: decode_raw\n  - stage: needs_exposure\n")
    assert [s.name for s in load_graph(ok, registry).stages] == ["decode_raw", "needs_exposure"]


def test_a_field_read_if_present_may_be_missing_from_the_graph(tmp_path: Path) -> None:
    """The planner uses find_keypoints' evidence when the graph has the stage, and does without it."""
    without = _write(tmp_path, "schema_version: 1\nname: g\nstages:\n  - stage: decode_raw\n"
                               "  - stage: measure_exposure\n  - stage: detect_faces\n  - stage: plan_retouch\n")
    assert [s.name for s in load_graph(without).stages][-1] == "plan_retouch"
    assert "keypoints_path (if present)" in describe(load_graph(without))


def test_every_stage_module_is_registered() -> None:
    modules = {m.name for m in pkgutil.iter_modules(stages.__path__)}
    registered = {cls.__module__.rsplit(".", 1)[1] for cls in REGISTRY.values()}
    assert modules == registered, f"stage files not in stages.REGISTRY: {sorted(modules - registered)}"
    for name, cls in REGISTRY.items():
        assert cls.name == name
        assert cls.description, f"{name} has no description"
        importlib.import_module(cls.__module__)


def test_record_and_arrow_schema_agree() -> None:
    # The manifest is generated from the record: every column is one record field, and back.
    columns = {c.name: c for c in MANIFEST_COLUMNS}
    assert list(columns) == MANIFEST_SCHEMA.names
    for f in dataclasses.fields(ImageRecord):
        if f.name in GROUPS:
            for g in dataclasses.fields(GROUPS[f.name]):
                assert g.metadata["column"] in columns, f"{f.name}.{g.name} is not a manifest column"
        else:
            assert f.name in SIDE_TABLE_FIELDS or f.metadata.get("column") == f.name, f.name
    for field in MANIFEST_SCHEMA:
        assert field.metadata and field.metadata.get(b"description"), f"{field.name} has no description"
    # A manifest row round-trips through the record.
    r = ImageRecord("a.jpg", "0" * 64, 1, "jpeg", SourceKind.RASTER)
    r.plan.exposure_ev, r.colour.cast_b, r.plan.verdict = -1.25, 4.5, Verdict.FLAG
    back = ImageRecord.from_row(r.to_row())
    assert back.plan.exposure_ev == -1.25 and back.colour.cast_b == 4.5 and back.plan.verdict is Verdict.FLAG
