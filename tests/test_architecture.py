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
    "hal.sensor.opencv",
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
            if name == "sim" or name.startswith("sim.") or name.startswith(BACKENDS):
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
            assert not name.startswith(("gpiozero", "cv2", "serial")), f"{init} imports {name}"
