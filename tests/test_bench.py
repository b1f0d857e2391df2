"""``make bench`` parts on tiny inputs: the shape of what they report, never their timings.

640x360 is about the smallest picture the simulated scene renders (its frame code
is 512 pixels wide).
"""

from __future__ import annotations

import numpy as np
import pytest

import sim.bench.features as bench
from camera.frames import EncodedFrame


def test_signing_bench_reports_cost_ratio_and_sei_bitrate() -> None:
    result = bench.bench_signing(frames=30, width=640, height=360, rounds=2, gop=10)

    assert set(result) == {
        "frames",
        "resolution",
        "fps",
        "gop",
        "bitrate",
        "rounds",
        "encode_ms_per_frame",
        "sign_us_per_frame",
        "sign_percent_of_frame_budget",
        "signed_over_plain",
        "sign_us_per_round",
        "signed_over_plain_per_round",
        "seis",
        "sei_bytes",
        "sei_kbit_per_s",
        "target_percent",
        "ok",
    }
    assert (result["frames"], result["resolution"], result["gop"]) == (30, "640x360", 10)
    # IDRs at frames 0, 10 and 20: the GOPs they close are signed, the last one is not yet.
    assert result["seis"] == 2
    assert isinstance(result["sei_bytes"], int) and result["sei_bytes"] > 0
    sei_bytes = result["sei_bytes"]
    assert result["sei_kbit_per_s"] == round(sei_bytes * 8 / (2 * 10 / 30) / 1e3, 2)
    for key in ("sign_us_per_frame", "sign_percent_of_frame_budget", "signed_over_plain"):
        assert isinstance(result[key], float) and result[key] > 0, key
    assert result["ok"] is (result["sign_percent_of_frame_budget"] < result["target_percent"])


def test_signing_bench_alternates_which_side_encodes_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Frame by frame, so a slow spell of the host hits both sides alike."""
    calls: list[tuple[int, int]] = []
    encoders: list[FakeEncoder] = []

    class FakeEncoder:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.index = len(encoders)
            encoders.append(self)

        def encode(self, image: np.ndarray, number: int, time: float) -> list[EncodedFrame]:
            calls.append((self.index, number))
            return [EncodedFrame(bytes(100), number, time, number % 10 == 0)]

        def flush(self) -> list[EncodedFrame]:
            calls.append((self.index, -1))
            return []

        def close(self) -> None:
            pass

    monkeypatch.setattr(bench, "H264Encoder", FakeEncoder)
    bench.bench_signing(frames=4, width=640, height=360, rounds=1, gop=10)

    plain, signed = 0, 1  # made in this order
    assert calls == [
        (plain, 0), (signed, 0), (signed, 1), (plain, 1),
        (plain, 2), (signed, 2), (signed, 3), (plain, 3),
        (plain, -1), (signed, -1),
    ]  # fmt: skip
