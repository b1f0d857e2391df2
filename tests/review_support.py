"""Helpers for the review page's tests: an app served for real, a recording held by a store.

The app runs as it does for a user: uvicorn on 127.0.0.1 with a port the
system chose, in a thread, ready when uvicorn says so (polled with a
deadline), stopped by asking it to exit and joining the thread.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from server.datadir import open_server
from server.enroll import enroll
from tests.server_support import DEVICE, Camera, device_key, live_server

READY_SECONDS = 20.0
PASSWORD = "correct horse battery"


@contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` on 127.0.0.1 (a free port) until the block ends; its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    runner = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + READY_SECONDS
    while not runner.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, f"not ready within {READY_SECONDS} s"
        thread.join(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        runner.should_exit = True
        thread.join(READY_SECONDS)
        assert not thread.is_alive(), "uvicorn did not stop"
        sock.close()


def store_holding(data: Path, storage: Path, recordings: list[Path]) -> None:
    """A data directory whose store holds ``recordings`` (uploaded as a camera does)."""
    import httpx

    server = open_server(data)
    try:
        enroll(server.meta, storage / f"{DEVICE}.pub.pem")
    finally:
        server.close()
    with live_server(data) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        camera = Camera(client, device_key())
        for rec in recordings:
            answer = camera.upload(rec)
            assert answer.status_code == 200, answer.text
