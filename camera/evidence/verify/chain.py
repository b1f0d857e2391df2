"""The chain across a device's recordings (SPEC 12): a deleted recording shows.

Each signed manifest names the device's previous recording and the sha256 of
that manifest's bytes. Sorted by their counter (the ``_NNNN`` suffix), each
recording of a device on the card must name the one before it with that
manifest's exact bytes; a link naming a recording that is not there means
recordings were removed in between. The first one may name a recording that
is not on this card: an earlier card, or recordings offloaded (a note).
A link to a recording that was offloaded and deleted holds when its kept
receipt and the audit log vouch for it (:mod:`.offloaded`).

Recordings without a manifest (interrupted, not yet recovered) are not in
the chain: the firmware skips them when it links the next one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camera.evidence.records import MANIFEST
from camera.evidence.verify.files import Unreadable, load_manifest, sha256_file
from camera.evidence.verify.findings import show_name
from camera.evidence.verify.offloaded import Offloaded
from camera.evidence.verify.rules import PREVIOUS

#: ``<device-id>_<YYYYmmddTHHMMSSZ>_<counter>`` (camera.evidence.custody).
RECORDING_NAME = re.compile(r"(?P<device>.+)_\d{8}T\d{6}Z_(?P<counter>\d{4,})")


@dataclass
class OnCard:
    """One recording directory of a storage, as the chain and the audit log see it."""

    name: str
    path: Path
    device: str | None
    counter: int | None
    #: The parsed manifest if it is a readable JSON object, else None.
    manifest: dict[str, Any] | None
    #: sha256 of the manifest's bytes, if it could be read.
    manifest_sha256: str | None

    @property
    def signed(self) -> bool:
        return self.manifest is not None and "signature" in self.manifest


def read_card(recordings: list[Path]) -> dict[str, OnCard]:
    """Each recording's name, device, counter and manifest (never raises on damage)."""
    out: dict[str, OnCard] = {}
    for path in recordings:
        m = RECORDING_NAME.fullmatch(path.name)
        try:
            manifest = load_manifest(path)
            digest = sha256_file(path / MANIFEST)
        except (Unreadable, OSError):
            manifest, digest = None, None
        out[path.name] = OnCard(
            path.name,
            path,
            m.group("device") if m else None,
            int(m.group("counter")) if m else None,
            manifest if isinstance(manifest, dict) else None,
            digest,
        )
    return out


def _link(card: OnCard) -> tuple[str, str] | bool | None:
    """(recording id, manifest sha256) the manifest's ``previous`` names; None for null.

    False when there is nothing to check: no ``previous`` (not signed, the
    recording's own finding) or one of the wrong shape (a rules finding).
    """
    m = card.manifest
    if m is None or "previous" not in m:
        return False
    previous = m["previous"]
    if previous is None:
        return None
    if not isinstance(previous, dict) or not all(
        rule.ok(previous.get(k)) for k, rule in PREVIOUS.items()
    ):
        return False
    return previous["recording_id"], previous["manifest_sha256"]


def check_chain(
    card: dict[str, OnCard], offloaded: Mapping[str, Offloaded] | None = None
) -> tuple[list[str], list[str]]:
    """(problems, notes) for every device's chain of recordings on the card.

    ``offloaded``: recordings gone from the card that a kept receipt and the
    audit log vouch for (:mod:`.offloaded`); a link to one of them holds.
    """
    offloaded = offloaded or {}
    problems: list[str] = []
    notes: list[str] = []
    devices: dict[str, list[OnCard]] = {}
    for rec in card.values():
        if rec.device is not None and rec.counter is not None and rec.manifest is not None:
            devices.setdefault(rec.device, []).append(rec)
    for recs in devices.values():
        recs.sort(key=lambda r: r.counter or 0)
        before: OnCard | None = None
        for rec in recs:
            _check_link(rec, before, card, problems, notes, offloaded)
            before = rec
    return problems, notes


def _check_link(
    rec: OnCard,
    before: OnCard | None,
    card: dict[str, OnCard],
    problems: list[str],
    notes: list[str],
    offloaded: Mapping[str, Offloaded] | None = None,
) -> None:
    link = _link(rec)
    name = show_name(rec.name)
    if link is False:
        return
    if link is None:
        if before is not None:
            problems.append(
                f"{name}: previous is null, but {show_name(before.name)} comes before it "
                "(chain broken)"
            )
        return
    assert isinstance(link, tuple)
    named, digest = link
    shown = show_name(named)
    if before is not None and named == before.name:
        if before.manifest_sha256 is not None and before.manifest_sha256 != digest:
            problems.append(
                f"{name}: previous names {shown} with manifest sha256 {digest[:16]}..., but its "
                f"manifest is {before.manifest_sha256[:16]}... (changed after {name} was signed)"
            )
        return
    if named in card:
        if card[named].manifest is None:
            problems.append(f"{name}: previous is {shown}, whose manifest is missing or unreadable")
        else:
            expected = show_name(before.name) if before else "none (it is the first here)"
            problems.append(f"{name}: previous is {shown}, expected {expected} (out of order)")
        return
    if offloaded and named in offloaded:
        _check_offloaded(rec, before, offloaded[named], digest, problems, notes)
        return
    if before is None:
        notes.append(f"chain starts after {shown}, not on this card: offloaded?")
        return
    problems.append(
        f"recording(s) missing between {show_name(before.name)} and {name} "
        f"({name}'s previous is {shown})"
    )


def _check_offloaded(
    rec: OnCard,
    before: OnCard | None,
    gone: Offloaded,
    digest: str,
    problems: list[str],
    notes: list[str],
) -> None:
    """A link to a recording that left through an offload: its receipt must name that manifest."""
    name, shown = show_name(rec.name), show_name(gone.recording_id)
    if gone.manifest_sha256 != digest:
        problems.append(
            f"{name}: previous names {shown} with manifest sha256 {digest[:16]}..., but its "
            f"receipt names {gone.manifest_sha256[:16]}..."
        )
        return
    m = RECORDING_NAME.fullmatch(gone.recording_id)
    counter = int(m.group("counter")) if m else None
    earlier = before.counter if before is not None else None
    if counter is not None and earlier is not None and counter <= earlier:
        problems.append(
            f"{name}: previous is {shown}, which comes before {show_name(before.name)} "
            "(out of order)"
        )
        return
    notes.append(f"{name}: previous {shown} was offloaded and deleted, {gone.vouched()}")
