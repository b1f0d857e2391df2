"""Driving the simulated pins from a script: the supported ways, and the collisions made loud.

A gpiozero device on one of the firmware's pins used to take over its edge
callback without a word (the recording never started). Now the firmware
reserves its pins as gpiozero devices do, the sim board's pins refuse a second
callback, and each simulated device has a factory of its own whatever the
environment says. The README's example runs here verbatim.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gpiozero import LED, Button, Device, DigitalInputDevice
from gpiozero.exc import GPIOPinInUse, PinFixedPull
from gpiozero.pins.mock import MockFactory

from camera.config import load_config
from camera.state import State
from hal.gpio import gpiozero_pins
from hal.gpio.gpiozero_pins import Claim, GpiozeroGpio, default_factory
from sim.clock import VirtualClock
from sim.device import SimDevice
from sim.gpio import PI5_REVISION, WatchedPin

ROOT = Path(__file__).resolve().parents[1]
HOLSTER, BUTTON, RECORD_LED, FREE = 17, 27, 22, 5  # the default config's BCM pins, and a spare


def draw_holster(dev: SimDevice, at: float) -> None:
    dev.set_input(at, "holster", True)
    dev.run(until=at + 0.5)  # past the 20 ms debounce


@pytest.fixture
def no_global_factory() -> Iterator[None]:
    """Leave gpiozero's process-wide factory as it was found (unset)."""
    before = Device.pin_factory
    Device.pin_factory = None
    yield
    if Device.pin_factory is not None and Device.pin_factory is not before:
        Device.pin_factory.close()
    Device.pin_factory = before


# -- a gpiozero device on a firmware pin is refused, naming the pin and the firmware's use -------


@pytest.mark.parametrize(
    ("make", "pin", "holder"),
    [
        (Button, BUTTON, "<bodycam firmware input 'button' on GPIO27>"),
        (DigitalInputDevice, HOLSTER, "<bodycam firmware input 'holster' on GPIO17>"),
        (LED, RECORD_LED, "<bodycam firmware output 'record_led' on GPIO22>"),
    ],
)
def test_a_gpiozero_device_on_a_firmware_pin_raises_and_the_firmware_keeps_its_edges(
    device_factory: Callable[..., SimDevice],
    make: Callable[..., Device],
    pin: int,
    holder: str,
) -> None:
    dev = device_factory()
    with pytest.raises(GPIOPinInUse) as caught:
        make(pin, pin_factory=dev.pin_factory)
    assert str(caught.value) == f"pin GPIO{pin} is already in use by {holder}"
    draw_holster(dev, 2.0)
    assert dev.firmware.state is State.RECORDING


@pytest.mark.parametrize("replacement", [lambda ticks, state: None, None])
def test_replacing_a_watched_pins_callback_raises_and_the_firmware_keeps_its_edges(
    device_factory: Callable[..., SimDevice], replacement: Callable[..., None] | None
) -> None:
    dev = device_factory()
    pin = dev.gpio.pin("holster")
    watched = r"pin GPIO17 is watched by the firmware's input 'holster'"
    with pytest.raises(GPIOPinInUse, match=watched):
        pin.when_changed = replacement
    with pytest.raises(GPIOPinInUse):
        pin.close()  # gpiozero's close clears the callback: the same silencing
    draw_holster(dev, 2.0)
    assert dev.firmware.state is State.RECORDING


def test_a_gpiozero_device_on_a_free_pin_works_beside_the_firmware(
    device_factory: Callable[..., SimDevice],
) -> None:
    dev = device_factory()
    pressed: list[bool] = []
    spare = Button(FREE, pin_factory=dev.pin_factory)
    spare.when_pressed = lambda: pressed.append(True)
    dev.pin_factory.pin(FREE).drive_low()
    assert spare.is_pressed and pressed == [True]
    draw_holster(dev, 2.0)
    assert dev.firmware.state is State.RECORDING
    spare.close()


def test_the_mock_pin_drives_the_firmware_at_the_clocks_time(
    device_factory: Callable[..., SimDevice],
) -> None:
    """``gpio.pin(name)`` is the wire: electrical levels, stamped where the clock stands."""
    dev = device_factory()
    dev.run(until=2.0)
    dev.gpio.pin("holster").drive_high()  # active high: drawn
    dev.run(until=2.5)
    assert dev.firmware.state is State.RECORDING
    [rec] = dev.shutdown()
    assert rec["trigger"]["time"] == 2.0


def test_a_device_already_on_a_firmware_pin_stops_the_boot_naming_it(tmp_path: Path) -> None:
    config = load_config(None, {"video": {"width": 640, "height": 360}})
    dev = SimDevice(config, tmp_path / "store")
    squatter = Button(HOLSTER, pin_factory=dev.pin_factory)
    try:
        held = r"pin GPIO17 is already in use by <gpiozero\.Button"
        with pytest.raises(GPIOPinInUse, match=held):
            dev.boot()
    finally:
        squatter.close()
        dev.hal.close()


def test_an_unknown_input_name_lists_the_inputs(device_factory: Callable[..., SimDevice]) -> None:
    dev = device_factory()
    with pytest.raises(KeyError, match=r"no input 'holstr' \(inputs: button, holster\)"):
        dev.gpio.pin("holstr")


# -- whose factory: the sim board's own, the pi board's gpiozero choice ---------------------------


def test_two_sim_devices_in_one_process_never_share_pins(tmp_path: Path) -> None:
    config = load_config(None, {"video": {"width": 640, "height": 360}})
    a = SimDevice(config, tmp_path / "a").boot()
    b = SimDevice(config, tmp_path / "b").boot()  # the same pins: no GPIOPinInUse
    try:
        assert a.pin_factory is not b.pin_factory
        assert a.gpio.pin("holster") is not b.gpio.pin("holster")
        a.set_input(1.0, "holster", True)
        a.run(until=1.5)
        b.run(until=1.5)
        assert a.firmware.state is State.RECORDING
        assert b.firmware.state is State.BUFFERING
    finally:
        a.shutdown()
        b.shutdown()


def test_the_environment_and_the_global_factory_do_not_reach_the_sim_board(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_global_factory: None
) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")  # would fail if it were read
    monkeypatch.setenv("GPIOZERO_MOCK_REVISION", "900092")  # a Pi Zero
    monkeypatch.setenv("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")
    Device.pin_factory = MockFactory()
    config = load_config(None, {"video": {"width": 640, "height": 360}})
    dev = SimDevice(config, tmp_path / "store").boot()
    try:
        assert dev.pin_factory is not Device.pin_factory
        assert dev.pin_factory.board_info.revision == PI5_REVISION
        assert type(dev.gpio.pin("holster")) is WatchedPin
        Button(HOLSTER, pin_factory=Device.pin_factory).close()  # another factory: free pins
        draw_holster(dev, 1.0)
        assert dev.firmware.state is State.RECORDING
    finally:
        dev.shutdown()


def test_the_pi_board_takes_the_factory_gpiozero_env_names_and_leaves_the_global_alone(
    monkeypatch: pytest.MonkeyPatch, no_global_factory: None
) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    gpio = GpiozeroGpio(VirtualClock())
    assert isinstance(gpio.factory, MockFactory)
    assert Device.pin_factory is None
    gpio.close()


def test_the_pi_board_shares_a_factory_the_script_chose_and_collides_loudly(
    no_global_factory: None,
) -> None:
    Device.pin_factory = chosen = MockFactory()
    assert default_factory() is chosen
    gpio = GpiozeroGpio(VirtualClock())
    gpio.add_input("holster", HOLSTER, True, "up", lambda *_: None)
    with pytest.raises(GPIOPinInUse, match="firmware input 'holster'"):
        Button(HOLSTER)  # no pin_factory: gpiozero's global, the firmware's too
    gpio.close()


# -- reservations end with the firmware (the Pi's factories share one table per process) --------


@pytest.fixture
def kept_claims(monkeypatch: pytest.MonkeyPatch) -> list[Claim]:
    """Every claim the firmware makes, kept alive.

    The factory holds claims weakly, so a dropped one frees its pin by luck of
    CPython's reference counting; kept, only an explicit release frees it.
    """
    made: list[Claim] = []

    class Kept(Claim):
        def __init__(self, name: str, pin: int) -> None:
            super().__init__(name, pin)
            made.append(self)

    monkeypatch.setattr(gpiozero_pins, "Claim", Kept)
    return made


def test_close_releases_every_reservation(kept_claims: list[Claim]) -> None:
    factory = MockFactory()  # never reset here: only the release can free the pins
    gpio = GpiozeroGpio(VirtualClock(), factory)
    gpio.add_input("holster", HOLSTER, True, "up", lambda *_: None)
    gpio.add_output("record_led", RECORD_LED)
    gpio.close()
    assert kept_claims
    Button(HOLSTER, pin_factory=factory).close()
    LED(RECORD_LED, pin_factory=factory).close()


def test_an_input_that_fails_to_open_releases_its_pin(kept_claims: list[Claim]) -> None:
    factory = MockFactory()
    gpio = GpiozeroGpio(VirtualClock(), factory)
    with pytest.raises(PinFixedPull):
        gpio.add_input("holster", 2, True, "down", lambda *_: None)  # BCM 2 has a fixed pull-up
    assert kept_claims
    Button(2, pin_factory=factory).close()
    gpio.close()
