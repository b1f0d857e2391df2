"""The H.264 encoder wraps the picture instead of copying it, and the bitstream is unchanged.

Simulated runs must stay byte-identical from scenario and seed, and a
recording's bytes are evidence: handing the encoder the caller's array
(no copy) must give exactly the bytes the copy did, whatever the row length
or alignment of the picture, and a picture that is not one block of rows
still has to be taken.
"""

from __future__ import annotations

import av
import numpy as np
import pytest

from camera.encoders.h264 import H264Encoder, bgr_frame
from sim.scene import SyntheticScene


def copied_stream(pictures: list[np.ndarray], width: int, height: int) -> list[bytes]:
    """The bitstream as the encoder made it before: every picture copied with from_ndarray."""
    encoder = H264Encoder(width, height, 30, bitrate=1_000_000, gop=5)
    ctx = encoder.context
    out = []
    for n, picture in enumerate(pictures):
        frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
        frame.pts = n
        if n % 5 == 0:
            frame.pict_type = av.video.frame.PictureType.I
        out += [bytes(p) for p in ctx.encode(frame)]
    return out + [bytes(p) for p in ctx.encode(None)]


@pytest.mark.parametrize(("width", "height"), [(640, 360), (514, 288), (1000, 562)])
def test_wrapping_gives_the_bitstream_copying_gave(width: int, height: int) -> None:
    """514 and 1000 pixels make rows that are no multiple of 16 or 64 bytes."""
    scene = SyntheticScene(width, height, seed=3)
    pictures = [scene.render(n, n / 30) for n in range(12)]
    encoder = H264Encoder(width, height, 30, bitrate=1_000_000, gop=5)
    ours = [f.data for n, p in enumerate(pictures) for f in encoder.encode(p, n, n / 30)]
    ours += [f.data for f in encoder.flush()]
    theirs = copied_stream(pictures, width, height)
    # The encoder prepends SPS/PPS to keyframes that lack them; libx264 always has them.
    assert ours == theirs


def test_a_picture_at_an_odd_address_or_in_strided_rows_is_encoded_alike() -> None:
    scene = SyntheticScene(640, 360, seed=1)
    pictures = [scene.render(n, n / 30) for n in range(6)]
    odd, strided = [], []
    for picture in pictures:
        backing = np.empty(picture.size + 8, np.uint8)
        view = backing[3 : 3 + picture.size].reshape(picture.shape)  # 3 bytes off alignment
        view[...] = picture
        odd.append(view)
        wide = np.zeros((360, 700, 3), np.uint8)  # rows longer than the picture: not contiguous
        wide[:, :640] = picture
        strided.append(wide[:, :640])
    assert not strided[0].flags.c_contiguous and odd[0].ctypes.data % 2 == 1

    def stream(inputs: list[np.ndarray]) -> list[bytes]:
        encoder = H264Encoder(640, 360, 30, bitrate=1_000_000, gop=5)
        out = [f.data for n, p in enumerate(inputs) for f in encoder.encode(p, n, n / 30)]
        return out + [f.data for f in encoder.flush()]

    assert stream(odd) == stream(strided) == copied_stream(pictures, 640, 360)


def test_the_frame_wraps_the_array_it_was_given() -> None:
    picture = np.zeros((64, 512, 3), np.uint8)
    frame = bgr_frame(picture)
    picture[0, 0] = (1, 2, 3)
    assert frame.to_ndarray()[0, 0].tolist() == [1, 2, 3]  # no copy was made
    strided = np.zeros((64, 600, 3), np.uint8)[:, :512]
    assert bgr_frame(strided).to_ndarray().shape == (64, 512, 3)
