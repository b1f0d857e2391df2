"""A small error tree: one base, with builtin mixins so callers can catch either.

User mistakes (config, scenario, paths) are :class:`InputError` and become one
clear line and exit code 2 at the command line; everything else is a fault of
the device or the program.
"""

from __future__ import annotations

# The HAL's errors, re-exported: the core raises and catches the same classes.
from hal.errors import BackendError, HalError, HardwareMissing

__all__ = [
    "BackendError",
    "BodycamError",
    "ConfigError",
    "HalError",
    "HardwareMissing",
    "InputError",
    "StorageError",
]


class BodycamError(Exception):
    """Base of every error the firmware raises on purpose."""


class InputError(BodycamError, ValueError):
    """Bad user input: the message names the file, key or line and what was expected."""


class ConfigError(InputError):
    """The device configuration is invalid."""


class StorageError(BodycamError, OSError):
    """Storage failed underneath a recording."""
