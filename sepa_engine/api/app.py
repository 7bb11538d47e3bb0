"""The HTTP API: a thin adapter over the services (parse -> call -> render).

``create_app(settings, db, clock)`` builds the FastAPI application; ``sepa-engine api``
serves it with uvicorn. See docs/ARCHITECTURE.md ("The HTTP API") for the choices.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from sepa_engine.api import docs, fastpath, problems, response_schemas
from sepa_engine.api.batcher import EnqueueBatcher
from sepa_engine.api.deps import ApiContext, TokenCache, storable_parameters
from sepa_engine.api.fastpath import EnqueueFastPath, replay_body
from sepa_engine.api.routes import accounts, creditors, files, registry, returns
from sepa_engine.api.settings import ApiSettings
from sepa_engine.clock import Clock
from sepa_engine.config import Settings
from sepa_engine.db.session import Database
from sepa_engine.metrics import ApiMetrics, MetricsMiddleware

VERSION = "1"
# Every router of the app, in order; tests walk them to try each route (FastAPI includes
# routers lazily, so ``app.routes`` does not list their routes).
ROUTERS = (creditors.router, registry.router, accounts.router, files.router, returns.router)
DESCRIPTION = """\
The JSON API of sepa-engine for upstream systems (billing, customer portals).

* **Authentication:** `Authorization: Bearer sek_...`, a token from `sepa-engine tokens create`,
  scoped to creditors and to read or write. Another creditor's data answers 404.
* **Idempotency:** every POST, PUT and DELETE needs an `Idempotency-Key` header. The same key with
  the same request returns the first response (header `Idempotent-Replayed: true`) without acting
  again; with another request it is refused with 409.
* **Errors** are `application/problem+json` (RFC 9457) with the engine's stable `code`, the `field`
  and the `rule`; `errors` lists every bad field.
* **Lists** are pages: pass `next_cursor` back as `cursor`.
* **Money** is a string of euros with at most two decimals (`"76.00"`), never a number.
"""


class BodyLimit:
    """Refuse request bodies larger than ``limit`` bytes with 413, before any route reads them:
    by the Content-Length when there is one, else while the body streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await self._refuse(scope, receive, send)
                    return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, replay_body(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problems.problem(
            413, "body_too_large", f"the request body is larger than {self.limit} bytes (api.max_body_bytes)",
            rule=f"must be at most {self.limit} bytes",
        )
        await response(scope, receive, send)


def all_routes(app: FastAPI) -> list[APIRoute]:
    """Every API route: the app's own and those of its routers."""
    found = [route for route in app.routes if isinstance(route, APIRoute)]
    for router in ROUTERS:
        found.extend(route for route in router.routes if isinstance(route, APIRoute))
    return found


def create_app(settings: Settings, db: Database, clock: Clock, api_settings: ApiSettings | None = None) -> FastAPI:
    chosen = api_settings or ApiSettings()
    context = ApiContext(settings, db, clock, chosen, TokenCache(chosen.token_cache_seconds, clock))
    batcher = EnqueueBatcher(db, clock, registry.request_result)
    context = dataclasses.replace(context, batcher=batcher)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="sepa-engine",
        version=VERSION,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(storable_parameters)],
    )
    app.state.context = context
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/v1/health", tags=["service"])
    def health() -> JSONResponse:
        """Liveness: answers without a token and without touching the ledger."""
        return JSONResponse({"status": "ok"})

    metrics = ApiMetrics(db)
    app.state.metrics = metrics
    def openapi() -> dict[str, Any]:
        return response_schemas.attach(docs.build(app))

    app.openapi = openapi  # type: ignore[method-assign]
    # Outermost first: the body limit, then the enqueue fast path (api/fastpath.py).
    app.add_middleware(EnqueueFastPath, context=context)
    app.add_middleware(BodyLimit, limit=chosen.max_body_bytes)
    # Outermost: counts every answer, the fast path's and the body limit's included, and
    # answers GET /metrics itself (not a route of the API: it is not in the OpenAPI document).
    app.add_middleware(MetricsMiddleware, metrics=metrics, fast_path=fastpath._PATH, fast_route=fastpath.ROUTE)
    return app
