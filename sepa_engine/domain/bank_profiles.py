"""Bank profiles: what each banking community accepts in a pain.008 file, as data.

A creditor names its bank's profile (``epc`` unless told otherwise). The profile decides
which pain.008 versions may be written and until when, the address form, the closing days
beyond TARGET, the default cut-off and lead time, and whether the BIC is required; the
collection run, the file checks (``iso20022/profile_rules.py``) and ``verify --profile``
read it from here. Each value carries the published source it comes from (README, "Bank
profiles"); where a community publishes no value (most publish no customer cut-off, which
is each bank's own), the profile says so and takes the most cautious value we can cite.

Rules common to every profile, with their sources:

* ``ADDRESS_LINES_FORBIDDEN_FROM``: from this day, postal addresses made of address lines
  only are refused in every SEPA scheme (EPC, "Use of structured addresses", EPC
  news 2023 and 2025; Betaalvereniging news 14/15 November 2026). A 2009 (.001.02) file can
  carry nothing else (the EPC subset of PstlAdr is Ctry plus two AdrLine), so from that day
  it carries no address at all, and a debtor who needs one cannot go in it.
* Non-EEA debtors need the debtor's BIC and address (``domain/sepa_countries.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from sepa_engine import errors

ADDRESS_LINES_FORBIDDEN_FROM = dt.date(2026, 11, 14)
ADDRESS_LINES_SOURCE = (
    "EPC 'Structured addresses' (europeanpaymentscouncil.eu/node/27691, node/23566); "
    "Betaalvereniging 2025 news 'Payment orders with unstructured address data will be rejected "
    "starting November 14 or 15 2026'"
)

_IBAN_ONLY_SOURCE = "Regulation (EU) 260/2012 art. 5(7): IBAN-only for national and cross-border debits since 1 Feb 2016"
_EPC_C2B_IG = "EPC SDD Core C2B Implementation Guidelines (EPC130-08), 2023 edition onwards: ISO 20022 2019 (pain.008.001.08)"
_EPC_SUBSET_2009 = "EPC SDD Core C2B IG up to 2021 (2009 ISO version): PstlAdr = Ctry + at most 2 AdrLine of 70"
_CAUTIOUS_CUTOFF = (
    "no community-wide customer cut-off is published (each bank sets its own): the earliest "
    "published SDD cut-off we know, ABN AMRO 12:30 on D-1 "
    "(abnamro.nl/en/commercialbanking/products/payments/sepa/direct-debit/timelines.html)"
)


class AddressForm(StrEnum):
    """How a postal address is written in a file."""

    # pain.008.001.08+: StrtNm, BldgNb, PstCd, TwnNm, Ctry (TwnNm and Ctry required).
    STRUCTURED = "structured"
    # pain.008.001.02 (EPC subset): Ctry plus at most two AdrLine built from the fields.
    EPC_LINES = "epc-lines"
    # pain.008.001.02 after address lines were forbidden: no address is written.
    NONE = "none"


@dataclass(frozen=True, slots=True)
class BankProfile:
    code: str
    name: str
    # pain.008 versions the community accepts, the default first.
    versions: tuple[str, ...]
    # Last day a version is accepted (inclusive); absent = no end published.
    accepted_until: dict[str, dt.date]
    # Days (month, day) the community's banks do not process although TARGET is open.
    closing_days: tuple[tuple[int, int], ...]
    cutoff: dt.time
    lead_days: int
    # BIC of the debtor's bank required even inside the EEA.
    bic_required: bool
    # Most transactions in one file the community allows; None = none published.
    max_transactions: int | None
    # Largest file the community allows, in bytes; None = none published.
    max_file_bytes: int | None
    # The community's own XSD of a version, as a path under ../shared/iso20022/xsd/.
    schemas: dict[str, str]
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def default_version(self) -> str:
        return self.versions[0]

    def accepts(self, version: str, on: dt.date) -> bool:
        if version not in self.versions:
            return False
        until = self.accepted_until.get(version)
        return until is None or on <= until

    def check_version(self, version: str, on: dt.date, field_name: str = "pain008_version") -> str:
        """``version`` when the profile takes it on ``on``, else a ConfigurationError saying why."""
        if version not in self.versions:
            raise errors.ConfigurationError(
                field_name, version,
                f"is not accepted by bank profile {self.code} (accepted: {', '.join(self.versions)}; "
                f"source: {self.sources.get('versions', '')})",
            )
        until = self.accepted_until.get(version)
        if until is not None and on > until:
            raise errors.ConfigurationError(
                field_name, version,
                f"is no longer accepted by bank profile {self.code} since {until + dt.timedelta(days=1)} "
                f"(use {self.default_version}; source: {self.sources.get('accepted_until', '')})",
            )
        return version

    def is_closed(self, day: dt.date) -> bool:
        return (day.month, day.day) in self.closing_days


def address_form(version: str, on: dt.date) -> AddressForm:
    """The address form of a file of ``version`` created on ``on``."""
    if version != "pain.008.001.02":
        return AddressForm.STRUCTURED
    return AddressForm.EPC_LINES if on < ADDRESS_LINES_FORBIDDEN_FROM else AddressForm.NONE


_08, _02 = "pain.008.001.08", "pain.008.001.02"

PROFILES: dict[str, BankProfile] = {
    p.code: p
    for p in (
        BankProfile(
            code="epc",
            name="EPC SDD Core rulebook and implementation guidelines (any SEPA bank)",
            versions=(_08, _02),
            accepted_until={},
            closing_days=(),
            cutoff=dt.time(12, 30),
            lead_days=1,
            bic_required=False,
            max_transactions=None,
            max_file_bytes=None,
            schemas={},
            sources={
                "versions": f"{_EPC_C2B_IG}; the 2009 version stays an option between a creditor and its bank",
                "address_form": _EPC_SUBSET_2009,
                "closing_days": "TARGET calendar only (ECB T2 closing days)",
                "cutoff": _CAUTIOUS_CUTOFF,
                "lead_days": "EPC SDD Core rulebook since November 2016: D-1 for every sequence type",
                "bic_required": _IBAN_ONLY_SOURCE,
                "file_limits": "none in the rulebook",
            },
        ),
        BankProfile(
            code="de",
            name="German banks (Deutsche Kreditwirtschaft, DFÜ-Abkommen Anlage 3)",
            versions=(_08, _02),
            accepted_until={_02: dt.date(2026, 11, 14)},
            closing_days=((12, 24), (12, 31)),
            cutoff=dt.time(12, 30),
            lead_days=1,
            bic_required=False,
            max_transactions=None,
            max_file_bytes=None,
            schemas={_02: "dk/pain.008.001.02.xsd"},
            sources={
                "versions": "DFÜ-Abkommen Anlage 3 v3.7 (November 2023, GBIC_4): pain.008.001.08",
                "accepted_until": (
                    "Deutsche Kreditwirtschaft: the 2009 formats (pain.008.001.02, GBIC_1-3) are switched off "
                    "after 14 November 2026 (issue 14; several banks announced 11/2025 already, e.g. "
                    "vrbankfulda.de 'Abkündigung bestimmter Zahlungsverkehrsformate')"
                ),
                "address_form": "DK pain.008.001.02 schema (Anlage 3 v3.0): PstlAdr = Ctry + at most 2 AdrLine",
                "closing_days": "Deutsche Kreditwirtschaft: 24 and 31 December are not business days of German banks",
                "cutoff": _CAUTIOUS_CUTOFF,
                "lead_days": "DFÜ-Abkommen Anlage 3 v3.0 (November 2016): CORE D-1 for every sequence type",
                "bic_required": _IBAN_ONLY_SOURCE,
                "file_limits": "none published in Anlage 3",
            },
        ),
        BankProfile(
            code="fr",
            name="French banks (CFONB)",
            versions=(_08, _02),
            accepted_until={},
            closing_days=(),
            cutoff=dt.time(12, 30),
            lead_days=1,
            bic_required=False,
            max_transactions=None,
            max_file_bytes=None,
            schemas={},
            sources={
                "versions": (
                    "CFONB 'Guide d'utilisation du standard ISO 20022 pour des remises informatisées d'ordres "
                    "de prélèvements SEPA' (pain.008.001.02, V1.1 04/2010) and its 2019-version successor"
                ),
                "address_form": _EPC_SUBSET_2009,
                "closing_days": "TARGET calendar only",
                "cutoff": _CAUTIOUS_CUTOFF,
                "lead_days": "EPC SDD Core rulebook since November 2016: D-1",
                "bic_required": _IBAN_ONLY_SOURCE,
                "file_limits": "none published by the CFONB",
            },
        ),
        BankProfile(
            code="nl",
            name="Dutch banks (Betaalvereniging Nederland)",
            versions=(_08, _02),
            accepted_until={},
            closing_days=(),
            cutoff=dt.time(12, 30),
            lead_days=1,
            bic_required=False,
            max_transactions=None,
            max_file_bytes=None,
            schemas={},
            sources={
                "versions": "Betaalvereniging Nederland, Format description SEPA Direct Debit Initiation (pain.008)",
                "address_form": _EPC_SUBSET_2009,
                "closing_days": "TARGET calendar only",
                "cutoff": (
                    "ABN AMRO SDD timelines: file by 12:30 on D-1 "
                    "(abnamro.nl/en/commercialbanking/products/payments/sepa/direct-debit/timelines.html); "
                    "Deutsche Bank NL: SDD Core D-1 13:00 Amsterdam time "
                    "(country.db.com/netherlands/.../cut-off-times-payments): the earlier one"
                ),
                "lead_days": "same two sources: D-1",
                "bic_required": _IBAN_ONLY_SOURCE,
                "file_limits": "none published by the Betaalvereniging",
            },
        ),
        BankProfile(
            code="ie",
            name="Irish banks (Banking & Payments Federation Ireland)",
            versions=(_08, _02),
            accepted_until={},
            closing_days=(),
            cutoff=dt.time(12, 30),
            lead_days=1,
            bic_required=False,
            max_transactions=None,
            max_file_bytes=None,
            schemas={},
            sources={
                "versions": "BPFI SEPA guides for business customers (bpfi.ie/customer-assist/business-customers/sepa-guides-for-business/)",
                "address_form": _EPC_SUBSET_2009,
                "closing_days": "TARGET calendar only (Irish bank holidays do not move SEPA settlement)",
                "cutoff": _CAUTIOUS_CUTOFF,
                "lead_days": "BPFI: D-1 for all sequence types since November 2016",
                "bic_required": _IBAN_ONLY_SOURCE,
                "file_limits": "none published by the BPFI",
            },
        ),
    )
}

DEFAULT_PROFILE = "epc"


def profile(code: str, field_name: str = "bank_profile") -> BankProfile:
    try:
        return PROFILES[code]
    except KeyError:
        raise errors.ConfigurationError(
            field_name, code, f"is not a known bank profile (known: {', '.join(sorted(PROFILES))})"
        ) from None
