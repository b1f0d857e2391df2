"""The capture path at the encoder limit (issue 14, goal 2).

What ships against what it cannot beat: the firmware's whole capture path
(sensor callback -> overlay -> encoder -> in-stream signing for H.264 -> ring
buffer and its listeners), driven through a simulated device on the virtual
clock so it runs as fast as the host allows, against the bare encoder opened
with the firmware encoder's own settings (read off it, so they cannot drift)
on the same pictures. The figure is pipeline fps / bare fps per codec and size.

The scene. A real camera does not render a scene, so neither side pays for
one: both get the same pre-rendered scene pictures (one GOP of them, cycled,
so the cycle restarts on a keyframe). The replay hands the firmware a fresh
copy of each picture, as a camera hands over a fresh buffer (the overlay
draws in place); that copy is the sensor's work, timed and subtracted. What
rendering the scene costs is reported on a line of its own, against the bare
encoder's frame time, since a simulated run pays it.

Interleaving. Each run starts both sides one GOP in (untimed: the steady
state is what a camera lives in), then alternates one GOP of bare encoding
with the same GOP through the firmware, which goes first alternating too. A
run's ratio is the median over its GOP pairs, so a burst of another
process's work on a shared host moves one pair, not the figure; the figure
is the median of the runs. Audio is off (the features bench measures it), and
so is GPS (off by default).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from camera.config import Config, load_config
from camera.encoders import Encoder
from camera.encoders.h264 import H264Encoder
from camera.encoders.mjpeg import MJPEGEncoder
from camera.errors import ConfigError
from sim.bench.figure import Figure, Goal
from sim.bench.suite import BenchResult
from sim.device import SimDevice
from sim.scene import SyntheticScene
from sim.sensor import SyntheticSensor

NAME = "pipeline"
SUMMARY = "the firmware's capture path against the bare encoder, same settings and pictures"
QUICK: dict[str, object] = {
    "pipeline_frames": 8,
    "pipeline_runs": 3,
    "pipeline_sizes": "640x360",
    "pipeline_codecs": "h264,mjpeg",
}

SIZES = "640x360,1280x720,1920x1080"
CODECS = "h264,mjpeg"
#: --pipeline-frames is for this many pixels; other sizes scale to the same pixel count.
REFERENCE_PIXELS = 1280 * 720
GOAL = Goal(">=", 0.9)
#: FFmpeg context settings copied from the firmware's H.264 encoder to the bare one.
H264_SETTINGS = (
    "width",
    "height",
    "pix_fmt",
    "time_base",
    "framerate",
    "gop_size",
    "max_b_frames",
    "bit_rate",
)
#: How much of a profile's breakdown the notes and details quote.
TOP_COSTS = 8


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--pipeline-frames",
        type=int,
        default=300,
        help="frames per run at 1280x720; other sizes scaled to the same pixels, in whole "
        "GOPs (default: 300)",
    )
    group.add_argument(
        "--pipeline-runs", type=int, default=5, help="interleaved runs per figure (default: 5)"
    )
    group.add_argument(
        "--pipeline-sizes", default=SIZES, help=f"WxH,... (default: {SIZES})", metavar="SIZES"
    )
    group.add_argument(
        "--pipeline-codecs", default=CODECS, help=f"h264,mjpeg (default: {CODECS})", metavar="LIST"
    )


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"640x360,1280x720"`` -> [(640, 360), (1280, 720)]."""
    out = []
    for part in text.split(","):
        w, sep, h = part.strip().lower().partition("x")
        if not sep or not w.isdigit() or not h.isdigit():
            raise ValueError(f"--pipeline-sizes: {part!r} is not WIDTHxHEIGHT")
        out.append((int(w), int(h)))
    return out


def frames_for(frames: int, width: int, height: int, gop: int) -> int:
    """Frames per run at this size: the pixels of ``frames`` at 720p, in whole GOPs."""
    scaled = frames * REFERENCE_PIXELS / (width * height)
    return max(1, round(scaled / gop)) * gop


def bench_config(width: int, height: int, codec: str) -> Config:
    """The default config at this size and codec, audio off (its own bench measures it).

    MJPEG at 720p and up is too many bytes for the default arena to hold the
    default pre-event, which config refuses; it gets the longest whole
    second the arena holds (config's own rule decides), as a user would set.
    """
    pre_event = load_config(None).buffer.pre_event
    video = {"width": width, "height": height, "codec": codec}
    while True:
        try:
            return load_config(
                None,
                {"video": video, "audio": {"enabled": False}, "buffer": {"pre_event": pre_event}},
            )
        except ConfigError:
            if pre_event <= 1:
                raise
            pre_event = max(1, math.ceil(pre_event) - 1)


class ReplayScene:
    """Stands in for the sensor's scene: pre-rendered pictures, cycled, each a fresh copy.

    The copy is what a camera's driver does anyway (a new buffer per frame,
    which the overlay may draw on); its time is kept so the bench can take it
    out of the firmware's.
    """

    def __init__(self, pictures: Sequence[np.ndarray]) -> None:
        self.pictures = pictures
        self.seconds = 0.0

    def render(self, number: int, time_: float) -> np.ndarray:
        t0 = time.perf_counter()
        picture = self.pictures[number % len(self.pictures)].copy()
        self.seconds += time.perf_counter() - t0
        return picture


def firmware_encoder(device: SimDevice) -> Encoder:
    """The encoder under the firmware's wrappers (H.264 is wrapped by the signer)."""
    encoder: Encoder = device.firmware.encoder
    return getattr(encoder, "inner", encoder)


def bare_h264(encoder: H264Encoder) -> av.VideoCodecContext:
    """A bare FFmpeg context opened exactly as the firmware's encoder was."""
    ctx = av.CodecContext.create(encoder.name, "w")
    for name in H264_SETTINGS:
        setattr(ctx, name, getattr(encoder.context, name))
    ctx.options = dict(encoder.options)
    ctx.open()
    return ctx


class BareSide:
    """The encoder alone: the minimal loop that turns a BGR picture into its codec's output."""

    def __init__(self, encoder: Encoder, pictures: Sequence[np.ndarray]) -> None:
        self.pictures = pictures
        self.next = 0
        self.bytes = 0
        self._encode: Callable[[np.ndarray, int], int]
        #: The bare encoder's own settings: an FFmpeg context, or imencode's parameters.
        self.context: av.VideoCodecContext | None = None
        self.params: list[int] | None = None
        if isinstance(encoder, H264Encoder):
            ctx, gop = bare_h264(encoder), encoder.gop
            self.context = ctx
            intra = av.video.frame.PictureType.I

            def encode(picture: np.ndarray, n: int) -> int:
                # Wrapped, not copied: the cheapest way to hand PyAV a picture.
                frame = av.VideoFrame.from_numpy_buffer(picture, format="bgr24")
                frame.pts = n
                if n % gop == 0:  # as the firmware forces them
                    frame.pict_type = intra
                return sum(p.size for p in ctx.encode(frame))

        elif isinstance(encoder, MJPEGEncoder):
            params = self.params = list(encoder.params)

            def encode(picture: np.ndarray, n: int) -> int:
                ok, buf = cv2.imencode(".jpg", picture, params)
                if not ok:
                    raise RuntimeError(f"bare JPEG encoding failed for picture {n}")
                return int(buf.size)

        else:
            raise TypeError(f"no bare counterpart for {type(encoder).__name__}")
        self._encode = encode

    def step(self, frames: int) -> float:
        """Encode the next ``frames`` pictures; the seconds the encoder took.

        Each picture is a fresh copy, untimed, as the firmware's side gets
        from the replay: the copy leaves it in the CPU's cache, and only
        both sides alike make that fair.
        """
        pictures, count, encode = self.pictures, len(self.pictures), self._encode
        clock = time.perf_counter
        seconds = 0.0
        for n in range(self.next, self.next + frames):
            picture = pictures[n % count].copy()
            t0 = clock()
            self.bytes += encode(picture, n)
            seconds += clock() - t0
        self.next += frames
        return seconds


class PipelineSide:
    """The firmware on a simulated board whose sensor replays the pictures."""

    def __init__(self, config: Config, pictures: Sequence[np.ndarray], root: Path) -> None:
        self.device = SimDevice(config, root)
        sensor = self.device.hal.sensor
        if not isinstance(sensor, SyntheticSensor):
            raise TypeError(f"the sim board's sensor is {type(sensor).__name__}")
        self.replay = ReplayScene(pictures)
        sensor.scene = self.replay  # type: ignore[assignment]
        self.fps = config.video.fps
        self.next = 0
        self.device.boot()

    @property
    def encoder(self) -> Encoder:
        return firmware_encoder(self.device)

    def step(self, frames: int) -> float:
        """Let the sensor deliver the next ``frames`` pictures; the firmware's seconds.

        The replay's copies are subtracted: they are the sensor's work.
        """
        end = self.next + frames
        copies = self.replay.seconds
        t0 = time.perf_counter()
        self.device.run(until=(end - 0.5) / self.fps)
        seconds = time.perf_counter() - t0 - (self.replay.seconds - copies)
        captured = self.device.firmware.capture.frames_captured
        if captured != end:
            raise RuntimeError(f"the firmware captured {captured} frames, expected {end}")
        self.next = end
        return seconds

    def close(self) -> None:
        self.device.shutdown()


@dataclass
class Run:
    """One interleaved run: each side's seconds over the same GOPs, pair by pair."""

    frames: int
    pairs: list[tuple[float, float]] = field(default_factory=list)  # (bare, pipeline) per GOP
    copy: float = 0.0  # the replay's fresh copies, taken out of the pipeline's seconds
    settings: dict[str, Any] = field(default_factory=dict)  # the encoder both sides used

    @property
    def bare(self) -> float:
        return sum(b for b, _ in self.pairs)

    @property
    def pipeline(self) -> float:
        return sum(p for _, p in self.pairs)

    @property
    def ratio(self) -> float:
        """Pipeline fps / bare fps: the median over the run's GOPs.

        Each pair is the same GOP (one keyframe and the same pictures) on
        both sides, back to back, so every pair estimates the whole ratio; the
        median keeps a burst of another process's work on a shared host from
        moving the figure, where the ratio of the sums would take it in.
        """
        return statistics.median(b / p for b, p in self.pairs)


def interleaved_run(
    config: Config, pictures: Sequence[np.ndarray], frames: int, order: int, root: Path
) -> Run:
    """Bare and firmware alternating GOP by GOP; which goes first alternates too.

    A GOP on each side first, untimed: a camera runs for hours, and what is
    measured is its steady state, not the encoder's start nor the overlay's
    first second (every frame of it a new millisecond value to draw whole).
    """
    gop = config.video.gop
    pipe = PipelineSide(config, pictures, root)
    try:
        bare = BareSide(pipe.encoder, pictures)
        run = Run(frames, settings=encoder_settings(pipe.encoder))
        bare.step(gop)
        pipe.step(gop)
        copies = pipe.replay.seconds
        for k in range(frames // gop):
            if (k + order) % 2 == 0:
                b = bare.step(gop)
                p = pipe.step(gop)
            else:
                p = pipe.step(gop)
                b = bare.step(gop)
            run.pairs.append((b, p))
        run.copy = pipe.replay.seconds - copies
    finally:
        pipe.close()
    return run


def profile_pipeline(
    config: Config, pictures: Sequence[np.ndarray], frames: int, root: Path, stem: Path
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Profile the firmware side alone over ``frames``; write ``stem``.prof and .txt.

    Returns the stages' shares of the firmware's time (:func:`stage_shares`)
    and the largest costs by own time (:func:`top_costs`).
    """
    pipe = PipelineSide(config, pictures, root)
    profiler = cProfile.Profile()
    try:
        pipe.step(config.video.gop)  # past the start, as the timed runs are
        profiler.enable()
        pipe.step(frames)
        profiler.disable()
    finally:
        pipe.close()
    profiler.dump_stats(stem.with_suffix(".prof"))
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    text.write(f"{stem.name}: the firmware's capture path, {frames} frames\n\n")
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(30)
    stem.with_suffix(".txt").write_text(text.getvalue())
    return stage_shares(stats), top_costs(stats)


#: The capture path's stages, by (file, function) whose cumulative time is theirs.
STAGES = {
    "encoder": (("camera/encoders/h264.py", "encode"), ("camera/encoders/mjpeg.py", "encode")),
    "signing": (("camera/encoders/signing.py", "_sign"),),
    "overlay": (("camera/overlay.py", "draw"),),
    "ring": (("camera/ring.py", "append"),),
}
#: Own-time entries that are the encoder itself, which the bare side runs too.
ENCODER_CALLS = ("of 'av.codec.context.CodecContext'", "from_numpy_buffer", "imencode")


def stage_shares(stats: pstats.Stats) -> dict[str, float]:
    """Each stage's share (%) of the firmware's time in a profile; the rest is the loop's.

    ``encoder_call`` is the part of ``encoder`` the bare side runs too (the
    FFmpeg or OpenCV call), so ``encoder`` minus it is the wrapper's.
    cProfile slows Python code more than C, so the Python stages' shares
    are upper bounds.
    """
    rows = stats.stats  # type: ignore[attr-defined]

    def cumulative(file: str, func: str) -> float:
        return sum(r[3] for k, r in rows.items() if k[0].endswith(file) and k[2] == func)

    total = cumulative(Path(__file__).as_posix(), "step") - cumulative(
        Path(__file__).as_posix(), "render"
    )
    total = total or 1.0
    out = {
        stage: round(100 * sum(cumulative(f, fn) for f, fn in keys) / total, 1)
        for stage, keys in STAGES.items()
    }
    call = sum(r[2] for k, r in rows.items() if any(e in k[2] for e in ENCODER_CALLS))
    out["encoder_call"] = round(100 * call / total, 1)
    out["rest"] = round(100 - sum(out[stage] for stage in STAGES), 1)
    return out


def top_costs(stats: pstats.Stats, n: int = TOP_COSTS) -> list[dict[str, Any]]:
    """The ``n`` functions with the most own time, as shares of the firmware's time.

    The replay's copies (the sensor's work, not the firmware's) are taken out
    of the functions that made them and of the whole, and so is this module's
    own harness.
    """
    rows = stats.stats  # type: ignore[attr-defined]
    replay = next((k for k in rows if k[2] == "render" and k[0] == __file__), None)
    own = {}
    for key, (_, calls, tt, _, callers) in rows.items():
        if key[0] == __file__:
            continue
        from_replay = callers.get(replay, (0, 0, 0.0, 0.0))[2] if replay is not None else 0.0
        own[key] = (calls, tt - from_replay)
    total = sum(tt for _, tt in own.values()) or 1.0
    out = []
    for (file, line, func), (calls, tt) in sorted(
        own.items(), key=lambda item: item[1][1], reverse=True
    )[:n]:
        where = func if file == "~" else f"{Path(file).name}:{line}({func})"
        out.append({"function": where, "calls": calls, "percent": round(100 * tt / total, 1)})
    return out


def _describe(costs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{c['function']} {c['percent']}%" for c in costs)


def limit_text(profile: str, stages: dict[str, float], costs: list[dict[str, Any]]) -> str:
    """What the profile says holds the figure down: the encoder's share, then the rest."""
    wrapper = round(stages["encoder"] - stages["encoder_call"], 1)
    signing = f"signing {stages['signing']}%, " if stages["signing"] else ""
    rest = [c for c in costs if not any(e in c["function"] for e in ENCODER_CALLS)]
    return (
        f"{profile}: the encoder call (what the bare side runs) is {stages['encoder_call']}% "
        f"of the capture path's time; the rest is the encoder's wrapper {wrapper}%, "
        f"{signing}overlay {stages['overlay']}%, ring {stages['ring']}%, and the loop, "
        f"sensor callback and listeners {stages['rest']}% (cProfile inflates Python's "
        f"shares). Largest own times besides the encoder: {_describe(rest[:5])}."
    )


@dataclass
class SizeResult:
    """Everything measured at one frame size."""

    width: int
    height: int
    frames: int  # per run
    pictures: int  # pre-rendered, cycled
    render_ms: list[float] = field(default_factory=list)  # scene render per frame, per run
    runs: dict[str, list[Run]] = field(default_factory=dict)
    costs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    pre_event: dict[str, float] = field(default_factory=dict)  # seconds, per codec

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


def _render_pictures(config: Config, count: int) -> tuple[list[np.ndarray], SyntheticScene]:
    scene = SyntheticScene(config.video.width, config.video.height, seed=0)
    fps = config.video.fps
    return [scene.render(n, n / fps) for n in range(count)], scene


def _time_render(scene: SyntheticScene, first: int, count: int, fps: int) -> float:
    """Milliseconds per frame the simulated scene takes to render a picture."""
    t0 = time.perf_counter()
    for n in range(first, first + count):
        scene.render(n, n / fps)
    return 1e3 * (time.perf_counter() - t0) / count


def encoder_settings(encoder: Encoder) -> dict[str, Any]:
    """What the encoder was opened with, as the results file records it."""
    if isinstance(encoder, H264Encoder):
        ctx = encoder.context
        out = {name: str(getattr(ctx, name)) for name in H264_SETTINGS}
        return {
            "encoder": encoder.name,
            **out,
            "thread_count": ctx.thread_count,
            "thread_type": str(ctx.thread_type),
            "options": dict(encoder.options),
        }
    if isinstance(encoder, MJPEGEncoder):
        return {"encoder": encoder.name, "params": list(encoder.params)}
    return {"encoder": encoder.name}


def bench_size(
    width: int, height: int, codecs: Sequence[str], frames: int, runs: int, profiles: Path
) -> SizeResult:
    """Every codec at one size: ``runs`` interleaved runs each, then one profiled run."""
    base = bench_config(width, height, codecs[0])
    gop, fps = base.video.gop, base.video.fps
    per_run = frames_for(frames, width, height, gop)
    pictures, scene = _render_pictures(base, gop)
    result = SizeResult(width, height, per_run, len(pictures))
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        for codec in codecs:
            config = bench_config(width, height, codec)
            result.pre_event[codec] = config.buffer.pre_event
            result.runs[codec] = []
            for i in range(runs):
                root = Path(tmp) / f"{codec}-{i}"
                result.runs[codec].append(interleaved_run(config, pictures, per_run, i, root))
                if codec == codecs[0]:
                    result.render_ms.append(_time_render(scene, gop * (i + 1), gop, fps))
            stem = profiles / f"pipeline-{width}x{height}-{codec}"
            root = Path(tmp) / f"{codec}-profile"
            shares = profile_pipeline(config, pictures, per_run, root, stem)
            result.stages[codec], result.costs[codec] = shares
            result.settings[codec] = result.runs[codec][0].settings
    return result


def _pre_event_note(seconds: float) -> str:
    default = load_config(None).buffer.pre_event
    if seconds >= default:
        return ""
    return (
        f" Pre-event {seconds:g} s, not {default:g}: the longest the default arena holds "
        "at this size (config refuses more)."
    )


def figures_for(result: SizeResult, codecs: Sequence[str]) -> list[Figure]:
    figures = []
    for codec in codecs:
        runs = result.runs[codec]
        label_codec = "H.264" if codec == "h264" else "MJPEG"
        settings = result.settings[codec]
        figure = Figure(
            f"pipeline.{codec}_{result.size}",
            f"capture path / bare {label_codec} encoder, {result.size}",
            [r.ratio for r in runs],
            unit="x",
            better="higher",
            goal=GOAL,
            baseline=f"bare {settings['encoder']}, same settings and pictures, interleaved",
            ours=[round(1e3 * r.pipeline / r.frames, 3) for r in runs],
            base=[round(1e3 * r.bare / r.frames, 3) for r in runs],
            unit_raw="ms per frame",
            notes=(
                f"{len(runs)} runs of {result.frames} frames, each the median of its GOPs, "
                "bare and firmware alternating GOP by GOP; both sides get fresh copies of the "
                f"same {result.pictures} pre-rendered scene pictures (one GOP, cycled; the copy, "
                "the sensor's work, is not timed). The firmware: sim board, virtual clock, "
                "audio off, from the sensor callback to the ring: overlay, encoder"
                + (", in-stream signing" if codec == "h264" else "")
                + ", ring and listeners, all inline; on a real clock the encoder has a thread "
                f"of its own. Profile: pipeline-{result.size}-{codec}.txt."
                + _pre_event_note(result.pre_event[codec])
            ),
        )
        if figure.status == "MISS":
            figure.limit = limit_text(
                f"pipeline-{result.size}-{codec}.txt", result.stages[codec], result.costs[codec]
            )
        figures.append(figure)
    first = codecs[0]
    bare_ms = [1e3 * r.bare / r.frames for r in result.runs[first]]
    figures.append(
        Figure(
            f"pipeline.scene_{result.size}",
            f"scene render / bare {'H.264' if first == 'h264' else 'MJPEG'} encode, "
            f"per frame, {result.size}",
            [100 * s / b for s, b in zip(result.render_ms, bare_ms, strict=True)],
            unit="%",
            better="lower",
            baseline=f"the bare {first} encoder's frame time",
            ours=[round(v, 3) for v in result.render_ms],
            base=[round(v, 3) for v in bare_ms],
            unit_raw="ms per frame",
            notes="what a simulated run pays on top of the capture path; a camera does not.",
        )
    )
    return figures


def run(args: argparse.Namespace, profiles: Path) -> BenchResult:
    codecs = [c.strip() for c in args.pipeline_codecs.split(",") if c.strip()]
    unknown = [c for c in codecs if c not in ("h264", "mjpeg")]
    if unknown or not codecs:
        raise ValueError(f"--pipeline-codecs: expected h264 and/or mjpeg, got {codecs}")
    if args.pipeline_runs < 1 or args.pipeline_frames < 1:
        raise ValueError("--pipeline-runs and --pipeline-frames must be at least 1")
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    for width, height in parse_sizes(args.pipeline_sizes):
        result = bench_size(
            width, height, codecs, args.pipeline_frames, args.pipeline_runs, profiles
        )
        figures += figures_for(result, codecs)
        details[result.size] = {
            "frames_per_run": result.frames,
            "scene_render_ms": [round(v, 3) for v in result.render_ms],
            **{
                codec: {
                    "settings": result.settings[codec],
                    "pre_event_s": result.pre_event[codec],
                    "copy_ms_per_frame": [
                        round(1e3 * r.copy / r.frames, 3) for r in result.runs[codec]
                    ],
                    "profile": f"pipeline-{result.size}-{codec}",
                    "stages_percent": result.stages[codec],
                    "top_own_time": result.costs[codec],
                }
                for codec in codecs
            },
        }
    return BenchResult(figures, details)
