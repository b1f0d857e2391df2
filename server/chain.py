"""A new recording's place in its device's chain, against the recordings held here.

Each signed manifest names the device's previous recording and the sha256 of
that manifest's bytes (SPEC 12). ``bodycam verify`` checks those links on a
card; the server asks the same question of one link at a time, with what it
holds in place of the card, through the same code
(camera.evidence.verify.chain), so the two can never disagree on what a
broken link is.

- The previous recording is held here and its manifest is the one named: ``ok``.
- It is held here with another manifest: a contradiction, the recording is rejected.
- It is not held here (the first upload, or it was rejected, or it is still
  on the camera): accepted, and the receipt says so.
- ``previous`` is null: the first recording of a card; accepted, and said.

And the other way: a recording held here that names this one as its
previous, with another manifest sha256, contradicts it just the same (a
replayed or forged older manifest arriving after its successor).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camera.evidence.verify.chain import RECORDING_NAME, OnCard, _check_link
from camera.evidence.verify.findings import show_name

__all__ = ["ChainCheck", "Held", "check_links"]


@dataclass(frozen=True)
class Held:
    """A verified recording of the same device, as the chain check needs it."""

    recording_id: str
    manifest_sha256: str
    manifest: dict[str, Any] | None


@dataclass(frozen=True)
class ChainCheck:
    problems: list[str]
    #: What the receipt says: "ok", "previous <id> not held here", or why there is no link.
    status: str


def _on_card(recording_id: str, manifest: dict[str, Any] | None, sha256: str) -> OnCard:
    m = RECORDING_NAME.fullmatch(recording_id)
    return OnCard(
        recording_id,
        Path(recording_id),
        m.group("device") if m else None,
        int(m.group("counter")) if m else None,
        manifest,
        sha256,
    )


def check_links(
    recording_id: str,
    manifest: dict[str, Any],
    manifest_sha256: str,
    held: Callable[[str], Held | None],
    following: list[Held],
) -> ChainCheck:
    """The links from this recording to the one before and from those after it.

    ``held(id)`` finds a verified recording of the same device; ``following``
    are the held ones whose manifest names this recording as previous.
    """
    problems: list[str] = []
    notes: list[str] = []
    me = _on_card(recording_id, manifest, manifest_sha256)
    previous = manifest.get("previous")
    named = previous.get("recording_id") if isinstance(previous, dict) else None
    before_held = held(named) if isinstance(named, str) else None
    before = (
        _on_card(before_held.recording_id, before_held.manifest, before_held.manifest_sha256)
        if before_held is not None
        else None
    )
    card = {before.name: before} if before is not None else {}
    _check_link(me, before, card, problems, notes)
    for after in following:
        later = _on_card(after.recording_id, after.manifest, after.manifest_sha256)
        _check_link(later, me, {me.name: me}, problems, [])
    if problems:
        return ChainCheck(problems, "broken")
    if previous is None:
        return ChainCheck([], "none: previous is null (the first recording of its card)")
    if before is None:
        return ChainCheck([], f"previous {show_name(str(named))} not held here")
    return ChainCheck([], "ok")
