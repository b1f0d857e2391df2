"""Whether the OS says its clock is synchronized by NTP.

Asking the operating system is the hardware layer's business, so it lives in
``hal/``, not in the doctor that reports it; the doctor takes it as a
parameter, and tests hand it an answer instead of a host.

Two ways to ask, one answer: the doctor runs ``timedatectl`` once (a
subprocess, tens of milliseconds); the real clock asks once a second on the
firmware's loop, so it makes the system call timedatectl's answer comes
from (``adjtimex``, microseconds) and applies systemd-timedated's rule: the
kernel's maximum error under 16 s. An NTP daemon (timesyncd, chrony, ntpd)
keeps that error small while it disciplines the clock; the kernel lets it
grow by 500 ppm otherwise, so a clock NTP stopped tending drops out of sync
after some hours.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess
import sys
from collections.abc import Callable
from functools import lru_cache
from typing import Any

__all__ = ["kernel_ntp_synchronized", "ntp_synchronized"]

#: systemd-timedated's rule (``NTPSynchronized``): maximum error below 16 s.
MAX_ERROR_US = 16_000_000


def ntp_synchronized() -> bool | None:
    """What systemd says of NTP (``timedatectl``); None where it cannot say."""
    exe = shutil.which("timedatectl")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    answer = done.stdout.strip() if done.returncode == 0 else ""
    return {"yes": True, "no": False}.get(answer)


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """``struct timex`` of <sys/timex.h> (Linux), as adjtimex(2) documents it."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


@lru_cache(maxsize=1)
def _adjtimex() -> Callable[[Any], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        return libc.adjtimex
    except (OSError, AttributeError):
        return None


def kernel_ntp_synchronized() -> bool | None:
    """The kernel's verdict (timedatectl's answer) in one system call; None where it cannot say.

    ``modes`` 0 only reads, which any user may do.
    """
    call = _adjtimex()
    if call is None:
        return None
    timex = _Timex()  # zeroed: modes 0
    if call(ctypes.byref(timex)) < 0:
        return None
    return bool(timex.maxerror < MAX_ERROR_US)
