"""Customer accounts: the account and its details, collection mode, bank details, invoices
and credit notes, payments on demand, statements, disputes and their history,
pre-notifications."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, cast

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from sepa_engine.api import docs
from sepa_engine.api.deps import ID_MAX, Body, Context, IdempotencyKey, Paging, ReadScope, WriteScope
from sepa_engine.api.routes.common import created, parsed, read, sliced, write
from sepa_engine.domain.accounts import DisputeStatus
from sepa_engine.services import account_changes, accounts, disputes, on_demand, schedule, statements
from sepa_engine.services.account_inputs import (
    DetailsInput,
    DisputeInput,
    DisputeTransitionInput,
    ESignedMandateInput,
    LedgerEntryInput,
    ModeChangeInput,
    PayNowInput,
)

router = APIRouter(prefix="/v1/creditors/{creditor}")
Account = Annotated[str, Path(min_length=1, max_length=35, description="The account's reference at the creditor.")]
DisputeId = Annotated[int, Path(ge=1, le=ID_MAX, description="The dispute's id.")]


# --- the account ---------------------------------------------------------------------------
@router.get("/debtor-accounts/{account}", tags=["debtor accounts"], responses=docs.problems())
def show_account(ctx: Context, scope: ReadScope, account: Account) -> Response:
    """The account: mode and schedule, mandate (IBAN masked), details, what it owes and whether it can pay now."""
    return read(ctx, lambda session: accounts.show_account(session, scope.creditor, account).to_dict())


@router.put(
    "/debtor-accounts/{account}/details", tags=["debtor accounts"], openapi_extra=docs.body("AccountDetails"),
    responses=docs.write_problems(),
)
def update_details(request: Request, ctx: Context, scope: WriteScope, key: IdempotencyKey, account: Account, raw: Body) -> Response:
    """Change the account's details: a field absent is kept, null clears it; every change is kept in the history."""
    data = DetailsInput.from_mapping(parsed(raw, "AccountDetails"))

    def action(session: Any) -> tuple[int, Any]:
        result = account_changes.update_details(
            session, scope.creditor, account, data, actor=scope.actor, idempotency_key=key, clock=ctx.clock
        )
        return 200, result.to_dict()

    return write(ctx, request, scope, key, raw, action)


@router.get("/debtor-accounts/{account}/history", tags=["debtor accounts"], responses=docs.problems())
def account_history(ctx: Context, scope: ReadScope, account: Account, paging: Paging) -> Response:
    """Every recorded change of the account (details, mode, bank details), oldest first, field by field."""
    return read(ctx, lambda session: sliced(
        [line.to_dict() for line in account_changes.history(session, scope.creditor, account)], paging))


@router.put(
    "/debtor-accounts/{account}/collection-mode", tags=["debtor accounts"], openapi_extra=docs.body("ModeChange"),
    responses=docs.write_problems(),
)
def set_collection_mode(request: Request, ctx: Context, scope: WriteScope, key: IdempotencyKey, account: Account, raw: Body) -> Response:
    """Switch between on demand and automatic collection (automatic needs a new e-signed mandate)."""
    data = ModeChangeInput.from_mapping(parsed(raw, "ModeChange"))

    def action(session: Any) -> tuple[int, Any]:
        result = account_changes.set_collection_mode(
            session, scope.creditor, account, data, actor=scope.actor, idempotency_key=key, clock=ctx.clock
        )
        return 200, result.to_dict()

    return write(ctx, request, scope, key, raw, action)


@router.post(
    "/debtor-accounts/{account}/bank-details", tags=["debtor accounts"], openapi_extra=docs.body("ESignedMandate"),
    responses=docs.write_problems(),
)
def change_bank_details(request: Request, ctx: Context, scope: WriteScope, key: IdempotencyKey, account: Account, raw: Body) -> Response:
    """New bank details: a new e-signed mandate that supersedes the account's mandate."""
    data = ESignedMandateInput.from_mapping(parsed(raw, "ESignedMandate"))

    def action(session: Any) -> tuple[int, Any]:
        result = account_changes.change_bank_details(
            session, scope.creditor, account, data, actor=scope.actor, idempotency_key=key, clock=ctx.clock
        )
        return 200, result.to_dict()

    return write(ctx, request, scope, key, raw, action)


# --- invoices, credit notes, payments ------------------------------------------------------
@router.post(
    "/debtor-accounts/{account}/entries", status_code=201, tags=["invoices and credit notes"],
    openapi_extra=docs.body("LedgerEntry"), responses=docs.write_problems(),
)
def record_entry(request: Request, ctx: Context, scope: WriteScope, key: IdempotencyKey, account: Account, raw: Body) -> Response:
    """Record an invoice, a credit note or a fee on the account."""
    data = LedgerEntryInput.from_mapping(parsed(raw, "LedgerEntry"))

    def action(session: Any) -> tuple[int, Any]:
        result = accounts.record_entry(session, scope.creditor, account, data, idempotency_key=key, clock=ctx.clock)
        return created(result), result.to_dict()

    return write(ctx, request, scope, key, raw, action)


@router.post(
    "/debtor-accounts/{account}/payments", status_code=201, tags=["debit requests"],
    openapi_extra=docs.body("PayNow"), responses=docs.write_problems(),
)
def pay_now(request: Request, ctx: Context, scope: WriteScope, key: IdempotencyKey, account: Account, raw: Body) -> Response:
    """Debit on demand: part or all of the collectable balance (amount), or selected invoices (invoices)."""
    data = PayNowInput.from_mapping(parsed(raw, "PayNow"))

    def action(session: Any) -> tuple[int, Any]:
        result = on_demand.pay_now(session, scope.creditor, account, data, idempotency_key=key, clock=ctx.clock)
        return created(result), result.to_dict()

    return write(ctx, request, scope, key, raw, action)


@router.get("/debtor-accounts/{account}/statement", tags=["statements"], responses=docs.problems())
def statement(
    ctx: Context, scope: ReadScope, account: Account, paging: Paging,
    all_entries: Annotated[bool, Query(alias="all", description="Every entry of the last 12 months, not only what is unpaid.")] = False,
    date_from: Annotated[dt.date | None, Query(alias="from", description="Entries issued on or after this date.")] = None,
    date_to: Annotated[dt.date | None, Query(alias="to", description="Entries issued on or before this date.")] = None,
    document: Annotated[str | None, Query(min_length=1, max_length=35, description="Only this document number.")] = None,
) -> Response:
    """The account's statement: unpaid items (default) or every entry, with running balances; lines paginated."""

    def work(session: Any) -> dict[str, Any]:
        result = statements.statement(
            session, scope.creditor, account, clock=ctx.clock, all_entries=all_entries, date_from=date_from,
            date_to=date_to, document=document,
        ).to_dict()
        lines = sliced(cast("list[Any]", result.pop("lines")), paging)
        return {**result, "lines": lines["items"], "next_cursor": lines["next_cursor"]}

    return read(ctx, work)


# --- disputes ------------------------------------------------------------------------------
@router.post(
    "/debtor-accounts/{account}/disputes", status_code=201, tags=["disputes"], openapi_extra=docs.body("Dispute"),
    responses=docs.write_problems(),
)
def open_dispute(request: Request, ctx: Context, scope: WriteScope, key: IdempotencyKey, account: Account, raw: Body) -> Response:
    """Open a dispute on invoices of the account: they are not collected while it is open or under review."""
    data = DisputeInput.from_mapping(parsed(raw, "Dispute"))

    def action(session: Any) -> tuple[int, Any]:
        result = disputes.open_dispute(
            session, scope.creditor, account, data, actor=scope.actor, idempotency_key=key, clock=ctx.clock
        )
        return created(result), result.to_dict()

    return write(ctx, request, scope, key, raw, action)


@router.get("/disputes", tags=["disputes"], responses=docs.problems())
def list_disputes(
    ctx: Context, scope: ReadScope, paging: Paging,
    account: Annotated[str | None, Query(min_length=1, max_length=35, description="Only this account.")] = None,
    status: Annotated[DisputeStatus | None, Query(description="Only disputes in this status.")] = None,
) -> Response:
    """The creditor's disputes with their invoices and history."""
    return read(ctx, lambda session: sliced(
        [view.to_dict() for view in disputes.list_disputes(
            session, scope.creditor, account_reference=account, status=status.value if status else None)],
        paging,
    ))


@router.get("/disputes/{dispute_id}", tags=["disputes"], responses=docs.problems())
def get_dispute(ctx: Context, scope: ReadScope, dispute_id: DisputeId) -> Response:
    """One dispute, its invoices, its history and the credit note of an accepted dispute."""
    return read(ctx, lambda session: disputes.get_dispute(session, scope.creditor, dispute_id).to_dict())


@router.post(
    "/disputes/{dispute_id}/transitions", tags=["disputes"], openapi_extra=docs.body("DisputeTransition"),
    responses=docs.write_problems(),
)
def transition_dispute(request: Request, ctx: Context, scope: WriteScope, key: IdempotencyKey, dispute_id: DisputeId, raw: Body) -> Response:
    """Move a dispute on: under_review, accepted (books its credit note) or rejected."""
    data = DisputeTransitionInput.from_mapping(parsed(raw, "DisputeTransition"))

    def action(session: Any) -> tuple[int, Any]:
        result = disputes.transition_dispute(
            session, scope.creditor, dispute_id, data, actor=scope.actor, idempotency_key=key, clock=ctx.clock
        )
        return 200, result.to_dict()

    return write(ctx, request, scope, key, raw, action)


# --- pre-notifications ---------------------------------------------------------------------
@router.get("/prenotifications", tags=["pre-notifications"], responses=docs.problems())
def prenotifications(
    ctx: Context, scope: ReadScope, paging: Paging,
    collection_from: Annotated[dt.date | None, Query(alias="from", description="Collection on or after this date.")] = None,
    collection_to: Annotated[dt.date | None, Query(alias="to", description="Collection on or before this date.")] = None,
    issued_on: Annotated[dt.date | None, Query(description="Only those issued on this date.")] = None,
) -> Response:
    """Pre-notifications of automatic debits, by collection date."""
    return read(ctx, lambda session: sliced(list(schedule.prenotifications(
        session, scope.creditor, collection_from=collection_from, collection_to=collection_to, issued_on=issued_on)), paging))
