"""The stage graph, declared as data in ``configs/*.yaml`` and validated up front.

Validation happens in the driver before any worker starts: unknown stages,
unknown keys, bad parameters and a field read before any stage writes it all
stop the run with one :class:`~pipeline.kernel.errors.ConfigError` that names the
file, the line and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.kernel.errors import ConfigError
from pipeline.kernel.records import BOOKKEEPING_FIELDS, INGEST_FIELDS, RECORD_FIELDS, produced
from pipeline.kernel.stage import Resources, RunContext, Stage
from pipeline.kernel.yamlconf import YamlDocument, load_yaml, validate

GRAPH_SCHEMA_VERSION = 1


class StageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str = Field(description="Registered stage name (see `postprod describe`).")
    params: dict[str, Any] = Field(default_factory=dict, description="Stage parameters.")


class GraphConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = Field(description="Version of this file's format.")
    name: str = Field(min_length=1, description="Name of the graph.")
    description: str = ""
    stages: list[StageSpec] = Field(min_length=1, description="Per-image stages, in order.")


@dataclass(frozen=True)
class BoundStage:
    """A registered stage class with its validated parameters."""

    cls: type[Stage]
    params: Any

    @property
    def name(self) -> str:
        return self.cls.name

    def build(self, context: RunContext) -> Stage:
        return self.cls(self.params, context)


@dataclass(frozen=True)
class Graph:
    """A validated graph: picklable, sent as is to every worker."""

    name: str
    source: str
    stages: tuple[BoundStage, ...]

    @property
    def resources(self) -> Resources:
        """What one worker running the whole chain needs (the max per resource)."""
        rs = [s.cls.resources for s in self.stages]
        return Resources(
            cpus=max(r.cpus for r in rs),
            gpus=max(r.gpus for r in rs),
            memory_mb=max(r.memory_mb for r in rs),
        )

    @property
    def writes(self) -> frozenset[str]:
        out: set[str] = set(INGEST_FIELDS)
        for s in self.stages:
            out |= s.cls.writes
        return frozenset(out)

    def with_params(self, stage: str, **updates: Any) -> Graph:
        """This graph with some parameters of one stage changed (validated like the file's).

        Raises
        ------
        KeyError
            If the graph has no stage ``stage``.
        pydantic.ValidationError
            If an updated value is out of its bounds.
        """
        if stage not in {s.name for s in self.stages}:
            raise KeyError(f"graph '{self.name}' has no stage '{stage}'")
        bound = tuple(
            BoundStage(s.cls, s.cls.Params.model_validate({**s.params.model_dump(), **updates}))
            if s.name == stage else s
            for s in self.stages
        )
        return Graph(self.name, self.source, bound)

    def segments(self) -> list[Graph]:
        """The graph cut at its shoot-scope stages.

        Each segment is either a run of image-scope stages (executed by the
        executor, image by image, in workers) or one shoot-scope stage
        (executed in the driver on all records).
        """
        out: list[list[BoundStage]] = []
        for s in self.stages:
            if s.cls.scope == "shoot" or not out or out[-1][0].cls.scope == "shoot":
                out.append([s])
            else:
                out[-1].append(s)
        return [Graph(self.name, self.source, tuple(seg)) for seg in out]

    @property
    def scope(self) -> str:
        return "shoot" if len(self.stages) == 1 and self.stages[0].cls.scope == "shoot" else "image"

    def subset(self, names: set[str]) -> Graph:
        return Graph(self.name, self.source, tuple(s for s in self.stages if s.name in names))


def default_graph_path() -> Path:
    return Path(str(resources.files("configs").joinpath("default.yaml")))


def load_graph(path: Path | str | None = None, registry: dict[str, type[Stage]] | None = None) -> Graph:
    """Read, validate and bind a graph file.

    Parameters
    ----------
    path : path-like, optional
        Graph YAML; the bundled ``configs/default.yaml`` when omitted.
    registry : dict, optional
        Stage name -> class; :data:`stages.REGISTRY` when omitted.

    Raises
    ------
    ConfigError
        On a YAML error, an unknown key or stage, invalid parameters, or a
        stage that reads a field or artifact no earlier stage produces.
    """
    if registry is None:
        from stages import REGISTRY as registry  # noqa: N811 (import cycle: stages import pipeline)
    doc = load_yaml(path or default_graph_path())
    if not isinstance(doc.data, dict):
        raise ConfigError("a graph file must be a mapping with 'schema_version', 'name' and 'stages'", doc.location(()))
    cfg: GraphConfig = validate(GraphConfig, doc)  # type: ignore[assignment]
    return bind(cfg, doc, registry)


def bind(cfg: GraphConfig, doc: YamlDocument, registry: dict[str, type[Stage]]) -> Graph:
    fields: set[str] = set(INGEST_FIELDS | BOOKKEEPING_FIELDS)
    artifacts: set[str] = set()
    bound: list[BoundStage] = []
    seen: set[str] = set()
    for i, spec in enumerate(cfg.stages):
        where = ("stages", i, "stage")
        cls = registry.get(spec.stage)
        if cls is None:
            known = ", ".join(sorted(registry))
            raise ConfigError(f"unknown stage '{spec.stage}' (known stages: {known})", doc.location(where))
        if spec.stage in seen:
            raise ConfigError(f"stage '{spec.stage}' appears twice", doc.location(where))
        seen.add(spec.stage)
        params = validate(cls.Params, doc, spec.params, prefix=("stages", i, "params"))
        undeclared = sorted((cls.writes | cls.reads | cls.reads_if_present) - RECORD_FIELDS)
        if undeclared:  # a programming error in the stage, not in the config
            raise TypeError(f"stage {cls.__name__} declares fields the record does not have: {undeclared}")
        missing = sorted(r for r in cls.reads if not produced(fields, r))
        if missing:
            raise ConfigError(
                f"stage '{spec.stage}' reads {missing}, which no earlier stage writes; "
                "move it after the stage that produces them",
                doc.location(where),
            )
        missing = sorted(cls.consumes - artifacts)
        if missing:
            raise ConfigError(
                f"stage '{spec.stage}' needs pixels {missing}, which no earlier stage produces",
                doc.location(where),
            )
        if cls.scope == "shoot":
            if cls.consumes:
                raise TypeError(f"shoot-scope stage {cls.__name__} cannot consume pixels")
            artifacts = set()  # pixels do not outlive a worker pass
        fields |= cls.writes
        artifacts |= cls.produces
        bound.append(BoundStage(cls, params))
    return Graph(cfg.name, str(doc.path), tuple(bound))


def describe(graph: Graph) -> str:
    """Human-readable table of the graph's stages."""
    lines = [f"graph '{graph.name}' ({graph.source})", ""]
    for i, s in enumerate(graph.stages, 1):
        c = s.cls
        r = c.resources
        lines.append(f"{i}. {c.name}: {c.description}")
        optional = [f"{f} (if present)" for f in sorted(c.reads_if_present)]
        lines.append(f"   reads:    {', '.join(sorted(c.reads | c.consumes) + optional) or '-'}")
        lines.append(f"   writes:   {', '.join(sorted(c.writes | c.produces)) or '-'}")
        lines.append(f"   resources: cpus={r.cpus:g} gpus={r.gpus:g} memory={r.memory_mb} MB")
        params = s.params.model_dump() if hasattr(s.params, "model_dump") else {}
        if params:
            lines.append(f"   params:   {params}")
    return "\n".join(lines)
