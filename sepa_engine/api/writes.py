"""Idempotent writes: every POST, PUT and DELETE runs through ``run``.

In one transaction:

1. the answer stored under (scope, key) is looked up: found with the same request hash
   (method, path and body), it is returned as it was first given, and nothing acts again;
   found with another hash, the call is refused with 409 ``idempotency_conflict``;
2. otherwise a row is claimed for the key (INSERT under the unique constraint), the action
   runs, and its answer is stored in that row;
3. the transaction commits the action and its stored answer together, or neither.

Two calls with the same key at once: on SQLite writers queue on the database lock, so the
second finds the first's answer in step 1. On PostgreSQL the second's INSERT waits on the
unique index until the first commits, then fails; the second then reads the committed
answer (READ COMMITTED sees it) and returns it, or 409 when its body differs. Should the
first roll back instead, the second's INSERT succeeds and it acts.

A refused call (an engine error) rolls back and stores nothing: the same key may be sent
again once the cause is fixed, and is judged afresh.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sepa_engine.api.deps import ApiContext
from sepa_engine.db.repositories import api as repo
from sepa_engine.db.service_models import ApiIdempotency
from sepa_engine.services.api_tokens import Principal

REPLAYED_HEADER = "Idempotent-Replayed"
Action = Callable[[Session], tuple[int, Any]]


def request_hash(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(f"{method}\n{path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def path_of(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def dumps(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str)


def run(
    ctx: ApiContext,
    request: Request,
    *,
    scope: str,
    who: Principal,
    key: str,
    body: bytes,
    action: Action,
) -> Response:
    path = path_of(request)
    digest = request_hash(request.method, path, body)
    with ctx.db.transaction() as session:
        stored = repo.stored_answer(session, scope, key)
        if stored is not None:
            return _replay(stored, digest, key)
        claim = ApiIdempotency(
            scope=scope, idempotency_key=key, method=request.method, path=path[:2000], request_hash=digest,
            status_code=0, response_body="", token_id=who.token_id, created_at=ctx.clock.now(),
        )
        try:
            with session.begin_nested():
                session.add(claim)
                session.flush()
        except IntegrityError:
            # A concurrent call with this key committed first (PostgreSQL): its answer is ours.
            stored = repo.stored_answer(session, scope, key)
            if stored is None:  # pragma: no cover - the constraint failed for another reason
                raise
            return _replay(stored, digest, key)
        status, document = action(session)
        text = dumps(document)
        claim.status_code = status
        claim.response_body = text
        session.flush()
    return Response(text, status_code=status, media_type="application/json", headers={"Idempotency-Key": key})


def _replay(stored: ApiIdempotency, digest: str, key: str) -> Response:
    if stored.request_hash != digest:
        raise HTTPException(
            409,
            {
                "code": "idempotency_conflict",
                "detail": f"Idempotency-Key {key!r} was already used with another request ({stored.method} {stored.path})",
                "field": "Idempotency-Key",
                "rule": "was already used with different content",
            },
        )
    return Response(
        stored.response_body, status_code=stored.status_code, media_type="application/json",
        headers={"Idempotency-Key": key, REPLAYED_HEADER: "true"},
    )
