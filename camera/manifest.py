"""The recording manifest (SPEC section 7): what a recording is, and proof of its bytes.

Written atomically (temp file, fsync, rename) so a reader never sees half a
manifest. Built from values the core already holds; no clock reads here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hal.storage import Storage

FORMAT = "bodycam-recording/1"
STOP_REASONS = ("button_hold", "console", "end_of_run", "storage_full", "power_loss")
MANIFEST = "manifest.json"


def dumps(manifest: Mapping[str, Any]) -> bytes:
    """Canonical bytes: stable key order and float formatting, for byte-identical runs."""
    return (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode()


def write_manifest(storage: Storage, directory: str, manifest: Mapping[str, Any]) -> None:
    storage.write_atomic(f"{directory}/{MANIFEST}", dumps(manifest))
