"""The pipeline benchmark at its smoke-test size: the shape of what it reports, never its timings.

Its figure is only meaningful if the bare encoder it is measured against is
opened exactly as the firmware's is, so that is checked here from both
encoders' own contexts, not from what the bench says it did.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import sim.bench.pipeline as bench
from camera.encoders.h264 import H264Encoder
from camera.encoders.mjpeg import MJPEGEncoder

SIZE = "640x360"


def quick_args(**overrides: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser.add_argument_group("pipeline"))
    args = parser.parse_args([])
    for key, value in {**bench.QUICK, **overrides}.items():
        setattr(args, key, value)
    return args


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[bench.BenchResult, Path]:
    profiles = tmp_path_factory.mktemp("profiles")
    return bench.run(quick_args(), profiles), profiles


def test_quick_reports_a_ratio_per_codec_and_the_scene_apart(
    quick: tuple[bench.BenchResult, Path],
) -> None:
    result, _ = quick
    figures = {f.key: f for f in result.figures}
    assert list(figures) == [f"pipeline.{k}_{SIZE}" for k in ("h264", "mjpeg", "scene")]
    runs = bench.QUICK["pipeline_runs"]
    for codec in ("h264", "mjpeg"):
        f = figures[f"pipeline.{codec}_{SIZE}"]
        assert (f.unit, f.better, str(f.goal)) == ("x", "higher", ">= 0.9")
        assert f.unit_raw == "ms per frame"
        assert len(f.samples) == len(f.ours) == len(f.base) == runs
        assert all(v > 0 for v in f.samples + f.ours + f.base)
        # The goal's status follows the median, and a miss says what limits it.
        assert f.status == ("PASS" if f.median >= 0.9 else "MISS")
        assert bool(f.limit) == (f.status == "MISS")
        assert f"pipeline-{SIZE}-{codec}.txt" in f.notes
    scene = figures[f"pipeline.scene_{SIZE}"]
    assert (scene.unit, scene.better, scene.goal) == ("%", "lower", None)
    assert len(scene.samples) == runs and scene.status == "-"


def test_quick_saves_a_profile_per_codec_and_size(quick: tuple[bench.BenchResult, Path]) -> None:
    result, profiles = quick
    for codec in ("h264", "mjpeg"):
        stem = profiles / f"pipeline-{SIZE}-{codec}"
        assert stem.with_suffix(".prof").stat().st_size > 0
        text = stem.with_suffix(".txt").read_text()
        assert "cumulative" in text and "internal time" in text
        detail = result.details[SIZE][codec]
        assert detail["profile"] == stem.name
        costs = detail["top_own_time"]
        assert costs and all(0 <= c["percent"] <= 100 for c in costs)
        # The replay's copies are the sensor's work: never listed as the firmware's.
        assert not any("pipeline.py" in c["function"] for c in costs)
    assert result.details[SIZE]["frames_per_run"] == bench.frames_for(8, 640, 360, 30)


@pytest.mark.parametrize("codec", ["h264", "mjpeg"])
def test_the_bare_encoder_opens_with_the_firmware_encoders_settings(
    codec: str, tmp_path: Path
) -> None:
    config = bench.bench_config(640, 360, codec)
    pictures, _ = bench._render_pictures(config, 2)
    side = bench.PipelineSide(config, pictures, tmp_path)
    try:
        firmware = side.encoder
        bare = bench.BareSide(firmware, pictures)
        if codec == "h264":
            assert isinstance(firmware, H264Encoder) and bare.context is not None
            ours, theirs = firmware.context, bare.context
            for name in (*bench.H264_SETTINGS, "thread_count", "thread_type", "name"):
                assert getattr(theirs, name) == getattr(ours, name), name
            assert firmware.options["threads"] == str(config.video.threads)
            assert firmware.options["preset"] == "ultrafast"
        else:
            assert isinstance(firmware, MJPEGEncoder)
            assert bare.params == firmware.params
        assert bare.step(2) > 0 and bare.bytes > 0
    finally:
        side.close()


def test_the_firmware_side_counts_every_frame_and_not_the_sensors_copy(tmp_path: Path) -> None:
    config = bench.bench_config(640, 360, "mjpeg")
    pictures, _ = bench._render_pictures(config, 3)
    side = bench.PipelineSide(config, pictures, tmp_path)
    try:
        assert side.step(5) > 0
        assert side.device.firmware.capture.frames_captured == 5
        assert side.device.firmware.ring.newest_number == 4
        assert side.replay.seconds > 0  # timed, so it can be taken out
    finally:
        side.close()


def test_frames_per_run_scale_with_pixels_in_whole_gops() -> None:
    assert bench.frames_for(300, 1280, 720, 30) == 300
    assert bench.frames_for(300, 640, 360, 30) == 1200
    assert bench.frames_for(300, 1920, 1080, 30) == 120
    assert bench.frames_for(1, 1920, 1080, 30) == 30


def test_sizes_parse_and_a_bad_one_is_named() -> None:
    assert bench.parse_sizes("640x360, 1280X720") == [(640, 360), (1280, 720)]
    with pytest.raises(ValueError, match="'720p'"):
        bench.parse_sizes("640x360,720p")


def test_mjpeg_at_1080p_gets_the_longest_pre_event_its_arena_holds() -> None:
    default = bench.bench_config(640, 360, "h264").buffer.pre_event
    big = bench.bench_config(1920, 1080, "mjpeg")
    assert 1 <= big.buffer.pre_event < default
    assert not big.audio.enabled


def test_a_missed_goal_names_the_encoders_share_and_each_stage() -> None:
    stages = {
        "encoder": 82.0,
        "encoder_call": 80.0,
        "signing": 0.0,
        "overlay": 6.5,
        "ring": 3.0,
        "rest": 8.5,
    }
    costs = [
        {"function": "<imencode>", "calls": 9, "percent": 80.0},
        {"function": "overlay.py:1(draw)", "calls": 9, "percent": 6.5},
        {"function": "ring.py:2(append)", "calls": 9, "percent": 3.0},
    ]
    text = bench.limit_text("pipeline-640x360-mjpeg.txt", stages, costs)
    assert text.startswith("pipeline-640x360-mjpeg.txt: the encoder call")
    assert "is 80.0%" in text and "wrapper 2.0%, overlay 6.5%, ring 3.0%" in text
    assert "signing" not in text  # MJPEG is not signed in the stream
    assert text.endswith("overlay.py:1(draw) 6.5%, ring.py:2(append) 3.0%.")


def test_the_stages_of_a_profile_add_up(quick: tuple[bench.BenchResult, Path]) -> None:
    result, _ = quick
    for codec in ("h264", "mjpeg"):
        stages = result.details[SIZE][codec]["stages_percent"]
        assert set(stages) == {"encoder", "encoder_call", "signing", "overlay", "ring", "rest"}
        assert 0 < stages["encoder_call"] <= stages["encoder"] < 100
        assert stages["overlay"] > 0 and stages["ring"] > 0
        assert (stages["signing"] > 0) == (codec == "h264")
        parts = sum(stages[k] for k in ("encoder", "signing", "overlay", "ring", "rest"))
        assert parts == pytest.approx(100, abs=0.2)
