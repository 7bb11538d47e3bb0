from __future__ import annotations

from sqlalchemy import inspect

from sepa_engine.db import migrate


def test_migrations_create_every_table_and_run_twice_without_harm(db):
    migrate.upgrade(db)
    tables = set(inspect(db.engine).get_table_names())
    assert {"creditors", "debtor_accounts", "mandates", "debit_requests", "batches", "payment_blocks", "runs"} <= tables


def test_the_models_and_the_migrations_describe_the_same_schema(db):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import sepa_engine.db.returns_models  # its tables join the metadata
    import sepa_engine.db.service_models  # noqa: F401
    from sepa_engine.db.models import Base

    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    # Type-only differences between backends' reflections are not schema drift.
    structural = [d for d in diff if not (isinstance(d, list) and d and d[0][0] == "modify_type")]
    assert structural == []
