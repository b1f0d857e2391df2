"""Power-loss trials: run the firmware in a subprocess and SIGKILL it mid-recording.

Kill points are chosen by progress, not by wall time, so a slow host cannot
move every kill before the first recording exists: an uninterrupted reference
run gives each recording's journal length, and each trial waits until the
chosen recording's journal has reached a chosen number of lines (the child's
own fsync'ed progress) and kills it there. A kill is only a kill point if the
recording was still open (no manifest) afterwards.

After each kill the storage is recovered exactly as at the next boot, and
every recording must verify; for each interrupted one, every frame its
journal vouched for must be in the recovered recording (decoded frame by
frame), and each segment's kept bytes plus its tail must be the bytes it had.
Shared by the test suite (a few kills) and ``make bench`` (many).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import av

from camera.evidence.journal import read_journal_lines
from camera.evidence.records import JOURNAL, MANIFEST
from camera.evidence.verify import verify_recording
from camera.framecode import read_frame_code
from camera.recovery import interrupted, recover_storage, tail_name
from hal.storage.local import LocalStorage

#: How often the harness looks at the child's journal (a wait on the child, not a sleep).
POLL_SECONDS = 0.001


@dataclass
class KillReport:
    kills: int = 0
    #: Kills that landed while the chosen recording was open.
    kill_points: int = 0
    recordings: int = 0
    interrupted: int = 0
    #: Bytes recovery moved past the last sync into ``segment-NNNN.tail`` files.
    tail_bytes: int = 0
    #: Most frames that had reached a segment file past its last sync (kept in the tail).
    max_tail_frames: int = 0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _child(scenario: Path, out: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "camera",
        "run",
        "--scenario",
        str(scenario),
        "--out",
        str(out),
        "--json",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def on_disk_codes(directory: Path) -> list[int]:
    """Frame codes that reached the segment files, decoding as far as each one goes."""
    codes: list[int] = []
    for seg in sorted(directory.glob("segment-*")):
        if seg.suffix == ".tail":
            continue
        try:
            with av.open(str(seg)) as container:
                for frame in container.decode(video=0):
                    code = read_frame_code(frame.to_ndarray(format="gray"))
                    if code is not None:
                        codes.append(code)
        except (av.FFmpegError, OSError, ValueError):
            continue
    return codes


def vouched_frames(directory: Path, without_line: int | None = None) -> set[int]:
    """Frames the journal says are durable: closed segments and synced prefixes, less gaps.

    ``without_line``: as if that line (1-based) could not be read.
    """
    records = [r for r in read_journal_lines(directory / JOURNAL).records if r.line != without_line]
    spans = [r.payload for r in records if r.kind in ("segment", "sync")]
    frames = {n for s in spans for n in range(s["first_frame"], s["last_frame"] + 1)}
    for g in (r.payload for r in records if r.kind == "gap"):
        frames -= set(range(g["first_frame"], g["first_frame"] + g["frames"]))
    return frames


def check_recovered(before: dict[str, bytes], vouched: set[int], directory: Path) -> list[str]:
    """Recovery kept every byte and every vouched frame of one recording; problems found."""
    problems = []
    name = directory.name
    for seg, data in sorted(before.items()):
        kept = (directory / seg).read_bytes() if (directory / seg).exists() else b""
        tail = directory / tail_name(seg)
        cut = tail.read_bytes() if tail.exists() else b""
        if kept + cut != data:
            problems.append(f"{name}/{seg}: kept bytes + tail differ from the original")
    report = verify_recording(directory)
    if not report.ok:
        problems.append(f"{name}: {'; '.join(report.problems)}")
    missing = vouched - set(report.codes)
    if missing:
        problems.append(f"{name}: {len(missing)} vouched frames lost, from {min(missing)}")
    return problems


def _journal_lines(directory: Path) -> int:
    try:
        return (directory / JOURNAL).read_bytes().count(b"\n")
    except OSError:
        return 0


def _recording_dirs(out: Path) -> list[Path]:
    try:
        return sorted(p for p in out.iterdir() if p.is_dir())
    except OSError:
        return []


def _kill_at(proc: subprocess.Popen[bytes], out: Path, index: int, lines: int) -> Path | None:
    """SIGKILL ``proc`` once its ``index``-th recording's journal has ``lines`` lines.

    Returns that recording's directory, or None if the child ended first.
    """
    while True:
        recs = _recording_dirs(out)
        if len(recs) > index and _journal_lines(recs[index]) >= lines:
            proc.kill()
            proc.wait()
            return recs[index]
        try:
            proc.wait(timeout=POLL_SECONDS)
        except subprocess.TimeoutExpired:
            continue
        return None


def run_trials(scenario: Path, workdir: Path, kills: int, seed: int = 0) -> KillReport:
    rng = random.Random(seed)
    report = KillReport()
    reference = _child(scenario, workdir / "complete")
    if reference.wait() != 0:
        report.failures.append("the uninterrupted run failed")
        return report
    # Journal lengths of the uninterrupted run (deterministic from scenario+seed).
    lengths = [_journal_lines(d) for d in _recording_dirs(workdir / "complete")]
    if not lengths or min(lengths) < 8:
        report.failures.append(f"the scenario's recordings are too short to kill: {lengths}")
        return report
    for i in range(kills):
        out = workdir / f"kill-{i:03d}"
        index = rng.randrange(len(lengths))
        # Past the head and a sync, and a few records before the stop.
        lines = rng.randint(2, lengths[index] - 5)
        target = _kill_at(_child(scenario, out), out, index, lines)
        report.kills += 1
        if target is None:
            report.failures.append(f"{out.name}: the run ended before recording {index} did")
            continue
        if not (target / MANIFEST).exists():
            report.kill_points += 1
        storage = LocalStorage(out)
        pending = interrupted(storage)
        before = {
            name: {p.name: p.read_bytes() for p in (out / name).glob("segment-*")}
            for name in pending
        }
        vouched = {name: vouched_frames(out / name) for name in pending}
        on_disk = {name: on_disk_codes(out / name) for name in pending}
        recover_storage(storage)
        for name in pending:
            report.interrupted += 1
            path = out / name / MANIFEST
            if not path.exists():
                report.failures.append(f"{out.name}/{name}: not recovered")
                continue
            m = json.loads(path.read_text())
            report.tail_bytes += sum(t["bytes"] for t in m["recovery"]["tails"])
            last = m["last_frame"] if m["last_frame"] is not None else -1
            if on_disk[name]:
                report.max_tail_frames = max(report.max_tail_frames, max(on_disk[name]) - last)
            for problem in check_recovered(before[name], vouched[name], out / name):
                report.failures.append(f"{out.name}/{problem}")
        for rec in _recording_dirs(out):
            report.recordings += 1
            if rec.name not in pending:
                v = verify_recording(rec)
                if not v.ok:
                    report.failures.append(f"{out.name}/{rec.name}: {'; '.join(v.problems)}")
    return report
