"""Which public keys signatures are checked against, and whether anyone vouched for them.

A key passed with ``--key`` is one the investigator trusts: it came from
somewhere other than the card under test. Without it, verify falls back on
the ``*.pub.pem`` files the device exported beside its recordings; they are
on the same card as the evidence, so whoever could edit a manifest could
replace them too. The check is still worth running (it catches damage and
careless edits), but the output must say the key was not independently
trusted. With no key at all there is nothing to check a signature with, and
every signed recording fails.

Keys are chosen by the ``key_id`` a manifest names (hex sha256 of the public
key's DER), so a re-provisioned device's older recordings find the older key
kept as ``<device-id>.<key-id>.pub.pem``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from camera.evidence.keys import DeviceKeyError, load_public_key
from camera.paths import PUBLIC_KEY_SUFFIX


@dataclass
class KeySet:
    """Public keys by key id, where each came from, and whether it is trusted.

    ``used`` collects the ids of keys a check actually relied on, so the
    "not independently trusted" warning names only those files.
    """

    keys: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    trusted: bool = False
    #: Key files found beside the recordings that could not be read (one line each).
    unreadable: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def pick(self, key_id: str | None) -> tuple[str, ec.EllipticCurvePublicKey] | None:
        """The key ``key_id`` names, else the only key there is; marks it used."""
        if key_id is not None and key_id in self.keys:
            chosen = key_id
        elif len(self.keys) == 1:
            chosen = next(iter(self.keys))
        else:
            return None
        self.used.add(chosen)
        return chosen, self.keys[chosen]

    def shown(self) -> str:
        """The key ids, short, for a finding: ``d521e2aa67117e13...``."""
        return ", ".join(f"{k[:16]}..." for k in self.keys) or "none"


def given_keys(paths: list[str | os.PathLike[str]]) -> KeySet:
    """The keys passed with ``--key`` (one or more: a re-provisioned device has had several).

    DeviceKeyError (one line naming the file, exit 2) for any that is not a key.
    """
    trusted = KeySet(trusted=True)
    for path in paths:
        key, key_id = load_public_key(path)
        trusted.keys.setdefault(key_id, key)
        trusted.paths.setdefault(key_id, Path(path))
    return trusted


def keys_beside(storage: Path) -> KeySet:
    """The ``*.pub.pem`` files in a storage directory: usable, but not independently trusted."""
    found = KeySet()
    try:
        names = sorted(os.listdir(storage))
    except OSError:
        return found
    for name in names:
        path = storage / name
        if not name.endswith(PUBLIC_KEY_SUFFIX) or not path.is_file():
            continue
        try:
            key, key_id = load_public_key(path)
        except DeviceKeyError as exc:
            found.unreadable.append(str(exc))
            continue
        found.keys.setdefault(key_id, key)
        found.paths.setdefault(key_id, path)
    return found


def untrusted_note(sets: list[KeySet]) -> str | None:
    """The one line saying which found-beside keys were relied on, if any were."""
    paths = sorted({str(s.paths[k]) for s in sets if not s.trusted for k in s.used})
    if not paths:
        return None
    return (
        f"key not independently trusted: using {', '.join(paths)} found beside the recordings "
        "(pass --key to check against a key you trust)"
    )
