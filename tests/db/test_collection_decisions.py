"""The run's decisions (repositories/collection.py) go into their temporary table and come back
in planning's order with the values they went in with, on both backends (SQLite's insert
bypasses SQLAlchemy's parameter processing, so it converts dates and flags itself)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from sepa_engine.db.repositories import collection as repo


def test_decisions_read_back_in_planning_order_with_their_values(db):
    late, early = dt.date(2026, 11, 27), dt.date(2026, 11, 25)
    stored = [
        repo.Decision(late, "RCUR", 3, 1_050, None, None, None, None, False),
        repo.Decision(early, "RCUR", 9, 2_000, "RUM-OLD", "FR72ZZZ999999", "Ancien nom", "FR7630006000011234567890189", True),
        repo.Decision(early, "FRST", 12, 99_999_999_999, None, None, None, None, False),
    ]
    with db.transaction() as s:
        repo.open_decisions(s)
        repo.add_decisions(s, stored)
        repo.seal_decisions(s)
        in_order = list(repo.decided(s, chunk_size=2))
        rows = [repo.Decision(*row) for row in s.execute(select(repo.decisions).order_by(repo.decisions.c.id))]
        repo.close_decisions(s)

    assert in_order == [(12, early, "FRST", 99_999_999_999), (9, early, "RCUR", 2_000), (3, late, "RCUR", 1_050)]
    assert rows == sorted(stored, key=lambda d: d.id)
    assert [type(r.collection_date) for r in rows] == [dt.date] * 3
    assert [r.amend_new_debtor_agent for r in rows] == [False, True, False]


def test_the_decision_tuple_lists_the_tables_columns_in_order():
    assert repo.Decision._fields == repo.DECISION_COLUMNS
