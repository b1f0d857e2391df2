"""GPIO by name: inputs deliver timestamped edges, outputs are switched by name.

Every raw edge reaches the firmware with a timestamp read from the HAL clock at
the interrupt (in simulation: the virtual time at which the edge is driven),
then hops onto the clock's loop thread; debouncing happens in the core on
those timestamps, never in the pin library.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Literal

from hal.clock import Clock

#: (input name, device time of the edge, input now active)
EdgeCallback = Callable[[str, float, bool], None]
Pull = Literal["up", "down", "none"]


class Gpio(ABC):
    """Named digital inputs and outputs on BCM pins."""

    def __init__(self, clock: Clock, history: int = 10_000) -> None:
        self.clock = clock
        #: (device time, output name, state): what the indicators did, for tests and logs.
        self.changes: deque[tuple[float, str, bool]] = deque(maxlen=history)
        self.outputs: dict[str, bool] = {}

    @abstractmethod
    def add_input(
        self, name: str, pin: int, active_high: bool, pull: Pull, on_edge: EdgeCallback
    ) -> None:
        """Watch ``pin``; call ``on_edge`` on the loop thread for every raw edge."""

    @abstractmethod
    def is_active(self, name: str) -> bool:
        """The input's present raw level, as active/inactive (read once at boot)."""

    def add_output(self, name: str, pin: int) -> None:
        self._add_output(name, pin)
        self.outputs[name] = False

    def set_output(self, name: str, on: bool) -> None:
        """Switch an output; a no-op when it already is in that state."""
        if name not in self.outputs or self.outputs[name] == on:
            return
        self.outputs[name] = on
        self.changes.append((self.clock.now(), name, on))
        self._set_output(name, on)

    @abstractmethod
    def _add_output(self, name: str, pin: int) -> None: ...

    @abstractmethod
    def _set_output(self, name: str, on: bool) -> None: ...

    @abstractmethod
    def close(self) -> None: ...
