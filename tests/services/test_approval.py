"""Files of creditors that require approval: held in outbox/pending until ``batch approve``."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
import structlog.testing
from sqlalchemy import select, update

from sepa_engine import errors
from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import Batch, Creditor, DebitRequest, Mandate
from sepa_engine.db.session import Database
from sepa_engine.ids import SequentialIds
from sepa_engine.services import disputes, on_demand, registry, views
from sepa_engine.services.account_inputs import DisputeInput, PayNowInput
from sepa_engine.services.approval import (
    HeldDebitsChanged,
    HeldFileChanged,
    NotAwaitingApproval,
    approve_batch,
    withdraw_batch,
)
from sepa_engine.services.collection import run_collection
from sepa_engine.services.inputs import MandateInput
from tests import accounts_world as world
from tests import ledger
from tests.concurrency import at_once

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)
LATER = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.timezone.utc)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox", chunk_size=5)


def collect(db, settings, prefix="RUN", now=NOW):
    return run_collection(db, settings, FixedClock(now), SequentialIds(prefix))


def approve(db, settings, batch_id, actor="marie", **kwargs):
    return approve_batch(db, settings, FixedClock(LATER), batch_id, actor=actor, **kwargs)


def _statuses(db) -> dict[str, int]:
    found: dict[str, int] = {}
    with db.reader() as s:
        for value in s.scalars(select(DebitRequest.status)):
            found[value] = found.get(value, 0) + 1
    return found


def _batch(db, batch_id) -> Batch:
    with db.reader() as s:
        row = s.get(Batch, batch_id)
        s.expunge(row)
        return row


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def held(db, settings):
    """One creditor requiring approval, one file of two debits held in pending."""
    creditor = ledger.creditor(db, requires_approval=True)
    mandate = ledger.mandate(db, creditor)
    ledger.request(db, creditor, mandate, 12_000)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 3_000)
    (outcome,) = collect(db, settings).files
    return outcome, mandate


def test_file_of_a_creditor_requiring_approval_waits_in_pending_with_its_summaries(db, settings, held):
    outcome, mandate = held
    pending = settings.outbox_dir / "pending" / "martin"
    assert outcome.awaiting_approval and outcome.path.parent == pending
    stem = outcome.path.stem
    assert _names(pending) == sorted([f"{stem}.xml", f"{stem}.summary.txt", f"{stem}.html"])
    assert not (settings.outbox_dir / "martin").exists()
    for name in _names(pending):
        assert stat.S_IMODE((pending / name).stat().st_mode) == 0o600
    batch = _batch(db, outcome.batch_id)
    assert (batch.status, batch.published_at, batch.approved_by) == ("awaiting_approval", None, None)
    # Still claimed, so never collected again, but not at the bank: history unchanged.
    assert _statuses(db) == {"assigned": 2}
    with db.reader() as s:
        assert s.get(Mandate, mandate).first_collected_on is None
    assert collect(db, settings, prefix="AGAIN").nothing_to_do


def test_approval_moves_the_file_and_summaries_and_records_who_and_when(db, settings, held):
    outcome, mandate = held
    approval = approve(db, settings, outcome.batch_id)

    released = settings.outbox_dir / "martin"
    stem = outcome.path.stem
    assert approval.path == released / f"{stem}.xml"
    assert _names(released) == sorted([f"{stem}.xml", f"{stem}.summary.txt", f"{stem}.html"])
    assert _names(settings.outbox_dir / "pending" / "martin") == []
    batch = _batch(db, outcome.batch_id)
    assert batch.status == "published" and batch.approved_by == "marie"
    assert batch.approved_at == LATER and batch.published_at == LATER
    assert batch.path == str(approval.path)
    assert _statuses(db) == {"submitted": 2}
    with db.reader() as s:
        assert s.get(Mandate, mandate).first_collected_on == dt.date(2026, 11, 24)


def test_approval_logs_one_batch_approved_event(db, settings, held):
    outcome, _ = held
    with structlog.testing.capture_logs() as logged:
        approve(db, settings, outcome.batch_id)
    (event,) = [e for e in logged if e["event"] == "batch.approved"]
    assert (event["creditor"], event["batch_id"], event["message_id"]) == ("martin", outcome.batch_id, outcome.message_id)
    assert (event["file"], event["approved_by"]) == (outcome.path.name, "marie")


def test_approving_twice_is_refused_naming_who_approved(db, settings, held):
    outcome, _ = held
    approve(db, settings, outcome.batch_id)
    with pytest.raises(NotAwaitingApproval) as raised:
        approve(db, settings, outcome.batch_id, actor="paul")
    assert raised.value.field == "batch.status"
    assert "already approved by marie" in str(raised.value)
    assert _batch(db, outcome.batch_id).approved_by == "marie"


def test_batch_not_awaiting_approval_cannot_be_approved(db, settings):
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor))
    (outcome,) = collect(db, settings).files
    with pytest.raises(NotAwaitingApproval) as raised:
        approve(db, settings, outcome.batch_id)
    assert "only a batch awaiting_approval" in str(raised.value)
    assert _batch(db, outcome.batch_id).approved_by is None


def test_unknown_batch_cannot_be_approved(db, settings):
    with pytest.raises(errors.NotFound) as raised:
        approve(db, settings, 999)
    assert str(raised.value) == "batch 999 does not exist"


def test_approval_needs_a_name(db, settings, held):
    outcome, _ = held
    with pytest.raises(errors.InvalidFormat) as raised:
        approve(db, settings, outcome.batch_id, actor="  ")
    assert raised.value.field == "approved_by"


class Crash(Exception):
    pass


def _crash_at(name: str):
    def checkpoint(reached: str) -> None:
        if reached == name:
            raise Crash(name)
    return checkpoint


@pytest.mark.parametrize("crash_at", ["before_move", "after_move"])
def test_approval_interrupted_around_the_move_is_finished_by_approving_again(db, settings, held, crash_at):
    outcome, _ = held
    with pytest.raises(Crash):
        approve(db, settings, outcome.batch_id, checkpoint=_crash_at(crash_at))
    assert _batch(db, outcome.batch_id).status == "awaiting_approval"
    assert _statuses(db) == {"assigned": 2}

    approval = approve(db, settings, outcome.batch_id)

    assert approval.path.exists() and not outcome.path.exists()
    assert _batch(db, outcome.batch_id).status == "published"
    assert _statuses(db) == {"submitted": 2}
    assert len(list(settings.outbox_dir.rglob("*.xml"))) == 1
    assert not list(settings.outbox_dir.rglob("*.part"))


def test_approval_interrupted_between_link_and_unlink_is_finished_by_approving_again(db, settings, held):
    outcome, _ = held
    released = settings.outbox_dir / "martin" / outcome.path.name
    released.parent.mkdir(mode=0o700)
    released.hardlink_to(outcome.path)  # the link of the move happened, its unlink did not

    approve(db, settings, outcome.batch_id)

    assert released.exists() and not outcome.path.exists()
    assert _batch(db, outcome.batch_id).status == "published"


def test_a_held_file_changed_since_it_was_written_is_not_released_to_the_bank(db, settings, held):
    # Edited in pending (by hand, or saved again by an editor while being reviewed), the file
    # was released as it stood: the bank would collect 210.00 where the ledger recorded
    # 120.00 and booked the payments of the written file.
    outcome, _ = held
    text = outcome.path.read_text()
    assert "<InstdAmt Ccy=\"EUR\">120.00</InstdAmt>" in text
    outcome.path.write_text(text.replace(">120.00<", ">210.00<"))

    with pytest.raises(HeldFileChanged, match="sha256 differs"):
        approve(db, settings, outcome.batch_id)

    assert outcome.path.exists() and _names(settings.outbox_dir / "martin") == []
    assert _batch(db, outcome.batch_id).status == "awaiting_approval"
    assert _statuses(db) == {"assigned": 2}


def test_a_held_file_with_a_debit_whose_mandate_was_revoked_since_is_not_released(db, settings, held):
    # Revoked while its debit waited in a held file (revocation cancels pending requests only),
    # the mandate's debit went to the bank on approval: a collection without a mandate, which
    # the debtor may have refunded for 13 months (MD01).
    outcome, mandate = held
    with db.reader() as s:
        reference = s.get(Mandate, mandate).reference
    with db.transaction() as s:
        registry.revoke_mandate(s, "martin", reference, reason="tenant left", clock=FixedClock(NOW))

    with pytest.raises(HeldDebitsChanged, match=r"mandate \S+ is revoked") as refused:
        approve(db, settings, outcome.batch_id)

    assert "batch withdraw" in str(refused.value)
    assert outcome.path.exists() and _names(settings.outbox_dir / "martin") == []
    assert _batch(db, outcome.batch_id).status == "awaiting_approval" and _statuses(db) == {"assigned": 2}


def test_a_held_file_with_a_debit_of_an_invoice_put_under_dispute_since_is_not_released(db, settings):
    # A dispute withdraws the pending debits of its invoices, not one already in a held file:
    # approved, the file collected an invoice under dispute.
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.entry(db, "F1", "100.00", issued=dt.date(2026, 9, 1))
    with db.transaction() as s:
        s.execute(update(Creditor).values(requires_approval=True))
        on_demand.pay_now(s, "pressimmo", "AG-1", PayNowInput(invoices=("F1",)), idempotency_key="click-1",
                          clock=world.clock())
    (outcome,) = run_collection(db, settings, world.clock(), SequentialIds("RUN")).files
    with db.transaction() as s:
        disputes.open_dispute(s, "pressimmo", "AG-1", DisputeInput.of("never ordered", "F1"), actor="portal",
                              idempotency_key="d-1", clock=world.clock())

    with pytest.raises(HeldDebitsChanged, match="pays invoice F1, under dispute"):
        approve_batch(db, settings, world.clock(), outcome.batch_id, actor="marie")

    assert _batch(db, outcome.batch_id).status == "awaiting_approval" and _statuses(db) == {"assigned": 1}


def _held_balance_debit(db, settings):  # type: ignore[no-untyped-def]
    """An account owing F1 100.00 and F2 50.00 whose customer paid the whole balance: one debit
    of 150.00, in a file held for approval."""
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.entry(db, "F1", "100.00", issued=dt.date(2026, 9, 1))
    world.entry(db, "F2", "50.00", issued=dt.date(2026, 10, 1))
    with db.transaction() as s:
        s.execute(update(Creditor).values(requires_approval=True))
        on_demand.pay_now(s, "pressimmo", "AG-1", PayNowInput(amount="150.00"), idempotency_key="click-1",
                          clock=world.clock())
    (outcome,) = run_collection(db, settings, world.clock(), SequentialIds("RUN")).files
    return outcome


def test_a_held_balance_debit_that_a_dispute_since_made_too_large_is_not_released(db, settings):
    # F1 disputed after the file was held: the 150.00 debit would take the 100.00 under dispute.
    # A pending debit would have been withdrawn by the dispute (debit_gate.withdrawn_by_dispute).
    outcome = _held_balance_debit(db, settings)
    later = world.clock(world.NOW + dt.timedelta(hours=1))
    with db.transaction() as s:
        disputes.open_dispute(s, "pressimmo", "AG-1", DisputeInput.of("never ordered", "F1"), actor="portal",
                              idempotency_key="d-1", clock=later)

    with pytest.raises(HeldDebitsChanged, match="more than the account owes outside disputes"):
        approve_batch(db, settings, later, outcome.batch_id, actor="marie")

    assert _batch(db, outcome.batch_id).status == "awaiting_approval"


def test_a_held_balance_debit_that_a_credit_note_since_made_too_large_is_not_released(db, settings):
    outcome = _held_balance_debit(db, settings)
    later = world.clock(world.NOW + dt.timedelta(hours=1))
    world.entry(db, "AV1", "30.00", kind="credit_note", applies_to="F2", at=later)

    with pytest.raises(HeldDebitsChanged, match="more than the account owes outside disputes"):
        approve_batch(db, settings, later, outcome.batch_id, actor="marie")


def test_a_held_balance_debit_still_due_is_released_whatever_happened_on_other_accounts(db, settings):
    outcome = _held_balance_debit(db, settings)
    later = world.clock(world.NOW + dt.timedelta(hours=1))
    world.account(db, "pressimmo", "AG-2")
    world.entry(db, "G1", "80.00", reference="AG-2")
    with db.transaction() as s:
        disputes.open_dispute(s, "pressimmo", "AG-2", DisputeInput.of("never ordered", "G1"), actor="portal",
                              idempotency_key="d-2", clock=later)
    world.entry(db, "F3", "20.00", at=later)  # more due on the held debit's account: still fine

    assert approve_batch(db, settings, later, outcome.batch_id, actor="marie").count == 1


def test_approval_never_overwrites_another_file_in_the_banks_folder(db, settings, held):
    outcome, _ = held
    released = settings.outbox_dir / "martin" / outcome.path.name
    released.parent.mkdir(mode=0o700)
    released.write_bytes(b"someone else's file")
    with pytest.raises(errors.CollectionError) as raised:
        approve(db, settings, outcome.batch_id)
    assert "never overwritten" in str(raised.value)
    assert released.read_bytes() == b"someone else's file" and outcome.path.exists()
    assert _batch(db, outcome.batch_id).status == "awaiting_approval"


def test_two_approvals_at_once_exactly_one_succeeds(db, settings, held, database_url):
    outcome, _ = held
    def one(actor: str):  # type: ignore[no-untyped-def]
        other = Database(database_url)
        try:
            return approve(other, settings, outcome.batch_id, actor=actor)
        finally:
            other.dispose()

    results = at_once(lambda: one("anne"), lambda: one("bruno"), timeout=30)
    approvals = [r for r in results if not isinstance(r, Exception)]
    refusals = [r for r in results if isinstance(r, NotAwaitingApproval)]
    assert len(approvals) == 1 and len(refusals) == 1, results
    assert _batch(db, outcome.batch_id).approved_by == approvals[0].approved_by
    assert _statuses(db) == {"submitted": 2}


def test_request_on_a_mandate_with_a_held_debit_waits_for_the_approval(db, settings, held):
    outcome, mandate = held
    with db.reader() as s:
        creditor = s.get(Mandate, mandate).creditor_id
    later = ledger.request(db, creditor, mandate, 500, requested_date=dt.date(2026, 11, 25))

    waiting = collect(db, settings, prefix="NEXT", now=NOW + dt.timedelta(days=1))
    assert waiting.nothing_to_do
    approve(db, settings, outcome.batch_id)
    after = collect(db, settings, prefix="THIRD", now=NOW + dt.timedelta(days=1))

    (file,) = after.files
    assert [b[1] for b in file.blocks] == ["RCUR"]  # the held FRST reached the bank first
    with db.reader() as s:
        assert s.get(DebitRequest, later).status == "assigned"


def test_run_crashed_after_linking_a_held_file_is_recovered_as_awaiting_approval(db, settings):
    creditor = ledger.creditor(db, requires_approval=True)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 4_200)
    with pytest.raises(Crash):
        run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN"), checkpoint=_crash_at("after_publish"))
    (held_file,) = (settings.outbox_dir / "pending" / "martin").glob("*.xml")
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).one() == "written"

    report = collect(db, settings, prefix="NEXT")

    (outcome,) = report.files
    assert outcome.recovered and outcome.awaiting_approval and outcome.path == held_file
    assert _batch(db, outcome.batch_id).status == "awaiting_approval"
    assert _statuses(db) == {"assigned": 1}
    approve(db, settings, outcome.batch_id)
    assert _statuses(db) == {"submitted": 1}


# --- batch withdraw: a person who reviewed a held file stops it; it never reaches the bank.
# Before, a held file could only be approved: one wrong debit in it held back every other debit
# of the file for ever (its requests stayed assigned to it), or went to the bank with it.

def withdraw(db, settings, batch_id, actor="marie", reason="debit of LOC-7 paid by transfer", **kwargs):  # type: ignore[no-untyped-def]
    return withdraw_batch(db, settings, FixedClock(LATER), batch_id, actor=actor, reason=reason, **kwargs)


def test_a_withdrawn_file_is_kept_for_audit_and_its_debits_go_back_to_the_queue(db, settings, held):
    outcome, _ = held
    withdrawal = withdraw(db, settings, outcome.batch_id)

    pending = settings.outbox_dir / "pending" / "martin"
    stem = outcome.path.stem
    assert withdrawal.path == pending / "withdrawn" / f"{stem}.xml" and withdrawal.released == 2
    assert _names(pending / "withdrawn") == sorted([f"{stem}.xml", f"{stem}.summary.txt", f"{stem}.html"])
    assert _names(pending) == ["withdrawn"] and _names(settings.outbox_dir / "martin") == []
    batch = _batch(db, outcome.batch_id)
    assert batch.status == "withdrawn" and batch.approved_by is None and batch.path == str(withdrawal.path)
    assert batch.failure == "withdrawn at review by marie: debit of LOC-7 paid by transfer"
    assert (batch.withdrawn_by, batch.withdrawn_at) == ("marie", LATER)
    document = views.batch_document(batch, "martin")  # the API's and `batch show`'s
    assert (document["status"], document["withdrawn_by"], document["withdrawn_at"]) == (
        "withdrawn", "marie", LATER.isoformat())
    assert _statuses(db) == {"pending": 2}
    # The kept review says what became of the file, and why.
    summary = (pending / "withdrawn" / f"{stem}.summary.txt").read_text()
    assert "2026-11-23T10:30:00+01:00  withdrawn at review by marie: debit of LOC-7 paid by transfer" in summary
    assert "withdrawn at review: never sent" in summary

    with pytest.raises(NotAwaitingApproval):
        approve(db, settings, outcome.batch_id)
    # The next run writes the debits again, into a new file held for approval in its turn.
    (again,) = collect(db, settings, prefix="AGAIN", now=LATER).files
    assert again.awaiting_approval and again.batch_id != outcome.batch_id
    assert _statuses(db) == {"assigned": 2}


def test_a_withdrawn_debit_whose_mandate_was_replaced_is_collected_under_the_new_one(db, settings, held):
    # The debtor changed bank while the debit waited in a held file: withdrawn, the debit went
    # back to the queue on the replaced mandate, and the next run refused it ("mandate is not
    # active (status superseded)") where a pending debit would have moved to the new mandate.
    outcome, mandate = held
    with db.reader() as s:
        old = s.get(Mandate, mandate)
        reference, account = old.reference, old.debtor_account.reference
    with db.transaction() as s:
        new = registry.register_mandate(s, "martin", MandateInput(
            reference=reference, debtor_account=account, signed_on=dt.date(2026, 11, 20),
            iban="DE62370400440532013001", supersedes=reference,
        ), idempotency_key="new-bank", clock=FixedClock(NOW))
    with pytest.raises(HeldDebitsChanged, match="is superseded"):
        approve(db, settings, outcome.batch_id)

    withdraw(db, settings, outcome.batch_id)

    with db.reader() as s:
        moved = s.scalars(select(DebitRequest).where(DebitRequest.amount_cents == 12_000)).one()
        assert (moved.status, moved.mandate_id) == ("pending", new.id)
    (again,) = collect(db, settings, prefix="AGAIN", now=LATER).files
    assert _statuses(db) == {"assigned": 2} and "DE62370400440532013001" in again.path.read_text()


def test_withdrawing_needs_a_name_and_a_reason(db, settings, held):
    outcome, _ = held
    with pytest.raises(errors.InvalidFormat, match="--by"):
        withdraw(db, settings, outcome.batch_id, actor=" ")
    with pytest.raises(errors.InvalidFormat, match="--reason"):
        withdraw(db, settings, outcome.batch_id, reason="  ")
    assert _batch(db, outcome.batch_id).status == "awaiting_approval"


def test_an_approved_file_cannot_be_withdrawn(db, settings, held):
    outcome, _ = held
    approve(db, settings, outcome.batch_id, actor="anne")
    with pytest.raises(NotAwaitingApproval, match="already approved by anne"):
        withdraw(db, settings, outcome.batch_id)
    assert _statuses(db) == {"submitted": 2}


@pytest.mark.parametrize("crash_at", ["before_move", "after_move"])
def test_a_withdrawal_interrupted_around_the_move_is_finished_by_withdrawing_again(db, settings, held, crash_at):
    outcome, _ = held
    with pytest.raises(Crash):
        withdraw(db, settings, outcome.batch_id, checkpoint=_crash_at(crash_at))
    assert _batch(db, outcome.batch_id).status == "awaiting_approval"
    assert _statuses(db) == {"assigned": 2}

    withdrawal = withdraw(db, settings, outcome.batch_id)

    assert withdrawal.path.exists() and not outcome.path.exists()
    assert _batch(db, outcome.batch_id).status == "withdrawn" and _statuses(db) == {"pending": 2}


def test_an_approval_and_a_withdrawal_at_once_exactly_one_acts(db, settings, held, database_url):
    outcome, _ = held

    def acting(act):  # type: ignore[no-untyped-def]
        def run():  # type: ignore[no-untyped-def]
            other = Database(database_url)
            try:
                return act(other, settings, outcome.batch_id)
            finally:
                other.dispose()
        return run

    results = at_once(acting(approve), acting(withdraw), timeout=30)

    acted = [r for r in results if not isinstance(r, Exception)]
    assert len(acted) == 1 and isinstance(next(r for r in results if r not in acted), NotAwaitingApproval), results
    status = _batch(db, outcome.batch_id).status
    assert (status, _statuses(db)) in (("published", {"submitted": 2}), ("withdrawn", {"pending": 2}))
    assert len(list(settings.outbox_dir.rglob("*.xml"))) == 1
