"""In-process executor: one image after the other, for debugging and tests.

A breakpoint in a stage stops here, in the same process, with the proxy in
reach: this is the executor to use with ``pdb``.
"""

from __future__ import annotations

from typing import Iterator

from pipeline.kernel.graph import Graph
from pipeline.kernel.records import ImageRecord, SourceTask
from pipeline.kernel.runner import Runner
from pipeline.kernel.stage import RunContext


class LocalExecutor:
    def map(
        self, graph: Graph, context: RunContext, tasks: list[SourceTask], records: list[ImageRecord] | None = None
    ) -> Iterator[ImageRecord]:
        runner = Runner(graph, context)
        for i, task in enumerate(tasks):
            yield runner.run(task, records[i] if records is not None else None)

    def close(self) -> None:
        pass
