"""The frame-number code burned into every synthetic frame (SPEC section 8).

Tests prove continuity end to end by reading the number back out of decoded
recordings, so the code must survive lossy encoding: each bit is a 16x16 block
(aligned to H.264 macroblocks and JPEG/chroma blocks) with its inverse below
it, and a bit is read as "top brighter than bottom". The inverse pair makes the
reading independent of luma range (full 0..255 or limited 16..235), gain and
compression ringing, and it lets the reader tell a real code from a scene
that merely happens to have bright and dark patches.
"""

from __future__ import annotations

import operator

import numpy as np

CODE_BITS = 32
BLOCK = 16
CODE_WIDTH = CODE_BITS * BLOCK  # 512
CODE_HEIGHT = 2 * BLOCK  # 32

#: A bit is only trusted when top and bottom differ by this much (of 255); a
#: clean pair differs by 255 (219 in limited range), compression costs a few tens.
MIN_CONTRAST = 64.0

_WEIGHTS = np.uint64(1) << np.arange(CODE_BITS - 1, -1, -1, dtype=np.uint64)  # bit 0 = MSB

# The top row of the code for every byte value, already 3-channel: four table
# lookups build the whole row, and assigning a (1, 512, 3) row is ~30x faster
# than broadcasting a single channel into three.
_BYTE_ROWS = np.repeat(
    ((np.arange(256)[:, None] >> np.arange(7, -1, -1)) & 1).astype(np.uint8) * np.uint8(255),
    BLOCK * 3,
    axis=1,
)  # (256, 8 bits * 16 px * 3 channels)
_INNER = slice(BLOCK // 4, BLOCK - BLOCK // 4)  # inner 8x8 of a 16x16 block: away from ringing


def draw_frame_code(image: np.ndarray, number: int) -> None:
    """Burn ``number`` into the top-left 512x32 of a BGR uint8 image, in place.

    Out-of-range numbers are refused rather than wrapped: a wrapped code would
    read back as a different frame and make a continuity check lie.
    """
    number = operator.index(number)  # numpy integers too, but never a float
    if not 0 <= number < 1 << CODE_BITS:
        raise ValueError(f"frame number {number} does not fit in {CODE_BITS} bits")
    if image.ndim != 3 or image.shape[0] < CODE_HEIGHT or image.shape[1] < CODE_WIDTH:
        raise ValueError(f"image {image.shape} too small for a {CODE_WIDTH}x{CODE_HEIGHT} code")
    code_bytes = np.frombuffer(number.to_bytes(CODE_BITS // 8, "big"), dtype=np.uint8)
    top = _BYTE_ROWS[code_bytes].reshape(1, CODE_WIDTH, 3)
    image[:BLOCK, :CODE_WIDTH] = top
    image[BLOCK:CODE_HEIGHT, :CODE_WIDTH] = 255 - top


def _block_means(rows: np.ndarray) -> np.ndarray:
    """Mean of the inner 8x8 of each of the 32 blocks in a (16, >=512[, C]) strip."""
    strip = rows[_INNER, :CODE_WIDTH].astype(np.float32)
    inner = strip.reshape(strip.shape[0], CODE_BITS, BLOCK, *strip.shape[2:])[:, :, _INNER]
    axes = (0, 2, 3) if inner.ndim == 4 else (0, 2)
    return inner.mean(axis=axes)


def read_frame_code(image: np.ndarray) -> int | None:
    """The frame number in a BGR image or a luma plane, or None if there is no clear code.

    None rather than a best guess: a frame whose code is damaged or absent
    must not be mistaken for some other frame number.
    """
    if image.ndim not in (2, 3) or image.shape[0] < CODE_HEIGHT or image.shape[1] < CODE_WIDTH:
        return None
    top = _block_means(image[:BLOCK])
    bottom = _block_means(image[BLOCK:CODE_HEIGHT])
    diff = top - bottom
    if np.any(np.abs(diff) < MIN_CONTRAST):
        return None
    return int(np.sum(_WEIGHTS[diff > 0]))
