"""Whether one request may be collected, and if not, why, with the ISO reason code a bank
would have answered with for the same defect.

Every rule is re-checked at collection time, not only at registration: the ledger keeps
what upstream sent, while the rules that decide collection (IBAN registry, mandate state
and lapse, SEPA membership) are those of the day of the run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple

from sepa_engine import errors
from sepa_engine.domain import charset, identifiers, money
from sepa_engine.domain.bank_profiles import ADDRESS_LINES_FORBIDDEN_FROM, AddressForm
from sepa_engine.domain.mandate import Mandate, check_collectable
from sepa_engine.domain.sepa_countries import (
    MISSING_BIC_REASON,
    MISSING_CREDITOR_ADDRESS_REASON,
    MISSING_DEBTOR_ADDRESS_REASON,
    NON_EEA_SEPA_COUNTRIES,
    non_eea_country,
)

# SEPA countries outside the EEA: a collection from an account there must carry the
# debtor's address (AT-09) and BIC (AT-13); the table and its source: domain/sepa_countries.py.
ADDRESS_REQUIRED_COUNTRIES = NON_EEA_SEPA_COUNTRIES


class Candidate(NamedTuple):
    """One request as eligibility sees it. A named tuple: the collection run makes one per
    request, and a frozen dataclass's ``__init__`` costs several times as much."""

    amount_cents: int
    end_to_end_id: str
    mandate: Mandate
    iban: str
    bic: str | None
    debtor_name: str
    debtor_country: str | None
    debtor_town: str | None
    # How the file this debit would go in writes addresses (its version and date).
    address_form: AddressForm = AddressForm.STRUCTURED
    creditor_has_address: bool = True


@dataclass(frozen=True, slots=True)
class Refusal:
    reason_code: str
    reason: str

    @classmethod
    def from_error(cls, error: errors.SepaEngineError, default_code: str) -> Refusal:
        return cls(error.reason_code or default_code, str(error))


def refusal_for(candidate: Candidate, collection_date: dt.date) -> Refusal | None:
    """The first reason ``candidate`` cannot be collected on ``collection_date``, or None."""
    if candidate.amount_cents == 0:
        # ISO AM01: zero amount.
        return Refusal("AM01", "amount 0.00 is zero: nothing to collect")
    try:
        money.check_cents(candidate.amount_cents)
    except errors.InvalidAmount as exc:
        return Refusal.from_error(exc, "AM02")
    for check in (_mandate, _bank, _debtor, _references):
        refusal = check(candidate, collection_date)
        if refusal is not None:
            return refusal
    return None


def _mandate(candidate: Candidate, collection_date: dt.date) -> Refusal | None:
    try:
        check_collectable(candidate.mandate, collection_date)
    except errors.MandateError as exc:
        return Refusal.from_error(exc, "MD01")
    return None


def _bank(candidate: Candidate, _collection_date: dt.date) -> Refusal | None:
    try:
        identifiers.validate_iban(candidate.iban, "mandate.iban")
        if candidate.bic:
            identifiers.validate_bic(candidate.bic, "mandate.bic")
    except errors.SepaEngineError as exc:
        return Refusal.from_error(exc, "AC01")
    return None


def _debtor(candidate: Candidate, _collection_date: dt.date) -> Refusal | None:
    if not charset.to_sepa_text(candidate.debtor_name or "", charset.NAME_MAX):
        # ISO RR02: missing debtor name or address.
        return Refusal("RR02", f"debtor.name {candidate.debtor_name!r} has no character of the SEPA set left")
    return _outside_eea(candidate)


def _outside_eea(candidate: Candidate) -> Refusal | None:
    """A debtor in a SEPA country outside the EEA: address, BIC and the creditor's address."""
    country = non_eea_country(candidate.iban, candidate.debtor_country, candidate.bic)
    if country is None:
        return None
    where = f"for a debtor in {country}, outside the EEA (EPC SDD rulebook; EPC409-09)"
    if not (candidate.debtor_country and candidate.debtor_town):
        return Refusal(MISSING_DEBTOR_ADDRESS_REASON, f"debtor.address is required (town and country) {where}")
    if candidate.address_form is AddressForm.NONE:
        return Refusal(
            MISSING_DEBTOR_ADDRESS_REASON,
            f"debtor.address is required {where}, and a pain.008.001.02 file cannot carry it since "
            f"{ADDRESS_LINES_FORBIDDEN_FROM} (address lines only are refused in every SEPA scheme): "
            "collect it with pain.008.001.08",
        )
    if not candidate.bic:
        return Refusal(MISSING_BIC_REASON, f"mandate.bic is required {where}")
    if not candidate.creditor_has_address:
        return Refusal(MISSING_CREDITOR_ADDRESS_REASON, f"creditor.address is required (town and country) {where}")
    return None


def _references(candidate: Candidate, _collection_date: dt.date) -> Refusal | None:
    try:
        identifiers.validate_mandate_id(candidate.mandate.reference, "mandate.reference")
        identifiers.validate_reference(candidate.end_to_end_id, "end_to_end_id")
    except errors.SepaEngineError as exc:
        return Refusal.from_error(exc, "MD02")
    return None
