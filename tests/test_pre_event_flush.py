"""The pre-event flush: written in one durable step, and a power cut in the middle of it.

The pre-event is copied out of the ring without a sync point every half
second (one fsync at its end instead, issue 14); the journal must still vouch
for nothing that is not on the card. The storage here is slowed down so that
the flush spans seconds of virtual time and a cut can land inside it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from camera.evidence.journal import read_journal_lines
from camera.evidence.records import JOURNAL
from camera.evidence.verify import verify_recording
from camera.recovery import recover_recording
from hal.storage.local import LocalStorage
from sim.device import SimDevice
from sim.killtest import check_recovered, vouched_frames
from sim.storage import SimStorage
from tests.conftest import make_device

#: 4 s of pre-event cut into 2 s segments: the flush closes segments as it goes.
CONFIG = {"buffer": {"pre_event": 4.0}, "recording": {"segment_seconds": 2.0}}
TRIGGER = 6.0
#: Bytes per second of the slowed card: the 4 s pre-event takes about 5 s to write.
SLOW = 200_000


def flushing_device(tmp_path: Path) -> tuple[SimDevice, SimStorage]:
    """A device whose pre-event flush starts at TRIGGER and is slow enough to be cut."""
    dev = make_device(tmp_path, CONFIG)
    dev.run(until=TRIGGER)
    storage = dev.hal.storage
    assert isinstance(storage, SimStorage)
    storage.bandwidth = SLOW
    dev.set_input(TRIGGER, "holster", True)
    return dev, storage


def recording(storage: SimStorage) -> Path:
    [rec] = [p for p in Path(storage.root).iterdir() if p.is_dir()]
    return rec


def test_pre_event_is_journaled_once_durable(tmp_path: Path) -> None:
    """No sync point inside the flush: each pre-event segment gets one sync record (at
    its close, or the flush's end) where it used to get one every half second of video."""
    dev, storage = flushing_device(tmp_path)
    dev.run(until=TRIGGER + 8.0)
    records = read_journal_lines(recording(storage) / JOURNAL).records
    kinds = [(r.kind, r.payload.get("file")) for r in records if r.kind in ("sync", "segment")]
    # segment-0000 closed in the flush; segment-0001 open at its end (closed by live frames).
    assert kinds[:4] == [
        ("sync", "segment-0000.ts"),
        ("segment", "segment-0000.ts"),
        ("sync", "segment-0001.ts"),
        ("segment", "segment-0001.ts"),
    ]


#: Frames of the pre-event: 4 s before the trigger at 30 fps.
PRE_EVENT = set(range(60, 180))


# The slowed flush: segment-0000 written until ~9.2 and closed, segment-0001 until ~10.4,
# the one sync at ~10.5; live frames after.
@pytest.mark.parametrize("cut", [7.5, 9.5, 10.25, 10.75, 12.0])
def test_power_cut_mid_flush_recovers_a_valid_prefix(tmp_path: Path, cut: float) -> None:
    """Cut while segments are written, just closed, or waiting for the flush's one sync."""
    dev, storage = flushing_device(tmp_path)
    dev.run(until=cut)
    storage.power_cut()  # every file back to its last fsync
    storage.unlock()  # the process is gone: the kernel drops its lock
    rec = recording(storage)
    before = {p.name: p.read_bytes() for p in sorted(rec.glob("segment-*"))}
    vouched = vouched_frames(rec)
    recover_recording(LocalStorage(rec.parent), rec.name)
    assert check_recovered(before, vouched, rec) == []
    report = verify_recording(rec)
    assert report.ok, report.problems
    codes = list(report.codes)
    # A prefix of the pre-event: from its first frame, none missing, in order.
    assert codes == list(range(60, 60 + len(codes)))
    assert vouched <= set(codes)
    if cut > 10.5:  # the flush's one sync: the whole pre-event at once
        assert vouched >= PRE_EVENT
