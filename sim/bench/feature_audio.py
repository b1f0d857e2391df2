"""What sound costs the firmware: its audio path per second of sound, and the microphone on vs off.

Two measurements, one figure each, because neither alone is honest:

- **The audio path's share of real time** (the figure with the number a
  budget can use): the firmware's own :class:`camera.audio_path.AudioPath`
  takes 1024-sample blocks as a microphone delivers them (AAC-LC encode,
  the audio ring, the listeners), timed per second of sound. The blocks are
  the simulated scene's (speech, traffic, the sync clicks), rendered before
  the clock starts: on a Pi a sound card fills them, and the simulator's
  synthesis is no cost the device pays.
- **The firmware with the microphone on against off** (the side by side the
  issue asks for): two simulated devices at 1280x720, one with sound, one
  without, both recording, run second by second in turn (the order
  alternating) so a slow spell of the host lands on both. The microphone
  replays pre-rendered blocks through the simulated microphone's own timer,
  for the reason above. It catches what the share cannot: the recorder
  muxing the packets into every segment, the microphone's timer per block.
  The ratio is against the simulated firmware's own work per second, which
  is far below a core's on this host, so it reads large; the difference as
  a share of real time (in the notes) is the number to set against a budget.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from camera.audio_path import AudioPath
from camera.config import audio_arena_bytes, load_config
from hal.audio import BLOCK_SAMPLES
from sim.audio import AudioScene, SyntheticAudio
from sim.device import SimDevice


class Replay:
    """Stands in for a scene: block ``n`` is a pre-rendered block (they repeat)."""

    def __init__(self, blocks: list[np.ndarray]) -> None:
        self.blocks = blocks

    def render(self, n: int) -> np.ndarray:
        return self.blocks[n % len(self.blocks)]


def render_blocks(seconds: float, rate: int, channels: int, seed: int = 0) -> list[np.ndarray]:
    """The simulated scene's first ``seconds`` of sound, in microphone blocks."""
    scene = AudioScene(rate, channels, BLOCK_SAMPLES, seed)
    return [scene.render(n) for n in range(max(1, round(seconds * rate / BLOCK_SAMPLES)))]


def path_seconds(blocks: list[np.ndarray], rate: int) -> float:
    """Seconds the firmware's audio path spends on ``blocks``, encoder drain included."""
    config = load_config(None)
    # A board without a microphone: the path is fed directly, as a sound card would.
    hal: Any = SimpleNamespace(audio=None, names={}, audio_problem="fed by the bench")
    path = AudioPath(config, hal, audio_arena_bytes(config))
    path.listeners.append(lambda packet: None)  # the recorder's, idle
    t0 = time.perf_counter()
    for n, block in enumerate(blocks):
        path._on_block(block, n * BLOCK_SAMPLES, n * BLOCK_SAMPLES / rate)
    path.stop()
    return time.perf_counter() - t0


def bench_path(seconds: float = 60.0, rounds: int = 3) -> dict[str, Any]:
    """The audio path's share of real time, per round: one core's percent per second of sound."""
    a = load_config(None).audio
    blocks = render_blocks(seconds, a.rate, a.channels)
    sound = len(blocks) * BLOCK_SAMPLES / a.rate
    spent = [path_seconds(blocks, a.rate) for _ in range(rounds)]
    return {
        "sound_seconds": round(sound, 3),
        "rate": a.rate,
        "channels": a.channels,
        "bitrate": a.bitrate,
        "percent_per_round": [100 * s / sound for s in spent],
        "ms_per_second_per_round": [1e3 * s / sound for s in spent],
    }


def _device(sound: bool, root: Path, width: int, height: int, replay: Replay) -> SimDevice:
    config = load_config(
        None, {"video": {"width": width, "height": height}, "audio": {"enabled": sound}}
    )
    dev = SimDevice(config, root / ("on" if sound else "off"), seed=0)
    if sound:
        mic = dev.hal.audio
        assert isinstance(mic, SyntheticAudio), f"expected the simulated microphone, got {mic!r}"
        mic.scene = replay  # type: ignore[assignment]
    dev.set_input(0.5, "holster", True)  # both record: the recorder muxes the sound too
    return dev


def on_off_round(
    seconds: int, width: int, height: int, replay: Replay
) -> tuple[float, float, float, float]:
    """Wall seconds with sound and without, then CPU seconds (the process's, every thread)
    with and without, for ``seconds`` of device time each, interleaved second by second."""
    spent = {True: 0.0, False: 0.0}
    cpu = {True: 0.0, False: 0.0}
    with tempfile.TemporaryDirectory(prefix="bench-audio-") as tmp:
        devs = {s: _device(s, Path(tmp), width, height, replay) for s in (True, False)}
        try:
            for dev in devs.values():
                dev.boot()
            for t in range(1, seconds + 1):
                for sound in (True, False) if t % 2 else (False, True):
                    c0, t0 = time.process_time(), time.perf_counter()
                    devs[sound].run(until=float(t))
                    spent[sound] += time.perf_counter() - t0
                    cpu[sound] += time.process_time() - c0
        finally:
            for dev in devs.values():
                dev.shutdown()
    return spent[True], spent[False], cpu[True], cpu[False]


def bench_on_off(
    seconds: int = 20, rounds: int = 3, width: int = 1280, height: int = 720
) -> dict[str, Any]:
    """The firmware with sound over without, per round (median is the figure)."""
    a = load_config(None).audio
    replay = Replay(render_blocks(10.0, a.rate, a.channels))
    runs = [on_off_round(seconds, width, height, replay) for _ in range(rounds)]
    return {
        "seconds": seconds,
        "resolution": f"{width}x{height}",
        "on_over_off_per_round": [r[0] / r[1] for r in runs],
        "on_s": [r[0] for r in runs],
        "off_s": [r[1] for r in runs],
        "cpu_on_s": [r[2] for r in runs],
        "cpu_off_s": [r[3] for r in runs],
        # What sound adds, as a share of one core per second of device time.
        "extra_percent_wall": statistics.median(100 * (r[0] - r[1]) / seconds for r in runs),
        "extra_percent_cpu": statistics.median(100 * (r[2] - r[3]) / seconds for r in runs),
    }
