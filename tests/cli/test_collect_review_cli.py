"""collect's progress, batches list's filters and batch approve, through the command line."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path

import pytest
from freezegun import freeze_time
from typer.testing import CliRunner

from sepa_engine.cli.main import app
from sepa_engine.db.repositories import collection as collection_repo
from sepa_engine.services import views
from tests import ledger

runner = CliRunner()


def _config(tmp_path: Path, database_url: str) -> str:
    path = tmp_path / "sepa-engine.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[paths]\nvar_dir = "{tmp_path}"\noutbox_dir = "{tmp_path / "outbox"}"\n'
    )
    return str(path)


def _run(config: str, *args: str):
    return runner.invoke(app, [*args, "--config", config])


# The held file (run of 2026-11-23) is for the 24th: approved on the 23rd before the 16:00
# cut-off, on the frozen system clock, since approval re-checks the date against "now".
APPROVED_AT = "2026-11-23 10:00:00"


def _approve(config: str, *args: str):
    with freeze_time(APPROVED_AT):
        return _run(config, "batch", "approve", *args)


def _flat(output: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(output.split())


def _listed(config: str, *args: str) -> list[dict]:
    result = _run(config, "batches", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_collect_off_a_terminal_draws_no_progress(db, database_url, tmp_path):
    creditor = ledger.creditor(db, max_per_file=2)
    ledger.many_requests(db, creditor, 5)
    config = _config(tmp_path, database_url)
    result = _run(config, "collect", "--date", "2026-11-23")
    assert result.exit_code == 0, result.output
    assert "Collecting" not in result.output and "\r" not in result.output and "\x1b[?25l" not in result.output
    assert "5 collected, 0 refused, 3 file(s)." in result.stdout


class Recorder:
    def __init__(self) -> None:
        self.totals: list[int | None] = []
        self.advanced = 0

    def total(self, count: int | None) -> None:
        self.totals.append(count)

    def advance(self, count: int = 1) -> None:
        self.advanced += count


def test_collect_reports_its_progress_to_the_bar(db, database_url, tmp_path, monkeypatch):
    from contextlib import contextmanager

    from sepa_engine.cli import collect as command

    recorder = Recorder()
    labels: list[str] = []

    @contextmanager
    def fake_bar(label: str):
        labels.append(label)
        yield recorder

    monkeypatch.setattr(command, "bar", fake_bar)
    creditor = ledger.creditor(db, max_per_file=2)
    ledger.many_requests(db, creditor, 5)
    assert _run(_config(tmp_path, database_url), "collect", "--date", "2026-11-23").exit_code == 0
    assert labels == ["Collecting"] and recorder.totals == [5] and recorder.advanced == 5


@pytest.fixture
def two_creditors(db, database_url, tmp_path):
    """gim collects directly; held needs approval. Runs on 2026-11-23 then 2026-11-24."""
    config = _config(tmp_path, database_url)
    gim = ledger.creditor(db, code="gim")
    held = ledger.creditor(db, code="held", creditor_identifier="DE98ZZZ09999999999", requires_approval=True)
    ledger.request(db, gim, ledger.mandate(db, gim), 1_000)
    ledger.request(db, held, ledger.mandate(db, held), 2_000)
    assert _run(config, "collect", "--date", "2026-11-23").exit_code == 0
    ledger.request(db, gim, ledger.mandate(db, gim), 3_000, requested_date=dt.date(2026, 11, 25))
    assert _run(config, "collect", "--date", "2026-11-24").exit_code == 0
    return config


def test_collect_says_which_file_awaits_approval_and_how_to_approve(db, database_url, tmp_path):
    config = _config(tmp_path, database_url)
    held = ledger.creditor(db, code="held", requires_approval=True)
    ledger.request(db, held, ledger.mandate(db, held), 2_000)
    result = _run(config, "collect", "--date", "2026-11-23")
    assert result.exit_code == 0, result.output
    assert "awaits approval" in result.stdout and "sepa-engine batch approve 1" in result.stdout
    document = json.loads(_run(config, "collect", "--date", "2026-11-23", "--json").stdout)
    assert document["files"] == [] and document["interrupted"] is False


def table_header(output: str) -> list[str]:
    """The collection table's column names, from its header line."""
    line = next(line for line in output.splitlines() if "collection date" in line)
    return [cell.strip() for cell in line.strip()[1:-1].replace("┃", "│").split("│")]


def test_the_collection_table_names_its_note_column_and_shows_it_only_when_a_file_has_a_note(db, database_url, tmp_path):
    # Before: the last column had no name, and an empty one stood beside every file.
    config = _config(tmp_path, database_url)
    plain = ledger.creditor(db)
    ledger.request(db, plain, ledger.mandate(db, plain), 1_000)
    result = _run(config, "collect", "--date", "2026-11-23")
    assert result.exit_code == 0, result.output
    assert table_header(result.stdout) == ["file", "creditor", "collection date", "type", "transactions", "control sum"]

    held = ledger.creditor(db, code="held", creditor_identifier="DE98ZZZ09999999999", requires_approval=True)
    ledger.request(db, held, ledger.mandate(db, held), 2_000)
    result = _run(config, "collect", "--date", "2026-11-24")
    assert result.exit_code == 0, result.output
    assert table_header(result.stdout)[-1] == "note"
    row = next(line for line in result.stdout.splitlines() if "held" in line and ".xml" in line)
    assert row.rstrip(" │").endswith("awaiting approval"), result.stdout


def test_batches_list_filters_by_creditor(two_creditors):
    assert {b["creditor"] for b in _listed(two_creditors, "--creditor", "gim")} == {"gim"}
    assert len(_listed(two_creditors, "--creditor", "gim")) == 2


def test_batches_list_filters_by_repeated_status(two_creditors):
    assert [b["status"] for b in _listed(two_creditors, "--status", "awaiting_approval")] == ["awaiting_approval"]
    both = _listed(two_creditors, "--status", "published", "--status", "awaiting_approval")
    assert sorted(b["status"] for b in both) == ["awaiting_approval", "published", "published"]


def test_batches_list_awaiting_approval_shortcut(two_creditors):
    (held,) = _listed(two_creditors, "--awaiting-approval")
    assert (held["creditor"], held["status"], held["approved_by"]) == ("held", "awaiting_approval", None)
    assert "/pending/held/" in held["path"]


def test_batch_json_of_the_cli_is_the_apis_document_plus_the_hosts_path(two_creditors, db):
    # The CLI once built its own JSON: "file" where the API says "file_name", and no size.
    (listed,) = _listed(two_creditors, "--creditor", "held")
    shown = json.loads(_run(two_creditors, "batch", "show", str(listed["id"]), "--json").stdout)
    with db.reader() as session:
        batch = collection_repo.batch(session, listed["id"])
        api_list_item = views.batch_document(batch, "held")
        api_detail = views.batch_document(batch, "held", batch.blocks)
    assert {k: v for k, v in listed.items() if k not in ("path", "failure", "business_date")} == api_list_item
    extra = ("path", "failure", "requests", "refused_in_run")
    assert {k: v for k, v in shown.items() if k not in extra} == api_detail
    assert listed["file_name"] == Path(listed["path"]).name and listed["size"] == Path(listed["path"]).stat().st_size


def test_batches_list_filters_by_the_runs_business_date(two_creditors):
    assert {b["business_date"] for b in _listed(two_creditors, "--from", "2026-11-24")} == {"2026-11-24"}
    assert {b["business_date"] for b in _listed(two_creditors, "--to", "2026-11-23")} == {"2026-11-23"}
    assert len(_listed(two_creditors, "--from", "2026-11-23", "--to", "2026-11-23")) == 2
    assert _listed(two_creditors, "--from", "2026-11-25") == []


def test_batches_list_limit_keeps_the_newest(two_creditors):
    everything = _listed(two_creditors)
    assert [b["id"] for b in _listed(two_creditors, "--limit", "1")] == [everything[0]["id"]]
    assert everything[0]["id"] > everything[-1]["id"]


def test_batches_list_table_shows_the_status_then_who_approved(two_creditors):
    before = _run(two_creditors, "batches", "list")
    assert before.exit_code == 0 and "awaiting" in before.stdout and "approved" not in before.stdout
    (held,) = _listed(two_creditors, "--awaiting-approval")
    _approve(two_creditors, str(held["id"]), "--by", "zoe")
    after = _run(two_creditors, "batches", "list")
    assert "approved" in after.stdout and "zoe" in after.stdout


@pytest.mark.parametrize("args, field", [(["--status", "sent"], "--status"), (["--from", "24/11/2026"], "--from"),
                                         (["--from", "2026-11-24", "--to", "2026-11-23"], "--from")])
def test_batches_list_refuses_bad_filters_naming_the_option(two_creditors, args, field):
    result = _run(two_creditors, "batches", "list", *args)
    assert result.exit_code == 64 and field in result.output


def test_batch_approve_releases_the_file_as_the_os_user_by_default(two_creditors, tmp_path):
    (held,) = _listed(two_creditors, "--awaiting-approval")
    result = _approve(two_creditors, str(held["id"]), "--json")
    assert result.exit_code == 0, result.output
    approval = json.loads(result.stdout)
    assert approval["approved_by"] == getpass.getuser()
    assert Path(approval["file"]).parent == tmp_path / "outbox" / "held" and Path(approval["file"]).exists()
    shown = json.loads(_run(two_creditors, "batch", "show", str(held["id"]), "--json").stdout)
    assert (shown["status"], shown["approved_by"]) == ("published", getpass.getuser())
    assert shown["approved_at"] is not None and shown["approved_at"] == shown["published_at"]
    assert _listed(two_creditors, "--awaiting-approval") == []


def test_batch_approve_by_names_the_approver(two_creditors):
    (held,) = _listed(two_creditors, "--awaiting-approval")
    result = _approve(two_creditors, str(held["id"]), "--by", "Marie Curie")
    assert result.exit_code == 0, result.output
    assert "approved by Marie Curie" in result.stdout


def test_batch_approve_twice_is_refused_with_exit_1(two_creditors):
    (held,) = _listed(two_creditors, "--awaiting-approval")
    assert _approve(two_creditors, str(held["id"]), "--by", "anne").exit_code == 0
    again = _approve(two_creditors, str(held["id"]), "--by", "bruno")
    assert again.exit_code == 1
    assert "batch.status 'published' cannot be approved" in _flat(again.output)
    assert "already approved by anne" in _flat(again.output)
    assert "Traceback" not in again.output


def test_batch_approve_of_a_published_or_unknown_batch_is_refused_with_exit_1(two_creditors):
    published = _listed(two_creditors, "--creditor", "gim")[0]
    result = _approve(two_creditors, str(published["id"]))
    assert result.exit_code == 1 and "only a batch awaiting_approval can be" in _flat(result.output)
    unknown = _approve(two_creditors, "999")
    assert unknown.exit_code == 1 and "batch 999 does not exist" in unknown.output


def test_batch_show_says_it_awaits_approval_then_who_approved(two_creditors):
    (held,) = _listed(two_creditors, "--awaiting-approval")
    before = _run(two_creditors, "batch", "show", str(held["id"]))
    assert f"awaiting approval: sepa-engine batch approve {held['id']}" in _flat(before.stdout)
    _approve(two_creditors, str(held["id"]), "--by", "anne")
    after = _run(two_creditors, "batch", "show", str(held["id"]))
    assert "approved by anne at " in _flat(after.stdout)
