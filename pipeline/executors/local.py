"""In-process executor: one image after the other, for debugging and tests.

A breakpoint in a stage stops here, in the same process, with the proxy in
reach: this is the executor to use with ``pdb``.
"""

from __future__ import annotations

from typing import Iterator, Sequence

from pipeline.kernel import decode_cache
from pipeline.kernel.graph import Graph
from pipeline.kernel.interrupt import stop_if_interrupted
from pipeline.kernel.records import ImageRecord, SourceTask
from pipeline.kernel.runner import Runner
from pipeline.kernel.stage import RunContext

#: Decodes the render reuses are kept in memory up to this much (then on disk), none above a quarter
#: of it: render and analysis run in this one process, so a decode need not make the trip through a file.
MEMORY_CACHE_BYTES = 256 * 1024 * 1024


class LocalExecutor:
    def __init__(self) -> None:
        decode_cache.hold_in_memory(MEMORY_CACHE_BYTES)

    def map(
        self, graph: Graph, context: RunContext, tasks: list[SourceTask], records: Sequence[ImageRecord] | None = None
    ) -> Iterator[ImageRecord]:
        runner = Runner(graph, context)
        for i, task in enumerate(tasks):
            stop_if_interrupted()  # a Ctrl-C that was swallowed where it landed stops the run here
            yield runner.run(task, records[i] if records is not None else None)

    def close(self) -> None:
        decode_cache.hold_in_memory(0)
