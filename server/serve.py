"""``bodycam server --data DIR --listen HOST:PORT``: the store on uvicorn until Ctrl-C or SIGTERM.

The socket is bound before anything is printed, so the URL printed is one a
camera (or a test) can connect to at once, and port 0 prints the port the
system chose. A signal stops uvicorn gracefully (requests in flight finish,
the metadata and the store are closed) and the command then exits as a shell
reports that signal (130, 143), like ``bodycam run``.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn

from camera.errors import InputError
from server.app import create_app
from server.datadir import open_server

__all__ = ["parse_listen", "serve"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def parse_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:8080`` -> (host, port); InputError naming what was expected."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise InputError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


def _bind(host: str, port: int) -> socket.socket:
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(f"--listen {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = info[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise InputError(f"--listen {host}:{port}: cannot listen: {exc.strerror}") from None
    return sock


class _Uvicorn(uvicorn.Server):
    """uvicorn, but the signal that stopped it is reported, not raised again."""

    stopped_by: int | None = None

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {s: signal.signal(s, self._stop) for s in _SIGNALS}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if self.stopped_by is None:
            self.stopped_by = signum
        if self.should_exit and signum == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: do not wait for slow uploads
        self.should_exit = True


def serve(
    data: str | os.PathLike[str],
    listen: str,
    config_path: str | os.PathLike[str] | None = None,
    say: Callable[[str], None] = print,
) -> int | None:
    """Serve until a signal; the signal's number (None if uvicorn stopped by itself)."""
    host, port = parse_listen(listen)
    server = open_server(data, config_path, serve=True)
    try:
        sock = _bind(host, port)
        try:
            app = create_app(server)
            config = uvicorn.Config(app, lifespan="off", log_level="info", server_header=False)
            runner = _Uvicorn(config)
            bound_host, bound_port = sock.getsockname()[:2]
            shown = f"[{bound_host}]" if ":" in bound_host else bound_host
            say(f"bodycam server listening on http://{shown}:{bound_port}")
            say(f"  server key {server.key.key_id}")
            say(f"  public key {server.data.public_key} (cameras pin it: [offload] server_key)")
            say(f"  data       {server.data.root}")
            say(f"  review     http://{shown}:{bound_port}/review/ (`bodycam server admin`)")
            runner.run(sockets=[sock])
        finally:
            sock.close()
    finally:
        server.close()
    return runner.stopped_by
