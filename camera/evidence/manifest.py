"""Writing the recording manifest (SPEC section 7): what a recording is, and proof of its bytes.

Written atomically (temp file, fsync, rename) so a reader never sees half a
manifest. Built from values the core already holds (:meth:`Manifest.build`);
no clock reads here. The bytes are canonical (key order from the record,
Python's float formatting) so two runs of the same scenario write identical
manifests, and anything signed over them can be recomputed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from camera.evidence.records import MANIFEST, Manifest
from hal.storage import Storage


def dumps(manifest: Manifest | Mapping[str, Any]) -> bytes:
    """Canonical bytes: stable key order and float formatting, for byte-identical runs."""
    obj = manifest.to_json() if isinstance(manifest, Manifest) else manifest
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode()


def write_manifest(storage: Storage, directory: str, manifest: Manifest) -> None:
    storage.write_atomic(f"{directory}/{MANIFEST}", dumps(manifest))
