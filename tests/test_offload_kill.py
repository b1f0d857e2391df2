"""SIGKILL ``bodycam offload`` at random moments and run it again until it is done (issue 16).

Like the power-loss kill test (sim/killtest.py), kills are placed by
progress, not by wall time, so a slow host moves no kill: either when the
server receives the child's k-th request (before it is handled, while its
body is arriving, or once it has been answered), or when the child's audit
log has grown by a few entries (the receipt, offloaded and deleted steps on
the camera). After every kill, every recording must be on the camera
(intact, or partly deleted only with a receipt the server stands by) or gone
from it with its receipt kept and the server holding the same receipt. At the
end everything is on the server, stored once, and ``bodycam verify`` passes.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest

from camera.cli import main
from camera.evidence.canonical import canonical
from camera.evidence.receipts import RECEIPTS
from tests.offload_support import (
    LiveServer,
    live_server,
    make_recordings,
    write_device_config,
)

KILLS = 8
MAX_RUNS = 40
#: How often the harness looks at the child's audit log (a wait on the child, not a sleep).
POLL_SECONDS = 0.001

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class KillSwitch:
    """ASGI middleware: SIGKILLs the offload child at its ``at``-th request, at ``when``.

    ``when`` is "before" (the request is handled with its sender dead),
    "body" (after the first chunk of a body arrived, at the first request
    from the ``at``-th on that has one) or "after" (the answer is sent; the
    child dies before acting on it).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.proc: subprocess.Popen[bytes] | None = None
        self.at = 0
        self.when = "before"
        self.seen = 0

    def arm(self, proc: subprocess.Popen[bytes] | None, at: int, when: str) -> None:
        self.proc, self.at, self.when, self.seen = proc, at, when, 0

    def _kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.proc is None:
            await self.app(scope, receive, send)
            return
        self.seen += 1
        mine = self.seen == self.at
        if mine and self.when == "before":
            self._kill()

        async def receive_then_kill() -> Message:
            message = await receive()
            # The first request from the at-th on that sends a body (a PUT or a commit).
            if self.when == "body" and self.seen >= self.at and message.get("body"):
                self._kill()
            return message

        await self.app(scope, receive_then_kill, send)
        if mine and self.when == "after":
            self._kill()


def audit_lines(storage: Path) -> int:
    try:
        return (storage / "audit.jsonl").read_bytes().count(b"\n")
    except OSError:
        return 0


def shas(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


def check_nothing_lost(
    storage: Path, srv: LiveServer, original: dict[str, dict[str, str]]
) -> list[str]:
    """Every recording on the camera, or on the server with the camera holding its receipt."""
    problems = []
    for name, files in original.items():
        here = storage / name
        receipt = storage / RECEIPTS / f"{name}.json"
        if here.is_dir():
            left = shas(here)
            if any(files.get(f) != sha for f, sha in left.items()):
                problems.append(f"{name}: a file on the camera changed")
            if left == files:
                continue  # intact on the camera
            if not receipt.exists() or srv.get_receipt(name) is None:
                problems.append(f"{name}: partly deleted without a receipt the server stands by")
            continue
        if not receipt.exists():
            problems.append(f"{name}: gone from the camera without a receipt")
            continue
        theirs = srv.get_receipt(name)
        if theirs is None or canonical(theirs) != receipt.read_bytes():
            problems.append(f"{name}: gone from the camera, but the server does not hold it so")
    return problems


def start(storage: Path, config: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "camera", "offload", str(storage), "--config", str(config)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_at_audit_growth(proc: subprocess.Popen[bytes], storage: Path, lines: int) -> None:
    """SIGKILL ``proc`` once the audit log has ``lines`` lines (or let it end first)."""
    while proc.poll() is None:
        if audit_lines(storage) >= lines:
            proc.kill()
            return
        try:
            proc.wait(timeout=POLL_SECONDS)
        except subprocess.TimeoutExpired:
            continue


@pytest.mark.kill
def test_sigkilled_offloads_lose_nothing_and_store_nothing_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(16)
    storage = tmp_path / "store"
    names = make_recordings(storage)
    original = {name: shas(storage / name) for name in names}
    switches: list[KillSwitch] = []

    def wrap(app: Any) -> KillSwitch:
        switches.append(KillSwitch(app))
        return switches[0]

    kills = runs = 0
    modes: list[str] = []
    with live_server(tmp_path / "data", enroll_from=storage, wrap=wrap) as srv:
        [switch] = switches
        config = write_device_config(tmp_path, storage, srv)
        while True:
            runs += 1
            assert runs <= MAX_RUNS, f"not done after {MAX_RUNS} runs ({kills} kills)"
            armed = kills < KILLS
            mode = rng.choice(["before", "body", "after", "audit"]) if armed else "none"
            proc = start(storage, config)
            if mode == "audit":
                switch.arm(None, 0, "")
                kill_at_audit_growth(proc, storage, audit_lines(storage) + rng.randint(1, 3))
            else:
                switch.arm(proc if armed else None, rng.randint(1, 8), mode)
            out, err = proc.communicate(timeout=300)
            switch.arm(None, 0, "")
            if proc.returncode == -signal.SIGKILL:
                kills += 1
                modes.append(mode)
                problems = check_nothing_lost(storage, srv, original)
                assert problems == [], f"after kill {kills} ({mode}): {problems}"
                continue
            assert proc.returncode == 0, (mode, out.decode(), err.decode())
            if not any((storage / n).exists() for n in names):
                break
        assert kills >= KILLS // 2, (kills, modes)
        assert check_nothing_lost(storage, srv, original) == []
        # Stored once: exactly the recordings' bytes, one receipt each, nothing refused.
        every = {sha for files in original.values() for sha in files.values()}
        assert {p.name for p in srv.objects()} == every
        receipts = [srv.get_receipt(n) for n in names]
        assert len({r["audit_seq"] for r in receipts}) == len(names)
        rejected = srv.data / "rejected"
        assert not rejected.exists() or list(rejected.iterdir()) == []
    assert main(["verify", str(storage)]) == 0, capsys.readouterr().out
