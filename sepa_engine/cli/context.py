"""What every command needs: settings, the ledger, output as a table or JSON, and errors
turned into one clear line on stderr with the exit code of their class."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from sepa_engine import errors, private_files
from sepa_engine.clock import SystemClock
from sepa_engine.config import Settings, load_settings
from sepa_engine.db.session import Database, transaction_undone
from sepa_engine.engine import Engine
from sepa_engine.exit_codes import ExitCode, for_error

ConfigOption = typer.Option(None, "--config", help="Configuration file (TOML); default config/sepa-engine.toml.")
JsonOption = typer.Option(False, "--json", help="One JSON document on stdout, for machines.")

# Off a terminal (cron mail, a pipe, a log file) rich would wrap tables at 80 columns and cut
# message ids and file paths in two; a wide fixed width keeps each row on one line there (a
# table is only as wide as its content, so this costs nothing on short rows).
_PIPE_WIDTH = 1000
stdout = Console(width=None if sys.stdout.isatty() else _PIPE_WIDTH)
stderr = Console(stderr=True, width=None if sys.stderr.isatty() else _PIPE_WIDTH)


def console(*, soft_wrap: bool = False) -> Console:
    """A console for stdout with the same width rule (wide off a terminal), for commands that
    print plain, unhighlighted text: every command's tables then read the same in cron mail."""
    return Console(highlight=False, soft_wrap=soft_wrap, width=None if sys.stdout.isatty() else _PIPE_WIDTH)


def settings(config: str | None) -> Settings:
    try:
        return load_settings(config)
    except errors.SepaEngineError as exc:
        fail(exc)


@contextmanager
def database(config: str | None) -> Iterator[tuple[Settings, Database]]:
    """The configured ledger, opened once before the command's work: a database that does
    not answer is one line and exit code 69 (what cron mails during an outage), never a
    traceback; so is one that stops answering halfway."""
    chosen = settings(config)
    try:
        if chosen.database_url.startswith("sqlite:///") and ":memory:" not in chosen.database_url:
            private_files.ensure_dir(chosen.var_dir)
        db = Database(chosen.database_url)
    except OSError as exc:
        # A SQLite ledger whose folder cannot be made or opened (a missing volume, a path
        # through a file): one line, as for a server that does not answer.
        shown = make_url(chosen.database_url).render_as_string(hide_password=True)
        fail(errors.DatabaseUnavailable("database", shown, f"cannot be opened: {exc.strerror or exc} ({exc.filename})"))
    try:
        _ping(db)
        yield chosen, db
    except (OperationalError, InterfaceError) as exc:
        if transaction_undone(exc):
            fail(_undone(exc))
        if _answers(db):
            raise
        fail(_unavailable(db, exc))
    finally:
        db.dispose()


def _ping(db: Database) -> None:
    try:
        with db.engine.connect():
            pass
    except (OperationalError, InterfaceError) as exc:
        fail(_unavailable(db, exc))


def _answers(db: Database) -> bool:
    try:
        with db.engine.connect():
            return True
    except (OperationalError, InterfaceError):
        return False


def _unavailable(db: Database, exc: DBAPIError) -> errors.DatabaseUnavailable:
    # The driver's first line says why (refused, timeout, password); the URL never shows
    # its password.
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    shown = make_url(db.url).render_as_string(hide_password=True)
    return errors.DatabaseUnavailable("database", shown, f"did not answer: {reason}")


def _undone(exc: DBAPIError) -> errors.LedgerBusy:
    # What a single write undone on each of its runs (Database.run_in_transaction), or a step
    # of a longer command, leaves: the transaction in progress; earlier ones stay committed.
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return errors.LedgerBusy(
        "transaction", None,
        f"was undone by the database to break a deadlock with another writer (SQLSTATE {sqlstate}): "
        "what it was doing was not applied; run the command again",
    )


@contextmanager
def engine(config: str | None) -> Iterator[Engine]:
    """The public Python API on the configured ledger: commands call its operations."""
    with database(config) as (chosen, db):
        yield Engine(chosen, database=db, clock=SystemClock())


def fail(exc: errors.SepaEngineError, code: ExitCode | None = None) -> NoReturn:
    stderr.print(f"error: {exc}", markup=False, highlight=False)
    raise typer.Exit(int(code if code is not None else for_error(exc)))


@contextmanager
def handled() -> Iterator[None]:
    """Turn engine errors into one line and an exit code; never a traceback."""
    try:
        yield
    except errors.SepaEngineError as exc:
        fail(exc)


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[str] = ()) -> Table:
    result = Table(title=title, show_lines=False, title_justify="left")
    for column in columns:
        result.add_column(column, justify="right" if column in right else "left", overflow="fold")
    for row in rows:
        result.add_row(*("" if value is None else str(value) for value in row))
    return result


def render(document: Any, as_json: bool, draw: Callable[[], None]) -> None:
    if as_json:
        emit_json(document)
    else:
        draw()


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop``; the work in progress finishes its transaction."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        if not stop.is_set():
            stderr.print(f"{signal.Signals(signum).name}: stopping after the current transaction", markup=False)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
