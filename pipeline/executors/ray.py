"""Ray executor: the stage chain runs in a pool of long-lived actors.

Each actor builds the graph's stages and calls their ``setup()`` once (models
load once per worker), then processes images one at a time; the same actors
then load the next segment of the graph (after planning in the driver), so a
run starts each worker process once. Per-image stages
are fused inside the actor, as Ray Data fuses map operators: the proxy and
every other pixel array stay in the actor's memory; only the task (a path and
a hash) goes in and the small :class:`~pipeline.kernel.records.ImageRecord` comes
out, so no pixels travel through the object store.

Without an address a local Ray is started for this run and stopped after it;
with ``address`` (``--ray-address`` or ``RAY_ADDRESS``) the same graph runs on
an existing cluster, with postprod's own packages shipped to the workers.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from typing import Any, Iterator, Sequence

from pipeline.kernel.graph import Graph
from pipeline.kernel.records import ImageRecord, SourceTask, Status
from pipeline.kernel.runner import Runner
from pipeline.kernel.stage import RunContext

log = logging.getLogger(__name__)

CRASH_MESSAGE = (
    "worker process died while processing this file (a decoder crashed or the worker ran out of memory); "
    "the rest of the shoot was processed"
)


class _GraphWorker:
    """Actor body: the runner of the segment being mapped, set up once per segment.

    An actor outlives a segment: the executor loads the next segment of the
    graph (render and export, after planning) into the same process instead
    of starting another, saving a process start, the imports and the model
    loads of every worker.
    """

    def __init__(self, context: RunContext) -> None:
        self.context = context
        self.graph: Graph | None = None
        self.runner: Runner | None = None

    def load(self, graph: Graph) -> int:
        """Build and set up ``graph``'s stages (dropping the previous segment's); returns the pid."""
        if graph != self.graph:
            self.runner = None  # free the previous segment's models before loading the next
            runner = Runner(graph, self.context)
            runner.setup()
            self.graph, self.runner = graph, runner
        return os.getpid()

    def run(self, task: SourceTask, record: ImageRecord | None = None) -> ImageRecord:
        assert self.runner is not None, "load() a graph first"
        return self.runner.run(task, record)

    def pid(self) -> int:
        return os.getpid()


_TOKEN_NOTICE_LOGGER = "ray._private.authentication.authentication_token_setup"


def _quiet_token_notice(record: logging.LogRecord) -> bool:
    """Drop Ray's notice that a new local cluster uses token authentication (it does, and that is fine)."""
    return "Token authentication is enabled for this Ray cluster" not in record.getMessage()


def _package_dirs() -> list[str]:
    """Folders of postprod's own packages, shipped to a remote cluster's workers."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    names = ("pipeline", "stages", "models", "charts", "configs")
    return [str(root / n) for n in names if (root / n / "__init__.py").exists()]


class RayExecutor:
    """Run the graph on Ray actors.

    Parameters
    ----------
    workers : int, optional
        Number of actors; defaults to the CPUs Ray reports.
    address : str, optional
        Address of an existing Ray cluster; ``None`` starts a local one.
    """

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        import ray

        self._ray = ray
        self.address = address
        self._started_here = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = dict(
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=True,
            )
            if address:
                kwargs["address"] = address
                # The cluster runs the driver's code, not whatever version it has installed.
                kwargs["runtime_env"] = {"py_modules": _package_dirs()}
            else:
                kwargs["address"] = "local"
                kwargs["num_cpus"] = workers or os.cpu_count() or 1
                # Ray's default for a new local cluster, token authentication, stays; its notice
                # saying so would print over the progress bar.
                logging.getLogger(_TOKEN_NOTICE_LOGGER).addFilter(_quiet_token_notice)
            ray.init(**kwargs)
            self._started_here = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, workers or cpus)
        # Seconds from spawning each pool of actors to all of them set up
        # (process start, imports, models): the benchmark reports it.
        self.startup_seconds: list[float] = []
        # Actors live from the first segment to close(): one process start per worker and run.
        self._pool: list[Any] = []
        self._pool_options: dict[str, Any] = {}
        self._pool_context: RunContext | None = None

    def _spawn(self, actor_cls: Any, context: RunContext) -> Any:
        return actor_cls.remote(context)

    def _pool_for(self, options: dict[str, Any], context: RunContext, n: int) -> list[Any]:
        """At least ``n`` actors with ``options`` for ``context``: the pool of the previous segment when it fits."""
        fits = (
            self._pool
            and self._pool_context is context
            and self._pool_options.get("num_cpus", 1) >= options.get("num_cpus", 1)
            and self._pool_options.get("num_gpus", 0) >= options.get("num_gpus", 0)
        )
        if not fits:
            self._kill_pool()
            self._pool_options, self._pool_context = options, context
        actor_cls = self._ray.remote(_GraphWorker).options(**self._pool_options)
        while len(self._pool) < n:
            self._pool.append(self._spawn(actor_cls, context))
        return self._pool

    def _kill_pool(self) -> None:
        for actor in self._pool:
            self._ray.kill(actor)
        self._pool = []

    def map(
        self, graph: Graph, context: RunContext, tasks: list[SourceTask], records: Sequence[ImageRecord] | None = None
    ) -> Iterator[ImageRecord]:
        ray = self._ray
        if not tasks:
            return
        res = graph.resources
        options: dict[str, Any] = {"num_cpus": res.cpus, "max_restarts": 0}
        if context.device == "cuda" and res.gpus > 0:
            if ray.cluster_resources().get("GPU", 0) > 0:
                options["num_gpus"] = res.gpus
            else:  # asking Ray for a GPU it does not have would queue the actors for ever
                log.warning("--device cuda: the Ray cluster has no GPU; the detectors fall back to the CPU")
        start = time.perf_counter()
        pool = self._pool_for(options, context, min(self.workers, len(tasks)))
        # Surface a failing setup() (a missing model, say) as itself, before any image.
        ray.get([a.load.remote(graph) for a in pool])
        self.startup_seconds.append(time.perf_counter() - start)
        log.info("%d Ray worker(s) set up in %.2f s", len(pool), self.startup_seconds[-1])
        idle = list(pool)
        pending: dict[Any, tuple[Any, SourceTask, ImageRecord | None]] = {}
        # Indices, not records: a record is read (from the driver's store) when its image is sent.
        queue = list(reversed(range(len(tasks))))
        try:
            while queue or pending:
                while idle and queue:
                    actor = idle.pop()
                    i = queue.pop()
                    task, record = tasks[i], records[i] if records is not None else None
                    pending[actor.run.remote(task, record)] = (actor, task, record)
                done, _ = ray.wait(list(pending), num_returns=1)
                ref = done[0]
                actor, task, given = pending.pop(ref)
                try:
                    record = ray.get(ref)
                except ray.exceptions.RayActorError:
                    log.warning("worker died on %s; starting a new one", task.source_path)
                    record = replace(given) if given is not None else task.new_record()
                    record.status = Status.FAILED
                    record.error = CRASH_MESSAGE
                    replacement = self._spawn(ray.remote(_GraphWorker).options(**self._pool_options), context)
                    ray.get(replacement.load.remote(graph))
                    self._pool[self._pool.index(actor)] = replacement
                    actor = replacement
                idle.append(actor)
                yield record
        finally:
            if pending:  # abandoned mid-segment: the actors are still busy; start afresh next time
                self._kill_pool()

    def close(self) -> None:
        if self._ray.is_initialized():
            self._kill_pool()
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()
