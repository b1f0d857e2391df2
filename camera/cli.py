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
#: stdout closed by its reader (``| head``): what a shell reports for SIGPIPE.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


class UsageError(InputError):
    """A command line argparse refused; ``prog`` is the (sub)command whose parser refused it."""

    def __init__(self, message: str, prog: str | None = None) -> None:
        super().__init__(message)
        self.prog = prog


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help, with the command list measured at the indent it is shown at.

    argparse measures subcommand names two columns short, so ``provision``
    wrapped onto a line of its own in ``bodycam --help``.
    """

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        for sub in self._iter_indented_subactions(action):
            width = len(self._format_action_invocation(sub)) + self._current_indent
            self._action_max_length = max(self._action_max_length, width)


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit code 2 through our path.

    The message is raised, not printed: :func:`main` alone puts the
    ``bodycam <command>:`` prefix in front of every error, argparse's or ours.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, prog=self.prog)

    def _print_message(self, message: str, file: Any = None) -> None:
        """As argparse's, but a closed stdout is not swallowed: ``--help | head`` exits 141 too."""
        if message:
            (file or sys.stderr).write(message)


def default_scenario() -> Path:
    """``scenarios/patrol.toml`` of this checkout (or of the working directory)."""
    for root in (Path(__file__).resolve().parents[1], Path.cwd()):
        candidate = root / "scenarios" / "patrol.toml"
        if candidate.is_file():
            return candidate
    raise UsageError("no default scenario: scenarios/patrol.toml not found; pass --scenario")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
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


#: The subcommand groups, and the attribute naming which of their commands was given.
GROUPS = {
    "bench": "bench_command",
    "scenario": "scenario_command",
    "config": "config_command",
    "server": "server_command",
}
BOARDS = ["sim", "pi"]
EPILOG = """\
exit codes: 0 success; 1 a check or expectation failed; 2 bad input (usage,
config, scenario); 130/143 a run ended by SIGINT/SIGTERM; 141 the reader of
its output went away (a closed pipe, as after `| head`).
'bodycam COMMAND --help' says what each command takes."""


def _command(
    sub: argparse._SubParsersAction[_Parser], name: str, what: str
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` opens with the same line the command list shows."""
    return sub.add_parser(name, help=what, description=what[:1].upper() + what[1:] + ".")


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="F", help="device config TOML (default: none, the built-in defaults)"
    )


def _board_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--board",
        choices=BOARDS,
        metavar="sim|pi",
        help="the board (default: the config's device.board; sim in the built-in defaults)",
    )


def _json_option(parser: argparse.ArgumentParser, what: str, otherwise: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"{what} (default: {otherwise})")


def build_parser() -> argparse.ArgumentParser:
    """Every command and option; every option's help says its default (tests check it)."""
    p = _Parser(
        prog="bodycam",
        description="Body-worn camera firmware, on a Raspberry Pi or simulated.",
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"bodycam {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = _command(sub, "run", "run the firmware (simulated scenario by default)")
    _config_option(run)
    run.add_argument(
        "--scenario",
        metavar="F",
        help="scenario TOML to simulate (default: scenarios/patrol.toml)",
    )
    run.add_argument(
        "--out",
        metavar="DIR",
        help="storage directory (default: the config's device.storage, ./recordings)",
    )
    _board_option(run)
    run.add_argument(
        "--realtime",
        action="store_true",
        help="pace simulated time to the wall clock (default: as fast as the host computes)",
    )
    _json_option(run, "print the summary as one JSON object", "a table for people")
    run.add_argument(
        "--console",
        action="store_true",
        help="serve the serial console on a pty, sim only (default: only if the config's "
        "[console] is enabled)",
    )
    run.add_argument(
        "--dock",
        metavar="DIR",
        help="dock at the end of the scenario (or at its [dock]): offload every closed "
        "recording to a local evidence store in DIR, sim only (default: only the scenario's "
        "[dock], if it has one)",
    )

    verify = _command(
        sub, "verify", "check recordings: signatures, chain, audit log, hashes, decoding"
    )
    verify.add_argument(
        "paths", nargs="+", metavar="PATH", help="a recording, or a storage directory of them"
    )
    verify.add_argument(
        "--key",
        metavar="PUB",
        action="append",
        help="a device public key (PEM) you trust; repeat for several (default: the "
        "*.pub.pem beside the recordings, not independently trusted)",
    )
    _json_option(verify, "print one JSON object", "one line per recording and finding")

    inspect = _command(sub, "inspect", "list recordings in human terms")
    inspect.add_argument(
        "paths", nargs="+", metavar="PATH", help="a recording, or a storage directory of them"
    )
    _json_option(inspect, "print a JSON list, one object per recording", "text for people")

    export = _command(sub, "export", "one recording as one MP4 for review or court, verified first")
    export.add_argument("recording", metavar="RECORDING", help="one recording directory")
    export.add_argument(
        "--out", required=True, metavar="F.mp4", help="the MP4 to write (required, no default)"
    )
    export.add_argument(
        "--force", action="store_true", help="replace an existing F.mp4 (default: refuse)"
    )

    recover = _command(sub, "recover", "repair recordings interrupted by power loss")
    recover.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="an interrupted recording, or a storage directory (each interrupted one in it)",
    )

    offload = _command(
        sub, "offload", "upload closed recordings to the evidence server; delete on a receipt"
    )
    offload.add_argument("storage", metavar="STORAGE", help="the storage directory to offload")
    offload.add_argument(
        "--server", metavar="URL", help="the evidence server (default: the config's offload.server)"
    )
    offload.add_argument(
        "--server-key",
        metavar="PEM",
        help="the server's public key, pinned: receipts must be signed by it (default: the "
        "config's offload.server_key)",
    )
    _config_option(offload)
    offload.add_argument(
        "--keep",
        action="store_true",
        help="keep recordings on the camera after upload (default: the config's "
        "offload.delete_after_upload, true: delete once a checked receipt is kept)",
    )

    review = _command(
        sub, "review", "watch a storage directory's recordings in a browser, with their proof"
    )
    review.add_argument("storage", metavar="STORAGE", help="a camera's storage directory")
    review.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default="127.0.0.1:8090",
        help="loopback address to serve on (no login: loopback only); port 0 picks a free one "
        "(default: %(default)s)",
    )

    provision = _command(sub, "provision", "create the device key (SPEC 12)")
    _config_option(provision)
    provision.add_argument(
        "--key-file",
        metavar="K",
        help="private key path (default: the config's device.key_file, /etc/bodycam/device.key)",
    )
    provision.add_argument(
        "--force",
        action="store_true",
        help="replace an existing key (default: refuse if one exists)",
    )

    doctor = _command(
        sub,
        "doctor",
        "check a board: pins, camera, encoder, microphone, storage, serial ports, clock",
    )
    _config_option(doctor)
    _board_option(doctor)
    _json_option(doctor, "print one JSON object", "one line per check")

    scenario = _command(sub, "scenario", "scenario files")
    ssub = scenario.add_subparsers(dest="scenario_command", metavar="COMMAND", parser_class=_Parser)
    check = _command(ssub, "check", "validate a scenario file")
    check.add_argument("file", metavar="F", help="the scenario TOML")

    config = _command(sub, "config", "device config files")
    csub = config.add_subparsers(dest="config_command", metavar="COMMAND", parser_class=_Parser)
    ccheck = _command(csub, "check", "validate a device config file")
    ccheck.add_argument("file", metavar="F", help="the device config TOML")
    show = _command(csub, "show", "print the effective config, every default filled in, as TOML")
    _config_option(show)

    bench = _command(sub, "bench", "benchmarks on the running firmware")
    bsub = bench.add_subparsers(dest="bench_command", metavar="COMMAND", parser_class=_Parser)
    trig = _command(bsub, "trigger", "holster-trigger timing, in real time under load")
    trig.add_argument(
        "--trials",
        type=_positive_int,
        default=50,
        metavar="N",
        help="trials per debounce value (default: %(default)s)",
    )
    trig.add_argument(
        "--bounce-ms",
        type=float,
        default=8.0,
        metavar="MS",
        help="contact bounce after each edge, in ms (default: %(default)s)",
    )
    trig.add_argument(
        "--debounce-ms",
        type=_ms_list,
        metavar="MS[,MS...]",
        help="one debounce value or a list, e.g. 10,20,30 (default: the config's "
        "inputs.holster.debounce_ms)",
    )
    trig.add_argument(
        "--resolution",
        type=_resolution,
        default=(1280, 720),
        metavar="WxH",
        help="frame size to encode (default: 1280x720)",
    )
    _config_option(trig)
    trig.add_argument(
        "--board", choices=BOARDS, default="sim", metavar="sim|pi", help="the board (default: sim)"
    )
    trig.add_argument(
        "--drive-pin",
        type=int,
        metavar="PIN",
        help="Pi: BCM output wired to the holster input (default: none; sim drives the pin itself)",
    )
    trig.add_argument(
        "--warmup",
        type=float,
        metavar="S",
        help="seconds before the first trial (default: the config's buffer.pre_event)",
    )
    trig.add_argument(
        "--console",
        metavar="PORT",
        help="take timestamps from the console's EVT lines: 'pty' (sim) or the bench end "
        "of a UART wired to the device's console (default: none, from the firmware itself)",
    )
    trig.add_argument(
        "--out",
        metavar="DIR",
        help="directory for trials.csv and latency.png (default: none, no files written)",
    )
    _json_option(trig, "print one JSON object", "a table")
    _server_commands(sub)
    for parser in (scenario, config, bench):  # a group alone prints its own help
        parser.set_defaults(group_parser=parser)
    return p


def _server_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    """``bodycam server``: the evidence store (issue 16); it serves, and it has subcommands."""
    server = _command(
        sub, "server", "the evidence store: serve, enroll cameras, retention and holds, audit"
    )
    server.add_argument(
        "--data",
        metavar="DIR",
        help="the server's data directory, created on first start (default: none; without it "
        "the help is shown)",
    )
    server.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default="127.0.0.1:8080",
        help="address to serve on; port 0 picks a free one (default: %(default)s)",
    )
    server.add_argument(
        "--config",
        metavar="F",
        help="server config TOML (default: DIR/server.toml if present, else the embedded "
        "SQLite and file store)",
    )
    ssub = server.add_subparsers(dest="server_command", metavar="COMMAND", parser_class=_Parser)
    enroll = _command(ssub, "enroll", "enroll a camera's public key, so its uploads are accepted")
    enroll.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="the server's data directory (required, no default)",
    )
    enroll.add_argument(
        "pem", metavar="DEVICE.pub.pem", help="the public key the camera exported (PEM)"
    )
    enroll.add_argument(
        "--device",
        metavar="ID",
        help="the device id (default: the file name before .pub.pem)",
    )
    enroll.add_argument(
        "--replace",
        action="store_true",
        help="replace the device's enrolled key, audited (default: refuse a different key)",
    )
    admin = _command(
        ssub, "admin", "create a review page administrator, or change their password (audited)"
    )
    admin.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="the server's data directory (required, no default)",
    )
    admin.add_argument(
        "--user", required=True, metavar="NAME", help="the login name (required, no default)"
    )
    audit = _command(ssub, "audit", "verify the server's hash-chained audit log")
    audit.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="the server's data directory (required, no default)",
    )
    _retention_commands(ssub)
    server.set_defaults(server_parser=server)


def _retention_commands(ssub: argparse._SubParsersAction[_Parser]) -> None:
    """``bodycam server category|hold|release|purge|restore|list|export`` (issue 16, item 4)."""

    def command(name: str, what: str, recording: str | None) -> argparse.ArgumentParser:
        parser = _command(ssub, name, what)
        parser.add_argument(
            "--data",
            required=True,
            metavar="DIR",
            help="the server's data directory (required, no default)",
        )
        if recording == "required":
            parser.add_argument("recording", metavar="RECORDING", help="the recording's id")
        elif recording == "optional":
            parser.add_argument(
                "recording",
                metavar="RECORDING",
                nargs="?",
                help="queue this recording now, an early purge (default: none, the sweep)",
            )
        return parser

    def who(parser: argparse.ArgumentParser, reason: bool = True) -> None:
        if reason:
            parser.add_argument(
                "--reason",
                required=True,
                metavar="TEXT",
                help="why, for the audit log (required, no default)",
            )
        parser.add_argument(
            "--actor",
            metavar="NAME",
            help="who, for the audit log (default: cli:<your login name>)",
        )

    def case(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--case", required=True, metavar="ID", help="the case id (required, no default)"
        )

    category = command("category", "assign a recording's retention category (audited)", "required")
    category.add_argument(
        "category", metavar="CATEGORY", help="a category of server.toml [retention.categories]"
    )
    who(category)
    hold = command(
        "hold", "place a legal hold on a recording: never deleted while held", "required"
    )
    case(hold)
    who(hold)
    release = command("release", "release a case's legal hold on a recording", "required")
    case(release)
    who(release)
    purge = command(
        "purge",
        "run the retention sweep: queue what expired, purge what was queued 7 days ago",
        "optional",
    )
    purge.add_argument(
        "--reason",
        metavar="TEXT",
        help="why, for an early purge of RECORDING (default: none; required with RECORDING)",
    )
    purge.add_argument(
        "--actor",
        metavar="NAME",
        help="who, for the audit log (default: cli:<your login name>)",
    )
    purge.add_argument(
        "--now",
        metavar="ISO",
        help="sweep as if it were this UTC time, e.g. 2026-03-01T00:00:00Z (default: the clock)",
    )
    restore = command("restore", "take a recording off the deletion queue", "required")
    who(restore)
    listing = command("list", "list recordings: status, category, holds, retention", None)
    _json_option(listing, "print a JSON array", "a table")
    export = command("export", "copy a recording out of the store (audited access)", "required")
    export.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="write DIR/<recording>/ (required, no default)",
    )
    who(export)


def _command_prog(args: argparse.Namespace) -> str:
    """``bodycam run``, ``bodycam bench trigger``: the name every error line starts with."""
    words = ["bodycam", args.command]
    if args.command in GROUPS:
        words.append(getattr(args, GROUPS[args.command]))
    return " ".join(w for w in words if w)


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Arguments, with unknown ones blamed on the command that was given, not on bodycam."""
    args, extra = parser.parse_known_args(argv)
    args.prog = _command_prog(args)
    if extra:
        shown = " ".join(a if a.isprintable() else repr(a) for a in extra)  # stays one line
        raise UsageError(f"unrecognized arguments: {shown}", prog=args.prog)
    return args


def main(argv: list[str] | None = None) -> int:
    """The ``bodycam`` console script; returns the exit code.

    Every error is one line, ``bodycam <command>: <message>`` (``bodycam:
    <message>`` before a command is known), printed here and nowhere else.
    A closed stdout (``bodycam verify ... | head``) ends the command quietly
    with 141, what a shell reports for a process SIGPIPE ended: the reader
    went away, so the output is incomplete, which is not success.
    """
    try:
        code = _main(sys.argv[1:] if argv is None else list(argv))
        sys.stdout.flush()  # here, not at exit: a broken pipe must surface inside the try
        return code
    except BrokenPipeError:
        _stdout_to_devnull()
        return EXIT_BROKEN_PIPE


def _stdout_to_devnull() -> None:
    """Python's advice for a closed stdout: what is still buffered goes nowhere, quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (a test's capture)
        pass


def _main(argv: list[str]) -> int:
    parser = build_parser()
    prog = "bodycam"
    try:
        try:
            args = _parse(parser, argv)
        except SystemExit as exc:  # --help, --version: printed, nothing else to do
            return int(exc.code or 0)
        prog = args.prog
        group = getattr(args, "group_parser", None)
        if args.command is None or (
            group is not None and getattr(args, GROUPS[args.command]) is None
        ):
            # No command given: the help says what there is to do; still a usage error.
            (group or parser).print_help(sys.stdout)
            return EXIT_BAD_INPUT
        handler = {
            "run": cmd_run,
            "verify": cmd_verify,
            "inspect": cmd_inspect,
            "export": cmd_export,
            "recover": cmd_recover,
            "bench": cmd_bench,
            "scenario": cmd_scenario,
            "config": cmd_config,
            "provision": cmd_provision,
            "doctor": cmd_doctor,
            "offload": cmd_offload,
            "review": cmd_review,
            "server": cmd_server,
        }[args.command]
        return handler(args)
    except (InputError, StorageLockError, HardwareMissing) as exc:
        _error(exc.prog if isinstance(exc, UsageError) and exc.prog else prog, exc)
        return EXIT_BAD_INPUT
    except (BodycamError, HalError) as exc:
        _error(prog, exc)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _error(prog: str, exc: BaseException) -> None:
    print(f"{prog}: {exc}", file=sys.stderr)


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
    if args.dock:
        from sim.scenario import with_dock

        scenario = with_dock(scenario, args.dock)
    out = Path(args.out or (config.device.storage if config else "recordings"))
    progress = None
    if not args.json and sys.stderr.isatty():
        from camera.summary import ProgressBar

        progress = ProgressBar(scenario.name)

    def announce(path: str) -> None:
        print(f"{args.prog}: serial console on {path}", file=sys.stderr, flush=True)

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
        raise UsageError(f"--scenario needs --board sim (a scenario is simulated; board {board})")
    if args.dock:
        raise UsageError(f"--dock needs --board sim (on board {board}, the console's DOCK docks)")
    for flag, why in (
        ("console", "the console of a real board is [console] in the config (a UART)"),
        ("realtime", "a real board always runs in real time"),
    ):
        if getattr(args, flag):
            print(
                f"{args.prog}: note: --{flag} has no effect with --board {board}: {why}",
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

    progress = None
    if not args.json and sys.stderr.isatty():
        from camera.verify_cmd import Progress

        progress = Progress(sys.stderr)
    return run_verify(args.paths, keys=args.key, as_json=args.json, progress=progress)


def cmd_inspect(args: argparse.Namespace) -> int:
    """Every recording described; one whose manifest (or journal) cannot be read is one
    error line on stderr, and exit 2 once the rest are shown, as for a path that is not there."""
    from camera.evidence.verify.trust import KeySet, keys_beside
    from camera.inspection import Status, inspect_recording, render
    from camera.paths import MISSING

    found = find_recordings(args.paths)
    # With --json, stdout is the JSON list alone; the notes go to stderr.
    _skip_notes(found.skipped, sys.stderr if args.json or not found.recordings else sys.stdout)
    if not found.recordings:
        raise _no_recordings(args.paths)
    keys: dict[Path, KeySet] = {}
    items = []
    for d in found.recordings:
        if d.parent not in keys:
            keys[d.parent] = keys_beside(d.parent)
        items.append(inspect_recording(d, keys[d.parent]))
    if args.json:
        print(json.dumps([i.to_json() for i in items]))
    elif blocks := [render(i) for i in items if i.status != Status.UNREADABLE]:
        print("\n\n".join(blocks))
    prog = getattr(args, "prog", "bodycam inspect")
    errors = [i.error for i in items if i.status == Status.UNREADABLE]
    errors += [f"{p}: {why}" for p, why in found.skipped if why == MISSING]
    for error in errors:
        print(f"{prog}: {error}", file=sys.stderr)
    return EXIT_BAD_INPUT if errors else EXIT_OK


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
        print(f"{args.prog}: {directory}: does not verify; not exported:", file=sys.stderr)
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
                f"{root}: a running firmware owns this storage directory (it holds "
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


def cmd_offload(args: argparse.Namespace) -> int:
    """One line per recording as it is settled, then a summary; exit 1 if a closed one stayed."""
    import random

    from camera.config import load_config
    from camera.evidence.keys import load_key, load_public_key
    from camera.offload import Offloader
    from camera.offload_http import RetryPolicy, check_server_url
    from hal.clock.monotonic import os_utc
    from hal.storage.lock import DirectoryLock

    config = load_config(args.config)
    opts = config.offload
    server = args.server or opts.server
    if server is None:
        raise UsageError("no evidence server: pass --server URL or set offload.server")
    server = check_server_url(server, "--server" if args.server else "offload.server")
    key_file = args.server_key or opts.server_key
    if key_file is None:
        raise UsageError(
            "no pinned server key: pass --server-key PEM or set offload.server_key "
            "(the server's public key, e.g. its DATA/server.pub.pem)"
        )
    server_key, _ = load_public_key(key_file)
    storage = Path(args.storage)
    if not storage.is_dir():
        what = "no such directory" if not storage.exists() else "not a directory"
        raise UsageError(f"{args.storage}: {what} (expected the camera's storage directory)")
    key = load_key(config.device.key_file)
    with DirectoryLock(storage):  # a running firmware writes here; bodycam recover too
        report = Offloader(
            storage,
            key,
            config.device.id,
            server,
            server_key,
            retry=RetryPolicy(random.Random(), attempts=opts.attempts),
            utc=os_utc,
            delete=opts.delete_after_upload and not args.keep,
            timeout=opts.timeout,
            connect_timeout=opts.connect_timeout,
            on_outcome=lambda outcome: print(outcome.line(), flush=True),
        ).run()
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_server(args: argparse.Namespace) -> int:
    """Serve (no subcommand), ``enroll`` a camera's key, or check the ``audit`` chain."""
    if args.server_command == "enroll":
        return _server_enroll(args)
    if args.server_command == "audit":
        return _server_audit(args)
    if args.server_command == "admin":
        return _server_admin(args)
    if args.server_command is not None:
        return _server_retention(args)
    if args.data is None:  # `bodycam server` alone: what there is to do
        args.server_parser.print_help(sys.stdout)
        return EXIT_BAD_INPUT
    from server.serve import serve

    stopped_by = serve(args.data, args.listen, args.config, lambda line: print(line, flush=True))
    print(f"{args.prog}: stopped", file=sys.stderr)
    return EXIT_SIGNAL.get(signal.Signals(stopped_by), EXIT_OK) if stopped_by else EXIT_OK


def cmd_review(args: argparse.Namespace) -> int:
    """The review page for a card: loopback only, read-only, no login."""
    from server.review.serve import serve_review

    stopped_by = serve_review(args.storage, args.listen, lambda line: print(line, flush=True))
    print(f"{args.prog}: stopped", file=sys.stderr)
    return EXIT_SIGNAL.get(signal.Signals(stopped_by), EXIT_OK) if stopped_by else EXIT_OK


def _read_password() -> str:
    """The new password: stdin's first line, or asked twice on a terminal."""
    import getpass

    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != first:
        raise InputError("the two passwords differ; nothing changed")
    return first


def _server_admin(args: argparse.Namespace) -> int:
    import getpass

    from server.datadir import open_server
    from server.review.auth import check_name, set_admin

    name = check_name(args.user)
    password = _read_password()
    server = open_server(args.data)
    try:
        outcome = set_admin(server.meta, name, password, actor=f"cli:{getpass.getuser()}")
    finally:
        server.close()
    what = "created" if outcome == "created" else "password changed"
    print(f"review page administrator {name}: {what}")
    return EXIT_OK


def _server_enroll(args: argparse.Namespace) -> int:
    from server.datadir import open_server
    from server.enroll import enroll

    server = open_server(args.data)
    try:
        done = enroll(server.meta, args.pem, args.device, replace=args.replace)
    finally:
        server.close()
    what = {
        "enrolled": "enrolled",
        "unchanged": "already enrolled with this key: nothing changed",
        "replaced": "enrolled, replacing key(s) "
        + ", ".join(k[:16] + "..." for k in done.replaced),
    }[done.outcome]
    print(f"device {done.device}: key {done.key_id} {what}")
    return EXIT_OK


def _server_retention(args: argparse.Namespace) -> int:
    """category, hold, release, purge, restore, list, export: beside a running server."""
    import getpass

    from server import lifecycle
    from server.datadir import open_server

    command = args.server_command
    actor = getattr(args, "actor", None) or f"cli:{getpass.getuser()}"
    now = lifecycle.parse_now(getattr(args, "now", None))
    if command == "purge" and (args.recording is None) != (args.reason is None):
        raise UsageError("--reason goes with RECORDING (an early purge), and RECORDING with it")
    server = open_server(args.data, create=False, objects=command != "list")
    try:
        if command == "list":
            return _server_list(server, args.json)
        if command == "export":
            return _server_export(server, args, actor, now)
        if command == "purge" and args.recording is None:
            return _server_sweep(server, actor if args.actor else None, now)
        done = {
            "category": lambda: lifecycle.set_category(
                server, args.recording, args.category, reason=args.reason, actor=actor, now=now
            ),
            "hold": lambda: lifecycle.place_hold(
                server, args.recording, args.case, reason=args.reason, actor=actor, now=now
            ),
            "release": lambda: lifecycle.release_hold(
                server, args.recording, args.case, reason=args.reason, actor=actor, now=now
            ),
            "purge": lambda: lifecycle.queue_early(
                server, args.recording, reason=args.reason, actor=actor, now=now
            ),
            "restore": lambda: lifecycle.restore(
                server, args.recording, reason=args.reason, actor=actor, now=now
            ),
        }[command]()
    finally:
        server.close()
    print(done.line)
    return EXIT_OK


def _server_list(server: Any, as_json: bool) -> int:
    from server.listing import format_table, list_recordings

    rows = list_recordings(server)
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        for line in format_table(rows):
            print(line)
    return EXIT_OK


def _server_sweep(server: Any, actor: str | None, now: Any) -> int:
    from server.sweep import RETENTION_ACTOR, sweep

    report = sweep(server, now, actor or RETENTION_ACTOR)
    for line in report.lines():
        print(line)
    print(report.summary())
    return EXIT_FAILED if report.refused else EXIT_OK


def _server_export(server: Any, args: argparse.Namespace, actor: str, now: Any) -> int:
    from server.access import export_recording

    done = export_recording(
        server, args.recording, args.out, reason=args.reason, actor=actor, now=now
    )
    for problem in done.problems:
        print(f"FAIL  {problem}")
    verdict = "verified" if not done.problems else f"{len(done.problems)} problem(s)"
    print(f"exported {args.recording} to {done.path}: {done.files} file(s), {done.bytes} bytes")
    print(f"{'OK  ' if not done.problems else 'FAIL'}  the copy: {verdict}")
    return EXIT_OK if not done.problems else EXIT_FAILED


def _server_audit(args: argparse.Namespace) -> int:
    from server.audit import verify_audit
    from server.datadir import open_server

    server = open_server(args.data, create=False)
    try:
        report = verify_audit(server.meta)
    finally:
        server.close()
    for problem in report.problems:
        print(f"FAIL  {problem}")
    if report.ok:
        print(f"OK    audit log of {args.data}: {report.entries} entries, chain intact")
        return EXIT_OK
    print(
        f"audit log of {args.data}: {len(report.problems)} problem(s) in {report.entries} entries"
    )
    return EXIT_FAILED


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


def cmd_config(args: argparse.Namespace) -> int:
    """``check F``: does it load; ``show``: what the firmware would run with, as TOML."""
    from camera.config import dump_config, load_config

    if args.config_command == "check":
        load_config(args.file)
        print(f"{args.file}: ok")
        return EXIT_OK
    config = load_config(args.config)
    source = " ".join((args.config or "the built-in defaults").splitlines())  # one comment line
    print(f"# bodycam config show: {source}, every default filled in")
    print(dump_config(config), end="")
    return EXIT_OK


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
