"""Retries (issue 14 items 3 and 5): a re-presentation is a new collection, pre-notified with
the creditor's agreed notice and exported with the schedule's notices; it goes out with the
right sequence type, and an OOFF or FNAL collection rejected before settlement goes again."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from sepa_engine.clock import FixedClock
from sepa_engine.db.models import Creditor, DebitRequest, Mandate, Prenotification
from sepa_engine.db.repositories import registry as registry_repo
from sepa_engine.db.repositories import returns as returns_repo
from sepa_engine.domain import return_decisions as decisions
from sepa_engine.ids import SequentialIds
from sepa_engine.services import retries, schedule
from sepa_engine.services.collection import run_collection
from tests import ledger
from tests.services.test_reconciliation import LATER, NOW, reconcile
from tests.services.test_reconciliation_chunks import _message_id, _rejects

# LATER is Monday 7 December 2026 in Paris: 14 calendar days on is Monday 21 December.
LATER_DAY = dt.date(2026, 12, 7)
AFTER_NOTICE = dt.date(2026, 12, 21)
# A run on Friday 18 December collects for Monday 21 December (one day of lead).
RETRY_RUN = FixedClock(dt.datetime(2026, 12, 18, 8, 0, tzinfo=dt.UTC))


def _collected(db, settings, **mandate) -> tuple[int, DebitRequest]:
    """One debit collected on a fresh mandate; its creditor id and the debit."""
    creditor = ledger.creditor(db)
    final = mandate.pop("final", False)
    ledger.request(db, creditor, ledger.mandate(db, creditor, **mandate), 12_345, final=final)
    run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN"))
    with db.reader() as s:
        (debit,) = s.scalars(select(DebitRequest))
    return creditor, debit


def _reject(db, tmp_path, debit, code="AM04"):
    return reconcile(db, _rejects(tmp_path / f"reject-{debit.id}.xml", _message_id(db), [(debit, code)]))


def _retry(db, debit) -> DebitRequest:
    with db.reader() as s:
        return s.scalars(select(DebitRequest).where(DebitRequest.retry_of_id == debit.id)).one()


def test_a_retry_is_pre_notified_with_the_agreed_notice_and_asks_for_no_earlier_date(db, settings, tmp_path):
    # Issue 14 item 3: "Retries go out on the next TARGET day without any pre-notification."
    _creditor, debit = _collected(db, settings)

    report = _reject(db, tmp_path, debit)

    assert report.retries == 1
    retry = _retry(db, debit)
    assert retry.requested_date == AFTER_NOTICE
    with db.reader() as s:
        (notice,) = s.scalars(select(Prenotification))
        assert (notice.kind, notice.debit_request_id, notice.collection_date, notice.issued_on, notice.amount_cents) == (
            "retry", retry.id, AFTER_NOTICE, LATER_DAY, 12_345
        )
        assert (notice.slot_id, notice.period) == (None, None)
        # What the notice says of the mandate comes from the rows the reconciliation read.
        mandate = s.get(Mandate, debit.mandate_id)
        assert (notice.debtor_account_id, notice.mandate_reference) == (mandate.debtor_account_id, mandate.reference)
        (record,) = schedule.prenotifications(s, "martin")
    assert (record["kind"], record["end_to_end_id"], record["collection_date"], record["period"]) == (
        "retry", retry.end_to_end_id, AFTER_NOTICE.isoformat(), None
    )
    csv = schedule.prenotifications_csv((record,))
    assert csv.splitlines()[0].endswith(",kind") and csv.splitlines()[1].endswith(",retry")


def test_a_creditor_with_a_shorter_agreed_notice_gets_an_earlier_retry(db, settings, tmp_path):
    creditor, debit = _collected(db, settings)
    with db.transaction() as s:
        s.get(Creditor, creditor).prenotification_days = 3

    _reject(db, tmp_path, debit)

    assert _retry(db, debit).requested_date == dt.date(2026, 12, 10)


def test_a_retry_replayed_by_another_file_is_not_notified_twice(db, settings, tmp_path):
    _creditor, debit = _collected(db, settings)
    _reject(db, tmp_path, debit)

    again = reconcile(db, _rejects(tmp_path / "again.xml", _message_id(db), [(debit, "AM04")]))

    assert again.already_applied == 1
    with db.reader() as s:
        assert len(s.scalars(select(Prenotification)).all()) == 1


def test_a_retry_whose_insert_lost_to_another_writer_is_not_notified_twice(db, settings, tmp_path, monkeypatch):
    # The chunked path looks up no notice for the retries it inserted itself. One whose key it
    # read as free and found taken when inserting (another writer stored it meanwhile) comes back
    # by the one-by-one path, and the notice that writer issued must be seen.
    _creditor, debit = _collected(db, settings)
    _reject(db, tmp_path, debit)  # the retry and its notice, as the other writer left them
    stored = _retry(db, debit)
    monkeypatch.setattr(registry_repo, "requests_by_idempotency_keys", lambda *_args: {})

    with db.transaction() as s:
        (row,) = returns_repo.request_rows_by_end_to_end_ids(s, {debit.end_to_end_id}).values()
        mandate = returns_repo.mandate_rows_for_update(s, {row.mandate_id})[row.mandate_id]
        retry = retries.DecidedRetry(
            "martin", mandate, row, decisions.Retry(attempt=row.attempt + 1, on=stored.requested_date, notified_on=LATER_DAY)
        )
        retries.schedule_retries(s, [retry], clock=LATER)

    assert retry.id == stored.id
    with db.reader() as s:
        assert [n.debit_request_id for n in s.scalars(select(Prenotification))] == [stored.id]
        assert len(s.scalars(select(DebitRequest).where(DebitRequest.retry_of_id == debit.id)).all()) == 1


@pytest.mark.parametrize(("policy", "sequence"), [("frst", "FRST"), ("rcur", "RCUR")])
def test_the_retry_of_a_rejected_first_collection_is_first_again_or_rcur_as_the_creditors_bank_wants(
    db, settings, tmp_path, policy, sequence
):
    creditor, debit = _collected(db, settings)
    assert debit.sequence_type == "FRST"
    with db.transaction() as s:
        s.get(Creditor, creditor).first_collection_policy = policy

    _reject(db, tmp_path, debit)
    run_collection(db, settings, RETRY_RUN, SequentialIds("RETRY"))

    retry = _retry(db, debit)
    assert (retry.status, retry.sequence_type, retry.collection_date) == ("submitted", sequence, AFTER_NOTICE)


def test_a_one_off_collection_rejected_before_settlement_is_collected_again(db, settings, tmp_path):
    # Issue 14 item 5: the engine refused its own retry with MD01.
    _creditor, debit = _collected(db, settings, kind="one_off")
    assert debit.sequence_type == "OOFF"

    _reject(db, tmp_path, debit)
    run_collection(db, settings, RETRY_RUN, SequentialIds("RETRY"))

    retry = _retry(db, debit)
    assert (retry.status, retry.sequence_type, retry.reason_code) == ("submitted", "OOFF", None)


def test_a_final_collection_rejected_before_settlement_is_collected_again_as_final(db, settings, tmp_path):
    _creditor, debit = _collected(db, settings, final=True)
    with db.transaction() as s:
        # A mandate collected before, whose last collection this is.
        s.get(DebitRequest, debit.id).sequence_type = "FNAL"

    _reject(db, tmp_path, debit)
    run_collection(db, settings, RETRY_RUN, SequentialIds("RETRY"))

    retry = _retry(db, debit)
    assert (retry.status, retry.final, retry.reason_code) == ("submitted", True, None)
