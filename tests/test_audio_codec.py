"""AAC encoding, audio in the segments (MPEG-TS and Matroska), and decoding it back.

The encoder's packets are placed on the device timeline (priming included),
a gap is never papered over, the muxers' holds are known exactly so a sync
claims only what is on the card, and audio written for device time ``t``
decodes at ``t - origin`` in both containers.
"""

from __future__ import annotations

import functools
import io
import itertools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import camera.evidence.verify.decode as decode_module
from camera.encoders.aac import AACEncoder
from camera.encoders.h264 import H264Encoder
from camera.encoders.mjpeg import MJPEGEncoder
from camera.errors import BackendError
from camera.evidence.journal import Journal
from camera.evidence.verify.audio_decode import AudioDecoder
from camera.evidence.verify.decode import decode_file
from camera.frames import EncodedAudio, EncodedFrame
from camera.segments import CONTAINERS, PTS_HZ, AudioFormat, RecordingWriter, SegmentFile
from sim.scene import SyntheticScene
from sim.storage import SimStorage

RATE = 48_000
FPS = 30
W, H = 640, 360
#: Device time of the recordings' first frame (frame number T0 * FPS), and its sample number.
T0 = 1000.0
S0 = round(T0 * RATE)
CLICK_HZ = 6_000.0
CLICK_SAMPLES = round(0.004 * RATE)


def sound(samples: int, seed: int = 0, clicks: tuple[int, ...] = ()) -> np.ndarray:
    """Quiet noise with 6 kHz tone bursts starting at the given sample offsets."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 300, samples)
    t = np.arange(CLICK_SAMPLES) / RATE
    burst = 0.8 * 32767 * np.sin(2 * np.pi * CLICK_HZ * t) * np.hanning(CLICK_SAMPLES)
    for c in clicks:
        x[c : c + CLICK_SAMPLES] += burst[: max(0, min(CLICK_SAMPLES, samples - c))]
    return np.clip(x, -32768, 32767).astype(np.int16).reshape(-1, 1)


def encode(
    x: np.ndarray,
    first: int = S0,
    time: float = T0,
    block: int = 480,
    skip: range = range(0),
    enc: AACEncoder | None = None,
) -> list[EncodedAudio]:
    """Feed ``x`` in blocks as a microphone would; blocks whose index is in ``skip`` are lost."""
    enc = enc or AACEncoder()
    out: list[EncodedAudio] = []
    for k, i in enumerate(range(0, len(x), block)):
        if k not in skip:
            out += enc.encode(x[i : i + block], first + i, time + i / RATE)
    return out + enc.flush()


def click_onsets(pcm: np.ndarray, start: float) -> list[float]:
    """Times of the bursts' onsets: their energy centre minus half their length."""
    loud = np.flatnonzero(np.abs(pcm) > 0.3)
    if not len(loud):
        return []
    onsets = []
    for group in np.split(loud, np.flatnonzero(np.diff(loud) > CLICK_SAMPLES) + 1):
        lo, hi = max(0, group[0] - CLICK_SAMPLES), group[-1] + CLICK_SAMPLES
        energy = pcm[lo:hi].astype(np.float64) ** 2
        centre = (energy * np.arange(lo, lo + len(energy))).sum() / energy.sum()
        onsets.append(start + (centre - CLICK_SAMPLES / 2) / RATE)
    return onsets


# -- the encoder -------------------------------------------------------------------
def test_the_same_samples_give_the_same_bytes() -> None:
    x = sound(RATE, clicks=(1000, 30_000))
    first, again = encode(x), encode(x)
    assert first == again  # data, sample numbers, times: all of it
    assert [p.data for p in encode(sound(RATE, seed=1))] != [p.data for p in first]


def test_packets_cover_the_input_exactly_without_priming() -> None:
    """1024 samples each, back to back, from the first sample to the last.

    The encoder's priming packet (the 1024 samples before the first, which
    nobody recorded) is dropped. Blocks of 480 samples do not divide 1024:
    the cutting into frames is ours.
    """
    n = RATE + 300
    enc = AACEncoder()
    packets = []
    x = sound(n)
    for i in range(0, n, 480):
        packets += enc.encode(x[i : i + 480], S0 + i, T0 + i / RATE)
    packets += enc.flush()
    assert enc.dropped_priming == 1
    assert packets[0].first_sample == S0  # nothing before the first captured sample
    assert packets[0].time == pytest.approx(T0, abs=1e-9)
    assert all(p.samples == 1024 for p in packets[:-1])
    assert packets[-1].samples == (n % 1024) or packets[-1].samples == 1024
    assert packets[-1].end_sample == S0 + n
    for before, after in itertools.pairwise(packets):
        assert after.first_sample == before.end_sample
    for p in packets:
        assert p.rate == RATE
        assert p.time == pytest.approx(T0 + (p.first_sample - S0) / RATE, abs=1e-9)


def test_packet_times_follow_the_source_stamps_not_the_sample_count() -> None:
    """A microphone clock 200 ppm fast: each packet is timed from the block it starts in."""
    x, block, drift = sound(2 * RATE), 480, 1.0002
    enc, packets = AACEncoder(), []
    stamps = {}
    for i in range(0, len(x), block):
        stamps[S0 + i] = T0 + i / RATE * drift
        packets += enc.encode(x[i : i + block], S0 + i, stamps[S0 + i])
    packets += enc.flush()
    for p in packets[1:]:
        start = max(s for s in stamps if s <= p.first_sample)
        assert p.time == pytest.approx(stamps[start] + (p.first_sample - start) / RATE, abs=1e-9)
    # Extrapolating from the first block instead would be 0.4 ms off by the end.
    last = packets[-1]
    assert abs(last.time - (T0 + (last.first_sample - S0) / RATE)) > 3e-4


def test_the_priming_delay_is_in_the_timestamps() -> None:
    """Decoded sample k of a packet is input sample ``first_sample + k``: clicks land where made."""
    clicks = (12_345, 30_000, 47_000)
    packets = encode(sound(RATE, clicks=clicks))
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = AACEncoder().extradata
    pcm = np.zeros(RATE + 4096, np.float32)
    for p in packets:
        for frame in decoder.decode(av.Packet(p.data)):
            at = p.first_sample - (S0 - 1024)
            pcm[at : at + frame.samples] = frame.to_ndarray()[0]
    onsets = click_onsets(pcm, (S0 - 1024) / RATE)
    assert onsets == pytest.approx([(S0 + c) / RATE for c in clicks], abs=2e-4)


def test_a_gap_ends_the_run_where_its_samples_end() -> None:
    """The microphone was gone for blocks 40..44: no packet covers that time."""
    block = 480
    enc = AACEncoder()
    packets = encode(sound(RATE), block=block, skip=range(40, 45), enc=enc)
    gap_start, resume = S0 + 40 * block, S0 + 45 * block
    before = [p for p in packets if p.first_sample < gap_start]
    after = [p for p in packets if p.first_sample >= gap_start]
    # The partial frame before the gap is encoded short, not padded on the timeline.
    assert before[-1].end_sample == gap_start
    assert before[-1].samples == (gap_start - S0) % 1024 or before[-1].samples == 1024
    # A fresh encoder after it, its priming dropped: nothing inside the gap, not even
    # the encoder's start-up silence; the new run starts at the first new sample.
    assert after[0].first_sample == resume
    assert after[0].time == pytest.approx(T0 + 45 * block / RATE, abs=1e-9)
    assert enc.dropped_priming == 2  # one per run
    assert after[-1].end_sample == S0 + RATE
    assert enc.dropped_overlap == 0
    for x, y in itertools.pairwise(packets):
        assert y.first_sample >= x.end_sample


def test_a_gap_shorter_than_a_frame_never_overlaps() -> None:
    """One lost block of 480: shorter than a frame, and still exactly the gap."""
    enc = AACEncoder()
    packets = encode(sound(RATE), skip=range(40, 41), enc=enc)
    assert enc.dropped_overlap == 0 and enc.dropped_priming == 2
    for x, y in itertools.pairwise(packets):
        assert y.first_sample >= x.end_sample
    resumed = [p for p in packets if p.first_sample >= S0 + 40 * 480]
    assert resumed[0].first_sample == S0 + 41 * 480  # the gap is exactly the lost block


def test_bad_samples_and_settings_are_refused() -> None:
    enc = AACEncoder()
    with pytest.raises(ValueError, match="int16"):
        enc.encode(np.zeros((10, 1), np.float32), 0, 0.0)
    with pytest.raises(ValueError, match=r"\(n, 1\)"):
        enc.encode(np.zeros((10, 2), np.int16), 0, 0.0)
    assert enc.encode(np.zeros((0, 1), np.int16), 0, 0.0) == []
    with pytest.raises(BackendError, match="12345 Hz"):
        AACEncoder(rate=12_345)
    with pytest.raises(BackendError, match="3 channel"):
        AACEncoder(channels=3)


# -- what the muxers hold back -----------------------------------------------------
@functools.cache
def video(codec: str, count: int, gop: int) -> tuple[EncodedFrame, ...]:
    scene = SyntheticScene(W, H, 0)
    enc = (
        MJPEGEncoder(quality=60)
        if codec == "mjpeg"
        else H264Encoder(W, H, FPS, bitrate=1_000_000, gop=gop)
    )
    base = round(T0 * FPS)
    frames: list[EncodedFrame] = []
    for n in range(count):
        t = T0 + n / FPS
        frames += enc.encode(scene.render(base + n, t), base + n, t)
    return tuple(frames + enc.flush())


@functools.cache
def audio(seconds: float, lead: float = 0.0) -> tuple[EncodedAudio, ...]:
    """Packets of a scene with a click at every whole second of device time.

    ``lead``: the microphone starts that long before T0.
    """
    n = round((seconds + lead) * RATE)
    first = S0 - round(lead * RATE)
    clicks = tuple(c for c in range(0, n) if (first + c) % RATE == 0)
    return tuple(encode(sound(n, clicks=clicks), first=first, time=first / RATE))


def counts(data: bytes, fmt: str) -> tuple[int, int]:
    """Video and audio packets a demuxer finds in ``data`` (a prefix of a segment)."""
    found = [0, 0]
    try:
        with av.open(io.BytesIO(data), format=fmt) as c:
            for p in c.demux():
                if p.size:
                    found[p.stream.type == "audio"] += 1
    except Exception:  # a prefix too short to open, or ending mid-packet
        pass
    return found[0], found[1]


@pytest.mark.parametrize("codec", list(CONTAINERS))
@settings(max_examples=12)
@given(picks=st.lists(st.booleans(), max_size=80))
def test_progress_claims_exactly_what_the_file_holds(
    tmp_path_factory: pytest.TempPathFactory, codec: str, picks: list[bool]
) -> None:
    """Any interleaving (audio late, early, or gone for a while): after every packet the
    frames and audio packets progress() vouches for are exactly those a demuxer finds.

    This pins camera/mux_holds.py to the FFmpeg in use: if a muxer starts holding
    more (or fewer) packets back, this fails before a recovery overclaims.
    """
    fmt = CONTAINERS[codec][0]
    frames, sounds = list(video(codec, 20, 5)), list(audio(0.7))
    storage = SimStorage(tmp_path_factory.mktemp("holds"))
    storage.makedirs("rec")
    seg = SegmentFile(storage, "rec/s", codec, W, H, FPS, origin=T0, audio=AudioFormat())
    path = storage.path("rec/s")
    picks = picks + [True] * len(frames) + [False] * len(sounds)
    for take_video in picks:
        if take_video and frames:
            seg.add(frames.pop(0))
        elif not take_video and sounds:
            packet = sounds.pop(0)
            if packet.time >= T0:
                seg.add_audio(packet)
        else:
            continue
        seg.sync()
        progress, heard = seg.progress(), seg.audio_progress()
        claimed = (progress.frames if progress else 0, heard.packets if heard else 0)
        assert counts(path.read_bytes(), fmt) == claimed
        if progress is not None:
            assert progress.bytes == len(path.read_bytes())
    seg.close()
    assert counts(path.read_bytes(), fmt) == (seg.frames, seg.audio_packets)


@pytest.mark.parametrize("late", [32.82, 32.9], ids=["same-cluster", "new-cluster"])
def test_matroska_holds_across_a_long_silence(tmp_path: Path, late: float) -> None:
    """A frame more than 32.767 s after the audio block before it needs a cluster of its own.

    Matroska block times are int16 ms from their cluster's, and audio blocks are
    shifted by the CodecDelay (21 ms): at 32.82 s the frame still fits beside the
    block (it would not without the shift), at 32.9 s it does not.
    """
    frames, sounds = video("mjpeg", 3, 1), audio(0.2)
    storage = SimStorage(tmp_path)
    storage.makedirs("rec")
    seg = SegmentFile(storage, "rec/s", "mjpeg", W, H, FPS, origin=T0, audio=AudioFormat())
    far = [
        EncodedFrame(f.data, f.number, T0 + t, True)
        for f, t in ((frames[1], late), (frames[2], 80))
    ]
    for item in (frames[0], sounds[2], sounds[3], *far):
        if isinstance(item, EncodedAudio):
            seg.add_audio(item)
        else:
            seg.add(item)
        progress, heard = seg.progress(), seg.audio_progress()
        claimed = (progress.frames if progress else 0, heard.packets if heard else 0)
        assert counts(storage.path("rec/s").read_bytes(), "matroska") == claimed
    seg.close()


def test_a_segment_without_audio_refuses_audio(tmp_path: Path) -> None:
    storage = SimStorage(tmp_path)
    storage.makedirs("rec")
    seg = SegmentFile(storage, "rec/s.ts", "h264", W, H, FPS, origin=T0)
    with pytest.raises(ValueError, match="no audio stream"):
        seg.add_audio(audio(0.1)[1])
    seg.abort()


# -- recordings with audio ------------------------------------------------------------
def record(
    root: Path, codec: str, seconds: float = 2.5, lead: float = 0.2, late: float = 0.05
) -> tuple[RecordingWriter, list[EncodedAudio]]:
    """A recording of ``seconds`` in 1 s segments, handed over in 0.1 s chunks like the recorder.

    Audio reaches the writer ``late`` after the video of the same time (the
    encoder's latency); the microphone started ``lead`` before the first frame.
    """
    storage = SimStorage(root)
    storage.makedirs("rec")
    writer = RecordingWriter(
        storage, "rec", codec, W, H, FPS, 1.0, Journal(storage, "rec"), audio=AudioFormat()
    )
    frames = video(codec, round(seconds * FPS), FPS)
    sounds = [p for p in audio(seconds, lead) if p.time < T0 + seconds]
    since = -np.inf  # the first chunk: all the audio before the first frame
    for k in range(round((seconds + late) * 10) + 2):
        t = T0 + k / 10
        writer.write(
            [f for f in frames if since <= f.time < t],
            [p for p in sounds if since <= p.time + late < t],
        )
        since = t
    writer.close()
    return writer, [p for p in sounds if p.time >= T0]


@pytest.mark.parametrize("codec", list(CONTAINERS))
def test_audio_and_video_share_segments_and_origin(tmp_path: Path, codec: str) -> None:
    fmt, _ = CONTAINERS[codec]
    writer, written = record(tmp_path, codec)
    assert len(writer.segments) == 3  # rotation still on the video's keyframes
    assert writer.audio_dropped == sum(p.time < T0 for p in audio(2.5, 0.2))
    assert writer.audio_packets == len(written)
    demuxed = []
    for seg in writer.segments:
        with av.open(str(tmp_path / "rec" / seg.file), format=fmt) as c:
            assert [s.type for s in c.streams] == ["video", "audio"]
            assert c.streams.audio[0].codec_context.name == "aac"
            assert c.streams.audio[0].rate == RATE
            assert c.streams.audio[0].channels == 1
            if fmt == "matroska":  # raw AAC: its AudioSpecificConfig is the CodecPrivate
                assert c.streams.audio[0].codec_context.extradata == AACEncoder().extradata
            for p in c.demux(c.streams.audio[0]):
                if p.size:
                    demuxed.append((float(p.pts * p.time_base), bytes(p)))
    assert len(demuxed) == len(written)
    tick = 1 / PTS_HZ if fmt == "mpegts" else 5e-4  # Matroska keeps milliseconds
    for (pts, data), packet in zip(demuxed, written, strict=True):
        assert pts == pytest.approx(packet.time - T0, abs=tick)
        if fmt == "mpegts":
            assert data[:2] == b"\xff\xf1" and data[7:] == packet.data  # ADTS, made by FFmpeg
        else:
            assert data == packet.data
    # Each segment's audio as the writer recorded it: contiguous across the rotations.
    spans = [writer.audio_spans[s.file] for s in writer.segments]
    assert sum(s.packets for s in spans) == len(written)
    for before, after in itertools.pairwise(spans):
        assert before.end_sample == after.first_sample
    assert spans[0].first_sample == written[0].first_sample
    assert spans[-1].end_sample == written[-1].end_sample


@pytest.mark.parametrize("codec", list(CONTAINERS))
def test_clicks_decode_at_their_device_time(tmp_path: Path, codec: str) -> None:
    """One decoder across the segments: one contiguous run, each click within 1 ms of the
    frame captured at the same device time (the sync check's premise)."""
    fmt, _ = CONTAINERS[codec]
    writer, written = record(tmp_path, codec, late=0.3)
    decoder = AudioDecoder(keep_pcm=True)
    frame_at: dict[int, float] = {}
    total = 0
    for seg in writer.segments:
        with (tmp_path / "rec" / seg.file).open("rb") as f:
            decoded = decode_file(f, fmt, seg.frames, (W, H), audio=decoder)
        assert decoded.stopped is None and decoded.first_bad is None
        assert decoded.audio is not None and decoded.audio.bad_packets == 0
        total += decoded.audio.samples
        frame_at |= {d.code: d.seconds for d in decoded.frames if d.code is not None}
    # Duration: what was written, within one AAC frame (the last, short, decodes whole).
    assert abs(total - sum(p.samples for p in written)) < 1024
    [run] = decoder.pcm()
    assert run.start == pytest.approx(written[0].time - T0, abs=1e-3)
    onsets = click_onsets(run.samples, run.start)
    assert len(onsets) == 2  # device time T0 + 1 and T0 + 2 s
    for onset, k in zip(onsets, (1, 2), strict=True):
        frame = round((T0 + k) * FPS)
        assert abs(onset - frame_at[frame]) < 1e-3
        assert onset == pytest.approx(k, abs=1e-3)


@pytest.mark.parametrize("codec", list(CONTAINERS))
def test_a_recording_with_audio_is_byte_reproducible(tmp_path: Path, codec: str) -> None:
    first, _ = record(tmp_path / "a", codec)
    again, _ = record(tmp_path / "b", codec)
    assert [s.sha256 for s in first.segments] == [s.sha256 for s in again.segments]


def test_audio_before_the_first_frame_has_no_segment(tmp_path: Path) -> None:
    storage = SimStorage(tmp_path)
    storage.makedirs("rec")
    writer = RecordingWriter(
        storage, "rec", "mjpeg", W, H, FPS, 10.0, Journal(storage, "rec"), audio=AudioFormat()
    )
    early = audio(0.3, 0.2)
    writer.write_audio(early)  # no frame yet: nothing to time them against
    assert writer.audio_dropped == len(early) and writer.audio_packets == 0
    writer.write(video("mjpeg", 3, 1))
    [seg] = writer.close()
    assert seg.frames == 3 and writer.audio_spans == {}


# -- decode.py -------------------------------------------------------------------------
@pytest.mark.parametrize("codec", list(CONTAINERS))
def test_decode_reports_the_audio_of_a_segment(tmp_path: Path, codec: str) -> None:
    fmt, _ = CONTAINERS[codec]
    writer, written = record(tmp_path, codec)
    seg = writer.segments[1]
    span = writer.audio_spans[seg.file]
    mine = [p for p in written if span.first_sample <= p.first_sample < span.end_sample]
    with (tmp_path / "rec" / seg.file).open("rb") as f:
        decoded = decode_file(f, fmt)
    report = decoded.audio
    assert report is not None
    assert (report.codec, report.rate, report.channels) == ("aac", RATE, 1)
    assert report.packets == span.packets == len(mine)
    tick = 1 / PTS_HZ if fmt == "mpegts" else 5e-4
    assert report.first_pts == pytest.approx(mine[0].time - T0, abs=tick)
    assert report.last_pts == pytest.approx(mine[-1].time - T0, abs=tick)
    assert report.samples == 1024 * len(mine)
    # The video is decoded as ever: every frame, in order, with its code.
    codes = [d.code for d in decoded.frames]
    assert codes == list(range(seg.first_frame, seg.last_frame + 1))


def test_decoding_video_only_never_touches_audio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = SimStorage(tmp_path)
    storage.makedirs("rec")
    writer = RecordingWriter(storage, "rec", "h264", W, H, FPS, 10.0, Journal(storage, "rec"))
    writer.write(video("h264", 10, 5))
    [seg] = writer.close()

    class Refuse:
        def __init__(self, *args: object) -> None:
            raise AssertionError("an audio decoder for a segment without audio")

    monkeypatch.setattr(decode_module, "AudioDecoder", Refuse)
    with (tmp_path / "rec" / seg.file).open("rb") as f:
        decoded = decode_file(f, "mpegts")
    assert decoded.audio is None and len(decoded.frames) == 10


@pytest.mark.parametrize("codec", list(CONTAINERS))
def test_damaged_audio_is_reported_not_raised(tmp_path: Path, codec: str) -> None:
    fmt, _ = CONTAINERS[codec]
    writer, _ = record(tmp_path, codec, seconds=1.0)
    path = tmp_path / "rec" / writer.segments[0].file
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(3)
    for i in rng.integers(len(data) // 4, len(data), 400):
        data[i] ^= 0x5A
    for damaged in (bytes(data), bytes(data[: len(data) // 2])):
        path.write_bytes(damaged)
        with path.open("rb") as f:
            decoded = decode_file(f, fmt, audio=AudioDecoder(keep_pcm=True))
        assert decoded.frames  # the video before the damage is still evidence
        assert decoded.audio is not None and decoded.audio.packets > 0


def test_pcm_runs_split_at_a_gap() -> None:
    """PCM is one run per stretch of contiguous timestamps, never glued over a gap."""
    packets = encode(sound(RATE), skip=range(40, 50))
    decoder = AudioDecoder(keep_pcm=True)

    class Stream:
        class codec_context:
            name, sample_rate, channels, extradata = "aac", RATE, 1, AACEncoder().extradata

    report = decoder.start(Stream)
    for p in packets:
        packet = av.Packet(p.data)
        packet.pts = packet.dts = p.first_sample - S0
        packet.time_base = Fraction(1, RATE)
        decoder.feed(packet, report)
    runs = decoder.pcm()
    assert [round(r.start * RATE) for r in runs] == [0, 50 * 480]
    assert runs[0].end == pytest.approx(40 * 480 / RATE, abs=1024 / RATE)
    assert report.packets == len(packets) and report.bad_packets == 0
