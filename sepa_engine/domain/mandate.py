"""Mandate state, the rules deciding whether a mandate may be collected, and which
sequence type (FRST/RCUR/OOFF/FNAL) and amendment details a collection carries.

Pure computation: the ledger loads the mandate, these functions decide, the service persists.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

import schwifty
from schwifty import exceptions as schwifty_errors

from sepa_engine import errors
from sepa_engine.domain.directdebit import Amendment, SequenceType
from sepa_engine.domain.masking import mask_iban, mask_reference

# EPC rulebook: a mandate with no collection presented for 36 months must not be used again.
LAPSE_MONTHS = 36


class MandateKind(StrEnum):
    RECURRENT = "recurrent"
    ONE_OFF = "one_off"


class MandateStatus(StrEnum):
    ACTIVE = "active"
    # The debtor had a collection refunded (MD06, the "no questions asked" refund of an
    # authorised collection within eight weeks of the debit: EPC016-06 SDD Core rulebook 2023
    # v1.1, refunds for authorised collections). The refund does not end the mandate, which
    # stays valid, but collecting again before anyone spoke with the debtor invites the next
    # refund (RULES.md section 5: "hold further collections"). Its pending requests stay
    # pending and the collection run leaves them out; ``mandates release`` (a person, after
    # the dispute the refund opened is settled) makes it active again, and they go out.
    HELD = "held"
    # A hard return (AC04, MD07...) made it unusable until a person unblocks it.
    BLOCKED = "blocked"
    # Cancelled by the debtor or the creditor.
    REVOKED = "revoked"
    # Replaced by a new mandate; the new one carries the collections from now on.
    SUPERSEDED = "superseded"
    # 36 months without a collection: a new mandate is needed.
    LAPSED = "lapsed"

    def is_usable(self) -> bool:
        return self is MandateStatus.ACTIVE

    def is_final(self) -> bool:
        return not _TRANSITIONS[self]

    def is_held(self) -> bool:
        return self is MandateStatus.HELD

    def can_transition_to(self, other: MandateStatus) -> bool:
        # Re-applying the current status is a no-op, so a second hard return on an already
        # blocked mandate (or a replayed return file) is not an error.
        return other is self or other in _TRANSITIONS[self]


_S = MandateStatus
# The one place where mandate transitions are decided. BLOCKED -> ACTIVE is the explicit
# unblock (an operator confirmed a new account or the debtor lifted the block); nothing in
# reconciliation requests it. A lapsed mandate cannot be revived: a new mandate supersedes it.
# HELD -> ACTIVE is the release of a hold; a hard code on a held mandate still blocks it, and
# a blocked mandate is not held on top (the block is the stronger of the two).
_TRANSITIONS: MappingProxyType[MandateStatus, frozenset[MandateStatus]] = MappingProxyType(
    {
        _S.ACTIVE: frozenset({_S.HELD, _S.BLOCKED, _S.REVOKED, _S.SUPERSEDED, _S.LAPSED}),
        _S.HELD: frozenset({_S.ACTIVE, _S.BLOCKED, _S.REVOKED, _S.SUPERSEDED, _S.LAPSED}),
        _S.BLOCKED: frozenset({_S.ACTIVE, _S.REVOKED, _S.SUPERSEDED, _S.LAPSED}),
        _S.LAPSED: frozenset({_S.REVOKED, _S.SUPERSEDED}),
        _S.REVOKED: frozenset(),
        _S.SUPERSEDED: frozenset(),
    }
)


def transition(current: MandateStatus, new: MandateStatus) -> MandateStatus:
    """Return ``new`` when the table allows ``current -> new``, else raise ``MandateError``."""
    current, new = _status(current), _status(new)
    if not current.can_transition_to(new):
        raise errors.MandateError(
            "mandate_status", current.value, f"cannot change to {new.value}"
        )
    return new


def _status(value: MandateStatus | str) -> MandateStatus:
    # A dict first: the collection run builds a Mandate per request, and Enum's call costs
    # about a microsecond where the lookup (the one Enum does first itself) costs a tenth.
    try:
        return _STATUSES[value]
    except (KeyError, TypeError):
        pass
    try:
        return MandateStatus(value)
    except ValueError as exc:
        raise errors.MandateError("mandate_status", str(value), "is not a known mandate status") from exc


class FirstCollectionPolicy(StrEnum):
    """How a creditor bank wants the first collection of a recurrent mandate.

    FRST became optional in November 2016 (SDD Core rulebook 9.x), but many banks still
    expect it, so this is a per-creditor-bank setting.
    """

    FRST = "frst"
    RCUR = "rcur"


@dataclass(frozen=True, slots=True)
class Mandate:
    reference: str
    kind: MandateKind
    status: MandateStatus
    signed_on: dt.date
    # First collection that was neither rejected nor returned: a failed first collection
    # does not count, so the next attempt is FRST again.
    first_collected_on: dt.date | None = None
    # Latest collection presented, even if it was later rejected or returned: the EPC
    # rulebook counts the 36-month lapse from the latest collection presented.
    last_collected_on: dt.date | None = None
    # A FNAL collection went out: the mandate must not be collected again.
    final_collected: bool = False

    def __post_init__(self) -> None:
        # Rows arrive with plain strings; the rules below compare enum members.
        object.__setattr__(self, "status", _status(self.status))
        try:
            object.__setattr__(self, "kind", _KINDS[self.kind])
        except (KeyError, TypeError):
            pass
        else:
            return
        try:
            object.__setattr__(self, "kind", MandateKind(self.kind))
        except ValueError as exc:
            raise errors.MandateError("mandate_kind", str(self.kind), "is not a known mandate kind") from exc


# Value -> member, as Enum's own _value2member_map_ (StrEnum members are equal to their values).
_STATUSES: dict[object, MandateStatus] = {status.value: status for status in MandateStatus}
_KINDS: dict[object, MandateKind] = {kind.value: kind for kind in MandateKind}


def add_months(d: dt.date, months: int) -> dt.date:
    """Calendar month arithmetic; the day is clamped to the month's end (29 Feb -> 28 Feb)."""
    index = d.year * 12 + (d.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def lapse_date(mandate: Mandate) -> dt.date:
    """First date on which the mandate may no longer be collected.

    36 months after the last collection or, when the mandate was never collected, after its
    signature: a mandate signed and never used must not stay valid forever, and the
    signature is the only date we can count from.
    """
    start = mandate.last_collected_on or mandate.signed_on
    return add_months(start, LAPSE_MONTHS)


def check_collectable(mandate: Mandate, collection_date: dt.date) -> None:
    """Raise the first reason why ``mandate`` cannot carry a collection on ``collection_date``."""
    if mandate.status.is_held():
        raise _mandate_error(
            errors.MandateNotActive, mandate,
            "is held after a refund (MD06): its collections wait until it is released", "MD06",
        )
    if not mandate.status.is_usable():
        raise _mandate_error(
            errors.MandateNotActive, mandate, f"is not active (status {mandate.status.value})", "MD01"
        )
    if mandate.signed_on > collection_date:
        raise _mandate_error(
            errors.MandateNotYetSigned,
            mandate,
            f"is signed on {mandate.signed_on.isoformat()}, after the collection date "
            f"{collection_date.isoformat()}",
            "MD02",
        )
    expires = lapse_date(mandate)
    if collection_date >= expires:
        raise _mandate_error(
            errors.MandateLapsed,
            mandate,
            f"has lapsed on {expires.isoformat()}: no collection for {LAPSE_MONTHS} months",
            "MD01",
        )
    if mandate.kind is MandateKind.ONE_OFF and mandate.first_collected_on is not None:
        raise _mandate_error(
            errors.MandateAlreadyUsed, mandate, "is a one-off mandate that was already collected", "MD01"
        )
    if mandate.final_collected:
        raise _mandate_error(
            errors.MandateAlreadyUsed, mandate, "had its final (FNAL) collection already", "MD01"
        )


def _mandate_error(
    kind: type[errors.MandateError], mandate: Mandate, problem: str, reason_code: str
) -> errors.MandateError:
    # The reference identifies a person to anyone reading the files: masked in the message.
    return kind(
        "mandate",
        mandate.reference,
        problem,
        reason_code=reason_code,
        shown_value=mask_reference(mandate.reference),
    )


def sequence_type(
    mandate: Mandate, policy: FirstCollectionPolicy, final: bool = False
) -> SequenceType:
    """The sequence type of the next collection on ``mandate``.

    ``final`` is the creditor's decision that this is the last collection; it cannot be
    inferred from the mandate.
    """
    if mandate.kind is MandateKind.ONE_OFF:
        return SequenceType.ONE_OFF
    if final:
        return SequenceType.FINAL
    if mandate.first_collected_on is None and FirstCollectionPolicy(policy) is FirstCollectionPolicy.FRST:
        return SequenceType.FIRST
    return SequenceType.RECURRING


# --- amendments ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MandateSnapshot:
    """What the bank last saw for this mandate (as sent in the last collection)."""

    reference: str
    creditor_id: str
    creditor_name: str | None  # None where the caller does not track it: only a change of name counts
    debtor_iban: str
    debtor_bic: str | None = None


def amendment_between(previous: MandateSnapshot | None, current: MandateSnapshot) -> Amendment | None:
    """The amendment details the next collection must carry, or None when nothing changed.

    A move to another bank is decided on the bank identifier inside the IBANs, not on the
    BIC: BICs are optional and often absent. That case is signalled as SMNDA alone, since
    SMNDA takes the place of the original IBAN in the file.
    """
    if previous is None:
        return None
    original_mandate_id = previous.reference if previous.reference != current.reference else None
    creditor_id_changed = _compact(previous.creditor_id) != _compact(current.creditor_id)
    creditor_name_changed = previous.creditor_name != current.creditor_name
    original_creditor_id = previous.creditor_id if creditor_id_changed else None
    # The bank needs the original name beside the original identifier; a rename alone is
    # also an amendment of the creditor's scheme identification.
    original_creditor_name = (
        previous.creditor_name if creditor_id_changed or creditor_name_changed else None
    )
    original_debtor_iban: str | None = None
    new_debtor_agent = False
    old_iban, new_iban = _iban(previous.debtor_iban), _iban(current.debtor_iban)
    if old_iban != new_iban:
        if _bank_of(old_iban) != _bank_of(new_iban):
            new_debtor_agent = True
        else:
            original_debtor_iban = old_iban.compact
    amendment = Amendment(
        original_mandate_id=original_mandate_id,
        original_creditor_id=original_creditor_id,
        original_creditor_name=original_creditor_name,
        original_debtor_iban=original_debtor_iban,
        new_debtor_agent=new_debtor_agent,
    )
    return None if amendment.is_empty() else amendment


def _compact(value: str) -> str:
    return "".join(value.split()).upper()


def _bank_of(iban: schwifty.IBAN) -> tuple[str, str]:
    # The country is part of the key: bank codes are only unique within a country.
    return iban.country_code, iban.bank_code


def _iban(value: str) -> schwifty.IBAN:
    try:
        return schwifty.IBAN(value)
    except schwifty_errors.InvalidChecksumDigits as exc:
        raise errors.InvalidChecksum("debtor_iban", value, shown_value=mask_iban(value)) from exc
    except schwifty_errors.InvalidLength as exc:
        raise errors.InvalidLength("debtor_iban", value, shown_value=mask_iban(value)) from exc
    except schwifty_errors.SchwiftyException as exc:
        raise errors.InvalidFormat("debtor_iban", value, shown_value=mask_iban(value)) from exc
