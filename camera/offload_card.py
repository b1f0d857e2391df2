"""The camera's side of an offload: which recordings are on the card, their files, deleting one.

Kept apart from the upload itself because these are the rules that protect
evidence on the camera, whatever the server says:

- Only a closed recording (its manifest written) is ever offered. A
  directory with a journal and no manifest was interrupted (or is being
  written): it goes nowhere until ``bodycam recover`` has rebuilt it.
- Recordings go oldest first, by the counter in their id, so the server
  receives the chain in the order the camera wrote it.
- A recording is deleted file by file, the manifest last and each step
  fsync'ed: a power cut mid-delete leaves a directory that still has its
  manifest (so the firmware's boot recovery never mistakes it for an
  interrupted recording and rebuilds one), and the next offload finishes
  the job from the receipt it kept.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from camera.evidence.custody import recording_pattern
from camera.evidence.records import JOURNAL, MANIFEST
from camera.evidence.verify.chain import RECORDING_NAME
from hal.storage import fsync_dir

_CHUNK = 1 << 20


@dataclass(frozen=True)
class OnCamera:
    """One of the device's recording directories, as found on the card."""

    name: str
    path: Path
    counter: int

    @property
    def closed(self) -> bool:
        return os.path.lexists(self.path / MANIFEST)

    @property
    def interrupted(self) -> bool:
        return not self.closed and os.path.lexists(self.path / JOURNAL)


def recordings_on(storage: Path, device_id: str) -> list[OnCamera]:
    """The device's recording directories, oldest (lowest counter) first."""
    pattern = recording_pattern(device_id)
    found = []
    for name in os.listdir(storage):
        m = pattern.match(name)
        path = storage / name
        if m and path.is_dir() and not path.is_symlink():
            found.append(OnCamera(name, path, int(m.group(1))))
    return sorted(found, key=lambda r: (r.counter, r.name))


def others_on(storage: Path, device_id: str) -> list[str]:
    """Recording directories of other devices (a wrong ``device.id``, another camera's card)."""
    mine = recording_pattern(device_id)
    return sorted(
        name
        for name in os.listdir(storage)
        if RECORDING_NAME.fullmatch(name) and not mine.match(name) and (storage / name).is_dir()
    )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


class NotUploadable(Exception):
    """A recording directory holds something that is not a plain file (one line why)."""


def recording_files(path: Path) -> dict[str, str]:
    """Every file of a recording directory -> its sha256, in name order.

    Every file, not only those the manifest lists: the server rebuilds the
    directory from exactly these and verifies it, and a file verify would
    call unlisted must show up there, not vanish here.
    """
    out: dict[str, str] = {}
    for name in sorted(os.listdir(path)):
        st = os.lstat(path / name)
        if not stat.S_ISREG(st.st_mode):
            kind = "directory" if stat.S_ISDIR(st.st_mode) else "special file or link"
            raise NotUploadable(f"{name} is a {kind}, not a file a recording holds")
        out[name] = file_sha256(path / name)
    return out


def delete_recording(path: Path) -> None:
    """Remove a recording directory: other files, then the journal, then the manifest.

    Each stage is made durable before the next, so whatever a power cut
    leaves still has its manifest until the very end.
    """
    names = set(os.listdir(path))
    last = [n for n in (JOURNAL, MANIFEST) if n in names]
    for name in sorted(names - set(last)):
        os.unlink(path / name)
    fsync_dir(path)
    for name in last:
        os.unlink(path / name)
        fsync_dir(path)
    os.rmdir(path)
    fsync_dir(path.parent)
