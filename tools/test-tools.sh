#!/usr/bin/env bash
# The OS tools `make test` needs beyond the virtualenv: systemd-analyze, which
# checks deploy/bodycam.service, the PostgreSQL server (initdb, postgres),
# which the evidence store's tests start on loopback (tests/services.py), and
# Chromium with chromium-driver for the review page's browser tests. On
# Linux they are installed from the distribution when missing (Debian/Raspberry
# Pi OS: apt, as root or with password-less sudo); otherwise this says what to
# install and the tests that need them fail naming it. Elsewhere (macOS) there
# is no systemd to check against, and PostgreSQL is yours to install.
set -euo pipefail
[ "$(uname -s)" = Linux ] || exit 0
missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
# Debian keeps the server binaries off PATH, under /usr/lib/postgresql/VERSION/bin.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
    || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
# The review page's browser tests drive Debian's Chromium through its chromedriver
# (tests/test_review_browser.py); Selenium never downloads a browser of its own.
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "test-tools: missing; install them: sudo apt-get install ${missing[*]}" >&2
        exit 0
    fi
    echo "test-tools: installing ${missing[*]} with apt-get" >&2
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "test-tools: missing; install your distribution's packages for: ${missing[*]}" >&2
fi
