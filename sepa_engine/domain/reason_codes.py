"""ISO/EPC reason codes of SDD R-transactions and what the engine does about each.

One table, built from RULES.md section 5 (meanings in our own words). The policy columns
are our default; ``domain.return_decisions.decide`` reads them instead of matching codes
itself. Bank files carry codes we have never seen, so ``lookup`` never raises: unknown codes
go to a person.

The list is complete against the EPC's: every reason the SDD Core rulebook gives for an
R-transaction (EPC016-06 "SEPA Direct Debit Core Scheme Rulebook" 2023 version 1.1, attribute
AT-R3, in force until 5 October 2025, and its 2025 version 1.0 after that date), with the ISO
codes the EPC's "Guidance on reason codes for SDD R-transactions" (EPC173-14 version 8.0,
November 2024) maps them to. Each entry's ``source`` says which list it comes from: ``EPC``
for those, ``ISO`` for codes of the ISO 20022 external code sets that banks send beside them
(ExternalStatusReason1Code, ExternalReturnReason1Code; ISO 20022 External Code Sets).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Severity(StrEnum):
    # Stop: needs a person, a new account or a new mandate.
    HARD = "hard"
    # Temporary: may be retried automatically, up to max_retries.
    SOFT = "soft"
    # Our or the bank's configuration or file is wrong: fix and resubmit, never auto-retry.
    TECHNICAL = "technical"
    # Meaning unclear or a dispute: a person decides.
    REVIEW = "review"


class MandateEffect(StrEnum):
    NONE = "none"
    # Unusable until a new account or a new mandate.
    BLOCK = "block"
    # Still valid, but no further collections while a dispute is open.
    HOLD = "hold"


class RType(StrEnum):
    REJECT = "reject"
    RETURN = "return"
    REFUND = "refund"
    REFUSAL = "refusal"
    REVERSAL = "reversal"


@dataclass(frozen=True, slots=True)
class ReasonCode:
    code: str
    meaning: str
    severity: Severity
    mandate_effect: MandateEffect
    retry_allowed: bool
    max_retries: int
    opens_dispute: bool
    r_types: frozenset[RType]
    # Where the code and its use in SDD are published (see the module docstring).
    source: str = "unknown"

    def __post_init__(self) -> None:
        # Two fields say the same thing; keep them from disagreeing.
        if self.retry_allowed != (self.max_retries > 0):
            raise ValueError(f"{self.code}: retry_allowed and max_retries disagree")

    def is_hard(self) -> bool:
        return self.severity is Severity.HARD


_REJ, _RET, _REF, _RFS, _REV = RType.REJECT, RType.RETURN, RType.REFUND, RType.REFUSAL, RType.REVERSAL
_ANY = frozenset(RType)


def _entry(
    code: str,
    meaning: str,
    severity: Severity,
    r_types: frozenset[RType] | set[RType],
    *,
    effect: MandateEffect = MandateEffect.NONE,
    max_retries: int = 0,
    dispute: bool = False,
    source: str = "EPC",
) -> ReasonCode:
    return ReasonCode(
        code=code,
        meaning=meaning,
        severity=severity,
        mandate_effect=effect,
        retry_allowed=max_retries > 0,
        max_retries=max_retries,
        opens_dispute=dispute,
        r_types=frozenset(r_types),
        source=_SOURCES[source],
    )


_SOURCES = {
    "EPC": "EPC016-06 SDD Core rulebook 2023 v1.1 AT-R3; EPC173-14 v8.0",
    "ISO": "ISO 20022 External Code Sets (ExternalStatusReason1Code / ExternalReturnReason1Code)",
}
_H, _S, _T, _R = Severity.HARD, Severity.SOFT, Severity.TECHNICAL, Severity.REVIEW
_BLOCK, _HOLD = MandateEffect.BLOCK, MandateEffect.HOLD

_TABLE: tuple[ReasonCode, ...] = (
    # Account wrong or unknown: the mandate carries bad data, blocked until corrected.
    _entry("AC01", "debtor account (IBAN) wrong or unknown", _H, {_REJ, _RET}, effect=_BLOCK),
    _entry("AC04", "debtor account closed", _H, {_REJ, _RET}, effect=_BLOCK),
    _entry("AC06", "debtor account blocked, or blocked for direct debits", _H, {_REJ, _RET}, effect=_BLOCK),
    _entry("AC13", "debtor account is a consumer account (B2B only)", _H, {_REJ, _RET}, effect=_BLOCK),
    _entry("AG01", "direct debit not allowed on this account type", _H, {_REJ, _RET}, effect=_BLOCK),
    _entry("AG02", "invalid operation or sequence type", _T, {_REJ, _RET}),
    # Retry capped at one by default; the retry date must be a later TARGET day.
    _entry("AM04", "insufficient funds", _S, {_REJ, _RET}, max_retries=1),
    _entry("AM05", "duplicate collection", _R, {_REJ, _RET, _REV}),
    _entry("AM10", "control sum wrong: whole file rejected", _T, {_REJ}, source="ISO"),
    _entry("BE05", "creditor identifier or initiating party not recognised", _T, {_REJ}),
    _entry("CNOR", "creditor bank not reachable", _T, {_REJ}),
    _entry("DNOR", "debtor bank not reachable", _T, {_REJ}),
    # Settlement failed between the banks: nothing is wrong with the mandate or the
    # account, so the debit is presented again once, as for a reason the bank did not give.
    _entry("ED05", "settlement of the collection failed", _S, {_REJ, _RET}, max_retries=1),
    _entry("FF01", "invalid file format", _T, {_REJ}),
    # CORE sent where only B2B is accepted (or the reverse): our configuration, never retried as is.
    _entry("FF05", "direct debit type (local instrument) incorrect", _T, {_REJ}),
    # Also the code of an unauthorised-debit refund (13 months): the service disputes it
    # only when we hold a signed mandate.
    _entry("MD01", "no valid mandate", _H, {_REJ, _RET, _REF}, effect=_BLOCK, dispute=True),
    _entry("MD02", "mandate data missing or wrong", _T, {_REJ, _RET}),
    _entry("MD06", "refund of an authorised debit requested by the debtor", _R, {_REF}, effect=_HOLD, dispute=True),
    _entry("MD07", "debtor deceased", _H, {_REJ, _RET}, effect=_BLOCK),
    # A refusal without reason: contact the debtor rather than collect again.
    _entry("MS02", "refused by the debtor, no reason given", _R, {_REJ, _RET, _RFS}, dispute=True),
    # May hide AM04, AC04 or MD07 for data protection: one cautious retry, then a person.
    _entry("MS03", "refused by the bank, no reason given", _S, {_REJ, _RET}, max_retries=1),
    _entry("RC01", "bank identifier (BIC) wrong", _T, {_REJ}),
    _entry("RR01", "regulatory: debtor account or identification missing", _T, {_REJ, _RET}),
    _entry("RR02", "regulatory: debtor name or address missing", _T, {_REJ, _RET}),
    _entry("RR03", "regulatory: creditor name or address missing", _T, {_REJ, _RET}),
    _entry("RR04", "regulatory reason", _T, {_REJ, _RET}),
    _entry("SL01", "specific service of the debtor bank (e.g. creditor blocked)", _H, {_REJ, _RET}, effect=_BLOCK),
    _entry("CUST", "requested by the debtor", _R, {_RET}, dispute=True, source="ISO"),
    _entry("NARR", "narrative only: see the additional information", _R, _ANY, source="ISO"),
)

REASON_CODES: Mapping[str, ReasonCode] = MappingProxyType({entry.code: entry for entry in _TABLE})

# Bank files are not ours to trust: an absurdly long code should not flood a review screen.
_SHOWN_UNKNOWN_MAX = 35


def lookup(code: str | None) -> ReasonCode:
    """The table entry for ``code`` (case and surrounding spaces ignored).

    Never raises: an unknown or missing code gets an entry that sends it to manual review
    without retry and without touching the mandate.
    """
    normalised = _normalise(code)
    known = REASON_CODES.get(normalised)
    if known is not None:
        return known
    shown = normalised[:_SHOWN_UNKNOWN_MAX] if normalised else "(missing)"
    return ReasonCode(
        code=normalised,
        meaning=f"unknown reason code {shown}: manual review",
        severity=Severity.REVIEW,
        mandate_effect=MandateEffect.NONE,
        retry_allowed=False,
        max_retries=0,
        opens_dispute=False,
        r_types=_ANY,
        source="not in the EPC or ISO lists this engine knows",
    )


def is_hard(code: str | None) -> bool:
    return lookup(code).is_hard()


def retry_allowed(code: str | None) -> bool:
    return lookup(code).retry_allowed


def max_retries(code: str | None) -> int:
    return lookup(code).max_retries


def _normalise(code: str | None) -> str:
    if code is None:
        return ""
    return str(code).strip().upper()
