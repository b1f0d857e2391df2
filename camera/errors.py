"""A small error tree: one base, with builtin mixins so callers can catch either.

User mistakes (config, scenario, paths) are :class:`InputError` and become one
clear line and exit code 2 at the command line; everything else is a fault of
the device or the program.
"""

from __future__ import annotations


class BodycamError(Exception):
    """Base of every error the firmware raises on purpose."""


class InputError(BodycamError, ValueError):
    """Bad user input: the message names the file, key or line and what was expected."""


class ConfigError(InputError):
    """The device configuration is invalid."""


class BackendError(BodycamError, RuntimeError):
    """A named backend could not be loaded or opened."""


class StorageError(BodycamError, OSError):
    """Storage failed underneath a recording."""
