"""Device configuration: defaults, merging, one-line errors, and fuzzing for robustness."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from camera.cli import main
from camera.config import (
    Config,
    InputConfig,
    deep_merge,
    load_config,
    parse_config,
)
from camera.errors import ConfigError, InputError
from tests.conftest import make_device


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own directory, so messages name plain ``dev.toml``."""
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "dev.toml") -> Path:
    """Write ``text`` to ``tmp_path/name``; return the relative path, as a user would type it."""
    (tmp_path / name).write_text(text, encoding="utf-8")
    return Path(name)


def error_of(path: Path | str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and len(message.splitlines()) == 1
    return message


# --- defaults ------------------------------------------------------------------------------


def test_defaults_without_a_file_match_the_spec() -> None:
    config = load_config()
    assert config == Config() == parse_config({})
    assert config.device.id == "BWC-0001" and config.device.board == "sim"
    assert config.device.storage == "recordings"
    assert (config.video.width, config.video.height, config.video.fps) == (1280, 720, 30)
    assert (config.video.codec, config.video.encoder) == ("h264", "auto")
    assert config.video.bitrate == 4_000_000 and config.video.gop == 30
    assert config.video.threads == 2 and config.video.overlay is True
    assert config.buffer.pre_event == 30.0
    assert config.recording.segment_seconds == 10.0
    assert config.inputs == {
        "holster": InputConfig(pin=17, active="high", pull="up", debounce_ms=20, role="holster"),
        "button": InputConfig(pin=27, active="low", pull="up", debounce_ms=30, role="button"),
    }
    assert config.gestures.double_press_window == 1.0 and config.gestures.hold_seconds == 3.0
    outputs = config.outputs
    assert (outputs.record_led, outputs.status_led, outputs.haptic) == (22, 23, 24)
    assert config.hal.camera == "0" and config.hal.gpio is None
    assert not config.gps.enabled and not config.console.enabled


def test_empty_file_is_the_default(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "# nothing\n")) == Config()


def test_config_is_frozen() -> None:
    config = load_config()
    with pytest.raises(ValidationError):
        config.video.fps = 60  # type: ignore[misc]


# --- files and merging ---------------------------------------------------------------------


def test_file_overrides_some_keys_and_merges_inputs_per_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[device]
id = "BWC-0042"
board = "pi"

[video]
fps = 25
codec = "mjpeg"

[buffer]
pre_event = 45        # an int is fine where a float is expected
capacity_mb = 256     # 45 s of 720p MJPEG

[inputs.holster]
pin = 5

[inputs.radio]
pin = 6
active = "low"
role = "button"

[outputs]
haptic = false
""",
    )
    config = load_config(path)
    assert config.device.id == "BWC-0042" and config.device.board == "pi"
    assert config.device.storage == "recordings"
    assert (config.video.fps, config.video.codec, config.video.width) == (25, "mjpeg", 1280)
    assert config.buffer.pre_event == 45.0 and isinstance(config.buffer.pre_event, float)
    holster = config.inputs["holster"]
    assert (holster.pin, holster.active, holster.debounce_ms, holster.role) == (
        5,
        "high",
        20.0,
        "holster",
    )
    assert config.inputs["button"].pin == 27
    radio = config.inputs["radio"]
    assert (radio.pin, radio.pull, radio.role) == (6, "up", "button")
    assert config.outputs.haptic is None and config.outputs.record_led == 22


def test_camera_index_may_be_written_as_an_integer() -> None:
    assert parse_config({"hal": {"camera": 2}}).hal.camera == "2"


def test_overrides_deep_merge_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[video]\nfps = 25\nbitrate = 2000000\n")
    config = load_config(path, {"video": {"width": 640, "height": 360}})
    assert (config.video.width, config.video.height) == (640, 360)
    assert (config.video.fps, config.video.bitrate, config.video.gop) == (25, 2_000_000, 30)
    assert load_config(None, {"video": {"width": 640, "height": 360}}).video.fps == 30


def test_deep_merge_is_recursive_and_does_not_modify_its_arguments() -> None:
    base = {"a": {"b": 1, "c": {"d": 2}}, "x": 1}
    over = {"a": {"c": {"e": 3}}, "x": {"y": 2}}
    assert deep_merge(base, over) == {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "x": {"y": 2}}
    assert base == {"a": {"b": 1, "c": {"d": 2}}, "x": 1}
    assert over == {"a": {"c": {"e": 3}}, "x": {"y": 2}}


# --- errors: one line naming the file, the key and what was expected ----------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[video]\nwidht = 640\n", "dev.toml: video.widht: unknown key (did you mean 'width'?)"),
        ("[vidoe]\nwidth = 640\n", "dev.toml: vidoe: unknown key"),
        ("[inputs.holster]\npinn = 3\n", "dev.toml: inputs.holster.pinn: unknown key"),
        ('[video]\nfps = "thirty"\n', "dev.toml: video.fps: expected an integer, got 'thirty'"),
        ("[video]\nfps = 30.0\n", "dev.toml: video.fps: expected an integer, got 30.0"),
        ("[video]\noverlay = 1\n", "dev.toml: video.overlay: expected true or false, got 1"),
        ("video = 5\n", "dev.toml: video: expected a table, got 5"),
        ("[video]\nfps = 500\n", "dev.toml: video.fps: expected at most 120, got 500"),
        ("[video]\nwidth = 641\n", "dev.toml: video.width: expected an even number"),
        ("[video]\nwidth = 320\n", "dev.toml: video.width: expected at least 512"),
        ("[buffer]\npre_event = 0\n", "dev.toml: buffer.pre_event: expected more than 0, got 0"),
        ("[buffer]\npre_event = nan\n", "dev.toml: buffer.pre_event: expected a finite number"),
        ("[inputs.holster]\npin = 40\n", "dev.toml: inputs.holster.pin: expected at most 27"),
        ('[video]\ncodec = "h265"\n', "dev.toml: video.codec: expected 'h264' or 'mjpeg'"),
        ('[device]\nboard = "x86"\n', "dev.toml: device.board: expected 'sim' or 'pi'"),
        ('[device]\nid = "BWC 1"\n', "dev.toml: device.id: expected 1-64 letters, digits"),
        ("[outputs]\nrecord_led = 17\n", "dev.toml: outputs.record_led: expected a pin not"),
        ("[inputs.button]\npin = 17\n", "dev.toml: inputs.button.pin: expected a pin not"),
        ("[inputs.new]\npin = 3\nrole = 'button'\n", "dev.toml: inputs.new.active: missing"),
        ("[buffer]\ncapacity_mb = 0.1\n", "dev.toml: buffer.capacity_mb: expected at least 0.5"),
        ("[gps]\nenabled = true\n", "dev.toml: gps.port: expected a serial port"),
        ("[audio]\nrate = 44000\n", "dev.toml: audio.rate: expected 16000, 22050, 24000"),
        ("[audio]\nbitrate = 8000\n", "dev.toml: audio.bitrate: expected at least 16000"),
        ('[audio]\ncodec = "opus"\n', "dev.toml: audio.codec: expected 'aac', got 'opus'"),
        ("[audio]\nchannels = 3\n", "dev.toml: audio.channels: expected 1 or 2"),
        ("[audio]\npre_event = 1\n", "dev.toml: audio.pre_event: expected true or false"),
        ("[video]\nfps = \n", "dev.toml: line 2: invalid TOML: "),
        ("a = 1\n\n[video\n", "dev.toml: line 3: invalid TOML: "),
        ("[video]\nfps = 1\nfps = 2\n", "dev.toml: line 3: invalid TOML: "),
    ],
)
def test_errors_are_one_line_with_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    assert error_of(write(tmp_path, text)).startswith(expected)


def test_missing_file(tmp_path: Path) -> None:
    assert error_of("dev.toml") == "dev.toml: cannot read: No such file or directory"
    assert error_of(tmp_path) == f"{tmp_path}: cannot read: Is a directory"


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "dev.toml").write_bytes(b"[video]\nfps = \xff\n")
    assert error_of("dev.toml") == "dev.toml: line 2: invalid TOML: not UTF-8 text (byte 0xff)"


def test_config_error_is_an_input_error() -> None:
    with pytest.raises(InputError):
        parse_config({"video": {"fps": 0}})
    with pytest.raises(ValueError, match=r"^<config>: video\.fps: expected at least 1, got 0$"):
        parse_config({"video": {"fps": 0}})


def test_problems_in_overrides_name_the_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[video]\nfps = 25\n")
    with pytest.raises(ConfigError, match=r"^scn\.toml: config\.video\.width: expected an even"):
        load_config(
            path,
            {"video": {"width": 641}},
            overrides_source="scn.toml",
            overrides_prefix="config",
        )
    with pytest.raises(ConfigError, match=r"dev\.toml: video\.fps: expected an integer"):
        load_config(write(tmp_path, "[video]\nfps = 'x'\n"), {"video": {"width": 640}})


def test_weird_keys_stay_on_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"video": {"a\nb": 1}}, source="x.toml")
    assert str(info.value) == 'x.toml: video."a\\nb": unknown key'


# --- fuzzing: only a Config or a one-line ConfigError, whatever comes in --------------------

TABLES = {name: field.annotation for name, field in Config.model_fields.items()}
KEYS = sorted(
    set(TABLES)
    | {"holster", "button"}
    | {k for model in TABLES.values() if isinstance(model, type) for k in model.model_fields}
    | set(InputConfig.model_fields)
)
key = st.sampled_from(KEYS) | st.text(max_size=8)
scalar = (
    st.booleans()
    | st.integers()
    | st.integers(min_value=-10, max_value=5000)
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["h264", "mjpeg", "high", "low", "up", "holster", "button", "sim", "pi"])
    | st.datetimes(timezones=st.none() | st.just(datetime.UTC))
    | st.dates()
    | st.times()
)
toml_value = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(key, inner, max_size=4),
    max_leaves=12,
)
noise = st.dictionaries(key, st.dictionaries(key, toml_value, max_size=4) | toml_value, max_size=5)

# Mostly real tables and keys with plausible values, so the fuzz gets past "unknown key"
# into types, ranges and the cross-field checks.
plausible = scalar | st.integers(min_value=0, max_value=30) | st.floats(min_value=0, max_value=200)


def table_of(model: type[BaseModel]) -> st.SearchStrategy[dict[str, object]]:
    return st.dictionaries(st.sampled_from(sorted(model.model_fields)), plausible, max_size=4)


def schema_table(name: str) -> st.SearchStrategy[object]:
    if name == "inputs":
        names = st.sampled_from(["holster", "button", "radio"]) | key
        return st.dictionaries(names, table_of(InputConfig), max_size=3)
    return table_of(TABLES[name])  # type: ignore[arg-type]


schema = st.lists(st.sampled_from(sorted(TABLES)), unique=True, max_size=4).flatmap(
    lambda names: st.fixed_dictionaries({name: schema_table(name) for name in names})
)
tables = noise | schema


def assert_config_or_one_line_error(call: object) -> None:
    try:
        assert isinstance(call(), Config)  # type: ignore[operator]
    except ConfigError as exc:
        assert len(str(exc).splitlines()) == 1 and str(exc).strip() == str(exc)


@settings(max_examples=200, deadline=None)
@given(tables)
def test_fuzz_parse_config(data: dict[str, object]) -> None:
    assert_config_or_one_line_error(lambda: parse_config(data, source="fuzz.toml"))


@settings(max_examples=100, deadline=None)
@given(tables, tables)
def test_fuzz_overrides(data: dict[str, object], over: dict[str, object]) -> None:
    assert_config_or_one_line_error(lambda: load_config(None, deep_merge(data, over)))


FRAGMENTS = ["[video]\n", "[inputs.holster]\n", "[[a]]\n", "width = ", "pin = ", "1", "'x'"]
FRAGMENTS += ["\n", "=", "[", "]", '"', "{", "}", "true", "1979-05-27T07:32:00Z", "\\", "\x00"]
FRAGMENTS += ["é", "\r", "#", ".", "nan", "inf", "0x1F", "+", "1_000"]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=200) | st.lists(st.sampled_from(FRAGMENTS)).map("".join).map(str.encode))
def test_fuzz_file_bytes(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_bytes(raw)
    assert_config_or_one_line_error(lambda: load_config(path))


# --- settings that cannot work together ---------------------------------------------------


def test_pre_event_longer_than_the_arena_holds_names_buffer_pre_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 4 Mbit/s = 0.5 MB/s, planned at 0.625 MB/s: 16 MB, less the audio ring's 0.085 MB
    # (2.03 s of 64 kbit/s plus 25 %, plus 64 kB), hold 25.46 s, less 4.03 s of
    # recognition slack (double press 1 s, debounce 0.03 s, margin 1 s, 2 GOPs 2 s).
    path = write(tmp_path, "[buffer]\npre_event = 60\ncapacity_mb = 16\n")
    expected = "dev.toml: buffer.pre_event: expected at most 21.4 seconds"
    assert error_of(path).startswith(expected)
    assert error_of(path).endswith(", got 60.0")
    fits = write(tmp_path, "[buffer]\npre_event = 21.4\ncapacity_mb = 16\n", "fits.toml")
    assert load_config(fits).buffer.pre_event == 21.4
    no_sound = "[buffer]\npre_event = 21.5\ncapacity_mb = 16\n[audio]\nenabled = false\n"
    assert load_config(write(tmp_path, no_sound, "quiet.toml")).buffer.pre_event == 21.5
    # Through the command line: exit 2, one line, no traceback.
    assert main(["run", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and expected in err and "Traceback" not in err
    # An arena too small even for the slack names the arena instead.
    tiny = write(tmp_path, "[buffer]\npre_event = 1\ncapacity_mb = 1\n")
    assert error_of(tiny).startswith("dev.toml: buffer.capacity_mb: expected at least 3.1")


def test_mjpeg_arena_is_estimated_from_resolution_and_quality(tmp_path: Path) -> None:
    # 1280x720 at 30 fps, quality 80: ~0.15 bytes/pixel, ~4.1 MB/s before the margin.
    path = write(tmp_path, '[video]\ncodec = "mjpeg"\n')
    assert error_of(path).startswith("dev.toml: buffer.pre_event: expected at most 10.2 seconds")
    assert "video.quality 80" in error_of(path)
    lower = write(tmp_path, '[video]\ncodec = "mjpeg"\nquality = 50\n[buffer]\npre_event = 10\n')
    assert load_config(lower).video.quality == 50
    higher = write(tmp_path, '[video]\ncodec = "mjpeg"\nquality = 95\n[buffer]\npre_event = 10\n')
    assert error_of(higher).startswith("dev.toml: buffer.pre_event: expected at most 2.8 seconds")


@pytest.mark.parametrize("codec", ["h264", "mjpeg"])
def test_the_smallest_arena_allowed_holds_the_whole_pre_event(tmp_path: Path, codec: str) -> None:
    """The estimate is honest: at the smallest capacity_mb accepted, nothing is evicted early."""
    pre_event = 4.0
    video = {"width": 640, "height": 360, "fps": 30, "bitrate": 1_500_000, "gop": 30}
    video |= {"codec": codec, "quality": 70}
    data = {"video": video, "buffer": {"pre_event": pre_event, "capacity_mb": 1.0}}
    with pytest.raises(ConfigError, match=r"buffer\.(capacity_mb|pre_event): expected"):
        parse_config(data)
    lo, hi = 1.0, 64.0  # the smallest accepted capacity, to 10 kB
    while hi - lo > 0.01:
        mid = (lo + hi) / 2
        try:
            parse_config(deep_merge(data, {"buffer": {"capacity_mb": mid}}))
            hi = mid
        except ConfigError:
            lo = mid
    dev = make_device(tmp_path, deep_merge(data, {"buffer": {"capacity_mb": hi}}))
    dev.set_input(12.0, "holster", True)  # the ring has been full for a while by then
    dev.run(until=13.0)
    [m] = dev.shutdown()
    assert m["pre_event_seconds"] >= pre_event
    assert m["first_frame"] <= (12.0 - pre_event) * 30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[inputs.holster]\ndebounce_ms = 1001\n",
            "inputs.holster.debounce_ms: expected at most 1000",
        ),
        (
            "[gestures]\ndouble_press_window = 5.5\n",
            "gestures.double_press_window: expected at most 5",
        ),
        ("[gestures]\nhold_seconds = 31\n", "gestures.hold_seconds: expected at most 30"),
    ],
)
def test_debounce_and_gesture_windows_are_bounded(tmp_path: Path, text: str, expected: str) -> None:
    """The ring keeps the double-press window and the slowest debounce beyond pre_event."""
    assert error_of(write(tmp_path, text)).startswith(f"dev.toml: {expected}")


def test_bounds_themselves_are_accepted() -> None:
    config = parse_config(
        {
            "inputs": {"holster": {"debounce_ms": 1000}},
            "gestures": {"double_press_window": 5, "hold_seconds": 30},
        }
    )
    assert config.inputs["holster"].debounce_ms == 1000


def test_writer_queue_must_hold_a_gop(tmp_path: Path) -> None:
    # One second (the GOP is 1 s) at 0.5 MB/s plus 25%.
    path = write(tmp_path, "[buffer]\nqueue_mb = 0.5\n")
    assert error_of(path).startswith("dev.toml: buffer.queue_mb: expected at least 0.62")
    long_gop = write(tmp_path, "[buffer]\nqueue_mb = 1\n[video]\ngop = 60\n")
    assert error_of(long_gop).startswith("dev.toml: buffer.queue_mb: expected at least 1.25")
    assert load_config(write(tmp_path, "[buffer]\nqueue_mb = 0.7\n")).buffer.queue_mb == 0.7


def test_segment_must_hold_a_gop(tmp_path: Path) -> None:
    path = write(tmp_path, "[recording]\nsegment_seconds = 0.5\n")
    assert error_of(path) == (
        "dev.toml: recording.segment_seconds: expected at least 1"
        " (one GOP: video.gop / video.fps = 1 s), got 0.5"
    )
    ok = write(tmp_path, "[recording]\nsegment_seconds = 0.5\n[video]\ngop = 15\n")
    assert load_config(ok).recording.segment_seconds == 0.5


def test_something_must_be_able_to_stop_a_recording(tmp_path: Path) -> None:
    no_button = '[inputs.button]\nrole = "holster"\n'
    assert error_of(write(tmp_path, no_button)) == (
        "dev.toml: inputs: expected an input with role 'button' or [console] enabled"
        " (to stop a recording), got none"
    )
    console = no_button + '[console]\nenabled = true\nport = "/dev/ttyUSB0"\n'
    assert load_config(write(tmp_path, console)).console.enabled


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[console]\nenabled = true\nport = "/dev/ttyUSB0"\n'
            '[inputs.radio]\npin = 14\nactive = "low"\nrole = "button"\n',
            "inputs.radio.pin: expected a pin other than 14 and 15 (the UART of [console]), got 14",
        ),
        (
            '[console]\nenabled = true\nport = "/dev/serial0"\n[outputs]\nhaptic = 15\n',
            "outputs.haptic: expected a pin other than 14 and 15 (the UART of [console]), got 15",
        ),
        (
            '[gps]\nenabled = true\nport = "/dev/ttyAMA0"\n[outputs]\nstatus_led = 14\n',
            "outputs.status_led: expected a pin other than 14 and 15 (the UART of [gps]), got 14",
        ),
        (
            '[gps]\nenabled = true\nport = "/dev/serial0"\n'
            '[console]\nenabled = true\nport = "/dev/serial0"\n',
            "gps.port: expected a port other than console.port, got '/dev/serial0'",
        ),
    ],
)
def test_nothing_else_on_a_uart_in_use(tmp_path: Path, text: str, expected: str) -> None:
    assert error_of(write(tmp_path, text)) == f"dev.toml: {expected}"


def test_uart_pins_are_free_when_no_uart_is_used(tmp_path: Path) -> None:
    text = '[outputs]\nhaptic = 15\n[gps]\nenabled = true\nport = "/dev/ttyUSB0"\n'
    assert load_config(write(tmp_path, text)).outputs.haptic == 15


def test_shipped_scenarios_and_test_configs_pass_the_checks() -> None:
    from sim.scenario import load_scenario

    root = Path(__file__).resolve().parents[1]
    paths = sorted(root.glob("scenarios/**/*.toml")) + sorted(root.glob("tests/data/*.toml"))
    assert len(paths) >= 10
    for path in paths:
        assert load_scenario(path).device_config() is not None
