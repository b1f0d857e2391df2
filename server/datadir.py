"""The server's data directory (``bodycam server --data DIR``) and what it opens.

Layout (issue 16's contract)::

    DIR/server.key        the server's signing key (ECDSA P-256, 0600), made on first use
    DIR/server.pub.pem    its public half: what cameras pin to check receipts
    DIR/server.toml       optional config (server.config); absent: the embedded defaults
    DIR/evidence.db       SQLite metadata (default)
    DIR/objects/          the content-addressed store (default; server.objects.cas)
    DIR/rejected/<recording>/<n>/   what failed verification, as received, + reason.json
    DIR/work/             recordings being assembled for verification (emptied at start)
    DIR/server.lock       held by the one server process serving this directory

The key is made here and nowhere else, never replaced: every receipt ever
issued verifies only with it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from camera.errors import InputError
from camera.evidence.keys import DeviceKey, generate_key, load_key, save_key
from server.config import CONFIG_FILE, ServerConfig, load_server_config
from server.meta import Meta
from server.objects import ObjectStore, open_store

__all__ = ["DataDir", "Server", "open_server"]


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def key(self) -> Path:
        return self.root / "server.key"

    @property
    def public_key(self) -> Path:
        return self.root / "server.pub.pem"

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def rejected(self) -> Path:
        return self.root / "rejected"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def lock(self) -> Path:
        return self.root / "server.lock"

    def ensure_key(self) -> DeviceKey:
        """The server key, made (with its public half) if this directory has none yet."""
        if not self.key.exists():
            save_key(generate_key(), self.key)
        key = load_key(self.key)
        if not self.public_key.exists() or self.public_key.read_bytes() != key.public_pem:
            tmp = self.public_key.with_name(f".{self.public_key.name}.tmp")
            tmp.write_bytes(key.public_pem)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.public_key)
        return key


@dataclass
class Server:
    """Everything a running store holds open: its key, config, metadata and object store."""

    data: DataDir
    key: DeviceKey
    config: ServerConfig
    meta: Meta
    store: ObjectStore | None
    _lock_fd: int | None = None

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
        self.meta.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None


def _lock(data: DataDir) -> int:
    fd = os.open(data.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise InputError(
            f"{data.root}: another bodycam server is serving this data directory "
            f"(it holds {data.lock.name}); stop it first"
        ) from None
    return fd


def open_server(
    root: str | os.PathLike[str],
    config_path: str | os.PathLike[str] | None = None,
    *,
    serve: bool = False,
    create: bool = True,
    objects: bool = False,
) -> Server:
    """Open (and on first use create) a data directory.

    ``serve``: also the object store, the lock that keeps a second server
    out, and a clean ``work/`` (left by a server killed mid-ingest). Without,
    only the key and the metadata (enroll, audit), safe beside a running server.
    ``objects``: the object store too, as an administrator's command uses it
    beside a running server (nothing emptied: its uploads in progress stay).
    """
    data = DataDir(Path(root))
    if not data.root.is_dir():
        if not create:
            raise InputError(
                f"{data.root}: no server data directory (start `bodycam server` first)"
            )
        if data.root.exists():
            raise InputError(f"{data.root}: expected a directory for the server's data")
        data.root.mkdir(mode=0o700, parents=True)
    config = load_server_config(
        config_path if config_path is not None else (data.config if data.config.exists() else None)
    )
    lock_fd = _lock(data) if serve else None
    try:
        key = data.ensure_key()
        meta = Meta(config.metadata_url(data.root), signer=key)
        store = None
        if serve:
            shutil.rmtree(data.work, ignore_errors=True)
            data.work.mkdir(exist_ok=True)
            data.rejected.mkdir(exist_ok=True)
        if serve or objects:
            try:
                store = open_store(config.objects_url(data.root), clean=serve)
            except ValueError as exc:
                meta.close()
                raise InputError(str(exc)) from None
    except BaseException:
        if lock_fd is not None:
            os.close(lock_fd)
        raise
    return Server(data, key, config, meta, store, lock_fd)
