"""SPEC section 2: camera/ depends on hal/ interfaces only, never on sim/ or a backend.

The command-line shell (camera/cli.py) is the one place that starts the
simulator, and only inside the commands that simulate.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = (
    "hal.clock.monotonic",
    "hal.gpio.gpiozero_pins",
    "hal.gps.nmea",
    "hal.gps.decode",
    "hal.sensor.opencv",
    "hal.sensor.picamera2",
    "hal.sensor.auto",
    "hal.storage.local",
    "hal.worker.thread",
)


def imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_core_never_imports_sim_or_a_backend() -> None:
    offenders = []
    for path in sorted((ROOT / "camera").rglob("*.py")):
        shell = path.name == "cli.py"
        for name in imports(path, top_level_only=shell):
            top = name.split(".")[0]
            if top in ("sim", "server") or name.startswith(BACKENDS):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_the_evidence_store_never_imports_the_simulator() -> None:
    """server/ builds on camera/ (one verify), never on sim/: it runs where no simulator is."""
    offenders = []
    for path in sorted((ROOT / "server").rglob("*.py")):
        for name in imports(path, top_level_only=False):
            if name.split(".")[0] == "sim":
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_core_never_reads_the_time() -> None:
    offenders = []
    for path in sorted((ROOT / "camera").rglob("*.py")):
        text = path.read_text()
        for needle in ("time.time(", "time.monotonic(", "datetime.now(", "time.perf_counter("):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []


def test_hal_package_imports_no_backend_eagerly() -> None:
    for init in sorted((ROOT / "hal").rglob("__init__.py")):
        for name in imports(init, top_level_only=True):
            assert not name.startswith(BACKENDS), f"{init} imports {name}"
            heavy = ("gpiozero", "cv2", "serial", "pynmeagps")
            assert not name.startswith(heavy), f"{init} imports {name}"


#: Keys only the on-disk format has: a dict built with one of them outside
#: camera/evidence/ is a manifest or journal record written by hand.
RECORD_KEYS = frozenset(
    {
        "pre_event_seconds",
        "pre_event_requested",
        "pre_event_dropped",
        "wall_clock_steps",
        "first_frame",
        "last_frame",
        "start_time",
        "end_time",
        "wall_time",
        "sha256",
        "skipped_journal_lines",
        "complete_bytes",
    }
)


def record_keys_written(path: Path) -> list[str]:
    """Where ``path`` puts a record key into a dict: a literal, ``d[k] = ``, ``dict(k=)``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        keys: list[object] = []
        if isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            keys = [node.slice.value] if isinstance(node.slice, ast.Constant) else []
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in ("dict", "update", "setdefault"):
                keys = [k.arg for k in node.keywords]
                keys += [a.value for a in node.args[:1] if isinstance(a, ast.Constant)]
        found += [f"line {node.lineno}: {k}" for k in keys if k in RECORD_KEYS]
    return found


def test_only_the_evidence_package_builds_on_disk_records() -> None:
    """Manifest and journal objects are typed records (camera/evidence/records.py), not dicts."""
    offenders = []
    for path in sorted((ROOT / "camera").rglob("*.py")):
        if "evidence" in path.relative_to(ROOT / "camera").parts:
            continue
        offenders += [f"{path.relative_to(ROOT)} {hit}" for hit in record_keys_written(path)]
    assert offenders == []


def test_the_record_key_check_sees_a_hand_built_manifest(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text(
        'm = {"pre_event_seconds": 1.0}\nm["sha256"] = ""\nm.update(end_time=2)\n'
        'dict(first_frame=0)\nok = {"frames": 3}\n'
    )
    assert record_keys_written(source) == [
        "line 1: pre_event_seconds",
        "line 2: sha256",
        "line 3: end_time",
        "line 4: first_frame",
    ]


def test_hal_never_imports_the_core_or_the_simulator() -> None:
    """hal/ is beneath camera/ and sim/: its errors are its own, and sim registers itself."""
    offenders = []
    for path in sorted((ROOT / "hal").rglob("*.py")):
        for name in imports(path, top_level_only=False):
            if name.split(".")[0] in ("camera", "sim"):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []
