"""Helpers for the evidence store's tests: signed recordings, a live server, a camera's requests.

The server runs for real: uvicorn on 127.0.0.1 with a port the system chose,
in a thread, ready when uvicorn says it has started (polled with a deadline),
stopped by asking it to exit and joining the thread. The "camera" here is a
few signed httpx requests, not the offload client (camera/offload*), so these
tests pin the server's side of the protocol on their own.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from camera.evidence.canonical import sign_document
from camera.evidence.keys import DeviceKey, test_key
from camera.evidence.upload_auth import sign_request
from server.app import create_app
from server.datadir import Server, open_server
from tests.conftest import make_device

DEVICE = "BWC-0001"
SMALL = {"buffer": {"pre_event": 1.0}, "recording": {"segment_seconds": 2.0}}
READY_SECONDS = 20.0


def record_three(root: Path) -> Path:
    """A storage of three chained H.264 recordings (device BWC-0001, seed 0); its path."""
    dev = make_device(root, SMALL)
    dev.set_input(2.0, "holster", True)
    dev.pulse(3.0, "button", 3.5)  # stop at 6.0
    dev.set_input(6.8, "holster", False)
    dev.set_input(8.0, "holster", True)
    dev.pulse(9.5, "button", 3.5)  # stop at 12.5
    dev.set_input(13.0, "holster", False)
    dev.set_input(14.0, "holster", True)
    dev.run(until=17.0)
    recs = dev.shutdown()
    assert len(recs) == 3
    return root / "store"


def recordings_of(storage: Path) -> list[Path]:
    return sorted(p for p in storage.iterdir() if p.is_dir() and p.name.startswith(f"{DEVICE}_"))


def copy_recording(src: Path, dest_root: Path) -> Path:
    """A private copy to tamper with (the module's recordings are shared)."""
    dest = dest_root / src.name
    shutil.copytree(src, dest)
    return dest


def files_of(recording: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(recording.iterdir())
        if p.is_file()
    }


def resign_manifest(recording: Path, edit: dict[str, Any], key: DeviceKey) -> None:
    """Edit manifest fields and sign it again with ``key`` (what only a key holder can do)."""
    path = recording / "manifest.json"
    manifest = json.loads(path.read_bytes())
    manifest.update(edit)
    manifest["key_id"] = key.key_id
    path.write_text(json.dumps(sign_document(key, manifest), indent=2) + "\n")


def device_key(seed: int = 0, device: str = DEVICE) -> DeviceKey:
    """The key a simulated device signs with (derived from its id and the scenario seed)."""
    return test_key(device, seed)


@dataclass
class Camera:
    """Signed requests as a camera makes them."""

    client: httpx.Client
    key: DeviceKey
    device: str = DEVICE

    def _headers(self, method: str, path: str, body: bytes = b"") -> dict[str, str]:
        return sign_request(self.key, method, path, body, device=self.device)

    def head(self, sha: str) -> httpx.Response:
        path = f"/v1/objects/{sha}"
        return self.client.head(path, headers=self._headers("HEAD", path))

    def put(self, data: bytes, sha: str | None = None) -> httpx.Response:
        sha = sha or hashlib.sha256(data).hexdigest()
        path = f"/v1/objects/{sha}"
        headers = sign_request(self.key, "PUT", path, body_sha256=sha, device=self.device)
        return self.client.put(path, content=data, headers=headers)

    def commit(self, recording_id: str, files: dict[str, str]) -> httpx.Response:
        path = f"/v1/recordings/{recording_id}/commit"
        body = json.dumps({"files": files}).encode()
        return self.client.post(path, content=body, headers=self._headers("POST", path, body))

    def receipt(self, recording_id: str) -> httpx.Response:
        path = f"/v1/recordings/{recording_id}/receipt"
        return self.client.get(path, headers=self._headers("GET", path))

    def upload(self, recording: Path, recording_id: str | None = None) -> httpx.Response:
        """PUT every file, then commit: the commit's response."""
        for p in sorted(recording.iterdir()):
            if p.is_file():
                r = self.put(p.read_bytes())
                assert r.status_code in (200, 201), r.text
        return self.commit(recording_id or recording.name, files_of(recording))


@dataclass
class Live:
    url: str
    server: Server
    uvicorn: uvicorn.Server
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@contextmanager
def live_server(data: Path, config: Path | None = None) -> Iterator[Live]:
    """The store serving ``data`` on 127.0.0.1 (a free port) until the block ends."""
    server = open_server(data, config, serve=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    runner = uvicorn.Server(uvicorn.Config(create_app(server), lifespan="off", log_level="warning"))
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + READY_SECONDS
    while not runner.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, f"server not ready within {READY_SECONDS} s"
        thread.join(0.01)
    try:
        yield Live(f"http://127.0.0.1:{sock.getsockname()[1]}", server, runner, thread)
    finally:
        runner.should_exit = True
        thread.join(READY_SECONDS)
        assert not thread.is_alive(), "uvicorn did not stop"
        sock.close()
        server.close()
