"""Decoding a recording's audio packets: counts always, PCM for sync checks on request.

The packets are decoded by a decoder of our own, fed plain copies of the
demuxed packets (their bytes and timestamps, nothing else), so MPEG-TS and
Matroska decode alike: Matroska's ``CodecDelay`` would otherwise make the
decoder drop the first 1024 samples of every segment. One :class:`AudioDecoder`
may be handed every segment of a recording in turn: the decoder's state then
runs on across segment boundaries, so a sound cut by a rotation decodes
whole, and PCM stays one run as long as the timestamps are contiguous
(segments share the recording's origin).

Only AAC is decoded (what the firmware writes): a hostile file may declare
any codec, and its packets are then counted, not handed to a decoder.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np

#: Codecs whose packets are decoded.
DECODED_CODECS = frozenset({"aac"})


@dataclass
class PcmRun:
    """Contiguous decoded audio: float32 mono, its first sample at ``start``.

    ``start`` is in container seconds (from the recording's first frame, like
    a frame's timestamp): device time is the manifest's ``start_time`` plus it.
    """

    start: float
    rate: int
    samples: np.ndarray

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / self.rate


@dataclass
class DecodedAudio:
    """A segment's audio stream as decoded."""

    codec: str | None = None
    rate: int | None = None
    channels: int | None = None
    packets: int = 0
    #: Container seconds of the first and last packet's timestamp.
    first_pts: float | None = None
    last_pts: float | None = None
    #: Samples (per channel) the decoder produced.
    samples: int = 0
    #: Container seconds of every packet, in file order (None where it lost
    #: its timestamp): what the continuity check walks, packet to packet.
    times: list[float | None] = field(default_factory=list)
    #: Bytes of the packets as stored (MPEG-TS: with their ADTS headers).
    bytes: int = 0
    #: sha256 of each packet's raw AAC frame (ADTS header removed), in file order:
    #: what the manifest's ``packet_sha256`` lists.
    sha256: list[str] = field(default_factory=list)
    bad_packets: int = 0
    first_bad: str | None = None

    @property
    def end(self) -> float | None:
        """Where the decoded audio ends: the last packet's time plus one AAC frame."""
        if self.last_pts is None or not self.rate or not self.packets:
            return None
        return self.last_pts + self.samples / self.packets / self.rate


def raw_aac(data: bytes) -> bytes:
    """An AAC frame without its ADTS header (MPEG-TS carries one; Matroska does not).

    ADTS: a 12-bit sync word, then ``protection_absent``: 7 header bytes, or 9
    with a CRC. Anything else is returned as it is, so a damaged header shows
    as a hash mismatch, never an exception.
    """
    if len(data) >= 7 and data[0] == 0xFF and data[1] & 0xF0 == 0xF0:
        return data[7 if data[1] & 0x01 else 9 :]
    return data


class AudioDecoder:
    """Decodes audio packets; keeps PCM runs when ``keep_pcm`` (for sync measurement)."""

    def __init__(self, keep_pcm: bool = False) -> None:
        self.keep_pcm = keep_pcm
        self._runs: list[PcmRun] = []
        self._ctx: Any = None
        self._params: tuple[Any, ...] | None = None
        #: The run being decoded: its start, rate, samples so far and their pieces.
        self._start = 0.0
        self._rate = 0
        self._length = 0
        self._pieces: list[np.ndarray] = []

    def start(self, stream: Any) -> DecodedAudio:
        """A report for one segment's audio ``stream``; a new format reopens the decoder."""
        ctx = stream.codec_context
        report = DecodedAudio(codec=ctx.name, rate=ctx.sample_rate or None, channels=ctx.channels)
        params = (ctx.name, ctx.sample_rate, ctx.channels, bytes(ctx.extradata or b""))
        if params != self._params and ctx.name in DECODED_CODECS:
            self._close_run()
            self._ctx = av.CodecContext.create(ctx.name, "r")
            if params[3]:
                self._ctx.extradata = params[3]
            self._params = params
        return report

    def feed(self, packet: Any, report: DecodedAudio) -> None:
        """Count one demuxed packet and, for a codec we decode, decode it."""
        seconds = None if packet.pts is None else float(packet.pts * packet.time_base)
        report.packets += 1
        report.bytes += packet.size
        report.times.append(seconds)
        report.sha256.append(hashlib.sha256(raw_aac(bytes(packet))).hexdigest())
        if report.first_pts is None:
            report.first_pts = seconds
        report.last_pts = seconds
        if report.codec not in DECODED_CODECS or self._ctx is None:
            return
        plain = av.Packet(bytes(packet))  # no side data: nothing skipped, TS and MKV alike
        plain.pts = packet.pts
        plain.dts = packet.dts
        plain.time_base = packet.time_base
        try:
            frames = self._ctx.decode(plain)
        except Exception as exc:  # hostile bytes: a finding, never a traceback
            report.bad_packets += 1
            report.first_bad = report.first_bad or (
                f"audio packet {report.packets}: {_message(exc)}"
            )
            return
        for frame in frames:
            report.samples += frame.samples
            # An MPEG-TS stream whose first packet lies past the probe has no
            # parameters at open: the decoded frames have them.
            report.rate = report.rate or frame.sample_rate
            report.channels = report.channels or frame.layout.nb_channels
            if self.keep_pcm and seconds is not None:
                tolerance = 1.5 * max(float(packet.time_base), 1 / frame.sample_rate)
                self._add(frame, seconds, tolerance)
                seconds += frame.samples / frame.sample_rate

    def pcm(self) -> list[PcmRun]:
        """Every contiguous run decoded so far."""
        self._close_run()
        return list(self._runs)

    def _add(self, frame: Any, seconds: float, tolerance: float) -> None:
        """Append a decoded frame to the current run, or start a new one at a jump.

        Matroska keeps milliseconds: within 1.5 ticks (or samples) of where the
        run ends, a frame continues it.
        """
        pcm = frame.to_ndarray()
        mono = (pcm if pcm.ndim == 1 else pcm.mean(axis=0)).astype(np.float32, copy=False)
        rate = frame.sample_rate
        end = self._start + self._length / self._rate if self._rate else None
        if end is None or rate != self._rate or abs(seconds - end) > tolerance:
            self._close_run()
            self._start, self._rate = seconds, rate
        self._pieces.append(mono)
        self._length += len(mono)

    def _close_run(self) -> None:
        if self._pieces:
            self._runs.append(PcmRun(self._start, self._rate, np.concatenate(self._pieces)))
        self._pieces = []
        self._length = 0
        self._rate = 0


def _message(exc: Exception) -> str:
    if isinstance(exc, av.FFmpegError):
        return exc.strerror or type(exc).__name__
    return f"{type(exc).__name__}: {exc}".splitlines()[0]
