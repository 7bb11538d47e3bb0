"""Changes to an account: billing details, collection mode and schedule, bank details (a new
electronically signed mandate), and the creditor's account settings.

Every change is recorded with who made it, when, and each field's old and new value
(``account_changes`` / ``account_change_fields``), and is idempotent on its key: the same
key and content returns the first result, other content is refused.

Bank details are never edited in place: a new mandate, signed electronically, supersedes
the old one through ``registry.register_mandate``, which moves the pending debits to it
and lets the next file carry the amendment details (new reference, new IBAN or SMNDA).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.clock import Clock, business_today
from sepa_engine.db.models import AccountChange, Creditor, DebtorAccount, Mandate, MandateSignature
from sepa_engine.db.repositories import accounts as repo
from sepa_engine.db.repositories import registry as registry_repo
from sepa_engine.domain import identifiers
from sepa_engine.domain.accounts import (
    CollectionMode,
    check_leaving_automatic,
    check_mode_change,
    check_notice_days,
    check_schedule_day,
    collection_mode,
    frequency,
)
from sepa_engine.domain.masking import mask_iban
from sepa_engine.services import idempotency, registry
from sepa_engine.services.account_inputs import (
    CreditorSettingsInput,
    DetailsInput,
    ESignedMandateInput,
    ModeChangeInput,
)
from sepa_engine.services.account_ledger import account_of, actor_name, check_input, creditor_of, fit
from sepa_engine.services.inputs import MandateInput

log = structlog.get_logger("sepa_engine.accounts")

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9][0-9 ().-]{2,34}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_GROUP = re.compile(r"[a-z0-9-]{1,32}")

KIND_DETAILS = "details"
KIND_MODE = "collection_mode"
KIND_BANK = "bank_details"
KIND_SETTINGS = "creditor_settings"


@dataclass(frozen=True, slots=True)
class ChangeResult:
    id: int
    creditor_code: str
    account_reference: str | None
    kind: str
    actor: str
    changed_at: dt.datetime
    # (field, old value, new value); fields whose value did not change are left out.
    fields: tuple[tuple[str, str | None, str | None], ...]
    created: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "creditor": self.creditor_code,
            "account": self.account_reference,
            "kind": self.kind,
            "actor": self.actor,
            "changed_at": self.changed_at.isoformat(),
            "changes": [{"field": f, "old": old, "new": new} for f, old, new in self.fields],
            "created": self.created,
        }


@dataclass(frozen=True, slots=True)
class HistoryLine:
    change_id: int
    kind: str
    actor: str
    changed_at: dt.datetime
    field: str
    old_value: str | None
    new_value: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "change_id": self.change_id,
            "kind": self.kind,
            "actor": self.actor,
            "changed_at": self.changed_at.isoformat(),
            "field": self.field,
            "old": self.old_value,
            "new": self.new_value,
        }


# --- billing details -----------------------------------------------------------------------
def update_details(
    session: Session,
    creditor_code: str,
    account_reference: str,
    data: DetailsInput,
    *,
    actor: str,
    idempotency_key: str,
    clock: Clock,
) -> ChangeResult:
    """Change the billing contact, address, phone, fax, email or group customer reference."""
    key = idempotency.check_key(idempotency_key)
    check_input(data, DetailsInput)
    who = actor_name(actor)
    creditor = creditor_of(session, creditor_code)
    reference = fit("account", account_reference, DebtorAccount.reference)
    values = {name: _detail(name, value) for name, value in sorted(data.changes.items())}
    digest = idempotency.content_hash({"kind": KIND_DETAILS, "account": reference, "changes": values})
    replay = _replayed(session, creditor, key, digest)
    if replay is not None:
        return replay
    account = repo.lock_account(session, account_of(session, creditor, reference))
    # A concurrent call with the same key may have committed while we waited for the lock.
    replay = _replayed(session, creditor, key, digest)
    if replay is not None:
        return replay
    customer = values.get("customer_reference")
    if customer is not None and customer != account.customer_reference:
        other = repo.account_by_customer(session, creditor.id, customer)
        if other is not None:
            raise errors.DuplicateIdentifier(
                "customer_reference", customer, f"is already the customer of account {other.reference}"
            )
    changed = []
    for name, value in values.items():
        old = getattr(account, name)
        if old != value:
            changed.append((name, old, value))
            setattr(account, name, value)
    return _record(session, creditor, account, KIND_DETAILS, who, changed, key, digest, clock)


def _detail(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    text = fit(name, value, getattr(DebtorAccount, name))
    if name == "email" and _EMAIL.fullmatch(text) is None:
        raise errors.InvalidFormat(name, text, "is not an email address")
    if name in ("phone", "fax") and _PHONE.fullmatch(text) is None:
        raise errors.InvalidFormat(name, text, "is not a phone number (digits, spaces, + ( ) . -)")
    if name == "billing_country" and _COUNTRY.fullmatch(text) is None:
        raise errors.InvalidFormat(name, text, "must be an ISO 3166 code of two capital letters")
    return text


def history(session: Session, creditor_code: str, account_reference: str) -> tuple[HistoryLine, ...]:
    """Every recorded change of the account, oldest first, field by field."""
    creditor = creditor_of(session, creditor_code)
    account = account_of(session, creditor, account_reference)
    return tuple(
        HistoryLine(row.change_id, row.kind, row.actor, row.changed_at, row.field, row.old_value, row.new_value)
        for row in repo.account_history(session, account)
    )


# --- collection mode -----------------------------------------------------------------------
def set_collection_mode(
    session: Session,
    creditor_code: str,
    account_reference: str,
    data: ModeChangeInput,
    *,
    actor: str,
    idempotency_key: str,
    clock: Clock,
) -> ChangeResult:
    """Switch between on demand and automatic, or change the automatic schedule.

    On demand -> automatic needs a new electronically signed mandate in ``data.mandate``;
    it supersedes the account's mandate. Automatic -> on demand is the creditor's
    decision (portals offer customers no such button); debits already pre-notified stay.
    """
    key = idempotency.check_key(idempotency_key)
    check_input(data, ModeChangeInput)
    who = actor_name(actor)
    creditor = creditor_of(session, creditor_code)
    reference = fit("account", account_reference, DebtorAccount.reference)
    mode = collection_mode(data.mode)
    if mode is CollectionMode.AUTOMATIC:
        if data.frequency is None:
            raise errors.InvalidFormat("frequency", None, "is required for automatic collection (monthly or quarterly)")
        if data.day is None:
            raise errors.InvalidFormat("day", None, "is required for automatic collection (day of the month, 1 to 28)")
        freq: str | None = frequency(data.frequency).value
        day: int | None = check_schedule_day(data.day)
    else:
        for name in ("frequency", "day"):
            if getattr(data, name) is not None:
                raise errors.InvalidFormat(name, getattr(data, name), "is only for automatic collection")
        freq = day = None
    digest = idempotency.content_hash(
        {
            "kind": KIND_MODE,
            "account": reference,
            "mode": mode.value,
            "frequency": freq,
            "day": day,
            "mandate": _mandate_content(data.mandate),
            **({"reason": data.reason} if data.reason is not None else {}),
        }
    )
    replay = _replayed(session, creditor, key, digest)
    if replay is not None:
        return replay
    account = repo.lock_account(session, account_of(session, creditor, reference))
    # A concurrent call with the same key may have committed while we waited for the lock.
    replay = _replayed(session, creditor, key, digest)
    if replay is not None:
        return replay
    current = CollectionMode(account.collection_mode)
    check_mode_change(current, mode, new_mandate=data.mandate is not None)
    check_leaving_automatic(current, mode, actor=who, reason=data.reason)
    changed: list[tuple[str, str | None, str | None]] = []
    if current is CollectionMode.AUTOMATIC and mode is CollectionMode.ON_DEMAND:
        # The history says why the staff took the account out of automatic mode.
        changed.append(("reason", None, data.reason))
    mandate_id = None
    if data.mandate is not None:
        mandate, fields = _sign_new_mandate(session, creditor, account, data.mandate, key, clock)
        mandate_id = mandate.id
        changed.extend(fields)
    since = account.automatic_since
    if mode is CollectionMode.AUTOMATIC and current is not CollectionMode.AUTOMATIC:
        since = business_today(clock, creditor.timezone)
    if mode is CollectionMode.ON_DEMAND:
        since = None
    for name, value in (
        ("collection_mode", mode.value),
        ("schedule_frequency", freq),
        ("schedule_day", day),
        ("automatic_since", since),
    ):
        old = getattr(account, name)
        if old != value:
            changed.append((name, _text(old), _text(value)))
            setattr(account, name, value)
    result = _record(session, creditor, account, KIND_MODE, who, changed, key, digest, clock, mandate_id=mandate_id)
    log.info("account.mode_changed", creditor=creditor.code, account_id=account.id, mode=mode.value)
    return result


def change_bank_details(
    session: Session,
    creditor_code: str,
    account_reference: str,
    data: ESignedMandateInput,
    *,
    actor: str,
    idempotency_key: str,
    clock: Clock,
) -> ChangeResult:
    """New bank details = a new electronically signed mandate superseding the old one (both modes)."""
    key = idempotency.check_key(idempotency_key)
    check_input(data, ESignedMandateInput)
    who = actor_name(actor)
    creditor = creditor_of(session, creditor_code)
    reference = fit("account", account_reference, DebtorAccount.reference)
    digest = idempotency.content_hash({"kind": KIND_BANK, "account": reference, "mandate": _mandate_content(data)})
    replay = _replayed(session, creditor, key, digest)
    if replay is not None:
        return replay
    account = repo.lock_account(session, account_of(session, creditor, reference))
    # A concurrent call with the same key may have committed while we waited for the lock.
    replay = _replayed(session, creditor, key, digest)
    if replay is not None:
        return replay
    mandate, fields = _sign_new_mandate(session, creditor, account, data, key, clock, field_prefix="")
    return _record(session, creditor, account, KIND_BANK, who, fields, key, digest, clock, mandate_id=mandate.id)


def _mandate_content(data: ESignedMandateInput | None) -> dict[str, object] | None:
    if data is None:
        return None
    return {
        "reference": data.reference,
        "signed_at": data.signed_at.astimezone(dt.timezone.utc).isoformat(),
        "iban": identifiers.compact_iban(data.iban),
        "bic": data.bic,
        "signer_name": data.signer_name,
        "evidence_id": data.evidence_id,
    }


def _sign_new_mandate(
    session: Session,
    creditor: Creditor,
    account: DebtorAccount,
    data: ESignedMandateInput,
    key: str,
    clock: Clock,
    field_prefix: str = "mandate.",
) -> tuple[Mandate, list[tuple[str, str | None, str | None]]]:
    # Checked before anything is stored: a portal must not get a signed mandate it cannot use.
    iban = identifiers.validate_iban(data.iban, field_prefix + "iban")
    signer = fit(field_prefix + "signer_name", data.signer_name, MandateSignature.signer_name)
    evidence = fit(field_prefix + "evidence_id", data.evidence_id, MandateSignature.evidence_id)
    if data.signed_at > clock.now():
        raise errors.InvalidDate(field_prefix + "signed_at", data.signed_at.isoformat(), "is in the future")
    if repo.signature_by_evidence(session, creditor.id, evidence) is not None:
        raise errors.DuplicateIdentifier(field_prefix + "evidence_id", evidence, "already proves the signature of another mandate")
    previous = repo.mandate_in_force(session, account)
    signed_on = data.signed_at.astimezone(ZoneInfo(creditor.timezone)).date()
    result = registry.register_mandate(
        session,
        creditor.code,
        MandateInput(
            reference=data.reference, debtor_account=account.reference, signed_on=signed_on, iban=iban, bic=data.bic,
        ),
        idempotency_key=key,
        clock=clock,
    )
    if not result.created:
        raise errors.IdempotencyConflict(field_prefix + "reference", data.reference, "was registered under this key by another call")
    registry_repo.add(
        session,
        MandateSignature(
            creditor_id=creditor.id, mandate_id=result.id, signed_at=data.signed_at, signer_name=signer,
            evidence_id=evidence, created_at=clock.now(),
        ),
    )
    mandate = registry_repo.mandate(session, result.id)
    fields: list[tuple[str, str | None, str | None]] = [
        ("mandate", previous.reference if previous else None, mandate.reference),
        ("iban", mask_iban(previous.iban) if previous else None, mask_iban(mandate.iban)),
    ]
    log.info("account.mandate_signed", creditor=creditor.code, account_id=account.id, mandate_row=mandate.id,
             superseded=result.supersedes_id)
    return mandate, [f for f in fields if f[1] != f[2]]


# --- creditor settings ---------------------------------------------------------------------
def set_creditor_settings(
    session: Session, creditor_code: str, data: CreditorSettingsInput, *, actor: str, idempotency_key: str, clock: Clock
) -> ChangeResult:
    """Pre-notification lead time and group of a creditor (a field left None is kept)."""
    key = idempotency.check_key(idempotency_key)
    check_input(data, CreditorSettingsInput)
    who = actor_name(actor)
    creditor = creditor_of(session, creditor_code)
    values: dict[str, object] = {}
    if data.prenotification_days is not None:
        values["prenotification_days"] = check_notice_days(data.prenotification_days)
    if data.group_code is not None:
        if _GROUP.fullmatch(data.group_code) is None:
            raise errors.InvalidFormat("group_code", data.group_code, "must be 1 to 32 characters among a-z, 0-9 and '-'")
        values["group_code"] = data.group_code
    if not values:
        raise errors.InvalidFormat("settings", None, "must change at least one setting")
    digest = idempotency.content_hash({"kind": KIND_SETTINGS, "values": values})
    replay = _replayed(session, creditor, key, digest)
    if replay is not None:
        return replay
    changed = []
    for name, value in values.items():
        old = getattr(creditor, name)
        if old != value:
            changed.append((name, _text(old), _text(value)))
            setattr(creditor, name, value)
    return _record(session, creditor, None, KIND_SETTINGS, who, changed, key, digest, clock)


# --- recording -----------------------------------------------------------------------------
def _record(
    session: Session,
    creditor: Creditor,
    account: DebtorAccount | None,
    kind: str,
    actor: str,
    fields: list[tuple[str, str | None, str | None]],
    key: str,
    digest: str,
    clock: Clock,
    *,
    mandate_id: int | None = None,
) -> ChangeResult:
    now = clock.now()
    row = registry_repo.add(
        session,
        AccountChange(
            creditor_id=creditor.id, debtor_account_id=account.id if account else None, kind=kind, actor=actor,
            changed_at=now, mandate_id=mandate_id, idempotency_key=key, content_hash=digest,
        ),
    )
    repo.add_change_fields(session, row.id, fields)
    return ChangeResult(row.id, creditor.code, account.reference if account else None, kind, actor, now, tuple(fields), True)


def _replayed(session: Session, creditor: Creditor, key: str, digest: str) -> ChangeResult | None:
    row = repo.change_by_idempotency_key(session, creditor.id, key)
    if row is None:
        return None
    idempotency.ensure_same(row, digest, key)
    account = repo.account_by_id(session, creditor.id, row.debtor_account_id) if row.debtor_account_id else None
    return ChangeResult(
        row.id, creditor.code, account.reference if account else None, row.kind, row.actor, row.changed_at,
        tuple(repo.change_fields(session, row)), False,
    )


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
