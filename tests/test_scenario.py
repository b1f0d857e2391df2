"""Scenario files (SPEC 9): what parses, and one clear line for everything that does not."""

from __future__ import annotations

import copy
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camera.errors import ConfigError, InputError
from sim.scenario import (
    DEFAULT_START,
    Event,
    Expect,
    Fault,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_scenario,
)

FULL = """\
[scenario]
name = "holster-draw"
duration = 180          # an integer is fine for a number
seed = 7
start = "2026-03-04T05:06:07+02:00"
description = "draw, then hold the button to stop"

[config]
video = { width = 640, height = 360 }

[config.inputs.door]
pin = 5
active = "high"
role = "holster"

[[event]]
at = 75.0
input = "holster"
action = "activate"
bounce_ms = 8

[[event]]
at = 150
input = "button"
action = "hold"

[[event]]
at = 100.0
input = "button"
action = "double_press"
bounce_ms = 5

[[event]]
at = 20.0
input = "door"
action = "chatter"
duration = 2.0
pulse_ms = 4

[[event]]
at = 30.0
input = "button"
action = "pulse"
duration = 0.5

[[fault]]
at = 60.0
kind = "storage_stall"
duration = 2.5

[[fault]]
at = 90
kind = "clock_jump"
seconds = -3600

[expect]
recordings = 1
triggers = ["holster"]
pre_event_min = 29.5
max_dropped_frames = 0
stop_reasons = ["button_hold"]
markers = 1
frames_min = 100
"""

MINIMAL: dict[str, Any] = {"scenario": {"name": "m", "duration": 60.0}}


def write(tmp_path: Path, text: str, name: str = "scn.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(data: Any, source: str = "scn.toml") -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, source)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{source}: ")
    return message


def with_(**tables: Any) -> dict[str, Any]:
    """MINIMAL with some tables replaced or added."""
    data = copy.deepcopy(MINIMAL)
    data.update(copy.deepcopy(tables))
    return data


def event(**fields: Any) -> dict[str, Any]:
    return {"at": 10.0, "input": "button", "action": "press", **fields}


# --- what parses -------------------------------------------------------------------------


def test_a_full_scenario_parses_with_every_field(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    s = load_scenario(path)
    assert isinstance(s, Scenario)
    assert (s.name, s.duration, s.seed) == ("holster-draw", 180.0, 7)
    assert isinstance(s.duration, float)
    assert s.start == datetime(2026, 3, 4, 3, 6, 7, tzinfo=UTC)  # converted to UTC
    assert s.description == "draw, then hold the button to stop"
    assert s.path == path and s.source == str(path)
    assert s.config["video"] == {"width": 640, "height": 360}
    assert [e.action for e in s.events] == [
        "activate",
        "hold",
        "double_press",
        "chatter",
        "pulse",
    ]  # file order
    assert s.events[0] == Event(at=75.0, input="holster", action="activate", bounce_ms=8.0)
    assert s.events[1].duration == 3.5  # hold's default
    assert s.events[1].bounce_ms == 0.0 and s.events[1].pulse_ms is None
    assert s.events[3].pulse_ms == 4.0 and s.events[3].duration == 2.0
    assert s.faults == [
        Fault(at=60.0, kind="storage_stall", duration=2.5),
        Fault(at=90.0, kind="clock_jump", seconds=-3600.0),
    ]
    assert s.expect == Expect(
        recordings=1,
        triggers=["holster"],
        pre_event_min=29.5,
        max_dropped_frames=0,
        stop_reasons=["button_hold"],
        markers=1,
        frames_min=100,
    )
    config = s.device_config()
    assert (config.video.width, config.video.height) == (640, 360)
    assert set(config.inputs) == {"holster", "button", "door"}


def test_defaults() -> None:
    s = parse_scenario(MINIMAL)
    assert s.seed == 0
    assert s.start == DEFAULT_START == datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert s.description == ""
    assert s.config == {} and s.events == [] and s.faults == []
    assert s.expect is None and s.path is None
    chatter = Event(at=1.0, input="holster", action="chatter", duration=1.0)
    assert chatter.pulse_ms == 10.0 and chatter.bounce_ms == 0.0
    assert Event(at=1.0, input="button", action="hold").duration == 3.5
    assert Fault(at=0.0, kind="power_loss").duration == 0.0
    assert parse_scenario(with_(expect={})).expect == Expect()


def test_start_may_be_a_native_toml_datetime(tmp_path: Path) -> None:
    text = '[scenario]\nname = "n"\nduration = 1\nstart = 2026-05-01T10:00:00Z\n'
    assert load_scenario(write(tmp_path, text)).start == datetime(2026, 5, 1, 10, tzinfo=UTC)
    text = text.replace("Z", "-05:00")
    assert load_scenario(write(tmp_path, text)).start == datetime(2026, 5, 1, 15, tzinfo=UTC)


def test_a_declared_input_may_be_used() -> None:
    door = {"inputs": {"door": {"pin": 5, "active": "low", "role": "button"}}}
    s = parse_scenario(with_(config=door, event=[event(input="door")]))
    assert s.events[0].input == "door"
    assert "door" in s.device_config().inputs


def test_at_may_equal_duration_and_events_of_different_inputs_may_coincide() -> None:
    events = [event(at=60.0), {"at": 60.0, "input": "holster", "action": "activate"}]
    assert len(parse_scenario(with_(event=events)).events) == 2


def test_a_deactivate_returns_the_input_to_rest() -> None:
    events = [
        {"at": 1.0, "input": "holster", "action": "activate"},
        {"at": 2.0, "input": "holster", "action": "deactivate"},
        {"at": 3.0, "input": "holster", "action": "chatter", "duration": 1.0},
    ]
    assert len(parse_scenario(with_(event=events)).events) == 3


def test_device_config_over_a_base_file(tmp_path: Path) -> None:
    base = write(tmp_path, "[video]\nfps = 25\n", "base.toml")
    s = parse_scenario(with_(config={"video": {"width": 640}}), "scn.toml")
    config = s.device_config(base)
    assert (config.video.fps, config.video.width) == (25, 640)


def test_device_config_errors_name_the_file_that_has_the_key(tmp_path: Path) -> None:
    base = write(tmp_path, "[video]\nfps = 0\n", "base.toml")
    with pytest.raises(ConfigError, match=r"base\.toml: video\.fps: expected at least 1, got 0"):
        parse_scenario(MINIMAL, "scn.toml").device_config(base)
    # A scenario built in code skips the file's checks; device_config still names its source.
    s = Scenario(name="x", duration=5.0, config={"video": {"fps": 500}}, source="s.toml")
    with pytest.raises(ConfigError, match=r"^s\.toml: config\.video\.fps: expected at most 120"):
        s.device_config()
    s = Scenario(name="x", duration=5.0, events=[Event(at=1, input="gate", action="activate")])
    with pytest.raises(ScenarioError, match=r"event\[1\]\.input: expected one of"):
        s.device_config()


# --- one line for each problem -----------------------------------------------------------

ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown top-level key", with_(events=[]), "events: unknown key (did you mean 'event'?)"),
    (
        "unknown [scenario] key",
        {"scenario": {"name": "m", "duration": 1, "seed_": 1}},
        "scenario.seed_: unknown key (did you mean 'seed'?)",
    ),
    (
        "unknown event key",
        with_(event=[event(bounce=3)]),
        "event[1].bounce: unknown key (did you mean 'bounce_ms'?)",
    ),
    (
        "unknown fault key",
        with_(fault=[{"at": 1, "kind": "power_loss", "lenght": 3}]),
        "fault[1].lenght: unknown key",
    ),
    (
        "unknown expect key",
        with_(expect={"recording": 1}),
        "expect.recording: unknown key (did you mean 'recordings'?)",
    ),
    (
        "unknown config key",
        with_(config={"vidoe": {}}),
        "config.vidoe: unknown key (did you mean 'video'?)",
    ),
    (
        "wrong type",
        {"scenario": {"name": "m", "duration": "60"}},
        "scenario.duration: expected a number, got '60'",
    ),
    (
        "bool is not an integer",
        {"scenario": {"name": "m", "duration": 1, "seed": True}},
        "scenario.seed: expected an integer, got true",
    ),
    ("negative at", with_(event=[event(at=-1.0)]), "event[1].at: expected at least 0, got -1.0"),
    (
        "event beyond duration",
        with_(event=[event(at=1.0), event(at=75.0)]),
        "event[2].at: expected a time within duration 60.0, got 75.0",
    ),
    (
        "fault beyond duration",
        with_(fault=[{"at": 61, "kind": "power_loss"}]),
        "fault[1].at: expected a time within duration 60.0, got 61.0",
    ),
    (
        "unknown input",
        with_(event=[event(), event(at=20.0), event(at=30.0, input="door")]),
        "event[3].input: expected one of the configured inputs 'button', 'holster' "
        "(declare others as [config.inputs.NAME]), got 'door'",
    ),
    (
        "bad action",
        with_(event=[event(action="tap")]),
        "event[1].action: expected 'activate', 'deactivate', 'pulse', 'press', "
        "'double_press', 'hold' or 'chatter', got 'tap'",
    ),
    (
        "bad fault kind",
        with_(fault=[{"at": 1, "kind": "disk_full"}]),
        "fault[1].kind: expected 'storage_full', 'storage_stall', 'camera_disconnect', "
        "'microphone_disconnect', 'power_loss' or 'clock_jump', got 'disk_full'",
    ),
    (
        "bad start string",
        {"scenario": {"name": "m", "duration": 1, "start": "8am"}},
        'scenario.start: expected a date-time with a zone, like "2026-01-01T08:00:00Z", '
        "got '8am'",
    ),
    (
        "start without a zone",
        {"scenario": {"name": "m", "duration": 1, "start": "2026-01-01T08:00:00"}},
        "scenario.start: expected a date-time with a zone",
    ),
    ("missing [scenario]", {"event": []}, "scenario: missing required table [scenario]"),
    (
        "missing duration",
        {"scenario": {"name": "m"}},
        "scenario.duration: missing required key",
    ),
    (
        "[config] error",
        with_(config={"video": {"fps": 500}}),
        "config.video.fps: expected at most 120, got 500",
    ),
    (
        "[config] pin clash",
        with_(config={"inputs": {"door": {"pin": 17, "active": "high", "role": "holster"}}}),
        "config.inputs.door.pin: expected a pin not already used by inputs.holster.pin, got 17",
    ),
    (
        "[event] instead of [[event]]",
        with_(event=event()),
        "event: expected an array of tables ([[event]]), got a table",
    ),
    (
        "zero duration",
        {"scenario": {"name": "m", "duration": 0}},
        "scenario.duration: expected more than 0, got 0",
    ),
    (
        "pulse needs a duration",
        with_(event=[event(action="pulse")]),
        "event[1].duration: missing required key for action 'pulse'",
    ),
    (
        "press takes no duration",
        with_(event=[event(duration=2.0)]),
        "event[1].duration: expected no duration for action 'press'",
    ),
    (
        "only chatter takes pulse_ms",
        with_(event=[event(pulse_ms=2.0)]),
        "event[1].pulse_ms: expected no pulse_ms for action 'press'",
    ),
    (
        "chatter takes no bounce",
        with_(event=[event(action="chatter", duration=1.0, bounce_ms=3)]),
        "event[1].bounce_ms: expected no bounce_ms for action 'chatter'",
    ),
    (
        "pulse_ms must be positive",
        with_(event=[event(action="chatter", duration=1.0, pulse_ms=0)]),
        "event[1].pulse_ms: expected at least 0.01, got 0",
    ),
    (
        "clock_jump needs seconds",
        with_(fault=[{"at": 1, "kind": "clock_jump"}]),
        "fault[1].seconds: missing required key for kind 'clock_jump'",
    ),
    (
        "only clock_jump takes seconds",
        with_(fault=[{"at": 1, "kind": "storage_full", "seconds": 3}]),
        "fault[1].seconds: expected no seconds for kind 'storage_full'",
    ),
    (
        "overlapping events on one input",
        with_(event=[event(at=10.0, bounce_ms=5), event(at=10.1)]),
        "event[2].at: expected a time after event[1] on 'button' is over at 10.155, got 10.1",
    ),
    (
        "a press while the input is held active",
        with_(event=[event(action="activate"), event(at=20.0)]),
        "event[2].action: expected an action from rest: event[1] left 'button' active",
    ),
    (
        "bad stop reason",
        with_(expect={"stop_reasons": ["end_of_run", "battery"]}),
        "expect.stop_reasons[2]: expected 'button_hold', 'console', 'end_of_run', "
        "'storage_full' or 'power_loss', got 'battery'",
    ),
    ("negative count", with_(expect={"markers": -1}), "expect.markers: expected at least 0"),
    ("not a table at all", [1, 2], "expected a table, got an array"),  # type: ignore[list-item]
]


@pytest.mark.parametrize(
    ("data", "expected"), [(d, e) for _, d, e in ERRORS], ids=[n for n, _, _ in ERRORS]
)
def test_each_problem_is_one_line_naming_the_key(data: Any, expected: str) -> None:
    assert error_of(data).startswith(f"scn.toml: {expected}")


def test_scenario_error_is_bad_input() -> None:
    assert issubclass(ScenarioError, InputError)


FILE_ERRORS = [
    ('[scenario]\nname = "x"\nduration = 1\nfoo = \n', "line 4: invalid TOML: "),
    ("[scenario]\nname = 'x'\n[scenario]\n", "line 3: invalid TOML: "),
    ("\xff", "line 1: invalid TOML: not UTF-8 text (byte 0xff)"),
    ('[scenario]\nname = "x"\n', "scenario.duration: missing required key"),
    ('[scenario]\nname = "x"\nduration = 1\n[config.video]\nfps = 500\n', "config.video.fps:"),
]


@pytest.mark.parametrize(("text", "expected"), FILE_ERRORS)
def test_file_problems_are_one_line_naming_the_file(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "scn.toml"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {expected}")


def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"nope\.toml: cannot read: "):
        load_scenario(tmp_path / "nope.toml")
    with pytest.raises(ScenarioError, match=r": cannot read: "):
        load_scenario(tmp_path)


def test_models_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValueError):
        Scenario(name="x", duration=5.0, events=[Event(at=6, input="button", action="press")])
    with pytest.raises(ValueError):
        Event(at=1, input="button", action="pulse")
    with pytest.raises(ValueError):
        Event(at=1, input="button", action="press", bounce_ms=-1)


# --- fuzz: a Scenario or one ScenarioError line, nothing else ----------------------------

KEYS = [
    "scenario",
    "config",
    "event",
    "fault",
    "expect",
    "name",
    "duration",
    "seed",
    "start",
    "description",
    "at",
    "input",
    "action",
    "bounce_ms",
    "pulse_ms",
    "kind",
    "seconds",
    "recordings",
    "triggers",
    "video",
    "fps",
    "width",
    "inputs",
    "door",
    "pin",
    "active",
    "role",
]
WORDS = [
    "holster",
    "button",
    "door",
    "press",
    "hold",
    "chatter",
    "activate",
    "clock_jump",
    "storage_full",
    "high",
    "2026-01-01T08:00:00Z",
    "end_of_run",
]

ACTIONS = ["activate", "deactivate", "press", "double_press", "hold", "chatter", "pulse", "x"]
scalars = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.booleans()
    | st.sampled_from(WORDS)
    | st.text(max_size=8)
    | st.datetimes(timezones=st.none() | st.just(UTC))
    | st.dates()
)
toml_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=25,
)


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A plausible scenario with random parts swapped for random values."""
    header = {"name": "n", "duration": draw(st.floats(0, 300) | st.integers(-5, 300))}
    data: dict[str, Any] = {"scenario": header}
    events = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "at": st.floats(-1, 310) | st.integers(0, 300),
                    "input": st.sampled_from(["holster", "button", "door"]),
                    "action": st.sampled_from(ACTIONS),
                },
                optional={
                    "bounce_ms": st.floats(-1, 50),
                    "duration": st.floats(-1, 10),
                    "pulse_ms": st.floats(-1, 20),
                },
            ),
            max_size=4,
        )
    )
    if events:
        data["event"] = events
    if draw(st.booleans()):
        data["config"] = draw(toml_values)
    if draw(st.booleans()):
        data["fault"] = [{"at": draw(st.floats(0, 300)), "kind": draw(st.sampled_from(WORDS))}]
    for _ in range(draw(st.integers(0, 2))):  # mutate: replace a random table's value
        table = draw(st.sampled_from([data, header, *events]))
        table[draw(st.sampled_from(KEYS))] = draw(toml_values)
    return data


def check_outcome(data: Any) -> None:
    try:
        scenario = parse_scenario(data, "fuzz.toml")
    except ScenarioError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith("fuzz.toml: "), message
    else:
        assert isinstance(scenario, Scenario)
        scenario.device_config()  # a scenario that parses runs on the built-in config


@settings(max_examples=300, deadline=None)
@given(toml_values)
def test_fuzz_any_toml_like_data(data: Any) -> None:
    check_outcome(data)


@settings(max_examples=300, deadline=None)
@given(near_valid())
def test_fuzz_near_valid_scenarios(data: dict[str, Any]) -> None:
    check_outcome(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=200)
    | st.text(alphabet='[]=."\n abcdefghijklmnoprstuvwxyz0123456789_-:Z{},#', max_size=200)
    | st.sampled_from(FULL.splitlines(keepends=True))
    .map(str)
    .flatmap(lambda line: st.just(FULL.replace(line, "", 1)))
)
def test_fuzz_any_file(content: bytes | str) -> None:
    raw = content.encode() if isinstance(content, str) else content
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.toml"
        path.write_bytes(raw)
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            message = str(exc)
            assert "\n" not in message and message.startswith(f"{path}: "), message
        else:
            assert isinstance(scenario, Scenario)
