"""``make bench``, ``make bench-check`` and ``make bench-long``.

    python -m sim.bench [NAME ...] [--quick] [--out DIR] [size options]
    python -m sim.bench check [--results F] [--baseline F] [--tolerance 0.10]
    python -m sim.bench long [--kills N] [--trigger-trials N] [--soak-hours H]

With no NAME the whole suite runs and writes ``DIR/results.json`` and
``DIR/results.md`` (DIR: ``bench``). Named benchmarks run alone and print their
table; they write the files only with ``--out``, so a partial run never
replaces the full results that ``bench-check`` reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sim.bench import suite
from sim.bench.figure import regressions

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


def _suite(argv: list[str]) -> int:
    mods = suite.benchmarks()
    parser = argparse.ArgumentParser(
        prog="python -m sim.bench",
        description="The bench suite: each figure a ratio against a baseline run side by side.",
        epilog="Also: `python -m sim.bench check` and `python -m sim.bench long` (see --help).",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"run alone: {', '.join(suite.MODULES)} (default: all, written to --out)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="every benchmark at its smallest size (a smoke run)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help=f"where results go (default: {BENCH_DIR} for all)"
    )
    for name, mod in mods.items():
        mod.add_arguments(parser.add_argument_group(f"{name}: {mod.SUMMARY}"))
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in mods]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}: expected one of {', '.join(mods)}")
    if args.quick:
        for mod in mods.values():
            for key, value in mod.QUICK.items():
                setattr(args, key, value)
    names = args.names or list(suite.MODULES)
    out = args.out or (BENCH_DIR if not args.names else None)
    results = suite.run(names, args, out or BENCH_DIR)
    if out is None:
        print(suite.markdown(results, None).split("## Raspberry Pi")[0].rstrip())
        return 0
    json_path, md = suite.write(results, out)
    print(f"bench: wrote {json_path} and {md}", file=sys.stderr)
    return 0


def _check(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sim.bench check",
        description="Flag every figure more than the tolerance worse than the baseline.",
    )
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "results.json")
    parser.add_argument("--baseline", type=Path, default=BENCH_DIR / "baseline.json")
    parser.add_argument("--tolerance", type=float, default=0.10, help="default: 0.10 (10%%)")
    args = parser.parse_args(argv)
    loaded = []
    for path in (args.results, args.baseline):
        try:
            loaded.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            print(f"bench check: {path}: {exc}", file=sys.stderr)
            return 2
    worse = regressions(*loaded, tolerance=args.tolerance)
    for line in worse:
        print(f"WORSE {line}")
    n = len(loaded[0]["figures"])
    print(
        f"bench check: {n} figures, {len(worse)} worse than {args.baseline} by > "
        f"{100 * args.tolerance:g}%"
    )
    return 1 if worse else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check"]:
        return _check(argv[1:])
    if argv[:1] == ["long"]:
        from sim.bench.long import main as long_main

        return long_main(argv[1:])
    return _suite(argv)


if __name__ == "__main__":
    sys.exit(main())
