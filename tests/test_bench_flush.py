"""The shape of what the flush benchmark reports, at its smoke-test size (never its timings)."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import pytest

from sim.bench import flush
from sim.bench.suite import BenchResult


def quick_args(**changes: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    flush.add_arguments(parser.add_argument_group("flush"))
    args = parser.parse_args([])
    for key, value in {**flush.QUICK, **changes}.items():
        setattr(args, key, value)
    return args


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> tuple[BenchResult, Path]:
    profiles = tmp_path_factory.mktemp("bench") / "profiles"
    return flush.run(quick_args(), profiles), profiles


def test_the_figures_are_there_with_their_goals_and_raw_numbers(
    result: tuple[BenchResult, Path],
) -> None:
    res, _ = result
    figures = {f.key: f for f in res.figures}
    assert set(figures) == {"flush.durable_over_plain", "flush.live_frames_dropped"}
    ratio = figures["flush.durable_over_plain"]
    trials = flush.QUICK["flush_trials"]
    assert len(ratio.samples) == len(ratio.ours) == len(ratio.base) == trials
    assert ratio.unit == "x" and ratio.unit_raw == "ms" and ratio.better == "lower"
    assert str(ratio.goal) == "<= 1.5"
    for sample, ours, base in zip(ratio.samples, ratio.ours, ratio.base, strict=True):
        assert ours > 0 and base > 0 and sample == pytest.approx(ours / base)
    dropped = figures["flush.live_frames_dropped"]
    assert dropped.unit == "frames" and str(dropped.goal) == "<= 0"
    # Timed and profiled trials alike: every flush counts for lost frames.
    assert len(dropped.samples) == trials + flush.PROFILED_TRIALS
    json.dumps([f.as_dict() for f in res.figures])  # the results file can hold them


def test_each_status_follows_the_median(result: tuple[BenchResult, Path]) -> None:
    res, _ = result
    for f in res.figures:
        assert f.goal is not None
        assert f.status == ("PASS" if f.goal.met(statistics.median(f.samples)) else "MISS")
        assert (f.limit != "") == (f.status == "MISS" and f.key == "flush.durable_over_plain")


def test_each_trial_flushed_a_pre_event_and_measured_its_bytes(
    result: tuple[BenchResult, Path],
) -> None:
    res, _ = result
    rows = res.details["trials"]
    assert len(rows) == flush.QUICK["flush_trials"] + flush.PROFILED_TRIALS
    for row in rows:
        assert row["segment_bytes"] > 100_000 and 0 < row["journal_bytes"] < 100_000
        assert 0 <= row["queued_ms"] <= row["writer_last_task_ms"] <= row["durable_ms"]
        assert row["writer_busy_ms"] > 0
    assert all(r["plain_ms"] is not None for r in rows[: flush.QUICK["flush_trials"]])
    assert all(r["plain_ms"] is None for r in rows[flush.QUICK["flush_trials"] :])


def test_the_writer_profile_is_saved_and_the_recordings_are_gone(
    result: tuple[BenchResult, Path],
) -> None:
    res, profiles = result
    assert (profiles / "flush-640x360-h264.prof").stat().st_size > 0
    text = (profiles / "flush-640x360-h264.txt").read_text()
    assert "sorted by cumulative" in text and "sorted by tottime" in text
    assert "segments.py" in text  # the writer's tasks, not the loop's
    assert res.details["profile"] == "flush-640x360-h264.txt"
    assert [p.name for p in profiles.parent.iterdir()] == ["profiles"]


def test_a_recording_that_does_not_verify_fails_the_bench(tmp_path: Path) -> None:
    bad = tmp_path / "BWC-0001_20260101T000000Z_0001"
    bad.mkdir()
    (bad / "manifest.json").write_text("{}")
    with pytest.raises(RuntimeError, match="does not verify"):
        flush.verify_all(tmp_path, [bad.name])


def test_the_plain_baseline_writes_fsyncs_and_removes_its_file(tmp_path: Path) -> None:
    seconds = flush.plain_write_fsync(tmp_path, memoryview(b"x" * 1000), "plain")
    assert seconds > 0 and list(tmp_path.iterdir()) == []


def test_the_options_say_their_defaults() -> None:
    parser = argparse.ArgumentParser()
    flush.add_arguments(parser.add_argument_group("flush"))
    options = [a for a in parser._actions if a.option_strings and a.dest.startswith("flush_")]
    assert {a.dest for a in options} == {*flush.QUICK, "flush_card_model"}
    assert all("default" in (a.help or "") for a in options)
    assert parser.parse_args(["--flush-card-model"]).flush_card_model == 3
    assert parser.parse_args([]).flush_card_model == 0


def test_the_card_model_figure_says_how_much_of_it_is_the_model() -> None:
    trials = []
    for i, (ms, modelled) in enumerate([(900.0, 0.8), (1000.0, 0.85), (1100.0, 0.9)]):
        t = flush.Trial(i, accepted=1.0, durable=1.0 + ms / 1000, base_seconds=0.02)
        t.modelled = modelled
        trials.append(t)
    f = flush._card_figure(trials, "640x360")
    assert f.key == "flush.card_model_durable_over_plain" and f.goal is None
    assert f.samples == pytest.approx([45.0, 50.0, 55.0])
    assert "85% of it" in f.notes
