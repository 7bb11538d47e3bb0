"""Commands on the ledger itself: create it, load upstream records, list what it holds.

Operator output masks what identifies a debtor: IBANs always, mandate references in the
request listing (the mandate listing shows references, which operators need to act on).
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping, Sequence
from pathlib import Path

import typer
from sqlalchemy.engine import make_url

from sepa_engine import errors, private_files
from sepa_engine.cli import context, progress
from sepa_engine.cli.context import ConfigOption, JsonOption
from sepa_engine.cli.main import app
from sepa_engine.db import migrate
from sepa_engine.domain.mandate import MandateStatus
from sepa_engine.domain.statuses import RequestStatus
from sepa_engine.exit_codes import ExitCode
from sepa_engine.services import loading, registry, views

requests_app = typer.Typer(help="Debit requests in the ledger.", no_args_is_help=True)
mandates_app = typer.Typer(help="Mandates in the ledger.", no_args_is_help=True)
app.add_typer(requests_app, name="requests")
app.add_typer(mandates_app, name="mandates")

LimitOption = typer.Option(50, "--limit", min=1, max=registry.LIST_LIMIT_MAX, help="Rows per page.")
AfterOption = typer.Option(None, "--after", min=0, help="Show rows after this id (the next page).")
CreditorOption = typer.Option(None, "--creditor", help="Only this creditor (its code).")


@app.command("init-db")
def init_db(config: str | None = ConfigOption) -> None:
    """Create the ledger or bring it to the latest schema (safe to run again)."""
    with context.handled(), context.database(config) as (_settings, db):
        url = make_url(db.url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            private_files.ensure_dir(Path(url.database).parent)
        migrate.upgrade(db)
    context.stdout.print(f"ledger ready: {url.render_as_string(hide_password=True)}", markup=False, highlight=False)


@app.command("load")
def load(
    directory: Path = typer.Argument(
        ..., exists=True, file_okay=False, dir_okay=True,
        help="Directory with creditors.json, debtor-accounts.json, mandates.json, requests.json.",
    ),
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Load upstream records from DIR in one transaction: everything or, if any record is bad, nothing."""
    with context.handled(), context.engine(config) as engine:
        try:
            with progress.bar(f"Loading {directory.name}") as shown:
                report = engine.load(directory, progress=shown)
        except loading.LoadFailed as failure:
            _load_failed(failure, as_json)
    context.render({"loaded": True, **report.to_dict()}, as_json, lambda: _draw_report(report))


def _load_failed(failure: loading.LoadFailed, as_json: bool) -> None:
    if as_json:
        context.emit_json({"loaded": False, "error": failure.to_dict(), "errors": [e.to_dict() for e in failure.load_errors]})
    else:
        # One line per error, never wrapped, so that the list can be grepped.
        context.stderr.print(f"error: {failure}", markup=False, highlight=False, soft_wrap=True)
        for error in failure.load_errors:
            context.stderr.print(f"  {error}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(int(ExitCode.INVALID))


def _draw_report(report: loading.LoadReport) -> None:
    rows = [(kind, count.created, count.unchanged) for kind, count in report.counts.items()]
    context.stdout.print(context.table("Loaded", ("kind", "created", "unchanged"), rows, right=("created", "unchanged")))
    # Only what this load stored: a record found unchanged had its problems told by the
    # load that stored it (a second `make demo` said "Stored with problems" for them).
    stored_now = [stored for stored in report.problems if stored.created]
    unchanged = len(report.problems) - len(stored_now)
    if unchanged:
        context.stdout.print(
            f"{unchanged} record(s) already stored and unchanged still have problems: the collection run refuses them "
            "(reported when they were stored; --json lists them).",
            markup=False, highlight=False,
        )
    if stored_now:
        problem_rows = [
            (f"{stored.file}[{stored.index}]", stored.id, problem["field"], problem["message"], problem["reason_code"])
            for stored in stored_now
            for problem in stored.problems
        ]
        context.stdout.print(
            context.table(
                "Stored with problems (the collection run will refuse them)",
                ("record", "id", "field", "problem", "reason code"),
                problem_rows,
            )
        )


@requests_app.command("list")
def list_requests(
    status: RequestStatus | None = typer.Option(None, "--status", help="Only requests in this status."),
    creditor: str | None = CreditorOption,
    limit: int = LimitOption,
    after: int | None = AfterOption,
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Debit requests by id, with their status and why they were refused or cancelled."""
    with context.handled(), context.engine(config) as engine:
        page = engine.requests(creditor=creditor, status=status.value if status else None, after_id=after, limit=limit)
    # The API's document of a request, and the creditor since this list spans them all.
    records = [{"creditor": row.creditor_code, **views.request_summary(row)} for row in page.items]
    columns = {"id": "id", "creditor": "creditor", "end_to_end_id": "end-to-end id", "mandate": "mandate",
               "amount": "amount", "requested_date": "requested date", "status": "status",
               "reason_code": "reason code", "reason": "reason", "batch_id": "batch"}
    context.render(
        {"requests": records, "next_after": page.next_after},
        as_json,
        lambda: _draw_page("Debit requests", columns, records, page.next_after, right=("id", "amount", "batch_id")),
    )


@requests_app.command("cancel")
def cancel_request(
    request_id: int = typer.Argument(..., help="The request id (see requests list --status pending)."),
    creditor: str = typer.Option(..., "--creditor", help="The creditor it belongs to (its code)."),
    reason: str | None = typer.Option(None, "--reason", help="Why it must not be collected (kept as its reason)."),
    by: str | None = typer.Option(None, "--by", help="Who cancels it; default: the operating-system user."),
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Cancel a request still pending, so that no run collects it (as the API's DELETE does).

    Exit 0 when cancelled (or already was); 1 when refused: unknown request or creditor, or a
    request a run already took (a held file is withdrawn first: `batch withdraw`).
    """
    actor = by if by is not None else getpass.getuser()
    with context.engine(config) as engine:
        try:
            document = engine.cancel_request(creditor, request_id, actor=actor, reason=reason)
        except (errors.NotFound, errors.InvalidFormat) as exc:
            context.fail(exc, ExitCode.INVALID)
        except errors.SepaEngineError as exc:
            context.fail(exc, ExitCode.INVALID if exc.code == "request_not_cancellable" else ExitCode.FAILED)
    context.render(document, as_json, lambda: context.stdout.print(
        f"Request {document['id']} ({document['end_to_end_id']}, {document['amount']} EUR) at {creditor}: "
        f"{document['status']} ({document['reason']}).", markup=False, highlight=False))


@mandates_app.command("list")
def list_mandates(
    creditor: str | None = CreditorOption,
    status: MandateStatus | None = typer.Option(None, "--status", help="Only mandates in this status."),
    limit: int = LimitOption,
    after: int | None = AfterOption,
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Mandates by id, with their state and the mandate each one replaced."""
    with context.handled(), context.engine(config) as engine:
        page = engine.mandates(creditor=creditor, status=status.value if status else None, after_id=after, limit=limit)
    records = [{"creditor": row.creditor_code, **views.mandate_summary(row)} for row in page.items]
    # The table leaves out what JSON carries for machines (BIC, first collection).
    columns = {"id": "id", "creditor": "creditor", "reference": "reference", "debtor_account": "debtor account",
               "kind": "kind", "status": "status", "signed_on": "signed on", "iban": "iban",
               "last_collected_on": "last collected", "amendment_pending": "amendment", "supersedes_id": "supersedes"}
    context.render(
        {"mandates": records, "next_after": page.next_after},
        as_json,
        lambda: _draw_page("Mandates", columns, records, page.next_after, right=("id", "supersedes_id")),
    )


def _draw_page(
    title: str, columns: dict[str, str], records: Sequence[Mapping[str, object]], next_after: int | None, *,
    right: tuple[str, ...],
) -> None:
    rows = [[_cell(record[key]) for key in columns] for record in records]
    context.stdout.print(context.table(title, list(columns.values()), rows, right=right))
    if next_after is not None:
        context.stdout.print(f"more: --after {next_after}", markup=False, highlight=False)


def _cell(value: object) -> object:
    if isinstance(value, bool):
        return "yes" if value else ""
    return value


@mandates_app.command("revoke")
def revoke_mandate(
    reference: str = typer.Argument(..., help="The mandate reference (UMR)."),
    creditor: str = typer.Option(..., "--creditor", help="The creditor's code."),
    reason: str = typer.Option(..., "--reason", help="Why (kept with the mandate)."),
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Revoke a mandate: its pending requests are cancelled; later requests are refused (MD01)."""
    with context.handled(), context.engine(config) as engine:
        cancelled = engine.revoke_mandate(creditor, reference, reason=reason)
    document = {"creditor": creditor, "reference": reference, "status": "revoked", "cancelled_requests": cancelled}
    context.render(document, as_json, lambda: context.stdout.print(
        f"Mandate {reference} of {creditor} is revoked; {cancelled} pending request(s) cancelled."))


@mandates_app.command("release")
def release_mandate(
    reference: str = typer.Argument(..., help="The mandate reference (UMR)."),
    creditor: str = typer.Option(..., "--creditor", help="The creditor's code."),
    note: str = typer.Option("", "--note", help="Why it may be collected again (kept with the mandate)."),
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Release a mandate held after a refund (MD06): its pending requests are collected again."""
    with context.handled(), context.engine(config) as engine:
        try:
            released = engine.release_mandate(creditor, reference, note=note)
        except errors.MandateNotActive as exc:
            context.fail(exc, ExitCode.INVALID)  # a mandate that is not held: refused, nothing changed
    document = {"creditor": creditor, "reference": reference, "status": "active", "released": released}
    context.render(document, as_json, lambda: context.stdout.print(
        f"Mandate {reference} of {creditor} is active" + (" again." if released else " (it was not held).")))
