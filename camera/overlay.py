"""Burnt-in metadata: device id and UTC time on every picture.

Evidence guidance asks for date and time on all footage, and it is only worth
having if whoever watches the footage can read it. So the text scales with the
frame height (TEXT_FRACTION, never below MIN_TEXT_PX) and is white with a thin
dark outline, which reads on a bright sky and on a dark street alike.

Everything draw() changes lies in one box at the bottom left, placed below the
SPEC section 8 frame-code strip (y >= CODE_HEIGHT): the frame numbers that
verify reads can never be touched, at any frame size config accepts.

A time nothing vouches for (no GPS fix, no NTP: a Pi without a real-time
clock may be days out) is followed by :data:`MARKER`, so nobody watching
takes it at face value (SPEC 14). A word, not a symbol: at 14 px a trailing
"?" is easy to miss and a leading "~" looks like a dash, and the marker has
to be noticed by someone who does not know to look for it. Marked and unmarked
text each have their own layout, laid out up front, so an unmarked frame is
drawn exactly as before the marker existed.

The outline is the rendered text mask dilated, not bolder black text drawn
underneath: OpenCV 5 renders the Hershey font ids with a TrueType face in which
``thickness`` only picks a weight, so "thickness + 2" no longer means a wider
stroke (it drew a lopsided black shadow). Dilation gives the same outline, in
pixels we choose, under OpenCV 4 and 5.

From one frame to the next only the milliseconds change, and rendering the
text is most of the overlay's cost on the capture hot path. So the text is
drawn whole once a second and once per new millisecond value, and otherwise
the kept columns of that value are copied in (:class:`_Stamp`): the same
pixels as drawing it whole, which tests check frame by frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import cv2
import numpy as np

from camera.framecode import CODE_HEIGHT

FONT = cv2.FONT_HERSHEY_SIMPLEX
#: Height of capitals and digits as a fraction of the frame height: 13 px at
#: 360 lines (raised to MIN_TEXT_PX), 25 px at 720, 38 px at 1080.
TEXT_FRACTION = 0.035
#: Below this the digits of a time smear together once the video is encoded.
MIN_TEXT_PX = 14
#: Below this nothing is legible at all: a frame that cannot hold the text this
#: big is refused rather than stamped with an unreadable smear.
SMALLEST_TEXT_PX = 6
#: Distance of the text block from the frame's left and bottom edges.
MARGIN_FRACTION = 0.02
MIN_MARGIN_PX = 4
#: Every digit has the same advance in the Hershey fonts and in OpenCV 5's
#: face, so any time is as wide as this one: the layout is fixed per frame size.
TIME_TEMPLATE = "0000-00-00 00:00:00.000Z"
#: After the time while wall time is not disciplined (no GPS, no NTP).
MARKER = "UNSYNCED"


@dataclass(frozen=True)
class Layout:
    """How big and where: ``box`` (x, y, w, h) holds every pixel draw() changes."""

    two_lines: bool
    glyph_px: int  # height of capitals and digits
    scale: float
    thickness: int
    outline: int  # dark border around each stroke, in pixels
    box: tuple[int, int, int, int]
    origins: tuple[tuple[int, int], ...]  # baseline origin of each line, inside the box


def second_text(wall: datetime) -> str:
    """The burnt-in time to the second: all of it but the milliseconds."""
    return f"{wall:%Y-%m-%d %H:%M:%S}"


def millis_text(wall: datetime) -> str:
    """The burnt-in milliseconds, the only part that changes from one frame to the next."""
    return f"{wall.microsecond // 1000:03d}"


def text_lines(
    device_id: str, wall: datetime, two_lines: bool, marked: bool = False
) -> tuple[str, ...]:
    """The overlay's text: on two lines when a long device id would not fit beside the time.

    ``marked``: the time is followed by :data:`MARKER` (wall time not disciplined).
    """
    time = f"{second_text(wall)}.{millis_text(wall)}Z"
    if marked:
        time = f"{time} {MARKER}"
    return (device_id, time) if two_lines else (f"{device_id} {time}",)


def _ink(text: str, scale: float, thickness: int) -> tuple[int, int, int, int]:
    """Ink bounds (left, top, right, bottom) of ``text`` relative to its baseline origin.

    Rendered and measured rather than taken from getTextSize, whose height
    includes space above the capitals and differs between OpenCV 4 and 5.
    """
    (w, h), base = cv2.getTextSize(text, FONT, scale, thickness)
    pad = h + base + thickness + 2
    canvas = np.zeros((h + base + 2 * pad, w + 2 * pad), np.uint8)
    cv2.putText(canvas, text, (pad, pad + h), FONT, scale, 255, thickness, cv2.LINE_AA)
    ys, xs = np.nonzero(canvas)
    return (
        int(xs.min()) - pad,
        int(ys.min()) - pad - h,
        int(xs.max()) + 1 - pad,
        int(ys.max()) + 1 - pad - h,
    )


@lru_cache(maxsize=1)
def _glyph_px_per_scale() -> float:
    """Capital and digit height per unit of font scale, measured on this OpenCV."""
    reference = 4.0
    _, top, _, bottom = _ink("H0", reference, 1)
    return (bottom - top) / reference


@dataclass(frozen=True)
class _Block:
    """The text block at one glyph height: how to draw it and the box it needs."""

    lines: tuple[str, ...]
    glyph_px: int
    scale: float
    thickness: int
    outline: int
    size: tuple[int, int]  # (w, h) of the box: ink, outline and a pixel of slack all round
    origins: tuple[tuple[int, int], ...]


def _block(lines: tuple[str, ...], glyph_px: int) -> _Block:
    """Measure ``lines`` drawn with capitals ``glyph_px`` high, one under the other."""
    thickness = max(2, round(glyph_px / 8))  # OpenCV 5: any thickness >= 2 is its bold weight
    scale = glyph_px / _glyph_px_per_scale()
    # OpenCV 4's strokes widen the ink by about the thickness: scale it back.
    _, top, _, bottom = _ink("H0", scale, thickness)
    scale *= glyph_px / (bottom - top)
    outline = max(1, round(glyph_px / 16))  # thin beside the stroke: a border, not a blot
    pitch = round(glyph_px * 1.6)
    inks = [_ink(line, scale, thickness) for line in lines]
    left, top = min(ink[0] for ink in inks), inks[0][1]
    right, bottom = max(ink[2] for ink in inks), inks[-1][3] + pitch * (len(lines) - 1)
    pad = outline + 1
    origins = tuple((pad - left, pad - top + i * pitch) for i in range(len(lines)))
    size = (right - left + 2 * pad, bottom - top + 2 * pad)
    return _Block(lines, glyph_px, scale, thickness, outline, size, origins)


def _fit(lines: tuple[str, ...], want_px: int, room: tuple[int, int]) -> _Block | None:
    """The block with the largest glyph height up to ``want_px`` that fits ``room`` (w, h).

    The wanted size usually fits, so it is tried first; otherwise a binary
    search, as the block grows with the glyph height.
    """

    def fits(block: _Block) -> bool:
        return block.size[0] <= room[0] and block.size[1] <= room[1]

    if fits(block := _block(lines, want_px)):
        return block
    best, lo, hi = None, SMALLEST_TEXT_PX, want_px - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(block := _block(lines, mid)):
            best, lo = block, mid + 1
        else:
            hi = mid - 1
    return best


@lru_cache(maxsize=16)
def layout(device_id: str, width: int, height: int, marked: bool = False) -> Layout:
    """The overlay's layout on a ``width`` x ``height`` frame (raises ValueError if it cannot fit).

    One line at the wanted size if it fits, else two lines (a long device id
    above the time) if that is bigger, else the larger of the two shrunk.
    ``marked``: for the time followed by :data:`MARKER`.
    """
    want_px = max(MIN_TEXT_PX, round(TEXT_FRACTION * height))
    margin = max(MIN_MARGIN_PX, round(MARGIN_FRACTION * min(width, height)))
    room = (width - 2 * margin, height - margin - CODE_HEIGHT)
    time = f"{TIME_TEMPLATE} {MARKER}" if marked else TIME_TEMPLATE
    best: _Block | None = None
    for lines in ((f"{device_id} {time}",), (device_id, time)):
        block = _fit(lines, want_px, room)
        if block is not None and (best is None or block.glyph_px > best.glyph_px):
            best = block
        if best is not None and best.glyph_px == want_px:
            break
    if best is None:
        raise ValueError(f"a {width}x{height} frame has no room for a legible overlay")
    w, h = best.size
    return Layout(
        two_lines=len(best.lines) == 2,
        glyph_px=best.glyph_px,
        scale=best.scale,
        thickness=best.thickness,
        outline=best.outline,
        box=(margin, height - margin - h, w, h),
        origins=best.origins,
    )


def render_text(mask: np.ndarray, lines: tuple[str, ...], lay: Layout) -> None:
    """The text mask of ``lines`` in ``lay``'s box, drawn from scratch into ``mask`` (h, w)."""
    mask.fill(0)
    for text, origin in zip(lines, lay.origins, strict=True):
        cv2.putText(mask, text, origin, FONT, lay.scale, 255, lay.thickness, cv2.LINE_AA)


#: The time the millisecond columns are probed at: seconds and milliseconds
#: are varied from here one glyph at a time, and a far date against it.
_PROBE = datetime(2000, 1, 1, tzinfo=UTC)
_PROBE_MILLIS = (
    *(d * 10**p for p in range(3) for d in range(1, 10)),
    123,
    456,
    789,
    999,
    505,
)


def millisecond_columns(device_id: str, lay: Layout, marked: bool) -> tuple[int, int] | None:
    """Columns [c0, c1) of the box that the milliseconds change and nothing else does.

    Found by rendering, not assumed: each millisecond digit is varied alone
    (and a few together) against a reference time, then the seconds digit
    beside them and a whole different date. The columns the milliseconds
    touch must be a span that nothing else of the time reaches, nor comes
    within two outlines of (the outline of what is inside it reaches that
    far out). None when they are not (a font whose glyphs overlap): the
    overlay then draws every frame's text whole, as it would without a cache.
    """
    _, _, w, h = lay.box
    mask = np.zeros((h, w), np.uint8)

    def columns(wall: datetime) -> np.ndarray:
        render_text(mask, text_lines(device_id, wall, lay.two_lines, marked), lay)
        return (mask != reference).any(axis=0)

    render_text(mask, text_lines(device_id, _PROBE, lay.two_lines, marked), lay)
    reference = mask.copy()
    millis = np.zeros(w, np.bool_)
    for ms in _PROBE_MILLIS:
        millis |= columns(_PROBE + timedelta(milliseconds=ms))
    others = columns(datetime(2199, 12, 31, 23, 59, 58, tzinfo=UTC))
    for second in range(1, 10):
        others |= columns(_PROBE + timedelta(seconds=second))
    touched = np.flatnonzero(millis)
    if not touched.size:
        return None
    c0, c1 = int(touched[0]), int(touched[-1]) + 1
    reach = 2 * lay.outline
    return None if others[max(0, c0 - reach) : c1 + reach].any() else (c0, c1)


class _Stamp:
    """One layout's text, redrawn only where the time changed, and its buffers.

    Within one second, the text of two frames differs only in the
    millisecond columns, and what the overlay blends there (the text and the
    shade of its outline) depends on the milliseconds alone
    (:func:`millisecond_columns` checks both). So the text is drawn whole,
    putText and all, once a second and once per new millisecond value; every
    other frame copies the kept columns of its milliseconds into the current
    buffers. At most 1000 values are kept per layout (about 4 MB at 720p,
    9 MB at 1080p), so the cache needs no eviction.
    """

    def __init__(self, device_id: str, lay: Layout, marked: bool) -> None:
        self.device_id = device_id
        self.layout = lay
        self.marked = marked
        _, _, w, h = lay.box
        cell = millisecond_columns(device_id, lay, marked)
        #: The columns that change within a second: the milliseconds and their outline.
        self.span = (
            None if cell is None else (max(0, cell[0] - lay.outline), min(w, cell[1] + lay.outline))
        )
        self.mask = np.zeros((h, w), np.uint8)
        self.halo = np.zeros((h, w), np.uint8)  # 255 - the doubled outline: what stays
        self.shade = np.zeros((h, w, 3), np.uint8)  # the halo, per channel
        self.text = np.zeros((h, w, 3), np.uint8)  # the mask, per channel
        self._span3 = np.zeros((h, 0 if cell is None else self.span[1] - self.span[0], 3), np.uint8)
        self.second: str | None = None  # what shade and text show, to the second
        #: The fields second_text() formats, of the last frame: strftime costs
        #: more than the rest of a cached frame, and they change once a second.
        self._fields: tuple[int, ...] | None = None
        self._second_text = ""
        self.cells: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # millis -> mask, halo span

    def update(self, wall: datetime) -> None:
        """Make ``shade`` and ``text`` those of ``wall``, exactly as :meth:`draw_whole` does."""
        fields = (wall.year, wall.month, wall.day, wall.hour, wall.minute, wall.second)
        if fields != self._fields:
            self._fields, self._second_text = fields, second_text(wall)
        second, millis, span = self._second_text, millis_text(wall), self.span
        if span is not None and second == self.second:
            kept = self.cells.get(millis)
            if kept is not None:
                # Per channel through a small contiguous buffer: numpy broadcasting
                # one channel into three strided ones is ten times slower.
                e0, e1 = span
                self.text[:, e0:e1] = cv2.merge((kept[0],) * 3, dst=self._span3)
                self.shade[:, e0:e1] = cv2.merge((kept[1],) * 3, dst=self._span3)
                return
        self.draw_whole(wall)
        if span is not None:
            e0, e1 = span
            self.second = second
            self.cells[millis] = (self.mask[:, e0:e1].copy(), self.halo[:, e0:e1].copy())

    def draw_whole(self, wall: datetime) -> None:
        """``wall``'s text and the shade of its outline, from scratch."""
        lay = self.layout
        render_text(self.mask, text_lines(self.device_id, wall, lay.two_lines, self.marked), lay)
        cv2.dilate(self.mask, _disc(lay.outline), dst=self.halo)
        # Doubled (saturating): the dilated antialiased edge alone makes a grey
        # outline, which vanishes on a bright background.
        cv2.add(self.halo, self.halo, dst=self.halo)
        cv2.bitwise_not(self.halo, dst=self.halo)  # 255 - halo: how much of each pixel stays
        cv2.merge((self.halo,) * 3, dst=self.shade)
        cv2.merge((self.mask,) * 3, dst=self.text)


class Overlay:
    """Stamps the device id and wall time on frames, in place."""

    def __init__(self, device_id: str, size: tuple[int, int] | None = None) -> None:
        """``size`` (width, height) lays the text out now, at start-up, not on the first frame.

        Laying out renders the text a few dozen times (tens of ms at 1080p),
        which would stall the capture path; a frame of another size still
        works, laid out when it first arrives.
        """
        self.device_id = device_id
        self._stamps: dict[tuple[int, int, bool], _Stamp] = {}
        if size is not None:
            self._stamp_for(*size, marked=False)
            self._stamp_for(*size, marked=True)

    def _stamp_for(self, width: int, height: int, marked: bool) -> _Stamp:
        """Kept here, not only in layout()'s cache, which other frame sizes may evict."""
        key = (width, height, marked)
        stamp = self._stamps.get(key)
        if stamp is None:
            lay = layout(self.device_id, width, height, marked)
            stamp = self._stamps[key] = _Stamp(self.device_id, lay, marked)
        return stamp

    def draw(self, image: np.ndarray, wall: datetime, disciplined: bool = True) -> None:
        """White text with a dark outline, alpha-blended so small text stays smooth.

        ``disciplined`` False marks the time (:data:`MARKER`). The work is
        confined to the layout's box (a few per cent of the frame), into
        buffers kept from frame to frame, which keeps the cost per frame
        small on the capture hot path.
        """
        stamp = self._stamp_for(image.shape[1], image.shape[0], not disciplined)
        x, y, w, h = stamp.layout.box
        stamp.update(wall)
        roi = image[y : y + h, x : x + w]
        # Darken under the halo, then add the text (saturating to white); the halo
        # covers the text, so this is white over black with smooth edges.
        # OpenCV, not numpy arithmetic: ten times faster on this hot path.
        # In place: the same arithmetic as into a buffer of its own, and less memory
        # to touch on a path where the encoder has just flushed the caches.
        cv2.multiply(roi, stamp.shade, dst=roi, scale=1 / 255)
        cv2.add(roi, stamp.text, dst=roi)


@lru_cache(maxsize=8)
def _disc(radius: int) -> np.ndarray:
    """The structuring element that grows strokes by ``radius`` pixels all round."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
