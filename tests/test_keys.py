"""The device key, signed JSON documents and ``bodycam provision`` (SPEC 12)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from camera.cli import main
from camera.config import load_config
from camera.errors import ConfigError
from camera.evidence.audit import read_audit, verify_audit
from camera.evidence.canonical import canonical, check_document, sign_document
from camera.evidence.keys import (
    DeviceKey,
    DeviceKeyError,
    export_public_key,
    generate_key,
    key_id_of,
    load_key,
    load_public_key,
    save_key,
    test_key,
    verify_digest,
    verify_signature,
)

MISMATCH = "signature does not match (field edited or signed by another key)"


def _write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def _pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# -- the key ------------------------------------------------------------------------
def test_test_key_is_deterministic_and_labelled() -> None:
    a, b = test_key("BWC-0001", 7), test_key("BWC-0001", 7)
    assert a.test and a.key_id == b.key_id and a.public_pem == b.public_pem
    assert a.sign(b"frame") == b.sign(b"frame")  # RFC 6979: reruns are byte-identical


def test_test_key_differs_by_seed_and_device() -> None:
    ids = {test_key(d, s).key_id for d in ("BWC-0001", "BWC-0002", "BWC-00012") for s in (0, 1, 2)}
    assert len(ids) == 9
    # The id and the seed are separated, so ("BWC-1", 23) and ("BWC-12", 3) differ.
    assert test_key("BWC-1", 23).key_id != test_key("BWC-12", 3).key_id


def test_public_pem_and_key_id() -> None:
    key = test_key("BWC-0001", 0)
    assert key.public_pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    der = key.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key.key_id == hashlib.sha256(der).hexdigest() == key_id_of(key.public_key)
    loaded = serialization.load_pem_public_key(key.public_pem)
    assert key_id_of(loaded) == key.key_id  # type: ignore[arg-type]
    assert key.key_id[:16] in repr(key) and "private" not in repr(key).lower()


def test_a_device_key_is_p256_only() -> None:
    with pytest.raises(TypeError, match="P-256"):
        DeviceKey(ec.generate_private_key(ec.SECP384R1()))


def test_sign_and_verify() -> None:
    key = test_key("BWC-0001", 0)
    sig = key.sign(b"data")
    assert verify_signature(key.public_key, b"data", sig)
    assert not verify_signature(key.public_key, b"datA", sig)
    assert not verify_signature(test_key("BWC-0001", 1).public_key, b"data", sig)
    digest = hashlib.sha256(b"data").digest()
    assert verify_digest(key.public_key, digest, key.sign_digest(digest))
    assert verify_digest(key.public_key, digest, sig)  # the same signature, prehashed
    assert not verify_digest(key.public_key, digest[:31], sig)
    with pytest.raises(ValueError, match="32-byte"):
        key.sign_digest(b"short")


@given(st.binary(max_size=100))
def test_garbage_signatures_are_false_never_an_exception(garbage: bytes) -> None:
    key = test_key("BWC-0001", 0)
    assert not verify_signature(key.public_key, b"data", garbage)
    assert not verify_digest(key.public_key, bytes(32), garbage)


def test_generate_key_is_random_p256() -> None:
    a, b = generate_key(), generate_key()
    assert not a.test and a.key_id != b.key_id
    assert isinstance(a.private_key.curve, ec.SECP256R1)


# -- key files ----------------------------------------------------------------------------
def test_save_key_0600_in_a_0700_directory_and_load_it(tmp_path: Path) -> None:
    key = generate_key()
    path = save_key(key, tmp_path / "etc" / "bodycam" / "device.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")  # PKCS8
    assert os.listdir(path.parent) == ["device.key"]  # no temp file left behind
    loaded = load_key(path)
    assert loaded.key_id == key.key_id and not loaded.test


def test_save_key_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = save_key(generate_key(), tmp_path / "device.key")
    before = path.read_bytes()
    with pytest.raises(DeviceKeyError, match="--force") as err:
        save_key(generate_key(), path)
    assert str(path) in str(err.value)
    assert path.read_bytes() == before
    other = generate_key()
    save_key(other, path, force=True)
    assert load_key(path).key_id == other.key_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_save_key_refuses_a_test_key_and_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="test key"):
        save_key(test_key("BWC-0001", 0), tmp_path / "device.key")
    with pytest.raises(DeviceKeyError, match="got a directory"):
        save_key(generate_key(), tmp_path, force=True)


def test_save_key_unwritable_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(DeviceKeyError, match="cannot write the device key"):
        save_key(generate_key(), tmp_path / "file" / "device.key")


def test_load_key_missing_says_provision(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    with pytest.raises(DeviceKeyError) as err:
        load_key(path)
    assert str(err.value) == f"no device key at {path}: run `bodycam provision`"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_load_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = _write(tmp_path / "device.key", _pem(generate_key().private_key), mode)
    with pytest.raises(DeviceKeyError, match=f"mode {mode:04o} lets other users read") as err:
        load_key(path)
    assert "chmod 600" in str(err.value)


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"", "got no PEM block"),
        (b"not a key at all\n", "got no PEM block"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "unreadable PEM"),
        (_pem(ec.generate_private_key(ec.SECP384R1())), "got curve secp384r1"),
        (_pem(rsa.generate_private_key(65537, 1024)), "got a non-EC key (RSAPrivateKey)"),
        (
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"pw"),
            ),
            "password-protected",
        ),
    ],
)
def test_load_key_rejects_what_is_not_a_p256_private_key(
    tmp_path: Path, data: bytes, what: str
) -> None:
    path = _write(tmp_path / "device.key", data)
    with pytest.raises(DeviceKeyError, match="expected a PEM private key on curve P-256") as err:
        load_key(path)
    assert what in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_load_key_of_a_directory(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir(mode=0o700)
    with pytest.raises(DeviceKeyError, match="expected a device key file"):
        load_key(tmp_path / "d")


def test_load_public_key(tmp_path: Path) -> None:
    key = test_key("BWC-0001", 0)
    path = _write(tmp_path / "k.pub.pem", key.public_pem, 0o644)
    public, key_id = load_public_key(path)
    assert key_id == key.key_id and verify_signature(public, b"x", key.sign(b"x"))


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (None, "no such file"),
        (b"hello", "got no PEM block"),
        (_pem(generate_key().private_key), "got a private key"),
        (
            rsa.generate_private_key(65537, 1024)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "got a non-EC key",
        ),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "unreadable PEM"),
    ],
)
def test_load_public_key_rejections(tmp_path: Path, data: bytes | None, what: str) -> None:
    path = tmp_path / "k.pub.pem"
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(DeviceKeyError, match=what):
        load_public_key(path)


def test_export_public_key(tmp_path: Path) -> None:
    key, other = test_key("BWC-0001", 0), test_key("BWC-0001", 1)
    path, kept = export_public_key(tmp_path / "store", "BWC-0001", key)
    assert path == tmp_path / "store" / "BWC-0001.pub.pem" and kept is None
    assert path.read_bytes() == key.public_pem
    assert export_public_key(tmp_path / "store", "BWC-0001", key) == (path, None)  # same bytes
    with pytest.raises(DeviceKeyError, match="holds another public key") as err:
        export_public_key(tmp_path / "store", "BWC-0001", other)
    assert key.key_id[:16] in str(err.value)
    assert path.read_bytes() == key.public_pem  # never overwritten silently
    path, kept = export_public_key(tmp_path / "store", "BWC-0001", other, replace=True)
    assert path.read_bytes() == other.public_pem
    assert kept == tmp_path / "store" / f"BWC-0001.{key.key_id[:16]}.pub.pem"
    assert kept.read_bytes() == key.public_pem  # the old key is kept, not deleted
    with pytest.raises(ValueError, match="device id"):
        export_public_key(tmp_path, "../x", key)


# -- signed documents ------------------------------------------------------------------------
def test_canonical_form() -> None:
    assert (
        canonical({"b": 1, "a": [1.5, "é"], "c": None}) == '{"a":[1.5,"é"],"b":1,"c":null}'.encode()
    )
    with pytest.raises(ValueError):
        canonical({"x": float("nan")})


def test_sign_document_round_trip() -> None:
    key = test_key("BWC-0001", 0)
    doc = sign_document(key, {"recording_id": "r1", "frames": 300, "signature": "old"})
    assert set(doc) == {"recording_id", "frames", "signature"}
    assert sign_document(key, doc) == doc  # deterministic, and re-signing ignores the old one
    assert check_document(key.public_key, doc) is None
    # Pretty-printed on disk and parsed back: the signature covers meaning, not layout.
    assert check_document(key.public_key, json.loads(json.dumps(doc, indent=2))) is None


def test_check_document_detects_edits_and_other_keys() -> None:
    key = test_key("BWC-0001", 0)
    doc = sign_document(key, {"recording_id": "r1", "frames": 300})
    assert check_document(key.public_key, {**doc, "frames": 301}) == MISMATCH
    assert check_document(key.public_key, {**doc, "extra": 1}) == MISMATCH
    assert check_document(test_key("BWC-0001", 1).public_key, doc) == MISMATCH
    forged = sign_document(test_key("BWC-0001", 1), {"recording_id": "r1", "frames": 300})
    assert check_document(key.public_key, forged) == MISMATCH


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ([1, 2], "not a JSON object"),
        ({"a": 1}, "no signature"),
        ({"a": 1, "signature": 5}, "signature is not base64"),
        ({"a": 1, "signature": "not base64!"}, "signature is not base64"),
        ({"a": 1, "signature": "AAB="}, "signature is not canonical base64"),
        ({"a": float("nan"), "signature": "AAAA"}, "cannot be put in canonical form"),
    ],
)
def test_check_document_rejections(doc: Any, reason: str) -> None:
    result = check_document(test_key("BWC-0001", 0).public_key, doc)
    assert result is not None and result.startswith(reason)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=10,
)


@given(_json, st.text(max_size=12) | st.integers())
def test_check_document_never_raises(doc: Any, signature: Any) -> None:
    key = test_key("BWC-0001", 0)
    if isinstance(doc, dict):
        doc = {**doc, "signature": signature}
    result = check_document(key.public_key, doc)
    assert result is not None  # nothing random carries a good signature


# -- configuration -------------------------------------------------------------------------
def test_config_key_file(tmp_path: Path) -> None:
    assert load_config(None).device.key_file == "/etc/bodycam/device.key"
    config = tmp_path / "c.toml"
    config.write_text('[device]\nkey_file = ""\n')
    with pytest.raises(ConfigError, match=r"device\.key_file: expected a non-empty string"):
        load_config(config)


# -- bodycam provision -----------------------------------------------------------------------
@pytest.fixture
def device(tmp_path: Path) -> dict[str, Path]:
    config = tmp_path / "device.toml"
    store, key = tmp_path / "store", tmp_path / "etc" / "device.key"
    config.write_text(f'[device]\nid = "BWC-0042"\nstorage = "{store}"\nkey_file = "{key}"\n')
    return {"config": config, "store": store, "key": key, "pub": store / "BWC-0042.pub.pem"}


def test_provision(device: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["provision", "--config", str(device["config"])]) == 0
    out = capsys.readouterr().out
    key = load_key(device["key"])
    assert stat.S_IMODE(device["key"].stat().st_mode) == 0o600
    assert device["pub"].read_bytes() == key.public_pem
    assert key.key_id in out and str(device["key"]) in out and str(device["pub"]) in out
    entries = read_audit(device["store"] / "audit.jsonl")
    assert [e["event"] for e in entries] == ["key_provisioned", "checkpoint"]
    assert entries[0]["key_id"] == key.key_id and entries[0]["public_key"] == "BWC-0042.pub.pem"
    assert verify_audit(device["store"] / "audit.jsonl", key.public_key) == ([], [])


def test_provision_refuses_to_overwrite(
    device: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["provision", "--config", str(device["config"])]) == 0
    before = device["key"].read_bytes(), device["pub"].read_bytes()
    capsys.readouterr()
    assert main(["provision", "--config", str(device["config"])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(device["key"]) in err and "--force" in err
    assert (device["key"].read_bytes(), device["pub"].read_bytes()) == before
    assert len(read_audit(device["store"] / "audit.jsonl")) == 2  # nothing logged


def test_provision_force_keeps_the_old_public_key(
    device: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["provision", "--config", str(device["config"])]) == 0
    old = load_key(device["key"])
    assert main(["provision", "--config", str(device["config"]), "--force"]) == 0
    new = load_key(device["key"])
    assert new.key_id != old.key_id and device["pub"].read_bytes() == new.public_pem
    kept = device["store"] / f"BWC-0042.{old.key_id[:16]}.pub.pem"
    assert kept.read_bytes() == old.public_pem and str(kept) in capsys.readouterr().out
    log = device["store"] / "audit.jsonl"
    assert verify_audit(log, [new.public_key, old.public_key]) == ([], [])
    problems, _ = verify_audit(log, new.public_key)
    assert problems == [
        f"audit.jsonl checkpoint at line 2: signed by another key (key_id {old.key_id[:16]}..., "
        f"trusted: {new.key_id[:16]}...)"
    ]


def test_provision_key_file_overrides_the_config(
    device: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other" / "k.pem"
    assert main(["provision", "--config", str(device["config"]), "--key-file", str(other)]) == 0
    assert load_key(other).public_pem == device["pub"].read_bytes()
    assert not device["key"].exists()


def test_provision_refuses_a_storage_holding_another_public_key(
    device: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    export_public_key(device["store"], "BWC-0042", test_key("BWC-0042", 0))
    assert main(["provision", "--config", str(device["config"])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(device["pub"]) in err and "--force" in err
    assert not device["key"].exists()  # refused before anything was written


def test_provision_bad_config_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[device]\nkey_file = 3\n")
    assert main(["provision", "--config", str(bad)]) == 2
    assert "device.key_file: expected a string" in capsys.readouterr().err


def test_provision_unwritable_key_path_is_exit_2(
    device: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain").write_text("x")
    key = tmp_path / "plain" / "device.key"
    assert main(["provision", "--config", str(device["config"]), "--key-file", str(key)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write the device key" in err


def test_signature_bytes_are_der(tmp_path: Path) -> None:
    """DER ECDSA: a SEQUENCE of two INTEGERs, as SVF and verify expect."""
    sig = test_key("BWC-0001", 0).sign(b"x")
    assert sig[0] == 0x30 and sig[1] == len(sig) - 2
    assert base64.b64decode(base64.b64encode(sig)) == sig
