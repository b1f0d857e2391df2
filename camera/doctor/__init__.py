"""``bodycam doctor``: check a board before trusting it with evidence (SPEC 13).

One module per area (pins, camera, encoder, microphone, storage, ports, gps, clock), each a
check returning one :class:`Result`: ok, warn, fail, or skip for a part the
config does not use. Why it is built this way:

- The board is opened part by part (:func:`open_board`, over
  :func:`hal.board.open_parts`), so a missing camera does not hide whether
  the pins are free; a part that did not open is its check's fail line.
- A check never raises: an unexpected exception is that check's ``fail``
  line, naming the exception, and the other checks still run.
- Time comes from the HAL clock, as everywhere in ``camera/``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from camera.config import Config
from camera.doctor.board import open_board
from camera.doctor.camera import check_camera
from camera.doctor.clock import ClockReading, check_clock
from camera.doctor.encoder import check_encoder
from camera.doctor.gps import GPS_WINDOW, check_gps
from camera.doctor.microphone import check_microphone
from camera.doctor.pins import check_pins
from camera.doctor.ports import check_console
from camera.doctor.result import Report, Result, Status, why
from camera.doctor.storage import PROBE_NAME, check_storage
from hal.board import Parts
from hal.clock.ntp import ntp_synchronized

__all__ = [
    "PROBE_NAME",
    "ClockReading",
    "Report",
    "Result",
    "Status",
    "check_camera",
    "check_clock",
    "check_console",
    "check_encoder",
    "check_gps",
    "check_microphone",
    "check_pins",
    "check_storage",
    "open_board",
    "run_doctor",
]


def _guarded(name: str, check: Callable[[], Result]) -> Result:
    try:
        return check()
    except Exception as exc:  # a doctor that crashes tells nobody what is wrong
        return Result(name, "fail", f"check failed: {why(exc)}")


def run_doctor(
    config: Config,
    board: Parts,
    *,
    on_result: Callable[[Result], None] | None = None,
    ntp: Callable[[], bool | None] = ntp_synchronized,
    gps_window: float = GPS_WINDOW,
) -> Report:
    """Every check, in order; ``on_result`` hears each line as soon as it is known.

    The clock is read first and judged last, so a wall-clock step anywhere
    during the other checks shows. The camera's pictures feed the encoder
    check and are dropped right after it (memory on a Pi Zero is tight).
    """
    results: list[Result] = []

    def emit(result: Result) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    before = ClockReading.take(board.clock)
    emit(_guarded("pins", lambda: check_pins(config, board)))
    images: list[np.ndarray] = []

    def camera() -> Result:
        result, got = check_camera(config, board)
        images.extend(got)
        return result

    emit(_guarded("camera", camera))
    emit(_guarded("encoder", lambda: check_encoder(config, board, images)))
    images.clear()
    emit(_guarded("microphone", lambda: check_microphone(config, board)))
    emit(_guarded("storage", lambda: check_storage(config, board)))
    emit(_guarded("console", lambda: check_console(config, board)))
    emit(_guarded("gps", lambda: check_gps(config, board, window=gps_window)))
    emit(_guarded("clock", lambda: check_clock(board, before, ntp=ntp)))
    return Report(board.board.name, dict(board.names), results)
