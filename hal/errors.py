"""The HAL's own errors, so hal/ never imports the firmware core.

:class:`HardwareMissing` is a set-up problem (``--board pi`` off a Pi, no
camera plugged in, a pin library not installed): the command line reports it
as bad input, one line and exit 2, never a traceback. Every other
:class:`BackendError` is a fault of the device.
"""

from __future__ import annotations


class HalError(Exception):
    """Base of every error the HAL raises on purpose."""


class BackendError(HalError, RuntimeError):
    """A named backend could not be loaded or opened."""


class HardwareMissing(BackendError):
    """The board's hardware is not there: the message names each missing part."""
