"""``export_recording``: one MP4 that holds exactly the camera's frames and NAL units.

Recordings are made once per module on the virtual clock (640x360 so the SPEC
section 8 frame code fits, 1 s segments so there are several) and copied by
any test that changes them. Each export is checked against the segments
themselves: decoded frame codes, NAL units byte for byte (SEIs included),
timestamps, metadata, the sidecar, and every refusal leaves no file behind.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from av.bitstream import BitStreamFilterContext
from hypothesis import given
from hypothesis import strategies as st

from camera.cli import main as cli_main
from camera.errors import InputError
from camera.evidence import annexb
from camera.evidence.keys import load_public_key
from camera.evidence.svf_check import validate
from camera.export import (
    ExportError,
    ManifestError,
    OutputError,
    SegmentError,
    export_recording,
)
from camera.framecode import read_frame_code
from tests.conftest import make_device

PTS_HZ = 90_000
FRAME_TICKS = PTS_HZ // 30
START = b"\x00\x00\x00\x01"
SIGNED_VIDEO_UUID = bytes.fromhex("5369676e656420566964656f2e2e2e30")


# -- recordings -----------------------------------------------------------------------------


def record(root: Path, codec: str, height: int = 360) -> Path:
    """A 3.5 s recording: 1 s of pre-event, then 2.5 s; 1 s segments (4 of them)."""
    dev = make_device(
        root,
        {
            "video": {"codec": codec, "height": height},
            "buffer": {"pre_event": 1.0},
            "recording": {"segment_seconds": 1.0},
        },
    )
    dev.set_input(1.0, "holster", True)
    dev.run(until=3.5)
    [manifest] = dev.shutdown()
    rec = root / "store" / manifest["recording_id"]
    assert len(manifest["segments"]) >= 2
    return rec


@pytest.fixture(scope="module")
def h264_rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record(tmp_path_factory.mktemp("h264"), "h264")


@pytest.fixture(scope="module")
def mjpeg_rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record(tmp_path_factory.mktemp("mjpeg"), "mjpeg")


@pytest.fixture
def rec(h264_rec: Path, tmp_path: Path) -> Path:
    """A private copy of the H.264 recording, for tests that change it."""
    return Path(shutil.copytree(h264_rec, tmp_path / "rec" / h264_rec.name))


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


def manifest_of(rec: Path) -> dict[str, Any]:
    return json.loads((rec / "manifest.json").read_text())


def write_manifest(rec: Path, manifest: dict[str, Any]) -> None:
    (rec / "manifest.json").write_text(json.dumps(manifest))


def reseal(rec: Path, index: int) -> None:
    """Make the manifest vouch for segment ``index`` as it now is."""
    m = manifest_of(rec)
    seg = m["segments"][index]
    seg["sha256"] = hashlib.sha256((rec / seg["file"]).read_bytes()).hexdigest()
    write_manifest(rec, m)


# -- reading streams back -------------------------------------------------------------------


def nal_units(annexb: bytes) -> list[bytes]:
    """Annex-B to NAL units (none ends in a zero byte: trailing zeros belong to start codes)."""
    parts = re.split(b"\x00\x00\x01", annexb)
    return [nal for nal in (p.rstrip(b"\x00") for p in parts) if nal]


def segment_packets(rec: Path) -> list[bytes]:
    """Every packet of the recording's segments, in order, as stored."""
    packets = []
    for seg in manifest_of(rec)["segments"]:
        with av.open(str(rec / seg["file"])) as c:
            packets += [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]
    return packets


def mp4_packets(path: Path) -> list[tuple[int, bytes]]:
    """(dts in 90 kHz, data) of every packet of the export, H.264 turned back into Annex-B."""
    found = []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        bsf = (
            BitStreamFilterContext("h264_mp4toannexb", stream)
            if stream.codec_context.name == "h264"
            else None
        )
        for packet in c.demux(stream):
            if not packet.size:
                continue
            dts = round(packet.dts * packet.time_base * PTS_HZ)
            outs = bsf.filter(packet) if bsf else [packet]
            found += [(dts, bytes(q)) for q in outs]
        if bsf:
            assert bsf.filter(None) == []  # nothing held back: one packet in, one out
    return found


def decoded_codes(path: Path, no_picture: frozenset[int] = frozenset()) -> list[int | None]:
    """Frame codes of the decoded pictures; only the packets ``no_picture`` may fail to decode.

    FFmpeg's H.264 decoder answers an access unit without a slice (an SEI-only
    packet) with "invalid data", in a segment as in the export; a player skips it.
    """
    codes: list[int | None] = []
    failed = set()
    with av.open(str(path)) as c:
        for index, packet in enumerate(c.demux(c.streams.video[0])):
            try:
                frames = packet.decode()  # the final empty packet flushes the decoder
            except av.error.InvalidDataError:
                failed.add(index)
                continue
            codes += [read_frame_code(f.to_ndarray(format="gray")) for f in frames]
    assert failed == no_picture
    return codes


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- H.264 ----------------------------------------------------------------------------------


def test_h264_export_decodes_to_exactly_the_recorded_frames(h264_rec: Path, out_dir: Path) -> None:
    m = manifest_of(h264_rec)
    result = export_recording(h264_rec, out_dir / "x.mp4")

    last = result.frames  # the recording's closing signature: a packet with no picture
    codes = decoded_codes(result.path, no_picture=frozenset({last}))
    assert codes == list(range(m["first_frame"], m["last_frame"] + 1))
    assert result.frames == m["frames"] == m["last_frame"] - m["first_frame"] + 1
    with av.open(str(result.path)) as c:
        assert c.format.name.startswith("mov,mp4")
        assert c.streams.video[0].codec_context.name == "h264"
        assert len(c.streams) == 2  # and the sound


@pytest.mark.parametrize("which", ["h264_rec", "mjpeg_rec"])
def test_the_sound_is_exported_whole_beside_the_pictures(
    which: str, out_dir: Path, request: pytest.FixtureRequest
) -> None:
    """Every recorded sample plays from the export, at the time it was recorded."""
    rec: Path = request.getfixturevalue(which)
    m = manifest_of(rec)
    assert m["audio"]["packets"] > 0
    result = export_recording(rec, out_dir / "x.mp4")
    with av.open(str(result.path)) as c:
        [audio] = c.streams.audio
        assert audio.codec_context.name == "aac" and audio.frames == m["audio"]["packets"]
        first = next(c.demux(audio))
        assert first.pts is not None and first.time_base is not None
        # Timestamps count from the recording's first frame, for both streams.
        start = float(first.pts * first.time_base) + m["start_time"]
        assert start == pytest.approx(m["audio"]["first_time"], abs=0.0011)
    with av.open(str(result.path)) as c:
        samples = sum(frame.samples for frame in c.decode(audio=0))
    assert samples == m["audio"]["samples"]


def test_h264_export_keeps_every_nal_unit_byte_for_byte(h264_rec: Path, out_dir: Path) -> None:
    result = export_recording(h264_rec, out_dir / "x.mp4")

    source = [nal_units(p) for p in segment_packets(h264_rec)]
    exported = [nal_units(data) for _, data in mp4_packets(result.path)]
    assert exported == source
    sei = [nal for packet in source for nal in packet if nal[0] & 0x1F == 6]
    assert sei, "x264 writes an SEI in the first IDR: there must be one to check"
    with av.open(str(result.path)) as c:  # SPS/PPS went to avcC (length-prefixed in the file)
        assert c.streams.video[0].codec_context.extradata[0] == 1


def test_timestamps_run_on_across_segments(h264_rec: Path, out_dir: Path) -> None:
    result = export_recording(h264_rec, out_dir / "x.mp4")
    stamps = [dts for dts, _ in mp4_packets(result.path)]
    assert stamps[0] == 0
    assert {b - a for a, b in itertools.pairwise(stamps[:-1])} == {FRAME_TICKS}
    assert stamps[-1] - stamps[-2] == 1  # the closing signature: one tick after the last frame


def closing_sei() -> bytes:
    """An SEI "user data unregistered" NAL unit with the Signed Video UUID (a closing signature)."""
    payload = SIGNED_VIDEO_UUID + bytes(range(1, 40))
    return b"\x06\x05" + bytes([len(payload)]) + payload + b"\x80"


def rewrite_segment(segment: Path, *, keep_frames: bool, then: bytes) -> None:
    """Remux ``segment`` (its packets, or none) and end it with the one packet ``then``."""
    copy = segment.with_suffix(".new")
    final = -FRAME_TICKS
    with av.open(str(segment)) as src, av.open(str(copy), "w", format="mpegts") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        stream.time_base = Fraction(1, PTS_HZ)
        for packet in src.demux(src.streams.video[0]):
            if packet.size and keep_frames:
                final = packet.pts
                packet.stream = stream
                dst.mux(packet)
        closing = av.Packet(then)
        closing.pts = closing.dts = final + FRAME_TICKS
        closing.time_base = Fraction(1, PTS_HZ)
        closing.stream = stream
        dst.mux(closing)
    copy.replace(segment)


def test_the_closing_signature_is_exported_and_the_video_still_validates(
    h264_rec: Path, out_dir: Path
) -> None:
    """A recording ends with an SEI-only access unit (its closing signature): kept, not a frame,
    and the exported video validates GOP by GOP with the device's key, every frame covered."""
    rec = h264_rec
    m = manifest_of(rec)
    result = export_recording(rec, out_dir / "x.mp4")

    exported = mp4_packets(result.path)
    assert len(exported) == m["frames"] + 1
    assert result.frames == m["frames"]  # the SEI is kept but is not a frame
    assert set(nal_types(exported[-1][1])) <= {6, 9}  # SEIs only (MPEG-TS may add an AUD)
    assert [nal_units(d) for _, d in exported] == [nal_units(p) for p in segment_packets(rec)]
    public_key, _ = load_public_key(rec.parent / f"{m['device_id']}.pub.pem")
    stream = b"".join(data for _, data in exported)
    check = validate(stream, public_key)
    assert check.ok and not check.unsigned_frames, check.problems
    assert check.frames == m["frames"]


def test_metadata_names_the_recording_device_and_manifest(h264_rec: Path, out_dir: Path) -> None:
    m = manifest_of(h264_rec)
    manifest_sha = hashlib.sha256((h264_rec / "manifest.json").read_bytes()).hexdigest()
    result = export_recording(h264_rec, out_dir / "x.mp4")
    with av.open(str(result.path)) as c:
        meta = c.metadata
    assert meta["title"] == m["recording_id"]
    assert meta["bodycam_recording_id"] == m["recording_id"]
    assert meta["bodycam_device_id"] == m["device_id"] == "BWC-0001"
    assert meta["bodycam_manifest_sha256"] == manifest_sha
    assert m["recording_id"] in meta["comment"] and manifest_sha in meta["comment"]


def test_sidecar_is_the_sha256sum_of_the_export(h264_rec: Path, out_dir: Path) -> None:
    out = out_dir / "case 17.mp4"
    result = export_recording(h264_rec, out)
    data = out.read_bytes()
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.bytes == len(data)
    assert result.path == out
    sidecar = out_dir / "case 17.mp4.sha256"
    assert sidecar.read_text() == f"{result.sha256}  case 17.mp4\n"
    assert leftovers(out_dir) == ["case 17.mp4", "case 17.mp4.sha256"]


def test_the_same_recording_exports_to_the_same_bytes(h264_rec: Path, out_dir: Path) -> None:
    a = export_recording(h264_rec, out_dir / "a.mp4")
    b = export_recording(h264_rec, out_dir / "b.mp4")
    assert a.sha256 == b.sha256


# -- MJPEG ----------------------------------------------------------------------------------


def test_mjpeg_exports_to_mp4_with_every_jpeg_intact(mjpeg_rec: Path, out_dir: Path) -> None:
    m = manifest_of(mjpeg_rec)
    result = export_recording(mjpeg_rec, out_dir / "x.mp4")

    assert [d for _, d in mp4_packets(result.path)] == segment_packets(mjpeg_rec)
    assert decoded_codes(result.path) == list(range(m["first_frame"], m["last_frame"] + 1))
    assert result.frames == m["frames"]
    with av.open(str(result.path)) as c:
        assert c.streams.video[0].codec_context.name == "mjpeg"
        assert c.metadata["title"] == m["recording_id"]


# -- refusals: one line naming the file, and nothing left behind -----------------------------


def test_refuses_to_overwrite_without_force(h264_rec: Path, out_dir: Path) -> None:
    out = out_dir / "x.mp4"
    out.write_bytes(b"earlier export")
    with pytest.raises(OutputError, match=re.escape(f"{out}: already exists")) as err:
        export_recording(h264_rec, out)
    assert "--force" in str(err.value) and "\n" not in str(err.value)
    assert out.read_bytes() == b"earlier export"
    assert leftovers(out_dir) == ["x.mp4"]

    result = export_recording(h264_rec, out, force=True)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == result.sha256
    assert leftovers(out_dir) == ["x.mp4", "x.mp4.sha256"]


def test_a_file_that_appears_during_the_export_is_not_replaced(
    h264_rec: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import camera.export as export

    out = out_dir / "x.mp4"
    real = export._hash_and_sync

    def racing(path: Path) -> tuple[str, int]:
        out.write_bytes(b"someone else's")
        return real(path)

    monkeypatch.setattr(export, "_hash_and_sync", racing)
    with pytest.raises(OutputError, match="already exists"):
        export_recording(h264_rec, out)
    assert out.read_bytes() == b"someone else's"
    assert leftovers(out_dir) == ["x.mp4"]


@pytest.mark.parametrize("problem", ["out exists", "last segment missing"])
def test_refused_before_anything_is_written(
    rec: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch, problem: str
) -> None:
    """A refusal that needs no decoding comes at once, not after a long export."""
    import camera.export as export

    def must_not_write(*args: object) -> int:
        raise AssertionError("started writing")

    monkeypatch.setattr(export, "_write_mp4", must_not_write)
    out = out_dir / "x.mp4"
    if problem == "out exists":
        out.write_bytes(b"earlier export")
    else:
        (rec / manifest_of(rec)["segments"][-1]["file"]).unlink()
    with pytest.raises(ExportError):
        export_recording(rec, out)


def test_missing_segment_is_named_and_no_file_is_left(rec: Path, out_dir: Path) -> None:
    gone = rec / manifest_of(rec)["segments"][1]["file"]
    gone.unlink()
    with pytest.raises(SegmentError, match=re.escape(f"{gone}: segment listed in manifest.json")):
        export_recording(rec, out_dir / "x.mp4")
    assert leftovers(out_dir) == []


def test_segment_that_differs_from_the_manifest_is_refused(rec: Path, out_dir: Path) -> None:
    seg = rec / manifest_of(rec)["segments"][2]["file"]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0x01
    seg.write_bytes(bytes(data))
    with pytest.raises(SegmentError, match=re.escape(f"{seg}: sha256 ")) as err:
        export_recording(rec, out_dir / "x.mp4")
    assert "does not match manifest.json" in str(err.value)
    assert leftovers(out_dir) == []


def test_unreadable_segment_is_named_and_the_partial_export_removed(
    rec: Path, out_dir: Path
) -> None:
    """The manifest vouches for garbage: export fails mid-way and cleans up its temp file."""
    seg = rec / manifest_of(rec)["segments"][2]["file"]
    seg.write_bytes(bytes(range(256)) * 64)
    reseal(rec, 2)
    with pytest.raises(SegmentError, match=re.escape(f"{seg}: unreadable segment")):
        export_recording(rec, out_dir / "x.mp4")
    assert leftovers(out_dir) == []


def test_segment_without_a_picture_size_is_refused(rec: Path, out_dir: Path) -> None:
    """A segment holding one SEI-only packet and no SPS: nothing to size an MP4 track by."""
    m = manifest_of(rec)
    segment = rec / m["segments"][0]["file"]
    rewrite_segment(segment, keep_frames=False, then=START + closing_sei())
    m["segments"] = m["segments"][:1]
    write_manifest(rec, m)
    reseal(rec, 0)
    with pytest.raises(SegmentError, match=re.escape(f"{segment}: unreadable segment (no picture")):
        export_recording(rec, out_dir / "x.mp4")
    assert leftovers(out_dir) == []


def test_segment_of_another_picture_size_is_refused(
    rec: Path, out_dir: Path, tmp_path: Path
) -> None:
    other = record(tmp_path / "other", "h264", height=480)
    m = manifest_of(rec)
    segment = rec / m["segments"][1]["file"]
    shutil.copyfile(other / segment.name, segment)  # same timestamps, other size
    reseal(rec, 1)
    with pytest.raises(
        SegmentError, match=re.escape(f"{segment}: picture size 640x480, expected 640x360")
    ):
        export_recording(rec, out_dir / "x.mp4")
    assert leftovers(out_dir) == []


def test_segments_out_of_order_are_refused(rec: Path, out_dir: Path) -> None:
    m = manifest_of(rec)
    m["segments"][0], m["segments"][1] = m["segments"][1], m["segments"][0]
    write_manifest(rec, m)
    with pytest.raises(SegmentError, match="does not follow the previous packet"):
        export_recording(rec, out_dir / "x.mp4")
    assert leftovers(out_dir) == []


def test_missing_manifest_says_so(rec: Path, out_dir: Path) -> None:
    (rec / "manifest.json").unlink()
    (rec / "journal.jsonl").unlink(missing_ok=True)
    with pytest.raises(ManifestError, match=re.escape(f"{rec / 'manifest.json'}: missing")):
        export_recording(rec, out_dir / "x.mp4")
    assert leftovers(out_dir) == []


def test_interrupted_recording_points_to_recover(rec: Path, out_dir: Path) -> None:
    (rec / "manifest.json").unlink()
    (rec / "journal.jsonl").write_text("")
    with pytest.raises(ManifestError, match="bodycam recover"):
        export_recording(rec, out_dir / "x.mp4")


def test_oversized_manifest_is_not_parsed(
    rec: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import camera.export as export

    monkeypatch.setattr(export, "MAX_MANIFEST_BYTES", 100)
    with pytest.raises(ManifestError, match="larger than 100 bytes, not a manifest"):
        export_recording(rec, out_dir / "x.mp4")


def test_missing_recording_directory(tmp_path: Path, out_dir: Path) -> None:
    with pytest.raises(ManifestError, match="not a recording directory"):
        export_recording(tmp_path / "nope", out_dir / "x.mp4")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: "{not json", "not valid JSON"),
        (lambda m: [m], "expected a JSON object"),
        (lambda m: {**m, "recording_id": ""}, "recording_id: expected a non-empty string"),
        (lambda m: {k: v for k, v in m.items() if k != "device_id"}, "device_id: expected"),
        (lambda m: {**m, "codec": "hevc"}, "codec: expected one of h264, mjpeg, got 'hevc'"),
        (lambda m: {**m, "segments": []}, "segments: expected a non-empty list"),
        (lambda m: {**m, "segments": ["a"]}, r"segments\[0\]: expected an object"),
        (
            lambda m: {**m, "segments": [{**m["segments"][0], "file": "../../etc/passwd"}]},
            r"segments\[0\]\.file: expected a file name in the recording",
        ),
        (
            lambda m: {**m, "segments": [{**m["segments"][0], "sha256": "abc"}]},
            r"segments\[0\]\.sha256: expected 64 hex digits",
        ),
    ],
)
def test_bad_manifest_is_named(rec: Path, out_dir: Path, change: Any, message: str) -> None:
    changed = change(manifest_of(rec))
    text = changed if isinstance(changed, str) else json.dumps(changed)
    (rec / "manifest.json").write_text(text)
    with pytest.raises(ManifestError, match=message) as err:
        export_recording(rec, out_dir / "x.mp4")
    assert str(err.value).startswith(f"{rec / 'manifest.json'}: ")
    assert "\n" not in str(err.value)
    assert leftovers(out_dir) == []


def test_codec_that_differs_from_the_manifest_is_refused(rec: Path, out_dir: Path) -> None:
    m = manifest_of(rec)
    m["codec"] = "mjpeg"
    write_manifest(rec, m)
    # The .ts bytes forced through the Matroska demuxer: unreadable, and named.
    with pytest.raises(SegmentError, match=re.escape(f"{rec / m['segments'][0]['file']}: ")):
        export_recording(rec, out_dir / "x.mp4")
    assert leftovers(out_dir) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing/x.mp4", "output directory .* does not exist"),
        ("x.mkv", r"expected a file name ending in \.mp4"),
        ("adir.mp4", "is a directory"),
    ],
)
def test_bad_output_path_is_named(h264_rec: Path, out_dir: Path, name: str, message: str) -> None:
    (out_dir / "adir.mp4").mkdir()
    with pytest.raises(OutputError, match=message) as err:
        export_recording(h264_rec, out_dir / name)
    assert str(err.value).startswith(f"{out_dir / name}: ")
    assert leftovers(out_dir) == ["adir.mp4"]


def test_every_export_error_is_bad_input() -> None:
    for cls in (ManifestError, SegmentError, OutputError):
        assert issubclass(cls, ExportError)
    assert issubclass(ExportError, InputError)


# -- bodycam export ----------------------------------------------------------------------


def bodycam(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_exports_a_verified_recording_and_names_what_it_wrote(
    h264_rec: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = out_dir / "case.mp4"
    code, stdout, err = bodycam(capsys, "export", str(h264_rec), "--out", str(out))

    assert (code, err) == (0, "")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    frames = manifest_of(h264_rec)["frames"]
    assert f"  file:    {out}\n" in stdout
    assert f"  sha256:  {digest}\n" in stdout
    assert f"  frames:  {frames}\n" in stdout
    assert f"  sidecar: {out}.sha256\n" in stdout
    assert f"({frames} frames verified)" in stdout
    assert (out_dir / "case.mp4.sha256").read_text() == f"{digest}  case.mp4\n"


def test_cli_refuses_to_export_a_recording_that_does_not_verify(
    rec: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seg = rec / manifest_of(rec)["segments"][1]["file"]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0x01
    seg.write_bytes(bytes(data))

    code, stdout, err = bodycam(capsys, "export", str(rec), "--out", str(out_dir / "x.mp4"))

    assert code == 1
    assert stdout == ""
    first, *problems = err.splitlines()
    assert first == f"bodycam export: {rec}: does not verify; not exported:"
    assert any(seg.name in p and "sha256" in p for p in problems), problems
    assert leftovers(out_dir) == []


def test_cli_refuses_an_existing_output_without_force_before_verifying(
    h264_rec: Path,
    out_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import camera.evidence.verify as verify

    out = out_dir / "x.mp4"
    out.write_bytes(b"earlier export")
    checked: list[Path] = []
    real = verify.verify_recording
    monkeypatch.setattr(verify, "verify_recording", lambda d: checked.append(d) or real(d))

    code, stdout, err = bodycam(capsys, "export", str(h264_rec), "--out", str(out))

    assert (code, stdout) == (2, "")
    refused = f"{out}: already exists; refusing to overwrite it without --force"
    assert err == f"bodycam export: {refused}\n"
    assert checked == []  # refused at once, not after reading every segment
    assert out.read_bytes() == b"earlier export"

    code, stdout, err = bodycam(capsys, "export", str(h264_rec), "--out", str(out), "--force")
    assert (code, err) == (0, "")
    assert checked == [h264_rec]
    assert hashlib.sha256(out.read_bytes()).hexdigest() in stdout


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nope", "nope: no such file or directory; expected one recording directory"),
        ("empty", "empty: no recordings in it; expected one recording directory"),
        ("file.txt", "file.txt: not a recording (not a directory); expected one recording"),
        ("store", "store: a storage directory holding 1 recording(s); export takes one"),
    ],
)
def test_cli_export_takes_exactly_one_recording_directory(
    h264_rec: Path,
    tmp_path: Path,
    out_dir: Path,
    capsys: pytest.CaptureFixture[str],
    target: str,
    message: str,
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("not a recording")
    shutil.copytree(h264_rec, tmp_path / "store" / h264_rec.name)

    given = str(tmp_path / target)
    code, stdout, err = bodycam(capsys, "export", given, "--out", str(out_dir / "x.mp4"))

    assert (code, stdout) == (2, "")
    assert err.startswith(f"bodycam export: {tmp_path}/{message}")
    assert err.count("\n") == 1
    assert leftovers(out_dir) == []


def test_cli_export_needs_an_output(h264_rec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = bodycam(capsys, "export", str(h264_rec))
    assert code == 2
    assert "--out" in err and err.count("\n") == 1


# -- the Annex-B scanner the export counts pictures with -----------------------------------


def nal_types(data: bytes) -> list[int]:
    return [annexb.nal_type(nal) for nal in annexb.split_nals(data)]


# A NAL unit's header byte (forbidden bit 0), a body free of start-code emulation (no
# zero bytes at all: stricter than H.264, but it keeps the oracle obvious), and up to
# three zero bytes of padding after it. A header 0 with an empty body is no unit at all:
# that is what two start codes in a row look like.
nal_unit = st.tuples(
    st.integers(0, 0x7F),
    st.binary(max_size=40).map(lambda b: b.replace(b"\0", b"\1")),
    st.integers(0, 3),
    st.booleans(),
)


@given(st.lists(nal_unit, max_size=12))
def test_annexb_nal_types_finds_every_nal_unit(units: list[tuple[int, bytes, int, bool]]) -> None:
    data = b"".join(
        (b"\x00\x00\x00\x01" if long else b"\x00\x00\x01") + bytes([header]) + body + bytes(pad)
        for header, body, pad, long in units
    )
    expected = [header & 0x1F for header, body, _, _ in units if header or body]
    assert nal_types(data) == expected


def test_annexb_nal_types_skips_what_is_not_a_nal_unit() -> None:
    assert nal_types(b"") == []
    assert nal_types(b"\x65\x88") == []  # no start code
    assert nal_types(b"\x00\x00\x01") == []
    assert nal_types(b"\x00\x00\x01\x00\x00\x01\x65\x88") == [5]
    assert nal_types(b"\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x06\x05") == [9, 6]
