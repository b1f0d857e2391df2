"""The offload client's answers to a failing server, against scripted replies (httpx.MockTransport).

The live-server tests (tests/test_offload.py) cover the protocol end to end;
these pin the failure policy, which a real server rarely shows on cue: which
answers are retried, how long the waits are (seeded jitter, Retry-After),
that attempts are bounded, and what stops or refuses.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from camera.errors import InputError
from camera.evidence.keys import test_key
from camera.offload_http import (
    EvidenceServer,
    Refused,
    RetryPolicy,
    ServerFull,
    Unreachable,
    check_server_url,
)

SHA = hashlib.sha256(b"segment bytes").hexdigest()
Reply = Callable[[httpx.Request], httpx.Response]


def scripted(replies: list[httpx.Response | Exception], seen: list[httpx.Request]) -> Reply:
    """Answers in order (an exception is raised as the transport's failure); records requests."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    return handle


def server(
    replies: list[httpx.Response | Exception], seed: int = 1, attempts: int = 4
) -> tuple[EvidenceServer, list[httpx.Request], list[float]]:
    seen: list[httpx.Request] = []
    waits: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(scripted(replies, seen)))
    policy = RetryPolicy(random.Random(seed), attempts=attempts, sleep=waits.append)
    return (
        EvidenceServer(
            "http://evidence.test/base/", test_key("BWC-0001", 1), "BWC-0001", policy, client
        ),
        seen,
        waits,
    )


def test_busy_503_is_retried_no_sooner_than_retry_after() -> None:
    busy = httpx.Response(503, headers={"Retry-After": "7"}, json={"error": "busy"})
    srv, seen, waits = server([busy, busy, httpx.Response(404)])
    assert srv.has(SHA) is False
    assert len(seen) == 3
    assert all(w >= 7.0 for w in waits) and len(waits) == 2


def test_the_waits_follow_a_seeded_jittered_backoff_and_repeat_with_the_seed() -> None:
    def waits_for(seed: int) -> list[float]:
        cut = httpx.ConnectError("refused")
        srv, _, waits = server([cut, cut, cut, httpx.Response(200)], seed=seed)
        assert srv.has(SHA) is True
        return waits

    rng = random.Random(5)
    expected = [min(30.0, 0.5 * 2**k) * rng.uniform(0.5, 1.0) for k in range(3)]
    assert waits_for(5) == expected
    assert waits_for(5) == waits_for(5) != waits_for(6)


def test_retry_after_is_capped_so_a_server_cannot_park_the_camera() -> None:
    policy = RetryPolicy(random.Random(0), cap=30.0)
    assert policy.delay(1, retry_after=3600.0) == 30.0


def test_attempts_are_bounded_then_the_server_is_unreachable() -> None:
    cut = httpx.ReadError("connection reset")
    srv, seen, waits = server([cut] * 4, attempts=4)
    with pytest.raises(Unreachable, match=r"no answer after 4 attempts \(HEAD .*ReadError"):
        srv.has(SHA)
    assert len(seen) == 4 and len(waits) == 3


def test_a_500_is_tried_again_too() -> None:
    srv, seen, _ = server([httpx.Response(500, json={"error": "internal"}), httpx.Response(200)])
    assert srv.has(SHA) is True and len(seen) == 2


def test_507_stops_at_once() -> None:
    srv, seen, waits = server(
        [httpx.Response(404), httpx.Response(507, json={"error": "disk full"})]
    )
    path = Path(__file__)
    with pytest.raises(ServerFull, match="disk full"):
        srv.ensure(hashlib.sha256(path.read_bytes()).hexdigest(), path)
    assert [r.method for r in seen] == ["HEAD", "PUT"] and waits == []


@pytest.mark.parametrize("status", [400, 403, 409, 413])
def test_a_refusal_is_not_retried_and_carries_the_servers_reason(status: int) -> None:
    body = {
        "error": "recording does not verify",
        "problems": ["a", "b", "c", "d"],
        "kept": "rejected/x/1",
    }
    srv, seen, _ = server([httpx.Response(status, json=body)])
    with pytest.raises(Refused) as refused:
        srv.commit("BWC-0001_20260101T080001Z_0001", {"manifest.json": SHA})
    assert refused.value.status == status and len(seen) == 1
    assert refused.value.reason == (
        "recording does not verify: a; b; c (+1 more) (server kept it in rejected/x/1)"
    )


def test_a_put_asks_first_and_a_retry_asks_again() -> None:
    path = Path(__file__)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    srv, seen, _ = server([httpx.Response(404), httpx.WriteError("dropped"), httpx.Response(200)])
    assert srv.ensure(sha, path) is False  # the cut PUT had reached the server after all
    assert [r.method for r in seen] == ["HEAD", "PUT", "HEAD"]


def test_requests_are_signed_for_the_path_under_the_servers_base() -> None:
    srv, seen, _ = server([httpx.Response(200)])
    srv.has(SHA)
    [request] = seen
    assert request.url.path == f"/base/v1/objects/{SHA}"
    assert request.headers["X-Bodycam-Device"] == "BWC-0001"
    from camera.evidence.upload_auth import check_request

    key = test_key("BWC-0001", 1).public_key
    empty = hashlib.sha256(b"").hexdigest()
    signature = request.headers["X-Bodycam-Signature"]
    assert check_request(key, "HEAD", request.url.path, empty, signature) is None


def test_a_put_streams_the_file_with_its_length() -> None:
    path = Path(__file__)
    data = path.read_bytes()
    srv, seen, _ = server([httpx.Response(404), httpx.Response(201)])
    assert srv.ensure(hashlib.sha256(data).hexdigest(), path) is True
    put = seen[1]
    assert put.headers["Content-Length"] == str(len(data))
    assert put.read() == data


@pytest.mark.parametrize(
    "url", ["ftp://x", "http://", "evidence.example", "http://x/?a=1", "http://x/#f", ""]
)
def test_a_bad_server_url_is_one_line_naming_it(url: str) -> None:
    with pytest.raises(InputError, match=r"^--server: expected an http:// or https:// URL"):
        check_server_url(url)


def test_a_good_server_url_loses_its_trailing_slash() -> None:
    assert check_server_url("https://evidence.example:8443/bodycam/") == (
        "https://evidence.example:8443/bodycam"
    )
