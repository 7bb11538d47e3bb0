"""What every route needs: the context, the caller (bearer token), the creditor it acts for,
the raw body, the idempotency key, and cursor pagination."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from cachetools import TTLCache
from fastapi import Depends, Header, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from sepa_engine.api.settings import ApiSettings
from sepa_engine.clock import Clock
from sepa_engine.config import Settings
from sepa_engine.db.session import Database
from sepa_engine.domain import text
from sepa_engine.services import api_tokens
from sepa_engine.services.api_tokens import Principal

CREDITOR_PATTERN = r"^[a-z0-9-]{1,32}$"
PAGE_MAX = 500
# Ids are INTEGER columns: larger numbers cannot name anything (and PostgreSQL refuses them).
ID_MAX = 2**31 - 1
_bearer = HTTPBearer(auto_error=False, description="A token from `sepa-engine tokens create` (sek_...).")


_MISSING = object()


class TokenCache:
    """Principals by token for ``ttl`` seconds: the lookup is the costliest part of a small
    request. A revoked token is refused at most ``ttl`` seconds after its revocation.

    Expiry reads the engine's one injected clock (cachetools' ``TTLCache`` with the clock as
    its timer), so a test moves the clock instead of sleeping through the TTL."""

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float, clock: Clock) -> None:
        self.ttl = ttl
        self._entries: TTLCache[str, Principal | None] | None = (
            TTLCache(maxsize=self.MAX_ENTRIES, ttl=ttl, timer=lambda: clock.now().timestamp()) if ttl > 0 else None
        )
        self._pending: dict[str, asyncio.Future[Principal | None]] = {}

    async def lookup(self, token: str, authenticate: Callable[[], Awaitable[Principal | None]]) -> Principal | None:
        """The cached principal, else ``authenticate()``'s, cached. One lookup per token at a
        time: when an entry expires under load, the calls arriving meanwhile wait for the
        lookup under way instead of each starting its own (sixteen lookups through the
        thread pool stalled every enqueue for 50 ms, once a second)."""
        cached, found = self.get(token)
        if cached:
            return found
        if self._entries is None:
            return await authenticate()
        pending = self._pending.get(token)
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            pending = self._pending[token] = asyncio.ensure_future(self._fetch(token, authenticate))
        return await asyncio.shield(pending)

    async def _fetch(self, token: str, authenticate: Callable[[], Awaitable[Principal | None]]) -> Principal | None:
        try:
            found = await authenticate()
            self.put(token, found)
            return found
        finally:
            self._pending.pop(token, None)

    def get(self, token: str) -> tuple[bool, Principal | None]:
        if self._entries is None:
            return False, None
        # One read: "in" then "get" could straddle the expiry and take a miss for "unknown".
        found = self._entries.get(token, _MISSING)
        if found is _MISSING:
            return False, None
        return True, found  # type: ignore[return-value]

    def put(self, token: str, principal: Principal | None) -> None:
        if self._entries is not None:
            self._entries[token] = principal


@dataclass(frozen=True, slots=True)
class ApiContext:
    settings: Settings
    db: Database
    clock: Clock
    api: ApiSettings
    tokens: TokenCache
    batcher: Any = None  # batcher.EnqueueBatcher, set by create_app


async def context(request: Request) -> ApiContext:
    # Every dependency here is async: FastAPI runs a plain ``def`` dependency in a worker
    # thread, a hop that costs more than the dependency itself.
    return request.app.state.context  # type: ignore[no-any-return]


def _authenticate(ctx: ApiContext, token: str) -> Principal | None:
    with ctx.db.reader() as session:
        return api_tokens.authenticate(session, token)


async def principal_of(ctx: ApiContext, token: str) -> Principal | None:
    """The principal of a bearer token (None: unknown or revoked), through the token cache."""
    return await ctx.tokens.lookup(token, lambda: run_in_threadpool(_authenticate, ctx, token))


async def storable_parameters(request: Request) -> None:
    """Refuse path and query values that break the text rules (``domain/text.py``)."""
    values = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in values:
        rule = text.problem(value) if isinstance(value, str) else None
        if rule is not None:
            raise HTTPException(
                422, {"code": "invalid_characters", "detail": f"{name} {rule}", "field": name, "rule": rule},
            )


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        401, {"code": "unauthorized", "detail": detail}, headers={"WWW-Authenticate": 'Bearer realm="sepa-engine"'}
    )


async def principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("a bearer token is required (Authorization: Bearer sek_...)")
    ctx: ApiContext = request.app.state.context
    found = await principal_of(ctx, credentials.credentials)
    if found is None:
        raise _unauthorized("the token is unknown or revoked")
    return found


@dataclass(frozen=True, slots=True)
class Scope:
    """A caller acting for one creditor it is allowed to see."""

    principal: Principal
    creditor: str

    @property
    def idempotency_scope(self) -> str:
        return f"creditor:{self.creditor}"

    @property
    def actor(self) -> str:
        return f"api:{self.principal.name}"[:70]


async def read_scope(
    who: Annotated[Principal, Depends(principal)],
    creditor: Annotated[str, Path(description="The creditor's code.", pattern=CREDITOR_PATTERN)],
) -> Scope:
    # Another creditor's data does not exist for this token: 404, the same answer as for a
    # creditor that does not exist at all, so a token cannot probe for codes.
    if creditor not in who.creditors:
        raise HTTPException(404, {"code": "not_found", "detail": f"creditor {creditor!r} does not exist", "field": "creditor", "rule": "does not exist"})
    return Scope(who, creditor)


async def write_scope(scope: Annotated[Scope, Depends(read_scope)]) -> Scope:
    if not scope.principal.can_write:
        raise HTTPException(403, {"code": "forbidden", "detail": "this token is read-only", "rule": "needs a write token"})
    return scope


async def raw_body(request: Request) -> bytes:
    return await request.body()


IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=100,
        description="Unique key of this call in the creditor's scope: the same key with the same body returns the "
        "first response without acting again; with another body it is refused with 409.",
    ),
]
ReadScope = Annotated[Scope, Depends(read_scope)]
WriteScope = Annotated[Scope, Depends(write_scope)]
Body = Annotated[bytes, Depends(raw_body)]
Context = Annotated[ApiContext, Depends(context)]


@dataclass(frozen=True, slots=True)
class PageRequest:
    after_id: int
    limit: int


async def page_request(
    cursor: Annotated[str | None, Query(description="The next_cursor of the previous page.", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX, description="Items per page.")] = 50,
) -> PageRequest:
    return PageRequest(decode_cursor(cursor) if cursor else 0, limit)


Paging = Annotated[PageRequest, Depends(page_request)]


def encode_cursor(after_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{after_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        prefix, _, number = text.partition(":")
        if prefix != "after" or not number.isdigit() or int(number) > ID_MAX:
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise HTTPException(
            422, {"code": "invalid_cursor", "detail": "cursor is not a cursor this API gave", "field": "cursor", "rule": "is not a cursor this API gave"}
        ) from None


def page(items: list[Any], paging: PageRequest, id_of: Any = lambda item: item["id"]) -> dict[str, Any]:
    """A page of ``items`` (at most ``limit``, fetched in id order after the cursor)."""
    more = len(items) == paging.limit
    return {"items": items, "next_cursor": encode_cursor(id_of(items[-1])) if more and items else None}
