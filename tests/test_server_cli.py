"""``bodycam server``, ``bodycam server enroll`` and ``bodycam server audit`` as a person runs them.

Serving is tested as a real process: it prints the URL it listens on and the
server key id, answers there, and stops cleanly on Ctrl-C (SIGINT) or SIGTERM
with the exit codes ``bodycam run`` uses; a second server on the same data
directory is refused. Mistakes are one line and exit 2.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from camera.cli import main
from camera.evidence.keys import load_public_key, test_key
from server.datadir import open_server

DEADLINE = 60.0


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def pem(tmp_path: Path, device: str = "BWC-0001", seed: int = 0) -> Path:
    folder = tmp_path / f"keys-{seed}"
    folder.mkdir(exist_ok=True)
    path = folder / f"{device}.pub.pem"
    path.write_bytes(test_key(device, seed).public_pem)
    return path


# -- enroll ---------------------------------------------------------------------------------
def test_enroll_creates_the_data_directory_and_enrolls_the_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    key_id = test_key("BWC-0001", 0).key_id
    code, out, err = run_cli(capsys, "server", "enroll", "--data", str(data), str(pem(tmp_path)))
    assert (code, out, err) == (0, f"device BWC-0001: key {key_id} enrolled\n", "")
    assert (data / "server.key").stat().st_mode & 0o777 == 0o600
    assert load_public_key(data / "server.pub.pem")[1]
    code, out, _ = run_cli(capsys, "server", "enroll", "--data", str(data), str(pem(tmp_path)))
    assert (code, out) == (
        0,
        f"device BWC-0001: key {key_id} already enrolled with this key: nothing changed\n",
    )


def test_a_different_key_needs_replace(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert run_cli(capsys, "server", "enroll", "--data", data, str(pem(tmp_path)))[0] == 0
    new = str(pem(tmp_path, seed=5))
    code, out, err = run_cli(capsys, "server", "enroll", "--data", data, new)
    assert (code, out) == (2, "")
    assert err.startswith("bodycam server enroll: device BWC-0001 is enrolled with key ")
    assert err.endswith(
        "pass --replace to enroll key "
        + test_key("BWC-0001", 5).key_id[:16]
        + "... in its place (audited)\n"
    )
    code, out, _ = run_cli(capsys, "server", "enroll", "--data", data, new, "--replace")
    old = test_key("BWC-0001", 0).key_id[:16]
    assert (code, out) == (
        0,
        f"device BWC-0001: key {test_key('BWC-0001', 5).key_id} enrolled, replacing key(s) "
        f"{old}...\n",
    )


@pytest.mark.parametrize(
    ("content", "name", "complaint"),
    [
        (b"garbage\n", "BWC-0001.pub.pem", "expected a PEM public key on curve P-256"),
        (None, "camera.pem", "cannot tell the device from the file name"),
    ],
)
def test_a_bad_key_file_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    content: bytes | None,
    name: str,
    complaint: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(content or test_key("BWC-0001", 0).public_pem)
    code, out, err = run_cli(capsys, "server", "enroll", "--data", str(tmp_path / "d"), str(path))
    assert (code, out) == (2, "")
    assert complaint in err and err.count("\n") == 1


# -- audit ------------------------------------------------------------------------------------
def test_audit_passes_then_names_an_edited_entry_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    run_cli(capsys, "server", "enroll", "--data", str(data), str(pem(tmp_path)))
    code, out, _ = run_cli(capsys, "server", "audit", "--data", str(data))
    assert (code, out) == (0, f"OK    audit log of {data}: 1 entries, chain intact\n")
    with sqlite3.connect(data / "evidence.db") as db:
        db.execute("UPDATE audit SET actor = 'someone else' WHERE seq = 0")
    code, out, _ = run_cli(capsys, "server", "audit", "--data", str(data))
    assert code == 1
    assert out == (
        "FAIL  audit seq 0: hash does not match its fields (entry edited)\n"
        f"audit log of {data}: 1 problem(s) in 1 entries\n"
    )


def test_audit_of_a_directory_that_is_not_there_is_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_cli(capsys, "server", "audit", "--data", str(tmp_path / "nope"))
    assert (code, out) == (2, "")
    assert err == (
        f"bodycam server audit: {tmp_path / 'nope'}: no server data directory "
        "(start `bodycam server` first)\n"
    )


# -- serve ------------------------------------------------------------------------------------
def test_server_alone_prints_its_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    _, full, _ = run_cli(capsys, "server", "--help")
    assert run_cli(capsys, "server") == (2, full, "")
    assert full.startswith("usage: bodycam server ")


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--listen", "nonsense"], "--listen 'nonsense': expected HOST:PORT"),
        (["--config", "{cfg}"], "limits.uploads: expected"),
    ],
)
def test_serve_mistakes_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], complaint: str
) -> None:
    cfg = tmp_path / "server.toml"
    cfg.write_text("[limits]\nuploads = 0\n")
    argv = [a.replace("{cfg}", str(cfg)) for a in argv]
    code, out, err = run_cli(capsys, "server", "--data", str(tmp_path / "d"), *argv)
    assert (code, out) == (2, "")
    assert err.startswith("bodycam server: ") and complaint in err and err.count("\n") == 1


@contextmanager
def serving(data: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """``bodycam server`` as a process; yields it and its first four lines (URL, key...)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "camera", "server", "--data", str(data), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = b""
        with selectors.DefaultSelector() as sel:
            assert proc.stdout is not None
            fd = proc.stdout.fileno()  # read the pipe itself: a buffered reader hides lines
            sel.register(fd, selectors.EVENT_READ)
            deadline = time.monotonic() + DEADLINE
            while seen.count(b"\n") < 4:
                left = deadline - time.monotonic()
                assert left > 0 and sel.select(left), f"bodycam server printed only {seen!r}"
                chunk = os.read(fd, 4096)
                assert chunk, f"bodycam server exited: {proc.communicate()[1]}"
                seen += chunk
        lines = seen.decode().splitlines()
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=DEADLINE)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_serve_prints_where_it_listens_answers_there_and_stops_cleanly(
    tmp_path: Path, signum: int, code: int
) -> None:
    data = tmp_path / "data"
    with serving(data) as (proc, lines):
        url = re.fullmatch(r"bodycam server listening on (http://127\.0\.0\.1:\d+)", lines[0])
        assert url, lines
        key_id = load_public_key(data / "server.pub.pem")[1]
        assert lines[1] == f"  server key {key_id}"
        assert httpx.get(f"{url[1]}/v1/server", timeout=DEADLINE).json()["key_id"] == key_id
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=DEADLINE)
        assert proc.returncode == code
        assert err.rstrip("\n").endswith("bodycam server: stopped")
        assert "Traceback" not in err


def test_a_second_server_on_the_same_data_directory_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with serving(data):
        code, out, err = run_cli(capsys, "server", "--data", str(data), "--listen", "127.0.0.1:0")
        assert (code, out) == (2, "")
        assert err == (
            f"bodycam server: {data}: another bodycam server is serving this data directory "
            "(it holds server.lock); stop it first\n"
        )
        # Enrolling beside a running server is fine: the database takes both.
        server = open_server(data)
        server.close()
