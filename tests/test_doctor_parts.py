"""A part that did not open is its check's fail line, worded once.

:func:`hal.board.open_parts` prefixes each problem with the part ("pins: ",
"camera: ", "storage: "); the doctor's line already names the check, so the
prefix must not read twice ("pins: pins: ...").
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from camera.config import Config
from camera.doctor import check_camera, check_pins, check_storage
from camera.doctor.result import Result
from hal import registry
from hal.board import Parts
from sim.clock import VirtualClock


def parts_with(kind: str, problem: str) -> Parts:
    names = {"gpio": "mock", "sensor": "synthetic", "storage": "sim"}
    return Parts(registry.Board("pi"), names, VirtualClock(), None, None, None, {kind: problem})


def camera_result(config: Config, parts: Parts) -> Result:
    result, images = check_camera(config, parts)
    assert images == []
    return result


@pytest.mark.parametrize(
    ("kind", "problem", "check", "line"),
    [
        ("gpio", "pins: GPIO17 busy", check_pins, "fail  pins: GPIO17 busy"),
        (
            "sensor",
            "camera: video file 'x.mp4' cannot be opened",
            camera_result,
            "fail  camera: synthetic: video file 'x.mp4' cannot be opened",
        ),
        (
            "storage",
            "storage: [Errno 13] Permission denied",
            check_storage,
            "fail  storage: [Errno 13] Permission denied",
        ),
        # A HardwareMissing's own text has no such prefix and is kept whole.
        ("gpio", "pin factory: none", check_pins, "fail  pins: pin factory: none"),
    ],
)
def test_a_part_that_did_not_open_is_one_fail_line_naming_it_once(
    kind: str, problem: str, check: Callable[[Config, Parts], Result], line: str
) -> None:
    result = check(Config(), parts_with(kind, problem))
    assert result.line() == line
