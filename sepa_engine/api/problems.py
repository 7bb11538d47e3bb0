"""Errors as ``application/problem+json`` (RFC 9457), from the engine's stable error codes.

Every problem carries ``type`` (a URI naming the code), ``title``, ``status``, ``detail``
and the engine's ``code``, ``field``, ``rule`` and ``reason_code``; a body or parameter that
breaks its schema lists every bad field in ``errors``. The HTTP status follows the error's
class, never its message:

=====================================================  ======
not_found                                              404
idempotency_conflict, duplicate_identifier             409
a state that refuses the action (mandate, account,     409
dispute, collection, return errors)
malformed input (invalid_*) and everything else        422
the ledger busy, or its database does not answer       503
=====================================================  ======

A lock another transaction held past the API's wait (``[api] lock_wait_seconds``: PostgreSQL's
``lock_timeout``, SQLite's busy timeout) is ``503 ledger_busy``; a database that does not
answer (a driver error, and a fresh connection fails too) is ``503 database_unavailable``.
Both come with ``Retry-After``: nothing was done, the same call may be sent again (its
Idempotency-Key stored nothing). Any other database error is ours, a 500. The next call after
the database is back connects again (PostgreSQL's pool pings before each checkout), so the API
recovers by itself.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from sepa_engine import errors
from sepa_engine.api.bodies import InvalidBody
from sepa_engine.db.session import Database, lock_wait_expired, transaction_undone
from sepa_engine.services.input_errors import InputRefused

log = structlog.get_logger("sepa_engine.api")

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://sepa-engine.example/problems/"

_BY_CLASS: tuple[tuple[type[errors.SepaEngineError], int], ...] = (
    (errors.NotFound, 404),
    (errors.IdempotencyConflict, 409),
    (errors.DuplicateIdentifier, 409),
    (errors.InvalidFormat, 422),
    (errors.MandateError, 409),
    (errors.AccountError, 409),
    (errors.CollectionError, 409),
    (errors.MessageError, 409),
)
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    428: "Precondition required",
    500: "Internal server error",
    503: "Service unavailable",
}
# Seconds a client should wait before trying again while the database does not answer.
RETRY_AFTER_SECONDS = 5

# The OpenAPI description of a problem document (responses refer to it).
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details, with the engine's stable error code, field and rule.",
    "type": "object",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": ["string", "null"]},
        "code": {"type": "string", "description": "The engine's stable error code (sepa_engine/errors.py)."},
        "field": {"type": ["string", "null"]},
        "rule": {"type": ["string", "null"]},
        "reason_code": {"type": ["string", "null"], "description": "ISO/EPC reason code a bank would answer with."},
        "errors": {
            "type": "array",
            "description": "Every bad field of a body or of the parameters.",
            "items": {
                "type": "object",
                "required": ["field", "rule", "code"],
                "properties": {"field": {"type": "string"}, "rule": {"type": "string"}, "code": {"type": "string"}},
            },
        },
    },
}


def status_of(exc: errors.SepaEngineError) -> int:
    for cls, status in _BY_CLASS:
        if isinstance(exc, cls):
            return status
    return 422


def problem(
    status: int,
    code: str,
    detail: str | None,
    *,
    field: str | None = None,
    rule: str | None = None,
    reason_code: str | None = None,
    field_errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        "field": field,
        "rule": rule,
        "reason_code": reason_code,
    }
    if field_errors is not None:
        body["errors"] = field_errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def from_error(exc: errors.SepaEngineError) -> JSONResponse:
    field_errors = [e.to_dict() for e in exc.field_errors] if isinstance(exc, InvalidBody) else None
    if field_errors is None and isinstance(exc, InputRefused):
        # An input model refused it after the body passed (a header or path value, a service's own input).
        field_errors = [{"field": p.field, "rule": p.sentence(), "code": p.code} for p in exc.problems]
    if field_errors is None and status_of(exc) == 422:
        field_errors = [{"field": exc.field or "body", "rule": exc.rule, "code": exc.code}]
    return problem(
        status_of(exc), exc.code, str(exc), field=exc.field, rule=exc.rule, reason_code=exc.reason_code,
        field_errors=field_errors,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.SepaEngineError)
    async def _engine(_request: Request, exc: errors.SepaEngineError) -> JSONResponse:
        return from_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        found = [
            {
                "field": ".".join(str(part) for part in error.get("loc", ())[1:]) or str(error.get("loc", ("request",))[0]),
                "rule": "is required" if error.get("type") == "missing" else str(error.get("msg", "is invalid")),
                "code": f"request.{error.get('type', 'invalid')}",
            }
            for error in exc.errors()
        ]
        first = found[0] if found else {"field": "request", "rule": "is invalid"}
        return problem(
            422, "invalid_request", f"{first['field']} {first['rule']}", field=first["field"], rule=first["rule"],
            field_errors=found,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return from_http_exception(exc)


    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        answer = await run_in_threadpool(database_problem, request.app.state.context.db, exc)
        return answer if answer is not None else await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # No detail leaves the server; the log names the route template, never the path
        # (which may carry an account reference) nor the body.
        route = request.scope.get("route")
        log.error("api.internal_error", error=type(exc).__name__, method=request.method,
                  route=getattr(route, "path", None))
        return internal_error()


def from_http_exception(exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, dict) else {"code": _code_of(exc.status_code), "detail": str(exc.detail)}
    return problem(
        exc.status_code, str(detail.get("code")), detail.get("detail"), field=detail.get("field"),
        rule=detail.get("rule"), headers=getattr(exc, "headers", None),
    )


def database_problem(db: Database, exc: BaseException) -> JSONResponse | None:
    """The 503 for a database error that is not ours to fix: the ledger busy past the API's
    lock wait, the transaction undone to break a deadlock, or the database not answering; None
    for any other (blocking: it may try to connect, within the driver's connect timeout)."""
    if lock_wait_expired(exc):
        return ledger_busy(db)
    if transaction_undone(exc):
        return ledger_busy(db, undone=True)
    if database_down(db, exc):
        return database_unavailable()
    return None


def database_down(db: Database, exc: BaseException) -> bool:
    """Whether ``exc`` means the ledger's database does not answer."""
    if not isinstance(exc, DBAPIError):
        return False
    if not isinstance(exc, (OperationalError, InterfaceError)) and not exc.connection_invalidated:
        return False  # a statement the database refused: ours to fix, not an outage
    try:
        with db.engine.connect():
            return False
    except DBAPIError:
        return True


def ledger_busy(db: Database, *, undone: bool = False) -> JSONResponse:
    """503 ``ledger_busy``: the request waited past the API's lock wait for another
    transaction, or (``undone``) the database undid it to break a deadlock with another."""
    if undone:
        why = "this request and another transaction each waited for what the other held, and the database undid this one"
    else:
        waited = "" if db.lock_wait_seconds is None else f" for {db.lock_wait_seconds:g} s"
        why = f"another transaction (a collection, a schedule or a reconciliation) held what this request needs{waited}"
    return problem(
        503, errors.LedgerBusy.code, f"{why}; nothing was done, send it again later with the same Idempotency-Key",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def database_unavailable() -> JSONResponse:
    return problem(
        503, errors.DatabaseUnavailable.code, "the ledger's database did not answer; nothing was done, try again later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def internal_error() -> JSONResponse:
    return problem(500, "internal_error", "the engine failed to answer; the error is logged")


def _code_of(status: int) -> str:
    return {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}.get(status, f"http_{status}")
