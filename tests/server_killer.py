"""``bodycam server`` that SIGKILLs itself at a chosen moment: the server kill test's subprocess.

    python -m tests.server_killer POINT N server --data DIR --listen HOST:PORT

runs ``bodycam server`` (camera.cli.main, the real command) with one fault
armed: the N-th time this process reaches POINT, it sends itself SIGKILL,
what a power cut or the OOM killer does: no handler runs, nothing is
flushed. The points are the moments an ingest can be cut short:

    put-body        mid-PUT: part of the body is in objects/tmp
    put-placed      the object is in place; its row and the answer are not
    commit-verified the recording is assembled in work/ and verified; nothing recorded
    commit-locked   its objects carry their retention; nothing recorded
    commit-db       inside the transaction: audit entry and row written, not committed
    commit-answer   committed; the receipt is not sent

Kills are placed by progress (the N-th time), not by wall time, so a slow
host moves no kill. The fault lives here, in the tests, patched onto the
server's classes: the product has no hook for it.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

POINTS = (
    "put-body",
    "put-placed",
    "commit-verified",
    "commit-locked",
    "commit-db",
    "commit-answer",
)


class Fault:
    def __init__(self, point: str, nth: int) -> None:
        if point not in POINTS and point != "none":
            raise SystemExit(f"server_killer: unknown point {point!r}; expected one of {POINTS}")
        self.point, self.nth, self.seen = point, nth, 0

    def reached(self, point: str) -> None:
        if point != self.point:
            return
        self.seen += 1
        if self.seen == self.nth:
            os.kill(os.getpid(), signal.SIGKILL)


def arm(fault: Fault) -> None:
    import server.ingest as ingest_module
    from server.ingest import Ingest
    from server.objects.cas import CasStore

    copy, place = CasStore._copy, CasStore._place

    def copy_then_die(self: CasStore, fd: int, source: Any, size: int | None) -> Any:
        if fault.point == "put-body" and fault.seen + 1 == fault.nth:
            chunk = source.read(1 << 16)  # part of the body, on disk in objects/tmp
            os.write(fd, chunk)
            os.fsync(fd)
        fault.reached("put-body")
        return copy(self, fd, source, size)

    def place_then_die(self: CasStore, tmp: Any, target: Any) -> bool:
        placed = place(self, tmp, target)
        fault.reached("put-placed")
        return placed

    verify, record, commit = Ingest._verify, Ingest._record, Ingest.commit
    apply_lock = ingest_module.apply_lock

    def verify_then_die(self: Ingest, *args: Any) -> Any:
        found = verify(self, *args)
        fault.reached("commit-verified")
        return found

    def lock_then_die(*args: Any) -> None:
        apply_lock(*args)
        fault.reached("commit-locked")

    def record_then_die(self: Ingest, *args: Any) -> Any:
        receipt = record(self, *args)
        fault.reached("commit-db")
        return receipt

    def commit_then_die(self: Ingest, *args: Any) -> Any:
        answer = commit(self, *args)
        if answer.status == 200:
            fault.reached("commit-answer")
        return answer

    CasStore._copy = copy_then_die  # type: ignore[method-assign]
    CasStore._place = place_then_die  # type: ignore[method-assign]
    Ingest._verify = verify_then_die  # type: ignore[method-assign]
    Ingest._record = record_then_die  # type: ignore[method-assign]
    Ingest.commit = commit_then_die  # type: ignore[method-assign]
    ingest_module.apply_lock = lock_then_die


def main(argv: list[str]) -> int:
    point, nth, rest = argv[0], int(argv[1]), argv[2:]
    arm(Fault(point, nth))
    from camera.cli import main as bodycam

    return bodycam(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
