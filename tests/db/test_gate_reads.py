"""The account gate's reads for many accounts (``accounts.gate_reads``, used by the retries of a
reconciliation and by batch enqueues): they keep to the creditor asked, and on SQLite each one
searches by the accounts' ids, never through the creditor's index, which on a one-creditor
ledger of 1,000,000 debits walked every row for each chunk of retries (BENCHMARKS.md,
2026-12-04 night: seconds per chunk instead of milliseconds)."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import event, select

from sepa_engine.db.models import DebtorAccount, LedgerEntry, Mandate
from sepa_engine.db.repositories import accounts as repo
from sepa_engine.db.session import Database
from tests import accounts_world as world


def _ids(db: Database) -> tuple[dict[str, int], dict[str, int]]:
    with db.reader() as s:
        accounts = {ref: i for i, ref in s.execute(select(DebtorAccount.id, DebtorAccount.reference))}
        mandates = {ref: i for i, ref in s.execute(select(Mandate.id, Mandate.reference))}
    return accounts, mandates


def test_gate_reads_keep_to_the_creditor_asked_when_asked_about_another_creditors_accounts(db):
    world.creditor(db, "pressimmo")
    world.creditor(db, "poliris")
    world.account(db, "pressimmo", "AG-1")
    world.account(db, "poliris", "PO-1")
    world.entry(db, "F1", "100.00", creditor_code="pressimmo", reference="AG-1")
    accounts, mandates = _ids(db)
    creditors = {}
    with db.reader() as s:
        for ref, owner in s.execute(select(DebtorAccount.reference, DebtorAccount.creditor_id)):
            creditors[ref] = owner

    with db.reader() as s:
        own = repo.gate_reads(s, creditors["AG-1"], accounts.values())
        mine = repo.accounts_of_mandates(s, creditors["AG-1"], mandates.values())

    assert set(own.accounts) == {accounts["AG-1"]}
    assert set(own.current_mandates) == {accounts["AG-1"]}
    assert [e.document_number for e in own.entries[accounts["AG-1"]]] == ["F1"]
    assert own.entries[accounts["PO-1"]] == [] and own.in_flight[accounts["PO-1"]] == []
    assert set(mine.values()) == {accounts["AG-1"]}


def test_gate_reads_on_sqlite_search_by_the_accounts_ids_not_through_the_creditors_index(
    tmp_path: Path, sqlite_template: Path
):
    path = tmp_path / "ledger.db"
    shutil.copyfile(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    try:
        world.creditor(db, "pressimmo")
        for n in range(3):
            world.account(db, "pressimmo", f"AG-{n}")
            world.entry(db, f"F{n}", "10.00", reference=f"AG-{n}")
        accounts, mandates = _ids(db)
        with db.transaction() as s:
            newest = {i: [(entry_id, issued)] for entry_id, i, issued in s.execute(
                select(LedgerEntry.id, LedgerEntry.debtor_account_id, LedgerEntry.issue_date))}
            # A return on one account: its rows are read with their payments.
            first = s.get_one(LedgerEntry, min(entry_id for (entry_id, _), in newest.values()))
            s.add(LedgerEntry(creditor_id=first.creditor_id, debtor_account_id=first.debtor_account_id,
                              kind="returned_payment", document_number="R-1", issue_date=first.issue_date,
                              amount_cents=100, created_at=first.created_at))
        statements: list[tuple[str, object]] = []

        def remember(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("SELECT"):
                statements.append((statement, parameters))

        event.listen(db.engine, "before_cursor_execute", remember)
        with db.reader() as s:
            owner = s.scalars(select(DebtorAccount.creditor_id)).first()
            statements.clear()
            repo.accounts_of_mandates(s, owner, mandates.values())
            repo.gate_reads(s, owner, accounts.values())
            # And with the positions summed by the database (balance debits).
            repo.gate_reads(s, owner, accounts.values(), positions=accounts.values())
            # And for invoices requests carry, booked just now (their newest items).
            repo.gate_reads(s, owner, accounts.values(), positions=accounts.values(), newest=newest)
        event.remove(db.engine, "before_cursor_execute", remember)

        # The accounts and their mandates are one statement (each of the three reads below).
        assert len(statements) == 6 + 4 + 5
        with db.reader() as s:
            raw = s.connection().connection.driver_connection
            plans = {sql: [row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}", params)] for sql, params in statements}
        for sql, plan in plans.items():
            assert not any("creditor_id=?" in step for step in plan), (sql, plan)
            assert any("debtor_account_id=?" in step or "rowid=?" in step for step in plan), (sql, plan)
    finally:
        db.dispose()
