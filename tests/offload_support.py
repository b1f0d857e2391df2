"""Shared by the offload tests: a real evidence server on loopback, recordings, counting transports.

The server is the real one (server.app on uvicorn) in a thread of the test
process, serving a socket bound and listening before the thread starts: a
request made at once waits in the listen backlog until uvicorn accepts it,
so nothing polls or sleeps for readiness.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from cryptography.hazmat.primitives import serialization

from camera.evidence.keys import DeviceKey, test_key
from camera.evidence.upload_auth import sign_request
from server.app import create_app
from server.datadir import Server, open_server
from server.enroll import enroll
from sim.runner import run_scenario
from sim.scenario import load_scenario

DATA = Path(__file__).parent / "data"
SCENARIO = DATA / "offload.toml"
DEVICE = "BWC-0001"
#: The scenario's seed: the simulated device's key is derived from it (and the device id).
SEED = 7


def device_key() -> DeviceKey:
    return test_key(DEVICE, SEED)


def make_recordings(out: Path) -> list[str]:
    """The offload scenario's recordings in ``out``; their ids, oldest first."""
    result = run_scenario(load_scenario(SCENARIO), out)
    assert result.ok, result.summary()
    return sorted(p.name for p in out.iterdir() if p.is_dir())


def copy_storage(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    return dest


@dataclass
class LiveServer:
    url: str
    server: Server

    @property
    def data(self) -> Path:
        return self.server.data.root

    @property
    def public_key(self) -> Path:
        return self.server.data.public_key

    def get_receipt(self, recording_id: str, key: DeviceKey | None = None) -> Any:
        """The server's receipt for a recording (None if it holds none), asked as the device."""
        path = f"/v1/recordings/{recording_id}/receipt"
        headers = sign_request(key or device_key(), "GET", path, device=DEVICE)
        response = httpx.get(self.url + path, headers=headers)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()["receipt"]

    def objects(self) -> list[Path]:
        """Every object file in the content-addressed store (partial uploads excluded)."""
        root = self.data / "objects"
        return sorted(
            p
            for p in root.rglob("*")
            if p.is_file()
            and re.fullmatch(r"[0-9a-f]{64}", p.name)
            and "tmp" not in p.relative_to(root).parts
        )


@contextmanager
def live_server(
    data: Path,
    enroll_from: Path | None = None,
    wrap: Callable[[Any], Any] | None = None,
    config: str | None = None,
) -> Iterator[LiveServer]:
    """The evidence server over ``data`` on 127.0.0.1:<free port> until the block ends.

    ``enroll_from``: a storage whose ``<device>.pub.pem`` is enrolled first.
    ``wrap``: an ASGI middleware around the app (a fault for a test).
    ``config``: the text of ``data/server.toml``.
    """
    if config is not None:
        data.mkdir(parents=True, exist_ok=True)
        (data / "server.toml").write_text(config)
    server = open_server(data, serve=True)
    if enroll_from is not None:
        enroll(server.meta, enroll_from / f"{DEVICE}.pub.pem")
    app = create_app(server)
    if wrap is not None:
        app = wrap(app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    runner = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{sock.getsockname()[1]}", server)
    finally:
        runner.should_exit = True
        thread.join(timeout=30)
        sock.close()
        server.close()
        assert not thread.is_alive(), "the server thread did not stop"


def write_device_config(
    where: Path, storage: Path, live: LiveServer | None = None, **offload: Any
) -> Path:
    """A device config naming the simulated device's key (saved beside it) and the server."""
    key_file = where / "device.key"
    if not key_file.exists():
        # save_key refuses a simulation's test key; a camera's key file is what the CLI reads.
        pem = device_key().private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    lines = ["[device]", f'id = "{DEVICE}"', f'storage = "{storage}"', f'key_file = "{key_file}"']
    table = dict(offload)
    if live is not None:
        table.setdefault("server", live.url)
        table.setdefault("server_key", str(live.public_key))
    if table:
        lines.append("[offload]")
        for k, v in table.items():
            lines.append(f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}")
    path = where / "device.toml"
    path.write_text("\n".join(lines).replace("'", '"') + "\n")
    return path


class Counting(httpx.BaseTransport):
    """Passes requests to ``inner``, counting them by method (and PUTs by object)."""

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.methods: Counter[str] = Counter()
        self.puts: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.methods[request.method] += 1
        if request.method == "PUT":
            self.puts.append(request.url.path.rsplit("/", 1)[1])
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class DropAfter(httpx.BaseTransport):
    """Cuts the connection of the ``nth`` PUT (1-based) after ``limit`` bytes of its body.

    The real transport sends those bytes and then its body stream fails, so
    the server sees an upload cut short, and the client a transport error.
    """

    def __init__(self, nth: int, limit: int, inner: httpx.BaseTransport | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.nth = nth
        self.limit = limit
        self.puts = 0
        self.dropped: str | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            self.puts += 1
            if self.puts == self.nth:
                self.dropped = request.url.path.rsplit("/", 1)[1]
                request.stream = _Cut(request.stream, self.limit)  # type: ignore[assignment]
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class _Cut(httpx.SyncByteStream):
    def __init__(self, stream: Any, limit: int) -> None:
        self.stream = stream
        self.limit = limit

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self.stream:
            room = self.limit - sent
            if len(chunk) >= room:
                if room:
                    yield chunk[:room]
                raise httpx.WriteError("connection dropped mid-upload (test)")
            sent += len(chunk)
            yield chunk
