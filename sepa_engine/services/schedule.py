"""The automatic schedule: each period, one debit per automatic account for its collectable
balance, announced by a pre-notification issued at least N calendar days before the
collection date (N per creditor, 14 by default).

``schedule_automatic`` is meant to run every day (a job, or ``sepa-engine accounts schedule
run``). On a run date it looks, for each automatic account, at the latest period whose
pre-notification window has opened (``domain.accounts.scheduled_collection``); what it
decides for an account and period is recorded once (``schedule_slots``, unique per account
and period), so running it again the same day or the next creates nothing twice. An
account with nothing collectable gets a "nothing_due" slot, which later runs revisit while
that period is still the one the schedule looks at: an invoice added after the run that
found nothing is collected for that period, on its collection day when the
pre-notification lead time still allows it, else on the first possible day after, with its
pre-notification; never silently a whole period later. An account without a usable mandate
gets no slot and is tried again on the next run, once its mandate is fixed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.clock import Clock, business_today
from sepa_engine.db.models import Creditor, DebitRequest, DebtorAccount, Mandate, ScheduleSlot
from sepa_engine.db.repositories import accounts as repo
from sepa_engine.db.repositories import returns as returns_repo
from sepa_engine.db.session import key_check_plans_kept_when_large
from sepa_engine.domain import charset, money, text
from sepa_engine.domain.accounts import CollectionMode, Frequency, ScheduledCollection, scheduled_collection
from sepa_engine.domain.debit_gate import Admitted, Origin
from sepa_engine.services import batch_enqueue, debit_gate
from sepa_engine.services.account_ledger import creditor_of, usable_mandates
from sepa_engine.services.inputs import DebitRequestInput

log = structlog.get_logger("sepa_engine.schedule")

PAGE = 500
REQUESTED = "requested"
NOTHING_DUE = "nothing_due"
NO_MANDATE = "no_usable_mandate"


@dataclass(frozen=True, slots=True)
class ScheduledItem:
    creditor_code: str
    account_reference: str
    period: str
    outcome: str
    amount_cents: int
    nominal_date: dt.date
    collection_date: dt.date | None
    request_id: int | None = None
    end_to_end_id: str | None = None
    prenotification_id: int | None = None
    problems: tuple[dict[str, object], ...] = ()

    @property
    def moved(self) -> bool:
        return self.collection_date is not None and self.collection_date != self.nominal_date

    def to_dict(self) -> dict[str, object]:
        return {
            "creditor": self.creditor_code,
            "account": self.account_reference,
            "period": self.period,
            "outcome": self.outcome,
            "amount": money.format_cents(self.amount_cents),
            "nominal_date": self.nominal_date.isoformat(),
            "collection_date": self.collection_date.isoformat() if self.collection_date else None,
            "moved": self.moved,
            "request_id": self.request_id,
            "end_to_end_id": self.end_to_end_id,
            "prenotification_id": self.prenotification_id,
            "problems": list(self.problems),
        }


@dataclass(frozen=True, slots=True)
class ScheduleReport:
    run_date: dt.date | None
    items: tuple[ScheduledItem, ...]

    @property
    def requested(self) -> tuple[ScheduledItem, ...]:
        return tuple(item for item in self.items if item.outcome == REQUESTED)

    def to_dict(self) -> dict[str, object]:
        return {
            "run_date": self.run_date.isoformat() if self.run_date else None,
            "requested": len(self.requested),
            "amount": money.format_cents(sum(item.amount_cents for item in self.requested)),
            "items": [item.to_dict() for item in self.items],
        }


def schedule_automatic(
    session: Session, run_date: dt.date | None, clock: Clock, *, creditor_code: str | None = None
) -> ScheduleReport:
    """Create this period's debits and pre-notifications of every automatic account due.

    ``run_date`` is the business day the pre-notifications count from (default: today in
    each creditor's zone). Accounts are decided a page at a time (``PAGE``): a few statements
    a page whatever its size, the page's debits enqueued as one batch.
    """
    if run_date is not None and (not isinstance(run_date, dt.date) or isinstance(run_date, dt.datetime)):
        raise errors.InvalidFormat("run_date", f"<{type(run_date).__name__}>", "must be a date")
    creditors = [creditor_of(session, creditor_code)] if creditor_code is not None else list(repo.creditors(session))
    items: list[ScheduledItem] = []
    for creditor in creditors:
        day = run_date or business_today(clock, creditor.timezone)
        after = 0
        while True:
            accounts = repo.automatic_accounts(session, creditor.id, after, PAGE)
            if not accounts:
                break
            items.extend(_schedule_page(session, creditor, accounts, day, clock))
            after = accounts[-1].id
    report = ScheduleReport(run_date, tuple(items))
    log.info("schedule.run", run_date=str(run_date), requested=len(report.requested), decided=len(items))
    return report


@dataclass(frozen=True, slots=True)
class _Due:
    account: DebtorAccount
    decision: ScheduledCollection
    slot: ScheduleSlot | None  # a "nothing due" slot of the period, which may still be requested


def _due(session: Session, creditor: Creditor, accounts: Sequence[DebtorAccount], run_date: dt.date) -> list[_Due]:
    """The accounts whose period the schedule may still request, in the accounts' order."""
    decisions: dict[int, tuple[DebtorAccount, ScheduledCollection]] = {}
    for account in accounts:
        if account.collection_mode != CollectionMode.AUTOMATIC.value:
            continue  # gone back on demand while this run waited for its lock
        if account.schedule_frequency is None or account.schedule_day is None:
            continue
        decision = scheduled_collection(
            run_date,
            Frequency(account.schedule_frequency),
            account.schedule_day,
            creditor.prenotification_days,
            account.automatic_since or run_date,
        )
        if decision is not None:
            decisions[account.id] = (account, decision)
    slots = repo.slots_of(session, creditor.id, {i: decision.period.key for i, (_, decision) in decisions.items()})
    return [
        _Due(account, decision, slots.get(account.id))
        for account, decision in decisions.values()
        if _open(slots.get(account.id))
    ]


@dataclass(frozen=True, slots=True)
class _Debit:
    """A page's debit to request: its period, mandate, amount and the gate's verdict."""

    due: _Due
    mandate: Mandate
    cents: int
    verdict: Admitted

    @property
    def key(self) -> str:
        return f"schedule-{self.due.account.id}-{self.due.decision.period.key}"

    def item(self) -> batch_enqueue.EnqueueItem:
        account, decision = self.due.account, self.due.decision
        return batch_enqueue.EnqueueItem(self.key, DebitRequestInput(
            mandate=self.mandate.reference,
            amount=money.format_cents(self.cents),
            remittance=charset.to_sepa_text(
                f"Automatic debit {decision.period.key} account {account.reference}", charset.REMITTANCE_MAX
            ),
            requested_date=decision.collection_date,
        ))


def _schedule_page(
    session: Session, creditor: Creditor, accounts: Sequence[DebtorAccount], run_date: dt.date, clock: Clock
) -> list[ScheduledItem]:
    candidates = _due(session, creditor, accounts, run_date)
    if not candidates:
        return []
    # Their mandates first: the page's enqueue share-locks them anyway, and taken after the
    # accounts they made a cycle with a hand-over, which moves a mandate's history before it
    # books the payment on its account (tests/services/test_lock_order.py).
    repo.lock_mandates_of(session, [d.account.id for d in candidates], shared=True)
    # Under the accounts' locks, decided again: another run may have decided these periods,
    # or an account may have changed, while this one waited.
    locked = repo.lock_accounts_again(session, [d.account for d in candidates])
    due = _due(session, creditor, locked, run_date)
    mandates = usable_mandates(session, creditor.id, [d.account for d in due],
                               {d.account.id: d.decision.collection_date for d in due})
    with_mandate = {d.account.id for d in due if not isinstance(mandates[d.account.id], errors.NoUsableMandate)}
    facts = debit_gate.balance_facts(session, creditor.id, with_mandate)
    now = clock.now()
    decided: dict[int, ScheduledItem] = {}
    debits: list[_Debit] = []
    nothing_due: list[dict[str, object]] = []
    for d in due:
        account, decision = d.account, d.decision
        mandate = mandates[account.id]
        if isinstance(mandate, errors.NoUsableMandate):
            decided[account.id] = _item(creditor, account, decision, NO_MANDATE, 0, problems=(mandate.to_dict(),))
            continue
        collectable = facts[account.id].position.collectable_cents
        if collectable > 0:
            # One SEPA debit carries at most MAX_CENTS; the rest waits for the next period.
            cents = min(collectable, money.MAX_CENTS)
            # The gate decides on the facts just read, under the accounts' locks: enqueueing
            # does not read them again.
            verdict = debit_gate.admit_balance(facts[account.id], mandate.id, cents, origin=Origin.SCHEDULE)
            debits.append(_Debit(d, mandate, cents, verdict))
        elif d.slot is None:
            nothing_due.append(_slot_row(creditor, account, decision, run_date, NOTHING_DUE, 0, None, now))
            decided[account.id] = _item(creditor, account, decision, NOTHING_DUE, 0)
        # else: still nothing, and the period's "nothing due" stands
    repo.insert_slots(session, nothing_due)
    if debits:
        decided.update(_request(session, creditor, debits, run_date, clock, now))
    return [decided[d.account.id] for d in due if d.account.id in decided]


# What recording a page's requested periods fills that its own foreign-key checks look up.
_FILLED = (DebitRequest.__tablename__, ScheduleSlot.__tablename__)


def _request(
    session: Session, creditor: Creditor, debits: list[_Debit], run_date: dt.date, clock: Clock, now: dt.datetime
) -> dict[int, ScheduledItem]:
    """Enqueue the page's debits as one batch, then record each period's slot and notice."""
    batch = batch_enqueue.enqueue(
        session, creditor.code, [debit.item() for debit in debits], clock=clock, chunk_size=batch_enqueue.CHUNK,
        origin=Origin.SCHEDULE, locate=False, admitted={debit.key: debit.verdict for debit in debits},
    )
    results = list(zip(debits, batch.results, strict=True))
    # The slots reference the debits just enqueued, the notices those and the slots: once
    # both tables are established, their checks keep their plans (db/session.py).
    with key_check_plans_kept_when_large(session, _FILLED):
        fresh: list[dict[str, object]] = []
        for debit, result in results:
            d = debit.due
            if d.slot is None:
                fresh.append(_slot_row(creditor, d.account, d.decision, run_date, REQUESTED, debit.cents, result.id, now))
            else:
                # The period found nothing earlier; what fell due since is collected for it.
                d.slot.outcome, d.slot.amount_cents, d.slot.debit_request_id, d.slot.run_date = (
                    REQUESTED, debit.cents, result.id, run_date
                )
        repo.insert_slots(session, fresh)
        slots = repo.slots_of(session, creditor.id, {debit.due.account.id: debit.due.decision.period.key for debit in debits})
        returns_repo.insert_prenotifications(session, [
            {
                "creditor_id": creditor.id,
                "debtor_account_id": debit.due.account.id,
                "slot_id": slots[debit.due.account.id].id,
                "debit_request_id": result.id,
                "period": debit.due.decision.period.key,
                "kind": "schedule",
                "amount_cents": debit.cents,
                "collection_date": debit.due.decision.collection_date,
                "nominal_date": debit.due.decision.nominal_date,
                "mandate_reference": debit.mandate.reference,
                "creditor_identifier": creditor.creditor_identifier,
                "issued_on": run_date,
                "issued_at": now,
            }
            for debit, result in results
        ])
        notices = repo.prenotification_ids(session, [result.id for _, result in results])
    decided: dict[int, ScheduledItem] = {}
    for debit, result in results:
        account, decision = debit.due.account, debit.due.decision
        # One line an account only when asked (SEPA_ENGINE_LOG_LEVEL=debug): a run over 100,000
        # accounts wrote 100,000 lines, a seventh of its time; its slots, notices and report
        # say the same, and "schedule.run" gives the counts.
        log.debug("schedule.requested", creditor=creditor.code, account_id=account.id, period=decision.period.key,
                  amount_cents=debit.cents, moved=decision.moved)
        decided[account.id] = _item(
            creditor, account, decision, REQUESTED, debit.cents, request_id=result.id,
            end_to_end_id=result.end_to_end_id, prenotification_id=notices[result.id], problems=result.problems,
        )
    return decided


def _open(slot: ScheduleSlot | None) -> bool:
    """Whether the schedule may still request a debit for the slot's period."""
    return slot is None or slot.outcome == NOTHING_DUE


def _slot_row(
    creditor: Creditor,
    account: DebtorAccount,
    decision: ScheduledCollection,
    run_date: dt.date,
    outcome: str,
    cents: int,
    request_id: int | None,
    now: dt.datetime,
) -> dict[str, object]:
    return {
        "creditor_id": creditor.id, "debtor_account_id": account.id, "period": decision.period.key, "run_date": run_date,
        "outcome": outcome, "amount_cents": cents, "debit_request_id": request_id, "created_at": now,
    }


def _item(
    creditor: Creditor,
    account: DebtorAccount,
    decision: ScheduledCollection,
    outcome: str,
    cents: int,
    **extra: object,
) -> ScheduledItem:
    collection = decision.collection_date if outcome == REQUESTED else None
    return ScheduledItem(
        creditor.code, account.reference, decision.period.key, outcome, cents, decision.nominal_date, collection,
        **extra,  # type: ignore[arg-type]
    )


# --- pre-notifications for the creditor's mailing system -----------------------------------
CSV_COLUMNS = (
    "creditor",
    "creditor_name",
    "creditor_identifier",
    "account",
    "debtor_name",
    "contact_name",
    "email",
    "mandate_reference",
    "end_to_end_id",
    "period",
    "amount",
    "currency",
    "collection_date",
    "issued_on",
    "issued_at",
    "kind",
)


def prenotifications(
    session: Session,
    creditor_code: str,
    *,
    collection_from: dt.date | None = None,
    collection_to: dt.date | None = None,
    issued_on: dt.date | None = None,
) -> tuple[dict[str, object], ...]:
    """Pre-notifications of one creditor, by collection date, as flat records: the schedule's
    and those of retries (``kind``), so one export feeds the creditor's mailing system."""
    creditor = creditor_of(session, creditor_code)
    if collection_from is not None and collection_to is not None and collection_to < collection_from:
        raise errors.InvalidDate("to", collection_to.isoformat(), "is before from")
    rows = repo.prenotifications(
        session, creditor.id, collection_from=collection_from, collection_to=collection_to, issued_on=issued_on
    )
    return tuple(_record(row) for row in rows)


def _record(row: repo.PrenotificationRow) -> dict[str, object]:
    return {
        "creditor": row.creditor_code,
        "creditor_name": row.creditor_name,
        "creditor_identifier": row.creditor_identifier,
        "account": row.account_reference,
        "debtor_name": row.debtor_name,
        "contact_name": row.contact_name,
        "email": row.email,
        "mandate_reference": row.mandate_reference,
        "end_to_end_id": row.end_to_end_id,
        "period": row.period,
        "amount": money.format_cents(row.amount_cents),
        "currency": "EUR",
        "collection_date": row.collection_date.isoformat(),
        "issued_on": row.issued_on.isoformat(),
        "issued_at": row.issued_at.isoformat(),
        "kind": row.kind,
    }


def prenotifications_csv(records: tuple[dict[str, object], ...]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        # Names, e-mails and references come from upstream: made inert for a spreadsheet.
        writer.writerow({key: "" if record[key] is None else text.csv_cell(str(record[key])) for key in CSV_COLUMNS})
    return out.getvalue()
