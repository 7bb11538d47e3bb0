"""Small builders for domain values used across tests (valid by default)."""

from __future__ import annotations

import datetime as dt

from sepa_engine.domain.batching import Collectible
from sepa_engine.domain.directdebit import (
    Amendment,
    BlockKey,
    Creditor,
    DirectDebit,
    LocalInstrument,
    PostalAddress,
    SequenceType,
)

CREDITOR = Creditor(
    name="Gestion Immobiliere Martin",
    iban="FR7630006000011234567890189",
    creditor_id="FR72ZZZ123456",
    bic="AGRIFRPP",
    address=PostalAddress(country="FR", town="Paris", street="Rue de Rivoli", building_number="12", postcode="75001"),
)
OTHER_CREDITOR = Creditor(
    name="Poliris",
    iban="DE89370400440532013000",
    creditor_id="DE98ZZZ09999999999",
    bic=None,
)
DEBTOR_IBANS = (
    "DE89370400440532013000",
    "NL91ABNA0417164300",
    "BE68539007547034",
    "ES9121000418450200051332",
    "IT60X0542811101000000123456",
)


def debit(n: int = 1, amount_cents: int = 12_345, **overrides: object) -> DirectDebit:
    values: dict[str, object] = {
        "end_to_end_id": f"E2E-{n:08d}",
        "amount_cents": amount_cents,
        "mandate_id": f"RUM-{n:06d}",
        "mandate_signed_on": dt.date(2025, 1, 15),
        "debtor_name": f"Debiteur {n}",
        "debtor_iban": DEBTOR_IBANS[n % len(DEBTOR_IBANS)],
        "debtor_bic": None,
        "debtor_address": PostalAddress(country="FR", town="Lyon", postcode="69001"),
        "remittance": f"Loyer novembre 2026 lot {n}",
    }
    values.update(overrides)
    return DirectDebit(**values)  # type: ignore[arg-type]


def key(
    creditor: Creditor = CREDITOR,
    collection_date: dt.date = dt.date(2026, 11, 26),
    sequence_type: SequenceType = SequenceType.RECURRING,
    local_instrument: LocalInstrument = LocalInstrument.CORE,
) -> BlockKey:
    return BlockKey(creditor.creditor_id, creditor.iban, collection_date, sequence_type, local_instrument)


def collectible(n: int = 1, creditor: Creditor = CREDITOR, **key_overrides: object) -> Collectible:
    return Collectible(key(creditor, **key_overrides), creditor, debit(n))  # type: ignore[arg-type]


AMENDED = Amendment(original_mandate_id="OLD-RUM-1", original_creditor_id="FR72ZZZ123456", original_creditor_name="Ancien Nom")
SMNDA = Amendment(new_debtor_agent=True)
