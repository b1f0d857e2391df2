"""The memory, ring and features benchmarks at smoke-test size: what they report, never timings."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import sim.bench.features as features
import sim.bench.memory as memory
import sim.bench.ring as ring
from camera.frames import EncodedFrame
from camera.ring import RingBuffer
from sim.bench import feature_audio, feature_gps
from sim.bench.figure import Figure


def _args(module: object) -> argparse.Namespace:
    """The module's options at their defaults, then its QUICK sizes."""
    parser = argparse.ArgumentParser()
    module.add_arguments(parser.add_argument_group())  # type: ignore[attr-defined]
    args = parser.parse_args([])
    for key, value in module.QUICK.items():  # type: ignore[attr-defined]
        setattr(args, key, value)
    return args


def _check(figures: list[Figure], units: dict[str, str]) -> dict[str, Figure]:
    by_key = {f.key: f for f in figures}
    assert set(by_key) == set(units)
    for key, unit in units.items():
        f = by_key[key]
        assert f.unit == unit, key
        assert f.samples and all(isinstance(v, float) for v in f.samples), key
        if f.goal is None:
            assert f.status == "-"
        else:
            assert f.status == ("PASS" if f.goal.met(f.median) else "MISS"), key
    return by_key


# ------------------------------------------------------------------ memory


@pytest.mark.parametrize("minutes", [0.5, 2.0, 10.0])
def test_memory_plan_records_inside_and_after_warmup(minutes: float) -> None:
    plan = memory.plan(minutes, pre_event=30.0)
    end, warmup, marks = plan["end"], plan["warmup"], plan["recordings"]
    assert warmup <= end / 2
    assert marks[0][1] + memory.HOLD < warmup  # the first is stopped inside warm-up
    assert all(start >= warmup for start, _ in marks[1:])
    for (start, hold), nxt in zip(marks, [*(s for s, _ in marks[1:]), end], strict=True):
        assert start < hold and hold + memory.HOLD < nxt  # stopped before the next begins
    assert marks[-1][1] + memory.HOLD <= warmup + 0.75 * (end - warmup)  # the end is idle


def test_memory_summary_counts_the_peak_and_growth_after_warmup() -> None:
    child = {
        "warmup": 90.0,
        "recording_marks": [(35.0, 73.0)],
        "peak_after_warmup_mb": 250.0,
        "samples": [
            {"t": 0.0, "rss_mb": 200.0},
            {"t": 30.0, "rss_mb": 210.0},
            {"t": 90.0, "rss_mb": 225.0},
            {"t": 120.0, "rss_mb": 226.0},
            {"t": 150.0, "rss_mb": 227.5},
        ],
    }
    s = memory.summarise(child)
    assert (s.steady, s.at_warmup, s.at_end, s.growth, s.first_step) == (
        250.0,
        225.0,
        227.5,
        2.5,
        15.0,
    )
    s = memory.summarise({**child, "peak_after_warmup_mb": None})
    assert s.steady == 227.5


def test_memory_bench_runs_a_child_and_reports_its_samples(tmp_path: Path) -> None:
    result = memory.run(_args(memory), tmp_path)

    by_key = _check(
        result.figures,
        {
            "memory.steady_rss_over_budget": "x",
            "memory.steady_anon_mb": "MB",  # Linux: /proc/self/status splits the RSS
            "memory.rss_growth_mb": "MB",
        },
    )
    child = result.details["child"]
    split = child["steady_split_mb"]
    anon = by_key["memory.steady_anon_mb"]
    assert anon.samples == [split["anon"]] and anon.base == [split["file"]]
    # The split adds up to the steady sample (taken a moment apart, so within 1 MB).
    assert abs(split["anon"] + split["file"] + split["shmem"] - child["samples"][-1]["rss_mb"]) < 1
    assert split["anon"] > child["arena_mb"]  # the arena is anonymous and resident
    assert child["resolution"] == "640x360" and child["arena_mb"] == 64.0
    times = [s["t"] for s in child["samples"]]
    assert times == sorted(times) and times[0] == 0.0 and times[-1] == 30.0
    assert child["warmup"] in times and len([t for t in times if t >= child["warmup"]]) >= 3
    assert all(s["rss_mb"] > 50 for s in child["samples"])
    assert child["recordings"] >= 1
    steady = by_key["memory.steady_rss_over_budget"]
    assert steady.base == [child["budget_mb"]] == [64.0 + memory.NON_ARENA_MB]
    assert steady.samples == [steady.ours[0] / steady.base[0]]
    assert (tmp_path / "memory-640x360.txt").read_text().startswith("memory bench, 640x360")


def test_ring_arena_is_resident_from_construction() -> None:
    """Its pages are taken at boot, not over the first lap (the growth figure's premise)."""
    before = memory._statm_rss_mb()
    kept = RingBuffer(48_000_000, retain_seconds=30.0, max_frames=100)
    assert memory._statm_rss_mb() - before > 45.0
    assert kept.capacity_bytes == 48_000_000


# -------------------------------------------------------------------- ring


def test_ring_bench_reports_time_and_memory_against_both_baselines(tmp_path: Path) -> None:
    result = ring.run(_args(ring), tmp_path)

    by_key = _check(
        result.figures,
        {
            "ring.share_of_frame_budget": "%",
            "ring.over_memcpy": "x",
            "ring.over_deque": "x",
            "ring.memory_over_deque": "x",
        },
    )
    mem = result.details["memory_bytes"]
    assert mem["ring"] >= result.details["arena_bytes"]  # the arena is held whatever the bitrate
    assert mem["deque"] >= mem["frames"]  # the deque holds copies of every byte
    assert by_key["ring.memory_over_deque"].samples == [mem["ring"] / mem["deque"]]
    assert (tmp_path / "ring-300-frames.txt").exists()
    assert (tmp_path / "ring-300-frames.prof").exists()


def test_ring_baselines_copy_every_byte_and_stay_bounded() -> None:
    data = ring.frames(40)
    deque_store = ring.DequeStore(max_frames=30)
    memcpy = ring.MemcpyStore(capacity=300_000)
    for f in data:
        deque_store.put(f)
        memcpy.put(f)
    assert len(deque_store.frames) == 30
    stored, keyframe = deque_store.frames[-1]
    assert stored == data[-1].data and stored is not data[-1].data and keyframe is False
    tail = memcpy.buf[memcpy.head - len(data[-1].data) : memcpy.head]
    assert tail == data[-1].data and memcpy.head <= memcpy.capacity


def test_ring_frames_look_like_720p_at_4_mbit() -> None:
    data = ring.frames(300)
    mbit = sum(len(f.data) for f in data) * 8 / 10 / 1e6
    assert 3.5 < mbit < 5.5
    assert [f.number for f in data if f.keyframe] == list(range(0, 300, 30))
    assert all(isinstance(f, EncodedFrame) for f in data)


# ---------------------------------------------------------------- features


def test_features_bench_reports_audio_and_gps_beside_signing(tmp_path: Path) -> None:
    result = features.run(_args(features), tmp_path)

    _check(
        result.figures,
        {
            "features.signing_share_of_frame_budget": "%",
            "features.signing_over_plain": "x",
            "features.audio_share_of_real_time": "%",
            "features.audio_on_over_off": "x",
            "features.gps_share_of_fix_period": "%",
        },
    )
    assert set(result.details) == {"signing", "audio", "gps"}
    for stem in ("features-audio", "features-gps"):
        assert (tmp_path / f"{stem}.txt").exists() and (tmp_path / f"{stem}.prof").exists()


def test_audio_path_share_is_per_second_of_sound() -> None:
    r = feature_audio.bench_path(seconds=1.0, rounds=2)
    assert r["sound_seconds"] == pytest.approx(1.0, abs=0.03)
    assert len(r["percent_per_round"]) == 2
    for pct, ms in zip(r["percent_per_round"], r["ms_per_second_per_round"], strict=True):
        assert pct == pytest.approx(ms / 10) and pct > 0


def test_audio_on_off_gives_both_devices_the_same_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Second by second, the order alternating, so a slow spell of the host hits both."""
    calls: list[tuple[bool, float]] = []

    class Dev:
        def __init__(self, sound: bool) -> None:
            self.sound = sound

        def boot(self) -> None:
            pass

        def run(self, until: float) -> None:
            calls.append((self.sound, until))

        def shutdown(self) -> None:
            pass

    monkeypatch.setattr(feature_audio, "_device", lambda sound, *args: Dev(sound))
    feature_audio.on_off_round(4, 640, 360, feature_audio.Replay([]))
    on, off = True, False
    assert calls == [
        (on, 1.0), (off, 1.0), (off, 2.0), (on, 2.0),
        (on, 3.0), (off, 3.0), (off, 4.0), (on, 4.0),
    ]  # fmt: skip


def test_gps_bench_decodes_every_epoch_into_a_fix() -> None:
    r = feature_gps.bench_gps(fixes=12, rounds=2)
    assert (r["epochs"], r["fixes"], r["rate_hz"]) == (12, 12, 1)
    assert r["bytes_per_epoch"] > 200  # RMC, GGA, GSA and the GSVs
    for us, pct in zip(r["us_per_fix_per_round"], r["percent_of_period_per_round"], strict=True):
        assert pct == pytest.approx(us / 1e4) and us > 0
    flood = feature_gps.bench_gps(fixes=20, rounds=1, rate_hz=10)
    us, pct = flood["us_per_fix_per_round"][0], flood["percent_of_period_per_round"][0]
    assert pct == pytest.approx(10 * us / 1e4)
