"""The documents the API answers with and the CLI prints with ``--json``: one function
per view, so that both show a record under the same field names.

The API's published JSON Schemas (``schemas/responses/``) describe these documents; the
CLI adds only what an operator on the ledger's host may see besides (a file's ``path``,
a failure's text) under names of its own. Pure functions of the rows: no queries here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sepa_engine.db.models import Batch, Creditor, DebitRequest, PaymentBlock
from sepa_engine.db.repositories.registry import MandateRow, RequestRow
from sepa_engine.domain.masking import mask_iban
from sepa_engine.domain.money import format_cents


def creditor_document(row: Creditor) -> dict[str, Any]:
    return {
        "code": row.code,
        "name": row.name,
        "creditor_identifier": row.creditor_identifier,
        "iban": mask_iban(row.iban),
        "bic": row.bic,
        "local_instrument": row.local_instrument,
        "pain008_version": row.pain008_version,
        "lead_days": row.lead_days,
        "cutoff": row.cutoff,
        "timezone": row.timezone,
        "prenotification_days": row.prenotification_days,
        "group_code": row.group_code,
        "bank_profile": row.bank_profile,
        "ultimate_creditor_name": row.ultimate_creditor_name,
        "ultimate_creditor_id": row.ultimate_creditor_id,
    }


def request_document(row: DebitRequest, creditor_code: str, mandate_reference: str, found: list[dict[str, object]] | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "creditor": creditor_code,
        "end_to_end_id": row.end_to_end_id,
        "mandate": mandate_reference,
        "amount": format_cents(row.amount_cents),
        "remittance": row.remittance,
        "requested_date": row.requested_date.isoformat(),
        "final": row.final,
        "status": row.status,
        "status_changed_at": row.status_changed_at.isoformat(),
        "reason_code": row.reason_code,
        "reason": row.reason,
        "batch_id": row.batch_id,
        "collection_date": row.collection_date.isoformat() if row.collection_date else None,
        "sequence_type": row.sequence_type,
        "attempt": row.attempt,
        "problems": found or [],
    }


def request_summary(row: RequestRow) -> dict[str, Any]:
    """A debit request as a line of a list (``GET /debit-requests``, ``requests list --json``)."""
    return {
        "id": row.id,
        "end_to_end_id": row.end_to_end_id,
        "mandate": row.mandate_reference,
        "amount": format_cents(row.amount_cents),
        "requested_date": row.requested_date.isoformat(),
        "status": row.status,
        "reason_code": row.reason_code,
        "reason": row.reason,
        "batch_id": row.batch_id,
    }


def mandate_summary(row: MandateRow) -> dict[str, Any]:
    """A mandate as a line of a list (``GET /mandates``, ``mandates list --json``), its IBAN masked."""
    return {
        "id": row.id,
        "reference": row.reference,
        "debtor_account": row.debtor_account_reference,
        "kind": row.kind,
        "status": row.status,
        "signed_on": row.signed_on.isoformat(),
        "iban": mask_iban(row.iban),
        "bic": row.bic,
        "first_collected_on": row.first_collected_on.isoformat() if row.first_collected_on else None,
        "last_collected_on": row.last_collected_on.isoformat() if row.last_collected_on else None,
        "amendment_pending": row.amendment_pending,
        "supersedes_id": row.supersedes_id,
    }


def batch_document(row: Batch, creditor_code: str, blocks: Iterable[PaymentBlock] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": row.id,
        "creditor": creditor_code,
        "message_id": row.message_id,
        "status": row.status,
        "version": row.version,
        "file_name": row.file_name,
        "transactions": row.count,
        "control_sum": format_cents(row.sum_cents),
        "sha256": row.sha256,
        "size": row.size,
        "created_at": row.created_at.isoformat(),
        "written_at": row.written_at.isoformat() if row.written_at else None,
        "published_at": row.published_at.isoformat() if row.published_at else None,
        "approved_by": row.approved_by,
        "approved_at": row.approved_at.isoformat() if row.approved_at else None,
        # A held file stopped at review instead (``batch withdraw``); why is in the review.
        "withdrawn_by": row.withdrawn_by,
        "withdrawn_at": row.withdrawn_at.isoformat() if row.withdrawn_at else None,
    }
    if blocks is not None:
        document["blocks"] = [block_document(b) for b in blocks]
    return document


def block_document(row: PaymentBlock) -> dict[str, Any]:
    return {
        "payment_info_id": row.payment_info_id,
        "collection_date": row.collection_date.isoformat(),
        "sequence_type": row.sequence_type,
        "local_instrument": row.local_instrument,
        "transactions": row.count,
        "control_sum": format_cents(row.sum_cents),
    }
