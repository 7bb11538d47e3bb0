"""The public Python API: what upstream Python code calls, in one small typed module.

``Engine`` opens a transaction per call (committed when the call returns, rolled back
when it raises) and calls the services; it holds no rules of its own. Inputs are the
services' input types, re-exported here; every refusal is a ``SepaEngineError`` with a
stable ``code``. Writes take an idempotency key: calling again with the same key and the
same content returns what the first call stored (``created`` false) and changes nothing.

    from sepa_engine.engine import Engine, DebitRequestInput

    with Engine.open("sepa-engine.toml") as engine:
        engine.enqueue("gim", DebitRequestInput(mandate="RUM-1", amount="12.34"), idempotency_key="inv-1")
        report = engine.collect()
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from sepa_engine import errors, private_files, review
from sepa_engine.clock import Clock, SystemClock
from sepa_engine.config import Settings, load_settings
from sepa_engine.db import locks, migrate
from sepa_engine.db.repositories.registry import MandateRow, RequestRow
from sepa_engine.db.session import Database
from sepa_engine.domain.reason_codes import ReasonCode
from sepa_engine.domain.statuses import BatchStatus
from sepa_engine.errors import SepaEngineError
from sepa_engine.ids import IdSource, TimestampIds
from sepa_engine.progress import SILENT, Progress, Rerunnable
from sepa_engine.services import (
    account_changes,
    accounts,
    api_tokens,
    api_views,
    approval,
    batch_enqueue,
    batches,
    disputes,
    file_enqueue,
    loading,
    on_demand,
    policies,
    reconciliation,
    registry,
    return_exceptions,
    schedule,
    statements,
    status,
)
from sepa_engine.services.account_changes import ChangeResult, HistoryLine
from sepa_engine.services.account_inputs import (
    CreditorSettingsInput,
    DetailsInput,
    DisputedInvoice,
    DisputeInput,
    DisputeTransitionInput,
    ESignedMandateInput,
    GroupPaymentInput,
    GroupSelection,
    LedgerEntryInput,
    ModeChangeInput,
    PayNowInput,
)
from sepa_engine.services.accounts import AccountView, BookingReport, EntryResult
from sepa_engine.services.api_tokens import CreatedToken, TokenView
from sepa_engine.services.approval import Approval, Withdrawal
from sepa_engine.services.batch_enqueue import BatchResult, EnqueueItem
from sepa_engine.services.batches import BatchDetail, BatchLine, RequestLine
from sepa_engine.services.collection import CollectionReport, run_collection
from sepa_engine.services.disputes import DisputeView
from sepa_engine.services.file_enqueue import FileRejected, FileReport
from sepa_engine.services.inputs import AddressInput, CreditorInput, DebitRequestInput, DebtorAccountInput, MandateInput
from sepa_engine.services.loading import LoadFailed, LoadReport
from sepa_engine.services.on_demand import GroupPaymentResult, PaymentResult
from sepa_engine.services.reconciliation import ExceptionStatus, ReconcileReport
from sepa_engine.services.registry import CreditorResult, DebtorAccountResult, MandateResult, Page, RequestResult
from sepa_engine.services.return_exceptions import ExceptionView
from sepa_engine.services.schedule import ScheduleReport
from sepa_engine.services.statements import Statement

__all__ = [
    "AccountView",
    "AddressInput",
    "Approval",
    "BatchDetail",
    "BatchLine",
    "BatchResult",
    "BatchStatus",
    "BookingReport",
    "ChangeResult",
    "CollectionReport",
    "CreatedToken",
    "CreditorInput",
    "CreditorResult",
    "CreditorSettingsInput",
    "DebitRequestInput",
    "DebtorAccountInput",
    "DebtorAccountResult",
    "DetailsInput",
    "DisputeInput",
    "DisputeTransitionInput",
    "DisputeView",
    "DisputedInvoice",
    "ESignedMandateInput",
    "Engine",
    "EnqueueItem",
    "EntryResult",
    "ExceptionView",
    "FileRejected",
    "FileReport",
    "GroupPaymentInput",
    "GroupPaymentResult",
    "GroupSelection",
    "HistoryLine",
    "LedgerEntryInput",
    "LoadFailed",
    "LoadReport",
    "MandateInput",
    "MandateResult",
    "MandateRow",
    "ModeChangeInput",
    "Page",
    "PayNowInput",
    "PaymentResult",
    "ReasonCode",
    "ReconcileReport",
    "RequestLine",
    "RequestResult",
    "RequestRow",
    "ScheduleReport",
    "SepaEngineError",
    "Statement",
    "TokenView",
    "Withdrawal",
]

_T = TypeVar("_T")


class Engine:
    """One ledger (its settings, database, clock and message ids) and the operations on it."""

    def __init__(
        self,
        settings: Settings,
        *,
        database: Database | None = None,
        clock: Clock | None = None,
        ids: IdSource | None = None,
    ) -> None:
        """``database`` defaults to one opened on ``settings.database_url`` (closed by
        ``close``); ``clock`` to the system clock; ``ids`` to timestamped message ids."""
        self.settings = settings
        self._owns_database = database is None
        self.database = database if database is not None else Database(settings.database_url)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.ids: IdSource = ids if ids is not None else TimestampIds(self.clock)

    @classmethod
    def open(cls, config: str | os.PathLike[str] | None = None, *, clock: Clock | None = None) -> Engine:
        """An engine on the configuration file ``config`` (else ``SEPA_ENGINE_CONFIG``, else
        the defaults), with its database brought to the latest schema."""
        engine = cls(load_settings(config), clock=clock)
        engine.migrate()
        return engine

    def migrate(self) -> None:
        """Bring the database to the latest schema (what ``sepa-engine db upgrade`` does)."""
        if self.settings.database_url.startswith("sqlite:///") and ":memory:" not in self.settings.database_url:
            private_files.ensure_dir(self.settings.var_dir)
        migrate.upgrade(self.database)

    def close(self) -> None:
        if self._owns_database:
            self.database.dispose()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- registering -----------------------------------------------------------------------
    def register_creditor(self, data: CreditorInput, *, idempotency_key: str) -> CreditorResult:
        return self._write(lambda s: registry.register_creditor(s, data, idempotency_key=idempotency_key, clock=self.clock))

    def register_debtor_account(self, creditor: str, data: DebtorAccountInput, *, idempotency_key: str) -> DebtorAccountResult:
        return self._write(
            lambda s: registry.register_debtor_account(s, creditor, data, idempotency_key=idempotency_key, clock=self.clock)
        )

    def register_mandate(self, creditor: str, data: MandateInput, *, idempotency_key: str) -> MandateResult:
        """Store a mandate; it replaces ``data.supersedes``, or the account's active mandate."""
        return self._write(
            lambda s: registry.register_mandate(s, creditor, data, idempotency_key=idempotency_key, clock=self.clock)
        )

    def revoke_mandate(self, creditor: str, reference: str, *, reason: str) -> int:
        """Revoke a mandate; returns how many of its pending requests were cancelled."""
        return self._write(lambda s: registry.revoke_mandate(s, creditor, reference, reason=reason, clock=self.clock))

    def release_mandate(self, creditor: str, reference: str, *, note: str = "") -> bool:
        """Release a mandate held after a refund (MD06): its pending requests are collected
        again. False when it was active already; another status raises ``MandateNotActive``."""
        return self._write(lambda s: registry.release_mandate(s, creditor, reference, note=note, clock=self.clock))

    def load(self, directory: str | os.PathLike[str], *, progress: Progress = SILENT) -> LoadReport:
        """Load an upstream directory (creditors.json, debtor-accounts.json, mandates.json,
        requests.json) in one transaction: everything, or nothing and ``LoadFailed`` listing
        every bad record."""
        heard = Rerunnable(progress)
        return self._write(lambda s: loading.load_directory(s, Path(directory), clock=self.clock, progress=heard.run()))

    # -- debiting --------------------------------------------------------------------------
    def enqueue(self, creditor: str, data: DebitRequestInput, *, idempotency_key: str) -> RequestResult:
        """Ask for one debit on a mandate, collected by the next run on or after its date."""
        return self._write(
            lambda s: registry.enqueue_request(s, creditor, data, idempotency_key=idempotency_key, clock=self.clock)
        )

    def enqueue_many(self, creditor: str, items: Iterable[EnqueueItem]) -> BatchResult:
        """Many debits in one transaction, all or none (a monthly rent run): the same contract
        as ``enqueue``, with a few round trips per thousand requests instead of several each."""
        # A one-shot iterator (a generator) is spent by the first run: an undone run cannot be
        # run again on it, and keeping what it gave would cost the memory streaming saves.
        return self._write(
            lambda s: batch_enqueue.enqueue_requests(s, creditor, items, clock=self.clock), again=iter(items) is not items
        )

    def enqueue_file(
        self, path: str | os.PathLike[str], *, fmt: str | None = None, creditor: str | None = None, skip_bad: bool = False
    ) -> FileReport:
        """The debit requests of a JSON Lines or CSV file, in one transaction: all of them, or
        none and ``FileRejected`` (its report lists the bad lines); with ``skip_bad`` the good
        lines are applied and the report carries the bad ones."""
        return self._write(
            lambda s: file_enqueue.enqueue_file(s, Path(path), fmt=fmt, creditor=creditor, skip_bad=skip_bad, clock=self.clock)
        )

    def pay_now(self, creditor: str, account: str, data: PayNowInput, *, idempotency_key: str) -> PaymentResult:
        """Debit part or all of an account's collectable balance, or chosen invoices, on demand."""
        return self._write(
            lambda s: on_demand.pay_now(s, creditor, account, data, idempotency_key=idempotency_key, clock=self.clock)
        )

    def cancel_request(self, creditor: str, request_id: int, *, actor: str, reason: str | None = None) -> dict[str, Any]:
        """Cancel a request still pending (never collected), as the API's DELETE does, with
        who and why as its reason; its document as the API gives it. One a run took raises
        ``RequestNotCancellable``; one already cancelled is left as it is."""
        who = " ".join(str(actor or "").split())
        if not who:
            raise errors.InvalidFormat("actor", actor, "must name who cancels (--by NAME)")
        why = " ".join(str(reason or "").split())
        text = f"cancelled by {who}: {why}" if why else f"cancelled by {who}"
        return self._write(lambda s: api_views.cancel_request(s, creditor, request_id, clock=self.clock, reason=text))

    def collect(
        self,
        *,
        creditor: str | None = None,
        business_date: dt.date | None = None,
        dry_run: bool = False,
        progress: Progress = SILENT,
        should_stop: Callable[[], bool] | None = None,
    ) -> CollectionReport:
        """One collection run: the due requests into pain.008 files in the outbox.

        Runs its own transactions (one per file); ``dry_run`` changes nothing and reports
        the plan; ``should_stop`` is asked between files."""
        return run_collection(
            self.database, self.settings, self.clock, self.ids, creditor_code=creditor, business_date=business_date,
            dry_run=dry_run, progress=progress, should_stop=should_stop,
        )  # fmt: skip

    def reconcile(
        self, path: str | os.PathLike[str], *, strict: bool = False, progress: Progress = SILENT
    ) -> ReconcileReport:
        """Apply one bank file (pain.002, camt.052/053/054) to the ledger, whole or not at all;
        a file already applied changes nothing (``report.duplicate``). A file that cannot be
        read raises ``MessageError`` or ``SchemaViolation`` after its refusal is recorded."""
        sha256: str | None = None
        # One reconciliation at a time per ledger: this waits for an inbox pass in progress.
        with locks.run_lock(self.database, locks.RECONCILIATION_LOCK, wait_seconds=-1):
            try:
                sha256 = reconciliation.file_sha256(path)
                heard = Rerunnable(progress)
                report = self._write(
                    lambda s: reconciliation.reconcile_file(s, path, clock=self.clock, strict=strict, progress=heard.run()),
                    what=f"reconcile {Path(path).name}",
                )
            except (errors.MessageError, errors.SchemaViolation) as exc:
                # Refused whole: the refusal is kept in the ledger (its own transaction), then raised.
                problem = exc.rule if exc.field == "file" else str(exc)
                self._write(lambda s: reconciliation.record_refusal(s, path, sha256, problem, clock=self.clock))
                raise
        # Committed: the bank's answers join the timeline of the review pages of the files
        # they touched (derived from the ledger, so a failure here loses nothing).
        review.refresh(self.database, report.batches)
        return report

    def approve_batch(self, batch_id: int, *, actor: str) -> Approval:
        """Release a file held for approval to the bank's folder, recording who and when; a
        collection date the bank can no longer meet re-dates its debits into a new held file
        and raises. Runs its own transactions around the move."""
        return approval.approve_batch(self.database, self.settings, self.clock, batch_id, actor=actor, ids=self.ids)

    def withdraw_batch(self, batch_id: int, *, actor: str, reason: str) -> Withdrawal:
        """Stop a file held for approval at review: never released, kept for audit under
        outbox/pending/<creditor>/withdrawn/, its debits back in the queue for the next run.
        Runs its own transaction around the move."""
        return approval.withdraw_batch(self.database, self.settings, self.clock, batch_id, actor=actor, reason=reason)

    # -- the bank's answers ----------------------------------------------------------------
    def return_exceptions(self, *, include_resolved: bool = False) -> list[ExceptionView]:
        """The bank records reconciliation could not apply, open ones unless ``include_resolved``."""
        status = None if include_resolved else ExceptionStatus.OPEN
        return self._read(lambda s: return_exceptions.list_exceptions(s, status=status))

    def resolve_exception(self, exception_id: int, *, resolution: str, note: str | None = None) -> ExceptionView:
        """Close an exception: ``"ignored"``, or the id of the debit request its record applies to."""
        return self._write(
            lambda s: return_exceptions.resolve_exception(s, exception_id, resolution=resolution, note=note, clock=self.clock)
        )

    def reason_policies(self, creditor: str) -> list[tuple[ReasonCode, bool]]:
        """What each reason code does for ``creditor``, and whether the creditor overrode it."""
        return self._read(lambda s: policies.effective_policies(s, creditor))

    def set_reason_policy(
        self, creditor: str, code: str, *, mandate_effect: str | None = None, max_retries: int | None = None,
        opens_dispute: bool | None = None,
    ) -> ReasonCode:
        """Override one reason code for one creditor; unset fields keep the default."""
        return self._write(
            lambda s: policies.set_policy(
                s, creditor, code, mandate_effect=mandate_effect, max_retries=max_retries, opens_dispute=opens_dispute,
                clock=self.clock,
            )
        )  # fmt: skip

    # -- API tokens ------------------------------------------------------------------------
    def create_token(self, *, name: str, creditors: list[str], access: str) -> CreatedToken:
        """A bearer token of the HTTP API; ``.token`` is the only time it is seen (its hash is kept)."""
        return self._write(
            lambda s: api_tokens.create_token(s, name=name, creditors=creditors, access=access, clock=self.clock)
        )

    def tokens(self) -> list[TokenView]:
        """Every token, never its secret."""
        return self._read(api_tokens.list_tokens)

    def revoke_token(self, token_id: int) -> TokenView:
        """Refuse a token from its next request on; revoking it again changes nothing."""
        return self._write(lambda s: api_tokens.revoke_token(s, token_id, clock=self.clock))

    # -- reading ---------------------------------------------------------------------------
    def requests(
        self, *, creditor: str | None = None, status: str | None = None, after_id: int | None = None, limit: int = 50
    ) -> Page[RequestRow]:
        """Debit requests by id with their status and why they were refused or cancelled."""
        return self._read(
            lambda s: registry.list_requests(s, status=status, creditor_code=creditor, after_id=after_id, limit=limit)
        )

    def mandates(
        self, *, creditor: str | None = None, status: str | None = None, after_id: int | None = None, limit: int = 50
    ) -> Page[MandateRow]:
        """Mandates by id with their state and the mandate each one replaced (IBANs unmasked: mask to show)."""
        return self._read(
            lambda s: registry.list_mandates(s, creditor_code=creditor, status=status, after_id=after_id, limit=limit)
        )

    def batches(
        self,
        *,
        creditor: str | None = None,
        statuses: Sequence[BatchStatus] = (),
        business_from: dt.date | None = None,
        business_to: dt.date | None = None,
        limit: int = 100,
    ) -> tuple[BatchLine, ...]:
        """Files written for the bank, newest first, by creditor, status and run (business) date."""
        return self._read(
            lambda s: batches.list_batches(
                s, creditor_code=creditor, statuses=statuses, business_from=business_from, business_to=business_to,
                limit=limit,
            )
        )  # fmt: skip

    def batch(self, batch_id: int) -> BatchDetail:
        """One file: its blocks, its transactions and the requests its run refused (``NotFound`` if none)."""
        return self._read(lambda s: batches.show_batch(s, batch_id))

    def status(self) -> dict[str, Any]:
        """What ``sepa-engine status`` shows: pending requests and next collection date per
        creditor, the last job runs, open exceptions, files awaiting approval."""
        return self._read(lambda s: status.overview(s, self.settings, self.clock))

    def account(self, creditor: str, account: str) -> AccountView:
        """An account: its mode, mandate (IBAN masked), what it owes and whether it can pay now."""
        return self._read(lambda s: accounts.show_account(s, creditor, account))

    def statement(
        self,
        creditor: str,
        account: str,
        *,
        all_entries: bool = False,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        document: str | None = None,
    ) -> Statement:
        """An account's statement: its entries and balances over a period."""
        return self._read(
            lambda s: statements.statement(
                s, creditor, account, clock=self.clock, all_entries=all_entries, date_from=date_from,
                date_to=date_to, document=document,
            )
        )  # fmt: skip

    # -- customer accounts ---------------------------------------------------------------
    def record_entry(self, creditor: str, account: str, data: LedgerEntryInput, *, idempotency_key: str) -> EntryResult:
        """Record an invoice, a credit note or a fee (``data.kind``) on an account."""
        return self._write(
            lambda s: accounts.record_entry(s, creditor, account, data, idempotency_key=idempotency_key, clock=self.clock)
        )

    def pay_group(self, data: GroupPaymentInput, *, idempotency_key: str) -> GroupPaymentResult:
        """Pay invoices at several creditors of one group: one debit per creditor, all or none."""
        return self._write(
            lambda s: on_demand.pay_across_creditors(s, data, idempotency_key=idempotency_key, clock=self.clock)
        )

    def book_payments(self, *, creditor: str | None = None, batch_id: int | None = None) -> BookingReport:
        """Book a payment entry for every debit that reached the bank and has none yet (again
        books nothing twice)."""
        return self._write(
            lambda s: accounts.book_submitted_payments(s, self.clock, batch_id=batch_id, creditor_code=creditor)
        )

    def set_collection_mode(
        self, creditor: str, account: str, data: ModeChangeInput, *, actor: str, idempotency_key: str
    ) -> ChangeResult:
        """Switch an account between on demand and automatic (automatic needs a new e-signed
        mandate in ``data.mandate``; leaving it is for the creditor's staff, with a reason)."""
        return self._write(
            lambda s: account_changes.set_collection_mode(
                s, creditor, account, data, actor=actor, idempotency_key=idempotency_key, clock=self.clock
            )
        )

    def change_bank_details(
        self, creditor: str, account: str, data: ESignedMandateInput, *, actor: str, idempotency_key: str
    ) -> ChangeResult:
        """New bank details: a new e-signed mandate that supersedes the account's mandate."""
        return self._write(
            lambda s: account_changes.change_bank_details(
                s, creditor, account, data, actor=actor, idempotency_key=idempotency_key, clock=self.clock
            )
        )

    def update_details(
        self, creditor: str, account: str, data: DetailsInput, *, actor: str, idempotency_key: str
    ) -> ChangeResult:
        """Change an account's contact details (a field set to None is cleared), kept in its history."""
        return self._write(
            lambda s: account_changes.update_details(
                s, creditor, account, data, actor=actor, idempotency_key=idempotency_key, clock=self.clock
            )
        )

    def account_history(self, creditor: str, account: str) -> tuple[HistoryLine, ...]:
        """Every recorded change of an account, oldest first, field by field."""
        return self._read(lambda s: account_changes.history(s, creditor, account))

    def set_creditor_settings(
        self, creditor: str, data: CreditorSettingsInput, *, actor: str, idempotency_key: str
    ) -> ChangeResult:
        """A creditor's pre-notification lead time and group (a field left None is kept)."""
        return self._write(
            lambda s: account_changes.set_creditor_settings(
                s, creditor, data, actor=actor, idempotency_key=idempotency_key, clock=self.clock
            )
        )

    def open_dispute(
        self, creditor: str, account: str, data: DisputeInput, *, actor: str, idempotency_key: str
    ) -> DisputeView:
        """Contest invoices: they are not collected while the dispute is open."""
        return self._write(
            lambda s: disputes.open_dispute(
                s, creditor, account, data, actor=actor, idempotency_key=idempotency_key, clock=self.clock
            )
        )

    def transition_dispute(
        self, creditor: str, dispute_id: int, data: DisputeTransitionInput, *, actor: str, idempotency_key: str
    ) -> DisputeView:
        """Move a dispute on; accepting it books a credit note for the disputed amount."""
        return self._write(
            lambda s: disputes.transition_dispute(
                s, creditor, dispute_id, data, actor=actor, idempotency_key=idempotency_key, clock=self.clock
            )
        )

    def disputes(
        self, creditor: str, *, account: str | None = None, status: str | None = None
    ) -> tuple[DisputeView, ...]:
        """A creditor's disputes with their invoices and history."""
        return self._read(lambda s: disputes.list_disputes(s, creditor, account_reference=account, status=status))

    def dispute(self, creditor: str, dispute_id: int) -> DisputeView:
        """One dispute and its history."""
        return self._read(lambda s: disputes.get_dispute(s, creditor, dispute_id))

    def schedule_automatic(self, *, run_date: dt.date | None = None, creditor: str | None = None) -> ScheduleReport:
        """This period's automatic debits and their pre-notifications (safe to run again:
        a period already scheduled creates nothing)."""
        return self._write(
            lambda s: schedule.schedule_automatic(s, run_date, self.clock, creditor_code=creditor),
            what=f"schedule {creditor or 'every creditor'}",
        )

    def prenotifications(
        self,
        creditor: str,
        *,
        collection_from: dt.date | None = None,
        collection_to: dt.date | None = None,
        issued_on: dt.date | None = None,
    ) -> tuple[dict[str, object], ...]:
        """A creditor's pre-notifications by collection date, as flat records for its mailing
        system (``schedule.prenotifications_csv`` writes them as CSV)."""
        return self._read(
            lambda s: schedule.prenotifications(
                s, creditor, collection_from=collection_from, collection_to=collection_to, issued_on=issued_on
            )
        )

    # -- plumbing --------------------------------------------------------------------------
    def _write(self, operation: Callable[[Session], _T], *, what: str | None = None, again: bool = True) -> _T:
        """``operation`` in one write transaction. Each operation here changes the ledger and
        nothing else, so one PostgreSQL undid to break a deadlock (nothing of it kept) is run
        again whole (``Database.run_in_transaction``), unless ``again`` is False: its input
        can be read only once. ``what`` names it in the log; by default the method
        ("Engine.enqueue" of "Engine.enqueue.<locals>.<lambda>")."""
        if not again:
            with self.database.transaction() as session:
                return operation(session)
        return self.database.run_in_transaction(operation, what=what or operation.__qualname__.split(".<locals>")[0])

    def _read(self, operation: Callable[[Session], _T]) -> _T:
        with self.database.reader() as session:
            return operation(session)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write transaction for what the operations above do not cover (the services)."""
        with self.database.transaction() as session:
            yield session
