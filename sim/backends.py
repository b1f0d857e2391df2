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
    # The reader on the pty a scenario run serves, named by a stable port (sim.gps_pty).
    ("gps", "pty"): "sim.gps_pty:PtyGps",
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
        # The simulated receiver speaks NMEA on a pty: the firmware reads it
        # through the same serial reader as on a Pi (hal.gps.nmea).
        "gps": "nmea",
    },
    simulated=True,
)


def register_all() -> None:
    for (kind, name), target in SIM_BACKENDS.items():
        register(kind, name, target)
    register_board(SIM_BOARD)
