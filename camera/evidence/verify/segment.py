"""One listed segment: where it is, its bytes against the manifest, its pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from camera.evidence.verify.audio import AudioCheck
from camera.evidence.verify.continuity import Continuity, check_decoded
from camera.evidence.verify.decode import Prefix, decode_file
from camera.evidence.verify.files import (
    FORMAT_OF_SUFFIX,
    Unreadable,
    hash_open,
    open_regular,
    segment_path,
)
from camera.evidence.verify.findings import Findings, Report, show, show_name
from camera.evidence.verify.rules import Expect


def check_segment(
    directory: Path,
    seg: dict[str, Any],
    expect: Expect,
    run: Continuity,
    report: Report,
    complete_bytes: int | None = None,
    sound: AudioCheck | None = None,
) -> None:
    """One listed segment: where it is, its bytes, its pictures, its sound.

    ``complete_bytes``: recovery found the segment short and says its whole
    frames end there; all bytes are hashed, only those are decoded.
    ``sound``: the recording's audio check, whose one decoder hears every
    segment in turn.
    """
    found = Findings(show_name(seg["file"]))
    try:
        path = segment_path(directory, seg["file"])
        container_format = FORMAT_OF_SUFFIX.get(path.suffix)
        if container_format is None:
            raise Unreadable(f"not a segment file (expected {' or '.join(FORMAT_OF_SUFFIX)})")
        with open_regular(path) as f:
            digest, size = hash_open(f)
            if size != seg["bytes"]:
                found.add(f"{size} bytes, manifest says {show(seg['bytes'])}")
            if digest != seg["sha256"]:
                found.add("sha256 mismatch (altered or damaged)")
            f.seek(0)
            dims = (expect.width, expect.height) if expect.width and expect.height else None
            whole = f if complete_bytes is None else Prefix(f, complete_bytes)
            decoder = None if sound is None else sound.decoder
            decoded = decode_file(whole, container_format, seg["frames"], dims, decoder)
    except (Unreadable, OSError) as exc:
        detail = str(exc) if isinstance(exc, Unreadable) else f"cannot be read: {exc.strerror}"
        found.add(detail)
        run.reset()
        if sound is not None:
            sound.lost()
    else:
        report.frames += len(decoded.frames)
        report.codes += [f.code for f in decoded.frames]
        check_decoded(seg, decoded, expect, run, found)
        if sound is not None:
            sound.segment(seg, decoded, run.origin, container_format, found)
    report.problems += found.close()
