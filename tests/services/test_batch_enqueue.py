from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from sepa_engine import errors
from sepa_engine.clock import FixedClock
from sepa_engine.db.models import DebitRequest
from sepa_engine.services import registry
from sepa_engine.services.batch_enqueue import EnqueueItem, enqueue_requests
from sepa_engine.services.inputs import DebitRequestInput
from tests import ledger

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
