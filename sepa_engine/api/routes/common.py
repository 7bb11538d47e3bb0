"""Small helpers the routers share: one write through the idempotency table, and reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from sepa_engine.api import bodies, writes
from sepa_engine.api.deps import ApiContext, PageRequest, Scope, encode_cursor


def write(
    ctx: ApiContext, request: Request, scope: Scope, key: str, raw: bytes, action: Callable[[Session], tuple[int, Any]]
) -> Response:
    return writes.run(ctx, request, scope=scope.idempotency_scope, who=scope.principal, key=key, body=raw, action=action)


def parsed(raw: bytes, schema: str) -> dict[str, Any]:
    return bodies.parse(raw, schema)


def read(ctx: ApiContext, work: Callable[[Session], Any]) -> JSONResponse:
    with ctx.db.reader() as session:
        document = work(session)
    return JSONResponse(document)


def created(result: Any) -> int:
    """201 when the service created something, 200 when it answered a replay of its own key."""
    return 201 if getattr(result, "created", True) else 200


def sliced(items: list[Any], paging: PageRequest) -> dict[str, Any]:
    """A page of a list the service returns whole: the cursor is a position in it."""
    chunk = items[paging.after_id : paging.after_id + paging.limit]
    end = paging.after_id + len(chunk)
    return {"items": chunk, "next_cursor": encode_cursor(end) if end < len(items) else None}
