#!/usr/bin/env bash
# Install bodycam as a systemd service on Raspberry Pi OS (Bookworm or Trixie).
#
#     sudo make install-pi                  # or: sudo deploy/install-pi.sh
#     deploy/install-pi.sh --dry-run        # print what it would do, change nothing
#
# Idempotent: run it again after `git pull` to upgrade. What it does:
#   - apt: python3-venv, python3-picamera2, python3-lgpio and libportaudio2 (Picamera2 and
#     lgpio come from the OS: pip cannot provide libcamera's bindings, and the
#     lgpio sdist needs a compiler and headers);
#   - a `bodycam` system user in the gpio, video, dialout and audio groups;
#   - a copy of this checkout in /opt/bodycam/src (so the service never runs
#     code out of a home directory, which it cannot even read: ProtectHome=),
#     installed with pip into /opt/bodycam/.venv, a venv made with
#     --system-site-packages so it sees Picamera2 and lgpio; numpy is held to
#     the OS's major version, which the OS's compiled modules (simplejpeg,
#     used by Picamera2) were built against (picamera2#1088, #1211);
#   - /etc/bodycam/bodycam.toml from deploy/bodycam.toml, only if missing;
#   - the storage directory, owned by bodycam;
#   - `bodycam provision` when the device key does not exist yet;
#   - the unit, enabled and (re)started.
# It refuses (exit 2, one line) off a Raspberry Pi, and without root unless
# --dry-run. BODYCAM_PI_MODEL_FILE replaces /proc/device-tree/model (tests).
set -euo pipefail

PROG=install-pi.sh
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=/opt/bodycam
APP=$PREFIX/src
VENV=$PREFIX/.venv
ETC=/etc/bodycam
CONFIG=$ETC/bodycam.toml
STATE=/var/lib/bodycam
UNIT=/etc/systemd/system/bodycam.service
DROPIN=/etc/systemd/system/bodycam.service.d/storage.conf
SERVICE_USER=bodycam
SERVICE_GROUPS=(gpio video dialout audio)
APT_PACKAGES=(python3-venv python3-picamera2 python3-lgpio libportaudio2)
MODEL_FILE=${BODYCAM_PI_MODEL_FILE:-/proc/device-tree/model}

DRY_RUN=0
START=1

die() {
    echo "$PROG: $*" >&2
    exit 2
}

usage() {
    echo "usage: $PROG [--dry-run] [--no-start]"
    echo "  --dry-run   print what would be done; change nothing (no root needed)"
    echo "  --no-start  install and enable the service, but do not (re)start it"
}

for arg in "$@"; do
    case $arg in
        --dry-run) DRY_RUN=1 ;;
        --no-start) START=0 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown option '$arg' (expected --dry-run, --no-start or --help)" ;;
    esac
done

# -- refuse early, in one line ------------------------------------------------------
model=""
if [[ -r $MODEL_FILE ]]; then
    model=$(tr -d '\0' <"$MODEL_FILE")
fi
if [[ $model != "Raspberry Pi"* ]]; then
    die "not a Raspberry Pi ($MODEL_FILE: ${model:-missing}); this installs the service on Raspberry Pi OS only"
fi
if ((EUID != 0 && !DRY_RUN)); then
    die "must run as root: sudo make install-pi (or --dry-run to see what it would do)"
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    die "needs python3 >= 3.11 (Raspberry Pi OS Bookworm or later), found $(python3 --version 2>&1 || echo none)"
fi

# -- how things are done, or only shown -----------------------------------------------
step() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
run() {
    local arg line="+"
    for arg in "$@"; do
        if [[ $arg =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
            line+=" $arg"
        else
            line+=" $(printf '%q' "$arg")"
        fi
    done
    printf '%s\n' "$line"
    if ((!DRY_RUN)); then
        "$@"
    fi
}
# write PATH MODE TEXT: a small file, replaced whole.
write() {
    printf '+ write %s (mode %s)\n' "$1" "$2"
    if ((!DRY_RUN)); then
        install -d -m 0755 "$(dirname "$1")"
        printf '%s' "$3" >"$1.tmp"
        chmod "$2" "$1.tmp"
        mv -f "$1.tmp" "$1"
    fi
}

mode=""
((DRY_RUN)) && mode=" (dry run: nothing is changed)"
step "bodycam from $SRC onto $model$mode"
case $(uname -m) in
    aarch64) ;;
    *) note "warning: $(uname -m): this targets 64-bit Raspberry Pi OS (aarch64); wheels for av and opencv may be missing" ;;
esac

# -- 1. packages from the OS --------------------------------------------------------------
step "OS packages: ${APT_PACKAGES[*]}"
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    run apt-get update
    run apt-get install -y --no-install-recommends "${missing[@]}"
else
    note "all installed"
fi

# -- 2. the service user ------------------------------------------------------------------
step "user $SERVICE_USER in groups ${SERVICE_GROUPS[*]}"
if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    run useradd --system --user-group --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment "bodycam firmware" "$SERVICE_USER"
fi
present=()
for group in "${SERVICE_GROUPS[@]}"; do
    if getent group "$group" >/dev/null; then
        present+=("$group")
    else
        note "warning: group $group does not exist (not Raspberry Pi OS?); the unit's SupplementaryGroups= will fail"
    fi
done
if ((${#present[@]})); then
    run usermod --append --groups "$(
        IFS=,
        echo "${present[*]}"
    )" "$SERVICE_USER"
fi

# -- 3. the code and its venv ---------------------------------------------------------------
step "code: $SRC -> $APP, venv $VENV"
run install -d -m 0755 "$PREFIX"
run rm -rf "$APP"
run install -d -m 0755 "$APP"
note "copy the checkout without .git, .venv, recordings, build output or a device key"
if ((!DRY_RUN)); then
    tar -C "$SRC" -cf - \
        --exclude=./.git --exclude=./.venv --exclude=./recordings --exclude=./bench-out \
        --exclude=./build --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache \
        --exclude=.hypothesis --exclude=.ruff_cache --exclude='*.key' . |
        tar -C "$APP" -xf - --no-same-owner
    {
        echo "source: $SRC"
        echo "commit: $(git -c safe.directory="$SRC" -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown)"
        echo "installed: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    } >"$APP/INSTALLED_FROM"
fi
if [[ -f $VENV/pyvenv.cfg ]] && grep -qiE '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg"; then
    note "keep $VENV (it sees the system site packages)"
else
    [[ -e $VENV ]] && run rm -rf "$VENV"
    run python3 -m venv --system-site-packages "$VENV"
fi
numpy_major=$(python3 -c 'import numpy; print(numpy.__version__.split(".")[0])' 2>/dev/null || true)
if [[ -n $numpy_major ]]; then
    write "$PREFIX/constraints.txt" 0644 "numpy<$((numpy_major + 1))
"
else
    note "the OS's numpy is not installed yet: apt brings it with python3-picamera2"
    write "$PREFIX/constraints.txt" 0644 ""
fi
run "$VENV/bin/python" -m pip install --quiet --constraint "$PREFIX/constraints.txt" "${APP}[pi]"
run ln -sfn "$VENV/bin/bodycam" /usr/local/bin/bodycam

# -- 4. configuration, storage, key ---------------------------------------------------------
step "configuration $CONFIG"
run install -d -m 0750 -o root -g "$SERVICE_USER" "$ETC"
if [[ -e $CONFIG ]]; then
    note "keep the existing $CONFIG (the shipped one is $SRC/deploy/bodycam.toml)"
else
    run install -m 0640 -o root -g "$SERVICE_USER" "$SRC/deploy/bodycam.toml" "$CONFIG"
fi

# device.storage and device.key_file, validated by the firmware's own loader when
# it is installed (a bad config stops here, with its one line); read plainly before.
settings() {
    local py=python3 cfg=$CONFIG
    [[ -x $VENV/bin/python ]] && py=$VENV/bin/python
    [[ -e $cfg ]] || cfg=$SRC/deploy/bodycam.toml
    (cd / && "$py" - "$cfg") <<'PY'
import sys

try:
    from camera.config import load_config
    from camera.errors import ConfigError
except ImportError:
    import tomllib

    with open(sys.argv[1], "rb") as f:
        device = tomllib.load(f).get("device", {})
    print(device.get("storage", "recordings"))
    print(device.get("key_file", "/etc/bodycam/device.key"))
else:
    try:
        device = load_config(sys.argv[1]).device
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    print(device.storage)
    print(device.key_file)
PY
}
if ! found=$(settings 2>&1); then
    die "$found"
fi
storage=$(sed -n 1p <<<"$found")
key=$(sed -n 2p <<<"$found")
[[ $storage == /* ]] || die "$CONFIG: device.storage: expected an absolute path for the service, got '$storage'"
[[ $key == /* ]] || die "$CONFIG: device.key_file: expected an absolute path for the service, got '$key'"

step "storage $storage"
if [[ $storage == "$STATE" || $storage == "$STATE"/* ]]; then
    run install -d -m 0750 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE"
    [[ -e $DROPIN ]] && run rm -f "$DROPIN"
else
    note "outside $STATE: the unit may write there only through a drop-in"
    write "$DROPIN" 0644 "[Service]
ReadWritePaths=$storage
"
fi
run install -d -m 0750 -o "$SERVICE_USER" -g "$SERVICE_USER" "$storage"

step "device key $key"
if [[ -e $key ]]; then
    note "keep the existing key"
else
    if systemctl is-active --quiet bodycam.service 2>/dev/null; then
        run systemctl stop bodycam.service # provision locks the storage directory
    fi
    run "$VENV/bin/bodycam" provision --config "$CONFIG"
    # provision ran as root: what it created in the storage (public key, audit
    # log) must be the service's to append to.
    run chown -R "$SERVICE_USER:$SERVICE_USER" "$storage"
fi
run chown "$SERVICE_USER:$SERVICE_USER" "$key"
run chmod 0600 "$key"

# -- 5. the unit ----------------------------------------------------------------------------
step "systemd unit $UNIT"
run install -m 0644 "$SRC/deploy/bodycam.service" "$UNIT"
run systemctl daemon-reload
run systemctl enable bodycam.service
if ((START)); then
    run systemctl restart bodycam.service
fi

step "done; check it with:"
note "systemctl status bodycam"
note "journalctl -u bodycam -f"
note "sudo systemctl stop bodycam; cd /tmp && sudo -u $SERVICE_USER bodycam doctor --config $CONFIG --board pi"
