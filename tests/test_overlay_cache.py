"""The overlay's cache draws exactly what drawing the text whole draws, pixel for pixel.

The burnt-in time is evidence: a cache that showed the previous frame's
milliseconds, or a stale second, would put a false time on a picture. So
every frame the cached overlay draws is compared with a reference that draws
everything from scratch (the overlay as it was before it had a cache),
across second boundaries, for every millisecond value.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import camera.overlay as overlay
from camera.overlay import FONT, Overlay, layout, text_lines

START = datetime(2024, 6, 3, 14, 7, 59, 0, tzinfo=UTC)


def reference(image: np.ndarray, device_id: str, wall: datetime, disciplined: bool) -> None:
    """The overlay drawn from scratch, with no buffer or text kept between frames."""
    marked = not disciplined
    lay = layout(device_id, image.shape[1], image.shape[0], marked)
    x, y, w, h = lay.box
    mask = np.zeros((h, w), np.uint8)
    lines = text_lines(device_id, wall, lay.two_lines, marked)
    for text, origin in zip(lines, lay.origins, strict=True):
        cv2.putText(mask, text, origin, FONT, lay.scale, 255, lay.thickness, cv2.LINE_AA)
    radius = lay.outline
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    halo = cv2.dilate(mask, disc)
    cv2.add(halo, halo, dst=halo)
    roi = image[y : y + h, x : x + w]
    dark = cv2.multiply(roi, cv2.merge((255 - halo,) * 3), scale=1 / 255)
    cv2.add(dark, cv2.merge((mask,) * 3), dst=roi)


def scene(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Noise, so that a wrong pixel anywhere in the box shows."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)


def mismatches(
    device_id: str, size: tuple[int, int], walls: list[datetime], disciplined: bool = True
) -> list[datetime]:
    """The times at which one long-lived overlay draws other pixels than the reference."""
    cached = Overlay(device_id, size)
    background = scene(*size)
    bad = []
    for wall in walls:
        ours, theirs = background.copy(), background.copy()
        cached.draw(ours, wall, disciplined)
        reference(theirs, device_id, wall, disciplined)
        if not np.array_equal(ours, theirs):
            bad.append(wall)
    return bad


@pytest.mark.parametrize("size", [(640, 360), (1280, 720)])
@pytest.mark.parametrize("disciplined", [True, False])
def test_every_millisecond_across_a_second_boundary_is_drawn_exactly(
    size: tuple[int, int], disciplined: bool
) -> None:
    """1200 frames 1 ms apart: every millisecond value once, and two new seconds."""
    walls = [START - timedelta(milliseconds=100) + timedelta(milliseconds=i) for i in range(1200)]
    assert mismatches("BWC-0001", size, walls, disciplined) == []


def test_frames_at_30_fps_over_minutes_and_a_date_change() -> None:
    """The simulated camera's cadence: the same 30 millisecond values, second after second."""
    midnight = datetime(2025, 12, 31, 23, 59, 58, tzinfo=UTC)
    walls = [midnight + timedelta(seconds=n / 30) for n in range(150)]
    assert mismatches("BWC-0001", (1920, 1080), walls) == []


def test_marked_and_unmarked_frames_interleaved_keep_their_own_text() -> None:
    cached = Overlay("BWC-0001", (640, 360))
    background = scene(640, 360)
    for n in range(90):
        wall = START + timedelta(seconds=n / 30)
        disciplined = (n // 7) % 2 == 0  # the fix comes and goes
        ours, theirs = background.copy(), background.copy()
        cached.draw(ours, wall, disciplined)
        reference(theirs, "BWC-0001", wall, disciplined)
        assert np.array_equal(ours, theirs), (n, disciplined)


def test_time_going_back_a_second_redraws_the_whole_text() -> None:
    """The wall clock is stepped back (a GPS fix after a drift): the second is not assumed."""
    walls = [START + timedelta(milliseconds=m) for m in (100, 200, 1100, 150, 250, -850, 1100)]
    assert mismatches("BWC-0001", (640, 360), walls) == []


@settings(max_examples=10, deadline=None)
@given(
    device_id=st.text(st.sampled_from("ABCXYZ0189-_"), min_size=1, max_size=40),
    height=st.integers(32, 540).map(lambda n: 2 * n),
    disciplined=st.booleans(),
    steps=st.lists(st.integers(1, 1500), min_size=5, max_size=40),
)
def test_any_id_size_and_cadence_draws_exactly(
    device_id: str, height: int, disciplined: bool, steps: list[int]
) -> None:
    width = max(512, (height * 16 // 9) // 2 * 2)
    walls, wall = [], START
    for step in steps:
        wall += timedelta(milliseconds=step)
        walls.append(wall)
    assert mismatches(device_id, (width, height), walls, disciplined) == []


def test_without_separate_millisecond_columns_every_frame_is_drawn_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A font whose glyphs overlapped would get no cache, and still the same pixels."""
    monkeypatch.setattr(overlay, "millisecond_columns", lambda *args: None)
    walls = [START + timedelta(seconds=n / 30) for n in range(45)]
    assert mismatches("BWC-0001", (640, 360), walls) == []
    stamp = Overlay("BWC-0001", (640, 360))._stamp_for(640, 360, marked=False)
    assert stamp.span is None and stamp.cells == {}


def test_the_millisecond_columns_hold_three_digits_right_of_the_seconds() -> None:
    lay = layout("BWC-0001", 1280, 720)
    span = overlay.millisecond_columns("BWC-0001", lay, False)
    assert span is not None
    c0, c1 = span
    _, _, w, h = lay.box
    masks = []
    for wall in (START, START + timedelta(seconds=1)):  # ...:59 and ...:00
        mask = np.zeros((h, w), np.uint8)
        overlay.render_text(mask, text_lines("BWC-0001", wall, False), lay)
        masks.append(mask)
    seconds = np.flatnonzero((masks[0] != masks[1]).any(axis=0))
    assert seconds.size and seconds.max() < c0 < c1 <= w
    digits = cv2.getTextSize("000", FONT, lay.scale, lay.thickness)[0][0]
    assert digits * 0.8 < c1 - c0 <= digits + 2 * lay.thickness


def test_the_kept_milliseconds_are_bounded_by_their_thousand_values() -> None:
    cached = Overlay("BWC-0001", (640, 360))
    image = scene(640, 360)
    for n in range(3000):
        cached.draw(image, START + timedelta(milliseconds=7 * n))
    stamp = cached._stamp_for(640, 360, marked=False)
    assert len(stamp.cells) == 1000
