"""Indicator outputs: record LED, status LED, haptic motor.

Timed on the HAL clock (pulses and blinks are timers on the loop), never with
gpiozero's own blink threads, which read real time and would make simulated
runs depend on the host.
"""

from __future__ import annotations

from hal.clock import Clock, Timer
from hal.gpio import Gpio

PULSE_ON = 0.15
PULSE_OFF = 0.15
BLINK_PERIOD = 0.5


class Indicators:
    def __init__(self, clock: Clock, gpio: Gpio, outputs: dict[str, int | None]) -> None:
        self.clock = clock
        self.gpio = gpio
        self._blink: Timer | None = None
        self._blink_on = False
        for name, pin in outputs.items():
            if pin is not None:
                gpio.add_output(name, pin)

    def recording(self, on: bool) -> None:
        self.gpio.set_output("record_led", on)
        if self._blink is None:
            self.gpio.set_output("status_led", not on)

    def pulse(self, count: int) -> None:
        """``count`` haptic pulses: one on start, two on stop."""
        period = PULSE_ON + PULSE_OFF
        now = self.clock.now()
        for i in range(count):
            t = now + i * period
            self.clock.call_at(t, lambda: self.gpio.set_output("haptic", True))
            self.clock.call_at(t + PULSE_ON, lambda: self.gpio.set_output("haptic", False))

    def error(self, on: bool) -> None:
        """Blink the status LED while an error stands."""
        if on and self._blink is None:
            self._toggle()
        elif not on and self._blink is not None:
            self._blink.cancel()
            self._blink = None
            self.gpio.set_output("status_led", not self.gpio.outputs.get("record_led", False))

    def _toggle(self) -> None:
        self._blink_on = not self._blink_on
        self.gpio.set_output("status_led", self._blink_on)
        self._blink = self.clock.call_later(BLINK_PERIOD / 2, self._toggle)

    def close(self) -> None:
        if self._blink is not None:
            self._blink.cancel()
            self._blink = None
