"""The account gate in the service layer: the reads and writes around ``domain.debit_gate``.

``registry.enqueue_request`` (HTTP route, ``load``, the Python API, pay-now, pay-group, the
schedule, retries) calls ``admit_one``; ``batch_enqueue.enqueue_requests`` (``enqueue
FILE``) calls ``admit_many``, which reads what the gate needs for a whole chunk in a few
statements, and the HTTP batcher's group ``admit_parts``, the same for several creditors' chunks
at once. All decide with the same pure ``admit``, debit after debit, so a debit admitted earlier
in a batch counts as in flight for the next one.

A request that carries its invoice (``invoice_number``, ``invoice_issue_date``, optional
``invoice_due_date``; its amount is the request's) books that invoice first and then pays it,
both in the caller's transaction. Sent again, the invoice is recognised by its number when
every detail is the same; with other details it is refused, never booked twice.

Services never commit: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.db.models import Creditor, DebtorAccount
from sepa_engine.db.repositories import accounts as repo
from sepa_engine.domain import money
from sepa_engine.domain.accounts import (
    ITEM_KINDS,
    CollectionMode,
    EntryKind,
    Position,
    newest_items_open,
    unapplied_without_holds,
)
from sepa_engine.domain.debit_gate import (
    AccountFacts,
    Admitted,
    DebitAsked,
    InvoiceFacts,
    Origin,
    Pays,
    PendingDebit,
    admit,
    after_admission,
    invoice_numbers,
    withdrawn_by_credit,
    withdrawn_by_dispute,
)
from sepa_engine.services.account_ledger import build_ledger
from sepa_engine.services.inputs import DebitRequestInput

_NUMBER_MAX = 35
_INVOICE = EntryKind.INVOICE.value
# The position of an account whose ledger a retry on account did not need (see admit_retries).
_UNREAD = Position(0, 0, 0)


@dataclass(frozen=True, slots=True)
class CarriedInvoice:
    number: str
    issue_date: dt.date
    due_date: dt.date | None


@dataclass(frozen=True, slots=True)
class Asking:
    """What a request says it pays, checked for form (not yet against the account)."""

    pays: Pays
    invoices: tuple[str, ...] = ()
    carried: CarriedInvoice | None = None

    def digest_fields(self) -> dict[str, object]:
        """Added to the request's content hash only when it says something, so that the
        hashes of requests stored before the gate (which said nothing) stay the same."""
        if self.carried is not None:
            c = self.carried
            return {"invoice": {"number": c.number, "issue_date": c.issue_date, "due_date": c.due_date}}
        if self.pays is Pays.INVOICES:
            return {"invoices": list(self.invoices)}
        if self.pays is Pays.ON_ACCOUNT:
            return {"on_account": True}
        return {}


def asking(data: DebitRequestInput) -> Asking:
    """Read (and check the form of) what ``data`` pays."""
    said = [
        name for name, given in (
            ("invoices", data.invoices is not None),
            ("invoice_number", data.invoice_number is not None),
            ("on_account", data.on_account),
        ) if given
    ]
    if len(said) > 1:
        raise errors.InvalidFormat(
            said[1], None, f"cannot be given with {said[0]}: a request pays named invoices, its own invoice, "
            "the balance or, explicitly, on account"
        )
    if data.invoice_number is None:
        for name in ("invoice_issue_date", "invoice_due_date"):
            if getattr(data, name) is not None:
                raise errors.InvalidFormat(name, None, "is only for a request that carries its invoice (invoice_number)")
    if data.invoices is not None:
        numbers = tuple(_number("invoices", value) for value in data.invoices)
        if not numbers:
            raise errors.InvalidFormat("invoices", None, "must name at least one invoice")
        return Asking(Pays.INVOICES, numbers)
    if data.invoice_number is not None:
        number = _number("invoice_number", data.invoice_number)
        if data.invoice_issue_date is None:
            raise errors.InvalidFormat("invoice_issue_date", None, "is required with invoice_number")
        if data.invoice_due_date is not None and data.invoice_due_date < data.invoice_issue_date:
            raise errors.InvalidDate("invoice_due_date", data.invoice_due_date.isoformat(), "is before the issue date")
        return Asking(Pays.INVOICES, (number,), CarriedInvoice(number, data.invoice_issue_date, data.invoice_due_date))
    if data.on_account:
        return Asking(Pays.ON_ACCOUNT)
    return Asking(Pays.BALANCE)


def _number(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise errors.InvalidFormat(field, f"<{type(value).__name__}>", "must be a string (an invoice number)")
    if not value.strip():
        raise errors.InvalidLength(field, value, "is empty")
    if len(value) > _NUMBER_MAX:
        raise errors.InvalidLength(field, value, f"is longer than {_NUMBER_MAX} characters")
    return value


# --- deciding --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Debit:
    """One debit to admit: the mandate it names (resolved), its amount and what it pays."""

    mandate_id: int
    amount_cents: int
    asking: Asking
    remittance: str | None = None
    location: str | None = None
    # The mandate's debtor account, when the caller read it with the mandate in this
    # transaction (the enqueue's mandates in force): the gate then does not look it up.
    account_id: int | None = None


@dataclass(frozen=True, slots=True)
class BookedInvoice:
    """An invoice a request carried, booked by this chunk."""

    number: str
    account_id: int
    issue_date: dt.date
    amount_cents: int
    entry_id: int


def admit_one(session: Session, creditor: Creditor, debit: Debit, *, origin: Origin, now: dt.datetime) -> Admitted:
    """The gate for one debit: locks its account, books its carried invoice, decides; raises
    the refusal."""
    return admit_many(session, creditor, [debit], origin=origin, now=now)[0]


def admit_many(
    session: Session, creditor: Creditor, debits: Sequence[Debit], *, origin: Origin, now: dt.datetime
) -> list[Admitted]:
    """The gate for a chunk of debits of one creditor, in order; raises the first refusal
    (with the debit's location). A few statements whatever the chunk's size."""
    return admit_parts(session, [(creditor, debits)], origin=origin, now=now)[0]


def admit_parts(
    session: Session, parts: Sequence[tuple[Creditor, Sequence[Debit]]], *, origin: Origin, now: dt.datetime
) -> list[list[Admitted]]:
    """``admit_many`` for several creditors' chunks at once (the HTTP batcher's group of
    calls for several creditors): the same few statements for them all, each row read
    checked against its own creditor. Raises the first refusal, in the parts' order."""
    owner = {debit.mandate_id: creditor.id for creditor, debits in parts for debit in debits}
    if not owner:
        return [[] for _ in parts]
    account_of = {d.mandate_id: d.account_id for _, debits in parts for d in debits if d.account_id is not None}
    unknown = {mandate_id: creditor_id for mandate_id, creditor_id in owner.items() if mandate_id not in account_of}
    if unknown:
        account_of.update(repo.accounts_of_mandates(session, unknown, unknown))
    account_owner = {account_of[mandate_id]: creditor_id for mandate_id, creditor_id in owner.items() if mandate_id in account_of}
    account_ids = set(account_owner)
    # Account by account in id order, so two batches never deadlock.
    locked = repo.lock_gate_accounts(session, account_ids)
    booked = _book_carried(
        session, [(creditor, [(account_of[d.mandate_id], d) for d in debits if d.asking.carried]) for creditor, debits in parts],
        now,
    )
    # An account whose debits pay the balance, on account or an invoice booked just now needs
    # no replay of its history; one with a debit naming any other invoice does.
    naming = {
        account_of[d.mandate_id] for creditor, debits in parts for d in debits
        if d.asking.pays is Pays.INVOICES
        and (d.asking.carried is None or (creditor.id, d.asking.carried.number) not in booked)
    }
    newest: dict[int, list[BookedInvoice]] = {}
    for invoice in booked.values():
        if invoice.account_id not in naming:
            newest.setdefault(invoice.account_id, []).append(invoice)
    reads = repo.gate_reads(
        session, account_owner, account_ids, positions=account_ids - naming,
        newest={account_id: [(i.entry_id, i.issue_date) for i in items] for account_id, items in newest.items()},
        account_rows=locked,
    )
    facts = _facts(reads, newest=newest)
    admitted: list[list[Admitted]] = []
    for _creditor, debits in parts:
        decided: list[Admitted] = []
        for debit in debits:
            account_id = account_of[debit.mandate_id]
            decision = admit(
                facts[account_id],
                DebitAsked(origin, debit.mandate_id, debit.amount_cents, debit.asking.pays, debit.asking.invoices),
            )
            if isinstance(decision, errors.SepaEngineError):
                decision.location = debit.location
                raise decision
            facts[account_id] = after_admission(facts[account_id], decision)
            decided.append(decision)
        admitted.append(decided)
    return admitted


def account_facts(session: Session, creditor_id: int, account_ids: set[int]) -> dict[int, AccountFacts]:
    return _facts(repo.gate_reads(session, creditor_id, account_ids))


def balance_facts(session: Session, creditor_id: int, account_ids: set[int]) -> dict[int, AccountFacts]:
    """The facts ``admit_many`` decides debits that pay the balance on: the accounts, their
    current mandates and positions, summed by the database (the whole ledger only where a
    dispute holds). For a caller that needs the positions first (the schedule debits what is
    collectable) and then decides with ``admit_balance``, under the same account locks."""
    return _facts(repo.gate_reads(session, creditor_id, account_ids, positions=account_ids))


def admit_balance(facts: AccountFacts, mandate_id: int, cents: int, *, origin: Origin) -> Admitted:
    """The gate's verdict on a debit of ``cents`` from the balance (``balance_facts``); raises
    the refusal."""
    decision = admit(facts, DebitAsked(origin, mandate_id, cents, Pays.BALANCE, ()))
    if isinstance(decision, errors.SepaEngineError):
        raise decision
    return decision


def _facts(
    reads: repo.GateReads, ledgers: set[int] | None = None, *, newest: dict[int, list[BookedInvoice]] | None = None
) -> dict[int, AccountFacts]:
    """The gate's facts by account; an account outside ``ledgers`` (when given) gets its
    mandate and mode only, its position and invoices left empty (its ledger was not read).
    An account whose position was summed gets the invoices in ``newest`` (booked just now)
    when they come last (``GateReads.unmatched_returns``), their open amounts from the sums."""
    facts: dict[int, AccountFacts] = {}
    for account_id, account in reads.accounts.items():
        if ledgers is not None and account_id not in ledgers:
            facts[account_id] = AccountFacts(
                account.reference, CollectionMode(account.collection_mode), reads.current_mandates.get(account_id),
                _UNREAD, {},
            )
            continue
        summed = reads.positions.get(account_id)
        if summed is not None:
            # No invoice of it is under dispute, so nothing is held; its invoices were not
            # read, since no debit asked of it names one (the callers ask so) other than the
            # ones it carries, booked just now, whose facts come from the sums.
            balance, in_flight = summed
            unmatched = reads.unmatched_returns.get(account_id)
            booked = newest.get(account_id, []) if newest and unmatched is not None else []
            facts[account_id] = AccountFacts(
                account.reference, CollectionMode(account.collection_mode), reads.current_mandates.get(account_id),
                Position(balance, 0, in_flight), _newest_invoices(booked, balance, unmatched or 0),
            )
            continue
        ledger = build_ledger(
            reads.entries[account_id], reads.in_flight[account_id], reads.selections[account_id],
            reads.dispute_lines[account_id],
        )
        invoices: dict[str, InvoiceFacts] = {}
        kinds: dict[str, str] = {}
        for entry in ledger.entries:
            if entry.kind not in ITEM_KINDS:
                continue
            # An invoice and a fee may share a number; the invoice is what a request means.
            if entry.document_number in kinds and entry.kind != _INVOICE:
                continue
            kinds[entry.document_number] = entry.kind
            invoices[entry.document_number] = InvoiceFacts(
                entry.id, ledger.open_cents(entry.id), entry.id in ledger.disputed,
                ledger.selected_in_flight.get(entry.id, 0),
            )
        facts[account_id] = AccountFacts(
            account.reference, CollectionMode(account.collection_mode), reads.current_mandates.get(account_id),
            ledger.position, invoices,
        )
    return facts


def _newest_invoices(booked: list[BookedInvoice], balance_cents: int, unmatched_cents: int) -> dict[str, InvoiceFacts]:
    """Facts of invoices booked just now that come last in the allocation's order, on an
    account where no dispute holds an invoice: what the rest of the ledger leaves unapplied
    pays them, oldest first (``accounts.newest_items_open``); no debit selects them yet."""
    if not booked:
        return {}
    ordered = sorted(booked, key=lambda invoice: (invoice.issue_date, invoice.entry_id))
    before = balance_cents - sum(invoice.amount_cents for invoice in ordered)
    owed = newest_items_open(unapplied_without_holds(before, unmatched_cents), [i.amount_cents for i in ordered])
    return {
        invoice.number: InvoiceFacts(invoice.entry_id, cents, False, 0) for invoice, cents in zip(ordered, owed, strict=True)
    }


def _book_carried(
    session: Session, parts: Sequence[tuple[Creditor, list[tuple[int, Debit]]]], now: dt.datetime
) -> dict[tuple[int, str], BookedInvoice]:
    """Book the invoices carried (per creditor: account id, debit) that are new, in one
    statement; the ones booked, by (creditor id, number): a number is unique per creditor."""
    new: dict[tuple[int, str], dict[str, object]] = {}
    numbers: dict[int, set[str]] = {}
    for creditor, carried in parts:
        numbers.setdefault(creditor.id, set()).update(d.asking.carried.number for _, d in carried)  # type: ignore[union-attr]
    # One statement for every creditor's numbers (a number is unique per creditor).
    existing = repo.invoices_by_creditor_numbers(session, numbers)
    for creditor, carried in parts:
        for account_id, debit in carried:
            invoice = debit.asking.carried
            assert invoice is not None
            values = (account_id, invoice.issue_date, invoice.due_date, debit.amount_cents)
            row = existing.get((creditor.id, invoice.number))
            fresh = new.get((creditor.id, invoice.number))
            if row is not None or fresh is not None:
                found = (
                    (row.debtor_account_id, row.issue_date, row.due_date, row.amount_cents) if row is not None
                    else (fresh["debtor_account_id"], fresh["issue_date"], fresh["due_date"], fresh["amount_cents"])  # type: ignore[index]
                )
                if found != values:
                    raise errors.DuplicateIdentifier(
                        "invoice_number", invoice.number,
                        "is already an invoice of this creditor with other details (account, dates or amount); "
                        "an invoice is booked once",
                        location=debit.location,
                    )
                continue
            if debit.amount_cents <= 0:
                raise errors.InvalidAmount(
                    "amount", money.format_cents(debit.amount_cents), "is zero: an invoice carried by a request owes something",
                    location=debit.location,
                )
            new[(creditor.id, invoice.number)] = {
                "creditor_id": creditor.id, "debtor_account_id": account_id, "kind": EntryKind.INVOICE.value,
                "document_number": invoice.number, "issue_date": invoice.issue_date, "due_date": invoice.due_date,
                "amount_cents": debit.amount_cents, "label": debit.remittance, "created_at": now,
            }
    if not new:
        return {}
    # One statement for them all, which returns their ids for the gate's facts.
    ids = repo.insert_invoices(session, list(new.values()))
    return {
        key: BookedInvoice(key[1], row["debtor_account_id"], row["issue_date"], row["amount_cents"], ids[(key[0], key[1])])  # type: ignore[arg-type]
        for key, row in new.items()
    }


def record(session: Session, creditor_id: int, rows: Sequence[tuple[int, Admitted]]) -> None:
    """The invoices each stored debit pays (``(request id, admitted)``), in one executemany."""
    record_parts(session, [(creditor_id, rows)])


def record_parts(session: Session, parts: Sequence[tuple[int, Sequence[tuple[int, Admitted]]]]) -> None:
    """``record`` for several creditors' debits (creditor id, its rows), in one executemany."""
    repo.insert_selections(
        session,
        [
            {"creditor_id": creditor_id, "debit_request_id": request_id, "entry_id": entry_id, "amount_cents": cents}
            for creditor_id, rows in parts
            for request_id, admitted in rows
            for entry_id, cents in admitted.selection
        ],
    )


DISPUTE_REASON = "invoice under dispute"


def withdraw_disputed(
    session: Session, creditor: Creditor, account_id: int, disputed_ids: frozenset[int], *, now: dt.datetime
) -> list[int]:
    """Cancel the account's pending debits that would take money just put under dispute
    (``domain.debit_gate.withdrawn_by_dispute``); returns their ids. The account is locked."""
    debits = _pending_debits(session, creditor, account_id)
    if not debits:
        return []
    gone = withdrawn_by_dispute(account_facts(session, creditor.id, {account_id})[account_id], disputed_ids, debits)
    repo.cancel_requests(session, gone, reason=DISPUTE_REASON, at=now)
    return gone


CREDIT_REASON = "credit note recorded: the debit would take more than is due"


def withdraw_credited(session: Session, creditor: Creditor, account_id: int, *, now: dt.datetime) -> list[int]:
    """Cancel the account's pending debits that would take more than is due once a credit
    note is booked (``domain.debit_gate.withdrawn_by_credit``); returns their ids. The
    account is locked."""
    debits = _pending_debits(session, creditor, account_id)
    if not debits:
        return []
    gone = withdrawn_by_credit(account_facts(session, creditor.id, {account_id})[account_id], debits)
    repo.cancel_requests(session, gone, reason=CREDIT_REASON, at=now)
    return gone


# --- retries -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RetryAsked:
    """The next attempt of a failed debit: its original, the original's mandate and amount."""

    original_id: int
    mandate_id: int
    amount_cents: int


def admit_retries(
    session: Session, creditor_id: int, retries: Sequence[RetryAsked]
) -> list[Admitted | errors.SepaEngineError]:
    """The gate for retries (one read for them all, whatever their number): each pays what
    its original paid (the same invoices, the balance, or on account; a debit from before
    the gate paid on account), checked against what is collectable once the failure is
    booked, so that the caller books the failures first. Refusals are returned, not raised:
    a refused retry is not scheduled, and the return that asked for it says why."""
    if not retries:
        return []
    account_of = repo.accounts_of_mandates(session, creditor_id, {r.mandate_id for r in retries})
    paid = repo.pays_of_requests(session, [r.original_id for r in retries])
    # A retry on account is decided on its account's mandate and mode alone (``admit``), so
    # the ledgers are read and built only for accounts that have a retry paying the balance
    # or invoices. On a ledger of debits from before the gate (all on account) this skipped
    # most of the retries' gate: BENCHMARKS.md, "Retries on account skip the ledger".
    ledgers = {
        account_of[r.mandate_id] for r in retries
        if r.mandate_id in account_of and paid.get(r.original_id) not in (None, Pays.ON_ACCOUNT.value)
    }
    naming = {
        account_of[r.mandate_id] for r in retries
        if r.mandate_id in account_of and paid.get(r.original_id) == Pays.INVOICES.value
    }
    reads = repo.gate_reads(session, creditor_id, set(account_of.values()), ledgers=ledgers, positions=ledgers - naming)
    facts = _facts(reads, ledgers)
    selected: dict[int, list[int]] = {}
    for rows in reads.selections.values():
        for row in rows:
            selected.setdefault(row.debit_request_id, []).append(row.entry_id)
    decisions: list[Admitted | errors.SepaEngineError] = []
    for retry in retries:
        account_id = account_of.get(retry.mandate_id)
        if account_id is None:  # a mandate of no account: no balance to check
            decisions.append(Admitted(Pays.ON_ACCOUNT, (), retry.amount_cents))
            continue
        account = facts[account_id]
        said = paid.get(retry.original_id)
        pays = Pays(said) if said else Pays.ON_ACCOUNT
        numbers = invoice_numbers(account, selected.get(retry.original_id, ())) if pays is Pays.INVOICES else ()
        decision = admit(account, DebitAsked(
            Origin.RETRY, account.current_mandate_id or retry.mandate_id, retry.amount_cents, pays, numbers,
        ))
        if isinstance(decision, Admitted) and account_id in ledgers:
            facts[account_id] = after_admission(account, decision)
        decisions.append(decision)
    return decisions


def held_debits_over_due(session: Session, creditor: Creditor, batch_id: int, since: dt.datetime) -> list[int]:
    """The debits of a file held for approval (since ``since``) that a dispute opened or a
    credit note booked since would have withdrawn, had they still been pending
    (``withdrawn_by_dispute``, ``withdrawn_by_credit``): money under dispute, or more than is
    due. Only those accounts are read again: elsewhere nothing that withdraws a debit happened,
    and a ledger kept without invoices (a balance of 0) is no reason to hold a file back."""
    changed = repo.accounts_changed_since(session, batch_id, since)
    if not changed:
        return []
    facts = account_facts(session, creditor.id, changed)
    gone: set[int] = set()
    for account_id in sorted(changed):
        account = repo.account_by_id(session, creditor.id, account_id)
        held = _with_selections(session, account, repo.held_requests_of_account(session, account, batch_id))
        if not held:
            continue
        account_facts_now = facts[account_id]
        disputed = frozenset(i.entry_id for i in account_facts_now.invoices.values() if i.disputed)
        gone.update(withdrawn_by_dispute(account_facts_now, disputed, held))
        gone.update(withdrawn_by_credit(account_facts_now, held))
    return sorted(gone)


def _pending_debits(session: Session, creditor: Creditor, account_id: int) -> list[PendingDebit]:
    """The account's pending debits with the invoices each one selected: what a dispute or a
    credit note may withdraw."""
    account = repo.account_by_id(session, creditor.id, account_id)
    return _with_selections(session, account, repo.pending_requests_of_account(session, account))


def _with_selections(
    session: Session, account: DebtorAccount, pending: list[tuple[int, int, str | None]],
) -> list[PendingDebit]:
    if not pending:
        return []
    selected: dict[int, set[int]] = {}
    for row in repo.selections(session, account):
        selected.setdefault(row.debit_request_id, set()).add(row.entry_id)
    return [
        PendingDebit(request_id, cents, Pays(pays) if pays else None, frozenset(selected.get(request_id, ())))
        for request_id, cents, pays in pending
    ]
