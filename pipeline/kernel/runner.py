"""Runs the stage chain on one image inside a worker; shared by all executors.

The executor decides where this runs (in-process, or a Ray actor); the runner
decides what happens to one image, so both executors give identical results.

Failures are sorted by what a rerun could change:

* :class:`~pipeline.kernel.errors.InputError` is the file's content (corrupt,
  unsupported): a failed row with ``failure="input"``, journalled, so the same
  bytes under the same code are not tried again;
* an ``OSError`` (a file missing for a moment, a network share hiccup, EIO)
  or a ``MemoryError`` is the machine's: the image is tried again, twice,
  from the record it came in with, and if it still fails it becomes a row
  with ``failure="transient"`` that is never journalled, so every rerun
  retries it;
* a full disk stops the run (:class:`~pipeline.kernel.errors.OutOfSpace`):
  every later image would fail the same way;
* anything else is a programming error and propagates.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings

from pipeline.kernel.declared import declared_view
from pipeline.kernel.errors import InputError, OutOfSpace, is_out_of_space
from pipeline.kernel.graph import Graph
from pipeline.kernel.records import Failure, ImageRecord, SourceTask, Status, WorkItem
from pipeline.kernel.stage import RunContext, Stage

log = logging.getLogger(__name__)

#: Seconds to wait before each new attempt at an image that failed for a transient reason.
RETRY_DELAYS_S = (0.5, 2.0)
TRANSIENT_NOTE = "transient: the next run tries it again"
#: What an internal error's failed row adds to its reason.
INTERNAL_NOTE = "postprod's error, not the file's: please report it with the file; the next run tries it again"


def fail_internal(record: ImageRecord, where: str, exc: Exception) -> None:
    """Fail ``record`` on postprod's own error ``exc`` in ``where`` (a stage, or the planning): its row names the
    error's type and message on one line and asks for a report; the log has the line, and the traceback at -vv."""
    said = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    log.error("%s: %s: internal error (%s; -vv shows where)", record.source_path, where, said)
    log.debug("%s: %s: internal error", record.source_path, where, exc_info=exc)
    record.status, record.failure = Status.FAILED, Failure.INTERNAL
    record.error = f"{where}: internal error ({said}); {INTERNAL_NOTE}"


class _Transient(Exception):
    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"{stage}: {reason}")


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
        """Process one image; an :class:`InputError`, a transient error or an internal one (any other exception,
        outside the tests' strict runs: ``check_declarations``) fails this image only.

        ``record`` continues an image from an earlier segment of the graph
        (after planning); a record that already failed is returned as is.
        ``record`` itself is not changed: each attempt starts from a copy.

        Raises
        ------
        OutOfSpace
            When the output folder's disk is full.
        """
        self.setup()
        if record is not None and record.status is Status.FAILED:
            return record
        attempt = 0
        while True:
            real = copy.deepcopy(record) if record is not None else task.new_record()
            try:
                return self._run_stages(task, real)
            except _Transient as exc:
                if attempt >= len(RETRY_DELAYS_S):
                    real.status, real.failure = Status.FAILED, Failure.TRANSIENT
                    real.error = f"{exc} (after {attempt + 1} attempts; {TRANSIENT_NOTE})"
                    return real
                log.warning("%s: %s; trying again", task.source_path, exc)
                time.sleep(RETRY_DELAYS_S[attempt])
                attempt += 1

    def _run_stages(self, task: SourceTask, real: ImageRecord) -> ImageRecord:
        item = WorkItem(task=task, record=real)
        for stage in self.stages:
            if self.context.check_declarations:
                item.record = declared_view(real, stage)  # type: ignore[assignment]
            start = time.perf_counter()
            try:
                with warnings.catch_warnings(record=True) as said:
                    # A library's warnings about a file (Pillow on a damaged TIFF's tags, a corrupt EXIF block) are
                    # the file's, not the run's: logged with its name (-vv shows them), not printed over the
                    # progress bar for each of hundreds of files. What stops a file is its failed row's reason.
                    warnings.simplefilter("always")
                    stage.process(item)
                for w in said:
                    log.debug("%s: %s: %s: %s", task.source_path, stage.name, w.category.__name__, w.message)
            except InputError as exc:
                real.status, real.failure = Status.FAILED, Failure.INPUT
                real.error = f"{stage.name}: {exc}"
                break
            except OSError as exc:
                if is_out_of_space(exc):
                    raise OutOfSpace.from_oserror(exc, self.context.out_dir) from None
                raise _Transient(stage.name, f"I/O error: {exc}") from None
            except MemoryError:
                raise _Transient(stage.name, "out of memory") from None
            except Exception as exc:
                if self.context.check_declarations:
                    raise  # the tests' strict runs: a bug fails the test that found it
                # postprod's own error on this file (a bug, or a library's on input it did not expect: a JPEG XL
                # plugin's RuntimeError on a damaged file stopped a whole shoot): the file fails with the error
                # named, the rest of the shoot goes on, and the traceback is logged for the report.
                fail_internal(real, stage.name, exc)
                break
            finally:
                item.record = real
                real.stage_seconds[stage.name] = round(time.perf_counter() - start, 6)
        item.artifacts.clear()
        return real
