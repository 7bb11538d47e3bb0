"""Alembic environment: the engine comes from the caller (``migrate.upgrade``)."""

from __future__ import annotations

from alembic import context

# Imported for the tables they add to the metadata: the reconciliation's, job runs and API tokens.
import sepa_engine.db.returns_models
import sepa_engine.db.service_models  # noqa: F401
from sepa_engine.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through sepa_engine.db.migrate, which passes a connection")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
