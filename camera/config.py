"""Device configuration: a TOML file in, one validated, frozen :class:`Config` out.

Why it is built this way:

- Strict and closed (``extra="forbid"``, ``strict=True``): a typo or a wrong type
  in a firmware config must stop the device at boot, never silently fall back to
  a default. A camera that quietly watches the wrong pin fails in the field.
- Frozen: the capture loop, trigger and writer read the config concurrently;
  none of them may change it mid-run. A different config means a restart.
- Every field has a default, so no file at all is the built-in configuration of
  SPEC sections 5-7 and a file only says what differs.
- Every problem is one :class:`ConfigError` line,
  ``"<file>: <dotted.key>: expected <what>, got <value>"`` (SPEC 10: bad input
  exits 2 with one clear message and no traceback).
- Settings that are each plausible but cannot work together are refused at
  boot too (see :meth:`Config._consistent`): a pre-event the arena cannot hold,
  a writer queue or segment shorter than one GOP, no way to stop a recording,
  a pin on the console's UART. A device that boots with them fails in the
  field, silently, exactly when it matters.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import tomli_w
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from camera.errors import ConfigError

__all__ = [
    "DEFAULT_INPUTS",
    "RATE_MARGIN",
    "RECOGNITION_MARGIN",
    "UART_PINS",
    "BufferConfig",
    "Config",
    "ConsoleConfig",
    "DeviceConfig",
    "GestureConfig",
    "GpsConfig",
    "HalConfig",
    "InputConfig",
    "OffloadConfig",
    "OutputConfig",
    "RecordingConfig",
    "VideoConfig",
    "deep_merge",
    "dump_config",
    "load_config",
    "parse_config",
    "ring_retention",
]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")  # a TOML bare key; also what an input may be named
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")

#: SPEC 5 inputs. A file's ``[inputs.NAME]`` is merged key by key over these.
DEFAULT_INPUTS: Mapping[str, Mapping[str, Any]] = {
    "holster": {"pin": 17, "active": "high", "pull": "up", "debounce_ms": 20.0, "role": "holster"},
    "button": {"pin": 27, "active": "low", "pull": "up", "debounce_ms": 30.0, "role": "button"},
}

#: Margin on top of the longest delay from a start gesture's first edge to its
#: recognition (a double press: window + debounce + contact bounce); the ring
#: keeps this much beyond ``pre_event`` (see :func:`ring_retention`).
RECOGNITION_MARGIN = 1.0
#: Encoded video may exceed its nominal rate: libx264 on the synthetic scene
#: overshoots ``bitrate`` by up to ~19% over any 2 s window (640x360 at 0.2-1.5
#: Mbit/s, 1280x720 at 4 Mbit/s, measured), so sizes are planned 25% over.
RATE_MARGIN = 1.25
#: JPEG bytes per pixel, by the highest ``quality`` each applies to: the largest
#: frame of the synthetic scene with the overlay (seeds 0-2, 300 frames, 640x360
#: and 1920x1080, OpenCV ``imencode``; re-measured with the overlay scaled to the
#: frame height), rounded up. RATE_MARGIN comes on top.
MJPEG_BYTES_PER_PIXEL = (
    (50, 0.09),
    (70, 0.12),
    (80, 0.15),
    (85, 0.19),
    (90, 0.24),
    (95, 0.38),
    (100, 0.76),
)
#: BCM pins of the header UART (TXD, RXD), which the serial console uses.
UART_PINS = (14, 15)
#: Serial devices that are the header UART on a Raspberry Pi.
HEADER_UARTS = frozenset({"/dev/serial0", "/dev/ttyAMA0", "/dev/ttyS0"})


class _At(ValueError):
    """A problem found by our own checks: its one-line text, at ``loc`` below the validator."""

    def __init__(self, text: str, loc: tuple[str, ...] = ()) -> None:
        super().__init__(f"{'.'.join(loc)}: {text}" if loc else text)
        self.text, self.loc = text, loc


def _describe(value: object) -> str:
    """The offending value as a user would recognise it from TOML, short and on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, int) and value.bit_length() > 64:
        return "a very large integer"
    text = repr(value) if isinstance(value, str | int | float) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _expected(what: str, value: object, loc: tuple[str, ...] = ()) -> _At:
    return _At(f"expected {what}, got {_describe(value)}", loc)


def _even(value: int) -> int:
    if value % 2:
        raise _expected("an even number (H.264 4:2:0 needs even frame sizes)", value)
    return value


def _min_width(value: int) -> int:
    if value < 512:
        raise _expected("at least 512 (the SPEC 8 frame-number code is 512x32 pixels)", value)
    return value


def _device_id(value: str) -> str:
    if not _DEVICE_ID.fullmatch(value):
        raise _expected("1-64 letters, digits or '-', not starting with '-'", value)
    return value


Pin = Annotated[int, Field(ge=0, le=27)]  # BCM numbering on the 40-pin header
NonEmpty = Annotated[str, Field(min_length=1)]
PositiveFloat = Annotated[float, Field(gt=0)]
Megabytes = Annotated[float, Field(gt=0, le=4096)]  # allocated up front: keep it plausible


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class DeviceConfig(_Model):
    """``[device]``: ``id`` goes into recording directory names, hence the narrow alphabet."""

    id: Annotated[str, AfterValidator(_device_id)] = "BWC-0001"
    storage: NonEmpty = "recordings"
    board: Literal["sim", "pi"] = "sim"
    # The private key (SPEC 12): outside the storage directory, so a card
    # handed over with its recordings never carries the key that signed them.
    key_file: NonEmpty = "/etc/bodycam/device.key"


class HalConfig(_Model):
    """``[hal]``: backend names overriding the board's defaults (None = board default)."""

    clock: NonEmpty | None = None
    gpio: NonEmpty | None = None
    sensor: NonEmpty | None = None
    storage: NonEmpty | None = None
    worker: NonEmpty | None = None
    camera: NonEmpty = "0"  # camera number (CSI), device index, V4L2 path or video file
    audio: NonEmpty | None = None
    microphone: NonEmpty = "default"  # ALSA capture device: "default", an index or a name
    gps: NonEmpty | None = None  # "nmea" (the [gps] port), or "none": no receiver

    def backends(self) -> dict[str, str | None]:
        """Backend names by kind (None: the board's default); sources are not backends."""
        return self.model_dump(exclude={"camera", "microphone"})

    @field_validator("camera", mode="before")
    @classmethod
    def _index_as_text(cls, value: object) -> object:
        """``camera = 0`` is the natural way to write a device index in TOML."""
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return str(value) if ok else value


class VideoConfig(_Model):
    """``[video]``: ``threads`` is fixed, not "auto", so output is reproducible across hosts."""

    width: Annotated[int, Field(le=7680), AfterValidator(_min_width), AfterValidator(_even)] = 1280
    height: Annotated[int, Field(ge=64, le=4320), AfterValidator(_even)] = 720
    fps: Annotated[int, Field(ge=1, le=120)] = 30
    codec: Literal["h264", "mjpeg"] = "h264"
    encoder: Literal["auto", "libx264", "h264_v4l2m2m"] = "auto"
    bitrate: Annotated[int, Field(gt=0)] = 4_000_000  # bits per second
    gop: Annotated[int, Field(ge=1, le=600)] = 30  # frames per group of pictures
    quality: Annotated[int, Field(ge=1, le=100)] = 80  # JPEG quality, mjpeg only
    overlay: bool = True
    threads: Annotated[int, Field(ge=1, le=16)] = 2


class BufferConfig(_Model):
    """``[buffer]``: the pre-event arena and the writer queue, both sized once at start-up."""

    pre_event: Annotated[float, Field(gt=0, le=120)] = 30.0  # seconds
    capacity_mb: Megabytes = 64.0  # ring buffer arena, 1 MB = 1e6 bytes
    # Bound on everything queued for storage, pre-event copies included: the
    # arena (the largest copy a trigger can take) plus 16 MB of live backlog.
    queue_mb: Megabytes = 80.0


class RecordingConfig(_Model):
    """``[recording]``: ``reserve_mb`` is kept free for journals and manifests, so a
    full card still ends every recording with a valid manifest."""

    segment_seconds: PositiveFloat = 10.0
    reserve_mb: Annotated[float, Field(ge=0, le=4096)] = 2.0


class InputConfig(_Model):
    """``[inputs.NAME]``: one GPIO input; ``pin``, ``active`` and ``role`` have no default."""

    pin: Pin
    active: Literal["high", "low"]
    pull: Literal["up", "down", "none"] = "up"
    # Bounded because the ring keeps the slowest debounce beyond pre_event.
    debounce_ms: Annotated[float, Field(ge=0, le=1000)] = 20.0
    role: Literal["holster", "button"]


class GestureConfig(_Model):
    """``[gestures]``: button timing of SPEC 5, in seconds.

    Bounded: the ring keeps the double-press window beyond pre_event, and a hold
    longer than half a minute is no gesture an officer can make under stress.
    """

    double_press_window: Annotated[float, Field(gt=0, le=5)] = 1.0
    hold_seconds: Annotated[float, Field(gt=0, le=30)] = 3.0


class OutputConfig(_Model):
    """``[outputs]``: BCM pins of the indicators; ``false`` (None) means not fitted."""

    record_led: Pin | None = 22
    status_led: Pin | None = 23
    haptic: Pin | None = 24

    @field_validator("record_led", "status_led", "haptic", mode="before")
    @classmethod
    def _false_disables(cls, value: object) -> object:
        """TOML has no null, so ``false`` is how a file says an output is absent."""
        if value is True:
            raise _expected("a BCM pin 0..27 or false", value)
        return None if value is False else value


class _Serial(_Model):
    enabled: bool = False
    port: str = ""

    @model_validator(mode="after")
    def _port_when_enabled(self) -> _Serial:
        if self.enabled and not self.port:
            raise _expected("a serial port when enabled is true", self.port, ("port",))
        return self


class GpsConfig(_Serial):
    """``[gps]``: NMEA receiver on a serial port.

    ``latency_ms``: how long after the second it names the receiver's epoch
    has arrived (output delay plus transmission at ``baudrate``), added to
    its UTC when the wall clock is set from it; 0 leaves NMEA time (good to
    a few tenths of a second without PPS) uncompensated.
    """

    baudrate: Annotated[int, Field(gt=0)] = 9600
    latency_ms: Annotated[int, Field(ge=0, le=1000)] = 0


class ConsoleConfig(_Serial):
    """``[console]``: serial control console.

    ``echo`` is the console's ``ECHO`` setting at boot: on for a bench where a
    person always types at a terminal, off (the default) so a script sees
    exactly the replies it asked for.
    """

    baudrate: Annotated[int, Field(gt=0)] = 115200
    echo: bool = False


def _default_inputs() -> dict[str, InputConfig]:
    return {name: InputConfig(**fields) for name, fields in DEFAULT_INPUTS.items()}


class AudioConfig(_Model):
    """``[audio]``: sound recorded with the video (SPEC 15).

    ``pre_event`` is off by default, as on common products: the pre-event
    carries pictures only, and sound starts at the trigger (the gesture's
    first edge). AAC-LC only: what MPEG-TS, Matroska and MP4 exports all carry.
    """

    enabled: bool = True
    pre_event: bool = False
    codec: Literal["aac"] = "aac"
    bitrate: Annotated[int, Field(ge=16_000, le=320_000)] = 64_000  # bits per second
    rate: Literal[16000, 22050, 24000, 32000, 44100, 48000] = 48_000  # samples per second
    channels: Literal[1, 2] = 1


def _server_url(value: str | None) -> str | None:
    """http(s)://host[:port][/path]: where the camera offloads (checked here, not at the dock)."""
    if value is None:
        return None
    m = re.fullmatch(r"(https?)://([^/?#@\s]+)(/[^?#\s]*)?", value)
    if m is None or m.group(2).startswith(":"):
        raise _expected("an http:// or https:// URL like http://evidence.example:8443", value)
    return value


class OffloadConfig(_Model):
    """``[offload]``: the evidence server a docked camera uploads to (issue 16).

    ``server_key`` is the path of the server's public key, pinned here: a
    receipt is trusted only if that key signed it, never a key the server
    offers. ``delete_after_upload`` follows the products: a recording leaves
    the camera once a checked receipt says the server holds it verified.
    ``attempts`` bounds the tries of one request through dropped connections
    and 503s; ``connect_timeout`` and ``timeout`` are seconds.
    """

    server: Annotated[str | None, AfterValidator(_server_url)] = None
    server_key: NonEmpty | None = None
    delete_after_upload: bool = True
    attempts: Annotated[int, Field(ge=1, le=100)] = 5
    connect_timeout: Annotated[float, Field(gt=0, le=300)] = 10.0
    timeout: Annotated[float, Field(gt=0, le=3600)] = 60.0


class Config(_Model):
    """The whole device configuration. Build it with :func:`load_config` or :func:`parse_config`.

    ``inputs`` is typed as a read-only Mapping: treat it as part of the frozen config.
    """

    device: DeviceConfig = Field(default_factory=DeviceConfig)
    hal: HalConfig = Field(default_factory=HalConfig)
    video: VideoConfig = Field(default_factory=VideoConfig)
    buffer: BufferConfig = Field(default_factory=BufferConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    inputs: Mapping[str, InputConfig] = Field(default_factory=_default_inputs)
    gestures: GestureConfig = Field(default_factory=GestureConfig)
    outputs: OutputConfig = Field(default_factory=OutputConfig)
    gps: GpsConfig = Field(default_factory=GpsConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    audio: AudioConfig = Field(default_factory=AudioConfig)
    offload: OffloadConfig = Field(default_factory=OffloadConfig)

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        used: dict[int, str] = {}
        pins = [(("inputs", n, "pin"), i.pin) for n, i in self.inputs.items()]
        pins += [(("outputs", n), p) for n, p in self.outputs.model_dump().items() if p is not None]
        for loc, pin in pins:
            if not _BARE_KEY.fullmatch(loc[1]):
                raise _At("expected an input name of letters, digits, '_' or '-'", loc[:2])
            if pin in used:
                raise _expected(f"a pin not already used by {used[pin]}", pin, loc)
            used[pin] = _dotted(loc)
        if self.buffer.capacity_mb * 8e6 < self.video.bitrate:  # exact: no float overflow
            need = f"{self.video.bitrate / 8e6:g} (one second at video.bitrate)"
            raise _expected(f"at least {need}", self.buffer.capacity_mb, ("buffer", "capacity_mb"))
        self._check_sizes()
        self._check_stop_and_uart()
        return self

    def _bytes_per_second(self) -> tuple[float, str]:
        """Planned encoded bytes per second (margin included), and how it was estimated."""
        v = self.video
        if v.codec == "mjpeg":
            bpp = next(b for q, b in MJPEG_BYTES_PER_PIXEL if v.quality <= q)
            what = f"MJPEG at video.quality {v.quality} (~{bpp:g} bytes/pixel)"
            return bpp * v.width * v.height * v.fps * RATE_MARGIN, what
        return v.bitrate / 8 * RATE_MARGIN, "video.bitrate"

    def _check_sizes(self) -> None:
        """The arena holds the pre-event; the queue and a segment hold at least a GOP."""
        v, b = self.video, self.buffer
        rate, what = self._bytes_per_second()
        gop = 1 if v.codec == "mjpeg" else v.gop  # MJPEG: every frame is a keyframe
        gop_seconds = gop / v.fps
        slack = ring_retention(self) - b.pre_event + 2 * gop_seconds
        arena = b.capacity_mb * 1e6 - audio_arena_bytes(self)
        fits = arena / rate - slack  # the longest pre-event this arena holds
        margin = f"plus {RATE_MARGIN - 1:.0%}"
        if fits < b.pre_event:
            if fits < 1.0:
                need = (b.pre_event + slack) * rate / 1e6
                why = f"buffer.pre_event + {slack:.2f} s of slack at the rate of {what} {margin}"
                raise _expected(
                    f"at least {need:.1f} ({why})", b.capacity_mb, ("buffer", "capacity_mb")
                )
            why = (
                f"what buffer.capacity_mb holds at the rate of {what} {margin},"
                f" after {slack:.2f} s of recognition and GOP slack"
            )
            raise _expected(
                f"at most {fits:.1f} seconds ({why})", b.pre_event, ("buffer", "pre_event")
            )
        gop_bytes = max(1.0, gop_seconds) * rate
        if b.queue_mb * 1e6 < gop_bytes:
            why = f"one GOP or one second, whichever is longer, at the rate of {what} {margin}"
            raise _expected(
                f"at least {gop_bytes / 1e6:.2f} ({why})", b.queue_mb, ("buffer", "queue_mb")
            )
        if self.recording.segment_seconds < gop_seconds:
            why = f"one GOP: video.gop / video.fps = {gop_seconds:g} s"
            raise _expected(
                f"at least {gop_seconds:g} ({why})",
                self.recording.segment_seconds,
                ("recording", "segment_seconds"),
            )

    def _check_stop_and_uart(self) -> None:
        """Something can stop a recording; nothing else sits on a UART in use."""
        if not self.console.enabled and not any(i.role == "button" for i in self.inputs.values()):
            what = "an input with role 'button' or [console] enabled (to stop a recording)"
            raise _At(f"expected {what}, got none", ("inputs",))
        users = []
        if self.console.enabled:
            users.append("console")
        if self.gps.enabled and self.gps.port in HEADER_UARTS:
            users.append("gps")
        if self.console.enabled and self.gps.enabled and self.gps.port == self.console.port:
            raise _expected("a port other than console.port", self.gps.port, ("gps", "port"))
        if not users:
            return
        pins = [(("inputs", n, "pin"), i.pin) for n, i in self.inputs.items()]
        pins += [(("outputs", n), p) for n, p in self.outputs.model_dump().items() if p is not None]
        for loc, pin in pins:
            if pin in UART_PINS:
                what = f"a pin other than 14 and 15 (the UART of [{users[0]}])"
                raise _expected(what, pin, loc)


def audio_retention(config: Config) -> float:
    """Seconds of sound the audio ring keeps: the recognition delay, plus the pre-event if asked.

    Even without pre-event sound the recording's sound starts at the
    trigger's first edge, which is recognised up to a double-press window later.
    """
    a = config.audio
    return ring_retention(config) - (0.0 if a.pre_event else config.buffer.pre_event)


def audio_arena_bytes(config: Config) -> int:
    """Bytes of ``buffer.capacity_mb`` the audio ring takes (0 without audio).

    AAC at a constant bitrate stays near it; the margin covers its bit
    reservoir, and 64 KB the packets' bookkeeping.
    """
    a = config.audio
    if not a.enabled:
        return 0
    return math.ceil(audio_retention(config) * a.bitrate / 8 * RATE_MARGIN) + 64_000


def ring_retention(config: Config) -> float:
    """Seconds of video the ring keeps: ``pre_event`` plus the longest recognition delay.

    A trigger is dated at its first edge but recognised later (a double press's
    window, the slowest debounce, contact bounce); the keyframe at or before
    ``T - pre_event`` must still be in the ring at recognition.
    """
    slowest = max((i.debounce_ms for i in config.inputs.values()), default=0.0) / 1000
    return (
        config.buffer.pre_event + config.gestures.double_press_window + slowest + RECOGNITION_MARGIN
    )


# --- turning problems into one line ------------------------------------------------------

_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "model_type": "a table",
    "dict_type": "a table",
    "model_attributes_type": "a table",
    "literal_error": "{expected}",
    "greater_than": "more than {gt}",
    "greater_than_equal": "at least {ge}",
    "less_than": "less than {lt}",
    "less_than_equal": "at most {le}",
    "finite_number": "a finite number",
    "string_too_short": "a non-empty string",
    "invalid_key": "a string key",
}


def _dotted(loc: tuple[Any, ...]) -> str:
    """``video.width``; keys that are not TOML bare keys are quoted (and so stay on one line)."""
    return ".".join(
        k if isinstance(k, str) and _BARE_KEY.fullmatch(k) else json.dumps(str(k)) for k in loc
    )


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the table holding ``loc[-1]``, for a "did you mean" hint."""
    node: Any = Config
    for part in loc[:-1]:
        if get_origin(node) in (dict, Mapping):
            node = get_args(node)[1]
        elif isinstance(node, type) and issubclass(node, BaseModel) and part in node.model_fields:
            node = node.model_fields[part].annotation
        else:
            return []
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def first_problem(
    exc: ValidationError, keys_at: Callable[[tuple[Any, ...]], list[str]] | None = None
) -> tuple[tuple[Any, ...], str]:
    """(location, text) of pydantic's first error, in our words.

    Shared with the scenario parser so both files speak the same way;
    ``keys_at`` names the valid keys beside a location for "did you mean".
    """
    keys_at = keys_at or _keys_at
    err = exc.errors()[0]
    loc, kind, ctx = tuple(err["loc"]), err["type"], dict(err.get("ctx") or {})
    if isinstance(ctx.get("error"), _At):
        return loc + ctx["error"].loc, ctx["error"].text
    if kind == "extra_forbidden":
        hint = difflib.get_close_matches(str(loc[-1]), keys_at(loc), n=1)
        return loc, "unknown key" + (f" (did you mean '{hint[0]}'?)" if hint else "")
    if kind == "missing":
        return loc, "missing required key"
    template = _EXPECTED.get(kind)
    ctx = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in ctx.items()}
    what = template.format(**ctx) if template else err["msg"][:1].lower() + err["msg"][1:]
    return loc, f"expected {what}, got {_describe(err['input'])}"


def _line(source: str, where: str, text: str) -> str:
    return " ".join(f"{source}: {where + ': ' if where else ''}{text}".splitlines())


def _depth(data: Any, loc: tuple[Any, ...]) -> int:
    """How many leading parts of ``loc`` exist in ``data``."""
    for n, part in enumerate(loc):
        if not isinstance(data, Mapping) or part not in data:
            return n
        data = data[part]
    return len(loc)


def _validate(data: Any) -> Config:
    if not isinstance(data, Mapping):
        raise _At(f"expected a table of settings, got {_describe(data)}")
    inputs = data.get("inputs")
    if isinstance(inputs, Mapping):
        data = {**data, "inputs": deep_merge(DEFAULT_INPUTS, inputs)}
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        loc, text = first_problem(exc)
        raise _At(text, loc) from None


# --- public API --------------------------------------------------------------------------


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``base`` with ``over`` laid on top, tables merged recursively, ``over`` wins.

    Neither argument is modified; nested tables in the result are fresh dicts.
    """
    merged = {k: deep_merge({}, v) if isinstance(v, Mapping) else v for k, v in base.items()}
    for key, value in over.items():
        if isinstance(value, Mapping):
            old = merged.get(key)
            merged[key] = deep_merge(old if isinstance(old, Mapping) else {}, value)
        else:
            merged[key] = value
    return merged


def parse_config(data: Mapping[str, Any], source: str = "<config>") -> Config:
    """Validate already-parsed table data; ``source`` names it in error messages."""
    try:
        return _validate(data)
    except _At as exc:
        raise ConfigError(_line(source, _dotted(exc.loc), exc.text)) from None


def _read_toml(source: str, path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        raw = Path(path).read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(_line(source, "", f"cannot read: {reason}")) from None
    try:
        text = raw.decode("utf-8")
        return tomllib.loads(text)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        reason = f"not UTF-8 text (byte 0x{raw[exc.start]:02x})"
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\s*\(at line (\d+), column (\d+)\)$", str(exc))
        msg = str(exc)[: found.start()] if found else str(exc).replace(" (at end of document)", "")
        line = int(found[1]) if found else text.count("\n") + 1
        reason = msg[:1].lower() + msg[1:] + (f" (column {found[2]})" if found else "")
    except (ValueError, RecursionError) as exc:  # e.g. an integer too long to convert
        msg = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(":")[0]
        line, reason = 0, msg[:1].lower() + msg[1:]
    where = f"line {line}" if line else ""
    raise ConfigError(_line(source, where, f"invalid TOML: {reason}"))


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    overrides_source: str = "<overrides>",
    overrides_prefix: str = "",
) -> Config:
    """Read ``path`` (None: built-in defaults), lay ``overrides`` on top, validate.

    ``overrides`` is, for example, a scenario's ``[config]`` table. A problem found
    in it is reported against ``overrides_source`` with ``overrides_prefix`` (e.g.
    ``"config"``) in front of the key, so the message names the file that has it.
    """
    source = "<defaults>" if path is None else os.fsdecode(path)
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ConfigError(_line(overrides_source, overrides_prefix, "expected a table"))
    data = {} if path is None else _read_toml(source, path)
    try:
        return _validate(deep_merge(data, overrides or {}))
    except _At as exc:
        d_over = _depth(overrides, exc.loc)
        if overrides is not None and (path is None or (d_over and d_over >= _depth(data, exc.loc))):
            where = ".".join(p for p in (overrides_prefix, _dotted(exc.loc)) if p)
            raise ConfigError(_line(overrides_source, where, exc.text)) from None
        raise ConfigError(_line(source, _dotted(exc.loc), exc.text)) from None


def _as_toml(model: BaseModel) -> dict[str, Any]:
    """One table. TOML has no null: a None is left out where it is the default, else ``false``."""
    table: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            table[name] = _as_toml(value)
        elif isinstance(value, Mapping):
            table[name] = {
                k: _as_toml(v) if isinstance(v, BaseModel) else v for k, v in value.items()
            }
        elif value is None:
            if field.default is not None:
                table[name] = False  # how [outputs] says "not fitted"
        else:
            table[name] = value
    return table


def dump_config(config: Config) -> str:
    """``config`` as TOML text that :func:`load_config` reads back to an equal Config.

    Every key is written, defaults included: the whole configuration a device
    runs with, for ``bodycam config show``, not the least file that makes it.
    A ``None`` is left out where it is the default (``[hal]``: the board's
    choice) and written ``false`` otherwise (``[outputs]``: not fitted).
    Nothing in the config is secret today (``device.key_file`` is the key's
    path, not the key); a secret added later must be kept out of this text.
    """
    return tomli_w.dumps(_as_toml(config))
