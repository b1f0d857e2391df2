"""Storage: the directory is there and writable, has room, and writes fast enough.

A pre-event flush must catch up with live video, so the write speed is
judged against the configured video rate, not an absolute number. The probe
takes the storage lock first, so a running firmware's card is never written
to behind its back, and it removes its file even after a failed write. On a
simulated card the speed comes from the card's own timing model.
"""

from __future__ import annotations

from typing import Any

from camera.config import Config
from camera.doctor.result import Result, Status, part_problem, why, worst
from hal.board import Parts
from hal.clock import Clock
from hal.storage import Storage
from hal.storage.lock import StorageBusy, StorageLockError

__all__ = [
    "FREE_SECONDS_WARN",
    "PROBE_BYTES",
    "PROBE_CHUNK",
    "PROBE_NAME",
    "WRITE_SPEED_FACTOR",
    "check_storage",
]

#: Bytes the storage probe writes to measure speed.
PROBE_BYTES = 4_000_000
PROBE_CHUNK = 256 * 1024
PROBE_NAME = ".bodycam-doctor-probe"
#: A pre-event flush must catch up with live video: storage at this many
#: times the video rate, or the writer queue grows during every trigger.
WRITE_SPEED_FACTOR = 4.0
#: Free space below this many seconds of video is a warning.
FREE_SECONDS_WARN = 3600.0


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.1f} MB"


def check_storage(config: Config, board: Parts, *, probe_bytes: int = PROBE_BYTES) -> Result:
    """Create the directory, take the lock, then probe free space and write speed."""
    storage = board.storage
    if storage is None:
        return Result("storage", "fail", part_problem(board, "storage", "storage"))
    root = storage.root
    rate = config._bytes_per_second()[0]  # planned encoded bytes/s, the config's margin in
    reserve = config.recording.reserve_mb * 1e6
    details: dict[str, Any] = {"path": str(root), "video_bytes_per_second": round(rate)}
    try:
        storage.makedirs("")
    except OSError as exc:
        return Result("storage", "fail", f"{root}: cannot create: {why(exc)}", details)
    try:
        storage.lock()
    except StorageBusy:
        text = f"{root}: in use by a running firmware (it holds the lock); stop it to check"
        return Result("storage", "warn", text, details)
    except StorageLockError as exc:
        return Result("storage", "fail", str(exc), details)
    try:
        return _probe_storage(storage, board.clock, rate, reserve, probe_bytes, details)
    finally:
        storage.unlock()


def _probe_storage(
    storage: Storage,
    clock: Clock,
    rate: float,
    reserve: float,
    probe_bytes: int,
    details: dict[str, Any],
) -> Result:
    root = storage.root
    free = storage.free_bytes()
    details["free_bytes"] = free
    hours = free / rate / 3600
    found: list[tuple[Status, str]] = []
    if free < reserve:
        found.append(("fail", f"{_mb(free)} free, below recording.reserve_mb"))
    elif free < FREE_SECONDS_WARN * rate:
        found.append(("warn", f"only {_mb(free)} free ({hours:.2f} h of video)"))
    size = probe_bytes if free >= probe_bytes + reserve else min(4096, probe_bytes)
    start = clock.now()
    modelled = 0.0  # the storage's own timing model (simulated cards); 0 on real ones
    error: OSError | None = None
    elapsed = 0.0
    try:
        f = storage.open_write(PROBE_NAME)
        try:
            done = 0
            while done < size:
                chunk = min(PROBE_CHUNK, size - done)
                f.write(b"\xa5" * chunk)
                modelled += storage.service_time(chunk, start + modelled)
                done += chunk
            f.sync()
        finally:
            f.close()
        elapsed = clock.now() - start + modelled
    except OSError as exc:
        error = exc
    try:
        if storage.path(PROBE_NAME).exists():  # also after a failed write: leave no litter
            storage.remove(PROBE_NAME)
    except OSError as exc:
        error = error or exc
    if error is not None:
        found.append(("fail", f"not writable: {why(error)}"))
        return _storage_result(root, free, hours, None, found, details)
    speed = size / elapsed if size == probe_bytes and elapsed > 0 else None
    if speed is not None:
        details["write_bytes_per_second"] = round(speed)
        details["write_timing"] = "model" if modelled > 0 else "clock"
        if speed < WRITE_SPEED_FACTOR * rate:
            found.append(
                ("warn", f"writes {_mb(speed)}/s, below {WRITE_SPEED_FACTOR:g}x the video rate")
            )
    return _storage_result(root, free, hours, speed, found, details)


def _storage_result(
    root: Any,
    free: int,
    hours: float,
    speed: float | None,
    found: list[tuple[Status, str]],
    details: dict[str, Any],
) -> Result:
    rate = details["video_bytes_per_second"]
    if found:
        status = worst([s for s, _ in found])
        return Result("storage", status, f"{root}: " + "; ".join(t for _, t in found), details)
    text = f"{root} writable, {_mb(free)} free ({hours:.0f} h of video)"
    if speed is None:
        text += ", write speed not measured"
    else:
        how = "modelled, " if details.get("write_timing") == "model" else ""
        text += f", writes {_mb(speed)}/s ({how}{speed / rate:.0f}x the video rate)"
    return Result("storage", "ok", text, details)
