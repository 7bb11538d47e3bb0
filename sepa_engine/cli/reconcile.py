"""``sepa-engine reconcile FILE...`` and ``sepa-engine returns exceptions list|resolve``.

Each file is reconciled in a transaction of its own: a refused file changes nothing and
does not stop the others. Exit codes: 0 every file applied (or already imported), 1 some
records went to the exceptions queue, 2 a file was unreadable or refused (the highest
wins), with one line on stderr per refused file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sepa_engine import errors
from sepa_engine.cli import context, progress
from sepa_engine.cli.main import app
from sepa_engine.cli.returns import returns_app
from sepa_engine.clock import SystemClock
from sepa_engine.engine import Engine
from sepa_engine.exit_codes import ExitCode

exceptions_app = typer.Typer(help="Bank records the reconciliation could not apply by itself.", no_args_is_help=True)
returns_app.add_typer(exceptions_app, name="exceptions")


@app.command("reconcile")
def reconcile(
    files: Annotated[list[Path], typer.Argument(help="pain.002 / camt.052 / camt.053 / camt.054 files.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout, for machines.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse files that deviate from their XSD.")] = False,
    config: Annotated[str | None, typer.Option("--config", help="Configuration file (TOML).")] = None,
) -> None:
    """Apply bank status reports and return files to the ledger."""
    worst = ExitCode.OK
    documents: list[dict[str, object]] = []
    with context.engine(config) as engine:
        for path in files:
            outcome, code = reconcile_one(engine, path, strict=strict)
            documents.append(outcome)
            worst = max(worst, code)
    context.render({"files": documents}, as_json, lambda: _draw(documents))
    raise typer.Exit(int(worst))


def reconcile_one(engine: Engine, path: Path, *, strict: bool = False) -> tuple[dict[str, object], ExitCode]:
    """Reconcile one file in its own transaction; the engine notes a refusal in another one."""
    try:
        # A bar on a terminal only (stderr): cron mail and --json output stay clean.
        with progress.bar(f"Reconciling {path.name}") as bar:
            report = engine.reconcile(path, strict=strict, progress=bar)
    except (errors.MessageError, errors.SchemaViolation) as exc:
        problem = exc.rule if exc.field == "file" else str(exc)
        typer.echo(f"{path}: {' '.join(problem.split())}", err=True)
        return {"path": str(path), "status": "refused", "error": problem}, ExitCode.UNREADABLE
    document = {"status": "duplicate" if report.duplicate else "applied", **report.to_dict()}
    return document, ExitCode.INVALID if report.exceptions else ExitCode.OK


def _draw(documents: list[dict[str, object]]) -> None:
    rows: list[tuple[object, ...]] = []
    for doc in documents:
        if doc["status"] == "refused":
            rows.append((doc["path"], "refused", "", "", "", "", ""))
            continue
        rows.append((
            doc["path"], doc["status"], doc.get("message") or "", doc["applied"], doc["already_applied"],
            doc["exceptions"], doc["skipped"],
        ))
    columns = ("file", "status", "message", "applied", "already applied", "exceptions", "skipped")
    context.console().print(context.table(None, columns, rows, right=columns[3:]))


@exceptions_app.command("list")
def list_exceptions(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout, for machines.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Resolved ones too.")] = False,
    config: Annotated[str | None, typer.Option("--config", help="Configuration file (TOML).")] = None,
) -> None:
    """The exceptions queue (open ones unless --all)."""
    with context.handled(), context.engine(config) as engine:
        documents = [view.to_dict() for view in engine.return_exceptions(include_resolved=all_)]

    def draw() -> None:
        rows = [(d["id"], d["status"], d["end_to_end_id"], d["record"].get("kind"), d["record"].get("amount"),
                 d["record"].get("reason_code"), d["reason"]) for d in documents]
        columns = ("id", "status", "end-to-end id", "kind", "amount", "code", "reason")
        context.console().print(context.table(None, columns, rows, right=("id", "amount")))

    context.render({"exceptions": documents}, as_json, draw)


@exceptions_app.command("resolve")
def resolve(
    exception_id: Annotated[int, typer.Argument(help="Exception id.", show_default=False)],
    as_: Annotated[str, typer.Option("--as", help="A debit request id to apply the record to, or 'ignored'.", show_default=False)],
    note: Annotated[str | None, typer.Option("--note", help="Why.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout, for machines.")] = False,
    config: Annotated[str | None, typer.Option("--config", help="Configuration file (TOML).")] = None,
) -> None:
    """Close an exception, applying its record to a debit or ignoring it."""
    with context.handled(), context.engine(config) as engine:
        view = engine.resolve_exception(exception_id, resolution=as_, note=note)
    context.render(view.to_dict(), as_json, lambda: context.stdout.print(f"exception {view.id} resolved: {view.resolution}"))


policy_app = typer.Typer(help="What each reason code does for a creditor.", no_args_is_help=True)
returns_app.add_typer(policy_app, name="policy")


@policy_app.command("show")
def policy_show(
    creditor: str = typer.Option(..., "--creditor", help="The creditor's code."),
    as_json: bool = context.JsonOption,
    config: str = context.ConfigOption,
) -> None:
    """The reason-code policy in force for a creditor (defaults and its overrides)."""
    with context.handled(), context.engine(config) as engine:
        rows = engine.reason_policies(creditor)
    document = [
        {"code": p.code, "meaning": p.meaning, "mandate_effect": p.mandate_effect.value, "max_retries": p.max_retries,
         "opens_dispute": p.opens_dispute, "overridden": overridden}
        for p, overridden in rows
    ]
    context.render(document, as_json, lambda: context.stdout.print(context.table(
        f"Reason-code policy of {creditor}", ["code", "meaning", "mandate", "retries", "dispute", "own"],
        [(d["code"], d["meaning"], d["mandate_effect"], d["max_retries"], "yes" if d["opens_dispute"] else "",
          "yes" if d["overridden"] else "") for d in document], right=["retries"])))


@policy_app.command("set")
def policy_set(
    code: str = typer.Argument(..., help="The ISO reason code, e.g. AM04."),
    creditor: str = typer.Option(..., "--creditor", help="The creditor's code."),
    effect: str = typer.Option(None, "--effect", help="block, hold or none."),
    max_retries: int = typer.Option(None, "--max-retries", help="New attempts allowed (0 to 5)."),
    dispute: bool = typer.Option(None, "--dispute/--no-dispute", help="Open a dispute on the invoices paid."),
    as_json: bool = context.JsonOption,
    config: str = context.ConfigOption,
) -> None:
    """Override one reason code's policy for one creditor."""
    with context.handled(), context.engine(config) as engine:
        policy = engine.set_reason_policy(creditor, code, mandate_effect=effect, max_retries=max_retries,
                                          opens_dispute=dispute)
    document = {"creditor": creditor, "code": policy.code, "mandate_effect": policy.mandate_effect.value,
                "max_retries": policy.max_retries, "opens_dispute": policy.opens_dispute}
    context.render(document, as_json, lambda: context.stdout.print(
        f"{policy.code} for {creditor}: mandate {policy.mandate_effect.value}, {policy.max_retries} retries, "
        f"dispute {'yes' if policy.opens_dispute else 'no'}."))


@returns_app.command("import-inbox")
def import_inbox_command(
    as_json: bool = context.JsonOption,
    config: str = context.ConfigOption,
) -> None:
    """Reconcile every new file in the inbox (paths.inbox_dir); move each to processed/ or failed/."""
    from sepa_engine.jobs.returns_inbox import import_inbox

    with context.handled(), context.database(config) as (settings, db):
        report = import_inbox(db, settings.inbox_dir, SystemClock())
    document: dict[str, Any] = {
        "inbox": str(settings.inbox_dir),
        "processed": [{"file": r.path.name, "applied": r.applied, "already_applied": r.already_applied,
                       "exceptions": r.exceptions, "duplicate": r.duplicate_of is not None} for r in report.processed],
        "failed": report.failed,
    }

    def draw() -> None:
        rows = [(d["file"], d["applied"], d["already_applied"], d["exceptions"], "yes" if d["duplicate"] else "")
                for d in document["processed"]]
        context.stdout.print(context.table(f"Inbox {settings.inbox_dir}", ["file", "applied", "already applied",
                                                                            "exceptions", "duplicate"], rows))
        for name, why in report.failed.items():
            context.stderr.print(f"failed: {name}: {why}", markup=False)

    context.render(document, as_json, draw)
    if report.failed:
        raise typer.Exit(int(ExitCode.UNREADABLE))
    if report.exceptions:
        raise typer.Exit(int(ExitCode.INVALID))
