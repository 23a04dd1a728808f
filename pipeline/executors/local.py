"""In-process executor: one image after the other, for debugging, tests and small shoots.

A breakpoint in a stage stops here, in the same process, with the proxy in
reach: this is the executor to use with ``pdb``. Being the only process at
work, it lets OpenCV, the face detector and the measurements use every CPU the
process may run on (:func:`usable_cpus`); a Ray worker gets one, as it shares the
machine with a worker per CPU. The records are the same either way.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator, Sequence

from pipeline.executors import usable_cpus
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
    """Runs the images one after the other in this process, with ``threads`` threads for each image's work
    (every usable CPU by default)."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = max(1, threads if threads is not None else usable_cpus())
        decode_cache.hold_in_memory(MEMORY_CACHE_BYTES)

    def map(
        self, graph: Graph, context: RunContext, tasks: list[SourceTask], records: Sequence[ImageRecord] | None = None
    ) -> Iterator[ImageRecord]:
        runner = Runner(graph, replace(context, threads_per_worker=self.threads))
        for i, task in enumerate(tasks):
            stop_if_interrupted()  # a Ctrl-C that was swallowed where it landed stops the run here
            yield runner.run(task, records[i] if records is not None else None)

    def close(self) -> None:
        decode_cache.hold_in_memory(0)
