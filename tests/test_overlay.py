"""The burnt-in device id and time: legible at every frame size, never on the frame code.

Measured from the pixels draw() changes, not from the layout it claims, so a
layout that lies about its box fails here too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camera.config import VideoConfig
from camera.framecode import CODE_HEIGHT, CODE_WIDTH, draw_frame_code, read_frame_code
from camera.overlay import MARKER, Overlay, layout, text_lines

WALL = datetime(2024, 6, 3, 14, 7, 59, 123_000, tzinfo=UTC)
#: The sizes people use: the README example and CI scenarios (640x360), 4:3,
#: the firmware default (1280x720), 1080p, 4K, and the smallest config accepts.
SIZES = [(640, 360), (640, 480), (1280, 720), (1920, 1080), (3840, 2160), (512, 64)]
NUMBER = 0xA5C3_0F96


def coded_frame(width: int, height: int) -> np.ndarray:
    """Mid grey, so both the white text and its dark outline change pixels, with a frame code."""
    image = np.full((height, width, 3), 128, np.uint8)
    draw_frame_code(image, NUMBER)
    return image


def changed_box(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), exclusive ends, of every pixel draw() changed."""
    ys, xs = np.nonzero((before != after).any(axis=2))
    assert ys.size, "the overlay drew nothing"
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_text_height_scales_with_the_frame(width: int, height: int) -> None:
    image = coded_frame(width, height)
    before = image.copy()
    Overlay("BWC-0001").draw(image, WALL)
    x0, y0, x1, y1 = changed_box(before, image)
    text_h = y1 - y0
    # 3-5% of the height, never under 14 px (smaller smears once encoded).
    assert max(14, 0.03 * height) <= text_h <= max(20, 0.05 * height), (text_h, height)
    # Bottom left, inside the frame, and one line: wider than it is tall.
    assert y1 <= height and x0 >= 0 and x1 <= width
    assert y0 >= height / 2 or height < 128
    assert x0 < width / 10 and x1 - x0 > 10 * text_h


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_frame_code_is_untouched(width: int, height: int) -> None:
    image = coded_frame(width, height)
    before = image.copy()
    Overlay("BWC-0001").draw(image, WALL)
    assert changed_box(before, image)[1] >= CODE_HEIGHT
    assert np.array_equal(image[:CODE_HEIGHT, :CODE_WIDTH], before[:CODE_HEIGHT, :CODE_WIDTH])
    assert read_frame_code(image) == NUMBER


def test_white_text_with_a_dark_outline_reads_on_a_bright_sky() -> None:
    """White strokes, with near-black within 3 px of (almost) every white pixel.

    On a bright background a grey outline would leave the white text with no
    contrast at all: the outline must be really dark, all round the strokes.
    """
    image = np.full((360, 640, 3), 230, np.uint8)
    Overlay("BWC-0001").draw(image, WALL)
    gray = image[..., 0]
    white = gray >= 250
    assert white.sum() > 500
    darkest_near = cv2.erode(gray, np.ones((7, 7), np.uint8))
    assert (darkest_near[white] <= 32).mean() >= 0.9


def test_same_frame_and_time_give_the_same_bytes() -> None:
    image = coded_frame(1280, 720)
    a, b = image.copy(), image.copy()
    Overlay("BWC-0001").draw(a, WALL)
    Overlay("BWC-0001", (1280, 720)).draw(b, WALL)
    assert a.tobytes() == b.tobytes()
    c = image.copy()
    Overlay("BWC-0001").draw(c, WALL + timedelta(milliseconds=1))
    assert c.tobytes() != a.tobytes()  # the time really is drawn


def test_only_the_layout_box_changes() -> None:
    image = coded_frame(1280, 720)
    before = image.copy()
    Overlay("BWC-0001").draw(image, WALL)
    x, y, w, h = layout("BWC-0001", 1280, 720).box
    outside = np.ones(image.shape[:2], bool)
    outside[y : y + h, x : x + w] = False
    assert np.array_equal(image[outside], before[outside])


def test_an_undisciplined_time_is_marked_and_only_then() -> None:
    """The marker follows the time; a disciplined frame is drawn as it always was."""
    assert text_lines("BWC-0001", WALL, False, marked=True) == (
        f"BWC-0001 2024-06-03 14:07:59.123Z {MARKER}",
    )
    base = coded_frame(640, 360)
    plain, default, marked = base.copy(), base.copy(), base.copy()
    Overlay("BWC-0001", (640, 360)).draw(plain, WALL, disciplined=True)
    Overlay("BWC-0001").draw(default, WALL)
    Overlay("BWC-0001").draw(marked, WALL, disciplined=False)
    assert np.array_equal(plain, default)
    px0, py0, px1, py1 = changed_box(base, plain)
    mx0, my0, mx1, my1 = changed_box(base, marked)
    # Same line, same left edge and height; the marker adds a word's width after the time.
    assert (mx0, my0, my1) == (px0, py0, py1) and mx1 - px1 > 5 * (py1 - py0)
    assert np.array_equal(marked[:, : px1 - 20], plain[:, : px1 - 20])  # the time itself unchanged
    assert mx1 <= 640 and read_frame_code(marked) == NUMBER


def test_a_long_device_id_goes_on_its_own_line() -> None:
    device_id = "metropolitan-police-station-42-traffic-division-unit-0007"
    lay = layout(device_id, 640, 360)
    assert lay.two_lines and lay.glyph_px >= 14
    image = coded_frame(640, 360)
    before = image.copy()
    Overlay(device_id).draw(image, WALL)
    _, y0, x1, y1 = changed_box(before, image)
    assert y0 >= CODE_HEIGHT and x1 <= 640 and y1 <= 360
    assert y1 - y0 > 2 * 14  # two lines of at least 14 px


@pytest.mark.parametrize("length", [30, 40, 64])
def test_a_long_id_on_the_smallest_frame_shrinks_rather_than_touch_the_code(length: int) -> None:
    """512x64 leaves 28 rows under the code: long ids must shrink to fit there."""
    image = coded_frame(512, 64)
    before = image.copy()
    Overlay("A" * length).draw(image, WALL)
    assert changed_box(before, image)[1] >= CODE_HEIGHT
    assert read_frame_code(image) == NUMBER


def test_a_frame_with_no_room_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="200x40"):
        Overlay("BWC-0001", (200, 40))


device_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}", fullmatch=True)
even = lambda lo, hi: st.integers(lo // 2, hi // 2).map(lambda n: 2 * n)  # noqa: E731


@settings(max_examples=40)
@given(device_id=device_ids, width=even(512, 7680), height=even(64, 4320), marked=st.booleans())
def test_every_accepted_size_has_a_legible_layout_clear_of_the_code(
    device_id: str, width: int, height: int, marked: bool
) -> None:
    VideoConfig(width=width, height=height)  # config accepts this frame size
    lay = layout(device_id, width, height, marked)
    x, y, w, h = lay.box
    assert x >= 0 and y >= CODE_HEIGHT and x + w <= width and y + h <= height
    assert lay.glyph_px >= 6
    if not marked and len(device_id) <= 16 and 3 * width >= 4 * height:  # a usual id, 4:3+
        assert not lay.two_lines and lay.glyph_px == max(14, round(0.035 * height))


@settings(max_examples=15)
@given(device_id=device_ids, width=even(512, 1920), height=even(64, 1080), marked=st.booleans())
def test_drawing_stays_in_the_frame_and_off_the_code(
    device_id: str, width: int, height: int, marked: bool
) -> None:
    image = coded_frame(width, height)
    before = image.copy()
    Overlay(device_id).draw(image, WALL, disciplined=not marked)
    assert changed_box(before, image)[1] >= CODE_HEIGHT
    assert read_frame_code(image) == NUMBER
