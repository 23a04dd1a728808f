"""One shoot in, one output folder out: ingest, execute the graph, write the manifest."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from pipeline.errors import ConfigError, Location
from pipeline.executors import make_executor
from pipeline.graph import Graph, load_graph
from pipeline.ingest import Shoot, scan_shoot
from pipeline.records import ImageRecord, Status
from pipeline.schema import MANIFEST_SCHEMA, to_table, write_parquet_atomic
from pipeline.stage import RunContext

MANIFEST_NAME = "manifest.parquet"
SUMMARY_NAME = "summary.json"


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs, validated before any image is touched."""

    shoot_dir: Path
    out_dir: Path
    executor: str = "ray"
    workers: int | None = None
    ray_address: str | None = None
    graph_path: Path | None = None
    device: str = "cpu"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    out_dir: Path
    records: list[ImageRecord]
    shoot: Shoot
    seconds: float

    @property
    def failed(self) -> list[ImageRecord]:
        return [r for r in self.records if r.status is Status.FAILED and r.duplicate_of is None]

    @property
    def ok(self) -> list[ImageRecord]:
        return [r for r in self.records if r.status is Status.OK and r.duplicate_of is None]

    def summary(self) -> dict[str, Any]:
        return {
            "shoot": str(self.shoot.root),
            "out": str(self.out_dir),
            "files": len(self.records),
            "processed": len(self.shoot.tasks),
            "ok": len(self.ok),
            "failed": [{"source_path": r.source_path, "error": r.error} for r in self.failed],
            "duplicates": [{"source_path": d.source_path, "duplicate_of": d.duplicate_of} for d in self.shoot.duplicates],
            "skipped": [{"source_path": s.source_path, "reason": s.reason} for s in self.shoot.skipped],
            "skipped_by_reason": dict(Counter(s.reason for s in self.shoot.skipped)),
            "seconds": round(self.seconds, 3),
        }


def write_json_atomic(data: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, default=str, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_out_dir(shoot_dir: Path, out_dir: Path) -> None:
    """The output folder must not be inside the shoot (it would be ingested next time) nor contain it."""
    shoot, out = shoot_dir.resolve(), out_dir.resolve()
    if out == shoot or shoot in out.parents:
        raise ConfigError("the output folder must be outside the shoot folder", Location(str(out_dir), key="--out"))
    if out in shoot.parents:
        raise ConfigError("the output folder must not contain the shoot folder", Location(str(out_dir), key="--out"))


def prepare(settings: RunSettings) -> tuple[Graph, RunContext]:
    """Validate graph and settings; raises ConfigError before any work."""
    graph = load_graph(settings.graph_path)
    if not settings.shoot_dir.is_dir():
        raise ConfigError("shoot folder not found", Location(str(settings.shoot_dir), key="SHOOT"))
    check_out_dir(settings.shoot_dir, settings.out_dir)
    if settings.workers is not None and settings.workers < 1:
        raise ConfigError("must be at least 1", Location(None, key="--workers"))
    context = RunContext(
        shoot_dir=settings.shoot_dir.resolve(),
        out_dir=settings.out_dir.resolve(),
        device=settings.device,
        options=dict(settings.options),
    )
    for bound in graph.stages:
        bound.build(context).preflight()
    return graph, context


def process_shoot(
    settings: RunSettings,
    on_start: Callable[[int], None] | None = None,
    on_record: Callable[[ImageRecord], None] | None = None,
) -> RunResult:
    """Process a shoot folder and write ``manifest.parquet`` into the output folder.

    Raises
    ------
    ConfigError
        On an invalid graph, chart or setting, before any image is processed.
    """
    start = time.perf_counter()
    graph, context = prepare(settings)
    shoot = scan_shoot(settings.shoot_dir)
    if on_start:
        on_start(len(shoot.tasks))
    context.out_dir.mkdir(parents=True, exist_ok=True)
    by_path: dict[str, ImageRecord] = {}
    executor = make_executor(settings.executor, settings.workers, settings.ray_address)
    try:
        for record in executor.map(graph, context, shoot.tasks):
            by_path[record.source_path] = record
            if on_record:
                on_record(record)
    finally:
        executor.close()
    for dup in shoot.duplicates:
        original = by_path[dup.duplicate_of]
        by_path[dup.source_path] = replace(
            original, source_path=dup.source_path, duplicate_of=dup.duplicate_of, stage_seconds={}
        )
    records = [by_path[k] for k in sorted(by_path)]
    result = RunResult(context.out_dir, records, shoot, time.perf_counter() - start)
    write_manifest(records, context.out_dir / MANIFEST_NAME, graph, shoot)
    write_json_atomic(result.summary(), context.out_dir / SUMMARY_NAME)
    return result


def write_manifest(records: list[ImageRecord], path: Path, graph: Graph, shoot: Shoot) -> None:
    table = to_table(
        (r.to_row() for r in records),
        MANIFEST_SCHEMA,
        {"graph": graph.name, "shoot": str(shoot.root)},
    )
    write_parquet_atomic(table, path)
