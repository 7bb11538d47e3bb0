"""Long commands show a bar on a terminal and stay silent under cron."""

from __future__ import annotations

import datetime as dt
import io

from typer.testing import CliRunner

from sepa_engine.cli import progress
from sepa_engine.cli.main import app
from sepa_engine.clock import FixedClock
from sepa_engine.progress import Rerunnable
from sepa_engine.services import loading
from tests import records

runner = CliRunner()
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)


class Recorder:
    def __init__(self) -> None:
        self.totals: list[int | None] = []
        self.done = 0

    def total(self, count: int | None) -> None:
        self.totals.append(count)

    def advance(self, count: int = 1) -> None:
        self.done += count


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_load_reports_how_many_records_it_will_apply_and_each_one_it_applied(db, tmp_path):
    directory = records.write_directory(tmp_path / "in", records.valid_set())
    seen = Recorder()
    with db.transaction() as session:
        loading.load_directory(session, directory, clock=FixedClock(NOW), progress=seen)
    assert seen.totals == [7] and seen.done == 7  # 1 creditor, 2 accounts, 2 mandates, 2 requests


def test_load_under_cron_prints_no_progress_bar(db, database_url, tmp_path):
    config = tmp_path / "sepa-engine.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[paths]\nvar_dir = "{tmp_path / "var"}"\n')
    directory = records.write_directory(tmp_path / "in", records.valid_set())
    result = runner.invoke(app, ["load", str(directory), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "Loading in" not in result.output and "0:00:" not in result.output


def test_the_bar_is_drawn_on_a_terminal_only():
    terminal, pipe = Terminal(), io.StringIO()
    with progress.bar("Collecting", stream=terminal) as shown:
        shown.total(3)
        shown.advance(3)
    with progress.bar("Collecting", stream=pipe) as silent:
        silent.total(3)
        silent.advance(3)
    assert "Collecting" in terminal.getvalue() and "3/3" in terminal.getvalue()
    assert pipe.getvalue() == "" and silent is progress.SILENT


def test_a_run_again_moves_the_bar_only_past_where_the_undone_run_stopped() -> None:
    heard = Recorder()
    rerunnable = Rerunnable(heard)
    first = rerunnable.run()
    first.total(10)
    first.advance(4)
    first.advance(2)  # undone here, at 6 of 10
    again = rerunnable.run()
    again.total(10)
    again.advance(4)
    assert heard.done == 6  # the bar stays where it was, rather than going to 10 of 10
    again.advance(4)
    again.advance(2)
    assert (heard.done, heard.totals) == (10, [10, 10])  # done once, never past the total


def test_a_single_run_is_heard_as_it_goes() -> None:
    heard = Recorder()
    run = Rerunnable(heard).run()
    for _ in range(3):
        run.advance()
    assert heard.done == 3
