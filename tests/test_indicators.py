"""Indicators and inputs at the pins: what an officer sees and feels, what the wiring does.

The HAL's own log (``gpio.changes``) is written before an output is set, so a
test that reads it cannot tell whether the pin followed. These tests read the
gpiozero MockFactory pins themselves, by BCM number, sampled on the virtual
clock; and drive the inputs at the electrical level (the button is active
low, the holster active high, SPEC 5), so a swapped pin or polarity in the
config or the HAL fails here even though the mapping code agrees with itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from camera.indicators import BLINK_PERIOD, PULSE_OFF, PULSE_ON
from sim.device import SimDevice

HOLSTER, BUTTON = 17, 27
OUTPUTS = {"record_led": 22, "status_led": 23, "haptic": 24}
#: Sampling grid on the virtual clock; offset so no sample lands on a change.
STEP = 0.01
OFFSET = 0.0037
DEBOUNCE_HOLSTER, DEBOUNCE_BUTTON = 0.020, 0.030


class Probe:
    """Reads the output pins' electrical state every STEP of virtual time."""

    def __init__(self, dev: SimDevice, start: float, end: float) -> None:
        self.samples: list[tuple[float, dict[str, bool]]] = []
        pins = {name: dev.gpio.factory.pin(n) for name, n in OUTPUTS.items()}
        for k in range(round((end - start) / STEP)):
            t = start + OFFSET + k * STEP
            dev.clock.call_at(t, lambda t=t: self._read(t, pins))

    def _read(self, t: float, pins: dict[str, Any]) -> None:
        self.samples.append((t, {name: bool(pin.state) for name, pin in pins.items()}))

    def at(self, name: str, t: float) -> bool:
        """The state of ``name`` at the first sample at or after ``t``."""
        return next(s[name] for when, s in self.samples if when >= t)

    def pulses(self, name: str) -> list[tuple[float, float]]:
        """(on, off) sample times of each high period of ``name``."""
        out: list[tuple[float, float]] = []
        on: float | None = None
        for t, s in self.samples:
            if s[name] and on is None:
                on = t
            elif not s[name] and on is not None:
                out.append((on, t))
                on = None
        assert on is None, f"{name} still on at the end of the probe"
        return out


def drive(dev: SimDevice, t: float, pin: int, high: bool) -> None:
    """Set a pin's electrical level at virtual time ``t``: the wire, not the mapping."""
    mock = dev.gpio.factory.pin(pin)
    dev.clock.call_at(t, mock.drive_high if high else mock.drive_low)


def close(a: float, b: float, tol: float = 1.5 * STEP) -> bool:
    return abs(a - b) <= tol


def test_inputs_rest_at_their_electrical_levels(device_factory: Callable[..., SimDevice]) -> None:
    """Holster switch closed pulls 17 low; button up leaves 27 pulled high (SPEC 5)."""
    dev = device_factory()
    factory = dev.gpio.factory
    assert factory.pin(HOLSTER).state == 0
    assert factory.pin(BUTTON).state == 1


def test_electrical_edges_start_and_stop_a_recording(
    device_factory: Callable[..., SimDevice],
) -> None:
    """Holster 17 driven high starts; button 27 held low for 3.5 s stops (hold: 3.0 s)."""
    dev = device_factory({"buffer": {"pre_event": 2.0}})
    drive(dev, 5.0, HOLSTER, True)
    drive(dev, 8.0, BUTTON, False)
    drive(dev, 11.5, BUTTON, True)
    dev.run(until=13.0)
    [m] = dev.shutdown()
    assert m["trigger"]["source"] == "holster" and m["trigger"]["time"] == 5.0
    assert m["stop"] == {"reason": "button_hold", "time": 11.0}


def test_electrical_double_press_starts(device_factory: Callable[..., SimDevice]) -> None:
    dev = device_factory({"buffer": {"pre_event": 2.0}})
    for t in (4.0, 4.4):  # two 100 ms presses, pulling 27 to ground
        drive(dev, t, BUTTON, False)
        drive(dev, t + 0.1, BUTTON, True)
    dev.run(until=6.0)
    [m] = dev.shutdown()
    assert m["trigger"]["source"] == "button" and m["trigger"]["time"] == 4.0


def test_wrong_polarity_does_not_record(device_factory: Callable[..., SimDevice]) -> None:
    """Pulses of the inactive polarity (holster 17 low, button 27 high) are no edges at all."""
    dev = device_factory({"buffer": {"pre_event": 2.0}})
    for t in (3.0, 3.4):
        drive(dev, t, HOLSTER, False)
        drive(dev, t, BUTTON, True)
    dev.run(until=5.0)
    assert dev.shutdown() == []


def test_record_led_status_led_and_haptic_follow_a_recording(
    device_factory: Callable[..., SimDevice],
) -> None:
    dev = device_factory({"buffer": {"pre_event": 2.0}})
    probe = Probe(dev, 1.0, 14.0)
    drive(dev, 4.0, HOLSTER, True)
    drive(dev, 8.0, BUTTON, False)
    drive(dev, 11.5, BUTTON, True)  # hold recognised at 11.0
    dev.run(until=14.0)
    dev.shutdown()
    start, stop = 4.0 + DEBOUNCE_HOLSTER, 11.0

    [(rec_on, rec_off)] = probe.pulses("record_led")
    assert close(rec_on, start) and close(rec_off, stop)
    # The status LED is on while buffering, off while recording.
    assert probe.at("status_led", 1.0) and probe.at("status_led", 3.9)
    assert not probe.at("status_led", start + STEP) and not probe.at("status_led", stop - STEP)
    assert probe.at("status_led", stop + STEP) and probe.at("status_led", 13.9)
    assert all(s["record_led"] != s["status_led"] for _, s in probe.samples)

    haptic = probe.pulses("haptic")
    assert len(haptic) == 3, haptic  # one on start, two on stop
    (a_on, a_off), (b_on, b_off), (c_on, c_off) = haptic
    assert close(a_on, start) and close(a_off - a_on, PULSE_ON)
    assert close(b_on, stop) and close(b_off - b_on, PULSE_ON)
    assert close(c_on - b_on, PULSE_ON + PULSE_OFF) and close(c_off - c_on, PULSE_ON)


def test_status_led_blinks_while_the_card_is_full(
    device_factory: Callable[..., SimDevice],
) -> None:
    """A trigger with the card full is refused: no recording, no record LED, a blink."""
    dev = device_factory({"buffer": {"pre_event": 2.0}})
    left = int(dev.config.recording.reserve_mb * 1_000_000) // 2
    dev.clock.call_at(2.0, lambda: dev.storage.fill(left))
    probe = Probe(dev, 1.0, 8.0)
    drive(dev, 3.0, HOLSTER, True)
    dev.run(until=8.0)
    assert dev.shutdown() == []
    refused = 3.0 + DEBOUNCE_HOLSTER
    assert not any(s["record_led"] or s["haptic"] for _, s in probe.samples)
    assert all(s["status_led"] for t, s in probe.samples if t < refused)
    blinks = [(a, b) for a, b in probe.pulses("status_led") if a > refused]
    assert len(blinks) >= 8, blinks  # 0.5 s period over ~5 s
    for on, off in blinks:
        assert close(off - on, BLINK_PERIOD / 2)
    for (on, _), (next_on, _) in itertools.pairwise(blinks):
        assert close(next_on - on, BLINK_PERIOD)


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_outputs_are_on_their_bcm_pins(device_factory: Callable[..., SimDevice], name: str) -> None:
    """Each output name drives its own pin and no other (SPEC 5 table)."""
    dev = device_factory()
    pins = {n: dev.gpio.factory.pin(p) for n, p in OUTPUTS.items()}
    before = {n: bool(p.state) for n, p in pins.items()}
    dev.gpio.set_output(name, not before[name])
    after = {n: bool(p.state) for n, p in pins.items()}
    assert {n for n in OUTPUTS if after[n] != before[n]} == {name}
