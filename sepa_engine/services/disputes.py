"""Disputes: a customer contests one or more invoices; while the dispute is open or under
review those invoices are not collected. Accepting it books a credit note for the disputed
amount (which settles those invoices first); rejecting it makes them collectable again.

Every step is kept with who made it and when; transitions are decided by
``domain.accounts.dispute_transition`` only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import structlog
from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.clock import Clock, business_today
from sepa_engine.db.models import Creditor, DebtorAccount, Dispute, DisputeEvent, DisputeInvoice, LedgerEntry
from sepa_engine.db.repositories import accounts as repo
from sepa_engine.db.repositories import registry as registry_repo
from sepa_engine.domain import money
from sepa_engine.domain.accounts import DisputeStatus, EntryKind, dispute_status, dispute_transition
from sepa_engine.services import debit_gate, idempotency
from sepa_engine.services.account_inputs import DisputeInput, DisputeTransitionInput
from sepa_engine.services.account_ledger import account_of, actor_name, check_input, creditor_of, fit, items_by_number

log = structlog.get_logger("sepa_engine.disputes")

REASON_MAX = 2_000
NOTE_MAX = 2_000


@dataclass(frozen=True, slots=True)
class DisputeEventView:
    status: str
    actor: str
    at: dt.datetime
    note: str | None

    def to_dict(self) -> dict[str, object]:
        return {"status": self.status, "actor": self.actor, "at": self.at.isoformat(), "note": self.note}


@dataclass(frozen=True, slots=True)
class DisputeView:
    id: int
    creditor_code: str
    account_reference: str
    reason: str
    status: str
    opened_by: str
    opened_at: dt.datetime
    # (invoice number, disputed cents)
    invoices: tuple[tuple[str, int], ...]
    history: tuple[DisputeEventView, ...]
    credit_note: str | None
    created: bool

    @property
    def amount_cents(self) -> int:
        return sum(cents for _, cents in self.invoices)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "creditor": self.creditor_code,
            "account": self.account_reference,
            "reason": self.reason,
            "status": self.status,
            "opened_by": self.opened_by,
            "opened_at": self.opened_at.isoformat(),
            "amount": money.format_cents(self.amount_cents),
            "invoices": [{"number": n, "amount": money.format_cents(c)} for n, c in self.invoices],
            "history": [event.to_dict() for event in self.history],
            "credit_note": self.credit_note,
            "created": self.created,
        }


def open_dispute(
    session: Session,
    creditor_code: str,
    account_reference: str,
    data: DisputeInput,
    *,
    actor: str,
    idempotency_key: str,
    clock: Clock,
) -> DisputeView:
    key = idempotency.check_key(idempotency_key)
    check_input(data, DisputeInput)
    who = actor_name(actor)
    creditor = creditor_of(session, creditor_code)
    reference = fit("account", account_reference, DebtorAccount.reference)
    reason = _text("reason", data.reason, REASON_MAX)
    lines: list[tuple[str, int | None]] = []
    for index, line in enumerate(data.invoices):
        where = f"invoices[{index}]"
        number = fit(where, line.number, LedgerEntry.document_number)
        if any(number == seen for seen, _ in lines):
            raise errors.InvalidFormat(where, number, "is named twice")
        cents = money.parse_amount(line.amount, where + ".amount") if line.amount is not None else None
        lines.append((number, cents))
    digest = idempotency.content_hash({"account": reference, "reason": reason, "invoices": [list(line) for line in lines]})
    existing = repo.dispute_by_idempotency_key(session, creditor.id, key)
    if existing is not None:
        idempotency.ensure_same(existing, digest, key)
        return _view(session, creditor, existing, created=False)
    account = repo.lock_account(session, account_of(session, creditor, reference))
    existing = repo.dispute_by_idempotency_key(session, creditor.id, key)
    if existing is not None:
        idempotency.ensure_same(existing, digest, key)
        return _view(session, creditor, existing, created=False)
    found = items_by_number(session, account, [n for n, _ in lines])
    held = {line.entry_id: line.dispute_id for line in repo.dispute_lines(session, account, holding_only=True)}
    chosen: list[tuple[LedgerEntry, int]] = []
    for index, (number, cents) in enumerate(lines):
        where = f"invoices[{index}]"
        entry = found.get(number)
        if entry is None:
            raise errors.NotFound(where, number, f"is not an invoice of account {account.reference}")
        if entry.id in held:
            raise errors.DisputeError(where, number, f"is already under dispute {held[entry.id]}")
        if cents is not None and cents > entry.amount_cents:
            raise errors.InvalidAmount(
                where + ".amount", money.format_cents(cents), f"is more than the invoice ({money.format_cents(entry.amount_cents)})"
            )
        chosen.append((entry, entry.amount_cents if cents is None else cents))

    def write() -> Dispute:
        now = clock.now()
        row = registry_repo.add(
            session,
            Dispute(
                creditor_id=creditor.id, debtor_account_id=account.id, reason=reason, status=DisputeStatus.OPEN.value,
                opened_by=who, opened_at=now, status_changed_at=now, idempotency_key=key, content_hash=digest,
            ),
        )
        repo.add_all(session, [
            *(DisputeInvoice(dispute_id=row.id, entry_id=entry.id, amount_cents=cents) for entry, cents in chosen),
            DisputeEvent(creditor_id=creditor.id, dispute_id=row.id, status=row.status, actor=who, at=now),
        ])
        return row

    row, created = idempotency.write_once(
        session, write, lambda: repo.dispute_by_idempotency_key(session, creditor.id, key), digest, key,
        lambda: errors.DisputeError("invoices", None, "changed while the dispute was opened; try again"),
    )
    if created:
        # Money under dispute never goes into a file: debits still waiting that would take it go.
        withdrawn = debit_gate.withdraw_disputed(
            session, creditor, account.id, frozenset(entry.id for entry, _ in chosen), now=clock.now()
        )
        log.info("dispute.opened", creditor=creditor.code, dispute_id=row.id, invoices=len(chosen),
                 withdrawn_debits=len(withdrawn))
    return _view(session, creditor, row, created=created)


def transition_dispute(
    session: Session,
    creditor_code: str,
    dispute_id: int,
    data: DisputeTransitionInput,
    *,
    actor: str,
    idempotency_key: str,
    clock: Clock,
) -> DisputeView:
    """Move a dispute to ``data.status``; accepting books its credit note."""
    key = idempotency.check_key(idempotency_key)
    check_input(data, DisputeTransitionInput)
    who = actor_name(actor)
    creditor = creditor_of(session, creditor_code)
    new = dispute_status(data.status)
    note = _text("note", data.note, NOTE_MAX) if data.note is not None else None
    number = (
        fit("credit_note_number", data.credit_note_number, LedgerEntry.document_number)
        if data.credit_note_number is not None
        else None
    )
    if number is not None and new is not DisputeStatus.ACCEPTED:
        raise errors.InvalidFormat("credit_note_number", number, "is only for accepting a dispute")
    row = _dispute(session, creditor, dispute_id)
    digest = idempotency.content_hash(
        {"dispute": row.id, "status": new.value, "note": note, "credit_note_number": number}
    )
    replay = _replayed_event(session, creditor, row, key, digest)
    if replay is not None:
        return replay
    account = repo.lock_account(session, repo.account_by_id(session, creditor.id, row.debtor_account_id))
    repo.lock_dispute(session, row)
    replay = _replayed_event(session, creditor, row, key, digest)
    if replay is not None:
        return replay
    dispute_transition(row.status, new)
    now = clock.now()
    if new is DisputeStatus.ACCEPTED:
        _credit_note(session, creditor, account, row, number or f"D-{row.id}", clock)
    row.status = new.value
    row.status_changed_at = now
    registry_repo.add(
        session,
        DisputeEvent(
            creditor_id=creditor.id, dispute_id=row.id, status=new.value, actor=who, at=now, note=note,
            idempotency_key=key, content_hash=digest,
        ),
    )
    log.info("dispute.changed", creditor=creditor.code, dispute_id=row.id, status=new.value)
    return _view(session, creditor, row, created=True)


def _credit_note(
    session: Session, creditor: Creditor, account: DebtorAccount, row: Dispute, number: str, clock: Clock
) -> LedgerEntry:
    if repo.entry_by_number(session, creditor.id, EntryKind.CREDIT_NOTE, number) is not None:
        raise errors.DuplicateIdentifier("credit_note_number", number, f"is already a credit note of creditor {creditor.code}")
    cents = sum(line.amount_cents for line in repo.dispute_lines(session, account, dispute_id=row.id))
    return registry_repo.add(
        session,
        LedgerEntry(
            creditor_id=creditor.id, debtor_account_id=account.id, kind=EntryKind.CREDIT_NOTE.value,
            document_number=number, issue_date=business_today(clock, creditor.timezone), amount_cents=cents,
            label=f"Dispute {row.id} accepted", dispute_id=row.id, created_at=clock.now(),
        ),
    )


def _replayed_event(session: Session, creditor: Creditor, row: Dispute, key: str, digest: str) -> DisputeView | None:
    event = repo.event_by_idempotency_key(session, creditor.id, key)
    if event is None:
        return None
    idempotency.ensure_same(event, digest, key)
    return _view(session, creditor, row, created=False)


def get_dispute(session: Session, creditor_code: str, dispute_id: int) -> DisputeView:
    creditor = creditor_of(session, creditor_code)
    return _view(session, creditor, _dispute(session, creditor, dispute_id), created=False)


def list_disputes(
    session: Session, creditor_code: str, *, account_reference: str | None = None, status: str | None = None
) -> tuple[DisputeView, ...]:
    creditor = creditor_of(session, creditor_code)
    account_id = account_of(session, creditor, account_reference).id if account_reference is not None else None
    chosen = dispute_status(status) if status is not None else None
    rows = repo.list_disputes(session, creditor.id, account_id=account_id, status=chosen)
    return tuple(_view(session, creditor, row, created=False) for row in rows)


def _dispute(session: Session, creditor: Creditor, dispute_id: object) -> Dispute:
    if isinstance(dispute_id, bool) or not isinstance(dispute_id, int):
        raise errors.InvalidFormat("dispute", f"<{type(dispute_id).__name__}>", "must be an integer id")
    row = repo.dispute(session, creditor.id, dispute_id)
    if row is None:
        raise errors.NotFound("dispute", dispute_id, f"is not a dispute of creditor {creditor.code}")
    return row


def _view(session: Session, creditor: Creditor, row: Dispute, *, created: bool) -> DisputeView:
    account = repo.account_by_id(session, creditor.id, row.debtor_account_id)
    lines = repo.dispute_lines(session, account, dispute_id=row.id)
    note = repo.credit_note_of_dispute(session, row)
    return DisputeView(
        row.id, creditor.code, account.reference, row.reason, row.status, row.opened_by, row.opened_at,
        tuple((line.document_number, line.amount_cents) for line in lines),
        tuple(DisputeEventView(e.status, e.actor, e.at, e.note) for e in repo.dispute_events(session, row)),
        note.document_number if note else None, created,
    )


def _text(field_name: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise errors.InvalidFormat(field_name, f"<{type(value).__name__}>", "must be a string")
    if not value.strip():
        raise errors.InvalidLength(field_name, value, "is empty")
    if len(value) > limit:
        raise errors.InvalidLength(field_name, value[:40] + "...", f"is longer than {limit} characters")
    return value
