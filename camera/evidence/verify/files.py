"""Reading a recording's files without trusting them.

Segment names that point outside the recording are refused, files are opened
without blocking and must be regular files (a FIFO planted as a segment must
not hang the verifier), and a manifest is size-bounded before it is parsed.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

from camera.evidence.records import CONTAINERS, MANIFEST, SEGMENT_PREFIX
from camera.evidence.verify.findings import show_name

#: A manifest larger than this is not one the camera wrote (hours of 10 s
#: segments are well under a megabyte); refuse it rather than parse it.
MAX_MANIFEST_BYTES = 16 << 20
#: Container format for each segment file extension the camera writes.
FORMAT_OF_SUFFIX = {f".{ext}": fmt for fmt, ext in CONTAINERS.values()}


class Unreadable(Exception):
    """A file the verifier cannot read as what it should be; the message is one line."""


def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file, else raise Unreadable.

    Non-blocking, so a FIFO planted as a segment cannot hang the verifier at
    open(); the type is checked on the opened descriptor, so what is checked
    is what is read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise Unreadable("missing") from None
    except (OSError, ValueError) as exc:
        raise Unreadable(f"cannot be opened: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise Unreadable("is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise Unreadable("is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def sha256_file(path: Path) -> str:
    """The sha256 of a regular file."""
    with open_regular(path) as f:
        return hash_open(f)[0]


def hash_open(f: BinaryIO) -> tuple[str, int]:
    """The sha256 and length of an open file, from its start."""
    h = hashlib.sha256()
    size = 0
    f.seek(0)
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
        size += len(block)
    return h.hexdigest(), size


def load_manifest(directory: Path) -> Any:
    """The parsed manifest (any JSON value), or Unreadable with a one-line reason."""
    try:
        with open_regular(directory / MANIFEST) as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:  # an I/O error on a failing card
        raise Unreadable(f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise Unreadable(f"is larger than {MAX_MANIFEST_BYTES} bytes")

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(data.decode("utf-8"), parse_constant=no_constants)
    except UnicodeDecodeError as exc:
        raise Unreadable(f"is not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:  # JSONDecodeError too
        raise Unreadable(f"is not valid JSON: {str(exc).split(';')[0]}") from None
    except RecursionError:
        raise Unreadable("is not valid JSON: nested too deeply") from None


def segment_path(directory: Path, name: str) -> Path:
    """Where a manifest's segment lives, refusing anything outside the recording.

    The name must be a plain file name ("../x", "/dev/zero", NUL bytes are
    refused), and a symbolic link must not lead out of the directory either:
    the verifier must not be made to read, or vouch for, other files.
    """
    outside = Unreadable("refused: not a file inside the recording directory")
    if "\0" in name or name in (".", "..") or Path(name).name != name or "/" in name:
        raise outside
    try:
        root = directory.resolve()
        resolved = (directory / name).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise outside from None
    if root not in resolved.parents:
        raise outside
    return directory / name


def unlisted_segments(directory: Path, listed: set[str]) -> list[str]:
    """Segment files on disk that the manifest does not list: added, or left out of it.

    ``listed`` includes the tails (``segment-NNNN.tail``) that ``recovery``
    lists with their size and hash; any other tail is as unexplained as an
    extra segment.
    """
    try:
        names = sorted(p.name for p in directory.iterdir())
    except OSError as exc:
        return [f"{show_name(directory.name)}: cannot list the directory: {exc.strerror}"]
    return [
        f"{show_name(n)}: on disk but not in the manifest"
        for n in names
        if n.startswith(SEGMENT_PREFIX) and n not in listed
    ]
