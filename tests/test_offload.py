"""End-of-shift offload against the real evidence server on loopback (issue 16, item 3).

A simulated shift's recordings go to a server started in the test process;
each test changes one thing (a keep, a dropped connection, another key, a
full server, a tampered segment, an interrupted recording, a crash) and
checks the rule that matters: a recording leaves the camera only after a
receipt signed by the pinned key names exactly the files it holds.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import camera.offload
from camera.cli import main
from camera.evidence.audit import read_audit
from camera.evidence.canonical import canonical
from camera.evidence.keys import generate_key, load_public_key
from camera.evidence.receipts import RECEIPTS
from camera.offload import Offloader
from camera.offload_http import EvidenceServer, RetryPolicy
from tests.offload_support import (
    DEVICE,
    Counting,
    DropAfter,
    LiveServer,
    copy_storage,
    device_key,
    live_server,
    make_recordings,
    write_device_config,
)

UTC0 = datetime(2026, 1, 1, 18, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def shift(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offload scenario's storage, made once; tests work on copies."""
    out = tmp_path_factory.mktemp("shift") / "store"
    make_recordings(out)
    return out


@pytest.fixture
def storage(shift: Path, tmp_path: Path) -> Path:
    return copy_storage(shift, tmp_path / "store")


def ids(storage: Path) -> list[str]:
    return sorted(p.name for p in storage.iterdir() if p.is_dir() and p.name.startswith(DEVICE))


def file_shas(recording: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(recording.iterdir())}


def events(storage: Path, name: str) -> list[dict[str, Any]]:
    return [e for e in read_audit(storage / "audit.jsonl") if e["event"] == name]


def offloader(
    storage: Path,
    srv: LiveServer,
    transport: httpx.BaseTransport | None = None,
    server_key: Any = None,
    sleeps: list[float] | None = None,
    **kwargs: Any,
) -> Offloader:
    """An Offloader as the CLI makes one, with a seeded jitter and waits recorded, not slept."""
    pinned = server_key or load_public_key(srv.public_key)[0]
    waits = sleeps if sleeps is not None else []
    retry = RetryPolicy(random.Random(3), attempts=kwargs.pop("attempts", 3), sleep=waits.append)
    return Offloader(
        storage,
        device_key(),
        DEVICE,
        srv.url,
        pinned,
        retry=retry,
        utc=lambda: UTC0,
        client=httpx.Client(transport=transport or httpx.HTTPTransport()),
        **kwargs,
    )


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


# -- the whole shift goes ----------------------------------------------------------------
def test_every_closed_recording_goes_oldest_first_is_deleted_and_verify_still_passes(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ids(storage)
    assert len(names) == 3
    held = {n: file_shas(storage / n) for n in names}
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        config = write_device_config(tmp_path, storage, srv)
        code, lines, err = run_cli(capsys, "offload", str(storage), "--config", str(config))
        assert (code, err) == (0, "")
        assert [line.split()[:2] for line in lines[:3]] == [["OFFLOADED", n] for n in names]
        assert lines[3].startswith("3 recording(s) offloaded, 0 kept on the camera; 21 file(s)")
        # The server holds each one, and the camera kept exactly the receipt it gave.
        for name in names:
            theirs = srv.get_receipt(name)
            ours = (storage / RECEIPTS / f"{name}.json").read_bytes()
            assert ours == canonical(theirs)
            assert theirs["files"] == held[name] and theirs["status"] == "verified"
        assert {p.name for p in srv.objects()} == {s for f in held.values() for s in f.values()}
    assert ids(storage) == []
    offloaded, deleted = events(storage, "offloaded"), events(storage, "deleted")
    assert [e["recording_id"] for e in offloaded] == names
    assert [e["recording_id"] for e in deleted] == names
    for e, name in zip(offloaded, names, strict=True):
        receipt = (storage / RECEIPTS / f"{name}.json").read_bytes()
        assert e["receipt_sha256"] == hashlib.sha256(receipt).hexdigest()
        assert e["manifest_sha256"] == held[name]["manifest.json"]
    assert read_audit(storage / "audit.jsonl")[-1]["event"] == "checkpoint"
    # verify: the card has no recording left, and says what vouches for them.
    code, lines, _ = run_cli(capsys, "verify", str(storage))
    assert code == 0, lines
    assert any("3 recording(s) offloaded and deleted, vouched for by receipts" in x for x in lines)
    assert "chain intact, audit log intact, receipts intact" in lines[-1]
    key = storage / f"{DEVICE}.pub.pem"
    code, lines, _ = run_cli(
        capsys, "verify", "--key", str(key), "--key", str(srv.public_key), str(storage)
    )
    assert code == 0, lines
    assert any("every server signature checked" in x for x in lines)


def test_keep_uploads_and_keeps_then_a_second_run_sends_nothing_and_deletes(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ids(storage)
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        config = write_device_config(tmp_path, storage, srv)
        code, lines, _ = run_cli(capsys, "offload", str(storage), "--config", str(config), "--keep")
        assert code == 0
        assert all(line.endswith("; kept on the camera)") for line in lines[:3]), lines
        assert ids(storage) == names
        assert sorted(p.stem for p in (storage / RECEIPTS).iterdir()) == names
        assert len(events(storage, "offloaded")) == 3 and events(storage, "deleted") == []
        code, lines, _ = run_cli(capsys, "verify", str(storage))
        assert code == 0, lines
        # Again, deleting: every file is on the server already, so none is sent.
        counting = Counting()
        report = offloader(storage, srv, counting).run()
    assert report.ok and report.files_sent == 0 and report.files_held == 21
    assert counting.methods["PUT"] == 0 and counting.methods["HEAD"] == 21
    assert ids(storage) == []
    assert len(events(storage, "offloaded")) == 3  # the same receipts: not recorded twice
    assert len(events(storage, "deleted")) == 3


def test_delete_after_upload_false_in_the_config_keeps_them(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        config = write_device_config(tmp_path, storage, srv, delete_after_upload=False)
        code, _, _ = run_cli(capsys, "offload", str(storage), "--config", str(config))
    assert code == 0
    assert len(ids(storage)) == 3 and events(storage, "deleted") == []


# -- a dropped connection, a killed process: only what is missing is sent again ------------
def test_a_connection_dropped_mid_file_is_resumed_by_the_next_run_sending_only_the_rest(
    storage: Path, tmp_path: Path
) -> None:
    names = ids(storage)
    total = sum(len(file_shas(storage / n)) for n in names)
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        drop = DropAfter(nth=9, limit=40_000)
        first = offloader(storage, srv, drop, attempts=1).run()
        assert first.stopped is not None and "stopped answering" in first.stopped
        assert drop.dropped is not None
        # The first recording (7 files) went; the second was cut at its 2nd file.
        assert [o.offloaded for o in first.outcomes] == [True, False, False]
        assert ids(storage) == names[1:]
        on_server = {p.name for p in srv.objects()}
        assert drop.dropped not in on_server  # a cut upload leaves nothing
        assert len(on_server) == 8
        counting = Counting()
        second = offloader(storage, srv, counting).run()
    assert second.ok and ids(storage) == []
    assert counting.methods["PUT"] == total - 8 == second.files_sent
    assert len(set(counting.puts)) == len(counting.puts)
    assert not set(counting.puts) & on_server


def test_a_dropped_connection_is_retried_after_asking_what_the_server_holds(
    storage: Path, tmp_path: Path
) -> None:
    sleeps: list[float] = []
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        drop = DropAfter(nth=2, limit=1000, inner=Counting())
        report = offloader(storage, srv, drop, sleeps=sleeps, attempts=3).run()
    assert report.ok and ids(storage) == []
    inner = drop.inner
    assert isinstance(inner, Counting)
    assert inner.puts.count(drop.dropped) == 2  # cut, asked again (404), sent again
    assert len(inner.puts) == 22
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] < 0.5  # base 0.5 s, jitter [0.5, 1)


# -- receipts not signed by the pinned key -------------------------------------------------
class Impostor(httpx.BaseTransport):
    """A server claiming another key id in ``GET /v1/server`` (its receipts say otherwise)."""

    def __init__(self, claim: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.claim = claim

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.url.path == "/v1/server":
            response.read()
            body = {**response.json(), "key_id": self.claim}
            return httpx.Response(200, json=body)
        return response


def test_a_receipt_not_signed_by_the_pinned_key_deletes_nothing_and_stops(
    storage: Path, tmp_path: Path
) -> None:
    names = ids(storage)
    other = generate_key()
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        report = offloader(storage, srv, Impostor(other.key_id), server_key=other.public_key).run()
    assert not report.ok
    assert report.stopped is not None and "not signed by the pinned server key" in report.stopped
    assert ids(storage) == names
    assert not (storage / RECEIPTS).exists()
    assert events(storage, "offloaded") == [] and events(storage, "deleted") == []
    [rejected] = events(storage, "receipt_rejected")
    assert rejected["recording_id"] == names[0]
    assert "signature does not match" in rejected["reason"]


def test_a_server_presenting_another_key_gets_nothing(storage: Path, tmp_path: Path) -> None:
    counting = Counting()
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        report = offloader(storage, srv, counting, server_key=generate_key().public_key).run()
    assert not report.ok and "not the pinned" in (report.stopped or "")
    assert counting.methods == {"GET": 1}
    assert len(ids(storage)) == 3


# -- the server's answers: full, refused -----------------------------------------------------
def test_a_full_server_507_stops_keeps_everything_and_exits_1(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    full = f'[store]\nobjects = "file://{data / "objects"}?reserve_mb=100000000"\n'
    with live_server(data, enroll_from=storage, config=full) as srv:
        config = write_device_config(tmp_path, storage, srv)
        code, lines, _ = run_cli(capsys, "offload", str(storage), "--config", str(config))
        assert srv.objects() == []
    assert code == 1
    assert all(line.startswith("KEPT ") and "full (507)" in line for line in lines[:3]), lines
    assert len(ids(storage)) == 3 and not (storage / RECEIPTS).exists()
    assert events(storage, "deleted") == []


def test_a_rejected_recording_is_kept_with_the_reason_and_the_next_one_still_goes(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, *rest = ids(storage)
    segment = storage / first / "segment-0002.ts"
    data = bytearray(segment.read_bytes())
    data[5000] ^= 0x01  # a flipped bit, same size
    segment.write_bytes(bytes(data))
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        config = write_device_config(tmp_path, storage, srv)
        code, lines, _ = run_cli(capsys, "offload", str(storage), "--config", str(config))
        assert srv.get_receipt(first) is None
        assert all(srv.get_receipt(n) is not None for n in rest)
        assert (srv.data / "rejected" / first).is_dir()  # the server keeps what it refuses
    assert code == 1
    assert lines[0].startswith(f"KEPT {first}: refused by the server (400)")
    assert [line.split()[:2] for line in lines[1:3]] == [["OFFLOADED", n] for n in rest]
    assert ids(storage) == [first]
    [refused] = events(storage, "offload_refused")
    assert refused["recording_id"] == first and refused["status"] == 400
    assert "segment-0002.ts" in refused["reason"]


def test_an_interrupted_recording_is_never_sent(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    *_, last = ids(storage)
    (storage / last / "manifest.json").unlink()  # as a power cut leaves it: journal, no manifest
    never = set(file_shas(storage / last).values())
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        config = write_device_config(tmp_path, storage, srv)
        code, lines, _ = run_cli(capsys, "offload", str(storage), "--config", str(config))
        assert not {p.name for p in srv.objects()} & never
    assert code == 0  # every closed recording went
    assert f"KEPT {last}: interrupted" in lines[2]
    assert f"run `bodycam recover {storage / last}` first" in lines[2]
    assert ids(storage) == [last]


def test_the_recording_being_written_is_not_touched(storage: Path, tmp_path: Path) -> None:
    *_, last = ids(storage)
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        report = offloader(storage, srv, busy=lambda: {last}).run()
    assert report.ok
    assert report.outcomes[-1].line() == f"KEPT {last}: still being written"
    assert ids(storage) == [last]


# -- crashes between the steps ----------------------------------------------------------------
def crash_once(monkeypatch: pytest.MonkeyPatch, name: str, fail: Callable[..., Any]) -> None:
    """Replace ``camera.offload.<name>`` by ``fail`` for one call, then the real one again."""
    real = getattr(camera.offload, name)
    calls = {"n": 0}

    def once(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            return fail(real, *args, **kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(camera.offload, name, once)


class PowerCut(Exception):
    pass


def test_a_crash_between_receipt_and_delete_commits_again_and_deletes(
    storage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cut(real: Any, path: Path) -> None:
        raise PowerCut

    crash_once(monkeypatch, "delete_recording", cut)
    names = ids(storage)
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        with pytest.raises(PowerCut):
            offloader(storage, srv).run()
        kept = (storage / RECEIPTS / f"{names[0]}.json").read_bytes()
        assert ids(storage) == names
        counting = Counting()
        report = offloader(storage, srv, counting).run()
    assert report.ok and ids(storage) == []
    assert counting.methods["POST"] == 3 and counting.methods["PUT"] == 14
    assert (storage / RECEIPTS / f"{names[0]}.json").read_bytes() == kept  # the same receipt
    assert [e["recording_id"] for e in events(storage, "offloaded")] == names
    assert [e["recording_id"] for e in events(storage, "deleted")] == names


def test_a_file_that_appears_after_the_upload_keeps_the_recording(
    storage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only what the receipt names may go: a file never sent keeps its directory."""
    names = ids(storage)
    real_commit = EvidenceServer.commit

    def commit(self: EvidenceServer, recording: str, files: dict[str, str]) -> Any:
        receipt = real_commit(self, recording, files)
        if recording == names[0]:
            (storage / recording / "late.bin").write_bytes(b"written after the upload")
        return receipt

    monkeypatch.setattr(EvidenceServer, "commit", commit)
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        report = offloader(storage, srv).run()
    first = report.outcomes[0]
    assert first.offloaded and not first.deleted
    assert "late.bin appeared after the upload" in first.reason
    assert ids(storage) == names[:1]  # the others went
    assert (storage / names[0] / "late.bin").exists()
    assert [e["recording_id"] for e in events(storage, "deleting")] == names[1:]


def test_a_crash_mid_delete_is_finished_from_the_kept_receipt(
    storage: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def half(real: Any, path: Path) -> None:
        for seg in sorted(path.glob("segment-*"))[:3]:
            seg.unlink()
        raise PowerCut

    crash_once(monkeypatch, "delete_recording", half)
    names = ids(storage)
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        with pytest.raises(PowerCut):
            offloader(storage, srv).run()
        assert (storage / names[0] / "manifest.json").exists()  # the manifest goes last
        report = offloader(storage, srv).run()
    assert report.ok and ids(storage) == []
    assert [e["recording_id"] for e in events(storage, "deleted")] == names
    code, lines, _ = run_cli(capsys, "verify", str(storage))
    assert code == 0, lines


def test_a_crash_after_the_delete_adds_the_missing_deleted_entry(
    storage: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real = Offloader._record
    cut = {"done": False}

    def record(self: Offloader, event: str, **fields: Any) -> None:
        if event == "deleted" and not cut["done"]:
            cut["done"] = True
            raise PowerCut
        real(self, event, **fields)

    monkeypatch.setattr(Offloader, "_record", record)
    names = ids(storage)
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        with pytest.raises(PowerCut):
            offloader(storage, srv).run()
        assert ids(storage) == names[1:] and events(storage, "deleted") == []
        code, _, _ = run_cli(capsys, "verify", str(storage))
        assert code == 1  # gone, and the audit log does not yet say so
        report = offloader(storage, srv).run()
    assert report.ok
    assert [e["recording_id"] for e in events(storage, "deleted")] == names
    code, lines, _ = run_cli(capsys, "verify", str(storage))
    assert code == 0, lines


# -- user mistakes: one line, exit 2 -------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "config", "message"),
    [
        ([], {}, "no evidence server: pass --server URL or set offload.server"),
        (["--server", "http://127.0.0.1:9"], {}, "no pinned server key: pass --server-key PEM"),
        (["--server", "ftp://x", "--server-key", "k.pem"], {}, "--server: expected an http://"),
        (["--server", "http://127.0.0.1:9", "--server-key", "nope.pem"], {}, "nope.pem: no such"),
        ([], {"server": "gopher://x"}, "offload.server: expected an http:// or https:// URL"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(
    storage: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    config: dict[str, Any],
    message: str,
) -> None:
    cfg = write_device_config(tmp_path, storage, None, **config)
    code, out, err = run_cli(capsys, "offload", str(storage), "--config", str(cfg), *argv)
    assert code == 2 and out == []
    assert err.startswith("bodycam offload: ") and message in err and err.count("\n") == 1, err
    assert len(ids(storage)) == 3


def test_a_missing_storage_is_a_user_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shift: Path
) -> None:
    cfg = write_device_config(tmp_path, shift, None)
    key = tmp_path / "server.pub.pem"
    key.write_bytes(generate_key().public_pem)
    argv = ["--server", "http://127.0.0.1:9", "--server-key", str(key), "--config", str(cfg)]
    code, _, err = run_cli(capsys, "offload", str(tmp_path / "nope"), *argv)
    assert code == 2 and "nope: no such directory" in err


def test_config_show_prints_the_offload_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[offload]\nserver = "http://10.0.0.5:8443"\nserver_key = "/etc/bodycam/s.pem"\n'
    )
    code, lines, _ = run_cli(capsys, "config", "show", "--config", str(cfg))
    assert code == 0
    at = lines.index("[offload]")
    assert lines[at + 1 : at + 7] == [
        'server = "http://10.0.0.5:8443"',
        'server_key = "/etc/bodycam/s.pem"',
        "delete_after_upload = true",
        "attempts = 5",
        "connect_timeout = 10.0",
        "timeout = 60.0",
    ]
    cfg.write_text("[offload]\ndelete = false\n")
    code, _, err = run_cli(capsys, "config", "check", str(cfg))
    assert code == 2 and "c.toml: offload.delete: unknown key" in err


def test_recordings_of_another_device_are_named_and_kept(storage: Path, tmp_path: Path) -> None:
    stranger = storage / "BWC-0002_20260101T080001Z_0001"
    shutil.copytree(storage / ids(storage)[0], stranger)
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        report = offloader(storage, srv).run()
    assert not report.ok
    assert report.outcomes[0].line() == (
        f"KEPT {stranger.name}: not recorded by this device ({DEVICE}, the config's device.id)"
    )
    assert stranger.is_dir() and ids(storage) == []


def test_the_report_counts_what_went_and_the_receipts_say_the_chain_held(
    storage: Path, tmp_path: Path
) -> None:
    size = sum(p.stat().st_size for n in ids(storage) for p in (storage / n).iterdir())
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        report = offloader(storage, srv).run()
    assert (report.files_sent, report.files_held, report.bytes_sent) == (21, 0, size)
    receipts = [json.loads(p.read_text()) for p in sorted((storage / RECEIPTS).iterdir())]
    assert [r["chain"] for r in receipts][1:] == ["ok", "ok"]


def test_a_recording_removed_by_hand_is_never_recorded_as_deleted(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, _ = ids(storage)
    with live_server(tmp_path / "data", enroll_from=storage) as srv:
        assert offloader(storage, srv, delete=False).run().ok
        shutil.rmtree(storage / first)  # by hand, after the upload
        (storage / second / "segment-0001.ts").unlink()
        report = offloader(storage, srv).run()
    assert [o.recording for o in report.outcomes if not o.offloaded] == [second]
    assert "refused by the server (409)" in report.outcomes[0].reason
    assert first not in {e["recording_id"] for e in events(storage, "deleted")}
    assert (storage / second / "manifest.json").exists()
    code, lines, _ = run_cli(capsys, "verify", str(storage))
    assert code == 1
    assert any(
        f"{first} is gone, but the audit log has no offloaded and deleted" in x for x in lines
    )
