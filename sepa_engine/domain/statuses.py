"""Lifecycles of debit requests and batches; every transition is checked here and only here."""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

from sepa_engine import errors


class RequestStatus(StrEnum):
    PENDING = "pending"          # enqueued, waiting for its collection run
    ASSIGNED = "assigned"        # validated and given to a planned file (not yet at the bank)
    SUBMITTED = "submitted"      # its file is published in the outbox
    REFUSED = "refused"          # failed validation; never entered a file
    CANCELLED = "cancelled"      # withdrawn upstream or by a mandate revocation
    SETTLED = "settled"          # the bank confirmed the money (reconciliation)
    REJECTED = "rejected"        # refused by a bank before settlement (pain.002)
    RETURNED = "returned"        # sent back after settlement (camt)
    REFUNDED = "refunded"
    REVERSED = "reversed"

    def is_final(self) -> bool:
        return not _REQUEST_TRANSITIONS[self]

    def is_collectable(self) -> bool:
        return self is RequestStatus.PENDING


_R = RequestStatus
_REQUEST_TRANSITIONS = MappingProxyType(
    {
        _R.PENDING: frozenset({_R.ASSIGNED, _R.REFUSED, _R.CANCELLED}),
        # A planned file that can never be written (it failed its XSD) gives its requests back.
        _R.ASSIGNED: frozenset({_R.SUBMITTED, _R.PENDING, _R.REFUSED}),
        _R.SUBMITTED: frozenset({_R.SETTLED, _R.REJECTED, _R.RETURNED, _R.REFUNDED, _R.REVERSED}),
        _R.SETTLED: frozenset({_R.RETURNED, _R.REFUNDED, _R.REVERSED}),
        _R.REFUSED: frozenset(),
        _R.CANCELLED: frozenset(),
        _R.REJECTED: frozenset(),
        _R.RETURNED: frozenset(),
        _R.REFUNDED: frozenset(),
        _R.REVERSED: frozenset(),
    }
)


def request_can_become(current: RequestStatus | str, new: RequestStatus | str) -> bool:
    return RequestStatus(new) in _REQUEST_TRANSITIONS[RequestStatus(current)]


def request_transition(current: RequestStatus | str, new: RequestStatus | str) -> RequestStatus:
    cur, nxt = RequestStatus(current), RequestStatus(new)
    if nxt not in _REQUEST_TRANSITIONS[cur]:
        raise errors.CollectionError("request.status", cur.value, f"cannot become {nxt.value}")
    return nxt


class BatchStatus(StrEnum):
    PLANNED = "planned"      # requests assigned, blocks and totals recorded; no file yet
    WRITTEN = "written"      # validated file staged under its temporary name, sha256 recorded
    # Published under outbox/pending/<creditor>/ for a creditor that requires approval: the
    # file is complete and valid, its requests stay ASSIGNED, the bank does not see it yet.
    AWAITING_APPROVAL = "awaiting_approval"
    PUBLISHED = "published"  # final name in the outbox: handed over
    FAILED = "failed"        # could not be written (e.g. XSD); its requests were released
    # The bank's answers (reconciliation). A pain.002 with no rejection acknowledges the
    # file; one with some rejections leaves it partly rejected; a group-level reject (AM10)
    # or a reject of every transaction rejects it whole.
    ACKNOWLEDGED = "acknowledged"
    PARTLY_REJECTED = "partly_rejected"
    REJECTED = "rejected"
    # The camt credit for the file equals its control sum less what was rejected: SETTLED
    # when nothing was, SETTLED_WITH_REJECTS when some debits were (they stay rejected).
    SETTLED = "settled"
    SETTLED_WITH_REJECTS = "settled_with_rejects"
    # A held file whose collection date could no longer be met when it was approved: its
    # requests went back to the queue for a new file with a new MsgId; kept for audit under
    # outbox/pending/<creditor>/superseded/, never released.
    SUPERSEDED = "superseded"
    # A held file a person stopped at review (``batch withdraw``): never released, kept for
    # audit under outbox/pending/<creditor>/withdrawn/; its requests went back to the queue.
    WITHDRAWN = "withdrawn"

    def is_settled(self) -> bool:
        return self in (BatchStatus.SETTLED, BatchStatus.SETTLED_WITH_REJECTS)

    def is_final(self) -> bool:
        return not _BATCH_TRANSITIONS[self]


_B = BatchStatus
_BATCH_TRANSITIONS = MappingProxyType(
    {
        _B.PLANNED: frozenset({_B.WRITTEN, _B.FAILED}),
        _B.WRITTEN: frozenset({_B.PUBLISHED, _B.AWAITING_APPROVAL, _B.PLANNED}),
        # ``batch approve`` releases it (or finds its date can no longer be met and re-dates
        # its debits); ``batch withdraw`` stops it at review, its debits back in the queue.
        _B.AWAITING_APPROVAL: frozenset({_B.PUBLISHED, _B.SUPERSEDED, _B.WITHDRAWN}),
        # Banks may skip the pain.002 when all is well: a camt settlement can come first.
        _B.PUBLISHED: frozenset({_B.ACKNOWLEDGED, _B.PARTLY_REJECTED, _B.REJECTED, _B.SETTLED, _B.SETTLED_WITH_REJECTS}),
        # A later pain.002 (or a camt return of a reject) can still reject part of the file.
        _B.ACKNOWLEDGED: frozenset({_B.PARTLY_REJECTED, _B.REJECTED, _B.SETTLED, _B.SETTLED_WITH_REJECTS}),
        _B.PARTLY_REJECTED: frozenset({_B.REJECTED, _B.SETTLED_WITH_REJECTS}),
        _B.REJECTED: frozenset(),
        _B.SETTLED: frozenset(),
        _B.SETTLED_WITH_REJECTS: frozenset(),
        _B.SUPERSEDED: frozenset(),
        _B.WITHDRAWN: frozenset(),
        _B.FAILED: frozenset(),
    }
)


def batch_transition(current: BatchStatus | str, new: BatchStatus | str) -> BatchStatus:
    cur, nxt = BatchStatus(current), BatchStatus(new)
    if nxt not in _BATCH_TRANSITIONS[cur]:
        raise errors.CollectionError("batch.status", cur.value, f"cannot become {nxt.value}")
    return nxt
