"""Whether the OS says its clock is synchronized by NTP.

Asking the operating system is the hardware layer's business, so it lives in
``hal/``, not in the doctor that reports it; the doctor takes it as a
parameter, and tests hand it an answer instead of a host.
"""

from __future__ import annotations

import shutil
import subprocess

__all__ = ["ntp_synchronized"]


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
