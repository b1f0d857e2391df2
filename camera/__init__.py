"""bodycam firmware core.

Everything here runs against the interfaces in :mod:`hal` only: the clock,
pins, image sensor, storage and background worker are handed in, so the same
code runs on a Raspberry Pi, in real time, and on the virtual clock.
"""

__version__ = "0.1.0"
