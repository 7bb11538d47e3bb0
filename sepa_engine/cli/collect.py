"""``collect``, ``batches list``, ``batch show`` and ``batch approve``: the nightly run and its review."""

from __future__ import annotations

import datetime as dt
import getpass
import threading
from typing import Any

import typer
from rich.table import Table

from sepa_engine import errors
from sepa_engine.cli import context
from sepa_engine.cli.main import app
from sepa_engine.cli.progress import bar
from sepa_engine.clock import SystemClock
from sepa_engine.db.repositories import collection as repo
from sepa_engine.domain.money import format_cents
from sepa_engine.domain.statuses import BatchStatus
from sepa_engine.engine import Engine
from sepa_engine.exit_codes import ExitCode
from sepa_engine.services.collection import CollectionReport

batches_app = typer.Typer(help="Files written for the bank.", no_args_is_help=True)
batch_app = typer.Typer(help="One file written for the bank.", no_args_is_help=True)
app.add_typer(batches_app, name="batches")
app.add_typer(batch_app, name="batch")

REFUSALS_SHOWN = 50


def _parse_date(value: str | None, option: str = "--date") -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        context.fail(errors.InvalidDate(option, value, "is not a date (YYYY-MM-DD)"), ExitCode.USAGE)


@app.command()
def collect(
    date: str = typer.Option(None, "--date", help="Business date of the run (YYYY-MM-DD); default: today."),
    creditor: str = typer.Option(None, "--creditor", help="Only this creditor (its code)."),
    dry_run: bool = typer.Option(
        False, "--dry-run",
        help="Show the plan: per creditor the files and blocks that would be written and the requests that would be refused. Changes nothing.",
    ),
    as_json: bool = context.JsonOption,
    config: str = context.ConfigOption,
) -> None:
    """Collect the due requests into pain.008 files in the outbox."""
    business_date = _parse_date(date)
    with context.database(config) as (settings, db), context.handled():
        clock = SystemClock()
        stop = threading.Event()
        # A bar on stderr when it is a terminal; nothing at all under cron or in a pipe.
        # SIGTERM finishes the file in progress; the next run writes the rest.
        with bar("Collecting") as progress, context.stop_on_signals(stop):
            report = Engine(settings, database=db, clock=clock).collect(
                creditor=creditor, business_date=business_date, dry_run=dry_run, progress=progress,
                should_stop=stop.is_set,
            )
        refusals = _refusals(db, report)
        context.render(_report_json(report, refusals), as_json, lambda: _draw_report(report, refusals))
    raise typer.Exit(int(_exit_code(report)))


def _exit_code(report: CollectionReport) -> ExitCode:
    if report.failures:
        return ExitCode.FAILED
    if report.interrupted:
        return ExitCode.INTERRUPTED
    if report.skipped:
        # Another run holds these creditors: busy (75) if that was all, else partial.
        return ExitCode.LOCK_BUSY if report.nothing_to_do else ExitCode.PARTIAL
    if report.nothing_to_do:
        return ExitCode.NOTHING_TO_DO
    if report.refused:
        return ExitCode.PARTIAL
    return ExitCode.OK


def _refusals(db: Any, report: CollectionReport) -> list[tuple[str, str, str, str]]:
    if report.dry_run or report.run_id is None:
        return report.refusals[:REFUSALS_SHOWN]
    with db.reader() as session:
        return [
            (code, r.end_to_end_id, r.reason_code or "", r.reason or "")
            for r, code in repo.refused_in_run(session, report.run_id, REFUSALS_SHOWN)
        ]


def _report_json(report: CollectionReport, refusals: list[tuple[str, str, str, str]]) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "business_date": report.business_date.isoformat(),
        "dry_run": report.dry_run,
        "assigned": report.assigned,
        "refused": report.refused,
        "nothing_to_do": report.nothing_to_do,
        "files": [
            {
                "batch_id": f.batch_id,
                "creditor": f.creditor_code,
                "message_id": f.message_id,
                "path": str(f.path),
                "transactions": f.count,
                "control_sum": format_cents(f.sum_cents),
                "recovered": f.recovered,
                "awaiting_approval": f.awaiting_approval,
                "blocks": [
                    {"collection_date": d.isoformat(), "sequence_type": s, "transactions": c, "control_sum": format_cents(a)}
                    for d, s, c, a in f.blocks
                ],
            }
            for f in report.files
        ],
        "refusals": [
            {"creditor": c, "end_to_end_id": e, "reason_code": code, "reason": reason} for c, e, code, reason in refusals
        ],
        "failures": report.failures,
        "interrupted": report.interrupted,
        "skipped_creditors": report.skipped,
        **(_plan_json(report) if report.dry_run else {}),
    }


def _plan_json(report: CollectionReport) -> dict[str, Any]:
    """What a dry run would do, under keys that say so (nothing of it happened)."""
    return {
        "would_collect": report.assigned,
        "would_refuse": report.refused,
        "would_write": [
            {
                "creditor": f.creditor_code,
                "transactions": f.count,
                "control_sum": format_cents(f.sum_cents),
                "would_await_approval": f.awaiting_approval,
                "left_by_earlier_run": f.left_by_earlier_run,
                "blocks": [
                    {"collection_date": d.isoformat(), "sequence_type": s, "transactions": c, "control_sum": format_cents(a)}
                    for d, s, c, a in f.blocks
                ],
            }
            for f in report.plan
        ],
    }


def _draw_plan(report: CollectionReport, refusals: list[tuple[str, str, str, str]]) -> None:
    out = context.stdout
    day = report.business_date.isoformat()
    if report.skipped:
        out.print(f"Skipped, another run is collecting them: {', '.join(report.skipped)}.", markup=False, highlight=False)
    if report.nothing_to_do:
        out.print(f"Dry run for {day}: nothing would be collected.")
        return
    files_by_creditor: dict[str, int] = {}
    rows: list[tuple[object, ...]] = []
    for f in report.plan:
        number = files_by_creditor[f.creditor_code] = files_by_creditor.get(f.creditor_code, 0) + 1
        note = ", ".join(text for text, on in (
            ("left by an earlier run", f.left_by_earlier_run), ("would await approval", f.awaiting_approval),
        ) if on)
        for d, s, c, a in f.blocks:
            rows.append((f.creditor_code, f"file {number}", d.isoformat(), s, c, format_cents(a), note))
    if rows:
        out.print(_noted_table(
            f"Dry run for {day}: files that would be written",
            ["creditor", "file", "collection date", "type", "transactions", "sum"], rows, right=["transactions", "sum"],
        ))
    left = sum(1 for f in report.plan if f.left_by_earlier_run)
    lead = f"Would write {left} file(s) an earlier run left, then collect" if left else "Would collect"
    out.print(
        f"{lead} {report.assigned} debit(s) in {len(report.plan) - left} file(s) "
        f"and refuse {report.refused} request(s). Nothing was written: the ledger and the outbox are unchanged."
    )
    if refusals:
        more = f" (first {REFUSALS_SHOWN})" if report.refused > len(refusals) else ""
        out.print(context.table(f"Would refuse{more}", ["creditor", "end-to-end id", "code", "reason"], refusals))


def _noted_table(title: str, columns: list[str], rows: list[tuple[object, ...]], *, right: list[str]) -> Table:
    """``columns`` and a last column, "note", of each row's last value: shown only when a file
    has a note (recovered, awaiting approval), so a plain run's table has no empty column."""
    if any(row[-1] for row in rows):
        return context.table(title, [*columns, "note"], rows, right=right)
    return context.table(title, columns, [row[:-1] for row in rows], right=right)


def _file_note(recovered: bool, awaiting: bool) -> str:
    return ", ".join(note for note, on in (("recovered", recovered), ("awaiting approval", awaiting)) if on)


def _draw_report(report: CollectionReport, refusals: list[tuple[str, str, str, str]]) -> None:
    if report.dry_run:
        _draw_plan(report, refusals)
        return
    out = context.stdout
    title = f"Collection for {report.business_date.isoformat()}"
    if report.skipped:
        out.print(f"Skipped, another run is collecting them: {', '.join(report.skipped)}.", markup=False, highlight=False)
    if report.nothing_to_do:
        out.print(f"{title}: nothing to collect. Requests already in a file are never collected again.")
        return
    rows: list[tuple[object, ...]] = [
        (f.path.name, f.creditor_code, d.isoformat(), s, c, format_cents(a), _file_note(f.recovered, f.awaiting_approval))
        for f in report.files
        for d, s, c, a in f.blocks
    ]
    if rows:
        out.print(_noted_table(
            title, ["file", "creditor", "collection date", "type", "transactions", "control sum"], rows,
            right=["transactions", "control sum"],
        ))
    out.print(f"{report.assigned} collected, {report.refused} refused, {len(report.files)} file(s).")
    for f in report.files:
        if f.awaiting_approval:
            out.print(f"{f.path.name} ({f.creditor_code}) awaits approval in {f.path.parent}: "
                      f"sepa-engine batch approve {f.batch_id}", markup=False, highlight=False)
    if refusals:
        more = f" (first {REFUSALS_SHOWN})" if report.refused > len(refusals) else ""
        out.print(context.table(f"Refused{more}", ["creditor", "end-to-end id", "code", "reason"], refusals))
    for failure in report.failures:
        context.stderr.print(f"failed: {failure}", markup=False)
    if report.interrupted:
        context.stderr.print("stopped on request after the file in progress: the next run writes the rest", markup=False)


_STATUS_HELP = f"Only batches in this status; repeat for several. {', '.join(s.value for s in BatchStatus)}."


@batches_app.command("list")
def batches_list(
    creditor: str = typer.Option(None, "--creditor", help="Only this creditor (its code)."),
    status: list[str] = typer.Option(
        None, "--status", help=_STATUS_HELP
    ),
    date_from: str = typer.Option(None, "--from", help="Runs on or after this business date (YYYY-MM-DD): the date collect ran for."),
    date_to: str = typer.Option(None, "--to", help="Runs on or before this business date (YYYY-MM-DD)."),
    awaiting_approval: bool = typer.Option(False, "--awaiting-approval", help="Only files held for approval (--status awaiting_approval)."),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many, newest first."),
    as_json: bool = context.JsonOption,
    config: str = context.ConfigOption,
) -> None:
    """Files written for the bank, newest first."""
    statuses = [_batch_status(value) for value in status or []]
    if awaiting_approval and BatchStatus.AWAITING_APPROVAL not in statuses:
        statuses.append(BatchStatus.AWAITING_APPROVAL)
    start, end = _parse_date(date_from, "--from"), _parse_date(date_to, "--to")
    if start and end and start > end:
        context.fail(errors.InvalidDate("--from", date_from, f"is after --to {date_to}"), ExitCode.USAGE)
    with context.engine(config) as engine, context.handled():
        found = engine.batches(creditor=creditor, statuses=statuses, business_from=start, business_to=end, limit=limit)
    document = [b.document for b in found]
    # file_name is <message id>.xml, path where it is on this host (--json); "approved by" only when someone approved.
    approvals = any(b.approved_by for b in found)
    columns = ["id", "creditor", "run date", "message id", "status", "txs", "control sum"] + (["approved by"] if approvals else [])
    rows = [
        (b.id, b.creditor_code, b.business_date.isoformat(), b.message_id, b.status, b.transactions, format_cents(b.sum_cents))
        + ((b.approved_by or "",) if approvals else ())
        for b in found
    ]
    context.render(document, as_json, lambda: context.stdout.print(context.table(
        "Batches", columns, rows, right=["txs", "control sum"])))


def _batch_status(value: str) -> BatchStatus:
    try:
        return BatchStatus(value)
    except ValueError:
        context.fail(
            errors.InvalidFormat("--status", value, "is not a batch status: " + ", ".join(s.value for s in BatchStatus)),
            ExitCode.USAGE,
        )


@batch_app.command("show")
def batch_show(
    batch_id: int = typer.Argument(..., help="The batch id (see batches list)."),
    as_json: bool = context.JsonOption,
    config: str = context.ConfigOption,
) -> None:
    """One file: its blocks, its transactions, and the requests its run refused."""
    with context.engine(config) as engine, context.handled():
        batch = engine.batch(batch_id)
    document = batch.document
    requests, refused = batch.requests, batch.refused

    def draw() -> None:
        out = context.stdout
        out.print(f"Batch {batch.id}  {batch.creditor_code}  {batch.message_id}  {batch.status}  {batch.path or batch.file_name}")
        if batch.approved_by:
            out.print(f"approved by {batch.approved_by} at {document['approved_at']}", markup=False, highlight=False)
        elif batch.status == BatchStatus.AWAITING_APPROVAL.value:
            out.print(f"awaiting approval: sepa-engine batch approve {batch.id}", markup=False, highlight=False)
        out.print(context.table("Payment blocks", ["PmtInfId", "collection date", "type", "transactions", "control sum"],
                                [(b["payment_info_id"], b["collection_date"], b["sequence_type"], b["transactions"], b["control_sum"])
                                 for b in document["blocks"]], right=["transactions", "control sum"]))
        out.print(context.table("Transactions", ["end-to-end id", "mandate id", "amount", "collection date", "type", "status"],
                                [(r.end_to_end_id, r.mandate_id, format_cents(r.amount_cents),
                                  r.collection_date, r.sequence_type, r.status) for r in requests[:200]],
                                right=["amount"]))
        if refused:
            out.print(context.table("Refused in the same run", ["end-to-end id", "amount", "code", "reason"],
                                    [(r.end_to_end_id, format_cents(r.amount_cents), r.reason_code, r.reason) for r in refused]))

    context.render(document, as_json, draw)


@batch_app.command("approve")
def batch_approve(
    batch_id: int = typer.Argument(..., help="The batch id (see batches list --awaiting-approval)."),
    by: str = typer.Option(None, "--by", help="Who approves; default: the operating-system user."),
    as_json: bool = context.JsonOption,
    config: str = context.ConfigOption,
) -> None:
    """Release a file held in outbox/pending to the bank's folder, recording who and when.

    Exit 0 when approved; 1 when refused (unknown batch, not awaiting approval, already
    approved, empty --by, a held file changed since it was written, debits the ledger no longer
    allows (a mandate revoked or replaced, an invoice under dispute: withdraw the file), or a
    collection date the bank can no longer meet: the file is then kept for audit and its debits
    re-dated into a new held file, named in the message); 5 when the file could not be moved
    (the batch stays held).
    """
    actor = by if by is not None else getpass.getuser()
    with context.engine(config) as engine:
        try:
            approval = engine.approve_batch(batch_id, actor=actor)
        except (errors.NotFound, errors.InvalidFormat) as exc:
            context.fail(exc, ExitCode.INVALID)
        except errors.SepaEngineError as exc:
            refused = exc.code in (
                "not_awaiting_approval", "collection_date_unreachable", "held_file_changed", "held_debits_changed",
            )
            context.fail(exc, ExitCode.INVALID if refused else ExitCode.FAILED)
        document = {
            "batch_id": approval.batch_id,
            "creditor": approval.creditor_code,
            "message_id": approval.message_id,
            "file": str(approval.path),
            "transactions": approval.count,
            "control_sum": format_cents(approval.sum_cents),
            "approved_by": approval.approved_by,
            "approved_at": approval.approved_at.isoformat(),
        }
        context.render(document, as_json, lambda: context.stdout.print(
            f"Batch {approval.batch_id} ({approval.creditor_code}, {approval.count} transactions, "
            f"{format_cents(approval.sum_cents)} EUR) approved by {approval.approved_by}: {approval.path}",
            markup=False, highlight=False))


@batch_app.command("withdraw")
def batch_withdraw(
    batch_id: int = typer.Argument(..., help="The batch id (see batches list --awaiting-approval)."),
    reason: str = typer.Option(..., "--reason", help="Why the file must not be sent (kept with it)."),
    by: str = typer.Option(None, "--by", help="Who withdraws it; default: the operating-system user."),
    as_json: bool = context.JsonOption,
    config: str = context.ConfigOption,
) -> None:
    """Stop a file held in outbox/pending at review: it is never sent, and its debits go back
    to the queue for the next run (cancel upstream those that must not be collected).

    Exit 0 when withdrawn; 1 when refused (unknown batch, not awaiting approval, already
    approved or withdrawn, empty --by or --reason); 5 when the file could not be moved (the
    batch stays held).
    """
    actor = by if by is not None else getpass.getuser()
    with context.engine(config) as engine:
        try:
            withdrawal = engine.withdraw_batch(batch_id, actor=actor, reason=reason)
        except (errors.NotFound, errors.InvalidFormat) as exc:
            context.fail(exc, ExitCode.INVALID)
        except errors.SepaEngineError as exc:
            context.fail(exc, ExitCode.INVALID if exc.code == "not_awaiting_approval" else ExitCode.FAILED)
        document = {
            "batch_id": withdrawal.batch_id,
            "creditor": withdrawal.creditor_code,
            "message_id": withdrawal.message_id,
            "file": str(withdrawal.path),
            "transactions": withdrawal.count,
            "control_sum": format_cents(withdrawal.sum_cents),
            "withdrawn_by": withdrawal.withdrawn_by,
            "withdrawn_at": withdrawal.withdrawn_at.isoformat(),
            "reason": withdrawal.reason,
            "requests_back_in_queue": withdrawal.released,
        }
        context.render(document, as_json, lambda: context.stdout.print(
            f"Batch {withdrawal.batch_id} ({withdrawal.creditor_code}, {withdrawal.count} transactions, "
            f"{format_cents(withdrawal.sum_cents)} EUR) withdrawn by {withdrawal.withdrawn_by}: never sent, kept in "
            f"{withdrawal.path}; {withdrawal.released} debit(s) back in the queue for the next run.",
            markup=False, highlight=False))
