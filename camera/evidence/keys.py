"""The device key: ECDSA P-256, the curve of the Axis Signed Video Framework and ONVIF.

Why it is built this way (SPEC 12):

- One key signs everything the device vouches for (in-stream video, manifests,
  audit checkpoints), so :class:`DeviceKey` is the only thing that holds the
  private half, and :attr:`DeviceKey.public_pem` is the one rendering of the
  public half: the same bytes are exported beside the recordings and embedded
  in signed video, and they must match byte for byte.
- Signatures use RFC 6979 deterministic nonces: a simulated run with the same
  scenario and seed stays byte-identical, and no signature depends on the
  quality of a random source on a small board.
- In simulation the key is derived from the device id and the scenario seed
  (:func:`test_key`) and labelled a test key; it proves nothing to a court and
  must never be mistaken for a provisioned one.
- A key file anyone but its owner can read is refused: a key others may have
  copied no longer proves which device signed.
- Nothing here overwrites a key or a public key silently: recordings already
  on a card verify only with the key that signed them.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from camera.errors import InputError
from hal.storage import Storage, fsync_dir

__all__ = [
    "P256_ORDER",
    "DeviceKey",
    "DeviceKeyError",
    "export_public_key",
    "generate_key",
    "key_id_of",
    "load_key",
    "load_public_key",
    "public_key_path",
    "save_key",
    "test_key",
    "verify_digest",
    "verify_signature",
]

#: Order n of the P-256 group: a private scalar lies in [1, n - 1].
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_TEST_KEY_LABEL = b"bodycam test key\0"
_SIGN = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
_SIGN_DIGEST = ec.ECDSA(Prehashed(hashes.SHA256()), deterministic_signing=True)
_VERIFY = ec.ECDSA(hashes.SHA256())
_VERIFY_DIGEST = ec.ECDSA(Prehashed(hashes.SHA256()))


class DeviceKeyError(InputError):
    """A key file is missing, unreadable, malformed, too open, or would be overwritten."""


def key_id_of(public_key: ec.EllipticCurvePublicKey) -> str:
    """Hex sha256 of the SubjectPublicKeyInfo DER: names a key without showing it."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class DeviceKey:
    """The private key and whether it is a simulation's test key."""

    private_key: ec.EllipticCurvePrivateKey
    test: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            self.private_key.curve, ec.SECP256R1
        ):
            raise TypeError("a device key is an ECDSA private key on curve P-256 (secp256r1)")

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    @property
    def public_pem(self) -> bytes:
        """The public key as exported and embedded everywhere (PEM SubjectPublicKeyInfo)."""
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def sign(self, data: bytes) -> bytes:
        """DER ECDSA-SHA256 over ``data``, deterministic (RFC 6979)."""
        return self.private_key.sign(data, _SIGN)

    def sign_digest(self, digest: bytes) -> bytes:
        """DER ECDSA over an already computed SHA-256 ``digest`` (32 bytes)."""
        if len(digest) != 32:
            raise ValueError(f"expected a 32-byte SHA-256 digest, got {len(digest)} bytes")
        return self.private_key.sign(digest, _SIGN_DIGEST)

    def __repr__(self) -> str:  # never print key material, not even by accident
        return f"DeviceKey(key_id={self.key_id[:16]}..., test={self.test})"


def test_key(device_id: str, seed: int) -> DeviceKey:
    """The simulation's key for one device and scenario seed: reruns sign identically."""
    material = _TEST_KEY_LABEL + device_id.encode() + b"\0" + str(int(seed)).encode()
    scalar = int.from_bytes(hashlib.sha256(material).digest(), "big") % (P256_ORDER - 1) + 1
    return DeviceKey(ec.derive_private_key(scalar, ec.SECP256R1()), test=True)


test_key.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported


def generate_key() -> DeviceKey:
    """A fresh device key from the OS's random source (``bodycam provision``)."""
    return DeviceKey(ec.generate_private_key(ec.SECP256R1()))


# -- private key files ---------------------------------------------------------
def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def load_key(path: str | os.PathLike[str]) -> DeviceKey:
    """The provisioned key at ``path``; every problem is one :class:`DeviceKeyError` line."""
    where = os.fsdecode(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise DeviceKeyError(f"no device key at {where}: run `bodycam provision`") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = _reason(exc) if isinstance(exc, OSError) else str(exc)
        raise DeviceKeyError(f"{where}: cannot read the device key: {reason}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DeviceKeyError(f"{where}: expected a device key file, got a directory or device")
        if st.st_mode & 0o077:
            mode = stat.S_IMODE(st.st_mode)
            raise DeviceKeyError(
                f"{where}: mode {mode:04o} lets other users read the device key, so it no "
                f"longer proves which device signed; expected mode 0600 (chmod 600 {where}), "
                "or provision a new key"
            )
        data = os.read(fd, 1 << 16)  # a PEM key is a few hundred bytes
    except OSError as exc:
        raise DeviceKeyError(f"{where}: cannot read the device key: {_reason(exc)}") from None
    finally:
        os.close(fd)
    return DeviceKey(_parse_private(where, data))


def _parse_private(where: str, data: bytes) -> ec.EllipticCurvePrivateKey:
    expected = "expected a PEM private key on curve P-256 (as `bodycam provision` writes)"
    if b"-----BEGIN" not in data:
        raise DeviceKeyError(f"{where}: {expected}, got no PEM block")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted
        raise DeviceKeyError(f"{where}: {expected}, got a password-protected key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise DeviceKeyError(f"{where}: {expected}, got an unreadable PEM block") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise DeviceKeyError(f"{where}: {expected}, got a non-EC key ({type(key).__name__})")
    if not isinstance(key.curve, ec.SECP256R1):
        raise DeviceKeyError(f"{where}: {expected}, got curve {key.curve.name}")
    return key


def _write_temp(path: Path, data: bytes, mode: int) -> Path:
    """``data`` in a fresh temp file beside ``path``, at ``mode``, fsync'ed."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # left by a power cut during an earlier attempt
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # exactly this mode, whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def _place(tmp: Path, path: Path, replace: bool) -> bool:
    """Move ``tmp`` to ``path`` atomically; False if ``path`` exists and not ``replace``."""
    if replace:
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)  # atomic and never clobbers: EEXIST if path exists
        except FileExistsError:
            tmp.unlink()
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
                tmp.unlink()
                raise
            if path.exists():  # no hard links here (FAT): check, then rename
                tmp.unlink()
                return False
            os.replace(tmp, path)
        else:
            tmp.unlink()
    fsync_dir(path.parent)
    return True


def _refuse_overwrite(path: Path) -> DeviceKeyError:
    return DeviceKeyError(
        f"{path}: a device key already exists (recordings it signed verify only with it); "
        "pass --force to replace it"
    )


def save_key(key: DeviceKey, path: str | os.PathLike[str], force: bool = False) -> Path:
    """Write ``key`` as PKCS8 PEM, mode 0600, atomically; never replace one unless ``force``."""
    target = Path(path)
    if key.test:
        raise ValueError("a simulation test key is derived, never saved as a device key")
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        if target.is_dir():
            raise DeviceKeyError(f"{target}: expected a key file path, got a directory")
        if target.exists() and not force:
            raise _refuse_overwrite(target)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = _write_temp(target, pem, 0o600)
        if not _place(tmp, target, replace=force):
            raise _refuse_overwrite(target)
    except OSError as exc:
        raise DeviceKeyError(f"{target}: cannot write the device key: {_reason(exc)}") from None
    return target


# -- public keys ------------------------------------------------------------------
def load_public_key(path: str | os.PathLike[str]) -> tuple[ec.EllipticCurvePublicKey, str]:
    """(public key, key id) from a PEM file such as ``<storage>/<device-id>.pub.pem``."""
    where = os.fsdecode(path)
    expected = "expected a PEM public key on curve P-256 (<device-id>.pub.pem)"
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DeviceKeyError(f"{where}: no such file ({expected})") from None
    except IsADirectoryError:
        raise DeviceKeyError(f"{where}: {expected}, got a directory") from None
    except (OSError, ValueError) as exc:
        reason = _reason(exc) if isinstance(exc, OSError) else str(exc)
        raise DeviceKeyError(f"{where}: cannot read: {reason}") from None
    if b"PRIVATE KEY-----" in data:
        raise DeviceKeyError(
            f"{where}: {expected}, got a private key (pass the exported public key instead)"
        )
    if b"-----BEGIN" not in data:
        raise DeviceKeyError(f"{where}: {expected}, got no PEM block")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise DeviceKeyError(f"{where}: {expected}, got an unreadable PEM block") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise DeviceKeyError(f"{where}: {expected}, got a non-EC key ({type(key).__name__})")
    if not isinstance(key.curve, ec.SECP256R1):
        raise DeviceKeyError(f"{where}: {expected}, got curve {key.curve.name}")
    return key, key_id_of(key)


def verify_signature(public_key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> bool:
    """True if ``signature`` (DER) signs ``data``; garbage is simply False, never an exception."""
    try:
        public_key.verify(bytes(signature), bytes(data), _VERIFY)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def verify_digest(public_key: ec.EllipticCurvePublicKey, digest: bytes, signature: bytes) -> bool:
    """:func:`verify_signature` for a signature made with :meth:`DeviceKey.sign_digest`."""
    if len(digest) != 32:
        return False
    try:
        public_key.verify(bytes(signature), bytes(digest), _VERIFY_DIGEST)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def public_key_path(storage_dir: str | os.PathLike[str], device_id: str) -> Path:
    """``<storage>/<device-id>.pub.pem``, where verify finds the key when not given one."""
    if not device_id or "/" in device_id or "\0" in device_id or device_id.startswith("."):
        raise ValueError(f"expected a device id usable as a file name, got {device_id!r}")
    return Path(storage_dir) / f"{device_id}.pub.pem"


def export_public_key(
    storage_dir: str | os.PathLike[str] | Storage,
    device_id: str,
    key: DeviceKey,
    replace: bool = False,
) -> tuple[Path, Path | None]:
    """Write ``<storage>/<device-id>.pub.pem``; (its path, where a replaced one was kept).

    The same bytes already there: nothing to do. Different bytes: recordings on
    this storage were signed by that other key, so it is refused, or with
    ``replace`` the old file is kept as ``<device-id>.<key-id prefix>.pub.pem``
    (renamed, never deleted) before the new one is written.
    """
    root = storage_dir.root if isinstance(storage_dir, Storage) else Path(storage_dir)
    path = public_key_path(root, device_id)
    pem = key.public_pem
    kept: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        try:
            old = path.read_bytes()
        except FileNotFoundError:
            old = None
        if old == pem:
            return path, None
        if old is not None:
            old_id = _describe_public(old)
            if not replace:
                raise DeviceKeyError(
                    f"{path}: holds another public key ({old_id}) than this device key "
                    f"(key_id {key.key_id[:16]}); recordings on this storage were signed by it. "
                    "Keep it: use a fresh storage directory, or re-provision with --force "
                    "(which keeps the old public key beside it)"
                )
            kept = _unused(root / f"{device_id}.{old_id.removeprefix('key_id ')[:16]}.pub.pem")
            os.rename(path, kept)
        tmp = _write_temp(path, pem, 0o644)
        _place(tmp, path, replace=True)
    except OSError as exc:
        raise DeviceKeyError(f"{path}: cannot write the public key: {_reason(exc)}") from None
    return path, kept


def _unused(path: Path) -> Path:
    """``path``, or ``path`` with ``.1``, ``.2``... inserted, whichever does not exist yet."""
    n, candidate = 0, path
    while candidate.exists():
        n += 1
        candidate = path.with_name(path.name.replace(".pub.pem", f".{n}.pub.pem"))
    return candidate


def _describe_public(pem: bytes) -> str:
    """``key_id <hex>`` of a PEM public key, or what it is instead."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        return "unreadable"
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return "not an EC key"
    return f"key_id {key_id_of(key)}"
