"""The audit log: ``<storage>/audit.jsonl``, one hash-chained line per device event.

Why it is built this way (SPEC 12):

- Append-only and fsync'ed per entry: what the device did (boot, trigger,
  stop, recovery, errors, key provisioning) is on the card before the firmware
  goes on, so a power cut loses at most the entry being written.
- Each line carries ``prev``, the sha256 of the previous line's bytes, and a
  ``seq``: an entry edited, removed or moved breaks the chain at that point,
  and verify names the line.
- A ``checkpoint`` entry is signed by the device key at every recording stop
  and at shutdown. Its signature covers its own ``seq`` and ``prev``, so the
  whole chain before it: editing an old entry and recomputing every hash after
  it still fails at the next checkpoint. Entries after the last checkpoint are
  the tail of a run that did not shut down; verify reports them as a note.
- A power cut mid-append leaves a torn line. Nothing is deleted or rewritten:
  the next writer ends the torn line with a newline and appends a
  ``torn_entry`` record naming its length, chained both to the torn bytes
  (``prev``) and to the last whole entry before them (``after``), so verify
  can tell a power cut from tampering and the chain stays unbroken.
- Lines are compact JSON in a fixed key order (readable, and the same inputs
  give the same bytes); the checkpoint signs the canonical JSON of its entry.
- No clock is read here: device time and UTC come in as arguments.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from cryptography.hazmat.primitives.asymmetric import ec

from camera.evidence.canonical import canonical, decode_signature
from camera.evidence.keys import DeviceKey, key_id_of, verify_digest
from hal.storage import DurableFile, Storage
from hal.worker import Worker

_log = logging.getLogger(__name__)

__all__ = [
    "AUDIT",
    "CHECKPOINT",
    "GENESIS",
    "TORN",
    "AuditLog",
    "AuditReport",
    "format_utc",
    "line_hash",
    "read_audit",
    "verify_audit",
]

AUDIT = "audit.jsonl"
CHECKPOINT = "checkpoint"
TORN = "torn_entry"
#: ``prev`` of the first entry: there is no line before it.
GENESIS = "0" * 64
#: Fields every entry has, in the order they are written.
HEAD = ("seq", "event", "time", "utc", "prev")
_SIGNED_BY_APPEND = {CHECKPOINT, TORN}  # written only by this module
_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 16


def line_hash(line: bytes) -> str:
    """What the next entry's ``prev`` holds: sha256 of a line's bytes without its newline."""
    return hashlib.sha256(line).hexdigest()


def format_utc(utc: datetime | str) -> str:
    """``YYYY-mm-ddTHH:MM:SS.fffZ`` from an aware datetime (or such a string, checked)."""
    if isinstance(utc, str):
        if not _UTC.fullmatch(utc):
            raise ValueError(f"expected UTC as YYYY-mm-ddTHH:MM:SS.fffZ, got {utc!r}")
        return utc
    if utc.tzinfo is None:
        raise ValueError("expected an aware datetime for UTC, got a naive one")
    utc = utc.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _dumps(entry: dict[str, Any]) -> bytes:
    """One line: compact JSON in insertion order (HEAD first), UTF-8, no NaN."""
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _checkpoint_digest(entry: dict[str, Any]) -> bytes:
    """What a checkpoint's signature covers: sha256 of its canonical JSON without ``signature``."""
    body = {k: v for k, v in entry.items() if k != "signature"}
    return hashlib.sha256(canonical(body)).digest()


def _parse(line: bytes) -> tuple[dict[str, Any] | None, str]:
    """(entry, "") for a well-formed entry line, else (None, why it is not one)."""
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):
        return None, "not JSON"
    if not isinstance(entry, dict):
        return None, "not a JSON object"
    seq, event, prev = entry.get("seq"), entry.get("event"), entry.get("prev")
    if type(seq) is not int or seq < 0:
        return None, "no seq (a whole number from 0)"
    if not isinstance(event, str) or not event:
        return None, "no event name"
    if not isinstance(prev, str) or not _HEX64.fullmatch(prev):
        return None, "no prev (64 hex digits)"
    return entry, ""


def _lines_backwards(f: BinaryIO, size: int) -> Iterator[bytes]:
    """The file's newline-separated pieces, last first (the piece after a final newline is b"")."""
    pos, rest = size, b""
    while pos > 0:
        step = min(_CHUNK, pos)
        pos -= step
        f.seek(pos)
        parts = (f.read(step) + rest).split(b"\n")
        rest = parts[0]
        yield from reversed(parts[1:])
    yield rest


@dataclass(frozen=True)
class _Tail:
    """Where the next entry goes: its seq and prev, and what must be written first."""

    seq: int = 0
    prev: str = GENESIS
    newline: bool = False  # the last line has no newline yet
    torn: dict[str, Any] | None = None  # fields of the torn_entry record still owed


def _scan(path: Path) -> _Tail:
    """Read the end of an existing log (only as far back as its last whole entry)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, read backwards in chunks
    except FileNotFoundError:
        return _Tail()
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return _Tail()
        f.seek(size - 1)
        terminated = f.read(1) == b"\n"
        pieces = _lines_backwards(f, size)
        if terminated:
            next(pieces)  # the empty piece after the final newline
        torn: bytes | None = None
        for line in pieces:
            entry, _ = _parse(line)
            if entry is not None:
                break
            if torn is None:
                torn = line
        else:
            entry, line = None, b""
    last_seq = entry["seq"] if entry is not None else -1
    last_hash = line_hash(line) if entry is not None else GENESIS
    if torn is None:  # the last line is a whole entry (perhaps missing only its newline)
        return _Tail(seq=last_seq + 1, prev=last_hash, newline=not terminated)
    record = {"bytes": len(torn), "after": last_hash}
    return _Tail(seq=last_seq + 1, prev=line_hash(torn), newline=not terminated, torn=record)


class AuditLog:
    """Appends entries to ``<storage>/audit.jsonl``; one write and one fsync per entry.

    ``storage`` is a :class:`~hal.storage.Storage` (its ``open_append``, so its
    fault model and space accounting apply) or a plain directory. Methods are
    serialised by a lock, so any thread may call them.
    """

    def __init__(self, storage: Storage | str | os.PathLike[str], key: DeviceKey) -> None:
        self._storage = storage if isinstance(storage, Storage) else None
        if self._storage is not None:
            self._storage.makedirs("")
            self.path = self._storage.path(AUDIT)
        else:
            root = Path(storage)  # type: ignore[arg-type]
            root.mkdir(parents=True, exist_ok=True)
            self.path = root / AUDIT
        self._key = key
        self._lock = threading.Lock()
        self._file: DurableFile | None = None
        self._tail = _scan(self.path)
        self._stale = False  # a write failed: read the end of the file again first

    @property
    def next_seq(self) -> int:
        with self._lock:
            return self._current().seq

    @property
    def torn_pending(self) -> bool:
        """A torn last line was found; its torn_entry goes out with the next entry."""
        with self._lock:
            return self._current().torn is not None

    def append(
        self, event: str, time: float | None, utc: datetime | str, **fields: Any
    ) -> dict[str, Any]:
        """Write one entry, durable before this returns; the entry as written."""
        if event in _SIGNED_BY_APPEND:
            raise ValueError(f"{event!r} entries are written by the audit log itself")
        return self._write(event, time, utc, fields, sign=False)

    def checkpoint(self, time: float | None, utc: datetime | str, reason: str) -> dict[str, Any]:
        """A signed entry vouching for every line before it (recording stop, shutdown)."""
        fields = {"reason": reason, "key_id": self._key.key_id, "test_key": self._key.test}
        return self._write(CHECKPOINT, time, utc, fields, sign=True)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside ----------------------------------------------------------------
    def _current(self) -> _Tail:
        if self._stale:
            self._tail, self._stale = _scan(self.path), False
        return self._tail

    def _entry(
        self, seq: int, event: str, time: float | None, utc: str, prev: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        clash = sorted(set(fields) & {*HEAD, "signature"})
        if clash:
            raise ValueError(f"audit entry fields {clash} are reserved")
        stamp = None if time is None else round(float(time), 6)
        return dict(zip(HEAD, (seq, event, stamp, utc, prev), strict=True)) | fields

    def _write(
        self,
        event: str,
        time: float | None,
        utc: datetime | str,
        fields: dict[str, Any],
        sign: bool,
    ) -> dict[str, Any]:
        if not isinstance(event, str) or not event:
            raise ValueError(f"expected an event name, got {event!r}")
        stamp = format_utc(utc)
        with self._lock:
            tail = self._current()
            out = b"\n" if tail.newline else b""
            seq, prev = tail.seq, tail.prev
            if tail.torn is not None:
                torn = _dumps(self._entry(seq, TORN, time, stamp, prev, dict(tail.torn)))
                out += torn + b"\n"
                seq, prev = seq + 1, line_hash(torn)
            entry = self._entry(seq, event, time, stamp, prev, fields)
            if sign:
                signature = self._key.sign_digest(_checkpoint_digest(entry))
                entry["signature"] = base64.b64encode(signature).decode("ascii")
            line = _dumps(entry)
            try:
                f = self._open()
                f.write(out + line + b"\n")
                f.sync()
            except BaseException:
                # Part of it may be on the card: read the end again before the next entry.
                self._stale = True
                if self._file is not None:
                    self._file.close()
                    self._file = None
                raise
            self._tail = _Tail(seq=seq + 1, prev=line_hash(line))
            return entry

    def _open(self) -> DurableFile:
        if self._file is not None:
            return self._file
        if self._storage is not None:
            f = self._storage.open_append(AUDIT)
        else:
            existed = self.path.exists()
            f = DurableFile(self.path, append=True)
            if not existed:
                fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        self._file = f
        return f


# -- reading and checking ------------------------------------------------------------
class AuditReport(NamedTuple):
    """``problems`` fail verification; ``notes`` are worth saying but prove no tampering."""

    problems: list[str]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def read_audit(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every well-formed entry, in file order (torn or damaged lines left out).

    For cross-checks (e.g. ``stop`` entries against the recordings on disk);
    whether the log is intact is :func:`verify_audit`'s question. Raises
    OSError if the file cannot be read.
    """
    data = Path(path).read_bytes()
    entries = (_parse(line)[0] for line in data.split(b"\n") if line)
    return [e for e in entries if e is not None]


def _check_checkpoint(
    entry: dict[str, Any], keys: dict[str, ec.EllipticCurvePublicKey]
) -> str | None:
    """None if a trusted key signed this checkpoint; ``keys`` maps key id to key."""
    if not isinstance(entry.get("signature"), str):
        return "no signature"
    signature = decode_signature(entry["signature"])
    if isinstance(signature, str):
        return signature
    try:
        digest = _checkpoint_digest(entry)
    except (ValueError, TypeError, RecursionError):
        return "cannot be put in canonical form (NaN or infinity in a field)"
    claimed = entry.get("key_id")
    key = keys.get(claimed) if isinstance(claimed, str) else None
    if key is None:
        shown = claimed[:16] if isinstance(claimed, str) else repr(claimed)[:16]
        trusted = ", ".join(k[:16] + "..." for k in keys)
        return f"signed by another key (key_id {shown}..., trusted: {trusted})"
    if not verify_digest(key, digest, signature):
        return "signature does not match (entry edited or signed by another key)"
    return None


class _Checker:
    """One pass over the lines, keeping what each check needs of the lines before."""

    def __init__(self, name: str, keys: dict[str, ec.EllipticCurvePublicKey]) -> None:
        self.name, self.keys = name, keys
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.expected_seq = 0
        self.prev_line: bytes | None = None  # the line just before, torn or whole
        self.good: tuple[int, bytes] | None = None  # (line number, bytes) of the last entry
        self.torn: list[tuple[int, bytes, str]] = []  # unparsable lines since that entry
        self.last_checkpoint = 0  # line number, 0 = none yet
        self.entries = 0
        self.unsigned: list[int] = []  # entry line numbers after the last checkpoint

    def line(self, n: int, line: bytes) -> None:
        entry, why = _parse(line)
        if entry is None:
            self.torn.append((n, line, why))
            self.prev_line = line
            return
        label = f"{self.name} line {n} (seq {entry['seq']})"
        self._torn_run(n, entry, label)
        self._link(n, entry, label)
        if entry["event"] == CHECKPOINT:
            if reason := _check_checkpoint(entry, self.keys):
                self.problems.append(f"{self.name} checkpoint at line {n}: {reason}")
            self.last_checkpoint, self.unsigned = n, []
        else:
            self.unsigned.append(n)
        self.entries += 1
        self.good, self.prev_line = (n, line), line

    def _torn_run(self, n: int, entry: dict[str, Any], label: str) -> None:
        """Lines that are not entries are accepted only as a power cut's torn line."""
        is_record = entry["event"] == TORN
        if not self.torn:
            if is_record:
                self.problems.append(f"{label}: torn_entry but no torn line before it")
            return
        run, self.torn = self.torn, []
        wrong = []
        if is_record:
            last_n, last = run[-1][0], run[-1][1]
            if entry.get("bytes") != len(last):
                wrong.append(
                    f"{label}: torn_entry names {entry.get('bytes')!r} bytes, "
                    f"line {last_n} has {len(last)}"
                )
            after = line_hash(self.good[1]) if self.good else GENESIS
            if entry.get("after") != after:
                before = f"line {self.good[0]}" if self.good else "the start of the log"
                wrong.append(
                    f"{label}: torn_entry's after does not match {before} (entry edited or removed)"
                )
        if is_record and not wrong:
            for tn, tl, _ in run:
                self.notes.append(
                    f"{self.name} line {tn}: torn entry ({len(tl)} bytes, a power cut "
                    f"mid-append), recorded by the torn_entry at line {n}"
                )
            return
        self.problems += wrong
        for tn, _, why in run:
            self.problems.append(
                f"{self.name} line {tn}: {why}, and no torn_entry record follows "
                "(entry edited or damaged)"
            )

    def _link(self, n: int, entry: dict[str, Any], label: str) -> None:
        seq = entry["seq"]
        if self.prev_line is None:
            if entry["prev"] != GENESIS:
                self.problems.append(
                    f"{label}: prev of the first line is not {GENESIS[:8]}... "
                    "(entries removed from the start)"
                )
        elif entry["prev"] != line_hash(self.prev_line):
            self.problems.append(
                f"{label}: prev does not match line {n - 1} (entry edited or removed)"
            )
        if seq != self.expected_seq:
            if self.entries == 0:
                what = f"first seq is {seq}, expected 0 (entries removed from the start)"
            elif seq > self.expected_seq:
                what = f"seq jumps from {self.expected_seq - 1} to {seq} (entry removed)"
            else:
                what = (
                    f"seq goes back from {self.expected_seq - 1} to {seq} "
                    "(entries reordered or repeated)"
                )
            self.problems.append(f"{self.name} line {n}: {what}")
        self.expected_seq = max(self.expected_seq, seq + 1)  # one report per move

    def end(self, total: int, terminated: bool) -> None:
        for tn, tl, _ in self.torn:  # at the very end: the writer has not come back since
            self.notes.append(
                f"{self.name} line {tn}: torn entry at the end ({len(tl)} bytes): a power "
                "cut mid-append, not yet recorded by a torn_entry"
            )
        if not terminated and not self.torn and total:
            self.notes.append(f"{self.name} line {total}: no newline at the end (power cut?)")
        if self.entries == 0:
            self.notes.append(f"{self.name}: no entries")
        elif self.unsigned:
            first, last = self.unsigned[0], self.unsigned[-1]
            after = f"after line {self.last_checkpoint}" if self.last_checkpoint else "at all"
            span = f"line {first}" if first == last else f"lines {first}-{last}"
            self.notes.append(
                f"{self.name}: no checkpoint {after}: {span} ({len(self.unsigned)} entries) "
                "not signed (the tail of a run that did not shut down, e.g. a power cut)"
            )


def verify_audit(
    path: str | os.PathLike[str],
    public_key: ec.EllipticCurvePublicKey | Iterable[ec.EllipticCurvePublicKey],
) -> AuditReport:
    """Check the chain, the sequence and every checkpoint signature; never raises on content.

    Each problem names the line (and seq) where the log stops being what the
    device wrote. Torn lines a later torn_entry accounts for, and unsigned
    entries after the last checkpoint, are notes. ``public_key`` may be
    several keys (a device re-provisioned with ``--force``: the current key and
    the ones kept as ``<device-id>.<key-id>.pub.pem``); each checkpoint must be
    signed by the one its ``key_id`` names.
    """
    name = Path(path).name or AUDIT
    try:
        data = Path(path).read_bytes()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return AuditReport([f"{name}: cannot read: {reason}"], [])
    lines = data.split(b"\n")
    terminated = data.endswith(b"\n")
    if terminated or not data:
        lines.pop()
    given = [public_key] if isinstance(public_key, ec.EllipticCurvePublicKey) else public_key
    checker = _Checker(name, {key_id_of(k): k for k in given})
    for n, line in enumerate(lines, 1):
        checker.line(n, line)
    checker.end(len(lines), terminated)
    return AuditReport(checker.problems, checker.notes)


class DeviceAudit:
    """The firmware's side of the audit log: entries dated by the device clock.

    An audit entry that cannot be written (card full, card gone) must not
    stop a recording or crash the loop: it is logged, and the log's own
    torn-line repair keeps the chain honest when writing works again.
    """

    def __init__(self, log: AuditLog, wall: Callable[[float], datetime], worker: Worker) -> None:
        self.log = log
        self.wall = wall
        self.worker = worker

    def later(self, event: str, t: float, **fields: Any) -> None:
        """An entry written by the writer, in order with the files it speaks of.

        For events on the loop: an fsync there would hold up capture. Fields
        that are None are left out.
        """
        fields = {k: v for k, v in fields.items() if v is not None}
        self.worker.submit(lambda: self.record(event, t, **fields))

    def record(self, event: str, t: float, **fields: Any) -> None:
        try:
            self.log.append(event, t, self.wall(t), **fields)
        except OSError as exc:
            _log.error("audit entry %s at %.3f not written: %s", event, t, exc)

    def checkpoint(self, t: float, reason: str) -> None:
        try:
            self.log.checkpoint(t, self.wall(t), reason)
        except OSError as exc:
            _log.error("audit checkpoint (%s) at %.3f not written: %s", reason, t, exc)

    def close(self) -> None:
        self.log.close()
