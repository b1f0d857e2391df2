"""A scenario's ``[dock]``: the simulated camera docks and offloads to a real evidence server.

At the dock's device time the run starts ``bodycam server`` on loopback
(sim.evidence_server), enrolls the device's exported public key, pins the
server's, and offloads through the firmware's own dock (camera.dock, the
code a Pi runs) over a link with the scenario's faults (sim.link). The
device keeps running: the offload happens on the loop at that virtual time,
so the recording in progress is ``busy`` and stays, and everything the
camera writes comes in the same order on every run. The recordings are
byte-identical from scenario and seed; the receipts are not (the server
dates them by its own clock), nor therefore the audit entries naming them.

Retries wait on virtual time's behalf: the waits are recorded, not slept,
and drawn from a generator seeded by the scenario.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from camera.dock import Dock
from camera.offload import OffloadReport
from camera.offload_http import RetryPolicy
from sim.device import SimDevice
from sim.evidence_server import LocalServer
from sim.link import Link, LinkStats
from sim.scenario import Scenario

__all__ = ["DockResult", "dock_now"]


@dataclass
class DockResult:
    """What one dock did, for the run summary and ``[expect]``."""

    at: float
    #: The server's data directory, or None if it was a temporary one (gone after the run).
    data: str | None
    report: OffloadReport
    link: LinkStats
    #: Seconds of backoff the retries asked for (recorded, not slept).
    waits: list[float] = field(default_factory=list)

    @property
    def offloaded(self) -> int:
        return sum(o.offloaded for o in self.report.outcomes)

    @property
    def kept(self) -> int:
        return len(self.report.outcomes) - self.offloaded

    @property
    def deleted(self) -> int:
        return sum(o.deleted for o in self.report.outcomes)

    @property
    def stopped(self) -> bool:
        return self.report.stopped is not None

    def summary(self) -> dict[str, Any]:
        r = self.report
        return {
            "at": self.at,
            "data": self.data,
            "offloaded": self.offloaded,
            "kept": self.kept,
            "deleted": self.deleted,
            "resent": self.link.resent,
            "stopped": r.stopped,
            "files_sent": r.files_sent,
            "files_held": r.files_held,
            "bytes_sent": r.bytes_sent,
            "recordings": [
                {
                    "recording": o.recording,
                    "offloaded": o.offloaded,
                    "deleted": o.deleted,
                    "receipt_sha256": o.receipt_sha256,
                    "reason": o.reason or None,
                }
                for o in r.outcomes
            ],
            "link": asdict(self.link),
            "backoff_seconds": round(sum(self.waits), 3),
        }


def dock_now(dev: SimDevice, scenario: Scenario, out: Path) -> DockResult:
    """The scenario's dock, now (on the loop, at its virtual time)."""
    plan = scenario.dock
    assert plan is not None
    with tempfile.TemporaryDirectory(prefix="bodycam-dock-") as scratch:
        data = out / plan.data if plan.data is not None else Path(scratch) / "data"
        server = LocalServer(data, Path(scratch) / "run", full=plan.full)
        server.enroll(dev.storage_root / f"{dev.config.device.id}.pub.pem")
        url = server.start()
        link = Link(
            httpx.HTTPTransport(),
            drop_after_bytes=plan.drop_after_bytes,
            restart_at=plan.server_restart,
            restart=server.kill_and_restart,
            busy_for=plan.busy_for,
        )
        client = httpx.Client(transport=link, timeout=httpx.Timeout(60.0, connect=10.0))
        waits: list[float] = []
        dock = Dock(
            dev.firmware,
            url,
            server.pinned_key(),
            retry=RetryPolicy(random.Random(scenario.seed), plan.attempts, sleep=waits.append),
            client=client,
            delete=plan.delete,
        )
        try:
            report = dock.run()
        finally:
            dock.close()
            client.close()
            server.stop()
    at = dev.clock.now()
    return DockResult(at, None if plan.data is None else str(data), report, link.stats, waits)
