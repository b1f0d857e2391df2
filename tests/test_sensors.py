"""The real-camera backends without the hardware (issue 10, item 2).

- :class:`FrameTimer`: driver capture times to device time and frame numbers
  (jitter never skips a number, a dropout skips the periods it lasted,
  implausible timestamps fall back to the read time);
- the OpenCV sensor reading a video file through a wrapper that reports
  scripted V4L2 buffer timestamps (:mod:`tests.doubles.opencv`);
- the Picamera2 sensor against :mod:`tests.doubles.picamera2`, a stand-in for
  the part of Picamera2 we call (there is no CSI camera here);
- ``auto`` choosing between them, and the registry finding both.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from camera.framecode import draw_frame_code, read_frame_code
from hal import registry
from hal.clock.monotonic import MonotonicClock
from hal.errors import BackendError, HardwareMissing
from hal.sensor import picamera2 as picamera2_backend
from hal.sensor.auto import AutoSensor, choose
from hal.sensor.opencv import DRIVER_BUFFERS, OpenCVSensor, open_capture, v4l2_buffer_time
from hal.sensor.picamera2 import NOT_INSTALLED, Picamera2Sensor
from hal.sensor.timing import MAX_AGE, FrameTimer, step
from sim.clock import VirtualClock
from tests.doubles.opencv import ScriptedTimestampCapture
from tests.doubles.picamera2 import (
    CSI_CAMERA,
    USB_CAMERA,
    FakeFrame,
    FakePicamera2,
    fake_class,
    install,
)

FPS = 30
PERIOD = 1 / FPS
#: +-8 ms, the jitter a USB camera's timestamps show at 30 fps (under a quarter period).
JITTER = [0.008, -0.008, 0.005, -0.003, 0.0, 0.007, -0.008, 0.002, -0.005, 0.008]
Delivered = list[tuple[int, float, np.ndarray]]


class DriverClock(VirtualClock):
    """The virtual clock plus the real clock's conversion of CLOCK_MONOTONIC readings.

    Monotonic second ``origin`` is device time 0; device time moves only when
    the test runs the loop, so a test places driver timestamps against a read
    time it chose.
    """

    def __init__(self, origin: float) -> None:
        super().__init__()
        self.origin = origin

    def from_monotonic(self, seconds: float) -> float:
        return seconds - self.origin


# -- FrameTimer ------------------------------------------------------------


def test_step_rounds_elapsed_periods_half_up_and_is_at_least_one() -> None:
    assert [step(k * PERIOD, FPS) for k in (0, 0.4, 1, 1.49, 1.5, 2.5, 6)] == [1, 1, 1, 1, 2, 3, 6]


def test_driver_time_is_converted_to_device_time() -> None:
    timer = FrameTimer(DriverClock(origin=100.0), FPS, "test")
    # Captured at monotonic 105.0 = device 5.0, read 40 ms later.
    assert timer.stamp(105.0, read=5.04) == (150, 5.0)
    assert timer.stamp(105.0 + PERIOD, read=5.09) == (151, pytest.approx(5.0 + PERIOD))
    assert timer.rejected == 0


@given(jitter=st.lists(st.floats(-0.24, 0.24), min_size=2, max_size=60))
def test_jitter_under_a_quarter_period_never_skips_a_number(jitter: list[float]) -> None:
    timer = FrameTimer(DriverClock(origin=0.0), FPS, "test")
    times = [10.0 + (i + j) * PERIOD for i, j in enumerate(jitter)]
    numbers = [timer.stamp(t, read=t + 0.05)[0] for t in times]
    assert numbers == list(range(numbers[0], numbers[0] + len(times)))


@given(
    periods=st.integers(2, 300),
    before=st.floats(-0.24, 0.24),
    after=st.floats(-0.24, 0.24),
)
def test_a_dropout_skips_the_periods_it_lasted(periods: int, before: float, after: float) -> None:
    timer = FrameTimer(DriverClock(origin=0.0), FPS, "test")
    t0 = 10.0 + before * PERIOD
    t1 = 10.0 + (periods + after) * PERIOD
    n0, _ = timer.stamp(t0, read=t0)
    n1, _ = timer.stamp(t1, read=t1)
    assert n1 - n0 == periods


def test_a_200_ms_gap_at_30_fps_skips_six() -> None:
    timer = FrameTimer(DriverClock(origin=0.0), FPS, "test")
    times = [1.0, 1.0 + PERIOD, 1.0 + PERIOD + 0.2, 1.0 + 2 * PERIOD + 0.2]
    assert [timer.stamp(t, read=t + 0.01)[0] for t in times] == [30, 31, 37, 38]


@pytest.mark.parametrize(
    ("captured", "why"),
    [
        (None, "no driver timestamp"),
        (100.0 + 5.5, "after the read"),
        (100.0 + 5.0 - MAX_AGE - 0.01, "older than MAX_AGE"),
    ],
)
def test_implausible_driver_times_fall_back_to_the_read(captured: float | None, why: str) -> None:
    timer = FrameTimer(DriverClock(origin=100.0), FPS, "test")
    n0, t0 = timer.stamp(104.95, read=4.97)
    assert t0 == pytest.approx(4.95)  # believed: 20 ms latency
    n, t = timer.stamp(captured, read=5.0)
    assert t == t0 + PERIOD, why  # 30 ms after the last read: the next on the grid
    assert n == n0 + 1
    assert timer.rejected == (0 if captured is None else 1)


def test_before_any_good_timestamp_the_fallback_is_the_read_itself() -> None:
    timer = FrameTimer(DriverClock(origin=100.0), FPS, "test")
    assert timer.stamp(None, read=5.0) == (150, 5.0)


def test_an_odd_frame_among_driver_times_counts_the_periods_between_reads() -> None:
    timer = FrameTimer(DriverClock(origin=0.0), FPS, "test")
    n0, t0 = timer.stamp(5.0, read=5.05)
    n1, t1 = timer.stamp(None, read=5.05 + 3 * PERIOD + 0.01)  # two frames lost meanwhile
    assert (n1 - n0, t1) == (3, t0 + 3 / FPS)


def test_without_driver_times_the_fallback_is_the_read_less_the_last_latency() -> None:
    timer = FrameTimer(DriverClock(origin=0.0), FPS, "test")
    timer.stamp(5.0, read=5.05)  # 50 ms latency
    timer.stamp(None, read=5.1)  # on the grid
    assert timer.stamp(None, read=5.2)[1] == pytest.approx(5.15)  # a second one in a row


def test_a_driver_time_before_the_previous_frame_is_held_at_it() -> None:
    timer = FrameTimer(DriverClock(origin=100.0), FPS, "test")
    _, t = timer.stamp(104.95, read=4.97)
    assert timer.stamp(104.9, read=5.0)[1] == t  # never back in time
    assert timer.rejected == 0


def test_after_a_fallback_the_driver_times_take_over_again() -> None:
    # 50 ms latency (more than a period); one frame without a timestamp must
    # neither land a queue's depth late nor push the next frames off the driver's times.
    timer = FrameTimer(DriverClock(origin=0.0), FPS, "test")
    captures = [10.0 + i * PERIOD for i in range(6)]
    stamped = [
        timer.stamp(None if i == 2 else c, read=c + 0.05 + (0.004 if i == 2 else 0.0))
        for i, c in enumerate(captures)
    ]
    assert [n for n, _ in stamped] == [300, 301, 302, 303, 304, 305]
    assert [t for i, (_, t) in enumerate(stamped) if i != 2] == [
        c for i, c in enumerate(captures) if i != 2
    ]
    assert stamped[2][1] == pytest.approx(captures[2])  # on the grid, not a queue late


def test_without_a_conversion_the_clock_stamps_at_the_read() -> None:
    timer = FrameTimer(VirtualClock(), FPS, "test")  # a simulated clock has no monotonic axis
    assert timer.stamp(123.0, read=2.0) == (60, 2.0)
    assert timer.rejected == 1


def test_times_never_go_back() -> None:
    timer = FrameTimer(VirtualClock(), FPS, "test")
    _, t1 = timer.stamp(None, read=5.0)
    _, t2 = timer.stamp(None, read=4.99)  # a read before the last one: a bug, still ordered
    assert t2 == t1


def test_monotonic_clock_converts_monotonic_readings_to_device_time() -> None:
    clock = MonotonicClock()
    before = time.monotonic()
    now = clock.now()
    after = time.monotonic()
    assert clock.from_monotonic(before) <= now <= clock.from_monotonic(after)


# -- OpenCV on a video file with scripted driver timestamps ----------------

SIZE = (512, 64)  # room for the frame code


def write_coded_video(path: Path, count: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, SIZE)
    assert writer.isOpened()
    for i in range(count):
        image = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
        draw_frame_code(image, i)
        writer.write(image)
    writer.release()


def run_scripted(
    tmp_path: Path, offsets: list[float | None]
) -> tuple[MonotonicClock, OpenCVSensor, ScriptedTimestampCapture, Delivered]:
    """Read a coded file through the V4L2-timestamp path until every frame arrived."""
    path = tmp_path / "clip.avi"
    write_coded_video(path, len(offsets))
    clock = MonotonicClock()
    doubles: list[ScriptedTimestampCapture] = []

    def capture(source: str, is_file: bool) -> ScriptedTimestampCapture:
        doubles.append(ScriptedTimestampCapture(open_capture(source, is_file), offsets))
        return doubles[-1]

    sensor = OpenCVSensor(
        clock, *SIZE, FPS, source=str(path), capture=capture, timestamps=v4l2_buffer_time
    )
    got: Delivered = []

    def on_frame(image: np.ndarray, number: int, t: float) -> None:
        got.append((number, t, image))
        if len(got) == len(offsets):
            clock.stop()

    sensor.start(on_frame)
    clock.run(until=clock.now() + 10.0)  # a guard: normally stopped by the last frame
    sensor.stop()
    assert len(got) == len(offsets), f"only {len(got)} of {len(offsets)} frames arrived"
    assert [read_frame_code(image) for _, _, image in got] == list(range(len(offsets)))
    return clock, sensor, doubles[0], got


def test_opencv_jittered_driver_times_are_kept_and_skip_no_numbers(tmp_path: Path) -> None:
    offsets: list[float | None] = [i * PERIOD + JITTER[i % len(JITTER)] for i in range(20)]
    clock, sensor, cap, got = run_scripted(tmp_path, offsets)
    expected = [clock.from_monotonic(ms / 1000.0) for ms in cap.reported_ms]
    assert [t for _, t, _ in got] == expected  # the driver's times, converted exactly
    numbers = [n for n, _, _ in got]
    assert numbers == list(range(numbers[0], numbers[0] + 20))
    assert sensor.timer.rejected == 0


def test_opencv_a_200_ms_gap_in_driver_times_skips_six_numbers(tmp_path: Path) -> None:
    offsets: list[float | None] = [
        i * PERIOD + (0.2 - PERIOD if i >= 10 else 0.0) + JITTER[i % len(JITTER)] for i in range(20)
    ]
    clock, _, cap, got = run_scripted(tmp_path, offsets)
    assert [t for _, t, _ in got] == [clock.from_monotonic(ms / 1000) for ms in cap.reported_ms]
    steps = [b - a for a, b in itertools.pairwise(n for n, _, _ in got)]
    assert steps == [1] * 9 + [6] + [1] * 9


def test_opencv_implausible_driver_times_fall_back_to_the_read(tmp_path: Path) -> None:
    offsets: list[float | None] = [i * PERIOD for i in range(12)]
    offsets[3] = None  # no timestamp (POS_MSEC 0)
    offsets[6] = 6 * PERIOD + 2.0  # in the future
    offsets[9] = 9 * PERIOD - 1.5  # older than a second at the read
    clock, sensor, cap, got = run_scripted(tmp_path, offsets)
    times = [t for _, t, _ in got]
    assert all(a <= b for a, b in itertools.pairwise(times))
    driver = [clock.from_monotonic(ms / 1000) for ms in cap.reported_ms]
    for i in range(12):
        if i in (3, 6, 9):
            # Dated at the read less the last latency: near its scripted capture
            # time (the lag of the script), nowhere near the bad value.
            assert times[i] != driver[i]
            assert abs(times[i] - (driver[0] + i * PERIOD)) < 0.25
        else:
            assert times[i] == max(driver[i], times[i - 1] if i else driver[i])
    assert sensor.timer.rejected == 2  # a missing timestamp is not a rejected one


class RecordingCapture:
    """A test double for a V4L2 device's VideoCapture: records settings, reads nothing."""

    def __init__(self) -> None:
        self.settings: list[tuple[int, float]] = []

    def isOpened(self) -> bool:  # OpenCV's spelling
        return True

    def read(self) -> tuple[bool, None]:
        return False, None

    def get(self, prop: int) -> float:
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        self.settings.append((prop, value))
        return True

    def release(self) -> None:
        pass


def test_a_v4l2_device_is_asked_for_mjpg_size_rate_and_a_short_queue() -> None:
    made: list[RecordingCapture] = []

    def capture(source: str, is_file: bool) -> RecordingCapture:
        assert not is_file
        made.append(RecordingCapture())
        return made[-1]

    sensor = OpenCVSensor(MonotonicClock(), 1280, 720, 30, source="/dev/video7", capture=capture)
    assert dict(made[0].settings) == {
        cv2.CAP_PROP_FOURCC: cv2.VideoWriter.fourcc(*"MJPG"),
        cv2.CAP_PROP_FRAME_WIDTH: 1280,
        cv2.CAP_PROP_FRAME_HEIGHT: 720,
        cv2.CAP_PROP_FPS: 30,
        cv2.CAP_PROP_BUFFERSIZE: DRIVER_BUFFERS,
    }
    assert made[0].settings[0][0] == cv2.CAP_PROP_FOURCC  # before the size: see _open
    assert DRIVER_BUFFERS in (1, 2)
    assert sensor._timestamps is v4l2_buffer_time  # a device is dated by its driver
    sensor.stop()


def test_a_video_file_is_stamped_at_the_read_by_default(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    write_coded_video(path, 1)
    sensor = OpenCVSensor(MonotonicClock(), *SIZE, FPS, source=str(path))
    try:
        assert sensor._timestamps is not v4l2_buffer_time  # POS_MSEC is a media position
    finally:
        sensor.stop()


# -- Picamera2 against the double ------------------------------------------

ORIGIN = 1000.0  # the test clock's monotonic second for device time 0
READ_AT = 10.0  # device time at which the test lets the reader read


def ns(device_time: float) -> int:
    """A SensorTimestamp (monotonic ns) for a device time."""
    return round((ORIGIN + device_time) * 1e9)


def device(timestamp_ns: int) -> float:
    """What the backend must make of a SensorTimestamp."""
    return timestamp_ns / 1e9 - ORIGIN


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakePicamera2]:
    cls = fake_class([CSI_CAMERA])
    install(monkeypatch, cls)
    yield cls
    picamera2_backend.release()


@pytest.fixture
def clock() -> DriverClock:
    c = DriverClock(origin=ORIGIN)
    c.run(until=READ_AT)  # device time READ_AT: driver times before it are plausible
    return c


def open_csi(clock: DriverClock, size: tuple[int, int] = (640, 480)) -> Picamera2Sensor:
    sensor = Picamera2Sensor.open(clock, *size, FPS, source="0")
    assert isinstance(sensor, Picamera2Sensor)
    return sensor


def collect(sensor: Picamera2Sensor, clock: DriverClock, frames: list[FakeFrame]) -> Delivered:
    """Start, feed ``frames``, deliver what the reader posted, stop."""
    got: Delivered = []
    sensor.start(lambda image, n, t: got.append((n, t, image)))
    camera = picamera2_backend._cameras[sensor.camera_num]
    camera.feed(*frames)
    camera.wait_idle()
    clock.run_posted()
    sensor.stop()
    return got


def test_picamera2_sensor_timestamps_become_device_times(
    fake: type[FakePicamera2], clock: DriverClock
) -> None:
    stamps = [ns(9.0 + i * PERIOD + JITTER[i]) for i in range(10)]
    got = collect(open_csi(clock), clock, [FakeFrame(s) for s in stamps])
    assert [t for _, t, _ in got] == [device(s) for s in stamps]
    assert [n for n, _, _ in got] == list(range(270, 280))  # from boot, jitter skips none


def test_picamera2_a_200_ms_gap_skips_six_numbers(
    fake: type[FakePicamera2], clock: DriverClock
) -> None:
    times = [9.0 + i * PERIOD + JITTER[i] for i in range(5)]
    times += [times[-1] + 0.2 + i * PERIOD for i in range(5)]
    got = collect(open_csi(clock), clock, [FakeFrame(ns(t)) for t in times])
    steps = [b - a for a, b in itertools.pairwise(n for n, _, _ in got)]
    assert steps == [1, 1, 1, 1, 6, 1, 1, 1, 1]


def test_picamera2_without_a_timestamp_stamps_at_the_read(
    fake: type[FakePicamera2], clock: DriverClock
) -> None:
    got = collect(open_csi(clock), clock, [FakeFrame(None), FakeFrame(ns(READ_AT + 3.0))])
    assert [t for _, t, _ in got] == [READ_AT, READ_AT]  # missing, then in the future


def test_picamera2_configures_bgr_video_at_a_fixed_frame_duration(
    fake: type[FakePicamera2], clock: DriverClock
) -> None:
    sensor = open_csi(clock, (1280, 720))
    camera = picamera2_backend._cameras[0]
    assert camera.config == {
        "main": {"size": (1280, 720), "format": "RGB888"},
        "controls": {"FrameDurationLimits": (33333, 33333)},
    }
    got = collect(sensor, clock, [FakeFrame(ns(9.5))])
    image = got[0][2]
    assert image.shape == (720, 1280, 3) and image.dtype == np.uint8
    # RGB888's bytes are [B, G, R]: passed through as BGR, never swapped.
    assert tuple(image[0, 0]) == (0, 100, 200)


def test_picamera2_frames_of_another_size_are_resized(
    fake: type[FakePicamera2], clock: DriverClock
) -> None:
    got = collect(open_csi(clock, (640, 480)), clock, [FakeFrame(ns(9.5), size=(1280, 960))])
    assert got[0][2].shape == (480, 640, 3)


def test_picamera2_is_created_once_across_stops_starts_and_opens(
    fake: type[FakePicamera2], clock: DriverClock
) -> None:
    first = open_csi(clock)
    collect(first, clock, [FakeFrame(ns(9.0))])
    collect(first, clock, [FakeFrame(ns(9.5))])  # started again after stop()
    second = open_csi(clock, (320, 240))
    second.start(lambda image, n, t: None)
    first.stop()  # a stopped sensor leaves the camera to the one running now
    assert fake.instances[0].started
    second.stop()
    got = collect(second, clock, [FakeFrame(ns(9.9))])
    assert len(fake.instances) == 1
    camera = fake.instances[0]
    assert got[0][2].shape == (240, 320, 3)  # reconfigured for the second sensor
    assert "close" not in camera.calls and not camera.closed
    picamera2_backend.release()
    assert camera.closed and camera.calls.count("close") == 1


def test_picamera2_numbers_keep_counting_across_a_restart(
    fake: type[FakePicamera2], clock: DriverClock
) -> None:
    sensor = open_csi(clock)
    first = collect(sensor, clock, [FakeFrame(ns(9.0))])
    second = collect(sensor, clock, [FakeFrame(ns(9.5))])
    assert second[0][0] - first[0][0] == 15  # half a second later: the pause is a gap


def test_picamera2_requests_are_released_even_when_unreadable(
    fake: type[FakePicamera2], clock: DriverClock
) -> None:
    frames = [FakeFrame(ns(9.0)), FakeFrame(ns(9.0 + PERIOD), unreadable=True)]
    frames.append(FakeFrame(ns(9.0 + 2 * PERIOD)))
    got = collect(open_csi(clock), clock, frames)
    camera = fake.instances[0]
    assert [r.releases for r in camera.requests] == [1, 1, 1]
    assert [n for n, _, _ in got] == [270, 272]  # the unreadable frame is a gap


def test_picamera2_requests_are_released_when_the_frame_callback_raises(
    fake: type[FakePicamera2], clock: DriverClock
) -> None:
    sensor = open_csi(clock)

    def on_frame(image: np.ndarray, n: int, t: float) -> None:
        raise RuntimeError("the core failed on this frame")

    sensor.start(on_frame)
    camera = fake.instances[0]
    camera.feed(FakeFrame(ns(9.0)), FakeFrame(ns(9.0 + PERIOD)))
    camera.wait_idle()
    with pytest.raises(RuntimeError, match="core failed"):
        clock.run_posted()
    sensor.stop()
    assert [r.releases for r in camera.requests] == [1, 1]


def test_picamera2_stop_joins_the_reader_then_stops_the_camera(
    fake: type[FakePicamera2], clock: DriverClock
) -> None:
    sensor = open_csi(clock)
    got: Delivered = []
    sensor.start(lambda image, n, t: got.append((n, t, image)))
    reader = sensor._thread
    assert reader is not None and reader.is_alive()
    camera = fake.instances[0]
    camera.feed(FakeFrame(ns(9.0)))
    camera.wait_idle()  # the reader now waits in capture_request
    sensor.stop()
    assert not reader.is_alive()
    assert camera.calls[-1] == "stop" and not camera.started
    sensor.stop()  # again: nothing more to do
    assert camera.calls.count("stop") == 1
    clock.run_posted()
    assert got == []  # posted before stop(): stale, dropped


def test_picamera2_missing_camera_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, clock: DriverClock
) -> None:
    install(monkeypatch, fake_class([]))
    with pytest.raises(HardwareMissing, match=r"^no CSI camera detected$"):
        Picamera2Sensor.open(clock, 640, 480, FPS, source="0")
    install(monkeypatch, fake_class([USB_CAMERA]))  # a USB camera is OpenCV's, not ours
    with pytest.raises(HardwareMissing, match=r"^no CSI camera detected$"):
        Picamera2Sensor.open(clock, 640, 480, FPS, source="0")
    install(monkeypatch, fake_class([CSI_CAMERA]))
    with pytest.raises(HardwareMissing, match=r"no CSI camera 1 \(detected: 0: imx708\)"):
        Picamera2Sensor.open(clock, 640, 480, FPS, source="1")
    picamera2_backend.release()


def test_picamera2_not_installed_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, clock: DriverClock
) -> None:
    install(monkeypatch, None)
    with pytest.raises(HardwareMissing) as err:
        Picamera2Sensor.open(clock, 640, 480, FPS, source="0")
    assert str(err.value) == NOT_INSTALLED
    assert "apt install python3-picamera2" in NOT_INSTALLED
    assert "--system-site-packages" in NOT_INSTALLED


def test_picamera2_source_must_be_a_camera_number(
    fake: type[FakePicamera2], clock: DriverClock
) -> None:
    with pytest.raises(BackendError, match="camera number"):
        Picamera2Sensor.open(clock, 640, 480, FPS, source="/dev/video0")


# -- auto and the registry ---------------------------------------------------


def test_auto_uses_picamera2_when_it_reports_a_csi_camera(
    fake: type[FakePicamera2], clock: DriverClock
) -> None:
    assert choose("0") == "picamera2"
    sensor = AutoSensor.open(clock, 640, 480, FPS, source="0")
    assert isinstance(sensor, Picamera2Sensor)


@pytest.mark.parametrize("cameras", [None, [], [USB_CAMERA]], ids=["absent", "none", "usb"])
def test_auto_falls_back_to_opencv(
    monkeypatch: pytest.MonkeyPatch, cameras: list[dict[str, str]] | None
) -> None:
    install(monkeypatch, None if cameras is None else fake_class(cameras))
    assert choose("0") == "opencv"
    # OpenCV on device 0: this machine has none, which proves OpenCV was asked;
    # then both kinds of camera are named in one line.
    with pytest.raises(HardwareMissing) as caught:
        AutoSensor.open(MonotonicClock(), 640, 480, FPS, source="0")
    message = str(caught.value)
    assert message.startswith("camera: ") and "\n" not in message
    assert message.endswith("USB camera (V4L2) '0' cannot be opened")
    no_csi = "picamera2 is not installed" if cameras is None else "no CSI camera number 0"
    assert no_csi in message


def test_auto_takes_a_path_to_opencv_without_asking_picamera2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cls = fake_class([CSI_CAMERA])

    def refuse() -> list[dict[str, str]]:
        raise AssertionError("a path names a USB camera or a file: Picamera2 is not asked")

    cls.global_camera_info = staticmethod(refuse)  # type: ignore[method-assign]
    install(monkeypatch, cls)
    path = tmp_path / "clip.avi"
    write_coded_video(path, 1)
    sensor = AutoSensor.open(MonotonicClock(), *SIZE, FPS, source=str(path))
    try:
        assert isinstance(sensor, OpenCVSensor)
    finally:
        sensor.stop()


def test_registry_knows_the_camera_backends() -> None:
    assert registry.load("sensor", "picamera2") is Picamera2Sensor
    assert registry.load("sensor", "auto") is AutoSensor
    assert registry.load("sensor", "opencv") is OpenCVSensor
