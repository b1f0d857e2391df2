"""Pins: claim every configured input and output through the board's GPIO backend.

Claiming is the only honest test: a pin another program holds, or a pin
library that will not load, shows up exactly as it would at boot. Every pin
is tried, so one claimed pin does not hide another.
"""

from __future__ import annotations

from typing import Any

from camera.config import Config
from camera.doctor.result import Result, part_problem, why
from hal.board import Parts

__all__ = ["check_pins"]


def check_pins(config: Config, board: Parts) -> Result:
    """Claim every configured pin, then let go (the GPIO backend is closed afterwards)."""
    wanted = [(n, i.pin) for n, i in config.inputs.items()]
    wanted += [(n, p) for n, p in config.outputs.model_dump().items() if p is not None]
    listed = ", ".join(f"{n} {p}" for n, p in wanted)
    details: dict[str, Any] = {"pins": dict(wanted), "backend": board.names["gpio"]}
    gpio = board.gpio
    if gpio is None:
        return Result("pins", "fail", part_problem(board, "gpio", "pins"), details)
    factory = type(getattr(gpio, "factory", gpio)).__name__
    details["factory"] = factory
    bad: list[str] = []
    try:
        for n, i in config.inputs.items():
            try:
                gpio.add_input(n, i.pin, i.active == "high", i.pull, lambda *_: None)
            except Exception as exc:
                bad.append(f"{n} {i.pin}: {why(exc)}")
        for n, p in config.outputs.model_dump().items():
            if p is None:
                continue
            try:
                gpio.add_output(n, p)
            except Exception as exc:
                bad.append(f"{n} {p}: {why(exc)}")
    finally:
        gpio.close()
    if bad:
        details["problems"] = bad
        return Result("pins", "fail", "; ".join(bad), details)
    return Result("pins", "ok", f"{listed} free ({factory})", details)
