from __future__ import annotations

from sqlalchemy import inspect

from sepa_engine.db import migrate


def test_migrations_create_every_table_and_run_twice_without_harm(db):
    migrate.upgrade(db)
    tables = set(inspect(db.engine).get_table_names())
    assert {"creditors", "debtor_accounts", "mandates", "debit_requests", "batches", "payment_blocks", "runs"} <= tables
