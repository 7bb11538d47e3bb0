from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from sepa_engine import errors
from sepa_engine.clock import FixedClock
from sepa_engine.db.models import Creditor, DebitRequest, DebtorAccount, Mandate
from sepa_engine.db.repositories import registry as repo
from sepa_engine.domain import identifiers
from sepa_engine.domain.eligibility import Candidate, refusal_for
from sepa_engine.services import problems as problem_checks
from sepa_engine.services import registry
from sepa_engine.services.inputs import (
    AddressInput,
    CreditorInput,
    DebitRequestInput,
    DebtorAccountInput,
    MandateInput,
)
from tests.concurrency import at_once

# Friday 20 November 2026, 11:00 in Paris: the next TARGET day is Monday the 23rd.
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.timezone.utc)
DEBTOR_IBAN = "DE89370400440532013000"
# Same German bank (37040044) as DEBTOR_IBAN, another account.
SAME_BANK_IBAN = "DE62370400440532013001"
CREDITOR = CreditorInput(
    code="martin",
    name="Gestion Immobiliere Martin",
    creditor_identifier="FR72ZZZ123456",
    iban="FR7630006000011234567890189",
    bic="AGRIFRPP",
    address=AddressInput(country="FR", town="Paris"),
)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def account_input(n: int = 1, **overrides: object) -> DebtorAccountInput:
    values: dict[str, object] = {"reference": f"CUST-{n}", "name": f"Locataire {n}"}
    values.update(overrides)
    return DebtorAccountInput(**values)  # type: ignore[arg-type]


def mandate_input(n: int = 1, **overrides: object) -> MandateInput:
    values: dict[str, object] = {
        "reference": f"RUM-{n:06d}",
        "debtor_account": f"CUST-{n}",
        "signed_on": dt.date(2025, 1, 15),
        "iban": DEBTOR_IBAN,
    }
    values.update(overrides)
    return MandateInput(**values)  # type: ignore[arg-type]


def request_input(mandate_n: int = 1, **overrides: object) -> DebitRequestInput:
    # On account: these tests are about the registry, on accounts that owe nothing (the
    # account gate has its own tests in test_debit_gate.py).
    values: dict[str, object] = {"mandate": f"RUM-{mandate_n:06d}", "amount": "12.34", "on_account": True}
    values.update(overrides)
    return DebitRequestInput(**values)  # type: ignore[arg-type]


def setup_mandate(db, clock, n: int = 1, **mandate_overrides: object) -> registry.MandateResult:  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        if repo.creditor_by_code(s, "martin") is None:
            registry.register_creditor(s, CREDITOR, idempotency_key="creditor", clock=clock)
        registry.register_debtor_account(s, "martin", account_input(n), idempotency_key=f"account-{n}", clock=clock)
        return registry.register_mandate(
            s, "martin", mandate_input(n, **mandate_overrides), idempotency_key=f"mandate-{n}", clock=clock
        )


def enqueue(db, clock, key: str, data: DebitRequestInput | None = None) -> registry.RequestResult:  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        return registry.enqueue_request(s, "martin", data or request_input(), idempotency_key=key, clock=clock)


def count(db, model) -> int:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def request_row(db, request_id: int) -> DebitRequest:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return s.get_one(DebitRequest, request_id)


def mandate_row(db, mandate_id: int) -> Mandate:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        row = s.get_one(Mandate, mandate_id)
        s.expunge(row)
        return row


# --- idempotency ---------------------------------------------------------------------------
def test_replaying_every_mutation_with_its_key_and_content_returns_the_first_result_and_writes_nothing(db, clock):
    with db.transaction() as s:
        creditor = registry.register_creditor(s, CREDITOR, idempotency_key="c", clock=clock)
        account = registry.register_debtor_account(s, "martin", account_input(), idempotency_key="a", clock=clock)
        mandate = registry.register_mandate(s, "martin", mandate_input(), idempotency_key="m", clock=clock)
        request = registry.enqueue_request(s, "martin", request_input(), idempotency_key="r", clock=clock)
    before = [count(db, model) for model in (Creditor, DebtorAccount, Mandate, DebitRequest)]
    clock.advance(dt.timedelta(days=3))  # a replay days later is still a replay

    with db.transaction() as s:
        replayed = (
            registry.register_creditor(s, CREDITOR, idempotency_key="c", clock=clock),
            registry.register_debtor_account(s, "martin", account_input(), idempotency_key="a", clock=clock),
            registry.register_mandate(s, "martin", mandate_input(), idempotency_key="m", clock=clock),
            registry.enqueue_request(s, "martin", request_input(), idempotency_key="r", clock=clock),
        )

    assert all(result.created for result in (creditor, account, mandate, request))
    assert replayed == tuple(
        dataclasses.replace(first, created=False) for first in (creditor, account, mandate, request)
    )
    assert [count(db, model) for model in (Creditor, DebtorAccount, Mandate, DebitRequest)] == before


def test_the_same_amount_spelled_differently_is_the_same_content(db, clock):
    setup_mandate(db, clock)
    first = enqueue(db, clock, "r", request_input(amount="12.3"))
    again = enqueue(db, clock, "r", request_input(amount=Decimal("12.30")))
    assert again.id == first.id and not again.created


@pytest.mark.parametrize(
    "mutation",
    ["creditor", "debtor_account", "mandate", "request"],
)
def test_the_same_key_with_other_content_raises_an_idempotency_conflict_naming_the_key(db, clock, mutation):
    setup_mandate(db, clock)
    enqueue(db, clock, "request-key")
    calls = {
        "creditor": lambda s: registry.register_creditor(
            s, CREDITOR.replace(name="Martin SA"), idempotency_key="creditor", clock=clock
        ),
        "debtor_account": lambda s: registry.register_debtor_account(
            s, "martin", account_input(name="Autre Nom"), idempotency_key="account-1", clock=clock
        ),
        "mandate": lambda s: registry.register_mandate(
            s, "martin", mandate_input(iban=SAME_BANK_IBAN), idempotency_key="mandate-1", clock=clock
        ),
        "request": lambda s: registry.enqueue_request(
            s, "martin", request_input(amount="99.99"), idempotency_key="request-key", clock=clock
        ),
    }
    with pytest.raises(errors.IdempotencyConflict) as caught, db.transaction() as s:
        calls[mutation](s)
    assert caught.value.field == "idempotency_key"
    assert caught.value.value in {"creditor", "account-1", "mandate-1", "request-key"}
    assert count(db, DebitRequest) == 1 and count(db, Mandate) == 1


def test_a_key_stored_by_a_concurrent_writer_after_the_lookup_is_answered_as_a_replay(db, clock, monkeypatch):
    setup_mandate(db, clock)
    first = enqueue(db, clock, "raced")
    real = repo.requests_by_creditor_keys
    missed: list[str] = []

    # The first lookup misses, as it does for a writer that read before the other committed:
    # the unique constraint then refuses the insert, and the savepoint keeps the transaction.
    def miss_once(session, keys):  # type: ignore[no-untyped-def]
        if [sorted(k) for k in keys.values()] == [["raced"]] and not missed:
            missed.append("raced")
            return {}
        return real(session, keys)

    monkeypatch.setattr(repo, "requests_by_creditor_keys", miss_once)

    with db.transaction() as s:
        again = registry.enqueue_request(s, "martin", request_input(), idempotency_key="raced", clock=clock)
        other = registry.enqueue_request(s, "martin", request_input(amount="1.00"), idempotency_key="after", clock=clock)

    assert missed == ["raced"]
    assert again == dataclasses.replace(first, created=False)
    assert other.created
    assert count(db, DebitRequest) == 2


def test_two_threads_enqueueing_the_same_key_with_separate_sessions_create_one_row(db, clock, monkeypatch):
    setup_mandate(db, clock)
    looked_up = threading.Barrier(2)
    real_lock = repo.lock_mandate

    # PostgreSQL: hold both writers after their key lookup (which missed), so that both
    # insert and the unique constraint decides. SQLite queues writers at BEGIN IMMEDIATE, so
    # there the second lookup always follows the first commit and the barrier would wait in vain.
    def lock_after_both_looked_up(session, row, *, shared):  # type: ignore[no-untyped-def]
        if not db.is_sqlite:
            looked_up.wait(timeout=30)
        return real_lock(session, row, shared=shared)

    monkeypatch.setattr(repo, "lock_mandate", lock_after_both_looked_up)

    def enqueue() -> registry.RequestResult:
        with db.transaction() as s:
            return registry.enqueue_request(s, "martin", request_input(), idempotency_key="twice", clock=clock)

    outcomes = at_once(enqueue, enqueue)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    results = [o for o in outcomes if isinstance(o, registry.RequestResult)]

    assert failures == []
    assert len(results) == 2 and results[0].id == results[1].id
    assert sorted(result.created for result in results) == [False, True]
    assert count(db, DebitRequest) == 1


# --- creditors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        ({"iban": "FR7630006000011234567890188"}, "iban", errors.InvalidChecksum),
        ({"creditor_identifier": "FR73ZZZ123456"}, "creditor_identifier", errors.InvalidChecksum),
        ({"bic": "AGRIFR"}, "bic", errors.InvalidFormat),
        ({"code": "Martin"}, "code", errors.InvalidFormat),
        ({"lead_days": 0}, "lead_days", errors.InvalidFormat),
        ({"cutoff": "24:00"}, "cutoff", errors.InvalidFormat),
        ({"timezone": "Europe/Lutece"}, "timezone", errors.InvalidFormat),
        ({"max_per_file": 1_000_001}, "max_per_file", errors.InvalidFormat),
        ({"pain008_version": "pain.008.001.09"}, "pain008_version", errors.InvalidFormat),
        ({"local_instrument": "COR1"}, "local_instrument", errors.InvalidFormat),
        ({"address": {"country": "fr", "town": "Paris"}}, "address.country", errors.InvalidFormat),
    ],
)
def test_a_creditor_is_configuration_so_every_rule_raises_and_nothing_is_stored(db, clock, change, field, error):
    with pytest.raises(error) as caught, db.transaction() as s:
        registry.register_creditor(s, CREDITOR.replace(**change), idempotency_key="c", clock=clock)
    assert caught.value.field == field
    assert count(db, Creditor) == 0


def test_a_second_creditor_with_a_taken_code_or_identifier_raises(db, clock):
    setup_mandate(db, clock)
    with pytest.raises(errors.DuplicateIdentifier) as by_code, db.transaction() as s:
        registry.register_creditor(s, CREDITOR, idempotency_key="other-key", clock=clock)
    with pytest.raises(errors.DuplicateIdentifier) as by_identifier, db.transaction() as s:
        registry.register_creditor(s, CREDITOR.replace(code="martin-2"), idempotency_key="k2", clock=clock)
    assert (by_code.value.field, by_identifier.value.field) == ("code", "creditor_identifier")


def test_registering_for_an_unknown_creditor_raises_naming_the_creditor(db, clock):
    with pytest.raises(errors.NotFound) as caught, db.transaction() as s:
        registry.register_debtor_account(s, "nobody", account_input(), idempotency_key="a", clock=clock)
    assert (caught.value.field, caught.value.value) == ("creditor", "nobody")


# --- inputs --------------------------------------------------------------------------------
def test_a_wrong_type_is_refused_when_the_input_is_built_naming_the_field():
    # A date is a date or its ISO text (as in mandates.json); a time of day is not a date.
    with pytest.raises(errors.InvalidFormat) as caught:
        mandate_input(signed_on=dt.datetime(2025, 1, 15, 10, 0, tzinfo=dt.timezone.utc))
    assert caught.value.field == "signed_on"
    assert mandate_input(signed_on="2025-01-15").signed_on == dt.date(2025, 1, 15)
    with pytest.raises(errors.InvalidFormat) as money:
        request_input(amount=12.34)
    assert money.value.field == "amount" and "float" in money.value.rule


@pytest.mark.parametrize(
    ("record", "field", "rule"),
    [
        ({"debtor_account": "C", "signed_on": "2025-01-15", "iban": DEBTOR_IBAN}, "reference", "is required"),
        ({"reference": "R", "debtor_account": "C", "signed_on": "15/01/2025", "iban": DEBTOR_IBAN}, "signed_on", "is not a date in the form YYYY-MM-DD"),
        ({"reference": "R", "debtor_account": "C", "signed_on": "2025-01-15", "iban": DEBTOR_IBAN, "colour": "blue"}, "colour", "is not a known field"),
    ],
)
def test_a_record_missing_a_field_or_carrying_an_unknown_one_is_refused_by_name(record, field, rule):
    with pytest.raises(errors.InvalidFormat) as caught:
        MandateInput.from_mapping(record)
    assert (caught.value.field, caught.value.rule) == (field, rule)


def test_a_nested_address_field_is_named_with_its_path():
    with pytest.raises(errors.InvalidFormat) as caught:
        DebtorAccountInput.from_mapping({"reference": "C", "name": "N", "address": {"country": "FR", "town": 75}})
    assert caught.value.field == "address.town"


def test_an_identifier_longer_than_its_column_raises_and_writes_nothing(db, clock):
    setup_mandate(db, clock)
    with pytest.raises(errors.InvalidLength) as caught, db.transaction() as s:
        registry.register_mandate(
            s, "martin", mandate_input(1, reference="R" * 36), idempotency_key="long", clock=clock
        )
    assert caught.value.field == "reference"
    assert "R" * 36 not in str(caught.value)  # the reference is masked in the message
    assert count(db, Mandate) == 1


# --- mandates ------------------------------------------------------------------------------
def test_a_mandate_with_a_bad_iban_is_stored_and_its_problems_listed(db, clock):
    result = setup_mandate(db, clock, iban="DE89370400440532013009")
    assert result.created and count(db, Mandate) == 1
    assert [(p["field"], p["code"], p["reason_code"]) for p in result.problems] == [
        ("iban", "invalid_checksum", "AC01")
    ]


def test_a_new_mandate_supersedes_the_active_one_inheriting_its_history_and_taking_its_pending_requests(db, clock):
    old = setup_mandate(db, clock)
    pending = enqueue(db, clock, "pending")
    assigned = enqueue(db, clock, "assigned")
    with db.transaction() as s:
        s.execute(update(DebitRequest).where(DebitRequest.id == assigned.id).values(status="assigned"))
        s.execute(
            update(Mandate)
            .where(Mandate.id == old.id)
            .values(
                first_collected_on=dt.date(2025, 2, 3),
                last_collected_on=dt.date(2026, 10, 5),
                presented_creditor_identifier="FR72ZZZ123456",
            )
        )

    with db.transaction() as s:
        new = registry.register_mandate(
            s, "martin", mandate_input(1, iban=SAME_BANK_IBAN), idempotency_key="new-iban", clock=clock
        )

    old_row, new_row = mandate_row(db, old.id), mandate_row(db, new.id)
    assert old_row.status == "superseded" and old_row.status_changed_at is not None
    assert (new.status, new.supersedes_id, new.amendment_pending) == ("active", old.id, True)
    assert new_row.reference == old_row.reference  # same UMR, new IBAN
    assert (new_row.first_collected_on, new_row.last_collected_on, new_row.presented_creditor_identifier) == (
        dt.date(2025, 2, 3),
        dt.date(2026, 10, 5),
        "FR72ZZZ123456",
    )
    assert request_row(db, pending.id).mandate_id == new.id
    assert request_row(db, assigned.id).mandate_id == old.id  # already in a file: stays


def test_supersedes_names_the_mandate_to_replace_even_on_another_account(db, clock):
    old = setup_mandate(db, clock, 1)
    with db.transaction() as s:
        registry.register_debtor_account(s, "martin", account_input(2), idempotency_key="account-2", clock=clock)
        new = registry.register_mandate(
            s,
            "martin",
            mandate_input(2, reference="RUM-NEW", supersedes=old.reference),
            idempotency_key="m2",
            clock=clock,
        )
    assert new.supersedes_id == old.id and mandate_row(db, old.id).status == "superseded"


def test_a_request_naming_a_superseded_reference_goes_to_the_mandate_that_replaced_it(db, clock):
    old = setup_mandate(db, clock)
    with db.transaction() as s:
        new = registry.register_mandate(
            s, "martin", mandate_input(1, reference="RUM-NEW"), idempotency_key="m-new", clock=clock
        )
    result = enqueue(db, clock, "late", request_input(1))
    assert (result.mandate_id, result.mandate_reference) == (new.id, "RUM-NEW")
    assert old.id != new.id


def test_the_accounts_blocked_mandate_sent_again_with_a_new_iban_is_replaced(db, clock):
    old = setup_mandate(db, clock)
    with db.transaction() as s:
        s.execute(update(Mandate).where(Mandate.id == old.id).values(status="blocked"))
    with db.transaction() as s:
        new = registry.register_mandate(
            s, "martin", mandate_input(1, iban=SAME_BANK_IBAN), idempotency_key="after-block", clock=clock
        )
    assert (new.status, new.supersedes_id, new.problems) == ("active", old.id, ())
    assert mandate_row(db, old.id).status == "superseded"


def test_a_revoked_mandate_cannot_be_superseded(db, clock):
    old = setup_mandate(db, clock)
    with db.transaction() as s:
        registry.revoke_mandate(s, "martin", old.reference, reason="debtor", clock=clock)
    with pytest.raises(errors.MandateError), db.transaction() as s:
        registry.register_mandate(
            s, "martin", mandate_input(1, reference="RUM-X", supersedes=old.reference), idempotency_key="x", clock=clock
        )
    assert count(db, Mandate) == 1


def test_a_reference_in_force_for_another_account_raises_duplicate(db, clock):
    setup_mandate(db, clock, 1)
    with pytest.raises(errors.DuplicateIdentifier) as caught, db.transaction() as s:
        registry.register_debtor_account(s, "martin", account_input(2), idempotency_key="account-2", clock=clock)
        registry.register_mandate(
            s, "martin", mandate_input(2, reference="RUM-000001"), idempotency_key="m2", clock=clock
        )
    assert caught.value.field == "reference"
    assert count(db, DebtorAccount) == 1  # the whole transaction rolled back


def test_revoking_cancels_the_pending_requests_of_the_mandate_and_only_those(db, clock):
    mandate = setup_mandate(db, clock)
    setup_mandate(db, clock, 2)
    first, second = enqueue(db, clock, "p1"), enqueue(db, clock, "p2")
    assigned = enqueue(db, clock, "a")
    elsewhere = enqueue(db, clock, "other", request_input(2))
    with db.transaction() as s:
        s.execute(update(DebitRequest).where(DebitRequest.id == assigned.id).values(status="assigned"))

    with db.transaction() as s:
        cancelled = registry.revoke_mandate(s, "martin", mandate.reference, reason="debtor closed the account", clock=clock)
    with db.transaction() as s:
        again = registry.revoke_mandate(s, "martin", mandate.reference, reason="twice", clock=clock)

    assert (cancelled, again) == (2, 0)
    assert mandate_row(db, mandate.id).status == "revoked"
    for request in (first, second):
        row = request_row(db, request.id)
        assert (row.status, row.reason) == ("cancelled", "mandate revoked")
    assert request_row(db, assigned.id).status == "assigned"
    assert request_row(db, elsewhere.id).status == "pending"


# --- requests ------------------------------------------------------------------------------
def test_enqueueing_on_an_unknown_mandate_raises_naming_the_field(db, clock):
    setup_mandate(db, clock)
    with pytest.raises(errors.NotFound) as caught:
        enqueue(db, clock, "r", request_input(mandate_n=404))
    assert caught.value.field == "mandate"
    assert count(db, DebitRequest) == 0


def test_a_request_on_a_revoked_mandate_is_stored_with_its_problem(db, clock):
    mandate = setup_mandate(db, clock)
    with db.transaction() as s:
        registry.revoke_mandate(s, "martin", mandate.reference, reason="debtor", clock=clock)
    result = enqueue(db, clock, "r")
    assert (result.created, result.status) == (True, "pending")
    assert [(p["field"], p["reason_code"]) for p in result.problems] == [("mandate", "MD01")]


@pytest.mark.parametrize(
    ("amount", "cents", "reason_code"),
    [("0", 0, "AM01"), ("0.00", 0, "AM01"), ("1000000000.00", 100_000_000_000, "AM02")],
)
def test_an_amount_out_of_the_sepa_range_is_stored_with_a_problem(db, clock, amount, cents, reason_code):
    setup_mandate(db, clock)
    result = enqueue(db, clock, "r", request_input(amount=amount))
    assert (result.created, result.status, result.amount_cents) == (True, "pending", cents)
    assert [(p["field"], p["reason_code"]) for p in result.problems] == [("amount", reason_code)]
    assert request_row(db, result.id).amount_cents == cents


@pytest.mark.parametrize(
    "amount",
    ["12,34", "-1", "-0.01", "12.345", "1e3", "abc", "", "NaN", Decimal("-5"), Decimal("0.001"), Decimal("Infinity")],
)
def test_a_malformed_amount_raises_naming_the_field_and_writes_nothing(db, clock, amount):
    setup_mandate(db, clock)
    with pytest.raises(errors.InvalidAmount) as caught:
        enqueue(db, clock, "r", request_input(amount=amount))
    assert caught.value.field == "amount"
    assert count(db, DebitRequest) == 0


def test_a_request_on_a_blocked_mandate_is_stored_with_the_reason_the_run_will_give(db, clock):
    mandate = setup_mandate(db, clock)
    with db.transaction() as s:
        s.execute(update(Mandate).where(Mandate.id == mandate.id).values(status="blocked"))
    result = enqueue(db, clock, "r")
    assert result.created
    assert [(p["code"], p["reason_code"]) for p in result.problems] == [("mandate_not_active", "MD01")]


def test_the_requested_date_defaults_to_the_next_target_day_in_the_creditors_zone(db, clock):
    setup_mandate(db, clock)
    friday = enqueue(db, clock, "friday", request_input(requested_date=None))
    # 23:30 UTC on Sunday is already Monday in Paris: the next TARGET day is Tuesday.
    clock.advance(dt.timedelta(days=2, hours=13, minutes=30))
    sunday_night = enqueue(db, clock, "monday-in-paris", request_input(requested_date=None))
    assert friday.requested_date == dt.date(2026, 11, 23)
    assert sunday_night.requested_date == dt.date(2026, 11, 24)


def test_the_end_to_end_id_is_derived_from_the_row_and_is_a_valid_sepa_reference(db, clock):
    setup_mandate(db, clock)
    results = [enqueue(db, clock, f"r{n}") for n in range(3)]
    assert [r.end_to_end_id for r in results] == [f"MARTIN-{r.id:012d}" for r in results]
    for result in results:
        assert identifiers.validate_reference(result.end_to_end_id) == result.end_to_end_id
    assert registry.end_to_end_id("a-very-long-creditor-code", 10**12 - 1) == "A-VERY-LON-999999999999"


@pytest.mark.parametrize(
    ("arrange", "amount"),
    [
        ({}, "0"),
        ({"iban": "DE89370400440532013009"}, "10.00"),
        ({"status": "blocked"}, "10.00"),
        ({"signed_on": dt.date(2027, 1, 1)}, "10.00"),
    ],
)
def test_problems_carry_the_reason_code_the_collection_run_refuses_with(db, clock, arrange, amount):
    mandate = setup_mandate(db, clock)
    if arrange:
        with db.transaction() as s:
            s.execute(update(Mandate).where(Mandate.id == mandate.id).values(**arrange))
    result = enqueue(db, clock, "r", request_input(amount=amount))
    with db.reader() as s:
        row = s.get_one(DebitRequest, result.id)
        mandate_row_ = s.get_one(Mandate, row.mandate_id)
        candidate = Candidate(
            amount_cents=row.amount_cents,
            end_to_end_id=row.end_to_end_id,
            mandate=problem_checks.domain_mandate(mandate_row_),
            iban=mandate_row_.iban,
            bic=mandate_row_.bic,
            debtor_name=mandate_row_.debtor_account.name,
            debtor_country=mandate_row_.debtor_account.address_country,
            debtor_town=mandate_row_.debtor_account.address_town,
        )
    refusal = refusal_for(candidate, row.requested_date)
    assert refusal is not None
    assert refusal.reason_code in {p["reason_code"] for p in result.problems}


# --- listings ------------------------------------------------------------------------------
def test_requests_are_listed_by_id_with_filters_and_keyset_pages(db, clock):
    mandate = setup_mandate(db, clock)
    ids = [enqueue(db, clock, f"r{n}").id for n in range(5)]
    with db.transaction() as s:
        registry.revoke_mandate(s, "martin", mandate.reference, reason="x", clock=clock)
    setup_mandate(db, clock, 2)
    pending = enqueue(db, clock, "still-pending", request_input(2)).id

    with db.reader() as s:
        first = registry.list_requests(s, limit=2)
        second = registry.list_requests(s, limit=2, after_id=first.next_after)
        cancelled = registry.list_requests(s, status="cancelled", creditor_code="martin", limit=50)
        only_pending = registry.list_requests(s, status="pending")
        with pytest.raises(errors.InvalidFormat):
            registry.list_requests(s, status="lost")
        with pytest.raises(errors.NotFound):
            registry.list_requests(s, creditor_code="nobody")

    assert [r.id for r in first.items] == ids[:2] and first.next_after == ids[1]
    assert [r.id for r in second.items] == ids[2:4]
    assert [r.id for r in cancelled.items] == ids and cancelled.next_after is None
    assert [r.id for r in only_pending.items] == [pending]
    assert cancelled.items[0].reason == "mandate revoked"


def test_a_mandate_signed_in_the_future_is_refused_and_nothing_is_stored(db, clock):
    with pytest.raises(errors.InvalidDate, match=r"signed_on '2999-01-01' is in the future"):
        setup_mandate(db, clock, signed_on=dt.date(2999, 1, 1))
    assert count(db, Mandate) == 0
    today = NOW.date()
    assert setup_mandate(db, clock, signed_on=today).created
