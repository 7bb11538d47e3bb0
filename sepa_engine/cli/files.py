"""Commands that work on any pain.008 file: verify, describe.

Output: rich tables on a terminal, one JSON document on stdout with ``--json``. A file
that cannot be read at all (not XML, hostile XML, unknown message, missing) gets one line
on stderr, ``path: problem``, never a traceback, and the other files are still checked.

Exit codes (``exit_codes.ExitCode``): 0 when every file is valid (warnings allowed),
1 when a file has an error finding, 2 when a file cannot be read (2 wins over 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from sepa_engine import errors
from sepa_engine.cli import context
from sepa_engine.cli.main import app
from sepa_engine.domain import bank_profiles
from sepa_engine.domain.bank_profiles import PROFILES
from sepa_engine.domain.money import format_cents
from sepa_engine.exit_codes import ExitCode
from sepa_engine.iso20022.pain008_verify import Description, Severity, VerifyReport, describe, verify

_JSON_OPTION = typer.Option("--json", help="Print one JSON document on stdout instead of tables.")


@app.command("verify")
def verify_command(
    files: Annotated[list[Path], typer.Argument(help="pain.008 files to check.", show_default=False)],
    as_json: Annotated[bool, _JSON_OPTION] = False,
    profile: Annotated[
        str | None,
        typer.Option("--profile", help=f"Also check the rules of this bank profile ({', '.join(sorted(PROFILES))}).",
                     show_default=False),
    ] = None,
) -> None:
    """Check pain.008 files before sending them: XSD, totals, identifiers, dates, SEPA rules,
    and with --profile the rules of that bank profile, each naming its source."""
    console = context.console()
    results: list[dict[str, Any]] = []
    exit_code = ExitCode.OK
    try:
        bank = bank_profiles.profile(profile, "--profile") if profile is not None else None
    except errors.ConfigurationError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(int(ExitCode.USAGE)) from None
    for path in files:
        try:
            report = verify(path, bank)
        except errors.SepaEngineError as exc:
            _unreadable_line(path, exc)
            results.append({"path": str(path), "readable": False, "error": _problem(exc)})
            exit_code = max(exit_code, _exit_code_for(exc))
            continue
        if not report.valid:
            exit_code = max(exit_code, ExitCode.INVALID)
        results.append({**report.to_dict(), "readable": True})
        if not as_json:
            _print_report(console, report)
    if as_json:
        typer.echo(json.dumps({"files": results}, indent=2, ensure_ascii=False))
    raise typer.Exit(int(exit_code))


@app.command("describe")
def describe_command(
    file: Annotated[Path, typer.Argument(help="pain.008 file to describe.", show_default=False)],
    mask: Annotated[bool, typer.Option("--mask", help="Mask debtor names, IBANs and mandate references.")] = False,
    as_json: Annotated[bool, _JSON_OPTION] = False,
) -> None:
    """Show what a pain.008 file would collect: creditors, blocks, dates and transactions."""
    try:
        description = describe(file, mask=mask)
    except errors.SepaEngineError as exc:
        _unreadable_line(file, exc)
        raise typer.Exit(int(_exit_code_for(exc))) from None
    if as_json:
        typer.echo(json.dumps(description.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_description(context.console(), description)
    raise typer.Exit(int(ExitCode.OK))


# --- helpers -------------------------------------------------------------------------------


def _exit_code_for(exc: errors.SepaEngineError) -> ExitCode:
    # Everything verify/describe raise means "could not read"; decided by class, not text.
    return ExitCode.UNREADABLE if isinstance(exc, errors.MessageError) else ExitCode.FAILED


def _problem(exc: errors.SepaEngineError) -> str:
    # For file errors the field/value pair is "file '<path>'", which the line already starts with.
    text = exc.rule if exc.field == "file" else str(exc)
    return " ".join(text.split())


def _unreadable_line(path: Path, exc: errors.SepaEngineError) -> None:
    # typer.echo, not rich: rich would wrap a long libxml2 message over several lines.
    typer.echo(f"{path}: {_problem(exc)}", err=True)


def _print_report(console: Console, report: VerifyReport) -> None:
    if report.findings:
        table = Table(title=f"{report.path} ({report.message})", title_justify="left", show_lines=False)
        table.add_column("severity")
        table.add_column("code")
        table.add_column("location", overflow="fold")
        table.add_column("message", overflow="fold")
        for finding in report.findings:
            style = "red" if finding.severity is Severity.ERROR else "yellow"
            table.add_row(f"[{style}]{finding.severity}[/{style}]", finding.code, finding.location, finding.message)
        console.print(table)
    errors_found, warnings_found = len(report.errors), len(report.warnings)
    verdict = "[green]VALID[/green]" if report.valid else "[red]INVALID[/red]"
    console.print(
        f"{verdict} {report.path}: {report.message}, {report.transactions} transactions, "
        f"{format_cents(report.control_sum_cents)} EUR, {errors_found} errors, {warnings_found} warnings",
        markup=True,
        soft_wrap=True,
    )


def _print_description(console: Console, description: Description) -> None:
    console.print(
        f"{description.path}: {description.message}, MsgId {description.message_id}, "
        f"created {description.created}, initiated by {description.initiating_party}, "
        f"{description.transactions} transactions, {format_cents(description.sum_cents)} EUR",
        soft_wrap=True,
    )
    creditors = Table(title="Creditors", title_justify="left")
    for column in ("name", "IBAN", "BIC", "creditor identifier"):
        creditors.add_column(column)
    for creditor in description.creditors:
        creditors.add_row(creditor.name or "", creditor.iban or "", creditor.bic or "", creditor.creditor_id or "")
    console.print(creditors)
    for block in description.blocks:
        table = Table(
            title=(
                f"{block.payment_info_id} - {block.local_instrument} {block.sequence_type}, "
                f"collection {block.collection_date}, {block.count} transactions, "
                f"{format_cents(block.sum_cents)} EUR"
            ),
            title_justify="left",
        )
        for column in ("end-to-end id", "amount", "debtor", "IBAN", "mandate", "signed", "amended"):
            table.add_column(column, overflow="fold")
        for tx in block.transactions:
            table.add_row(
                tx.end_to_end_id or "",
                f"{tx.amount or ''} {tx.currency or ''}".strip(),
                tx.debtor_name or "",
                tx.debtor_iban or "",
                tx.mandate_id or "",
                tx.signature_date or "",
                "yes" if tx.amended else "no",
            )
        console.print(table)
