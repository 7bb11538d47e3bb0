"""Whether one request may be collected, and if not, why, with the ISO reason code a bank
would have answered with for the same defect.

Every rule is re-checked at collection time, not only at registration: the ledger keeps
what upstream sent, while the rules that decide collection (IBAN registry, mandate state
and lapse, SEPA membership) are those of the day of the run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sepa_engine import errors
from sepa_engine.domain import charset, identifiers, money
from sepa_engine.domain.mandate import Mandate, check_collectable

# SEPA countries outside the EEA: a collection from an account there must carry the
# debtor's address (EPC rulebook, AT-09), structured since November 2026.
ADDRESS_REQUIRED_COUNTRIES = frozenset(
    {"CH", "GB", "MC", "SM", "VA", "AD", "GI", "JE", "GG", "IM", "AL", "MD", "ME", "MK", "RS"}
)


@dataclass(frozen=True, slots=True)
class Candidate:
    amount_cents: int
    end_to_end_id: str
    mandate: Mandate
    iban: str
    bic: str | None
    debtor_name: str
    debtor_country: str | None
    debtor_town: str | None


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
    country = candidate.iban[:2].upper()
    if country in ADDRESS_REQUIRED_COUNTRIES and not (candidate.debtor_country and candidate.debtor_town):
        return Refusal("RR02", f"debtor.address is required (town and country) for an account in {country}, outside the EEA")
    return None


def _references(candidate: Candidate, _collection_date: dt.date) -> Refusal | None:
    try:
        identifiers.validate_mandate_id(candidate.mandate.reference, "mandate.reference")
        identifiers.validate_reference(candidate.end_to_end_id, "end_to_end_id")
    except errors.SepaEngineError as exc:
        return Refusal.from_error(exc, "MD02")
    return None
