"""The simulated world's backends and the ``sim`` board, registered with the HAL.

Called through the ``bodycam.backends`` entry point (pyproject.toml), so hal/
loads them by name without importing sim/ itself.
"""

from __future__ import annotations

from hal.registry import Board, register, register_board

SIM_BACKENDS = {
    ("audio", "synthetic"): "sim.audio:SyntheticAudio",
    ("clock", "virtual"): "sim.clock:VirtualClock",
    ("clock", "paced"): "sim.clock:PacedClock",
    ("gpio", "mock"): "sim.gpio:MockGpio",
    ("sensor", "synthetic"): "sim.sensor:SyntheticSensor",
    ("storage", "sim"): "sim.storage:SimStorage",
    ("worker", "virtual"): "sim.worker:VirtualWorker",
}

SIM_BOARD = Board(
    "sim",
    {
        "clock": "virtual",
        "gpio": "mock",
        "sensor": "synthetic",
        "storage": "sim",
        "worker": "virtual",
        "audio": "synthetic",
    },
    simulated=True,
)


def register_all() -> None:
    for (kind, name), target in SIM_BACKENDS.items():
        register(kind, name, target)
    register_board(SIM_BOARD)
