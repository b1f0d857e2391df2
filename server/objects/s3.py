"""The scale-out object store: an S3 bucket with Object Lock (AWS S3, Ceph RGW, SeaweedFS).

Why S3 Object Lock: the storage itself then refuses to delete or overwrite
evidence before its retention ends, whoever asks (COMPLIANCE: not even the
bucket's owner). The embedded CasStore can only promise that for this
application; an agency that needs WORM storage points the server here.

How the interface maps onto S3 (issue 16's contract):

- objects are ``objects/<sha256>`` in a versioned bucket created with Object
  Lock on (created if absent; a bucket without Object Lock is refused);
- ``put`` hashes the stream locally first (a body that is not what it claims
  never leaves this process), then sends it with ``ChecksumSHA256`` so S3
  itself refuses bytes damaged on the way, and ``If-None-Match: *`` so a
  concurrent upload of the same object cannot make a second version;
- ``retain`` is PutObjectRetention on every version, read first so it never
  shortens a date or weakens a mode; ``legal_hold`` is PutObjectLegalHold;
- ``delete`` removes each VERSION (a plain DELETE only hides an object behind
  a delete marker); S3's AccessDenied is :class:`Locked`.

Reads find the newest real version even when a delete marker hides it: a
plain DELETE by someone else does not make evidence vanish from the server's
view while its bytes are still held.

SeaweedFS has no "full" error of its own (no writable volumes is a 500
InternalError, which boto3 retries and then raises as is); a 507, or the
codes that other servers use for a full store or an exhausted quota, are
:class:`StoreFull`.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, cast
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from server.objects import HashMismatch, Locked, Mode, ObjectStore, StoreFull

# One wording of "not the bytes named" for both stores (the 400 the camera sees).
from server.objects.cas import _check_sha, _verdict

__all__ = ["KEY_PREFIX", "S3Store"]

KEY_PREFIX = "objects/"
#: S3's bucket naming rules, the common subset every server accepts.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_CHUNK = 1 << 20
#: A stream that cannot be rewound is copied to a temp file first; small ones stay in memory.
_SPOOL_IN_MEMORY = 8 << 20
_MODES = ("governance", "compliance")
_NOT_FOUND = {"404", "NoSuchKey", "NoSuchVersion", "NotFound"}
_ALREADY_THERE = {"PreconditionFailed", "ConditionalRequestConflict", "412"}
_CORRUPT = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"}
_FULL = {"InsufficientStorage", "XMinioStorageFull", "StorageFull", "QuotaExceeded"}
_REFUSED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
_NO_LOCK_CONFIG = {"ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _message(exc: ClientError) -> str:
    err = exc.response.get("Error", {})
    return f"{err.get('Code', '?')}: {err.get('Message', '').strip() or 'no message'}"


def _ceil_second(when: datetime) -> datetime:
    """S3 keeps retention dates to the second: round up, so a date never comes out earlier."""
    if when.tzinfo is None:
        raise ValueError(f"expected an aware datetime (UTC), got {when!r}")
    when = when.astimezone(UTC)
    whole = when.replace(microsecond=0)
    return whole if whole == when else whole + timedelta(seconds=1)


@dataclass(frozen=True)
class _Lock:
    """What protects one version: its retention (mode, date) and legal hold."""

    mode: Mode | None
    until: datetime | None
    hold: bool

    def forbids_delete(self, now: datetime, bypass_governance: bool) -> str | None:
        if self.hold:
            return "is under a legal hold"
        if self.until is not None and self.until > now:
            if self.mode == "compliance":
                return f"is retained (compliance) until {self.until.isoformat()}"
            if not bypass_governance:
                return (
                    f"is retained (governance) until {self.until.isoformat()}; "
                    "deleting it needs bypass_governance"
                )
        return None


class S3Store(ObjectStore):
    """Objects under ``objects/<sha256>`` in an Object Lock bucket."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        if not _BUCKET.fullmatch(bucket):
            raise ValueError(
                f"S3 bucket {bucket!r}: expected 3-63 lowercase letters, digits, '.' or '-'"
            )
        self.bucket = bucket
        self.endpoint = endpoint
        self._where = f"s3://{bucket}" + (f" at {endpoint}" if endpoint else "")
        self._lock = threading.Lock()  # one retention change at a time: read, then write
        try:
            # A session of its own: credentials are read from the environment now, not
            # whatever boto3's shared default session cached earlier in the process.
            self._s3: Any = client or boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint,
                region_name=region,
                config=Config(
                    # Path style: a bucket name is no DNS name on a server at 127.0.0.1.
                    s3={"addressing_style": "path" if endpoint else "auto"},
                    retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=5,
                    read_timeout=60,
                    max_pool_connections=16,
                ),
            )
            self._ensure_bucket(region)
        except NoCredentialsError:
            raise ValueError(
                f"objects store {self._where}: no S3 credentials: "
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from None
        except EndpointConnectionError:
            raise ValueError(
                f"objects store {self._where}: cannot connect to the S3 endpoint"
            ) from None
        except ClientError as exc:
            if _code(exc) in _REFUSED or _status(exc) == 403:
                raise ValueError(
                    f"objects store {self._where}: S3 refused access ({_message(exc)}): "
                    "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's policy"
                ) from None
            raise ValueError(
                f"objects store {self._where}: cannot use the bucket ({_message(exc)})"
            ) from None
        except BotoCoreError as exc:
            raise ValueError(f"objects store {self._where}: {' '.join(str(exc).split())}") from None

    @classmethod
    def from_url(cls, url: str) -> S3Store:
        """``s3://BUCKET?endpoint=http://HOST:PORT&region=REGION`` (both optional);
        credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).

        ValueError, one line naming the store, for whatever keeps the store from
        being used as configured: the URL, missing or refused credentials, an
        endpoint that does not answer, a bucket without Object Lock.
        """
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"objects URL {url!r}: expected s3://BUCKET?endpoint=...&region=...")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - {"endpoint", "region"})
        if unknown:
            raise ValueError(f"objects URL {url!r}: unknown parameter {unknown[0]!r}")
        endpoint = query["endpoint"][-1] if "endpoint" in query else None
        if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
            raise ValueError(
                f"objects URL {url!r}: endpoint: expected http://HOST:PORT or https://HOST, "
                f"got {endpoint!r}"
            )
        region = query["region"][-1] if "region" in query else None
        return cls(unquote(parts.netloc), endpoint=endpoint, region=region or None)

    # -- the bucket ------------------------------------------------------------
    def _ensure_bucket(self, region: str | None) -> None:
        """Create the bucket with Object Lock if it is absent; refuse one without it."""
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
                raise
            args: dict[str, Any] = {"Bucket": self.bucket, "ObjectLockEnabledForBucket": True}
            if region and region != "us-east-1":
                args["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                self._s3.create_bucket(**args)
            except ClientError as again:
                if _code(again) != "BucketAlreadyOwnedByYou":  # created meanwhile
                    raise
        try:
            config = self._s3.get_object_lock_configuration(Bucket=self.bucket)
            enabled = config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        except ClientError as exc:
            if _code(exc) not in _NO_LOCK_CONFIG:
                raise
            enabled = None
        if enabled != "Enabled":
            raise ValueError(
                f"objects store {self._where}: the bucket has no Object Lock, so evidence in it "
                "could be deleted or overwritten: use a bucket created with Object Lock enabled"
            )
        status = self._s3.get_bucket_versioning(Bucket=self.bucket).get("Status")
        if status != "Enabled":  # Object Lock implies it; a server that disagrees is refused
            raise ValueError(
                f"objects store {self._where}: versioning is {status or 'off'}, not Enabled"
            )

    # -- finding versions ------------------------------------------------------
    @staticmethod
    def key_of(sha256: str) -> str:
        return KEY_PREFIX + _check_sha(sha256)

    def _listing(self, key: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every version of ``key`` (newest first) and its delete markers."""
        versions: list[dict[str, Any]] = []
        markers: list[dict[str, Any]] = []
        pages = self._s3.get_paginator("list_object_versions")
        for page in pages.paginate(Bucket=self.bucket, Prefix=key):
            versions += [v for v in page.get("Versions", []) if v["Key"] == key]
            markers += [m for m in page.get("DeleteMarkers", []) if m["Key"] == key]
        versions.sort(key=lambda v: v["LastModified"], reverse=True)
        return versions, markers

    def _current(self, sha256: str) -> tuple[str | None, int] | None:
        """(version id, size) of the newest real version; None if there is none.

        HEAD answers for the usual case in one request; only when it finds
        nothing are the versions listed (a delete marker may hide one).
        """
        key = self.key_of(sha256)
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=key)
            return head.get("VersionId"), int(head["ContentLength"])
        except ClientError as exc:
            if _code(exc) not in _NOT_FOUND:
                raise
        versions, _ = self._listing(key)
        if not versions:
            return None
        return versions[0].get("VersionId"), int(versions[0]["Size"])

    def _versions_or_raise(self, sha256: str) -> list[str | None]:
        versions, _ = self._listing(self.key_of(sha256))
        if not versions:
            raise FileNotFoundError(f"no object {sha256} in {self._where}")
        return [v.get("VersionId") for v in versions]

    def _version_args(self, sha256: str, version: str | None) -> dict[str, Any]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key_of(sha256)}
        if version is not None and version != "null":
            args["VersionId"] = version
        return args

    def _lock_of(self, sha256: str, version: str | None) -> _Lock:
        head = self._s3.head_object(**self._version_args(sha256, version))
        mode = head.get("ObjectLockMode")
        until = head.get("ObjectLockRetainUntilDate")
        return _Lock(
            mode=cast(Mode, mode.lower()) if mode else None,
            until=until.astimezone(UTC) if until else None,
            hold=head.get("ObjectLockLegalHoldStatus") == "ON",
        )

    # -- reading ---------------------------------------------------------------
    def has(self, sha256: str) -> bool:
        return self._current(sha256) is not None

    def size(self, sha256: str) -> int:
        found = self._current(sha256)
        if found is None:
            raise FileNotFoundError(f"no object {sha256} in {self._where}")
        return found[1]

    def open(self, sha256: str) -> BinaryIO:
        """The bytes as a stream, hashed as they are read: at the end they must be
        the sha256 they are named by (OSError EIO otherwise), whatever S3 answered."""
        found = self._current(sha256)
        if found is None:
            raise FileNotFoundError(f"no object {sha256} in {self._where}")
        try:
            got = self._s3.get_object(**self._version_args(sha256, found[0]))
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:  # deleted between the two requests
                raise FileNotFoundError(f"no object {sha256} in {self._where}") from None
            raise
        checked = _CheckedBody(got["Body"], sha256, self._where)
        return cast(BinaryIO, io.BufferedReader(checked, buffer_size=_CHUNK))

    def free_bytes(self) -> int | None:
        return None  # S3 does not say

    # -- writing ---------------------------------------------------------------
    def put(self, sha256: str, source: BinaryIO, size: int | None = None) -> bool:
        sha = _check_sha(sha256)
        if self.has(sha):
            digest, count = _hash_stream(source, size)
            _verdict(sha, digest, count, size)
            return False
        with _rewindable(source, size) as (body, digest, count):
            _verdict(sha, digest, count, size)
            try:
                self._s3.put_object(
                    Bucket=self.bucket,
                    Key=self.key_of(sha),
                    Body=body,
                    ContentLength=count,
                    ContentType="application/octet-stream",
                    ChecksumSHA256=base64.b64encode(bytes.fromhex(sha)).decode("ascii"),
                    IfNoneMatch="*",  # never a second version, even from a concurrent upload
                )
            except ClientError as exc:
                code = _code(exc)
                if code in _ALREADY_THERE or _status(exc) == 412:
                    return False  # stored meanwhile; these bytes were checked above
                if code in _CORRUPT:
                    raise HashMismatch(
                        f"S3 refused the body of {sha} as damaged in transit ({_message(exc)})"
                    ) from None
                if code in _FULL or _status(exc) == 507:
                    raise StoreFull(
                        f"objects store {self._where} is full: {_message(exc)}"
                    ) from None
                raise
        return True

    # -- retention -------------------------------------------------------------
    def retain(self, sha256: str, until: datetime, mode: Mode) -> None:
        """Lock every version until ``until`` in ``mode``; a later date or COMPLIANCE
        already held stays (a retention is only ever extended or strengthened).

        A date already past is satisfied by no lock at all, and S3 refuses one,
        so it changes nothing.
        """
        if mode not in _MODES:
            raise ValueError(f"expected a retention mode {' or '.join(_MODES)}, got {mode!r}")
        wanted = _ceil_second(until)
        with self._lock:
            for version in self._versions_or_raise(sha256):
                held = self._lock_of(sha256, version)
                if held.until is not None and held.until <= datetime.now(UTC):
                    held = _Lock(None, None, held.hold)  # run out: it protects nothing any more
                new_mode: Mode = "compliance" if "compliance" in (mode, held.mode) else "governance"
                new_until = max(wanted, held.until) if held.until else wanted
                if (new_mode, new_until) == (held.mode, held.until):
                    continue
                now = datetime.now(UTC)
                if new_until <= now:
                    continue
                # GOVERNANCE -> COMPLIANCE is a change S3 lets only a bypass make; it
                # strengthens the lock and the date was not shortened (max above).
                bypass = held.mode == "governance" and new_mode == "compliance"
                self._s3.put_object_retention(
                    **self._version_args(sha256, version),
                    Retention={"Mode": new_mode.upper(), "RetainUntilDate": new_until},
                    BypassGovernanceRetention=bypass,
                )

    def legal_hold(self, sha256: str, on: bool) -> None:
        with self._lock:
            for version in self._versions_or_raise(sha256):
                self._s3.put_object_legal_hold(
                    **self._version_args(sha256, version),
                    LegalHold={"Status": "ON" if on else "OFF"},
                )

    def delete(self, sha256: str, *, bypass_governance: bool = False) -> None:
        """Delete every version and delete marker of the object.

        Checked first, so a refusal deletes nothing; S3 checks again and has the
        last word (its AccessDenied is Locked too).
        """
        key = self.key_of(sha256)
        with self._lock:
            versions, markers = self._listing(key)
            if not versions:
                raise FileNotFoundError(f"no object {sha256} in {self._where}")
            now = datetime.now(UTC)
            for v in versions:
                reason = self._lock_of(sha256, v.get("VersionId")).forbids_delete(
                    now, bypass_governance
                )
                if reason:
                    raise Locked(f"object {sha256} {reason}")
            for v in versions + markers:
                try:
                    self._s3.delete_object(
                        **self._version_args(sha256, v.get("VersionId")),
                        BypassGovernanceRetention=bypass_governance,
                    )
                except ClientError as exc:
                    if _code(exc) == "AccessDenied":
                        raise Locked(
                            f"object {sha256}: {self._where} refused the deletion ({_message(exc)})"
                        ) from None
                    raise

    def close(self) -> None:
        with suppress(AttributeError, BotoCoreError):
            self._s3.close()


class _CheckedBody(io.RawIOBase):
    """An S3 response body that checks, at its end, that it was the bytes named.

    Not botocore's own check: ``with body:`` hands out the raw urllib3 stream
    and skips it, and a server need not store a checksum at all.
    """

    def __init__(self, body: Any, sha256: str, where: str) -> None:
        self._body = body
        self._sha256 = sha256
        self._where = where
        self._hash = hashlib.sha256()
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = int(self._body.readinto(buffer))  # botocore checks Content-Length at the end
        if count:
            self._hash.update(memoryview(buffer)[:count])
        elif len(buffer) and not self._checked:
            self._checked = True
            digest = self._hash.hexdigest()
            if digest != self._sha256:
                raise OSError(
                    errno.EIO,
                    f"object {self._sha256} read from {self._where} has sha256 {digest}: "
                    "not the bytes named",
                )
        return count

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _hash_stream(source: BinaryIO, size: int | None) -> tuple[str, int]:
    h = hashlib.sha256()
    count = 0
    while chunk := source.read(_CHUNK):
        h.update(chunk)
        count += len(chunk)
        if size is not None and count > size:
            break  # more than declared: _verdict says so
    return h.hexdigest(), count


@contextmanager
def _rewindable(source: BinaryIO, size: int | None) -> Iterator[tuple[BinaryIO, str, int]]:
    """The stream as a body boto3 can send (and resend on a retry), with its sha256 and length.

    A file at its start is used as it is (read once here, and again by boto3
    to sign and to send: never all in memory); anything else is copied to a
    temp file, in memory up to 8 MB, while it is hashed.
    """
    if _at_start(source):
        digest, count = _hash_stream(source, size)
        source.seek(0)
        yield source, digest, count
        return
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        h = hashlib.sha256()
        count = 0
        while chunk := source.read(_CHUNK):
            h.update(chunk)
            count += len(chunk)
            if size is not None and count > size:
                break
            spool.write(chunk)
        spool.seek(0)
        yield cast(BinaryIO, spool), h.hexdigest(), count


def _at_start(source: BinaryIO) -> bool:
    """Seekable and at offset 0: botocore rewinds a body to 0 to retry."""
    try:
        return bool(source.seekable()) and source.tell() == 0
    except (AttributeError, OSError, ValueError):
        return False
