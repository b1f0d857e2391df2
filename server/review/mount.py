"""The review page inside ``bodycam server``: ``/review`` behind a login, ``/`` sending there."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Mount, Route

from server.datadir import Server
from server.review import auth
from server.review.store_catalog import StoreCatalog
from server.review.web import create_review_app

__all__ = ["review_routes"]


def review_routes(server: Server) -> list[BaseRoute]:
    """Routes to add to the store's app (its users' table is made here on first use)."""
    auth.ensure_tables(server.meta)
    app = create_review_app(StoreCatalog(server), auth.Sessions(server.meta))

    async def root(request: Request) -> RedirectResponse:
        return RedirectResponse("/review/", 307)

    return [Route("/", root, methods=["GET"]), Mount("/review", app=app)]
