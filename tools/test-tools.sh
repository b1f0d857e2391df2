#!/usr/bin/env bash
# The OS tools `make test` needs beyond the virtualenv: systemd-analyze, which
# checks deploy/bodycam.service. On Linux, where the unit runs, it is installed
# from the distribution when missing (Debian/Raspberry Pi OS: apt, as root or
# with password-less sudo); otherwise this says what to install and the unit
# tests fail naming it. Elsewhere (macOS) there is no systemd to check against.
set -euo pipefail
[ "$(uname -s)" = Linux ] || exit 0
command -v systemd-analyze >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "test-tools: systemd-analyze missing; install it: sudo apt-get install systemd" >&2
        exit 0
    fi
    echo "test-tools: installing systemd (for systemd-analyze) with apt-get" >&2
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends systemd >/dev/null
else
    echo "test-tools: systemd-analyze missing; install your distribution's systemd package" >&2
fi
