"""Runs the stage chain on one image inside a worker; shared by all executors.

The executor decides where this runs (in-process, or a Ray actor); the runner
decides what happens to one image, so both executors give identical results.
"""

from __future__ import annotations

import time

from pipeline.kernel.declared import declared_view
from pipeline.kernel.errors import InputError
from pipeline.kernel.graph import Graph
from pipeline.kernel.records import ImageRecord, SourceTask, Status, WorkItem
from pipeline.kernel.stage import RunContext, Stage


def limit_threads(n: int) -> None:
    """Keep OpenCV from starting a thread per core in every worker."""
    import cv2

    cv2.setNumThreads(max(1, n))


class Runner:
    """The stages of a graph, built and set up once, applied image by image."""

    def __init__(self, graph: Graph, context: RunContext) -> None:
        shoot_stages = [s.name for s in graph.stages if s.cls.scope == "shoot"]
        if shoot_stages:
            raise ValueError(f"Runner runs image-scope stages only; {shoot_stages} run on the whole shoot "
                             "(iterate over graph.segments())")
        self.graph = graph
        self.context = context
        self.stages: list[Stage] = [s.build(context) for s in graph.stages]
        self._ready = False

    def setup(self) -> None:
        if not self._ready:
            limit_threads(self.context.threads_per_worker)
            for stage in self.stages:
                stage.setup()
            self._ready = True

    def run(self, task: SourceTask, record: ImageRecord | None = None) -> ImageRecord:
        """Process one image; an :class:`InputError` fails this image only.

        ``record`` continues an image from an earlier segment of the graph
        (after planning); a record that already failed is returned as is.
        """
        self.setup()
        if record is not None and record.status is Status.FAILED:
            return record
        real = record if record is not None else task.new_record()
        item = WorkItem(task=task, record=real)
        for stage in self.stages:
            if self.context.check_declarations:
                item.record = declared_view(real, stage)  # type: ignore[assignment]
            start = time.perf_counter()
            try:
                stage.process(item)
            except InputError as exc:
                real.status = Status.FAILED
                real.error = f"{stage.name}: {exc}"
                break
            finally:
                item.record = real
                real.stage_seconds[stage.name] = round(time.perf_counter() - start, 6)
        item.artifacts.clear()
        return real
