"""The bench suite: which benchmarks exist, running them, and the two result files.

Each benchmark is a module with ``NAME``, ``SUMMARY``, ``add_arguments(parser)``
(its size options, prefixed with its name, defaulting to the suite's sizes),
``QUICK`` (the same options at a smoke-test size) and ``run(args, profiles)``
returning a :class:`BenchResult`. The suite writes ``results.json`` (every
sample, for ``bench-check`` and for people who want the raw numbers) and
``results.md`` (the table the README copies).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from sim.bench.figure import Figure

#: In the order the suite runs them: the quick ones first.
MODULES = ("ring", "features", "flush", "pipeline", "memory")
PI_RESULTS = "results-pi.json"


@dataclass
class BenchResult:
    figures: list[Figure]
    details: dict[str, Any] = field(default_factory=dict)  # raw, JSON-able
    seconds: float = 0.0


def benchmarks() -> dict[str, ModuleType]:
    return {name: importlib.import_module(f"sim.bench.{name}") for name in MODULES}


def versions() -> dict[str, str]:
    """The software a figure depends on, so two results files can be told apart."""
    out = {"python": platform.python_version()}
    for name in ("camera", "av", "numpy", "cv2", "cryptography", "pynmeagps"):
        try:
            out[name] = str(importlib.import_module(name).__version__)
        except (ImportError, AttributeError):
            out[name] = "absent"
    try:
        import av

        lib = av.library_versions.get("libavcodec")
        out["libavcodec"] = ".".join(map(str, lib)) if lib else "unknown"
        out["ffmpeg"] = str(getattr(av, "ffmpeg_version_info", "unknown"))
    except ImportError:
        pass
    return out


def machine() -> dict[str, Any]:
    from sim.trigger_bench import host_description

    try:
        board = Path("/proc/device-tree/model").read_text().strip("\x00\n ")
    except OSError:
        board = ""
    return {
        "host": host_description(),
        "platform": platform.platform(),
        "board": board,
        "is_pi": "Raspberry Pi" in board,
    }


def run(names: list[str], args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Run ``names`` in the suite's order; progress on stderr, results returned."""
    profiles = out / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    mods = benchmarks()
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    figures: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    for name in MODULES:
        if name not in names:
            continue
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        result = mods[name].run(args, profiles)
        result.seconds = time.perf_counter() - t
        for f in result.figures:
            print(f"bench:   {_line(f)}", file=sys.stderr, flush=True)
        figures += [f.as_dict() for f in result.figures]
        details[name] = {"seconds": round(result.seconds, 1), **result.details}
    return {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["python -m sim.bench", *sys.argv[1:]]),
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": machine(),
        "versions": versions(),
        "benchmarks": [n for n in MODULES if n in names],
        "figures": figures,
        "details": details,
    }


def _line(f: Figure) -> str:
    goal = f" (goal {f.goal}: {f.status})" if f.goal else ""
    return f"{f.key} = {f.median:.4g} {f.unit}{goal}"


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def markdown(results: dict[str, Any] | None, pi: dict[str, Any] | None) -> str:
    """``results.md``: the table, what limits each missed goal, and the Pi's section."""
    lines = ["# Bench results", ""]
    if results is None:
        lines += ["No run on a development machine has written `bench/results.json` here yet."]
    else:
        lines += _section(results)
    lines += ["", "## Raspberry Pi", ""]
    if pi is None:
        lines += [
            "Not yet run on a Raspberry Pi. Run `make bench` on the board: it writes",
            f"`bench/{PI_RESULTS}`, and this section shows it from then on.",
        ]
    else:
        lines += _section(pi)
    return "\n".join(lines) + "\n"


def _section(results: dict[str, Any]) -> list[str]:
    m, v = results["machine"], results["versions"]
    soft = ", ".join(f"{k} {v[k]}" for k in v)
    lines = [
        f"`{results['command']}` on {m['host']}, {results['date']}, {results['seconds']:.0f} s.",
        "",
        f"Software: {soft}.",
        "",
        "Each figure is the median of its runs (min-max beside it), measured against",
        "its baseline side by side in the same process; goals are reported, never asserted.",
        "",
        "| figure | median | min-max | runs | against | goal | |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in results["figures"]:
        unit = "" if f["unit"] == "x" else f" {f['unit']}"
        lines.append(
            f"| {f['label']} | {_fmt(f['median'])}{unit} | {_fmt(f['min'])}-{_fmt(f['max'])} "
            f"| {f['runs']} | {f['baseline']} | {f['goal'] or '-'} | {f['status']} |"
        )
    notes = [f for f in results["figures"] if f["limit"] or f["notes"]]
    if notes:
        lines += ["", "### What the figures say", ""]
        for f in notes:
            text = " ".join(t for t in (f["notes"], f["limit"]) if t)
            lines.append(f"- **{f['label']}** ({f['status']}): {text}")
    return lines


def write(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``results.json`` (``results-pi.json`` on a Pi) and ``results.md``.

    ``results.md`` always shows both: this machine's results and the Pi's,
    whichever of them this run did not replace coming from its JSON file.
    """
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / (PI_RESULTS if results["machine"]["is_pi"] else "results.json")
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    found = {}
    for name in ("results.json", PI_RESULTS):
        path = out / name
        found[name] = json.loads(path.read_text()) if path.exists() else None
    md = out / "results.md"
    md.write_text(markdown(found["results.json"], found[PI_RESULTS]))
    return json_path, md
