"""What a GPS receiver costs the firmware per fix: NMEA decoding, the clock, the position log.

Per epoch the firmware's reader decodes what the receiver sent (RMC, GGA,
GSA and three GSV sentences from a u-blox-like receiver, through
:class:`hal.gps.decode.NmeaDecoder` and pynmeagps) and the loop hands each
fix to the clock discipline and the position log, exactly as
:meth:`camera.firmware.Firmware._on_fix` does. Both parts are timed here on
the simulated receiver's bytes, made before the clock starts (on a Pi they
arrive on a serial line: making them is the receiver's work, not ours).
With GPS off the firmware does none of this, so the figure is the share of
the 1 s fix period the work takes on one core: the feature against nothing.

Left out, and why: the pty and the reader thread's hand-over, which in
simulation hold the loop until the reader has caught up (a simulator's
device for reproducibility, not a cost on a Pi), and pyserial's reads, a
system call per chunk.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from camera.clock_discipline import ClockDiscipline
from camera.config import GpsConfig, load_config, ring_retention
from camera.position import PositionLog
from hal.gps.decode import NmeaDecoder
from sim.clock import VirtualClock
from sim.device import DEFAULT_START
from sim.gps import Receiver, Route


def epochs(n: int, rate_hz: int = 1, seed: int = 0) -> list[tuple[float, bytes]]:
    """(device time the bytes arrive, the bytes) of the simulated receiver's first ``n`` epochs."""
    receiver = Receiver(Route(seed, t0=DEFAULT_START), seed=seed, rate_hz=rate_hz)
    out = []
    for i in range(n):
        epoch = receiver.epoch(i)
        out.append((epoch.time + receiver.latency, receiver.output(epoch)))
    return out


def fix_round(data: list[tuple[float, bytes]]) -> dict[str, float]:
    """Seconds spent decoding and on the loop, and the fixes made, for one pass over ``data``."""
    clock = VirtualClock(DEFAULT_START)
    discipline = ClockDiscipline(clock, GpsConfig())
    positions = PositionLog(clock, ring_retention(load_config(None)))
    positions.start()
    decoder = NmeaDecoder()
    decode = loop = 0.0
    fixes = 0
    perf = time.perf_counter
    for t, chunk in data:
        clock.run(until=t)  # the position log's 1 Hz tick, between epochs
        t0 = perf()
        made = decoder.feed(chunk, t)
        t1 = perf()
        for fix in made:
            discipline.on_fix(fix)
            positions.on_fix(fix)
        loop += perf() - t1
        decode += t1 - t0
        fixes += len(made)
    positions.close()
    return {"decode": decode, "loop": loop, "fixes": fixes}


def bench_gps(fixes: int = 600, rounds: int = 3, rate_hz: int = 1) -> dict[str, Any]:
    """Per fix, per round: microseconds and the share of the fix period (1 / rate_hz)."""
    data = epochs(fixes, rate_hz)
    runs = [fix_round(data) for _ in range(rounds)]
    made = runs[0]["fixes"]
    per_fix = [(r["decode"] + r["loop"]) / max(1, r["fixes"]) for r in runs]
    return {
        "epochs": fixes,
        "fixes": made,
        "rate_hz": rate_hz,
        "bytes_per_epoch": round(sum(len(b) for _, b in data) / len(data), 1),
        "us_per_fix_per_round": [1e6 * s for s in per_fix],
        "decode_us_per_fix": statistics.median(1e6 * r["decode"] / max(1, made) for r in runs),
        "loop_us_per_fix": statistics.median(1e6 * r["loop"] / max(1, made) for r in runs),
        "percent_of_period_per_round": [100 * s * rate_hz for s in per_fix],
    }
