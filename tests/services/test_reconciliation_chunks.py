"""Reconciliation in chunks: records decided one after the other on rows read per chunk,
lump-sum settlement of a file's debits, progress, and the file read in a child process."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sepa_engine import errors
from sepa_engine.banksim import simulate
from sepa_engine.db.models import Batch, DebitRequest, LedgerEntry, Mandate
from sepa_engine.db.returns_models import AppliedReturn, ReturnException, ReturnFile
from sepa_engine.services import accounts, idempotency, reconciliation
from tests.services.test_reconciliation import LATER, collect, requests

_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03">
<CstmrPmtStsRpt>
<GrpHdr><MsgId>STS-{msg}</MsgId><CreDtTm>2026-11-24T10:00:00</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>{original}</OrgnlMsgId><OrgnlMsgNmId>pain.008.001.08</OrgnlMsgNmId></OrgnlGrpInfAndSts>
<OrgnlPmtInfAndSts><OrgnlPmtInfId>{original}-0001</OrgnlPmtInfId>
"""
_TX = """<TxInfAndSts><StsId>S{n}</StsId><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId><TxSts>RJCT</TxSts>
<StsRsnInf><Rsn><Cd>{code}</Cd></Rsn></StsRsnInf>
<OrgnlTxRef><Amt><InstdAmt Ccy="EUR">{cents}</InstdAmt></Amt></OrgnlTxRef></TxInfAndSts>
"""
_TAIL = "</OrgnlPmtInfAndSts>\n</CstmrPmtStsRpt></Document>\n"


def _rejects(path: Path, message: str, rejects: list[tuple[DebitRequest, str]]) -> Path:
    """A pain.002 rejecting each (debit, code) in turn, in one block status."""
    body = "".join(
        _TX.format(n=n, e2e=r.end_to_end_id, code=code, cents=f"{r.amount_cents // 100}.{r.amount_cents % 100:02d}")
        for n, (r, code) in enumerate(rejects)
    )
    path.write_text(_HEAD.format(msg=path.stem, original=message) + body + _TAIL)
    return path


def _message_id(db) -> str:
    with db.reader() as s:
        return s.scalars(select(Batch.message_id)).one()


def _reconcile(db, path: Path, **options) -> reconciliation.ReconcileReport:
    with db.transaction() as s:
        return reconciliation.reconcile_file(s, path, clock=LATER, **options)


def _same_mandate(db, debits: list[DebitRequest]) -> int:
    """Move the debits onto the first one's mandate (a debtor with several open debits)."""
    mandate_id = debits[0].mandate_id
    with db.transaction() as s:
        for debit in debits[1:]:
            s.get(DebitRequest, debit.id).mandate_id = mandate_id
    return mandate_id


def test_same_end_to_end_id_twice_in_one_chunk_applies_once_then_counts_as_already_applied(db, settings, tmp_path):
    collect(db, settings, requests=3)
    debit = min(requests(db).values(), key=lambda r: r.id)
    path = _rejects(tmp_path / "twice.xml", _message_id(db), [(debit, "AM04"), (debit, "AM04")])

    report = _reconcile(db, path)

    assert (report.applied, report.already_applied, report.exceptions, report.retries) == (1, 1, 0, 1)
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(AppliedReturn)) == 1
        assert s.scalar(select(func.count()).where(DebitRequest.retry_of_id == debit.id)) == 1
        assert s.scalar(select(func.count()).where(LedgerEntry.kind == "returned_payment")) == 1


@pytest.mark.parametrize("chunk_size", [1, 1000])
def test_hard_code_after_a_soft_one_on_the_same_mandate_cancels_the_retry_the_soft_one_enqueued(
    db, settings, tmp_path, chunk_size
):
    collect(db, settings, requests=3)
    first, second, _third = sorted(requests(db).values(), key=lambda r: r.id)
    mandate_id = _same_mandate(db, [first, second])
    path = _rejects(tmp_path / "soft-then-hard.xml", _message_id(db), [(first, "AM04"), (second, "AC04")])

    report = _reconcile(db, path, chunk_size=chunk_size)

    assert (report.applied, report.retries, report.blocked_mandates) == (2, 1, 1)
    with db.reader() as s:
        (retry,) = s.scalars(select(DebitRequest).where(DebitRequest.retry_of_id == first.id))
        assert (retry.status, retry.reason_code, retry.attempt, retry.mandate_id) == ("cancelled", "AC04", 2, mandate_id)
        effects = dict(s.execute(select(AppliedReturn.debit_request_id, AppliedReturn.effects)).all())
        assert s.get(Mandate, mandate_id).status == "blocked"
    assert effects[first.id] == f"retry {retry.id}"
    # Both were first collections: the second failure left none of the mandate at the bank.
    assert effects[second.id] == f"first collection reset; mandate blocked; request {retry.id} cancelled"


def test_two_failures_of_one_mandate_in_a_chunk_reset_its_first_collection_only_when_none_is_left_at_the_bank(
    db, settings, tmp_path
):
    collect(db, settings, requests=3)
    first, second, _third = sorted(requests(db).values(), key=lambda r: r.id)
    mandate_id = _same_mandate(db, [first, second])
    with db.transaction() as s:
        for debit in (first, second):
            s.get(DebitRequest, debit.id).sequence_type = "FRST"
        assert s.get(Mandate, mandate_id).first_collected_on is not None

    report = _reconcile(db, _rejects(tmp_path / "frst.xml", _message_id(db), [(first, "MS02"), (second, "MS02")]))

    assert report.applied == 2
    with db.reader() as s:
        assert s.get(Mandate, mandate_id).first_collected_on is None
        effects = dict(s.execute(select(AppliedReturn.debit_request_id, AppliedReturn.effects)).all())
    # The first failure still had the second debit at the bank; the second had none left.
    assert effects[first.id] is None
    assert effects[second.id] == "first collection reset"


def test_returned_payments_booked_in_bulk_are_the_entries_the_single_call_books(db, settings, tmp_path):
    collect(db, settings, requests=4)
    debits = sorted(requests(db).values(), key=lambda r: r.id)
    _reconcile(db, _rejects(tmp_path / "r.xml", _message_id(db), [(d, "AM04") for d in debits]))

    with db.reader() as s:
        entries = {e.debit_request_id: e for e in s.scalars(select(LedgerEntry).where(LedgerEntry.kind == "returned_payment"))}
    assert sorted(entries) == [d.id for d in debits]
    for debit in debits:
        entry = entries[debit.id]
        assert (entry.document_number, entry.amount_cents, entry.label, entry.idempotency_key) == (
            debit.end_to_end_id, debit.amount_cents, "AM04", f"return:{debit.id}"
        )
        assert entry.content_hash == idempotency.content_hash(
            {"end_to_end_id": debit.end_to_end_id, "returned_on": entry.issue_date, "reason_code": "AM04",
             "amount_cents": debit.amount_cents}
        )
    # The single call recognises each as its own replay: same key, same content.
    with db.transaction() as s:
        again = accounts.record_returned_payment(
            s, "martin", debits[0].end_to_end_id, returned_on=entries[debits[0].id].issue_date, reason_code="AM04",
            amount_cents=debits[0].amount_cents, idempotency_key=f"return:{debits[0].id}", clock=LATER,
        )
    assert not again.created and again.id == entries[debits[0].id].id


def test_progress_advances_by_the_records_of_each_chunk(db, settings, tmp_path):
    class Recorder:
        def __init__(self) -> None:
            self.advances: list[int] = []

        def total(self, count: int | None) -> None:
            return None

        def advance(self, count: int = 1) -> None:
            self.advances.append(count)

    sim = simulate(collect(db, settings, requests=20), tmp_path / "inbox", 0.0, 0.0, seed=1)
    recorder = Recorder()

    report = _reconcile(db, sim.camt054_path, chunk_size=7, progress=recorder)

    assert report.records == 20  # one settled transaction per debit
    assert recorder.advances == [7, 7, 6]


# --- lump sums -----------------------------------------------------------------------------
_CAMT_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02">
<BkToCstmrDbtCdtNtfctn>
<GrpHdr><MsgId>{msg}</MsgId><CreDtTm>2026-11-27T18:00:00</CreDtTm></GrpHdr>
<Ntfctn><Id>{msg}-1</Id><CreDtTm>2026-11-27T18:00:00</CreDtTm>
<Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id><Ccy>EUR</Ccy></Acct>
"""
_CAMT_TAIL = "</Ntfctn>\n</BkToCstmrDbtCdtNtfctn>\n</Document>\n"
_DOMAIN = "<Domn><Cd>PMNT</Cd><Fmly><Cd>IDDT</Cd><SubFmlyCd>ESDD</SubFmlyCd></Fmly></Domn>"


def _euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _lump_sum(path: Path, message: str, cents: int, count: int) -> Path:
    """A camt.054 crediting ``cents`` for file ``message`` in one entry, without details."""
    path.write_text(
        _CAMT_HEAD.format(msg=path.stem)
        + f'<Ntry><Amt Ccy="EUR">{_euros(cents)}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>'
        "<BookgDt><Dt>2026-11-25</Dt></BookgDt><ValDt><Dt>2026-11-25</Dt></ValDt>"
        f"<AcctSvcrRef>LUMP-{path.stem}</AcctSvcrRef><BkTxCd>{_DOMAIN}</BkTxCd>"
        f"<NtryDtls><Btch><MsgId>{message}</MsgId><NbOfTxs>{count}</NbOfTxs>"
        f'<TtlAmt Ccy="EUR">{_euros(cents)}</TtlAmt><CdtDbtInd>CRDT</CdtDbtInd></Btch></NtryDtls></Ntry>\n'
        + _CAMT_TAIL
    )
    return path


def _details(path: Path, debits: list[DebitRequest]) -> Path:
    """A camt.054 giving each debit's settlement as a transaction of its own."""
    entries = "".join(
        f'<Ntry><Amt Ccy="EUR">{_euros(d.amount_cents)}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>'
        f"<BookgDt><Dt>2026-11-25</Dt></BookgDt><AcctSvcrRef>DET-{d.id}</AcctSvcrRef><BkTxCd>{_DOMAIN}</BkTxCd>"
        f"<NtryDtls><TxDtls><Refs><EndToEndId>{d.end_to_end_id}</EndToEndId></Refs>"
        f'<AmtDtls><InstdAmt><Amt Ccy="EUR">{_euros(d.amount_cents)}</Amt></InstdAmt></AmtDtls></TxDtls></NtryDtls></Ntry>\n'
        for d in debits
    )
    path.write_text(_CAMT_HEAD.format(msg=path.stem) + entries + _CAMT_TAIL)
    return path


def test_lump_sum_equal_to_the_control_sum_less_rejects_settles_the_file_and_every_debit_not_rejected(
    db, settings, tmp_path
):
    collect(db, settings, requests=5)
    debits = sorted(requests(db).values(), key=lambda r: r.id)
    message = _message_id(db)
    _reconcile(db, _rejects(tmp_path / "reject.xml", message, [(debits[0], "AM04")]))
    paid = sum(d.amount_cents for d in debits[1:])

    report = _reconcile(db, _lump_sum(tmp_path / "lump.xml", message, paid, 4))

    assert (report.applied, report.exceptions, report.batches) == (1, 0, {message: "settled_with_rejects"})
    after = requests(db)
    assert after[debits[0].end_to_end_id].status == "rejected"
    for debit in debits[1:]:
        assert after[debit.end_to_end_id].status == "settled"
        assert after[debit.end_to_end_id].status_changed_at == LATER.now()


def test_lump_sum_that_differs_from_the_control_sum_leaves_the_debits_submitted_and_queues_the_mismatch(
    db, settings, tmp_path
):
    collect(db, settings, requests=3)
    debits = sorted(requests(db).values(), key=lambda r: r.id)
    message = _message_id(db)
    short = sum(d.amount_cents for d in debits) - 1

    report = _reconcile(db, _lump_sum(tmp_path / "short.xml", message, short, 3))

    assert (report.applied, report.exceptions) == (1, 1)
    assert {r.status for r in requests(db).values()} == {"submitted"}
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).one() == "published"
        (exception,) = s.scalars(select(ReturnException))
    assert exception.reason.startswith(f"file {message}: credited ") and "expected" in exception.reason


def test_transaction_details_after_a_lump_sum_settlement_count_as_already_applied(db, settings, tmp_path):
    collect(db, settings, requests=3)
    debits = sorted(requests(db).values(), key=lambda r: r.id)
    message = _message_id(db)
    _reconcile(db, _lump_sum(tmp_path / "lump.xml", message, sum(d.amount_cents for d in debits), 3))

    report = _reconcile(db, _details(tmp_path / "details.xml", debits))

    assert (report.applied, report.already_applied, report.exceptions) == (0, 3, 0)
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).one() == "settled"


# --- the file read in a child process ------------------------------------------------------
def test_a_file_read_in_a_child_process_is_applied_as_in_this_one(db, settings, tmp_path):
    sim = simulate(collect(db, settings), tmp_path / "inbox", 0.3, 0.3, seed=1)

    first = _reconcile(db, sim.pain002_path, read_in_child=True)
    second = _reconcile(db, sim.camt054_path, read_in_child=True, chunk_size=3)

    assert (first.applied, first.exceptions, second.exceptions) == (sim.rejected_count, 0, 0)
    assert first.message == "pain.002.001.10" and first.message_id
    rows = requests(db)
    for rejection in sim.rejected:
        assert rows[rejection.end_to_end_id].status == "rejected"
    for returned in sim.returned:
        assert rows[returned.end_to_end_id].status in ("returned", "refunded")
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).one() == "settled_with_rejects"


def test_a_truncated_file_read_in_a_child_process_is_refused_and_applies_nothing(db, settings, tmp_path):
    sim = simulate(collect(db, settings), tmp_path / "inbox", 0.5, 0.0, seed=1)
    broken = tmp_path / "broken.xml"
    broken.write_bytes(sim.pain002_path.read_bytes()[:-300])

    with pytest.raises(errors.UnreadableFile):
        _reconcile(db, broken, read_in_child=True, chunk_size=2)

    assert {r.status for r in requests(db).values()} == {"submitted"}
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(ReturnFile)) == 0


def test_an_unknown_message_read_in_a_child_process_raises_the_readers_error(db, tmp_path):
    other = tmp_path / "other.xml"
    other.write_text('<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"/>')
    with pytest.raises(errors.UnknownMessage):
        _reconcile(db, other, read_in_child=True)


@pytest.mark.parametrize(
    "content",
    [
        {"end_to_end_id": "MARTIN-000000000012", "returned_on": dt.date(2026, 11, 27), "reason_code": "AM04", "amount_cents": 1234},
        {"end_to_end_id": 'quote " back \\ slash', "returned_on": dt.date(2026, 1, 2), "reason_code": None, "amount_cents": 0},
        {"mandate": "RUM-é-ü-€-\u2028-\x01\ttab", "amount_cents": -5, "remittance": None, "requested_date": dt.date(2027, 2, 1), "final": False},
        {"mandate": "R", "amount_cents": 10**15, "remittance": "Loyer 日本", "requested_date": None, "final": True},
        {"b": dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC), "a": "x"},
    ],
)
def test_canonical_digest_is_the_content_hash_of_the_same_content(content):
    assert idempotency.canonical_digest(content) == idempotency.content_hash(content)


def test_rows_written_in_bulk_are_stored_as_the_orm_stores_them(db, settings, tmp_path):
    from sqlalchemy import insert

    from sepa_engine.db.repositories import returns as repo

    collect(db, settings, requests=1)
    (debit,) = requests(db).values()
    with db.transaction() as s:
        file = ReturnFile(sha256="0" * 64, path="x", status="applied", imported_at=LATER.now())
        s.add(file)
        s.flush()
        row = {
            "return_file_id": file.id, "kind": "returned", "debit_request_id": debit.id, "batch_id": debit.batch_id,
            "end_to_end_id": debit.end_to_end_id, "reason_code": "AM04", "amount_cents": 1234, "fees_cents": None,
            "booking_date": dt.date(2026, 11, 27), "effects": "retry 7",
            "applied_at": dt.datetime(2026, 12, 7, 9, 30, 1, 250, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        }
        s.execute(insert(AppliedReturn.__table__), [{**row, "natural_key": "orm"}])
        repo.executemany(s, insert(AppliedReturn.__table__), [{**row, "natural_key": "bulk"}])
        stored = s.connection().exec_driver_sql(
            "SELECT natural_key, return_file_id, kind, debit_request_id, batch_id, end_to_end_id, reason_code, "
            "amount_cents, fees_cents, booking_date, effects, applied_at FROM applied_returns ORDER BY natural_key"
        ).all()
    bulk, orm = stored
    assert bulk[1:] == orm[1:]
    with db.reader() as s:
        assert {a.applied_at for a in s.scalars(select(AppliedReturn))} == {row["applied_at"]}


def test_a_returned_debit_without_its_payment_entry_gets_the_payment_booked_before_the_return(db, settings, tmp_path):
    from sqlalchemy import delete

    collect(db, settings, requests=2)
    first, second = sorted(requests(db).values(), key=lambda r: r.id)
    with db.transaction() as s:
        s.execute(delete(LedgerEntry).where(LedgerEntry.debit_request_id == first.id))

    _reconcile(db, _rejects(tmp_path / "r.xml", _message_id(db), [(first, "AM04"), (second, "AM04")]))

    with db.reader() as s:
        entries = [(e.debit_request_id, e.kind) for e in s.scalars(select(LedgerEntry).order_by(LedgerEntry.id))]
    # Booked as the single call books it: the payment first, then its return, in file order.
    assert entries[-3:] == [(first.id, "payment"), (first.id, "returned_payment"), (second.id, "returned_payment")]


def test_group_reject_is_applied_page_by_page_to_every_debit_of_the_file(db, settings, tmp_path, monkeypatch):
    from tests.services.test_reconciliation import _pain002_group

    monkeypatch.setattr(reconciliation, "CHUNK", 2)
    collect(db, settings, requests=5)

    report = _reconcile(db, _pain002_group(tmp_path / "am04.xml", _message_id(db), "AM04"))

    assert (report.applied, report.retries, report.exceptions) == (5, 5, 0)
    originals = [r for r in requests(db).values() if r.attempt == 1]
    assert {(r.status, r.reason_code) for r in originals} == {("rejected", "AM04")}
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).one() == "rejected"
        assert s.scalar(select(func.count()).where(LedgerEntry.kind == "returned_payment")) == 5
        assert sorted(s.scalars(select(DebitRequest.retry_of_id).where(DebitRequest.retry_of_id.is_not(None)))) == sorted(
            r.id for r in originals
        )
