"""Docked: the firmware offloads its closed recordings while it goes on recording (issue 16).

At the end of a shift the camera sits in its dock still switched on: the
pre-event ring keeps buffering and a trigger still starts a recording. So the
offload (camera.offload, the same code as ``bodycam offload``) runs beside
the firmware, never in its way:

- The recordings the firmware has not finished (started, and their manifest
  not yet written by the writer) are ``busy``: never sent, never deleted.
  They are followed through the firmware's own events (``start`` and
  ``saved``), from the moment the dock is made.
- The audit entries go into the firmware's open audit log (one writer, its
  lock serialises them with the writer's), dated by the device's clock.
- What happens is told as firmware events, so the console's ``EVT`` lines and
  a run's event log show it: ``offloaded`` (recording, receipt sha256 prefix,
  deleted 1|0) and ``kept`` (recording, reason) for each recording, then
  ``docked`` (the counts, and why it stopped early if it did).

On a Pi :meth:`Dock.start` runs it on a thread of its own: an upload takes
minutes and the loop must not wait for one frame of it; events reach the
loop through ``call_soon_threadsafe``. A simulation calls :meth:`Dock.run`
on the loop at a virtual time instead, so the order of everything the device
writes stays the same from run to run.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from camera.evidence.records import r6
from camera.firmware import Firmware
from camera.offload import Offloader, OffloadReport, Outcome
from camera.offload_http import RetryPolicy

__all__ = ["Cancelled", "Dock"]

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The dock was closed (the firmware is shutting down) before the offload ended."""


class Dock:
    """One firmware's offloads to one evidence server; at most one at a time.

    Make it on the loop thread (it reads the firmware's event log and joins
    its listeners there). ``retry.sleep`` is replaced on a thread by a wait
    that :meth:`close` cuts short.
    """

    def __init__(
        self,
        firmware: Firmware,
        server: str,
        server_key: ec.EllipticCurvePublicKey,
        *,
        retry: RetryPolicy,
        client: httpx.Client | None = None,
        delete: bool = True,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.firmware = firmware
        self.clock = firmware.clock
        self.server = server
        self.server_key = server_key
        self.retry = retry
        self.client = client
        self.delete = delete
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._open: set[str] = set()
        for entry in firmware.events:  # recordings started before the dock was made
            self._track(entry)
        firmware.listeners.append(self._track)
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._on_loop = True
        self._outcomes: list[Outcome] = []
        #: The last offload's report (None until one has ended).
        self.report: OffloadReport | None = None

    # -- which recordings are still being written -----------------------------------
    def _track(self, entry: dict[str, Any]) -> None:
        """Firmware listener (loop thread): a recording is busy from ``start`` to ``saved``."""
        rec = entry.get("recording")
        if not isinstance(rec, str):
            return
        with self._lock:
            if entry.get("kind") == "start":
                self._open.add(rec)
            elif entry.get("kind") == "saved":
                self._open.discard(rec)

    def busy(self) -> set[str]:
        """The recordings the firmware has not finished writing (any thread)."""
        with self._lock:
            out = set(self._open)
        current = self.firmware.recorder.recording  # one reference read: safe off the loop
        if current is not None:
            out.add(current.id)
        return out

    # -- running ---------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> OffloadReport:
        """The whole offload now, on the calling thread (the loop, in a simulation)."""
        self._on_loop = True
        return self._offload()

    def start(self) -> bool:
        """The offload on a thread of its own; False if one is still running."""
        if self.running:
            return False
        self._on_loop = False
        self._cancel.clear()
        self._thread = threading.Thread(target=self._in_thread, name="bodycam-dock", daemon=True)
        self._thread.start()
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Stop a running offload at its next step and wait for it (not on the loop, if one runs).

        A file being sent finishes or fails first; nothing is left half-done
        that the next offload does not finish (camera.offload).
        """
        self._cancel.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._track in self.firmware.listeners:
            self.clock.call_soon_threadsafe(self._unsubscribe)

    def _unsubscribe(self) -> None:
        if self._track in self.firmware.listeners:
            self.firmware.listeners.remove(self._track)

    def _in_thread(self) -> None:
        try:
            self._offload()
        except Cancelled:
            self._docked(OffloadReport(list(self._outcomes), stopped="cancelled: shutting down"))
        except Exception as exc:  # a bug or a storage error: said, never a dead thread unseen
            log.exception("dock: offload failed")
            self._emit("error", what="dock", detail=f"{type(exc).__name__}: {exc}")

    def _wait(self, seconds: float) -> None:
        """A retry's wait: the given policy's on the loop, one close() cuts short on a thread."""
        if self._on_loop:
            self.retry.sleep(seconds)
        elif self._cancel.wait(seconds):
            raise Cancelled

    def _offload(self) -> OffloadReport:
        fw = self.firmware
        self._outcomes = []
        retry = RetryPolicy(
            self.retry.rng,
            attempts=self.retry.attempts,
            base=self.retry.base,
            cap=self.retry.cap,
            sleep=self._wait,
        )
        offloader = Offloader(
            fw.hal.storage.root,
            fw.key,
            fw.config.device.id,
            self.server,
            self.server_key,
            retry=retry,
            utc=self._utc,
            client=self.client,
            delete=self.delete,
            audit=fw.audit.log,
            busy=self.busy,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            on_outcome=self._outcome,
        )
        report = offloader.run()
        self._docked(report)
        return report

    def _docked(self, report: OffloadReport) -> None:
        self.report = report
        went = sum(o.offloaded for o in report.outcomes)
        kept = len(report.outcomes) - went
        self._emit("docked", offloaded=went, kept=kept, stopped=report.stopped)

    def _utc(self) -> datetime:
        """The device's clock, as every audit entry the firmware writes."""
        return self.clock.wall(self.clock.now())

    def _outcome(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        if outcome.offloaded:
            self._emit(
                "offloaded",
                recording=outcome.recording,
                receipt=(outcome.receipt_sha256 or "")[:16],
                deleted=outcome.deleted,
            )
        else:
            self._emit("kept", recording=outcome.recording, reason=outcome.reason)
        if self._cancel.is_set() and not self._on_loop:
            raise Cancelled

    # -- telling the firmware's listeners -------------------------------------------------
    def _emit(self, kind: str, **fields: Any) -> None:
        if self._on_loop:
            self._log(kind, fields)
        else:
            self.clock.call_soon_threadsafe(lambda: self._log(kind, fields))

    def _log(self, kind: str, fields: dict[str, Any]) -> None:
        """An entry in the firmware's event log, as its own (loop thread)."""
        entry = {"time": r6(self.clock.now()), "kind": kind, **fields}
        self.firmware.events.append(entry)
        for listener in list(self.firmware.listeners):
            listener(entry)
        log.info("%s %s", kind, fields)
