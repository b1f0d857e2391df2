"""The recording journal: an append-only, fsync'ed log written as a recording goes.

A manifest is only written when a recording stops; a power cut before that
would leave segments nobody can vouch for. So each recording keeps
``journal.jsonl``: its head (who, what, why) at the start, a ``sync`` record
each time the open segment has been fsync'ed (file, bytes, frames up to
there), each closed segment with its sha256, markers and gaps as they happen,
and the stop. Recovery rebuilds the manifest from it and cuts the open segment
back to its last synced size, which is a whole number of complete packets.
The journal stays beside the manifest as the recording's audit trail.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hal.storage import Storage

JOURNAL = "journal.jsonl"


class Journal:
    def __init__(self, storage: Storage, directory: str) -> None:
        self._file = storage.open_append(f"{directory}/{JOURNAL}")

    def append(self, kind: str, payload: Any) -> None:
        """One record, durable before this returns."""
        self._file.write((json.dumps({kind: payload}) + "\n").encode())
        self._file.sync()

    def close(self) -> None:
        self._file.close()


def read_journal(path: Path) -> list[tuple[str, Any]]:
    """The records of a journal, up to the first torn or malformed line."""
    records: list[tuple[str, Any]] = []
    try:
        data = path.read_bytes()
    except OSError:
        return records
    for line in data.split(b"\n"):
        try:
            obj = json.loads(line)
        except ValueError:
            break  # a torn last line (power cut mid-write) ends the journal
        if not isinstance(obj, dict) or len(obj) != 1:
            break
        records.append(next(iter(obj.items())))
    return records
