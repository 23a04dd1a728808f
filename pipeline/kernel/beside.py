"""Work on one image run beside the rest of its stage, when the worker has CPUs to spare.

The in-process executor is the only process at work and may use every CPU
(``RunContext.threads_per_worker``); a Ray worker has one. A stage whose parts
only read the same arrays (the measurements, the equipment checks) hands the
long ones to :func:`beside`: in threads when it has more than one, else each
is run where its result is asked for, in the order the stage asks. Either way
the results are the same; OpenCV and NumPy leave Python's lock while they work,
so the threads do run side by side. A part run beside must only read what it
is given, and must not itself put parts beside (the shared pool would wait on
itself).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")

#: Threads of the shared pool: the most parts any stage puts beside its own work.
POOL_THREADS = 3

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


class Later(Generic[T]):
    """A call made when its result is first asked for (the one-thread path of :func:`beside`)."""

    def __init__(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._call: Callable[[], T] | None = lambda: fn(*args, **kwargs)
        self._value: T | None = None

    def result(self) -> T:
        if self._call is not None:
            call, self._call = self._call, None
            self._value = call()
        return self._value  # type: ignore[return-value]


def beside(threads: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T] | Later[T]:
    """``fn(*args, **kwargs)``, in the shared pool's threads when ``threads`` > 1 (started now), else when
    ``.result()`` is called. ``.result()`` gives its value or raises its exception either way."""
    if threads <= 1:
        return Later(fn, args, kwargs)
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="beside")
    return _pool.submit(fn, *args, **kwargs)
