"""Debits asked for on demand: "pay my balance" (part or all of it), "pay these invoices",
and the same across the creditors of a group (one debit per creditor, all or none).

What a debit may take is the collectable balance (``account_ledger``); the account row is
locked first, so two clicks are decided one after the other and the second sees the first.
Services never commit: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.clock import Clock, business_today
from sepa_engine.db.models import Creditor, DebtorAccount, GroupPaymentOrder, LedgerEntry, PaymentOrder
from sepa_engine.db.repositories import accounts as repo
from sepa_engine.db.repositories import registry as registry_repo
from sepa_engine.domain import calendar, charset, money
from sepa_engine.domain.accounts import CollectionMode, invoices_remittance

# The same reason codes as the account gate gives for the same refusals.
from sepa_engine.domain.debit_gate import REASON_DISPUTED, REASON_IN_FLIGHT, REASON_TOO_MUCH, Origin
from sepa_engine.domain.masking import mask_reference
from sepa_engine.services import idempotency, registry
from sepa_engine.services.account_inputs import GroupPaymentInput, PayNowInput
from sepa_engine.services.account_ledger import (
    Ledger,
    account_of,
    check_input,
    creditor_of,
    fit,
    items_by_number,
    load_ledger,
    signed_amount,
    usable_mandate,
)
from sepa_engine.services.inputs import DebitRequestInput

log = structlog.get_logger("sepa_engine.accounts")


# --- results -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PaymentResult:
    """A debit asked for on demand."""

    creditor_code: str
    account_reference: str
    request_id: int
    end_to_end_id: str
    mandate_reference: str
    amount_cents: int
    requested_date: dt.date
    status: str
    remittance: str | None
    # (invoice number, cents) the debit pays, when invoices were selected.
    invoices: tuple[tuple[str, int], ...]
    created: bool
    problems: tuple[dict[str, object], ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "creditor": self.creditor_code,
            "account": self.account_reference,
            "request_id": self.request_id,
            "end_to_end_id": self.end_to_end_id,
            "mandate": mask_reference(self.mandate_reference),
            "amount": money.format_cents(self.amount_cents),
            "requested_date": self.requested_date.isoformat(),
            "status": self.status,
            "remittance": self.remittance,
            "invoices": [{"number": n, "amount": money.format_cents(c)} for n, c in self.invoices],
            "created": self.created,
            "problems": list(self.problems),
        }


@dataclass(frozen=True, slots=True)
class GroupPaymentResult:
    customer_reference: str
    group_code: str
    payments: tuple[PaymentResult, ...]
    created: bool

    @property
    def amount_cents(self) -> int:
        return sum(payment.amount_cents for payment in self.payments)

    def to_dict(self) -> dict[str, object]:
        return {
            "customer_reference": self.customer_reference,
            "group": self.group_code,
            "amount": money.format_cents(self.amount_cents),
            "created": self.created,
            "payments": [payment.to_dict() for payment in self.payments],
        }


def _payment_cents(value: str | Decimal) -> int:
    """Refused when zero (with its own words), malformed or above one debit's maximum."""
    cents = money.parse_amount(value, sepa_range=False)
    if cents == 0:
        raise errors.InvalidAmount("amount", value, "is zero: there is nothing to pay")
    return money.check_cents(cents)


# --- on demand -----------------------------------------------------------------------------
def pay_now(
    session: Session,
    creditor_code: str,
    account_reference: str,
    data: PayNowInput,
    *,
    idempotency_key: str,
    clock: Clock,
) -> PaymentResult:
    """Debit part or all of the collectable balance, or a selection of invoices, on demand.

    The debit is requested for the next TARGET day in the creditor's zone. Refused (and
    nothing written) when the account is automatic, has no usable mandate, owes nothing
    collectable, or when the amount is malformed or above the collectable balance.
    """
    key = idempotency.check_key(idempotency_key)
    check_input(data, PayNowInput)
    creditor = creditor_of(session, creditor_code)
    reference = fit("account", account_reference, DebtorAccount.reference)
    cents = _payment_cents(data.amount) if data.amount is not None else None
    numbers = list(data.invoices) if data.invoices is not None else None
    digest = idempotency.content_hash({"account": reference, "amount_cents": cents, "invoices": numbers})
    replay = _replayed_order(session, creditor, key, digest)
    if replay is not None:
        return replay
    account = repo.lock_account(session, account_of(session, creditor, reference))
    # A concurrent call with the same key may have committed while we waited for the lock.
    replay = _replayed_order(session, creditor, key, digest)
    if replay is not None:
        return replay
    return _place_order(
        session, creditor, account, cents=cents, numbers=numbers, request_key=key, digest=digest,
        group_order_id=None, clock=clock,
    )


def _replayed_order(session: Session, creditor: Creditor, key: str, digest: str) -> PaymentResult | None:
    order = repo.payment_order_by_key(session, creditor.id, key)
    if order is None:
        return None
    idempotency.ensure_same(order, digest, key)
    return _payment_result(session, creditor, repo.account_by_id(session, creditor.id, order.debtor_account_id), order, created=False)


def _place_order(
    session: Session,
    creditor: Creditor,
    account: DebtorAccount,
    *,
    cents: int | None,
    numbers: list[str] | None,
    request_key: str,
    digest: str,
    group_order_id: int | None,
    clock: Clock,
    field_prefix: str = "",
) -> PaymentResult:
    if CollectionMode(account.collection_mode) is CollectionMode.AUTOMATIC:
        raise errors.WrongCollectionMode(
            field_prefix + "collection_mode", account.collection_mode, "allows no payment on demand: the schedule collects the balance"
        )
    requested = calendar.add_target_days(business_today(clock, creditor.timezone), 1)
    mandate = usable_mandate(session, account, requested, field_prefix + "mandate")
    ledger = load_ledger(session, account)
    pos = ledger.position
    if pos.balance_due_cents <= 0:
        raise errors.NothingDue(
            field_prefix + "balance", signed_amount(pos.balance_due_cents), "has nothing due: there is nothing to pay"
        )
    if pos.collectable_cents <= 0:
        raise errors.NothingDue(
            field_prefix + "balance",
            signed_amount(pos.balance_due_cents),
            f"has nothing collectable now ({money.format_cents(pos.held_cents)} under dispute, "
            f"{money.format_cents(pos.in_flight_cents)} already requested)",
        )
    selection: list[tuple[LedgerEntry, int]] = []
    if numbers is not None:
        selection = _selection(session, account, ledger, numbers, field_prefix + "invoices")
        cents = sum(amount for _, amount in selection)
    assert cents is not None
    if cents > pos.collectable_cents:
        raise errors.AmountExceedsBalance(
            field_prefix + "amount", money.format_cents(cents),
            f"exceeds the collectable balance of {money.format_cents(pos.collectable_cents)}",
        )
    if selection:
        remittance = invoices_remittance([entry.document_number for entry, _ in selection])
    else:
        remittance = charset.to_sepa_text(f"Payment account {account.reference}", charset.REMITTANCE_MAX)
    result = registry.enqueue_request(
        session,
        creditor.code,
        DebitRequestInput(
            mandate=mandate.reference, amount=money.format_cents(cents), remittance=remittance, requested_date=requested,
            invoices=tuple(entry.document_number for entry, _ in selection) if selection else None,
        ),
        idempotency_key=request_key,
        clock=clock,
        origin=Origin.ON_DEMAND,
    )
    if not result.created:
        # The key named a debit enqueued directly, not through an account: another call.
        raise errors.IdempotencyConflict("idempotency_key", request_key, "was already used for another debit request")
    order = registry_repo.add(
        session,
        PaymentOrder(
            creditor_id=creditor.id,
            debtor_account_id=account.id,
            debit_request_id=result.id,
            group_order_id=group_order_id,
            idempotency_key=request_key,
            content_hash=digest,
            created_at=clock.now(),
        ),
    )
    log.info("account.pay_now", creditor=creditor.code, request_id=result.id, amount_cents=cents, invoices=len(selection))
    return _payment_result(session, creditor, account, order, created=True, problems=result.problems)


def _selection(
    session: Session, account: DebtorAccount, ledger: Ledger, numbers: list[str], field_name: str
) -> list[tuple[LedgerEntry, int]]:
    if not numbers:
        raise errors.InvalidFormat(field_name, None, "must name at least one invoice")
    seen: set[str] = set()
    for number in numbers:
        if number in seen:
            raise errors.InvalidFormat(field_name, number, "is named twice")
        seen.add(number)
    found = items_by_number(session, account, numbers)
    chosen: list[tuple[LedgerEntry, int]] = []
    for number in numbers:
        entry = found.get(number)
        if entry is None:
            raise errors.NotFound(field_name, number, f"is not an invoice of account {account.reference}")
        if entry.id in ledger.disputed:
            raise errors.InvoiceNotPayable(
                field_name, number, "is under dispute: it is not collected until the dispute ends", reason_code=REASON_DISPUTED
            )
        open_cents = ledger.open_cents(entry.id)
        if open_cents <= 0:
            raise errors.InvoiceNotPayable(field_name, number, "is already paid", reason_code=REASON_TOO_MUCH)
        payable = open_cents - ledger.selected_in_flight.get(entry.id, 0)
        if payable <= 0:
            raise errors.InvoiceNotPayable(
                field_name, number, "is already being collected by a debit in progress", reason_code=REASON_IN_FLIGHT
            )
        chosen.append((entry, payable))
    return chosen


def _payment_result(
    session: Session,
    creditor: Creditor,
    account: DebtorAccount,
    order: PaymentOrder,
    *,
    created: bool,
    problems: tuple[dict[str, object], ...] = (),
) -> PaymentResult:
    request = repo.request(session, creditor.id, order.debit_request_id)
    mandate = registry_repo.mandate(session, request.mandate_id)
    return PaymentResult(
        creditor.code, account.reference, request.id, request.end_to_end_id, mandate.reference, request.amount_cents,
        request.requested_date, request.status, request.remittance, tuple(repo.request_selection(session, request)),
        created, problems,
    )


# --- one customer, several creditors of a group --------------------------------------------
def pay_across_creditors(
    session: Session, data: GroupPaymentInput, *, idempotency_key: str, clock: Clock
) -> GroupPaymentResult:
    """Pay a selection of invoices at several creditors of one group: one debit per creditor,
    each under that creditor's mandate and identifier, all created or none."""
    key = idempotency.check_key(idempotency_key)
    check_input(data, GroupPaymentInput)
    customer = fit("customer_reference", data.customer_reference, DebtorAccount.customer_reference)
    codes: list[str] = []
    for index, selection in enumerate(data.selections):
        if selection.creditor in codes:
            raise errors.InvalidFormat(f"selections[{index}].creditor", selection.creditor, "is named twice")
        codes.append(selection.creditor)
    digest = idempotency.content_hash(
        {"customer_reference": customer, "selections": [[s.creditor, list(s.invoices)] for s in data.selections]}
    )
    replay = _replayed_group(session, customer, key, digest)
    if replay is not None:
        return replay
    creditors = [creditor_of(session, code) for code in codes]
    group = creditors[0].group_code
    for index, creditor in enumerate(creditors):
        if creditor.group_code is None or creditor.group_code != group:
            raise errors.AccountError(
                f"selections[{index}].creditor", creditor.code,
                f"is not in the same group of creditors as {creditors[0].code}",
            )
    assert group is not None
    accounts: list[DebtorAccount] = []
    for index, creditor in enumerate(creditors):
        account = repo.account_by_customer(session, creditor.id, customer)
        if account is None:
            raise errors.NotFound(
                f"selections[{index}].creditor", creditor.code, f"has no account for customer {customer}"
            )
        accounts.append(account)
    # Locked in one order whatever the selection's order, so two group payments never deadlock.
    for account in sorted(accounts, key=lambda row: row.id):
        repo.lock_account(session, account)
    replay = _replayed_group(session, customer, key, digest)
    if replay is not None:
        return replay
    try:
        # All or nothing: a refusal at the third creditor undoes the first two debits.
        with session.begin_nested():
            order = registry_repo.add(
                session,
                GroupPaymentOrder(
                    group_code=group, customer_reference=customer, idempotency_key=key, content_hash=digest,
                    created_at=clock.now(),
                ),
            )
            request_key = f"group-order-{order.id}"
            payments = tuple(
                _place_order(
                    session, creditor, account, cents=None, numbers=list(selection.invoices), request_key=request_key,
                    digest=digest, group_order_id=order.id, clock=clock, field_prefix=f"selections[{index}].",
                )
                for index, (creditor, account, selection) in enumerate(zip(creditors, accounts, data.selections, strict=True))
            )
    except IntegrityError:
        replay = _replayed_group(session, customer, key, digest)
        if replay is None:
            raise
        return replay
    return GroupPaymentResult(customer, group, payments, created=True)


def _replayed_group(session: Session, customer: str, key: str, digest: str) -> GroupPaymentResult | None:
    order = repo.group_order_by_key(session, customer, key)
    if order is None:
        return None
    idempotency.ensure_same(order, digest, key)
    payments = []
    for payment_order in repo.orders_of_group(session, order.id):
        creditor = repo.creditor_by_id(session, payment_order.creditor_id)
        account = repo.account_by_id(session, creditor.id, payment_order.debtor_account_id)
        payments.append(_payment_result(session, creditor, account, payment_order, created=False))
    return GroupPaymentResult(customer, order.group_code, tuple(payments), created=False)


