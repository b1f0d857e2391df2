"""The ``bodycam`` command line (SPEC section 10).

A thin shell over the firmware and the simulated world: bad input becomes one
line on stderr and exit code 2, a failed check or expectation exit code 1.
The scenario runner lives in ``sim`` and is imported only by the commands that
simulate, so the firmware core stays free of it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from camera import __version__
from camera.errors import BodycamError, HalError, HardwareMissing, InputError
from camera.paths import find_recordings, is_recording, shown
from hal.storage.lock import StorageBusy, StorageLockError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
#: A run ended by a signal exits 128 + its number, as a shell reports it.
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class UsageError(InputError):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit code 2 through our path."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def default_scenario() -> Path:
    """``scenarios/patrol.toml`` of this checkout (or of the working directory)."""
    for root in (Path(__file__).resolve().parents[1], Path.cwd()):
        candidate = root / "scenarios" / "patrol.toml"
        if candidate.is_file():
            return candidate
    raise UsageError("no default scenario: scenarios/patrol.toml not found; pass --scenario")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _ms_list(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected milliseconds like 10,20,30, got {text!r}"
        ) from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected milliseconds >= 0, got {text!r}")
    return values


def _resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT like 1280x720, got {text!r}"
        ) from None
    return w, h


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bodycam", description="Body-worn camera firmware, on a Pi or simulated.")
    p.add_argument("--version", action="version", version=f"bodycam {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the firmware (simulated scenario by default)")
    run.add_argument("--config", help="device config TOML (default: built-in defaults)")
    run.add_argument("--scenario", help="scenario TOML (default: scenarios/patrol.toml)")
    run.add_argument("--out", help="storage directory (default: the config's, ./recordings)")
    run.add_argument("--board", choices=["sim", "pi"], help="board (default: the config's)")
    run.add_argument("--realtime", action="store_true", help="pace simulated time to the wall")
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.add_argument(
        "--console", action="store_true", help="serve the serial console on a pty (sim)"
    )

    verify = sub.add_parser(
        "verify", help="check recordings: signatures, chain, audit log, hashes, decoding"
    )
    verify.add_argument("paths", nargs="+", metavar="PATH")
    verify.add_argument(
        "--key",
        metavar="PUB",
        action="append",
        help="a device public key (PEM) you trust; repeat for several (default: the "
        "*.pub.pem beside the recordings, not independently trusted)",
    )
    verify.add_argument("--json", action="store_true")

    inspect = sub.add_parser("inspect", help="list recordings in human terms")
    inspect.add_argument("paths", nargs="+", metavar="PATH")
    inspect.add_argument("--json", action="store_true")

    bench = sub.add_parser("bench", help="benchmarks on the running firmware")
    bsub = bench.add_subparsers(dest="bench_command", required=True, parser_class=_Parser)
    trig = bsub.add_parser("trigger", help="holster-trigger timing, in real time under load")
    trig.add_argument("--trials", type=_positive_int, default=50)
    trig.add_argument("--bounce-ms", type=float, default=8.0)
    trig.add_argument("--debounce-ms", type=_ms_list, help="one value or a list: 10,20,30")
    trig.add_argument("--resolution", type=_resolution, default=(1280, 720), help="WxH")
    trig.add_argument("--config", help="device config TOML")
    trig.add_argument("--board", choices=["sim", "pi"], default="sim")
    trig.add_argument("--drive-pin", type=int, help="Pi: BCM output wired to the holster input")
    trig.add_argument(
        "--warmup", type=float, help="seconds before the first trial (default: pre_event)"
    )
    trig.add_argument(
        "--console",
        metavar="PORT",
        help="take timestamps from the console's EVT lines: 'pty' (sim) or the bench end "
        "of a UART wired to the device's console",
    )
    trig.add_argument("--out", help="directory for trials.csv and latency.png")
    trig.add_argument("--json", action="store_true")

    export = sub.add_parser(
        "export", help="one recording as one MP4 for review or court, verified first"
    )
    export.add_argument("recording", metavar="RECORDING", help="one recording directory")
    export.add_argument("--out", required=True, metavar="FILE.mp4", help="the MP4 to write")
    export.add_argument("--force", action="store_true", help="replace an existing FILE.mp4")

    recover = sub.add_parser("recover", help="repair recordings interrupted by power loss")
    recover.add_argument("paths", nargs="+", metavar="PATH")

    provision = sub.add_parser("provision", help="create the device key (SPEC 12)")
    provision.add_argument("--config", help="device config TOML (default: built-in defaults)")
    provision.add_argument(
        "--key-file", help="private key path (default: the config's device.key_file)"
    )
    provision.add_argument("--force", action="store_true", help="replace an existing key")

    doctor = sub.add_parser(
        "doctor", help="check a board: pins, camera, encoder, storage, serial ports, clock"
    )
    doctor.add_argument("--config", help="device config TOML (default: built-in defaults)")
    doctor.add_argument("--board", choices=["sim", "pi"], help="board (default: the config's)")
    doctor.add_argument("--json", action="store_true", help="print one JSON object")

    scenario = sub.add_parser("scenario", help="scenario files")
    ssub = scenario.add_subparsers(dest="scenario_command", required=True, parser_class=_Parser)
    check = ssub.add_parser("check", help="validate a scenario file")
    check.add_argument("file")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        handler = {
            "run": cmd_run,
            "verify": cmd_verify,
            "inspect": cmd_inspect,
            "export": cmd_export,
            "recover": cmd_recover,
            "bench": cmd_bench,
            "scenario": cmd_scenario,
            "provision": cmd_provision,
            "doctor": cmd_doctor,
        }[args.command]
        return handler(args)
    except (InputError, StorageLockError, HardwareMissing) as exc:
        print(f"bodycam: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (BodycamError, HalError) as exc:
        print(f"bodycam: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


# -- run ---------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from camera.config import load_config

    config = load_config(args.config) if args.config else None
    board = args.board or (config.device.board if config else "sim")
    if board != "sim":
        return _run_board(args, config or load_config(None), board)

    from sim.runner import StopRequest, run_scenario
    from sim.scenario import load_scenario

    scenario = load_scenario(args.scenario or default_scenario())
    out = Path(args.out or (config.device.storage if config else "recordings"))
    progress = None
    if not args.json and sys.stderr.isatty():
        from camera.summary import ProgressBar

        progress = ProgressBar(scenario.name)

    def announce(path: str) -> None:
        print(f"bodycam: serial console on {path}", file=sys.stderr, flush=True)

    # Ctrl-C and SIGTERM end the run between two clock events, not inside one:
    # the open recording is closed (end_of_run) and the summary so far printed.
    stop = StopRequest()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, lambda signum, _frame: stop(signum)) for s in EXIT_SIGNAL}
    try:
        result = run_scenario(
            scenario,
            out,
            config_path=args.config,
            realtime=args.realtime,
            progress=progress,
            console=announce if (args.console or (config and config.console.enabled)) else None,
            stop=stop,
        )
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if progress is not None:
            progress.close()
    _print_summary(result.summary(), args.json)
    if result.interrupted is not None:
        return EXIT_SIGNAL[signal.Signals(result.interrupted)]
    return EXIT_OK if result.ok else EXIT_FAILED


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    """One run report, whatever the board: one JSON object, or the table for people."""
    from camera.summary import print_summary

    if as_json:
        print(json.dumps(summary), flush=True)
    else:
        print_summary(summary)
        sys.stdout.flush()


def _run_board(args: argparse.Namespace, config: Any, board: str) -> int:
    """The firmware on real hardware, until SIGTERM or Ctrl-C."""
    from camera.live import run_live

    if args.scenario:
        raise UsageError(
            f"run: --scenario needs --board sim (a scenario is simulated; board {board})"
        )
    for flag, why in (
        ("console", "the console of a real board is [console] in the config (a UART)"),
        ("realtime", "a real board always runs in real time"),
    ):
        if getattr(args, flag):
            print(
                f"bodycam: note: --{flag} has no effect with --board {board}: {why}",
                file=sys.stderr,
            )
    report = run_live(config, board=board, out=args.out)
    _print_summary(report.summary(), args.json)
    if report.interrupted is not None:
        return EXIT_SIGNAL[signal.Signals[report.interrupted]]
    return EXIT_OK


# -- verify / inspect ----------------------------------------------------------
def _skip_notes(skipped: list[tuple[Path, str]], stream: Any) -> None:
    for path, why in skipped:
        print(f"SKIP  {path}: {why}", file=stream)


def _no_recordings(paths: list[str]) -> UsageError:
    return UsageError(
        f"{' '.join(paths)}: no recordings found (expected a recording directory or a "
        "storage directory holding them)"
    )


def cmd_verify(args: argparse.Namespace) -> int:
    from camera.verify_cmd import run_verify

    return run_verify(args.paths, keys=args.key, as_json=args.json)


def cmd_inspect(args: argparse.Namespace) -> int:
    from camera.summary import describe_recording

    found = find_recordings(args.paths)
    # With --json, stdout is the JSON list alone; the notes go to stderr.
    _skip_notes(found.skipped, sys.stderr if args.json or not found.recordings else sys.stdout)
    if not found.recordings:
        raise _no_recordings(args.paths)
    items = [describe_recording(d) for d in found.recordings]
    if args.json:
        print(json.dumps(items))
        return EXIT_OK
    for item in items:
        print(item["text"])
    return EXIT_OK


# -- export --------------------------------------------------------------------
def _one_recording(given: str) -> Path:
    """RECORDING as one recording directory; a storage directory or a file is a usage error."""
    path = shown(Path(given))
    found = find_recordings([given])
    if found.recordings == [path]:
        return path
    if found.recordings:
        raise UsageError(
            f"{given}: a storage directory holding {len(found.recordings)} recording(s); "
            "export takes one recording directory"
        )
    why = next((why for p, why in found.skipped if p == path), "no manifest, journal or segments")
    raise UsageError(f"{given}: {why}; expected one recording directory")


def cmd_export(args: argparse.Namespace) -> int:
    """Verify, then stream-copy: an export for court must not launder a damaged recording."""
    from camera.evidence.verify import verify_recording
    from camera.export import check_output, export_recording

    directory = _one_recording(args.recording)
    out = Path(args.out)
    check_output(out, args.force)  # before the verify, which reads every segment
    report = verify_recording(directory)
    if not report.ok:
        print(f"bodycam: {directory}: does not verify; not exported:", file=sys.stderr)
        for problem in report.problems:
            print(f"      - {problem}", file=sys.stderr)
        return EXIT_FAILED
    result = export_recording(directory, out, force=args.force)
    print(f"exported {directory} ({report.frames} frames verified)")
    print(f"  file:    {result.path}")
    print(f"  sha256:  {result.sha256}")
    print(f"  frames:  {result.frames}")
    print(f"  sidecar: {result.sidecar}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from camera.config import load_config
    from sim.bench_report import as_json, table, write_csv, write_plot
    from sim.trigger_bench import bench_trigger

    # Validate the config and the resolution up front: one line, exit 2.
    load_config(args.config, {"video": {"width": args.resolution[0], "height": args.resolution[1]}})
    progress = None
    if not args.json and sys.stderr.isatty():

        def progress(debounce: float, k: int, n: int) -> None:
            done = round(30 * k / n)
            sys.stderr.write(
                f"\rdebounce {debounce:g} ms [{'#' * done}{'.' * (30 - done)}] {k}/{n}"
            )
            sys.stderr.flush()
            if k == n:
                sys.stderr.write("\n")

    results = bench_trigger(
        trials=args.trials,
        bounce_ms=args.bounce_ms,
        debounce_ms=args.debounce_ms,
        resolution=args.resolution,
        config_path=args.config,
        board=args.board,
        drive_pin=args.drive_pin,
        warmup=args.warmup,
        progress=progress,
        console=args.console,
    )
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_csv(results, out / "trials.csv")
        write_plot(results, out / "latency.png")
    print(json.dumps(as_json(results)) if args.json else table(results))
    bad = sum(r.false_triggers + r.missed_triggers for r in results)
    return EXIT_OK if bad == 0 else EXIT_FAILED


def _recover_target(given: str) -> tuple[Path, str | None]:
    """(storage directory, recording name or None for all of them) for one PATH.

    Resolved first: ``.`` inside a recording has no name of its own, and a
    symlink's parent is not the storage directory whose lock matters.
    """
    path = Path(given)
    if not path.exists():
        raise UsageError(f"{given}: no such file or directory")
    if not path.is_dir():
        raise UsageError(f"{given}: expected a recording or storage directory")
    path = path.resolve()
    try:
        names = os.listdir(path)
    except OSError as exc:
        raise UsageError(f"{given}: cannot be listed: {exc.strerror or exc}") from None
    return (path.parent, path.name) if is_recording(names) else (path, None)


def _recovery_note(recovery: Any) -> str:
    """What recovery did, in a few words for the FIXED line (details: the manifest)."""
    if not isinstance(recovery, dict):
        return ""
    parts = []
    if skipped := recovery.get("skipped_journal_lines"):
        parts.append(f"journal lines skipped: {', '.join(map(str, skipped))}")
    if tails := [t for t in recovery.get("tails", []) if t.get("bytes")]:
        kept = sum(t["bytes"] for t in tails)
        parts.append(f"{kept} bytes past the last sync kept in {len(tails)} tail file(s)")
    if short := recovery.get("short_segments"):
        parts.append(f"{len(short)} segment(s) shorter than journaled")
    return "; " + "; ".join(parts) if parts else ""


def cmd_recover(args: argparse.Namespace) -> int:
    from camera.recovery import RecoveryError, interrupted, recover_recording
    from hal.storage.local import LocalStorage

    failed = done = 0
    for given in args.paths:
        root, single = _recover_target(given)
        storage = LocalStorage(root)
        try:
            storage.lock()  # held while recovering: a firmware booting now is refused
        except StorageBusy:
            raise StorageBusy(
                f"recover: {root}: a running firmware owns this storage directory (it holds "
                "its lock); stop it first, or let it recover its recordings at boot"
            ) from None
        try:
            todo = [single] if single else interrupted(storage)
            for name in todo:
                if single and name not in interrupted(storage):
                    print(f"OK    {storage.path(name)}: complete, nothing to recover")
                    continue
                try:
                    m = recover_recording(storage, name)
                except (RecoveryError, OSError, KeyError, TypeError, ValueError) as exc:
                    failed += 1
                    print(f"FAIL  {storage.path(name)}: {exc}")
                    continue
                done += 1
                print(
                    f"FIXED {storage.path(name)}: {m['frames']} frames in "
                    f"{len(m['segments'])} segments, stop {m['stop']['reason']} at "
                    f"{m['stop']['time']:.3f} s{_recovery_note(m.get('recovery'))}"
                )
        finally:
            storage.unlock()
    if done == failed == 0:
        print("nothing to recover")
    return EXIT_OK if failed == 0 else EXIT_FAILED


def cmd_provision(args: argparse.Namespace) -> int:
    """Create the device key, export its public half beside the recordings, audit it.

    Everything that could refuse is checked before the key is written, so a
    refusal leaves the device as it was.
    """
    from camera.config import load_config
    from camera.evidence.audit import AuditLog
    from camera.evidence.keys import (
        DeviceKeyError,
        export_public_key,
        generate_key,
        public_key_path,
        save_key,
    )
    from hal.clock.monotonic import MonotonicClock
    from hal.storage.local import LocalStorage

    config = load_config(args.config)
    key_path = Path(args.key_file or config.device.key_file)
    storage = LocalStorage(config.device.storage)
    public = public_key_path(storage.root, config.device.id)
    if not args.force:
        if key_path.exists():
            raise DeviceKeyError(
                f"{key_path}: a device key already exists (recordings it signed verify only "
                "with it); pass --force to replace it"
            )
        if public.exists():
            raise DeviceKeyError(
                f"{public}: this storage already holds the public key of another device key "
                "(its recordings were signed by it); pass --force to provision a new key "
                "(the old public key is kept beside it)"
            )
    try:
        storage.makedirs("")
    except OSError as exc:
        raise DeviceKeyError(f"{storage.root}: cannot create: {exc.strerror or exc}") from None
    if not os.access(storage.root, os.W_OK):
        raise DeviceKeyError(f"{storage.root}: storage directory is not writable")
    storage.lock()  # a running firmware appends to the same audit log
    try:
        key = generate_key()
        save_key(key, key_path, force=args.force)
        public, kept = export_public_key(storage, config.device.id, key, replace=args.force)
        utc = MonotonicClock().wall(0.0)  # provisioning runs outside the firmware's clock
        fields: dict[str, Any] = {"key_id": key.key_id, "public_key": public.name}
        if kept is not None:
            fields["replaced_public_key"] = kept.name
        with AuditLog(storage, key) as audit:
            audit.append("key_provisioned", None, utc, **fields)
            audit.checkpoint(None, utc, "provision")
    finally:
        storage.unlock()
    print(f"device key {key.key_id}")
    print(f"  private key: {key_path} (mode 0600; keep it off the storage card)")
    print(f"  public key:  {public}")
    if kept is not None:
        print(f"  previous public key kept as {kept} (recordings it signed verify with it)")
    print(f"  audit log:   {audit.path}")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    """One line per check as it completes (a camera check takes seconds on a Pi), then a verdict."""
    from camera.config import load_config
    from camera.doctor import open_board, run_doctor

    config = load_config(args.config)
    board = open_board(config, args.board, source=args.config or "<defaults>")
    try:
        report = run_doctor(
            config,
            board,
            on_result=None if args.json else lambda r: print(r.line(), flush=True),
        )
    finally:
        board.close()
    print(report.to_json() if args.json else report.summary_line())
    return report.exit_code


def cmd_scenario(args: argparse.Namespace) -> int:
    from sim.scenario import load_scenario

    scenario = load_scenario(args.file)
    scenario.device_config()
    print(
        f"{args.file}: ok: {scenario.name!r}, {scenario.duration:g} s, "
        f"{len(scenario.events)} events, {len(scenario.faults)} faults"
    )
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
