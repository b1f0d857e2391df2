"""One contract for every object store: the embedded CasStore and S3Store on a real SeaweedFS.

The same tests run against both (protocol16's ObjectStore interface), so a
department that moves from one machine to PostgreSQL + S3 keeps the promises:
written once, never overwritten, a body that is not what it claims keeps
nothing, and nothing retained or held can be deleted.

The SeaweedFS regression tests at the end talk to the server directly, not
through S3Store: the store checks retention itself before it asks, which would
hide a server that deletes what it should refuse. SeaweedFS has done exactly
that (issue #7194: deletes succeeded despite retention; #11333: COMPLIANCE
deletes re-reported), so the pinned version's enforcement is a tested fact.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from server.objects import HashMismatch, Locked, ObjectStore, StoreFull, open_store
from server.objects.cas import CasStore
from server.objects.s3 import S3Store
from tests.services import SeaweedFS

DAY = timedelta(days=1)


def _blob(request: pytest.FixtureRequest, label: str = "", size: int = 4096) -> tuple[bytes, str]:
    """Bytes no other test stores (the S3 bucket is shared by the session), and their sha256."""
    seed = f"{request.node.nodeid}/{label}".encode()
    block = hashlib.sha512(seed).digest()
    data = (block * (size // len(block) + 1))[:size]
    return data, hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["cas", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[ObjectStore]:
    """Each store through open_store, as the server opens it from its config."""
    if request.param == "cas":
        url = f"file://{tmp_path / 'objects'}"
    else:
        url = request.getfixturevalue("seaweedfs_url")
    opened = open_store(url)
    yield opened
    opened.close()


def _s3(store: ObjectStore) -> Any:
    """The raw boto3 client behind an S3Store (tests that look past the interface)."""
    assert isinstance(store, S3Store)
    return store._s3


def _held(store: ObjectStore, sha: str) -> tuple[str | None, datetime | None]:
    """The retention a store holds for an object: (mode, until)."""
    if isinstance(store, CasStore):
        until, mode, _hold = store._row(sha)
        return mode, datetime.fromisoformat(until) if until else None
    head = _s3(store).head_object(Bucket=store.bucket, Key=S3Store.key_of(sha))
    mode = head.get("ObjectLockMode")
    return (mode.lower() if mode else None), head.get("ObjectLockRetainUntilDate")


class _OneWay(io.RawIOBase):
    """A stream that cannot seek (an HTTP request body): the store must not need to."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._inner.read(min(len(buffer), 65536))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# -- writing and reading -----------------------------------------------------


def test_put_then_has_open_size(store: ObjectStore, request: pytest.FixtureRequest) -> None:
    data, sha = _blob(request)
    assert not store.has(sha)
    assert store.put(sha, io.BytesIO(data), len(data)) is True
    assert store.has(sha)
    assert store.size(sha) == len(data)
    with store.open(sha) as f:
        assert f.read() == data


def test_a_second_put_is_already_held_and_the_stream_still_checked(
    store: ObjectStore, request: pytest.FixtureRequest
) -> None:
    data, sha = _blob(request)
    assert store.put(sha, io.BytesIO(data)) is True
    assert store.put(sha, io.BytesIO(data)) is False
    other, _ = _blob(request, "other")
    with pytest.raises(HashMismatch, match=f"not the {sha} named"):
        store.put(sha, io.BytesIO(other))
    with store.open(sha) as f:
        assert f.read() == data


def test_a_body_that_is_not_the_one_named_keeps_nothing(
    store: ObjectStore, request: pytest.FixtureRequest
) -> None:
    data, sha = _blob(request)
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(HashMismatch, match=f"sha256 of the body is .*, not the {sha} named"):
        store.put(sha, io.BytesIO(tampered))
    assert not store.has(sha)
    assert not store.has(hashlib.sha256(tampered).hexdigest())
    with pytest.raises(FileNotFoundError):
        store.open(sha)


@pytest.mark.parametrize("declared", [-1, +1])
def test_a_length_other_than_declared_keeps_nothing(
    store: ObjectStore, request: pytest.FixtureRequest, declared: int
) -> None:
    data, sha = _blob(request)
    with pytest.raises(HashMismatch, match="declared"):
        store.put(sha, io.BytesIO(data), len(data) + declared)
    assert not store.has(sha)


def test_a_stream_that_cannot_seek_and_is_bigger_than_memory_spooling(
    store: ObjectStore, request: pytest.FixtureRequest
) -> None:
    data, sha = _blob(request, size=9 << 20)  # over S3Store's 8 MB in-memory spool
    assert store.put(sha, io.BufferedReader(_OneWay(data)), len(data)) is True
    assert store.size(sha) == len(data)
    with store.open(sha) as f:
        assert hashlib.sha256(f.read()).hexdigest() == sha


def test_a_file_read_from_the_middle(store: ObjectStore, request: pytest.FixtureRequest) -> None:
    data, sha = _blob(request)
    source = io.BytesIO(b"header" + data)
    source.seek(6)  # botocore rewinds to 0 on a retry: the store must not send the header
    assert store.put(sha, source) is True
    with store.open(sha) as f:
        assert f.read() == data


def test_an_empty_object(store: ObjectStore) -> None:
    sha = hashlib.sha256(b"").hexdigest()
    store.put(sha, io.BytesIO(b""), 0)
    assert store.has(sha)
    assert store.size(sha) == 0


def test_absent_objects_are_file_not_found(
    store: ObjectStore, request: pytest.FixtureRequest
) -> None:
    _, sha = _blob(request)
    with pytest.raises(FileNotFoundError):
        store.open(sha)
    with pytest.raises(FileNotFoundError):
        store.size(sha)
    with pytest.raises(FileNotFoundError):
        store.retain(sha, datetime.now(UTC) + DAY, "governance")
    with pytest.raises(FileNotFoundError):
        store.legal_hold(sha, True)
    with pytest.raises(FileNotFoundError):
        store.delete(sha)


@pytest.mark.parametrize("name", ["", "ABC", "0" * 63, "A" * 64, "../" + "0" * 61])
def test_a_name_that_is_not_a_sha256_is_refused(store: ObjectStore, name: str) -> None:
    with pytest.raises(ValueError, match="64 lowercase hex"):
        store.has(name)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        store.put(name, io.BytesIO(b"x"))


# -- retention and holds -----------------------------------------------------


def _stored(store: ObjectStore, request: pytest.FixtureRequest) -> tuple[bytes, str]:
    data, sha = _blob(request)
    store.put(sha, io.BytesIO(data))
    return data, sha


def test_compliance_cannot_be_deleted_even_with_the_bypass(
    store: ObjectStore, request: pytest.FixtureRequest
) -> None:
    data, sha = _stored(store, request)
    store.retain(sha, datetime.now(UTC) + DAY, "compliance")
    with pytest.raises(Locked, match="compliance"):
        store.delete(sha)
    with pytest.raises(Locked, match="compliance"):
        store.delete(sha, bypass_governance=True)
    with store.open(sha) as f:
        assert f.read() == data


def test_governance_is_deleted_only_with_the_bypass(
    store: ObjectStore, request: pytest.FixtureRequest
) -> None:
    _, sha = _stored(store, request)
    store.retain(sha, datetime.now(UTC) + DAY, "governance")
    with pytest.raises(Locked, match="bypass_governance"):
        store.delete(sha)
    assert store.has(sha)
    store.delete(sha, bypass_governance=True)
    assert not store.has(sha)
    with pytest.raises(FileNotFoundError):
        store.open(sha)


def test_a_legal_hold_blocks_deletion_until_released(
    store: ObjectStore, request: pytest.FixtureRequest
) -> None:
    _, sha = _stored(store, request)
    store.legal_hold(sha, True)
    with pytest.raises(Locked, match="legal hold"):
        store.delete(sha, bypass_governance=True)
    assert store.has(sha)
    store.legal_hold(sha, False)
    store.delete(sha)
    assert not store.has(sha)


def test_a_legal_hold_outlasts_an_expired_or_bypassed_retention(
    store: ObjectStore, request: pytest.FixtureRequest
) -> None:
    _, sha = _stored(store, request)
    store.retain(sha, datetime.now(UTC) + DAY, "governance")
    store.legal_hold(sha, True)
    with pytest.raises(Locked, match="legal hold"):
        store.delete(sha, bypass_governance=True)
    assert store.has(sha)


def test_an_object_without_retention_or_hold_can_be_deleted(
    store: ObjectStore, request: pytest.FixtureRequest
) -> None:
    _, sha = _stored(store, request)
    store.delete(sha)
    assert not store.has(sha)
    data, _ = _blob(request)
    assert store.put(sha, io.BytesIO(data)) is True  # and stored again if it comes back


def test_retention_is_never_shortened(store: ObjectStore, request: pytest.FixtureRequest) -> None:
    _, sha = _stored(store, request)
    later = (datetime.now(UTC) + 2 * DAY).replace(microsecond=0)
    store.retain(sha, later, "compliance")
    store.retain(sha, later - DAY, "compliance")  # asks for less: nothing changes
    assert _held(store, sha) == ("compliance", later)


def test_compliance_is_never_weakened_to_governance(
    store: ObjectStore, request: pytest.FixtureRequest
) -> None:
    _, sha = _stored(store, request)
    until = (datetime.now(UTC) + DAY).replace(microsecond=0)
    store.retain(sha, until, "compliance")
    store.retain(sha, until + DAY, "governance")  # a later date is taken, the mode is kept
    assert _held(store, sha) == ("compliance", until + DAY)
    with pytest.raises(Locked):
        store.delete(sha, bypass_governance=True)


def test_governance_is_strengthened_to_compliance_and_keeps_the_later_date(
    store: ObjectStore, request: pytest.FixtureRequest
) -> None:
    _, sha = _stored(store, request)
    later = (datetime.now(UTC) + 2 * DAY).replace(microsecond=0)
    store.retain(sha, later, "governance")
    store.retain(sha, later - DAY, "compliance")
    assert _held(store, sha) == ("compliance", later)
    with pytest.raises(Locked, match="compliance"):
        store.delete(sha, bypass_governance=True)


def test_retention_needs_an_aware_date_and_a_known_mode(
    store: ObjectStore, request: pytest.FixtureRequest
) -> None:
    _, sha = _stored(store, request)
    with pytest.raises(ValueError, match="aware"):
        store.retain(sha, datetime.now() + DAY, "governance")
    with pytest.raises(ValueError, match="retention mode"):
        store.retain(sha, datetime.now(UTC) + DAY, "forever")  # type: ignore[arg-type]


# -- S3Store on SeaweedFS: what only S3 has ----------------------------------


@pytest.fixture
def s3store(seaweedfs_url: str) -> Iterator[S3Store]:
    opened = S3Store.from_url(seaweedfs_url)
    yield opened
    opened.close()


def _version(s3store: S3Store, sha: str) -> str:
    head = s3store._s3.head_object(Bucket=s3store.bucket, Key=S3Store.key_of(sha))
    return str(head["VersionId"])


def test_s3_creates_its_bucket_with_object_lock(fresh_seaweedfs_url: str) -> None:
    opened = S3Store.from_url(fresh_seaweedfs_url)
    s3 = opened._s3
    lock = s3.get_object_lock_configuration(Bucket=opened.bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert s3.get_bucket_versioning(Bucket=opened.bucket)["Status"] == "Enabled"
    assert S3Store.from_url(fresh_seaweedfs_url).bucket == opened.bucket  # and reuses it


def test_s3_refuses_a_bucket_without_object_lock(seaweedfs: SeaweedFS) -> None:
    seaweedfs.client().create_bucket(Bucket="bodycam-unlocked")
    with pytest.raises(ValueError, match="has no Object Lock"):
        S3Store.from_url(seaweedfs.url("bodycam-unlocked"))


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("s3://", "expected s3://BUCKET"),
        ("s3://Bad_Bucket?endpoint=http://127.0.0.1:1", "lowercase"),
        ("s3://bucket/sub?endpoint=http://127.0.0.1:1", "expected s3://BUCKET"),
        ("s3://bucket?endpoint=127.0.0.1:8333", "endpoint: expected http"),
        ("s3://bucket?endpont=http://127.0.0.1:1", "unknown parameter 'endpont'"),
    ],
)
def test_s3_url_mistakes_are_named(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        open_store(url)


def test_s3_without_credentials_says_which_to_set(
    seaweedfs_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ValueError, match="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        S3Store.from_url(seaweedfs_url)


def test_s3_wrong_credentials_are_refused(
    seaweedfs_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(ValueError, match="S3 refused access"):
        S3Store.from_url(seaweedfs_url)


def test_s3_an_endpoint_that_does_not_answer_is_named() -> None:
    from tests.services import free_ports

    (port,) = free_ports(1)
    url = f"s3://bodycam-test?endpoint=http://127.0.0.1:{port}&region=us-east-1"
    with pytest.raises(ValueError, match=f"127.0.0.1:{port}: cannot connect"):
        S3Store.from_url(url)


def test_s3_stores_the_sha256_as_its_checksum(
    s3store: S3Store, request: pytest.FixtureRequest
) -> None:
    data, sha = _blob(request)
    s3store.put(sha, io.BytesIO(data))
    head = s3store._s3.head_object(
        Bucket=s3store.bucket, Key=S3Store.key_of(sha), ChecksumMode="ENABLED"
    )
    assert head["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(sha)).decode()


def test_s3_refuses_a_body_whose_checksum_differs(
    s3store: S3Store, request: pytest.FixtureRequest
) -> None:
    """What protects an upload damaged between this process and S3."""
    data, sha = _blob(request)
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(ClientError, match="BadDigest"):
        s3store._s3.put_object(
            Bucket=s3store.bucket, Key=S3Store.key_of(sha), Body=data, ChecksumSHA256=wrong
        )
    assert not s3store.has(sha)


def test_s3_never_makes_a_second_version(s3store: S3Store, request: pytest.FixtureRequest) -> None:
    data, sha = _blob(request)
    s3store.put(sha, io.BytesIO(data))
    s3store.put(sha, io.BytesIO(data))
    versions = s3store._s3.list_object_versions(Bucket=s3store.bucket, Prefix=S3Store.key_of(sha))
    assert len(versions["Versions"]) == 1


def test_s3_a_concurrent_upload_that_lost_the_race_is_already_held(
    s3store: S3Store, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """has() said no, then another upload stored it: If-None-Match makes this one a no-op."""
    data, sha = _blob(request)
    s3store.put(sha, io.BytesIO(data))
    monkeypatch.setattr(s3store, "has", lambda _sha: False)
    assert s3store.put(sha, io.BytesIO(data)) is False
    versions = s3store._s3.list_object_versions(Bucket=s3store.bucket, Prefix=S3Store.key_of(sha))
    assert len(versions["Versions"]) == 1


def test_s3_a_plain_delete_of_a_locked_object_leaves_it_readable(
    s3store: S3Store, request: pytest.FixtureRequest
) -> None:
    data, sha = _blob(request)
    s3store.put(sha, io.BytesIO(data))
    s3store.retain(sha, datetime.now(UTC) + DAY, "compliance")
    marker = s3store._s3.delete_object(Bucket=s3store.bucket, Key=S3Store.key_of(sha))
    assert marker.get("DeleteMarker") is True  # S3 only hid it
    assert s3store.has(sha)
    assert s3store.size(sha) == len(data)
    with s3store.open(sha) as f:
        assert f.read() == data
    assert s3store.put(sha, io.BytesIO(data)) is False  # held: not uploaded again


def test_s3_governance_delete_removes_every_version_and_marker(
    s3store: S3Store, request: pytest.FixtureRequest
) -> None:
    data, sha = _blob(request)
    s3store.put(sha, io.BytesIO(data))
    s3store.retain(sha, datetime.now(UTC) + DAY, "governance")
    s3store._s3.delete_object(Bucket=s3store.bucket, Key=S3Store.key_of(sha))  # a marker
    s3store.delete(sha, bypass_governance=True)
    left = s3store._s3.list_object_versions(Bucket=s3store.bucket, Prefix=S3Store.key_of(sha))
    assert left.get("Versions", []) == [] and left.get("DeleteMarkers", []) == []


def test_s3_a_retention_date_in_the_past_changes_nothing(
    s3store: S3Store, request: pytest.FixtureRequest
) -> None:
    _, sha = _stored(s3store, request)
    s3store.retain(sha, datetime.now(UTC) - DAY, "compliance")
    assert _held(s3store, sha) == (None, None)
    s3store.delete(sha)


def test_s3_open_checks_the_bytes_against_their_name(
    s3store: S3Store, request: pytest.FixtureRequest
) -> None:
    """Bytes under a name that is not their sha256 (written past the store) do not pass."""
    data, _ = _blob(request)
    _, other = _blob(request, "other")
    s3store._s3.put_object(Bucket=s3store.bucket, Key=S3Store.key_of(other), Body=data)
    with s3store.open(other) as f, pytest.raises(OSError, match="not the bytes named"):
        f.read()


def _stubbed_store() -> tuple[S3Store, Stubber]:
    """An S3Store on a stubbed client whose bucket is in order, for errors no test server makes."""
    import boto3

    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    stub = Stubber(client)
    stub.add_response("head_bucket", {})
    stub.add_response(
        "get_object_lock_configuration",
        {"ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled"}},
    )
    stub.add_response("get_bucket_versioning", {"Status": "Enabled"})
    stub.activate()
    return S3Store("bodycam-stub", client=client), stub


@pytest.mark.parametrize(
    ("code", "status"),
    [("InsufficientStorage", 507), ("XMinioStorageFull", 507), ("QuotaExceeded", 403)],
)
def test_s3_a_full_store_is_store_full(code: str, status: int) -> None:
    """SeaweedFS says "no writable volumes" as a bare 500; other servers say full plainly."""
    opened, stub = _stubbed_store()
    data = b"evidence"
    sha = hashlib.sha256(data).hexdigest()
    stub.add_client_error("head_object", "404", http_status_code=404)
    stub.add_response("list_object_versions", {"Versions": []})
    stub.add_client_error("put_object", code, http_status_code=status)
    with pytest.raises(StoreFull, match=f"is full: {code}"):
        opened.put(sha, io.BytesIO(data))
    stub.assert_no_pending_responses()


# -- SeaweedFS regressions: the server's own enforcement, not the store's ----


def _locked_version(s3store: S3Store, request: pytest.FixtureRequest, mode: str) -> tuple[str, str]:
    data, sha = _blob(request)
    s3store.put(sha, io.BytesIO(data))
    s3store.retain(sha, datetime.now(UTC) + DAY, mode)  # type: ignore[arg-type]
    return S3Store.key_of(sha), _version(s3store, sha)


def _denied(call: Any, **kwargs: Any) -> None:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    assert caught.value.response["Error"]["Code"] == "AccessDenied"


@pytest.mark.parametrize("bypass", [False, True])
def test_seaweedfs_refuses_to_delete_a_compliance_version(
    s3store: S3Store, request: pytest.FixtureRequest, bypass: bool
) -> None:
    """seaweedfs#7194 (deleted despite retention) and #11333 (COMPLIANCE, with the bypass)."""
    key, version = _locked_version(s3store, request, "compliance")
    s3 = s3store._s3
    _denied(
        s3.delete_object,
        Bucket=s3store.bucket,
        Key=key,
        VersionId=version,
        BypassGovernanceRetention=bypass,
    )
    assert s3.get_object(Bucket=s3store.bucket, Key=key, VersionId=version)["ContentLength"] > 0


def test_seaweedfs_refuses_to_delete_a_governance_version_without_the_bypass(
    s3store: S3Store, request: pytest.FixtureRequest
) -> None:
    key, version = _locked_version(s3store, request, "governance")
    _denied(s3store._s3.delete_object, Bucket=s3store.bucket, Key=key, VersionId=version)


def test_seaweedfs_refuses_a_batch_delete_of_a_locked_version(
    s3store: S3Store, request: pytest.FixtureRequest
) -> None:
    """DeleteObjects is a second door to the same versions: it must check them too."""
    key, version = _locked_version(s3store, request, "compliance")
    s3 = s3store._s3
    answer = s3.delete_objects(
        Bucket=s3store.bucket,
        Delete={"Objects": [{"Key": key, "VersionId": version}]},
        BypassGovernanceRetention=True,
    )
    assert [e["Code"] for e in answer.get("Errors", [])] == ["AccessDenied"]
    assert answer.get("Deleted", []) == []
    assert s3.get_object(Bucket=s3store.bucket, Key=key, VersionId=version)["ContentLength"] > 0


@pytest.mark.parametrize("bypass", [False, True])
def test_seaweedfs_refuses_to_shorten_or_weaken_a_compliance_retention(
    s3store: S3Store, request: pytest.FixtureRequest, bypass: bool
) -> None:
    key, version = _locked_version(s3store, request, "compliance")
    s3 = s3store._s3
    where = {"Bucket": s3store.bucket, "Key": key, "VersionId": version}
    before = s3.get_object_retention(**where)["Retention"]
    shorter = {"Mode": "COMPLIANCE", "RetainUntilDate": datetime.now(UTC) + timedelta(hours=1)}
    weaker = {"Mode": "GOVERNANCE", "RetainUntilDate": before["RetainUntilDate"] + DAY}
    for retention in (shorter, weaker):
        _denied(
            s3.put_object_retention,
            **where,
            Retention=retention,
            BypassGovernanceRetention=bypass,
        )
    assert s3.get_object_retention(**where)["Retention"] == before


def test_seaweedfs_refuses_to_delete_a_held_version_with_the_bypass(
    s3store: S3Store, request: pytest.FixtureRequest
) -> None:
    data, sha = _blob(request)
    s3store.put(sha, io.BytesIO(data))
    s3store.legal_hold(sha, True)
    _denied(
        s3store._s3.delete_object,
        Bucket=s3store.bucket,
        Key=S3Store.key_of(sha),
        VersionId=_version(s3store, sha),
        BypassGovernanceRetention=True,
    )


def test_seaweedfs_keeps_a_locked_version_when_its_key_is_written_again(
    s3store: S3Store, request: pytest.FixtureRequest
) -> None:
    """An overwrite by another client makes a new version; the evidence version stays."""
    key, version = _locked_version(s3store, request, "compliance")
    s3 = s3store._s3
    original = s3.get_object(Bucket=s3store.bucket, Key=key, VersionId=version)["Body"].read()
    s3.put_object(Bucket=s3store.bucket, Key=key, Body=b"something else")
    kept = s3.get_object(Bucket=s3store.bucket, Key=key, VersionId=version)["Body"].read()
    assert kept == original
