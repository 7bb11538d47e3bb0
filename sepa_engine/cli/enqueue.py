"""``sepa-engine enqueue FILE``: debit requests from a JSON Lines or CSV file.

Every bad line is reported with its number, field and rule. Nothing is applied when any
line is bad, unless ``--skip-bad``: the good lines are then applied and the bad ones are
written, as they were, to the rejects file: a new owner-only (0600) file, never one that
is already there (``--rejects PATH`` that exists is refused before anything is applied; the
default name takes the next free ``FILE.rejects.N.<ext>``), with CSV cells that a
spreadsheet would run as formulas made inert. Re-running the same file changes nothing
(each line carries its idempotency_key). See ``services/file_enqueue.py``.

Exit codes: 0 every line applied; 1 bad lines (nothing applied, or with --skip-bad only
the good ones); 64 bad arguments or configuration; 69 the database did not answer.
"""

from __future__ import annotations

from pathlib import Path

import typer

from sepa_engine import errors, private_files
from sepa_engine.cli import context
from sepa_engine.cli.context import ConfigOption, JsonOption
from sepa_engine.cli.main import app
from sepa_engine.exit_codes import ExitCode
from sepa_engine.services import file_enqueue


@app.command("enqueue")
def enqueue(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON Lines (.jsonl) or CSV (.csv, with a header) of debit requests."),
    creditor: str | None = typer.Option(None, "--creditor", help="Creditor of lines that name none (a line naming another is bad)."),
    fmt: str | None = typer.Option(None, "--format", help="jsonl or csv (default: from the file's extension)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Apply the good lines and write the bad ones to the rejects file."),
    rejects: Path | None = typer.Option(None, "--rejects", help="Where --skip-bad writes the bad lines (default FILE.rejects.<ext>)."),
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Enqueue the debit requests of FILE: all of them, or none when a line is bad (see --skip-bad)."""
    if skip_bad and rejects is not None and rejects.exists():
        # Refused before anything is applied: the rejects file is never written over.
        context.fail(errors.InvalidFormat("--rejects", str(rejects), "already exists: it is never overwritten; name a new file"), ExitCode.USAGE)
    with context.handled(), context.engine(config) as engine:
        try:
            report = engine.enqueue_file(file, fmt=fmt, creditor=creditor, skip_bad=skip_bad)
        except file_enqueue.FileRejected as failure:
            _report(failure.report, as_json, applied=False, rejects_path=None)
            raise typer.Exit(int(ExitCode.INVALID)) from None
    rejects_path = None
    if report.bad:
        rejects_path = rejects or _free_name(file, report.format)
        # New and owner-only: never over an existing file (a configuration file included).
        with context.handled():
            private_files.write_new(rejects_path, report.rejects_text(), "--rejects")
    _report(report, as_json, applied=True, rejects_path=rejects_path)
    if report.bad:
        raise typer.Exit(int(ExitCode.INVALID))


def _free_name(file: Path, fmt: str) -> Path:
    """FILE.rejects.<ext>, or FILE.rejects.2.<ext>... when an earlier run left one."""
    suffix = file.suffix or "." + fmt
    candidate = file.with_name(f"{file.stem}.rejects{suffix}")
    counter = 2
    while candidate.exists():
        candidate = file.with_name(f"{file.stem}.rejects.{counter}{suffix}")
        counter += 1
    return candidate


def _report(report: file_enqueue.FileReport, as_json: bool, *, applied: bool, rejects_path: Path | None) -> None:
    document = {"applied": applied, **report.to_dict(), "rejects": str(rejects_path) if rejects_path else None}
    if as_json:
        context.emit_json(document)
        return
    for bad in report.bad:
        context.stderr.print(f"  {bad}", markup=False, highlight=False, soft_wrap=True)
    if not applied:
        lines = len({b.line for b in report.bad})
        context.stderr.print(f"error: {lines} bad line(s) of {report.lines}: nothing was enqueued", markup=False, highlight=False, soft_wrap=True)
        return
    context.stdout.print(
        f"{report.lines} line(s): {report.created} enqueued, {report.unchanged} already enqueued"
        + (f", {len({b.line for b in report.bad})} rejected to {rejects_path}" if report.bad else ""),
        markup=False, highlight=False, soft_wrap=True,
    )
    for item in report.problems:
        for problem in item["problems"]:  # type: ignore[attr-defined]
            context.stdout.print(
                f"  line {item['line']}: stored with a problem the run will refuse: {problem['message']}",
                markup=False, highlight=False, soft_wrap=True,
            )
