"""What a check of a pain.008 file reports: a ``Finding`` with a severity and a stable code.

Shared by the XSD plumbing (pain008_xsd), the scheme rules (pain008_rules) and the
report that puts them together (pain008_verify).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sepa_engine import errors


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Code(StrEnum):
    """Codes of the findings this module makes itself; identifier checks bring their own
    (``invalid_checksum``, ``invalid_format``, ``invalid_length``, ``unsupported_country``,
    ``invalid_characters``)."""

    SCHEMA_VIOLATION = "schema_violation"
    SCHEMA_NOT_CHECKED = "schema_not_checked"
    MISSING_GROUP_HEADER = "missing_group_header"
    MISSING_FIELD = "missing_field"
    NO_TRANSACTIONS = "no_transactions"
    TRANSACTION_COUNT_MISMATCH = "transaction_count_mismatch"
    CONTROL_SUM_MISMATCH = "control_sum_mismatch"
    CONTROL_SUM_MISSING = "control_sum_missing"
    INVALID_NUMBER = "invalid_number"
    INVALID_AMOUNT = "invalid_amount"
    CURRENCY_NOT_EUR = "currency_not_eur"
    DUPLICATE_PAYMENT_INFO_ID = "duplicate_payment_info_id"
    DUPLICATE_END_TO_END_ID = "duplicate_end_to_end_id"
    INVALID_CHARACTERS = "invalid_characters"
    INVALID_LENGTH = "invalid_length"
    MULTIPLE_REMITTANCE = "multiple_remittance"
    INVALID_DATE = "invalid_date"
    NOT_TARGET_DAY = "not_target_day"
    OUTSIDE_CALENDAR = "outside_calendar"
    COLLECTION_BEFORE_CREATION = "collection_date_before_creation"
    SIGNED_AFTER_COLLECTION = "mandate_signed_after_collection"
    INVALID_SEQUENCE_TYPE = "invalid_sequence_type"
    NOT_SEPA_SERVICE_LEVEL = "not_sepa_service_level"
    UNSUPPORTED_LOCAL_INSTRUMENT = "unsupported_local_instrument"
    MISSING_CREDITOR_ID = "missing_creditor_id"
    AMENDMENT_DETAILS_MISSING = "amendment_details_missing"
    AMENDMENT_WITHOUT_INDICATOR = "amendment_without_indicator"
    UNSTRUCTURED_ADDRESS = "unstructured_address"
    TOO_MANY_ADDRESS_LINES = "too_many_address_lines"


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    code: str
    location: str
    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {
            "severity": str(self.severity),
            "code": str(self.code),
            "location": self.location,
            "field": self.field,
            "message": self.message,
        }




def message(field_name: str, value: object, problem: str) -> str:
    return str(errors.SepaEngineError(field_name, value, problem))

