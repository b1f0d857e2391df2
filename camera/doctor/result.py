"""What a check says, and what all of them say together.

One :class:`Result` per check, so a person bringing up a Pi reads one line
per part and a script reads one JSON object (:class:`Report`). The helpers
keep every check's wording alike: an exception or a part that did not open
becomes one short line, never a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from camera.errors import BackendError
from hal.board import Parts

__all__ = ["STATUSES", "Report", "Result", "Status", "part_problem", "why", "worst"]

Status = Literal["ok", "warn", "fail", "skip"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail", "skip")
_RANK = {"skip": 0, "ok": 1, "warn": 2, "fail": 3}


@dataclass(frozen=True)
class Result:
    """One check's verdict: the line a person reads, and details for ``--json``."""

    name: str
    status: Status
    text: str
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.status:<6}{self.name}: {self.text}"

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "text": self.text, **self.details}


@dataclass
class Report:
    """Every check of one board: ready only if none failed (warnings are for a person)."""

    board: str
    backends: dict[str, str]
    results: list[Result]

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in STATUSES}

    @property
    def ok(self) -> bool:
        return all(r.status != "fail" for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary_line(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items())
        verdict = "ready" if self.ok else "NOT ready"
        return f"board {self.board}: {verdict} ({counts})"

    def as_json(self) -> dict[str, Any]:
        return {
            "board": self.board,
            "backends": self.backends,
            "ok": self.ok,
            "counts": self.counts(),
            "checks": [r.as_json() for r in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_json())


def worst(statuses: list[Status]) -> Status:
    return max(statuses, key=_RANK.__getitem__, default="ok")


def why(exc: BaseException) -> str:
    """An exception as one short line: the HAL's own messages already name the part."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, BackendError | OSError):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= 200 else text[:197] + "..."


def part_problem(parts: Parts, kind: str, label: str) -> str:
    """Why ``kind``'s part did not open, without the ``label: `` the check's name already says.

    :func:`hal.board.open_parts` prefixes its lines with the part ("pins: ...",
    "camera: ..."), which reads twice after the doctor's own "pins: ".
    """
    text = parts.problems.get(kind, f"no {kind} backend")
    return text.removeprefix(f"{label}: ")
