"""Cross-check our signed video against Axis's reference validator (development only).

The test suite cannot depend on Axis's C library, so this script is how a
developer confirms that what camera/evidence/svf.py writes is what the
reference validator accepts, and that both validators reject the same
damage. Build the validator with ../shared/tools/svf/build.sh.

    # a recording directory (segment-*.ts), a .ts file or a .h264 file:
    python tools/svf_interop.py check PATH --validator BIN [--key PEM]
    # sign a synthetic clip, cut and damage it, run both validators on each case:
    python tools/svf_interop.py selftest --validator BIN [--workdir DIR]

Segments are joined into one Annex-B stream by stream copy with PyAV
(MPEG-TS packets are already Annex-B; MP4/MKV go through h264_mp4toannexb).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from camera.encoders.h264 import H264Encoder
from camera.evidence import annexb, svf, svf_check


def annexb_of(path: Path) -> bytes:
    """One Annex-B H.264 stream from a .h264 file, a container file or a directory of segments."""
    if path.is_dir():
        parts = sorted(p for p in path.iterdir() if p.suffix in (".ts", ".mp4", ".mkv"))
        if not parts:
            raise SystemExit(f"{path}: no .ts/.mp4/.mkv segments")
        return b"".join(annexb_of(p) for p in parts)
    if path.suffix in (".h264", ".264"):
        return path.read_bytes()
    out = bytearray()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        bsf = None
        if stream.codec_context.extradata and stream.codec_context.extradata[:1] == b"\x01":
            bsf = av.BitStreamFilterContext("h264_mp4toannexb", stream)
        for packet in container.demux(stream):
            packets = bsf.filter(packet) if bsf is not None else [packet]
            for p in packets:
                if p.size:
                    out += bytes(p)
    return bytes(out)


def reference(validator: Path, stream: Path, key: Path | None) -> str:
    """svf_validate's last line (its summary)."""
    args = [str(validator), str(stream)] + ([str(key)] if key else [])
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    lines = (done.stdout.strip() or done.stderr.strip() or "(no output)").splitlines()
    return f"{lines[-1]} (exit {done.returncode})"


def ours(data: bytes, key: Path | None) -> svf_check.Validation:
    public = None
    if key is not None:
        loaded = serialization.load_pem_public_key(key.read_bytes())
        assert isinstance(loaded, ec.EllipticCurvePublicKey)
        public = loaded
    return svf_check.validate(data, public)


def check(path: Path, validator: Path, key: Path | None, work: Path) -> tuple[str, str]:
    data = annexb_of(path)
    joined = work / f"{path.stem}.joined.h264"
    joined.write_bytes(data)
    result = ours(data, key)
    detail = "; ".join(result.findings[:3])
    return reference(validator, joined, key), result.describe() + (f" [{detail}]" if detail else "")


def write_ts(aus: list[bytes], path: Path, fps: int = 30) -> None:
    """Mux access units into MPEG-TS by stream copy, as the recorder does."""
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("h264", rate=fps)
        stream.width, stream.height = 320, 240
        stream.time_base = Fraction(1, fps)
        for i, au in enumerate(aus):
            packet = av.Packet(au)
            packet.pts = packet.dts = i
            packet.time_base = stream.time_base
            packet.stream = stream
            out.mux(packet)


def selftest(validator: Path, work: Path) -> int:
    encoder = H264Encoder(320, 240, 30, bitrate=600_000, gop=30)
    texture = np.random.default_rng(7).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    frames = []
    for i in range(300):
        picture = np.ascontiguousarray(texture[i % 240 : i % 240 + 240, 2 * i % 320 :][:, :320])
        frames += encoder.encode(picture, i, i / 30)
    frames += encoder.flush()
    key = ec.derive_private_key(0x5EED, ec.SECP256R1())
    product = svf.ProductInfo("interop", "0.0", "SELFTEST", "bodycam tools")
    signer = svf.StreamSigner(key, product)
    signed = [signer.sign(f.data, 1_700_000_000_000_000 + f.number * 33_333) for f in frames]
    aus = [au for au, _ in signed]
    seals = [seal for _, seal in signed]
    pem = work / "key.pem"
    pem.write_bytes(signer.public_pem)

    def recording(first: int, end: int) -> list[bytes]:
        closer = svf.GopCloser()
        out = []
        for i in range(first, end):
            out.append(closer.feed(seals[i]) + aus[i])
        tail = closer.close(key, product)
        return [*out, tail] if tail else out

    full = recording(0, len(aus))

    def flipped(index: int) -> list[bytes]:
        copy = list(full)
        offset, nal = next((o, n) for o, n in annexb.iter_nals(copy[index]) if annexb.is_slice(n))
        damaged = bytearray(copy[index])
        damaged[offset + len(nal) // 2] ^= 0x10
        copy[index] = bytes(damaged)
        return copy

    cases = [
        ("full", "full stream + close (expect OK)", full),
        ("cut_90_239", "cut at IDR 90..239 + close (expect OK)", recording(90, 240)),
        ("cut_90_end", "cut at IDR 90..end + close (expect OK)", recording(90, len(aus))),
        ("cut_90_240", "cut 90..240, ends on an IDR + close (expect OK)", recording(90, 241)),
        ("flip_137", "flipped bit in P frame 137 (expect NOT_OK)", flipped(137)),
        ("cut_gop", "GOP 150..179 cut out (expect NOT_OK)", full[:150] + full[180:]),
    ]
    for stem, name, units in cases:
        h264 = work / f"{stem}.h264"
        h264.write_bytes(b"".join(units))
        segments = work / stem
        segments.mkdir(exist_ok=True)
        for n, start in enumerate(range(0, len(units), 90)):
            write_ts(units[start : start + 90], segments / f"segment-{n:04d}.ts")
        print(name)
        for label, source in (("h264", h264), ("ts  ", segments)):
            ref, mine = check(source, validator, pem, work)
            print(f"  {label} reference: {ref}")
            print(f"  {label} ours:      {mine}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("check", help="join PATH and run both validators on it")
    one.add_argument("path", type=Path)
    one.add_argument("--validator", type=Path, required=True)
    one.add_argument("--key", type=Path, help="PEM, byte-identical to the one in the SEIs")
    test = sub.add_parser("selftest", help="sign, cut and damage a clip; run both validators")
    test.add_argument("--validator", type=Path, required=True)
    test.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = getattr(args, "workdir", None) or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.command == "check":
            ref, mine = check(args.path, args.validator, args.key, work)
            print(f"reference: {ref}\nours:      {mine}")
            return 0 if ref.startswith("svf: accumulated=OK ") else 1
        return selftest(args.validator, work)


if __name__ == "__main__":
    sys.exit(main())
