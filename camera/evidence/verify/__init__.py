"""Checking recordings: hashes, decodability, continuity, timing.

The tamper and damage check an investigator (or CI) runs on what the camera
wrote: every segment's sha256 and size against the manifest, every segment
decodes from a keyframe, the SPEC section 8 frame codes (when the stream
carries them) run without gaps or duplicates except where the manifest
declares a gap, timestamps follow capture spacing, the manifest's totals add
up, and no segment on disk is missing from the manifest.

Everything under test here may be damaged or hostile: a torn card, a flipped
bit, an edited manifest. So the verifier treats the manifest as evidence to
check, never as instructions: its fields are validated before use, segment
names that point outside the recording are refused, files are opened without
blocking and must be regular files, and decoding is bounded by what the
manifest and the file size allow. Every finding is one human line in
``Report.problems``; ``verify_recording`` does not raise.

One module per concern: :mod:`.files` (reading untrusted files),
:mod:`.decode` (pictures and frame codes), :mod:`.rules` (the manifest's
fields and totals), :mod:`.continuity` (frames and times across segments),
:mod:`.segment` (one listed segment), :mod:`.audio` (the sound: its
manifest entries, continuity and A/V sync), :mod:`.track` (the trigger's
position and the track), :mod:`.recovery` (what recovery did);
given keys (:mod:`.trust`), also :mod:`.signatures` (the manifest's signature
and provenance), :mod:`.instream` (H.264 in-stream signatures) and
:mod:`.frame_hashes` (MJPEG's signed frame list). What links recordings (the
chain, the audit log) is :mod:`.storage`'s. :func:`_verify` runs them in
order; a new concern is a module and a step there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from camera.evidence.records import JOURNAL, MANIFEST
from camera.evidence.verify.audio import AudioCheck, AudioSummary
from camera.evidence.verify.continuity import Continuity
from camera.evidence.verify.decode import Decoded, DecodedFrame, Prefix, decode_file, decode_segment
from camera.evidence.verify.files import (
    FORMAT_OF_SUFFIX,
    Unreadable,
    load_manifest,
    open_regular,
    unlisted_segments,
)
from camera.evidence.verify.findings import Report, show
from camera.evidence.verify.frame_hashes import check_frame_hashes
from camera.evidence.verify.instream import check_stream
from camera.evidence.verify.recovery import check_recovery
from camera.evidence.verify.rules import LIST, REQUIRED, check_manifest
from camera.evidence.verify.segment import check_segment
from camera.evidence.verify.signatures import check_manifest_signature
from camera.evidence.verify.track import check_place
from camera.evidence.verify.trust import KeySet

__all__ = [
    "FORMAT_OF_SUFFIX",
    "REQUIRED",
    "AudioSummary",
    "Decoded",
    "DecodedFrame",
    "KeySet",
    "Prefix",
    "Report",
    "SegmentProgress",
    "Unreadable",
    "decode_file",
    "decode_segment",
    "open_regular",
    "verify_recording",
]


def _interrupted(directory: Path) -> str | None:
    """Why a recording has no manifest to check, if it never reached one (not damage)."""
    if os.path.lexists(directory / MANIFEST) or not os.path.lexists(directory / JOURNAL):
        return None
    # The manifest is written at the stop, and this recording never reached
    # one (power cut, kill). Say so, and how to finish it.
    return (
        f"{MANIFEST} missing, {JOURNAL} present: interrupted before its manifest was "
        "written (power lost or the firmware killed while recording); "
        f"run `bodycam recover {directory}` to rebuild it from the journal"
    )


#: Told ``(j, m)`` as the j-th of a recording's m listed segments is about to be checked.
SegmentProgress = Callable[[int, int], None]


def _verify(
    directory: Path, report: Report, keys: KeySet | None, progress: SegmentProgress | None
) -> None:
    """The checks, in order; each later one relies only on what earlier ones validated."""
    problems = report.problems
    if (why := _interrupted(directory)) is not None:
        problems.append(why)
        return
    # 1. The manifest: readable, then its fields and totals (rules).
    try:
        m = load_manifest(directory)
    except Unreadable as exc:
        problems.append(f"{MANIFEST} {exc}")
        return
    checked = check_manifest(m, problems)
    if checked is None:
        return
    expect, segments = checked
    check_place(m, problems)  # where: the trigger's position and the track
    # 1b. Who signed it (only when asked to check signatures: keys, even none).
    key = check_manifest_signature(m, keys, report) if keys is not None else None
    # 2. What recovery did: its tails on disk, where short segments' whole frames end.
    complete, tails = check_recovery(directory, m, problems)
    # 3. Each listed segment: bytes and hash, pictures, continuity across segments,
    # and its sound (the manifest's audio block checked first, then each segment's).
    run = Continuity(start_time=segments[0]["start_time"] if segments else None)
    sound = AudioCheck.begin(m, expect, problems)
    for j, seg in enumerate(segments, 1):
        if progress is not None:
            progress(j, len(segments))
        before = len(report.codes)
        check_segment(directory, seg, expect, run, report, complete.get(seg["file"]), sound)
        report.segment_codes[seg["file"]] = report.codes[before:]
    # 3b. The sound as a whole: its gaps, within the pictures, in sync with them.
    listed = m.get("segments")
    if not LIST.ok(listed) or len(segments) != len(listed):
        sound.lost()  # a segment entry that is not valid: its audio was not heard
    sound.finish(
        report,
        segments[0]["start_time"] if segments else None,
        segments[-1]["end_time"] if segments else None,
    )
    # 4. Nothing on disk that the manifest does not account for.
    if LIST.ok(m.get("segments")):
        names = [s.get("file") for s in m["segments"] if isinstance(s, dict)]
        listed = {name for name in names if isinstance(name, str)}
        problems += unlisted_segments(directory, listed | tails)
    # 5. Signatures over the pictures: in the stream (H.264), or the manifest's list
    # (MJPEG; a hash check, so done without keys too, for any manifest that has it).
    recovered = "recovery" in m
    if keys is not None and segments and expect.codec == "h264":
        check_stream(directory, segments, complete, key, recovered, report)
    elif segments and expect.codec == "mjpeg":
        required = keys is not None or "signature" in m
        check_frame_hashes(directory, segments, complete, recovered, required, report)


def verify_recording(
    directory: Path | str, keys: KeySet | None = None, progress: SegmentProgress | None = None
) -> Report:
    """Check one recording directory; every finding is a line in ``report.problems``.

    With ``keys`` (even an empty set) signatures are checked too: the
    manifest's, and the in-stream ones or MJPEG's frame list; without, only
    what needs no key (hashes, decoding, continuity), as for a recording
    made before the device signed anything.

    Never raises (KeyboardInterrupt aside). The last-resort handler turns a
    verifier bug into an "internal error" finding instead of a traceback, so
    a damaged recording can never look like a crash of the tool; the fuzz
    tests assert it is never reached. ``progress``, for a person watching a
    long recording, must not raise either (it would be reported as that).
    """
    report = Report(Path(directory))
    try:
        _verify(report.path, report, keys, progress)
    except Exception as exc:
        report.problems.append(
            f"internal error while verifying: {type(exc).__name__}: {show(str(exc))}"
        )
    return report
