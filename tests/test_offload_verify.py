"""``bodycam verify STORAGE`` after an offload (issue 16, item 3): gone, but accounted for.

The chain of manifests and the audit log still name the recordings the
offload deleted. verify accepts that only when a kept receipt names the
manifest they name and the audit log has the ``offloaded`` and ``deleted``
entries for it; with the server's key it checks the receipt's signature too.
Anything else missing is still a failure.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from camera.cli import main
from camera.evidence.canonical import canonical, sign_document
from camera.evidence.keys import generate_key, load_public_key
from camera.evidence.receipts import RECEIPTS
from camera.offload import Offloader
from camera.offload_http import RetryPolicy
from tests.offload_support import DEVICE, device_key, live_server, make_recordings


@pytest.fixture(scope="module")
def offloaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """(storage, server public key, recording ids): the first two offloaded, the last kept."""
    root = tmp_path_factory.mktemp("offloaded")
    storage = root / "store"
    names = make_recordings(storage)
    with live_server(root / "data", enroll_from=storage) as srv:
        report = Offloader(
            storage,
            device_key(),
            DEVICE,
            srv.url,
            load_public_key(srv.public_key)[0],
            retry=RetryPolicy(random.Random(0), sleep=lambda s: None),
            utc=lambda: datetime(2026, 1, 1, 18, tzinfo=UTC),
            client=httpx.Client(),
            busy=lambda: {names[-1]},  # as if still being written
        ).run()
        assert report.ok
        key = shutil.copy(srv.public_key, root / "evidence-server.pub.pem")
    return storage, Path(key), names


@pytest.fixture
def storage(offloaded: tuple[Path, Path, list[str]], tmp_path: Path) -> Path:
    return Path(shutil.copytree(offloaded[0], tmp_path / "store"))


def verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["verify", *argv])
    out, _ = capsys.readouterr()
    return code, out


def receipt_file(storage: Path, name: str) -> Path:
    return storage / RECEIPTS / f"{name}.json"


def test_the_kept_recording_links_to_one_vouched_for_by_its_receipt(
    storage: Path, offloaded: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, names = offloaded
    code, out = verify(capsys, str(storage))
    assert code == 0, out
    assert (
        f"note: {names[2]}: previous {names[1]} was offloaded and deleted, vouched for by " in out
    )
    assert "server signature not checked" in out
    assert "1 of 1 recordings verified" in out and "receipts intact" in out


def test_with_the_server_key_the_receipt_signatures_are_checked(
    storage: Path, offloaded: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, server_key, _ = offloaded
    device = storage / f"{DEVICE}.pub.pem"
    code, out = verify(capsys, "--key", str(device), "--key", str(server_key), str(storage))
    assert code == 0, out
    assert "every server signature checked" in out and "not checked" not in out
    # The same, from a server.pub.pem kept beside the storage (not independently trusted).
    shutil.copy(server_key, storage / "server.pub.pem")
    code, out = verify(capsys, str(storage))
    assert code == 0 and "every server signature checked" in out, out


def test_a_receipt_signed_by_another_key_fails_when_the_server_key_is_known(
    storage: Path, offloaded: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, server_key, names = offloaded
    path = receipt_file(storage, names[1])
    forged = sign_document(generate_key(), json.loads(path.read_bytes()))
    path.write_bytes(canonical(forged))
    device = storage / f"{DEVICE}.pub.pem"
    code, out = verify(capsys, "--key", str(device), "--key", str(server_key), str(storage))
    assert code == 1
    assert f"receipts/{names[1]}.json: server signature does not match" in out


def test_a_missing_receipt_is_a_missing_recording(
    storage: Path, offloaded: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, names = offloaded
    receipt_file(storage, names[1]).unlink()
    code, out = verify(capsys, str(storage))
    assert code == 1
    assert f"recording {names[1]} stopped at" in out and "is missing (deleted?)" in out


def test_a_receipt_the_audit_log_does_not_name_vouches_for_nothing(
    storage: Path, offloaded: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, names = offloaded
    path = receipt_file(storage, names[0])
    receipt = json.loads(path.read_bytes())
    receipt["frames"] += 1  # another receipt than the one the offload recorded
    path.write_bytes(canonical(receipt))
    code, out = verify(capsys, str(storage))
    assert code == 1
    assert f"{names[0]} is gone, but the audit log has no offloaded and deleted entries" in out


def test_a_receipt_naming_another_manifest_breaks_the_link(
    storage: Path, offloaded: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """The chain names one manifest, the receipt another: the link is not vouched for."""
    _, _, names = offloaded
    audit = storage / "audit.jsonl"
    path = receipt_file(storage, names[1])
    receipt = json.loads(path.read_bytes())
    other = "ab" * 32
    receipt["manifest_sha256"] = receipt["files"]["manifest.json"] = other
    old_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(canonical(receipt))
    new_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    # Even with the audit log rewritten to name the new receipt (its checkpoint then fails too).
    audit.write_text(audit.read_text().replace(old_sha, new_sha))
    code, out = verify(capsys, str(storage))
    assert code == 1
    assert f"{names[2]}: previous names {names[1]} with manifest sha256" in out
    assert "but its receipt names abababababababab..." in out
    assert "offloaded with another manifest than the one recorded" in out


def test_a_recording_deleted_without_an_offload_is_still_missing(
    storage: Path, offloaded: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, names = offloaded
    shutil.rmtree(storage / names[2])
    code, out = verify(capsys, str(storage))
    assert code == 1
    assert f"recording {names[2]} stopped at" in out and "is missing (deleted?)" in out
