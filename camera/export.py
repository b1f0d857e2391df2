"""Export: a recording's segments joined into one MP4 for review or court (SPEC section 10).

Court and review tools want one ordinary file, but the evidence is the
camera's bytes: every H.264 NAL unit carries its part of the in-stream
signatures (SPEC section 12), so the export is a stream copy, never a
re-encode. The segments' packets go, in order and untouched, into a single
MP4 stream made from the first segment's codec parameters; FFmpeg's MP4 muxer
only reframes H.264 from Annex-B to length-prefixed NAL units (SPS/PPS also go
to ``avcC``), which ``h264_mp4toannexb`` undoes exactly. Packets without a
picture (the SEI-only access unit that closes a recording's signatures) are
copied like any other. MJPEG goes into MP4 too (FFmpeg's muxer takes it as
ISO JPEG), so every recording exports the same way. Sound goes along as a
second stream, stream-copied too: AAC from MPEG-TS loses only its ADTS
headers (``aac_adtstoasc``, the MP4 way of carrying the same frames), from
Matroska it is copied as it is.

What is exported is exactly what the manifest vouches for: each segment is read
once into memory, its sha256 checked against the manifest, and those same
bytes are demuxed, so a file swapped on the card between the check and the
copy cannot slip in. Segment timestamps already count from the recording's
first frame, so they are copied as they are; they must strictly increase.

The file is written under a temporary name beside ``out``, fsynced and only
then renamed, so the final name never holds half a file; a
``sha256sum``-format sidecar (``out.sha256``) lets the receiver check the copy
they were given. The output is deterministic (no creation time is written), so
exporting the same recording twice gives the same bytes.

A clip (``segments=range(a, b)``) is the same export of whole segments only:
each segment starts on a keyframe, so the cut is GOP-aligned, every packet is
still the camera's, and the in-stream signatures validate GOP by GOP (the
clip's last GOP is signed by an SEI that travels in the GOP after it, so it
is reported unsigned unless the clip runs to the recording's end). Its
metadata names the segments it holds beside the whole manifest's sha256.

This module reads ``manifest.json`` itself (a handful of fields) rather than
through the manifest model, so it depends on nothing but the on-disk format.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from camera.errors import InputError
from camera.evidence import annexb

MANIFEST = "manifest.json"
#: Journal of a recording still being written or cut by a power loss.
JOURNAL = "journal.jsonl"
#: A manifest larger than this is not one the camera wrote; refuse to parse it.
MAX_MANIFEST_BYTES = 16 << 20
#: Container of the segments of each codec (see camera/segments.py) and the
#: name FFmpeg's decoder gives the codec.
SEGMENT_FORMATS = {"h264": "mpegts", "mjpeg": "matroska"}
#: The export's own time base: the segments' 90 kHz clock (Matroska's 1 ms fits in it exactly).
TIME_BASE = Fraction(1, 90_000)
OUTPUT_SUFFIX = ".mp4"
SIDECAR_SUFFIX = ".sha256"
#: ``use_metadata_tags`` keeps our custom keys (MP4 otherwise drops unknown
#: ones); ``faststart`` puts the index first, so a player starts at once.
MOVFLAGS = "+use_metadata_tags+faststart"


class ExportError(InputError):
    """The recording or the output path is not fit for export; one line names which and why."""


class ManifestError(ExportError):
    """``manifest.json`` is missing, unreadable, or lacks a field the export needs."""


class SegmentError(ExportError):
    """A segment is missing, unreadable, or not what the manifest vouches for."""


class OutputError(ExportError):
    """The output path cannot be written: no such directory, exists, or wrong suffix."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sha256: str
    #: Packets that carry a picture (SEI-only packets are exported but not counted).
    frames: int
    bytes: int

    @property
    def sidecar(self) -> Path:
        """The ``sha256sum``-format file written beside the export."""
        return Path(f"{self.path}{SIDECAR_SUFFIX}")


@dataclass(frozen=True)
class _Recording:
    directory: Path
    recording_id: str
    device_id: str
    codec: str
    manifest_sha256: str
    #: (file name, sha256) of each segment, in recording order.
    segments: tuple[tuple[str, str], ...]
    #: A clip: the segments kept, as "first..last" of how many (None: the whole recording).
    clip: str | None = None


def export_recording(
    directory: Path, out: Path, *, force: bool = False, segments: range | None = None
) -> ExportResult:
    """Stream-copy the recording in ``directory`` into the one MP4 file ``out``.

    ``segments``: only these of the manifest's segments (by index), a clip.
    Raises an :class:`ExportError` (an ``InputError``) with one line naming
    the file and the problem; whatever goes wrong, ``out`` is either left as it
    was or holds the complete export, and no temporary file is left behind.
    """
    directory = Path(directory)
    out = Path(out)
    recording = _read_manifest(directory)
    if segments is not None:
        recording = _clip(recording, segments)
    check_output(out, force)
    for name, _ in recording.segments:  # fail before any writing for the common case
        if not (directory / name).is_file():
            raise SegmentError(f"{directory / name}: segment listed in {MANIFEST} is missing")

    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        frames = _write_mp4(recording, tmp, out)
        digest, size = _hash_and_sync(tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the export from its reviewers
        _publish(tmp, out, force)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    result = ExportResult(path=out, sha256=digest, frames=frames, bytes=size)
    _write_atomic(result.sidecar, f"{digest}  {out.name}\n".encode())
    return result


# -- input ----------------------------------------------------------------------------------


def _read_manifest(directory: Path) -> _Recording:
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ManifestError(f"{directory}: not a recording directory (no such directory)")
    if not path.is_file():
        if (directory / JOURNAL).is_file():
            raise ManifestError(
                f"{path}: missing; the recording was interrupted, run `bodycam recover` first"
            )
        raise ManifestError(f"{path}: missing; expected a recording directory")
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes, not a manifest")
        raw = path.read_bytes()
        data = json.loads(raw)
    except OSError as exc:
        raise ManifestError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: expected a JSON object")
    codec = _text(data, "codec", path)
    if codec not in SEGMENT_FORMATS:
        known = ", ".join(sorted(SEGMENT_FORMATS))
        raise ManifestError(f"{path}: codec: expected one of {known}, got {codec!r}")
    segments = data.get("segments")
    if not isinstance(segments, list) or not segments:
        raise ManifestError(f"{path}: segments: expected a non-empty list")
    return _Recording(
        directory=directory,
        recording_id=_text(data, "recording_id", path),
        device_id=_text(data, "device_id", path),
        codec=codec,
        manifest_sha256=hashlib.sha256(raw).hexdigest(),
        segments=tuple(_segment_entry(seg, i, path) for i, seg in enumerate(segments)),
    )


def _clip(recording: _Recording, wanted: range) -> _Recording:
    total = len(recording.segments)
    if wanted.step != 1 or not wanted or wanted.start < 0 or wanted.stop > total:
        raise ExportError(
            f"{recording.directory}: a clip is a run of whole segments of the {total} "
            f"listed, got {wanted.start}..{wanted.stop - 1}"
        )
    kept = recording.segments[wanted.start : wanted.stop]
    return dataclasses.replace(
        recording, segments=kept, clip=f"{kept[0][0]}..{kept[-1][0]} of {total} segments"
    )


def _text(data: dict[str, Any], key: str, path: Path) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{path}: {key}: expected a non-empty string, got {value!r}")
    return value


def _segment_entry(seg: object, index: int, path: Path) -> tuple[str, str]:
    where = f"{path}: segments[{index}]"
    if not isinstance(seg, dict):
        raise ManifestError(f"{where}: expected an object")
    name = seg.get("file")
    # A plain name only: a manifest is evidence, not instructions to read elsewhere.
    if not isinstance(name, str) or not name or name in (".", "..") or Path(name).name != name:
        raise ManifestError(f"{where}.file: expected a file name in the recording, got {name!r}")
    digest = seg.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64 or not _is_hex(digest):
        raise ManifestError(f"{where}.sha256: expected 64 hex digits, got {digest!r}")
    return name, digest.lower()


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def check_output(out: Path, force: bool) -> None:
    """Refuse an output path before any work: callers that check first (verify) fail fast."""
    if out.suffix.lower() != OUTPUT_SUFFIX:
        raise OutputError(f"{out}: expected a file name ending in {OUTPUT_SUFFIX}")
    if not out.parent.is_dir():
        raise OutputError(f"{out}: output directory {out.parent} does not exist")
    if out.is_dir():
        raise OutputError(f"{out}: is a directory, expected a file name")
    if out.exists() and not force:
        raise OutputError(f"{out}: already exists; refusing to overwrite it without --force")


def _segment_bytes(recording: _Recording, name: str, digest: str) -> bytes:
    """The segment's bytes, only if they are the ones the manifest vouches for."""
    path = recording.directory / name
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise SegmentError(f"{path}: segment listed in {MANIFEST} is missing") from exc
    except OSError as exc:
        raise SegmentError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise SegmentError(
            f"{path}: sha256 {actual} does not match {MANIFEST} ({digest}); "
            "run `bodycam verify` on the recording"
        )
    return data


# -- output ---------------------------------------------------------------------------------


def _write_mp4(recording: _Recording, path: Path, out: Path) -> int:
    """Mux every segment's packets into ``path`` (to become ``out``); returns the pictures.

    The sound's stream must exist before the first packet is written (the MP4
    header lists every stream), and the first segments may be pre-event
    pictures without sound: its template is the first segment that has some.
    """
    template = _first_audio(recording)
    try:
        return _write_streams(recording, path, out, template)
    finally:
        if template is not None:
            template.close()


def _write_streams(recording: _Recording, path: Path, out: Path, template: Any) -> int:
    output = av.open(str(path), "w", format="mp4", options={"movflags": MOVFLAGS})
    try:
        output.metadata.update(_metadata(recording))
        stream: Any = None
        sound: Any = None
        adts: Any = None  # MPEG-TS's AAC framing, undone for MP4
        if template is not None:
            audio = _audio_stream(template)
            sound = output.add_stream_from_template(audio)
            sound.time_base = TIME_BASE
            if SEGMENT_FORMATS[recording.codec] == "mpegts":
                adts = av.bitstream.BitStreamFilterContext("aac_adtstoasc", audio)
        last_dts: int | None = None
        last_audio: int | None = None
        frames = 0
        for name, digest in recording.segments:
            data = _segment_bytes(recording, name, digest)
            seg_path = recording.directory / name
            try:
                with av.open(io.BytesIO(data), format=SEGMENT_FORMATS[recording.codec]) as segment:
                    source = _video_stream(segment, recording.codec, seg_path)
                    if stream is None:
                        stream = output.add_stream_from_template(source)
                        stream.time_base = TIME_BASE
                    else:
                        _check_same_format(stream, source, seg_path)
                    audio = _audio_stream(segment)
                    inputs = (source,) if audio is None or sound is None else (source, audio)
                    for packet in segment.demux(*inputs):
                        if packet.size == 0:  # the demuxer's end-of-stream marker
                            continue
                        if packet.stream.type == "audio":
                            last_audio = _check_timestamps(packet, last_audio, seg_path)
                            for copied in adts.filter(packet) if adts is not None else [packet]:
                                copied.stream = sound
                                _mux(output, copied, out)
                            continue
                        last_dts = _check_timestamps(packet, last_dts, seg_path)
                        frames += _is_picture(bytes(packet), recording.codec)
                        packet.stream = stream
                        _mux(output, packet, out)
            except av.FFmpegError as exc:  # _mux's own errors are ExportErrors, not these
                raise SegmentError(f"{seg_path}: unreadable segment ({exc})") from exc
    except BaseException:
        with contextlib.suppress(av.FFmpegError, OSError):
            output.close()
        raise
    output.close()
    return frames


def _mux(output: Any, packet: Any, path: Path) -> None:
    """Write one packet; a failure here is the output's (disk full), not the segment's."""
    try:
        output.mux(packet)
    except av.FFmpegError as exc:
        raise OutputError(f"{path}: cannot write the export ({exc})") from exc


def _metadata(recording: _Recording) -> dict[str, str]:
    """Who and what, readable by any player (title, comment) and by a script (custom keys)."""
    tags = {
        "title": recording.recording_id,
        "comment": (
            f"bodycam recording {recording.recording_id} from device {recording.device_id}; "
            f"{MANIFEST} sha256 {recording.manifest_sha256}"
        ),
        "bodycam_recording_id": recording.recording_id,
        "bodycam_device_id": recording.device_id,
        "bodycam_manifest_sha256": recording.manifest_sha256,
    }
    if recording.clip is not None:
        tags["comment"] = f"clip ({recording.clip}) of {tags['comment']}"
        tags["bodycam_clip"] = recording.clip
    return tags


def _video_stream(container: Any, codec: str, path: Path) -> Any:
    if not container.streams.video:
        raise SegmentError(f"{path}: unreadable segment (no video stream)")
    stream = container.streams.video[0]
    if stream.codec_context.name != codec:
        found = stream.codec_context.name
        raise SegmentError(f"{path}: video is {found}, expected {codec} as {MANIFEST} says")
    if not stream.codec_context.width or not stream.codec_context.height:
        raise SegmentError(f"{path}: unreadable segment (no picture size: no SPS or image header)")
    return stream


def _first_audio(recording: _Recording) -> Any:
    """The first segment holding sound, opened (its sha256 checked); None without sound."""
    for name, digest in recording.segments:
        data = _segment_bytes(recording, name, digest)
        try:
            container = av.open(io.BytesIO(data), format=SEGMENT_FORMATS[recording.codec])
        except av.FFmpegError as exc:
            raise SegmentError(f"{recording.directory / name}: unreadable segment ({exc})") from exc
        if _audio_stream(container) is not None:
            return container
        container.close()
    return None


def _audio_stream(container: Any) -> Any:
    """The segment's sound, or None: a segment of pre-event pictures only still declares
    the stream (MPEG-TS lists it), but without a packet it has no parameters to copy."""
    for stream in container.streams.audio:
        if stream.codec_context.sample_rate:
            return stream
    return None


def _check_same_format(out_stream: Any, source: Any, path: Path) -> None:
    """One MP4 stream has one picture size: a segment of another size cannot join it."""
    want = (out_stream.codec_context.width, out_stream.codec_context.height)
    got = (source.codec_context.width, source.codec_context.height)
    if want != got:
        raise SegmentError(f"{path}: picture size {got[0]}x{got[1]}, expected {want[0]}x{want[1]}")


def _check_timestamps(packet: Any, last_dts: int | None, path: Path) -> int:
    """The packet's decode time in the export's time base; it must follow the previous one."""
    stamp = packet.dts if packet.dts is not None else packet.pts
    if stamp is None or packet.time_base is None:
        raise SegmentError(f"{path}: unreadable segment (a packet has no timestamp)")
    dts = round(stamp * packet.time_base / TIME_BASE)
    if last_dts is not None and dts <= last_dts:
        seconds = float(dts * TIME_BASE)
        raise SegmentError(
            f"{path}: timestamp {seconds:.3f} s does not follow the previous packet's "
            f"{float(last_dts * TIME_BASE):.3f} s (segments out of order?)"
        )
    return dts


def _is_picture(data: bytes, codec: str) -> bool:
    """Whether a packet carries a picture: an H.264 access unit may be SEI only."""
    if codec != "h264":
        return True  # one JPEG per packet, and empty packets never get this far
    return any(annexb.is_slice(nal) for _, nal in annexb.iter_nals(data))


def _hash_and_sync(path: Path) -> tuple[str, int]:
    """sha256 and size of the file as written, and make it durable before it gets its name."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        os.fsync(f.fileno())
    return digest.hexdigest(), size


def _publish(tmp: Path, out: Path, force: bool) -> None:
    """Give the finished file its name; without ``force``, never replace one that appeared since."""
    if force:
        os.replace(tmp, out)
    else:
        try:
            os.link(tmp, out)  # atomic and refuses an existing name, unlike rename
        except FileExistsError as exc:
            raise OutputError(
                f"{out}: already exists; refusing to overwrite it without --force"
            ) from exc
        except OSError:  # a file system without hard links: check, then rename
            if out.exists():
                raise OutputError(
                    f"{out}: already exists; refusing to overwrite it without --force"
                ) from None
            os.replace(tmp, out)
        else:
            tmp.unlink()
    _sync_directory(out.parent)


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    """Make a rename durable: the new name lives in the directory's own blocks."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
