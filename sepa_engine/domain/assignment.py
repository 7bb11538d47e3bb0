"""What the collection run decides for each due request: refused, or collected on a date with
a sequence type and, where the mandate changed, its amendment details.

Pure: the run reads the due requests (``DueRow``, grouped by mandate) and writes what this
module decides. An ``Assessor`` carries what it decided for the mandate it is on from one
chunk to the next, and pickles with the creditor's terms, so the run can have a creditor's
chunks assessed in child processes (``services/assessing.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple

from sepa_engine import errors
from sepa_engine.domain import calendar
from sepa_engine.domain.bank_profiles import AddressForm
from sepa_engine.domain.directdebit import Amendment
from sepa_engine.domain.eligibility import Candidate, refusal_for
from sepa_engine.domain.mandate import (
    FirstCollectionPolicy,
    Mandate,
    MandateSnapshot,
    amendment_between,
    sequence_type,
)


class DueRow(NamedTuple):
    """A pending request with what validating it needs.

    A named tuple, made straight from the database row (``_make``): a frozen dataclass of 24
    fields cost about 5 us per request in ``__init__`` (0.4 us here), a million times a run."""

    id: int
    mandate_id: int
    amount_cents: int
    requested_date: dt.date
    final: bool
    end_to_end_id: str
    remittance: str | None
    mandate_reference: str
    mandate_kind: str
    mandate_status: str
    mandate_signed_on: dt.date
    mandate_iban: str
    mandate_bic: str | None
    first_collected_on: dt.date | None
    last_collected_on: dt.date | None
    final_collected: bool
    amendment_pending: bool
    presented_creditor_identifier: str | None
    previous_reference: str | None
    previous_iban: str | None
    previous_bic: str | None
    debtor_name: str
    debtor_country: str | None
    debtor_town: str | None


class Decision(NamedTuple):
    """One collected request's decision, in the column order of the run's decisions table."""

    collection_date: dt.date
    sequence_type: str
    id: int
    amount_cents: int
    amend_original_mandate_id: str | None
    amend_original_creditor_identifier: str | None
    amend_original_creditor_name: str | None
    amend_original_iban: str | None
    amend_new_debtor_agent: bool


class Refused(NamedTuple):
    """One refused request: the first rule it breaks, with its ISO or EPC reason code."""

    id: int
    end_to_end_id: str
    reason_code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Terms:
    """What a creditor's run decides with, beside each request's own row."""

    creditor_identifier: str
    policy: FirstCollectionPolicy
    now: dt.datetime
    lead_days: int
    cutoff: dt.time
    timezone: str
    closed: tuple[tuple[int, int], ...]
    earliest: dt.date
    address_form: AddressForm
    creditor_has_address: bool


@dataclass(slots=True)
class _MandateInRun:
    """What this run already decided for a mandate (requests come grouped by mandate)."""

    mandate_id: int = -1
    first_presented: bool = False
    final_presented: bool = False
    amendment: Amendment | None = None


# Immutable: one for every request that amends nothing, rather than one each.
_NO_AMENDMENT = Amendment()


class Assessor:
    """Decides a creditor's due requests chunk by chunk, in (mandate, id) order."""

    def __init__(self, terms: Terms) -> None:
        self.terms = terms
        self._mandate = _MandateInRun()
        # The collection date is a function of the requested date and the run's constants:
        # computed once per distinct date.
        self._dates: dict[dt.date, dt.date] = {}

    def assess(self, rows: list[DueRow]) -> tuple[list[Refused], list[Decision]]:
        terms = self.terms
        refused: list[Refused] = []
        decided: list[Decision] = []
        state = self._mandate
        dates = self._dates
        for row in rows:
            if row.mandate_id != state.mandate_id:
                state = _MandateInRun(row.mandate_id, amendment=amendment_for(row, terms.creditor_identifier))
            mandate = Mandate(
                reference=row.mandate_reference,
                # Plain strings from the row: Mandate converts them, refusing an unknown one as
                # a MandateError (a ValueError here would escape the refusal path).
                kind=row.mandate_kind,  # type: ignore[arg-type]
                status=row.mandate_status,  # type: ignore[arg-type]
                signed_on=row.mandate_signed_on,
                first_collected_on=row.first_collected_on or (terms.earliest if state.first_presented else None),
                last_collected_on=row.last_collected_on,
                final_collected=row.final_collected or state.final_presented,
            )
            collection_date = dates.get(row.requested_date)
            if collection_date is None:
                collection_date = dates[row.requested_date] = calendar.collection_date(
                    row.requested_date, terms.now, terms.lead_days, terms.cutoff, terms.timezone, terms.closed,
                )
            candidate = Candidate(
                row.amount_cents, row.end_to_end_id, mandate, row.mandate_iban, row.mandate_bic,
                row.debtor_name, row.debtor_country, row.debtor_town,
                address_form=terms.address_form, creditor_has_address=terms.creditor_has_address,
            )
            refusal = refusal_for(candidate, collection_date)
            if refusal is not None:
                refused.append(Refused(row.id, row.end_to_end_id, refusal.reason_code, refusal.reason))
                continue
            seq = sequence_type(mandate, terms.policy, final=row.final)
            state.first_presented = True
            state.final_presented = state.final_presented or row.final
            amendment = state.amendment or _NO_AMENDMENT
            decided.append(Decision(
                collection_date, seq.value, row.id, row.amount_cents,
                amendment.original_mandate_id, amendment.original_creditor_id, amendment.original_creditor_name,
                amendment.original_debtor_iban, amendment.new_debtor_agent,
            ))
        self._mandate = state
        return refused, decided


def amendment_for(row: DueRow, creditor_identifier: str) -> Amendment | None:
    """Amendment details for the next collection: what changed since the bank last saw it."""
    presented_ci = row.presented_creditor_identifier
    if row.first_collected_on is None:
        # The bank never saw this mandate chain: its first collection carries the mandate
        # as it is now, with nothing to amend (a superseded mandate that was never used).
        return None
    if not row.amendment_pending and (presented_ci is None or presented_ci == creditor_identifier):
        return None
    previous = MandateSnapshot(
        reference=row.previous_reference or row.mandate_reference,
        creditor_id=presented_ci or creditor_identifier,
        creditor_name=None,
        debtor_iban=row.previous_iban or row.mandate_iban,
        debtor_bic=row.previous_bic if row.previous_iban else row.mandate_bic,
    )
    current = MandateSnapshot(
        reference=row.mandate_reference,
        creditor_id=creditor_identifier,
        creditor_name=None,
        debtor_iban=row.mandate_iban,
        debtor_bic=row.mandate_bic,
    )
    try:
        return amendment_between(previous, current)
    except errors.SepaEngineError:
        # An unusable IBAN on either side is refused by the eligibility check; no amendment.
        return None
