"""Who may look: the review page's users on the server, their passwords, and the session cookie.

- Users live in the store's metadata database (table ``review_users``,
  created beside the schema of server.meta on first use), made by
  ``bodycam server admin --data DIR --user NAME``, which reads the password
  from stdin (or prompts twice on a terminal) and audits the change.
- Passwords are kept as scrypt (:func:`hashlib.scrypt`, the memory-hard KDF
  of RFC 7914; n=2**15, r=8, p=1: 32 MiB and ~0.1 s per try) with a random
  16-byte salt, compared in constant time. A login for an unknown user
  costs the same scrypt, so timing does not tell which users exist.
- The session is a cookie: the user name, an expiry (8 hours, a shift) and
  a fingerprint of the password hash (a changed password ends every
  session), signed with HMAC-SHA256 under a key made fresh when the server
  starts (a restart signs everyone out). ``HttpOnly`` (no script reads it),
  ``SameSite=Strict`` (no other site's page can make the browser send it, so
  no cross-site request acts as a logged-in user), ``Secure`` over HTTPS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, MetaData, String, Table, Text, select

from camera.errors import InputError
from camera.evidence.audit import format_utc
from server import audit
from server.meta import Meta

__all__ = [
    "COOKIE",
    "Sessions",
    "check_login",
    "hash_password",
    "set_admin",
    "users",
]

review_metadata = MetaData()
users = Table(
    "review_users",
    review_metadata,
    Column("name", String(64), primary_key=True),
    Column("password", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_utc", String(32), nullable=False),
    Column("changed_utc", String(32), nullable=False),
)

COOKIE = "bodycam_review"
SESSION_SECONDS = 8 * 3600
_N, _R, _P = 2**15, 8, 1
_MAXMEM = 64 << 20
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
#: Compared against when the user does not exist, so a miss costs a full scrypt too.
_DUMMY = "$".join(
    [
        "scrypt",
        str(_N),
        str(_R),
        str(_P),
        base64.b64encode(bytes(16)).decode(),
        base64.b64encode(bytes(32)).decode(),
    ]
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=32
    )
    return "$".join(
        [
            "scrypt",
            str(_N),
            str(_R),
            str(_P),
            base64.b64encode(salt).decode(),
            base64.b64encode(digest).decode(),
        ]
    )


def _matches(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, want = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(base64.b64decode(want)),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(want))


def ensure_tables(meta: Meta) -> None:
    review_metadata.create_all(meta.engine)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise InputError(
            f"--user {name!r}: expected 1-64 letters, digits, '.', '_', '@' or '-' "
            "(starting with a letter or digit)"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"the password must be at most {MAX_PASSWORD} characters")
    return password


def set_admin(meta: Meta, name: str, password: str, actor: str) -> str:
    """Create the admin ``name``, or change its password; audited. 'created' or 'changed'."""
    name, password = check_name(name), check_password(password)
    ensure_tables(meta)
    stored = hash_password(password)
    utc = format_utc(datetime.now(UTC))
    with meta.write() as conn:
        held = conn.execute(select(users.c.name).where(users.c.name == name)).first()
        if held is None:
            conn.execute(
                users.insert().values(
                    name=name, password=stored, role="admin", created_utc=utc, changed_utc=utc
                )
            )
            outcome = "created"
        else:
            conn.execute(
                users.update().where(users.c.name == name).values(password=stored, changed_utc=utc)
            )
            outcome = "changed"
        audit.append(
            conn,
            utc=utc,
            actor=actor,
            action="user",
            target=f"user:{name}",
            detail={"what": "admin " + ("created" if outcome == "created" else "password changed")},
        )
    return outcome


@dataclass(frozen=True)
class User:
    name: str
    role: str
    #: A fingerprint of the stored hash: the session names it, so a new password ends it.
    stamp: str


def _user(meta: Meta, name: str) -> tuple[User, str] | None:
    with meta.read() as conn:
        row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        return None
    stamp = hashlib.sha256(row.password.encode()).hexdigest()[:16]
    return User(row.name, row.role, stamp), row.password


def check_login(meta: Meta, name: str, password: str) -> User | None:
    """The user, if the password is theirs (constant work whether or not the user exists)."""
    found = _user(meta, name[:64]) if _NAME.fullmatch(name or "") else None
    ok = _matches(password[:MAX_PASSWORD], found[1] if found else _DUMMY)
    return found[0] if found is not None and ok else None


class Sessions:
    """Signed session cookies, under a key this process made (a restart signs everyone out)."""

    def __init__(self, meta: Meta, key: bytes | None = None) -> None:
        self.meta = meta
        self._key = key or secrets.token_bytes(32)

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest())

    def issue(self, user: User, now: float | None = None) -> str:
        body = {"u": user.name, "s": user.stamp, "e": int((now or time.time()) + SESSION_SECONDS)}
        payload = json.dumps(body, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{self._sign(payload)}"

    def user(self, cookie: str | None, now: float | None = None) -> User | None:
        """The user the cookie is a live session of, or None."""
        if not cookie or "." not in cookie or len(cookie) > 4096:
            return None
        encoded, signature = cookie.rsplit(".", 1)
        try:
            payload = _unb64(encoded)
        except ValueError:
            return None
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            body = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("e"), int):
            return None
        if body["e"] < (now or time.time()):
            return None
        found = _user(self.meta, str(body.get("u")))
        if found is None or found[0].stamp != body.get("s"):
            return None
        return found[0]
