"""Two bank files applied at the same time, by two processes sharing the ledger.

A scheduler imports its inbox while an operator runs ``sepa-engine reconcile`` on a file, or
two hosts each import what their bank sent. SQLite queues the two transactions at BEGIN
IMMEDIATE; on PostgreSQL both run, and the second must decide on what the first committed,
never on what it read before: a debit's status is what every record about it is decided on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import func, select

from sepa_engine import errors
from sepa_engine.banksim import simulate
from sepa_engine.clock import FixedClock
from sepa_engine.db.models import DebitRequest, LedgerEntry, Mandate
from sepa_engine.db.returns_models import AppliedReturn, ReturnException, ReturnFile
from sepa_engine.ids import SequentialIds
from sepa_engine.services import reconciliation, return_exceptions
from sepa_engine.services.collection import CollectionReport, run_collection
from tests import ledger
from tests.concurrency import hold_the_hand_over, in_thread, until_a_writer_waits_for_a_lock
from tests.services.test_reconciliation import LATER, NOW, _pain002_tx, collect, requests


class _Held:
    """A reconciliation applied in a transaction that commits only when told to."""

    def __init__(self, db, path) -> None:  # type: ignore[no-untyped-def]
        self.applied, self.release = threading.Event(), threading.Event()
        self.report: reconciliation.ReconcileReport | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(db, path))
        self._thread.start()
        assert self.applied.wait(timeout=30), "the first file was never applied"

    def _run(self, db, path) -> None:  # type: ignore[no-untyped-def]
        try:
            with db.transaction() as s:
                self.report = reconciliation.reconcile_file(s, path, clock=LATER)
                self.applied.set()
                assert self.release.wait(timeout=30)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc
            self.applied.set()

    def commit(self) -> reconciliation.ReconcileReport:
        self.release.set()
        self._thread.join(timeout=30)
        assert self.error is None, self.error
        assert self.report is not None
        return self.report


def _apply_while(db, commit_the_other: Callable[[], object], path) -> reconciliation.ReconcileReport:  # type: ignore[no-untyped-def]
    """Apply ``path`` while another transaction is open; that one commits once this one waits
    for a lock it holds (PostgreSQL), or after a moment (SQLite, which shows no waiter)."""
    thread, outcome = in_thread(lambda: _reconcile(db, path))
    until_a_writer_waits_for_a_lock(db)
    commit_the_other()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the second file was never applied"
    (result,) = outcome
    assert isinstance(result, reconciliation.ReconcileReport), result
    return result


def _reconcile(db, path) -> reconciliation.ReconcileReport:  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        return reconciliation.reconcile_file(s, path, clock=LATER)


def _count(db, query) -> int:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return s.scalar(query)


def test_a_return_applied_while_a_reject_of_the_same_debit_commits_is_decided_on_the_reject(db, settings, tmp_path):
    # Two files about one debit at once: the second read the debit as submitted before the
    # first committed its reject, then overwrote it as returned.
    sim = simulate(collect(db, settings, requests=4), tmp_path / "inbox", 0.0, 0.5, seed=2)
    assert sim.returned, "the seed must draw at least one return"
    victim = requests(db)[sim.returned[0].end_to_end_id]
    reject = _pain002_tx(tmp_path / "reject.xml", "OTHER", victim.end_to_end_id, victim.amount_cents, "AM04")

    first = _Held(db, reject)
    second = _apply_while(db, first.commit, sim.camt054_path)

    assert (first.report.applied, first.report.retries) == (1, 1)  # type: ignore[union-attr]
    assert requests(db)[victim.end_to_end_id].status == "rejected"
    # The camt books the debit's collection, then its return: both are queued, as they would
    # be had the files come one after the other.
    with db.reader() as s:
        queued = sorted((e.end_to_end_id, e.reason) for e in s.scalars(select(ReturnException)))
        assert queued == [
            (victim.end_to_end_id, f"debit {victim.end_to_end_id} is rejected: it cannot become returned"),
            (victim.end_to_end_id, f"debit {victim.end_to_end_id} is rejected: it cannot become settled"),
        ]
        assert second.exceptions == 2
        assert s.scalars(select(AppliedReturn.kind).where(AppliedReturn.debit_request_id == victim.id)).all() == ["rejected"]
    assert _count(db, select(func.count()).where(DebitRequest.retry_of_id == victim.id)) == 1
    assert _count(db, select(func.count()).where(
        LedgerEntry.debit_request_id == victim.id, LedgerEntry.kind == "returned_payment")) == 1


def test_the_same_file_imported_twice_at_once_is_applied_once_and_the_other_import_says_duplicate(db, settings, tmp_path):
    # The second import of the same bytes failed with the unique constraint's IntegrityError.
    sim = simulate(collect(db, settings, requests=4), tmp_path / "inbox", 0.5, 0.0, seed=3)
    first = _Held(db, sim.pain002_path)
    second = _apply_while(db, first.commit, sim.pain002_path)

    assert first.report is not None
    assert second.duplicate_of == first.report.file_id
    assert second.applied == 0
    assert _count(db, select(func.count()).select_from(ReturnFile)) == 1
    assert _count(db, select(func.count()).select_from(AppliedReturn)) == first.report.applied


def test_a_request_a_collection_assigns_while_a_return_blocks_its_mandate_is_collected_not_cancelled(db, settings, tmp_path):
    # The return read the mandate's pending request before the run committed its assignment,
    # then cancelled it by id: the file carried a debit the ledger called cancelled, with no
    # payment booked for it.
    creditor_id = ledger.creditor(db)
    at_the_bank = collect_one(db, settings, creditor_id)
    victim = requests(db)[at_the_bank]
    pending = ledger.request(db, creditor_id, victim.mandate_id, 777)
    hard = _pain002_tx(tmp_path / "md01.xml", "OTHER", victim.end_to_end_id, victim.amount_cents, "MD01")
    assigned, release = threading.Event(), threading.Event()

    def hold_the_assignment(name: str) -> None:
        if name == "during_assign":
            assigned.set()
            assert release.wait(timeout=30)

    collection, outcome = in_thread(
        lambda: run_collection(db, settings, LATER, SequentialIds("LATE"), checkpoint=hold_the_assignment)
    )
    assert assigned.wait(timeout=30), "the run never assigned the request"
    report = _apply_while(db, release.set, hard)
    collection.join(timeout=60)

    (ran,) = outcome
    assert isinstance(ran, CollectionReport), ran
    assert [f.count for f in ran.files] == [1]  # the file carries the request
    assert report.blocked_mandates == 1
    rows = requests(db)
    collected = next(r for r in rows.values() if r.id == pending)
    assert collected.status == "submitted" and collected.batch_id is not None
    with db.reader() as s:
        assert s.get(Mandate, victim.mandate_id).status == "blocked"
        assert s.scalar(select(func.count()).where(
            LedgerEntry.debit_request_id == pending, LedgerEntry.kind == "payment")) == 1


def collect_one(db, settings, creditor_id: int) -> str:  # type: ignore[no-untyped-def]
    """One debit collected and at the bank; its end-to-end id."""
    ledger.request(db, creditor_id, ledger.mandate(db, creditor_id), 1_000)
    assert len(run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN")).files) == 1
    (request,) = requests(db).values()
    return request.end_to_end_id


def test_a_collection_assigning_while_a_return_blocks_the_mandate_leaves_the_cancelled_request_out(db, settings, tmp_path):
    # The other order: the return holds the pending request when the run assigns it.
    creditor_id = ledger.creditor(db)
    at_the_bank = collect_one(db, settings, creditor_id)
    victim = requests(db)[at_the_bank]
    pending = ledger.request(db, creditor_id, victim.mandate_id, 777)
    other = ledger.request(db, creditor_id, ledger.mandate(db, creditor_id), 888)
    hard = _pain002_tx(tmp_path / "md01.xml", "OTHER", victim.end_to_end_id, victim.amount_cents, "MD01")

    first = _Held(db, hard)
    collection, outcome = in_thread(lambda: run_collection(db, settings, LATER, SequentialIds("LATE")))
    until_a_writer_waits_for_a_lock(db)
    first.commit()
    collection.join(timeout=60)

    (ran,) = outcome
    if isinstance(ran, errors.CollectionError):
        # PostgreSQL: the run's assignment waited for the return and found one request gone;
        # the file was rolled back, as for any request cancelled during a run.
        assert "1 of 2 assigned requests changed during the run" in str(ran)
        collected = 0
    else:
        assert isinstance(ran, CollectionReport), ran
        collected = sum(f.count for f in ran.files)
    rows = {r.id: r for r in requests(db).values()}
    assert rows[pending].status == "cancelled" and rows[pending].batch_id is None
    rerun = run_collection(db, settings, LATER, SequentialIds("NEXT"))
    assert requests(db)[rows[other].end_to_end_id].status == "submitted"
    assert collected + sum(f.count for f in rerun.files) == 1


def test_an_exception_resolved_onto_a_debit_a_file_is_rejecting_is_decided_on_that_reject(db, settings, tmp_path):
    # The operator's resolution read the debit as submitted before the file committed its
    # reject, then booked the return again: "idempotency_key 'return:1' was already used with
    # different content".
    sim = simulate(collect(db, settings, requests=2), tmp_path / "inbox", 0.0, 0.0, seed=1)
    assert sim.settled_count == 2
    target = next(iter(requests(db).values()))
    reconcile_path = _pain002_tx(tmp_path / "mangled.xml", "NOT-OURS", "MANGLED-ID", target.amount_cents, "MS02")
    with db.transaction() as s:
        assert reconciliation.reconcile_file(s, reconcile_path, clock=LATER).exceptions == 1
    reject = _pain002_tx(tmp_path / "reject.xml", "OTHER", target.end_to_end_id, target.amount_cents, "AM04")

    first = _Held(db, reject)

    def resolve() -> return_exceptions.ExceptionView:
        with db.transaction() as s:
            (view,) = return_exceptions.list_exceptions(s)
            return return_exceptions.resolve_exception(s, view.id, resolution=str(target.id), clock=LATER)

    thread, outcome = in_thread(resolve)
    until_a_writer_waits_for_a_lock(db)
    first.commit()
    thread.join(timeout=60)

    (resolved,) = outcome
    assert not isinstance(resolved, BaseException), resolved
    assert resolved.resolution == f"matched:{target.id}"  # type: ignore[attr-defined]
    assert requests(db)[target.end_to_end_id].reason_code == "AM04"  # the file's reject, applied once
    with db.reader() as s:
        assert s.scalars(select(AppliedReturn.natural_key).where(AppliedReturn.debit_request_id == target.id)).all() == [
            f"rejected:request:{target.id}"
        ]
    assert _count(db, select(func.count()).where(DebitRequest.retry_of_id == target.id)) == 1


def _accepting(path, original: str, report_id: str):  # type: ignore[no-untyped-def]
    path.write_text(
        f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03">
<CstmrPmtStsRpt>
<GrpHdr><MsgId>{report_id}</MsgId><CreDtTm>2026-11-24T10:00:00</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>{original}</OrgnlMsgId><OrgnlMsgNmId>pain.008.001.08</OrgnlMsgNmId>
<GrpSts>ACCP</GrpSts></OrgnlGrpInfAndSts>
</CstmrPmtStsRpt></Document>
"""
    )
    return path


def test_two_reports_acknowledging_one_file_at_once_record_the_acknowledgement_once(db, settings, tmp_path):
    # The second report inserted the same "accepted:<batch>" fact and failed on its unique key.
    collect(db, settings, requests=2)
    first = _Held(db, _accepting(tmp_path / "a.xml", "RUN000001", "STS-A"))
    second = _apply_while(db, first.commit, _accepting(tmp_path / "b.xml", "RUN000001", "STS-B"))

    assert (first.report.applied, second.applied, second.already_applied) == (1, 0, 1)  # type: ignore[union-attr]
    with db.reader() as s:
        assert s.scalars(select(AppliedReturn.natural_key)).all() == ["accepted:1"]


def test_two_imports_refusing_the_same_bytes_at_once_leave_one_refusal(db, tmp_path):
    # The second refusal's insert failed on the unique sha256, in the error handler itself.
    recorded, release = threading.Event(), threading.Event()

    def first() -> None:
        with db.transaction() as s:
            reconciliation.record_refusal(s, tmp_path / "bad.xml", "ab" * 32, "not XML", clock=LATER)
            recorded.set()
            assert release.wait(timeout=30)

    holder = threading.Thread(target=first)
    holder.start()
    assert recorded.wait(timeout=30)

    def second() -> str:
        with db.transaction() as s:
            reconciliation.record_refusal(s, tmp_path / "bad.xml", "ab" * 32, "not XML either", clock=LATER)
        return "done"

    refusing, outcome = in_thread(second)
    until_a_writer_waits_for_a_lock(db)
    release.set()
    holder.join(timeout=30)
    refusing.join(timeout=30)

    assert outcome == ["done"]
    with db.reader() as s:
        (row,) = s.scalars(select(ReturnFile)).all()
        assert (row.status, row.refusal) == ("refused", "not XML either")


def test_a_return_with_a_retry_applied_while_a_file_of_the_same_mandate_is_handed_over_both_commit(
    db, settings, tmp_path, monkeypatch,
):
    # The hand-over booked the new debit's payment (a key-share lock on the account) and then
    # waited for the mandate the return held; the return's retry waited for the account's
    # lock: PostgreSQL found the deadlock and aborted one of the two.
    creditor_id = ledger.creditor(db)
    at_the_bank = collect_one(db, settings, creditor_id)
    victim = requests(db)[at_the_bank]
    following = ledger.request(db, creditor_id, victim.mandate_id, 2_000)
    soft = _pain002_tx(tmp_path / "am04.xml", "OTHER", victim.end_to_end_id, victim.amount_cents, "AM04")
    handing, release = hold_the_hand_over(monkeypatch)
    collection, ran = in_thread(lambda: run_collection(db, settings, LATER, SequentialIds("LATE")))
    assert handing.wait(timeout=30), "the run never handed its file over"
    returning, applied = in_thread(lambda: _reconcile(db, soft))
    until_a_writer_waits_for_a_lock(db, or_ends=returning)
    release.set()
    collection.join(timeout=60)
    returning.join(timeout=60)

    assert [type(o).__name__ for o in ran + applied] == ["CollectionReport", "ReconcileReport"], ran + applied
    rows = {r.id: r for r in requests(db).values()}
    assert rows[following].status == "submitted"
    assert rows[victim.id].status == "rejected"
    assert _count(db, select(func.count()).where(DebitRequest.retry_of_id == victim.id)) == 1
    assert _count(db, select(func.count()).where(
        LedgerEntry.debit_request_id == following, LedgerEntry.kind == "payment")) == 1

