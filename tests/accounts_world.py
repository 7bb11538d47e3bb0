"""A small world for account tests, built through the public services: creditors of one
group (the invoice-account guide's three entities), accounts with mandates, invoices."""

from __future__ import annotations

import datetime as dt

from sepa_engine.clock import Clock, FixedClock
from sepa_engine.db.session import Database
from sepa_engine.services import account_changes, accounts, registry
from sepa_engine.services.account_inputs import (
    CreditorSettingsInput,
    DetailsInput,
    ESignedMandateInput,
    LedgerEntryInput,
    ModeChangeInput,
)
from sepa_engine.services.inputs import AddressInput, CreditorInput, DebtorAccountInput, MandateInput

# Friday 20 November 2026, 11:00 in Paris: the next TARGET day is Monday the 23rd.
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.timezone.utc)
DEBTOR_IBAN = "DE89370400440532013000"
NEW_IBAN = "DE62370400440532013001"
CREDITORS = {
    "pressimmo": ("Pressimmo", "FR72ZZZ123456", "FR7630006000011234567890189"),
    "belles-demeures": ("Belles Demeures", "FR19ZZZ654321", "FR7630006000011234567890189"),
    "poliris": ("Poliris", "FR95ZZZ111111", "FR7630006000011234567890189"),
    "other": ("Autre Groupe", "FR17ZZZ222222", "FR7630006000011234567890189"),
    "gim": ("Gestion Immobiliere Martin", "FR36ZZZ333333", "FR7630006000011234567890189"),  # the README's examples
}


def clock(at: dt.datetime = NOW) -> FixedClock:
    return FixedClock(at)


def creditor(db: Database, code: str = "pressimmo", *, group: str | None = "seloger", notice_days: int | None = None,
             at: Clock | None = None) -> None:
    name, identifier, iban = CREDITORS[code]
    c = at or clock()
    with db.transaction() as s:
        registry.register_creditor(
            s,
            CreditorInput(code=code, name=name, creditor_identifier=identifier, iban=iban,
                          address=AddressInput(country="FR", town="Paris")),
            idempotency_key=f"creditor-{code}", clock=c,
        )
        if group is not None or notice_days is not None:
            account_changes.set_creditor_settings(
                s, code, CreditorSettingsInput(prenotification_days=notice_days, group_code=group),
                actor="setup", idempotency_key=f"settings-{code}", clock=c,
            )


def account(db: Database, creditor_code: str = "pressimmo", reference: str = "AG-1", *, mandate: str | None = "auto",
            customer: str | None = None, at: Clock | None = None) -> None:
    """A debtor account with an active recurrent mandate (``mandate=None``: without one)."""
    c = at or clock()
    with db.transaction() as s:
        registry.register_debtor_account(
            s, creditor_code, DebtorAccountInput(reference=reference, name=f"Agence {reference}"),
            idempotency_key=f"account-{reference}", clock=c,
        )
        if mandate is not None:
            registry.register_mandate(
                s, creditor_code,
                MandateInput(reference=f"RUM-{creditor_code[:3].upper()}-{reference}" if mandate == "auto" else mandate,
                             debtor_account=reference, signed_on=dt.date(2025, 1, 15), iban=DEBTOR_IBAN),
                idempotency_key=f"mandate-{reference}", clock=c,
            )
        if customer is not None:
            account_changes.update_details(
                s, creditor_code, reference, DetailsInput({"customer_reference": customer}),
                actor="setup", idempotency_key=f"customer-{reference}", clock=c,
            )


def entry(db: Database, number: str, amount: str, *, creditor_code: str = "pressimmo", reference: str = "AG-1",
          kind: str = "invoice", issued: dt.date = dt.date(2026, 10, 1), applies_to: str | None = None,
          at: Clock | None = None) -> accounts.EntryResult:
    with db.transaction() as s:
        return accounts.record_entry(
            s, creditor_code, reference,
            LedgerEntryInput(kind=kind, number=number, issue_date=issued, amount=amount, applies_to=applies_to),
            idempotency_key=f"{kind}-{number}", clock=at or clock(),
        )


def signed_mandate(reference: str = "RUM-E-1", *, iban: str = NEW_IBAN, evidence: str = "ev-1",
                   signed_at: dt.datetime = NOW - dt.timedelta(hours=1)) -> ESignedMandateInput:
    return ESignedMandateInput(reference=reference, signed_at=signed_at, iban=iban, signer_name="Jeanne Martin",
                               evidence_id=evidence)


def go_automatic(db: Database, creditor_code: str = "pressimmo", reference: str = "AG-1", *, frequency: str = "monthly",
                 day: int = 5, key: str = "mode-1", evidence: str = "ev-1", at: Clock | None = None) -> None:
    with db.transaction() as s:
        account_changes.set_collection_mode(
            s, creditor_code, reference,
            ModeChangeInput(mode="automatic", frequency=frequency, day=day,
                            mandate=signed_mandate(f"RUM-E-{reference}", evidence=evidence)),
            actor="portal", idempotency_key=key, clock=at or clock(),
        )


def position(db: Database, creditor_code: str = "pressimmo", reference: str = "AG-1") -> accounts.PositionResult:
    with db.reader() as s:
        return accounts.position(s, creditor_code, reference)
