"""The evidence store over HTTP (Starlette on uvicorn): issue 16's upload protocol.

    GET  /v1/server                             the server's key id and public key (no auth)
    HEAD /v1/objects/{sha256}                   200 held, 404 not
    PUT  /v1/objects/{sha256}                   201 stored, 200 already held, 400 not that sha256,
                                                507 full, 503 busy (Retry-After)
    POST /v1/recordings/{id}/commit             200 {"receipt"}, 400 refused (kept), 409 conflict
    GET  /v1/recordings/{id}/receipt            200 {"receipt"} or 404

Every request but the first is signed by an enrolled device's key
(camera.evidence.upload_auth); anything else is 403. Errors are one line of
JSON, ``{"error": "..."}``: a camera logs them and acts on the status alone
(400 never storable, 503 retry later, 507 full: the semantics of Axis's Body
Worn Integration API).

An upload streams straight from the socket into the object store, hashed on
the way (server.objects): a 10 MB segment is never held in memory, and one
that is not what its URL names (or is cut short) leaves nothing behind. The
store and the database are blocking, so they run in worker threads; the
number of uploads and of verifications at once is capped, and past the cap
the answer is 503 with Retry-After, not a queue that grows without bound.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import anyio.from_thread
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from camera import __version__
from camera.evidence.audit import format_utc
from server.access import record_access
from server.datadir import Server
from server.ingest import Ingest, parse_files
from server.objects import HashMismatch, StoreFull
from server.protocol import (
    DEVICE_HEADER,
    KEY_HEADER,
    SIGNATURE_HEADER,
    check_request,
    is_device_id,
    is_sha256,
)
from server.retention import Policy
from server.review.mount import review_routes

__all__ = ["MAX_COMMIT_BYTES", "create_app"]

_log = logging.getLogger("bodycam.server")
#: A commit body names every file: a long recording's list is tens of kB.
MAX_COMMIT_BYTES = 8 << 20
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status, headers=headers)


def _hash(source: io.RawIOBase) -> str:
    h = hashlib.sha256()
    while chunk := source.read(1 << 20):
        h.update(chunk)
    return h.hexdigest()


class Gate:
    """At most ``limit`` at once; the event loop is one thread, so a counter is enough."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def enter(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        self.active -= 1


class BodyReader(io.RawIOBase):
    """A request body as a blocking file, for a worker thread; chunks come from the event loop."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes:
        return await self._chunks.__anext__()

    def readinto(self, target: Any) -> int:
        while not self._buffer and not self._done:
            try:
                self._buffer = memoryview(anyio.from_thread.run(self._next))
            except StopAsyncIteration:
                self._done = True
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def create_app(server: Server) -> Starlette:
    """The app serving ``server`` (its key, metadata and object store, opened to serve)."""
    assert server.store is not None, "open the data directory with serve=True"
    store = server.store
    meta = server.meta
    limits = server.config.limits
    uploads, commits = Gate(limits.uploads), Gate(limits.commits)
    busy = {"Retry-After": str(limits.retry_after)}
    ingest = Ingest(
        meta,
        store,
        server.key,
        server.data.work,
        server.data.rejected,
        policy=Policy.from_config(server.config.retention),
    )
    info = {
        "key_id": server.key.key_id,
        "public_key_pem": server.key.public_pem.decode(),
        "version": __version__,
    }

    def enrolled_key(device: str, key_id: str) -> str | None:
        with meta.read() as conn:
            return meta.device_keys(conn, device).get(key_id)

    async def identify(request: Request) -> tuple[str, Any] | JSONResponse:
        """(device, its enrolled public key) the request claims, or the 403 to answer."""
        device = request.headers.get(DEVICE_HEADER)
        key_id = request.headers.get(KEY_HEADER)
        if not device or not key_id or not request.headers.get(SIGNATURE_HEADER):
            return _error(
                403,
                f"unsigned request: {DEVICE_HEADER}, {KEY_HEADER} and {SIGNATURE_HEADER} "
                "are required (an enrolled device's signature)",
            )
        if not is_device_id(device) or not is_sha256(key_id):
            return _error(403, f"{DEVICE_HEADER} or {KEY_HEADER} is malformed")
        pem = await run_in_threadpool(enrolled_key, device, key_id)
        if pem is None:
            return _error(
                403,
                f"device {device} with key {key_id[:16]}... is not enrolled here "
                "(`bodycam server enroll`) or its key was replaced",
            )
        return device, load_pem_public_key(pem.encode())

    def signed_over(request: Request, public_key: Any, body_sha256: str) -> str | None:
        """None if the request's signature covers this body hash, else why not."""
        signature = request.headers.get(SIGNATURE_HEADER, "")
        return check_request(
            public_key, request.method, request.scope["path"], body_sha256, signature
        )

    async def authenticate(request: Request, body_sha256: str) -> str | JSONResponse:
        """The device that signed this request, or the 403 to answer."""
        claimed = await identify(request)
        if isinstance(claimed, Response):
            return claimed
        device, public_key = claimed
        why = signed_over(request, public_key, body_sha256)
        return device if why is None else _error(403, why)

    async def server_info(request: Request) -> Response:
        return JSONResponse(info)

    async def objects_endpoint(request: Request) -> Response:
        sha = request.path_params["sha256"]
        if not is_sha256(sha):
            return _error(400, "expected a sha256 (64 lowercase hex digits) in the path")
        if request.method == "HEAD":
            who = await authenticate(request, _EMPTY_SHA256)
            if isinstance(who, Response):
                return who
            held = await run_in_threadpool(store.has, sha)
            return Response(status_code=200 if held else 404)
        return await put_object(request, sha)

    async def put_object(request: Request, sha: str) -> Response:
        claimed = await identify(request)
        if isinstance(claimed, Response):
            return claimed
        _, public_key = claimed
        length = request.headers.get("content-length", "")
        if not length.isdigit():
            return _error(411, "Content-Length is required: the size of the object")
        size = int(length)
        if size > limits.max_object_mb << 20:
            return _error(413, f"an object is at most {limits.max_object_mb} MB, got {size} bytes")
        # The body must hash to the sha256 the path names, so that is what a camera signs.
        why = signed_over(request, public_key, sha)
        if not uploads.enter():
            return _error(503, f"busy: {uploads.limit} uploads in progress; retry", busy)
        try:
            if why is not None:
                return await unsigned_body(request, public_key, sha, why)
            new = await run_in_threadpool(store.put, sha, BodyReader(request.stream()), size)
        except HashMismatch as exc:
            return _error(400, f"{exc} (nothing kept)")
        except StoreFull as exc:
            return _error(507, f"{exc} (nothing kept)")
        except ClientDisconnect:
            _log.info("upload of %s cut short by the client: nothing kept", sha)
            return Response(status_code=400)  # nobody is listening any more
        finally:
            uploads.leave()
        utc = format_utc(datetime.now(UTC))
        await run_in_threadpool(_note_object, sha, size, utc)
        return JSONResponse({"sha256": sha, "size": size}, 201 if new else 200)

    async def unsigned_body(request: Request, public_key: Any, sha: str, why: str) -> Response:
        """Not signed over the named hash: maybe over the body as sent (a file that changed
        after the camera hashed it). Hash it, keep nothing, and say which."""
        actual = await run_in_threadpool(_hash, BodyReader(request.stream()))
        if actual != sha and signed_over(request, public_key, actual) is None:
            return _error(
                400, f"sha256 of the body is {actual}, not the {sha} named (nothing kept)"
            )
        return _error(403, why)

    def _note_object(sha: str, size: int, utc: str) -> None:
        with meta.write() as conn:
            meta.object_seen(conn, sha, size, utc)

    async def commit_endpoint(request: Request) -> Response:
        recording_id = request.path_params["recording_id"]
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_COMMIT_BYTES:
            return _error(413, f"a commit body is at most {MAX_COMMIT_BYTES} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_COMMIT_BYTES:
                return _error(413, f"a commit body is at most {MAX_COMMIT_BYTES} bytes")
        who = await authenticate(request, hashlib.sha256(body).hexdigest())
        if isinstance(who, Response):
            return who
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            return _error(400, 'expected a JSON body {"files": {"<name>": "<sha256>", ...}}')
        files = parse_files(parsed)
        if not isinstance(files, dict):
            return JSONResponse(files.body, files.status)
        if not commits.enter():
            return _error(503, f"busy: {commits.limit} commits being verified; retry", busy)
        try:
            answer = await run_in_threadpool(ingest.commit, who, recording_id, files)
        finally:
            commits.leave()
        _log.info("commit %s from %s: %s", recording_id, who, answer.status)
        return JSONResponse(answer.body, answer.status)

    def held_receipt(device: str, recording_id: str) -> dict[str, Any] | None:
        """The receipt, its access audited (who asked for what is on the record)."""
        with meta.write() as conn:
            rec = meta.recording(conn, recording_id)
            if rec is None or rec.status != "verified" or rec.device != device:
                return None
            record_access(
                conn,
                utc=format_utc(datetime.now(UTC)),
                actor=f"device:{device}",
                recording=recording_id,
                what="receipt",
            )
        return rec.receipt

    async def receipt_endpoint(request: Request) -> Response:
        recording_id = request.path_params["recording_id"]
        who = await authenticate(request, _EMPTY_SHA256)
        if isinstance(who, Response):
            return who
        receipt = await run_in_threadpool(held_receipt, who, recording_id)
        if receipt is None:
            return _error(404, f"no receipt for recording {recording_id[:120]} from {who} here")
        return JSONResponse({"receipt": receipt})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail), exc.headers)

    async def internal_error(request: Request, exc: Exception) -> Response:
        _log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}")

    routes: list[BaseRoute] = [
        Route("/v1/server", server_info, methods=["GET"]),
        Route("/v1/objects/{sha256}", objects_endpoint, methods=["HEAD", "PUT"]),
        Route("/v1/recordings/{recording_id}/commit", commit_endpoint, methods=["POST"]),
        Route("/v1/recordings/{recording_id}/receipt", receipt_endpoint, methods=["GET"]),
        *review_routes(server),  # the review page, /review, behind a login (issue 17)
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: internal_error},
    )
