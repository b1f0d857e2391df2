"""An evidence server for one simulated dock: ``bodycam server`` in a process of its own.

A process, not a thread of the simulator, so that a fault can kill it as a
power cut or the OOM killer would (SIGKILL: no handler runs, an upload in
progress is left as a temp file the next start empties) and start it again
on the same port, as a camera sees a server restart. It is the command a
department runs, so the simulation exercises what ships.

Ready means listening: the command prints its URL once the socket is bound
and listening, so a request made at once waits in the backlog; nothing
polls or sleeps for readiness. Its output goes to ``server.log`` in a
directory of the caller's, read back only to say why a start failed.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from camera.errors import InputError
from camera.evidence.keys import load_public_key
from server.datadir import open_server
from server.enroll import enroll

__all__ = ["LocalServer"]

#: Seconds a start may take before it is called failed (imports on a slow host).
START_SECONDS = 60.0
#: Seconds a SIGTERM'd server has to finish its requests and exit.
STOP_SECONDS = 30.0
_LISTENING = re.compile(r"listening on (http://\S+)")
#: Megabytes of the server's store kept free that no disk has: every upload is 507.
_NO_ROOM_MB = 1 << 40


class LocalServer:
    """``bodycam server --data DATA`` on 127.0.0.1, the device enrolled, its key to pin.

    ``full``: the store keeps more in reserve than any disk has, so every
    upload is refused with 507 (a server config beside the log, the data
    directory left as given).
    """

    def __init__(self, data: Path, work: Path, *, full: bool = False) -> None:
        self.data = data
        self.work = work
        self.full = full
        self.url: str | None = None
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0

    @property
    def public_key(self) -> Path:
        return self.data / "server.pub.pem"

    def pinned_key(self) -> ec.EllipticCurvePublicKey:
        """The server's public key, read from its data directory as a camera's config pins it."""
        return load_public_key(self.public_key)[0]

    def enroll(self, device_pem: Path) -> None:
        """The device's key, enrolled before the first request (creates DATA and its key)."""
        server = open_server(self.data)
        try:
            enroll(server.meta, device_pem, actor="sim")
        finally:
            server.close()

    def start(self) -> str:
        """Start the server (on the port of the last start, if there was one); its URL."""
        self.work.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "camera", "server", "--data", str(self.data)]
        cmd += ["--listen", f"127.0.0.1:{self._port}"]
        if self.full:
            config = self.work / "server.toml"
            objects = f"file://{(self.data / 'objects').resolve()}?reserve_mb={_NO_ROOM_MB}"
            config.write_text(f'[store]\nobjects = "{objects}"\n')
            cmd += ["--config", str(config)]
        log = self.work / "server.log"
        with log.open("ab") as err:
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        assert self._proc.stdout is not None
        line = _first_line(self._proc, START_SECONDS)
        found = _LISTENING.search(line)
        if found is None:
            self.stop()
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [line.strip()]
            raise InputError(f"[dock]: the evidence server did not start: {tail[0]}")
        self.url = found.group(1)
        self._port = int(self.url.rsplit(":", 1)[1])
        return self.url

    def kill_and_restart(self) -> None:
        """SIGKILL, then start again on the same port: what a crashed and restarted server is."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._close_pipe()
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        """SIGTERM and wait (requests in flight finish); SIGKILL if it will not go."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close_pipe()
        self._proc = None

    def _close_pipe(self) -> None:
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()


def _first_line(proc: subprocess.Popen[bytes], seconds: float) -> str:
    """The process's first line of output; "" if it exits (or stays silent) first."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace").split("\n", 1)[0]
