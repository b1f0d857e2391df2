"""``bodycam review STORAGE [--listen 127.0.0.1:PORT]``: the review page for a card, on a laptop.

No server set-up and no login: the page listens on a loopback address only
(127.0.0.0/8 or ::1), so only this machine's user can open it; any other
address is refused (exit 2), since anyone who can reach the port could
watch the evidence. Recordings are read in place and never written
(:mod:`.storage_catalog`). Ctrl-C or SIGTERM stops it (130, 143), as
``bodycam server`` stops.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route

from camera.errors import InputError
from server.review.storage_catalog import StorageCatalog
from server.review.web import create_review_app

# The store's own binding and signal handling, shared (server.serve).
from server.serve import _bind, _Uvicorn, parse_listen

__all__ = ["DEFAULT_LISTEN", "review_app", "serve_review"]

DEFAULT_LISTEN = "127.0.0.1:8090"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def review_app(catalog: StorageCatalog) -> Starlette:
    """The page at ``/review``, and ``/`` sending there."""

    async def root(request: object) -> RedirectResponse:
        return RedirectResponse("/review/", 307)

    return Starlette(routes=[Route("/", root), Mount("/review", app=create_review_app(catalog))])


def serve_review(
    storage: str | os.PathLike[str],
    listen: str = DEFAULT_LISTEN,
    say: Callable[[str], None] = print,
) -> int | None:
    """Serve until a signal; the signal's number (None if uvicorn stopped by itself)."""
    host, port = parse_listen(listen)
    if not _loopback(host):
        raise InputError(
            f"--listen {listen}: expected a loopback address (127.0.0.1, ::1): the review page "
            "has no login, so it never listens where another machine could reach it"
        )
    catalog = StorageCatalog(storage)
    try:
        sock = _bind(host, port)
        try:
            config = uvicorn.Config(
                review_app(catalog), lifespan="off", log_level="warning", server_header=False
            )
            runner = _Uvicorn(config)
            bound_host, bound_port = sock.getsockname()[:2]
            shown = f"[{bound_host}]" if ":" in bound_host else bound_host
            say(f"bodycam review of {storage}: http://{shown}:{bound_port}/review/")
            say("  read-only, no login (loopback only); Ctrl-C stops it")
            runner.run(sockets=[sock])
        finally:
            sock.close()
    finally:
        catalog.close()
    return runner.stopped_by
