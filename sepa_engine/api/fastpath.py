"""The hot route, ``POST /v1/creditors/{creditor}/debit-requests``, served without FastAPI's
routing and dependency solving when the call is a plain one.

Per enqueue, FastAPI's request handling (routing, the dependency graph, pydantic checks of
the header and path, the exception middlewares) cost more CPU than the group commit that
writes it. This ASGI middleware takes the call straight to the batcher when everything about
it is ordinary:

* the path is exactly the route's, with a creditor code of the route's pattern, no query
  string and no root path;
* one ``Authorization: Bearer <token>`` header naming a write token of that creditor
  (looked up through the token cache, as the route does);
* one ``Idempotency-Key`` header of 1 to 100 characters;
* a body that passes its JSON Schema (``bodies.parse``) and the service's input checks.

Anything else (no token, an unknown or uncached token, another creditor, a read-only token,
a bad body or header) is handed, untouched and with its body replayed, to the FastAPI route,
which answers as it always did. So the route's contract and its every error answer come
from one place; this module only decides that there is no error to give. The body is read
and checked once, here or there, never twice on the fast path.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

from fastapi import HTTPException
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sepa_engine import errors
from sepa_engine.api import bodies, problems
from sepa_engine.api.batcher import Call
from sepa_engine.api.deps import ApiContext, principal_of
from sepa_engine.api.deps import Scope as CreditorScope
from sepa_engine.api.routes.registry import enqueue_call
from sepa_engine.services.inputs import DebitRequestInput

ROUTE = "/v1/creditors/{creditor}/debit-requests"
_ROUTE = SimpleNamespace(path=ROUTE)
_PATH = re.compile(r"/v1/creditors/([a-z0-9-]{1,32})/debit-requests")


class EnqueueFastPath:
    def __init__(self, app: ASGIApp, context: ApiContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string") or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        matched = _PATH.fullmatch(scope["path"])
        if matched is None:
            await self.app(scope, receive, send)
            return
        try:
            call = await self._plain_call(scope, receive, matched.group(1))
        except DBAPIError as exc:
            # Outside FastAPI's handlers: the token lookup met a database that does not answer.
            await (await self._database_error(scope, exc))(scope, receive, send)
            return
        if call is None:  # the client went away before its body came
            return
        if not isinstance(call, Call):
            await self.app(scope, call, send)  # the route answers (errors included), body replayed
            return
        try:
            response = await self.context.batcher.wait(call)
        except HTTPException as exc:
            response = problems.from_http_exception(exc)
        except DBAPIError as exc:
            response = await self._database_error(scope, exc)
        except Exception:
            # As from the route: the app's handler of the unexpected answers 500 and logs the
            # route's template, which it finds here.
            scope["route"] = _ROUTE
            raise
        await response(scope, receive, send)

    async def _database_error(self, scope: Scope, exc: DBAPIError) -> Response:
        """503 when the ledger is busy or its database does not answer; any other database
        error as from the route."""
        answer = await run_in_threadpool(problems.database_problem, self.context.db, exc)
        if answer is not None:
            return answer
        scope["route"] = _ROUTE
        raise exc

    async def _plain_call(self, scope: Scope, receive: Receive, creditor: str) -> Call | Receive | None:
        """The call for the batcher; or, when the call is not a plain one, a ``receive`` that
        replays its body to the FastAPI route; None when the client disconnected."""
        ctx = self.context
        authorization = key = None
        plain = True
        for name, value in scope["headers"]:
            if name == b"authorization":
                plain = plain and authorization is None
                authorization = value
            elif name == b"idempotency-key":
                plain = plain and key is None
                key = value
        body = await _body(receive)
        if body is None:
            return None
        replay = replay_body(body, receive)
        if not plain or authorization is None or key is None or not authorization.startswith(b"Bearer "):
            return replay
        token = authorization[7:].decode("latin-1")
        idempotency_key = key.decode("latin-1")
        if not token or token != token.strip() or not 1 <= len(idempotency_key) <= 100:
            return replay
        who = await principal_of(ctx, token)
        if who is None or creditor not in who.creditors or not who.can_write:
            return replay
        try:
            data = DebitRequestInput.from_mapping(bodies.parse(body, "DebitRequest"))
        except errors.SepaEngineError:
            return replay
        # No query string and no root path (checked above): the path is the route's path_of.
        return enqueue_call(ctx, CreditorScope(who, creditor), idempotency_key, body, data, path=scope["path"],
                            request=lambda: Request(scope))


async def _body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` (already read) once, then what the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
