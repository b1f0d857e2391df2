"""How verify speaks: one human line per finding, never more than one, never unbounded.

Everything shown comes from a file under test (names, manifest values), so
it is shown escaped and short; a garbage stream must not print a line per
frame, so each kind of finding is listed a few times per segment, then counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from camera.evidence.verify.audio import AudioSummary

#: The same kind of finding (a gap, a timestamp) is listed this many times per
#: segment, then counted: a garbage stream must not print a line per frame.
MAX_REPEATS = 3


@dataclass
class Report:
    path: Path
    problems: list[str] = field(default_factory=list)
    frames: int = 0
    codes: list[int | None] = field(default_factory=list)
    #: Worth saying, but no sign of tampering (a power cut's unsigned last GOP).
    notes: list[str] = field(default_factory=list)
    #: Each listed segment's decoded frame codes, by file name (for naming frames).
    segment_codes: dict[str, list[int | None]] = field(default_factory=dict)
    #: The key the manifest names, when it was checked against one; and whether
    #: it calls itself a simulation test key (proves integrity, not authorship).
    key_id: str | None = None
    test_key: bool = False
    #: The recording's sound as verified (None: it declares none).
    audio: AudioSummary | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def show(value: Any) -> str:
    """A manifest value as a short JSON-ish phrase, never more than one line."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value)  # escapes newlines, NULs and terminal controls
    return text if len(text) <= 40 else text[:37] + "..."


def show_name(name: str) -> str:
    """A file name from the manifest or the disk, quoted if it could mislead a reader."""
    if name.isprintable() and len(name) <= 80 and name.strip() == name and name:
        return name
    return show(name)


class Findings:
    """One segment's problem lines, at most MAX_REPEATS of each kind, then a count."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self.counts: dict[str, int] = {}

    def add(self, text: str, kind: str | None = None) -> None:
        kind = kind or text
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.counts[kind] <= MAX_REPEATS:
            self.lines.append(f"{self.name}: {text}")

    def close(self) -> list[str]:
        more = [
            f"{self.name}: {n - MAX_REPEATS} more {kind}"
            for kind, n in self.counts.items()
            if n > MAX_REPEATS
        ]
        return self.lines + more
