"""Where the evidence bytes live: one interface, a local directory or an S3 bucket behind it.

Objects are named by their sha256 and written once: a PUT of bytes the store
already holds is not a second copy, and nothing is ever overwritten. Deletion
goes only through retention: a retention date or a legal hold forbids it
(:class:`Locked`). The embedded default is :class:`~server.objects.cas.CasStore`
(a content-addressed directory, retention kept by the application); the
scale-out one is ``server.objects.s3.S3Store`` (S3 Object Lock enforces it).
Which one is chosen by URL (:func:`open_store`), so the rest of the server
never knows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import BinaryIO, Literal
from urllib.parse import urlsplit

__all__ = ["HashMismatch", "Locked", "Mode", "ObjectStore", "StoreFull", "open_store"]


class HashMismatch(Exception):
    """The body's sha256 is not the one named: nothing kept."""


class StoreFull(Exception):
    """No room: nothing kept (HTTP 507)."""


class Locked(Exception):
    """Retention or a legal hold forbids the deletion."""


Mode = Literal["governance", "compliance"]


class ObjectStore(ABC):
    """Evidence bytes by sha256: written once, never overwritten; deleted only through retention."""

    @abstractmethod
    def has(self, sha256: str) -> bool: ...

    @abstractmethod
    def put(self, sha256: str, source: BinaryIO, size: int | None = None) -> bool:
        """Store the stream if its sha256 is ``sha256``; True if newly stored, False if already held
        (the stream is then still read and checked). HashMismatch / StoreFull keep nothing."""

    @abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """The object's bytes; FileNotFoundError if absent."""

    @abstractmethod
    def size(self, sha256: str) -> int: ...

    @abstractmethod
    def retain(self, sha256: str, until: datetime, mode: Mode) -> None:
        """Object Lock retention (S3) or the application's record of it (CAS); never shortens."""

    @abstractmethod
    def legal_hold(self, sha256: str, on: bool) -> None: ...

    @abstractmethod
    def delete(self, sha256: str, *, bypass_governance: bool = False) -> None:
        """Remove the object; Locked if retention or a legal hold forbids it."""

    def free_bytes(self) -> int | None:
        return None

    def close(self) -> None:  # noqa: B027  (optional: most stores hold nothing to release)
        pass


def open_store(url: str, *, clean: bool = True) -> ObjectStore:
    """``file:///abs/path[?reserve_mb=N]`` -> CasStore; ``s3://bucket?...`` -> S3Store.

    ``clean``: the serving process empties the file store's partial uploads; an
    administrator's command beside it passes False. ValueError (one line
    naming the URL) for anything else.
    """
    scheme = urlsplit(url).scheme
    if scheme == "file":
        from server.objects.cas import CasStore

        return CasStore.from_url(url, clean=clean)
    if scheme == "s3":
        from server.objects.s3 import S3Store  # type: ignore[import-not-found,unused-ignore]

        return S3Store.from_url(url)  # type: ignore[no-any-return,unused-ignore]
    raise ValueError(
        f"objects URL {url!r}: expected file:///ABSOLUTE/PATH or s3://BUCKET?endpoint=...&region=..."
    )
