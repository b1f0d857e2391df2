"""What the page needs from wherever recordings live: one interface, a card or the store behind it.

:class:`Catalog` is what :mod:`.web` asks; :mod:`.storage_catalog` answers
for a camera's storage directory on a laptop, :mod:`.store_catalog` for the
evidence store. Each recording is an :class:`Entry`: its description (an
:class:`~camera.inspection.model.Inspection`, what ``bodycam inspect``
prints), its manifest, and a :class:`Verdict` that says verified or failed
and why, in ``bodycam verify``'s words.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from camera.inspection.model import Inspection
from camera.inspection.wallclock import WallClock, parse_utc

__all__ = [
    "Catalog",
    "ChainInfo",
    "Check",
    "Entry",
    "KeyInfo",
    "Verdict",
    "first_line",
    "start_wall",
]

VERIFIED, FAILED, PENDING = "verified", "failed", "pending"


@dataclass(frozen=True)
class Verdict:
    #: verified | failed | pending (the laptop's check has not reached it yet)
    state: str
    #: One line: why it failed (verify's first finding, and how many more), or how it passed.
    reason: str
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeyInfo:
    """The key the manifest names, and what vouches for it."""

    key_id: str | None
    #: One line: where the key came from (enrolled on the server, or found beside the recordings).
    source: str
    trusted: bool
    test_key: bool
    #: The public key (PEM), offered for download so the verify command can be run.
    pem: bytes | None = None


@dataclass(frozen=True)
class ChainInfo:
    """The link to the device's previous recording (the manifest's ``previous``)."""

    previous: str | None
    previous_sha256: str | None
    #: One line: what the link was checked against and what was found.
    status: str
    ok: bool | None


@dataclass(frozen=True)
class Check:
    """A check of the whole storage (the chain, the audit log), as ``bodycam verify`` reports it."""

    name: str
    ok: bool
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass
class Entry:
    id: str
    insp: Inspection
    #: The parsed manifest, when it passed inspect's structure check (else None).
    manifest: dict[str, Any] | None
    manifest_sha256: str | None
    verdict: Verdict
    #: Where it is held, one line (a path on a card; "held since ..." in the store).
    where: str
    category: str | None = None
    #: Who wore the camera, when the data says so (the firmware does not record it yet).
    officer: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> str | None:
        return self.insp.device_id

    @property
    def playable(self) -> bool:
        """It has a manifest that lists segments (whether or not it verified)."""
        return self.manifest is not None and bool(self.manifest.get("segments"))


def start_wall(insp: Inspection, steps: list[dict[str, Any]]) -> str | None:
    """The device's wall clock at the first frame (UTC text), as the audit log would stamp it."""
    if insp.trigger is None or insp.start_time is None:
        return None
    clock = WallClock(
        insp.trigger.time,
        parse_utc(insp.trigger.wall_time),
        tuple((s["time"], s["seconds"]) for s in steps),
    )
    return clock.at(insp.start_time)


class Catalog(ABC):
    """The recordings one review page shows, and what it can do with them."""

    #: "storage" (a card, read in place) or "store" (the evidence store).
    mode: str
    #: One line for the page's header: which storage or store this is.
    title: str

    @abstractmethod
    def entries(self) -> list[Entry]:
        """Every recording, oldest first."""

    @abstractmethod
    def entry(self, recording_id: str) -> Entry | None: ...

    @abstractmethod
    def open_file(self, entry: Entry, name: str) -> Path | BinaryIO | None:
        """A file the manifest lists, as stored: a path to serve, a stream, or None if absent."""

    @abstractmethod
    def materialize(self, entry: Entry) -> AbstractContextManager[Path]:
        """The recording as a directory (for the MP4 export); removed after, never the original."""

    @abstractmethod
    def key(self, entry: Entry) -> KeyInfo: ...

    @abstractmethod
    def chain(self, entry: Entry) -> ChainInfo: ...

    @abstractmethod
    def audit_entries(self, entry: Entry) -> list[dict[str, Any]]:
        """The audit log's entries about this recording: {seq, utc, what, detail}."""

    @abstractmethod
    def verify_commands(self, entry: Entry) -> list[str]:
        """The exact commands that repeat the check the page reports."""

    def checks(self) -> list[Check]:
        """Checks of the whole storage (none by default)."""
        return []

    def record(self, actor: str, what: str, recording: str | None, **detail: Any) -> None:  # noqa: B027
        """Put an access on the record (the store audits it; a card is read-only: nothing)."""

    @abstractmethod
    def scratch(self) -> AbstractContextManager[Path]:
        """A private directory for an export being made, removed after."""

    def close(self) -> None:  # noqa: B027
        pass


def first_line(problems: list[str] | tuple[str, ...]) -> str:
    """verify's first finding, and how many more."""
    if not problems:
        return ""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"
