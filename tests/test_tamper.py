"""Tampering with signed evidence: ``bodycam verify`` fails and names what was done (SPEC 12).

One signed H.264 storage (three short recordings of three 2 s segments), one
MJPEG storage and one storage whose recording was recovered at boot after a
power cut are made once for the module; every case tampers with a private
copy, the way someone with the card and our file formats (but not the
device key) could, and asserts the exact finding: which segment, GOP, frame,
field, link or audit line. Manifests edited here are re-hashed where the
case says so, so the failure must come from the signatures, the chain or
the audit log, not from a stale segment hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from hypothesis import given
from hypothesis import strategies as st

from camera.cli import main
from camera.evidence import annexb
from camera.evidence.audit import read_audit
from camera.evidence.canonical import sign_document
from camera.evidence.keys import test_key
from camera.evidence.records import MANIFEST
from camera.evidence.svf import UUID
from camera.evidence.verify import verify_recording
from camera.evidence.verify.decode import signature_only
from camera.evidence.verify.instream import restate
from camera.evidence.verify.trust import keys_beside
from camera.paths import find_recordings
from tests.conftest import make_device

SMALL = {"buffer": {"pre_event": 1.0}, "recording": {"segment_seconds": 2.0}}
TICKS = Fraction(1, 90_000)
EDITED = (
    "manifest.json: signature does not match (a field was edited, or it was signed by another key)"
)


# -- the signed storages, made once ----------------------------------------------------------
def record_three(root: Path) -> Path:
    """Three H.264 recordings of 3 segments: stopped by holds, the last by the end of the run."""
    dev = make_device(root, SMALL)
    dev.set_input(2.0, "holster", True)
    dev.pulse(3.0, "button", 3.5)  # stop at 6.0
    dev.set_input(6.8, "holster", False)
    dev.set_input(8.0, "holster", True)
    dev.pulse(8.6, "button", 0.1)  # a double press while recording: a marker
    dev.pulse(8.9, "button", 0.1)
    dev.pulse(9.5, "button", 3.5)  # stop at 12.5
    dev.set_input(13.0, "holster", False)
    dev.set_input(14.0, "holster", True)
    dev.run(until=17.0)
    recs = dev.shutdown()
    assert len(recs) == 3 and all(len(m["segments"]) == 3 for m in recs)
    assert recs[1]["markers"]
    return root / "store"


@pytest.fixture(scope="module")
def h264_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_three(tmp_path_factory.mktemp("h264"))


@pytest.fixture(scope="module")
def mjpeg_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mjpeg")
    dev = make_device(root, {**SMALL, "video": {"codec": "mjpeg"}})
    dev.set_input(2.0, "holster", True)
    dev.run(until=5.5)
    [m] = dev.shutdown()
    assert len(m["segments"]) >= 2
    return root / "store"


@pytest.fixture(scope="module")
def recovered_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Power cut mid-recording, then the next boot recovers (and signs) it."""
    root = tmp_path_factory.mktemp("recovered")
    # Pictures only: the tests on it rewrite segments' video packets (sound after a
    # power cut: tests/test_recorder_audio.py, scenarios/ci/audio_power_loss.toml).
    quiet = {**SMALL, "audio": {"enabled": False}}
    dev = make_device(root, quiet)
    dev.set_input(2.0, "holster", True)
    dev.run(until=6.3)
    dev.hal.storage.unlock()  # the process is gone: the kernel drops its lock
    again = make_device(root, quiet)
    again.run(until=again.clock.now() + 0.5)
    again.shutdown()
    return root / "store"


@pytest.fixture
def store(h264_store: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(h264_store, tmp_path / "store"))


def recordings(storage: Path) -> list[Path]:
    return sorted(p for p in storage.iterdir() if p.is_dir())


def public_key(storage: Path) -> Path:
    [pem] = storage.glob("*.pub.pem")
    return pem


def run_verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(["verify", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out.splitlines()


def failing(lines: list[str], path: Path, check: str | None = None) -> list[str]:
    """The problem lines under ``FAIL  path`` (or ``FAIL  path (check)``)."""
    head = f"FAIL  {path}" + (f" ({check})" if check else "")
    assert head in lines, lines
    out = []
    for line in lines[lines.index(head) + 1 :]:
        if not line.startswith("      "):
            break
        if line.startswith("      - "):
            out.append(line.removeprefix("      - "))
    return out


# -- editing manifests and segments ----------------------------------------------------------
def manifest(rec: Path) -> dict[str, Any]:
    return json.loads((rec / MANIFEST).read_text())


def write_manifest(rec: Path, m: dict[str, Any]) -> None:
    (rec / MANIFEST).write_text(json.dumps(m, indent=2) + "\n")


def rehash(rec: Path, m: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest made consistent with the segments as they now are (not re-signed)."""
    m = m or manifest(rec)
    for seg in m["segments"]:
        data = (rec / seg["file"]).read_bytes()
        seg["sha256"], seg["bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    m["frames"] = sum(s["frames"] for s in m["segments"])
    m["last_frame"] = m["segments"][-1]["last_frame"]
    m["end_time"] = m["segments"][-1]["end_time"]
    write_manifest(rec, m)
    return m


@dataclass
class Packet:
    data: bytes
    pts: int
    dts: int
    key: bool


def packets(segment: Path) -> list[Packet]:
    with av.open(str(segment), format="mpegts") as c:
        stream = c.streams.video[0]
        return [Packet(bytes(p), p.pts, p.dts, p.is_keyframe) for p in c.demux(stream) if p.size]


def write_ts(segment: Path, items: list[Packet]) -> None:
    """Rewrite ``segment`` (a valid MPEG-TS) holding exactly ``items``."""
    copy = segment.with_suffix(".new")
    with av.open(str(segment), format="mpegts") as src, av.open(str(copy), "w", "mpegts") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        stream.time_base = TICKS
        for item in items:
            packet = av.Packet(item.data)
            packet.pts, packet.dts, packet.time_base = item.pts, item.dts, TICKS
            packet.is_keyframe = item.key
            packet.stream = stream
            dst.mux(packet)
    copy.replace(segment)


def flip_in_last_slice(segment: Path, index: int) -> int:
    """Flip one bit near the end of packet ``index``'s last slice, in place; returns the offset.

    The end of the last slice is the bottom of the picture: the frame code at
    its top still reads, so the finding can be checked against the frame number.
    """
    body = bytearray(segment.read_bytes())
    nal = bytes(
        [n for n in annexb.split_nals(packets(segment)[index].data) if annexb.is_slice(n)][-1]
    )
    for start in range(len(nal) - 40, 8, -1):
        window = nal[start : start + 12]
        if body.count(window) == 1:
            at = body.index(window) + 6
            body[at] ^= 0x04
            segment.write_bytes(bytes(body))
            return at
    raise AssertionError("no unique window in the slice")


def gop_of(rec: Path, file: str, index: int) -> tuple[int, int, int]:
    """(recording GOP index, its first and last frame number) of packet ``index`` of ``file``."""
    frames: list[tuple[int, bool, str]] = []
    for seg in manifest(rec)["segments"]:
        pkts = [
            p
            for p in packets(rec / seg["file"])
            if any(map(annexb.is_primary_slice, annexb.split_nals(p.data)))
        ]
        frames += [(seg["first_frame"] + k, p.key, seg["file"]) for k, p in enumerate(pkts)]
    starts = [i for i, (_, key, _) in enumerate(frames) if key]
    target = next(i for i, f in enumerate(frames) if f[2] == file) + index
    gop = max(g for g, s in enumerate(starts) if s <= target)
    end = starts[gop + 1] - 1 if gop + 1 < len(starts) else len(frames) - 1
    return gop, frames[starts[gop]][0], frames[end][0]


# -- untouched evidence ----------------------------------------------------------------------
def test_untouched_storage_verifies_and_says_the_key_was_found_beside_it(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    code, lines = run_verify(capsys, str(store))
    assert code == 0, lines
    verdicts = [line for line in lines if not line.startswith("      audio: ")]
    assert [line[:6] for line in verdicts[:3]] == ["OK    "] * 3
    assert sum(line.startswith("      audio: aac 48 kHz mono") for line in lines) == 3
    note = (
        f"note: key not independently trusted: using {public_key(store)} found beside the "
        "recordings (pass --key to check against a key you trust)"
    )
    assert lines.count(note) == 1
    assert lines[-1] == f"3 of 3 recordings verified; {store}: chain intact, audit log intact"


def test_with_a_trusted_key_nothing_is_said_about_trust(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    code, lines = run_verify(capsys, "--key", str(public_key(store)), str(store))
    assert code == 0, lines
    assert not any("not independently trusted" in line for line in lines)


def test_recovered_recording_verifies_with_its_unsigned_last_gop_as_a_note(
    capsys: pytest.CaptureFixture[str], recovered_store: Path, tmp_path: Path
) -> None:
    storage = Path(shutil.copytree(recovered_store, tmp_path / "store"))
    [rec] = recordings(storage)
    m = manifest(rec)
    assert "recovery" in m and m["stop"]["reason"] == "power_loss" and "signature" in m
    code, lines = run_verify(capsys, str(storage))
    assert code == 0, lines
    notes = [line for line in lines if line.startswith("      note: ")]
    assert notes and all("not signed: the power was cut before its signature" in n for n in notes)


def test_the_json_report_has_the_storage_checks(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    shutil.rmtree(recordings(store)[1])
    code = main(["verify", "--json", str(store)])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["ok"] is False and report["key_trusted"] is False
    assert [r["ok"] for r in report["recordings"]] == [True, True]
    checks = {c["check"]: c for c in report["storage"]}
    assert set(checks) == {"chain", "audit log"} and not checks["chain"]["ok"]
    assert any("not independently trusted" in note for note in report["notes"])


# -- keys --------------------------------------------------------------------------------------
def test_no_key_anywhere_fails_every_recording(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    public_key(store).unlink()
    code, lines = run_verify(capsys, str(store))
    assert code == 1
    for rec in recordings(store):
        assert "no public key to check signatures (pass --key)" in failing(lines, rec)
    assert "audit.jsonl: no public key to check its checkpoints (pass --key)" in failing(
        lines, store, "audit log"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"garbage", "expected a PEM public key on curve P-256"),
        (None, "no such file"),
    ],
)
def test_an_unusable_key_is_bad_input(
    capsys: pytest.CaptureFixture[str],
    store: Path,
    tmp_path: Path,
    content: bytes | None,
    expected: str,
) -> None:
    pem = tmp_path / "key.pem"
    if content is not None:
        pem.write_bytes(content)
    code = main(["verify", "--key", str(pem), str(store)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(pem) in err and expected in err


def test_another_trusted_key_names_both_keys(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    other = test_key("OTHER", 7)
    pem = tmp_path / "other.pub.pem"
    pem.write_bytes(other.public_pem)
    signer = manifest(recordings(store)[0])["key_id"]
    code, lines = run_verify(capsys, "--key", str(pem), str(recordings(store)[0]))
    assert code == 1
    problems = failing(lines, recordings(store)[0])
    trusted = other.key_id[:16]
    assert (
        f"manifest.json: signed by key {signer[:16]}..., not by the trusted key {trusted}..."
        in (problems)
    )
    assert any("carries a different public key than the one given" in p for p in problems)


def test_manifest_re_signed_by_another_key(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    rec = recordings(store)[1]
    m = manifest(rec)
    m["stop"]["reason"] = "end_of_run"
    other = test_key("BWC-0001", 99)
    write_manifest(rec, sign_document(other, {**m, "key_id": other.key_id}))
    trusted = manifest(recordings(store)[0])["key_id"]
    code, lines = run_verify(capsys, "--key", str(public_key(store)), str(store))
    assert code == 1
    signer = other.key_id[:16]
    assert (
        f"manifest.json: signed by key {signer}..., not by the trusted key {trusted[:16]}..."
        in (failing(lines, rec))
    )


# -- the manifest ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["trigger"].update(time=m["trigger"]["time"] + 1.0, source="button"),
        lambda m: m["stop"].update(reason="storage_full"),
        lambda m: m["markers"].clear(),
        lambda m: m["trigger"].update(source="console"),
    ],
    ids=["trigger-time", "stop-reason", "marker-removed", "source"],
)
def test_edited_manifest_field_breaks_its_signature_the_chain_and_the_audit_log(
    capsys: pytest.CaptureFixture[str], store: Path, edit: Callable[[dict[str, Any]], None]
) -> None:
    first, rec, last = recordings(store)
    m = manifest(rec)
    edit(m)
    if m["trigger"]["time"] != manifest(rec)["trigger"]["time"]:
        m["pre_event_seconds"] = (
            m["trigger"]["time"] - m["start_time"]
        )  # consistent, as a forger would
    rehash(rec, m)
    code, lines = run_verify(capsys, str(store))
    assert code == 1
    assert failing(lines, rec) == [EDITED]
    assert f"OK    {first}" in " ".join(lines) and f"OK    {last}" in " ".join(lines)
    [chain] = failing(lines, store, "chain")
    assert chain.startswith(f"{last.name}: previous names {rec.name} with manifest sha256 ")
    audit = failing(lines, store, "audit log")
    assert any(
        re.fullmatch(
            rf"audit.jsonl line \d+: recording {rec.name} stopped at \S+: manifest differs "
            "from the one the audit log recorded",
            a,
        )
        for a in audit
    ), audit


def test_stripped_signature(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    rec = recordings(store)[0]
    m = manifest(rec)
    del m["signature"]
    write_manifest(rec, m)
    code, lines = run_verify(capsys, str(rec))
    assert code == 1 and failing(lines, rec) == ["manifest.json: not signed"]


@pytest.mark.parametrize("how", ["another manifest's", "flipped", "not base64"])
def test_forged_signature(capsys: pytest.CaptureFixture[str], store: Path, how: str) -> None:
    first, rec, _ = recordings(store)
    m = manifest(rec)
    if how == "another manifest's":
        m["signature"] = manifest(first)["signature"]
        expected = EDITED
    elif how == "flipped":
        raw = bytearray(base64.b64decode(m["signature"]))
        raw[-3] ^= 0x01
        m["signature"] = base64.b64encode(bytes(raw)).decode()
        expected = EDITED
    else:
        m["signature"] = "not a signature!"
        expected = "manifest.json: signature is not base64"
    write_manifest(rec, m)
    code, lines = run_verify(capsys, str(rec))
    assert code == 1 and failing(lines, rec) == [expected]


def test_ill_typed_provenance_is_named(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    rec = recordings(store)[1]
    m = manifest(rec)
    m["test_key"] = "yes"
    m["previous"] = {"recording_id": rec.name}
    del m["firmware_version"]
    write_manifest(rec, m)
    problems = failing(run_verify(capsys, str(rec))[1], rec)
    assert "manifest.json: missing firmware_version" in problems
    assert 'manifest.json: test_key is "yes", expected true or false' in problems
    assert "manifest.json: previous: missing manifest_sha256" in problems


# -- the segments: in-stream signatures --------------------------------------------------------
def test_flipped_bit_in_a_slice_names_segment_gop_and_frame(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    rec = recordings(store)[1]
    flip_in_last_slice(rec / "segment-0001.ts", 10)
    gop, first, last = gop_of(rec, "segment-0001.ts", 10)
    frame = manifest(rec)["segments"][1]["first_frame"] + 10
    code, lines = run_verify(capsys, str(rec))
    assert code == 1
    problems = failing(lines, rec)
    assert (
        f"segment-0001.ts: GOP {gop} (frames {first}-{last}): frame {frame} altered "
        "(slice hash not in the signed list)"
    ) in problems
    assert "segment-0001.ts: sha256 mismatch (altered or damaged)" in problems


def test_flipped_bit_with_the_segment_re_hashed_still_names_the_frame(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    rec = recordings(store)[0]
    flip_in_last_slice(rec / "segment-0002.ts", 3)
    rehash(rec)
    frame = manifest(rec)["segments"][2]["first_frame"] + 3
    problems = failing(run_verify(capsys, str(rec))[1], rec)
    assert EDITED in problems
    assert any(
        p.startswith("segment-0002.ts: GOP ")
        and p.endswith(f": frame {frame} altered (slice hash not in the signed list)")
        for p in problems
    ), problems


def test_truncated_segment(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    rec = recordings(store)[0]
    seg = rec / "segment-0001.ts"
    size = seg.stat().st_size
    with av.open(str(seg)) as c:
        keep = [p for p in c.demux(c.streams.video[0]) if p.size][55].pos  # frames 0-54 stay
    with seg.open("r+b") as f:
        f.truncate(keep)
    gop, first, _ = gop_of(rec, "segment-0001.ts", 54)
    problems = failing(run_verify(capsys, str(rec))[1], rec)
    assert f"segment-0001.ts: {keep} bytes, manifest says {size}" in problems
    assert any(
        re.fullmatch(
            rf"segment-0001\.ts: GOP {gop} \(frames {first}-{first + 54 - 30}\): "
            r"\d+ signed slice\(s\) missing at its end",
            p,
        )
        for p in problems
    ), problems


def test_deleted_segment_with_the_manifest_made_consistent(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    rec = recordings(store)[0]
    m = manifest(rec)
    (rec / "segment-0001.ts").unlink()
    del m["segments"][1]
    rehash(rec, m)
    problems = failing(run_verify(capsys, str(rec))[1], rec)
    assert EDITED in problems
    assert any(
        p.startswith("segment-0002.ts: GOP ") and "linked hash does not match the IDR of GOP" in p
        for p in problems
    ), problems


def test_reordered_segments_with_the_manifest_made_consistent(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    rec = recordings(store)[2]
    m = manifest(rec)
    one, two = rec / "segment-0001.ts", rec / "segment-0002.ts"
    a, b = one.read_bytes(), two.read_bytes()
    one.write_bytes(b)
    two.write_bytes(a)
    s1, s2 = m["segments"][1], m["segments"][2]
    m["segments"][1], m["segments"][2] = {**s2, "file": s1["file"]}, {**s1, "file": s2["file"]}
    rehash(rec, m)
    problems = failing(run_verify(capsys, str(rec))[1], rec)
    assert EDITED in problems
    assert any(
        p.startswith("segment-0001.ts: GOP ") and "linked hash does not match" in p
        for p in problems
    ), problems


def test_added_segment(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    rec = recordings(store)[1]
    shutil.copy(rec / "segment-0001.ts", rec / "segment-0003.ts")
    code, lines = run_verify(capsys, str(rec))
    assert code == 1 and failing(lines, rec) == ["segment-0003.ts: on disk but not in the manifest"]
    # Listed too, after the last one, with the totals made to add up.
    m = manifest(rec)
    extra = dict(m["segments"][1], file="segment-0003.ts")
    span = m["segments"][2]["last_frame"] + 1 - extra["first_frame"]
    extra.update(first_frame=extra["first_frame"] + span, last_frame=extra["last_frame"] + span)
    m["segments"].append(extra)
    rehash(rec, m)
    problems = failing(run_verify(capsys, str(rec))[1], rec)
    assert EDITED in problems
    assert any(p.startswith("segment-0003.ts: GOP ") for p in problems), problems


def test_substituted_segment_from_another_recording(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    first, rec, _ = recordings(store)
    shutil.copy(first / "segment-0001.ts", rec / "segment-0001.ts")
    rehash(rec)
    problems = failing(run_verify(capsys, str(rec))[1], rec)
    assert EDITED in problems
    named = [p for p in problems if re.match(r"segment-000[12]\.ts: GOP \d+ \(frames", p)]
    assert any("linked hash does not match" in p for p in named), problems


def test_stream_without_its_seis(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    rec = recordings(store)[0]
    for seg in manifest(rec)["segments"]:
        path = rec / seg["file"]
        kept = []
        for p in packets(path):
            nals = [n for n in annexb.split_nals(p.data) if annexb.nal_type(n) != annexb.NAL_SEI]
            if any(map(annexb.is_slice, nals)):
                kept.append(
                    Packet(
                        b"".join(annexb.START_CODE + bytes(n) for n in nals), p.pts, p.dts, p.key
                    )
                )
        write_ts(path, kept)
    rehash(rec)
    problems = failing(run_verify(capsys, str(rec))[1], rec)
    assert EDITED in problems and "no in-stream signatures (SEIs stripped?)" in problems


def test_a_gop_cut_out(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    rec = recordings(store)[1]
    m = manifest(rec)
    path = rec / "segment-0001.ts"
    pkts = packets(path)
    keys = [i for i, p in enumerate(pkts) if p.key]
    assert len(keys) >= 2
    cut = keys[1] - keys[0]
    write_ts(path, pkts[: keys[0]] + pkts[keys[1] :])
    m["segments"][1]["frames"] -= cut
    rehash(rec, m)
    problems = failing(run_verify(capsys, str(rec))[1], rec)
    assert EDITED in problems
    assert any(
        p.startswith("segment-0001.ts: GOP ") and "linked hash does not match" in p
        for p in problems
    ), problems


def test_a_removed_closing_signature_leaves_the_last_gop_unsigned(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    rec = recordings(store)[0]
    path = rec / "segment-0002.ts"
    pkts = packets(path)
    assert signature_only(pkts[-1].data)
    write_ts(path, pkts[:-1])
    rehash(rec)
    problems = failing(run_verify(capsys, str(rec))[1], rec)
    assert any(
        re.fullmatch(
            r"segment-0002\.ts: GOP \d+ \(frames \d+-\d+\): not signed \(the recording ends "
            r"before its signature; a stop writes one\)",
            p,
        )
        for p in problems
    ), problems


# -- MJPEG -------------------------------------------------------------------------------------
def test_mjpeg_frame_altered_with_the_segment_re_hashed(
    capsys: pytest.CaptureFixture[str], mjpeg_store: Path, tmp_path: Path
) -> None:
    storage = Path(shutil.copytree(mjpeg_store, tmp_path / "store"))
    [rec] = recordings(storage)
    assert run_verify(capsys, str(rec))[0] == 0
    seg = rec / "segment-0001.mkv"
    with av.open(str(seg)) as c:
        victim = [p for p in c.demux(c.streams.video[0]) if p.size][5]
        at = victim.pos + victim.size // 2
    body = bytearray(seg.read_bytes())
    body[at] ^= 0x01
    seg.write_bytes(bytes(body))
    rehash(rec)
    frame = manifest(rec)["segments"][1]["first_frame"] + 5
    problems = failing(run_verify(capsys, str(rec))[1], rec)
    assert EDITED in problems
    assert (
        f"segment-0001.mkv: frame {frame} altered (hash differs from the manifest's frame list)"
        in problems
    )


def test_mjpeg_frame_list_removed_from_a_signed_manifest(
    capsys: pytest.CaptureFixture[str], mjpeg_store: Path, tmp_path: Path
) -> None:
    storage = Path(shutil.copytree(mjpeg_store, tmp_path / "store"))
    [rec] = recordings(storage)
    m = manifest(rec)
    del m["segments"][0]["frame_sha256"]
    write_manifest(rec, m)
    problems = failing(run_verify(capsys, str(rec))[1], rec)
    assert "segment-0000.mkv: no frame_sha256 in the manifest (unsigned)" in problems
    assert not verify_recording(rec).ok  # a hash check: without keys too


# -- the chain and the audit log -----------------------------------------------------------------
def test_deleted_recording_in_the_middle_breaks_the_chain(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    first, middle, last = recordings(store)
    shutil.rmtree(middle)
    code, lines = run_verify(capsys, str(store))
    assert code == 1
    assert failing(lines, store, "chain") == [
        f"recording(s) missing between {first.name} and {last.name} "
        f"({last.name}'s previous is {middle.name})"
    ]
    [audit] = failing(lines, store, "audit log")
    assert re.fullmatch(
        rf"audit.jsonl line \d+: recording {middle.name} stopped at \S+ is missing \(deleted\?\)",
        audit,
    )


def test_deleted_last_recording_shows_in_the_audit_log(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    *_, last = recordings(store)
    shutil.rmtree(last)
    code, lines = run_verify(capsys, str(store))
    assert code == 1
    assert f"FAIL  {store} (chain)" not in lines
    [audit] = failing(lines, store, "audit log")
    assert re.fullmatch(
        rf"audit.jsonl line \d+: recording {last.name} stopped at \S+ is missing \(deleted\?\)",
        audit,
    )


def test_first_recordings_offloaded_is_a_note(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    first = recordings(store)[0]
    shutil.rmtree(first)
    chain = verify_storage_lines(capsys, store, "chain")
    assert chain == [f"      note: chain starts after {first.name}, not on this card: offloaded?"]


def verify_storage_lines(capsys: pytest.CaptureFixture[str], store: Path, check: str) -> list[str]:
    _, lines = run_verify(capsys, str(store))
    head = next(i for i, line in enumerate(lines) if line.endswith(f"{store} ({check})"))
    out = []
    for line in lines[head + 1 :]:
        if not line.startswith("      "):
            break
        out.append(line)
    return out


def test_recording_missing_from_the_audit_log(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    first, *_ = recordings(store)
    copy = store / first.name.replace("_0001", "_0009")
    shutil.copytree(first, copy)
    problems = failing(run_verify(capsys, str(store))[1], store, "audit log")
    assert f"{copy.name}: not in the audit log (no stop or recovery entry names it)" in problems


def audit_lines(store: Path) -> list[bytes]:
    return (store / "audit.jsonl").read_bytes().splitlines()


def test_edited_audit_entry(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    lines = audit_lines(store)
    n = next(i for i, line in enumerate(lines) if b'"event":"stop"' in line)
    lines[n] = lines[n].replace(b'"reason":"button_hold"', b'"reason":"console"')
    (store / "audit.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    problems = failing(run_verify(capsys, str(store))[1], store, "audit log")
    edited = f"prev does not match line {n + 1} (entry edited or removed)"
    assert f"audit.jsonl line {n + 2} (seq {n + 1}): {edited}" in problems


def test_removed_audit_entry(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    lines = audit_lines(store)
    n = next(i for i, line in enumerate(lines) if b'"event":"marker"' in line)
    del lines[n]
    (store / "audit.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    problems = failing(run_verify(capsys, str(store))[1], store, "audit log")
    assert (
        f"audit.jsonl line {n + 1}: seq jumps from {n - 1} to {n + 1} (entry removed)" in problems
    )


def test_missing_audit_log(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    (store / "audit.jsonl").unlink()
    problems = failing(run_verify(capsys, str(store))[1], store, "audit log")
    assert problems == [
        "audit.jsonl: audit log missing (the device keeps one beside signed recordings)"
    ]


def test_two_recordings_given_are_checked_with_their_storage(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    first, middle, last = recordings(store)
    shutil.rmtree(middle)
    code, lines = run_verify(capsys, str(first), str(last))
    assert code == 1 and f"FAIL  {store} (chain)" in lines
    code, lines = run_verify(capsys, str(first))
    assert code == 0, lines  # one recording: no storage-level check


# -- the pieces --------------------------------------------------------------------------------
def test_the_storages_own_files_are_not_skipped(h264_store: Path) -> None:
    found = find_recordings([h264_store])
    assert found.skipped == [] and len(found.recordings) == 3


def svf_sei() -> bytes:
    return b"\x06\x05\x20" + UUID + bytes(16) + b"\x80"


@pytest.mark.parametrize(
    ("units", "only"),
    [
        ([svf_sei()], True),
        ([b"\x09\xf0", svf_sei(), svf_sei()], True),
        ([b"\x09\xf0"], False),
        ([b"\x06\x05\x20" + bytes(32) + b"\x80"], False),  # user data, another UUID
        ([svf_sei(), b"\x41\x9a\x00\x10"], False),  # and a slice
        ([svf_sei(), b"\x67\x42\x00\x1e"], False),  # and an SPS
        ([], False),
    ],
)
def test_only_a_signature_only_unit_is_excused_from_decoding(
    units: list[bytes], only: bool
) -> None:
    assert signature_only(b"".join(annexb.START_CODE + u for u in units)) is only


@given(st.binary(max_size=200))
def test_signature_only_never_raises_and_never_excuses_a_slice(data: bytes) -> None:
    result = signature_only(data)
    if any(annexb.is_slice(n) for n in annexb.split_nals(data)):
        assert result is False


@given(st.text(max_size=80))
def test_restate_keeps_what_it_does_not_recognise(text: str) -> None:
    said = restate(text, str)
    assert isinstance(said, str)
    if not re.search(r"frame \d+ of GOP|GOP \d+: |SEI at byte \d+|before frame \d+", text):
        assert said == text


def test_keys_beside_reports_an_unreadable_key_file(store: Path) -> None:
    (store / "BWC-0002.pub.pem").write_bytes(b"-----BEGIN PUBLIC KEY-----\nxx\n")
    keys = keys_beside(store)
    assert len(keys.keys) == 1 and len(keys.unreadable) == 1
    assert "BWC-0002.pub.pem" in keys.unreadable[0]


def strip_seis(packet: Packet) -> Packet:
    nals = [n for n in annexb.split_nals(packet.data) if annexb.nal_type(n) != annexb.NAL_SEI]
    return Packet(
        b"".join(annexb.START_CODE + bytes(n) for n in nals), packet.pts, packet.dts, packet.key
    )


def test_a_recovered_recording_may_end_unsigned_only_by_its_open_gop(
    capsys: pytest.CaptureFixture[str], recovered_store: Path, tmp_path: Path
) -> None:
    """Its last signature removed too, one more GOP ends unsigned: no power cut explains that."""
    storage = Path(shutil.copytree(recovered_store, tmp_path / "store"))
    [rec] = recordings(storage)
    for seg in reversed(manifest(rec)["segments"]):
        path = rec / seg["file"]
        pkts = packets(path)
        carriers = [i for i, p in enumerate(pkts) if b"\x06\x05" in p.data and UUID in p.data]
        if carriers:
            pkts[carriers[-1]] = strip_seis(pkts[carriers[-1]])
            write_ts(path, pkts)
            break
    rehash(rec)
    problems = failing(run_verify(capsys, str(rec))[1], rec)
    unsigned = [
        p
        for p in problems
        if p.endswith("not signed (the recording ends before its signature; a stop writes one)")
    ]
    assert len(unsigned) == 3, problems


def test_frames_before_the_first_keyframe_are_unsigned(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    rec = recordings(store)[0]
    path = rec / "segment-0000.ts"
    pkts = packets(path)
    assert pkts[0].key
    write_ts(path, pkts[1:])
    m = manifest(rec)
    m["segments"][0]["frames"] -= 1
    m["segments"][0]["first_frame"] += 1
    m["first_frame"] += 1
    rehash(rec, m)
    first = m["first_frame"]
    problems = failing(run_verify(capsys, str(rec))[1], rec)
    assert (
        f"segment-0000.ts: frames {first}-{first + 28} come before the first keyframe, unsigned"
        in problems
    )


def test_several_trusted_keys_each_check_what_they_signed(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    """A re-provisioned device: recordings signed by the old key and by the new one."""
    rec = recordings(store)[2]
    other = test_key("BWC-0001", 99)
    write_manifest(rec, sign_document(other, {**manifest(rec), "key_id": other.key_id}))
    pem = tmp_path / "new.pub.pem"
    pem.write_bytes(other.public_pem)
    code, lines = run_verify(capsys, "--key", str(public_key(store)), "--key", str(pem), str(rec))
    assert code == 1  # the manifest verifies; the stream was signed by the old key
    problems = failing(lines, rec)
    assert not any(p.startswith("manifest.json") for p in problems), problems
    assert any("carries a different public key than the one given" in p for p in problems)


def test_a_recording_ending_in_a_gop_begun_in_the_pre_event_is_wholly_signed(
    tmp_path: Path,
) -> None:
    """The GOP a recording stops in started before the trigger (its keyframe came out of
    the ring): the closing signature must cover that keyframe too. It did not while the
    ring dropped the frames' seals, and the keyframe read as altered."""
    dev = make_device(tmp_path, SMALL)
    dev.set_input(2.0, "holster", True)  # recognised at ~2.02: keyframe 60 (2.0 s) is pre-event
    dev.run(until=2.3)
    [m] = dev.shutdown()
    storage = tmp_path / "store"
    assert m["first_frame"] == 30 and m["last_frame"] < 90  # ends inside the GOP of frame 60
    report = verify_recording(storage / m["recording_id"], keys_beside(storage))
    assert report.ok, report.problems


def test_a_simulated_power_loss_recovers_signed_chained_and_logged(
    ci_run: Callable[[str], Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """The scenario's next boot recovers as the firmware does at power-up: the rebuilt
    manifest is signed and chained, and the audit log names it."""
    result = ci_run("power_loss")
    storage = Path(result.storage)
    [m] = [json.loads((p / "manifest.json").read_text()) for p in recordings(storage)]
    assert "recovery" in m and m["signature"]
    assert any(e["event"] == "recovery" for e in read_audit(storage / "audit.jsonl"))
    code, lines = run_verify(capsys, "--key", str(public_key(storage)), str(storage))
    assert code == 0, lines
