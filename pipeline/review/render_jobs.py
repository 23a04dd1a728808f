"""Re-rendering from the review app: `postprod render OUT` in a thread, one run at a time.

While it runs the store refuses decisions (HTTP 423): the run rewrites the
instruction files from the decisions it read when it started, and a decision
made meanwhile would be lost. When it ends the store reads the new manifest
(the exports' new render keys), so nothing is stale any more.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pipeline.kernel.errors import ConfigError
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.outputs.shoot import read_run_settings
from pipeline.review.store import ReviewStore, utc_now


class RenderBusy(RuntimeError):
    """A re-render is already running (HTTP 409)."""


class RenderJobs:
    """The re-render runs of one review app."""

    def __init__(self, store: ReviewStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._status: dict[str, Any] = {"state": "idle"}

    def status(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._status)

    def start(self, reviewer: str) -> dict[str, Any]:
        """Start re-rendering the stale images in a thread.

        Raises
        ------
        RenderBusy
            If a run is going on.
        FileNotFoundError
            If the output folder does not say which shoot and chart it was made from.
        """
        _, _, chart = read_run_settings(self.store.out_dir)
        if chart is None:
            raise FileNotFoundError("the output folder keeps no chart of its run: run `postprod process` again")
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RenderBusy("a re-render is running")
            self._status = {"state": "running", "by": reviewer, "started_at": utc_now(),
                            "stale": len(self.store.stale_images())}
            self.store.pause("re-rendering the changed images")
            self._thread = threading.Thread(target=self._run, name="postprod-render", daemon=True)
            self._thread.start()
            return dict(self._status)

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the current run (tests, benchmarks); its final status."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status()

    def _run(self) -> None:
        start = time.perf_counter()
        try:
            shoot, shoot_id, chart = read_run_settings(self.store.out_dir)
            settings = RunSettings(shoot_dir=self.store.shoot_dir, out_dir=self.store.out_dir, executor="local",
                                   chart=chart, shoot_id=shoot_id, only="render")
            result = process_shoot(settings)
            update = {"state": "done", "rendered": result.rendered,
                      "failed": [{"source_path": r.source_path, "error": r.error} for r in result.failed]}
        except (ConfigError, OSError, ValueError) as exc:
            update = {"state": "failed", "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - reported to the reviewer, not lost in a thread
            update = {"state": "failed", "error": f"{type(exc).__name__}: {exc}"}
        finally:
            self.store.refresh()
            self.store.resume()
        update.update({"finished_at": utc_now(), "seconds": round(time.perf_counter() - start, 2),
                       "stale": len(self.store.stale_images())})
        with self._lock:
            self._status.update(update)
