"""``sepa-engine returns ...``: status reports and return files from the bank.

``returns inspect FILE`` reads a pain.002, camt.052, camt.053 or camt.054 without touching
the ledger and shows the records the reconciliation would apply. With ``--json``, one
document: ``{"message", "records", "skipped", "warnings"}``.

Exit codes: 0 when the file was read (warnings allowed), 1 when ``--strict`` refuses a
file that deviates from its XSD or the message rules, 2 when it cannot be read at all
(missing, not well-formed, hostile, unknown message), always with one line on stderr.
The whole file is read before anything is printed, so a file that turns out broken at
its end never leaves half a document on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sepa_engine import errors
from sepa_engine.cli import context
from sepa_engine.cli.main import app
from sepa_engine.domain.money import format_cents
from sepa_engine.exit_codes import ExitCode, for_error
from sepa_engine.iso20022 import returns
from sepa_engine.iso20022.returns import ReadResult, ReturnRecord

returns_app = typer.Typer(help="Status reports and return files from the bank.", no_args_is_help=True)
app.add_typer(returns_app, name="returns")


@returns_app.command("inspect")
def inspect(
    file: Annotated[Path, typer.Argument(help="pain.002, camt.052, camt.053 or camt.054 file.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout, for machines.")] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Refuse a file that deviates from its XSD or the message rules instead of warning "
            "(the XSD is checked when ../shared holds it).",
        ),
    ] = False,
) -> None:
    """Show what a bank file says about our direct debits, without touching the ledger."""
    try:
        result = returns.read(file, strict=strict)
        records = list(result)
    except errors.SchemaViolation as exc:
        _one_line(file, exc)
        raise typer.Exit(int(ExitCode.INVALID)) from None
    except errors.SepaEngineError as exc:
        _one_line(file, exc)
        raise typer.Exit(int(ExitCode.UNREADABLE if isinstance(exc, errors.MessageError) else for_error(exc))) from None
    except OSError as exc:  # a race with the file system after the checks; still one line
        typer.echo(f"{file}: cannot be read: {exc.strerror or exc}", err=True)
        raise typer.Exit(int(ExitCode.UNREADABLE)) from None
    if as_json:
        context.emit_json(result.to_dict(records))
    else:
        _draw(context.console(), result, records)
    raise typer.Exit(int(ExitCode.OK))


def _one_line(path: Path, exc: errors.SepaEngineError) -> None:
    # For file errors the field/value pair repeats the path the line starts with.
    text = exc.rule if exc.field == "file" else str(exc)
    # typer.echo, not rich: rich would wrap a long libxml2 message over several lines.
    typer.echo(f"{path}: {' '.join(text.split())}", err=True)


_COLUMNS = (
    "scope",
    "kind",
    "status",
    "end-to-end id",
    "mandate",
    "original message",
    "payment info",
    "amount",
    "fees",
    "reason",
    "booked on",
)


def _row(record: ReturnRecord, bookings: bool) -> tuple[object, ...]:
    amount = "" if record.amount_cents is None else f"{format_cents(record.amount_cents)} {record.currency or ''}".strip()
    fees = "" if record.fees_cents is None else format_cents(record.fees_cents)
    reason = record.reason_code or record.proprietary_reason
    # Only booking reports book; a pain.002 status is never "booked".
    status = record.status if not bookings or record.booked else f"{record.status or '(none)'} (not booked)"
    return (
        record.scope,
        record.kind,
        status,
        record.end_to_end_id,
        record.mandate_reference,
        record.original_message_id,
        record.payment_info_id,
        amount,
        fees,
        reason,
        record.booking_date.isoformat() if record.booking_date else None,
    )


def _draw(console: Console, result: ReadResult, records: list[ReturnRecord]) -> None:
    skipped = ", ".join(f"{reason} {count}" for reason, count in sorted(result.skipped_by_reason.items()))
    console.print(
        f"{result.path}: {result.message}, MsgId {result.message_id or '(none)'}, "
        f"{len(records)} records, {result.skipped} skipped{f' ({skipped})' if skipped else ''}",
        markup=False,
        soft_wrap=True,
    )
    if records:
        bookings = result.message.startswith("camt")
        rows = [_row(record, bookings) for record in records]
        # Columns empty in every row (no fees, no mandates in a pain.002...) only cost width.
        shown = [i for i, _ in enumerate(_COLUMNS) if any(row[i] not in (None, "") for row in rows)]
        console.print(
            context.table(
                None,
                [_COLUMNS[i] for i in shown],
                [[row[i] for i in shown] for row in rows],
                right=("amount", "fees"),
            )
        )
    if result.not_ours:
        console.print(f"not ours: {result.not_ours}", markup=False, soft_wrap=True)
    if result.warnings:
        rows = [(finding.code, finding.location, finding.message) for finding in result.warnings]
        console.print(context.table("Warnings", ("code", "location", "message"), rows))
