"""Which SEPA scheme countries lie outside the EEA, and what a collection from there needs.

Source: EPC409-09 "EPC list of countries and territories included in the SEPA schemes'
geographical scope" (the 2025 edition, with AL, MD, ME, MK and RS); the rule it triggers is
the EPC SDD Core rulebook's (2023 and later editions): the debtor's address (AT-09) and the
BIC of the debtor's bank (AT-13) are mandatory when a non-EEA SEPA country is involved. Saint-Pierre-et-Miquelon and Saint-Barthélemy are overseas
collectivities outside the EU although their accounts carry French IBANs, so the debtor's
country is read from the address and the BIC as well as from the IBAN prefix.
"""

from __future__ import annotations

from collections.abc import Iterable

SOURCE = "EPC409-09 (SEPA schemes' geographical scope, 2025); EPC SDD Core rulebook AT-09, AT-13"

NON_EEA_SEPA_COUNTRIES: frozenset[str] = frozenset(
    # Microstates, Switzerland, the United Kingdom and the Crown Dependencies, Gibraltar
    "AD CH GB GG GI IM JE MC SM VA".split()
    # French overseas collectivities outside the EU
    + "BL PM".split()
    # Joined 2024-2025
    + "AL MD ME MK RS".split()
)

# ISO ExternalStatusReason1Code values a bank answers with for the missing data.
MISSING_BIC_REASON = "RC01"  # bank identifier incorrect (here: absent where required)
MISSING_DEBTOR_ADDRESS_REASON = "RR02"  # debtor name or address missing (regulatory)
MISSING_CREDITOR_ADDRESS_REASON = "RR03"  # creditor name or address missing (regulatory)


def non_eea_country(iban: str | None, address_country: str | None = None, bic: str | None = None) -> str | None:
    """The first non-EEA SEPA country among the IBAN prefix, the address and the BIC, or None."""
    candidates: Iterable[str | None] = (
        (iban or "")[:2],
        address_country,
        bic[4:6] if bic and len(bic) >= 6 else None,
    )
    for country in candidates:
        if country and country.upper() in NON_EEA_SEPA_COUNTRIES:
            return country.upper()
    return None
