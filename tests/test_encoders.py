"""Encoder ``auto``: the hardware H.264 encoder where it opens, libx264 otherwise (SPEC 13).

This PyAV wheel has ``h264_v4l2m2m`` but this machine has no V4L2
memory-to-memory device, so the fallback is real here. Whatever opened, the
stream must serve a pre-event ring: a keyframe exactly every ``gop`` pictures
(flagged, and an IDR picture), SPS and PPS in front of every keyframe, so any
segment can start on any of them. An encoder that keeps its parameter sets
out of band (as ``h264_v4l2m2m`` does) is stood in for by libx264 opened with
FFmpeg's global-header flag.
"""

from __future__ import annotations

import logging
from fractions import Fraction

import av
import numpy as np
import pytest

from camera.encoders import HARDWARE_H264, Encoder, open_encoder
from camera.encoders.h264 import H264Encoder, nal_types
from camera.errors import BackendError
from camera.frames import EncodedFrame

W, H, FPS, GOP = 320, 240, 15, 5
IDR, SPS, PPS = 5, 7, 8
#: FFmpeg probes /dev/video* for a memory-to-memory encoder; with none, it cannot open.


def h264(encoder: str) -> Encoder:
    return open_encoder("h264", encoder, W, H, FPS, bitrate=300_000, gop=GOP, quality=80, threads=1)


def pictures(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    return [np.roll(base, 4 * i, axis=1) for i in range(n)]


def encode_all(enc: Encoder, n: int) -> list[EncodedFrame]:
    out: list[EncodedFrame] = []
    for i, image in enumerate(pictures(n)):
        out += enc.encode(image, 100 + i, (100 + i) / FPS)
    return out + enc.flush()


def assert_ring_ready(frames: list[EncodedFrame], n: int) -> None:
    """Keyframes exactly every GOP, each an IDR with SPS/PPS ahead of it; numbers kept."""
    assert [f.number for f in frames] == list(range(100, 100 + n))
    assert [f.time for f in frames] == [(100 + i) / FPS for i in range(n)]
    for i, f in enumerate(frames):
        types = nal_types(f.data)
        if i % GOP == 0:
            assert f.keyframe, f"picture {i} should be a keyframe"
            assert IDR in types and types.index(SPS) < types.index(PPS) < types.index(IDR), types
        else:
            assert not f.keyframe and IDR not in types, f"picture {i}: {types}"
            assert SPS not in types and PPS not in types


def hardware_opens() -> bool:
    """Whether this machine's hardware H.264 encoder opens (a Pi 4 / Zero 2 W: yes; here: no)."""
    try:
        h264(HARDWARE_H264)
    except BackendError:
        return False
    return True


def test_auto_takes_the_hardware_encoder_where_it_opens_else_libx264_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert H264Encoder.available(HARDWARE_H264), "the PyAV wheel should include the codec"
    hardware = hardware_opens()
    caplog.set_level(logging.INFO, logger="camera.encoders")
    enc = h264("auto")
    lines = [r.getMessage() for r in caplog.records]
    if hardware:
        assert enc.name == HARDWARE_H264 and lines == []
    else:
        assert enc.name == "libx264"
        [line] = lines
        assert line.startswith(f"encoder auto: H.264 encoder '{HARDWARE_H264}' cannot open: ")


def test_a_forced_hardware_encoder_that_cannot_open_is_one_clear_line() -> None:
    try:
        enc = h264(HARDWARE_H264)
    except BackendError as exc:
        message = str(exc)
        assert "\n" not in message
        assert message.startswith(f"H.264 encoder '{HARDWARE_H264}' cannot open: ")
        assert message.endswith("encoder auto falls back to libx264)")
    else:  # a Pi with the encoder: forced means that one, never another
        assert enc.name == HARDWARE_H264


def test_an_unknown_encoder_is_one_clear_line() -> None:
    with pytest.raises(BackendError, match=r"^H\.264 encoder 'h264_nonesuch' is not available: "):
        h264("h264_nonesuch")


@pytest.mark.parametrize("encoder", ["auto", "libx264"])
def test_three_gops_from_whatever_opened(encoder: str) -> None:
    enc = h264(encoder)
    assert_ring_ready(encode_all(enc, 3 * GOP), 3 * GOP)


def out_of_band_libx264() -> av.CodecContext:
    """The double: libx264 with SPS/PPS only in extradata and no keyframe cadence of its own.

    Like a hardware encoder whose I-frame period control is not honoured: only
    the keyframes the encoder forces come out at the GOP size.
    """
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = W, H, "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, FPS), Fraction(FPS, 1)
    ctx.gop_size, ctx.max_b_frames, ctx.bit_rate = 50 * GOP, 0, 300_000
    ctx.flags |= av.codec.context.Flags.global_header
    ctx.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "threads": "1",
        "x264-params": f"scenecut=0:keyint={50 * GOP}",
    }
    ctx.open()
    return ctx


def test_parameter_sets_kept_out_of_band_are_put_in_front_of_every_keyframe() -> None:
    """As ``h264_v4l2m2m`` does: the headers come from extradata, prepended to each keyframe."""
    enc = H264Encoder(W, H, FPS, bitrate=300_000, gop=GOP, threads=1)
    ctx = out_of_band_libx264()
    assert {SPS, PPS} <= set(nal_types(bytes(ctx.extradata)))
    enc._ctx = ctx
    assert_ring_ready(encode_all(enc, 3 * GOP), 3 * GOP)
    assert enc._headers == b"", "no keyframe carried its own SPS: all were prepended"


def test_every_encoder_says_which_it_is() -> None:
    mjpeg = open_encoder("mjpeg", "auto", W, H, FPS, bitrate=1, gop=1, quality=80, threads=1)
    assert mjpeg.name == "opencv-mjpeg"
    assert h264("libx264").name == "libx264"
