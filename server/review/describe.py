"""A recording held in the evidence store, described as ``bodycam inspect`` describes one on a card.

The store keeps a recording as objects named by their sha256, not as a
directory, and what ``inspect`` adds from the disk (sizes, files not listed)
was settled at ingest, where every hash was checked. So the description is
built from the manifest alone, with inspect's own pieces in inspect's order
(:func:`camera.inspection.manifest_view.describe`, what ``from_manifest`` is
without its ``stat`` of the files): the same structure check, the same
timeline (trigger, gaps, clock steps, markers, stop and their wall times),
place and signature check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from camera.evidence.records import MANIFEST
from camera.evidence.verify.trust import KeySet
from camera.inspection.manifest_view import describe, structure_problems
from camera.inspection.model import Inspection, Status

__all__ = ["describe_manifest"]


def describe_manifest(label: str, m: Any, keys: KeySet) -> Inspection:
    """``m`` (a parsed manifest, perhaps damaged) as an Inspection; ``label`` is its path field."""
    problems = structure_problems(m)
    if problems:
        first = problems[0].removeprefix(MANIFEST)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Inspection(path=label, status=Status.UNREADABLE, error=f"{MANIFEST}{first}{more}")
    return describe(m, keys, label, Path(label))
