"""The account gate: whether a new debit may be stored, and what it pays.

Every debit passes here before it is stored, whatever door it came in by (HTTP, a file,
``load``, the Python API, a payment on demand, the schedule, a retry): the single path and
the batch path of ``services/debit_gate.py`` both call ``admit``, so one input gets one
answer everywhere. The decision is data: ``admit`` returns the selection the debit pays,
or the refusal (an error not raised) that names the field, the rule and, where a bank
would answer the same defect with one, the ISO 20022 reason code.

What a debit pays (``Pays``):

* ``invoices``: the invoices it names, each open, not under dispute and not already being
  collected; the amount is at most what they still owe. A request that carries its own
  invoice (billing systems that compute the amount) books it and pays it this way.
* ``balance``: part or all of the collectable balance (what is due, less invoices under
  dispute, less what other debits already ask for). This is what a request that says
  nothing pays.
* ``on_account``: explicitly a payment on account, which pays no invoice yet and shows as
  such on the statement. Only the creditor's own systems send it.

Reason codes (ISO 20022 External Code Sets, ExternalStatusReason1Code, and the EPC
SDD Core rulebook's R-transaction reasons, as listed in ../shared/iso20022/RULES.md):
money under dispute is what a debtor refuses (MS02); money already requested by another
debit would be a duplicate collection (AM05); an amount above what is due is not the
amount expected (AM09); a mandate that is not the account's current one is no valid
mandate (MD01). Leaving the collection mode has no ISO code: it is the portal's rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sepa_engine import errors
from sepa_engine.domain import money
from sepa_engine.domain.accounts import CollectionMode, Position

REASON_DISPUTED = "MS02"
REASON_IN_FLIGHT = "AM05"
REASON_TOO_MUCH = "AM09"
REASON_MANDATE = "MD01"


class Origin(StrEnum):
    """The door a debit came in by."""

    UPSTREAM = "upstream"    # the creditor's systems: HTTP, files, load, the Python API
    ON_DEMAND = "on_demand"  # the customer's portal: pay-now, pay-group
    SCHEDULE = "schedule"    # the automatic schedule
    RETRY = "retry"          # the next attempt after a failure the bank reported

    def collects_automatic(self) -> bool:
        """In automatic mode only the schedule and its retries collect."""
        return self in (Origin.SCHEDULE, Origin.RETRY)


class Pays(StrEnum):
    INVOICES = "invoices"
    BALANCE = "balance"
    ON_ACCOUNT = "on_account"


@dataclass(frozen=True, slots=True)
class InvoiceFacts:
    """One invoice (or fee) of the account as the gate needs it."""

    entry_id: int
    open_cents: int
    disputed: bool
    # Cents of it that debits not yet booked already select.
    in_flight_cents: int


@dataclass(frozen=True, slots=True)
class AccountFacts:
    reference: str
    mode: CollectionMode
    # The account's newest mandate that is not superseded, whatever its state.
    current_mandate_id: int | None
    position: Position
    invoices: Mapping[str, InvoiceFacts]


@dataclass(frozen=True, slots=True)
class DebitAsked:
    origin: Origin
    mandate_id: int
    amount_cents: int
    pays: Pays
    # Invoice numbers, for ``Pays.INVOICES``, in the order they are paid.
    invoices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Admitted:
    pays: Pays
    # (invoice entry id, cents) the debit pays, in the order named.
    selection: tuple[tuple[int, int], ...]
    amount_cents: int


def admit(facts: AccountFacts, asked: DebitAsked) -> Admitted | errors.SepaEngineError:
    """The gate's decision for one debit on one account (nothing raised, nothing written)."""
    if facts.current_mandate_id is not None and asked.mandate_id != facts.current_mandate_id:
        return errors.NoUsableMandate(
            "mandate", None, f"is not the current mandate of account {facts.reference}",
            reason_code=REASON_MANDATE,
        )
    if facts.mode is CollectionMode.AUTOMATIC and not asked.origin.collects_automatic():
        return errors.WrongCollectionMode(
            "collection_mode", facts.mode.value,
            f"allows no other debit: account {facts.reference} is collected by its schedule only",
        )
    if asked.pays is Pays.ON_ACCOUNT:
        if asked.origin is Origin.RETRY:
            # Its original paid on account (or came before the gate): so does the retry.
            return Admitted(Pays.ON_ACCOUNT, (), asked.amount_cents)
        if asked.origin is Origin.ON_DEMAND:
            return errors.InvalidFormat("on_account", True, "is for the creditor's own systems, not a portal")
        return Admitted(Pays.ON_ACCOUNT, (), asked.amount_cents)
    # A retry pays what its original paid, checked like it against what is collectable once
    # the failure is booked (the money it made due again), so disputed money is not retried.
    if asked.pays is Pays.INVOICES:
        return _invoices(facts, asked)
    return _balance(facts, asked)


def invoice_numbers(facts: AccountFacts, entry_ids: Sequence[int]) -> tuple[str, ...]:
    """The numbers of the invoices ``entry_ids`` (a retry names its original's invoices)."""
    number_of = {invoice.entry_id: number for number, invoice in facts.invoices.items()}
    return tuple(number_of[entry_id] for entry_id in entry_ids if entry_id in number_of)


def _balance(facts: AccountFacts, asked: DebitAsked) -> Admitted | errors.SepaEngineError:
    pos = facts.position
    collectable = pos.collectable_cents
    if asked.amount_cents > collectable:
        return _too_much(facts, asked.amount_cents, collectable, "amount")
    return Admitted(Pays.BALANCE, (), asked.amount_cents)


def _too_much(facts: AccountFacts, cents: int, collectable: int, field: str) -> errors.SepaEngineError:
    pos = facts.position
    detail = (
        f"due {money.format_cents(max(pos.balance_due_cents, 0))}, "
        f"under dispute {money.format_cents(pos.held_cents)}, "
        f"already requested {money.format_cents(pos.in_flight_cents)}"
    )
    if pos.balance_due_cents <= 0:
        return errors.NothingDue(
            field, money.format_cents(cents),
            f"is more than account {facts.reference} owes: nothing is due ({detail})",
            reason_code=REASON_TOO_MUCH,
        )
    # The cause without which the debit would pass names the reason code; money already
    # requested first, since a second debit of the same money is the likelier mistake.
    due = max(pos.balance_due_cents, 0)
    if pos.in_flight_cents and cents <= due - pos.held_cents:
        reason = REASON_IN_FLIGHT
        rule = f"would collect money already requested: {money.format_cents(collectable)} is collectable ({detail})"
    elif pos.held_cents and cents <= due - pos.in_flight_cents:
        reason = REASON_DISPUTED
        rule = f"would collect money under dispute: {money.format_cents(collectable)} is collectable ({detail})"
    else:
        reason = REASON_TOO_MUCH
        rule = f"exceeds the collectable balance of {money.format_cents(collectable)} ({detail})"
    return errors.AmountExceedsBalance(field, money.format_cents(cents), rule, reason_code=reason)


def _invoices(facts: AccountFacts, asked: DebitAsked) -> Admitted | errors.SepaEngineError:
    if not asked.invoices:
        return errors.InvalidFormat("invoices", None, "must name at least one invoice")
    seen: set[str] = set()
    payable: list[tuple[int, int]] = []
    for number in asked.invoices:
        if number in seen:
            return errors.InvalidFormat("invoices", number, "is named twice")
        seen.add(number)
        invoice = facts.invoices.get(number)
        if invoice is None:
            return errors.NotFound("invoices", number, f"is not an invoice of account {facts.reference}")
        if invoice.disputed:
            return errors.InvoiceNotPayable(
                "invoices", number, "is under dispute: it is not collected until the dispute ends",
                reason_code=REASON_DISPUTED,
            )
        if invoice.open_cents <= 0:
            return errors.InvoiceNotPayable("invoices", number, "is already paid", reason_code=REASON_TOO_MUCH)
        left = invoice.open_cents - invoice.in_flight_cents
        if left <= 0:
            return errors.InvoiceNotPayable(
                "invoices", number, "is already being collected by a debit in progress", reason_code=REASON_IN_FLIGHT
            )
        payable.append((invoice.entry_id, left))
    total = sum(cents for _, cents in payable)
    if asked.amount_cents > total:
        return errors.AmountExceedsBalance(
            "amount", money.format_cents(asked.amount_cents),
            f"is more than the {money.format_cents(total)} the named invoices still owe", reason_code=REASON_TOO_MUCH,
        )
    selection = _take(payable, asked.amount_cents)
    return Admitted(Pays.INVOICES, selection, asked.amount_cents)


def _take(payable: Sequence[tuple[int, int]], cents: int) -> tuple[tuple[int, int], ...]:
    """``cents`` spread over the invoices in the order named, each up to what it owes."""
    chosen: list[tuple[int, int]] = []
    left = cents
    for entry_id, owed in payable:
        if left == 0:
            break
        take = min(owed, left)
        chosen.append((entry_id, take))
        left -= take
    return tuple(chosen)


def after_admission(facts: AccountFacts, admitted: Admitted) -> AccountFacts:
    """The facts once ``admitted`` is stored: the next debit of the same batch sees it in flight."""
    pos = facts.position
    invoices = dict(facts.invoices)
    if admitted.selection:
        by_id = {invoice.entry_id: (number, invoice) for number, invoice in invoices.items()}
        for entry_id, cents in admitted.selection:
            number, invoice = by_id[entry_id]
            invoices[number] = InvoiceFacts(
                invoice.entry_id, invoice.open_cents, invoice.disputed, invoice.in_flight_cents + cents
            )
    return AccountFacts(
        facts.reference, facts.mode, facts.current_mandate_id,
        Position(pos.balance_due_cents, pos.held_cents, pos.in_flight_cents + admitted.amount_cents),
        invoices,
    )


# --- a dispute opened on money a pending debit would take ----------------------------------
@dataclass(frozen=True, slots=True)
class PendingDebit:
    """A debit not yet in a file, as the dispute rule needs it."""

    id: int
    amount_cents: int
    pays: Pays | None
    selected: frozenset[int] = frozenset()


def withdrawn_by_dispute(facts: AccountFacts, disputed_ids: frozenset[int], pending: Sequence[PendingDebit]) -> list[int]:
    """The pending debits to cancel once invoices are put under dispute: money under dispute
    is never put in a file.

    A debit that names a disputed invoice goes; then, while the debits still waiting would
    take more than the account owes outside the dispute, the newest debits that pay the
    balance go too. A payment on account names no invoice and stays.
    """
    gone = [debit.id for debit in pending if debit.selected & disputed_ids]
    pos = facts.position
    excess = pos.in_flight_cents - sum(d.amount_cents for d in pending if d.id in gone) - (
        max(pos.balance_due_cents, 0) - pos.held_cents
    )
    for debit in sorted(pending, key=lambda d: d.id, reverse=True):
        if excess <= 0:
            break
        if debit.id in gone or debit.pays not in (Pays.BALANCE, None):
            continue
        gone.append(debit.id)
        excess -= debit.amount_cents
    return sorted(gone)


def withdrawn_by_credit(facts: AccountFacts, pending: Sequence[PendingDebit]) -> list[int]:
    """The pending debits to cancel once a credit note lowered what is due: none takes more
    than is due. A debit naming an invoice the credit note left owing less than debits ask of
    it goes; then, while the debits still waiting would take more than the account owes
    outside disputes, the newest ones go, balance debits first. Debits already at the bank
    are not pending: the overpayment shows as a credit on the statement."""
    over = frozenset(
        invoice.entry_id for invoice in facts.invoices.values()
        if invoice.in_flight_cents > max(invoice.open_cents, 0)
    )
    gone = withdrawn_by_dispute(facts, over, pending)
    pos = facts.position
    excess = pos.in_flight_cents - sum(d.amount_cents for d in pending if d.id in gone) - (
        max(pos.balance_due_cents, 0) - pos.held_cents
    )
    for debit in sorted(pending, key=lambda d: d.id, reverse=True):
        if excess <= 0:
            break
        if debit.id in gone or debit.pays is not Pays.INVOICES:
            continue
        gone.append(debit.id)
        excess -= debit.amount_cents
    return sorted(gone)
