"""One exit code per situation, for every command, as README.md "Exit codes (for cron)" lists them.

Each case runs the console entry point in this process (``cli.main.main``, so the parser's
usage errors exit 64 as they do for cron) against a real ledger on both backends.
Interrupted runs (143) are proven where a signal can be sent: test_collect_cli.py,
tests/jobs/test_stop.py and test_service.py.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from sepa_engine.banksim import simulate
from sepa_engine.cli.main import main
from sepa_engine.clock import FixedClock, SystemClock
from sepa_engine.config import Settings
from sepa_engine.db import locks
from sepa_engine.db import session as session_module
from sepa_engine.db.models import Creditor, DebitRequest
from sepa_engine.db.session import Database
from sepa_engine.exit_codes import ExitCode
from sepa_engine.ids import SequentialIds
from sepa_engine.jobs.nightly import SCHEDULER_LOCK
from sepa_engine.services.collection import run_collection
from tests import ledger
from tests.concurrency import in_thread, the_other_side_of_a_cycle

COLLECTED = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
GOLDEN = Path(__file__).resolve().parents[1] / "testdata" / "pain.008" / "pain.008.001.08-two-blocks-amendments.xml"


@dataclass(frozen=True)
class World:
    db: Database
    tmp: Path
    config: str


def _config(tmp_path: Path, database_url: str) -> str:
    path = tmp_path / "sepa-engine.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n'
        f'[paths]\nvar_dir = "{tmp_path}"\noutbox_dir = "{tmp_path / "outbox"}"\ninbox_dir = "{tmp_path / "inbox"}"\n'
    )
    return str(path)


def _due(world: World, *amounts: int) -> None:
    creditor = ledger.creditor(world.db)
    for amount in amounts:
        ledger.request(world.db, creditor, ledger.mandate(world.db, creditor), amount)


def _bad_config(world: World) -> str:
    path = world.tmp / "bad.toml"
    path.write_text('[database]\nurl = "sqlite:///x.db"\n[paths]\nno_such_key = 1\n')
    return str(path)


def _unreachable_config(world: World) -> str:
    # Nothing listens on port 1: the connection is refused at once, as when PostgreSQL is down.
    path = world.tmp / "unreachable.toml"
    path.write_text(
        '[database]\nurl = "postgresql://postgres@127.0.0.1:1/x"\n'
        f'[paths]\nvar_dir = "{world.tmp}"\noutbox_dir = "{world.tmp / "outbox"}"\ninbox_dir = "{world.tmp / "inbox"}"\n'
    )
    return str(path)


def _unusable_sqlite_config(world: World) -> str:
    (world.tmp / "a-file").write_text("not a folder")
    path = world.tmp / "unusable.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{world.tmp / "a-file" / "ledger.db"}"\n'
        f'[paths]\nvar_dir = "{world.tmp}"\noutbox_dir = "{world.tmp / "outbox"}"\ninbox_dir = "{world.tmp / "inbox"}"\n'
    )
    return str(path)


def _broken_pain008(world: World) -> str:
    path = world.tmp / "broken.xml"
    path.write_bytes(GOLDEN.read_bytes().replace(b"<CtrlSum>", b"<CtrlSum>1", 1))
    return str(path)


def _not_xml(world: World) -> str:
    path = world.tmp / "not.xml"
    path.write_text("not xml at all")
    return str(path)


def _mandate_request_lines(world: World) -> None:
    creditor = ledger.creditor(world.db)
    ledger.mandate(world.db, creditor, reference="RUM-EXIT-1")
    (world.tmp / "good.jsonl").write_text('{"idempotency_key": "exit-1", "mandate": "RUM-EXIT-1", "amount": "12.00", "on_account": true}\n')
    (world.tmp / "bad.jsonl").write_text('{"idempotency_key": "exit-2", "mandate": "RUM-EXIT-1", "amount": "12.345"}\n')


def _bad_load_dir(world: World) -> str:
    folder = world.tmp / "load"
    folder.mkdir(exist_ok=True)
    (folder / "creditors.json").write_text('[{"code": "x", "name": ""}]')
    return str(folder)


def _answers_to_golden(world: World) -> None:
    simulate(GOLDEN, world.tmp / "golden-answers", 0.0, 0.0, seed=1)


def _answers_to_our_file(world: World) -> None:
    _due(world, 5_000)
    settings = Settings(database_url=world.db.url, var_dir=world.tmp, outbox_dir=world.tmp / "outbox")
    (file,) = run_collection(world.db, settings, FixedClock(COLLECTED), SequentialIds("EXIT")).files
    simulate(file.path, world.tmp / "answers", 0.0, 0.0, seed=1)


def _collect_now(world: World) -> None:
    settings = Settings(database_url=world.db.url, var_dir=world.tmp, outbox_dir=world.tmp / "outbox")
    run_collection(world.db, settings, SystemClock(), SequentialIds("NOW"))


def _held_file(world: World) -> None:
    creditor = ledger.creditor(world.db, requires_approval=True)
    ledger.request(world.db, creditor, ledger.mandate(world.db, creditor), 5_000)
    settings = Settings(database_url=world.db.url, var_dir=world.tmp, outbox_dir=world.tmp / "outbox")
    run_collection(world.db, settings, SystemClock(), SequentialIds("HELD"))



def _edit_held_file(world: World) -> None:
    (held,) = (world.tmp / "outbox" / "pending").rglob("*.xml")
    held.write_text(held.read_text().replace("<NbOfTxs>1</NbOfTxs>", "<NbOfTxs>2</NbOfTxs>", 1))


Args = Callable[[World], list[str]]
Setup = Callable[[World], None]


@dataclass(frozen=True)
class Case:
    id: str
    args: Args
    code: ExitCode
    setup: Setup = lambda world: None
    # A lock another run holds while the command runs: a scheduler lock's name, or
    # CREDITOR for the collection lock of the first creditor.
    lock: str | None = None


CREDITOR = "creditor"


def _with_config(*args: str) -> Args:
    return lambda world: [*args, "--config", world.config]


def _answer(folder: str, *, config: bool = True) -> Args:
    """``reconcile`` (or ``returns inspect``) of the pain.002 the setup wrote in ``folder``."""
    def args(world: World) -> list[str]:
        found = str(next((world.tmp / folder).glob("*-pain002.xml")))
        return ["reconcile", found, "--config", world.config] if config else ["returns", "inspect", found]
    return args


CASES = [
    # collect
    Case("collect-ok", _with_config("collect", "--date", "2026-11-23"), ExitCode.OK, lambda w: _due(w, 5_000)),
    Case("collect-nothing-to-do", _with_config("collect", "--date", "2026-11-23"), ExitCode.NOTHING_TO_DO),
    Case("collect-partial", _with_config("collect", "--date", "2026-11-23"), ExitCode.PARTIAL, lambda w: _due(w, 5_000, 0)),
    # The issue: collect exited 5 ("lock 'collection' is held by another run") where run-nightly exits 75.
    Case("collect-lock-busy", _with_config("collect", "--date", "2026-11-23"), ExitCode.LOCK_BUSY, lambda w: _due(w, 5_000), CREDITOR),
    Case("collect-creditor-lock-busy", _with_config("collect", "--date", "2026-11-23", "--creditor", "martin"), ExitCode.LOCK_BUSY,
         lambda w: _due(w, 5_000), CREDITOR),
    Case("collect-bad-argument", _with_config("collect", "--date", "23/11/2026"), ExitCode.USAGE),
    Case("collect-unknown-option", lambda w: ["collect", "--bogus"], ExitCode.USAGE),
    Case("collect-bad-configuration", lambda w: ["collect", "--config", _bad_config(w)], ExitCode.USAGE),
    Case("collect-dry-run-partial", _with_config("collect", "--dry-run", "--date", "2026-11-23"), ExitCode.PARTIAL,
         lambda w: _due(w, 5_000, 0)),
    # run-nightly
    Case("run-nightly-nothing-to-do", _with_config("run-nightly"), ExitCode.NOTHING_TO_DO),
    Case("run-nightly-lock-busy", _with_config("run-nightly"), ExitCode.LOCK_BUSY, lambda w: _due(w, 5_000), SCHEDULER_LOCK),
    Case("run-nightly-bad-configuration", lambda w: ["run-nightly", "--config", _bad_config(w)], ExitCode.USAGE),
    Case("run-nightly-ledger-unreachable", lambda w: ["run-nightly", "--config", _unreachable_config(w)], ExitCode.UNAVAILABLE),
    # serve
    Case("serve-lock-busy", _with_config("serve"), ExitCode.LOCK_BUSY, lock=SCHEDULER_LOCK),
    Case("serve-bad-configuration", lambda w: ["serve", "--config", _bad_config(w)], ExitCode.USAGE),
    # The README's table said serve exits 5 when the ledger is unreachable; it exits 69 at start.
    Case("serve-ledger-unreachable", lambda w: ["serve", "--config", _unreachable_config(w)], ExitCode.UNAVAILABLE),
    # A SQLite ledger whose folder is a file: a traceback (NotADirectoryError) before.
    Case("serve-ledger-folder-unusable", lambda w: ["serve", "--config", _unusable_sqlite_config(w)], ExitCode.UNAVAILABLE),
    # api: the README said 69 for a ledger that does not answer; it started serving instead.
    Case("api-ledger-unreachable", lambda w: ["api", "--config", _unreachable_config(w)], ExitCode.UNAVAILABLE),
    Case("api-bad-configuration", lambda w: ["api", "--config", _bad_config(w)], ExitCode.USAGE),
    # tokens
    Case("tokens-create-ok", _with_config("tokens", "create", "--name", "erp", "--creditor", "martin", "--access", "read"),
         ExitCode.OK, lambda w: _due(w)),
    # The issue: `tokens create --access admin` exited 5 where the README says bad arguments exit 64.
    Case("tokens-create-bad-access", _with_config("tokens", "create", "--name", "erp", "--creditor", "martin", "--access", "admin"),
         ExitCode.USAGE, lambda w: _due(w)),
    Case("tokens-revoke-unknown", _with_config("tokens", "revoke", "999"), ExitCode.INVALID),
    # ledger views
    Case("status-ok", _with_config("status"), ExitCode.OK),
    Case("init-db-ok", _with_config("init-db"), ExitCode.OK),
    Case("init-db-bad-configuration", lambda w: ["init-db", "--config", _bad_config(w)], ExitCode.USAGE),
    Case("batch-show-unknown", _with_config("batch", "show", "999"), ExitCode.INVALID),
    Case("batch-approve-unknown", _with_config("batch", "approve", "999", "--by", "Marie"), ExitCode.INVALID),
    Case("requests-list-unknown-creditor", _with_config("requests", "list", "--creditor", "nobody"), ExitCode.INVALID),
    Case("mandates-list-bad-status", _with_config("mandates", "list", "--status", "lost"), ExitCode.USAGE),
    # files
    Case("verify-ok", lambda w: ["verify", str(GOLDEN)], ExitCode.OK),
    Case("verify-invalid", lambda w: ["verify", _broken_pain008(w)], ExitCode.INVALID),
    Case("verify-unreadable", lambda w: ["verify", _not_xml(w)], ExitCode.UNREADABLE),
    Case("describe-ok", lambda w: ["describe", str(GOLDEN)], ExitCode.OK),
    Case("describe-unreadable", lambda w: ["describe", _not_xml(w)], ExitCode.UNREADABLE),
    Case("simulate-bank-ok", lambda w: ["simulate-bank", str(GOLDEN), "--reject-rate", "0", "--return-rate", "0", "--seed", "1",
                                        "--out", str(w.tmp / "inbox")], ExitCode.OK),
    Case("simulate-bank-bad-rate", lambda w: ["simulate-bank", str(GOLDEN), "--reject-rate", "2", "--return-rate", "0", "--seed", "1",
                                              "--out", str(w.tmp / "inbox")], ExitCode.USAGE),
    Case("simulate-bank-unreadable", lambda w: ["simulate-bank", _not_xml(w), "--reject-rate", "0", "--return-rate", "0",
                                                "--seed", "1", "--out", str(w.tmp / "inbox")], ExitCode.UNREADABLE),
    Case("reconcile-unreadable", lambda w: ["reconcile", _not_xml(w), "--config", w.config], ExitCode.UNREADABLE),
    Case("reconcile-ok", _answer("answers"), ExitCode.OK, _answers_to_our_file),
    # An answer about a file that is not ours: its records wait in the exceptions queue.
    Case("reconcile-exceptions", _answer("golden-answers"), ExitCode.INVALID, _answers_to_golden),
    Case("reconcile-bad-configuration", lambda w: ["reconcile", str(GOLDEN), "--config", _bad_config(w)], ExitCode.USAGE),
    Case("reconcile-ledger-unreachable", lambda w: ["reconcile", str(GOLDEN), "--config", _unreachable_config(w)],
         ExitCode.UNAVAILABLE),
    Case("returns-inspect-ok", _answer("golden-answers", config=False), ExitCode.OK, _answers_to_golden),
    Case("returns-inspect-unreadable", lambda w: ["returns", "inspect", _not_xml(w)], ExitCode.UNREADABLE),
    Case("returns-inspect-unknown-option", lambda w: ["returns", "inspect", str(GOLDEN), "--bogus"], ExitCode.USAGE),
    Case("verify-unknown-option", lambda w: ["verify", str(GOLDEN), "--bogus"], ExitCode.USAGE),
    Case("describe-unknown-option", lambda w: ["describe", str(GOLDEN), "--bogus"], ExitCode.USAGE),
    Case("simulate-bank-answer-exists", lambda w: ["simulate-bank", str(GOLDEN), "--reject-rate", "0", "--return-rate", "0",
                                                   "--seed", "1", "--out", str(w.tmp / "golden-answers")],
         ExitCode.FAILED, _answers_to_golden),
    # load, enqueue
    Case("load-bad-records", lambda w: ["load", _bad_load_dir(w), "--config", w.config], ExitCode.INVALID),
    Case("enqueue-ok", lambda w: ["enqueue", str(w.tmp / "good.jsonl"), "--creditor", "martin", "--config", w.config],
         ExitCode.OK, _mandate_request_lines),
    Case("enqueue-bad-line", lambda w: ["enqueue", str(w.tmp / "bad.jsonl"), "--creditor", "martin", "--config", w.config],
         ExitCode.INVALID, _mandate_request_lines),
    Case("enqueue-ledger-unreachable", lambda w: ["enqueue", str(GOLDEN), "--config", _unreachable_config(w)], ExitCode.UNAVAILABLE),
    # approval, mandates, tokens, status
    Case("batch-approve-ok", _with_config("batch", "approve", "1", "--by", "Marie Dubois"), ExitCode.OK, _held_file),
    Case("batch-approve-file-changed", _with_config("batch", "approve", "1", "--by", "Marie Dubois"), ExitCode.INVALID,
         lambda w: _held_file(w) or _edit_held_file(w)),
    Case("batch-withdraw-ok", _with_config("batch", "withdraw", "1", "--by", "Marie Dubois", "--reason", "wrong amount"),
         ExitCode.OK, _held_file),
    Case("batch-withdraw-not-awaiting", _with_config("batch", "withdraw", "1", "--reason", "wrong amount"), ExitCode.INVALID,
         lambda w: _due(w, 5_000) or _collect_now(w)),
    Case("requests-cancel-ok", _with_config("requests", "cancel", "1", "--creditor", "martin", "--reason", "paid"), ExitCode.OK,
         lambda w: _due(w, 5_000)),
    Case("requests-cancel-taken", _with_config("requests", "cancel", "1", "--creditor", "martin"), ExitCode.INVALID,
         lambda w: _due(w, 5_000) or _collect_now(w)),
    Case("requests-cancel-unknown", _with_config("requests", "cancel", "999", "--creditor", "martin"), ExitCode.INVALID,
         lambda w: _due(w)),
    Case("batch-approve-not-awaiting", _with_config("batch", "approve", "1", "--by", "Marie Dubois"), ExitCode.INVALID,
         lambda w: _due(w, 5_000) or _collect_now(w)),
    Case("mandates-release-unknown", _with_config("mandates", "release", "RUM-NONE", "--creditor", "martin"), ExitCode.INVALID,
         lambda w: _due(w)),
    Case("tokens-list-ok", _with_config("tokens", "list"), ExitCode.OK),
    Case("status-ledger-unreachable", lambda w: ["status", "--config", _unreachable_config(w)], ExitCode.UNAVAILABLE),
    Case("init-db-ledger-unreachable", lambda w: ["init-db", "--config", _unreachable_config(w)], ExitCode.UNAVAILABLE),
    Case("returns-exceptions-resolve-unknown", _with_config("returns", "exceptions", "resolve", "999", "--as", "ignored"),
         ExitCode.INVALID),
]


def _held(db: Database, lock: str):  # type: ignore[no-untyped-def]
    if lock == CREDITOR:
        with db.reader() as session:
            first = session.scalars(select(Creditor.id).order_by(Creditor.id)).first()
        return locks.creditor_lock(db, first)
    return locks.run_lock(db, lock)


def _run(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["sepa-engine", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_each_command_exits_with_the_code_of_its_situation(case: Case, db, database_url, tmp_path, monkeypatch, capsys):
    world = World(db, tmp_path, _config(tmp_path, database_url))
    case.setup(world)
    args = case.args(world)
    if case.lock is not None:
        with _held(db, case.lock):
            code = _run(args, monkeypatch)
    else:
        code = _run(args, monkeypatch)
    captured = capsys.readouterr()
    assert code == case.code, f"{case.id}: exit {code}\n{captured.out}\n{captured.err}"
    assert "Traceback" not in captured.err


def test_a_busy_lock_says_so_in_one_line_and_collects_nothing(db, database_url, tmp_path, monkeypatch, capsys):
    world = World(db, tmp_path, _config(tmp_path, database_url))
    _due(world, 5_000)
    with _held(db, CREDITOR):
        code = _run(["collect", "--config", world.config], monkeypatch)
    out = capsys.readouterr().out
    assert code == 75
    assert "Skipped, another run is collecting them: martin." in out
    again = _run(["collect", "--date", "2026-11-23", "--config", world.config], monkeypatch)
    assert again == ExitCode.OK  # the debit waited for the next run


def test_a_command_the_database_keeps_undoing_says_so_in_one_line_and_exits_75(
    db, database_url, tmp_path, monkeypatch, capsys,
):
    # An enqueue PostgreSQL undoes to break a deadlock is run again (tests/test_engine.py);
    # here it is undone on its last run. Before, the command ended on a traceback and exit 1.
    world = World(db, tmp_path, _config(tmp_path, database_url))
    _mandate_request_lines(world)
    monkeypatch.setattr(session_module, "RUNS_WHEN_UNDONE", 1)
    args = ["enqueue", str(world.tmp / "good.jsonl"), "--creditor", "martin", "--config", world.config]
    enqueuing, exited = in_thread(lambda: _run(args, monkeypatch), start=False)

    the_other_side_of_a_cycle(db, enqueuing, go=enqueuing.start)  # the enqueue locks its mandate, then the account
    enqueuing.join(timeout=60)

    err = capsys.readouterr().err
    with db.reader() as session:
        enqueued = session.scalars(select(DebitRequest.idempotency_key)).all()
    assert _readme_exit_table()["`load`, `enqueue`"]["75"], "README's exit table has no 75 for enqueue"
    if db.is_sqlite:  # SQLite queued the two writers: no cycle
        assert (exited, enqueued) == ([ExitCode.OK], ["exit-1"])
        return
    assert (exited, enqueued) == ([ExitCode.LOCK_BUSY], [])
    assert "Traceback" not in err
    assert err.splitlines() == [
        "error: transaction was undone by the database to break a deadlock with another writer (SQLSTATE 40P01): "
        "what it was doing was not applied; run the command again"
    ]


README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_exit_table() -> dict[str, dict[str, str]]:
    """README's "Which command can exit with which code" table: row label -> code -> cell."""
    lines = README.read_text("utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| command | 0 |"))
    codes = [cell.strip() for cell in lines[start].strip("|").split("|")][1:]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(codes, cells[1:], strict=True))
    return rows


@pytest.mark.parametrize("command", ["`serve`", "`run-nightly`"])
def test_the_readme_table_says_an_unreachable_ledger_exits_69(command):
    row = _readme_exit_table()[command]
    assert row.get("69"), f"README's exit table has no 69 for {command}: {row}"
    assert "unreachable" not in row["5"], f"README's exit table says {command} exits 5 for an unreachable ledger"
