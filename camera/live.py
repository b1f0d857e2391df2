"""Running the firmware for real, until stopped: what a prototype runs at power-up.

A thin layer over :class:`camera.device.Device`: boot, serve the console if
configured, tell systemd we are up and keep its watchdog fed from the
firmware's own loop (a wedged loop stops the pings, so systemd restarts us),
run until SIGTERM or Ctrl-C, then close the open recording and report.
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from camera.config import Config
from camera.device import Device
from camera.report import RunReport
from hal.notify import Notifier, keep_alive

log = logging.getLogger(__name__)


def run_live(
    config: Config, *, board: str | None = None, out: str | Path | None = None
) -> RunReport:
    """Run on ``board`` (default: the config's) until a signal; the report says which one.

    A run that cannot start (hardware missing, no device key) raises before
    anything is written.
    """
    device = Device(config, board=board, storage=out)
    # A watchdog kill is SIGABRT: every thread's stack goes to the journal first.
    faulthandler.enable()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    clock = device.clock
    stopped_by: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        stopped_by.append(signum)
        # The loop ends between two events, never inside one. Also posted: a
        # signal during boot (recovery can take a while) comes before run(),
        # which clears a plain stop; the posted one runs inside it.
        clock.stop()
        clock.call_soon_threadsafe(clock.stop)

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    notifier = Notifier()
    console = None
    pinger = None
    try:
        device.boot()
    except BaseException:
        device.hal.close()  # nothing booted (the card is locked by another firmware?)
        notifier.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        raise
    try:
        if config.console.enabled:
            from camera.console import Console
            from hal.serial import open_serial

            port = open_serial(config.console.port, config.console.baudrate)
            console = Console(device.firmware, port)
            console.start()
        notifier.ready(f"buffering on board {device.board}")
        pinger = keep_alive(clock, notifier)
        device.run()
    finally:
        notifier.stopping()
        if pinger is not None:
            pinger.stop()
        if console is not None:
            console.close()
        device.shutdown()
        notifier.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    interrupted = signal.Signals(stopped_by[0]).name if stopped_by else None
    return device.report(interrupted=interrupted)
