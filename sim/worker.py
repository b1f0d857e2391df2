"""The writer on virtual time: tasks finish when the storage model says so.

One task at a time, FIFO, like the real writer thread. A task starts when
the previous one has finished (or when submitted, if idle), takes
``storage.service_time`` virtual seconds, and its work and ``on_done`` run as
an event at that finishing time. Nothing depends on how fast the host is.
"""

from __future__ import annotations

from collections import deque

from hal.clock import Clock
from hal.storage import Storage
from hal.worker import Done, Task, Worker


class VirtualWorker(Worker):
    def __init__(self, clock: Clock, storage: Storage) -> None:
        super().__init__(clock, storage)
        self._queue: deque[tuple[Task, int, Done | None]] = deque()
        self._busy_until: float | None = None

    @property
    def busy(self) -> bool:
        return self._busy_until is not None

    def submit(self, task: Task, nbytes: int = 0, on_done: Done | None = None) -> None:
        self._queue.append((task, nbytes, on_done))
        self._queued(nbytes)
        if not self.busy:
            self._start_next()

    def _start_next(self) -> None:
        if not self._queue:
            self._busy_until = None
            return
        task, nbytes, on_done = self._queue.popleft()
        start = self.clock.now()
        self._busy_until = start + self.storage.service_time(nbytes, start)
        self.clock.call_at(self._busy_until, lambda: self._finish(task, nbytes, on_done))

    def _finish(self, task: Task, nbytes: int, on_done: Done | None) -> None:
        try:
            task()
        except Exception as exc:
            self.queued_bytes -= nbytes
            self._report(exc)
        else:
            self.queued_bytes -= nbytes
            if on_done is not None:
                on_done()
        self._start_next()

    def drain(self) -> None:
        while self._busy_until is not None:
            self.clock.run(until=self._busy_until)

    def close(self) -> None:
        self.drain()
