"""The evidence store's own config, ``DIR/server.toml``: where metadata and bytes live, and limits.

Absent, the embedded defaults apply (SQLite in ``DIR/evidence.db``, objects
in ``DIR/objects``), so ``bodycam server --data DIR`` needs no setup. A
department points the same server at PostgreSQL and an S3 bucket here::

    [store]
    metadata = "postgresql+psycopg://bodycam@db.example:5432/evidence"
    objects = "s3://evidence?endpoint=https://s3.example&region=us-east-1"

    [limits]
    uploads = 8        # concurrent PUTs before 503 Retry-After
    commits = 2        # concurrent verifications before 503
    retry_after = 5    # seconds, in the 503's Retry-After
    max_object_mb = 4096

    [retention]
    restore_days = 7        # a queued deletion can be undone this long
    compliance_days = 365   # the COMPLIANCE lock of "until released" categories, renewed
    [retention.categories]  # days from receipt, or "until released"
    uncategorized = 31      # a new recording's category
    non-evidential = 31
    evidential = "until released"
    traffic-stop = 1095

The three built-in categories always exist (a table may change their days,
not remove them); see server.retention for what each becomes in the store.
Unknown keys and wrong types are errors, one line naming the key, as the
device config's are (camera.config.first_problem speaks for both).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from camera.config import _At, first_problem
from camera.errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_CATEGORIES",
    "UNCATEGORIZED",
    "UNTIL_RELEASED",
    "Limits",
    "Retention",
    "ServerConfig",
    "StoreUrls",
    "load_server_config",
]

CONFIG_FILE = "server.toml"
#: A category's retention that has no date: kept until someone changes the category.
UNTIL_RELEASED = "until released"
#: The category of a recording as it arrives (Axon's "Uncategorized"; Getac's preset).
UNCATEGORIZED = "uncategorized"
#: Days (None: until released). 31 days for footage nobody marked as evidence is
#: what UK forces use (Lincolnshire, Lichfield: non-evidential deleted after 31 days).
DEFAULT_CATEGORIES: dict[str, int | None] = {
    UNCATEGORIZED: 31,
    "non-evidential": 31,
    "evidential": None,
}
_CATEGORY = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
#: 100 years: a longer timed retention is "until released" in all but name.
MAX_DAYS = 36500


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class StoreUrls(_Model):
    #: SQLAlchemy URL; None = sqlite:///DIR/evidence.db
    metadata: str | None = None
    #: file:///ABS/PATH[?reserve_mb=N] or s3://BUCKET?endpoint=...; None = file://DIR/objects
    objects: str | None = None


class Limits(_Model):
    uploads: Annotated[int, Field(ge=1, le=1024)] = 8
    commits: Annotated[int, Field(ge=1, le=64)] = 2
    retry_after: Annotated[int, Field(ge=1, le=3600)] = 5
    max_object_mb: Annotated[int, Field(ge=1, le=1 << 20)] = 4096


def _category_days(name: object, value: object) -> int | None:
    if not isinstance(name, str) or not _CATEGORY.fullmatch(name):
        raise _At(
            f"category {name!r}: expected a name of 1-64 lowercase letters, digits or '-'",
        )
    if value == UNTIL_RELEASED:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        if isinstance(value, bool):
            shown = "true" if value else "false"
        else:
            shown = repr(value) if isinstance(value, int | str) else "a table or an array"
        raise _At(f'expected days (1-{MAX_DAYS}) or "{UNTIL_RELEASED}", got {shown}', loc=(name,))
    return value


class Retention(_Model):
    #: How long a queued deletion can be undone (Axon Evidence: 7 days).
    restore_days: Annotated[int, Field(ge=1, le=365)] = 7
    #: The COMPLIANCE lock of an "until released" category's objects, renewed by each sweep.
    compliance_days: Annotated[int, Field(ge=1, le=MAX_DAYS)] = 365
    #: Category -> days from receipt (None: until released); the built-ins merged in.
    categories: dict[str, int | None] = Field(default_factory=lambda: dict(DEFAULT_CATEGORIES))

    @field_validator("categories", mode="before")
    @classmethod
    def _categories(cls, value: Any) -> dict[str, int | None]:
        if not isinstance(value, dict):
            raise _At(f'expected a table of category = days or "{UNTIL_RELEASED}"')
        given = {name: _category_days(name, days) for name, days in value.items()}
        return {**DEFAULT_CATEGORIES, **given}


class ServerConfig(_Model):
    store: StoreUrls = StoreUrls()
    limits: Limits = Limits()
    retention: Retention = Retention()

    def metadata_url(self, data: Path) -> str:
        return self.store.metadata or f"sqlite:///{data.resolve() / 'evidence.db'}"

    def objects_url(self, data: Path) -> str:
        return self.store.objects or f"file://{data.resolve() / 'objects'}"


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    node: Any = ServerConfig
    for part in loc[:-1]:
        field = node.model_fields.get(part) if isinstance(node, type) else None
        node = field.annotation if field is not None else None
    return list(node.model_fields) if isinstance(node, type) else []


def load_server_config(path: str | os.PathLike[str] | None) -> ServerConfig:
    """The config at ``path`` (None, or a default path that is absent: the defaults)."""
    if path is None:
        return ServerConfig()
    source = os.fsdecode(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{source}: cannot read: {reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {' '.join(str(exc).split())}") from None
    try:
        return ServerConfig.model_validate(data)
    except ValidationError as exc:
        loc, text = first_problem(exc, _keys_at)
        where = ".".join(str(p) for p in loc)
        raise ConfigError(f"{source}: {where + ': ' if where else ''}{text}") from None
