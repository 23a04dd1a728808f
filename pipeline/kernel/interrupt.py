"""Ctrl-C that is never lost: noted when it arrives, raised again where the run can stop cleanly.

Python turns SIGINT into a ``KeyboardInterrupt`` raised wherever the main
thread is at that moment. A few places swallow it: a function run at a fork
(``subprocess`` starting exiftool runs :mod:`logging`'s at-fork hooks, whose
exceptions Python only prints as "Exception ignored in ..."), a ``__del__``,
a callback from C. The run then goes on as if nothing was pressed (seen in
the test suite under load: the interrupt landed in ``logging._releaseLock``
and the shoot ran to the end). :func:`handle_interrupts` installs a handler
that also notes the interrupt; the executors call :func:`stop_if_interrupted`
between images, so a swallowed Ctrl-C still stops the run at the next image,
through the same path (journal kept, exit 130, the resume hint).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

_pressed = threading.Event()


def _on_sigint(signum: int, frame: Any) -> None:
    _pressed.set()
    raise KeyboardInterrupt


@contextmanager
def handle_interrupts() -> Iterator[None]:
    """Note every Ctrl-C within the block (main thread only; elsewhere a no-op), restoring the handler after.

    A Ctrl-C still raises ``KeyboardInterrupt`` at once, as Python's own
    handler does. One that arrived before the block is forgotten.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _pressed.clear()
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed within :func:`handle_interrupts` (at a point where
    stopping is clean: between images, at the end of a run).

    Raises
    ------
    KeyboardInterrupt
        If an interrupt was noted, even one that was caught and dropped where it first landed.
    """
    if _pressed.is_set():
        raise KeyboardInterrupt
