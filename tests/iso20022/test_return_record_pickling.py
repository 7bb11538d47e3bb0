"""A record read in a child process crosses a pipe pickled (services/return_reading.py): it
must arrive with every field as it was read, including fields added later."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import pickle

from sepa_engine.iso20022.returns import Kind, ReturnRecord, Scope


def _every_field_set() -> ReturnRecord:
    """A record whose every field differs from its default (a value per field type)."""
    values: dict[str, object] = {}
    for n, field in enumerate(dataclasses.fields(ReturnRecord)):
        if field.name == "scope":
            values[field.name] = Scope.PAYMENT_BLOCK
        elif field.name == "kind":
            values[field.name] = Kind.REFUNDED
        elif "date" in field.name:
            values[field.name] = dt.date(2026, 11, 1 + n % 28)
        elif field.name.endswith(("_cents", "_transactions")):
            values[field.name] = 1_000 + n
        elif field.name in ("booked", "reversal_indicator"):
            values[field.name] = True
        else:
            values[field.name] = f"{field.name}-\"é\\-{n}"
    return ReturnRecord(**values)  # type: ignore[arg-type]


def test_a_pickled_record_arrives_with_every_field_as_it_was_read():
    record = _every_field_set()
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(record, protocol=protocol))
        assert back == record
        assert type(back) is ReturnRecord
        for field in dataclasses.fields(ReturnRecord):
            assert getattr(back, field.name) == getattr(record, field.name), field.name
        assert type(back.kind) is Kind and type(back.scope) is Scope


def test_a_chunk_of_records_with_defaults_and_shared_values_round_trips():
    records = [
        ReturnRecord(Scope.TRANSACTION, Kind.RETURNED, f"/Document/Ntry[{i}]", booked=True,
                     end_to_end_id=f"E2E-{i}", amount_cents=100 + i, reason_code="AM04")
        for i in range(3)
    ] + [_every_field_set()]
    assert pickle.loads(pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL)) == records
    assert [copy.copy(r) for r in records] == records
    assert copy.deepcopy(records) == records
