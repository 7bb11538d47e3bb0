"""Request bodies of the HTTP API: the input models of the services, checked before any
service sees a body, with every bad field reported at once.

One source of truth: a body's JSON Schema (the OpenAPI document's ``components/schemas``)
is generated from the same model that checks it (``services/input_schemas.body``), the model
that also checks the files of ``sepa-engine load`` and ``enqueue``. Over HTTP the
idempotency key is the ``Idempotency-Key`` header and the creditor is in the path, so a body
is the input model itself, not its file record (``DebitRequestInput``, not
``DebitRequestRecord``). Nested models are inlined, so each body schema stands alone.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from sepa_engine import errors, json_input
from sepa_engine.services import account_inputs as accounts
from sepa_engine.services import input_errors, input_schemas, inputs

# body name (components/schemas) -> its input model
_MODELS: dict[str, type[BaseModel]] = {
    "DebitRequest": inputs.DebitRequestInput,
    "Mandate": inputs.MandateInput,
    "DebtorAccount": inputs.DebtorAccountInput,
    "MandateRevocation": inputs.MandateRevocationInput,
    "ExceptionResolution": inputs.ExceptionResolutionInput,
    "LedgerEntry": accounts.LedgerEntryInput,
    "PayNow": accounts.PayNowInput,
    "GroupPayment": accounts.GroupPaymentInput,
    "Dispute": accounts.DisputeInput,
    "DisputeTransition": accounts.DisputeTransitionInput,
    "ESignedMandate": accounts.ESignedMandateInput,
    "ModeChange": accounts.ModeChangeInput,
    "AccountDetails": accounts.AccountDetailsInput,
    "CreditorSettings": accounts.CreditorSettingsInput,
}


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    rule: str
    code: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "code": self.code}


class InvalidBody(errors.InvalidFormat):
    """A body its model refuses; ``field_errors`` lists every bad field."""

    code = "invalid_body"
    problem = "is not a valid body"
    field_errors: tuple[FieldError, ...] = ()


@functools.cache
def _schema(name: str) -> dict[str, Any]:
    return input_schemas.body(_MODELS[name])


def schema(name: str) -> dict[str, Any]:
    """The standalone JSON Schema of body ``name`` (a copy: callers may edit it)."""
    return copy.deepcopy(_schema(name))


def names() -> list[str]:
    return sorted(_MODELS)


def parse(raw: bytes, name: str) -> dict[str, Any]:
    """The JSON object in ``raw`` when its model accepts it; else ``InvalidBody`` listing
    every problem, by JSON path. The reader is ``json_input``: bounded depth, no duplicate
    keys, no NaN."""
    try:
        document = json_input.loads(raw, "body")
    except errors.InvalidFormat as exc:
        failure = InvalidBody("body", None, exc.rule)
        failure.field_errors = (FieldError("body", exc.rule, "invalid_json"),)
        raise failure from None
    return check(document, name)


def check(document: object, name: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        failure = InvalidBody("body", None, "must be a JSON object")
        failure.field_errors = (FieldError("body", "must be a JSON object", "dict_type"),)
        raise failure
    try:
        _MODELS[name].model_validate(document)
    except ValidationError as exc:
        found = input_errors.problems(exc)
        field_errors = tuple(
            FieldError("body" if p.field == "document" else p.field, p.sentence(), p.code) for p in found
        )
        first = field_errors[0]
        failure = InvalidBody(
            first.field, None, f"{first.rule} ({len(field_errors)} problem(s) in the body)",
            reason_code=found[0].reason_code,
        )
        failure.field_errors = field_errors
        raise failure from None
    return document
