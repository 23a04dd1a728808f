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

Faults:

* a worker killed mid-image (``kill -9``, the OOM killer, a decoder crash) is
  replaced and the image given to another worker, up to
  :data:`WORKER_RETRIES` more times; after that the image is a failed row
  marked transient, which the next run retries;
* a lost raylet or GCS ends the run within seconds (:class:`ClusterLost`): every
  wait on Ray has a timeout, and between timeouts the executor checks that
  both still answer, instead of waiting for ever on workers that are gone;
* the embedded Ray is shut down on every exit (the CLI turns SIGTERM into an
  exit), and :mod:`pipeline.executors.reaper` kills what Ray leaves behind,
  even when the driver itself is killed with ``kill -9``.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Sequence

from pipeline.imaging.libtiff import MESSAGES_ENV as LIBTIFF_MESSAGES_ENV
from pipeline.kernel.errors import ClusterLost, ConfigError, Location
from pipeline.kernel.graph import Graph
from pipeline.kernel.interrupt import stop_if_interrupted
from pipeline.kernel.records import Failure, ImageRecord, SourceTask, Status
from pipeline.kernel.runner import TRANSIENT_NOTE, Runner
from pipeline.kernel.stage import RunContext

log = logging.getLogger(__name__)

#: Further attempts at an image after the worker processing it died.
WORKER_RETRIES = 2
CRASH_MESSAGE = (
    "worker process died while processing this file, {n} times (killed, out of memory, or a decoder crash)"
)
#: Seconds between checks that the raylet and GCS still answer, while waiting on Ray.
WATCH_INTERVAL_S = 2.0
#: How long the GCS may not answer before the run stops (a fault-tolerant GCS restarts within it).
GCS_GRACE_S = 10.0
#: The longest ``ray.shutdown()`` may take after the cluster was lost; the reaper does the rest.
SHUTDOWN_TIMEOUT_S = 10.0


def _answers(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class _ClusterWatch:
    """Whether the raylet this driver talks to and the cluster's GCS still answer.

    Both are gRPC servers: a TCP connection that is accepted and closed
    costs them nothing, and is refused at once when the process is gone.
    """

    def __init__(self, ray: Any) -> None:
        self.raylet: tuple[str, int] | None = None
        self.gcs: tuple[str, int] | None = None
        try:
            node = ray._private.worker.global_worker.node
            self.raylet = (node.node_ip_address, int(node.node_manager_port))
            host, port = node.gcs_address.rsplit(":", 1)
            self.gcs = (host, int(port))
        except Exception as exc:  # noqa: BLE001 - private API: without it the run is only unwatched
            log.debug("cannot watch the Ray cluster (%s); a lost raylet will not be noticed", exc)
        self._gcs_silent_since: float | None = None

    def lost(self) -> str | None:
        """Why the cluster is gone, or None while it answers."""
        if self.raylet is not None and not _answers(*self.raylet):
            return f"the Ray raylet of this node stopped answering (at {self.raylet[0]}:{self.raylet[1]})"
        if self.gcs is not None:
            if _answers(*self.gcs):
                self._gcs_silent_since = None
            elif self._gcs_silent_since is None:
                self._gcs_silent_since = time.monotonic()
            elif time.monotonic() - self._gcs_silent_since > GCS_GRACE_S:
                return (f"the Ray cluster's GCS stopped answering (at {self.gcs[0]}:{self.gcs[1]}) "
                        f"for {GCS_GRACE_S:.0f} s")
        return None


class _Reaper:
    """The :mod:`pipeline.executors.reaper` process watching the embedded Ray's processes."""

    def __init__(self, roots: list[int]) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if not sys.platform.startswith("linux") or not roots:
            return
        script = Path(__file__).with_name("reaper.py")
        try:
            self.proc = subprocess.Popen([sys.executable, "-I", "-S", str(script), *map(str, roots)],
                                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, close_fds=True)
        except OSError as exc:
            log.debug("no reaper for the embedded Ray (%s)", exc)

    def finish(self, timeout: float = 10.0) -> None:
        """Kill what is left (closing its input tells it to), and wait for it."""
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.proc = None


def _head_processes(ray: Any) -> list[int]:
    """The pids of the Ray processes this driver started (the embedded cluster)."""
    try:
        node = ray._private.worker.global_worker.node
        return [info.process.pid for infos in node.all_processes.values() for info in infos if info.process]
    except Exception:  # noqa: BLE001 - private API; without it there is only ray.shutdown()
        return []


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


def gpu_share(per_worker: float, cluster_gpus: float, workers: int) -> float:
    """The GPU each of ``workers`` actors asks Ray for: the graph's ``per_worker``, or an equal share of the
    cluster's GPUs when that many would not fit.

    An actor Ray cannot place waits for ever, and the run with it: 8 workers at the face detector's 0.25 GPU
    need two GPUs, and a workstation has one (the detector itself needs a few hundred MB of it a worker).
    Rounded down to Ray's resource precision (0.0001).
    """
    share = min(per_worker, cluster_gpus / max(1, workers))
    return math.floor(share * 10_000) / 10_000


def connect_to_cluster(ray: Any, address: str, kwargs: dict[str, Any]) -> None:
    """``ray.init`` on an existing cluster at ``address``; a cluster it cannot reach is a configuration error of
    ``--ray-address`` (exit 2, before any work), not an internal one: Ray raised a ConnectionError or a
    RuntimeError with its own stack from two layers down (a typo in the address, a head node that is down, a port
    that is not the GCS's)."""
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"cannot connect to the Ray cluster at {address!r}: {reason}. Check the address (`ray status` on the "
            "head node prints it), or leave out --ray-address and RAY_ADDRESS to start a local Ray",
            Location(None, key="--ray-address")) from None


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
                if os.environ.get(LIBTIFF_MESSAGES_ENV):  # -vv: the cluster's workers print libtiff's too
                    kwargs["runtime_env"]["env_vars"] = {LIBTIFF_MESSAGES_ENV: "1"}
            else:
                kwargs["address"] = "local"
                kwargs["num_cpus"] = workers or os.cpu_count() or 1
                # Ray's default for a new local cluster, token authentication, stays; its notice
                # saying so would print over the progress bar.
                logging.getLogger(_TOKEN_NOTICE_LOGGER).addFilter(_quiet_token_notice)
            on_sigterm = signal.getsignal(signal.SIGTERM)
            if address:
                connect_to_cluster(ray, address, kwargs)
            else:
                ray.init(**kwargs)
            self._started_here = True
            if callable(on_sigterm) and threading.current_thread() is threading.main_thread():
                # Ray's core installs a C handler that prints a stack and may abort: the caller's
                # (the CLI's: exit through the finally blocks that stop Ray) comes back.
                signal.signal(signal.SIGTERM, on_sigterm)
        self._reaper = _Reaper(_head_processes(ray) if self._started_here and not address else [])
        self._watch = _ClusterWatch(ray)
        self._lost: str | None = None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        if workers and workers > cpus:
            # Ray places a one-CPU actor per CPU: the others would wait, and the run with them, for ever.
            log.warning("%d workers asked for, the Ray cluster has %d CPU(s): %d workers", workers, cpus, max(1, cpus))
        self.workers = max(1, min(workers or cpus, cpus))
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
        if self._lost is None:
            for actor in self._pool:
                self._ray.kill(actor)
        self._pool = []

    def _wait(self, refs: list[Any], num_returns: int = 1) -> list[Any]:
        """``ray.wait`` that notices a lost cluster instead of waiting for ever.

        Raises
        ------
        ClusterLost
            When the raylet or the GCS stops answering.
        """
        while True:
            done, _ = self._ray.wait(refs, num_returns=num_returns, timeout=WATCH_INTERVAL_S)
            if done:
                return done
            self._lost = self._watch.lost()
            if self._lost is not None:
                raise ClusterLost(f"{self._lost}: the run cannot go on (finished images are kept; run again "
                                  "to resume)")

    def _get(self, refs: list[Any]) -> list[Any]:
        remaining = list(refs)
        while remaining:
            done = self._wait(remaining, num_returns=len(remaining))
            remaining = [r for r in remaining if r not in done]
        return self._ray.get(list(refs))

    def _load(self, actors: list[Any], graph: Graph) -> None:
        self._get([a.load.remote(graph) for a in actors])

    def map(
        self, graph: Graph, context: RunContext, tasks: list[SourceTask], records: Sequence[ImageRecord] | None = None
    ) -> Iterator[ImageRecord]:
        ray = self._ray
        if not tasks:
            return
        res = graph.resources
        workers = min(self.workers, len(tasks))
        options: dict[str, Any] = {"num_cpus": res.cpus, "max_restarts": 0}
        if context.device == "cuda" and res.gpus > 0:
            cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
            if cluster_gpus > 0:
                options["num_gpus"] = gpu_share(res.gpus, cluster_gpus, workers)
            else:  # asking Ray for a GPU it does not have would queue the actors for ever
                log.warning("--device cuda: the Ray cluster has no GPU; the detectors fall back to the CPU")
        start = time.perf_counter()
        pool = self._pool_for(options, context, workers)
        # Surface a failing setup() (a missing model, say) as itself, before any image.
        self._load(pool, graph)
        self.startup_seconds.append(time.perf_counter() - start)
        log.info("%d Ray worker(s) set up in %.2f s", len(pool), self.startup_seconds[-1])
        idle = list(pool)
        pending: dict[Any, tuple[Any, int, ImageRecord | None, int]] = {}
        # Indices, not records: a record is read (the driver keeps them on disk) when its image is sent.
        queue: list[tuple[int, ImageRecord | None, int]] = [(i, None, 0) for i in reversed(range(len(tasks)))]
        try:
            while queue or pending:
                while idle and queue:
                    actor = idle.pop()
                    i, record, attempt = queue.pop()
                    if record is None and records is not None:
                        record = records[i]
                    pending[actor.run.remote(tasks[i], record)] = (actor, i, record, attempt)
                ref = self._wait(list(pending))[0]
                stop_if_interrupted()  # a Ctrl-C that was swallowed where it landed stops the run here
                actor, i, given, attempt = pending.pop(ref)
                task = tasks[i]
                try:
                    result = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.OutOfMemoryError):
                    lost = self._watch.lost()
                    if lost is not None:  # not the worker: the node under it
                        self._lost = lost
                        raise ClusterLost(f"{lost}: the run cannot go on (finished images are kept; run again "
                                          "to resume)") from None
                    idle.append(self._replace(actor, graph, context))
                    if attempt < WORKER_RETRIES:
                        log.warning("worker died on %s; trying it again on a new one", task.source_path)
                        queue.append((i, given, attempt + 1))
                        continue
                    log.warning("worker died on %s %d times; giving up on it for this run",
                                task.source_path, attempt + 1)
                    result = replace(given) if given is not None else task.new_record()
                    result.status, result.failure = Status.FAILED, Failure.TRANSIENT
                    result.error = f"{CRASH_MESSAGE.format(n=attempt + 1)}; {TRANSIENT_NOTE}"
                    yield result
                    continue
                idle.append(actor)
                yield result
        finally:
            if pending:  # abandoned mid-segment: the actors are still busy; start afresh next time
                self._kill_pool()

    def _replace(self, dead: Any, graph: Graph, context: RunContext) -> Any:
        """A new actor, set up for ``graph``, in the dead one's place in the pool."""
        replacement = self._spawn(self._ray.remote(_GraphWorker).options(**self._pool_options), context)
        self._load([replacement], graph)
        self._pool[self._pool.index(dead)] = replacement
        return replacement

    def close(self) -> None:
        """Stop the actors and, when this executor started it, the local Ray; kill what it leaves."""
        try:
            if self._ray.is_initialized():
                self._kill_pool()
            if self._started_here and self._ray.is_initialized():
                if self._lost is None:
                    self._ray.shutdown()
                else:  # the cluster is half gone: shutdown() may wait on it; the reaper finishes the job
                    stopper = threading.Thread(target=self._ray.shutdown, name="ray-shutdown", daemon=True)
                    stopper.start()
                    stopper.join(SHUTDOWN_TIMEOUT_S)
        finally:
            self._reaper.finish()
