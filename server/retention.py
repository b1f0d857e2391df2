"""Retention: how long a recording's category keeps it, and what the object store is told.

The rules (issue 16; Axon Evidence's and the UK forces' practice, README
"Retention and holds"):

- Every recording has a category; a new one is ``uncategorized``. A timed
  category keeps it N days from when the server took custody (the receipt's
  time, not the camera's "recorded on": a camera's clock is not trusted, and
  the offload is the same day), or from its last restore. An "until
  released" category (``evidential``) has no date: it is kept until someone
  changes the category.
- When the date has passed the sweep QUEUES it; a queued recording can be
  restored for ``restore_days`` (7); after that the sweep purges it.
- A legal hold stops all of that, whatever the category.

What the object store is told (its own enforcement, under the application's):

- timed category: GOVERNANCE until the date. Only a user allowed to bypass
  governance (the server, when it purges, on the record) can delete earlier.
- "until released": COMPLIANCE, which nobody can shorten or lift, not even
  the bucket's owner. Not until a far date: a recording marked evidential by
  mistake would then cost storage and stay undeletable for decades. Instead a
  rolling lock of ``compliance_days`` (365) from now, renewed by every sweep
  once half of it is gone. The cost: a category changed away from evidential
  keeps its COMPLIANCE lock to the end of the current window; the
  application says so and deletes nothing before then (:func:`deletable`).
  If the sweep stops running for longer than the window, the storage lock
  lapses and only the application's own record protects the recording.
- legal hold: the store's legal hold on every object of the recording.

Times are passed in (``now``), never read here, so tests run days in microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from camera.evidence.audit import format_utc
from server.config import UNCATEGORIZED, Retention
from server.meta import Recording
from server.objects import Mode

__all__ = ["Lock", "Policy", "parse_utc"]


def parse_utc(text: str) -> datetime:
    """The stored ``YYYY-mm-ddTHH:MM:SS.fffZ`` as an aware datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Lock:
    """What the store should hold for a recording's objects: a retention mode and date."""

    mode: Mode
    until: datetime

    @property
    def until_utc(self) -> str:
        return format_utc(self.until)


@dataclass(frozen=True)
class Policy:
    """The categories and windows of ``[retention]``, and what they mean for one recording."""

    categories: dict[str, int | None]
    restore_days: int
    compliance_days: int

    @classmethod
    def from_config(cls, config: Retention) -> Policy:
        return cls(dict(config.categories), config.restore_days, config.compliance_days)

    @property
    def new_category(self) -> str:
        return UNCATEGORIZED

    def known(self, category: str) -> bool:
        return category in self.categories

    def days(self, category: str | None) -> int | None:
        """Days of a category; None for "until released" and for a category the config
        no longer names (what cannot be explained is never deleted)."""
        return self.categories.get(category or UNCATEGORIZED)

    def kind(self, category: str | None) -> Literal["timed", "until released"]:
        return "timed" if self.days(category) is not None else "until released"

    def expires(self, rec: Recording) -> datetime | None:
        """The category's date for this recording (None: until released)."""
        days = self.days(rec.category)
        if days is None:
            return None
        start = parse_utc(rec.retention_from_utc or rec.received_utc)
        return start + timedelta(days=days)

    def compliance_until(self, rec: Recording) -> datetime | None:
        """The COMPLIANCE date the store holds for its objects, if any: nothing deletes them
        before it."""
        if rec.lock_mode == "compliance" and rec.lock_until:
            return parse_utc(rec.lock_until)
        return None

    def deletable(self, rec: Recording) -> datetime | None:
        """When the recording may be queued: its category's date, or the end of a
        COMPLIANCE lock still running, whichever is later; None: never (until released)."""
        expires = self.expires(rec)
        if expires is None:
            return None
        locked = self.compliance_until(rec)
        return max(expires, locked) if locked is not None else expires

    def restorable_until(self, rec: Recording) -> datetime | None:
        """The end of a queued recording's restore window (None if not queued)."""
        if rec.queued_utc is None:
            return None
        return parse_utc(rec.queued_utc) + timedelta(days=self.restore_days)

    def wanted_lock(self, category: str | None, rec: Recording | None, now: datetime) -> Lock:
        """The lock the store should have for a recording of ``category`` (``rec``: what it
        was told so far; None for one arriving now)."""
        days = self.days(category)
        if days is None:
            held = self.compliance_until(rec) if rec is not None else None
            if held is not None and held - now > timedelta(days=self.compliance_days / 2):
                return Lock("compliance", held)  # more than half the window left: as it is
            return Lock("compliance", now + timedelta(days=self.compliance_days))
        start = parse_utc(rec.retention_from_utc or rec.received_utc) if rec is not None else now
        return Lock("governance", start + timedelta(days=days))

    def needs_lock(self, rec: Recording, now: datetime) -> Lock | None:
        """The lock to apply to a held recording's objects, or None if the store has it.

        A store never shortens a date nor weakens COMPLIANCE, so only a later date
        or a stronger mode is ever worth sending.
        """
        wanted = self.wanted_lock(rec.category, rec, now)
        if wanted.until <= now:
            return None  # a date already past: no lock is what it asks for
        told = parse_utc(rec.lock_until) if rec.lock_until else None
        if told is None or told <= now or rec.lock_mode is None:
            return wanted  # nothing told, or what was told has run out
        if rec.lock_mode == "compliance" and wanted.mode == "governance":
            # Sent now it would only lengthen the COMPLIANCE lock (a store never weakens
            # a live one); once that has run out, the sweep sends the governance date.
            return None
        stronger = wanted.mode == "compliance" and rec.lock_mode != "compliance"
        return wanted if stronger or wanted.until > told else None
