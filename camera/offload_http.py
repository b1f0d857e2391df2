"""Talking to the evidence server: signed requests, and what to do when one fails.

The protocol (README "Evidence store and offload"): every request from a
camera is signed with the device key (camera.evidence.upload_auth); objects
are ``HEAD``/``PUT /v1/objects/<sha256>``, a recording is committed with
``POST /v1/recordings/<id>/commit`` and answered with a signed receipt.

Why failures are sorted the way they are (Axis's Body Worn Integration API
semantics, issue 16):

- A dropped connection, a timeout, 503 (busy) and the other 5xx are
  transient: the request is tried again after a jittered exponential
  backoff, honouring ``Retry-After``, a bounded number of times. Every
  request is idempotent, so a retry can only repeat what was done.
- 507 (full) stops the offload: nothing more will fit today.
- 400, 403, 409 and any other 4xx are the server's refusal of this request:
  retrying cannot change the answer, so the caller keeps the recording and
  says why.

The jitter comes from a ``random.Random`` passed in, and waiting from a
``sleep`` passed in, so a simulation is deterministic and a test waits for
nothing.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from camera.errors import InputError
from camera.evidence.keys import DeviceKey
from camera.evidence.upload_auth import sign_request

__all__ = [
    "EvidenceServer",
    "Refused",
    "RetryPolicy",
    "ServerFull",
    "Unreachable",
    "check_server_url",
]

TRANSIENT = frozenset({500, 502, 503, 504})
FULL = 507
_CHUNK = 1 << 20
_T = TypeVar("_T")


class ServerFull(Exception):
    """507: the server has no room; nothing more is sent this time."""


class Refused(Exception):
    """A 4xx answer: the server will not take this request as it is."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class Unreachable(Exception):
    """Transient failures went on for every attempt the policy allows."""


def check_server_url(url: str, source: str = "--server") -> str:
    """``url`` without a trailing slash; InputError unless it is http(s)://host[:port][/path]."""
    expected = "expected an http:// or https:// URL like http://evidence.example:8443"
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise InputError(f"{source}: {expected}, got {url!r}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InputError(f"{source}: {expected}, got {url!r}")
    if parsed.query or parsed.fragment:
        raise InputError(f"{source}: {expected} (no query or fragment), got {url!r}")
    return url.rstrip("/")


@dataclass
class RetryPolicy:
    """How often and how patiently a transient failure is retried.

    ``attempts`` counts tries of one request (the first included). The wait
    before try k+1 is ``min(cap, base * 2**k)`` scaled by a jitter in
    [0.5, 1.0) from ``rng``, and at least the server's ``Retry-After`` (itself
    capped at ``cap``).
    """

    rng: random.Random
    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep)

    def delay(self, failed: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failed``-th consecutive failure (1-based)."""
        backoff = min(self.cap, self.base * 2 ** (failed - 1)) * self.rng.uniform(0.5, 1.0)
        if retry_after is not None:
            backoff = max(backoff, min(self.cap, retry_after))
        return backoff


def _retry_after(response: httpx.Response) -> float | None:
    """The delta-seconds form of Retry-After (the date form needs a clock the camera distrusts)."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86400 else None


def _reason(response: httpx.Response) -> str:
    """The server's one-line error, with the first findings of a failed verification."""
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        text = " ".join(response.text.split())[:200]
        return text or response.reason_phrase or f"HTTP {response.status_code}"
    reason = " ".join(body["error"].split())
    problems = body.get("problems")
    if isinstance(problems, list) and problems:
        shown = "; ".join(" ".join(str(p).split()) for p in problems[:3])
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        reason += f": {shown}{more}"
    if isinstance(body.get("kept"), str):
        reason += f" (server kept it in {body['kept']})"
    return reason


class EvidenceServer:
    """One evidence server, as one device sees it: signed, retried requests."""

    def __init__(
        self,
        url: str,
        key: DeviceKey,
        device_id: str,
        retry: RetryPolicy,
        client: httpx.Client | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = check_server_url(url)
        self.key = key
        self.device_id = device_id
        self.retry = retry
        self._own = client is None
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=connect_timeout)
        )

    def close(self) -> None:
        if self._own:
            self.client.close()

    # -- the endpoints ------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """``GET /v1/server``: what the server says about itself (not trusted, only compared)."""
        response = self._retrying(lambda: self._once("GET", "/v1/server", ok=(200,), signed=False))
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Refused(response.status_code, "GET /v1/server did not answer a JSON object")
        return body

    def has(self, sha256: str) -> bool:
        """``HEAD /v1/objects/<sha256>``: does the server hold these bytes (verified)?"""
        return self._retrying(lambda: self._has(sha256))

    def ensure(self, sha256: str, path: Path) -> bool:
        """The server holds the file's bytes afterwards; True if sent now, False if already held.

        Every try (the first and each retry) asks with ``HEAD`` first, so a
        PUT that reached the server before the connection dropped is not sent
        again. The file is streamed, never held in memory whole; if its bytes
        are not ``sha256`` the server refuses them (400) and keeps nothing.
        """
        return self._retrying(lambda: not self._has(sha256) and self._put(sha256, path))

    def commit(self, recording_id: str, files: Mapping[str, str]) -> Any:
        """``POST /v1/recordings/<id>/commit``: the receipt, as the server sent it (unchecked)."""
        body = json.dumps({"files": dict(files)}, sort_keys=True).encode()
        path = f"/v1/recordings/{recording_id}/commit"
        response = self._retrying(lambda: self._once("POST", path, body=body, ok=(200,)))
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or "receipt" not in answer:
            raise Refused(response.status_code, "commit answered without a receipt")
        return answer["receipt"]

    # -- inside ---------------------------------------------------------------
    def _has(self, sha256: str) -> bool:
        return self._once("HEAD", f"/v1/objects/{sha256}", ok=(200, 404)).status_code == 200

    def _put(self, sha256: str, path: Path) -> bool:
        size = path.stat().st_size
        response = self._once(
            "PUT", f"/v1/objects/{sha256}", ok=(200, 201), stream=(path, size, sha256)
        )
        return response.status_code == 201

    def _once(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...],
        body: bytes = b"",
        stream: tuple[Path, int, str] | None = None,
        signed: bool = True,
    ) -> httpx.Response:
        """One request: an ``ok`` response, ServerFull, Refused, or _Transient (try again).

        ``stream`` (file, size, sha256) sends a file as the body, signed by its sha256.
        """
        url = self.url + path
        headers: dict[str, str] = {}
        content: bytes | Iterator[bytes] | None = body if method == "POST" else None
        if stream is not None:
            file, size, digest = stream
            content = _chunks(file)
            headers["Content-Length"] = str(size)
        if signed:
            signed_path = httpx.URL(url).path
            if stream is not None:
                auth = sign_request(
                    self.key, method, signed_path, device=self.device_id, body_sha256=digest
                )
            else:
                auth = sign_request(self.key, method, signed_path, body, device=self.device_id)
            headers.update(auth)
        if method == "POST":
            headers["Content-Type"] = "application/json"
        try:
            response = self.client.request(method, url, content=content, headers=headers)
        except httpx.TransportError as exc:
            what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise _Transient(f"{method} {path}: {what}") from None
        status = response.status_code
        if status in ok:
            return response
        if status == FULL:
            raise ServerFull(_reason(response))
        if status in TRANSIENT:
            raise _Transient(
                f"{method} {path}: {status} {_reason(response)}", _retry_after(response)
            )
        raise Refused(status, _reason(response))

    def _retrying(self, attempt: Callable[[], _T]) -> _T:
        """``attempt()`` until it does not fail transiently, at most ``retry.attempts`` times."""
        last: _Transient | None = None
        for n in range(1, self.retry.attempts + 1):
            try:
                return attempt()
            except _Transient as exc:
                last = exc
                if n < self.retry.attempts:
                    self.retry.sleep(self.retry.delay(n, exc.retry_after))
        raise Unreachable(f"no answer after {self.retry.attempts} attempts ({last})")


def _chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes, a block at a time (opened anew for each try)."""
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            yield block


class _Transient(Exception):
    """A failure worth trying again: a dropped connection, a timeout, 503 and kin."""

    def __init__(self, what: str, retry_after: float | None = None) -> None:
        super().__init__(what)
        self.retry_after = retry_after
