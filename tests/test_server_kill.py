"""SIGKILL ``bodycam server`` mid-ingest, restart it on the same data, and lose nothing (issue 16).

The server runs as its own process (tests/server_killer.py: the real
``bodycam server`` with one self-SIGKILL armed at a moment of ingest: mid-PUT,
an object placed but not answered, mid-commit before and inside the
transaction, committed but not answered). The camera is the real
Offloader, in this process, uploading the offload scenario's recordings and
deleting each on a checked receipt. Its retry policy's ``sleep`` is the
harness: when a request failed because the server died, it restarts the
server on the same data directory and port (a new fault armed, from a
seeded RNG) and returns once the server says it listens; nothing waits on
the wall clock.

After every kill (server dead): every object in the store hashes to its
name (no partial object visible), and every recording is either intact on
the camera or held verified by the server with the very receipt the camera
keeps. After every restart: ``objects/tmp`` and ``work/`` are empty. At the
end every recording went, each object is stored once, each recording has
one ingest entry, nothing was rejected, ``bodycam server audit`` verifies
the chain and ``bodycam verify`` passes on the camera.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest

from camera.cli import main
from camera.evidence.keys import load_public_key
from camera.evidence.receipts import StoredReceipt, read_receipt, receipt_path
from camera.offload import Offloader
from camera.offload_http import RetryPolicy
from server.datadir import open_server
from server.enroll import enroll
from sim.runner import run_scenario
from sim.scenario import load_scenario
from tests.offload_support import DEVICE, device_key
from tests.server_killer import POINTS

REPO = Path(__file__).resolve().parents[1]
#: Eight short recordings of device BWC-0001, seed 7 (offload_support.device_key's).
SCENARIO = REPO / "tests" / "data" / "server_kill.toml"
KILLS = 12
MAX_RUNS = 30
READY_SECONDS = 60.0
#: How long a server whose connection just dropped may take to be reaped.
DEATH_SECONDS = 10.0
_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


class ServerProcess:
    """``bodycam server`` in a subprocess, restarted on the same data and port after a kill."""

    def __init__(self, data: Path, log: Path, rng: random.Random) -> None:
        self.data, self.log, self.rng = data, log, rng
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self.kills: list[str] = []
        self.armed = "none"
        # Every point twice, in a seeded order: a point leaves the plan when it killed.
        self.plan = [
            p for _ in range(KILLS // len(POINTS)) for p in rng.sample(POINTS, len(POINTS))
        ]
        self.problems: list[str] = []
        self.check = lambda: None  # the camera-side check, set by the test

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        point, nth = "none", 0
        if self.plan:
            point = self.plan[0]
            # Within reach of one server's life: an upload or two, the next commit.
            nth = self.rng.randint(1, 2) if point.startswith("put") else 1
        self.armed = f"{point}#{nth}"
        cmd = [sys.executable, "-m", "tests.server_killer", point, str(nth)]
        cmd += ["server", "--data", str(self.data), "--listen", f"127.0.0.1:{self.port}"]
        with self.log.open("a") as log:
            log.write(f"--- start, armed {self.armed}\n")
        stderr = self.log.open("a")
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        stderr.close()
        ready = threading.Event()
        assert self.proc.stdout is not None
        threading.Thread(target=self._drain, args=(self.proc.stdout, ready), daemon=True).start()
        if not ready.wait(READY_SECONDS):
            self.proc.kill()
            raise AssertionError(f"server not listening within {READY_SECONDS} s: {self.tail()}")
        after_restart(self.data, self.problems)

    def _drain(self, out: IO[str], ready: threading.Event) -> None:
        """Read the server's stdout to the end (uvicorn's access log must not fill a pipe)."""
        for line in out:
            m = _LISTENING.search(line)
            if m and not ready.is_set():
                self.port = int(m.group(1))
                ready.set()

    def backoff(self, _seconds: float) -> None:
        """The Offloader's wait before a retry: if the server died, bring it back."""
        assert self.proc is not None
        try:
            code = self.proc.wait(DEATH_SECONDS)
        except subprocess.TimeoutExpired:
            return  # alive: a failure that was not a kill; retry at once
        if code != -signal.SIGKILL:
            raise AssertionError(f"the server exited with {code}: {self.tail()}")
        self.kills.append(self.armed)
        self.plan.pop(0)
        after_kill(self.data, self.problems)
        self.check()
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(READY_SECONDS) == 128 + signal.SIGTERM

    def tail(self) -> str:
        return " | ".join(self.log.read_text().splitlines()[-8:])


def objects_on_disk(data: Path) -> dict[str, str]:
    """{file name: sha256 of its bytes} of every object file (not tmp/, not locks.db)."""
    root = data / "objects"
    found = {}
    for path in root.rglob("*"):
        inside = "tmp" not in path.relative_to(root).parts
        if path.is_file() and inside and re.fullmatch(r"[0-9a-f]{64}", path.name):
            found[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def after_kill(data: Path, problems: list[str]) -> None:
    for name, sha in objects_on_disk(data).items():
        if name != sha:
            problems.append(f"object {name} holds other bytes ({sha}): a partial object")


def after_restart(data: Path, problems: list[str]) -> None:
    for folder in (data / "objects" / "tmp", data / "work"):
        left = os.listdir(folder)
        if left:
            problems.append(f"{folder.name}/ not empty after a restart: {left}")


def held_receipts(data: Path) -> dict[str, dict[str, object]]:
    """{recording: receipt} of what the server holds verified (read from its metadata)."""
    server = open_server(data, create=False)
    try:
        with server.meta.read() as conn:
            recs = server.meta.all_recordings(conn)
    finally:
        server.close()
    return {r.id: r.receipt for r in recs if r.status == "verified" and r.receipt is not None}


def camera_problems(storage: Path, data: Path, original: dict[str, dict[str, str]]) -> list[str]:
    """Every recording intact on the camera, or held by the server with the camera's receipt."""
    held = held_receipts(data)
    problems = []
    for name, files in original.items():
        here = storage / name
        stored = read_receipt(receipt_path(storage, name))
        kept = stored.receipt if isinstance(stored, StoredReceipt) else None
        if here.is_dir():
            left = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in here.iterdir()}
            if left == files:
                continue
            if kept is None or held.get(name) != kept:
                problems.append(f"{name}: partly deleted without a receipt the server holds")
        elif kept is None or held.get(name) != kept:
            problems.append(f"{name}: gone from the camera, not held by the server so")
    return problems


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data", tmp_path / "server.log", random.Random(1616))
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        proc.proc.kill()
        proc.proc.wait()


@pytest.mark.kill
def test_a_sigkilled_server_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path, server_process: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = tmp_path / "store"
    assert run_scenario(load_scenario(SCENARIO), storage).ok
    names = sorted(p.name for p in storage.iterdir() if p.is_dir())
    assert len(names) == 8
    original = {
        n: {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (storage / n).iterdir()}
        for n in names
    }
    data = server_process.data
    setup = open_server(data)
    enroll(setup.meta, storage / f"{DEVICE}.pub.pem")
    setup.close()
    server_key, _ = load_public_key(data / "server.pub.pem")

    def check() -> None:
        server_process.problems += camera_problems(storage, data, original)

    server_process.check = check
    server_process.start()
    runs = 0
    while any((storage / n).exists() for n in names):
        runs += 1
        assert runs <= MAX_RUNS, f"not done after {MAX_RUNS} runs: {server_process.kills}"
        Offloader(
            storage,
            device_key(),
            DEVICE,
            server_process.url,
            server_key,
            retry=RetryPolicy(random.Random(runs), attempts=4, sleep=server_process.backoff),
            utc=lambda: datetime.now(UTC),
        ).run()
        assert server_process.problems == [], (server_process.kills, server_process.problems)
    server_process.stop()
    kills = server_process.kills
    assert len(kills) >= KILLS - 2 and {k.split("#")[0] for k in kills} == set(POINTS), kills
    assert camera_problems(storage, data, original) == []
    # Stored once: exactly the recordings' bytes, nothing partial, nothing refused.
    every = {sha for files in original.values() for sha in files.values()}
    assert set(objects_on_disk(data)) == every
    assert all(name == sha for name, sha in objects_on_disk(data).items())
    rejected = data / "rejected"
    assert not rejected.exists() or os.listdir(rejected) == []
    held = held_receipts(data)
    assert set(held) == set(names)
    with sqlite3.connect(data / "evidence.db") as db:
        ingests = sorted(
            r[0] for r in db.execute("SELECT target FROM audit WHERE action = 'ingest'")
        )
    assert ingests == sorted(names)  # one each: a commit repeated after a kill is not a second
    assert sorted(r["audit_seq"] for r in held.values()) == sorted(
        r[0]
        for r in sqlite3.connect(data / "evidence.db").execute(
            "SELECT seq FROM audit WHERE action = 'ingest'"
        )
    )
    assert main(["server", "audit", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "chain intact" in out
    assert main(["verify", str(storage)]) == 0, capsys.readouterr().out
