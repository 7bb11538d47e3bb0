"""What the HTTP API needs beyond the existing services: reads scoped by creditor
(creditors, one debit request, batches), cancelling a pending request, and the return
exceptions a creditor may see and resolve.

The rules stay where they are: statuses move through ``domain.statuses``, exceptions are
resolved by ``return_exceptions.resolve_exception``. Services never commit.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.clock import Clock
from sepa_engine.db.models import Batch, Creditor
from sepa_engine.db.repositories import api as repo
from sepa_engine.db.repositories import registry as registry_repo
from sepa_engine.domain.masking import mask_iban, mask_name
from sepa_engine.domain.statuses import RequestStatus, request_transition
from sepa_engine.services import problems, registry, return_exceptions
from sepa_engine.services.views import batch_document, creditor_document, request_document

log = structlog.get_logger("sepa_engine.api")

CANCELLED_REASON = "cancelled by upstream"
_ID_MAX = 2**31 - 1  # ids are INTEGER columns


class RequestNotCancellable(errors.CollectionError):
    code = "request_not_cancellable"
    problem = "is no longer pending: it cannot be cancelled"


def creditors(session: Session, codes: frozenset[str]) -> list[dict[str, Any]]:
    return [creditor_document(row) for row in repo.creditors_by_codes(session, sorted(codes))]


def creditor(session: Session, code: str) -> dict[str, Any]:
    return creditor_document(registry._creditor(session, code))


def get_request(session: Session, creditor_code: str, request_id: int) -> dict[str, Any]:
    creditor = registry._creditor(session, creditor_code)
    found = repo.request_with_mandate(session, creditor.id, request_id)
    if found is None:
        raise errors.NotFound("request", request_id, f"is not a debit request of creditor {creditor.code}")
    row, reference = found
    listed: list[dict[str, object]] = []
    if RequestStatus(row.status) is RequestStatus.PENDING:
        mandate = registry_repo.mandate(session, row.mandate_id)
        listed = list(problems.as_dicts(problems.request_problems(row, mandate, mandate.debtor_account)))
    return request_document(row, creditor.code, reference, listed)


def cancel_request(
    session: Session, creditor_code: str, request_id: int, *, clock: Clock, reason: str = CANCELLED_REASON,
) -> dict[str, Any]:
    """Cancel a request still waiting for its run; cancelling a cancelled one changes nothing.
    ``reason`` is kept as the request's reason (the API's: "cancelled by upstream")."""
    creditor = registry._creditor(session, creditor_code)
    found = repo.request_with_mandate(session, creditor.id, request_id)
    if found is None:
        raise errors.NotFound("request", request_id, f"is not a debit request of creditor {creditor.code}")
    row, reference = found
    status = RequestStatus(row.status)
    if status is not RequestStatus.CANCELLED:
        if status is not RequestStatus.PENDING:
            raise RequestNotCancellable("request", request_id, f"is {status.value}: only a pending request can be cancelled")
        target = request_transition(RequestStatus.PENDING, RequestStatus.CANCELLED)
        if not repo.cancel_if_pending(session, row.id, status=target.value, reason=reason, at=clock.now()):
            raise RequestNotCancellable("request", request_id, "was taken by a collection run meanwhile")
        session.refresh(row)
        log.info("request.cancelled", creditor=creditor.code, request_id=row.id)
    return request_document(row, creditor.code, reference)


def list_batches(session: Session, creditor_code: str, *, after_id: int, limit: int, status: str | None) -> list[dict[str, Any]]:
    creditor = registry._creditor(session, creditor_code)
    return [batch_document(row, creditor.code) for row in repo.batches(session, creditor.id, after_id=after_id, limit=limit, status=status)]


def _batch(session: Session, creditor_code: str, batch_id: int) -> tuple[Creditor, Batch]:
    creditor = registry._creditor(session, creditor_code)
    row = repo.batch(session, creditor.id, batch_id)
    if row is None:
        raise errors.NotFound("batch", batch_id, f"is not a batch of creditor {creditor.code}")
    return creditor, row


def get_batch(session: Session, creditor_code: str, batch_id: int) -> dict[str, Any]:
    creditor, row = _batch(session, creditor_code, batch_id)
    return batch_document(row, creditor.code, repo.blocks(session, row.id))


def batch_file(session: Session, creditor_code: str, batch_id: int) -> tuple[str, str | None]:
    """(path, sha256) of a published file; NotFound before publication."""
    _creditor, row = _batch(session, creditor_code, batch_id)
    if row.published_at is None or row.path is None:
        raise errors.NotFound("file", batch_id, f"of batch {batch_id} is not published ({row.status})")
    return row.path, row.sha256


def list_exceptions(
    session: Session, creditor_code: str, *, status: str | None, after_id: int, limit: int
) -> list[dict[str, Any]]:
    creditor = registry._creditor(session, creditor_code)
    rows = repo.exceptions_of_creditor(session, creditor.id, status=status, after_id=after_id, limit=limit)
    return [_masked_exception(return_exceptions.view(row).to_dict()) for row in rows]


def _masked_exception(document: dict[str, Any]) -> dict[str, Any]:
    # The bank's record names an account and a debtor as the bank wrote them; over HTTP they
    # are masked as everywhere else (the operator's CLI, on the ledger's host, shows them).
    record = document.get("record")
    if isinstance(record, dict):
        if record.get("account_iban"):
            record["account_iban"] = mask_iban(str(record["account_iban"]))
        if record.get("debtor_name"):
            record["debtor_name"] = mask_name(str(record["debtor_name"]))
    return document


def resolve_exception(
    session: Session, creditor_code: str, exception_id: int, *, resolution: str, note: str | None, actor: str, clock: Clock
) -> dict[str, Any]:
    """Resolve an exception of the creditor, as ignored or matched to one of its requests."""
    creditor = registry._creditor(session, creditor_code)
    if repo.exception_of_creditor(session, creditor.id, exception_id) is None:
        raise errors.NotFound("exception", exception_id, f"is not a return exception of creditor {creditor.code}")
    if resolution != "ignored":
        if (
            not resolution.isdigit()
            or int(resolution) > _ID_MAX
            or repo.request_of_creditor(session, creditor.id, int(resolution)) is None
        ):
            raise errors.NotFound("resolution", resolution, f"is not a debit request of creditor {creditor.code}")
    return _masked_exception(return_exceptions.resolve_exception(
        session, exception_id, resolution=resolution, note=note, actor=actor, clock=clock
    ).to_dict())
