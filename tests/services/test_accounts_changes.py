"""Account details and their history, collection modes, bank details (new e-signed mandates)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sepa_engine import errors
from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import AccountChange, DebitRequest, Mandate, MandateSignature
from sepa_engine.ids import SequentialIds
from sepa_engine.services import account_changes, accounts, on_demand, registry, schedule
from sepa_engine.services.account_inputs import CreditorSettingsInput, DetailsInput, ModeChangeInput, PayNowInput
from sepa_engine.services.collection import run_collection
from tests import accounts_world as world

D = dt.date
LATER = FixedClock(world.NOW + dt.timedelta(days=1))


@pytest.fixture
def setup(db):  # type: ignore[no-untyped-def]
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.entry(db, "F1", "100.00")
    return db


def details(db, changes: dict[str, str | None], key: str, *, clock: FixedClock | None = None, actor: str = "portal:jeanne") -> account_changes.ChangeResult:  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        return account_changes.update_details(
            s, "pressimmo", "AG-1", DetailsInput(changes), actor=actor, idempotency_key=key, clock=clock or world.clock()
        )


def set_mode(db, data: ModeChangeInput, key: str = "mode", actor: str = "portal") -> account_changes.ChangeResult:  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        return account_changes.set_collection_mode(s, "pressimmo", "AG-1", data, actor=actor, idempotency_key=key,
                                                   clock=world.clock())


def mandates(db) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return [(m.reference, m.status, m.iban) for m in s.scalars(select(Mandate).order_by(Mandate.id))]


# --- details -------------------------------------------------------------------------------
def test_details_changes_are_recorded_with_who_when_and_the_old_and_new_values(setup):
    first = details(setup, {"contact_name": "Jeanne Martin", "contact_role": "Gérante", "email": "compta@agence.fr",
                            "billing_street": "12 rue de Rivoli", "billing_postcode": "75001", "billing_town": "Paris",
                            "billing_country": "FR", "phone": "+33 1 23 45 67 89"}, "d1")
    second = details(setup, {"email": "factures@agence.fr", "phone": "+33 1 23 45 67 89", "fax": None}, "d2",
                     clock=LATER, actor="backoffice:paul")
    assert first.created and len(first.fields) == 8
    # Unchanged values (the phone, an absent fax) leave no line in the history.
    assert second.fields == (("email", "compta@agence.fr", "factures@agence.fr"),)
    with setup.reader() as s:
        lines = account_changes.history(s, "pressimmo", "AG-1")
        view = accounts.show_account(s, "pressimmo", "AG-1")
    assert [(line.actor, line.changed_at, line.field, line.old_value, line.new_value) for line in lines if line.field == "email"] == [
        ("portal:jeanne", world.NOW, "email", None, "compta@agence.fr"),
        ("backoffice:paul", LATER.now(), "email", "compta@agence.fr", "factures@agence.fr"),
    ]
    assert view.details["email"] == "factures@agence.fr" and view.details["contact_role"] == "Gérante"


def test_a_detail_set_to_none_is_cleared(setup):
    details(setup, {"fax": "01 23 45 67 89"}, "d1")
    cleared = details(setup, {"fax": None}, "d2")
    assert cleared.fields == (("fax", "01 23 45 67 89", None),)


def test_repeating_a_details_change_with_its_key_changes_nothing(setup):
    first = details(setup, {"email": "a@agence.fr"}, "d1")
    again = details(setup, {"email": "a@agence.fr"}, "d1")
    assert (again.id, again.created, again.fields) == (first.id, False, first.fields)
    with pytest.raises(errors.IdempotencyConflict):
        details(setup, {"email": "b@agence.fr"}, "d1")
    with setup.reader() as s:
        assert s.scalar(select(func.count()).select_from(AccountChange).where(AccountChange.kind == "details")) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"phone": "call me"}, "phone"),
        ({"billing_country": "France"}, "billing_country"),
        ({"contact_name": "x" * 141}, "contact_name"),
        ({"iban": "DE89370400440532013000"}, "iban"),
        ({"email": 42}, "email"),
    ],
)
def test_malformed_details_are_refused_with_their_field(setup, changes, field):
    with pytest.raises(errors.SepaEngineError) as caught:
        details(setup, changes, "d1")
    assert caught.value.field == field


def test_a_customer_reference_names_one_account_per_creditor(setup):
    world.account(setup, "pressimmo", "AG-2", customer="AGENCE-77")
    with pytest.raises(errors.DuplicateIdentifier) as caught:
        details(setup, {"customer_reference": "AGENCE-77"}, "d1")
    assert caught.value.field == "customer_reference" and "AG-2" in caught.value.rule


# --- collection mode -----------------------------------------------------------------------
def test_switching_to_automatic_without_a_new_signed_mandate_is_refused_and_changes_nothing(setup):
    with pytest.raises(errors.WrongCollectionMode) as caught:
        set_mode(setup, ModeChangeInput(mode="automatic", frequency="monthly", day=5))
    assert caught.value.field == "mandate"
    with setup.reader() as s:
        assert accounts.show_account(s, "pressimmo", "AG-1").collection_mode == "on_demand"


def test_switching_to_automatic_registers_the_signed_mandate_with_its_evidence(setup):
    signed = world.signed_mandate("RUM-E-1", signed_at=dt.datetime(2026, 11, 20, 9, 42, 17, tzinfo=dt.timezone.utc))
    result = set_mode(setup, ModeChangeInput(mode="automatic", frequency="quarterly", day=10, mandate=signed))
    assert {f: (old, new) for f, old, new in result.fields} == {
        "mandate": ("RUM-PRE-AG-1", "RUM-E-1"),
        "iban": ("DE89**************3000", "DE62**************3001"),
        "collection_mode": ("on_demand", "automatic"),
        "schedule_frequency": (None, "quarterly"),
        "schedule_day": (None, "10"),
        "automatic_since": (None, "2026-11-20"),
    }
    assert mandates(setup) == [
        ("RUM-PRE-AG-1", "superseded", world.DEBTOR_IBAN), ("RUM-E-1", "active", world.NEW_IBAN)
    ]
    with setup.reader() as s:
        evidence = s.scalars(select(MandateSignature)).one()
        view = accounts.show_account(s, "pressimmo", "AG-1")
    assert (evidence.signed_at, evidence.signer_name, evidence.evidence_id) == (
        dt.datetime(2026, 11, 20, 9, 42, 17, tzinfo=dt.timezone.utc), "Jeanne Martin", "ev-1"
    )
    assert view.mandate is not None and view.mandate.signed_electronically and view.mandate.evidence_id == "ev-1"
    assert (view.collection_mode, view.schedule_frequency, view.schedule_day, view.can_pay_now) == (
        "automatic", "quarterly", 10, False
    )
    again = set_mode(setup, ModeChangeInput(mode="automatic", frequency="quarterly", day=10, mandate=signed))
    assert (again.id, again.created) == (result.id, False) and len(mandates(setup)) == 2


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (lambda: ModeChangeInput(mode="automatic", day=5, mandate=world.signed_mandate()), "frequency"),
        (lambda: ModeChangeInput(mode="automatic", frequency="monthly", mandate=world.signed_mandate()), "day"),
        (lambda: ModeChangeInput(mode="automatic", frequency="weekly", day=5, mandate=world.signed_mandate()), "frequency"),
        (lambda: ModeChangeInput(mode="automatic", frequency="monthly", day=31, mandate=world.signed_mandate()), "day"),
        (lambda: ModeChangeInput(mode="on_demand", frequency="monthly"), "frequency"),
        (lambda: ModeChangeInput(mode="sometimes"), "mode"),
        (lambda: ModeChangeInput(mode="automatic", frequency="monthly", day=5,
                         mandate=world.signed_mandate(iban="DE89370400440532013001")), "mandate.iban"),
        (lambda: ModeChangeInput(mode="automatic", frequency="monthly", day=5,
                         mandate=world.signed_mandate(signed_at=world.NOW + dt.timedelta(minutes=1))), "mandate.signed_at"),
    ],
)
def test_malformed_mode_changes_are_refused_before_anything_is_stored(setup, data, field):
    with pytest.raises(errors.SepaEngineError) as caught:
        set_mode(setup, data())
    assert caught.value.field == field
    assert len(mandates(setup)) == 1


def test_a_signature_evidence_proves_one_mandate_only(setup):
    world.go_automatic(setup, evidence="ev-1")
    with setup.transaction() as s, pytest.raises(errors.DuplicateIdentifier) as caught:
        account_changes.change_bank_details(s, "pressimmo", "AG-1", world.signed_mandate("RUM-E-2", evidence="ev-1"),
                                            actor="portal", idempotency_key="bank", clock=world.clock())
    assert caught.value.field == "evidence_id"


def test_an_automatic_account_can_be_put_back_on_demand_by_the_creditors_staff_with_a_reason(setup):
    world.go_automatic(setup)
    result = set_mode(setup, ModeChangeInput(mode="on_demand", reason="tenant asked by letter"), key="back",
                      actor="staff:claire")
    assert ("collection_mode", "automatic", "on_demand") in result.fields
    assert ("reason", None, "tenant asked by letter") in result.fields
    assert result.actor == "staff:claire"
    with setup.transaction() as s:
        assert on_demand.pay_now(s, "pressimmo", "AG-1", PayNowInput(amount="10.00"), idempotency_key="click",
                                clock=world.clock()).created


# --- bank details --------------------------------------------------------------------------
def collect(db, tmp_path: Path, database_url: str, day: D):  # type: ignore[no-untyped-def]
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    at = FixedClock(dt.datetime.combine(day, dt.time(8, 0), dt.timezone.utc))
    report = run_collection(db, settings, at, SequentialIds(f"RUN{day:%d}"))
    with db.transaction() as s:
        accounts.book_submitted_payments(s, at)
    return report


@pytest.mark.parametrize("automatic", [False, True])
def test_new_bank_details_supersede_the_mandate_and_the_next_file_carries_the_amendment(setup, tmp_path, database_url, automatic):
    with setup.transaction() as s:
        on_demand.pay_now(s, "pressimmo", "AG-1", PayNowInput(amount="40.00"), idempotency_key="c1", clock=world.clock())
    first = collect(setup, tmp_path, database_url, D(2026, 11, 23))
    assert "<AmdmntInd>" not in first.files[0].path.read_text()
    if automatic:
        world.go_automatic(setup, day=7, evidence="ev-0")

    # A new bank (Dutch IBAN) under the same mandate reference: SMNDA.
    reference = "RUM-E-AG-1" if automatic else "RUM-PRE-AG-1"
    with setup.transaction() as s:
        change = account_changes.change_bank_details(
            s, "pressimmo", "AG-1", world.signed_mandate(reference, iban="NL91ABNA0417164300", evidence="ev-bank"),
            actor="portal:jeanne", idempotency_key="bank-1", clock=world.clock(),
        )
        if automatic:
            # The schedule issues December's debit on the new mandate.
            schedule.schedule_automatic(s, D(2026, 11, 23), world.clock())
        else:
            on_demand.pay_now(s, "pressimmo", "AG-1", PayNowInput(amount="30.00"), idempotency_key="c2", clock=world.clock())
    old_iban = "DE62**************3001" if automatic else "DE89**************3000"
    assert change.kind == "bank_details" and change.fields == (("iban", old_iban, "NL91**********4300"),)
    assert mandates(setup)[-1] == (reference, "active", "NL91ABNA0417164300")

    second = collect(setup, tmp_path, database_url, D(2026, 12, 4) if automatic else D(2026, 11, 24))
    (outcome,) = second.files
    xml = outcome.path.read_text()
    assert "<AmdmntInd>true</AmdmntInd>" in xml and "SMNDA" in xml


def test_revoking_the_mandate_cancels_its_pending_debits_and_stops_payments_on_demand(setup):
    with setup.transaction() as s:
        on_demand.pay_now(s, "pressimmo", "AG-1", PayNowInput(amount="40.00"), idempotency_key="c1", clock=world.clock())
        cancelled = registry.revoke_mandate(s, "pressimmo", "RUM-PRE-AG-1", reason="customer left", clock=world.clock())
    assert cancelled == 1
    with setup.reader() as s:
        assert s.scalar(select(DebitRequest.status)) == "cancelled"
    position = world.position(setup)
    assert (position.in_flight_cents, position.collectable_cents) == (0, 10_000)
    with setup.transaction() as s, pytest.raises(errors.NoUsableMandate):
        on_demand.pay_now(s, "pressimmo", "AG-1", PayNowInput(amount="10.00"), idempotency_key="c2", clock=world.clock())


def test_creditor_settings_changes_are_recorded_too(db):
    world.creditor(db, "pressimmo", group=None)
    with db.transaction() as s:
        result = account_changes.set_creditor_settings(
            s, "pressimmo", CreditorSettingsInput(prenotification_days=10, group_code="seloger"), actor="ops",
            idempotency_key="settings", clock=world.clock(),
        )
        with pytest.raises(errors.InvalidFormat):
            account_changes.set_creditor_settings(s, "pressimmo", CreditorSettingsInput(prenotification_days=0),
                                                  actor="ops", idempotency_key="s2", clock=world.clock())
    assert result.account_reference is None
    assert result.fields == (("prenotification_days", "14", "10"), ("group_code", None, "seloger"))


@pytest.mark.parametrize("actor", ["portal", "customer", "agence:st-michel", "api:portal", "staff:"])
def test_a_portal_or_customer_actor_cannot_leave_automatic_mode(setup, actor):
    # Issue 12: "an automatic account was switched back to on demand from the portal
    # (accounts set-mode LOC-0006 --mode on_demand), which the portal guide forbids".
    world.go_automatic(setup)
    with pytest.raises(errors.WrongCollectionMode) as caught:
        set_mode(setup, ModeChangeInput(mode="on_demand", reason="I changed my mind"), key="back", actor=actor)
    assert caught.value.field == "mode"
    with setup.reader() as s:
        assert accounts.show_account(s, "pressimmo", "AG-1").collection_mode == "automatic"


def test_the_staff_must_say_why_an_account_leaves_automatic_mode(setup):
    world.go_automatic(setup)
    with pytest.raises(errors.InvalidFormat) as caught:
        set_mode(setup, ModeChangeInput(mode="on_demand"), key="back", actor="staff:claire")
    assert caught.value.field == "reason"
