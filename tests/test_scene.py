"""The test pattern and the sensors that carry it (SPEC section 8).

Every later continuity proof reads frame numbers back out of decoded video,
so the code is tested through the same lossy paths a recording takes: luma
planes, JPEG and H.264.
"""

from __future__ import annotations

import itertools
import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camera.framecode import CODE_HEIGHT, CODE_WIDTH, draw_frame_code, read_frame_code
from hal.clock.monotonic import MonotonicClock
from hal.sensor import FrameCallback, SensorError
from hal.sensor.opencv import OpenCVSensor
from sim.clock import VirtualClock
from sim.scene import SyntheticScene
from sim.sensor import SyntheticSensor

numbers = st.integers(min_value=0, max_value=2**32 - 1)
SCENE = SyntheticScene(640, 360, seed=7)


def outside_corner(image: np.ndarray) -> np.ndarray:
    masked = image.copy()
    masked[:CODE_HEIGHT, :CODE_WIDTH] = 0
    return masked


def luma_limited(image: np.ndarray) -> np.ndarray:
    """The Y plane of a yuv420p frame: limited range, black 16, white 235."""
    frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
    plane = frame.planes[0]
    rows = np.frombuffer(bytes(plane), np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


# -- frame code -----------------------------------------------------------


def test_code_layout_matches_spec() -> None:
    image = np.zeros((32, 512, 3), np.uint8)
    draw_frame_code(image, 0x80000001)
    assert (image[:16, :16] == 255).all() and (image[16:32, :16] == 0).all()
    assert (image[:16, 16:496] == 0).all() and (image[16:32, 16:496] == 255).all()
    assert (image[:16, 496:] == 255).all() and (image[16:32, 496:] == 0).all()


@given(numbers)
def test_code_round_trips_on_raw_images(number: int) -> None:
    image = SCENE.render(number, 0.0)
    assert read_frame_code(image) == number
    assert read_frame_code(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)) == number


@given(numbers)
@settings(max_examples=30)
def test_code_round_trips_on_limited_range_luma(number: int) -> None:
    y = luma_limited(SCENE.render(number, number % 100 / 30))
    assert y.min() >= 16 and y[:16].max() <= 235
    assert read_frame_code(y) == number


@given(numbers)
@settings(max_examples=50)
def test_code_survives_jpeg_q80(number: int) -> None:
    ok, jpeg = cv2.imencode(".jpg", SCENE.render(number, 1.0), [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    assert read_frame_code(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)) == number
    assert read_frame_code(cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)) == number


@pytest.mark.parametrize(
    ("width", "height", "bit_rate"), [(640, 360, 2_000_000), (1280, 720, 4_000_000)]
)
def test_code_survives_h264(width: int, height: int, bit_rate: int) -> None:
    fps = 30
    scene = SyntheticScene(width, height, seed=1)
    rng = np.random.default_rng(3)
    # Random numbers flip every bit between frames: the worst case for the
    # encoder's prediction; consecutive numbers would leave the top bits idle.
    frame_numbers = [0, 2**32 - 1, *(int(x) for x in rng.integers(0, 2**32, 38))]
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base = Fraction(1, fps)
    enc.framerate = Fraction(fps)
    enc.bit_rate = bit_rate
    enc.gop_size = 30
    enc.max_b_frames = 0
    enc.options = {"preset": "ultrafast", "tune": "zerolatency"}
    dec = av.CodecContext.create("h264", "r")
    decoded: list[av.VideoFrame] = []
    for i, number in enumerate(frame_numbers):
        frame = av.VideoFrame.from_ndarray(scene.render(number, i / fps), format="bgr24")
        frame.pts = i
        for packet in enc.encode(frame.reformat(format="yuv420p")):
            decoded.extend(dec.decode(packet))
    for packet in enc.encode(None):
        decoded.extend(dec.decode(packet))
    decoded.extend(dec.decode(None))
    assert len(decoded) == len(frame_numbers)
    for frame, number in zip(decoded, frame_numbers, strict=True):
        assert read_frame_code(frame.to_ndarray(format="gray")) == number
        assert read_frame_code(frame.to_ndarray(format="bgr24")) == number


def test_no_code_reads_as_none() -> None:
    assert read_frame_code(np.zeros((360, 640, 3), np.uint8)) is None
    assert read_frame_code(np.full((360, 640), 128, np.uint8)) is None
    assert read_frame_code(np.zeros((31, 640), np.uint8)) is None  # too small
    image = SCENE.render(12345, 0.0)
    image[:32, 100:116] = 128  # one bit smudged grey: no clear pair
    assert read_frame_code(image) is None


def test_draw_refuses_out_of_range_numbers() -> None:
    image = np.zeros((32, 512, 3), np.uint8)
    for bad in (-1, 2**32):
        with pytest.raises(ValueError):
            draw_frame_code(image, bad)
    with pytest.raises(ValueError):
        draw_frame_code(np.zeros((32, 511, 3), np.uint8), 1)


# -- scene ----------------------------------------------------------------


def test_scene_is_deterministic() -> None:
    a, b = SyntheticScene(640, 360, seed=5), SyntheticScene(640, 360, seed=5)
    for n in (0, 17, 901):
        assert np.array_equal(a.render(n, n / 30), b.render(n, n / 30))
    assert not np.array_equal(
        SyntheticScene(640, 360, seed=6).render(17, 17 / 30), a.render(17, 17 / 30)
    )


def test_scene_returns_a_new_array_each_call() -> None:
    a, b = SCENE.render(3, 0.1), SCENE.render(3, 0.1)
    assert a.shape == (360, 640, 3) and a.dtype == np.uint8
    assert not np.shares_memory(a, b)
    a[:] = 0
    assert np.array_equal(b, SCENE.render(3, 0.1))


def test_scene_moves_between_frames() -> None:
    frames = [outside_corner(SCENE.render(n, n / 30)) for n in range(200)]
    for previous, current in itertools.pairwise(frames):
        assert np.count_nonzero(previous != current) > 1000


def test_nothing_else_is_drawn_in_the_corner() -> None:
    for n, t in ((0, 0.0), (2**32 - 1, 0.4), (0x5A5A5A5A, 2.3), (77, 11.9)):
        expected = np.zeros((CODE_HEIGHT, CODE_WIDTH, 3), np.uint8)
        draw_frame_code(expected, n)
        assert np.array_equal(SCENE.render(n, t)[:CODE_HEIGHT, :CODE_WIDTH], expected)


def test_scene_refuses_frames_smaller_than_the_code() -> None:
    with pytest.raises(ValueError):
        SyntheticScene(511, 360)
    with pytest.raises(ValueError):
        SyntheticScene(640, 31)


# -- synthetic sensor -----------------------------------------------------

Delivered = list[tuple[int, float, int | None]]


def collect(into: Delivered) -> FrameCallback:
    def on_frame(image: np.ndarray, number: int, time: float) -> None:
        assert image.shape == (360, 640, 3)
        into.append((number, time, read_frame_code(image)))

    return on_frame


def test_synthetic_sensor_delivers_every_frame_on_time() -> None:
    clock = VirtualClock()
    sensor = SyntheticSensor(clock, 640, 360, 30)
    got: Delivered = []
    sensor.start(collect(got))
    clock.run(until=2.0)
    assert [n for n, _, _ in got] == list(range(61))
    for n, t, code in got:
        assert t == n / 30
        assert code == n
    sensor.stop()
    clock.run(until=3.0)
    assert len(got) == 61
    assert len(clock._heap) == 0  # the one pending timer was cancelled


def test_synthetic_sensor_started_late_counts_from_boot() -> None:
    clock = VirtualClock()
    clock.run(until=0.5)  # exactly frame 15's time
    sensor = SyntheticSensor(clock, 640, 360, 30)
    got: Delivered = []
    sensor.start(collect(got))
    clock.run(until=0.6)
    assert [n for n, _, _ in got] == [15, 16, 17, 18]


def test_synthetic_sensor_disconnect_drops_frames() -> None:
    clock = VirtualClock()
    sensor = SyntheticSensor(clock, 640, 360, 30)
    got: Delivered = []
    sensor.start(collect(got))
    clock.call_at(0.51, lambda: sensor.disconnect(until=1.0))
    clock.run(until=2.0)
    assert [n for n, _, _ in got] == [*range(16), *range(30, 61)]
    assert sensor.missed == 14
    assert all(t == n / 30 and code == n for n, t, code in got)


# -- OpenCV sensor --------------------------------------------------------


def write_video(path: Path, count: int, fps: int, size: tuple[int, int] = (640, 360)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    scene = SyntheticScene(*size, seed=2)
    for i in range(count):
        writer.write(scene.render(i, i / fps))
    writer.release()


def run_file_sensor(
    path: Path, count: int, fps: int, size: tuple[int, int]
) -> tuple[float, Delivered]:
    """Run the loop until ``count`` frames arrived: (device time at start(), frames)."""
    clock = MonotonicClock()
    sensor = OpenCVSensor(clock, *size, fps, source=str(path))
    got: Delivered = []
    done = threading.Event()

    def on_frame(image: np.ndarray, number: int, time: float) -> None:
        assert image.shape == (size[1], size[0], 3) and image.dtype == np.uint8
        got.append((number, time, read_frame_code(image)))
        if len(got) == count:
            done.set()
            clock.stop()

    started = clock.now()
    sensor.start(on_frame)
    clock.run(until=clock.now() + 10.0)  # a guard: normally stopped by the last frame
    sensor.stop()
    assert done.is_set(), f"only {len(got)} of {count} frames arrived"
    return started, got


def test_opencv_sensor_reads_a_video_file_in_order(tmp_path: Path) -> None:
    fps, count = 60, 20
    path = tmp_path / "clip.avi"
    write_video(path, count, fps)
    started, got = run_file_sensor(path, count, fps, (640, 360))
    assert [code for _, _, code in got] == list(range(count))  # every frame, in order
    numbers = [n for n, _, _ in got]
    times = [t for _, t, _ in got]
    assert all(b > a for a, b in itertools.pairwise(numbers))
    assert all(b >= a for a, b in itertools.pairwise(times))
    # Paced to fps, not read as fast as the disk allows: the last frame is
    # not read before it is due.
    assert times[-1] - started >= (count - 1) / fps


def test_opencv_sensor_resizes_to_the_configured_size(tmp_path: Path) -> None:
    path = tmp_path / "small.avi"
    write_video(path, 5, 60, size=(640, 360))
    _, got = run_file_sensor(path, 5, 60, (1280, 720))  # shape asserted per frame
    assert len(got) == 5


def test_opencv_sensor_numbers_show_stalls(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    write_video(path, 1, 30)
    sensor = OpenCVSensor(MonotonicClock(), 640, 360, 30, source=str(path))
    try:
        # First frame numbered from boot; jitter under 1.5 periods is not a gap.
        times = [1.0, 1.0 + 1 / 30, 1.0 + 2.4 / 30, 1.0 + 3.2 / 30, 1.0 + 7.1 / 30]
        assert [sensor._number(t) for t in times] == [30, 31, 32, 33, 37]
    finally:
        sensor.stop()


@pytest.mark.parametrize("source", ["/dev/video99", "99", "missing.avi"])
def test_opencv_sensor_cannot_open(source: str, tmp_path: Path) -> None:
    if source.endswith(".avi"):
        source = str(tmp_path / source)
    with pytest.raises(SensorError, match="cannot be opened"):
        OpenCVSensor(MonotonicClock(), 640, 360, 30, source=source)


def test_camera_read_failures_back_off_exponentially_to_a_cap() -> None:
    from hal.sensor.opencv import MAX_RETRY_DELAY, RETRY_DELAY, retry_delay

    delays = [retry_delay(n) for n in range(1, 12)]
    assert delays[0] == RETRY_DELAY
    assert delays[1] == 2 * RETRY_DELAY and delays[2] == 4 * RETRY_DELAY
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert delays[-1] == MAX_RETRY_DELAY
