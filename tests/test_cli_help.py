"""The command line as a person meets it: help, errors, pipes, progress, ``config``.

What a bench engineer expects from ``git`` or ``ffprobe`` (issue 12, item 3):
every option's help names its default, bare ``bodycam`` prints the help, one
error format, a quiet end when ``| head`` closes the pipe, progress on a
terminal only, the effective config as TOML, and a README synopsis that
says what ``--help`` says.
"""

from __future__ import annotations

import argparse
import io
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camera.cli import UsageError, _parse, build_parser, main
from camera.config import Config, dump_config, load_config
from camera.errors import BodycamError
from camera.verify_cmd import Progress

REPO = Path(__file__).resolve().parents[1]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (sub)command's parser, groups (``bench``) and leaves (``bench trigger``) alike."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def is_group(parser: argparse.ArgumentParser) -> bool:
    return any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


def leaves() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command that runs: the leaves, and a group with options of its own (``server``)."""
    return [
        (path, p)
        for path, p in commands(build_parser())
        if path and (not is_group(p) or options(p))
    ]


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options a user types: not -h/--help or --version, which argparse provides."""
    return [
        a
        for a in parser._actions
        if a.option_strings and not isinstance(a, argparse._HelpAction | argparse._VersionAction)
    ]


def positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
    ]


def long_name(action: argparse.Action) -> str:
    return max(action.option_strings, key=len)


# -- help -------------------------------------------------------------------------


def test_every_option_of_every_command_says_its_default() -> None:
    """Help text that leaves the default to guesswork is the first thing a new user trips on."""
    seen = 0
    for path, parser in commands(build_parser()):
        for action in options(parser):
            seen += 1
            says = "(required, no default)" if action.required else "(default: "
            assert action.help and says in action.help, (path, action.option_strings)
        for action in positionals(parser):
            assert action.help, (path, action.dest)  # what to give, if not its default
    assert seen >= 30  # the walk found the options (run, verify, ..., bench trigger)


@pytest.mark.parametrize(
    "path", [path for path, _ in commands(build_parser())], ids=lambda p: " ".join(p) or "bodycam"
)
def test_help_of_each_command_exits_0_with_the_defaults_filled_in(
    capsys: pytest.CaptureFixture[str], path: tuple[str, ...]
) -> None:
    code, out, err = run_cli(capsys, *path, "--help")
    assert (code, err) == (0, "")
    assert out.startswith(f"usage: {' '.join(('bodycam', *path))} ")
    assert "%(default)" not in out and "(default: None)" not in out
    if path == ("bench", "trigger"):
        assert "(default: 50)" in out and "(default: 1280x720)" in out


def test_bare_bodycam_prints_the_full_help_on_stdout_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, full, _ = run_cli(capsys, "--help")
    code, out, err = run_cli(capsys)
    assert (code, out, err) == (2, full, "")
    for name in ("run", "verify", "inspect", "recover", "export", "config", "bench", "doctor"):
        assert re.search(rf"^ +{name} +\S", out, re.M), name  # listed, with its help beside it
    assert "exit codes:" in out


@pytest.mark.parametrize("group", ["bench", "scenario", "config"])
def test_a_group_alone_prints_its_own_help_and_exits_2(
    capsys: pytest.CaptureFixture[str], group: str
) -> None:
    _, full, _ = run_cli(capsys, group, "--help")
    code, out, err = run_cli(capsys, group)
    assert (code, out, err) == (2, full, "")
    assert out.startswith(f"usage: bodycam {group} ")


def test_python_dash_m_camera_is_the_same_command() -> None:
    def camera(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "camera", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    bare, helped = camera(), camera("--help")
    assert (bare.returncode, helped.returncode) == (2, 0)
    assert bare.stdout == helped.stdout and bare.stderr == ""
    assert helped.stdout.startswith("usage: bodycam ")
    bad = camera("verify")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == "bodycam verify: the following arguments are required: PATH\n"


# -- one error format ----------------------------------------------------------------

USAGE_ERRORS = [
    (["frobnicate"], "bodycam: argument COMMAND: invalid choice: 'frobnicate'"),
    (["--frob"], "bodycam: unrecognized arguments: --frob"),
    (["run", "--frob"], "bodycam run: unrecognized arguments: --frob"),
    (["run", "--board", "vax"], "bodycam run: argument --board: invalid choice: 'vax'"),
    (["verify"], "bodycam verify: the following arguments are required: PATH"),
    (["inspect", "--key", "k"], "bodycam inspect: unrecognized arguments: --key"),
    (["export", "r"], "bodycam export: the following arguments are required: --out"),
    (["bench", "nope"], "bodycam bench: argument COMMAND: invalid choice: 'nope'"),
    (
        ["bench", "trigger", "--trials", "0"],
        "bodycam bench trigger: argument --trials: expected a positive integer, got '0'",
    ),
    (["scenario", "check"], "bodycam scenario check: the following arguments are required: F"),
    (["config", "show", "x"], "bodycam config show: unrecognized arguments: x"),
    (["doctor", "--json=yes"], "bodycam doctor: argument --json: ignored explicit argument"),
]


@pytest.mark.parametrize(("argv", "line"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_usage_errors_are_one_line_naming_the_command_once(
    capsys: pytest.CaptureFixture[str], argv: list[str], line: str
) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith(line) and err.count("\n") == 1, err
    assert err.count("bodycam") == 1, err  # no "bodycam: bodycam run:"


def test_errors_from_inside_commands_have_the_same_format(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[video]\nfps = 0\n")
    missing = tmp_path / "missing"
    cases = [
        (["config", "check", str(bad)], f"bodycam config check: {bad}: video.fps: expected"),
        (["config", "show", "--config", str(bad)], f"bodycam config show: {bad}: video.fps:"),
        (["run", "--config", str(bad), "--out", str(tmp_path)], f"bodycam run: {bad}: video."),
        (["scenario", "check", str(missing)], f"bodycam scenario check: {missing}: "),
        (["verify", str(missing)], f"bodycam verify: {missing}: no recordings found"),
        (["recover", str(missing)], f"bodycam recover: {missing}: no such file"),
        (["export", str(missing), "--out", str(tmp_path / "x.mp4")], f"bodycam export: {missing}"),
        (["provision", "--config", str(bad)], f"bodycam provision: {bad}: video.fps:"),
    ]
    for argv, start in cases:
        code, _, err = run_cli(capsys, *argv)
        *notes, line = err.splitlines()
        assert code == 2, (argv, err)
        assert line.startswith(start), (argv, err)
        assert all(n.startswith("SKIP ") for n in notes), (argv, err)  # verify says what it skipped
        assert err.count("bodycam ") == 1 and "Traceback" not in err, (argv, err)


def test_a_failure_of_the_device_is_exit_1_in_the_same_format(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import camera.cli

    def broken(args: argparse.Namespace) -> int:
        raise BodycamError("encoder: gave up after 3 restarts")

    monkeypatch.setattr(camera.cli, "cmd_doctor", broken)
    code, _, err = run_cli(capsys, "doctor")
    assert (code, err) == (1, "bodycam doctor: encoder: gave up after 3 restarts\n")


VOCABULARY = [
    *sorted({w for path, _ in commands(build_parser()) for w in path}),
    *sorted({long_name(a) for _, p in commands(build_parser()) for a in options(p)}),
    "--frob",
    "-x",
    "sim",
    "pi",
    "0",
    "1x1",
    "a,b",
    "",
]


@given(st.lists(st.sampled_from(VOCABULARY) | st.text(max_size=8), max_size=8))
def test_the_parser_accepts_or_refuses_in_one_line_naming_a_real_command(argv: list[str]) -> None:
    """Whatever is typed, argparse never prints or exits by itself: we say it, in one line."""
    progs = {" ".join(("bodycam", *path)) for path, _ in commands(build_parser())}
    try:
        args = _parse(build_parser(), argv)
    except SystemExit:  # -h, --help, --version or an abbreviation of them: printed, exit 0
        assert any(re.match(r"-h|--h|--v", a) for a in argv), argv
    except UsageError as exc:
        assert exc.prog in progs
        assert "\n" not in str(exc) and not str(exc).startswith("bodycam")
    else:
        assert args.prog in progs


# -- a closed pipe --------------------------------------------------------------------


def closed_pipe_run(*argv: str, buffered: bool) -> subprocess.CompletedProcess[bytes]:
    """``bodycam ARGV`` writing into a pipe whose reader has already gone, as ``| head`` does.

    Buffered (Python's default for a pipe), the error comes at the flush at
    exit; unbuffered (PYTHONUNBUFFERED, set in some CI environments), at the
    first write. Both must end the same way.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte is written
    try:
        return subprocess.run(
            [sys.executable, "-m", "camera", *argv],
            stdout=write,
            stderr=subprocess.PIPE,
            env=env,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two recordings of two segments each (the CI retrigger scenario); read only."""
    out = tmp_path_factory.mktemp("store")
    scenario = REPO / "scenarios" / "ci" / "retrigger_after_stop.toml"
    assert main(["run", "--scenario", str(scenario), "--out", str(out), "--json"]) == 0
    return out


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize(
    "argv", [["verify"], ["inspect"], ["--help"], ["config", "show"]], ids=" ".join
)
def test_a_closed_stdout_ends_quietly_with_141(
    argv: list[str], buffered: bool, storage: Path
) -> None:
    if argv in (["verify"], ["inspect"]):
        argv = [*argv, str(storage)]
    done = closed_pipe_run(*argv, buffered=buffered)
    assert done.stderr == b""  # no BrokenPipeError traceback, no "Exception ignored"
    assert done.returncode == 141


# -- verify's progress ----------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_verify_shows_progress_on_a_terminal_and_erases_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, storage: Path
) -> None:
    code, plain_out, plain_err = run_cli(capsys, "verify", str(storage))
    assert code == 0 and "verifying" not in plain_err  # not a terminal: no progress

    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code, out, _ = run_cli(capsys, "verify", str(storage))
    shown = terminal.getvalue()
    assert code == 0 and out == plain_out  # the results are the same
    for i in (1, 2):
        for j in (1, 2):
            assert f"\rverifying recording {i}/2, segment {j}/2\x1b[K" in shown, shown
    assert shown.endswith("\r\x1b[K")  # nothing of it stays on the screen
    assert "\n" not in shown


def test_verify_json_shows_no_progress_even_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, storage: Path
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code, out, _ = run_cli(capsys, "verify", "--json", str(storage))
    assert code == 0 and out.startswith("{")
    assert terminal.getvalue() == ""


def test_a_terminal_that_goes_away_stops_the_progress_not_the_verification(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, storage: Path
) -> None:
    class GoneTerminal(FakeTerminal):
        writes = 0

        def write(self, text: str) -> int:
            GoneTerminal.writes += 1
            raise OSError(5, "Input/output error")

    monkeypatch.setattr(sys, "stderr", GoneTerminal())
    code, out, _ = run_cli(capsys, "verify", str(storage))
    assert code == 0 and "2 of 2 recordings verified" in out and "internal error" not in out
    assert GoneTerminal.writes == 1  # tried once, then left alone


def test_progress_lines_rewrite_one_terminal_line() -> None:
    terminal = FakeTerminal()
    progress = Progress(terminal)
    step = progress.recording(3, 7)
    step(12, 360)
    progress.clear()
    progress.clear()  # a second clear writes nothing
    assert terminal.getvalue() == (
        "\rverifying recording 3/7\x1b[K\rverifying recording 3/7, segment 12/360\x1b[K\r\x1b[K"
    )


def test_verify_progress_on_a_real_pty(storage: Path) -> None:
    """stderr on a pseudo-terminal, stdout a pipe: the progress is on the terminal only."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "camera", "verify", str(storage)],
            stdout=subprocess.PIPE,
            stderr=follower,
        )
    finally:
        os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: every writer of the terminal has closed it
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert b"verifying recording 2/2, segment 2/2" in seen
    assert b"verifying" not in out and b"2 of 2 recordings verified" in out


# -- bodycam config ---------------------------------------------------------------------

DEPLOY = sorted((REPO / "deploy").glob("*.toml"))


def shown_config(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run_cli(capsys, "config", "show", *argv)
    assert (code, err) == (0, "")
    return out


def read_back(text: str, tmp_path: Path) -> Config:
    path = tmp_path / "shown.toml"
    path.write_text(text)
    return load_config(path)


@pytest.mark.parametrize("config", DEPLOY, ids=lambda p: p.name)
def test_config_check_says_ok_for_the_shipped_configs(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    code, out, err = run_cli(capsys, "config", "check", str(config))
    assert (code, out, err) == (0, f"{config}: ok\n", "")


def test_config_show_without_a_file_is_the_built_in_defaults(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = shown_config(capsys)
    assert text.startswith("# bodycam config show: the built-in defaults, every default filled")
    assert read_back(text, tmp_path) == load_config(None)
    for table in ("[device]", "[video]", "[buffer]", "[inputs.holster]", "[console]", "[audio]"):
        assert f"\n{table}\n" in text, table
    assert "\nsegment_seconds = 10.0\n" in text  # a default no file said


@pytest.mark.parametrize("config", DEPLOY, ids=lambda p: p.name)
def test_config_show_reads_back_to_the_same_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, config: Path
) -> None:
    text = shown_config(capsys, "--config", str(config))
    assert text.splitlines()[0] == f"# bodycam config show: {config}, every default filled in"
    assert read_back(text, tmp_path) == load_config(config)


def test_config_show_round_trips_what_toml_has_no_null_for(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``false`` for an output not fitted, nothing for a board default, extra inputs kept."""
    source = tmp_path / "dev.toml"
    source.write_text(
        '[hal]\nclock = "virtual"\ncamera = 2\n'
        "[outputs]\nstatus_led = false\nhaptic = false\n"
        '[inputs.door]\npin = 5\nactive = "low"\nrole = "button"\n'
        '[console]\nenabled = true\nport = "/dev/ttyUSB0"\n'
        '[device]\nid = "BWC-7"\nstorage = "/srv/évidence \\"x\\""\n'
    )
    original = load_config(source)
    text = shown_config(capsys, "--config", str(source))
    assert "status_led = false" in text and "gpio =" not in text
    again = read_back(text, tmp_path)
    assert again == original
    assert again.outputs.status_led is None and again.hal.gpio is None
    assert dump_config(again) == dump_config(original)


# -- the README's synopsis says what --help says ------------------------------------------


def readme_synopsis() -> dict[tuple[str, ...], str]:
    """{command words: the rest of its synopsis}, from the block under "## Command line"."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Command line\n", 1)[1]
    block = re.search(r"\n\n((?: {4}bodycam .*\n(?: {5,}\S.*\n)*)+)", section)
    assert block, "no synopsis block under ## Command line"
    entries: dict[tuple[str, ...], str] = {}
    for entry in re.split(r"\n(?= {4}bodycam )", block[1].rstrip("\n")):
        line = " ".join(part.split("#", 1)[0].strip() for part in entry.splitlines())
        words = line.split()[1:]
        n = next((i for i, w in enumerate(words) if not re.fullmatch(r"[a-z]+", w)), len(words))
        assert tuple(words[:n]) not in entries, words[:n]
        entries[tuple(words[:n])] = " ".join(words[n:])
    return entries


def unbracket(token: str) -> str:
    """``[--json]`` -> ``--json``, ``MS[,MS...]]`` -> ``MS[,MS...]``: optional-part brackets off."""
    token = token.lstrip("[")
    while token.endswith("]") and token.count("]") > token.count("["):
        token = token[:-1]
    return token


def parse_synopsis(line: str) -> tuple[set[str], set[str]]:
    """({"--opt META", "--flag"}, {positional names}) of one README synopsis line."""
    tokens = line.split()
    opts, names = set(), set()
    i = 0
    while i < len(tokens):
        token = unbracket(tokens[i])
        closed = tokens[i].endswith("]") and unbracket(tokens[i]) != tokens[i].lstrip("[")
        if not token.startswith("--"):
            names.add(token.removesuffix("..."))
        elif closed or i + 1 == len(tokens) or unbracket(tokens[i + 1]).startswith("-"):
            opts.add(token)
        else:
            opts.add(f"{token} {unbracket(tokens[i + 1])}")
            i += 1
        i += 1
    return opts, names


def synopsis_of(parser: argparse.ArgumentParser) -> tuple[set[str], set[str]]:
    """({"--opt META", "--flag"}, {positional metavars}) as the README should write them."""
    opts = set()
    for action in options(parser):
        meta = "" if action.nargs == 0 else f" {action.metavar or action.dest.upper()}"
        opts.add(long_name(action) + meta)
    return opts, {a.metavar or a.dest for a in positionals(parser)}


def test_the_readme_synopsis_lists_every_command_and_option_of_the_parser() -> None:
    readme = readme_synopsis()
    for path, parser in leaves():
        assert path in readme, f"README synopsis lacks: bodycam {' '.join(path)}"
        written, written_names = parse_synopsis(readme[path])
        opts, names = synopsis_of(parser)
        assert written == opts, (path, written ^ opts)
        assert written_names == names, (path, written_names, names)
    extra = set(readme) - {path for path, _ in leaves()}
    assert not extra, f"README synopsis has commands the parser lacks: {extra}"


def test_the_readme_synopsis_check_catches_a_missing_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The comparison above can fail: a parser with one more option than the README."""
    import camera.cli

    real = camera.cli.build_parser

    def more() -> argparse.ArgumentParser:
        parser = real()
        for path, sub in commands(parser):
            if path == ("verify",):
                sub.add_argument("--fast", action="store_true", help="x (default: off)")
        return parser

    monkeypatch.setattr(sys.modules[__name__], "build_parser", more)
    with pytest.raises(AssertionError, match="--fast"):
        test_the_readme_synopsis_lists_every_command_and_option_of_the_parser()
