"""The review page (issue 17) without a browser: what it serves, what it says, what it records.

Recordings are three chained, signed H.264 recordings of a simulated device
(made once for the module). On a laptop (``bodycam review STORAGE``) the page
reads them in place and checks them with ``bodycam verify``'s code; in the
store they are uploaded as a camera does, and the page wants a login and
audits every view and export. The browser itself is tests/test_review_browser.py.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest
from sqlalchemy import select

from camera.cli import main
from camera.evidence.keys import load_public_key
from camera.evidence.svf_check import validate
from camera.evidence.verify.trust import KeySet
from camera.inspection.wallclock import WallClock, parse_utc
from server.app import create_app
from server.datadir import Server, open_server
from server.meta import audit
from server.review.auth import set_admin
from server.review.describe import describe_manifest
from server.review.playlist import parts, playlist, segments_of
from server.review.serve import review_app
from server.review.storage_catalog import StorageCatalog
from server.review.timeline import build_timeline
from tests.conftest import make_device
from tests.review_support import PASSWORD, served, store_holding
from tests.server_support import (
    DEVICE,
    Camera,
    copy_recording,
    device_key,
    live_server,
    record_three,
    recordings_of,
)

DEADLINE = 60.0
#: A row of the list: the recording's id and its verdict.
ROW = r'<tr class="recording" data-id="([^"]+)" data-state="([a-z]+)"'


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_three(tmp_path_factory.mktemp("camera"))


def checked(catalog: StorageCatalog) -> StorageCatalog:
    """The catalog once its background check has reached every recording (with a deadline)."""
    catalog.entries()  # asks for the check
    assert catalog.wait_checked(DEADLINE), "the background check did not finish"
    assert not catalog.checking()
    return catalog


@pytest.fixture(scope="module")
def laptop(storage: Path) -> Iterator[httpx.Client]:
    catalog = checked(StorageCatalog(storage))
    with served(review_app(catalog)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client
    catalog.close()


def manifest_of(rec: Path) -> dict:
    return json.loads((rec / "manifest.json").read_text())


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``root``: size, mtime and sha256 (the storage must not change)."""
    return {
        str(p.relative_to(root)): (
            p.stat().st_size,
            p.stat().st_mtime_ns,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -- playlists --------------------------------------------------------------------------------


def test_the_playlist_has_every_segment_with_its_duration_and_wall_time(
    laptop: httpx.Client, storage: Path
) -> None:
    rec = recordings_of(storage)[0]
    m = manifest_of(rec)
    r = laptop.get(f"/review/r/{rec.name}/index.m3u8")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    lines = r.text.splitlines()
    assert lines[0] == "#EXTM3U" and lines[-1] == "#EXT-X-ENDLIST"
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in lines
    durations = [float(x.split(":")[1].rstrip(",")) for x in lines if x.startswith("#EXTINF:")]
    uris = [x for x in lines if x and not x.startswith("#")]
    stamps = [x.split(":", 1)[1] for x in lines if x.startswith("#EXT-X-PROGRAM-DATE-TIME:")]
    segs = m["segments"]
    assert uris == [f"files/{s['file']}" for s in segs]
    period = 1 / m["fps"]
    want = [b["start_time"] - a["start_time"] for a, b in itertools.pairwise(segs)]
    want.append(segs[-1]["end_time"] + period - segs[-1]["start_time"])
    assert durations == pytest.approx(want, abs=1e-5)
    clock = WallClock(m["trigger"]["time"], parse_utc(m["trigger"]["wall_time"]))
    assert stamps == [clock.at(s["start_time"]) for s in segs]
    target = int(next(x for x in lines if x.startswith("#EXT-X-TARGETDURATION:")).split(":")[1])
    assert target >= max(durations)
    for uri in uris:  # every segment is served as stored
        body = laptop.get(f"/review/r/{rec.name}/{uri}")
        assert body.status_code == 200 and body.headers["content-type"] == "video/mp2t"
        assert body.content == (rec / uri.removeprefix("files/")).read_bytes()


def synthetic(audio_from: float, gaps: list[tuple[float, float]] = ()) -> dict:
    """Four 10 s segments; sound from ``audio_from`` to the end, less ``gaps``."""
    return {
        "fps": 10,
        "trigger": {"time": 30.0, "wall_time": "2026-01-01T08:00:30.000Z"},
        "segments": [
            {"file": f"segment-000{i}.ts", "start_time": 10.0 * i, "end_time": 10.0 * i + 9.9}
            for i in range(4)
        ],
        "audio": {
            "first_time": audio_from,
            "end_time": 40.0,
            "gaps": [{"start": a, "end": b} for a, b in gaps],
        },
    }


def test_sound_that_starts_late_or_stops_splits_the_recording_into_parts() -> None:
    """hls.js makes its buffers from the first fragment: a run without sound is its own part."""
    whole = parts(segments_of(synthetic(0.0)))
    assert [(len(p.segments), p.audio) for p in whole] == [(4, True)]
    late = parts(segments_of(synthetic(25.0)))
    assert [([s.index for s in p.segments], p.audio) for p in late] == [
        ([0, 1], False),
        ([2, 3], True),
    ]
    assert (late[1].start, late[1].until) == (20.0, 40.0)
    holed = parts(segments_of(synthetic(0.0, [(9.95, 20.5)])))  # segment 1 has no sound at all
    assert [([s.index for s in p.segments], p.audio) for p in holed] == [
        ([0], True),
        ([1], False),
        ([2, 3], True),
    ]
    text = playlist(late[1].segments, synthetic(25.0))
    assert text.count("#EXTINF:") == 2 and "segment-0002.ts" in text
    assert "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T08:00:20.000Z" in text
    no_sound = dict(synthetic(0.0), audio=None)
    assert [p.audio for p in parts(segments_of(no_sound))] == [False]


# -- the laptop's page ------------------------------------------------------------------------


def test_the_list_shows_every_recording_verified_and_the_card_intact(
    laptop: httpx.Client, storage: Path
) -> None:
    r = laptop.get("/review/")
    assert r.status_code == 200
    assert "default-src 'self'" in r.headers["content-security-policy"]
    rows = re.findall(ROW, r.text)
    assert rows == [(rec.name, "verified") for rec in recordings_of(storage)]
    assert re.search(r"chain: <span class=\"ok\">intact", r.text)
    assert re.search(r"audit log: <span class=\"ok\">intact", r.text)
    one = laptop.get("/review/", params={"day": "1999-01-01"})
    assert "No recordings for this filter" in one.text
    status = laptop.get("/review/status.json").json()
    assert status["checking"] is False
    assert set(status["verdicts"].values()) == {"verified"}


def test_the_player_page_has_the_timeline_proof_and_verify_command(
    laptop: httpx.Client, storage: Path
) -> None:
    rec = recordings_of(storage)[1]
    m = manifest_of(rec)
    r = laptop.get(f"/review/r/{rec.name}/")
    assert r.status_code == 200
    data = json.loads(re.search(r'id="review-data">(.*?)</script>', r.text, re.S)[1])
    tl = data["timeline"]
    kinds = [x["kind"] for x in tl["moments"]]
    assert kinds[0] == "trigger" and kinds[-1] == "stop"
    assert tl["start"] == m["start_time"]
    assert tl["spans"][0]["kind"] == "pre-event"
    assert tl["spans"][0]["end"] == m["trigger"]["time"]
    assert data["playback"]["parts"][0]["url"] == "part-0.m3u8"
    assert f"bodycam verify {rec}" in r.text  # the exact command, as the storage was given
    previous = manifest_of(recordings_of(storage)[0])["recording_id"]
    assert f"links to {previous} on this card: its manifest matches" in r.text
    assert "found beside the recordings on the same card" in r.text
    assert "test key" in r.text
    assert (
        laptop.get(f"/review/r/{rec.name}/key.pub.pem").content
        == (storage / f"{DEVICE}.pub.pem").read_bytes()
    )


def test_only_the_files_the_manifest_lists_are_served(laptop: httpx.Client, storage: Path) -> None:
    rec = recordings_of(storage)[0]
    for name in ("manifest.json", "journal.jsonl", "..%2Faudit.jsonl", "segment-9999.ts"):
        assert laptop.get(f"/review/r/{rec.name}/files/{name}").status_code == 404, name
    assert laptop.get("/review/r/no-such-recording/").status_code == 404


def mp4_annexb(data: bytes) -> tuple[bytes, dict[str, str]]:
    """The MP4's video as one Annex-B stream (as SVF is checked), and its metadata."""
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.video[0]
        bsf = av.bitstream.BitStreamFilterContext("h264_mp4toannexb", stream)
        out = b"".join(bytes(q) for p in c.demux(stream) for q in bsf.filter(p))
        out += b"".join(bytes(q) for q in bsf.filter(None))
        return out, dict(c.metadata)


def test_the_court_mp4_and_a_clip_validate_and_the_card_is_not_written(
    laptop: httpx.Client, storage: Path
) -> None:
    rec = recordings_of(storage)[2]
    m = manifest_of(rec)
    before = snapshot(storage)
    key, _ = load_public_key(storage / f"{DEVICE}.pub.pem")
    whole = laptop.get(f"/review/r/{rec.name}/export.mp4")
    assert whole.status_code == 200, whole.text
    assert whole.headers["x-bodycam-sha256"] == hashlib.sha256(whole.content).hexdigest()
    stream, meta = mp4_annexb(whole.content)
    assert (
        meta["bodycam_manifest_sha256"]
        == hashlib.sha256((rec / "manifest.json").read_bytes()).hexdigest()
    )
    check = validate(stream, key)
    assert check.ok and not check.unsigned_frames, check.problems
    segs = m["segments"]
    assert len(segs) >= 3
    middle = segs[1]["start_time"] - segs[0]["start_time"] + 0.5  # inside segment 1
    clip = laptop.get(f"/review/r/{rec.name}/clip.mp4", params={"start": middle, "end": middle})
    assert clip.status_code == 200, clip.text
    stream, meta = mp4_annexb(clip.content)
    assert meta["bodycam_clip"] == f"{segs[1]['file']}..{segs[1]['file']} of {len(segs)} segments"
    check = validate(stream, key)
    assert check.ok, check.problems  # a GOP-aligned cut validates on its own
    assert check.frames == segs[1]["frames"]
    # Its last GOP is signed by an SEI in the next segment, outside the clip.
    assert 0 < len(check.unsigned_frames) <= m["fps"]
    bad = laptop.get(f"/review/r/{rec.name}/clip.mp4", params={"start": "x", "end": "1"})
    assert bad.status_code == 400
    assert snapshot(storage) == before  # read in place, never written


def test_a_tampered_recording_is_listed_as_failed_with_its_reason(
    storage: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "card"
    shutil.copytree(storage, copy)
    rec = recordings_of(copy)[1]
    segment = rec / "segment-0001.ts"
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x01
    segment.write_bytes(bytes(data))
    catalog = checked(StorageCatalog(copy))
    try:
        verdicts = {e.id: e.verdict for e in catalog.entries()}
        assert verdicts[rec.name].state == "failed"
        assert "segment-0001.ts" in verdicts[rec.name].reason
        assert "sha256" in verdicts[rec.name].reason
        others = [v.state for name, v in verdicts.items() if name != rec.name]
        assert others == ["verified", "verified"]
        with served(review_app(catalog)) as url:
            page = httpx.get(f"{url}/review/", timeout=60).text
        row = re.search(rf'data-id="{rec.name}" data-state="failed">.*?</tr>', page, re.S)
        assert row and "segment-0001.ts" in row[0] and "sha256" in row[0]
    finally:
        catalog.close()


def test_review_listens_on_loopback_only(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", str(storage), "--listen", "0.0.0.0:0"]) == 2
    err = capsys.readouterr().err
    assert "expected a loopback address" in err and err.count("\n") == 1
    assert main(["review", str(storage / "nope"), "--listen", "127.0.0.1:0"]) == 2
    assert "no such directory" in capsys.readouterr().err


# -- the store's page -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(storage: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("data")
    store_holding(data, storage, recordings_of(storage))
    server = open_server(data, serve=True)
    yield server
    server.close()


@pytest.fixture(scope="module")
def web(store: Server) -> Iterator[httpx.Client]:
    with served(create_app(store)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def add_admin(store: Server, name: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    return main(["server", "admin", "--data", str(store.data.root), "--user", name])


def audit_rows(store: Server) -> list[dict]:
    with store.meta.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(audit).order_by(audit.c.seq))]


def log_in(web: httpx.Client, name: str, password: str = PASSWORD) -> None:
    r = web.post("/review/login", data={"user": name, "password": password, "next": "/review/"})
    assert r.status_code == 303, r.text
    web.cookies.set("bodycam_review", r.cookies["bodycam_review"])


def test_no_page_without_a_login(web: httpx.Client, storage: Path) -> None:
    rec = recordings_of(storage)[0].name
    web.cookies.clear()
    for path in ("/review/", f"/review/r/{rec}/", f"/review/r/{rec}/export.mp4"):
        r = web.get(path)
        assert r.status_code == 303 and "/review/login?next=" in r.headers["location"], path
    for path in (f"/review/r/{rec}/index.m3u8", f"/review/r/{rec}/files/segment-0000.ts"):
        assert web.get(path).status_code == 401, path
    assert web.get("/review/login").status_code == 200
    assert web.get("/").headers["location"] == "/review/"
    web.cookies.set("bodycam_review", "eyJ1IjoiYWRtaW4ifQ.forged")
    assert web.get("/review/").status_code == 303


def test_an_admin_from_the_command_line_logs_in_with_a_strict_cookie(
    web: httpx.Client, store: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert add_admin(store, "alice", monkeypatch) == 0
    created = audit_rows(store)[-1]
    assert (created["action"], created["target"]) == ("user", "user:alice")
    web.cookies.clear()
    wrong = web.post("/review/login", data={"user": "alice", "password": "not it at all"})
    assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
    assert audit_rows(store)[-1]["detail"] == {"what": "login refused"}
    r = web.post("/review/login", data={"user": "alice", "password": PASSWORD, "next": "/review/"})
    assert r.status_code == 303 and r.headers["location"] == "/review/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert audit_rows(store)[-1]["actor"] == "user:alice"
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["server", "admin", "--data", str(store.data.root), "--user", "bob"]) == 2


def test_views_and_exports_are_audited_with_the_parent_hash(
    web: httpx.Client, store: Server, storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_admin(store, "carol", monkeypatch)
    log_in(web, "carol")
    rec = recordings_of(storage)[0]
    listing = web.get("/review/")
    assert listing.status_code == 200
    rows = re.findall(
        r'<tr class="recording" data-id="([^"]+)" data-state="([a-z]+)"', listing.text
    )
    assert rows == [(r.name, "verified") for r in recordings_of(storage)]
    assert audit_rows(store)[-1]["detail"]["what"] == "list"
    page = web.get(f"/review/r/{rec.name}/")
    assert page.status_code == 200
    assert "enrolled for BWC-0001" in page.text and "bodycam server export --data" in page.text
    view = audit_rows(store)[-1]
    assert (view["action"], view["target"], view["actor"]) == ("access", rec.name, "user:carol")
    assert view["detail"]["what"] == "view"
    assert web.get(f"/review/r/{rec.name}/part-0.m3u8").status_code == 200
    seg = web.get(f"/review/r/{rec.name}/files/segment-0000.ts")
    assert seg.content == (rec / "segment-0000.ts").read_bytes()
    exported = web.get(f"/review/r/{rec.name}/export.mp4")
    assert exported.status_code == 200, exported.text
    entry = audit_rows(store)[-1]
    parent = hashlib.sha256((rec / "manifest.json").read_bytes()).hexdigest()
    assert entry["target"] == rec.name and entry["detail"]["what"] == "export"
    assert entry["detail"]["derivative"] == "mp4"
    assert entry["detail"]["parent_manifest_sha256"] == parent
    assert entry["detail"]["sha256"] == hashlib.sha256(exported.content).hexdigest()
    clip = web.get(f"/review/r/{rec.name}/clip.mp4", params={"start": 0, "end": 0})
    assert clip.status_code == 200
    entry = audit_rows(store)[-1]
    assert entry["detail"]["derivative"] == "clip" and entry["detail"]["segments"] == [0, 0]
    assert entry["detail"]["parent_manifest_sha256"] == parent
    shown = web.get(f"/review/r/{rec.name}/").text  # the proof panel lists them
    assert "access: export" in shown and "access: clip" in shown and "ingest" in shown
    assert list((store.data.work).iterdir()) == []  # the scratch copies are gone


def test_an_mjpeg_recording_is_offered_for_download_and_says_why_it_cannot_play(
    tmp_path: Path,
) -> None:
    dev = make_device(
        tmp_path,
        {
            "video": {"codec": "mjpeg"},
            "buffer": {"pre_event": 1.0},
            "recording": {"segment_seconds": 1.0},
        },
    )
    dev.set_input(1.0, "holster", True)
    dev.run(until=2.5)
    [manifest] = dev.shutdown()
    storage = tmp_path / "store"
    rid = manifest["recording_id"]
    catalog = checked(StorageCatalog(storage))
    try:
        with served(review_app(catalog)) as url, httpx.Client(base_url=url) as client:
            page = client.get(f"/review/r/{rid}/")
            assert page.status_code == 200
            assert "MJPEG in Matroska segments, which browsers cannot play as HLS" in page.text
            assert 'id="video"' not in page.text
            first = manifest["segments"][0]["file"]
            assert f'href="files/{first}?download=1"' in page.text
            got = client.get(f"/review/r/{rid}/files/{first}", params={"download": 1})
            assert got.headers["content-type"] == "video/x-matroska"
            assert got.headers["content-disposition"] == f'attachment; filename="{rid}.{first}"'
            assert got.content == (storage / rid / first).read_bytes()
            assert client.get(f"/review/r/{rid}/index.m3u8").status_code == 404
            mp4 = client.get(f"/review/r/{rid}/export.mp4")
            assert mp4.status_code == 200 and mp4.content[4:8] == b"ftyp"
            verdict = {e.id: e.verdict.state for e in catalog.entries()}
            assert verdict == {rid: "verified"}
    finally:
        catalog.close()


def test_the_timeline_places_gaps_by_cause_and_clock_steps(storage: Path) -> None:
    """Built from inspect's description: a camera gap, a storage gap and a GPS clock step."""
    m = manifest_of(recordings_of(storage)[0])
    t0 = m["segments"][0]["start_time"]
    m["gaps"] = [
        {"cause": "camera", "frames": 3, "first_frame": 5, "start": t0 + 0.2, "end": t0 + 0.3},
        {
            "cause": "writer_backlog",
            "frames": 2,
            "first_frame": 9,
            "start": t0 + 0.4,
            "end": t0 + 0.5,
        },
    ]
    m["wall_clock_steps"] = [{"time": t0 + 0.6, "seconds": 90.0, "source": "gps"}]
    insp = describe_manifest(m["recording_id"], m, KeySet())
    assert insp.error is None
    tl = build_timeline(insp, m["wall_clock_steps"])
    assert tl is not None
    gaps = [(s["cause"], s["start"]) for s in tl["spans"] if s["kind"] == "gap"]
    assert gaps == [("camera", t0 + 0.2), ("storage", t0 + 0.4)]
    step = next(x for x in tl["moments"] if x["kind"] == "step")
    assert step["time"] == t0 + 0.6 and "+90.000 s (gps)" in step["label"]
    stop = next(x for x in tl["moments"] if x["kind"] == "stop")
    assert stop["wall"] == insp.stop.wall_time  # after the step: 90 s later than without it
    assert tl["clock"]["steps"] == [[t0 + 0.6, 90.0]]


def test_a_recording_the_store_rejected_is_listed_as_failed_with_the_reason(
    storage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store_holding(data, storage, [])
    forged = tmp_path / "forged"
    forged.mkdir()
    rec = copy_recording(recordings_of(storage)[0], forged)
    manifest = manifest_of(rec)
    manifest["stop"]["reason"] = "console"  # an edit after signing
    (rec / "manifest.json").write_text(json.dumps(manifest))
    with live_server(data) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        assert Camera(client, device_key()).upload(rec).status_code == 400
    server = open_server(data, serve=True)
    try:
        set_admin(server.meta, "dave", PASSWORD, actor="test")
        with served(create_app(server)) as url, httpx.Client(base_url=url, timeout=60) as web:
            log_in(web, "dave")
            page = web.get("/review/").text
            assert re.findall(ROW, page) == [(rec.name, "failed")]
            row = re.search(r'data-state="failed">.*?</tr>', page, re.S)
            assert row and "failed verification" in row[0] and "signature" in row[0]
            assert "kept in rejected/" in web.get(f"/review/r/{rec.name}/").text
    finally:
        server.close()


def test_bodycam_review_serves_the_page_and_stops_on_ctrl_c(storage: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "camera", "review", str(storage), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # printed once the socket is bound
        url = re.fullmatch(r"bodycam review of .*: (http://127\.0\.0\.1:\d+/review/)\n", first)
        assert url, first
        page = httpx.get(url[1], timeout=DEADLINE)
        assert page.status_code == 200
        assert re.findall(ROW, page.text)[0][0] == recordings_of(storage)[0].name
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=DEADLINE)
        assert proc.returncode == 130 and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=DEADLINE)
