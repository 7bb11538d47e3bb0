"""``run-nightly`` (for cron), ``serve`` (the scheduler as a service) and ``status``."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import typer
from sqlalchemy.exc import SQLAlchemyError

from sepa_engine import errors, metrics
from sepa_engine.cli import context
from sepa_engine.cli.main import app
from sepa_engine.clock import SystemClock
from sepa_engine.db.locks import LockBusy
from sepa_engine.exit_codes import ExitCode
from sepa_engine.jobs import daemon, nightly


@contextmanager
def _scheduler_errors() -> Iterator[None]:
    """Lock busy exits 75; a database or file error after start one line and 5 (failed), never a
    traceback. A ledger that does not answer at start exits 69 before this (DatabaseUnavailable)."""
    try:
        yield
    except LockBusy as exc:
        context.stderr.print(
            f"lock busy: another scheduler (serve or run-nightly) is acting on this ledger; nothing was done ({exc})",
            markup=False, highlight=False,
        )
        raise typer.Exit(int(ExitCode.LOCK_BUSY)) from None
    except (SQLAlchemyError, OSError) as exc:
        context.stderr.print(f"error: {exc}".splitlines()[0], markup=False, highlight=False)
        raise typer.Exit(int(ExitCode.FAILED)) from None


@app.command("run-nightly")
def run_nightly(
    as_json: bool = context.JsonOption,
    config: str = context.ConfigOption,
) -> None:
    """Collection, then schedules, then inbox import; exits with the worst step's code (for cron)."""
    with context.database(config) as (settings, db), context.handled():
        stop = threading.Event()
        with context.stop_on_signals(stop):
            with _scheduler_errors():
                result = nightly.run_nightly(db, settings, SystemClock(), should_stop=stop.is_set)
        if settings.metrics.textfile is not None:
            # After the run is recorded, so the file shows this run's outcome.
            metrics.write_textfile(db, settings.metrics.textfile)
        document = result.to_dict()
        context.render(document, as_json, lambda: _draw_run(document))
    raise typer.Exit(result.exit_code)


def _draw_run(document: dict[str, Any]) -> None:
    rows = [(name, step["outcome"], _step_line(name, step)) for name, step in document["steps"].items()]
    rows += [(name, "not started", "stopped before this step") for name in document["skipped"]]
    context.stdout.print(context.table(f"Nightly run {document['run_id']}", ["step", "outcome", "what"], rows))
    context.stdout.print(f"outcome: {document['outcome']} (exit code {document['exit_code']})")


def _step_line(name: str, step: dict[str, Any]) -> str:
    if "error" in step:
        return f"error: {step['error']}"
    if name == "collect":
        text = f"{step['assigned']} collected, {step['refused']} refused, {len(step['files'])} file(s)"
        return text + "".join(f"; {failure}" for failure in step["failures"])
    if name == "schedules":
        return f"{step['requested']} debit(s) requested ({step['amount']}), {len(step['problems'])} account(s) to look at"
    return f"{len(step['processed'])} file(s) reconciled, {len(step['failed'])} refused, {step['exceptions']} exception(s)"


@app.command()
def serve(config: str = context.ConfigOption) -> None:
    """Run the configured jobs (scheduler.jobs) on their cron lines until SIGTERM or SIGINT."""
    with context.database(config) as (settings, db), context.handled():
        stop = threading.Event()
        endpoint = None
        if settings.metrics.port:
            try:
                endpoint = metrics.serve_ledger_metrics(db, settings.metrics.port, settings.metrics.address)
            except OSError as exc:
                context.fail(errors.ConfigurationError(
                    "metrics.port", settings.metrics.port, f"cannot be listened on at {settings.metrics.address}: {exc.strerror or exc}"
                ))
        try:
            with context.stop_on_signals(stop):
                with _scheduler_errors():
                    daemon.serve(db, settings, SystemClock(), stop)
        finally:
            if endpoint is not None:
                server, _thread = endpoint
                server.shutdown()
                server.server_close()
    raise typer.Exit(0)


@app.command()
def status(
    as_json: bool = context.JsonOption,
    config: str = context.ConfigOption,
) -> None:
    """Pending requests and next collection date per creditor, last runs, open exceptions, files to approve."""
    with context.engine(config) as engine, context.handled():
        document = engine.status()
    context.render(document, as_json, lambda: _draw_status(document, engine.settings.scheduler_timezone))


def _draw_status(document: dict[str, Any], timezone: str) -> None:
    out = context.stdout

    def local(value: str | None) -> str | None:
        # The table shows times in the scheduler's zone, to the second; JSON keeps ISO 8601.
        if value is None:
            return None
        return dt.datetime.fromisoformat(value).astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S")

    out.print(context.table(
        "Pending requests", ["creditor", "pending", "amount", "first requested", "next collection date"],
        [(c["creditor"], c["pending"], c["pending_amount"], c["first_requested_date"], c["next_collection_date"])
         for c in document["creditors"]],
        right=["pending", "amount"],
    ))
    rows = []
    for job in document["jobs"]:
        last = job["last_run"] or {}
        rows.append((job["job"], job["cron"] if job["enabled"] else "off", local(job["next_run"]),
                     local(last.get("started_at")), local(last.get("finished_at")), last.get("outcome"), last.get("exit_code")))
    out.print(context.table(f"Jobs (times in {timezone})", ["job", "cron", "next run", "last started", "finished", "outcome", "exit"], rows))
    out.print(f"Open return exceptions: {document['open_exceptions']}")
    waiting = document["awaiting_approval"]
    if waiting:
        out.print(context.table(
            "Files waiting for approval", ["batch", "creditor", "message id", "transactions", "control sum", "created"],
            [(b["batch_id"], b["creditor"], b["message_id"], b["transactions"], b["control_sum"], local(b["created_at"]))
             for b in waiting],
            right=["transactions", "control sum"],
        ))
    else:
        out.print("Files waiting for approval: none")
