"""Database fixtures: every ledger test runs on SQLite, and on PostgreSQL too when
SEPA_ENGINE_TEST_DATABASE_URL names a server (CI sets it). PostgreSQL databases are
cloned per test from a template migrated once per session, so each test starts empty.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sepa_engine.db import migrate
from sepa_engine.db.session import Database

PG_URL = os.environ.get("SEPA_ENGINE_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
_counter = itertools.count()


def _admin_engine():
    return create_engine(make_url(PG_URL).set(drivername="postgresql+psycopg", database="postgres"), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    if not PG_URL:
        yield None
        return
    name = f"sepa_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(str(make_url(PG_URL).set(database=name)))
    migrate.upgrade(db)
    db.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path: Path, pg_template: str | None) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db"
        return
    name = f"sepa_t_{os.getpid()}_{next(_counter)}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield str(make_url(PG_URL).set(database=name))
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    if database.is_sqlite:
        migrate.upgrade(database)
    yield database
    database.dispose()


@pytest.fixture(autouse=True)
def _logs_to_stderr():
    # Library code logs through structlog; keep stdout for the documents commands print.
    from sepa_engine import logs

    logs.configure(json_lines=True)
