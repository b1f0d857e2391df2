"""The real writer: one thread, FIFO, results handed back to the loop."""

from __future__ import annotations

import queue
import threading
import time

from hal.clock import Clock
from hal.storage import Storage
from hal.worker import Done, Task, Worker

_STOP = object()


class ThreadWorker(Worker):
    def __init__(self, clock: Clock, storage: Storage) -> None:
        super().__init__(clock, storage)
        self._queue: queue.Queue[object] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="bodycam-writer", daemon=True)
        self._thread.start()

    def submit(self, task: Task, nbytes: int = 0, on_done: Done | None = None) -> None:
        with self._idle:
            self._pending += 1
            self._queued(nbytes)
        self._queue.put((task, nbytes, on_done))

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            task, nbytes, on_done = item  # type: ignore[misc]
            modelled = self.storage.service_time(nbytes, self.clock.now())
            if modelled > 0:  # simulated slow storage under --realtime
                time.sleep(modelled)
            try:
                task()
            except BaseException as exc:
                self.clock.call_soon_threadsafe(lambda exc=exc: self._report(exc))
            else:
                if on_done is not None:
                    self.clock.call_soon_threadsafe(on_done)
            finally:
                del task, on_done, item  # the frames go with the task, before the count
                with self._idle:
                    self._pending -= 1
                    self.queued_bytes -= nbytes
                    self._idle.notify_all()

    def drain(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)

    def close(self) -> None:
        self.drain()
        self._queue.put(_STOP)
        self._thread.join()
