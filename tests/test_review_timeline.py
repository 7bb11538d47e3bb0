"""The review page follows the file: its timeline is written again at approval and after
each reconciliation; amendments show old and new values; one masking rule per field; an
index page per creditor."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select
from typer.testing import CliRunner

from sepa_engine.banksim import simulate
from sepa_engine.cli.main import app
from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import Batch
from sepa_engine.db.returns_models import AppliedReturn
from sepa_engine.ids import SequentialIds
from sepa_engine.review import html_path, index_path, refresh, summary_path
from sepa_engine.services import reconciliation
from sepa_engine.services.approval import approve_batch
from sepa_engine.services.collection import run_collection
from tests import ledger
from tests.test_review import published, settings  # noqa: F401 - fixtures

runner = CliRunner()
COLLECTED = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
ANSWERED = dt.datetime(2026, 11, 24, 10, 30, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)


def _config(tmp_path: Path, database_url: str) -> str:
    path = tmp_path / "sepa-engine.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n'
        f'[paths]\nvar_dir = "{tmp_path}"\noutbox_dir = "{tmp_path / "outbox"}"\ninbox_dir = "{tmp_path / "inbox"}"\n'
    )
    return str(path)


def test_a_refused_line_shows_the_mandate_reference_one_way_only(published):  # noqa: F811
    # The issue: the refusals table showed a masked and a full mandate reference on one line.
    text = summary_path(published.path).read_text()
    (line,) = [line for line in text.splitlines() if "MD01" in line and "mandate RUM-" in line]
    reference = re.search(r"mandate (RUM-\S+?):", line).group(1)
    assert "*" not in line, line
    assert line.count(reference) == 2, line  # the column and the reason, both in full


def test_a_change_of_debtor_bank_shows_the_old_and_the_new_iban_masked(published):  # noqa: F811
    # The issue: the amendment line showed only the new IBAN.
    for document in (summary_path(published.path).read_text(), html_path(published.path).read_text()):
        assert "new debtor bank (SMNDA): IBAN DE89 **** **** 3000 -&gt; DE02 **** **** 2051" in document or (
            "new debtor bank (SMNDA): IBAN DE89 **** **** 3000 -> DE02 **** **** 2051" in document
        )


def test_the_review_follows_the_file_from_writing_to_settlement(db, database_url, tmp_path):
    creditor = ledger.creditor(db, requires_approval=True)
    for amount in (1_000, 2_000, 3_000):
        ledger.request(db, creditor, ledger.mandate(db, creditor), amount)
    config = _config(tmp_path, database_url)
    collected = json.loads(runner.invoke(app, ["collect", "--json", "--config", config]).stdout)
    (file,) = collected["files"]
    held = Path(file["path"])
    assert "held in outbox/pending/ for approval" in summary_path(held).read_text()
    assert "held for approval" in index_path(held).read_text()

    approved = runner.invoke(app, ["batch", "approve", str(file["batch_id"]), "--by", "Marie Dubois", "--config", config])
    assert approved.exit_code == 0, approved.output
    released = tmp_path / "outbox" / "martin" / held.name
    text = summary_path(released).read_text()
    assert "approved by Marie Dubois" in text and "released to the bank's folder" in text

    simulated = runner.invoke(app, ["simulate-bank", str(released), "--reject-rate", "0.34", "--return-rate", "0",
                                    "--seed", "7", "--out", str(tmp_path / "answers")])
    assert simulated.exit_code == 0, simulated.output
    answers = sorted((tmp_path / "answers").iterdir())
    reconciled = runner.invoke(app, ["reconcile", *map(str, answers), "--config", config])
    assert reconciled.exit_code == 0, reconciled.output

    text = summary_path(released).read_text()
    page = html_path(released).read_text()
    for document in (text, page):
        assert "approved by Marie Dubois" in document
        assert re.search(r"pain\.002\.001\.10 \S+-pain002\.xml: 1 rejected [A-Z0-9]{4}, \d+\.\d\d EUR", document), document
        assert re.search(r"camt\.054\.001\.02 \S+-camt054\.xml: 2 settled \(credited\)", document), document
        assert "settled, except the rejected debits" in document
    lines = text.split("timeline\n")[1].split("\n\n")[0].splitlines()
    assert lines[-1].split() == ["now", "settled,", "except", "the", "rejected", "debits"]
    index = index_path(released).read_text()
    assert held.name in index and "settled, except the rejected debits" in index
    assert f'href="martin/{held.stem}.html"' in index


@pytest.mark.parametrize(("pain008", "pain002"), [("pain.008.001.08", "pain.002.001.10"), ("pain.008.001.02", "pain.002.001.03")])
def test_an_all_accepted_status_report_shows_acknowledged_once_with_its_date(db, tmp_path, pain008, pain002):
    # The issue: Run.accepted wrote no applied_returns row, so the timeline never said
    # "acknowledged"; and the DK pain.002.001.03, which cannot say ACCP, acknowledged nothing.
    chosen = Settings(database_url=db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    creditor = ledger.creditor(db, pain008_version=pain008)
    for amount in (1_000, 2_500):
        ledger.request(db, creditor, ledger.mandate(db, creditor), amount)
    (file,) = run_collection(db, chosen, FixedClock(COLLECTED), SequentialIds("ACK")).files
    first = simulate(file.path, tmp_path / "first", 0.0, 0.0, seed=1)
    second = simulate(file.path, tmp_path / "second", 0.0, 0.0, seed=2)
    assert first.status_report_version == pain002
    assert first.pain002_path.read_bytes() != second.pain002_path.read_bytes()  # two reports, not one file twice

    reports = []
    for path, moment in ((first.pain002_path, ANSWERED), (first.pain002_path, LATER), (second.pain002_path, LATER)):
        with db.transaction() as session:
            reports.append(reconciliation.reconcile_file(session, path, clock=FixedClock(moment)))
        refresh(db, [file.message_id])
    # The group status, and each block's where the version has one: one record each.
    assert reports[0].records >= 1 and reports[0].applied == reports[0].records
    assert reports[0].batches == {file.message_id: "acknowledged"}
    assert reports[1].duplicate  # the same file again: recognised by its sha256
    assert (reports[2].applied, reports[2].already_applied) == (0, reports[2].records)  # another report: nothing new

    with db.reader() as session:
        keys = session.scalars(select(AppliedReturn.natural_key).where(AppliedReturn.kind == "accepted")).all()
        assert session.scalars(select(Batch.status)).one() == "acknowledged"
    assert keys == [f"accepted:{file.batch_id}"]
    created = etree.parse(str(first.pain002_path)).findtext("{*}CstmrPmtStsRpt/{*}GrpHdr/{*}CreDtTm")
    reported = dt.datetime.fromisoformat(created).date().isoformat()
    what = re.escape(pain002) + rf" \S+-pain002\.xml: file acknowledged \(report of {reported}\)"
    text, page = summary_path(file.path).read_text(), html_path(file.path).read_text()
    # The report's import, in the creditor's time zone, once.
    assert re.findall(rf"^  (\S+) +{what}$", text, re.MULTILINE) == ["2026-11-24T11:30:00+01:00"], text
    assert re.findall(rf"<td>([^<]+)</td><td>{what}</td>", page) == ["2026-11-24T11:30:00+01:00"], page
    assert "acknowledged by the bank" in text and "acknowledged by the bank" in page


class _Crash(Exception):
    pass


def _crash_at(step: str):
    def checkpoint(name: str) -> None:
        if name == step:
            raise _Crash(name)
    return checkpoint


def test_the_held_event_shows_when_the_file_was_held_not_when_it_was_written(db, tmp_path):
    # The issue: "held in outbox/pending/" carried the time the file was written. A run that
    # stopped between writing and publishing leaves the file to the next run, which holds it.
    chosen = Settings(database_url=db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    creditor = ledger.creditor(db, requires_approval=True)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 4_200)
    with pytest.raises(_Crash):
        run_collection(db, chosen, FixedClock(COLLECTED), SequentialIds("HLD"), checkpoint=_crash_at("after_written_commit"))
    held_at = COLLECTED + dt.timedelta(hours=2, minutes=15)
    (file,) = run_collection(db, chosen, FixedClock(held_at), SequentialIds("HLD2")).files
    assert file.awaiting_approval and file.recovered

    def events() -> dict[str, str]:
        text = summary_path(Path(file.path)).read_text()
        lines = text.split("timeline\n")[1].split("\n\n")[0].splitlines()
        return {what.split(":")[0].split(" in ")[0]: when for when, what in (line.strip().split(None, 1) for line in lines)}

    assert events()["written"] == "2026-11-23T09:00:00+01:00"
    assert events()["held"] == "2026-11-23T11:15:00+01:00"
    approve_batch(db, chosen, FixedClock(held_at + dt.timedelta(hours=1)), file.batch_id, actor="Marie Dubois")
    with db.reader() as session:
        released = Path(session.get(Batch, file.batch_id).path)
    file = dataclasses.replace(file, path=released)
    assert events()["held"] == "2026-11-23T11:15:00+01:00"  # still, once approved
    assert events()["approved by Marie Dubois"] == "2026-11-23T12:15:00+01:00"


def test_returns_join_the_timeline_with_their_reason_codes_and_amounts(db, tmp_path):
    chosen = Settings(database_url=db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    creditor = ledger.creditor(db)
    for amount in (1_000, 2_000, 3_000):
        ledger.request(db, creditor, ledger.mandate(db, creditor), amount)
    (file,) = run_collection(db, chosen, FixedClock(COLLECTED), SequentialIds("RET")).files
    answers = simulate(file.path, tmp_path / "answers", 0.0, 0.34, seed=3)
    assert (answers.rejected_count, len(answers.returned)) == (0, 1)  # round(0.34 x 3) = 1, exactly
    (returned,) = answers.returned
    for path in answers.paths:
        with db.transaction() as session:
            reconciliation.reconcile_file(session, path, clock=FixedClock(LATER))
        refresh(db, [file.message_id])

    with db.reader() as session:
        kind, code, amount = session.execute(
            select(AppliedReturn.kind, AppliedReturn.reason_code, AppliedReturn.amount_cents)
            .where(AppliedReturn.kind.not_in(("settled", "accepted")))
        ).one()
    assert code == returned.reason_code and kind in ("returned", "refunded", "reversed")
    text = summary_path(file.path).read_text()
    line = f"camt.054.001.02 {answers.camt054_path.name}: 1 {kind} {code}, {amount // 100}.{amount % 100:02d} EUR"
    assert line in text, text
    assert f"{answers.camt054_path.name}: 3 settled (credited)" in text
    assert "file acknowledged" in text  # the pain.002.001.10's ACCP


def test_a_change_of_creditor_identifier_shows_the_old_and_the_new_one(db, tmp_path):
    # The amendment line said "-> (this file's)" instead of the new identifier.
    chosen = Settings(database_url=db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    creditor = ledger.creditor(db)
    mandate = ledger.mandate(db, creditor, reference="RUM-MOVED", first_collected_on=dt.date(2026, 10, 5),
                             last_collected_on=dt.date(2026, 10, 5), presented_creditor_identifier="DE98ZZZ09999999999")
    ledger.request(db, creditor, mandate, 3_000)
    (file,) = run_collection(db, chosen, FixedClock(COLLECTED), SequentialIds("CID")).files
    for document in (summary_path(file.path).read_text(), html_path(file.path).read_text()):
        assert "creditor identifier DE98ZZZ09999999999 -&gt; FR72ZZZ123456" in document or (
            "creditor identifier DE98ZZZ09999999999 -> FR72ZZZ123456" in document
        ), document
