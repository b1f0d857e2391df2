"""The sync click of the synthetic audio scene (SPEC 15): what the scene plays, what verify finds.

At device time ``k`` seconds (the capture time of every frame whose number
is a multiple of the frame rate) the simulated microphone hears a short
tone burst well above the scene's other sounds in frequency, so ``verify``
can find its onset in decoded audio and measure the A/V offset against the
frame times. One definition shared by the scene (sim/) and the check
(camera/evidence/verify/), so they cannot drift apart.
"""

from __future__ import annotations

import math

import numpy as np

#: Samples per second of the simulated microphone.
SAMPLE_RATE = 48_000
#: The click: a tone burst at this frequency (Hz) ...
CLICK_HZ = 6_000.0
#: ... lasting this long (seconds), with a raised-cosine envelope ...
CLICK_SECONDS = 0.004
#: ... at this peak amplitude (full scale = 1.0). The click starts at ``k``
#: seconds; its energy centre (what a detector should locate, being robust to
#: the encoder's smearing of an onset) is at ``k + CLICK_SECONDS / 2``.
CLICK_AMPLITUDE = 0.8
#: Everything else in the scene (ambient noise, speech-like bursts) stays below
#: this frequency (Hz) and is kept out of +-QUIET_SECONDS around every click.
SCENE_MAX_HZ = 3_500.0
QUIET_SECONDS = 0.05
#: A click more than this far from its frame is a sync failure (SPEC 15).
MAX_OFFSET_SECONDS = 0.010


def click_samples(rate: int, phase: float = 0.0) -> np.ndarray:
    """One click, from its first sample: a raised-cosine (Hann) envelope over
    CLICK_SECONDS on a CLICK_HZ tone at CLICK_AMPLITUDE peak (float32, full scale 1).

    What the scene plays and what the detector calibrates against; its
    energy centre is at ``CLICK_SECONDS / 2`` for any ``phase``.
    """
    n = round(CLICK_SECONDS * rate)
    i = np.arange(n)
    envelope = 0.5 - 0.5 * np.cos(2 * math.pi * i / n)
    tone = np.sin(2 * math.pi * CLICK_HZ * i / rate + phase)
    return (CLICK_AMPLITUDE * envelope * tone).astype(np.float32)
