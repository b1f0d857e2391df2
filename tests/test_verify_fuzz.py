"""Fuzzing ``verify`` on damaged recordings: always findings, never a traceback or a hang.

One real H.264 recording (MPEG-TS) and one MJPEG recording (Matroska) are
made once per module; every example damages a fresh copy of one of them
(truncation, byte flips, a damaged or rewritten manifest) and checks that
verify_recording returns a Report whose findings are sane, and that it fails
whenever the damage is something the verifier can see: any change to a
segment's bytes (the sha256 catches it), or a change to a manifest field that
the segments, their pictures or the manifest's own totals vouch for.

Examples are copied into ``tempfile.TemporaryDirectory`` rather than
``tmp_path``: hypothesis runs many examples per test function, and a
function-scoped fixture would be shared between them.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from camera.cli import main
from camera.evidence.records import MANIFEST
from camera.evidence.verify import REQUIRED, Report, verify_recording
from sim.runner import run_scenario
from sim.scenario import load_scenario

CI = Path(__file__).resolve().parents[1] / "scenarios" / "ci"
SCENARIOS = {"h264": "end_of_run_while_recording", "mjpeg": "mjpeg"}

#: A longer, random run: BODYCAM_FUZZ_EXAMPLES=500 pytest tests/test_verify_fuzz.py
EXAMPLES = int(os.environ.get("BODYCAM_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=EXAMPLES or 25,
    deadline=None,
    derandomize=not EXAMPLES,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Manifest fields (as key paths) that the verifier checks against the
#: segments, their pictures, or the manifest's own totals: changing any of
#: them must fail verification. The rest (device_id, trigger.source, markers,
#: stop, wall times, extra keys) are claims nothing else on disk can confirm;
#: they are only type-checked.
VOUCHED = (
    ("format",),
    ("codec",),
    ("width",),
    ("height",),
    ("fps",),
    ("frames",),
    ("first_frame",),
    ("last_frame",),
    ("dropped_frames",),
    ("start_time",),
    ("end_time",),
    ("pre_event_seconds",),
    ("trigger", "time"),
    ("segments",),
)
#: Segment times are compared with the pictures', which Matroska rounds to
#: 1 ms, allowing 1.1 ms: a time moved by less than this may go unseen.
TIME_RESOLUTION = 0.0025
MISSING = object()


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """codec -> one small real recording (2 H.264 segments, 4 MJPEG segments)."""
    made = {}
    for codec, name in SCENARIOS.items():
        store = tmp_path_factory.mktemp(name)
        run_scenario(load_scenario(CI / f"{name}.toml"), store)
        [rec] = [p for p in store.iterdir() if (p / MANIFEST).is_file()]
        made[codec] = rec
    return made


@contextlib.contextmanager
def copy_of(rec: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / rec.name
        shutil.copytree(rec, copy)
        yield copy


def segments(rec: Path) -> list[Path]:
    return sorted(rec.glob("segment-*"))


def check_sane(report: Any) -> Report:
    """What every report must be, however damaged the recording."""
    assert isinstance(report, Report)
    assert all(isinstance(p, str) and p and "\n" not in p for p in report.problems)
    assert not any(p.startswith("internal error") for p in report.problems), report.problems
    assert report.frames == len(report.codes)
    return report


def same(a: Any, b: Any) -> bool:
    """Equal as the verifier can tell: numbers to TIME_RESOLUTION, true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=0, abs_tol=TIME_RESOLUTION)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


def lookup(obj: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        else:
            return MISSING
    return obj


def what_matters_changed(before: dict[str, Any], after: Any) -> str | None:
    """Why ``after`` must fail verification, or None if the change is invisible."""
    if not isinstance(after, dict):
        return "not an object"
    missing = [k for k in REQUIRED if k not in after]
    if missing:
        return f"missing {missing}"
    for path in VOUCHED:
        old, new = lookup(before, path), lookup(after, path)
        if new is MISSING or not same(old, new):
            return f"{'.'.join(path)} changed"
    return None


def strict_json(data: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(name)

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def flip_bytes(data: Any, body: bytearray) -> None:
    """XOR 1 to 20 distinct bytes of ``body`` with non-zero masks: always a change."""
    where = data.draw(
        st.lists(st.integers(0, len(body) - 1), min_size=1, max_size=20, unique=True),
        label="offsets",
    )
    for offset in where:
        body[offset] ^= data.draw(st.integers(1, 255), label="xor")


# -- controls ----------------------------------------------------------------
@pytest.mark.parametrize("codec", SCENARIOS)
def test_untouched_copy_verifies(recordings: dict[str, Path], codec: str) -> None:
    with copy_of(recordings[codec]) as rec:
        report = check_sane(verify_recording(rec))
        m = json.loads((rec / MANIFEST).read_text())
    assert report.ok, report.problems
    assert report.codes == list(range(m["first_frame"], m["last_frame"] + 1))


# -- (a) truncation, (b) byte flips ------------------------------------------
@FUZZ
@given(codec=st.sampled_from(list(SCENARIOS)), data=st.data())
def test_truncated_segment_fails(recordings: dict[str, Path], codec: str, data: Any) -> None:
    with copy_of(recordings[codec]) as rec:
        seg = data.draw(st.sampled_from(segments(rec)), label="segment")
        size = seg.stat().st_size
        keep = data.draw(st.integers(0, size - 1), label="keep")
        with seg.open("r+b") as f:
            f.truncate(keep)
        report = check_sane(verify_recording(rec))
    assert not report.ok
    assert f"{seg.name}: {keep} bytes, manifest says {size}" in report.problems
    assert f"{seg.name}: sha256 mismatch (altered or damaged)" in report.problems


@FUZZ
@given(codec=st.sampled_from(list(SCENARIOS)), data=st.data())
def test_flipped_segment_bytes_fail(recordings: dict[str, Path], codec: str, data: Any) -> None:
    with copy_of(recordings[codec]) as rec:
        seg = data.draw(st.sampled_from(segments(rec)), label="segment")
        body = bytearray(seg.read_bytes())
        flip_bytes(data, body)
        seg.write_bytes(body)
        report = check_sane(verify_recording(rec))
    assert not report.ok
    assert f"{seg.name}: sha256 mismatch (altered or damaged)" in report.problems


# -- (c) damaged manifest bytes, (d) rewritten manifest values ----------------
@FUZZ
@given(
    codec=st.sampled_from(list(SCENARIOS)),
    how=st.sampled_from(["truncate", "flip", "digits"]),
    data=st.data(),
)
def test_damaged_manifest_bytes(
    recordings: dict[str, Path], codec: str, how: str, data: Any
) -> None:
    """Damage to manifest.json's bytes; "digits" changes digits only, so it usually parses."""
    with copy_of(recordings[codec]) as rec:
        original = (rec / MANIFEST).read_bytes()
        body = bytearray(original)
        if how == "truncate":
            del body[data.draw(st.integers(0, len(body) - 1), label="keep") :]
        elif how == "flip":
            flip_bytes(data, body)
        else:
            digits = [i for i, byte in enumerate(body) if chr(byte).isdigit()]
            where = data.draw(st.lists(st.sampled_from(digits), min_size=1, max_size=3), label="at")
            for offset in where:
                others = [d for d in b"0123456789" if d != body[offset]]
                body[offset] = data.draw(st.sampled_from(others), label="digit")
        (rec / MANIFEST).write_bytes(body)
        report = check_sane(verify_recording(rec))
    try:
        after = strict_json(bytes(body))
    except ValueError:  # JSONDecodeError and UnicodeDecodeError too
        event("manifest does not parse")
        assert not report.ok
        assert report.problems[0].startswith(MANIFEST)
        return
    reason = what_matters_changed(strict_json(original), after)
    event(f"manifest parses, change {'matters' if reason else 'is invisible'}")
    if reason is not None:
        assert not report.ok, reason


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def key_paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document a value could be replaced, the root included."""
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from key_paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from key_paths(value, (*prefix, i))


def rewrite(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    """``doc`` with the value at ``path`` replaced, or removed if ``value`` is MISSING."""
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if value is MISSING:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@FUZZ
@given(codec=st.sampled_from(list(SCENARIOS)), data=st.data())
def test_random_manifest_values(recordings: dict[str, Path], codec: str, data: Any) -> None:
    with copy_of(recordings[codec]) as rec:
        before = json.loads((rec / MANIFEST).read_text())
        path = data.draw(st.sampled_from(list(key_paths(before))), label="path")
        value = data.draw(
            JSON_VALUES if not path else st.just(MISSING) | JSON_VALUES, label="value"
        )
        after = rewrite(json.loads((rec / MANIFEST).read_text()), path, value)
        (rec / MANIFEST).write_text(json.dumps(after))  # NaN and Infinity included
        report = check_sane(verify_recording(rec))
    event("verifies" if report.ok else "fails")
    if report.ok:
        assert what_matters_changed(before, after) is None, (path, value)


# -- the command line ----------------------------------------------------------
@settings(FUZZ, max_examples=max(10, EXAMPLES // 5))
@given(codec=st.sampled_from(list(SCENARIOS)), target=st.integers(0, 9), data=st.data())
def test_cli_reports_damage_in_one_fail_block(
    recordings: dict[str, Path], codec: str, target: int, data: Any
) -> None:
    with copy_of(recordings[codec]) as rec:
        files = [rec / MANIFEST, *segments(rec)]
        victim = files[target % len(files)]
        body = bytearray(victim.read_bytes())
        # Never the last two bytes: cutting only the manifest's final newline
        # leaves the same JSON.
        cut = data.draw(st.integers(0, len(body) - 3), label="cut")
        body[cut] ^= 0xFF
        if data.draw(st.booleans(), label="truncate"):
            del body[cut:]
        victim.write_bytes(body)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["verify", str(rec)])
    lines = out.getvalue().splitlines()
    assert code == 1
    assert err.getvalue() == ""
    assert "Traceback" not in out.getvalue()
    assert lines[0] == f"FAIL  {rec}"
    problems = [line for line in lines[1:] if not line.startswith("      audio: ")]
    assert problems and all(line.startswith("      - ") for line in problems)


# -- named kinds of damage -------------------------------------------------------
def edit_manifest(rec: Path, edit: Any) -> None:
    m = json.loads((rec / MANIFEST).read_text())
    (rec / MANIFEST).write_text(json.dumps(edit(m)))


def set_key(path: tuple[Any, ...], value: Any) -> Any:
    """A damage: the manifest with ``value`` at ``path``."""
    return lambda rec: edit_manifest(rec, lambda m: rewrite(m, path, value))


def replace_with(name: str, make: Any) -> Any:
    def damage(rec: Path) -> None:
        target = rec / name
        target.unlink()
        make(target)

    return damage


DAMAGE = {
    "manifest is a list": (set_key((), [1, 2]), "manifest.json is a list, expected an object"),
    "manifest missing": (lambda rec: (rec / MANIFEST).unlink(), "manifest.json missing"),
    "manifest is a directory": (replace_with(MANIFEST, Path.mkdir), "is a directory"),
    "manifest is a fifo": (replace_with(MANIFEST, os.mkfifo), "not a regular file"),
    "NaN in manifest": (
        lambda rec: (rec / MANIFEST).write_text('{"fps": NaN}'),
        "NaN is not JSON",
    ),
    "deeply nested": (
        lambda rec: (rec / MANIFEST).write_text("[" * 100_000 + "]" * 100_000),
        "nested too deeply",
    ),
    "width is text": (set_key(("width",), "640"), 'width is "640", expected a whole number > 0'),
    "fps negative": (set_key(("fps",), -30), "fps is -30"),
    "segments an object": (set_key(("segments",), {}), "segments is an object"),
    "segment a string": (set_key(("segments", 0), "x"), 'segments[0] is "x"'),
    "bytes a list": (set_key(("segments", 0, "bytes"), [1]), "segments[0].bytes is a list"),
    "path traversal": (
        set_key(("segments", 0, "file"), "../../etc/passwd"),
        "../../etc/passwd: refused: not a file inside the recording directory",
    ),
    "absolute path": (
        set_key(("segments", 0, "file"), "/dev/zero"),
        "/dev/zero: refused: not a file inside the recording directory",
    ),
    "NUL in name": (set_key(("segments", 0, "file"), "segment-0000.ts\0"), "refused"),
    "huge bytes": (set_key(("segments", 0, "bytes"), 10**100), "manifest says 1000000"),
    "dropped frames": (set_key(("dropped_frames",), 3), "dropped_frames is 3, the gaps add up"),
    "frames total": (set_key(("frames",), 5), "frames is 5, the segments hold"),
    "first frame": (set_key(("first_frame",), 7), "first_frame is 7, the segments say"),
    "fps off by one": (set_key(("fps",), 31), "at 31 fps"),
    "last segment dropped from manifest": (
        lambda rec: edit_manifest(rec, lambda m: {**m, "segments": m["segments"][:-1]}),
        "segment-0001.ts: on disk but not in the manifest",
    ),
    "segment added on disk": (
        lambda rec: shutil.copy(rec / "segment-0001.ts", rec / "segment-0003.ts"),
        "segment-0003.ts: on disk but not in the manifest",
    ),
    "segment is a directory": (
        replace_with("segment-0001.ts", Path.mkdir),
        "segment-0001.ts: is a directory, not a file",
    ),
    "segment is a fifo": (
        replace_with("segment-0001.ts", os.mkfifo),
        "segment-0001.ts: is not a regular file",
    ),
    "segment links outside": (
        replace_with("segment-0001.ts", lambda p: p.symlink_to("/etc/hostname")),
        "segment-0001.ts: refused",
    ),
    "segment empty": (
        lambda rec: (rec / "segment-0001.ts").write_bytes(b""),
        "segment-0001.ts: does not decode",
    ),
    "segment missing": (
        lambda rec: (rec / "segment-0001.ts").unlink(),
        "segment-0001.ts: missing",
    ),
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_named_damage_is_one_clear_line(recordings: dict[str, Path], kind: str) -> None:
    damage, needle = DAMAGE[kind]
    with copy_of(recordings["h264"]) as rec:
        damage(rec)
        report = check_sane(verify_recording(rec))
    assert not report.ok
    assert any(needle in p for p in report.problems), report.problems


def test_missing_directory_is_a_finding() -> None:
    report = check_sane(verify_recording("/nonexistent/recording"))
    assert report.problems == ["manifest.json missing"]
