"""``bodycam verify [--key PUB] [--json] PATH...``: every check, and how it is said.

Each recording is checked on its own (hashes, decoding, continuity,
signatures); each storage directory given (or holding two or more of the
recordings given) is also checked as a whole: the chain across its
recordings and its audit log, reported as lines of their own. One human line
per finding; ``--json`` says the same as one object.

Which key: ``--key`` is trusted. Without it, the ``*.pub.pem`` beside the
recordings is used, and the output says, once, that it was not independently
trusted (it sits on the same card as the evidence).

On a terminal, a :class:`Progress` line on stderr says which recording and
segment is being checked (a long recording takes minutes); it is erased
before each result line, so what stays on the screen is the same as in a log.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from camera.errors import InputError
from camera.evidence.verify import Report, SegmentProgress, verify_recording
from camera.evidence.verify.storage import StorageReport, verify_storage
from camera.evidence.verify.trust import KeySet, given_keys, keys_beside, untrusted_note
from camera.paths import MISSING, find_recordings, shown


def storages_to_check(paths: Sequence[str], recordings: list[Path]) -> list[Path]:
    """Storage directories given as PATHs, and parents of two or more recordings given."""
    out: list[Path] = []
    for given in paths:
        path = shown(Path(given))
        if any(r.parent == path for r in recordings) and path not in out:
            out.append(path)
    parents: dict[Path, int] = {}
    for r in recordings:
        parents[r.parent] = parents.get(r.parent, 0) + 1
    out += [p for p, n in parents.items() if n >= 2 and p not in out]
    return out


def _storage_recordings(storage: Path) -> list[Path]:
    """All of a storage's recordings: the chain and the log are about the whole card."""
    return [r for r in find_recordings([storage]).recordings if r.parent == storage]


def _print_findings(problems: list[str], notes: list[str], out: TextIO) -> None:
    for problem in problems:
        print(f"      - {problem}", file=out)
    for note in notes:
        print(f"      note: {note}", file=out)


class Progress:
    """``verifying recording i/n, segment j/m`` on one terminal line, rewritten in place.

    Only for a terminal: the caller decides (stderr is a tty, no ``--json``).
    A terminal that goes away ends the progress, never the verification.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream: TextIO | None = stream
        self._shown = False

    def recording(self, i: int, n: int) -> SegmentProgress:
        """Recording i of n begins; the callback it returns follows its segments."""
        self._show(f"verifying recording {i}/{n}")
        return lambda j, m: self._show(f"verifying recording {i}/{n}, segment {j}/{m}")

    def clear(self) -> None:
        """Erase the line, before a result is printed (or at the end)."""
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

    def _show(self, text: str) -> None:
        self._shown = True
        self._write(f"\r{text}\x1b[K")  # erase what a longer line before left

    def _write(self, text: str) -> None:
        if self._stream is None:
            return
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # closed terminal or stream: stop showing progress
            self._stream = None


def run_verify(
    paths: Sequence[str],
    keys: Sequence[str] | None,
    as_json: bool,
    progress: Progress | None = None,
) -> int:
    """The command; returns its exit code (bad input raises InputError: exit 2)."""
    given = given_keys(list(keys)) if keys else None
    found = find_recordings(paths)
    if not found.recordings and not found.offloaded:
        if not as_json:
            for path, why in found.skipped:
                print(f"SKIP  {path}: {why}", file=sys.stderr)
        raise InputError(
            f"{' '.join(paths)}: no recordings found (expected a recording directory or a "
            "storage directory holding them)"
        )
    if not as_json:
        for path, why in found.skipped:
            print(f"SKIP  {path}: {why}")
    beside: dict[Path, KeySet] = {}

    def keys_for(directory: Path) -> KeySet:
        if given is not None:
            return given
        if directory not in beside:
            beside[directory] = keys_beside(directory)
        return beside[directory]

    reports: list[Report] = []
    for i, d in enumerate(found.recordings, 1):
        step = progress.recording(i, len(found.recordings)) if progress else None
        report = verify_recording(d, keys_for(d.parent), step)
        if progress:
            progress.clear()
        reports.append(report)
        if not as_json:
            print(f"OK    {d}  ({report.frames} frames)" if report.ok else f"FAIL  {d}")
            if report.audio is not None:
                print(f"      {report.audio.line()}")
            _print_findings(report.problems, report.notes, sys.stdout)
    checks: list[StorageReport] = []
    for storage in storages_to_check(paths, found.recordings) + found.offloaded:
        checks += verify_storage(storage, _storage_recordings(storage), keys_for(storage))
    notes = _general_notes([given] if given else list(beside.values()))
    failed = sum(not r.ok for r in reports) + sum(not c.ok for c in checks)
    if as_json:
        print(json.dumps(_as_json(reports, checks, notes, found.skipped, given, failed)))
    else:
        _print_checks(checks, notes)
        if len(reports) > 1 or found.skipped or checks:
            print(_summary(reports, checks, len(found.skipped)))
    if failed:
        return 1
    # Every recording found is fine, but a path that was asked for does not exist:
    # a typo in a CI job must not read as "verified".
    if absent := [str(p) for p, why in found.skipped if why == MISSING]:
        raise InputError(f"{', '.join(absent)}: {MISSING}")
    return 0


def _general_notes(sets: list[KeySet]) -> list[str]:
    """Said once for the whole run: which keys were relied on, and which could not be read."""
    notes: list[str] = []
    if note := untrusted_note(sets):
        notes.append(note)
    notes += sorted({line for s in sets for line in s.unreadable})
    return notes


def _print_checks(checks: list[StorageReport], notes: list[str]) -> None:
    for c in checks:
        if c.problems or c.notes:
            print(f"{'FAIL' if c.problems else 'NOTE'}  {c.path} ({c.check})")
            _print_findings(c.problems, c.notes, sys.stdout)
    for note in notes:
        print(f"note: {note}")


def _summary(reports: list[Report], checks: list[StorageReport], skipped: int) -> str:
    ok = sum(r.ok for r in reports)
    line = f"{ok} of {len(reports)} recordings verified"
    if skipped:
        line += f", {skipped} other paths skipped"
    by_storage: dict[Path, list[str]] = {}
    for c in checks:
        by_storage.setdefault(c.path, []).append(f"{c.check} {'intact' if c.ok else 'FAILED'}")
    for path, states in by_storage.items():
        line += f"; {path}: {', '.join(states)}"
    return line


def _as_json(
    reports: list[Report],
    checks: list[StorageReport],
    notes: list[str],
    skipped: list[tuple[Path, str]],
    given: KeySet | None,
    failed: int,
) -> dict[str, Any]:
    return {
        "recordings": [
            {
                "path": str(r.path),
                "ok": r.ok,
                "frames": r.frames,
                "problems": r.problems,
                "notes": r.notes,
                "key_id": r.key_id,
                "test_key": r.test_key,
                "audio": None if r.audio is None else r.audio.to_json(),
            }
            for r in reports
        ],
        "storage": [
            {
                "path": str(c.path),
                "check": c.check,
                "ok": c.ok,
                "problems": c.problems,
                "notes": c.notes,
            }
            for c in checks
        ],
        "key_trusted": given is not None,
        "notes": notes,
        "skipped": [{"path": str(p), "reason": why} for p, why in skipped],
        "ok": failed == 0,
    }
