"""Ingest that verifies (issue 16): real recordings uploaded to a real server, and every refusal.

One storage of three chained, signed H.264 recordings (a simulated device)
is made once for the module; each test gets a fresh data directory with the
device enrolled and the store serving it on 127.0.0.1 (uvicorn, a free port),
and speaks to it as a camera does: signed HEAD/PUT per file, then the commit.
Each test runs on both stacks: the embedded one (SQLite and the file store)
and a department's (PostgreSQL and S3 Object Lock on SeaweedFS, real servers
on loopback from tests/services.py), except the few that look at the file
store's own files.
Tampered copies are made per test, the way someone holding the card could,
and with the device key where the case needs one (the simulation's key is
derived from the device id and the seed, so a test can forge what only the
device could sign: a replayed or re-signed manifest).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from camera.evidence.keys import load_public_key, test_key
from camera.evidence.receipts import check_receipt
from camera.evidence.upload_auth import sign_request
from server.audit import verify_audit
from server.datadir import open_server
from server.enroll import enroll
from server.meta import audit, objects, recordings, rejections
from server.objects.cas import CasStore
from tests.server_support import (
    DEVICE,
    Camera,
    Live,
    copy_recording,
    device_key,
    files_of,
    live_server,
    record_three,
    recordings_of,
    resign_manifest,
)

DEADLINE = 20.0


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_three(tmp_path_factory.mktemp("camera"))


@pytest.fixture
def recs(storage: Path) -> list[Path]:
    return recordings_of(storage)


#: The two ways to run the store: one machine, and a department's scale-out.
STACKS = ["embedded", "postgresql+s3"]
#: For the tests that look at the embedded store's files (its temp directory, its reserve).
EMBEDDED_ONLY = pytest.mark.parametrize("stack", ["embedded"], indirect=True)


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    """The data directory's server.toml text: empty for the embedded SQLite and files."""
    if request.param == "embedded":
        return ""
    metadata = request.getfixturevalue("fresh_postgres_url")
    objects = request.getfixturevalue("fresh_seaweedfs_url")
    return f'[store]\nmetadata = "{metadata}"\nobjects = "{objects}"\n'


@pytest.fixture
def data(tmp_path: Path, storage: Path, stack: str) -> Path:
    """A data directory with the device enrolled."""
    where = tmp_path / "data"
    where.mkdir()
    if stack:
        (where / "server.toml").write_text(stack)
    server = open_server(where)
    try:
        enroll(server.meta, storage / f"{DEVICE}.pub.pem")
    finally:
        server.close()
    return where


@pytest.fixture
def live(data: Path) -> Iterator[Live]:
    with live_server(data) as running:
        yield running


@pytest.fixture
def camera(live: Live) -> Iterator[Camera]:
    with httpx.Client(base_url=live.url, timeout=60) as client:
        yield Camera(client, device_key())


def server_key(data: Path) -> object:
    return load_public_key(data / "server.pub.pem")[0]


def table(live: Live, which: object) -> list[dict[str, object]]:
    with live.server.meta.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(which))]  # type: ignore[arg-type]


def watch_puts(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Events the server's thread sets when the store's put begins, and once it has ended."""
    began, ended = threading.Event(), threading.Event()
    real = CasStore.put

    def put(self: CasStore, *args: Any, **kwargs: Any) -> bool:
        began.set()
        try:
            return real(self, *args, **kwargs)
        finally:
            ended.set()

    monkeypatch.setattr(CasStore, "put", put)
    return began, ended


def flip_byte(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if at is None else at
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def rehash_segment(recording: Path, name: str) -> None:
    """Point the manifest at a segment's current bytes (no new signature: no key)."""
    path = recording / "manifest.json"
    manifest = json.loads(path.read_bytes())
    for seg in manifest["segments"]:
        if seg["file"] == name:
            seg["sha256"] = hashlib.sha256((recording / name).read_bytes()).hexdigest()
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def start_raw_put(live: Live, key_seed: int, body: bytes, sent: int) -> socket.socket:
    """A PUT sent by hand: the headers promise ``len(body)`` bytes, only ``sent`` follow."""
    sha = hashlib.sha256(body).hexdigest()
    path = f"/v1/objects/{sha}"
    headers = sign_request(device_key(key_seed), "PUT", path, body_sha256=sha, device=DEVICE)
    head = f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=DEADLINE)
    sock.sendall(head.encode() + body[:sent])
    return sock


# -- who may talk to it ---------------------------------------------------------------------
def test_the_server_says_who_it_is_without_authentication(live: Live, data: Path) -> None:
    answer = httpx.get(f"{live.url}/v1/server").json()
    _, key_id = load_public_key(data / "server.pub.pem")
    assert answer["key_id"] == key_id
    assert answer["public_key_pem"] == (data / "server.pub.pem").read_text()
    assert answer["version"]


def test_an_unenrolled_device_is_refused_and_nothing_is_kept(
    live: Live, camera: Camera, recs: list[Path]
) -> None:
    stranger = Camera(camera.client, test_key("BWC-0009", 0), device="BWC-0009")
    segment = (recs[0] / "segment-0000.ts").read_bytes()
    put = stranger.put(segment)
    assert put.status_code == 403
    assert put.json() == {
        "error": "device BWC-0009 with key "
        f"{stranger.key.key_id[:16]}... is not enrolled here (`bodycam server enroll`) "
        "or its key was replaced"
    }
    assert stranger.head(hashlib.sha256(segment).hexdigest()).status_code == 403
    assert stranger.commit(recs[0].name, files_of(recs[0])).status_code == 403
    assert camera.head(hashlib.sha256(segment).hexdigest()).status_code == 404
    assert table(live, objects) == []


def test_an_unsigned_or_wrongly_signed_request_is_refused(camera: Camera) -> None:
    sha = hashlib.sha256(b"x").hexdigest()
    unsigned = camera.client.put(f"/v1/objects/{sha}", content=b"x")
    assert unsigned.status_code == 403 and "unsigned request" in unsigned.json()["error"]
    # The enrolled device's id and key id, signed by another key: a forgery.
    headers = sign_request(device_key(99), "PUT", f"/v1/objects/{sha}", b"x", device=DEVICE)
    headers["X-Bodycam-Key"] = camera.key.key_id
    forged = camera.client.put(f"/v1/objects/{sha}", content=b"x", headers=headers)
    assert forged.status_code == 403
    assert forged.json()["error"] == (
        "X-Bodycam-Signature does not match this request and the enrolled key"
    )


# -- the happy path, and doing it twice ---------------------------------------------------
def test_a_recording_uploads_and_its_receipt_checks_with_the_server_key(
    live: Live, camera: Camera, data: Path, recs: list[Path]
) -> None:
    rec = recs[0]
    files = files_of(rec)
    assert camera.head(files["segment-0000.ts"]).status_code == 404
    answer = camera.upload(rec)
    assert answer.status_code == 200, answer.text
    receipt = answer.json()["receipt"]
    why = check_receipt(
        receipt,
        server_key(data),  # type: ignore[arg-type]
        recording_id=rec.name,
        device_id=DEVICE,
        manifest_sha256=files["manifest.json"],
        files=files,
    )
    assert why is None
    manifest = json.loads((rec / "manifest.json").read_bytes())
    assert receipt["frames"] == manifest["frames"]
    assert receipt["device_key_id"] == camera.key.key_id
    assert receipt["chain"] == "none: previous is null (the first recording of its card)"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", receipt["received_utc"])
    assert all(camera.head(sha).status_code == 200 for sha in files.values())
    assert camera.receipt(rec.name).json() == {"receipt": receipt}
    [row] = table(live, recordings)
    assert (row["status"], row["receipt"]) == ("verified", receipt)
    ingest = [e for e in table(live, audit) if e["action"] == "ingest"]
    assert [e["seq"] for e in ingest] == [receipt["audit_seq"]]
    # The next recording links to the one now held here.
    second = camera.upload(recs[1])
    assert second.status_code == 200 and second.json()["receipt"]["chain"] == "ok"
    assert verify_audit(live.server.meta).ok


def test_puts_and_commits_are_idempotent(live: Live, camera: Camera, recs: list[Path]) -> None:
    segment = (recs[0] / "segment-0000.ts").read_bytes()
    assert camera.put(segment).status_code == 201
    assert camera.put(segment).status_code == 200  # held already: not a second copy
    first = camera.upload(recs[0])
    again = camera.commit(recs[0].name, files_of(recs[0]))
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()  # the same receipt, not a new one
    assert [e["action"] for e in table(live, audit)].count("ingest") == 1
    assert len(table(live, objects)) == len(files_of(recs[0]))


def test_two_commits_of_one_recording_at_once_make_one_recording(
    live: Live, camera: Camera, recs: list[Path]
) -> None:
    for p in sorted(recs[0].iterdir()):
        camera.put(p.read_bytes())
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: camera.commit(recs[0].name, files_of(recs[0])), [1, 2]))
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()
    assert [e["action"] for e in table(live, audit)].count("ingest") == 1


def test_a_recording_whose_previous_is_not_held_is_accepted_and_says_so(
    camera: Camera, recs: list[Path]
) -> None:
    answer = camera.upload(recs[2])
    assert answer.status_code == 200
    assert answer.json()["receipt"]["chain"] == f"previous {recs[1].name} not held here"


def test_a_commit_naming_files_never_uploaded_is_400_naming_them(
    camera: Camera, recs: list[Path]
) -> None:
    files = files_of(recs[0])
    camera.put((recs[0] / "manifest.json").read_bytes())
    answer = camera.commit(recs[0].name, files)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"].startswith("not uploaded yet: journal.jsonl (")
    assert body["missing"] == sorted(set(files) - {"manifest.json"})


@EMBEDDED_ONLY  # the request is refused before either store is asked
@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"not json", 'expected a JSON body {"files"'),
        (b'{"files": {}}', 'expected a JSON body {"files"'),
        (b'{"files": {"../x": "' + b"a" * 64 + b'"}}', "expected a recording file name"),
        (b'{"files": {"x.ts": "A"}}', "x.ts: expected a sha256"),
        (b'{"files": {"x.ts": "' + b"a" * 64 + b'"}}', "the commit must name manifest.json"),
    ],
)
def test_a_malformed_commit_is_400_in_one_line(
    camera: Camera, recs: list[Path], body: bytes, complaint: str
) -> None:
    path = f"/v1/recordings/{recs[0].name}/commit"
    headers = sign_request(camera.key, "POST", path, body, device=DEVICE)
    answer = camera.client.post(path, content=body, headers=headers)
    assert answer.status_code == 400
    assert complaint in answer.json()["error"] and "\n" not in answer.text


# -- what is refused, and kept -------------------------------------------------------------
@pytest.mark.parametrize("signed", ["the hash named", "the body as sent"])
def test_a_flipped_byte_is_refused_on_put_and_nothing_is_kept(
    live: Live, camera: Camera, data: Path, recs: list[Path], signed: str
) -> None:
    original = (recs[0] / "segment-0001.ts").read_bytes()
    named = hashlib.sha256(original).hexdigest()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0x01
    actual = hashlib.sha256(tampered).hexdigest()
    if signed == "the hash named":
        answer = camera.put(bytes(tampered), sha=named)
    else:  # a client that hashes the body it sends (a file that changed after it was listed)
        path = f"/v1/objects/{named}"
        headers = sign_request(camera.key, "PUT", path, bytes(tampered), device=DEVICE)
        answer = camera.client.put(path, content=bytes(tampered), headers=headers)
    assert answer.status_code == 400
    assert answer.json() == {
        "error": f"sha256 of the body is {actual}, not the {named} named (nothing kept)"
    }
    assert camera.head(named).status_code == 404 and camera.head(actual).status_code == 404
    assert table(live, objects) == []
    if (data / "objects").is_dir():  # the embedded store: not even a temp file is left
        assert os.listdir(data / "objects" / "tmp") == []


def test_a_rehashed_tampered_segment_is_rejected_kept_and_the_genuine_one_still_accepted(
    live: Live, camera: Camera, data: Path, recs: list[Path], tmp_path: Path
) -> None:
    rec = copy_recording(recs[0], tmp_path)
    flip_byte(rec / "segment-0001.ts")
    rehash_segment(rec, "segment-0001.ts")  # consistent hashes: only the signatures can tell
    answer = camera.upload(rec)
    assert answer.status_code == 400
    body = answer.json()
    assert body["kept"] == f"rejected/{rec.name}/1"
    assert body["error"].startswith(f"recording {rec.name} failed verification: manifest.json:")
    assert body["problems"] == [
        "manifest.json: signature does not match (a field was edited, or it was signed by "
        "another key)",
        "segment-0001.ts: GOP 2 (frames 90-119): frame 119 altered (slice hash not in the "
        "signed list)",
    ]
    kept = data / body["kept"]
    reason = json.loads((kept / "reason.json").read_bytes())
    assert (reason["reason"], reason["problems"]) == (body["error"], body["problems"])
    assert reason["files"] == files_of(rec)
    assert (kept / "segment-0001.ts").read_bytes() == (rec / "segment-0001.ts").read_bytes()
    assert camera.receipt(rec.name).status_code == 404
    [row] = table(live, recordings)
    assert row["status"] == "rejected"
    [rejection] = table(live, rejections)
    assert (rejection["n"], rejection["reason"]) == (1, body["error"])
    assert "rejected" in [e["action"] for e in table(live, audit)]
    # The genuine recording is not blocked by the forgery that came first.
    genuine = camera.upload(recs[0])
    assert genuine.status_code == 200
    assert [r["status"] for r in table(live, recordings)] == ["verified"]
    assert verify_audit(live.server.meta).ok


def test_a_manifest_signed_by_another_key_is_rejected_and_kept(
    camera: Camera, data: Path, recs: list[Path], tmp_path: Path
) -> None:
    rec = copy_recording(recs[0], tmp_path)
    resign_manifest(rec, {}, device_key(seed=99))
    answer = camera.upload(rec)
    assert answer.status_code == 400
    body = answer.json()
    assert body["problems"] == [
        f"manifest.json: signed by key {device_key(99).key_id[:16]}..., not by the trusted "
        f"key {camera.key.key_id[:16]}..."
    ]
    assert (data / body["kept"] / "manifest.json").read_bytes() == (
        rec / "manifest.json"
    ).read_bytes()


def test_a_manifest_of_another_device_is_rejected(
    live: Live, data: Path, recs: list[Path], tmp_path: Path
) -> None:
    other = tmp_path / "BWC-0002.pub.pem"
    other.write_bytes(test_key("BWC-0002", 0).public_pem)
    enroll(live.server.meta, other)
    with httpx.Client(base_url=live.url, timeout=60) as client:
        answer = Camera(client, test_key("BWC-0002", 0), device="BWC-0002").upload(recs[0])
    assert answer.status_code == 400
    problems = answer.json()["problems"]
    assert 'manifest.json: device_id is "BWC-0001", but the upload came from device BWC-0002' in (
        problems
    )
    assert f"recording id {recs[0].name} is not one of device BWC-0002's" in problems


def test_a_replayed_old_manifest_for_a_held_recording_is_409_and_kept(
    camera: Camera, data: Path, recs: list[Path], tmp_path: Path
) -> None:
    held = camera.upload(recs[0])
    assert held.status_code == 200
    # An earlier version of the same recording, signed by the device itself.
    old = copy_recording(recs[0], tmp_path)
    resign_manifest(old, {"markers": [{"source": "button", "time": 4.0}]}, device_key())
    answer = camera.upload(old)
    manifest_sha = files_of(recs[0])["manifest.json"]
    assert answer.status_code == 409
    assert answer.json() == {
        "error": f"recording {old.name} is held with manifest {manifest_sha}; this commit differs",
        "kept": f"rejected/{old.name}/1",
    }
    assert (data / "rejected" / old.name / "1" / "manifest.json").is_file()
    assert camera.receipt(old.name).json() == held.json()  # the held one stands


def test_a_link_that_contradicts_the_held_previous_recording_is_rejected(
    camera: Camera, recs: list[Path], tmp_path: Path
) -> None:
    # The server holds a version of recording 1 that recording 2 does not name.
    other = copy_recording(recs[0], tmp_path)
    resign_manifest(other, {"markers": [{"source": "button", "time": 4.0}]}, device_key())
    assert camera.upload(other).status_code == 200
    answer = camera.upload(recs[1])
    assert answer.status_code == 400
    [problem] = answer.json()["problems"]
    assert problem.startswith(f"{recs[1].name}: previous names {recs[0].name} with manifest")
    assert problem.endswith(f"(changed after {recs[1].name} was signed)")


def test_an_older_manifest_contradicting_a_held_successor_is_rejected(
    camera: Camera, recs: list[Path], tmp_path: Path
) -> None:
    assert camera.upload(recs[1]).status_code == 200  # names recording 1, not held yet
    forged = copy_recording(recs[0], tmp_path)
    resign_manifest(forged, {"markers": [{"source": "button", "time": 4.0}]}, device_key())
    answer = camera.upload(forged)
    assert answer.status_code == 400
    [problem] = answer.json()["problems"]
    assert problem.startswith(f"{recs[1].name}: previous names {recs[0].name}")
    assert camera.upload(recs[0]).status_code == 200  # the genuine one links up


# -- the link and the disk ------------------------------------------------------------------
@EMBEDDED_ONLY
def test_a_truncated_upload_keeps_nothing(
    live: Live, camera: Camera, data: Path, recs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    began, ended = watch_puts(monkeypatch)
    body = (recs[0] / "segment-0000.ts").read_bytes()
    tmp = data / "objects" / "tmp"
    sock = start_raw_put(live, 0, body, len(body) // 2)
    assert began.wait(DEADLINE), "the upload did not reach the store"
    sock.close()  # the camera goes away mid-segment
    assert ended.wait(DEADLINE), "the store did not end the cut upload"
    assert os.listdir(tmp) == []  # the partial upload is removed
    assert camera.head(hashlib.sha256(body).hexdigest()).status_code == 404
    assert table(live, objects) == []


@EMBEDDED_ONLY
def test_past_the_upload_cap_the_answer_is_503_with_retry_after(
    tmp_path: Path, data: Path, recs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    began, _ = watch_puts(monkeypatch)
    config = tmp_path / "server.toml"
    config.write_text("[limits]\nuploads = 1\nretry_after = 7\n")
    with live_server(data, config) as running, httpx.Client(base_url=running.url) as client:
        body = (recs[0] / "segment-0000.ts").read_bytes()
        sock = start_raw_put(running, 0, body, 1000)
        assert began.wait(DEADLINE), "the first upload is not under way"
        busy = Camera(client, device_key()).put((recs[0] / "segment-0001.ts").read_bytes())
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "7"
        assert busy.json() == {"error": "busy: 1 uploads in progress; retry"}
        sock.sendall(body[1000:])  # the first one finishes
        answer = sock.recv(4096)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 201 ")


@EMBEDDED_ONLY
def test_a_full_store_is_507_and_keeps_nothing(
    tmp_path: Path, data: Path, recs: list[Path]
) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f'[store]\nobjects = "file://{data}/objects?reserve_mb={1 << 40}"\n')
    with live_server(data, config) as running, httpx.Client(base_url=running.url) as client:
        segment = (recs[0] / "segment-0000.ts").read_bytes()
        answer = Camera(client, device_key()).put(segment)
        assert answer.status_code == 507
        assert answer.json()["error"].startswith(f"object store {data}/objects is full:")
        assert not running.server.store.has(hashlib.sha256(segment).hexdigest())  # type: ignore[union-attr]
