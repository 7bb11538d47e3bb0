"""Why the collection run would refuse what upstream just stored, said at once.

The registry stores records that break business rules (the collection run re-checks them
on its day and refuses with a reason code); these functions list every such rule a record
breaks *now*, so that upstream can show it to a person immediately. They use the checks
of ``domain/eligibility.py`` and its reason codes, but report every problem rather than
the first.
"""

from __future__ import annotations

import datetime as dt

from sepa_engine import errors
from sepa_engine.db.models import DebitRequest, DebtorAccount
from sepa_engine.db.models import Mandate as MandateRow
from sepa_engine.domain import calendar, charset, identifiers, money
from sepa_engine.domain.mandate import Mandate, check_collectable
from sepa_engine.domain.masking import mask_iban, mask_name
from sepa_engine.domain.sepa_countries import MISSING_BIC_REASON, non_eea_country

Problems = list[errors.SepaEngineError]

AMOUNT_ZERO_REASON = "AM01"
AMOUNT_RANGE_REASON = "AM02"
DEBTOR_DATA_REASON = "RR02"


def as_dicts(problems: Problems) -> tuple[dict[str, object], ...]:
    return tuple(problem.to_dict() for problem in problems)


def debtor_account_problems(account: DebtorAccount, prefix: str = "") -> Problems:
    found: Problems = []
    if not charset.to_sepa_text(account.name, charset.NAME_MAX):
        found.append(_nothing_left(prefix + "name", account.name))
    if account.address_town is not None and not charset.to_sepa_text(account.address_town, charset.TOWN_MAX):
        found.append(_nothing_left(prefix + "address.town", account.address_town))
    return found


def mandate_problems(
    mandate: MandateRow, account: DebtorAccount, collection_date: dt.date, prefix: str = ""
) -> Problems:
    """Problems of the mandate's own data and of its use on ``collection_date``."""
    found: Problems = []
    _collect(found, check_collectable, domain_mandate(mandate), collection_date)
    _collect(found, identifiers.validate_iban, mandate.iban, prefix + "iban")
    if mandate.bic:
        _collect(found, identifiers.validate_bic, mandate.bic, prefix + "bic")
    _collect(found, identifiers.validate_mandate_id, mandate.reference, prefix + "reference")
    # The collection run refuses the same (eligibility._outside_eea): told at registration so a
    # portal can ask for the missing BIC or address.
    country = non_eea_country(mandate.iban, account.address_country, mandate.bic)
    if country is not None and not mandate.bic:
        found.append(
            errors.InvalidFormat(
                prefix + "bic", None, f"is required for a debtor in {country}, outside the EEA (EPC409-09)",
                reason_code=MISSING_BIC_REASON,
            )
        )
    if country is not None and not (account.address_country and account.address_town):
        found.append(
            errors.InvalidFormat(
                "debtor_account.address",
                None,
                f"is required (town and country) for an account in {country}, outside the EEA",
                reason_code=DEBTOR_DATA_REASON,
                shown_value=mask_iban(mandate.iban),
            )
        )
    return found


def amount_problems(cents: int) -> Problems:
    if cents == 0:
        return [errors.InvalidAmount("amount", "0.00", "is zero: nothing to collect", reason_code=AMOUNT_ZERO_REASON)]
    try:
        money.check_cents(cents)
    except errors.InvalidAmount as exc:
        return [errors.InvalidAmount("amount", money.format_cents(cents), exc.rule, reason_code=AMOUNT_RANGE_REASON)]
    return []


def request_problems(request: DebitRequest, mandate: MandateRow, account: DebtorAccount) -> Problems:
    return amount_problems(request.amount_cents) + dated_problems(mandate, account, request.requested_date)


def dated_problems(mandate: MandateRow, account: DebtorAccount, requested_date: dt.date) -> Problems:
    """What a request on ``requested_date`` would meet apart from its amount: the same for
    every request of the mandate on that date (a batch computes it once)."""
    found: Problems = []
    _collect(found, calendar.next_target_day, requested_date)
    found.extend(mandate_problems(mandate, account, requested_date, prefix="mandate."))
    found.extend(debtor_account_problems(account, prefix="debtor_account."))
    return found


def domain_mandate(row: MandateRow) -> Mandate:
    return Mandate(
        reference=row.reference,
        kind=row.kind,  # type: ignore[arg-type]  # Mandate converts the stored value
        status=row.status,  # type: ignore[arg-type]
        signed_on=row.signed_on,
        first_collected_on=row.first_collected_on,
        last_collected_on=row.last_collected_on,
        final_collected=row.final_collected,
    )


def _collect(found: Problems, check, *args: object) -> None:  # type: ignore[no-untyped-def]
    try:
        check(*args)
    except errors.SepaEngineError as exc:
        found.append(exc)


def _nothing_left(field: str, value: str) -> errors.SepaEngineError:
    return errors.InvalidCharacters(
        field,
        value,
        "has no character of the SEPA set left after transliteration",
        reason_code=DEBTOR_DATA_REASON,
        shown_value=mask_name(value),
    )
