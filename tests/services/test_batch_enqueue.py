from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from sepa_engine import errors
from sepa_engine.clock import FixedClock
from sepa_engine.db.models import DebitRequest, LedgerEntry, Mandate, RequestInvoice
from sepa_engine.db.repositories import registry as registry_repo
from sepa_engine.services import registry
from sepa_engine.services.batch_enqueue import EnqueueItem, Part, enqueue_parts, enqueue_requests
from sepa_engine.services.inputs import DebitRequestInput
from tests import ledger
from tests.concurrency import at_once

CLOCK = FixedClock(dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc))


def _items(count: int, mandates: list[str], amount: str = "12.34", prefix: str = "k"):
    return [EnqueueItem(f"{prefix}{i}", DebitRequestInput(mandate=mandates[i % len(mandates)], amount=amount, on_account=True)) for i in range(count)]


def _setup(db, mandates: int = 3) -> list[str]:
    creditor = ledger.creditor(db)
    return [ledger.mandate(db, creditor, reference=f"RUM-B-{n}") and f"RUM-B-{n}" for n in range(mandates)]


def _count(db) -> int:
    with db.reader() as s:
        return s.scalar(select(func.count()).select_from(DebitRequest))


def test_batch_enqueue_writes_every_request_with_its_end_to_end_id(db):
    references = _setup(db)
    with db.transaction() as s:
        result = enqueue_requests(s, "martin", _items(2_500, references), clock=CLOCK, chunk_size=1_000)
    assert (result.created, result.replayed) == (2_500, 0)
    assert _count(db) == 2_500
    e2e = {r.end_to_end_id for r in result.results}
    assert len(e2e) == 2_500 and all(e.startswith("MARTIN-") for e in e2e)
    assert {r.requested_date for r in result.results} == {dt.date(2026, 11, 24)}  # next TARGET day


def test_same_batch_again_is_a_replay_that_writes_nothing(db):
    references = _setup(db)
    with db.transaction() as s:
        first = enqueue_requests(s, "martin", _items(50, references), clock=CLOCK)
    with db.transaction() as s:
        again = enqueue_requests(s, "martin", _items(50, references), clock=CLOCK)
    assert (again.created, again.replayed) == (0, 50)
    assert [r.id for r in again.results] == [r.id for r in first.results]
    assert _count(db) == 50


def test_batch_and_single_enqueue_share_idempotency_keys(db):
    references = _setup(db)
    with db.transaction() as s:
        single = registry.enqueue_request(s, "martin", DebitRequestInput(mandate=references[0], amount="12.34", on_account=True),
                                          idempotency_key="k0", clock=CLOCK)
    with db.transaction() as s:
        batch = enqueue_requests(s, "martin", _items(3, references), clock=CLOCK)
    assert batch.results[0].id == single.id and (batch.created, batch.replayed) == (2, 1)


def test_a_batch_answers_each_item_in_its_place_whether_new_or_replayed(db):
    references = _setup(db)
    with db.transaction() as s:
        stored = enqueue_requests(s, "martin", _items(4, references, amount="1.00", prefix="old"), clock=CLOCK)
    old = [EnqueueItem(f"old{i}", DebitRequestInput(mandate=references[i % 3], amount="1.00", on_account=True)) for i in range(4)]
    new = [EnqueueItem(f"new{i}", DebitRequestInput(mandate=references[0], amount=f"2.0{i}", on_account=True)) for i in range(3)]
    # Replays between new items, and a new item sent twice: answered once, at its first place.
    items = [new[0], old[2], new[1], old[0], new[1], new[2], old[3]]
    with db.transaction() as s:
        result = enqueue_requests(s, "martin", items, clock=CLOCK, chunk_size=5)
    assert (result.created, result.replayed) == (3, 3)
    ids = {r.id: r for r in stored.results}
    assert [(r.created, r.amount_cents if r.created else ids[r.id].amount_cents) for r in result.results] == [
        (True, 200), (False, 100), (True, 201), (False, 100), (True, 202), (False, 100),
    ]
    assert [r.id for r in result.results if not r.created] == [stored.results[i].id for i in (2, 0, 3)]


def test_one_malformed_item_raises_naming_its_index_and_nothing_is_written(db):
    references = _setup(db)
    items = _items(10, references)
    # A Decimal passes the input model (its scale is the service's rule); text would not.
    items[7] = EnqueueItem("bad", DebitRequestInput(mandate=references[0], amount=Decimal("12.345")))
    with pytest.raises(errors.InvalidAmount) as caught, db.transaction() as s:
        enqueue_requests(s, "martin", items, clock=CLOCK)
    assert caught.value.location == "items[7]" and caught.value.field == "amount"
    assert _count(db) == 0


def test_same_key_with_other_content_is_a_conflict(db):
    references = _setup(db)
    with db.transaction() as s:
        enqueue_requests(s, "martin", _items(5, references), clock=CLOCK)
    with pytest.raises(errors.IdempotencyConflict), db.transaction() as s:
        enqueue_requests(s, "martin", _items(5, references, amount="99.00"), clock=CLOCK)


def test_problems_are_reported_as_by_the_single_path(db):
    creditor = ledger.creditor(db)
    ledger.mandate(db, creditor, reference="RUM-BAD", iban="DE89370400440532013001")
    with db.transaction() as s:
        result = enqueue_requests(s, "martin", [EnqueueItem("z", DebitRequestInput(mandate="RUM-BAD", amount="0"))], clock=CLOCK)
    with db.transaction() as s:
        single = registry.enqueue_request(s, "martin", DebitRequestInput(mandate="RUM-BAD", amount="0"),
                                          idempotency_key="z2", clock=CLOCK)
    codes = sorted(p["reason_code"] for p in result.results[0].problems)
    assert codes == sorted(p["reason_code"] for p in single.problems) == ["AC01", "AM01"]


def test_unknown_mandate_raises_and_nothing_is_written(db):
    _setup(db)
    with pytest.raises(errors.NotFound), db.transaction() as s:
        enqueue_requests(s, "martin", [EnqueueItem("x", DebitRequestInput(mandate="NOPE", amount="1.00"))], clock=CLOCK)
    assert _count(db) == 0


def _varied_items(references: list[str]) -> list[EnqueueItem]:
    """32 requests in every shape a row can take: 20 carry an invoice (so their selections are
    a chunk of their own), the rest pay on account; some without remittance, with a date,
    final, or for an ultimate creditor."""
    items = []
    for i in range(32):
        fields: dict[str, object] = {"mandate": references[i % len(references)], "amount": f"{100 + i}.{i:02d}"}
        if i < 20:
            fields.update(invoice_number=f"INV-{i:03d}", invoice_issue_date="2026-11-01", remittance=f"Loyer {i}")
        else:
            fields["on_account"] = True
        if i % 5 == 0:
            fields["requested_date"] = "2026-12-01"
        if i % 7 == 0:
            fields.update(ultimate_creditor_name="SCI Les Tilleuls", ultimate_creditor_id="SCI-TILLEULS-75")
        if i == 31:
            fields["final"] = True
        items.append(EnqueueItem(f"v{i}", DebitRequestInput(**fields)))  # type: ignore[arg-type]
    return items


def _stored_rows(db, creditor_id: int) -> tuple[list[dict[str, object]], list[tuple[str, str, int]]]:
    own = {"id", "creditor_id", "mandate_id", "end_to_end_id"}
    with db.reader() as s:
        rows = s.execute(
            select(DebitRequest, Mandate.reference).join(Mandate, Mandate.id == DebitRequest.mandate_id)
            .where(DebitRequest.creditor_id == creditor_id).order_by(DebitRequest.idempotency_key)
        ).all()
        requests = [
            {**{c.key: getattr(r, c.key) for c in DebitRequest.__table__.columns if c.key not in own}, "mandate": reference}
            for r, reference in rows
        ]
        selections = s.execute(
            select(DebitRequest.idempotency_key, LedgerEntry.document_number, RequestInvoice.amount_cents)
            .join(RequestInvoice, RequestInvoice.debit_request_id == DebitRequest.id)
            .join(LedgerEntry, LedgerEntry.id == RequestInvoice.entry_id)
            .where(DebitRequest.creditor_id == creditor_id).order_by(DebitRequest.idempotency_key)
        ).all()
    return requests, [tuple(row) for row in selections]


def test_a_chunk_written_in_one_statement_stores_what_one_request_at_a_time_stores(db):
    # On PostgreSQL a chunk of 16 rows or more goes as one INSERT ... SELECT FROM unnest
    # (bulk.insert_many), fewer as an executemany: the rows and the invoices they pay must
    # not depend on which.
    stored = {}
    for code, identifier, chunk_size in (("whole", "FR72ZZZ123456", 1_000), ("alone", "DE98ZZZ09999999999", 1)):
        creditor = ledger.creditor(db, code=code, creditor_identifier=identifier)
        references = [f"RUM-V-{n}" for n in range(3)]  # the same references: the digests agree
        for reference in references:
            ledger.mandate(db, creditor, reference=reference)
        with db.transaction() as s:
            result = enqueue_requests(s, code, _varied_items(references), clock=CLOCK, chunk_size=chunk_size)
        assert (result.created, result.replayed) == (32, 0)
        stored[code] = _stored_rows(db, creditor)

    requests, selections = stored["whole"]
    assert len(requests) == 32 and len(selections) == 20
    assert {r["ultimate_creditor_name"] for r in requests} == {None, "SCI Les Tilleuls"}
    assert {r["remittance"] for r in requests if r["pays"] == "on_account"} == {None}
    assert requests == stored["alone"][0]
    assert selections == stored["alone"][1]


def test_a_chunk_whose_keys_another_writer_took_meanwhile_is_replayed_one_by_one(db, monkeypatch):
    # The chunk's keys were read as free and found taken by the insert (another process
    # stored them in between): the statement fails on the unique key whichever way it was
    # sent, and each request then settles its race alone, as a replay.
    references = _setup(db)
    with db.transaction() as s:
        first = enqueue_requests(s, "martin", _items(20, references), clock=CLOCK)
    monkeypatch.setattr(registry_repo, "requests_by_creditor_keys", lambda *_args: {})
    with db.transaction() as s:
        again = enqueue_requests(s, "martin", _items(20, references), clock=CLOCK)
    assert (again.created, again.replayed) == (0, 20)
    assert [r.id for r in again.results] == [r.id for r in first.results]
    assert _count(db) == 20


def test_two_sessions_enqueueing_the_same_chunk_at_once_store_each_request_once(db, monkeypatch):
    references = _setup(db)
    looked_up = threading.Barrier(2)
    real_lookup = registry_repo.requests_by_creditor_keys

    # PostgreSQL: both writers read the chunk's keys as free before either inserts, so both
    # send the whole chunk and the unique key decides. SQLite queues writers at BEGIN
    # IMMEDIATE: there the second reads the first's rows, and the barrier would wait in vain.
    def lookup_then_wait(*args):  # type: ignore[no-untyped-def]
        found = real_lookup(*args)
        if not db.is_sqlite:
            looked_up.wait(timeout=30)
        return found

    monkeypatch.setattr(registry_repo, "requests_by_creditor_keys", lookup_then_wait)

    def enqueue():  # type: ignore[no-untyped-def]
        with db.transaction() as s:
            return enqueue_requests(s, "martin", _items(20, references), clock=CLOCK)

    outcomes = at_once(enqueue, enqueue)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    results = [o for o in outcomes if not isinstance(o, BaseException)]

    assert failures == []
    assert sorted((r.created, r.replayed) for r in results) == [(0, 20), (20, 0)]
    assert [r.id for r in results[0].results] == [r.id for r in results[1].results]
    assert _count(db) == 20


def _two_creditors(db) -> tuple[list[str], list[str]]:
    """martin and gim, three mandates each, with references of the same shape."""
    references = _setup(db)
    gim = ledger.creditor(db, "gim", creditor_identifier="FR72ZZZ123457", name="GIM")
    return references, [ledger.mandate(db, gim, reference=f"RUM-G-{n}") and f"RUM-G-{n}" for n in range(3)]


def test_parts_of_two_creditors_are_each_enqueued_and_answered_in_their_items_order_across_chunks(db):
    martin, gim = _two_creditors(db)
    with db.transaction() as s:
        stored = enqueue_requests(s, "gim", _items(2, gim, prefix="k"), clock=CLOCK)
    # The same keys under both creditors are different requests; gim's first two are replays.
    with db.transaction() as s:
        results = enqueue_parts(
            s, [Part("martin", _items(4, martin)), Part("gim", _items(5, gim))], clock=CLOCK, chunk_size=3
        )
    assert [(r.created, r.replayed) for r in results] == [(4, 0), (3, 2)]
    assert [r.creditor_code for r in results[0].results] == ["martin"] * 4
    assert [r.creditor_code for r in results[1].results] == ["gim"] * 5
    assert [r.id for r in results[1].results[:2]] == [r.id for r in stored.results]
    assert [r.end_to_end_id.split("-")[0] for r in results[0].results + results[1].results] == ["MARTIN"] * 4 + ["GIM"] * 5
    with db.reader() as s:
        rows = s.execute(select(DebitRequest.idempotency_key, Mandate.reference).join(Mandate).order_by(DebitRequest.id)).all()
    assert sorted(tuple(r) for r in rows) == sorted(
        [(f"k{i}", martin[i % 3]) for i in range(4)] + [(f"k{i}", gim[i % 3]) for i in range(5)]
    )


def test_a_refused_item_in_the_second_part_names_its_index_there_and_nothing_of_either_part_is_written(db):
    martin, gim = _two_creditors(db)
    items = _items(3, gim)
    items[1] = EnqueueItem("bad", DebitRequestInput(mandate=gim[0], amount=Decimal("12.345")))
    with pytest.raises(errors.InvalidAmount) as caught, db.transaction() as s:
        enqueue_parts(s, [Part("martin", _items(3, martin)), Part("gim", items)], clock=CLOCK)
    assert caught.value.location == "items[1]" and caught.value.field == "amount"
    assert _count(db) == 0


def test_a_creditors_part_cannot_reach_another_creditors_account_through_the_shared_gate(db):
    # The gate reads both creditors' accounts in one statement each; every row read is
    # checked against its own creditor, so martin's debits see martin's ledger only.
    martin, gim = _two_creditors(db)
    with db.transaction() as s:
        results = enqueue_parts(
            s, [Part("martin", _items(3, martin, amount="5.00")), Part("gim", _items(3, gim, amount="7.00"))], clock=CLOCK
        )
    with db.reader() as s:
        by_creditor = dict(s.execute(
            select(DebitRequest.creditor_id, func.sum(DebitRequest.amount_cents)).group_by(DebitRequest.creditor_id)
        ).all())
        owners = {m.reference: m.creditor_id for m in s.scalars(select(Mandate))}
    assert sorted(by_creditor.values()) == [1_500, 2_100]
    assert {r.mandate_reference for r in results[0].results} <= set(martin)
    assert {owners[r.mandate_reference] for r in results[1].results} == {owners[gim[0]]}


def test_one_creditor_in_two_parts_settles_a_key_sent_in_both_as_two_calls_would(db):
    # The batcher gives each creditor one part; a caller that gives two still gets exactly
    # once: the second sending of a key is a replay of the first, not a second request.
    references = _setup(db)
    items = _items(2, references)
    with db.transaction() as s:
        first, second = enqueue_parts(s, [Part("martin", items), Part("martin", items[1:])], clock=CLOCK)
    assert (first.created, first.replayed, second.created, second.replayed) == (2, 0, 0, 1)
    assert second.results[0].id == first.results[1].id
    assert _count(db) == 2


def test_two_creditors_mandates_of_the_same_reference_are_each_found_under_their_own_creditor(db):
    # The parts' mandates are read in one statement: a reference is unique within its
    # creditor only, so each part's debits must land on its own creditor's mandate.
    martin = _setup(db, mandates=1)
    gim = ledger.creditor(db, "gim", creditor_identifier="FR72ZZZ123457", name="GIM")
    ledger.mandate(db, gim, reference=martin[0])
    with db.transaction() as s:
        results = enqueue_parts(
            s, [Part("martin", _items(2, martin, prefix="m")), Part("gim", _items(2, martin, prefix="g"))], clock=CLOCK
        )
    with db.reader() as s:
        rows = s.execute(
            select(DebitRequest.idempotency_key, DebitRequest.creditor_id, Mandate.creditor_id).join(Mandate)
        ).all()
    assert [(r.created, r.replayed) for r in results] == [(2, 0), (2, 0)]
    assert len(rows) == 4 and all(request_creditor == mandate_creditor for _, request_creditor, mandate_creditor in rows)
    assert {key[0] for key, creditor_id, _ in rows if creditor_id == gim} == {"g"}


def test_an_unknown_creditor_in_the_second_part_is_named_and_nothing_is_written(db):
    martin = _setup(db)
    with pytest.raises(errors.NotFound) as caught, db.transaction() as s:
        enqueue_parts(s, [Part("martin", _items(2, martin)), Part("nobody", _items(1, martin))], clock=CLOCK)
    assert (caught.value.field, caught.value.value) == ("creditor", "nobody")
    assert _count(db) == 0
