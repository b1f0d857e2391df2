"""The board as the doctor opens it: part by part, through :func:`hal.board.open_parts`.

Not :func:`hal.board.open_hal`: that refuses a board with any part missing,
which is right for a run and wrong here, where a missing camera must not
hide whether the pins are free. A ``[hal]`` backend name that does not exist
is still bad input, checked first so it names the config file and key.
"""

from __future__ import annotations

from datetime import datetime

from camera.config import Config
from camera.errors import ConfigError
from hal import registry
from hal.board import Parts, backend_names, open_parts

__all__ = ["open_board"]


def open_board(
    config: Config,
    board: str | None = None,
    *,
    source: str = "<config>",
    start: datetime | None = None,
    seed: int = 0,
) -> Parts:
    """The board's parts, by the same names and arguments a run uses.

    An unknown ``[hal]`` backend name is a :class:`ConfigError` naming
    ``source`` and the key; a part that exists but cannot open is a line in
    ``problems`` for its check to report.
    """
    name = board or config.device.board
    overrides = config.hal.backends()
    for kind, backend in backend_names(name, overrides).items():
        known = registry.names(kind)
        if backend not in known:
            raise ConfigError(
                f"{source}: hal.{kind}: expected one of {', '.join(known)}, got {backend!r}"
            )
    v = config.video
    return open_parts(
        name,
        storage_root=config.device.storage,
        width=v.width,
        height=v.height,
        fps=v.fps,
        overrides=overrides,
        camera_source=config.hal.camera,
        seed=seed,
        start=start,
        audio=(config.audio.rate, config.audio.channels) if config.audio.enabled else None,
        microphone=config.hal.microphone,
        gps=(config.gps.port, config.gps.baudrate) if config.gps.enabled else None,
    )
