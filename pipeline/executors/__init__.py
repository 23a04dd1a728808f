"""Executors run the per-image stage chain; stages never know which one does.

Both give identical records for the same inputs: they share
:class:`pipeline.kernel.runner.Runner`, which decides what happens to one image.
``auto`` (the default) picks one of them for the shoot at hand
(:func:`choose_executor`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

from pipeline.kernel.graph import Graph
from pipeline.kernel.records import ImageRecord, SourceTask
from pipeline.kernel.stage import RunContext


class Executor(Protocol):
    def map(
        self, graph: Graph, context: RunContext, tasks: list[SourceTask], records: Sequence[ImageRecord] | None = None
    ) -> Iterator[ImageRecord]:
        """Yield one record per task, in completion order (continuing ``records`` when given).

        ``records`` may be lazy (read from disk on indexing): read ``records[i]``
        when task ``i`` is dispatched, never all at once.
        """
        ...

    def close(self) -> None: ...


EXECUTORS = ("auto", "ray", "local")

# The auto choice's cost model, from benchmarks/run.py on a 2-CPU VM (benchmarks/RESULTS.md, runs AF and AG):
#: Starting an embedded local Ray (4-5 s), its workers (about 1 s) and stopping it (1.4 s).
RAY_OVERHEAD_S = 7.0
#: One thread's seconds per image (a Ray worker's: its OpenCV and LibRaw on one thread) that do not grow with the
#: file (analysis, equipment checks, two renditions, encoders) ...
SECONDS_PER_IMAGE = 1.4
#: ... and those that do (the decode): per MB of file. Runs AF and AG, one Ray worker, its start-up left out:
#: 1.38-1.43 s an image for the real RAWs (2 MB on average), 1.95-2.06 s for 48 MB 24 MP DNGs.
SECONDS_PER_MB = 0.013
#: Throughput of n workers on n free CPUs against one (2 workers on 2 CPUs gave 1.3x: 0.65).
PARALLEL_EFFICIENCY = 0.65
#: How much faster this process is, its images on every CPU, than one thread an image (runs AF and AG, 2 CPUs:
#: 1.26-1.31x on 24 MP DNGs, 1.33-1.46x on the real RAWs; not measured on more CPUs, where it is likely more: the
#: choice then leans to Ray a little).
LOCAL_THREADS_SPEEDUP = 1.3
#: A shoot of more images than this runs in worker processes whatever the estimate: a file that crashes its decoder
#: (a native fault, no Python error) then costs a worker, which Ray replaces, instead of the run.
ISOLATION_IMAGES = 100


@dataclass(frozen=True)
class ExecutorChoice:
    """Which executor a run uses, and why (printed at the start of the run and kept in its summary)."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, which a container or ``taskset`` narrows), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def estimate_local_seconds(tasks: Sequence[SourceTask]) -> float:
    """Rough seconds one thread takes for ``tasks`` (:data:`SECONDS_PER_IMAGE`, :data:`SECONDS_PER_MB`): a Ray
    worker's time; this process on several CPUs takes :data:`LOCAL_THREADS_SPEEDUP` times less."""
    return sum(SECONDS_PER_IMAGE + SECONDS_PER_MB * t.file_size / 1e6 for t in tasks)


def choose_executor(
    name: str,
    workers: int | None,
    ray_address: str | None,
    tasks: Sequence[SourceTask],
    cpus: int | None = None,
) -> ExecutorChoice:
    """The executor for a run: ``name`` itself, or for ``"auto"`` the faster for this shoot.

    ``auto`` runs Ray when a cluster address is given or ``--workers`` asks
    for worker processes, or the shoot has more than :data:`ISOLATION_IMAGES`
    images; in-process (``local``) on one CPU; otherwise in-process when this
    process, its images on every CPU, is expected to finish before Ray would:
    when ``L / LOCAL_THREADS_SPEEDUP <= RAY_OVERHEAD_S + L / (PARALLEL_EFFICIENCY * min(cpus, images))``
    with ``L`` one thread's time (:func:`estimate_local_seconds`). A small shoot then does
    not wait for Ray to start; a large one gets every CPU in worker processes.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`EXECUTORS`.
    """
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r} (choose from {', '.join(EXECUTORS)})")
    if name != "auto":
        return ExecutorChoice(name, "asked for")
    if ray_address:
        return ExecutorChoice("ray", f"auto: the Ray cluster at {ray_address}")
    if workers is not None:  # worker processes asked for (one included: a crash then spares the run)
        return ExecutorChoice("ray", f"auto: --workers {workers}")
    cpus = cpus or usable_cpus()
    one_thread_s = estimate_local_seconds(tasks)
    n = len(tasks)
    if cpus < 2 or n < 2:
        return ExecutorChoice("local", f"auto: {n} image{'s' if n != 1 else ''} on {cpus} CPU{'s' if cpus > 1 else ''}")
    if n > ISOLATION_IMAGES:
        return ExecutorChoice("ray", f"auto: {n} images, more than {ISOLATION_IMAGES}: in worker processes, so that a "
                                     "file that crashes its decoder costs a worker, not the run")
    local_s = one_thread_s / LOCAL_THREADS_SPEEDUP
    ray_s = RAY_OVERHEAD_S + one_thread_s / max(1.0, PARALLEL_EFFICIENCY * min(cpus, n))
    estimate = (f"auto: {n} images, about {local_s:.0f} s in this process, {ray_s:.0f} s with Ray on {cpus} CPUs "
                "(its start included)")
    return ExecutorChoice("local" if local_s <= ray_s else "ray", estimate)


def make_executor(name: str, workers: int | None = None, ray_address: str | None = None,
                  threads: int | None = None) -> Executor:
    """Build an executor by name (``"ray"`` or ``"local"``; resolve ``"auto"`` with :func:`choose_executor`).
    ``threads``: the in-process executor's threads for each image (every usable CPU when None).

    Raises
    ------
    ValueError
        If ``name`` is neither.
    """
    if name == "local":
        from pipeline.executors.local import LocalExecutor

        return LocalExecutor(threads)
    if name == "ray":
        from pipeline.executors.ray import RayExecutor

        return RayExecutor(workers=workers, address=ray_address)
    raise ValueError(f"unknown executor {name!r} (choose from ray, local; 'auto' is resolved by choose_executor)")
