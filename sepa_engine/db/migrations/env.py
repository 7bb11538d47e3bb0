"""Alembic environment: the engine comes from the caller (``migrate.upgrade``)."""

from __future__ import annotations

from alembic import context

from sepa_engine.db.models import Base
import sepa_engine.db.returns_models  # noqa: F401  (the reconciliation's tables)
import sepa_engine.db.service_models  # noqa: F401  (job runs, API tokens)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through sepa_engine.db.migrate, which passes a connection")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
