"""Reconciliation on both backends: collect -> the bank simulator answers -> reconcile."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sepa_engine import errors
from sepa_engine.banksim import simulate
from sepa_engine.clock import FixedClock
from sepa_engine.db.models import Batch, DebitRequest, LedgerEntry, Mandate
from sepa_engine.db.returns_models import AppliedReturn, ReturnException, ReturnFile
from sepa_engine.ids import SequentialIds
from sepa_engine.services import reconciliation, return_exceptions
from sepa_engine.services.collection import run_collection
from tests import ledger
from tests.shared_files import samples_dir

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
LATER = FixedClock(dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC))


def boi() -> Path:
    """A real Bank of Ireland pain.002 from ../shared, which a bare clone does not have."""
    return samples_dir("pain.002") / "oca-accountpayment__boi-sdd-reject-4tx-AC01-MS02-MD06-AM04__test-sepa-pain-unpaid.xml"


def collect(db, settings, requests: int = 20, prefix: str = "RUN") -> Path:
    creditor = ledger.creditor(db)
    for i in range(requests):
        ledger.request(db, creditor, ledger.mandate(db, creditor), 1_000 + i)
    report = run_collection(db, settings, FixedClock(NOW), SequentialIds(prefix))
    (outcome,) = report.files
    return outcome.path


def somebody_elses_statement(camt: Path, target: Path, iban: str, run_prefix: str = "RUN") -> Path:
    """``camt`` as the statement of another account, with nothing of ours in it: no end-to-end
    id, message id or mandate reference that matches a debit."""
    text = camt.read_text().replace("FR7630006000011234567890189", iban)
    for ours, theirs in (("E2E-", "ZZZ-"), (f"{run_prefix}0", "ZZZ0"), ("RUM-", "ZUM-")):
        text = text.replace(ours, theirs)
    target.write_text(text)
    return target


def reconcile(db, path: Path, clock=LATER) -> reconciliation.ReconcileReport:
    with db.transaction() as s:
        return reconciliation.reconcile_file(s, path, clock=clock)


def requests(db) -> dict[str, DebitRequest]:
    with db.reader() as s:
        return {r.end_to_end_id: r for r in s.scalars(select(DebitRequest))}


def count(db, model) -> int:
    with db.reader() as s:
        return s.scalar(select(func.count()).select_from(model))


def snapshot(db) -> tuple:
    with db.reader() as s:
        return (
            sorted((r.id, r.status, r.reason_code) for r in s.scalars(select(DebitRequest))),
            sorted((m.id, m.status, m.first_collected_on) for m in s.scalars(select(Mandate))),
            sorted((b.id, b.status) for b in s.scalars(select(Batch))),
            count(db, AppliedReturn), count(db, ReturnException), count(db, LedgerEntry),
        )


def test_bank_answers_set_each_debit_to_what_the_bank_said(db, settings, tmp_path):
    sim = simulate(collect(db, settings), tmp_path / "inbox", 0.3, 0.3, seed=1)
    first = reconcile(db, sim.pain002_path)
    second = reconcile(db, sim.camt054_path)

    rows = requests(db)
    for rejection in sim.rejected:
        assert (rows[rejection.end_to_end_id].status, rows[rejection.end_to_end_id].reason_code) == ("rejected", rejection.reason_code)
    for returned in sim.returned:
        assert rows[returned.end_to_end_id].status in ("returned", "refunded")
        assert rows[returned.end_to_end_id].reason_code == returned.reason_code
    originals = [r for r in rows.values() if r.attempt == 1]
    settled = [r for r in originals if r.status == "settled"]
    assert len(settled) == sim.settled_count - sim.returned_count
    assert first.exceptions == second.exceptions == 0
    assert first.applied == sim.rejected_count
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).one() == "settled_with_rejects"


def test_hard_codes_block_the_mandate_and_cancel_its_pending_requests(db, settings, tmp_path):
    sim = simulate(collect(db, settings), tmp_path / "inbox", 0.5, 0.0, seed=3)
    hard = [r for r in sim.rejected if r.reason_code in ("AC01", "AC04", "AC06", "MD01", "AG01")]
    assert hard, "the seed must draw at least one hard code"
    rows = requests(db)
    victim = rows[hard[0].end_to_end_id]
    pending = ledger.request(db, victim.creditor_id, victim.mandate_id, 777, requested_date=dt.date(2026, 12, 24))

    report = reconcile(db, sim.pain002_path)

    assert report.blocked_mandates == len({rows[r.end_to_end_id].mandate_id for r in hard})
    with db.reader() as s:
        mandate = s.get(Mandate, victim.mandate_id)
        assert (mandate.status, mandate.status_reason) == ("blocked", hard[0].reason_code)
        cancelled = s.get(DebitRequest, pending)
        assert (cancelled.status, cancelled.reason_code) == ("cancelled", hard[0].reason_code)


def test_soft_codes_schedule_exactly_one_retry_and_never_more(db, settings, tmp_path):
    sim = simulate(collect(db, settings), tmp_path / "inbox", 0.6, 0.0, seed=5)
    soft = [r for r in sim.rejected if r.reason_code in ("AM04", "MS03")]
    assert soft, "the seed must draw at least one soft code"

    report = reconcile(db, sim.pain002_path)

    assert report.retries == len(soft)
    with db.reader() as s:
        retries = list(s.scalars(select(DebitRequest).where(DebitRequest.retry_of_id.is_not(None))))
    rows = requests(db)
    assert sorted(r.retry_of_id for r in retries) == sorted(rows[x.end_to_end_id].id for x in soft)
    assert all(r.attempt == 2 and r.status == "pending" for r in retries)
    # The retried attempt fails again with AM04: the policy allows one retry, so no third attempt.
    retry = retries[0]
    with db.transaction() as s:
        row = s.get(DebitRequest, retry.id)
        row.status, row.batch_id, row.collection_date = "submitted", None, dt.date(2026, 12, 9)
    pain002 = _pain002_tx(tmp_path / "again.xml", "OTHER-MSG", retry.end_to_end_id, retry.amount_cents, "AM04")
    again = reconcile(db, pain002)
    assert again.applied == 1 and again.retries == 0
    with db.reader() as s:
        assert s.scalar(select(func.count()).where(DebitRequest.retry_of_id == retry.id)) == 0


def test_rejected_first_collection_makes_the_next_attempt_first_again(db, settings, tmp_path):
    sim = simulate(collect(db, settings), tmp_path / "inbox", 0.5, 0.0, seed=5)
    rejected = requests(db)[sim.rejected[0].end_to_end_id]
    with db.reader() as s:
        assert s.get(Mandate, rejected.mandate_id).first_collected_on is not None
    reconcile(db, sim.pain002_path)
    with db.reader() as s:
        assert s.get(Mandate, rejected.mandate_id).first_collected_on is None


def test_unknown_end_to_end_id_goes_to_the_exceptions_queue(db, settings, tmp_path):
    collect(db, settings)
    path = _pain002_tx(tmp_path / "unknown.xml", "NOT-OURS", "NOBODY-KNOWS-ME", 12_34, "AM04")
    report = reconcile(db, path)
    assert (report.applied, report.exceptions) == (0, 1)
    with db.reader() as s:
        (exception,) = s.scalars(select(ReturnException))
    assert exception.status == "open" and exception.end_to_end_id == "NOBODY-KNOWS-ME"
    assert "no debit matches" in exception.reason
    assert json.loads(exception.record)["reason_code"] == "AM04"


def test_importing_the_same_file_twice_changes_nothing_and_says_so(db, settings, tmp_path):
    sim = simulate(collect(db, settings), tmp_path / "inbox", 0.3, 0.3, seed=1)
    reconcile(db, sim.pain002_path)
    reconcile(db, sim.camt054_path)
    before = snapshot(db)
    again = reconcile(db, sim.camt054_path)
    assert again.duplicate and again.applied == 0
    assert snapshot(db) == before


def test_a_second_file_repeating_applied_records_counts_them_as_already_applied(db, settings, tmp_path):
    sim = simulate(collect(db, settings), tmp_path / "inbox", 0.3, 0.0, seed=1)
    reconcile(db, sim.pain002_path)
    before = snapshot(db)
    copy = tmp_path / "copy.xml"
    copy.write_bytes(sim.pain002_path.read_bytes() + b"\n")  # other bytes, same content
    report = reconcile(db, copy)
    assert (report.applied, report.already_applied) == (0, sim.rejected_count)
    after = snapshot(db)
    assert after[:3] == before[:3] and after[4:] == before[4:]


def test_a_truncated_file_applies_nothing(db, settings, tmp_path):
    sim = simulate(collect(db, settings), tmp_path / "inbox", 0.5, 0.0, seed=1)
    data = sim.pain002_path.read_bytes()
    broken = tmp_path / "broken.xml"
    broken.write_bytes(data[: int(len(data) * 0.8)])
    before = snapshot(db)
    with pytest.raises(errors.UnreadableFile):
        reconcile(db, broken)
    assert snapshot(db) == before
    assert count(db, ReturnFile) == 0


def test_group_level_am10_reject_rejects_every_transaction_of_the_file(db, settings, tmp_path):
    path = collect(db, settings, requests=5)
    with db.reader() as s:
        message_id = s.scalars(select(Batch.message_id)).one()
    report = reconcile(db, _pain002_group(tmp_path / "am10.xml", message_id, "AM10"))
    assert report.applied == 5 and report.exceptions == 0
    assert {(r.status, r.reason_code) for r in requests(db).values()} == {("rejected", "AM10")}
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).one() == "rejected"
    assert path.exists()


def test_bank_of_ireland_sample_goes_to_exceptions_without_error(db, settings):
    collect(db, settings)
    before = snapshot(db)
    report = reconcile(db, boi())
    assert (report.records, report.applied, report.exceptions) == (4, 0, 4)
    after = snapshot(db)
    assert after[:4] == before[:4] and after[5] == before[5]
    assert count(db, ReturnException) == 4


def test_settlement_that_differs_from_the_control_sum_is_an_exception(db, settings, tmp_path):
    sim = simulate(collect(db, settings, requests=4), tmp_path / "inbox", 0.0, 0.0, seed=1)
    with db.transaction() as s:
        batch = s.scalars(select(Batch)).one()
        batch.sum_cents += 1  # as if the bank credited a cent less than the file asked for
    report = reconcile(db, sim.camt054_path)
    assert report.exceptions == 1
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).one() == "published"
        (exception,) = s.scalars(select(ReturnException))
    assert "expected" in exception.reason


def test_a_later_file_about_the_same_batch_does_not_queue_the_same_gap_again(db, settings, tmp_path):
    sim = simulate(collect(db, settings, requests=4), tmp_path / "inbox", 0.0, 0.0, seed=1)
    with db.transaction() as s:
        batch = s.scalars(select(Batch)).one()
        batch.sum_cents += 1
        message = batch.message_id
    reconcile(db, sim.camt054_path)
    accepted = tmp_path / "accepted.xml"
    accepted.write_text(
        _HEAD.format(msg=f"ACCP-{message}")
        + f"""<OrgnlGrpInfAndSts><OrgnlMsgId>{message}</OrgnlMsgId><OrgnlMsgNmId>pain.008.001.08</OrgnlMsgNmId>
<GrpSts>ACCP</GrpSts></OrgnlGrpInfAndSts>
</CstmrPmtStsRpt></Document>
"""
    )
    late = reconcile(db, accepted)
    assert (late.applied, late.exceptions) == (1, 0)
    with db.reader() as s:
        assert len(s.scalars(select(ReturnException)).all()) == 1


def test_resolving_an_exception_as_a_request_applies_the_record(db, settings, tmp_path):
    collect(db, settings, requests=2)
    target = min(requests(db).values(), key=lambda r: r.id)
    reconcile(db, _pain002_tx(tmp_path / "x.xml", "NOT-OURS", "MANGLED-ID", target.amount_cents, "MS02"))
    with db.transaction() as s:
        (view,) = return_exceptions.list_exceptions(s)
        resolved = return_exceptions.resolve_exception(s, view.id, resolution=str(target.id), note="bank mangled the id", clock=LATER)
    assert resolved.status == "resolved" and resolved.resolution == f"matched:{target.id}"
    assert requests(db)[target.end_to_end_id].status == "rejected"
    with db.transaction() as s:
        assert return_exceptions.list_exceptions(s) == []


def test_an_exception_cannot_be_resolved_as_a_debit_of_another_amount(db, settings, tmp_path):
    # Resolved as a debit of 10.01, a record returning 10.00 was applied: the debit returned
    # and a returned payment of 10.01 booked, a cent the bank never took back. A return, a
    # reject or a refund is of the whole instructed amount; another amount is another debit.
    collect(db, settings, requests=2)
    first, second = sorted(requests(db).values(), key=lambda r: r.id)
    reconcile(db, _pain002_tx(tmp_path / "x.xml", "NOT-OURS", "MANGLED-ID", first.amount_cents, "MS02"))
    with db.transaction() as s:
        (view,) = return_exceptions.list_exceptions(s)

    with pytest.raises(errors.ReturnFileError, match=r"request .* is a debit of 10.01, the record is of 10.00"):
        with db.transaction() as s:
            return_exceptions.resolve_exception(s, view.id, resolution=str(second.id), clock=LATER)

    assert requests(db)[second.end_to_end_id].status == "submitted"
    with db.transaction() as s:
        assert [v.id for v in return_exceptions.list_exceptions(s)] == [view.id]


def test_an_exception_naming_one_of_our_files_cannot_be_resolved_as_a_debit_of_another(db, settings, tmp_path):
    # Rents are often the same amount: resolved by a mistyped id as a debit of another file of
    # the same amount, a reject of file RUN000001 was applied to a debit the bank never
    # rejected, and the debit it was about stayed "submitted".
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 1_000)
    run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN"))
    other = ledger.request(db, creditor, ledger.mandate(db, creditor), 1_000)
    run_collection(db, settings, FixedClock(NOW), SequentialIds("NEXT"))
    report = _pain002_tx(tmp_path / "x.xml", "RUN000001", "MANGLED-ID", 1_000, "MS02")
    report.write_text(report.read_text().replace("RUN000001-0001", "RUN000001-0009"))  # matches nothing
    reconcile(db, report)
    with db.transaction() as s:
        (view,) = return_exceptions.list_exceptions(s)

    with pytest.raises(errors.ReturnFileError, match="is in file NEXT000001, the record is about file RUN000001"):
        with db.transaction() as s:
            return_exceptions.resolve_exception(s, view.id, resolution=str(other), clock=LATER)

    assert {r.status for r in requests(db).values()} == {"submitted"}


def test_a_statement_record_cannot_be_resolved_as_a_debit_collected_to_another_account(db, settings, tmp_path):
    # Two creditors, the same rent: a return booked on one creditor's account, resolved as the
    # other creditor's debit, was booked back on a ledger whose account the money never left.
    martin = ledger.creditor(db)
    ledger.request(db, martin, ledger.mandate(db, martin), 1_000)
    other = ledger.creditor(db, code="other", iban="FR1420041010050500013M02606", creditor_identifier="DE98ZZZ09999999999")
    theirs = ledger.request(db, other, ledger.mandate(db, other), 1_000)
    files = {f.creditor_code: f.path for f in run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN")).files}
    sim = simulate(files["martin"], tmp_path / "inbox", 0.0, 1.0, seed=1)
    camt = tmp_path / "camt.xml"  # martin's account; no id of ours left in it
    camt.write_text(sim.camt054_path.read_text().replace("E2E-", "ZZZ-").replace("RUM-", "ZUM-").replace("RUN0", "ZZZ0"))
    reconcile(db, camt)
    with db.transaction() as s:
        returned = [v for v in return_exceptions.list_exceptions(s) if v.record["kind"] == "returned"]

    with pytest.raises(errors.ReturnFileError, match=r"was collected to account FR14\*+2606, the record is about account FR76\*+0189"):
        with db.transaction() as s:
            return_exceptions.resolve_exception(s, returned[0].id, resolution=str(theirs), clock=LATER)

    assert {r.status for r in requests(db).values()} == {"submitted"}


def test_a_whole_file_status_cannot_be_resolved_as_one_debit(db, settings, tmp_path):
    # A group reject (AM10) about a file that is not ours, resolved as one debit, rejected that
    # debit alone, for a reason that was about a whole file.
    collect(db, settings, requests=2)
    target = min(requests(db).values(), key=lambda r: r.id)
    reconcile(db, _pain002_group(tmp_path / "g.xml", "NOT-OURS", "AM10"))
    with db.transaction() as s:
        (view,) = return_exceptions.list_exceptions(s)

    with pytest.raises(errors.ReturnFileError, match="is not about one debit"):
        with db.transaction() as s:
            return_exceptions.resolve_exception(s, view.id, resolution=str(target.id), clock=LATER)

    assert requests(db)[target.end_to_end_id].status == "submitted"


def test_a_statement_record_resolved_by_hand_moves_its_file_as_if_it_had_matched_by_itself(db, settings, tmp_path):
    # A camt.054 return resolved from the queue took the file published -> acknowledged, as a
    # pain.002 would: the review then showed an acceptance no bank report gave. Matched by
    # itself, the same record leaves the file published.
    sim = simulate(collect(db, settings, requests=2), tmp_path / "inbox", 0.0, 1.0, seed=1)
    camt = tmp_path / "camt.xml"  # nothing in it matches: ids, mandates and block mangled
    camt.write_text(sim.camt054_path.read_text().replace("E2E-", "ZZZ-").replace("RUM-", "ZUM-")
                    .replace("RUN000001-0001", "RUN000001-9999"))
    assert reconcile(db, camt).exceptions == 4
    target = min(requests(db).values(), key=lambda r: r.id)
    with db.transaction() as s:
        (returned,) = [v for v in return_exceptions.list_exceptions(s) if v.record["kind"] == "returned"]
        return_exceptions.resolve_exception(s, returned.id, resolution=str(target.id), clock=LATER)

    assert requests(db)[target.end_to_end_id].status == "returned"
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).one() == "published"


def test_creditor_policy_override_can_forbid_the_retry(db, settings, tmp_path):
    from sepa_engine.db.returns_models import ReasonCodePolicy

    sim = simulate(collect(db, settings), tmp_path / "inbox", 0.6, 0.0, seed=5)
    with db.transaction() as s:
        creditor_id = s.scalars(select(Batch.creditor_id)).one()
        s.add(ReasonCodePolicy(creditor_id=creditor_id, code="AM04", max_retries=0, created_at=NOW))
        s.add(ReasonCodePolicy(creditor_id=creditor_id, code="MS03", max_retries=0, created_at=NOW))
    report = reconcile(db, sim.pain002_path)
    assert report.retries == 0


# --- hand-made bank files ------------------------------------------------------------------
_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03">
<CstmrPmtStsRpt>
<GrpHdr><MsgId>STS-{msg}</MsgId><CreDtTm>2026-11-24T10:00:00</CreDtTm></GrpHdr>
"""


def _pain002_group(path: Path, original: str, code: str) -> Path:
    path.write_text(
        _HEAD.format(msg=original)
        + f"""<OrgnlGrpInfAndSts><OrgnlMsgId>{original}</OrgnlMsgId><OrgnlMsgNmId>pain.008.001.08</OrgnlMsgNmId>
<GrpSts>RJCT</GrpSts><StsRsnInf><Rsn><Cd>{code}</Cd></Rsn></StsRsnInf></OrgnlGrpInfAndSts>
</CstmrPmtStsRpt></Document>
"""
    )
    return path


def _pain002_tx(path: Path, original: str, end_to_end_id: str, cents: int, code: str) -> Path:
    path.write_text(
        _HEAD.format(msg=end_to_end_id)
        + f"""<OrgnlGrpInfAndSts><OrgnlMsgId>{original}</OrgnlMsgId><OrgnlMsgNmId>pain.008.001.08</OrgnlMsgNmId></OrgnlGrpInfAndSts>
<OrgnlPmtInfAndSts><OrgnlPmtInfId>{original}-0001</OrgnlPmtInfId>
<TxInfAndSts><StsId>S1</StsId><OrgnlEndToEndId>{end_to_end_id}</OrgnlEndToEndId><TxSts>RJCT</TxSts>
<StsRsnInf><Rsn><Cd>{code}</Cd></Rsn></StsRsnInf>
<OrgnlTxRef><Amt><InstdAmt Ccy="EUR">{cents // 100}.{cents % 100:02d}</InstdAmt></Amt></OrgnlTxRef>
</TxInfAndSts></OrgnlPmtInfAndSts>
</CstmrPmtStsRpt></Document>
"""
    )
    return path


def test_an_all_accepted_status_report_acknowledges_the_file_before_its_settlement(db, settings, tmp_path):
    # The simulator's all-accepted pain.002 had no group status: the batch never became acknowledged.
    sim = simulate(collect(db, settings, requests=4), tmp_path / "inbox", 0.0, 0.0, seed=1)
    reconcile(db, sim.pain002_path)
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).one() == "acknowledged"
    reconcile(db, sim.camt054_path)
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).one() == "settled"


def test_a_partly_rejected_file_keeps_its_rejects_rejected_settles_the_rest_and_says_so(db, settings, tmp_path):
    # A file with rejects ended up "settled", as if nothing had been rejected.
    sim = simulate(collect(db, settings, requests=3), tmp_path / "inbox", 0.34, 0.0, seed=7)
    assert sim.rejected_count == 1
    reconcile(db, sim.pain002_path)
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).one() == "partly_rejected"
    reconcile(db, sim.camt054_path)
    rows = requests(db)
    (rejected,) = sim.rejected
    assert rows[rejected.end_to_end_id].status == "rejected"
    originals = [r for r in rows.values() if r.attempt == 1 and r.end_to_end_id != rejected.end_to_end_id]
    assert [r.status for r in originals] == ["settled", "settled"]
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).one() == "settled_with_rejects"


def test_a_statement_refused_for_an_unknown_account_is_applied_when_sent_again_once_the_creditor_exists(
    db, settings, tmp_path,
):
    # Sent again after the creditor was registered, the same bytes were answered "duplicate"
    # of the refusal and never applied, though the refusal said what to fix.
    sim = simulate(collect(db, settings, requests=2), tmp_path / "inbox", 0.0, 1.0, seed=1)
    other_iban = "FR1420041010050500013M02606"
    statement = somebody_elses_statement(sim.camt054_path, tmp_path / "statement.xml", other_iban)
    with pytest.raises(errors.ReturnFileError, match="is not the account of any of our creditors"):
        reconcile(db, statement)
    with db.transaction() as s:
        reconciliation.record_refusal(s, statement, reconciliation.file_sha256(statement), "not ours", clock=LATER)
    ledger.creditor(db, code="other", iban=other_iban, creditor_identifier="DE98ZZZ09999999999")

    again = reconcile(db, statement)

    assert not again.duplicate and again.records > 0 and again.exceptions == again.records - again.skipped
    with db.reader() as s:
        (row,) = s.scalars(select(ReturnFile)).all()
        assert (row.status, row.refusal, row.id) == ("applied", None, again.file_id)
        assert s.scalar(select(func.count()).select_from(ReturnException)) == again.exceptions
    assert reconcile(db, statement).duplicate_of == again.file_id
