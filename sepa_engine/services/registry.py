"""What upstream registers and enqueues: creditors, debtor accounts, mandates, debit requests.

The policy, in one place:

* Malformed input (missing field, wrong type, unknown creditor, debtor account or mandate,
  an amount that is not a non-negative decimal with at most two places, a value longer than
  its column) raises a ``SepaEngineError`` naming the field and the rule; nothing is written.
* Business rules that the collection run checks anyway on its day (IBAN/BIC, SEPA country,
  mandate state and lapse, amount zero or above the SEPA maximum, characters) do not raise:
  the record is stored and the result lists them in ``problems`` (``error.to_dict()``), so
  that upstream can show them at once while nothing it sent is lost.
* Creditors are configuration: ``register_creditor`` is strict and raises on any of them.
* Every mutation is idempotent on its key: same key and content -> the first result, and
  nothing written; same key, other content -> ``IdempotencyConflict`` (``idempotency.py``).

Services never commit: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.clock import Clock, business_today
from sepa_engine.db.models import Creditor, DebitRequest, DebtorAccount, Mandate
from sepa_engine.db.repositories import registry as repo
from sepa_engine.domain import bank_profiles, charset, identifiers, text
from sepa_engine.domain.debit_gate import Admitted, Origin
from sepa_engine.domain.directdebit import LocalInstrument
from sepa_engine.domain.mandate import FirstCollectionPolicy, MandateKind, MandateStatus, transition
from sepa_engine.domain.masking import mask_iban, mask_reference
from sepa_engine.domain.statuses import RequestStatus, request_transition
from sepa_engine.iso20022.versions import writable_version
from sepa_engine.outbox import PENDING_FOLDER
from sepa_engine.services import idempotency, problems
from sepa_engine.services.inputs import (
    AddressInput,
    CreditorInput,
    DebitRequestInput,
    DebtorAccountInput,
    MandateInput,
    MandateRevocationInput,
)

log = structlog.get_logger("sepa_engine.registry")

T = TypeVar("T")
Problems = tuple[dict[str, object], ...]

_CODE = re.compile(r"[a-z0-9-]{1,32}")
_CUTOFF = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
_COUNTRY = re.compile(r"[A-Z]{2}")
MAX_LEAD_DAYS = 30
MAX_PER_FILE = 1_000_000
LIST_LIMIT_MAX = 10_000
# How often a mandate is looked up again when it was replaced between lookup and lock.
_RESOLVE_ATTEMPTS = 3
_CHAIN_MAX = 1_000
REVOKED_REASON = "mandate revoked"
_ADDRESS_FIELDS = ("country", "town", "street", "building_number", "postcode")


# --- results -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreditorResult:
    id: int
    code: str
    creditor_identifier: str
    created: bool


@dataclass(frozen=True, slots=True)
class DebtorAccountResult:
    id: int
    creditor_code: str
    reference: str
    created: bool
    problems: Problems = ()


@dataclass(frozen=True, slots=True)
class MandateResult:
    id: int
    creditor_code: str
    reference: str
    status: str
    supersedes_id: int | None
    amendment_pending: bool
    created: bool
    problems: Problems = ()


@dataclass(frozen=True, slots=True)
class RequestResult:
    id: int
    creditor_code: str
    end_to_end_id: str
    mandate_id: int
    mandate_reference: str
    amount_cents: int
    requested_date: dt.date
    status: str
    created: bool
    problems: Problems = ()


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    # Pass as ``after_id`` for the next page; None when this page is the last.
    next_after: int | None


# --- creditors -----------------------------------------------------------------------------
def register_creditor(
    session: Session, data: CreditorInput, *, idempotency_key: str, clock: Clock
) -> CreditorResult:
    key = idempotency.check_key(idempotency_key)
    _check_input(data, CreditorInput)
    values = _creditor_values(data, business_today(clock))
    digest = idempotency.content_hash(values)
    existing = repo.creditor_by_idempotency_key(session, key)
    if existing is not None:
        idempotency.ensure_same(existing, digest, key)
        return _creditor_result(existing, created=False)
    code = values["code"]
    if repo.creditor_by_code(session, code) is not None:
        raise errors.DuplicateIdentifier("code", code, "is already a registered creditor")
    taken = repo.creditor_by_identifier(session, values["creditor_identifier"])
    if taken is not None:
        raise errors.DuplicateIdentifier(
            "creditor_identifier", values["creditor_identifier"], f"is already registered by creditor {taken.code}"
        )

    def write() -> Creditor:
        row = Creditor(**values, idempotency_key=key, content_hash=digest, created_at=clock.now())
        return repo.add(session, row)

    row, created = idempotency.write_once(
        session,
        write,
        lambda: repo.creditor_by_idempotency_key(session, key),
        digest,
        key,
        lambda: errors.DuplicateIdentifier("code", code, "or its creditor identifier was registered meanwhile"),
    )
    return _creditor_result(row, created)


def _creditor_values(data: CreditorInput, today: dt.date) -> dict[str, Any]:
    code = data.code
    if _CODE.fullmatch(code) is None:
        raise errors.InvalidFormat("code", code, "must be 1 to 32 characters among a-z, 0-9 and '-'")
    if code == PENDING_FOLDER:
        raise errors.InvalidFormat("code", code, "is reserved: outbox/pending holds the files awaiting approval")
    bank = bank_profiles.profile(data.bank_profile)
    name = _fit("name", data.name, Creditor.name)
    if not charset.to_sepa_text(name):
        raise errors.InvalidCharacters("name", name, "has no character of the SEPA set left after transliteration")
    return {
        "code": code,
        "name": name,
        "creditor_identifier": identifiers.validate_creditor_id(data.creditor_identifier, "creditor_identifier"),
        "iban": identifiers.validate_iban(data.iban, "iban"),
        "bic": identifiers.validate_bic(data.bic, "bic") if data.bic is not None else None,
        "local_instrument": _member("local_instrument", data.local_instrument, LocalInstrument),
        "bank_profile": bank.code,
        # A version the bank no longer takes is refused here, with the date and the source,
        # rather than as files the bank rejects.
        "pain008_version": bank.check_version(writable_version(data.pain008_version or bank.default_version).name, today),
        "lead_days": _in_range("lead_days", bank.lead_days if data.lead_days is None else data.lead_days, 1, MAX_LEAD_DAYS),
        "cutoff": _cutoff(data.cutoff or bank.cutoff.strftime("%H:%M")),
        "timezone": _timezone(data.timezone),
        "max_per_file": _in_range("max_per_file", data.max_per_file, 1, MAX_PER_FILE),
        "first_collection_policy": _member(
            "first_collection_policy", data.first_collection_policy, FirstCollectionPolicy
        ),
        # Files wait in outbox/pending until ``batch approve`` (README, "Approval").
        "requires_approval": data.requires_approval,
        **_address_values(data.address, Creditor, strict=True),
        "ultimate_creditor_name": None,
        "ultimate_creditor_id": None,
        **ultimate_party("ultimate_creditor", data.ultimate_creditor_name, data.ultimate_creditor_id, Creditor.ultimate_creditor_name),
    }


def ultimate_party(prefix: str, name: str | None, identifier: str | None, column: Any) -> dict[str, Any]:
    """``{prefix}_name`` and ``{prefix}_id`` when a name is given (SEPA text, at most 70; a
    SEPA reference, at most 35), else nothing: an ultimate party is optional."""
    if name is None:
        if identifier is not None:
            raise errors.InvalidFormat(f"{prefix}_id", identifier, f"needs {prefix}_name beside it")
        return {}
    fitted = _fit(f"{prefix}_name", name, column)
    if not charset.to_sepa_text(fitted):
        raise errors.InvalidCharacters(f"{prefix}_name", fitted, "has no character of the SEPA set left after transliteration")
    return {
        f"{prefix}_name": fitted,
        f"{prefix}_id": identifiers.validate_reference(identifier, f"{prefix}_id") if identifier is not None else None,
    }


def _creditor_result(row: Creditor, created: bool) -> CreditorResult:
    return CreditorResult(row.id, row.code, row.creditor_identifier, created)


# --- debtor accounts -----------------------------------------------------------------------
def register_debtor_account(
    session: Session, creditor_code: str, data: DebtorAccountInput, *, idempotency_key: str, clock: Clock
) -> DebtorAccountResult:
    key = idempotency.check_key(idempotency_key)
    _check_input(data, DebtorAccountInput)
    creditor = _creditor(session, creditor_code)
    reference = _fit("reference", data.reference, DebtorAccount.reference)
    values = {
        "reference": reference,
        "name": _fit("name", data.name, DebtorAccount.name),
        **_address_values(data.address, DebtorAccount, strict=False),
    }
    digest = idempotency.content_hash(values)
    existing = repo.debtor_account_by_idempotency_key(session, creditor.id, key)
    if existing is not None:
        idempotency.ensure_same(existing, digest, key)
        return _account_result(creditor, existing, created=False)
    if repo.debtor_account_by_reference(session, creditor.id, reference) is not None:
        raise _duplicate_account(creditor, reference)

    def write() -> DebtorAccount:
        row = DebtorAccount(
            creditor_id=creditor.id, **values, idempotency_key=key, content_hash=digest, created_at=clock.now()
        )
        return repo.add(session, row)

    row, created = idempotency.write_once(
        session,
        write,
        lambda: repo.debtor_account_by_idempotency_key(session, creditor.id, key),
        digest,
        key,
        lambda: _duplicate_account(creditor, reference),
    )
    return _account_result(creditor, row, created)


def _duplicate_account(creditor: Creditor, reference: str) -> errors.SepaEngineError:
    return errors.DuplicateIdentifier("reference", reference, f"is already a debtor account of creditor {creditor.code}")


def _account_result(creditor: Creditor, row: DebtorAccount, created: bool) -> DebtorAccountResult:
    found = problems.debtor_account_problems(row)
    return DebtorAccountResult(row.id, creditor.code, row.reference, created, problems.as_dicts(found))


# --- mandates ------------------------------------------------------------------------------
def register_mandate(
    session: Session, creditor_code: str, data: MandateInput, *, idempotency_key: str, clock: Clock
) -> MandateResult:
    """Store a mandate; it replaces the mandate named by ``supersedes``, or else the debtor
    account's active mandate, whose history it inherits and whose pending requests it takes."""
    key = idempotency.check_key(idempotency_key)
    _check_input(data, MandateInput)
    creditor = _creditor(session, creditor_code)
    # A signature is something that happened: one dated after today (2999) is a typo or a
    # made-up mandate, and would make every debit on it wait for that date.
    text.check_past_date("signed_on", data.signed_on, business_today(clock, creditor.timezone))
    iban = identifiers.compact_iban(data.iban)
    values: dict[str, Any] = {
        "reference": _fit("reference", data.reference, Mandate.reference, shown=mask_reference(data.reference)),
        "signed_on": data.signed_on,
        "iban": _fit("iban", iban, Mandate.iban, shown=mask_iban(iban)),
        "bic": _fit("bic", identifiers.compact_bic(data.bic), Mandate.bic) if data.bic is not None else None,
        "kind": _member("kind", data.kind, MandateKind),
        # Only when named, so that the content hash of mandates without one stays as it was.
        **ultimate_party("ultimate_debtor", data.ultimate_debtor_name, data.ultimate_debtor_id, Mandate.ultimate_debtor_name),
    }
    account_reference = _fit("debtor_account", data.debtor_account, DebtorAccount.reference)
    supersedes = (
        _fit("supersedes", data.supersedes, Mandate.reference, shown=mask_reference(data.supersedes))
        if data.supersedes is not None
        else None
    )
    digest = idempotency.content_hash({**values, "debtor_account": account_reference, "supersedes": supersedes})
    existing = repo.mandate_by_idempotency_key(session, creditor.id, key)
    if existing is not None:
        idempotency.ensure_same(existing, digest, key)
        return _mandate_result(creditor, existing, clock, created=False)

    account = repo.debtor_account_by_reference(session, creditor.id, account_reference)
    if account is None:
        raise errors.NotFound("debtor_account", account_reference, f"is not a debtor account of creditor {creditor.code}")
    old: Mandate | None
    if supersedes is not None:
        old = _current_mandate(session, creditor, supersedes, field="supersedes", shared=False)
    else:
        old = _locked_active_mandate(session, account)
    reference = values["reference"]
    same_reference = repo.mandate_in_force(session, creditor.id, reference)
    if old is None and same_reference is not None and same_reference.debtor_account_id == account.id:
        # The account's blocked or lapsed mandate sent again (new IBAN, same UMR): a new
        # version of that mandate, which it replaces.
        old = repo.lock_mandate(session, same_reference, shared=False)
    if same_reference is not None and (old is None or same_reference.id != old.id):
        raise _duplicate_mandate(creditor, reference)
    if old is not None:
        # Raises for a revoked mandate: there is nothing left to replace.
        transition(MandateStatus(old.status), MandateStatus.SUPERSEDED)

    def write() -> Mandate:
        now = clock.now()
        if old is not None:
            old.status = MandateStatus.SUPERSEDED.value
            old.status_changed_at = now
            # Before the insert: the new mandate may keep the old reference, which the unique
            # index allows only once the old row is superseded.
            session.flush()
        row = repo.add(
            session,
            Mandate(
                creditor_id=creditor.id,
                debtor_account_id=account.id,
                **values,
                status=MandateStatus.ACTIVE.value,
                status_changed_at=now,
                first_collected_on=old.first_collected_on if old is not None else None,
                last_collected_on=old.last_collected_on if old is not None else None,
                presented_creditor_identifier=old.presented_creditor_identifier if old is not None else None,
                supersedes_id=old.id if old is not None else None,
                # The collection run derives the amendment (reference, IBAN, SMNDA) from the
                # superseded row when it next collects on this mandate.
                amendment_pending=old is not None,
                final_collected=False,
                idempotency_key=key,
                content_hash=digest,
                created_at=now,
            ),
        )
        if old is not None:
            moved.append(repo.move_pending_requests(session, old.id, row.id))
        return row

    moved: list[int] = []

    row, created = idempotency.write_once(
        session,
        write,
        lambda: repo.mandate_by_idempotency_key(session, creditor.id, key),
        digest,
        key,
        lambda: _duplicate_mandate(creditor, reference),
    )
    if created and old is not None:
        log.info(
            "mandate.superseded",
            creditor=creditor.code,
            mandate=mask_reference(row.reference),
            superseded_id=old.id,
            moved_requests=moved[0],
        )
    return _mandate_result(creditor, row, clock, created)


def _duplicate_mandate(creditor: Creditor, reference: str) -> errors.SepaEngineError:
    return errors.DuplicateIdentifier(
        "reference",
        reference,
        f"is already used by another mandate in force of creditor {creditor.code} "
        "(name that mandate in supersedes to replace it)",
        shown_value=mask_reference(reference),
    )


def _mandate_result(creditor: Creditor, row: Mandate, clock: Clock, created: bool) -> MandateResult:
    # A mandate signed later than today is checked from its signature on, not refused for it.
    on = max(business_today(clock, creditor.timezone), row.signed_on)
    found = problems.mandate_problems(row, row.debtor_account, on)
    return MandateResult(
        row.id, creditor.code, row.reference, row.status, row.supersedes_id, row.amendment_pending, created,
        problems.as_dicts(found),
    )


def revoke_mandate(session: Session, creditor_code: str, reference: str, *, reason: str, clock: Clock) -> int:
    """Revoke the mandate in force under ``reference`` and cancel its pending requests.

    Returns how many requests were cancelled. Revoking a revoked mandate changes nothing
    and returns 0. Requests already assigned to a file are left to the file's fate.
    """
    # The HTTP body's model: the same rules for the API, the CLI and a Python call.
    MandateRevocationInput(reference=reference, reason=reason)
    creditor = _creditor(session, creditor_code)
    row = _current_mandate(session, creditor, _fit("reference", reference, Mandate.reference), field="reference", shared=False)
    now = clock.now()
    if MandateStatus(row.status) is not MandateStatus.REVOKED:
        row.status = transition(MandateStatus(row.status), MandateStatus.REVOKED).value
        row.status_changed_at = now
        row.status_reason = reason
    cancelled = repo.cancel_pending_requests(
        session,
        row.id,
        status=request_transition(RequestStatus.PENDING, RequestStatus.CANCELLED),
        reason=REVOKED_REASON,
        at=now,
    )
    session.flush()
    log.info("mandate.revoked", creditor=creditor.code, mandate=mask_reference(row.reference), reason=reason, cancelled=cancelled)
    return cancelled


def release_mandate(session: Session, creditor_code: str, reference: str, *, note: str, clock: Clock) -> bool:
    """Release the hold an MD06 refund put on the mandate in force under ``reference``.

    Its pending requests are collected again from the next run. Returns False when the
    mandate was active already (a second release changes nothing); any other status is
    refused with the reason, since only a hold is released here.
    """
    if not isinstance(note, str):
        raise errors.InvalidFormat("note", f"<{type(note).__name__}>", "must be a string")
    creditor = _creditor(session, creditor_code)
    row = _current_mandate(session, creditor, _fit("reference", reference, Mandate.reference), field="reference", shared=False)
    status = MandateStatus(row.status)
    if status is MandateStatus.ACTIVE:
        return False
    if status is not MandateStatus.HELD:
        raise errors.MandateNotActive(
            "reference", reference, f"is {status.value}, not held: only a hold is released",
            reason_code="MD01", shown_value=mask_reference(reference),
        )
    row.status = transition(status, MandateStatus.ACTIVE).value
    row.status_changed_at = clock.now()
    row.status_reason = f"released: {note}"[:1000] if note else None
    session.flush()
    log.info("mandate.released", creditor=creditor.code, mandate=mask_reference(row.reference))
    return True


def _current_mandate(session: Session, creditor: Creditor, reference: str, *, field: str, shared: bool) -> Mandate:
    """The mandate in force under ``reference``, locked.

    A reference known only from superseded mandates leads to the mandate that replaced
    them: upstream may still use the old reference, and what it means is the debtor's
    mandate as it stands now.
    """
    for _ in range(_RESOLVE_ATTEMPTS):
        in_force = repo.mandate_in_force(session, creditor.id, reference, lock="share" if shared else "update")
        if in_force is not None:
            return in_force
        row = _successor(session, repo.latest_superseded(session, creditor.id, reference))
        if row is None:
            raise errors.NotFound(
                field, reference, f"is not a mandate of creditor {creditor.code}", shown_value=mask_reference(reference)
            )
        repo.lock_mandate(session, row, shared=shared)
        if MandateStatus(row.status) is not MandateStatus.SUPERSEDED:
            return row
    raise errors.MandateError(field, reference, "was replaced while being read; try again", shown_value=mask_reference(reference))


def _successor(session: Session, row: Mandate | None) -> Mandate | None:
    steps = 0
    while row is not None and MandateStatus(row.status) is MandateStatus.SUPERSEDED and steps < _CHAIN_MAX:
        following = repo.successor_of(session, row.id)
        if following is None:
            break
        row, steps = following, steps + 1
    return row


def _locked_active_mandate(session: Session, account: DebtorAccount) -> Mandate | None:
    for _ in range(_RESOLVE_ATTEMPTS):
        row = repo.active_mandate_of_account(session, account.id)
        if row is None:
            return None
        repo.lock_mandate(session, row, shared=False)
        if MandateStatus(row.status) is MandateStatus.ACTIVE:
            return row
    raise errors.MandateError("debtor_account", account.reference, "had its mandate changed while being read; try again")


# --- debit requests ------------------------------------------------------------------------
def request_ultimate_creditor(data: DebitRequestInput) -> dict[str, Any]:
    return ultimate_party("ultimate_creditor", data.ultimate_creditor_name, data.ultimate_creditor_id,
                          DebitRequest.ultimate_creditor_name)


def enqueue_request(
    session: Session,
    creditor_code: str,
    data: DebitRequestInput,
    *,
    idempotency_key: str,
    clock: Clock,
    origin: Origin = Origin.UPSTREAM,
    admitted: Admitted | None = None,
) -> RequestResult:
    """Store one debit request, once it has passed the account gate (``debit_gate``).

    ``origin`` is the door it came by: upstream systems leave it; pay-now, the schedule
    and retries name themselves, since the account's mode decides who may collect. A retry
    comes ``admitted`` already (``debit_gate.admit_retries``: it pays what its original paid).

    A revoked, blocked or lapsed mandate is a business rule like any other: the request is
    stored and returned with its problem (MD01), and the collection run refuses it, so
    upstream's request is never lost and its refusal shows in the review.

    One request is a batch of one (``batch_enqueue.enqueue``): the checks, the gate and the
    writer are written once for every door.
    """
    # Imported here: batch_enqueue builds on this module's checks and results.
    from sepa_engine.services import batch_enqueue

    item = batch_enqueue.EnqueueItem(idempotency_key, data)
    result = batch_enqueue.enqueue(session, creditor_code, [item], clock=clock, chunk_size=1, origin=origin,
                                   locate=False, admitted=None if admitted is None else {idempotency_key: admitted})
    return result.results[0]


def end_to_end_id(creditor_code: str, request_id: int) -> str:
    """The EndToEndId of a request: derived from its row, so unique, stable and replayable.

    At most 10 + 1 + 12 characters for any id below 10**12, all in the SEPA set (a code is
    ``[a-z0-9-]``, upper-cased here).
    """
    return f"{creditor_code[:10].upper()}-{request_id:012d}"


# --- listings ------------------------------------------------------------------------------
def list_requests(
    session: Session,
    *,
    status: str | None = None,
    creditor_code: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> Page[repo.RequestRow]:
    chosen = _member("status", status, RequestStatus) if status is not None else None
    creditor_id = _creditor(session, creditor_code).id if creditor_code is not None else None
    rows = repo.list_requests(
        session,
        status=RequestStatus(chosen) if chosen else None,
        creditor_id=creditor_id,
        after_id=after_id,
        limit=_in_range("limit", limit, 1, LIST_LIMIT_MAX),
    )
    return _page(rows, limit)


def list_mandates(
    session: Session,
    *,
    creditor_code: str | None = None,
    status: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> Page[repo.MandateRow]:
    chosen = _member("status", status, MandateStatus) if status is not None else None
    creditor_id = _creditor(session, creditor_code).id if creditor_code is not None else None
    rows = repo.list_mandates(
        session,
        creditor_id=creditor_id,
        status=MandateStatus(chosen) if chosen else None,
        after_id=after_id,
        limit=_in_range("limit", limit, 1, LIST_LIMIT_MAX),
    )
    return _page(rows, limit)


def _page(rows: list[Any], limit: int) -> Page[Any]:
    return Page(tuple(rows), rows[-1].id if len(rows) == limit else None)


# --- shared checks -------------------------------------------------------------------------
def _creditor(session: Session, code: object) -> Creditor:
    return _creditors(session, [code])[0]


def _creditors(session: Session, codes: Sequence[object]) -> list[Creditor]:
    """The creditor of each code, read in one statement; the first code that is not one
    raises."""
    names: list[str] = []
    for code in codes:
        if not isinstance(code, str):
            raise errors.InvalidFormat("creditor", f"<{type(code).__name__}>", "must be a string")
        names.append(code)
    found = repo.creditors_by_codes(session, set(names))
    for name in names:
        if name not in found:
            raise errors.NotFound("creditor", name, "is not a registered creditor")
    return [found[name] for name in names]


def _check_input(data: object, kind: type) -> None:
    # The inputs check their own field types; a dict or another input must not slip through.
    if not isinstance(data, kind):
        raise errors.InvalidFormat("data", f"<{type(data).__name__}>", f"must be a {kind.__name__}")


_LENGTHS: dict[int, int] = {}


def _length(column: Any) -> int:
    # Reading .type through SQLAlchemy's attribute proxies costs ~10 us; a batch of 100,000
    # requests asks twice per request, for a handful of columns.
    key = id(column)
    if key not in _LENGTHS:
        _LENGTHS[key] = column.type.length
    return _LENGTHS[key]


def _fit(field: str, value: str, column: Any, *, shown: str | None = None) -> str:
    """``value`` when it is not blank and fits ``column`` (a model attribute with a length)."""
    if not isinstance(value, str):
        raise errors.InvalidFormat(field, f"<{type(value).__name__}>", "must be a string")
    limit = _length(column)
    if not value.strip():
        raise errors.InvalidLength(field, value, "is empty", shown_value=shown)
    if len(value) > limit:
        raise errors.InvalidLength(field, value, f"is longer than {limit} characters", shown_value=shown)
    return value


def _member(field: str, value: str, enum: type[Any]) -> str:
    try:
        return str(enum(value).value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise errors.InvalidFormat(field, value, f"must be one of {allowed}") from None


def _in_range(field: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.InvalidFormat(field, f"<{type(value).__name__}>", "must be an integer")
    if not low <= value <= high:
        raise errors.InvalidFormat(field, value, f"must be between {low} and {high}")
    return value


def _cutoff(value: str) -> str:
    if _CUTOFF.fullmatch(value) is None:
        raise errors.InvalidFormat("cutoff", value, "must be a wall-clock time HH:MM (00:00 to 23:59)")
    return value


def _timezone(value: str) -> str:
    _fit("timezone", value, Creditor.timezone)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.InvalidFormat("timezone", value, "is not a known IANA time zone") from None
    return value


def _address_values(address: AddressInput | None, model: type, *, strict: bool) -> dict[str, str | None]:
    """The ``address_*`` columns; ``strict`` (creditors) also refuses an untransliterable town."""
    if address is None:
        return {f"address_{name}": None for name in _ADDRESS_FIELDS}
    if _COUNTRY.fullmatch(address.country) is None:
        # Not a business rule the run re-checks: a bad code would break the file's XSD.
        raise errors.InvalidFormat("address.country", address.country, "must be an ISO 3166 code of two capital letters")
    values: dict[str, str | None] = {"address_country": address.country}
    for name in _ADDRESS_FIELDS[1:]:
        value = getattr(address, name)
        values[f"address_{name}"] = (
            _fit(f"address.{name}", value, getattr(model, f"address_{name}")) if value is not None else None
        )
    if strict and not charset.to_sepa_text(address.town):
        raise errors.InvalidCharacters("address.town", address.town, "has no character of the SEPA set left after transliteration")
    return values
