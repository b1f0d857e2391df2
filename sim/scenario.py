"""Scenario files (SPEC 9): a TOML file in, one validated, frozen :class:`Scenario` out.

A scenario is what the simulated world does to the device: input events on
virtual time, faults, and what the run is expected to produce. Layout::

    [scenario]   name, duration, seed, start, description
    [config]     optional, deep-merged over the device config (SPEC 11)
    [[event]]    at, input, action, bounce_ms, duration, pulse_ms
    [[fault]]    at, kind, duration, seconds
    [gps]        enabled, seed, start = {lat, lon}, walk_seconds, cold_start,
                 time_offset, latency, corrupt_rate, garbage_rate, flood_hz
    [[gps.fix_loss]], [[gps.stall]]   at, duration
    [dock]       at, data, delete, attempts, drop_after_bytes, server_restart,
                 busy_for, full
    [expect]     recordings, triggers, pre_event_min, max_dropped_frames,
                 stop_reasons, markers, frames_min, track_points_min,
                 clock_step_sources, offloaded, kept, deleted, resent,
                 dock_stopped

Like the device config it is strict and closed: unknown keys anywhere and wrong
types are errors (an integer is accepted where a number is expected), because a
typo in a regression scenario must fail the CI job, not quietly test something
else. Every problem is one :class:`ScenarioError` line naming the file, the key
or line, and what was expected, e.g.::

    scn.toml: event[2].at: expected a time within duration 60.0, got 75.0
    scn.toml: line 4: invalid TOML: ...
    scn.toml: config.video.fps: expected at most 120, got 500

Array entries are numbered from 1, as a person counts the ``[[event]]`` tables
in the file: ``event[1]`` is the first ``[[event]]`` (likewise ``fault[N]``,
``gps.fix_loss[N]`` and ``expect.triggers[N]``).

Checks beyond the shape of each table:

- ``at`` (events, faults, GPS windows) is within ``[0, scenario.duration]``.
- with ``[gps] enabled``, the run serves the simulated receiver on a pty and
  sets ``[config.gps]`` itself, so ``config.gps.port`` must not be given; GPS
  time over the run (``start + time_offset`` onwards) lies in the years
  1980..2068, which NMEA's two-digit years can say.
- an event's ``input`` is configured: the SPEC 5 inputs (``holster``,
  ``button``) plus any ``[config.inputs.NAME]`` the scenario declares. A
  scenario is self-contained: ``bodycam scenario check`` needs no device config.
- the events of one input do not overlap: each starts after the previous one's
  last edge (bounce included), so the waveforms never interleave.
- a ``press``, ``double_press``, ``pulse``, ``hold`` or ``chatter`` starts from
  the input's rest (inactive) level, i.e. not after an ``activate`` that no
  ``deactivate`` has undone: those waveforms are defined from rest, and chatter
  on an active input would be a real release.
- ``[config]`` is validated by the device config validator (on the built-in
  defaults) and its errors name this file and ``config.<key>``.
- ``[dock]`` ``at`` is within the run and before any ``power_loss`` fault (the
  run ends at the cut); the offload keys of ``[expect]`` need a ``[dock]``.

An event may run past ``duration`` (a hold starting 1 s before the end): edges
after the end are simply never reached. Plausibility bounds keep every
waveform well defined: ``duration`` <= 1e6 s, ``bounce_ms`` <= 1000,
``pulse_ms`` >= 0.01 and ``duration / pulse_ms`` <= 10 000 for a chatter,
``start`` in the years 1970..2999, a clock jump of at most 1e9 s either way,
``seed`` in 0..2**64-1 (it also seeds numpy's scene generator).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from camera.config import (
    _BARE_KEY,
    Config,
    _At,
    _describe,
    _line,
    _read_toml,
    deep_merge,
    first_problem,
    load_config,
)
from camera.errors import ConfigError, InputError
from camera.evidence.records import StopReason
from hal.clock import STEP_SOURCES
from sim.gps import DEFAULT_START as GPS_DEFAULT_START
from sim.gps import MAX_LAT

__all__ = [
    "ACTIONS",
    "CHATTER_PULSE_MS",
    "DEFAULT_START",
    "DOUBLE_PRESS_GAP",
    "FAULT_KINDS",
    "HOLD_SECONDS",
    "PRESS_SECONDS",
    "Action",
    "Dock",
    "Event",
    "Expect",
    "Fault",
    "FaultKind",
    "Gps",
    "GpsPoint",
    "GpsWindow",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_scenario",
    "with_dock",
]

Action = Literal["activate", "deactivate", "pulse", "press", "double_press", "hold", "chatter"]
FaultKind = Literal[
    "storage_full",
    "storage_stall",
    "camera_disconnect",
    "microphone_disconnect",
    "power_loss",
    "clock_jump",
]
#: The firmware's stop reasons, as the strings a scenario file (and a manifest) holds.
StopReasonName = Literal[tuple(r.value for r in StopReason)]  # type: ignore[valid-type]
#: What can step the wall clock (a manifest's ``wall_clock_steps[].source``).
StepSourceName = Literal[STEP_SOURCES]  # type: ignore[valid-type]
ACTIONS: tuple[str, ...] = Action.__args__  # type: ignore[attr-defined]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]

DEFAULT_START = datetime(2026, 1, 1, 8, 0, 0, tzinfo=UTC)
PRESS_SECONDS = 0.15  # a press is active this long (SPEC 9)
DOUBLE_PRESS_GAP = 0.4  # the second press of a double press starts this much after the first
HOLD_SECONDS = 3.5  # default duration of a hold
CHATTER_PULSE_MS = 10.0  # default pulse_ms of a chatter

MAX_DURATION = 1e6  # seconds (~11.6 days); float device time keeps sub-microsecond steps
MAX_BOUNCE_MS = 1000.0  # contact bounce is milliseconds; a second is already absurd
MIN_PULSE_MS = 0.01  # chatter pulses of 10 us and up
MAX_CHATTER_PULSES = 1_000_000  # bound on duration / pulse_ms: a scenario, not a memory test
MAX_CLOCK_JUMP = 1e9  # seconds (~31 years), either way
_YEARS = (1970, 2999)  # start must lie in these years (wall times stay formattable)

_TIMED = ("pulse", "hold", "chatter")  # actions that take a duration
_FROM_REST = ("press", "double_press", "pulse", "hold", "chatter")  # waveforms defined from rest
# Keys whose items are numbered (from 1) in messages.
_ARRAYS = ("event", "fault", "triggers", "stop_reasons", "fix_loss", "stall", "clock_step_sources")
#: GPS time must be sayable in NMEA's two-digit years (and not before GPS existed).
_GPS_YEARS = (1980, 2068)
MAX_FLOOD_HZ = 100  # NMEA times are in hundredths of a second


class ScenarioError(InputError):
    """The scenario file is invalid; the message is one line naming the file and key or line."""


class _Here(_At):
    """A problem found by our own checks, at ``loc`` (which may hold array indexes)."""

    def __init__(self, text: str, loc: tuple[Any, ...] = ()) -> None:
        ValueError.__init__(self, f"{_where(loc)}: {text}" if loc else text)
        self.text, self.loc = text, loc


def _expected(what: str, value: object, loc: tuple[Any, ...] = ()) -> _Here:
    return _Here(f"expected {what}, got {_describe(value)}", loc)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


NonEmpty = Annotated[str, Field(min_length=1)]
Time = Annotated[float, Field(ge=0)]  # device seconds since boot
Count = Annotated[int, Field(ge=0)]
Duration = Annotated[float, Field(gt=0, le=MAX_DURATION)]
Seed = Annotated[int, Field(ge=0, lt=2**64)]  # numpy's default_rng takes non-negative seeds


def _utc(value: object) -> datetime:
    """``start``: an ISO 8601 string or TOML date-time with a zone (``Z`` or an offset), as UTC."""
    what = 'a date-time with a zone, like "2026-01-01T08:00:00Z"'
    parsed = value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _expected(what, value) from None
    if not isinstance(parsed, datetime) or parsed.utcoffset() is None:
        raise _expected(what, value)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        raise _expected(what, value) from None
    if not _YEARS[0] <= parsed.year <= _YEARS[1]:
        raise _expected(f"a date-time in the years {_YEARS[0]}..{_YEARS[1]}", value)
    return parsed


Start = Annotated[datetime, BeforeValidator(_utc)]


class Event(_Model):
    """One ``[[event]]``: an action on an input at device time ``at`` (see sim.waveforms).

    ``duration`` is for ``pulse`` and ``chatter`` (required) and ``hold`` (default
    3.5 s); ``pulse_ms`` is for ``chatter`` only (default 10 ms); ``bounce_ms`` is
    contact bounce after each edge, for every action but ``chatter``. A key an
    action does not use is an error rather than silently ignored (a ``press``
    with a ``duration`` would not be as long as its author thinks).
    """

    at: Time
    input: NonEmpty
    action: Action
    bounce_ms: Annotated[float, Field(ge=0, le=MAX_BOUNCE_MS)] = 0.0
    duration: Duration | None = None
    pulse_ms: Annotated[float, Field(ge=MIN_PULSE_MS)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            if data.get("action") == "hold" and "duration" not in data:
                data = {**data, "duration": HOLD_SECONDS}
            if data.get("action") == "chatter" and "pulse_ms" not in data:
                data = {**data, "pulse_ms": CHATTER_PULSE_MS}
        return data

    @model_validator(mode="after")
    def _fits_action(self) -> Event:
        action = self.action
        if action in _TIMED and self.duration is None:
            raise _Here(f"missing required key for action {action!r}", ("duration",))
        if action not in _TIMED and self.duration is not None:
            only = "only pulse, hold and chatter take one"
            raise _expected(
                f"no duration for action {action!r} ({only})", self.duration, ("duration",)
            )
        if action != "chatter" and self.pulse_ms is not None:
            what = f"no pulse_ms for action {action!r} (only chatter takes it)"
            raise _expected(what, self.pulse_ms, ("pulse_ms",))
        if action == "chatter":
            if self.bounce_ms:
                what = "no bounce_ms for action 'chatter' (its pulses are the bounce; see pulse_ms)"
                raise _expected(what, self.bounce_ms, ("bounce_ms",))
            assert self.duration is not None and self.pulse_ms is not None
            least = self.duration * 1000.0 / MAX_CHATTER_PULSES
            if self.pulse_ms < least:
                what = f"at least {least:g} for a {self.duration:g} s chatter"
                raise _expected(
                    f"{what} (at most {MAX_CHATTER_PULSES} pulses)", self.pulse_ms, ("pulse_ms",)
                )
        return self

    @property
    def end(self) -> float:
        """An upper bound on the times of this event's edges (last nominal edge + bounce)."""
        bounce = self.bounce_ms / 1000.0
        if self.action == "press":
            return self.at + PRESS_SECONDS + bounce
        if self.action == "double_press":
            return self.at + DOUBLE_PRESS_GAP + PRESS_SECONDS + bounce
        if self.action == "chatter":
            assert self.duration is not None and self.pulse_ms is not None
            return self.at + self.duration + self.pulse_ms / 1000.0
        if self.action in _TIMED:
            assert self.duration is not None
            return self.at + self.duration + bounce
        return self.at + bounce


class Fault(_Model):
    """One ``[[fault]]``: ``kind`` from device time ``at`` for ``duration`` seconds.

    ``clock_jump`` is instantaneous: it takes ``seconds`` (required, the step of
    the wall clock, may be negative) and no ``duration``; no other kind takes
    ``seconds``.
    """

    at: Time
    kind: FaultKind
    duration: Annotated[float, Field(ge=0, le=MAX_DURATION)] = 0.0
    seconds: Annotated[float, Field(ge=-MAX_CLOCK_JUMP, le=MAX_CLOCK_JUMP)] | None = None

    @model_validator(mode="after")
    def _fits_kind(self) -> Fault:
        if self.kind == "clock_jump":
            if self.seconds is None:
                raise _Here("missing required key for kind 'clock_jump'", ("seconds",))
            if "duration" in self.model_fields_set:
                what = "no duration for kind 'clock_jump' (it is instantaneous; see seconds)"
                raise _expected(what, self.duration, ("duration",))
        elif self.seconds is not None:
            what = f"no seconds for kind {self.kind!r} (only clock_jump takes it)"
            raise _expected(what, self.seconds, ("seconds",))
        return self


class Dock(_Model):
    """``[dock]``: the camera is docked at device time ``at`` (default: the end of the run).

    The run starts an evidence server on loopback (``bodycam server``, its
    data in ``data``, a path relative to the run's output directory, default
    a temporary directory), enrolls the device's key, pins the server's, and
    offloads every closed recording while the device keeps running
    (sim.dock). ``delete`` and ``attempts`` are ``[offload]``'s
    ``delete_after_upload`` and ``attempts``. Faults of the link, each once:
    ``drop_after_bytes`` (the connection drops when that many bytes of uploads
    have gone, mid-file), ``server_restart`` (the server is killed while
    receiving the Nth upload, and started again), ``busy_for`` (the first N
    requests are answered 503, Retry-After 1) and ``full`` (the server's
    store has no room: 507).
    """

    at: Time | None = None
    data: NonEmpty | None = None
    delete: bool = True
    attempts: Annotated[int, Field(ge=1, le=100)] = 5
    drop_after_bytes: Annotated[int, Field(ge=1)] | None = None
    server_restart: Annotated[int, Field(ge=1)] | None = None
    busy_for: Annotated[int, Field(ge=1, le=10_000)] | None = None
    full: bool = False


#: ``[expect]`` keys about a ``[dock]``'s offload.
DOCK_EXPECT = ("offloaded", "kept", "deleted", "resent", "dock_stopped")


class Expect(_Model):
    """``[expect]``: each key present is one expectation; a failed one makes the run exit 1.

    ``triggers`` and ``stop_reasons`` list the recordings' trigger sources and stop
    reasons in order; ``markers`` is the total over all recordings;
    ``pre_event_min`` and ``frames_min`` hold for every recording.
    ``track_points_min`` is the fewest track points with a fix in any
    recording; ``clock_step_sources`` lists the ``source`` of every
    ``wall_clock_steps`` entry of all recordings, in order (a step inside two
    overlapping recordings counts in each).

    The ``[dock]``'s offload: ``offloaded`` recordings with a checked receipt,
    ``kept`` on the camera (busy, refused, or not sent), ``deleted`` from the
    camera, ``resent`` files sent although the server held them already (a
    resumed offload sends none), ``dock_stopped`` whether the offload stopped
    before the last recording (server full or unreachable).
    """

    recordings: Count | None = None
    triggers: list[NonEmpty] | None = None
    pre_event_min: Annotated[float, Field(ge=0)] | None = None
    max_dropped_frames: Count | None = None
    stop_reasons: list[StopReasonName] | None = None
    markers: Count | None = None
    frames_min: Count | None = None
    track_points_min: Count | None = None
    clock_step_sources: list[StepSourceName] | None = None
    offloaded: Count | None = None
    kept: Count | None = None
    deleted: Count | None = None
    resent: Count | None = None
    dock_stopped: bool | None = None


class GpsPoint(_Model):
    """``start = { lat, lon }``: where the route begins, degrees (+N, +E).

    Latitude stops at 80 degrees: the route's metres-to-degrees projection
    (cos lat) is honest there, not at a pole.
    """

    lat: Annotated[float, Field(ge=-MAX_LAT, le=MAX_LAT)]
    lon: Annotated[float, Field(ge=-180, le=180)]


class GpsWindow(_Model):
    """One ``[[gps.fix_loss]]`` or ``[[gps.stall]]``: device time ``[at, at + duration)``."""

    at: Time
    duration: Duration


class Gps(_Model):
    """``[gps]``: the simulated receiver (sim.gps) the firmware reads on a pty.

    ``seed`` None means the scenario's; ``cold_start`` is seconds after boot
    with no fix and no time; ``time_offset`` is GPS UTC minus the device's
    wall clock at boot (how wrong the device's clock is); ``latency`` is how
    long after its epoch a sentence burst arrives; the rates are per
    sentence; ``flood_hz`` makes the receiver send RMC+GGA epochs at that
    rate instead of 1 Hz.
    """

    enabled: bool = False
    seed: Seed | None = None
    start: GpsPoint = GpsPoint(lat=GPS_DEFAULT_START[0], lon=GPS_DEFAULT_START[1])
    walk_seconds: Annotated[float, Field(ge=0, le=MAX_DURATION)] = 60.0
    cold_start: Annotated[float, Field(ge=0, le=MAX_DURATION)] = 0.0
    time_offset: Annotated[float, Field(ge=-MAX_CLOCK_JUMP, le=MAX_CLOCK_JUMP)] = 0.0
    latency: Annotated[float, Field(ge=0, lt=1)] = 0.1
    corrupt_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    garbage_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    flood_hz: Annotated[int, Field(ge=1, le=MAX_FLOOD_HZ)] | None = None
    fix_loss: list[GpsWindow] = Field(default_factory=list)
    stall: list[GpsWindow] = Field(default_factory=list)


def _check_gps(gps: Gps, duration: float, start: datetime, config: Mapping[str, Any]) -> None:
    """Raise :class:`_Here` for the first ``[gps]`` setting that does not fit the scenario."""
    for key in ("fix_loss", "stall"):
        for i, window in enumerate(getattr(gps, key)):
            if window.at > duration:
                what = f"a time within duration {float(duration)!r}"
                raise _expected(what, window.at, ("gps", key, i, "at"))
    if not gps.enabled:
        return
    table = config.get("gps")
    if isinstance(table, Mapping) and "port" in table:
        what = "no port when [gps] enabled is true (the run serves its receiver on a pty)"
        raise _expected(what, table["port"], ("config", "gps", "port"))
    lo, hi = _GPS_YEARS
    try:
        first = start + timedelta(seconds=gps.time_offset)
        last = first + timedelta(seconds=duration)
    except OverflowError:
        first = last = datetime.min.replace(tzinfo=UTC)
    if first.year < lo or last.year > hi:
        what = f"GPS time (start + time_offset, over the run) in the years {lo}..{hi}"
        raise _expected(what, gps.time_offset, ("gps", "time_offset"))


def _check_timeline(duration: float, events: Sequence[Event], faults: Sequence[Fault]) -> None:
    """Raise :class:`_Here` for the first event or fault that does not fit in time."""
    for key, items in (("event", events), ("fault", faults)):
        for i, item in enumerate(items):
            if item.at > duration:
                what = f"a time within duration {float(duration)!r}"
                raise _expected(what, item.at, (key, i, "at"))
    by_input: dict[str, list[int]] = {}
    for i, event in enumerate(events):
        by_input.setdefault(event.input, []).append(i)
    for name, indexes in by_input.items():
        indexes.sort(key=lambda i: events[i].at)  # stable: equal times stay in file order
        activated: int | None = None  # the event that left the input active, if any
        for prev, i in zip([None, *indexes], indexes, strict=False):
            event = events[i]
            if prev is not None and event.at <= events[prev].end:
                over = f"event[{prev + 1}] on {name!r} is over at {round(events[prev].end, 6)!r}"
                raise _expected(f"a time after {over}", event.at, ("event", i, "at"))
            if activated is not None and event.action in _FROM_REST:
                what = (
                    f"an action from rest: event[{activated + 1}] left {name!r} active "
                    "(add a deactivate first)"
                )
                raise _expected(what, event.action, ("event", i, "action"))
            if event.action == "activate":
                activated = i
            elif event.action == "deactivate":
                activated = None


def _check_dock(
    dock: Dock | None, duration: float, faults: Sequence[Fault], expect: Expect | None
) -> None:
    """Raise :class:`_Here` if the ``[dock]`` (or its absence) does not fit the scenario."""
    if dock is None:
        given = [k for k in DOCK_EXPECT if expect is not None and getattr(expect, k) is not None]
        if given:
            what = "no offload expectation without a [dock] table"
            raise _expected(what, getattr(expect, given[0]), ("expect", given[0]))
        return
    at = duration if dock.at is None else dock.at
    if at > duration:
        raise _expected(f"a time within duration {float(duration)!r}", at, ("dock", "at"))
    cuts = [f.at for f in faults if f.kind == "power_loss"]
    if cuts and at >= min(cuts):
        what = f"a time before the power_loss fault at {min(cuts)!r} (the run ends at the cut)"
        raise _expected(what, at, ("dock", "at"))


def _check_inputs(events: Sequence[Event], inputs: Iterable[str]) -> None:
    """Raise :class:`_Here` for the first event whose input is not configured."""
    known = sorted(inputs)
    for i, event in enumerate(events):
        if event.input not in known:
            names = ", ".join(repr(n) for n in known)
            what = f"one of the configured inputs {names} (declare others as [config.inputs.NAME])"
            raise _expected(what, event.input, ("event", i, "input"))


class Scenario(_Model):
    """A validated scenario. Build it with :func:`load_scenario` or :func:`parse_scenario`.

    ``config`` is the raw ``[config]`` table (merged over a device config by
    :meth:`device_config`); ``events`` and ``faults`` are in file order;
    ``source`` is how messages name the scenario (the file path as given);
    ``path`` is the file, if it came from one.
    """

    name: NonEmpty
    duration: Duration
    seed: Seed = 0
    start: Start = DEFAULT_START
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    events: list[Event] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    gps: Gps = Field(default_factory=Gps)
    dock: Dock | None = None
    expect: Expect | None = None
    path: Path | None = None
    source: str = "<scenario>"

    @model_validator(mode="after")
    def _fits(self) -> Scenario:
        _check_timeline(self.duration, self.events, self.faults)
        _check_gps(self.gps, self.duration, self.start, self.config)
        _check_dock(self.dock, self.duration, self.faults, self.expect)
        return self

    @property
    def dock_at(self) -> float | None:
        """Device time of the ``[dock]`` (its ``at``, else the end of the run); None: none."""
        if self.dock is None:
            return None
        return self.duration if self.dock.at is None else self.dock.at

    @property
    def gps_seed(self) -> int:
        """The simulated receiver's seed: ``[gps] seed``, else the scenario's."""
        return self.seed if self.gps.seed is None else self.gps.seed

    def device_config(self, base_path: str | os.PathLike[str] | None = None) -> Config:
        """The device config for this run: ``base_path`` (None: built-in defaults) + ``[config]``.

        Raises :class:`~camera.errors.ConfigError` naming the base file and its key,
        or this scenario's ``source`` and ``config.<key>`` for a problem in
        ``[config]``; :class:`ScenarioError` if an event's input is not configured.
        """
        config = load_config(
            base_path, self.config, overrides_source=self.source, overrides_prefix="config"
        )
        try:
            _check_inputs(self.events, config.inputs)
        except _At as exc:
            raise ScenarioError(_line(self.source, _where(exc.loc), exc.text)) from None
        return config


class _Header(_Model):
    """``[scenario]``."""

    name: NonEmpty
    duration: Duration
    seed: Seed = 0
    start: Start = DEFAULT_START
    description: str = ""


class _File(_Model):
    """The file's layout, so that pydantic's error locations are the file's keys."""

    scenario: _Header
    config: dict[str, Any] = Field(default_factory=dict)
    event: list[Event] = Field(default_factory=list)
    fault: list[Fault] = Field(default_factory=list)
    gps: Gps = Field(default_factory=Gps)
    dock: Dock | None = None
    expect: Expect | None = None

    @model_validator(mode="after")
    def _fits(self) -> _File:
        _check_timeline(self.scenario.duration, self.event, self.fault)
        _check_gps(self.gps, self.scenario.duration, self.scenario.start, self.config)
        _check_dock(self.dock, self.scenario.duration, self.fault, self.expect)
        return self


_SECTIONS: dict[tuple[str, ...], type[BaseModel]] = {
    ("scenario",): _Header,
    ("event",): Event,
    ("fault",): Fault,
    ("gps",): Gps,
    ("gps", "start"): GpsPoint,
    ("gps", "fix_loss"): GpsWindow,
    ("gps", "stall"): GpsWindow,
    ("dock",): Dock,
    ("expect",): Expect,
}


# --- turning problems into one line ------------------------------------------------------


def _where(loc: tuple[Any, ...]) -> str:
    """``event[3].at``: array items numbered from 1, odd keys quoted (so it stays one line)."""
    out = ""
    prev: Any = None
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool) and prev in _ARRAYS:
            out += f"[{part + 1}]"
        else:
            key = part if isinstance(part, str) and _BARE_KEY.fullmatch(part) else None
            out += ("." if out else "") + (key or json.dumps(str(part)))
        prev = part
    return out


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the table holding ``loc[-1]``, for a "did you mean" hint."""
    if len(loc) == 1:
        return list(_File.model_fields)
    table = tuple(part for part in loc[:-1] if isinstance(part, str))
    model = _SECTIONS.get(table)
    return list(model.model_fields) if model is not None else []


def _problem(exc: ValidationError) -> tuple[tuple[Any, ...], str]:
    """(location, text) of pydantic's first error, in the device config's words."""
    err = exc.errors()[0]
    loc, kind = tuple(err["loc"]), err["type"]
    if kind == "missing" and loc == ("scenario",):
        return loc, "missing required table [scenario]"
    if kind == "list_type":
        key = ".".join(str(part) for part in loc)
        tables = ("event", "fault", "gps.fix_loss", "gps.stall")
        what = f"an array of tables ([[{key}]])" if key in tables else "an array"
        return loc, f"expected {what}, got {_describe(err['input'])}"
    return first_problem(exc, _keys_at)


# --- public API --------------------------------------------------------------------------


def _parse(data: object, source: str, path: Path | None) -> Scenario:
    if not isinstance(data, Mapping):
        raise _Here(f"expected a table, got {_describe(data)}")
    try:
        parsed = _File.model_validate(dict(data))
    except ValidationError as exc:
        loc, text = _problem(exc)
        raise _Here(text, loc) from None
    header = parsed.scenario
    config = deep_merge({}, parsed.config)  # fresh tables: the caller's data is not shared
    try:
        device = load_config(None, config, overrides_source=source, overrides_prefix="config")
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from None
    _check_inputs(parsed.event, device.inputs)
    return Scenario(
        **header.model_dump(),
        config=config,
        events=parsed.event,
        faults=parsed.fault,
        gps=parsed.gps,
        dock=parsed.dock,
        expect=parsed.expect,
        path=path,
        source=source,
    )


def _parse_or_raise(data: object, source: str, path: Path | None) -> Scenario:
    try:
        return _parse(data, source, path)
    except _At as exc:
        raise ScenarioError(_line(source, _where(exc.loc), exc.text)) from None
    except RecursionError:
        raise ScenarioError(_line(source, "", "expected tables nested less deeply")) from None


def parse_scenario(data: Mapping[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate already-parsed TOML data; ``source`` names it in error messages.

    Raises :class:`ScenarioError` (one line: ``"<source>: <key>: <what>"``), with
    ``[[event]]``/``[[fault]]`` entries numbered from 1 (``event[1]`` is the first).
    """
    return _parse_or_raise(data, source, None)


def with_dock(scenario: Scenario, data: str | os.PathLike[str]) -> Scenario:
    """``scenario`` docked at its ``[dock]``'s time (default: its end), the data in ``data``.

    ``bodycam run --dock DIR``: a scenario without a ``[dock]`` gets one, one
    with a ``[dock]`` keeps it (faults and all) with this data directory.
    """
    dock = (scenario.dock or Dock()).model_copy(update={"data": os.fspath(Path(data).resolve())})
    try:
        _check_dock(dock, scenario.duration, scenario.faults, scenario.expect)
    except _At as exc:
        raise ScenarioError(_line(scenario.source, _where(exc.loc), exc.text)) from None
    return scenario.model_copy(update={"dock": dock})


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate the scenario file ``path``; see :func:`parse_scenario`.

    Unreadable files, bytes that are not UTF-8 and malformed TOML are
    :class:`ScenarioError` too (``"<path>: line N: invalid TOML: ..."``).
    """
    source = os.fsdecode(path)
    try:
        data = _read_toml(source, path)
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from None
    return _parse_or_raise(data, source, Path(source))
