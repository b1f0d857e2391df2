"""The link between a docked camera and its evidence server, with the faults a dock sees.

An httpx transport between the offload client (camera.offload) and the real
transport, so each fault happens to real requests against the real server:

- ``drop_after_bytes``: once that many bytes of uploads have gone, the
  connection drops in the middle of the file being sent (once): the server
  sees an upload cut short, the camera a transport error.
- ``restart_at``: while the Nth upload is half sent, the server is killed and
  started again (``restart``): an upload the server never finished.
- ``busy_for``: the first N requests are answered 503 with Retry-After, as a
  server over its concurrency limit answers (a storm, then calm).

It also counts what the run reports: uploads, bytes, and uploads the server
answered "already held" (200), which a resumed offload should never send.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["Link", "LinkStats"]

#: Seconds a busy answer asks the camera to wait (recorded by the simulation, not slept).
BUSY_RETRY_AFTER = 1


@dataclass
class LinkStats:
    requests: int = 0
    puts: int = 0
    bytes_sent: int = 0
    #: PUTs the server answered 200: bytes it already held, sent again.
    resent: int = 0
    drops: int = 0
    restarts: int = 0
    busy_answers: int = 0


class Link(httpx.BaseTransport):
    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        drop_after_bytes: int | None = None,
        restart_at: int | None = None,
        restart: Callable[[], None] | None = None,
        busy_for: int | None = None,
    ) -> None:
        self.inner = inner
        self.drop_after_bytes = drop_after_bytes
        self.restart_at = restart_at
        self.restart = restart
        self.busy_for = busy_for or 0
        self.stats = LinkStats()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        s = self.stats
        s.requests += 1
        if s.requests <= self.busy_for:
            s.busy_answers += 1
            body = json.dumps({"error": "busy: the link's 503 storm (simulated); retry"})
            return httpx.Response(
                503,
                headers={"Retry-After": str(BUSY_RETRY_AFTER)},
                content=body.encode(),
                request=request,
            )
        restart_cut = None
        if request.method == "PUT":
            s.puts += 1
            if self.restart_at == s.puts and s.restarts == 0:
                restart_cut = int(request.headers.get("Content-Length", "0")) // 2
            request.stream = _Watched(request.stream, self, restart_cut)  # type: ignore[assignment]
        response = self.inner.handle_request(request)
        if request.method == "PUT" and response.status_code == 200:
            s.resent += 1
        return response

    def cut(self, sent: int, chunk: int, restart_cut: int | None) -> tuple[int, bool] | None:
        """Where to cut a PUT's next ``chunk`` bytes, ``sent`` already gone: (offset in the
        chunk, restart the server first), or None to let it through."""
        s = self.stats
        if restart_cut is not None and s.restarts == 0 and sent + chunk > restart_cut:
            s.restarts += 1
            return restart_cut - sent, True
        limit = self.drop_after_bytes
        if limit is not None and s.drops == 0 and s.bytes_sent + chunk > limit:
            s.drops += 1
            return limit - s.bytes_sent, False
        return None

    def close(self) -> None:
        self.inner.close()


class _Watched(httpx.SyncByteStream):
    """A PUT's body, counted, and cut where the link's faults say (the connection drops)."""

    def __init__(self, stream: Any, link: Link, restart_cut: int | None) -> None:
        self.stream = stream
        self.link = link
        self.restart_cut = restart_cut

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self.stream:
            cut = self.link.cut(sent, len(chunk), self.restart_cut)
            if cut is not None:
                offset, restart = cut
                if offset > 0:
                    self.link.stats.bytes_sent += offset
                    yield chunk[:offset]
                if restart and self.link.restart is not None:
                    self.link.restart()
                raise httpx.WriteError("the dock's link dropped mid-upload (simulated)")
            sent += len(chunk)
            self.link.stats.bytes_sent += len(chunk)
            yield chunk
