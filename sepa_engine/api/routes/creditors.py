"""The creditors of the caller's token and their account settings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from sepa_engine.api import docs, writes
from sepa_engine.api.deps import Body, Context, IdempotencyKey, ReadScope, WriteScope, principal
from sepa_engine.api.routes.common import created, parsed, read, write
from sepa_engine.services import account_changes, api_views, on_demand
from sepa_engine.services.account_inputs import CreditorSettingsInput, GroupPaymentInput
from sepa_engine.services.api_tokens import Principal

router = APIRouter(tags=["creditors"])


@router.get("/v1/creditors", responses=docs.problems(401))
def list_creditors(ctx: Context, who: Annotated[Principal, Depends(principal)]) -> Response:
    """The creditors this token acts for (one page: a token names its creditors)."""
    return read(ctx, lambda session: {"items": api_views.creditors(session, who.creditors), "next_cursor": None})


@router.get("/v1/creditors/{creditor}", responses=docs.problems())
def get_creditor(ctx: Context, scope: ReadScope) -> Response:
    """One creditor: identifier, bank settings (IBAN masked), lead time, pre-notification days, group."""
    return read(ctx, lambda session: api_views.creditor(session, scope.creditor))


@router.put(
    "/v1/creditors/{creditor}/settings", openapi_extra=docs.body("CreditorSettings"), responses=docs.write_problems()
)
def set_settings(request: Request, ctx: Context, scope: WriteScope, key: IdempotencyKey, raw: Body) -> Response:
    """Account settings of the creditor: pre-notification days, group code (a field absent is kept)."""
    data = CreditorSettingsInput.from_mapping(parsed(raw, "CreditorSettings"))

    def action(session: Any) -> tuple[int, Any]:
        result = account_changes.set_creditor_settings(
            session, scope.creditor, data, actor=scope.actor, idempotency_key=key, clock=ctx.clock
        )
        return 200, result.to_dict()

    return write(ctx, request, scope, key, raw, action)


@router.post(
    "/v1/group-payments", status_code=201, tags=["debit requests"], openapi_extra=docs.body("GroupPayment"),
    responses=docs.write_problems(),
)
def pay_across_creditors(
    request: Request, ctx: Context, who: Annotated[Principal, Depends(principal)], key: IdempotencyKey, raw: Body
) -> Response:
    """One customer paying selected invoices at several creditors of a group: one debit per creditor, all or none.
    The token must act for every creditor named (else 404, as for any creditor it does not name)."""
    record = parsed(raw, "GroupPayment")
    for index, selection in enumerate(record["selections"]):
        if selection["creditor"] not in who.creditors:
            raise HTTPException(404, {"code": "not_found", "field": f"selections[{index}].creditor", "rule": "does not exist",
                                      "detail": f"creditor {selection['creditor']!r} does not exist"})
    if not who.can_write:
        raise HTTPException(403, {"code": "forbidden", "detail": "this token is read-only", "rule": "needs a write token"})
    data = GroupPaymentInput.from_mapping(record)

    def action(session: Any) -> tuple[int, Any]:
        result = on_demand.pay_across_creditors(session, data, idempotency_key=key, clock=ctx.clock)
        return created(result), result.to_dict()

    return writes.run(ctx, request, scope=f"group:{data.customer_reference}"[:50], who=who, key=key, body=raw,
                      action=action)
