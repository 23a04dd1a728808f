"""Executors run the per-image stage chain; stages never know which one does.

Both give identical records for the same inputs: they share
:class:`pipeline.kernel.runner.Runner`, which decides what happens to one image.
"""

from __future__ import annotations

from typing import Iterator, Protocol

from pipeline.kernel.graph import Graph
from pipeline.kernel.records import ImageRecord, SourceTask
from pipeline.kernel.stage import RunContext


class Executor(Protocol):
    def map(
        self, graph: Graph, context: RunContext, tasks: list[SourceTask], records: list[ImageRecord] | None = None
    ) -> Iterator[ImageRecord]:
        """Yield one record per task, in completion order (continuing ``records`` when given)."""
        ...

    def close(self) -> None: ...


EXECUTORS = ("ray", "local")


def make_executor(name: str, workers: int | None = None, ray_address: str | None = None) -> Executor:
    """Build an executor by name (``"ray"`` or ``"local"``)."""
    if name == "local":
        from pipeline.executors.local import LocalExecutor

        return LocalExecutor()
    if name == "ray":
        from pipeline.executors.ray import RayExecutor

        return RayExecutor(workers=workers, address=ray_address)
    raise ValueError(f"unknown executor {name!r} (choose from {', '.join(EXECUTORS)})")
