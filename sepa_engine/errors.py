"""One exception tree for the whole engine.

Every error prints as ``field value problem`` (moov-io/ach's shape), carries a stable
``code`` that the CLI maps to exit codes, and, where the scheme has one, the ISO/EPC
reason code a bank would answer with for the same defect. Values that identify a person's
account are masked in the message; the raw value stays on the exception for callers that
need it and never reaches a log line through ``str()``.
"""

from __future__ import annotations

from typing import ClassVar


class SepaEngineError(ValueError):
    code: ClassVar[str] = "invalid"
    problem: ClassVar[str] = "is invalid"

    def __init__(
        self,
        field: str | None = None,
        value: object = None,
        problem: str | None = None,
        *,
        reason_code: str | None = None,
        location: str | None = None,
        shown_value: str | None = None,
    ) -> None:
        self.field = field
        self.value = value
        self.reason_code = reason_code
        self.location = location
        self._problem = problem or type(self).problem
        # shown_value lets callers pass a masked rendering (IBANs) while keeping the raw value.
        self.shown_value = shown_value
        super().__init__(str(self))

    @property
    def rule(self) -> str:
        return self._problem

    def __str__(self) -> str:
        parts: list[str] = []
        if self.location:
            parts.append(f"{self.location}:")
        if self.field:
            parts.append(self.field)
        if self.shown_value is not None:
            parts.append(repr(self.shown_value))
        elif self.value is not None:
            parts.append(repr(self.value) if isinstance(self.value, str) else str(self.value))
        parts.append(self._problem)
        if self.reason_code:
            parts.append(f"[{self.reason_code}]")
        return " ".join(parts)

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "field": self.field,
            "value": self.shown_value if self.shown_value is not None else _plain(self.value),
            "rule": self._problem,
            "reason_code": self.reason_code,
            "location": self.location,
            "message": str(self),
        }


def _plain(value: object) -> object:
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


# --- formats -------------------------------------------------------------------------------
class InvalidFormat(SepaEngineError):
    code = "invalid_format"
    problem = "has an invalid format"


class InvalidLength(InvalidFormat):
    code = "invalid_length"
    problem = "has an invalid length"


class InvalidChecksum(InvalidFormat):
    code = "invalid_checksum"
    problem = "fails its checksum"


class InvalidCharacters(InvalidFormat):
    code = "invalid_characters"
    problem = "contains characters outside the SEPA character set"


class InvalidAmount(InvalidFormat):
    code = "invalid_amount"
    problem = "is not a valid amount"


class InvalidDate(InvalidFormat):
    code = "invalid_date"
    problem = "is not a valid date"


class UnsupportedCountry(InvalidFormat):
    code = "unsupported_country"
    problem = "is not in a SEPA scheme country"


# --- mandates ------------------------------------------------------------------------------
class MandateError(SepaEngineError):
    code = "mandate_error"
    problem = "cannot be used for this collection"


class MandateNotActive(MandateError):
    code = "mandate_not_active"
    problem = "is not active"


class MandateLapsed(MandateError):
    code = "mandate_lapsed"
    problem = "has lapsed: no collection for 36 months"


class MandateNotYetSigned(MandateError):
    code = "mandate_not_yet_signed"
    problem = "is signed after the collection date"


class MandateAlreadyUsed(MandateError):
    code = "mandate_already_used"
    problem = "is a one-off mandate that was already collected"


# --- collections and files -----------------------------------------------------------------
class CollectionError(SepaEngineError):
    code = "collection_error"
    problem = "cannot be collected"


class ControlSumMismatch(CollectionError):
    code = "control_sum_mismatch"
    problem = "does not match the sum of its transactions"


class DuplicateIdentifier(CollectionError):
    code = "duplicate_identifier"
    problem = "is used more than once"


class SchemaViolation(CollectionError):
    code = "schema_violation"
    problem = "breaks the XSD"


class CalendarError(CollectionError):
    code = "calendar_error"
    problem = "is not a possible collection date"


# --- messages we read ----------------------------------------------------------------------
class MessageError(SepaEngineError):
    code = "message_error"
    problem = "cannot be read"


class UnknownMessage(MessageError):
    code = "unknown_message"
    problem = "is not a supported ISO 20022 message"


class UnreadableFile(MessageError):
    code = "unreadable_file"
    problem = "is not well-formed or safe XML"


class ReturnFileError(MessageError):
    code = "return_file_error"
    problem = "cannot be reconciled"


# --- configuration and lookups ------------------------------------------------------------
class ConfigurationError(SepaEngineError):
    code = "configuration_error"
    problem = "is not a valid setting"


class DatabaseUnavailable(SepaEngineError):
    """The ledger's database did not answer (down, unreachable, refused the login)."""

    code = "database_unavailable"
    problem = "did not answer"


class LedgerBusy(SepaEngineError):
    """Another transaction (a collection's hand-over, a schedule, a reconciliation) held what a
    write needs for longer than its caller may wait (``[api] lock_wait_seconds``), or the
    database undid the write's transaction to break a deadlock with another: nothing of it was
    applied, and the same write sent again later may get through."""

    code = "ledger_busy"
    problem = "is held by another transaction"


class NotFound(SepaEngineError):
    code = "not_found"
    problem = "does not exist"


class IdempotencyConflict(SepaEngineError):
    code = "idempotency_conflict"
    problem = "was already used with different content"


# --- customer accounts (on-demand and automatic collection, disputes) ----------------------
class AccountError(SepaEngineError):
    code = "account_error"
    problem = "cannot be done on this account"


class NothingDue(AccountError):
    code = "nothing_due"
    problem = "has nothing that can be collected"


class AmountExceedsBalance(AccountError):
    code = "amount_exceeds_balance"
    problem = "exceeds the collectable balance"


class WrongCollectionMode(AccountError):
    code = "wrong_collection_mode"
    problem = "is not allowed in this collection mode"


class InvoiceNotPayable(AccountError):
    code = "invoice_not_payable"
    problem = "cannot be paid now"


class DisputeError(AccountError):
    code = "dispute_error"
    problem = "is not a possible dispute change"


class NoUsableMandate(MandateError):
    code = "no_usable_mandate"
    problem = "has no mandate that can be collected"


def _all_classes(cls: type[SepaEngineError]) -> list[type[SepaEngineError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_classes(sub))
    return found


def from_dict(data: dict[str, object]) -> SepaEngineError:
    """Rebuild an error sent across a process boundary by ``to_dict``."""
    by_code = {cls.code: cls for cls in _all_classes(SepaEngineError)}
    cls = by_code.get(str(data.get("code")), SepaEngineError)
    return cls(
        data.get("field"),  # type: ignore[arg-type]
        None,
        data.get("rule"),  # type: ignore[arg-type]
        reason_code=data.get("reason_code"),  # type: ignore[arg-type]
        location=data.get("location"),  # type: ignore[arg-type]
        shown_value=None if data.get("value") is None else str(data.get("value")),
    )
