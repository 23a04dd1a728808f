"""A stage that injects faults, for tests/test_faults.py (never registered outside tests).

:func:`register` adds :class:`InjectFault` to ``stages.REGISTRY`` (a test in
its own process uses ``monkeypatch.setitem``); a test graph places it where
the fault should happen. It acts on an image
when a marker file named after the image's stem is in ``marker_dir``, and
claims the marker by renaming it (``<stem>.fired``) so it acts once per
marker, whichever process (a Ray worker, a retry) sees it first:

* ``kill``: the worker process kills itself with SIGKILL (as the OOM killer would);
* ``oserror``: the stage raises ``FileNotFoundError`` (a file missing for a moment);
* ``hold``: the stage waits until ``<stem>.release`` appears in ``marker_dir``
  (a long image, during which a test kills or starts something else).

The ``sticky`` parameter leaves the marker in place, so the fault happens on
every attempt.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

import stages
from pipeline.kernel.records import WorkItem
from pipeline.kernel.stage import Resources, Stage


class InjectFault(Stage):
    """Kill the worker, fail with an I/O error, raise as a bug would, or hold, on images with a marker file."""

    name: ClassVar[str] = "inject_fault"
    description: ClassVar[str] = "test-only fault injection"
    resources = Resources(cpus=1, memory_mb=50)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        marker_dir: str
        mode: Literal["kill", "oserror", "bug", "hold"] = "kill"
        sticky: bool = False
        hold_s: float = 120.0

    def process(self, item: WorkItem) -> None:
        folder = Path(self.params.marker_dir)
        marker = folder / (item.task.stem or Path(item.task.source_path).stem)
        if self.params.sticky:
            if not marker.exists():
                return
        else:
            try:
                os.rename(marker, marker.with_name(marker.name + ".fired"))
            except FileNotFoundError:
                return
        if self.params.mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.params.mode == "oserror":
            raise FileNotFoundError(errno.ENOENT, "gone for a moment (injected)", str(item.task.path))
        elif self.params.mode == "bug":
            raise RuntimeError("an unexpected state\n  (injected)")
        else:
            (folder / (marker.name + ".holding")).touch()
            release = folder / (marker.name + ".release")
            deadline = time.monotonic() + self.params.hold_s
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.05)


def register() -> None:
    """Make the stage known to graphs loaded in this process (a ``postprod`` started by a test)."""
    stages.REGISTRY[InjectFault.name] = InjectFault
