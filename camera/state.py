"""The device state machine: BUFFERING -> RECORDING -> BUFFERING.

Kept tiny and explicit so every change is logged (a body camera must account
for every state change) and the indicators follow from the state alone.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    BOOTING = "booting"
    BUFFERING = "buffering"
    RECORDING = "recording"
    STOPPED = "stopped"


ALLOWED = {
    State.BOOTING: {State.BUFFERING, State.STOPPED},
    State.BUFFERING: {State.RECORDING, State.STOPPED},
    State.RECORDING: {State.BUFFERING, State.STOPPED},
    State.STOPPED: set(),
}


class InvalidTransition(RuntimeError):
    pass


def check(old: State, new: State) -> None:
    if new not in ALLOWED[old]:
        raise InvalidTransition(f"{old.value} -> {new.value}")
