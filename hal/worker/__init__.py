"""Background work off the capture path: the writer.

Capture never waits on storage: the core submits tasks (mux these frames,
close this segment, write this manifest) with their size in bytes and goes
on. ``on_done`` and errors always come back on the clock's loop thread, so
the core's bookkeeping never needs a lock. The thread backend does the work in
real time; the virtual backend (in ``sim``) does it on the virtual clock,
finishing each task when the storage model says the write completes, so a
simulated stall drops frames by the scenario, not by the host's speed.

A worker also keeps the one number the memory bound rests on:
``queued_bytes``, the bytes of every task submitted and not yet finished
(finished means run, whether it succeeded or raised), across all recordings,
and its high-water mark ``peak_queued_bytes``. The recorder refuses or drops
against it before submitting, so the bound holds at every moment.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from hal.clock import Clock
from hal.storage import Storage

Task = Callable[[], None]
Done = Callable[[], None]
ErrorHandler = Callable[[BaseException], None]


class Worker(ABC):
    def __init__(self, clock: Clock, storage: Storage) -> None:
        self.clock = clock
        self.storage = storage
        self.on_error: ErrorHandler | None = None
        #: Bytes of tasks submitted and not yet finished; read on the loop thread.
        self.queued_bytes = 0
        #: The most ``queued_bytes`` has ever been (an instrument for tests and soak).
        self.peak_queued_bytes = 0

    @abstractmethod
    def submit(self, task: Task, nbytes: int = 0, on_done: Done | None = None) -> None:
        """Queue ``task`` (FIFO); ``on_done`` runs on the loop after it finished."""

    @abstractmethod
    def drain(self) -> None:
        """Wait until every queued task has run (and its ``on_done`` too)."""

    @abstractmethod
    def close(self) -> None: ...

    def _queued(self, nbytes: int) -> None:
        """Count a submitted task's bytes (call under the subclass's lock, if any)."""
        self.queued_bytes += nbytes
        self.peak_queued_bytes = max(self.peak_queued_bytes, self.queued_bytes)

    def _report(self, exc: BaseException) -> None:
        if self.on_error is None:
            raise exc
        self.on_error(exc)
