"""Debtor accounts, mandates (register, supersede, revoke) and debit requests (enqueue,
read, list, cancel while pending)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from sepa_engine.api import docs, writes
from sepa_engine.api.batcher import Call
from sepa_engine.api.deps import (
    ID_MAX,
    ApiContext,
    Body,
    Context,
    IdempotencyKey,
    Paging,
    ReadScope,
    Scope,
    WriteScope,
    page,
)
from sepa_engine.api.routes.common import created, parsed, read, write
from sepa_engine.domain.mandate import MandateStatus
from sepa_engine.domain.money import format_cents
from sepa_engine.domain.statuses import RequestStatus
from sepa_engine.services import api_views, registry, views
from sepa_engine.services.inputs import DebitRequestInput, DebtorAccountInput, MandateInput

router = APIRouter(prefix="/v1/creditors/{creditor}")
RequestId = Annotated[int, Path(ge=1, le=ID_MAX, description="The debit request's id.")]


# --- debtor accounts -----------------------------------------------------------------------
@router.post(
    "/debtor-accounts", status_code=201, tags=["debtor accounts"], openapi_extra=docs.body("DebtorAccount"),
    responses=docs.write_problems(),
)
def register_debtor_account(request: Request, ctx: Context, scope: WriteScope, key: IdempotencyKey, raw: Body) -> Response:
    """Register a customer of the creditor (schemas/debtor-account.schema.json, without idempotency_key and creditor)."""
    data = DebtorAccountInput.from_mapping(parsed(raw, "DebtorAccount"))

    def action(session: Any) -> tuple[int, Any]:
        result = registry.register_debtor_account(session, scope.creditor, data, idempotency_key=key, clock=ctx.clock)
        return created(result), {
            "id": result.id, "creditor": result.creditor_code, "reference": result.reference,
            "created": result.created, "problems": list(result.problems),
        }

    return write(ctx, request, scope, key, raw, action)


# --- mandates ------------------------------------------------------------------------------
@router.post(
    "/mandates", status_code=201, tags=["mandates"], openapi_extra=docs.body("Mandate"), responses=docs.write_problems()
)
def register_mandate(request: Request, ctx: Context, scope: WriteScope, key: IdempotencyKey, raw: Body) -> Response:
    """Register a mandate; with ``supersedes`` (or when the account has an active one) it replaces that mandate,
    inherits its history and takes its pending requests (schemas/mandate.schema.json)."""
    data = MandateInput.from_mapping(parsed(raw, "Mandate"))

    def action(session: Any) -> tuple[int, Any]:
        result = registry.register_mandate(session, scope.creditor, data, idempotency_key=key, clock=ctx.clock)
        return created(result), {
            "id": result.id, "creditor": result.creditor_code, "reference": result.reference, "status": result.status,
            "supersedes_id": result.supersedes_id, "amendment_pending": result.amendment_pending,
            "created": result.created, "problems": list(result.problems),
        }

    return write(ctx, request, scope, key, raw, action)


@router.post(
    "/mandate-revocations", status_code=200, tags=["mandates"], openapi_extra=docs.body("MandateRevocation"),
    responses=docs.write_problems(),
)
def revoke_mandate(request: Request, ctx: Context, scope: WriteScope, key: IdempotencyKey, raw: Body) -> Response:
    """Revoke the mandate in force under a reference; its pending requests are cancelled."""
    record = parsed(raw, "MandateRevocation")

    def action(session: Any) -> tuple[int, Any]:
        cancelled = registry.revoke_mandate(session, scope.creditor, record["reference"], reason=record["reason"], clock=ctx.clock)
        return 200, {"creditor": scope.creditor, "reference": record["reference"], "status": MandateStatus.REVOKED.value,
                     "cancelled_requests": cancelled}

    return write(ctx, request, scope, key, raw, action)


@router.get("/mandates", tags=["mandates"], responses=docs.problems())
def list_mandates(
    ctx: Context, scope: ReadScope, paging: Paging,
    status: Annotated[MandateStatus | None, Query(description="Only mandates in this status.")] = None,
) -> Response:
    """The creditor's mandates by id (IBANs masked)."""

    def work(session: Any) -> dict[str, Any]:
        result = registry.list_mandates(
            session, creditor_code=scope.creditor, status=status.value if status else None,
            after_id=paging.after_id, limit=paging.limit,
        )
        items = [views.mandate_summary(row) for row in result.items]
        return page(items, paging)

    return read(ctx, work)


# --- debit requests ------------------------------------------------------------------------
def request_result(result: registry.RequestResult) -> dict[str, Any]:
    return {
        "id": result.id, "creditor": result.creditor_code, "end_to_end_id": result.end_to_end_id,
        "mandate": result.mandate_reference, "amount": format_cents(result.amount_cents),
        "requested_date": result.requested_date.isoformat(), "status": result.status, "created": result.created,
        "problems": list(result.problems),
    }


@router.post(
    "/debit-requests", status_code=201, tags=["debit requests"], openapi_extra=docs.body("DebitRequest"),
    responses=docs.write_problems(),
)
async def enqueue(request: Request, ctx: Context, scope: WriteScope, key: IdempotencyKey, raw: Body) -> Response:
    """Enqueue an amount to collect on a mandate (schemas/debit-request.schema.json, without idempotency_key and
    creditor: the Idempotency-Key header is the request's key). A request the run will refuse is stored and
    returned with its problems. Concurrent enqueues are committed together (api/batcher.py)."""
    # Plain calls never reach this function: api/fastpath.py serves them. It answers the others.
    data = DebitRequestInput.from_mapping(parsed(raw, "DebitRequest"))
    answer: Response = await ctx.batcher.wait(
        enqueue_call(ctx, scope, key, raw, data, path=writes.path_of(request), request=lambda: request)
    )
    return answer


def enqueue_call(ctx: ApiContext, scope: Scope, key: str, raw: bytes, data: DebitRequestInput, *, path: str,
                 request: Callable[[], Request]) -> Call:
    """The batcher's call for one checked enqueue, from this route or the fast path
    (api/fastpath.py): one place decides what is grouped and what runs alone. ``request``
    is only built when the call runs alone (the fast path has no Request of its own)."""
    return Call(
        creditor=scope.creditor, scope=scope.idempotency_scope, token_id=scope.principal.token_id, key=key,
        method="POST", path=path, request_hash=writes.request_hash("POST", path, raw), data=data,
        alone=lambda: write(ctx, request(), scope, key, raw, enqueue_action(ctx, scope.creditor, data, key)),
    )


def enqueue_action(ctx: ApiContext, creditor: str, data: DebitRequestInput, key: str) -> Callable[[Any], tuple[int, Any]]:
    """One enqueue on its own, for ``writes.run``: what the batcher falls back to."""

    def action(session: Any) -> tuple[int, Any]:
        result = registry.enqueue_request(session, creditor, data, idempotency_key=key, clock=ctx.clock)
        return created(result), request_result(result)

    return action


@router.get("/debit-requests", tags=["debit requests"], responses=docs.problems())
def list_requests(
    ctx: Context, scope: ReadScope, paging: Paging,
    status: Annotated[RequestStatus | None, Query(description="Only requests in this status.")] = None,
) -> Response:
    """The creditor's debit requests by id, with their status and why they were refused or cancelled."""

    def work(session: Any) -> dict[str, Any]:
        result = registry.list_requests(
            session, creditor_code=scope.creditor, status=status.value if status else None,
            after_id=paging.after_id, limit=paging.limit,
        )
        items = [views.request_summary(row) for row in result.items]
        return page(items, paging)

    return read(ctx, work)


@router.get("/debit-requests/{request_id}", tags=["debit requests"], responses=docs.problems())
def get_request(ctx: Context, scope: ReadScope, request_id: RequestId) -> Response:
    """One debit request: status, reason, file, collection date, and (while pending) its problems."""
    return read(ctx, lambda session: api_views.get_request(session, scope.creditor, request_id))


@router.delete("/debit-requests/{request_id}", tags=["debit requests"], responses=docs.write_problems())
def cancel_request(request: Request, ctx: Context, scope: WriteScope, key: IdempotencyKey, request_id: RequestId, raw: Body) -> Response:
    """Cancel a request still pending; once a collection run took it, 409 request_not_cancellable."""

    def action(session: Any) -> tuple[int, Any]:
        return 200, api_views.cancel_request(session, scope.creditor, request_id, clock=ctx.clock)

    return write(ctx, request, scope, key, raw, action)
