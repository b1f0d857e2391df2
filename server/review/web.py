"""The review page's routes: one Starlette app for a card on a laptop and for the evidence store.

    GET  /                           the list (``?day=YYYY-MM-DD`` UTC, ``&device=ID``)
    GET  /status.json                the laptop's background check: still running, and verdicts
    GET  /r/{id}/                    the player: video, timeline, proof, exports
    GET  /r/{id}/index.m3u8          the whole recording as one HLS playlist
    GET  /r/{id}/part-{n}.m3u8       one part (see server.review.playlist: why parts)
    GET  /r/{id}/files/{name}        a listed segment, as stored (``?download=1``: as a file)
    GET  /r/{id}/export.mp4          the court MP4 (camera.export), audited as a derivative
    GET  /r/{id}/clip.mp4?start=S&end=E   a clip of whole segments, audited as a derivative
    GET  /r/{id}/key.pub.pem         the public key the manifest names (for the verify command)
    GET  /static/...                 hls.js (vendored), the page's script and style
    GET|POST /login, POST /logout    the store only

The store's page wants a login for everything but ``/login`` and the static
files (:mod:`.auth`), and puts every view, download and export on the audit
log before answering (:meth:`Catalog.record`). The player's segment and
playlist requests are covered by the view's entry, not one entry each.
A laptop's page (``bodycam review``) has no login: it listens on loopback
only (:mod:`.serve`).

Pages are rendered on the server (jinja2, autoescaped); the script is a
static file, and a Content-Security-Policy allows scripts from this origin
only, so nothing a manifest says can run in the reviewer's browser.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import jinja2
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from camera.errors import InputError
from camera.evidence.records import MANIFEST
from server.review import auth
from server.review.catalog import Catalog, Entry, start_wall
from server.review.exports import clip_range, make_export
from server.review.playlist import HLS_CODEC, parts, playlist, segments_of
from server.review.timeline import build_timeline

__all__ = ["create_review_app"]

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
SEGMENT_TYPES = {".ts": "video/mp2t", ".mkv": "video/x-matroska"}
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
#: Scripts from this origin only; hls.js runs its demuxer in a worker made from a blob.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
#: Exports stream-copy a whole recording: a few at once, then 503.
EXPORTS_AT_ONCE = 2

Handler = Callable[[Request], Awaitable[Response]]


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["seconds"] = _seconds
    env.filters["q"] = lambda text: urllib.parse.quote(str(text), safe="")
    return env


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    total = max(float(value), 0.0)
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        **(extra or {}),
    }


def _row(entry: Entry) -> dict[str, Any]:
    """One line of the list, from the entry's inspection and verdict."""
    insp = entry.insp
    steps = (entry.manifest or {}).get("wall_clock_steps") or []
    trigger = insp.trigger
    place = None
    if insp.position is not None:
        p = insp.position
        place = f"{p.lat:.6f}, {p.lon:.6f} (fix {p.age:.1f} s before)"
    return {
        "id": entry.id,
        "device": insp.device_id,
        "officer": entry.officer,
        "start_utc": start_wall(insp, steps),
        "duration": insp.duration,
        "trigger": None
        if trigger is None
        else {"source": trigger.source, "detail": trigger.detail, "wall": trigger.wall_time},
        "place": place,
        "stop": None if insp.stop is None else insp.stop.reason,
        "markers": len(insp.markers or []),
        "category": entry.category,
        "verdict": entry.verdict,
        "status": insp.status.value,
        "error": insp.error,
        "audio": insp.audio is not None,
        "codec": insp.codec,
    }


class _Review:
    """The handlers, around one catalog (and, on the store, the sessions)."""

    def __init__(self, catalog: Catalog, sessions: auth.Sessions | None) -> None:
        self.catalog = catalog
        self.sessions = sessions
        self.env = _env()
        self.exports = threading.BoundedSemaphore(EXPORTS_AT_ONCE)

    # -- plumbing ---------------------------------------------------------------------------
    def base(self, request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        html = self.env.get_template(name).render(
            base=self.base(request),
            mode=self.catalog.mode,
            title=self.catalog.title,
            user=request.state.user if hasattr(request.state, "user") else None,
            **context,
        )
        return HTMLResponse(html, status, headers=_headers())

    def actor(self, request: Request) -> str:
        user = getattr(request.state, "user", None)
        return f"user:{user.name}" if user is not None else "local"

    def guard(self, handler: Handler, page: bool = True) -> Handler:
        """On the store: a live session, or the login page (pages) / 401 (everything else)."""

        async def guarded(request: Request) -> Response:
            if self.sessions is not None:
                cookie = request.cookies.get(auth.COOKIE)
                user = await run_in_threadpool(self.sessions.user, cookie)
                if user is None:
                    if not page:
                        return PlainTextResponse("log in first", 401, headers=_headers())
                    target = request.url.path + (
                        f"?{request.url.query}" if request.url.query else ""
                    )
                    query = urllib.parse.urlencode({"next": target})
                    return RedirectResponse(f"{self.base(request)}/login?{query}", 303)
                request.state.user = user
            return await handler(request)

        return guarded

    async def record(
        self, request: Request, what: str, recording: str | None, **detail: Any
    ) -> None:
        await run_in_threadpool(self.catalog.record, self.actor(request), what, recording, **detail)

    async def find(self, request: Request) -> Entry | None:
        return await run_in_threadpool(self.catalog.entry, request.path_params["recording"])

    def missing(self, request: Request) -> Response:
        shown = request.path_params.get("recording", "")[:200]
        return self.page(request, "error.html", 404, message=f"no recording {shown} here")

    # -- the list -----------------------------------------------------------------------------
    async def listing(self, request: Request) -> Response:
        day = request.query_params.get("day", "")
        device = request.query_params.get("device", "")
        entries = await run_in_threadpool(self.catalog.entries)
        rows = [_row(e) for e in entries]
        days = sorted({r["start_utc"][:10] for r in rows if r["start_utc"]})
        devices = sorted({r["device"] for r in rows if r["device"]})
        shown = [
            r
            for r in rows
            if (not day or (r["start_utc"] or "").startswith(day))
            and (not device or r["device"] == device)
        ]
        await self.record(request, "list", None, day=day or None, device=device or None)
        checking = getattr(self.catalog, "checking", lambda: False)()
        return self.page(
            request,
            "list.html",
            rows=shown,
            total=len(rows),
            days=days,
            devices=devices,
            day=day,
            device=device,
            checks=self.catalog.checks(),
            checking=checking,
        )

    async def status(self, request: Request) -> Response:
        entries = await run_in_threadpool(self.catalog.entries)
        checking = getattr(self.catalog, "checking", lambda: False)()
        body = {"checking": checking, "verdicts": {e.id: e.verdict.state for e in entries}}
        return JSONResponse(body, headers=_headers())

    # -- the player ---------------------------------------------------------------------------
    async def player(self, request: Request) -> Response:
        entry = await self.find(request)
        if entry is None:
            return self.missing(request)
        await self.record(request, "view", entry.id, manifest_sha256=entry.manifest_sha256)
        m = entry.manifest
        steps = (m or {}).get("wall_clock_steps") or []
        timeline = build_timeline(entry.insp, steps) if m is not None else None
        playback: dict[str, Any] | None = None
        segments = segments_of(m) if m is not None else []
        if m is not None and entry.insp.codec == HLS_CODEC:
            playback = {
                "parts": [
                    {
                        "url": f"part-{p.number}.m3u8",
                        "start": p.start,
                        "until": p.until,
                        "audio": p.audio,
                    }
                    for p in parts(segments)
                ],
                "start": segments[0].start if segments else 0.0,
            }
        key, chain = self.catalog.key(entry), self.catalog.chain(entry)
        audit_rows = await run_in_threadpool(self.catalog.audit_entries, entry)
        data = {"id": entry.id, "timeline": timeline, "playback": playback}
        return self.page(
            request,
            "player.html",
            entry=entry,
            row=_row(entry),
            insp=entry.insp,
            timeline=timeline,
            playback=playback,
            segments=segments,
            key=key,
            chain=chain,
            audit=audit_rows,
            commands=self.catalog.verify_commands(entry),
            data=json.dumps(data).replace("</", "<\\/"),
        )

    async def index_playlist(self, request: Request) -> Response:
        entry = await self.find(request)
        if entry is None or entry.manifest is None or entry.insp.codec != HLS_CODEC:
            return PlainTextResponse("no HLS playlist for this recording", 404, headers=_headers())
        text = playlist(segments_of(entry.manifest), entry.manifest)
        return Response(text, media_type=PLAYLIST_TYPE, headers=_headers())

    async def part_playlist(self, request: Request) -> Response:
        entry = await self.find(request)
        if entry is None or entry.manifest is None or entry.insp.codec != HLS_CODEC:
            return PlainTextResponse("no HLS playlist for this recording", 404, headers=_headers())
        found = parts(segments_of(entry.manifest))
        number = request.path_params["part"]
        if not 0 <= number < len(found):
            return PlainTextResponse(f"no part {number}", 404, headers=_headers())
        text = playlist(found[number].segments, entry.manifest)
        return Response(text, media_type=PLAYLIST_TYPE, headers=_headers())

    async def file(self, request: Request) -> Response:
        entry = await self.find(request)
        name = request.path_params["name"]
        if entry is None or entry.manifest is None or name == MANIFEST:
            return PlainTextResponse("no such file", 404, headers=_headers())
        opened = await run_in_threadpool(self.catalog.open_file, entry, name)
        if opened is None:
            return PlainTextResponse(
                f"{name}: not a listed file of {entry.id}", 404, headers=_headers()
            )
        media = SEGMENT_TYPES.get(Path(name).suffix, "application/octet-stream")
        cache = "private, no-cache" if self.catalog.mode == "storage" else "private, max-age=86400"
        headers = _headers({"Cache-Control": cache})
        if request.query_params.get("download"):
            sha = next((s["sha256"] for s in entry.manifest["segments"] if s["file"] == name), None)
            await self.record(request, "download", entry.id, file=name, sha256=sha)
            headers["Content-Disposition"] = f'attachment; filename="{entry.id}.{name}"'
        if isinstance(opened, Path):
            return FileResponse(opened, media_type=media, headers=headers)
        return StreamingResponse(_chunks(opened), media_type=media, headers=headers)

    async def key_file(self, request: Request) -> Response:
        entry = await self.find(request)
        if entry is None:
            return self.missing(request)
        key = self.catalog.key(entry)
        if key.pem is None:
            return PlainTextResponse(
                "no public key for this recording here", 404, headers=_headers()
            )
        name = f"{entry.device}.{(key.key_id or '')[:16]}.pub.pem"
        headers = _headers({"Content-Disposition": f'attachment; filename="{name}"'})
        return Response(key.pem, media_type="application/x-pem-file", headers=headers)

    # -- exports ------------------------------------------------------------------------------
    async def export(self, request: Request) -> Response:
        return await self._derive(request, clip=False)

    async def clip(self, request: Request) -> Response:
        return await self._derive(request, clip=True)

    async def _derive(self, request: Request, clip: bool) -> Response:
        entry = await self.find(request)
        if entry is None:
            return self.missing(request)
        if entry.manifest is None or not entry.playable:
            return self.page(request, "error.html", 400, message=f"{entry.id}: nothing to export")
        segments = None
        if clip:
            try:
                start = float(request.query_params.get("start", ""))
                end = float(request.query_params.get("end", ""))
                segments = clip_range(entry, start, end)
            except ValueError:
                return self.page(
                    request, "error.html", 400, message="a clip needs start and end, in seconds"
                )
            except InputError as exc:
                return self.page(request, "error.html", 400, message=str(exc))
        if not self.exports.acquire(blocking=False):
            return self.page(
                request, "error.html", 503, message="exports in progress; try again shortly"
            )
        stack = contextlib.ExitStack()
        stack.callback(self.exports.release)
        try:
            scratch = stack.enter_context(self.catalog.scratch())
            made = await run_in_threadpool(make_export, self.catalog, entry, scratch, segments)
            await self.record(
                request,
                "export" if not clip else "clip",
                entry.id,
                **made.audit_detail(entry.manifest_sha256),
            )
        except InputError as exc:
            stack.close()
            return self.page(request, "error.html", 400, message=str(exc))
        except BaseException:
            stack.close()
            raise
        headers = _headers(
            {
                "Content-Disposition": f'attachment; filename="{made.filename}"',
                "X-Bodycam-Sha256": made.sha256,
            }
        )
        return FileResponse(
            made.path,
            media_type="video/mp4",
            headers=headers,
            background=BackgroundTask(stack.close),
        )

    # -- login --------------------------------------------------------------------------------
    def _next(self, request: Request, given: str | None) -> str:
        base = self.base(request)
        if given and given.startswith(f"{base}/") and not given.startswith("//"):
            return given
        return f"{base}/"

    async def login_form(self, request: Request) -> Response:
        return self.page(
            request,
            "login.html",
            next=self._next(request, request.query_params.get("next")),
            error=None,
        )

    async def login(self, request: Request) -> Response:
        assert self.sessions is not None
        body = await request.body()
        form = urllib.parse.parse_qs(body[:8192].decode("utf-8", "replace"))
        name = (form.get("user") or [""])[0]
        password = (form.get("password") or [""])[0]
        target = self._next(request, (form.get("next") or [None])[0])
        user = await run_in_threadpool(auth.check_login, self.sessions.meta, name, password)
        if user is None:
            await run_in_threadpool(self.catalog.record, f"user:{name[:64]}", "login refused", None)
            return self.page(
                request, "login.html", 401, next=target, error="wrong user name or password"
            )
        await run_in_threadpool(self.catalog.record, f"user:{user.name}", "login", None)
        response = RedirectResponse(target, 303, headers=_headers())
        response.set_cookie(
            auth.COOKIE,
            self.sessions.issue(user),
            max_age=auth.SESSION_SECONDS,
            path=f"{self.base(request)}/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse(f"{self.base(request)}/login", 303, headers=_headers())
        response.delete_cookie(
            auth.COOKIE, path=f"{self.base(request)}/", httponly=True, samesite="strict"
        )
        return response


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(1 << 20):
            yield chunk


def create_review_app(catalog: Catalog, sessions: auth.Sessions | None = None) -> Starlette:
    """The review page's app, to mount at ``/review``; ``sessions`` None: no login (a laptop)."""
    r = _Review(catalog, sessions)
    routes = [
        Route("/", r.guard(r.listing), methods=["GET"]),
        Route("/status.json", r.guard(r.status, page=False), methods=["GET"]),
        Route("/r/{recording}/", r.guard(r.player), methods=["GET"]),
        Route("/r/{recording}/index.m3u8", r.guard(r.index_playlist, page=False), methods=["GET"]),
        Route(
            "/r/{recording}/part-{part:int}.m3u8",
            r.guard(r.part_playlist, page=False),
            methods=["GET"],
        ),
        Route("/r/{recording}/files/{name}", r.guard(r.file, page=False), methods=["GET"]),
        Route("/r/{recording}/export.mp4", r.guard(r.export), methods=["GET"]),
        Route("/r/{recording}/clip.mp4", r.guard(r.clip), methods=["GET"]),
        Route("/r/{recording}/key.pub.pem", r.guard(r.key_file), methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    if sessions is not None:
        routes += [
            Route("/login", r.login_form, methods=["GET"]),
            Route("/login", r.login, methods=["POST"]),
            Route("/logout", r.logout, methods=["POST"]),
        ]
    return Starlette(routes=routes)
