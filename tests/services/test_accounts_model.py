"""Proof by a model (issue 12): random sequences of what creditors, customers and the bank
do to two creditors' accounts, with the account invariants checked after every step.

Each example gets two creditors of its own in the test's ledger (one on demand, one
automatic), so examples never see each other. ``make test`` runs 4 sequences of 20 steps (8 took
20 s of the SQLite suite and 58 s of the PostgreSQL one under load); ``make fuzz``
(SEPA_ENGINE_MODEL_EXAMPLES) runs 300 of 50.

Invariants, after every step, for each account:
- the balance equals invoices + fees - credit notes - payments + returns, as the model counts them;
- the collectable amount is never negative and never includes disputed or requested money;
- the statement's last running balance equals the balance;
- no debit is booked twice, and a debit goes into at most one file;
- when a file is made, no debit in it takes money under dispute.

Left out: the real collection run (a "file" here marks the pending debits submitted and books them, as
the run does when it publishes; the run has its own tests).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections import defaultdict

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from stdnum.eu import at_02

from sepa_engine import errors
from sepa_engine.db.models import DebitRequest, LedgerEntry, RequestInvoice
from sepa_engine.db.repositories import accounts as accounts_repo
from sepa_engine.db.session import Database
from sepa_engine.domain.accounts import DisputeStatus
from sepa_engine.services import (
    account_changes,
    accounts,
    debit_gate,
    disputes,
    on_demand,
    registry,
    schedule,
    statements,
)
from sepa_engine.services.account_inputs import (
    DisputeInput,
    DisputeTransitionInput,
    ESignedMandateInput,
    ModeChangeInput,
    PayNowInput,
)
from sepa_engine.services.inputs import AddressInput, CreditorInput, DebitRequestInput, DebtorAccountInput, MandateInput
from tests import accounts_world as world

EXAMPLES = int(os.environ.get("SEPA_ENGINE_MODEL_EXAMPLES", "4"))
STEPS = int(os.environ.get("SEPA_ENGINE_MODEL_STEPS", "20"))
_machines = itertools.count(1)
CLOCK = world.clock()
ON_DEMAND, AUTOMATIC = "a", "b"
cents_st = st.integers(min_value=1, max_value=50_000)


def euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class AccountsModel(RuleBasedStateMachine):
    db: Database

    def __init__(self) -> None:
        super().__init__()
        self.n = next(_machines)
        self.keys = itertools.count(1)
        self.codes = {side: f"m{self.n}-{side}" for side in (ON_DEMAND, AUTOMATIC)}
        self.mandate = {ON_DEMAND: f"RUM-M{self.n}-A", AUTOMATIC: f"RUM-M{self.n}-B2"}
        # What the model expects the balance to be, from what it did.
        self.expected: dict[str, int] = defaultdict(int)
        self.invoices: dict[str, list[tuple[str, int]]] = defaultdict(list)
        self.open_disputes: dict[str, list[tuple[int, int]]] = defaultdict(list)  # (dispute id, cents)
        self.in_files: dict[str, list[int]] = defaultdict(list)
        self.returned: set[int] = set()
        self.newest_checked = 0

    def key(self) -> str:
        return f"k{next(self.keys)}"

    @initialize()
    def setup(self) -> None:
        with self.db.transaction() as s:
            for side, code in self.codes.items():
                number = f"{self.n:06d}"[-6:]
                identifier = "FR" + at_02.calc_check_digits(f"FR00Z{side.upper()}Z{number}") + f"Z{side.upper()}Z{number}"
                registry.register_creditor(
                    s, CreditorInput(code=code, name=f"Model {code}", creditor_identifier=identifier,
                                     iban="FR7630006000011234567890189", address=AddressInput(country="FR", town="Paris")),
                    idempotency_key=f"c-{code}", clock=CLOCK,
                )
                registry.register_debtor_account(s, code, DebtorAccountInput(reference="ACC", name="Client Modele"),
                                                 idempotency_key="acc", clock=CLOCK)
                registry.register_mandate(
                    s, code, MandateInput(reference=f"RUM-M{self.n}-{side.upper()}", debtor_account="ACC",
                                          signed_on=dt.date(2025, 1, 15), iban=world.DEBTOR_IBAN),
                    idempotency_key="m", clock=CLOCK,
                )
            account_changes.set_collection_mode(
                s, self.codes[AUTOMATIC], "ACC",
                ModeChangeInput(mode="automatic", frequency="monthly", day=7, mandate=ESignedMandateInput(
                    reference=self.mandate[AUTOMATIC], signed_at=world.NOW - dt.timedelta(hours=1),
                    iban=world.NEW_IBAN, signer_name="Client Modele", evidence_id=f"ev-{self.n}")),
                actor="portal", idempotency_key="auto", clock=CLOCK,
            )

    # --- what creditors record ------------------------------------------------------------
    @rule(side=st.sampled_from([ON_DEMAND, AUTOMATIC]), cents=cents_st)
    def invoice(self, side: str, cents: int) -> None:
        number = f"F{next(self.keys)}"
        world.entry(self.db, number, euros(cents), creditor_code=self.codes[side], reference="ACC")
        self.invoices[side].append((number, cents))
        self.expected[side] += cents

    @rule(side=st.sampled_from([ON_DEMAND, AUTOMATIC]), cents=st.integers(min_value=1, max_value=5_000))
    def credit_note(self, side: str, cents: int) -> None:
        # Pending debits that would now take more than is due are cancelled (issue 12): the
        # file check below proves no debit in a file takes more than is due.
        world.entry(self.db, f"AV{next(self.keys)}", euros(cents), kind="credit_note", creditor_code=self.codes[side],
                    reference="ACC")
        self.expected[side] -= cents

    @precondition(lambda self: any(self.invoices.values()))
    @rule(side=st.sampled_from([ON_DEMAND, AUTOMATIC]), pick=st.integers(min_value=0))
    def open_dispute(self, side: str, pick: int) -> None:
        if not self.invoices[side]:
            return
        number, cents = self.invoices[side][pick % len(self.invoices[side])]
        try:
            with self.db.transaction() as s:
                view = disputes.open_dispute(s, self.codes[side], "ACC", DisputeInput.of("model", number),
                                             actor="portal", idempotency_key=self.key(), clock=CLOCK)
        except errors.DisputeError:
            return  # already under dispute
        self.open_disputes[side].append((view.id, cents))

    @precondition(lambda self: any(self.open_disputes.values()))
    @rule(side=st.sampled_from([ON_DEMAND, AUTOMATIC]), accept=st.booleans())
    def settle_dispute(self, side: str, accept: bool) -> None:
        if not self.open_disputes[side]:
            return
        dispute_id, cents = self.open_disputes[side].pop(0)
        status = DisputeStatus.ACCEPTED if accept else DisputeStatus.REJECTED
        with self.db.transaction() as s:
            disputes.transition_dispute(s, self.codes[side], dispute_id, DisputeTransitionInput(status=status.value),
                                        actor="staff:model", idempotency_key=self.key(), clock=CLOCK)
        if accept:
            self.expected[side] -= cents  # its credit note

    # --- debits -----------------------------------------------------------------------------
    @rule(cents=st.none() | cents_st)
    def pay_now(self, cents: int | None) -> None:
        try:
            with self.db.transaction() as s:
                on_demand.pay_now(s, self.codes[ON_DEMAND], "ACC",
                                  PayNowInput(amount=euros(cents) if cents is not None else None,
                                              invoices=None if cents is not None else self._open_numbers()),
                                  idempotency_key=self.key(), clock=CLOCK)
        except errors.SepaEngineError:
            pass  # refused: nothing written (the invariants check it)

    def _open_numbers(self) -> tuple[str, ...] | None:
        numbers = tuple(number for number, _ in self.invoices[ON_DEMAND][-2:])
        return numbers or None

    @rule(side=st.sampled_from([ON_DEMAND, AUTOMATIC]), cents=cents_st,
          form=st.sampled_from(["balance", "invoices", "on_account", "carried"]))
    def raw_request(self, side: str, cents: int, form: str) -> None:
        extra: dict[str, object] = {}
        carried = None
        if form == "invoices":
            extra["invoices"] = [number for number, _ in self.invoices[side][-1:]] or ["NONE"]
        elif form == "on_account":
            extra["on_account"] = True
        elif form == "carried":
            carried = f"Q{next(self.keys)}"
            extra.update(invoice_number=carried, invoice_issue_date=dt.date(2026, 11, 1))
        try:
            with self.db.transaction() as s:
                registry.enqueue_request(
                    s, self.codes[side], DebitRequestInput(mandate=self.mandate[side], amount=euros(cents), **extra),
                    idempotency_key=self.key(), clock=CLOCK,
                )
        except errors.WrongCollectionMode:
            assert side == AUTOMATIC
            return
        except errors.SepaEngineError:
            assert side == ON_DEMAND, "an automatic account refuses by its mode first"
            return
        assert side == ON_DEMAND, "an automatic account took a raw request"
        if carried is not None:
            self.invoices[side].append((carried, cents))
            self.expected[side] += cents

    @rule(day=st.sampled_from([dt.date(2026, 11, 23), dt.date(2026, 11, 30), dt.date(2026, 12, 24)]))
    def schedule_run(self, day: dt.date) -> None:
        with self.db.transaction() as s:
            schedule.schedule_automatic(s, day, CLOCK, creditor_code=self.codes[AUTOMATIC])

    @rule(side=st.sampled_from([ON_DEMAND, AUTOMATIC]))
    def collect(self, side: str) -> None:
        """A file: every pending debit of the creditor goes to the bank and is booked."""
        code = self.codes[side]
        with self.db.transaction() as s:
            creditor_id = registry.repo.creditor_by_code(s, code).id  # type: ignore[union-attr]
            pending = s.scalars(select(DebitRequest).where(DebitRequest.creditor_id == creditor_id,
                                                           DebitRequest.status == "pending")).all()
            self._no_disputed_money_in(s, side, pending)
            for row in pending:
                assert row.id not in self.in_files[side], "a debit went into two files"
                row.status, row.collection_date = "submitted", row.requested_date
                self.in_files[side].append(row.id)
                self.expected[side] -= row.amount_cents
            s.flush()
            accounts.book_submitted_payments(s, CLOCK, creditor_code=code)

    def _no_disputed_money_in(self, s, side: str, pending) -> None:  # type: ignore[no-untyped-def]
        if not pending:
            return
        ledger_position = accounts.position(s, self.codes[side], "ACC")
        ids = [row.id for row in pending]
        selected = {row[0] for row in s.execute(select(RequestInvoice.entry_id).where(
            RequestInvoice.debit_request_id.in_(ids)))}
        held_numbers = {number for d in disputes.list_disputes(s, self.codes[side], account_reference="ACC")
                        if DisputeStatus(d.status).holds_invoices() for number, _ in d.invoices}
        held_ids = {row[0] for row in s.execute(select(LedgerEntry.id).where(
            LedgerEntry.document_number.in_(held_numbers), LedgerEntry.kind == "invoice",
            LedgerEntry.creditor_id == pending[0].creditor_id))} if held_numbers else set()
        assert not selected & held_ids, "a debit naming a disputed invoice went into a file"
        on_account = sum(row.amount_cents for row in pending if row.pays == "on_account")
        taken = sum(row.amount_cents for row in pending) - on_account
        # Nothing is collectable when the disputed invoices hold more than is due (a disputed
        # invoice already paid, then a credit note): then no file may take any money, but a
        # file taking none breaks nothing (the check once read 0 <= -1 there).
        collectable = max(max(ledger_position.balance_due_cents, 0) - ledger_position.held_cents, 0)
        assert taken <= collectable, "a file took money under dispute"

    @precondition(lambda self: any(self.in_files.values()))
    @rule(side=st.sampled_from([ON_DEMAND, AUTOMATIC]), pick=st.integers(min_value=0), reject=st.booleans())
    def bank_return(self, side: str, pick: int, reject: bool) -> None:
        candidates = [i for i in self.in_files[side] if i not in self.returned]
        if not candidates:
            return
        request_id = candidates[pick % len(candidates)]
        with self.db.transaction() as s:
            row = s.get_one(DebitRequest, request_id)
            row.status = "rejected" if reject else "returned"
            accounts.record_returned_payment(s, self.codes[side], row.end_to_end_id, returned_on=dt.date(2026, 12, 10),
                                             reason_code="AM04" if reject else "MD06", idempotency_key=self.key(),
                                             clock=CLOCK)
            self.expected[side] += row.amount_cents
        self.returned.add(request_id)

    # --- invariants -------------------------------------------------------------------------
    @invariant()
    def accounts_hold_together(self) -> None:
        with self.db.reader() as s:
            for side, code in self.codes.items():
                if registry.repo.creditor_by_code(s, code) is None:
                    return  # before setup
                pos = accounts.position(s, code, "ACC")
                assert pos.balance_due_cents == self.expected[side], "balance != invoices - credits - payments + returns"
                assert pos.collectable_cents >= 0
                assert pos.collectable_cents == max(pos.balance_due_cents - pos.held_cents - pos.in_flight_cents, 0)
                assert pos.collectable_cents <= max(pos.balance_due_cents - pos.held_cents, 0)
                # The gate sums a balance debit's position in the database unless an invoice is
                # under dispute: the same position as the replayed ledger, whatever happened.
                creditor_id = registry.repo.creditor_by_code(s, code).id
                account_id = registry.repo.debtor_account_by_reference(s, creditor_id, "ACC").id
                summed = accounts_repo.gate_reads(s, creditor_id, {account_id}, positions={account_id})
                replayed = debit_gate._facts(accounts_repo.gate_reads(s, creditor_id, {account_id}))[account_id]
                if account_id in summed.positions:
                    assert debit_gate._facts(summed)[account_id].position == replayed.position
                else:
                    assert any(DisputeStatus(line.status).holds_invoices() for line in summed.dispute_lines[account_id])
                self._newest_invoice_owes_from_the_sums_what_the_replay_says(s, creditor_id, account_id, replayed)
                full = statements.statement(s, code, "ACC", clock=CLOCK, all_entries=True)
                assert full.closing_balance_cents == pos.balance_due_cents
                if full.lines:
                    assert full.lines[-1].balance_cents == pos.balance_due_cents
                twice = s.execute(
                    select(LedgerEntry.debit_request_id, func.count()).where(LedgerEntry.kind == "payment",
                                                                            LedgerEntry.debit_request_id.is_not(None))
                    .group_by(LedgerEntry.debit_request_id).having(func.count() > 1)
                ).all()
                assert not twice, f"debits booked twice: {twice}"

    def _newest_invoice_owes_from_the_sums_what_the_replay_says(self, s, creditor_id, account_id, replayed) -> None:  # type: ignore[no-untyped-def]
        """The gate's shortcut for an invoice a request carries (booked just now, named by no
        credit), tried on the account's newest invoice whenever nothing names it yet."""
        whole = accounts_repo.gate_reads(s, creditor_id, {account_id})
        items = [e for e in whole.entries[account_id] if e.kind == "invoice"]
        if not items:
            return
        newest = max(items, key=lambda e: (e.issue_date, e.id))
        named = {row.entry_id for row in whole.selections[account_id]}
        named |= {line.entry_id for line in whole.dispute_lines[account_id]}
        named |= {e.applies_to_id for e in whole.entries[account_id] if e.applies_to_id is not None}
        if newest.id in named:
            return
        sums = accounts_repo.gate_reads(s, creditor_id, {account_id}, positions={account_id},
                                        newest={account_id: [(newest.id, newest.issue_date)]})
        if account_id not in sums.unmatched_returns:
            # Read whole instead: only when a dispute holds an invoice (the newest comes last).
            assert any(DisputeStatus(line.status).holds_invoices() for line in whole.dispute_lines[account_id])
            return
        booked = debit_gate.BookedInvoice(newest.document_number, account_id, newest.issue_date, newest.amount_cents, newest.id)
        facts = debit_gate._facts(sums, newest={account_id: [booked]})[account_id]
        assert facts.invoices[newest.document_number].open_cents == replayed.invoices[newest.document_number].open_cents
        self.newest_checked += 1


def test_the_account_invariants_hold_for_random_sequences_of_everything_that_happens(db: Database) -> None:
    AccountsModel.db = db
    run_state_machine_as_test(
        AccountsModel,
        settings=settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )
