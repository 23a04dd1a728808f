"""Kill what is left of a run's embedded Ray when the run ends, however it ends.

Ray ties its head processes (GCS, raylet) to the driver, so they die with it
even on ``kill -9``; but the raylet's own children (the dashboard and runtime
environment agents, about 200 MB) are orphaned when the raylet dies, and stay
for a minute or two. No handler runs in a killed driver, so this runs beside
it, as a separate small process:

    python -I -S reaper.py ROOT_PID...

It follows the given processes and everything they start (from ``/proc``,
once a second) and, when its standard input closes (the driver closed it
after ``ray.shutdown()``, or the driver died), kills those of them still
alive, checking each one's start time so that a reused process id is never
hit. It imports nothing from postprod (it starts in a few milliseconds) and
ignores SIGINT and SIGTERM, which a terminal or a service manager sends the
whole process group: it must outlive the driver to do its work.

Linux only (it reads ``/proc``); elsewhere the executor does not start it.
"""

from __future__ import annotations

import os
import select
import signal
import sys


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields follow the last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    if fields[0] == b"Z":  # a zombie waits for its parent; nothing to kill
        return None
    return int(fields[1]), int(fields[19])


def _descendants(roots: dict[int, int]) -> dict[int, int]:
    """The roots still alive and every process below them: pid -> start time."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _stat(int(name))
        if st is not None:
            children.setdefault(st[0], []).append(int(name))
            starts[int(name)] = st[1]
    found: dict[int, int] = {}
    stack = [pid for pid, start in roots.items() if starts.get(pid) == start]
    while stack:
        pid = stack.pop()
        if pid in found or pid == os.getpid():
            continue
        found[pid] = starts[pid]
        stack.extend(children.get(pid, ()))
    return found


def reap(seen: dict[int, int]) -> int:
    """SIGKILL every process of ``seen`` that is still the same process; returns how many."""
    killed = 0
    for pid, start in seen.items():
        st = _stat(pid)
        if st is not None and st[1] == start:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


def main(argv: list[str]) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    roots = {}
    for arg in argv:
        st = _stat(int(arg))
        if st is not None:
            roots[int(arg)] = st[1]
    seen = _descendants(roots)
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 1.0)
        if ready and not os.read(sys.stdin.fileno(), 4096):
            break  # end of input: the driver is done or dead
        seen.update(_descendants(roots | seen))
    seen.update(_descendants(roots | seen))
    reap(seen)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
